"""The kernel peer: the other end of the connection is Linux itself, a real TCP socket in the lab's namespace.

Our stack sits on TUN device tp0 (tcpplay/links/tun.py); the kernel owns the peer's address on tp0, so a
socket bound there talks to our stack through the device and nothing else. The user picks the kernel's
role (server: listen/accept; client: connect). Its sockets are ordinary non-blocking Python sockets created
inside the namespace (a socket belongs to the namespace it was created in, whichever thread uses it later).

What the kernel's side looks like comes from inet_diag (pyroute2's DiagSocket, what `ss -tani` shows):
state, RTO, RTT, cwnd, unacked, retransmits, queues, timers. `KernelSnapshot` uses the field names of
`stack.snapshot.ConnectionSnapshot` wherever the kernel reports the same quantity in the same unit (cwnd and
ssthresh in segments, times in microseconds, timer deadlines as absolute stack times), so a UI can put both
sides next to each other. inet_diag is also the only way to see a socket after close(): the orphan in
FIN_WAIT_2, LAST_ACK or TIME_WAIT has no file descriptor left to ask.
"""

from __future__ import annotations

import contextlib
import errno
import socket as pysocket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stack import State

from ..lab import DEFAULT_PORT, SOCKOPTS, LabError
from ..netns import PrivateNetns

# include/net/tcp_states.h
KERNEL_STATES: dict[int, State] = {
    1: State.ESTABLISHED,
    2: State.SYN_SENT,
    3: State.SYN_RCVD,
    4: State.FIN_WAIT_1,
    5: State.FIN_WAIT_2,
    6: State.TIME_WAIT,
    7: State.CLOSED,
    8: State.CLOSE_WAIT,
    9: State.LAST_ACK,
    10: State.LISTEN,
    11: State.CLOSING,
    12: State.SYN_RCVD,  # TCP_NEW_SYN_RECV: a request socket in the listener's SYN queue
}
KERNEL_STATE_NAMES = {
    1: "ESTAB",
    2: "SYN-SENT",
    3: "SYN-RECV",
    4: "FIN-WAIT-1",
    5: "FIN-WAIT-2",
    6: "TIME-WAIT",
    7: "UNCONN",
    8: "CLOSE-WAIT",
    9: "LAST-ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW-SYN-RECV",
}
# inet_diag idiag_timer -> our timer names (ss: on / keepalive / timewait / persist)
KERNEL_TIMERS = {1: "retransmit", 2: "keepalive", 3: "time-wait", 4: "persist"}
CA_STATES = {0: "open", 1: "disorder", 2: "cwr", 3: "recovery", 4: "loss"}
TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE = 1, 2, 4
INET_DIAG_INFO_EXT = 1 << (2 - 1)
INET_DIAG_CONG_EXT = 1 << (4 - 1)
SS_ALL = 0xFFF
US = 1


@dataclass(frozen=True, slots=True)
class KernelSnapshot:
    """One kernel TCP socket as inet_diag reports it. Fields named as in ConnectionSnapshot mean the same;
    the ones after `is_request` exist only on the kernel's side. Absent tcp_info (TIME_WAIT minisockets,
    request sockets) leaves the defaults."""

    local: tuple[str, int]
    remote: tuple[str, int]
    state: State
    snd_wnd: int = 0
    mss: int = 0
    advmss: int = 0
    snd_wscale: int | None = None
    rcv_wscale: int | None = None
    sack: bool = False
    timestamps: bool = False
    cwnd: int = 0  # segments, as ours
    ssthresh: int | None = None
    flight: int = 0  # segments in flight (Linux tcp_packets_in_flight)
    srtt: int | None = None  # us
    rttvar: int | None = None
    rto: int = 0
    backoff: int = 0
    retransmits: int = 0  # consecutive timeouts of the current segment
    total_retrans: int = 0
    send_buffered: int = 0  # bytes in the send queue (idiag_wqueue)
    recv_buffered: int = 0  # bytes not yet read (idiag_rqueue)
    timers: dict[str, int] = field(default_factory=dict)  # name -> deadline, stack time (us)
    probes_out: int = 0
    ato: int = 0
    backlog: int | None = None  # listeners: the accept queue limit
    accept_queue: int = 0  # listeners: connections waiting for accept()
    is_request: bool = False
    # kernel only
    kernel_state: str = ""  # ss's name: ESTAB, FIN-WAIT-2, ...
    unacked: int = 0  # segments sent and not acknowledged (tcpi_unacked)
    sacked: int = 0
    lost: int = 0
    retrans: int = 0  # segments retransmitted and not yet acknowledged
    ca_state: str = "open"
    congestion: str = ""  # the congestion control module (cubic, bbr, reno...)
    min_rtt: int | None = None
    rcv_space: int = 0
    rcv_ssthresh: int = 0
    pacing_rate: int = 0  # bytes/s
    delivery_rate: int = 0
    bytes_acked: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    bytes_retrans: int = 0
    segs_out: int = 0
    segs_in: int = 0
    inode: int = 0
    cookie: int = 0

    @property
    def id(self) -> tuple[str, int, str, int]:
        return (self.local[0], self.local[1], self.remote[0], self.remote[1])


