"""Run drill scripts (packetdrill notation) against one `stack.Host` on a virtual clock.

The stack under test (SUT) is one Host at 192.168.0.1 (packetdrill's local side); the script plays the
peer at 192.0.2.1. `<` lines are built and injected with `host.receive()`; `>` lines must match what
`host.poll()` emits; system calls go to the host's sockets; `//=` lines check the SUT's connection state.

Virtual clock. Time is integer microseconds from the script's start. Before each statement the clock jumps
through the SUT's timer deadlines up to the statement's time, so a 2-hour keepalive costs nothing. Nothing
ever waits on the wall clock, and a run is reproducible (`RunConfig.seed` fixes the SUT's ISNs and TS
offsets).

Timing (packetdrill run.c `verify_time()` / `adjust_relative_event_times()`):

* `+x` is relative to the time the previous *event* actually happened (for an outbound segment: when the
  SUT really sent it), except that an inbound packet after an inbound packet is anchored to that packet's
  scripted time. `//=` assertions and untimed sysctl lines are not events (packetdrill sees comments).
* An outbound segment expected at T must come out within T +- tolerance, tolerance = max(tolerance_usecs
  (4000), tolerance_percent (12.5 %) of the scripted gap since the previous event). A range `a~b` widens
  the window to [a - tol, b + tol]; `*` accepts any time.
* Every segment the SUT sends must be matched, in order, by the `>` lines. One that no line expects fails
  the script: at the `>` line it reaches (as a mismatch), at the first other statement scheduled more than
  tolerance_usecs after it was sent ("unexpected outbound segment"), or at the end of the script if it was
  sent by then. Like packetdrill, the clock is not run on after the last statement: what the SUT would do
  later is not checked.

Sequence numbers. Each 4-tuple has its own relative sequence space. The SUT's ISN is learned from its first
SYN or SYN-ACK on the tuple (script value + offset = wire value, the offset fixed by that first segment); a
retransmitted SYN must carry the same ISN. The peer's sequence numbers are used as written (peer ISN 0 in
the script is ISN 0 on the wire), as in packetdrill, unless `RunConfig.peer_seq_offset` shifts them. A new
incarnation may give the SUT a new ISN: after a connect() call, or a peer SYN with another ISN on the same
tuple. Nothing is forgotten at that point (a SYN in ESTABLISHED gets a challenge ACK, an old SYN in
TIME_WAIT an ACK, both in the old space); the next SYN / SYN-ACK line decides: written as 0 it starts a
fresh relative space (its real ISN is learned), written as N != 0 it states the new ISN in the previous
space and is compared there (so a script can assert Linux's TIME_WAIT reopen ISN, tw_snd_nxt + 65537).

Options. Inbound options are encoded exactly as written; an inbound `TS ecr N` is translated to the SUT's
real TS val: N is looked up among the `TS val` values of the `>` lines matched so far (their real values
are recorded), else shifted by the offset of the latest such pair. Inbound SACK blocks are in the SUT's
sequence space. Outbound: `<...>` = not checked; no options written = the SUT must send none; otherwise
the option list must match in wire order, with TS val/ecr values not compared (presence and position are).
`win` is compared (raw 16-bit field) only when written. Flags are compared exactly, PSH included.

Ports. Server scripts: `bind(3, ..., ...)` binds 192.168.0.1:8080 and segments without a port override come
from 192.0.2.1:40000. Client scripts: `connect(3, ..., ...)` goes to 192.0.2.1:8080 and the SUT's port is
learned from its SYN. `< 40001>8080 S ...` selects other ports (several connections).

System calls. fds are the script's names: `socket(...) = 3` / `accept(...) = 4` register the written number
(the next free one from 3 when `...`). A socket is blocking unless O_NONBLOCK was set (fcntl, SOCK_NONBLOCK;
accepted sockets do not inherit it). A blocking call that cannot complete waits, while the script goes on
with its packets (packetdrill's system call thread); it must return at its end time (`+0...0.2`), or at its
own time when no `...` is written, within tolerance. connect() completes on ESTABLISHED or an error,
accept() when the queue is non-empty, read() on data / EOF / error, write() when everything is queued,
close() with SO_LINGER {1, N>0} when the FIN is acknowledged or after N s (Linux waits even on a
non-blocking socket: inet_release() ignores O_NONBLOCK). Return values and errno names are compared exactly;
the errno text is not.

State assertions (`//=`, tcpplay's extension). `//= SUT: STATE` checks, at the time of the previous line,
the connection under test: the 4-tuple of the latest segment in or out (or accepted), or before any
segment the latest socket (LISTEN for a listener, CLOSED for a fresh one). A connection that no longer
exists matches CLOSED, and LISTEN when a listener still holds its port (the README's meaning).
`//= +N SUT: STATE` first runs the SUT's timers N seconds past the previous line (no packets are injected);
a later statement scheduled before that time is an ERROR. `//= PEER: ...` is noted, not checked: the
script is the peer.

Environment. The host starts with Linux 6.x defaults where tcpplay's own defaults differ
(`LINUX_DEFAULTS`: tcp_syn_linear_timeouts=4 since Linux 6.5), then applies the script's sysctls.
"""

from __future__ import annotations

import errno as errno_mod
import os
import socket as pysocket
import struct
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from stack import Host, Socket, State
from stack.events import Event, SegmentDropped, SegmentSent, StateChanged
from stack.settings import Settings
from stack.wire import (
    ACK,
    FIN,
    RST,
    SYN,
    Malformed,
    Option,
    Segment,
    build_packet,
    encode_options,
    parse_packet,
    tcp_checksum,
)
from tcpplay.drill.ast import (
    Array,
    BitOr,
    Call,
    DrillFile,
    EllipsisExpr,
    Expr,
    IntLit,
    Name,
    OptionSpec,
    Packet,
    Script,
    StateAssert,
    Statement,
    StringLit,
    Struct,
    Syscall,
    Sysctl,
    SysctlSetting,
    Unsupported,
)
from tcpplay.drill.parser import DrillSyntaxError, parse_bytes
from tcpplay.drill.report import DrillEvent, EventKind, Failure, FileResult, ScriptResult, Status, format_time
from tcpplay.format import option_text, tcpdump_flags, tcpdump_line
from tcpplay.scriptfile import read_script

__all__ = [
    "LINUX_DEFAULTS",
    "SYSCTLS",
    "Observer",
    "RunConfig",
    "run_file",
    "run_path",
    "run_script",
]

Observer = Callable[[DrillEvent], None]

_MASK = 0xFFFFFFFF
_SEC = 1_000_000
_MAX_STEPS = 200_000  # timer firings per clock advance; more means the stack's timers do not progress

LINUX_DEFAULTS: Mapping[str, Any] = {"tcp_syn_linear_timeouts": 4}
"""Settings in which tcpplay's defaults differ from the Linux 6.x kernel the scenarios were validated on.
tcpplay teaches the classic SYN schedule by default; packetdrill scripts expect the kernel's."""

# --------------------------------------------------------------------------------------------- sysctls

SYSCTLS: Mapping[str, str] = {
    **{
        f"net.ipv4.{name}": name
        for name in (
            "tcp_syn_retries",
            "tcp_synack_retries",
            "tcp_syn_linear_timeouts",
            "tcp_early_retrans",
            "tcp_retries1",
            "tcp_retries2",
            "tcp_orphan_retries",
            "tcp_rto_max_ms",
            "tcp_fin_timeout",
            "tcp_max_tw_buckets",
            "tcp_tw_reuse",
            "tcp_tw_reuse_delay",
            "tcp_rfc1337",
            "tcp_keepalive_time",
            "tcp_keepalive_intvl",
            "tcp_keepalive_probes",
            "tcp_max_syn_backlog",
            "tcp_syncookies",
            "tcp_abort_on_overflow",
            "tcp_challenge_ack_limit",
            "tcp_invalid_ratelimit",
            "tcp_timestamps",
            "tcp_sack",
            "tcp_dsack",
            "tcp_window_scaling",
            "tcp_rmem",
            "tcp_wmem",
            "tcp_congestion_control",
            "ip_local_port_range",
        )
    },
    "net.core.somaxconn": "somaxconn",
    "net.core.rmem_max": "rmem_max",
    "net.core.wmem_max": "wmem_max",
}
"""Linux sysctl name -> stack setting of the same meaning and unit."""

_SCALED_SYSCTLS: Mapping[str, tuple[str, int]] = {"net.ipv4.tcp_rto_min_us": ("tcp_rto_min_ms", 1000)}
"""Linux sysctls whose unit differs from the setting's: name -> (setting, divisor)."""

_NOOP_SYSCTLS: Mapping[str, str] = {
    "net.ipv4.tcp_no_metrics_save": "1",  # tcpplay never caches per-destination metrics
    "net.ipv4.tcp_ecn": "0",  # tcpplay does not do ECN
}
"""Sysctls accepted when set to the value that describes what the stack always does anyway."""


