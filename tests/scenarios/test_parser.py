"""The scenario parser: what it accepts, and every error message, exactly, with file:line:col."""

# ruff: noqa: E501 - the tables hold whole error messages, which are long by design

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from stack import State
from stack.congestion import CONTROLLERS
from tcpplay.scenarios import parse_file, parse_text
from tcpplay.scenarios.model import (
    Connect,
    Count,
    ExpectCall,
    ExpectCount,
    ExpectField,
    ExpectReceived,
    ExpectSegment,
    ExpectState,
    Impair,
    Inject,
    Listen,
    Repeat,
    RunUntil,
    SegmentSeen,
    Send,
    SetSockOpt,
    Show,
    StateIs,
    Sysctl,
    TimeSpec,
    Wait,
)
from tcpplay.scenarios.parser import ScenarioSyntaxError, scenario_name

HEAD = "title: T\nsay: x\n"


def errors(text: str) -> list[str]:
    with pytest.raises(ScenarioSyntaxError) as info:
        parse_text(text, "lesson.tcp")
    return str(info.value).splitlines()


def command(line: str) -> Any:
    scenario = parse_text(HEAD + line + "\n", "lesson.tcp")
    (cmd,) = scenario.steps[0].commands
    return cmd


# ----------------------------------------------------------------------------------------------------------
# one bad line after a valid header: (the line, the whole message)