def _snapshot_from_diag(msg: Any, now: int) -> KernelSnapshot:
    """Build a KernelSnapshot from one inet_diag_msg (pyroute2), with `now` for timer deadlines."""
    kstate = int(msg["idiag_state"])
    state = KERNEL_STATES.get(kstate, State.CLOSED)
    timers: dict[str, int] = {}
    timer = KERNEL_TIMERS.get(int(msg["idiag_timer"]))
    if timer is not None:
        timers[timer] = now + int(msg["idiag_expires"]) * 1000
    base: dict[str, Any] = {
        "local": (msg["idiag_src"], int(msg["idiag_sport"])),
        "remote": (msg["idiag_dst"], int(msg["idiag_dport"])),
        "state": state,
        "kernel_state": KERNEL_STATE_NAMES.get(kstate, str(kstate)),
        "timers": timers,
        "inode": int(msg["idiag_inode"]),
        "cookie": int(msg["idiag_cookie"]),
        # A request socket (listener's SYN queue) is dumped as SYN-RECV without tcp_info.
        "is_request": kstate == 12 or (kstate == 3 and msg.get_attr("INET_DIAG_INFO") is None),
    }
    if state is State.LISTEN:
        base["accept_queue"] = int(msg["idiag_rqueue"])
        base["backlog"] = int(msg["idiag_wqueue"])
    else:
        base["recv_buffered"] = int(msg["idiag_rqueue"])
        base["send_buffered"] = int(msg["idiag_wqueue"])
    info = msg.get_attr("INET_DIAG_INFO")
    congestion = msg.get_attr("INET_DIAG_CONG")
    if congestion:
        base["congestion"] = str(congestion)
    if info is None or state is State.LISTEN:
        return KernelSnapshot(**base)
    opts = int(info["tcpi_options"])
    wscale_ok = bool(opts & TCPI_OPT_WSCALE)
    # pyroute2 0.9 decodes the two 4-bit window scales wrongly; take them from the raw byte.
    raw = bytes(info.data[info.offset + 4 + 6 : info.offset + 4 + 7]) if info.length > 10 else b"\0"
    snd_ws, rcv_ws = raw[0] & 0x0F, raw[0] >> 4
    rtt = int(info["tcpi_rtt"])
    ssthresh = int(info["tcpi_snd_ssthresh"])
    unacked, sacked, lost, retrans = (
        int(info["tcpi_unacked"]),
        int(info["tcpi_sacked"]),
        int(info["tcpi_lost"]),
        int(info["tcpi_retrans"]),
    )
    min_rtt = int(info.get("tcpi_min_rtt") or 0)
    return KernelSnapshot(
        **base,
        snd_wnd=int(info.get("tcpi_snd_wnd") or 0),
        mss=int(info["tcpi_snd_mss"]),
        advmss=int(info["tcpi_advmss"]),
        snd_wscale=snd_ws if wscale_ok else None,
        rcv_wscale=rcv_ws if wscale_ok else None,
        sack=bool(opts & TCPI_OPT_SACK),
        timestamps=bool(opts & TCPI_OPT_TIMESTAMPS),
        cwnd=int(info["tcpi_snd_cwnd"]),
        ssthresh=None if ssthresh >= 0x7FFFFFFF else ssthresh,
        flight=max(unacked - sacked - lost + retrans, 0),
        srtt=rtt if rtt else None,
        rttvar=int(info["tcpi_rttvar"]) if rtt else None,
        rto=int(info["tcpi_rto"]),
        backoff=int(info["tcpi_backoff"]),
        retransmits=int(info["tcpi_retransmits"]),
        total_retrans=int(info["tcpi_total_retrans"]),
        probes_out=int(info["tcpi_probes"]),
        ato=int(info["tcpi_ato"]),
        unacked=unacked,
        sacked=sacked,
        lost=lost,
        retrans=retrans,
        ca_state=CA_STATES.get(int(info["tcpi_ca_state"]), str(info["tcpi_ca_state"])),
        min_rtt=min_rtt if min_rtt and min_rtt != 0xFFFFFFFF else None,
        rcv_space=int(info["tcpi_rcv_space"]),
        rcv_ssthresh=int(info["tcpi_rcv_ssthresh"]),
        pacing_rate=_rate(info.get("tcpi_pacing_rate")),
        delivery_rate=_rate(info.get("tcpi_delivery_rate")),
        bytes_acked=int(info.get("tcpi_bytes_acked") or 0),
        bytes_received=int(info.get("tcpi_bytes_received") or 0),
        bytes_sent=int(info.get("tcpi_bytes_sent") or 0),
        bytes_retrans=int(info.get("tcpi_bytes_retrans") or 0),
        segs_out=int(info.get("tcpi_segs_out") or 0),
        segs_in=int(info.get("tcpi_segs_in") or 0),
    )