def _sysctl_target(setting: SysctlSetting) -> tuple[str, Any] | None:
    """(stack setting, value) for one sysctl; None for an accepted no-op; ValueError when unknown/bad."""
    name = setting.full_name
    value: Any = setting.value
    if name in _NOOP_SYSCTLS:
        if value.strip() != _NOOP_SYSCTLS[name]:
            raise ValueError(
                f"sysctl {name}={value}: tcpplay only models {name}={_NOOP_SYSCTLS[name]} "
                "(what its stack always does)"
            )
        return None
    if name in _SCALED_SYSCTLS:
        target, divisor = _SCALED_SYSCTLS[name]
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"sysctl {name}={value}: not a number") from None
        if number % divisor:
            raise ValueError(f"sysctl {name}={value}: tcpplay's {target} needs a multiple of {divisor}")
        return target, number // divisor
    mapped = SYSCTLS.get(name)
    if mapped is None:
        raise ValueError(f"unknown sysctl {name} (tcpplay's stack has no such setting)")
    return mapped, value


def _check_sysctl(setting: SysctlSetting) -> tuple[str, Any] | None:
    target = _sysctl_target(setting)
    if target is None:
        return None
    name, value = target
    probe = Settings()
    if name not in probe.names():
        raise ValueError(f"sysctl {setting.full_name}: this stack has no setting {name}")
    try:
        probe.set(name, value)
    except ValueError as exc:
        raise ValueError(f"sysctl {setting.full_name}={setting.value}: {exc}") from None
    return name, getattr(probe, name)


# ------------------------------------------------------------------------------------------- constants

_O_RDONLY, _O_WRONLY, _O_RDWR = 0, 1, 2
_O_NONBLOCK = os.O_NONBLOCK
_F_GETFL, _F_SETFL = 3, 4

_CONSTANTS: dict[str, int] = {
    "AF_INET": pysocket.AF_INET,
    "PF_INET": pysocket.AF_INET,
    "SOCK_STREAM": pysocket.SOCK_STREAM,
    "SOCK_NONBLOCK": getattr(pysocket, "SOCK_NONBLOCK", _O_NONBLOCK),
    "IPPROTO_TCP": pysocket.IPPROTO_TCP,
    "IPPROTO_IP": 0,
    "SOL_TCP": pysocket.IPPROTO_TCP,
    "SOL_SOCKET": pysocket.SOL_SOCKET,
    "SO_REUSEADDR": pysocket.SO_REUSEADDR,
    "SO_KEEPALIVE": pysocket.SO_KEEPALIVE,
    "SO_LINGER": pysocket.SO_LINGER,
    "SO_ERROR": pysocket.SO_ERROR,
    "SO_RCVBUF": pysocket.SO_RCVBUF,
    "SO_SNDBUF": pysocket.SO_SNDBUF,
    "SO_TYPE": pysocket.SO_TYPE,
    "SO_ACCEPTCONN": getattr(pysocket, "SO_ACCEPTCONN", 30),
    "TCP_NODELAY": pysocket.TCP_NODELAY,
    "TCP_MAXSEG": pysocket.TCP_MAXSEG,
    "TCP_KEEPIDLE": getattr(pysocket, "TCP_KEEPIDLE", 4),
    "TCP_KEEPINTVL": getattr(pysocket, "TCP_KEEPINTVL", 5),
    "TCP_KEEPCNT": getattr(pysocket, "TCP_KEEPCNT", 6),
    "SHUT_RD": pysocket.SHUT_RD,
    "SHUT_WR": pysocket.SHUT_WR,
    "SHUT_RDWR": pysocket.SHUT_RDWR,
    "F_GETFL": _F_GETFL,
    "F_SETFL": _F_SETFL,
    "O_RDONLY": _O_RDONLY,
    "O_WRONLY": _O_WRONLY,
    "O_RDWR": _O_RDWR,
    "O_NONBLOCK": _O_NONBLOCK,
    "MSG_PEEK": pysocket.MSG_PEEK,
    "MSG_DONTWAIT": getattr(pysocket, "MSG_DONTWAIT", 0x40),
    "INADDR_ANY": 0,
}

_SOCKOPTS: dict[tuple[int, int], str] = {
    (pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR): "SO_REUSEADDR",
    (pysocket.SOL_SOCKET, pysocket.SO_KEEPALIVE): "SO_KEEPALIVE",
    (pysocket.SOL_SOCKET, pysocket.SO_LINGER): "SO_LINGER",
    (pysocket.SOL_SOCKET, pysocket.SO_RCVBUF): "SO_RCVBUF",
    (pysocket.SOL_SOCKET, pysocket.SO_SNDBUF): "SO_SNDBUF",
    (pysocket.IPPROTO_TCP, pysocket.TCP_NODELAY): "TCP_NODELAY",
    (pysocket.IPPROTO_TCP, pysocket.TCP_MAXSEG): "TCP_MAXSEG",
    (pysocket.IPPROTO_TCP, _CONSTANTS["TCP_KEEPIDLE"]): "TCP_KEEPIDLE",
    (pysocket.IPPROTO_TCP, _CONSTANTS["TCP_KEEPINTVL"]): "TCP_KEEPINTVL",
    (pysocket.IPPROTO_TCP, _CONSTANTS["TCP_KEEPCNT"]): "TCP_KEEPCNT",
}
"""Socket options setsockopt() supports (the stack's Socket implements these)."""

_GETSOCKOPTS: dict[tuple[int, int], str] = {
    **_SOCKOPTS,
    (pysocket.SOL_SOCKET, pysocket.SO_ERROR): "SO_ERROR",
    (pysocket.SOL_SOCKET, pysocket.SO_TYPE): "SO_TYPE",
    (pysocket.SOL_SOCKET, _CONSTANTS["SO_ACCEPTCONN"]): "SO_ACCEPTCONN",
}

_SYSCALLS = frozenset(
    {
        "socket",
        "bind",
        "listen",
        "accept",
        "connect",
        "read",
        "recv",
        "write",
        "send",
        "close",
        "shutdown",
        "setsockopt",
        "getsockopt",
        "fcntl",
    }
)

_WOULD_BLOCK = frozenset({errno_mod.EAGAIN, errno_mod.EINPROGRESS, errno_mod.EALREADY})
_LINGER_STATES = frozenset({State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK})


def _errno_name(code: int | None) -> str:
    if code is None:
        return ""
    return errno_mod.errorcode.get(code, str(code))


def _errno_number(name: str) -> int | None:
    value = getattr(errno_mod, name, None)
    return value if isinstance(value, int) and name.startswith("E") else None


def _strerror(code: int) -> str:
    return os.strerror(code)


# ------------------------------------------------------------------------------------------- exceptions


