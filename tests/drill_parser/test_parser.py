"""Tests for tcpplay.drill.parser: the conformance examples, every notation form, errors, fuzzing."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stack import wire
from tcpplay.drill.ast import (
    Array,
    BitOr,
    Call,
    DrillFile,
    EllipsisExpr,
    IntLit,
    Name,
    OptionSpec,
    Packet,
    StateAssert,
    Statement,
    StringLit,
    Struct,
    StructField,
    Syscall,
    Sysctl,
    SysctlSetting,
    TimeSpec,
    Unsupported,
)
from tcpplay.drill.parser import DrillSyntaxError, parse_file, parse_text

EXAMPLES = Path("/work/shared/conformance-examples")
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.txt"))

T = TypeVar("T")

ABS0 = TimeSpec(kind="abs", value=0.0)
REL0 = TimeSpec(kind="rel", value=0.0)


def example(name: str) -> DrillFile:
    return parse_file(EXAMPLES / name)


def one(text: str) -> Statement:
    """The single statement of a plain script."""
    (script,) = parse_text(text, "t.pkt").scripts
    (statement,) = script.statements
    return statement


def error_of(text: str, filename: str = "t.pkt") -> str:
    with pytest.raises(DrillSyntaxError) as info:
        parse_text(text, filename)
    return str(info.value)


def of_type(statements: tuple[Statement, ...], kind: type[T]) -> list[T]:
    return [s for s in statements if isinstance(s, kind)]


# ------------------------------------------------------------------------------- conformance examples


def test_examples_are_present() -> None:
    assert len(EXAMPLE_FILES) >= 8


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_every_example_parses(path: Path) -> None:
    drill = parse_file(path)
    assert drill.id == path.stem
    assert drill.title
    assert drill.filename == str(path)
    assert drill.scripts
    for script in drill.scripts:
        assert script.statements
        sysctl = script.statements[0]
        assert isinstance(sysctl, Sysctl)
        assert SysctlSetting("net.ipv4", "tcp_rmem", "4096 131072 6291456") in sysctl.settings
        lines = [s.line for s in script.statements]
        assert lines == sorted(lines) and lines[0] > script.first_line


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("01-handshake-passive.txt", {"main": 18}),
        ("02-handshake-active.txt", {"main": 15}),
        ("07-lost-syn-retries.txt", {"main": 16, "part B": 17}),
        ("13-active-close-4way.txt", {"main": 27}),
        ("15-three-segment-close.txt", {"main": 23, "part B": 13}),
        ("17-time-wait-duration.txt", {"main": 18}),
        ("21-so-linger-abort.txt", {"main": 22}),
        ("23-keepalive-peer-alive.txt", {"main": 17}),
    ],
)
def test_example_statement_counts(name: str, counts: dict[str, int]) -> None:
    drill = example(name)
    assert {s.name: len(s.statements) for s in drill.scripts} == counts
    for script in drill.scripts:
        assert not of_type(script.statements, Unsupported)


def test_01_nodes() -> None:
    drill = example("01-handshake-passive.txt")
    assert drill.title == ("Passive open - three-way handshake with full option negotiation (server side)")
    setup = drill.field("SETUP")
    assert setup is not None and setup.line == 4
    assert setup.text.startswith("SUT  = stack under test: socket/bind(:8080)/listen(backlog 8)")
    strict = drill.field("STRICT")
    assert strict is not None and strict.qualifier == "[S] (RFC 9293 3.5, 3.10.7.2; RFC 7323; RFC 2018)"
    (script,) = drill.scripts
    assert script.name == "main" and script.first_line == 10  # the comment line after the marker
    statements = script.statements
    assert statements[0] == Sysctl(
        line=11,
        source='`sysctl -q net.ipv4.tcp_rmem="4096 131072 6291456"`',
        settings=(SysctlSetting("net.ipv4", "tcp_rmem", "4096 131072 6291456"),),
    )
    assert statements[1] == Syscall(
        line=12,
        source="0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",
        time=ABS0,
        name="socket",
        args=(EllipsisExpr(), Name("SOCK_STREAM"), Name("IPPROTO_TCP")),
        ret=3,
    )
    fcntl = statements[5]
    assert isinstance(fcntl, Syscall)
    assert fcntl.args == (IntLit(3), Name("F_SETFL"), BitOr((Name("O_RDWR"), Name("O_NONBLOCK"))))
    assert statements[6] == StateAssert(line=17, source="//= SUT: LISTEN", role="SUT", state="LISTEN")
    accept = statements[7]
    assert isinstance(accept, Syscall)
    assert (accept.ret, accept.errno, accept.errno_text) == (-1, "EAGAIN", "Resource temporarily unavailable")
    assert statements[8] == Packet(
        line=20,
        source="+.1 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1000 ecr 0,nop,wscale 7>",
        time=TimeSpec(kind="rel", value=0.1),
        direction="<",
        flags="S",
        start=0,
        end=0,
        length=0,
        win=65535,
        options=(
            OptionSpec("mss", (1460,)),
            OptionSpec("sackOK"),
            OptionSpec("TS", (1000, 0)),
            OptionSpec("nop"),
            OptionSpec("wscale", (7,)),
        ),
    )
    syn_ack = statements[9]
    assert isinstance(syn_ack, Packet)
    assert syn_ack.outbound and syn_ack.flags == "S." and syn_ack.ack == 1 and syn_ack.win is None
    assert syn_ack.flag_bits == wire.SYN | wire.ACK
    assert syn_ack.options is not None and syn_ack.options[2] == OptionSpec("TS", (100, 1000))
    data = statements[16]
    assert isinstance(data, Packet)
    assert (data.flags, data.start, data.end, data.length, data.ack) == ("P.", 1, 101, 100, 1)
    assert data.flag_bits == wire.PSH | wire.ACK
    assert [s.state for s in of_type(statements, StateAssert)] == ["LISTEN", "SYN_RCVD", "ESTABLISHED"]


def test_02_nodes() -> None:
    (script,) = example("02-handshake-active.txt").scripts
    statements = script.statements
    assert statements[5] == Packet(
        line=16,
        source="+0 > S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7>",
        time=REL0,
        direction=">",
        flags="S",
        start=0,
        end=0,
        length=0,
        options=(
            OptionSpec("mss", (1460,)),
            OptionSpec("sackOK"),
            OptionSpec("TS", (100, 0)),
            OptionSpec("nop"),
            OptionSpec("wscale", (7,)),
        ),
    )
    getsockopt = statements[7]
    assert isinstance(getsockopt, Syscall)
    assert getsockopt.args == (
        IntLit(3),
        Name("SOL_SOCKET"),
        Name("SO_ERROR"),
        Array((IntLit(0),)),
        Array((IntLit(4),)),
    )
    connect = statements[4]
    assert isinstance(connect, Syscall)
    assert (connect.ret, connect.errno, connect.errno_text) == (
        -1,
        "EINPROGRESS",
        "Operation now in progress",
    )
    assert [s.state for s in of_type(statements, StateAssert)] == ["CLOSED", "SYN_SENT", "ESTABLISHED"]


def test_07_syn_schedule() -> None:
    drill = example("07-lost-syn-retries.txt")
    part_a, part_b = drill.scripts
    assert (part_a.name, part_a.first_line, part_b.name, part_b.first_line) == ("main", 11, "part B", 33)
    assert drill.script("part B") is part_b
    sysctl = part_a.statements[0]
    assert isinstance(sysctl, Sysctl)
    assert sysctl.settings == (
        SysctlSetting("net.ipv4", "tcp_rmem", "4096 131072 6291456"),
        SysctlSetting("net.ipv4", "tcp_syn_linear_timeouts", "0"),
    )
    syns = [p for p in of_type(part_a.statements, Packet) if p.outbound and p.flags == "S"]
    assert len(syns) == 7
    assert [p.time for p in syns] == [TimeSpec(kind="rel", value=v) for v in (0, 1, 2, 4, 8, 16, 32)]
    assert [p.time.usecs for p in syns] == [
        0,
        1_000_000,
        2_000_000,
        4_000_000,
        8_000_000,
        16_000_000,
        32_000_000,
    ]
    assert all(p.options is None and (p.start, p.end, p.length) == (0, 0, 0) for p in syns)
    last = part_a.statements[-2]
    assert last == Syscall(
        line=29,
        source="+5 getsockopt(3, SOL_SOCKET, SO_ERROR, [ETIMEDOUT], [4]) = 0",
        time=TimeSpec(kind="rel", value=5.0),
        name="getsockopt",
        args=(
            IntLit(3),
            Name("SOL_SOCKET"),
            Name("SO_ERROR"),
            Array((Name("ETIMEDOUT"),)),
            Array((IntLit(4),)),
        ),
        ret=0,
    )
    b_syns = [p for p in of_type(part_b.statements, Packet) if p.outbound]
    assert [p.time.value for p in b_syns] == [0, 1, 1, 1, 1, 1, 2, 4, 8, 16, 32]
    assert not of_type(part_b.statements, StateAssert)


def test_13_nodes() -> None:
    (script,) = example("13-active-close-4way.txt").scripts
    statements = script.statements
    ack = statements[6]
    assert ack == Packet(
        line=16,
        source="+0 > . 1:1(0) ack 1",
        time=REL0,
        direction=">",
        flags=".",
        start=1,
        end=1,
        length=0,
        ack=1,
        options=(),
    )
    shutdown = statements[11]
    assert isinstance(shutdown, Syscall) and shutdown.args == (IntLit(3), Name("SHUT_WR"))
    epipe = statements[14]
    assert isinstance(epipe, Syscall) and (epipe.errno, epipe.errno_text) == ("EPIPE", "Broken pipe")
    fin = statements[12]
    assert isinstance(fin, Packet) and (fin.flags, fin.start, fin.ack) == ("F.", 101, 1)
    assert fin.flag_bits == wire.FIN | wire.ACK
    states = [s.state for s in of_type(statements, StateAssert)]
    assert states == ["ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "FIN_WAIT_2", "TIME_WAIT", "TIME_WAIT"]


def test_15_nodes() -> None:
    part_a, part_b = example("15-three-segment-close.txt").scripts
    read = next(s for s in part_a.statements if isinstance(s, Syscall) and s.time.value == 0.01)
    assert read.time.usecs == 10_000 and read.name == "read" and read.ret == 0
    inbound_syn = part_a.statements[5]
    assert isinstance(inbound_syn, Packet)
    assert inbound_syn.options == (
        OptionSpec("mss", (1460,)),
        OptionSpec("sackOK"),
        OptionSpec("nop"),
        OptionSpec("nop"),
        OptionSpec("nop"),
        OptionSpec("wscale", (7,)),
    )
    assert [s.state for s in of_type(part_b.statements, StateAssert)] == ["FIN_WAIT_1", "TIME_WAIT"]


def test_17_nodes() -> None:
    (script,) = example("17-time-wait-duration.txt").scripts
    old_syn = script.statements[12]
    assert old_syn == Packet(
        line=25,
        source="+59 < S 0:0(0) win 65535 <mss 1460>",
        time=TimeSpec(kind="rel", value=59.0),
        direction="<",
        flags="S",
        start=0,
        end=0,
        length=0,
        win=65535,
        options=(OptionSpec("mss", (1460,)),),
    )
    rst = script.statements[-2]
    assert isinstance(rst, Packet)
    assert (rst.flags, rst.start, rst.ack, rst.options, rst.flag_bits) == ("R", 2, None, (), wire.RST)


def test_21_so_linger() -> None:
    (script,) = example("21-so-linger-abort.txt").scripts
    linger = next(
        s for s in script.statements if isinstance(s, Syscall) and s.name == "setsockopt" and s.line == 23
    )
    assert linger == Syscall(
        line=23,
        source="+0 setsockopt(4, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0",
        time=REL0,
        name="setsockopt",
        args=(
            IntLit(4),
            Name("SOL_SOCKET"),
            Name("SO_LINGER"),
            Struct((StructField("onoff", IntLit(1)), StructField("linger", IntLit(0)))),
            IntLit(8),
        ),
        ret=0,
    )
    struct = linger.args[3]
    assert isinstance(struct, Struct) and struct.get("linger") == IntLit(0) and struct.get("x") is None
    rst_ack = script.statements[15]
    assert isinstance(rst_ack, Packet) and (rst_ack.flags, rst_ack.start, rst_ack.ack) == ("R.", 101, 1)


def test_23_keepalive_times() -> None:
    (script,) = example("23-keepalive-peer-alive.txt").scripts
    probes = [p for p in of_type(script.statements, Packet) if p.outbound and p.time.value == 7200]
    assert len(probes) == 2
    assert probes[0].time.usecs == 7_200_000_000
    assert (probes[0].start, probes[0].end, probes[0].ack) == (0, 0, 1)
    keepalive = script.statements[9]
    assert isinstance(keepalive, Syscall) and keepalive.args[2] == Name("SO_KEEPALIVE")


# ------------------------------------------------------------------------------------- file structure

EXAMPLE_TEXT = """\
TITLE: A test
ID: 99-test
SETUP:
  SUT  = server