LINE_ERRORS = [
    ('client send "abc', 'lesson.tcp:3:13: this string has no closing quote (expected a " before the end)'),
    (
        'client send "a\\qb"',
        "lesson.tcp:3:15: unknown escape '\\\\q' in a string (expected \\n, \\r, \\t, \\\", \\\\ or \\0)",
    ),
    (
        "expect client sends [S",
        "lesson.tcp:3:21: these flags have no closing bracket (expected flags like [S.] or [F.])",
    ),
    (
        "client send 5 bytes !",
        "lesson.tcp:3:21: unexpected character '!' (expected words, numbers, \"text\" or [flags])",
    ),
    ("client connect to", "lesson.tcp:3:18: the line ends too early (expected host: client or server)"),
    ("client close now", 'lesson.tcp:3:14: unexpected "now" (expected the end of the line)'),
    (
        "client conect",
        'lesson.tcp:3:8: unknown action "conect", did you mean connect? (expected listen, stop, connect, accept, auto-accept, auto-read, send, recv, shutdown, close, abort, setsockopt, sysctl, crash or reboot)',
    ),
    (
        "wiat 3 s",
        'lesson.tcp:3:1: unknown command "wiat", did you mean wait? (expected client, server, both, drop, impair, partition, syn, inject, wait, run, show, crash, reboot, pause, repeat, end or expect)',
    ),
    ("server listen 80.5", "lesson.tcp:3:15: 80.5 is not a whole number (expected a port number)"),
    (
        "server listen 70000",
        "lesson.tcp:3:15: 70000 is out of range (expected a port number, from 1 to 65535)",
    ),
    ("wait -1 s", "lesson.tcp:3:6: a time cannot be negative (expected a time like 3 s or 200 ms)"),
    ("wait 3", "lesson.tcp:3:7: this time has no unit (expected a unit after the number: s, ms, min or h)"),
    (
        "impair loss 10",
        "lesson.tcp:3:15: a percentage needs a % sign (expected a percentage for loss, like 10%)",
    ),
    ("impair loss 150%", "lesson.tcp:3:13: 150% is out of range (expected a percentage from 0% to 100%)"),
    (
        "expect client sends []",
        "lesson.tcp:3:21: empty flags [] (expected flags like [S], [S.], [.], [P.], [F.] or [R.])",
    ),
    (
        "expect client sends [SX]",
        "lesson.tcp:3:23: unknown flag 'X' in [SX] (expected tcpdump letters: S F R P . U E W)",
    ),
    (
        "expect client sends [S] seq 1.5",
        "lesson.tcp:3:25: seq takes a whole number (expected a number like 1)",
    ),
    (
        "expect client sends [.] tag keep-alive",
        'lesson.tcp:3:29: unexpected "keep-alive" (expected a tag in quotes, like "retransmission" or "keep-alive")',
    ),
    (
        "run until spoofed is CLOSED",
        "lesson.tcp:3:22: spoofed hosts have no state (expected client or server before is/has)",
    ),
    (
        "syn flood 10 from client",
        'lesson.tcp:3:14: unexpected "from" (expected to <host>, port <number> or the end of the line)',
    ),
    (
        "inject from client",
        'lesson.tcp:3:8: unexpected "from" (expected the flags of the segment to inject, like [S] or [R.])',
    ),
    (
        "inject [S] from client window 5",
        'lesson.tcp:3:24: unexpected "window" (expected seq N, ack N, win N, len N, "text" or the end of the line)',
    ),
    (
        "server listen 8080 fast",
        'lesson.tcp:3:20: unexpected "fast" (expected a port, backlog N, without SO_REUSEADDR or the end of the line)',
    ),
    (
        "client connect quickly",
        'lesson.tcp:3:16: unexpected "quickly" (expected to <host>, port N, from port N or the end of the line)',
    ),
    ("client connect to client", "lesson.tcp:3:25: client cannot connect to itself (expected to server)"),
    ('client send ""', 'lesson.tcp:3:13: nothing to send (expected "text" or N bytes)'),
    (
        "server sysctl tcp_syncookie = 0",
        'lesson.tcp:3:15: unknown sysctl "tcp_syncookie", did you mean tcp_syncookies? (expected a setting such as tcp_syncookies, tcp_tw_reuse or tcp_keepalive_time)',
    ),
    (
        "server sysctl tcp_syncookies =",
        "lesson.tcp:3:31: sysctl tcp_syncookies needs a value (expected a value after tcp_syncookies =)",
    ),
    (
        "server sysctl tcp_syn_retries = 0",
        "lesson.tcp:3:33: 0 is out of range for tcp_syn_retries (expected a whole number from 1 to 127, like 6)",
    ),
    (
        "expect client",
        "lesson.tcp:3:14: the line ends too early (expected state, is, has, sends, received, a call (connect, send...) or a field (cwnd, mss...))",
    ),
    (
        "expect spoofed state CLOSED",
        "lesson.tcp:3:16: spoofed hosts only send (expected sends after spoofed)",
    ),
    (
        "expect client colour blue",
        'lesson.tcp:3:15: cannot expect "colour" (expected state, is, has, sends, received, a call (connect, send...) or a field (cwnd, mss...))',
    ),
    (
        "expect connect error ECONNREFUSE",
        'lesson.tcp:3:22: unknown errno "ECONNREFUSE", did you mean ECONNREFUSED? (expected an errno name such as ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE or EADDRINUSE)',
    ),
    (
        "expect client state ESTABLISH",
        'lesson.tcp:3:21: unknown state "ESTABLISH", did you mean ESTABLISHED? (expected CLOSED, LISTEN, SYN_SENT, SYN_RCVD, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK or TIME_WAIT)',
    ),
    (
        "expect client sends SYNACK",
        'lesson.tcp:3:21: unknown segment kind "SYNACK", did you mean SYN-ACK? (expected SYN, SYN-ACK, ACK, FIN, RST, data or pure-ACK)',
    ),
    (
        "client setsockopt SO_LINGR 1 0",
        'lesson.tcp:3:19: unknown socket option "SO_LINGR", did you mean SO_LINGER? (expected SO_REUSEADDR, SO_KEEPALIVE, SO_LINGER, SO_RCVBUF, SO_SNDBUF, TCP_NODELAY, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT or TCP_MAXSEG)',
    ),
    (
        "impair lossy 5%",
        'lesson.tcp:3:8: unknown impairment "lossy", did you mean loss? (expected delay, jitter, loss, duplicate, reorder, corrupt or rate)',
    ),
    ("drop nxt SYN", 'lesson.tcp:3:6: unexpected "nxt" (expected next)'),
    (
        "run until client is",
        "lesson.tcp:3:20: the line ends too early (expected state: CLOSED, LISTEN, SYN_SENT, SYN_RCVD, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK or TIME_WAIT)",
    ),
    (
        "expect client sends [S] 3",
        "lesson.tcp:3:26: the line ends too early (expected times after the number, as in 3 times)",
    ),
    ("expect client cwnd >=", "lesson.tcp:3:22: the line ends too early (expected a number for cwnd)"),
    ("expect client sack maybe", 'lesson.tcp:3:20: unexpected "maybe" (expected on or off for sack)'),
    ("end", "lesson.tcp:3:1: end without repeat (expected a repeat N line before it)"),
    (
        "server sysctl net.ipv4.tcp_fin_timeout = abc",
        "lesson.tcp:3:42: bad value 'abc' for tcp_fin_timeout (expected a whole number of at least 0, like 60)",
    ),
    (
        "expect client sends [S] 3 times in that step",
        'lesson.tcp:3:36: unexpected "that" (expected in this step)',
    ),
    (
        "client send 客户端",
        "lesson.tcp:3:13: unexpected character '客' (expected words, numbers, \"text\" or [flags])",
    ),
    (
        "show client",
        "lesson.tcp:3:12: the line ends too early (expected field: cwnd, ssthresh, mss, advmss, peer_mss, snd_wnd, rcv_wnd, snd_wscale, rcv_wscale, flight, backoff, retransmits, total_retrans, send_buffered, recv_buffered, unsent, probes_out, syn_queue, accept_queue, backlog, sack, timestamps, keepalive, rto, srtt or rttvar)",
    ),
    (
        "show client color",
        'lesson.tcp:3:13: unknown field "color" (expected cwnd, ssthresh, mss, advmss, peer_mss, snd_wnd, rcv_wnd, snd_wscale, rcv_wscale, flight, backoff, retransmits, total_retrans, send_buffered, recv_buffered, unsent, probes_out, syn_queue, accept_queue, backlog, sack, timestamps, keepalive, rto, srtt or rttvar)',
    ),
    ("both listen", 'lesson.tcp:3:6: unknown action "listen" (expected sysctl)'),
    ("repeat 0", "lesson.tcp:3:8: 0 is out of range (expected how many times, like 5, from 1 to 10000)"),
    ("wait until", "lesson.tcp:3:11: the line ends too early (expected a time like 3 s or 200 ms)"),
    (
        "expect client received",
        'lesson.tcp:3:23: the line ends too early (expected a number of bytes, like 1000 bytes, or "text")',
    ),
    (
        "client shutdown both",
        'lesson.tcp:3:17: unknown shutdown mode "both" (expected wr, rd, rdwr, SHUT_WR, SHUT_RD or SHUT_RDWR)',
    ),
    (
        "expect client rto 200",
        "lesson.tcp:3:22: this time has no unit (expected a unit after the number: s, ms, min or h)",
    ),
    ("expect client has 3 connections at TIME_WAIT", 'lesson.tcp:3:33: unexpected "at" (expected in)'),
    (
        "server sysctl tcp_rmem = 1 2",
        "lesson.tcp:3:26: bad value '1 2' for tcp_rmem (expected 3 whole numbers of at least 1, like 4096 131072 6291456)",
    ),
    (
        "client sysctl ip_local_port_range = 5 1",
        "lesson.tcp:3:37: bad range '5 1' for ip_local_port_range (expected the low port first, like 32768 60999)",
    ),
]