class _Stop(Exception):
    """Ends a run: the status and, unless PASS, the failure."""

    def __init__(self, status: Status, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.status = status
        self.failure = failure


MAX_WRITE = 64 << 20  # the largest write() a script may ask for: the bytes are built in memory


class _ScriptError(Exception):
    """A statement that cannot be executed as written (becomes an ERROR result at its line)."""


class _UnsupportedError(Exception):
    """A statement using something tcpplay does not model (becomes an UNSUPPORTED result)."""


# ------------------------------------------------------------------------------------------ run config


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """How scripts are run. The defaults are packetdrill's (tolerance, addresses, ports)."""

    tolerance_usecs: int = 4000
    tolerance_percent: float = 12.5
    seed: int = 1
    local_ip: str = "192.168.0.1"
    remote_ip: str = "192.0.2.1"
    bind_port: int = 8080  # bind(fd, ..., ...) uses it (server scripts)
    connect_port: int = 8080  # connect(fd, ..., ...) goes there (client scripts)
    remote_port: int = 40000  # the peer's port in server scripts (packets without a port override)
    peer_seq_offset: int = 0  # wire seq of the peer = script seq + this (0: the script's values as is)
    settings: Mapping[str, Any] = field(default_factory=lambda: dict(LINUX_DEFAULTS))


# ------------------------------------------------------------------------------------------ internals


@dataclass(slots=True)
class _Flow:
    """One 4-tuple's sequence spaces and TS mapping (keyed by (SUT port, peer port))."""

    sut_port: int
    peer_port: int
    sut_offset: int | None = None  # wire seq of the SUT = script seq + sut_offset (mod 2**32)
    sut_learned: bool = False  # fixed by a matched SYN / SYN-ACK line
    peer_isn: int | None = None  # the peer's ISN as written on its SYN
    ts_map: dict[int, int] = field(default_factory=dict)  # script TS val -> real TS val of the SUT
    ts_last: tuple[int, int] | None = None  # latest (script val, real val)
    reincarnation: bool = False  # a new incarnation may have started: see `syn_in_old_space`

    def new_incarnation(self) -> None:
        """The SUT may choose a new ISN (a connect(), or a peer SYN with a new ISN). Nothing is forgotten
        yet: segments that are not SYNs stay in the current space (e.g. a challenge ACK to a SYN in
        ESTABLISHED, an ACK from TIME_WAIT); the next SYN line decides (see `syn_in_old_space`)."""
        if self.sut_offset is not None:
            self.reincarnation = True

    def learns_isn(self, stmt: Packet) -> bool:
        """A SYN line that fixes the SUT's ISN: the first one of the tuple or of a new incarnation."""
        return bool(stmt.flag_bits & SYN) and (not self.sut_learned or self.reincarnation)

    def syn_in_old_space(self, stmt: Packet) -> bool:
        """A new incarnation's SYN line written with a nonzero seq states the new ISN in the current
        (previous incarnation's) sequence space -- e.g. Linux's TIME_WAIT reopen ISN, tw_snd_nxt + 65537 --
        and is compared there. Written as 0 it starts a fresh relative space."""
        return self.learns_isn(stmt) and self.reincarnation and stmt.start != 0


@dataclass(slots=True)
class _Emitted:
    """A segment the SUT sent that no `>` line has matched yet."""

    time: int
    packet: bytes
    segment: Segment
    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What a system call did: return value, errno, and for getsockopt a value mismatch."""

    ret: int
    errno: int | None = None
    would_block: bool = False
    value: str | None = None  # getsockopt: the value read, as the script writes it
    value_mismatch: str | None = None

    def text(self) -> str:
        if self.would_block:
            return "(blocked)"
        out = f"{self.ret}"
        if self.errno is not None:
            out += f" {_errno_name(self.errno)} ({_strerror(self.errno)})"
        return out


_BLOCKED = _Outcome(-1, None, would_block=True)


@dataclass(slots=True)
class _Op:
    """A system call in progress. `start` runs it; `retry` (default: start) runs it again while blocked.
    mode: "fd" blocks if the fd is blocking, "always" blocks regardless, "never" never blocks."""

    start: Callable[[], _Outcome]
    retry: Callable[[], _Outcome] | None = None
    mode: Literal["fd", "always", "never"] = "never"
    wake: int | None = None  # when a time-based wait (SO_LINGER) ends by itself


@dataclass(slots=True)
class _Blocked:
    stmt: Syscall
    op: _Op
    start: int
    end: int  # when it must return
    tol: int
    call_text: str

    @property
    def deadline(self) -> int:
        return self.end + self.tol


@dataclass(slots=True)
class _Fd:
    number: int
    sock: Socket
    nonblocking: bool = False


@dataclass(frozen=True, slots=True)
class _When:
    start: int  # scripted time of the event (absolute microseconds)
    end: int | None  # end of a time range
    call_end: int | None  # blocking system call: scripted return time
    tol: int
    any: bool = False


# ---------------------------------------------------------------------------------------------- runner


class _Runner:
    def __init__(
        self,
        script: Script,
        filename: str,
        config: RunConfig,
        observer: Observer | None,
        host: Host | None = None,
        stop_after: int | None = None,
    ) -> None:
        self.script = script
        self.filename = filename
        self.cfg = config
        self.observer = observer
        if host is None:
            host = Host(config.local_ip, seed=config.seed, **dict(config.settings))
        else:
            host.set(**dict(config.settings))
        self.host = host
        self.stop_after = stop_after
        self.now = 0
        self.trace: list[DrillEvent] = []
        self.notes: list[str] = []
        self.pending: deque[_Emitted] = deque()
        self.blocked: _Blocked | None = None
        self.prev_actual = 0  # when the previous event happened (base of relative times)
        self.prev_scripted = 0  # its scripted time (base of the tolerance's gap)
        self.prev_inbound: int | None = None  # scripted time of the previous event if it was inbound
        self.prev_line_time = 0  # time of the previous line, events and assertions (base of //= +N)
        self.horizon: tuple[int, int] | None = None  # (time, line) a delayed assertion advanced the clock to
        self.last_line: Statement | None = None
        self.fds: dict[int, _Fd] = {}
        self.flows: dict[tuple[int, int], _Flow] = {}
        self.default_ports: tuple[int, int] | None = None  # (SUT port, peer port) without an override
        self.subject: tuple[Literal["flow"], int, int] | tuple[Literal["fd"], int] | None = None
        self.fresh_active_open = False
        self.sent_reasons: deque[tuple[bytes, str]] = deque()
        self.current: Statement | None = None
        self._unsubscribe = self.host.subscribe(self._on_stack_event)

    # ------------------------------------------------------------------------------------------ driver

    def run(self) -> ScriptResult:
        status = Status.PASS
        failure: Failure | None = None
        try:
            self._prescan()
            for index, stmt in enumerate(self.script.statements):
                if self.stop_after is not None and index >= self.stop_after:
                    break  # a partial run (the TUI steps through a script statement by statement)
                self.current = stmt
                self._execute(stmt)
                self.last_line = stmt
            self.current = None
            if self.stop_after is None or self.stop_after >= len(self.script.statements):
                self._finish()
        except _Stop as stop:
            status, failure = stop.status, stop.failure
        finally:
            self._unsubscribe()
        return ScriptResult(
            filename=self.filename,
            name=self.script.name,
            first_line=self.script.first_line,
            status=status,
            failure=failure,
            trace=tuple(self.trace),
            notes=tuple(self.notes),
            end_time=self.now,
        )

    def _execute(self, stmt: Statement) -> None:
        try:
            if isinstance(stmt, Packet):
                if stmt.inbound:
                    self._inbound(stmt)
                else:
                    self._outbound(stmt)
            elif isinstance(stmt, Syscall):
                self._syscall(stmt)
            elif isinstance(stmt, Sysctl):
                self._sysctl(stmt)
            elif isinstance(stmt, StateAssert):
                self._state_assert(stmt)
            else:  # Unsupported: the prescan already stopped the run
                raise _UnsupportedError(stmt.message)
        except _ScriptError as exc:
            raise _Stop(Status.ERROR, self._failure(stmt, str(exc))) from None
        except _UnsupportedError as exc:
            raise _Stop(Status.UNSUPPORTED, self._failure(stmt, str(exc))) from None

    def _failure(
        self,
        stmt: Statement | None,
        reason: str,
        expected: str | None = None,
        actual: str | None = None,
    ) -> Failure:
        return Failure(
            line=stmt.line if stmt is not None else None,
            source=stmt.source if stmt is not None else None,
            reason=reason,
            expected=expected,
            actual=actual,
            time=self.now,
        )

    def _fail(
        self, stmt: Statement | None, reason: str, expected: str | None = None, actual: str | None = None
    ) -> _Stop:
        return _Stop(Status.FAIL, self._failure(stmt, reason, expected, actual))

    def _event(self, kind: EventKind, text: str, **extra: Any) -> None:
        event = DrillEvent(time=self.now, kind=kind, text=text, **extra)
        self.trace.append(event)
        if self.observer is not None:
            self.observer(event)

    # ----------------------------------------------------------------------------------------- prescan

    def _prescan(self) -> None:
        """Refuse scripts with unsupported constructs or unusable statements before running anything."""
        for stmt in self.script.statements:
            if isinstance(stmt, Unsupported):
                raise _Stop(Status.UNSUPPORTED, self._failure(stmt, stmt.message))
        for stmt in self.script.statements:
            try:
                if isinstance(stmt, Syscall):
                    self._prescan_syscall(stmt)
                elif isinstance(stmt, Sysctl):
                    for setting in stmt.settings:
                        _check_sysctl(setting)
                elif isinstance(stmt, Packet) and stmt.inbound:
                    if stmt.win is None:
                        raise _ScriptError("an inbound packet needs 'win N' (as in packetdrill)")
                    if len(encode_options(self._option_list(stmt.options or (), None))) > 40:
                        raise _ScriptError("more than 40 bytes of TCP options")
            except _UnsupportedError as exc:
                raise _Stop(Status.UNSUPPORTED, self._failure(stmt, f"{exc} at line {stmt.line}")) from None
            except (_ScriptError, ValueError) as exc:
                raise _Stop(Status.ERROR, self._failure(stmt, str(exc))) from None

    def _prescan_syscall(self, stmt: Syscall) -> None:
        if stmt.name not in _SYSCALLS:
            raise _UnsupportedError(f"unsupported: system call {stmt.name}()")
        if stmt.errno is not None and _errno_number(stmt.errno) is None:
            raise _ScriptError(f"unknown errno name {stmt.errno}")
        for arg in stmt.args:
            self._eval(arg)  # a constant tcpplay does not know is unsupported
        if stmt.name in ("setsockopt", "getsockopt"):
            if len(stmt.args) != 5:
                raise _ScriptError(f"{stmt.name}() takes 5 arguments, got {len(stmt.args)}")
            level, name = self._eval(stmt.args[1]), self._eval(stmt.args[2])
            table = _SOCKOPTS if stmt.name == "setsockopt" else _GETSOCKOPTS
            if (level, name) not in table:
                shown = f"{_expr_text(stmt.args[1])}, {_expr_text(stmt.args[2])}"
                raise _UnsupportedError(f"unsupported: socket option {shown} in {stmt.name}()")
        if stmt.name == "fcntl":
            cmd = self._eval(stmt.args[1]) if len(stmt.args) > 1 else None
            if cmd not in (_F_GETFL, _F_SETFL):
                raise _UnsupportedError("unsupported: fcntl() command other than F_GETFL / F_SETFL")
        if stmt.name in ("recv", "send") and len(stmt.args) > 3:
            flags = self._eval(stmt.args[3])
            allowed = _CONSTANTS["MSG_DONTWAIT"] | (_CONSTANTS["MSG_PEEK"] if stmt.name == "recv" else 0)
            if isinstance(flags, int) and flags & ~allowed:
                raise _UnsupportedError(f"unsupported: {stmt.name}() flags {_expr_text(stmt.args[3])}")

    # ----------------------------------------------------------------------------------------- timing

    def _when(self, stmt: Packet | Syscall | Sysctl) -> _When:
        spec = stmt.time
        assert spec is not None
        cfg = self.cfg
        if spec.kind == "any":
            return _When(self.now, None, None, cfg.tolerance_usecs, any=True)
        inbound = isinstance(stmt, Packet) and stmt.inbound
        if spec.kind == "abs":
            base = 0
        elif inbound and self.prev_inbound is not None:
            base = self.prev_inbound  # packetdrill: inbound after inbound is anchored to the scripted time
        else:
            base = self.prev_actual
        start = base + spec.usecs
        end = base + spec.range_end_usecs if spec.range_end_usecs is not None else None
        call_end = None
        if isinstance(stmt, Syscall) and stmt.end_usecs is not None:
            call_end = base + stmt.end_usecs
        return _When(start, end, call_end, self._tolerance(start - self.prev_scripted))

    def _tolerance(self, gap: int) -> int:
        dynamic = int(self.cfg.tolerance_percent / 100.0 * gap) if gap > 0 else 0
        return max(self.cfg.tolerance_usecs, dynamic)

    def _exec_time(self, stmt: Statement, when: _When) -> int:
        """When a non-outbound event runs: its scripted time, or now if the previous event ran late."""
        if self.horizon is not None and when.start < self.horizon[0]:
            time, line = self.horizon
            raise _ScriptError(
                f"scheduled at {format_time(when.start)} s, before the state assertion at line {line} "
                f"that already advanced the clock to {format_time(time)} s"
            )
        if when.start >= self.now:
            return when.start
        if self.now - when.start > when.tol:
            raise self._fail(
                stmt,
                f"timing error: the script schedules this at {format_time(when.start)} s, but the previous "
                f"event only happened at {format_time(self.now)} s (tolerance {format_time(when.tol)} s)",
            )
        return self.now

    def _done_event(self, when: _When, actual: int, *, inbound: bool) -> None:
        self.prev_actual = actual
        self.prev_scripted = when.start if not when.any else actual
        self.prev_inbound = when.start if inbound else None
        self.prev_line_time = actual

    # ------------------------------------------------------------------------------------------ clock

    def _next_wakeup(self) -> int | None:
        deadline = self.host.next_deadline()
        wake = self.blocked.op.wake if self.blocked is not None else None
        if wake is not None and (deadline is None or wake < deadline):
            return wake
        return deadline

    def _advance_to(self, target: int) -> None:
        """Move the clock to target, firing the SUT's timers (and ending time-based waits) on the way."""
        steps = 0
        while (wake := self._next_wakeup()) is not None and wake <= target:
            self._step(max(wake, self.now))
            steps += 1
            if steps > _MAX_STEPS:
                raise _ScriptError(f"the stack's timers fire without end (over {_MAX_STEPS} firings)")
        self._step(max(target, self.now))

    def _step(self, time: int) -> None:
        blocked = self.blocked
        if blocked is not None and time > blocked.deadline:
            self.now = blocked.deadline
            raise self._fail(
                blocked.stmt,
                f"{blocked.call_text} is still blocked at {format_time(blocked.deadline)} s: expected it "
                f"to return at {format_time(blocked.end)} s (tolerance {format_time(blocked.tol)} s)",
                expected=f"returns at {format_time(blocked.end)} s",
                actual=f"still blocked at {format_time(blocked.deadline)} s",
            )
        self.now = time
        self._collect()
        self._retry_blocked()

    def _collect(self) -> None:
        """Take what the SUT sends now and queue it for the `>` lines."""
        for packet in self.host.poll(self.now):
            parsed = parse_packet(packet, verify_checksum=True)
            if isinstance(parsed, Malformed):
                raise self._fail(
                    self.current,
                    f"the SUT sent a malformed packet ({parsed.reason}: {parsed.detail})",
                    actual=packet.hex(),
                )
            reason = self._reason_for(packet)
            flow = self._flow(parsed.sport, parsed.dport)
            if parsed.flags & SYN and not parsed.flags & ACK and self.fresh_active_open:
                # A new active open: its ISN and port are new, whatever the tuple held before.
                self.fresh_active_open = False
                flow.new_incarnation()
                self.default_ports = (parsed.sport, parsed.dport)
            if parsed.flags & SYN and not flow.sut_learned:
                flow.sut_offset = parsed.seq  # provisional (shown as 0) until a `>` line fixes it
            text = self._text_out(parsed)
            self.pending.append(_Emitted(self.now, packet, parsed, text, reason))
            self._event("out", text, packet=packet, segment=parsed, detail=reason)

    def _reason_for(self, packet: bytes) -> str:
        while self.sent_reasons:
            sent, reason = self.sent_reasons.popleft()
            if sent is packet:
                return reason
        return ""

    def _on_stack_event(self, event: Event) -> None:
        if isinstance(event, SegmentSent):
            self.sent_reasons.append((event.packet, event.reason))
        elif isinstance(event, StateChanged):
            local = f"{event.conn[0]}:{event.conn[1]}"
            remote = f"{event.conn[2]}:{event.conn[3]}"
            self._event(
                "state",
                f"{local} > {remote} {event.old} -> {event.new} ({event.cause})",
                conn=event.conn,
                old_state=str(event.old),
                new_state=str(event.new),
                detail=event.cause,
            )
        elif isinstance(event, SegmentDropped):
            seg = event.segment
            if seg is not None and seg.dst == self.cfg.local_ip:
                shown = self._text_in(seg)
            elif seg is not None:
                shown = tcpdump_line(seg)
            else:
                shown = "undecodable packet"
            detail = f"{event.reason}: {event.detail}" if event.detail else event.reason
            self._event("drop", f"SUT dropped {shown} ({detail})", segment=seg, detail=event.reason)

    # ------------------------------------------------------------------------------------------ flows

    def _flow(self, sut_port: int, peer_port: int) -> _Flow:
        key = (sut_port, peer_port)
        flow = self.flows.get(key)
        if flow is None:
            flow = self.flows[key] = _Flow(sut_port, peer_port)
        return flow

    def _ports(self, stmt: Packet) -> tuple[int, int] | None:
        """(SUT port, peer port) the line names; None when it uses the default and that is not known yet."""
        if stmt.src_port is not None and stmt.dst_port is not None:
            if stmt.inbound:
                return stmt.dst_port, stmt.src_port
            return stmt.src_port, stmt.dst_port
        return self.default_ports

    def _text_out(self, seg: Segment) -> str:
        flow = self.flows.get((seg.sport, seg.dport))
        seq_base = flow.sut_offset if flow is not None else None
        return tcpdump_line(seg, rel_seq_base=seq_base, rel_ack_base=self.cfg.peer_seq_offset & _MASK)

    def _text_in(self, seg: Segment) -> str:
        flow = self.flows.get((seg.dport, seg.sport))
        ack_base = flow.sut_offset if flow is not None else None
        return tcpdump_line(seg, rel_seq_base=self.cfg.peer_seq_offset & _MASK, rel_ack_base=ack_base)

    # ----------------------------------------------------------------------------------------- inbound

    def _option_list(self, specs: tuple[OptionSpec, ...], flow: _Flow | None) -> list[Option]:
        out: list[Option] = []
        for spec in specs:
            values = spec.values
            if spec.name == "TS" and flow is not None:
                values = (values[0], self._map_ecr(values[1], flow))
            elif spec.name == "sack" and flow is not None:
                offset = flow.sut_offset or 0
                values = tuple((v + offset) & _MASK for v in values)
            out.append(Option(spec.name, values))
        return out

    def _map_ecr(self, ecr: int, flow: _Flow) -> int:
        if ecr in flow.ts_map:
            return flow.ts_map[ecr]
        if ecr == 0:
            return 0
        if flow.ts_last is not None:
            script_val, real_val = flow.ts_last
            return (ecr - script_val + real_val) & _MASK
        return ecr

    def _inbound(self, stmt: Packet) -> None:
        when = self._when(stmt)
        exec_time = self._exec_time(stmt, when)
        self._advance_to(exec_time)
        self._check_unexpected(stmt)
        cfg = self.cfg
        ports = self._ports(stmt)
        if ports is None:
            ports = (cfg.bind_port, cfg.remote_port)
            self.default_ports = ports
        sut_port, peer_port = ports
        flow = self._flow(sut_port, peer_port)
        if stmt.flag_bits & SYN and not stmt.flag_bits & ACK:
            if flow.peer_isn is not None and flow.peer_isn != stmt.start:
                flow.new_incarnation()  # perhaps a new incarnation: the SUT may answer with a new ISN
            flow.peer_isn = stmt.start
        has_sack = any(option.name == "sack" for option in stmt.options or ())
        if flow.sut_offset is None and (stmt.ack is not None or has_sack):
            flow.sut_offset = 0  # nothing learned yet: the script's numbers are the wire's
        seq = (stmt.start + cfg.peer_seq_offset) & _MASK
        ack = ((stmt.ack or 0) + (flow.sut_offset or 0)) & _MASK if stmt.ack is not None else 0
        options = encode_options(self._option_list(stmt.options or (), flow))
        packet = build_packet(
            cfg.remote_ip,
            cfg.local_ip,
            peer_port,
            sut_port,
            seq,
            ack,
            stmt.flag_bits,
            stmt.win if stmt.win is not None else 65535,
            options,
            bytes(stmt.length),
        )
        if stmt.urg is not None:
            packet = _with_urgent(packet, stmt.urg)
        parsed = parse_packet(packet)
        assert not isinstance(parsed, Malformed)
        self.subject = ("flow", sut_port, peer_port)
        self._event("in", self._text_in(parsed), line=stmt.line, packet=packet, segment=parsed)
        self.host.receive(packet, self.now)
        self._collect()
        self._retry_blocked()
        self._done_event(when, self.now, inbound=True)

    def _check_unexpected(self, stmt: Statement) -> None:
        """A segment sent well before a statement that is not a `>` line: no line expects it."""
        limit = self.now - self.cfg.tolerance_usecs
        for emitted in self.pending:
            if emitted.time < limit:
                raise self._fail(
                    stmt,
                    f"unexpected outbound segment sent at {format_time(emitted.time)} s: no '>' line expects "
                    f"a segment before this statement (at {format_time(self.now)} s)",
                    expected="no segment from the SUT",
                    actual=f"{emitted.text} at {format_time(emitted.time)} s",
                )

    # ---------------------------------------------------------------------------------------- outbound

    def _outbound(self, stmt: Packet) -> None:
        when = self._when(stmt)
        if self.horizon is not None and when.start < self.horizon[0] and not when.any:
            self._exec_time(stmt, when)  # raises the script error
        low = when.start - when.tol
        high = None if when.any else (when.end if when.end is not None else when.start) + when.tol
        if not self.pending:
            self._wait_output(high)
        expected = self._expected_text(stmt)
        if not self.pending:
            by = "" if high is None else f" by {format_time(high)} s"
            raise self._fail(
                stmt,
                f"timing error: expected a segment {self._window_text(when)}, but the SUT sent nothing{by}"
                + self._next_timer_hint(),
                expected=f"{expected} {self._window_text(when)}",
                actual=f"no segment{by}",
            )
        candidate = self.pending[0]
        diffs = self._diffs(stmt, candidate.segment)
        if diffs:
            reason = f"outbound segment does not match: {'; '.join(diffs)}"
            for later in list(self.pending)[1:]:
                if not self._diffs(stmt, later.segment):
                    reason = (
                        "unexpected outbound segment: the SUT sent it before the expected one "
                        f"(which followed at {format_time(later.time)} s)"
                    )
                    break
            raise self._fail(stmt, reason, expected=expected, actual=candidate.text)
        if not when.any and (candidate.time < low or (high is not None and candidate.time > high)):
            early = candidate.time < low
            raise self._fail(
                stmt,
                f"timing error: outbound segment sent {'too early' if early else 'too late'}: expected "
                f"{self._window_text(when)}, sent at {format_time(candidate.time)} s",
                expected=f"{expected} {self._window_text(when)}",
                actual=f"{candidate.text} at {format_time(candidate.time)} s",
            )
        self.pending.popleft()
        self._learn(stmt, candidate.segment)
        self.subject = ("flow", candidate.segment.sport, candidate.segment.dport)
        self._done_event(when, candidate.time, inbound=False)

    def _window_text(self, when: _When) -> str:
        if when.any:
            return "at any time"
        if when.end is not None:
            return (
                f"between {format_time(when.start)} s and {format_time(when.end)} s "
                f"(tolerance {format_time(when.tol)} s)"
            )
        return f"at {format_time(when.start)} s (tolerance {format_time(when.tol)} s)"

    def _next_timer_hint(self) -> str:
        best: tuple[int, str] | None = None
        for conn in self.host.conns.values():
            for name, deadline in conn.timers.items():
                if best is None or deadline < best[0]:
                    best = (deadline, name)
        for listener in self.host.listeners.values():
            for req in listener.syn_queue.values():
                for name, deadline in req.timers.items():
                    if best is None or deadline < best[0]:
                        best = (deadline, name)
        if best is None:
            return "; the SUT has no timer running"
        return f"; the SUT's next timer is '{best[1]}' at {format_time(best[0])} s"

    def _wait_output(self, high: int | None) -> None:
        steps = 0
        while not self.pending:
            wake = self._next_wakeup()
            if wake is None or (high is not None and wake > high):
                return
            self._step(max(wake, self.now))
            steps += 1
            if steps > _MAX_STEPS:
                return

    def _diffs(self, stmt: Packet, seg: Segment) -> list[str]:
        cfg = self.cfg
        diffs: list[str] = []
        ports = self._ports(stmt)
        if seg.src != cfg.local_ip or seg.dst != cfg.remote_ip:
            diffs.append(f"addresses {seg.src} > {seg.dst} (expected {cfg.local_ip} > {cfg.remote_ip})")
        if ports is not None and (seg.sport, seg.dport) != ports:
            diffs.append(f"ports {seg.sport}>{seg.dport} (expected {ports[0]}>{ports[1]})")
        if seg.flags != stmt.flag_bits:
            diffs.append(f"flags [{tcpdump_flags(seg.flags)}] (expected [{tcpdump_flags(stmt.flag_bits)}])")
        flow = self.flows.get((seg.sport, seg.dport))
        learning = flow is None or flow.learns_isn(stmt)
        if flow is not None and flow.syn_in_old_space(stmt):
            seq = (seg.seq - (flow.sut_offset or 0)) & _MASK
            if seq != stmt.start:
                diffs.append(f"seq {seq} (expected {stmt.start}, in the previous incarnation's space)")
        elif not learning:
            offset = flow.sut_offset if flow is not None and flow.sut_offset is not None else 0
            seq = (seg.seq - offset) & _MASK
            if seq != stmt.start:
                diffs.append(f"seq {seq} (expected {stmt.start})")
        if len(seg.payload) != stmt.length:
            diffs.append(f"payload length {len(seg.payload)} (expected {stmt.length})")
        if stmt.ack is not None:
            ack = (seg.ack - cfg.peer_seq_offset) & _MASK
            if ack != stmt.ack:
                diffs.append(f"ack {ack} (expected {stmt.ack})")
        if stmt.win is not None and seg.window != stmt.win:
            diffs.append(f"win {seg.window} (expected {stmt.win})")
        if stmt.urg is not None and seg.urgent != stmt.urg:
            diffs.append(f"urg {seg.urgent} (expected {stmt.urg})")
        if stmt.options is not None:
            problem = self._option_diff(stmt.options, seg.options)
            if problem:
                diffs.append(problem)
        return diffs

    def _option_diff(self, specs: tuple[OptionSpec, ...], actual: tuple[Option, ...]) -> str | None:
        """None if the options match (wire order; TS values not compared), else what differs, with both
        lists: "options [mss 1460] (expected [mss 1460,sackOK,...]): 'sackOK' missing at position 2"."""
        offset = self.cfg.peer_seq_offset
        problem = None
        for index in range(max(len(specs), len(actual))):
            spec = specs[index] if index < len(specs) else None
            opt = actual[index] if index < len(actual) else None
            if spec is None and opt is not None:
                problem = f"extra '{option_text(opt)}' at position {index + 1}"
            elif opt is None and spec is not None:
                problem = f"'{_spec_text(spec, outbound=True)}' missing at position {index + 1}"
            elif spec is not None and opt is not None:
                values = spec.values
                if spec.name == "sack":
                    values = tuple((v + offset) & _MASK for v in values)
                if spec.name != opt.name or (spec.name != "TS" and values != opt.values):
                    wanted = _spec_text(spec, outbound=True)
                    problem = f"'{option_text(opt)}' instead of '{wanted}' at position {index + 1}"
            if problem is not None:
                shown = ",".join(option_text(o) for o in actual)
                wanted = ",".join(_spec_text(s, outbound=True) for s in specs)
                return f"options [{shown}] (expected [{wanted}]): {problem}"
        return None

    def _learn(self, stmt: Packet, seg: Segment) -> None:
        flow = self._flow(seg.sport, seg.dport)
        if stmt.src_port is None and self.default_ports is None:
            self.default_ports = (seg.sport, seg.dport)
        if flow.learns_isn(stmt):
            if not flow.syn_in_old_space(stmt):
                offset = (seg.seq - stmt.start) & _MASK
                if offset != flow.sut_offset:
                    flow.ts_map.clear()
                    flow.ts_last = None
                flow.sut_offset = offset
            flow.sut_learned = True
            flow.reincarnation = False
        elif flow.sut_offset is None:
            flow.sut_offset = 0
        for spec, opt in zip(stmt.options or (), seg.options, strict=False):
            if spec.name == "TS" and opt.name == "TS":
                flow.ts_map[spec.values[0]] = opt.values[0]
                flow.ts_last = (spec.values[0], opt.values[0])

    def _expected_text(self, stmt: Packet) -> str:
        """The `>` line in tcpdump's notation (relative numbers; `*` for what the line leaves open)."""
        cfg = self.cfg
        ports = self._ports(stmt)
        sport, dport = (str(ports[0]), str(ports[1])) if ports is not None else ("*", "*")
        out = f"{cfg.local_ip}.{sport} > {cfg.remote_ip}.{dport}: Flags [{tcpdump_flags(stmt.flag_bits)}]"
        bits = stmt.flag_bits
        if stmt.length:
            out += f", seq {stmt.start}:{stmt.end}"
        elif bits & (SYN | FIN | RST):  # tcpdump prints the seq of these even without payload
            out += f", seq {stmt.start}"
        if stmt.ack is not None:
            out += f", ack {stmt.ack}"
        out += f", win {stmt.win if stmt.win is not None else '*'}"
        if stmt.urg is not None:
            out += f", urg {stmt.urg}"
        if stmt.options is None:
            out += ", options [...]"
        elif stmt.options:
            out += f", options [{','.join(_spec_text(s, outbound=True) for s in stmt.options)}]"
        return out + f", length {stmt.length}"

    # ----------------------------------------------------------------------------------------- sysctl

    def _sysctl(self, stmt: Sysctl) -> None:
        when = None
        if stmt.time is not None:
            when = self._when(stmt)
            self._advance_to(self._exec_time(stmt, when))
            self._check_unexpected(stmt)
        for setting in stmt.settings:
            try:
                target = _check_sysctl(setting)
            except ValueError as exc:
                raise _ScriptError(str(exc)) from None
            if target is None:
                self._event("sysctl", f"{setting.full_name}={setting.value} (no-op)", line=stmt.line)
                continue
            name, value = target
            try:
                self.host.set(**{name: value})
            except ValueError as exc:
                raise _ScriptError(f"sysctl {setting.full_name}={setting.value}: {exc}") from None
            self._event("sysctl", f"{setting.full_name}={setting.value} (setting {name})", line=stmt.line)
        if when is not None:
            self._done_event(when, self.now, inbound=False)

    # ------------------------------------------------------------------------------------ assertions

    def _state_assert(self, stmt: StateAssert) -> None:
        if stmt.role == "PEER":
            note = f"line {stmt.line}: PEER state assertion not checked (the script plays the peer)"
            self.notes.append(note)
            self._event("note", note, line=stmt.line)
            return
        if stmt.delay_usecs:
            target = self.prev_line_time + stmt.delay_usecs
            if self.horizon is not None and target < self.horizon[0]:
                raise _ScriptError("a state assertion cannot go back in time")
            if target > self.now:
                self._advance_to(target)
            self.horizon = (target, stmt.line)
            self.prev_line_time = target
        actual, gone, listener = self._sut_state()
        ok = stmt.state == actual
        if gone:
            # README: LISTEN = only the listener is left; CLOSED = no connection for this 4-tuple.
            ok = stmt.state == "CLOSED" or (stmt.state == "LISTEN" and listener)
        shown = actual
        if gone:
            left = "; the listener is left" if listener else ""
            shown = f"CLOSED (the connection no longer exists{left})"
        verdict = "as asserted" if ok else f"but the script asserts {stmt.state}"
        self._event("check", f"//= SUT: {shown}, {verdict}", line=stmt.line)
        if not ok:
            raise self._fail(
                stmt,
                f"state of the connection under test ({self._subject_text()}) is {shown}, "
                f"expected {stmt.state}",
                expected=stmt.state,
                actual=shown,
            )

    def _subject_text(self) -> str:
        subject = self.subject
        cfg = self.cfg
        if subject is None:
            return "no socket yet"
        if subject[0] == "flow":
            return f"{cfg.local_ip}:{subject[1]} > {cfg.remote_ip}:{subject[2]}"
        return f"fd {subject[1]}"

    def _sut_state(self) -> tuple[str, bool, bool]:
        """(state, the connection is gone, a listener holds its port) of the connection under test."""
        subject = self.subject
        cfg = self.cfg
        if subject is None:
            return "CLOSED", False, False
        if subject[0] == "fd":
            fd = self.fds.get(subject[1])
            if fd is None:
                return "CLOSED", True, False
            return fd.sock.state.value, False, False
        key = (cfg.local_ip, subject[1], cfg.remote_ip, subject[2])
        for snap in self.host.connections():
            if snap.id == key:
                return snap.state.value, False, False
        listener = self.host.listener_for(cfg.local_ip, subject[1]) is not None
        return ("LISTEN" if listener else "CLOSED"), True, listener

    # ----------------------------------------------------------------------------------------- syscalls

    def _syscall(self, stmt: Syscall) -> None:
        when = self._when(stmt)
        exec_time = self._exec_time(stmt, when)
        self._advance_to(exec_time)
        self._check_unexpected(stmt)
        text = _call_text(stmt)
        if self.blocked is not None:
            raise self._fail(
                stmt,
                f"system call while {self.blocked.call_text} (line {self.blocked.stmt.line}) is still "
                f"blocked (it is expected to return at {format_time(self.blocked.end)} s)",
            )
        op = self._make_op(stmt)
        outcome = self._call(stmt, op.start)
        blocks = op.mode == "always" or (op.mode == "fd" and self._fd_blocking(stmt))
        end = when.call_end if when.call_end is not None else exec_time
        end_tol = self._tolerance(end - exec_time)
        if outcome.would_block and blocks:
            self.blocked = _Blocked(stmt, op, exec_time, end, end_tol, text)
            self._event("block", f"{text} blocks", line=stmt.line)
            self._collect()
        else:
            if outcome.would_block:  # on a non-blocking socket: EAGAIN (EINPROGRESS for connect())
                outcome = _Outcome(-1, outcome.errno if outcome.errno is not None else errno_mod.EAGAIN)
            self._event("call", f"{_call_text(stmt, outcome.value)} = {outcome.text()}", line=stmt.line)
            self._collect()
            self._check_outcome(stmt, outcome, text)
            if end - exec_time > end_tol:
                raise self._fail(
                    stmt,
                    f"{text} returned at once ({format_time(exec_time)} s); the script expects it to block "
                    f"until {format_time(end)} s (tolerance {format_time(end_tol)} s)",
                    expected=f"returns at {format_time(end)} s",
                    actual=f"returned {outcome.text()} at {format_time(exec_time)} s",
                )
        self._done_event(when, exec_time, inbound=False)
        self._retry_blocked()  # a wait that is over already (e.g. SO_LINGER with the FIN acked at once)

    def _retry_blocked(self) -> None:
        blocked = self.blocked
        if blocked is None:
            return
        retry = blocked.op.retry or blocked.op.start
        outcome = self._call(blocked.stmt, retry)
        if outcome.would_block:
            self._collect()
            return
        self.blocked = None
        self._event("return", f"{blocked.call_text} = {outcome.text()}", line=blocked.stmt.line)
        self._collect()
        self._check_outcome(blocked.stmt, outcome, blocked.call_text)
        if self.now < blocked.end - blocked.tol:
            raise self._fail(
                blocked.stmt,
                f"timing error: {blocked.call_text} returned at {format_time(self.now)} s, expected at "
                f"{format_time(blocked.end)} s (tolerance {format_time(blocked.tol)} s)",
                expected=f"returns at {format_time(blocked.end)} s",
                actual=f"returned {outcome.text()} at {format_time(self.now)} s",
            )

    def _call(self, stmt: Syscall, function: Callable[[], _Outcome]) -> _Outcome:
        try:
            return function()
        except OSError as exc:
            code = exc.errno if exc.errno is not None else errno_mod.EIO
            return _Outcome(-1, code, would_block=code == errno_mod.EAGAIN)
        except (TypeError, ValueError, OverflowError) as exc:
            raise _Stop(
                Status.ERROR, self._failure(stmt, f"the stack rejected {stmt.name}()'s arguments: {exc}")
            ) from None

    def _check_outcome(self, stmt: Syscall, outcome: _Outcome, text: str) -> None:
        expected = _expected_result(stmt)
        actual = f"{_call_text(stmt, outcome.value)} = {outcome.text()}"
        want_errno = _errno_number(stmt.errno) if stmt.errno is not None else None
        if stmt.ret is not None and outcome.ret != stmt.ret:
            raise self._fail(
                stmt,
                f"{stmt.name}() returned {outcome.text()}, expected {expected}",
                expected=f"{text} = {expected}",
                actual=actual,
            )
        if want_errno is not None and outcome.errno != want_errno:
            got = _errno_name(outcome.errno) if outcome.errno is not None else "no error"
            raise self._fail(
                stmt,
                f"{stmt.name}() failed with {got}, expected {stmt.errno}",
                expected=f"{text} = {expected}",
                actual=actual,
            )
        if outcome.value_mismatch is not None:
            raise self._fail(stmt, outcome.value_mismatch, expected=f"{text} = {expected}", actual=actual)

    def _fd_blocking(self, stmt: Syscall) -> bool:
        fd = self._fd_of(stmt)
        if fd is None or fd.nonblocking:
            return False
        if stmt.name in ("recv", "send") and len(stmt.args) > 3:
            flags = self._eval(stmt.args[3])
            if isinstance(flags, int) and flags & _CONSTANTS["MSG_DONTWAIT"]:
                return False
        return True

    # ---------------------------------------------------------------------------------- arguments

    def _eval(self, expr: Expr) -> Any:
        """A script argument as a Python value: int, bytes, None (`...`), list, dict or (call, args)."""
        if isinstance(expr, IntLit):
            return expr.value
        if isinstance(expr, EllipsisExpr):
            return None
        if isinstance(expr, Name):
            if expr.name in _CONSTANTS:
                return _CONSTANTS[expr.name]
            number = _errno_number(expr.name)
            if number is not None:
                return number
            raise _UnsupportedError(f"unsupported: constant {expr.name}")
        if isinstance(expr, StringLit):
            return expr.value.encode("latin-1", errors="replace")
        if isinstance(expr, BitOr):
            value = 0
            for operand in expr.operands:
                part = self._eval(operand)
                if not isinstance(part, int):
                    raise _ScriptError(f"'|' needs numbers, got {_expr_text(operand)}")
                value |= part
            return value
        if isinstance(expr, Array):
            return [self._eval(item) for item in expr.items]
        if isinstance(expr, Struct):
            return {
                member.name or str(index): self._eval(member.value)
                for index, member in enumerate(expr.fields)
            }
        if isinstance(expr, Call):
            args = [self._eval(arg) for arg in expr.args]
            byte_order = ("htons", "htonl", "ntohs", "ntohl")
            if expr.name in byte_order and len(args) == 1 and isinstance(args[0], int):
                return args[0]  # the stack takes host-order numbers
            if expr.name == "inet_addr" and len(args) == 1 and isinstance(args[0], bytes):
                return args[0].decode("latin-1")
            raise _ScriptError(f"unsupported function {expr.name}() in an argument")
        raise _ScriptError(f"unsupported argument {expr!r}")

    def _arg(self, stmt: Syscall, index: int) -> Any:
        if index >= len(stmt.args):
            raise _ScriptError(f"{stmt.name}() needs at least {index + 1} arguments")
        return self._eval(stmt.args[index])

    def _int_arg(self, stmt: Syscall, index: int, what: str) -> int:
        value = self._arg(stmt, index)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, int):
            raise _ScriptError(f"{stmt.name}(): {what} must be a number, got {_expr_text(stmt.args[index])}")
        return value

    def _fd_of(self, stmt: Syscall) -> _Fd | None:
        if not stmt.args:
            raise _ScriptError(f"{stmt.name}() needs a file descriptor")
        number = self._eval(stmt.args[0])
        if not isinstance(number, int):
            raise _ScriptError(f"{stmt.name}(): the file descriptor must be a number")
        return self.fds.get(number)

    def _new_fd(self, stmt: Syscall) -> int:
        if stmt.ret is not None and stmt.ret >= 0:
            if stmt.ret in self.fds:
                raise _ScriptError(f"fd {stmt.ret} is already open")
            return stmt.ret
        number = 3
        while number in self.fds:
            number += 1
        return number

    def _address(self, stmt: Syscall, index: int, default: tuple[str, int]) -> tuple[str, int]:
        value = self._arg(stmt, index)
        if value is None:
            return default
        if isinstance(value, dict):
            port = value.get("sin_port", default[1])
            addr = value.get("sin_addr", default[0])
            if addr == 0:
                addr = "0.0.0.0"
            if not isinstance(port, int) or not isinstance(addr, str):
                raise _ScriptError(f"{stmt.name}(): cannot read the address {_expr_text(stmt.args[index])}")
            return addr, port
        raise _ScriptError(f"{stmt.name}(): the address must be '...' or {{sin_port=..., sin_addr=...}}")

    # ----------------------------------------------------------------------------------------- the calls

    def _make_op(self, stmt: Syscall) -> _Op:
        name = stmt.name
        if name == "socket":
            return _Op(lambda: self._socket(stmt))
        if name == "fcntl":
            return _Op(lambda: self._fcntl(stmt))
        fd = self._fd_of(stmt)
        if fd is None:
            return _Op(lambda: _Outcome(-1, errno_mod.EBADF))
        sock = fd.sock
        cfg = self.cfg
        if name == "bind":
            addr = self._address(stmt, 1, (cfg.local_ip, cfg.bind_port))
            return _Op(lambda: _returns_zero(sock.bind, addr))
        if name == "listen":
            backlog = self._int_arg(stmt, 1, "the backlog")
            return _Op(lambda: _returns_zero(sock.listen, backlog))
        if name == "accept":
            return _Op(lambda: self._accept(stmt, sock), mode="fd")
        if name == "connect":
            return self._connect_op(stmt, sock)
        if name in ("read", "recv"):
            count = self._int_arg(stmt, 2, "the byte count")
            flags = self._int_arg(stmt, 3, "the flags") if name == "recv" and len(stmt.args) > 3 else 0
            peek = pysocket.MSG_PEEK if flags & pysocket.MSG_PEEK else 0
            return _Op(lambda: _Outcome(len(sock.recv(count, peek))), mode="fd")
        if name in ("write", "send"):
            return self._write_op(stmt, sock)
        if name == "close":
            return self._close_op(stmt, fd)
        if name == "shutdown":
            how = self._int_arg(stmt, 1, "how")
            return _Op(lambda: _returns_zero(sock.shutdown, how))
        if name == "setsockopt":
            return _Op(lambda: self._setsockopt(stmt, sock))
        if name == "getsockopt":
            return _Op(lambda: self._getsockopt(stmt, sock))
        raise _UnsupportedError(f"unsupported: system call {name}()")

    def _socket(self, stmt: Syscall) -> _Outcome:
        kind = self._arg(stmt, 1)
        if kind is not None and not isinstance(kind, int):
            raise _ScriptError("socket(): the type must be a number")
        nonblock_flag = _CONSTANTS["SOCK_NONBLOCK"]
        if kind is not None and (kind & ~nonblock_flag) != pysocket.SOCK_STREAM:
            raise _UnsupportedError("unsupported: socket type other than SOCK_STREAM")
        number = self._new_fd(stmt)
        self.fds[number] = _Fd(number, self.host.socket(), nonblocking=bool(kind and kind & nonblock_flag))
        if self.subject is None or self.subject[0] == "fd":
            self.subject = ("fd", number)  # until a packet names a connection
        return _Outcome(number)

    def _fcntl(self, stmt: Syscall) -> _Outcome:
        fd = self._fd_of(stmt)
        if fd is None:
            return _Outcome(-1, errno_mod.EBADF)
        cmd = self._int_arg(stmt, 1, "the command")
        if cmd == _F_GETFL:
            return _Outcome(_O_RDWR | (_O_NONBLOCK if fd.nonblocking else 0))
        flags = self._int_arg(stmt, 2, "the flags")
        fd.nonblocking = bool(flags & _O_NONBLOCK)
        return _Outcome(0)

    def _accept(self, stmt: Syscall, sock: Socket) -> _Outcome:
        try:
            child, _ = sock.accept()
        except BlockingIOError:
            return _BLOCKED
        number = self._new_fd(stmt)
        self.fds[number] = _Fd(number, child)
        if child.local is not None and child.conn is not None:
            self.subject = ("flow", child.local[1], child.conn.rport)
        return _Outcome(number)

    def _connect_op(self, stmt: Syscall, sock: Socket) -> _Op:
        cfg = self.cfg
        addr = self._address(stmt, 1, (cfg.remote_ip, cfg.connect_port))

        def attempt() -> _Outcome:
            before = sock.conn
            code = sock.connect_ex(addr)
            if sock.conn is not None and sock.conn is not before:
                self.fresh_active_open = True  # the SYN it queued starts a new sequence space
            if code == 0:
                return _Outcome(0)
            if code in _WOULD_BLOCK:
                return _Outcome(-1, code, would_block=True)
            return _Outcome(-1, code)

        return _Op(attempt, mode="fd")

    def _write_op(self, stmt: Syscall, sock: Socket) -> _Op:
        count = self._int_arg(stmt, 2, "the byte count")
        if not 0 <= count <= MAX_WRITE:
            raise _ScriptError(
                f"{stmt.name}(): the byte count must be between 0 and {MAX_WRITE} (64 MiB), got {count}"
            )
        buffer = self._arg(stmt, 1)
        data = buffer[:count].ljust(count, b"\0") if isinstance(buffer, bytes) else bytes(count)
        sent = 0

        def attempt() -> _Outcome:
            # A blocking write returns when everything is queued (or an error ends it: then the count
            # queued so far, if any); a non-blocking one returns what fitted, or EAGAIN if nothing did.
            nonlocal sent
            blocking = self._fd_blocking(stmt)
            while True:
                try:
                    sent += sock.send(data[sent:])
                except BlockingIOError:
                    if blocking:
                        return _BLOCKED
                    return _Outcome(sent) if sent else _Outcome(-1, errno_mod.EAGAIN)
                except OSError:
                    if sent:
                        return _Outcome(sent)
                    raise
                if sent >= len(data) or not blocking:
                    return _Outcome(sent)

        return _Op(attempt, mode="fd")

    def _close_op(self, stmt: Syscall, fd: _Fd) -> _Op:
        sock = fd.sock
        conn = sock.conn
        opts = sock.opts

        def start() -> _Outcome:
            del self.fds[fd.number]
            sock.close()
            lingering = opts.linger_on and opts.linger_secs > 0 and conn is not None
            if lingering and conn is not None and conn.state in _LINGER_STATES:
                op.wake = self.now + opts.linger_secs * _SEC
                return _BLOCKED
            return _Outcome(0)

        def wait() -> _Outcome:
            assert conn is not None
            if conn.state in _LINGER_STATES and op.wake is not None and self.now < op.wake:
                return _BLOCKED
            return _Outcome(0)

        op = _Op(start, wait, mode="always")
        return op

    def _setsockopt(self, stmt: Syscall, sock: Socket) -> _Outcome:
        level = self._int_arg(stmt, 1, "the level")
        name = self._int_arg(stmt, 2, "the option name")
        value = self._arg(stmt, 3)
        if name == pysocket.SO_LINGER and level == pysocket.SOL_SOCKET:
            if not isinstance(value, dict):
                raise _ScriptError("SO_LINGER takes {onoff=N, linger=N}")
            onoff = value.get("onoff", value.get("l_onoff", value.get("0")))
            secs = value.get("linger", value.get("l_linger", value.get("1")))
            if not isinstance(onoff, int) or not isinstance(secs, int):
                raise _ScriptError("SO_LINGER takes {onoff=N, linger=N}")
            sock.setsockopt(level, name, (onoff, secs))
            return _Outcome(0)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, int):
            raise _ScriptError(f"setsockopt(): the value must be [N], got {_expr_text(stmt.args[3])}")
        sock.setsockopt(level, name, value)
        return _Outcome(0)

    def _getsockopt(self, stmt: Syscall, sock: Socket) -> _Outcome:
        level = self._int_arg(stmt, 1, "the level")
        name = self._int_arg(stmt, 2, "the option name")
        expected = self._arg(stmt, 3)
        expected_len = self._arg(stmt, 4)
        if isinstance(expected_len, list) and len(expected_len) == 1:
            expected_len = expected_len[0]
        if level == pysocket.SOL_SOCKET and name == pysocket.SO_LINGER:
            raw = sock.getsockopt(level, name, 8)
            assert isinstance(raw, bytes)
            onoff, secs = struct.unpack("ii", raw)
            shown = f"{{onoff={onoff}, linger={secs}}}"
            size = 8
            mismatch = None
            if isinstance(expected, dict):
                want = (
                    expected.get("onoff", expected.get("l_onoff", expected.get("0"))),
                    expected.get("linger", expected.get("l_linger", expected.get("1"))),
                )
                if want != (onoff, secs):
                    mismatch = f"getsockopt() value {shown}, expected {_expr_text(stmt.args[3])}"
        else:
            value = sock.getsockopt(level, name)
            assert isinstance(value, int)
            size = 4
            if level == pysocket.SOL_SOCKET and name == pysocket.SO_ERROR and value:
                shown = f"[{_errno_name(value)}]"
            else:
                shown = f"[{value}]"
            mismatch = None
            if isinstance(expected, list) and len(expected) == 1 and expected[0] is not None:
                if expected[0] != value:
                    mismatch = f"getsockopt() value {shown}, expected {_expr_text(stmt.args[3])}"
            elif expected is not None and not isinstance(expected, list):
                raise _ScriptError("getsockopt(): the expected value must be [N] or '...'")
        if mismatch is None and isinstance(expected_len, int) and expected_len != size:
            mismatch = f"getsockopt() length [{size}], expected [{expected_len}]"
        return _Outcome(0, value=shown, value_mismatch=mismatch)

    # ------------------------------------------------------------------------------------------ the end

    def _finish(self) -> None:
        last = self.last_line
        if self.blocked is not None:
            # Let the call finish (timers only); it is part of the script, its end time is written.
            blocked = self.blocked
            self._advance_to(blocked.deadline)
            if self.blocked is not None:
                raise self._fail(
                    blocked.stmt,
                    f"the script ended while {blocked.call_text} was still blocked (expected to return at "
                    f"{format_time(blocked.end)} s)",
                )
        if self.pending:
            emitted = self.pending[0]
            raise self._fail(
                last,
                f"unexpected outbound segment sent at {format_time(emitted.time)} s: no '>' line expects it "
                "(the script ended)",
                expected="no segment from the SUT",
                actual=f"{emitted.text} at {format_time(emitted.time)} s",
            )