--- script ---
`sysctl -q net.ipv4.tcp_rmem="4096 131072 6291456"`
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
--- end ---
--- script part B ---
0 close(3) = 0
--- end ---
TIMING (virtual clock, exact):
  nothing
"""


def test_example_format_structure() -> None:
    drill = parse_text(EXAMPLE_TEXT, "x.txt")
    assert (drill.title, drill.id) == ("A test", "99-test")
    assert [(f.key, f.line) for f in drill.fields] == [("TITLE", 1), ("ID", 2), ("SETUP", 3), ("TIMING", 12)]
    setup = drill.field("SETUP")
    timing = drill.field("TIMING")
    assert setup is not None and setup.text == "SUT  = server"
    assert timing is not None and (timing.qualifier, timing.text) == ("(virtual clock, exact)", "nothing")
    main, part_b = drill.scripts
    assert (main.name, main.first_line, [s.line for s in main.statements]) == ("main", 6, [6, 7])
    assert (part_b.name, part_b.first_line, [s.line for s in part_b.statements]) == ("part B", 10, [10])
    with pytest.raises(KeyError):
        drill.script("part C")


def test_example_without_script_is_a_property_check() -> None:
    drill = parse_text("TITLE: ISNs\nID: 33-isn\nTIMING: n/a\n", "33.txt")
    assert drill.scripts == () and drill.id == "33-isn"


def test_crlf_line_endings() -> None:
    drill = parse_text(EXAMPLE_TEXT.replace("\n", "\r\n"), "x.txt")
    assert [len(s.statements) for s in drill.scripts] == [2, 1]


PLAIN_PKT = """\
// A plain packetdrill script
`../common/defaults.sh`

    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 bind(3, ..., ...) = 0   // trailing comment
   /* a block
      comment */
   +0 listen(3, 1) = 0
  +.1 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <...>
