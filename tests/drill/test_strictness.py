"""The runner must not be lenient: a known-good script with exactly one thing wrong must fail, at the line
with the mistake, saying what differs.

Each case replaces one piece of text of a passing base script. The base scripts first pass as they are
(`test_bases_pass`); every mutation then fails with status FAIL (or ERROR / UNSUPPORTED for script
problems) at the mutated line, with the named words in the reason.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from tcpplay.drill import cli
from tcpplay.drill.parser import parse_text
from tcpplay.drill.report import FileResult, ScriptResult, Status, render_text
from tcpplay.drill.runner import run_script

# A server with timestamps: handshake, data both ways, a delayed ACK, passive close.
SERVER_TS = """\
`sysctl -q net.ipv4.tcp_rmem="4096 131072 6291456"`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 8) = 0
   +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
   +0 accept(3, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)
//= SUT: LISTEN
  +.1 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 5000 ecr 0,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,sackOK,TS val 100 ecr 5000,nop,wscale 7>
//= SUT: SYN_RCVD
  +.1 < . 1:1(0) ack 1 win 502 <nop,nop,TS val 5100 ecr 100>
//= SUT: ESTABLISHED
   +0 accept(3, ..., ...) = 4
  +.1 < P. 1:101(100) ack 1 win 502 <nop,nop,TS val 5200 ecr 100>
   +0 > . 1:1(0) ack 101 <nop,nop,TS val 200 ecr 5200>
   +0 read(4, ..., 1000) = 100
   +0 write(4, ..., 50) = 50
   +0 > P. 1:51(50) ack 101 <nop,nop,TS val 200 ecr 5200>
  +.1 < F. 101:101(0) ack 51 win 502 <nop,nop,TS val 5300 ecr 200>
 +.04 > . 51:51(0) ack 102 <nop,nop,TS val 240 ecr 5300>
//= SUT: CLOSE_WAIT
   +0 close(4) = 0
   +0 > F. 51:51(0) ack 102 <nop,nop,TS val 240 ecr 5300>
  +.1 < . 102:102(0) ack 52 win 502 <nop,nop,TS val 5400 ecr 240>
//= SUT: LISTEN
"""

# A client without timestamps: windows are checked, segments carry no options; SO_ERROR and SYN retries.
CLIENT = """\
`sysctl -q net.ipv4.tcp_rmem="4096 131072 6291456" net.ipv4.tcp_syn_linear_timeouts=0`
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0
   +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
   +0 > S 0:0(0) win 64240 <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>
   +1 > S 0:0(0) win 64240 <mss 1460,sackOK,TS val 1100 ecr 0,nop,wscale 7>
   +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0
  +.1 < S. 0:0(0) ack 1 win 65535 <mss 1460,nop,nop,sackOK,nop,wscale 7>
   +0 > . 1:1(0) ack 1 win 502
   +0 write(3, ..., 100) = 100
   +0 > P. 1:101(100) ack 1 win 502
  +.1 < . 1:1(0) ack 101 win 512
   +0 shutdown(3, SHUT_WR) = 0
   +0 > F. 101:101(0) ack 1 win 502
   +0 write(3, ..., 10) = -1 EPIPE (Broken pipe)