@pytest.mark.parametrize(("line", "message"), LINE_ERRORS)
def test_line_error(line: str, message: str) -> None:
    assert errors(HEAD + line + "\n") == [message]


FILE_ERRORS = [
    (
        "title: T\nsay: x\nrepeat 3\n  wait 1 s\n",
        "lesson.tcp:3:1: this repeat has no end (expected a line with end after it)",
    ),
    (
        "title: T\nsay: x\nrepeat 3\npause\nend\n",
        "lesson.tcp:4:1: pause cannot be inside a repeat (expected it after end)",
    ),
    (
        "title: T\npause\nsay: x\n",
        "lesson.tcp:2:1: pause before the first step (expected a say: line before it)",
    ),
    (
        "title: T\nstep: A\nwait 1 s\nsay: x\n",
        "lesson.tcp:2:1: step: has no narration (expected a say: line right after it)",
    ),
    (
        "title: T\nsay: x\nstep: A\n",
        "lesson.tcp:3:1: step: has no narration (expected a say: line right after it)",
    ),
    (
        "title: T\nstep: A\nstep: B\nsay: x\n",
        "lesson.tcp:2:1: step: has no narration (expected a say: line right after it)",
    ),
    (
        "title: T\nstep.zh: 甲\nsay: x\n",
        "lesson.tcp:2:1: step.zh: must come right after the step: it translates (expected step: first)",
    ),
    (
        "title: T\nsay: x\nwait 1 s\nsay.zh: 甲\n",
        "lesson.tcp:4:1: say.zh: must come right after the say: line it translates (expected say: first)",
    ),
    (
        "title: T\nsay: x\nsay.zh: 甲\nsay.zh: 乙\n",
        "lesson.tcp:4:1: say.zh: is given twice for this step (expected it once)",
    ),
    (
        "title: T\nsay.zh: 甲\nsay: x\n",
        "lesson.tcp:2:1: say.zh: must come right after the say: line it translates (expected say: first)",
    ),
    ("title: T\nsay: x\ntitle: U\n", "lesson.tcp:3:1: title: comes too late (expected it before any step)"),
    (
        "title: T\ntitle: U\nsay: x\n",
        "lesson.tcp:2:1: title: is given twice (expected it once, as on line 1)",
    ),
    (
        "title: T\ndescription.zh: a\ndescription.zh: b\nsay: x\n",
        "lesson.tcp:3:1: description.zh: is given twice (expected it once, as on line 2)",
    ),
    (
        "title: T\nsay: x\nrepeat 2\nsay: y\nend\n",
        "lesson.tcp:4:1: say: cannot be inside a repeat (expected end before it)",
    ),
    ("title:\nsay: x\n", "lesson.tcp:1:1: title: is empty (expected some words after title:)"),
    ("title: T\nsay:\n", "lesson.tcp:2:1: say: is empty (expected some words after say:)"),
    ("title: T\nsay: x\nsay.zh:\n", "lesson.tcp:3:1: say.zh: is empty (expected some words after say.zh:)"),
    (
        "title: T\nsay.zh_cn: x\nsay: y\n",
        'lesson.tcp:2:5: bad language "zh_cn" (expected a language code like zh, en or zh-tw)',
    ),
    (
        "titel: T\nsay: x\n",
        'lesson.tcp:1:1: unknown heading "titel:", did you mean title? (expected title:, description:, step: or say:)',
    ),
    ("say: x\n", "lesson.tcp:1:1: the file has no title (expected a first line like title: The handshake)"),
    ("title: T\nwait 1 s\n", "lesson.tcp:3:1: the file has no steps (expected at least one say: line)"),
]