"""


def test_plain_pkt_is_one_script() -> None:
    drill = parse_text(PLAIN_PKT, "plain.pkt")
    assert (drill.title, drill.id, drill.fields) == (None, None, ())
    (script,) = drill.scripts
    assert (script.name, script.first_line) == ("main", 1)
    assert [s.line for s in script.statements] == [2, 4, 5, 8, 9, 10]
    assert script.statements[0] == Unsupported(
        line=2, source="`../common/defaults.sh`", construct="shell command `../common/defaults.sh`"
    )
    bind = script.statements[2]
    assert isinstance(bind, Syscall) and bind.source == "+0 bind(3, ..., ...) = 0   // trailing comment"


def test_parse_file_plain_pkt(tmp_path: Path) -> None:
    path = tmp_path / "x.pkt"
    path.write_text(PLAIN_PKT)
    assert len(parse_file(path).scripts[0].statements) == 6


def test_parse_file_ignores_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + EXAMPLE_TEXT.encode())
    assert parse_file(path).id == "99-test"


def test_parse_file_rejects_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.pkt"
    path.write_bytes(b"0 close(3) = 0\n+0 \xff\n")
    with pytest.raises(DrillSyntaxError) as info:
        parse_file(path)
    assert str(info.value) == f"{path}:2:4: the file is not valid UTF-8"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("TITLE: x\n--- end ---\n", "x.txt:2:1: '--- end ---' without an open '--- script ---'"),
        ("TITLE: x\n--- script ---\n0 close(3) = 0\n", "x.txt:2:1: script has no '--- end ---' line"),
        (
            "TITLE: x\n--- script ---\n--- script part B ---\n--- end ---\n",
            "x.txt:3:1: '--- script ---' inside the script started at line 2 (missing '--- end ---')",
        ),
        (
            "TITLE: x\n--- script ---\n\n  +0 close(3) = x\n--- end ---\n",
            "x.txt:4:17: expected a return value (an integer or '...') after '=', got 'x'",
        ),
    ],
)
def test_example_format_errors(text: str, message: str) -> None:
    assert error_of(text, "x.txt") == message


# ------------------------------------------------------------------------------------------------ times


@pytest.mark.parametrize(
    ("text", "time"),
    [
        ("0 close(3) = 0", ABS0),
        ("1.5 close(3) = 0", TimeSpec(kind="abs", value=1.5)),
        ("+0.1 close(3) = 0", TimeSpec(kind="rel", value=0.1)),
        ("+.1 close(3) = 0", TimeSpec(kind="rel", value=0.1)),
        ("* > . 1:1(0) ack 1", TimeSpec(kind="any")),
        ("0.1~0.2 > . 1:1(0) ack 1", TimeSpec(kind="abs", value=0.1, range_end=0.2)),
        ("+0.1~+0.25 > . 1:1(0) ack 1", TimeSpec(kind="rel", value=0.1, range_end=0.25)),
        ("+0.1 ~ +0.25 > . 1:1(0) ack 1", TimeSpec(kind="rel", value=0.1, range_end=0.25)),
    ],
)
def test_time_forms(text: str, time: TimeSpec) -> None:
    statement = one(text)
    assert isinstance(statement, Packet | Syscall) and statement.time == time


def test_time_usecs_round_to_nearest() -> None:
    assert TimeSpec(kind="rel", value=0.1).usecs == 100_000
    assert TimeSpec(kind="abs", value=4.35).usecs == 4_350_000  # 4.35 * 1e6 == 4349999.999999999
    assert TimeSpec(kind="abs", value=0.000001).usecs == 1
    window = TimeSpec(kind="rel", value=0.1, range_end=0.29)
    assert (window.usecs, window.range_end_usecs, window.is_range) == (100_000, 290_000, True)
    assert TimeSpec(kind="any").range_end_usecs is None


def test_time_str() -> None:
    assert str(TimeSpec(kind="rel", value=0.1, range_end=0.2)) == "+0.1~+0.2"
    assert str(TimeSpec(kind="abs", value=7200)) == "7200"
    assert str(TimeSpec(kind="any")) == "*"


@pytest.mark.parametrize(
    ("text", "time", "end_time", "end_usecs"),
    [
        ("+0...0.2 accept(3, ..., ...) = 4", REL0, 0.2, 200_000),
        ("+0.1...0.3 accept(3, ..., ...) = 4", TimeSpec(kind="rel", value=0.1), 0.3, 300_000),
        ("0.1...0.3 accept(3, ..., ...) = 4", TimeSpec(kind="abs", value=0.1), 0.3, 300_000),
        ("+0 ... 1 read(4, ..., 10) = 10", REL0, 1.0, 1_000_000),
    ],
)
def test_blocking_calls(text: str, time: TimeSpec, end_time: float, end_usecs: int) -> None:
    call = one(text)
    assert isinstance(call, Syscall)
    assert (call.time, call.end_time, call.end_usecs, call.is_blocking) == (time, end_time, end_usecs, True)


def test_non_blocking_call_has_no_end() -> None:
    call = one("+0 close(3) = 0")
    assert isinstance(call, Syscall) and (call.end_time, call.end_usecs, call.is_blocking) == (
        None,
        None,
        False,
    )


# ---------------------------------------------------------------------------------------------- packets


def test_port_override() -> None:
    inbound = one("0.100 < 40001>8080 S 0:0(0) win 65535 <mss 1460>")
    outbound = one("0.100 > 8080>40001 S. 0:0(0) ack 1 <...>")
    spaced = one("0 < 40002 > 8080 . 1:1(0) ack 1 win 502")
    assert isinstance(inbound, Packet) and (inbound.src_port, inbound.dst_port) == (40001, 8080)
    assert isinstance(outbound, Packet) and (outbound.src_port, outbound.dst_port) == (8080, 40001)
    assert isinstance(spaced, Packet) and (spaced.src_port, spaced.dst_port, spaced.flags) == (
        40002,
        8080,
        ".",
    )
    plain = one("0 < S 0:0(0) win 1")
    assert isinstance(plain, Packet) and (plain.src_port, plain.dst_port) == (None, None)


def test_options_unchecked_none_and_explicit() -> None:
    unchecked = one("+0 > S 0:0(0) <...>")
    nothing = one("+0 > . 1:1(0) ack 1")
    explicit = one("+0 > . 1:1(0) ack 1 <nop,nop,TS val 1 ecr 2,sack 1:10 20:30 40:50,eol>")
    assert isinstance(unchecked, Packet) and unchecked.options is None
    assert isinstance(nothing, Packet) and nothing.options == ()
    assert isinstance(explicit, Packet) and explicit.options == (
        OptionSpec("nop"),
        OptionSpec("nop"),
        OptionSpec("TS", (1, 2)),
        OptionSpec("sack", (1, 10, 20, 30, 40, 50)),
        OptionSpec("eol"),
    )
    assert [wire.Option(o.name, o.values) for o in explicit.options][2] == wire.Option("TS", (1, 2))


@pytest.mark.parametrize(
    ("flags", "bits"),
    [
        ("-", 0),
        (".", wire.ACK),
        ("S", wire.SYN),
        ("R.", wire.RST | wire.ACK),
        ("SEW", wire.SYN | wire.ECE | wire.CWR),
        ("PU.", wire.PSH | wire.URG | wire.ACK),
    ],
)
def test_flags(flags: str, bits: int) -> None:
    packet = one(f"0 < {flags} 1:1(0) win 5")
    assert isinstance(packet, Packet) and packet.flags == flags and packet.flag_bits == bits


def test_packet_fields_in_full() -> None:
    packet = one("0 < P. 1:1001(1000) ack 7 win 502 urg 3 <nop>")
    assert packet == Packet(
        line=1,
        source="0 < P. 1:1001(1000) ack 7 win 502 urg 3 <nop>",
        time=ABS0,
        direction="<",
        flags="P.",
        start=1,
        end=1001,
        length=1000,
        ack=7,
        win=502,
        urg=3,
        options=(OptionSpec("nop"),),
    )
    assert packet.inbound and not packet.outbound


# ----------------------------------------------------------------------------------------- system calls


def test_argument_expressions() -> None:
    call = one(
        '0 connect(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.1")}, 16,'
        ' 0x10, -1, [], {..., 1000}, "a\\"b\\n" "c", A|B|C) = ...'
    )
    assert isinstance(call, Syscall)
    assert call.args == (
        IntLit(3),
        Struct(
            (
                StructField("sa_family", Name("AF_INET")),
                StructField("sin_port", Call("htons", (IntLit(8080),))),
                StructField("sin_addr", Call("inet_addr", (StringLit("192.0.2.1"),))),
            )
        ),
        IntLit(16),
        IntLit(16),
        IntLit(-1),
        Array(()),
        Struct((StructField(None, EllipsisExpr()), StructField(None, IntLit(1000)))),
        StringLit('a"b\nc'),
        BitOr((Name("A"), Name("B"), Name("C"))),
    )
    assert call.ret is None


@pytest.mark.parametrize(
    ("text", "name", "args", "ret", "errno", "note"),
    [
        ("0 close(3) = 0", "close", (IntLit(3),), 0, None, None),
        ("0 getpid() = ...", "getpid", (), None, None, None),
        ("0 shutdown(4, SHUT_RDWR) = 0", "shutdown", (IntLit(4), Name("SHUT_RDWR")), 0, None, None),
        (
            "0 read(4, ..., 10) = -1 EAGAIN (Resource  temporarily unavailable)",
            "read",
            (IntLit(4), EllipsisExpr(), IntLit(10)),
            -1,
            "EAGAIN",
            "Resource temporarily unavailable",
        ),
        (
            "0 recv(4, ..., 10, 0) = -1 ECONNRESET",
            "recv",
            (IntLit(4), EllipsisExpr(), IntLit(10), IntLit(0)),
            -1,
            "ECONNRESET",
            None,
        ),
        (
            "0 setsockopt(4, IPPROTO_TCP, TCP_NODELAY, [1], 4) = 0 (a note)",
            "setsockopt",
            (IntLit(4), Name("IPPROTO_TCP"), Name("TCP_NODELAY"), Array((IntLit(1),)), IntLit(4)),
            0,
            None,
            "a note",
        ),
    ],
)
def test_syscall_forms(
    text: str, name: str, args: tuple[object, ...], ret: int | None, errno: str | None, note: str | None
) -> None:
    call = one(text)
    assert isinstance(call, Syscall)
    assert (call.name, call.args, call.ret, call.errno, call.errno_text) == (name, args, ret, errno, note)


def test_statement_continues_while_a_bracket_is_open() -> None:
    (script,) = parse_text(
        "0 setsockopt(4, SOL_SOCKET, SO_LINGER,\n   {onoff=1,\n    linger=0}, 8) = 0\n+0 close(4) = 0\n"
    ).scripts
    linger, close = script.statements
    assert isinstance(linger, Syscall) and linger.args[3] == Struct(
        (StructField("onoff", IntLit(1)), StructField("linger", IntLit(0)))
    )
    assert linger.source == "0 setsockopt(4, SOL_SOCKET, SO_LINGER,\n   {onoff=1,\n    linger=0}, 8) = 0"
    assert (linger.line, close.line) == (1, 4)


def test_comment_markers_inside_strings_and_commands_are_text() -> None:
    call = one('0 write(4, "http://x/*y*/", 5) = 5 // real comment')
    assert isinstance(call, Syscall) and call.args[1] == StringLit("http://x/*y*/")


# -------------------------------------------------------------------------------------------- commands


def test_sysctl_settings_and_namespaces() -> None:
    sysctl = one("+0 `sysctl -q -w net.core.rmem_max=1 net/ipv4/tcp_sack=0 kernel.x='a b' foo=\"\"`")
    assert sysctl == Sysctl(
        line=1,
        source="+0 `sysctl -q -w net.core.rmem_max=1 net/ipv4/tcp_sack=0 kernel.x='a b' foo=\"\"`",
        time=REL0,
        settings=(
            SysctlSetting("net.core", "rmem_max", "1"),
            SysctlSetting("net.ipv4", "tcp_sack", "0"),
            SysctlSetting("kernel", "x", "a b"),
            SysctlSetting("", "foo", ""),
        ),
    )
    assert isinstance(sysctl, Sysctl) and sysctl.settings[1].full_name == "net.ipv4.tcp_sack"
    assert sysctl.settings[3].full_name == "foo"


def test_multiline_sysctl_with_backslash_continuation() -> None:
    (script,) = parse_text("`sysctl -q a.b=1 \\\n  c.d=2`\n0 close(3) = 0\n").scripts
    sysctl, close = script.statements
    assert isinstance(sysctl, Sysctl) and [s.name for s in sysctl.settings] == ["b", "d"]
    assert close.line == 3


# ------------------------------------------------------------------------------------- state assertions


@pytest.mark.parametrize(
    ("text", "role", "state", "delay", "delay_usecs"),
    [
        ("//= SUT: ESTABLISHED", "SUT", "ESTABLISHED", 0.0, 0),
        ("//= +34 SUT: TIME_WAIT", "SUT", "TIME_WAIT", 34.0, 34_000_000),
        ("  //=   +0.5   PEER:CLOSE_WAIT   // because", "PEER", "CLOSE_WAIT", 0.5, 500_000),
        ("//= +.1 SUT: FIN_WAIT_2", "SUT", "FIN_WAIT_2", 0.1, 100_000),
    ],
)
def test_state_assertions(text: str, role: str, state: str, delay: float, delay_usecs: int) -> None:
    node = one(text)
    assert isinstance(node, StateAssert)
    assert (node.role, node.state, node.delay, node.delay_usecs, node.line) == (
        role,
        state,
        delay,
        delay_usecs,
        1,
    )
    assert node.source == text.strip()


def test_decorative_comment_is_not_an_assertion() -> None:
    (script,) = parse_text("//===== Part A =====\n0 close(3) = 0\n").scripts
    assert [type(s) for s in script.statements] == [Syscall]


# ------------------------------------------------------------------------------------------ unsupported


@pytest.mark.parametrize(
    ("text", "construct"),
    [
        ("+0 %{ assert tcpi_rto == 1000 }%", "python block"),
        ("%{\nimport os\n}%", "python block"),
        ("+0 getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_state=TCP_CLOSE}, [256]) = 0", "TCP_INFO"),
        ("+0 setsockopt(3, SOL_TCP, TCP_FASTOPEN, [1], 4) = 0", "TCP_FASTOPEN"),
        ("+0 sendto(4, ..., 1000, MSG_FASTOPEN, ..., ...) = 1000", "MSG_FASTOPEN"),
        ('+0 setsockopt(3, SOL_TCP, TCP_MD5SIG, {tcpm_key="k"}, 216) = 0', "TCP_MD5SIG"),
        ('+0 setsockopt(3, SOL_TCP, TCP_CONGESTION, "reno", 4) = 0', "TCP_CONGESTION"),
        ("+0 setsockopt(4, SOL_SOCKET, SO_ZEROCOPY, [1], 4) = 0", "SO_ZEROCOPY"),
        (
            "+0 sendmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 10}], msg_flags=0}, 0) = 10",
            "system call sendmsg()",
        ),
        ("+0 recvmsg(4, {msg_name(...)=...}, 0) = 10", "system call recvmsg()"),
        ("+0 epoll_create(1) = 5", "system call epoll_create()"),
        ("+0 poll([{fd=4, events=POLLIN, revents=POLLIN}], 1, 0) = 1", "system call poll()"),
        ("+0 ioctl(4, SIOCINQ, [1000]) = 0", "system call ioctl()"),
        ("+0 > S 0:0(0) <mss 1460,FO abcd1234,nop,nop>", "TCP Fast Open option 'FO'"),
        ("+0 > S 0:0(0) <md5 000102030405060708090a0b0c0d0e0f>", "TCP MD5 signature option 'md5'"),
        ("+0 > S 0:0(0) <exp 0xf989>", "experimental TCP option 'exp'"),
        ("+0 > S 0:0(0) <mpcapable v1 flags[flag_h] key[skey]>", "MPTCP option 'mpcapable'"),
        ("+0 < [ect0] . 1:1001(1000) ack 1 win 257", "ECN mark [ect0]"),
        ("+0 > [ce] . 1:1(0) ack 1", "ECN mark [ce]"),
        ("+0 > (tos 0x4) . 1:1(0) ack 1", "IP header field (tos 0x4)"),
        ("+0 < udp (1472)", "UDP packet"),
        ("+0 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]", "ICMP packet"),
        ("+0 < ipv4 192.0.2.1 > 192.0.2.2: gre: . 1:1(0) ack 1 win 5", "encapsulated packet (ipv4 header)"),
        ("+0 > S 0:0(0) <...> {mut tcp source_port}", "packet fuzzing {...}"),
        ("`../common/defaults.sh`", "shell command `../common/defaults.sh`"),
        (
            "+0 `tc qdisc add dev tun0 root netem delay 10ms`",
            "shell command `tc qdisc add dev tun0 root netem delay 10ms`",
        ),
        ("`sysctl -q a.b=1; sysctl -q c.d=2`", "shell command `sysctl -q a.b=1; sysctl -q c.d=2`"),
        ("`sysctl net.ipv4.tcp_rmem`", "sysctl read of net.ipv4.tcp_rmem (no '=')"),
        ("`sysctl -p /etc/x.conf`", "sysctl option -p"),
        ("--tolerance_usecs=10000", "packetdrill option --tolerance_usecs=10000"),
    ],
)
def test_unsupported_constructs(text: str, construct: str) -> None:
    node = one(text)
    assert isinstance(node, Unsupported)
    assert (node.construct, node.line, node.source) == (construct, 1, text.strip())
    assert node.message == f"unsupported: {construct} at line 1"


def test_unsupported_keeps_its_place_in_the_script() -> None:
    (script,) = parse_text("0 close(3) = 0\n\n+0 %{ x = 1 }%\n+0 close(4) = 0\n").scripts
    assert [(type(s).__name__, s.line) for s in script.statements] == [
        ("Syscall", 1),
        ("Unsupported", 3),
        ("Syscall", 4),
    ]


# --------------------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # times
        (
            "socket(..., SOCK_STREAM, IPPROTO_TCP) = 3",
            "t.pkt:1:1: expected a time ('0', '+0.1' or '*'), got 'socket'",
        ),
        ("-1 close(3) = 0", "t.pkt:1:1: expected a time ('0', '+0.1' or '*'), got '-'"),
        ("+ close(3) = 0", "t.pkt:1:3: expected a number after '+', got 'close'"),
        ("0socket(1) = 3", "t.pkt:1:1: expected a time ('0', '+0.1' or '*'), got '0socket'"),
        ("+0.1.2 close(3) = 0", "t.pkt:1:5: expected a space after the time, got '.'"),
        (
            "0",
            "t.pkt:1:2: expected a packet ('<' or '>'), a system call or a command after the time, "
            "got end of line",
        ),
        (
            "0 ! close(3) = 0",
            "t.pkt:1:3: expected a packet ('<' or '>'), a system call or a command after the time, got '!'",
        ),
        ("0.2~0.1 > . 1:1(0) ack 1", "t.pkt:1:4: time range is backwards: 0.2~0.1"),
        (
            "+0.1~0.2 > . 1:1(0) ack 1",
            "t.pkt:1:6: expected '+' after '~' (a relative window is written '+a~+b'), got '0'",
        ),
        (
            "0.1~+0.2 > . 1:1(0) ack 1",
            "t.pkt:1:5: expected an absolute time after '~' (write 'a~b' or '+a~+b'), got '+'",
        ),
        ("0.1~ > . 1:1(0) ack 1", "t.pkt:1:6: expected a time after '~', got '>'"),
        ("* < . 1:1(0) ack 1 win 5", "t.pkt:1:1: '*' (any time) is only allowed on outbound packets"),
        ("* close(3) = 0", "t.pkt:1:1: '*' (any time) is only allowed on outbound packets"),
        ("+0~+1 < . 1:1(0) ack 1 win 5", "t.pkt:1:1: a time range is only allowed on outbound packets"),
        ("+0~+1 close(3) = 0", "t.pkt:1:1: a time range is only allowed on outbound packets"),
        ("+0...0.1 > . 1:1(0)", "t.pkt:1:3: '...' (blocking end time) is only allowed on system calls"),
        ("*...1 close(3) = 0", "t.pkt:1:2: '...' cannot follow '*' or a time range"),
        ("+0.2...0.1 close(3) = 0", "t.pkt:1:5: blocking end time 0.1 is before the start time 0.2"),
        (
            "+0...+0.1 close(3) = 0",
            "t.pkt:1:6: expected an end time without '+' after '...' (it has the same base as the start), "
            "got '+'",
        ),
        ("+0... close(3) = 0", "t.pkt:1:7: expected an end time after '...', got 'close'"),
        (
            "1" * 40 + " close(3) = 0",
            "t.pkt:1:1: time out of range (max 1000000000 s): 111111111111111111111...",
        ),
        # packets
        ("0 < 40001 S 0:0(0)", "t.pkt:1:5: expected TCP flags or a port override 'SRC>DST', got '40001'"),
        ("0 > 8080>70000 S. 0:0(0) ack 1", "t.pkt:1:10: destination port out of range (max 65535): 70000"),
        ("0 > 80800>7 S. 0:0(0) ack 1", "t.pkt:1:5: source port out of range (max 65535): 80800"),
        ("0 < 0:0(0) win 5", "t.pkt:1:5: expected TCP flags or a port override 'SRC>DST', got '0'"),
        ("0 < <mss 1>", "t.pkt:1:5: expected TCP flags ('S', 'S.', '.', 'F.', 'R', '-', ...), got '<'"),
        ("0 < SX 1:1(0)", "t.pkt:1:6: unknown TCP flag 'X' (flags are F S R P . E W U, or '-' for none)"),
        ("0 < SS 1:1(0)", "t.pkt:1:6: TCP flag 'S' written twice"),
        ("0 < -S 1:1(0)", "t.pkt:1:6: expected a space after the TCP flags, got 'S'"),
        ("0 < S 0:0 win 5", "t.pkt:1:7: expected a sequence range 'start:end(length)', got '0'"),
        ("0 < S 1:10(5)", "t.pkt:1:7: inconsistent sequence range 1:10(5): end - start is 9"),
        (
            "0 < . 4294967296:4294967296(0)",
            "t.pkt:1:7: sequence number out of range (max 4294967295): 4294967296",
        ),
        ("0 < . 1:70001(70000)", "t.pkt:1:15: payload length out of range (max 65535): 70000"),
        ("0 < . 1:1(0) ack", "t.pkt:1:17: expected a number after 'ack', got end of line"),
        ("0 < . 1:1(0) ack 1 win 65536", "t.pkt:1:24: window out of range (max 65535): 65536"),
        ("0 < . 1:1(0) ack 1 win 5x", "t.pkt:1:24: expected a number after 'win', got '5x'"),
        (
            "0 > S 0:0(0) win 5 ack 1",
            "t.pkt:1:20: unexpected 'ack' in packet line (expected, in this order: "
            "'ack N', 'win N', 'urg N', '<options>')",
        ),
        (
            "0 < S 0:0(0) <...>",
            "t.pkt:1:14: '<...>' (options not checked) is only allowed on outbound packets",
        ),
        ("0 > S 0:0(0) <...", "t.pkt:1:18: expected '>' after '<...', got end of line"),
        ("0 > S 0:0(0) <>", "t.pkt:1:15: expected a TCP option name, got '>'"),
        (
            "0 > S 0:0(0) <mss 1460 sackOK>",
            "t.pkt:1:24: expected ',' or '>' in the TCP options, got 'sackOK'",
        ),
        ("0 > S 0:0(0) <mss 1460,", "t.pkt:1:24: expected a TCP option name, got end of line"),
        ("0 > S 0:0(0) <mss>", "t.pkt:1:18: expected a number after 'mss', got '>'"),
        ("0 > S 0:0(0) <mss 70000>", "t.pkt:1:19: mss value out of range (max 65535): 70000"),
        ("0 > S 0:0(0) <wscale 256>", "t.pkt:1:22: wscale value out of range (max 255): 256"),
        ("0 > S 0:0(0) <sack>", "t.pkt:1:19: expected a SACK block 'left:right' after 'sack', got '>'"),
        ("0 > S 0:0(0) <TS ecr 1>", "t.pkt:1:18: expected 'val' after 'TS', got 'ecr'"),
        ("0 > S 0:0(0) <TS val 1 ecr>", "t.pkt:1:27: expected a number after 'ecr', got '>'"),
        ("0 > S 0:0(0) <TS val 1 2>", "t.pkt:1:24: expected 'ecr' after the TS val, got '2'"),
        ("0 > S 0:0(0) <nop> x", "t.pkt:1:20: unexpected 'x' after the TCP options"),
        # system calls
        ("0 close 3 = 0", "t.pkt:1:9: expected '(' after the system call name 'close', got '3'"),
        (
            "0 write(4, ..., 100 = 100",
            "t.pkt:1:21: expected ',' or ')' after an argument of write(), got '='",
        ),
        (
            "0 write(4 ..., 100) = 1",
            "t.pkt:1:11: expected ',' or ')' after an argument of write(), got '...'",
        ),
        ("0 write(4, ..., 100) 100", "t.pkt:1:22: expected '=' after write(...), got '100'"),
        (
            "0 write(4, ..., 100) =",
            "t.pkt:1:23: expected a return value (an integer or '...') after '=', got end of line",
        ),
        (
            "0 close(3) = 5abc",
            "t.pkt:1:14: expected a return value (an integer or '...') after '=', got '5abc'",
        ),
        (
            "0 read(4, ..., 10) = -1 EAGAIN (Resource",
            "t.pkt:1:41: expected ')' to close the note, got end of line",
        ),
        ("0 read(4, ..., 10) = -1 EAGAIN (x) y", "t.pkt:1:36: unexpected 'y' after the system call"),
        (
            "0 f(,) = 0",
            "t.pkt:1:5: expected an argument (a number, a name, '...', a string, '[...]' or '{...}'), "
            "got ','",
        ),
        ("0 f([1 2]) = 0", "t.pkt:1:8: expected ',' or ']' in the array, got '2'"),
        ("0 f({a=1 b=2}) = 0", "t.pkt:1:10: expected ',' or '}' in the struct, got 'b'"),
        (
            "0 f(A|) = 0",
            "t.pkt:1:7: expected an argument (a number, a name, '...', a string, '[...]' or '{...}'), "
            "got ')'",
        ),
        ("0 f(htons(1 2)) = 0", "t.pkt:1:13: expected ',' or ')' after an argument of htons(), got '2'"),
        ("0 f(" + "[" * 40 + "1" + "]" * 40 + ") = 0", "t.pkt:1:38: arguments nested too deeply"),
        ("0 f(99999999999999999999999) = 0", "t.pkt:1:5: integer out of range: 99999999999999999999..."),
        # commands, comments, strings
        ("`sysctl -q`", "t.pkt:1:1: sysctl command without any 'name=value' setting"),
        ('`sysctl -q net.ipv4.tcp_rmem="4096`', 't.pkt:1:30: unterminated quote " in the command'),
        ("`sysctl -q =1`", "t.pkt:1:12: invalid sysctl name ''"),
        ("`sysctl -q a..b=1`", "t.pkt:1:12: invalid sysctl name 'a..b'"),
        ("+0 `sysctl -q a.b=0` x", "t.pkt:1:22: unexpected 'x' after the command"),
        ("`sysctl -q a=1", "t.pkt:1:1: unterminated command: missing closing `"),
        ('0 write(4, "abc, 3) = 3', 't.pkt:1:12: unterminated string: missing closing "'),
        ("/* unterminated", "t.pkt:1:1: unterminated comment: '/*' without '*/'"),
        ("+0 %{ x = 1", "t.pkt:1:4: unterminated python block: '%{' without '}%'"),
        (
            "--- script",
            "t.pkt:1:1: malformed section marker (write '--- script [name] ---' or '--- end ---')",
        ),
        ("-- x", "t.pkt:1:1: expected a packetdrill option '--name=value', got '-'"),
        # state assertions
        (
            "//= SUT: BOGUS",
            "t.pkt:1:10: unknown TCP state 'BOGUS' (one of CLOSED, LISTEN, SYN_SENT, SYN_RCVD, "
            "ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT)",
        ),
        (
            "//= SUT: established",
            "t.pkt:1:10: unknown TCP state 'established' (one of CLOSED, LISTEN, SYN_SENT, "
            "SYN_RCVD, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT)",
        ),
        ("//= SUT:", "t.pkt:1:9: expected a TCP state after 'SUT:', got end of line"),
        (
            "//= 34 SUT: CLOSED",
            "t.pkt:1:5: expected '+' before the delay (write '//= +34 SUT: STATE'), got '34'",
        ),
        ("//= + SUT: CLOSED", "t.pkt:1:7: expected a delay in seconds after '+', got 'SUT'"),
        ("//= SUT CLOSED", "t.pkt:1:9: expected ':' after 'SUT', got 'CLOSED'"),
        ("//= ME: CLOSED", "t.pkt:1:5: expected 'SUT:' or 'PEER:' in the state assertion, got 'ME'"),
        ("//=", "t.pkt:1:4: expected 'SUT:' or 'PEER:' in the state assertion, got end of line"),
        ("//= SUT: CLOSED extra", "t.pkt:1:17: unexpected 'extra' after the state assertion"),
        ("+0 close(3) = 0 //= SUT: CLOSED", "t.pkt:1:17: state assertion '//=' must start its own line"),
        (
            "0 f(1,\n//= SUT: CLOSED\n) = 0",
            "t.pkt:2:1: state assertion '//=' inside an unfinished statement (unclosed bracket?)",
        ),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    assert error_of(text) == message


def test_error_positions_count_from_the_file_start() -> None:
    text = "// header\n\n   +0 close(3) = 0\n   /* x\n y */ +0 write(3, ..., 1) = x\n"
    assert (
        error_of(text, "dir/file.pkt")
        == "dir/file.pkt:5:29: expected a return value (an integer or '...') after '=', got 'x'"
    )


def test_error_attributes() -> None:
    with pytest.raises(DrillSyntaxError) as info:
        parse_text("0 close(3) = 0\n+0 close(3 = 0\n", "f.pkt")
    error = info.value
    assert (error.filename, error.line, error.column) == ("f.pkt", 2, 12)
    assert error.message == "expected ',' or ')' after an argument of close(), got '='"
    assert str(error) == "f.pkt:2:12: expected ',' or ')' after an argument of close(), got '='"


# ---------------------------------------------------------------------------------------------- fuzzing

SCRIPT_LINES = sorted(
    {
        line
        for path in EXAMPLE_FILES
        for line in path.read_text().splitlines()
        if line.strip() and line[:1] in " `/+0*<>" and not line.startswith("---")
    }
    | {
        "0.100 < 40001>8080 S 0:0(0) win 65535 <mss 1460>",
        "+0...0.2 accept(3, ..., ...) = 4",
        "+0.1~+0.2 > . 1:1(0) ack 1 <nop,nop,sack 1:10 20:30>",
        "//= +34 SUT: TIME_WAIT",
        "+0 %{ x = 1 }%",
        "/* a */ +0 close(3) = 0",
        '0 connect(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("192.0.2.1")}, 16) = 0',
    }
)
NOTATION_CHARS = " \t\n+-*~.:,;=|<>()[]{}\"'`/%\\0123456789SFRPEWU_abcxyzTS"


def parses_or_raises_syntax_error(text: str) -> None:
    """The parser's contract: a DrillFile, or a DrillSyntaxError, never any other exception."""
    try:
        drill = parse_text(text, "fuzz.pkt")
    except DrillSyntaxError as error:
        assert error.line >= 1 and error.column >= 1 and str(error).startswith("fuzz.pkt:")
    else:
        assert isinstance(drill, DrillFile)