# ---------------------------------------------------------------------------------------------- helpers


def _returns_zero(call: Callable[[Any], None], argument: Any) -> _Outcome:
    """A call that returns nothing on success (it raises OSError on failure): 0, as in C."""
    call(argument)
    return _Outcome(0)


def _with_urgent(packet: bytes, urgent: int) -> bytes:
    """Set the TCP urgent pointer of a packet build_packet() made, and fix the TCP checksum."""
    ihl = (packet[0] & 0x0F) * 4
    tcp = bytearray(packet[ihl:])
    tcp[18:20] = urgent.to_bytes(2, "big")
    tcp[16:18] = b"\0\0"
    checksum = tcp_checksum(packet[12:16], packet[16:20], bytes(tcp))
    tcp[16:18] = checksum.to_bytes(2, "big")
    return packet[:ihl] + bytes(tcp)


def _spec_text(spec: OptionSpec, *, outbound: bool = False) -> str:
    if spec.name == "TS":
        if outbound:
            return "TS val * ecr *"
        return f"TS val {spec.values[0]} ecr {spec.values[1]}"
    return option_text(Option(spec.name, spec.values))


def _expr_text(expr: Expr) -> str:
    if isinstance(expr, IntLit):
        return str(expr.value)
    if isinstance(expr, EllipsisExpr):
        return "..."
    if isinstance(expr, Name):
        return expr.name
    if isinstance(expr, StringLit):
        return repr(expr.value)
    if isinstance(expr, BitOr):
        return "|".join(_expr_text(o) for o in expr.operands)
    if isinstance(expr, Array):
        return "[" + ", ".join(_expr_text(i) for i in expr.items) + "]"
    if isinstance(expr, Struct):
        inner = ", ".join(
            f"{member.name}={_expr_text(member.value)}" if member.name else _expr_text(member.value)
            for member in expr.fields
        )
        return "{" + inner + "}"
    return f"{expr.name}(" + ", ".join(_expr_text(a) for a in expr.args) + ")"


