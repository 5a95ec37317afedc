"""The node types a drill script parses into (see `tcpplay.drill.parser`).

Everything is a frozen dataclass, so nodes compare by value (tests can write the expected node out) and the
executor cannot mutate a script while it runs it. Times are kept in seconds as written (`float`) because that
is what failure messages should echo; every time also has a `*_usecs` property, because the project's clock
counts integer microseconds. The conversion rounds to the nearest microsecond (`0.1` -> 100000); packetdrill
truncates instead, which turns a few decimal literals such as `4.35` into 4349999 us.

Statements (`Packet`, `Syscall`, `Sysctl`, `StateAssert`, `Unsupported`) carry `line`, the 1-based line in
the original file (for a statement continued over several lines: its first line), and `source`, the original
text of those lines without surrounding blanks, so the executor can quote the script line it failed on.
Argument expressions (`Expr`) are plain values without positions: they belong to their statement's line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from stack import wire

TimeKind: TypeAlias = Literal["abs", "rel", "any"]
Direction: TypeAlias = Literal["<", ">"]
Role: TypeAlias = Literal["SUT", "PEER"]
TcpState: TypeAlias = Literal[
    "CLOSED",
    "LISTEN",
    "SYN_SENT",
    "SYN_RCVD",
    "ESTABLISHED",
    "FIN_WAIT_1",
    "FIN_WAIT_2",
    "CLOSE_WAIT",
    "CLOSING",
    "LAST_ACK",
    "TIME_WAIT",
]
OptionName: TypeAlias = Literal["mss", "nop", "eol", "wscale", "sackOK", "sack", "TS"]

TCP_STATES: tuple[TcpState, ...] = (
    "CLOSED",
    "LISTEN",
    "SYN_SENT",
    "SYN_RCVD",
    "ESTABLISHED",
    "FIN_WAIT_1",
    "FIN_WAIT_2",
    "CLOSE_WAIT",
    "CLOSING",
    "LAST_ACK",
    "TIME_WAIT",
)
"""The states a `//=` assertion may name, in RFC 9293 order."""

OPTION_NAMES: tuple[OptionName, ...] = ("mss", "nop", "eol", "wscale", "sackOK", "sack", "TS")
"""TCP option names the parser understands; they are `stack.wire.Option.name` spellings."""

TCP_FLAGS = "FSRP.EWU"
"""Flag letters of the packet notation: FIN SYN RST PSH ACK ECE CWR URG (`-` alone means none)."""

_FLAG_BITS = {
    "F": wire.FIN,
    "S": wire.SYN,
    "R": wire.RST,
    "P": wire.PSH,
    ".": wire.ACK,
    "E": wire.ECE,
    "W": wire.CWR,
    "U": wire.URG,
}


def seconds_to_usecs(seconds: float) -> int:
    """Seconds as written in a script -> integer microseconds, rounded to the nearest (0.1 -> 100000)."""
    return round(seconds * 1_000_000)


def format_seconds(seconds: float) -> str:
    """Seconds the way a script writes them: `0.1`, `7200`, `0.000001` (no exponent, no trailing zeros)."""
    text = f"{seconds:.6f}".rstrip("0").rstrip(".")
    return text or "0"


# --------------------------------------------------------------------------------------------------- times


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeSpec:
    """The time column of a statement.

    kind "abs": `value` seconds after the script's start (`0`, `1.5`).
    kind "rel": `value` seconds after the previous event (`+0.1`, `+.1`). In packetdrill the base is the
        time the previous event actually happened, except that an inbound packet that follows an inbound
        packet is anchored to that packet's *scripted* time (run.c `is_event_start_time_anchored`), so
        chains of injected segments do not accumulate processing delays.
    kind "any": `*`, the event may happen at any time (`value` is 0.0). Only outbound packets use it.

    `range_end` is set for a window: `a~b` (both absolute) or `+a~+b` (both relative to the same base as
    `value`, i.e. *not* to `a`). The event must happen inside [value, range_end]. Only outbound packets use
    windows; the parser enforces both rules, like packetdrill does.
    """

    kind: TimeKind
    value: float = 0.0
    range_end: float | None = None

    @property
    def usecs(self) -> int:
        """`value` in integer microseconds."""
        return seconds_to_usecs(self.value)

    @property
    def range_end_usecs(self) -> int | None:
        """`range_end` in integer microseconds (None when this is not a window)."""
        return None if self.range_end is None else seconds_to_usecs(self.range_end)

    @property
    def is_range(self) -> bool:
        return self.range_end is not None

    def __str__(self) -> str:
        if self.kind == "any":
            return "*"
        plus = "+" if self.kind == "rel" else ""
        text = f"{plus}{format_seconds(self.value)}"
        if self.range_end is not None:
            text += f"~{plus}{format_seconds(self.range_end)}"
        return text


# ------------------------------------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class IntLit:
    """An integer argument: `3`, `-1`, `0x10`."""

    value: int


@dataclass(frozen=True, slots=True)
class EllipsisExpr:
    """`...`: "don't care" (any value is accepted / a sensible default is passed).

    Not called `Ellipsis` so that it does not shadow the Python builtin.
    """


@dataclass(frozen=True, slots=True)
class Name:
    """A symbolic constant such as `SOCK_STREAM`, `SO_LINGER`, `SHUT_WR` or an errno name inside `[...]`.

    The parser does not know the values; the executor maps the names it supports.
    """

    name: str


@dataclass(frozen=True, slots=True)
class StringLit:
    """A string argument `"..."`; `\\n`, `\\t`, `\\r`, `\\0`, `\\\\` and `\\"` are unescaped, other
    backslash sequences are kept as written. Adjacent strings are concatenated, like in C."""

    value: str


@dataclass(frozen=True, slots=True)
class BitOr:
    """`O_RDWR|O_NONBLOCK`: two or more operands, flattened left to right."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Array:
    """`[1]`, `[ETIMEDOUT]`, `[]`: in packetdrill a pointer to an int (or to a list of values)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class StructField:
    """One member of a `Struct`: `onoff=1` has name "onoff"; a positional member (`{..., 1000}`) has None."""

    name: str | None
    value: Expr


@dataclass(frozen=True, slots=True)
class Struct:
    """`{onoff=1, linger=0}`: a struct argument, members in the order written."""

    fields: tuple[StructField, ...]

    def get(self, name: str) -> Expr | None:
        """The value of member `name`, or None when it is not written."""
        for member in self.fields:
            if member.name == name:
                return member.value
        return None


@dataclass(frozen=True, slots=True)
class Call:
    """A function-style argument such as `htons(8080)` or `inet_addr("192.0.2.1")`."""

    name: str
    args: tuple[Expr, ...]


Expr: TypeAlias = IntLit | EllipsisExpr | Name | StringLit | BitOr | Array | Struct | Call


# ------------------------------------------------------------------------------------------- statements


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """Position of a statement in the original file: `line` (1-based) and the `source` text of its line(s)."""

    line: int
    source: str


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One TCP option in a packet line, in wire order.

    `name` and `values` follow `stack.wire.Option`: mss (1460,), wscale (7,), TS (val, ecr),
    sack (l1, r1, l2, r2, ...), and () for nop, eol and sackOK. So `wire.Option(spec.name, spec.values)`
    builds the option for an inbound packet. (The README: outbound TS val/ecr are not compared.)
    """

    name: OptionName
    values: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Packet(Node):
    """A segment line: `+.1 < S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1000 ecr 0,nop,wscale 7>`.

    direction "<": the peer sends it to the SUT (the executor injects it).
    direction ">": the SUT must emit it at `time`.
    src_port/dst_port: the optional port override written after the direction (`< 40001>8080 S ...`),
        in the packet's own direction (source first); None when not written.
    flags: as written, e.g. "S", "S.", ".", "F.", "R.", "P.", or "-" for no flags (see `flag_bits`).
    start/end/length: the relative sequence range `start:end(length)`; end == start + length is checked.
    ack, win, urg: the `ack N`, `win N` (raw 16-bit field) and `urg N` values, None when not written
        (for outbound lines: not checked).
    options: None for `<...>` (options not checked; outbound only), () when no options are written (an
        outbound segment must then carry none), otherwise the options in wire order.
    """

    time: TimeSpec
    direction: Direction
    src_port: int | None = None
    dst_port: int | None = None
    flags: str
    start: int
    end: int
    length: int
    ack: int | None = None
    win: int | None = None
    urg: int | None = None
    options: tuple[OptionSpec, ...] | None = ()

    @property
    def inbound(self) -> bool:
        return self.direction == "<"

    @property
    def outbound(self) -> bool:
        return self.direction == ">"

    @property
    def flag_bits(self) -> int:
        """The flags as a TCP header bit mask built from `stack.wire` constants (SYN|ACK for "S.")."""
        bits = 0
        for letter in self.flags:
            bits |= _FLAG_BITS.get(letter, 0)
        return bits