def _rate(value: Any) -> int:
    number = int(value or 0)
    return 0 if number >= 0xFFFFFFFFFFFFFFFF else number


def diag_query() -> list[Any]:
    """Every IPv4 TCP socket of the calling thread's namespace, from inet_diag with tcp_info and the
    congestion module. Runs on the namespace's worker: sock_diag answers for the namespace the netlink
    socket was created in. The socket lives for one query only, so it never outlives the namespace."""
    from pyroute2.netlink.diag import DiagSocket

    with DiagSocket() as sock:
        sock.bind()
        return list(
            sock.get_sock_stats(
                family=pysocket.AF_INET, states=SS_ALL, extensions=INET_DIAG_INFO_EXT | INET_DIAG_CONG_EXT
            )
        )


class KernelPeer:
    """Linux as the lab's other host: non-blocking real sockets in the namespace, observed via inet_diag.

    The verbs mirror the Lab's (listen, accept, connect, send, recv, shutdown, close, abort, setsockopt)
    so a scenario can drive either side the same way; each call is reported through `note`."""

    def __init__(
        self,
        netns: PrivateNetns,
        name: str,
        address: str,
        now: Callable[[], int],
        note: Callable[[str], None] | None = None,
    ) -> None:
        self.netns = netns
        self.name = name
        self.address = address
        self._now = now
        self._note = note or (lambda text: None)
        self.listener: pysocket.socket | None = None
        self.conns: list[pysocket.socket] = []
        self._tuples: dict[int, tuple[str, int, str, int]] = {}  # id(sock) -> 4-tuple, kept after close

    # ------------------------------------------------------------------------------------------------------
    # sockets

    def socket(self) -> pysocket.socket:
        """A new non-blocking TCP socket created inside the namespace."""
        sock = self.netns.socket(pysocket.AF_INET, pysocket.SOCK_STREAM)
        sock.setblocking(False)
        return sock

    def listen(self, port: int = DEFAULT_PORT, backlog: int = 128) -> pysocket.socket:
        if self.listener is not None:
            raise LabError(f"the kernel ({self.name}) is already listening on {self.listener.getsockname()}")
        sock = self.socket()
        sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
        sock.bind((self.address, port))
        sock.listen(backlog)
        self.listener = sock
        self._note(f"listen({self.address}:{port}, backlog {backlog}) = 0")
        return sock

    def accept(self) -> pysocket.socket | None:
        """accept() once; None when the accept queue is empty (EAGAIN)."""
        if self.listener is None:
            raise LabError(f"the kernel ({self.name}) is not listening; listen first")
        try:
            sock, peer = self.listener.accept()
        except BlockingIOError:
            return None
        sock.setblocking(False)
        self.netns.adopt_socket(sock)
        self._remember(sock)
        self.conns.append(sock)
        self._note(f"accept() = new socket for {peer[0]}:{peer[1]}")
        return sock

    def connect(
        self,
        address: tuple[str, int],
        *,
        bind_port: int = 0,
        options: dict[str, Any] | None = None,
    ) -> pysocket.socket:
        """socket(), options, bind to our address, non-blocking connect(): EINPROGRESS, as in the lab."""
        sock = self.socket()
        for name, value in (options or {}).items():
            self._setsockopt(sock, name, value)
        sock.bind((self.address, bind_port))
        code = sock.connect_ex(address)
        self.conns.append(sock)
        self._remember(sock, address)
        self._note(
            f"connect({address[0]}:{address[1]}) = "
            + (f"-1 {errno.errorcode.get(code, code)}" if code else "0")
        )
        return sock

    def current(self) -> pysocket.socket | None:
        live = [s for s in self.conns if s.fileno() >= 0]
        return live[-1] if live else None

    def _sock(self, sock: pysocket.socket | None) -> pysocket.socket:
        target = sock or self.current()
        if target is None:
            raise LabError(f"the kernel ({self.name}) has no open connection; connect or accept first")
        return target

    def send(self, data: bytes, sock: pysocket.socket | None = None) -> int:
        """send() as much as the kernel's send buffer takes; 0 when it is full."""
        try:
            return self._sock(sock).send(data)
        except BlockingIOError:
            return 0

    def recv(self, size: int = 65536, sock: pysocket.socket | None = None) -> bytes | None:
        """recv(): bytes, b"" at end of stream, None when nothing is there yet (EAGAIN). Errors such as
        ECONNRESET are raised as the kernel reports them."""
        try:
            return self._sock(sock).recv(size)
        except BlockingIOError:
            return None

    def shutdown(self, how: int = pysocket.SHUT_WR, sock: pysocket.socket | None = None) -> None:
        self._sock(sock).shutdown(how)
        self._note(f"shutdown({ {0: 'SHUT_RD', 1: 'SHUT_WR', 2: 'SHUT_RDWR'}.get(how, how) }) = 0")

    def close(self, sock: pysocket.socket | None = None) -> None:
        target = self._sock(sock)
        self._remember(target)
        target.close()
        self._note("close() = 0")

    def close_listener(self) -> None:
        if self.listener is None:
            raise LabError(f"the kernel ({self.name}) has no listener to close")
        self.listener.close()
        self.listener = None
        self._note("close(listener) = 0")

    def abort(self, sock: pysocket.socket | None = None) -> None:
        """SO_LINGER {1, 0} and close(): the kernel sends a RST."""
        target = self._sock(sock)
        target.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER, struct.pack("ii", 1, 0))
        self._note("setsockopt(SO_LINGER, {onoff=1, linger=0}) = 0")
        self.close(target)

    def setsockopt(self, name: str, value: Any, sock: pysocket.socket | None = None) -> None:
        self._setsockopt(self._sock(sock), name, value)
        self._note(f"setsockopt({name.upper()}, {value}) = 0")

    def _setsockopt(self, sock: pysocket.socket, name: str, value: Any) -> None:
        key = name.upper()
        if key not in SOCKOPTS:
            raise LabError(f"unknown socket option {name!r}; one of {', '.join(SOCKOPTS)}")
        level, opt = SOCKOPTS[key]
        if key == "SO_LINGER":
            value = struct.pack("ii", int(value[0]), int(value[1]))
        elif isinstance(value, bool):
            value = int(value)
        try:
            sock.setsockopt(level, opt, value)
        except OSError as exc:
            raise LabError(f"setsockopt({key}, {value!r}) failed on the kernel socket: {exc}") from None

    def _remember(self, sock: pysocket.socket, remote: tuple[str, int] | None = None) -> None:
        with contextlib.suppress(OSError):
            local = sock.getsockname()
            peer = remote or sock.getpeername()
            self._tuples[id(sock)] = (local[0], local[1], peer[0], peer[1])

    def fileno(self) -> list[int]:
        """The open kernel sockets' fds (for a select that also wakes on kernel-side readiness)."""
        socks = ([self.listener] if self.listener is not None else []) + self.conns
        return [s.fileno() for s in socks if s.fileno() >= 0]

    # ------------------------------------------------------------------------------------------------------
    # observation (inet_diag)

    def connections(self) -> list[KernelSnapshot]:
        """Every TCP socket in the namespace (what `ip netns exec <ns> ss -tani` lists), listeners first."""
        now = self._now()
        msgs = self.netns.call(diag_query)
        snaps = [_snapshot_from_diag(msg, now) for msg in msgs]
        snaps.sort(key=lambda s: (s.state is not State.LISTEN, s.local, s.remote))
        return snaps

    def snapshot(self, sock: pysocket.socket | None = None) -> KernelSnapshot | None:
        """The kernel's view of one connection (the current one by default), also after it was closed
        (orphans in FIN_WAIT_2, LAST_ACK, TIME_WAIT); None once the kernel has forgotten it."""
        target = sock or (self.conns[-1] if self.conns else None)
        if target is None:
            if self.listener is not None:
                return self.find(self.listener.getsockname(), ("0.0.0.0", 0))
            return None
        if target.fileno() >= 0:
            self._remember(target)
        key = self._tuples.get(id(target))
        if key is None:
            return None
        return self.find((key[0], key[1]), (key[2], key[3]))

    def find(self, local: tuple[str, int], remote: tuple[str, int]) -> KernelSnapshot | None:
        for snap in self.connections():
            if snap.local == local and snap.remote == remote:
                return snap
        return None

    def state(self, sock: pysocket.socket | None = None) -> State:
        snap = self.snapshot(sock)
        return snap.state if snap is not None else State.CLOSED