@pytest.mark.parametrize(("text", "message"), FILE_ERRORS)
def test_file_error(text: str, message: str) -> None:
    assert errors(text) == [message]


def test_every_problem_is_reported_in_line_order() -> None:
    text = HEAD + "expect client state NOPE\nwiat 1 s\nclient conect\n"
    found = errors(text)
    assert [line.split(":")[1] for line in found] == ["3", "4", "5"]
    assert found[0].startswith('lesson.tcp:3:21: unknown state "NOPE"')


def test_problems_found_at_the_end_are_sorted_in() -> None:
    found = errors(HEAD + "repeat 2\nwiat 1 s\n")
    assert found[0] == "lesson.tcp:3:1: this repeat has no end (expected a line with end after it)"
    assert found[1].startswith('lesson.tcp:4:1: unknown command "wiat"')


def test_empty_file_reports_both_missing_parts() -> None:
    assert errors("") == [
        "lesson.tcp:1:1: the file has no title (expected a first line like title: The handshake)",
        "lesson.tcp:1:1: the file has no steps (expected at least one say: line)",
    ]


def test_nothing_is_returned_half_parsed() -> None:
    """A file with one bad line among good ones yields no Scenario at all."""
    with pytest.raises(ScenarioSyntaxError) as info:
        parse_text(HEAD + "server listen\nclient connect\nwait 3 parsecs\n", "lesson.tcp")
    assert len(info.value.issues) == 1
    assert info.value.issues[0].line == 5


def test_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.tcp"
    path.write_bytes(b"title: T\nsay: caf\xe9\n")
    with pytest.raises(ScenarioSyntaxError) as info:
        parse_file(path)
    assert str(info.value) == f"{path}:2:9: this is not UTF-8 text (expected a file saved as UTF-8)"


# ----------------------------------------------------------------------------------------------------------
# what good input becomes