@dataclass(frozen=True, slots=True, kw_only=True)
class Syscall(Node):
    """A system call line: `+0 accept(3, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)`.

    end_time: set for a blocking call `+0...0.2 accept(...)`: the call starts at `time` and must return at
        `end_time` seconds. The end is on the same base as the start: absolute if `time` is absolute, and if
        `time` is relative it is relative to the *previous event*, not to the call's start (packetdrill run.c
        adds the same offset to both). So `+0.1...0.3` returns 0.2 s after it started.
    name: any identifier; the executor decides what it supports.
    ret: the expected return value, None for `...` (not checked).
    errno: e.g. "EAGAIN", None when not written.
    errno_text: the parenthesised note after the return value, e.g. "Resource temporarily unavailable"
        (packetdrill's strerror note; whitespace collapsed), None when not written.
    """

    time: TimeSpec
    end_time: float | None = None
    name: str
    args: tuple[Expr, ...] = ()
    ret: int | None
    errno: str | None = None
    errno_text: str | None = None

    @property
    def end_usecs(self) -> int | None:
        return None if self.end_time is None else seconds_to_usecs(self.end_time)

    @property
    def is_blocking(self) -> bool:
        return self.end_time is not None


@dataclass(frozen=True, slots=True)
class SysctlSetting:
    """One `name=value` of a sysctl command.

    `net.ipv4.tcp_rmem="4096 131072 6291456"` gives namespace "net.ipv4", name "tcp_rmem" and value
    "4096 131072 6291456" (quotes removed). The namespace is everything before the last dot (slashes are
    read as dots, as sysctl does), so `net.core.rmem_max` -> ("net.core", "rmem_max").
    """

    namespace: str
    name: str
    value: str

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True, kw_only=True)
class Sysctl(Node):
    """A backtick `sysctl` command: configuration for the stack under test.

    time: None for a command written without a time (packetdrill's init command at the top of a script).
    """

    time: TimeSpec | None = None
    settings: tuple[SysctlSetting, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StateAssert(Node):
    """`//= SUT: ESTABLISHED` or `//= +34 SUT: TIME_WAIT` (tcpplay's extension, a comment to packetdrill).

    Asserts the connection state of `role` at the time of the previous statement plus `delay` seconds.
    """

    role: Role
    state: TcpState
    delay: float = 0.0

    @property
    def delay_usecs(self) -> int:
        return seconds_to_usecs(self.delay)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsupported(Node):
    """A construct the notation allows but tcpplay does not model, e.g. "python block", "TCP_INFO",
    "TCP option 'FO'", "UDP packet". The statement is kept (never skipped) so the executor reports it."""

    construct: str

    @property
    def message(self) -> str:
        return f"unsupported: {self.construct} at line {self.line}"


Statement: TypeAlias = Packet | Syscall | Sysctl | StateAssert | Unsupported


# ------------------------------------------------------------------------------------------------- files


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """One timeline: a `--- script [name] ---` section, or a whole plain `.pkt` file.

    name: "main" for `--- script ---` and plain files, else the text after "script" ("part B").
    first_line: the file line of the script's first body line.
    """

    name: str
    first_line: int
    statements: tuple[Statement, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderField:
    """A `KEY: text` section outside the scripts of a conformance-example file.

    `STRICT [S] (RFC 9293 3.5):` gives key "STRICT" and qualifier "[S] (RFC 9293 3.5)". `text` is the rest
    of the key's line plus the indented (or other non-key) lines under it, each stripped, joined by "\\n".
    """

    key: str
    qualifier: str
    text: str
    line: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DrillFile:
    """A parsed file: its header fields (TITLE, ID, ..., EXPECTED STATES, TIMING, ...) and its scripts.

    A plain `.pkt` file has no fields and one script named "main". A conformance-example file may have no
    script at all (a property check described in prose).
    """

    filename: str
    title: str | None
    id: str | None
    fields: tuple[HeaderField, ...]
    scripts: tuple[Script, ...]

    def field(self, key: str) -> HeaderField | None:
        """The first header field with this key (e.g. "TIMING"), or None."""
        for entry in self.fields:
            if entry.key == key:
                return entry
        return None

    def script(self, name: str) -> Script:
        """The first script with this name ("main", "part B"); KeyError when there is none."""
        for script in self.scripts:
            if script.name == name:
                return script
        raise KeyError(name)