@st.composite
def mutated(draw: st.DrawFn, base: str) -> str:
    chars = list(base)
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(chars)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        char = draw(st.sampled_from(NOTATION_CHARS) | st.characters())
        if action == "insert":
            chars.insert(position, char)
        elif chars and position < len(chars):
            if action == "delete":
                del chars[position]
            elif action == "replace":
                chars[position] = char
            else:
                end = draw(st.integers(position, len(chars)))
                chars[position:position] = chars[position:end]
    return "".join(chars)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_example_lines(data: st.DataObject) -> None:
    lines = data.draw(st.lists(st.sampled_from(SCRIPT_LINES), min_size=1, max_size=4))
    index = data.draw(st.integers(0, len(lines) - 1))
    lines[index] = data.draw(mutated(lines[index]))
    parses_or_raises_syntax_error("\n".join(lines))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(NOTATION_CHARS) | st.characters(), max_size=200))
def test_fuzz_random_text(text: str) -> None:
    parses_or_raises_syntax_error(text)


SOUP_TOKENS = [
    *NOTATION_CHARS,
    *["...", "<...>", "ack", "win", "urg", "TS", "val", "ecr", "sack", "mss", "nop", "wscale", "sackOK"],
    *["//=", "SUT:", "ESTABLISHED", "%{", "}%", "/*", "*/", "//", "`sysctl", "-q", "a.b=1", "---", "script"],
    *["end", "TITLE:", "close(3)", "= 0", "S.", "1:1(0)", "40001>8080", "0", "+0", "+.1", "*", "~", "\n"],
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(SOUP_TOKENS), max_size=30).map(" ".join))
def test_fuzz_token_soup(text: str) -> None:
    parses_or_raises_syntax_error(text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_example_files(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(EXAMPLE_FILES))
    parses_or_raises_syntax_error(data.draw(mutated(path.read_text())))