def _call_text(stmt: Syscall, value: str | None = None) -> str:
    """The call as written; for getsockopt() with the value read in place of the expected one."""
    args = [_expr_text(a) for a in stmt.args]
    if value is not None and len(args) > 3:
        args[3] = value
    return f"{stmt.name}(" + ", ".join(args) + ")"


def _expected_result(stmt: Syscall) -> str:
    out = "..." if stmt.ret is None else str(stmt.ret)
    if stmt.errno is not None:
        out += f" {stmt.errno}"
        number = _errno_number(stmt.errno)
        if number is not None:
            out += f" ({_strerror(number)})"
    return out


# -------------------------------------------------------------------------------------------------- API


def run_script(
    script: Script,
    *,
    filename: str = "<script>",
    config: RunConfig | None = None,
    tolerance_usecs: int | None = None,
    observer: Observer | None = None,
    host: Host | None = None,
    stop_after: int | None = None,
) -> ScriptResult:
    """Run one script on a fresh Host and return its result.

    observer, if given, receives every DrillEvent as it happens (segments in and out with their raw bytes,
    system calls, blocking and returns, state changes, drops, checks), so a UI can render the run live.
    host lets the caller supply the (fresh) SUT host, e.g. one that a display lab owns; stop_after runs
    only the first N statements (a partial run ends without the end-of-script checks).
    """
    cfg = config or RunConfig()
    if tolerance_usecs is not None:
        cfg = replace(cfg, tolerance_usecs=tolerance_usecs)
    return _Runner(script, filename, cfg, observer, host, stop_after).run()