def test_texts_steps_and_translations() -> None:
    scenario = parse_text(
        """# a comment
title: The handshake
title.zh: 三次握手
description: First sentence here. Second sentence.
  Continued on the next line.
description.zh: 第一句。第二句，
  接着写。

server listen           # set-up, runs with the first step

step: SYN
step.zh: 第一次握手
say: The client sends
  a SYN.
say.zh: 客户端发送
  SYN。
client connect
pause

say: Next.
""",
        "catalog/07-the-handshake.tcp",
    )
    assert scenario.name == "the-handshake"
    assert scenario.title == {"en": "The handshake", "zh": "三次握手"}
    assert scenario.description["en"] == "First sentence here. Second sentence. Continued on the next line."
    assert scenario.description["zh"] == "第一句。第二句，接着写。"
    assert scenario.summary() == "First sentence here."
    assert scenario.summary("zh") == "第一句。"
    assert scenario.languages == ("en", "zh")
    first, second = scenario.steps
    assert first.narration == {"en": "The client sends a SYN.", "zh": "客户端发送SYN。"}
    assert first.title == {"en": "SYN", "zh": "第一次握手"}
    assert first.pause and not second.pause
    assert [type(c).__name__ for c in first.commands] == ["Listen", "Connect"]
    assert first.commands[0].line == 9
    assert second.title == {"en": "Next."}
    assert second.line == 20


def test_scenario_name() -> None:
    assert scenario_name("a/b/03-three-segment-close.tcp") == "three-segment-close"
    assert scenario_name("mine.tcp") == "mine"


def test_host_commands() -> None:
    assert command("server listen 80 backlog 4 without SO_REUSEADDR") == Listen(
        host="server",
        port=80,
        backlog=4,
        reuseaddr=False,
        line=3,
        text="server listen 80 backlog 4 without SO_REUSEADDR",
    )
    connect = command("client connect to server port 5000 from port 6000")
    assert isinstance(connect, Connect) and (connect.to, connect.port, connect.bind_port) == (
        "server",
        5000,
        6000,
    )
    assert command("server connect").to == "client"
    send = command('client send "GET /\\r\\n\\"x\\""')
    assert isinstance(send, Send) and send.data == b'GET /\r\n"x"'
    assert command("client send 30 bytes").data == b"abcdefghijklmnopqrstuvwxyzabcd"
    assert command("client setsockopt SO_LINGER 1 0") == SetSockOpt(
        host="client", name="SO_LINGER", value=(1, 0), line=3, text="client setsockopt SO_LINGER 1 0"
    )
    assert command("client setsockopt so_keepalive on").value == 1
    sysctl = command("both sysctl net.ipv4.tcp_rmem = 4096 87380 6291456")
    assert isinstance(sysctl, Sysctl) and (sysctl.host, sysctl.name, sysctl.value) == (
        "both",
        "tcp_rmem",
        "4096 87380 6291456",
    )
    assert command("server sysctl tcp_syncookies 0").value == "0"


def test_link_and_time_commands() -> None:
    impair = command("impair from client delay 50 ms loss 10% rate 1000")
    assert isinstance(impair, Impair)
    assert impair.direction == "client"
    assert impair.values == (("delay", 0.05), ("loss", 0.1), ("rate", 1000.0))
    assert command("impair from both jitter 1ms").direction == "any"
    drop = command("drop next 3 SYN-ACK from server")
    assert (drop.direction, drop.kind, drop.count) == ("server", "SYN-ACK", 3)
    assert (command("drop next").kind, command("drop next").direction) == ("any", "any")
    reordered = command("drop next from client pure-ACK")
    assert (reordered.direction, reordered.kind, reordered.count) == ("client", "pure-ACK", 1)
    assert command("drop next 2 data segments from server").count == 2
    inject = command('inject [R.] from client seq -5 ack 7 win 0 "x"')
    assert isinstance(inject, Inject)
    assert (inject.flags, inject.seq, inject.ack, inject.window, inject.payload) == (0x14, -5, 7, 0, b"x")
    wait = command("wait until 1.5 min")
    assert isinstance(wait, Wait) and wait.until and wait.duration == TimeSpec(Decimal("1.5"), "min")
    assert wait.duration.us == 90_000_000
    run = command("run until server has at least 2 connections in TIME_WAIT within 70 s")
    assert isinstance(run, RunUntil)
    assert run.within.us == 70_000_000
    assert command("run until client is ESTABLISHED").condition == StateIs(
        host="client", state=State.ESTABLISHED
    )
    assert command("run until client is established").within.us == 600_000_000
    segment = command('run until client sends [F.] seq 1 tag "retransmission"').condition
    assert isinstance(segment, SegmentSeen)
    assert (segment.pattern.flags, segment.pattern.seq, segment.pattern.tag) == (0x11, 1, "retransmission")
    repeat = command("repeat 2 times\n  wait 1 s\n  client send 1 byte\nend")
    assert isinstance(repeat, Repeat) and repeat.count == 2 and len(repeat.body) == 2
    assert command("show client cwnd ssthresh") == Show(
        host="client", fields=("cwnd", "ssthresh"), line=3, text="show client cwnd ssthresh"
    )


