"""A Host: one IPv4 address with its TCP layer, driven sans-IO.

The host demultiplexes arriving segments by 4-tuple (connections, then listeners), answers segments that
match nothing with a RST (RFC 9293 §3.10.7.1), owns the ephemeral ports and the one deadline heap of all
its connections, and emits the trace. It never reads a clock and never does IO: the caller hands it
packets and the time (`receive`, `poll`), and takes the packets it wants sent from `poll`.
"""

from __future__ import annotations

import errno
import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from .connection import MS, SEC, Connection
from .events import ConnId, Event, SegmentDropped, SegmentReceived, SegmentSent, SocketEvent
from .isn import IsnGenerator
from .listener import Listener
from .settings import Settings
from .snapshot import ConnectionSnapshot
from .state import State
from .timers import TimerHeap
from .wire import (
    ACK,
    DEFAULT_TTL,
    RST,
    Malformed,
    Segment,
    build_packet,
    ip_to_bytes,
    pack_packet,
    parse_options,
    parse_packet,
)

Observer = Callable[[Event], None]
WILDCARD = "0.0.0.0"


class Host:
    """One IP endpoint. Time (`now`) is integer microseconds of stack time, never the wall clock."""

    def __init__(
        self,
        address: str,
        *,
        seed: int = 0,
        name: str | None = None,
        checksum: bool = True,
        **settings: Any,
    ) -> None:
        ip_to_bytes(address)  # validates
        self.address = address
        self.name = name or address
        self.seed = seed
        self.settings = Settings()
        self.settings.update(**settings)
        self.checksum = checksum  # False = checksum offload: zero checksums accepted and sent
        self.isn = IsnGenerator(seed)
        self.timers = TimerHeap()
        self.now = 0
        self.conns: dict[ConnId, Connection] = {}
        self.listeners: dict[tuple[str, int], Listener] = {}
        self.bound: dict[int, list[Any]] = {}  # port -> sockets bound (but not connected) there
        self.stats: Counter[str] = Counter()
        self.observed = False
        self.observed_segments = False
        self._observers: list[tuple[Observer, bool]] = []
        self._outbox: list[bytes] = []
        self._ip_id = int.from_bytes(hashlib.blake2b(f"{seed}:{address}".encode(), digest_size=2).digest())
        self._port_perturb: dict[tuple[str, int], int] = {}
        self._tw = 0
        self.reuse_isn: int | None = None
        self.reuse_ts_recent = 0
        self.reopen_isn: int | None = None
        self._challenge_window = (-1, 0)

    # ----------------------------------------------------------------------------------------------------
    # the sans-IO surface

    def receive(self, packet: bytes, now: int) -> None:
        """An IPv4 packet arrives at `now`."""
        self._advance(now)
        self.stats["packets-in"] += 1
        parsed = parse_packet(packet, verify_checksum=self.checksum)
        if isinstance(parsed, Malformed):
            self.stats[f"drop:{parsed.reason}"] += 1
            if self.observed:
                self.emit(SegmentDropped(now, None, None, bytes(packet), parsed.reason, parsed.detail))
            return
        seg = parsed
        if seg.dst != self.address:
            self.drop(seg, "not-for-us", now, None, packet)
            return
        key = (seg.dst, seg.dport, seg.src, seg.sport)
        conn = self.conns.get(key)
        if self.observed_segments:
            self.emit(SegmentReceived(now, key if conn is not None else None, seg))
        if conn is not None:
            if conn.on_segment(seg, now) == "reopen":
                isn, self.reopen_isn = self.reopen_isn, None
                listener = self.listener_for(seg.dst, seg.dport)
                if listener is not None:
                    conn._done(now, "new SYN reopens the TIME_WAIT 4-tuple", error=0)
                    listener.on_segment(seg, now, isn=isn)
                else:
                    # No listener to take the new incarnation: TIME_WAIT stays and ACKs (Linux TCP_TW_SYN).
                    conn._tw_ack(seg, now, rate_limit=False)
            return
        listener = self.listener_for(seg.dst, seg.dport)
        if listener is not None:
            listener.on_segment(seg, now)
            return
        # RFC 9293 §3.10.7.1: CLOSED. Everything but a RST gets a RST.
        self.drop(seg, "no-socket", now, None)
        self.send_reset_for(seg, now, "rst-closed-port")

    def poll(self, now: int) -> list[bytes]:
        """Fire the timers due by `now`; return the packets to put on the wire, oldest first."""
        self._advance(now)
        while True:
            item = self.timers.pop_due(now)
            if item is None:
                break
            owner, name, _ = item
            owner.on_timer(name, now)
        out, self._outbox = self._outbox, []
        return out

    def next_deadline(self) -> int | None:
        """When the next timer is due (stack time, microseconds), or None."""
        return self.timers.next_deadline()

    def has_output(self) -> bool:
        return bool(self._outbox)

    def socket(self) -> Any:
        """A new non-blocking, BSD-style TCP socket on this host (see stack.socket.Socket)."""
        from .socket import Socket

        return Socket(self)

    def connections(self) -> list[ConnectionSnapshot]:
        """Every connection the host holds, listeners, half-open requests and TIME_WAIT included
        (what `ss -tan` would list), sorted by local then remote address."""
        out = [conn.snapshot() for conn in self.conns.values()]
        for listener in self.listeners.values():
            out.append(listener.snapshot())
            out.extend(req.snapshot() for req in listener.syn_queue.values())
        out.sort(key=lambda s: (s.state is not State.LISTEN, s.local, s.remote))
        return out

    def connection(self, local_port: int, remote: tuple[str, int]) -> Connection | None:
        return self.conns.get((self.address, local_port, remote[0], remote[1]))

    def subscribe(self, observer: Observer, *, segments: bool = True) -> Callable[[], None]:
        """Call observer(event) for every trace event; returns a function that unsubscribes.

        segments=False leaves out SegmentSent / SegmentReceived (an observer that captures packets
        itself, like the lab, does not need them); when no observer wants them they are not even built,
        which keeps the per-segment hot path cheap.
        """
        entry = (observer, segments)
        self._observers.append(entry)
        self._refresh_observed()

        def unsubscribe() -> None:
            if entry in self._observers:
                self._observers.remove(entry)
            self._refresh_observed()

        return unsubscribe

    def _refresh_observed(self) -> None:
        self.observed = bool(self._observers)
        self.observed_segments = any(wants for _, wants in self._observers)

    def set(self, **changes: Any) -> None:
        """Change settings on the live host, e.g. host.set(tcp_syncookies=0)."""
        self.settings.update(**changes)

    def crash(self) -> None:
        """Forget every connection, listener and timer silently (a power cut: nothing is sent)."""
        for conn in list(self.conns.values()):
            conn.timers.clear()
            conn.state = State.CLOSED
            conn.error = errno.ECONNABORTED
        self.conns.clear()
        for listener in self.listeners.values():
            for req in listener.syn_queue.values():
                req.timers.clear()
            listener.syn_queue.clear()
            listener.accept_queue.clear()
        self.listeners.clear()
        self.bound.clear()
        self.timers = TimerHeap()
        self._outbox.clear()
        self._tw = 0

    # ----------------------------------------------------------------------------------------------------
    # for connections, listeners and sockets

    def _advance(self, now: int) -> None:
        if now < self.now:
            raise ValueError(f"time went backwards: {now} us after {self.now} us")
        self.now = now

    def emit(self, event: Event) -> None:
        per_segment = isinstance(event, SegmentSent | SegmentReceived)
        for observer, segments in list(self._observers):
            if segments or not per_segment:
                observer(event)

    def emit_socket(self, now: int, conn: ConnId | None, what: str, detail: str = "") -> None:
        if self.observed:
            self.emit(SocketEvent(now, conn, what, detail))

    def drop(
        self, seg: Segment, reason: str, now: int, conn: ConnId | None, packet: bytes | None = None
    ) -> None:
        self.stats[f"drop:{reason}"] += 1
        if self.observed:
            self.emit(SegmentDropped(now, conn, seg, packet or b"", reason))

    def send_segment(
        self,
        conn: Connection | None,
        src: str,
        dst: str,
        sport: int,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        window: int,
        options: bytes,
        payload: bytes,
        now: int,
        reason: str,
    ) -> None:
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        packet = build_packet(
            src,
            dst,
            sport,
            dport,
            seq,
            ack,
            flags,
            window,
            options,
            payload,
            ip_id=self._ip_id,
            checksum=self.checksum,
        )
        self._outbox.append(packet)
        self.stats["packets-out"] += 1
        if self.observed_segments:
            cid = (src, sport, dst, dport)
            self._emit_sent(cid, seq, ack, flags, window, options, payload, packet, now, reason)

    def _emit_sent(
        self,
        cid: ConnId,
        seq: int,
        ack: int,
        flags: int,
        window: int,
        options: bytes,
        payload: bytes | bytearray,
        packet: bytes,
        now: int,
        reason: str,
    ) -> None:
        src, sport, dst, dport = cid
        seg = Segment(
            src, dst, sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, window, bytes(payload)
        )
        if options:
            parse_options(options, seg)
        self.emit(SegmentSent(now, cid, seg, packet, reason))

    def send_data(
        self,
        conn: Connection,
        seq: int,
        ack: int,
        flags: int,
        window: int,
        options: bytes,
        payload: bytes | bytearray,
        now: int,
    ) -> None:
        """send_segment() for the data segments of a burst (Connection.output()): the connection's
        addresses are already bytes and its options already well formed, so nothing is converted or
        checked per segment."""
        self._ip_id = ip_id = (self._ip_id + 1) & 0xFFFF
        laddr, raddr = conn.addr_bytes
        packet = pack_packet(
            laddr, raddr, conn.lport, conn.rport, seq, ack, flags, window, options, payload,
            ip_id, DEFAULT_TTL, self.checksum,
        )  # fmt: skip
        self._outbox.append(packet)
        self.stats["packets-out"] += 1
        if self.observed_segments:
            self._emit_sent(conn.id, seq, ack, flags, window, options, payload, packet, now, "data")

    def send_reset_for(self, seg: Segment, now: int, reason: str) -> None:
        """RFC 9293 §3.10.7.1: the RST that answers seg (never a RST for a RST)."""
        if seg.flags & RST:
            return
        if seg.flags & ACK:
            seq, ack, flags = seg.ack, 0, RST
        else:
            seq, ack, flags = 0, (seg.seq + seg.seg_len) & 0xFFFFFFFF, RST | ACK
        self.send_segment(
            None, seg.dst, seg.src, seg.dport, seg.sport, seq, ack, flags, 0, b"", b"", now, reason
        )

    def challenge_ack_budget(self, now: int) -> bool:
        """The host-wide tcp_challenge_ack_limit per second (RFC 5961 §7)."""
        second, count = self._challenge_window
        if now // SEC != second:
            second, count = now // SEC, 0
        if count >= self.settings.tcp_challenge_ack_limit:
            self._challenge_window = (second, count)
            return False
        self._challenge_window = (second, count + 1)
        return True

    def register(self, conn: Connection) -> None:
        self.conns[conn.id] = conn

    def unregister(self, conn: Connection) -> None:
        if self.conns.get(conn.id) is conn:
            del self.conns[conn.id]

    def on_state_change(self, conn: Connection, old: State, new: State) -> None:
        if old is State.TIME_WAIT:
            self._tw -= 1
        if new is State.TIME_WAIT:
            self._tw += 1

    def tw_count(self) -> int:
        return self._tw + sum(1 for c in self.conns.values() if c.tw_mode)

    def listener_for(self, addr: str, port: int) -> Listener | None:
        return self.listeners.get((addr, port)) or self.listeners.get((WILDCARD, port))

    # ----------------------------------------------------------------------------------------------------
    # ports

    def port_users(self, port: int) -> list[tuple[str, bool, State]]:
        """(local address, SO_REUSEADDR, state) of everything holding `port`: Linux's bind bucket."""
        users: list[tuple[str, bool, State]] = []
        for sock in self.bound.get(port, []):
            users.append((sock.local[0], sock.opts.reuseaddr, State.CLOSED))
        for (addr, p), listener in self.listeners.items():
            if p == port:
                users.append((addr, listener.opts.reuseaddr, State.LISTEN))
        for conn in self.conns.values():
            if conn.lport == port:
                users.append((conn.laddr, conn.opts.reuseaddr, conn.state))
        return users

    def bind_conflict(self, addr: str, port: int, reuse: bool) -> bool:
        """Linux inet_bind_conflict(): both sides must have SO_REUSEADDR and the other not listen."""
        for other_addr, other_reuse, other_state in self.port_users(port):
            if addr != other_addr and WILDCARD not in (addr, other_addr):
                continue
            if reuse and other_reuse and other_state is not State.LISTEN:
                continue
            return True
        return False

    def bind_ephemeral(self, addr: str, reuse: bool) -> int:
        """bind() to port 0: the first free port of ip_local_port_range, odd ones first (as Linux)."""
        low, high = self.settings.ip_local_port_range
        start = low + (self._hash(f"bind {addr}") % max(high - low + 1, 1))
        for parity in (1, 0):
            for port in self._candidates(low, high, start, parity):
                if not self.port_users(port):
                    return port
        raise OSError(errno.EADDRINUSE, "no free ephemeral port (ip_local_port_range exhausted)")

    def connect_port(self, raddr: str, rport: int) -> int:
        """Pick the local port for connect() (Linux __inet_hash_connect()): even ports first, starting
        at a per-destination offset that moves by 2 each time; a TIME_WAIT 4-tuple is reused only when
        tcp_tw_reuse allows it."""
        low, high = self.settings.ip_local_port_range
        span = max(high - low + 1, 1)
        key = (raddr, rport)
        perturb = self._port_perturb.get(key, 0)
        self._port_perturb[key] = perturb + 2
        start = low + ((self._hash(f"connect {raddr}:{rport}") + perturb) % span)
        for parity in (0, 1):
            for port in self._candidates(low, high, start, parity):
                if port in self.bound or any(p == port for (_, p) in self.listeners):
                    continue
                existing = self.conns.get((self.address, port, raddr, rport))
                if existing is None:
                    return port
                if existing.state is State.TIME_WAIT and self._tw_reusable(existing):
                    self.reuse_time_wait(existing)
                    return port
        raise OSError(errno.EADDRNOTAVAIL, "no local port free for this destination (ip_local_port_range)")

    def _tw_reusable(self, tw: Connection) -> bool:
        """Linux tcp_twsk_unique(): with timestamps, once the TIME_WAIT is more than tcp_tw_reuse_delay ms
        old (time_after32(now_ms, tw_entry_stamp + delay), so strictly later)."""
        mode = self.settings.tcp_tw_reuse
        if mode == 0 or (mode == 2 and not tw.raddr.startswith("127.")) or not tw.ts_ok:
            return False
        return self.now // MS - tw.tw_since // MS > self.settings.tcp_tw_reuse_delay

    def reuse_time_wait(self, tw: Connection) -> None:
        """connect() takes over a TIME_WAIT 4-tuple: ISN = its SND.NXT + 65537, and the new SYN echoes its
        TS.Recent (tcp_twsk_unique() copies tw_ts_recent into the new socket)."""
        self.reuse_isn = tw.snd_nxt + 65535 + 2
        self.reuse_ts_recent = tw.ts_recent
        tw._done(self.now, "TIME_WAIT reused by connect() (tcp_tw_reuse)", error=0)

    @staticmethod
    def _candidates(low: int, high: int, start: int, parity: int) -> Iterator[int]:
        """Ports of one parity from start upwards, wrapping inside [low, high]; lazily, since the first
        free one is usually the first tried."""
        span = high - low + 1
        first = start if (start & 1) == parity else start + 1
        for i in range(0, span, 2):
            port = low + (first - low + i) % span
            if (port & 1) == parity:
                yield port

    def _hash(self, text: str) -> int:
        return int.from_bytes(hashlib.blake2b(f"{self.seed} {text}".encode(), digest_size=4).digest())

    def release_port(self, sock: Any) -> None:
        if sock.local is None:
            return
        users = self.bound.get(sock.local[1])
        if users and sock in users:
            users.remove(sock)
            if not users:
                del self.bound[sock.local[1]]