def run_file(
    drill: DrillFile, *, config: RunConfig | None = None, observer: Observer | None = None
) -> FileResult:
    """Run every script of a parsed file, each on a fresh Host. A file without any script (a property
    check described in prose) is reported UNSUPPORTED: nothing was verified."""
    if not drill.scripts:
        return FileResult(
            filename=drill.filename,
            error=f"{drill.filename}: no script to run (the file describes a check in prose only)",
            error_status=Status.UNSUPPORTED,
            title=drill.title,
        )
    results = tuple(
        run_script(script, filename=drill.filename, config=config, observer=observer)
        for script in drill.scripts
    )
    return FileResult(filename=drill.filename, scripts=results, title=drill.title)


def run_path(
    path: str | os.PathLike[str], *, config: RunConfig | None = None, observer: Observer | None = None
) -> FileResult:
    """Read, parse and run a file. Unreadable, binary or unparsable files give a FileResult with `error`
    (parse errors as `file:line:col: message`), never an exception."""
    name = os.fspath(path)
    try:
        data = read_script(name)
    except FileNotFoundError:
        return FileResult(filename=name, error=f"{name}: no such file")
    except IsADirectoryError:
        return FileResult(filename=name, error=f"{name}: is a directory, not a script")
    except OSError as exc:
        return FileResult(filename=name, error=f"{name}: cannot read: {exc.strerror or exc}")
    if b"\0" in data:
        return FileResult(filename=name, error=f"{name}: not a text file (binary data)")
    try:
        drill = parse_bytes(data, name)  # the bytes already read: the file is not read twice
    except DrillSyntaxError as exc:
        return FileResult(filename=name, error=str(exc))
    return run_file(drill, config=config, observer=observer)
