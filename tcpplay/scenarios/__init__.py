"""Scenarios: lessons written in a small text language (`*.tcp`), run on a Lab, narrated and checked.

A scenario file is read top to bottom. Each `say:` line starts a **step**, the unit the viewer steps through:
its narration is shown, then the commands under it run, up to the next `say:`. Every `expect` line is
checked as it is reached, so every lesson is also a test. The catalog of built-in lessons lives in
`tcpplay/scenarios/catalog/` (`tcpplay demo --list`).

The language
============

One statement per line. Blank lines separate things; `#` starts a comment (a whole line, or the rest of a
command line outside quotes). Words are case-insensitive except state names and errno names, which are
written as Linux prints them (`ESTABLISHED`, `ECONNREFUSED`). The two hosts are `client` and `server`.

Texts (the rest of the line; indented lines right below continue the text)::

    title: The three-way handshake            # required, once, at the top
    title.zh: 三次握手                          # any language code after the dot: zh, en, zh-tw...
    description: What a connection is made of. One paragraph for the lesson list and the header;
      its first sentence is the one-line summary.
    description.zh: ...
    step: SYN                                  # optional short title of the next step (default: the
    step.zh: 第一次握手                         #   first sentence of its narration)
    say: The client picks its ISN and sends a SYN. It enters SYN_SENT.
    say.zh: 客户端选好初始序号，发出 SYN，进入 SYN_SENT。  # must follow the say: it translates

A `step:` line must come right before the `say:` it titles. Commands before the first `say:` are set-up:
they run with the first step, before its narration. A translation that is missing falls back to English.

Socket calls (`<host>` is client or server; each call is logged as strace would print it)::

    server listen [8080] [backlog 128] [without SO_REUSEADDR]   # socket, bind, listen (port 8080)
    server stop listening                       # close() the listening socket
    client connect [to server] [port 8080] [from port 40000]   # non-blocking connect()
    server accept                               # accept() one connection (see auto-accept)
    server auto-accept on|off                   # on (the default): accept() as soon as one is ready
    client send 1000 bytes | client send "GET / HTTP/1.0\\r\\n\\r\\n"
                                                # a blocking send: what does not fit in the send
                                                # buffer now goes in as it drains (the lesson goes on);
                                                # escapes in "text": \\n \\r \\t \\" \\\\ \\0
    server recv [N]                             # read up to N bytes (default 65536)
    server auto-read on|off                     # read everything as soon as it arrives (default off)
    client shutdown [wr|rd|rdwr]                # default wr: send FIN, keep reading
    client close                                # close(): FIN (or RST with unread data)
    client abort                                # SO_LINGER {1, 0} then close(): RST, no TIME_WAIT
    client setsockopt SO_LINGER 1 0             # also SO_KEEPALIVE on, TCP_KEEPIDLE 10, TCP_KEEPINTVL 5,
                                                # TCP_KEEPCNT 3, TCP_NODELAY 1, TCP_MAXSEG 536,
                                                # SO_RCVBUF 4096, SO_SNDBUF 8192, SO_REUSEADDR 1
    server sysctl tcp_syncookies = 0            # a setting (sysctl) on one host; `both sysctl ...` on
                                                # both; the net.ipv4. prefix may be written or not

The calls act on the host's current connection: the newest one its program has not closed.

Hosts and the wire::

    server crash                                # power cut: sends nothing, hears nothing
    server reboot                               # back, with no connections and no listener
                                                # (also written: crash server, reboot server)
    drop next [N] [SYN|SYN-ACK|ACK|FIN|RST|data|pure-ACK] [from client]   # default: 1 segment, any
    impair [from client|both] delay 50 ms jitter 5 ms loss 10% duplicate 1% reorder 2% corrupt 1%
           rate 125000                          # rate in bytes per second; each link direction is
                                                # 10 ms long unless you change its delay
    partition on|off                            # pull / replug the cable
    syn flood 100 [to server] [port 8080]       # SYNs from spoofed addresses that never answer
    inject [S] from client seq -100000 [ack N] [win N] [len N | "text"]
                                                # a hand-made segment on the client's current
                                                # connection (an old duplicate SYN...); seq is
                                                # relative to its ISN, ack to the peer's ISN

Time (virtual: waiting two hours costs nothing)::

    wait 3 s                                    # also ms, min, h
    wait until 10 s                             # until 10 s after the lesson began
    run until client is ESTABLISHED [within 5 s]
    run until server has 3 in TIME_WAIT [within 70 s]     # also: at least 3, at most 0
    run until server sends [F.] [within 2 s]               # any segment pattern (below)
    show client cwnd ssthresh                   # print fields of the connection into the trace
    pause                                       # autoplay stops after this step for the viewer

`run until` stops as soon as the condition holds (default limit 600 s); if it never does, that is a
failure, reported with its line. `repeat N` ... `end` runs the lines between N times (no `say:` inside).

Expectations (each one is a check: PASS or FAIL with its line)::

    expect client state ESTABLISHED [at 0.02 s] # also: expect client is ESTABLISHED
    expect server has 3 in TIME_WAIT            # also: at least 3, at most 0, no connections
    expect client sends [S] seq 0 at 3 s        # a segment sent since the lesson began
    expect client sends [S] 7 times             # also once, twice, never, at least 2 times;
    expect client sends [S] twice in this step  #   `in this step`: only since this step began
    expect connect error ECONNREFUSED           # the last connect() (on any host) failed so
    expect client send error EPIPE [at 5 s]     # calls: connect accept send recv shutdown close
    expect client recv ok                       #        listen bind setsockopt
    expect server received 1000 bytes           # or: received "hello"
    expect client cwnd >= 20                    # a field of the host's connection: cwnd ssthresh mss
                                                # peer_mss advmss snd_wnd rcv_wnd snd_wscale rcv_wscale
                                                # flight retransmits total_retrans backoff probes_out
                                                # send_buffered recv_buffered unsent sack timestamps
                                                # keepalive rto srtt rttvar (times: 200 ms), and of
                                                # its listener: syn_queue accept_queue backlog;
                                                # = != < <= > >= (default =)

A host's **state** is the state of the connection its program last worked with, even after close()
(so an actively closing client is in FIN_WAIT_1, FIN_WAIT_2, TIME_WAIT, then CLOSED); LISTEN when it only
has a listener; CLOSED when it has nothing (or is down). Half-open requests in a listener's SYN queue are
not the program's connections: count them with `has 1 in SYN_RCVD`.

**Segment patterns** (after `<host> sends`): tcpdump flags in brackets, exact (`[S]`, `[S.]`, `[.]`,
`[P.]`, `[F.]`, `[R]`, `[R.]`), or a kind (`SYN`, `SYN-ACK`, `ACK`, `FIN`, `RST`, `data`, `pure-ACK`,
`segment`), then any of: `seq N`, `ack N` (relative, as the trace prints them), `len N`, `win N`,
`mss N`, `wscale N`, `sackOK`, `tag "retransmission"` (the trace's Wireshark-style tags: "fast
retransmission", "duplicate ACK", "keep-alive", "zero window", "window update", "reused ports"...),
`to <host>`, a fate (`delivered`,
`dropped`, `lost`, `partitioned`, `host-down`, `no-route`, ...), `at T`. The sender may also be `spoofed`
(the SYN flood).

**Times in expectations** are compared at the precision written: `at 63 s` means 62.5 s <= t < 63.5 s,
`at 63.01 s` means within 5 ms of 63.01 s, `at 200 ms` within half a millisecond. Times are stack time
since the lesson started, as the trace prints them.

Errors. The whole file is parsed before anything runs; every problem is reported as
`file:line:col: message (expected ...)`.

A complete example::

    title: Connection refused
    title.zh: 连接被拒绝
    description: Nobody listens on the port, so the server's TCP answers the SYN with a RST.
    description.zh: 端口上没有人监听，服务器的 TCP 用 RST 回答 SYN。

    say: Nothing listens on port 9999 of the server. The client connects anyway.
    say.zh: 服务器的 9999 端口上没有程序监听。客户端照样发起连接。
    client connect port 9999
    run until client is CLOSED within 1 s

    say: The server's TCP answers with RST+ACK (ack = the SYN's seq + 1); connect() fails.
    say.zh: 服务器的 TCP 回一个 RST+ACK（ack = SYN 的序号 + 1），connect() 失败。
    expect server sends [R.] ack 1
    expect client connect error ECONNREFUSED at 0.02 s
    expect client state CLOSED

Headless: `tcpplay demo NAME|FILE --headless [--lang zh] [--format json] [--seed N]` prints the narration
(`# ...`), the segments (tcpdump style, relative numbers), state changes and calls with virtual
timestamps, each check as it happens (`✓` / `✗`), then PASS/FAIL for every check with its line. Exit code
0 only if all pass, 1 if one fails, 2 for an unknown lesson or a file with errors. `--format json` prints
one object per line: "scenario", then "segment", "state", "narration", "action", "info", "error", then a
"check" per expectation and a final "summary". The same seed always prints the same bytes, and the
catalog's lessons pass with any seed. `tcpplay demo --list` lists the lessons; `tcpplay demo NAME`
plays one in the app.

Every catalog lesson is run by the test suite and its English output compared with
`tests/scenarios/golden/NAME.txt`; after an intended change, `TCPPLAY_UPDATE_GOLDEN=1 pytest
tests/scenarios` rewrites them (review the diff).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from .model import Scenario
from .parser import ScenarioSyntaxError, parse_file, parse_text, scenario_name

__all__ = [
    "CATALOG_DIR",
    "Scenario",
    "ScenarioSyntaxError",
    "UnknownScenario",
    "catalog",
    "catalog_paths",
    "load",
    "parse_file",
    "parse_text",
]

CATALOG_DIR = Path(__file__).with_name("catalog")


class UnknownScenario(LookupError):
    """A name that is neither a catalog lesson nor a file; `suggestions` are close catalog names."""

    def __init__(self, name: str, suggestions: list[str], names: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        self.names = names
        if suggestions:
            hint = "did you mean " + ", ".join(suggestions) + "?"
        else:
            hint = "the lessons are: " + ", ".join(names)
        super().__init__(f"no lesson named {name!r}; {hint} (tcpplay demo --list shows them all)")


def catalog_paths() -> list[Path]:
    """The built-in lesson files, in catalog order (their numeric prefixes)."""
    return sorted(CATALOG_DIR.glob("*.tcp"))


def catalog() -> list[Scenario]:
    """Every built-in lesson, parsed, in catalog order."""
    return [parse_file(path) for path in catalog_paths()]


def load(name_or_path: str) -> Scenario:
    """A catalog lesson by name (`handshake`), or a scenario file by path (anything ending in .tcp or an
    existing file). Raises UnknownScenario, ScenarioSyntaxError or OSError."""
    by_name = {scenario_name(str(path)): path for path in catalog_paths()}
    if name_or_path in by_name:
        return parse_file(by_name[name_or_path])
    if name_or_path.endswith(".tcp") or os.path.exists(name_or_path):
        return parse_file(name_or_path)
    names = list(by_name)
    suggestions = difflib.get_close_matches(name_or_path, names, n=3, cutoff=0.5)
    if not suggestions:
        suggestions = [n for n in names if name_or_path.lower() in n][:3]
    raise UnknownScenario(name_or_path, suggestions, names)