"""

BASES = {"server-ts": SERVER_TS, "client": CLIENT}


@dataclass(frozen=True)
class Mutation:
    name: str
    base: str
    old: str
    new: str
    words: tuple[str, ...]
    status: Status = Status.FAIL
    line: int | None = None  # the failing line when it is not the mutated one

    def text(self) -> str:
        base = BASES[self.base]
        assert base.count(self.old) == 1, f"{self.name}: {self.old!r} is not unique in {self.base}"
        return base.replace(self.old, self.new)

    def mutated_line(self) -> int:
        """The line of the first character the mutation changed."""
        base, text = BASES[self.base], self.text()
        index = next(i for i, (a, b) in enumerate(zip(base, text, strict=False)) if a != b)
        return text.count("\n", 0, index) + 1


MUTATIONS = [
    # --- segments: header fields
    Mutation(
        "flags-synack-as-syn",
        "server-ts",
        "+0 > S. 0:0(0) ack 1 <mss",
        "+0 > S 0:0(0) ack 1 <mss",
        ("flags [S.] (expected [S])",),
    ),
    Mutation(
        "flags-missing-psh",
        "server-ts",
        "+0 > P. 1:51(50)",
        "+0 > . 1:51(50)",
        ("flags [P.] (expected [.])",),
    ),
    Mutation(
        "flags-extra-psh",
        "server-ts",
        "+0 > . 1:1(0) ack 101",
        "+0 > P. 1:1(0) ack 101",
        ("flags [.] (expected [P.])",),
    ),
    Mutation("flags-fin", "server-ts", "+0 > F. 51:51(0)", "+0 > . 51:51(0)", ("flags [F.] (expected [.])",)),
    Mutation(
        "seq", "server-ts", "+0 > P. 1:51(50) ack 101", "+0 > P. 2:52(50) ack 101", ("seq 1 (expected 2)",)
    ),
    Mutation(
        "payload-length",
        "server-ts",
        "+0 > P. 1:51(50) ack 101",
        "+0 > P. 1:41(40) ack 101",
        ("payload length 50 (expected 40)",),
    ),
    Mutation(
        "ack", "server-ts", "+0 > . 1:1(0) ack 101", "+0 > . 1:1(0) ack 100", ("ack 101 (expected 100)",)
    ),
    Mutation(
        "ack-of-fin",
        "server-ts",
        "+.04 > . 51:51(0) ack 102",
        "+.04 > . 51:51(0) ack 101",
        ("ack 102 (expected 101)",),
    ),
    Mutation(
        "window",
        "client",
        "+0 > P. 1:101(100) ack 1 win 502",
        "+0 > P. 1:101(100) ack 1 win 501",
        ("win 502 (expected 501)",),
    ),
    Mutation(
        "syn-window",
        "client",
        "+0 > S 0:0(0) win 64240 <mss 1460,sackOK,TS val 100",
        "+0 > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100",
        ("win 64240 (expected 65535)",),
    ),
    Mutation(
        "ports",
        "client",
        "+0 > . 1:1(0) ack 1 win 502",
        "+0 > 40000>8080 . 1:1(0) ack 1 win 502",
        ("ports", "expected 40000>8080"),
    ),
    # --- segments: options
    Mutation(
        "option-missing",
        "server-ts",
        "TS val 100 ecr 5000,nop,wscale 7>",
        "TS val 100 ecr 5000,nop>",
        ("extra 'wscale 7' at position 5",),
    ),
    Mutation(
        "option-extra",
        "server-ts",
        "TS val 100 ecr 5000,nop,wscale 7>",
        "TS val 100 ecr 5000,nop,wscale 7,nop>",
        ("'nop' missing at position 6",),
    ),
    Mutation(
        "option-value-wscale",
        "server-ts",
        "TS val 100 ecr 5000,nop,wscale 7>",
        "TS val 100 ecr 5000,nop,wscale 8>",
        ("'wscale 7' instead of 'wscale 8'",),
    ),
    Mutation(
        "option-value-mss",
        "server-ts",
        "> S. 0:0(0) ack 1 <mss 1460",
        "> S. 0:0(0) ack 1 <mss 1400",
        ("'mss 1460' instead of 'mss 1400'",),
    ),
    Mutation(
        "option-order",
        "server-ts",
        "ack 1 <mss 1460,sackOK,TS val 100 ecr 5000,nop,wscale 7>",
        "ack 1 <mss 1460,TS val 100 ecr 5000,sackOK,nop,wscale 7>",
        ("'sackOK' instead of 'TS val * ecr *' at position 2",),
    ),
    Mutation(
        "options-none-written",
        "server-ts",
        "+0 > P. 1:51(50) ack 101 <nop,nop,TS val 200 ecr 5200>",
        "+0 > P. 1:51(50) ack 101",
        ("extra 'nop' at position 1",),
    ),
    Mutation(
        "options-written-none-sent",
        "client",
        "+0 > P. 1:101(100) ack 1 win 502",
        "+0 > P. 1:101(100) ack 1 win 502 <nop,nop,TS val 1 ecr 2>",
        ("'nop' missing at position 1",),
    ),
    # --- system calls
    Mutation(
        "errno",
        "server-ts",
        "= -1 EAGAIN (Resource temporarily unavailable)",
        "= -1 ECONNABORTED (Software caused connection abort)",
        ("failed with EAGAIN, expected ECONNABORTED",),
    ),
    Mutation(
        "errno-epipe",
        "client",
        "= -1 EPIPE (Broken pipe)",
        "= -1 ECONNRESET (Connection reset by peer)",
        ("failed with EPIPE, expected ECONNRESET",),
    ),
    Mutation(
        "return-value",
        "server-ts",
        "write(4, ..., 50) = 50",
        "write(4, ..., 50) = 49",
        ("returned 50, expected 49",),
    ),
    Mutation(
        "return-value-read",
        "server-ts",
        "read(4, ..., 1000) = 100",
        "read(4, ..., 1000) = 99",
        ("returned 100, expected 99",),
    ),
    Mutation(
        "success-expected-error",
        "server-ts",
        "   +0 accept(3, ..., ...) = 4",
        "   +0 accept(3, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)",
        ("returned 4, expected -1 EAGAIN",),
    ),
    Mutation(
        "error-expected-success",
        "client",
        "= -1 EINPROGRESS (Operation now in progress)",
        "= 0",
        ("returned -1 EINPROGRESS",),
    ),
    Mutation(
        "sockopt-value",
        "client",
        "   +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0",
        "   +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ETIMEDOUT], [4]) = 0",
        ("getsockopt() value [0], expected [ETIMEDOUT]",),
    ),
    Mutation(
        "sockopt-length",
        "client",
        "SO_ERROR, [0], [4]) = 0",
        "SO_ERROR, [0], [8]) = 0",
        ("length [4], expected [8]",),
    ),
    # --- states
    Mutation(
        "state-syn-rcvd",
        "server-ts",
        "//= SUT: SYN_RCVD",
        "//= SUT: ESTABLISHED",
        ("is SYN_RCVD, expected ESTABLISHED",),
    ),
    Mutation(
        "state-listen-vs-closed",
        "server-ts",
        "//= SUT: LISTEN\n  +.1 < S",
        "//= SUT: CLOSED\n  +.1 < S",
        ("is LISTEN, expected CLOSED",),
    ),
    Mutation(
        "state-close-wait",
        "server-ts",
        "//= SUT: CLOSE_WAIT",
        "//= SUT: LAST_ACK",
        ("is CLOSE_WAIT, expected LAST_ACK",),
    ),
    Mutation(
        "state-gone",
        "server-ts",
        "  +.1 < . 102:102(0) ack 52 win 502 <nop,nop,TS val 5400 ecr 240>\n//= SUT: LISTEN",
        "  +.1 < . 102:102(0) ack 52 win 502 <nop,nop,TS val 5400 ecr 240>\n//= SUT: TIME_WAIT",
        ("CLOSED (the connection no longer exists", "expected TIME_WAIT"),
    ),
    # --- timing
    Mutation(
        "too-early-delayed-ack",
        "server-ts",
        "+.04 > . 51:51(0) ack 102",
        "+.1 > . 51:51(0) ack 102",
        ("timing error", "too early", "sent at 0.440000 s"),
    ),
    Mutation(
        "too-late-delayed-ack",
        "server-ts",
        "+.04 > . 51:51(0) ack 102",
        "+.02 > . 51:51(0) ack 102",
        ("timing error", "sent nothing by 0.424000 s", "'delayed-ack' at 0.440000 s"),
    ),
    Mutation(
        "too-early-syn-retransmission",
        "client",
        "+1 > S 0:0(0)",
        "+1.5 > S 0:0(0)",
        ("too early", "sent at 1.000000 s", "tolerance 0.187500 s"),
    ),
    Mutation(
        "too-late-syn-retransmission",
        "client",
        "+1 > S 0:0(0)",
        "+.5 > S 0:0(0)",
        ("sent nothing by 0.562500 s", "tolerance 0.062500 s", "'retransmit' at 1.000000 s"),
    ),
    Mutation(
        "immediate-segment-late",
        "server-ts",
        "   +0 > P. 1:51(50)",
        " +.01 > P. 1:51(50)",
        ("too early", "sent at 0.300000 s"),
    ),
    # --- segments that the script does not expect / that never come
    Mutation(
        "extra-segment-before-expected",
        "server-ts",
        "   +0 > . 1:1(0) ack 101 <nop,nop,TS val 200 ecr 5200>\n",
        "",
        ("unexpected outbound segment", "before the expected one"),
        line=18,
    ),
    Mutation(
        "extra-segment-at-end",
        "client",
        "   +0 > F. 101:101(0) ack 1 win 502\n",
        "",
        ("unexpected outbound segment", "the script ended"),
        line=14,
    ),
    Mutation(
        "extra-segment-before-other-statement",
        "server-ts",
        " +.04 > . 51:51(0) ack 102 <nop,nop,TS val 240 ecr 5300>\n//= SUT: CLOSE_WAIT\n   +0 close(4) = 0",
        "//= SUT: CLOSE_WAIT\n  +.1 close(4) = 0",
        ("unexpected outbound segment sent at 0.440000 s",),
        line=22,
    ),
    Mutation(
        "missing-segment",
        "client",
        "   +0 write(3, ..., 10)",
        "   +0 > . 102:102(0) ack 1\n   +0 write(3, ..., 10)",
        ("sent nothing",),
    ),
    # --- script problems
    Mutation(
        "unknown-sysctl",
        "client",
        "net.ipv4.tcp_syn_linear_timeouts=0",
        "net.ipv4.tcp_syn_linear_timeout=0",
        ("unknown sysctl net.ipv4.tcp_syn_linear_timeout",),
        status=Status.ERROR,
    ),
    Mutation(
        "unsupported-syscall",
        "server-ts",
        "   +0 read(4, ..., 1000) = 100",
        "   +0 recvmsg(4, {msg_name(...)=...}, 0) = 100",
        ("unsupported: system call recvmsg() at line 17",),
        status=Status.UNSUPPORTED,
    ),
    Mutation(
        "unsupported-option",
        "server-ts",
        "nop,wscale 7>\n//= SUT: SYN_RCVD",
        "nop,wscale 7,FO abcd>\n//= SUT: SYN_RCVD",
        ("unsupported: TCP Fast Open option 'FO' at line 10",),
        status=Status.UNSUPPORTED,
    ),
    Mutation(
        "unknown-fd",
        "server-ts",
        "   +0 write(4, ..., 50) = 50",
        "   +0 write(7, ..., 50) = 50",
        ("returned -1 EBADF", "expected 50"),
    ),
]


def run(text: str) -> ScriptResult:
    (script,) = parse_text(text, "m.pkt").scripts
    return run_script(script, filename="m.pkt")


@pytest.mark.parametrize("name", sorted(BASES))
def test_bases_pass(name: str) -> None:
    result = run(BASES[name])
    assert result.passed, render_text([FileResult(filename=name, scripts=(result,))])


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_mutation_fails_at_its_line(mutation: Mutation) -> None:
    result = run(mutation.text())
    shown = render_text([FileResult(filename=mutation.name, scripts=(result,))])
    assert result.status is mutation.status, shown
    assert result.failure is not None
    line = mutation.line if mutation.line is not None else mutation.mutated_line()
    assert result.failure.line == line, shown
    for word in mutation.words:
        assert word in result.failure.reason, shown
    if mutation.status is Status.FAIL and result.failure.expected is not None:
        assert result.failure.actual is not None, shown


def test_every_failure_renders_line_expected_actual() -> None:
    mutation = next(m for m in MUTATIONS if m.name == "ack")
    result = run(mutation.text())
    text = render_text([FileResult(filename="m.pkt", scripts=(result,))])
    lines = text.splitlines()
    assert lines[0] == "FAIL  m.pkt line 16: +0 > . 1:1(0) ack 100 <nop,nop,TS val 200 ecr 5200>"
    assert lines[1] == "  reason:   outbound segment does not match: ack 101 (expected 100)"
    assert lines[2].startswith("  expected: 192.168.0.1.8080 > 192.0.2.1.40000: Flags [.], ack 100, win *")
    assert lines[3].startswith("  actual:   192.168.0.1.8080 > 192.0.2.1.40000: Flags [.], ack 101, win 510")
    assert lines[4].startswith("  trace (last 15 of ")
    assert "in " in text and "out " in text


def test_parse_error_is_reported_as_file_line_col(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.pkt"
    path.write_text(CLIENT.replace("+0 > P. 1:101(100) ack 1", "+0 > P. 1:101(99) ack 1"))
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args([str(path)])) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"{path}:11:")
    assert "inconsistent sequence range 1:101(99)" in out