def test_expectations() -> None:
    state = command("expect client is CLOSED at 127 s")
    assert isinstance(state, ExpectState) and state.state is State.CLOSED and state.at is not None
    count = command("expect server has no connections in TIME_WAIT")
    assert isinstance(count, ExpectCount) and count.count == Count(op="=", n=0)
    assert command("expect server has at most 2 in SYN_RCVD").count == Count(op="<=", n=2)
    seg = command(
        "expect server sends [S.] ack 1 mss 1460 wscale 7 sackOK win 65160 len 0 to client lost at 3 s at least 2 times in this step"
    )
    assert isinstance(seg, ExpectSegment)
    p = seg.pattern
    assert (p.src, p.dst, p.flags, p.ack, p.mss, p.wscale, p.sack_ok, p.window, p.length, p.fate) == (
        "server",
        "client",
        0x12,
        1,
        1460,
        7,
        True,
        65160,
        0,
        "lost",
    )
    assert seg.times == Count(op=">=", n=2) and seg.this_step
    assert command("expect spoofed sends SYN never").times == Count(op="=", n=0)
    assert command("expect client sends data once").pattern.kind == "data"
    call = command("expect connect error econnrefused at 20 ms")
    assert isinstance(call, ExpectCall) and call.host is None and call.errno_name == "ECONNREFUSED"
    assert command("expect server recv ok").errno_name is None
    field = command("expect client rto >= 200 ms")
    assert isinstance(field, ExpectField) and (field.op, field.value, field.shown) == (
        ">=",
        200_000,
        "200 ms",
    )
    assert command("expect client sack on").value == 1
    assert command("expect client cwnd == 10").op == "="
    received = command('expect server received "hi"')
    assert isinstance(received, ExpectReceived) and received.data == b"hi"
    assert command("expect server received 10 bytes").size == 10


@pytest.mark.parametrize(
    ("written", "inside", "outside"),
    [
        ("63 s", [62_500_000, 63_499_999], [62_499_999, 63_500_000]),
        ("63.01 s", [63_005_000, 63_014_999], [63_004_999, 63_015_000]),
        ("200 ms", [199_500, 200_499], [199_499, 200_500]),
        ("2 h", [7_200_000_000], [5_399_999_999]),
    ],
)
def test_times_compare_at_the_precision_written(written: str, inside: list[int], outside: list[int]) -> None:
    value, unit = written.split()
    spec = TimeSpec(Decimal(value), {"s": "s", "ms": "ms", "h": "h"}[unit])
    assert all(spec.matches(t) for t in inside)
    assert not any(spec.matches(t) for t in outside)


def test_unknown_congestion_control_lists_what_the_stack_has() -> None:
    names = sorted(CONTROLLERS)
    expected = ", ".join(names[:-1]) + " or " + names[-1]
    assert errors(HEAD + "server sysctl tcp_congestion_control = vegas\n") == [
        f"lesson.tcp:3:40: unknown tcp_congestion_control 'vegas' (expected {expected})"
    ]


def test_drop_next_errors() -> None:
    assert errors(HEAD + "drop next SYN FIN\n") == [
        'lesson.tcp:3:15: unexpected "FIN" (expected a segment kind, from <host> or the end of the line)'
    ]
    assert errors(HEAD + "drop next from client from server\n") == [
        'lesson.tcp:3:23: unexpected "from" (expected a segment kind, from <host> or the end of the line)'
    ]


def test_crash_and_reboot_in_either_order() -> None:
    assert type(command("crash server")).__name__ == "Crash"
    assert command("reboot client").host == "client"
    assert command("server crash").host == "server"
