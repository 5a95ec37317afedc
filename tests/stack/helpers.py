"""smoltcp-style harness for the stack core: one Host under test (the SUT), driven by hand-built segments.

A `Peer` plays the other end. It injects segments with exact fields (`send`) and asserts the exact segments
the SUT emits (`expect`, `expect_nothing`). Both ISNs are fixed (SUT ISS = 1000, peer ISN = 5000) and the
SUT's TS clock has no random offset (TS val = stack time in ms), so every test asserts absolute numbers.

Time is virtual and is the host's own clock (`host.now`): `Peer.advance(t)` polls the host at every timer
deadline up to t, so each timer fires at its exact time; every injection happens at the current time.
`Conn` bundles a SUT socket with the expected SND.NXT / RCV.NXT / TS values of its connection. `Wire` joins
two hosts for end-to-end runs.
"""

from __future__ import annotations

import errno
import socket as pysocket
import struct
from dataclasses import dataclass, field
from typing import Any

import stack
from stack import MS, SEC, Host, Option, Segment, State
from stack.wire import build_packet, encode_options, parse_packet, syn_options, ts_option

SUT_IP = "10.0.0.1"
PEER_IP = "10.0.0.2"
SUT_PORT = 8080
PEER_PORT = 40000
SUT_ISS = 1000
PEER_ISN = 5000

FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, ".": 0x10, "U": 0x20, "E": 0x40, "W": 0x80}

# Option shorthands for expectations (wire order, tcpdump names).
NOP = Option("nop")


def MSS(v: int) -> Option:
    return Option("mss", (v,))


def WS(v: int) -> Option:
    return Option("wscale", (v,))


def TS(val: int, ecr: int) -> Option:
    return Option("TS", (val, ecr))


SACKOK = Option("sackOK")


def SACK(*blocks: tuple[int, int]) -> Option:
    return Option("sack", tuple(x for b in blocks for x in b))


def flags_of(flags: str | int) -> int:
    if isinstance(flags, int):
        return flags
    bits = 0
    for ch in flags:
        bits |= FLAG_BITS[ch]
    return bits


def flag_text(bits: int) -> str:
    return stack.wire.flags_text(bits)


def peer_syn_options(
    *,
    mss: int | None = 1460,
    sack: bool = True,
    ts: tuple[int, int] | None = (100, 0),
    wscale: int | None = 7,
) -> bytes:
    """A Linux-like SYN option block from the peer (mss, sackOK, TS, nop, wscale and subsets)."""
    if mss is None:
        opts: list[Option] = []
        if sack:
            opts.append(SACKOK)
        if ts is not None:
            opts.append(TS(*ts))
        if wscale is not None:
            opts += [NOP, WS(wscale)]
        return encode_options(opts)
    return syn_options(mss, sack=sack, ts=ts, wscale=wscale)


def sut_syn_options(
    val: int, ecr: int = 0, *, mss: int = 1460, ts: bool = True, sack: bool = True, wscale: int | None = 7
) -> list[Option]:
    """The SUT's SYN / SYN-ACK options in Linux's layout (tcp_options_write())."""
    out = [MSS(mss)]
    if ts:
        out += [SACKOK, TS(val, ecr)] if sack else [NOP, NOP, TS(val, ecr)]
    elif sack:
        out += [NOP, NOP, SACKOK]
    if wscale is not None:
        out += [NOP, WS(wscale)]
    return out


def ts_opts(val: int, ecr: int) -> list[Option]:
    return [NOP, NOP, TS(val, ecr)]


class Peer:
    """The scripted other end of one 4-tuple (peer ip:port <-> SUT port).

    The clock is the host's (`host.now`): every Peer of a host shares it. Segments the SUT emits are
    routed to the Peer registered for their destination, so several Peers can talk to one host."""

    def __init__(
        self, host: Host, ip: str = PEER_IP, port: int = PEER_PORT, sut_port: int = SUT_PORT
    ) -> None:
        self.host = host
        self.ip = ip
        self.port = port
        self.sut_port = sut_port
        self.log: list[Segment] = []
        self.last_ts_val = 0  # the TS val of the SUT's latest segment to us (what the peer echoes)
        self._pending: list[Segment] = []
        registry: dict[tuple[str, int], Peer] = host.__dict__.setdefault("_test_peers", {})
        registry[(ip, port)] = self

    def __repr__(self) -> str:
        return f"<Peer {self.ip}:{self.port} <-> SUT :{self.sut_port} at {self.now} us>"

    @property
    def now(self) -> int:
        return self.host.now

    # ---- time -----------------------------------------------------------------------------------------

    def advance(self, to: int) -> None:
        """Move the clock to `to` (absolute, microseconds), firing each SUT timer at its own deadline
        on the way (as a real clock would). Segments emitted on the way wait for the next expect()."""
        assert to >= self.now, f"time must move forward: {to} < {self.now}"
        while True:
            deadline = self.host.next_deadline()
            if deadline is None or deadline >= to:
                break
            self._collect(max(deadline, self.now))
        self._collect(to)

    def advance_by(self, delta: int) -> None:
        self.advance(self.now + delta)

    def next_deadline(self) -> int | None:
        return self.host.next_deadline()

    def run_until_deadline(self) -> int:
        """Jump to the SUT's next timer deadline (asserting there is one) and return it."""
        deadline = self.host.next_deadline()
        assert deadline is not None, "the SUT has no timer armed"
        self.advance(deadline)
        return deadline

    # ---- injecting ------------------------------------------------------------------------------------

    def packet(
        self,
        flags: str | int,
        seq: int,
        ack: int = 0,
        win: int = 65535,
        payload: bytes = b"",
        options: bytes | list[Option] | None = None,
        *,
        src: str | None = None,
        sport: int | None = None,
        dport: int | None = None,
    ) -> bytes:
        if isinstance(options, list):
            options = encode_options(options)
        return build_packet(
            src or self.ip,
            self.host.address,
            sport if sport is not None else self.port,
            dport if dport is not None else self.sut_port,
            seq & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            flags_of(flags),
            win,
            options or b"",
            payload,
        )

    def send(
        self,
        flags: str | int,
        seq: int,
        ack: int = 0,
        win: int = 65535,
        payload: bytes = b"",
        options: bytes | list[Option] | None = None,
        **kw: Any,
    ) -> None:
        """Inject one segment into the SUT at `now`."""
        self._collect()  # what the SUT had to say before this segment arrives is not lost
        self.host.receive(self.packet(flags, seq, ack, win, payload, options, **kw), self.now)

    def _collect(self, at: int | None = None) -> None:
        registry: dict[tuple[str, int], Peer] = self.host.__dict__["_test_peers"]
        for pkt in self.host.poll(self.now if at is None else at):
            seg = parse_packet(pkt)
            assert isinstance(seg, Segment), f"SUT sent a malformed packet: {seg}"
            target = registry.get((seg.dst, seg.dport), self)
            target._pending.append(seg)
            target.log.append(seg)
            if seg.ts_val is not None:
                target.last_ts_val = seg.ts_val

    def segments(self) -> list[Segment]:
        """Everything the SUT has emitted so far and not yet consumed."""
        self._collect()
        out, self._pending = self._pending, []
        return out

    def expect(
        self,
        flags: str | int,
        seq: int,
        ack: int = 0,
        win: int | None = None,
        payload: bytes = b"",
        options: list[Option] | None = None,
        *,
        dport: int | None = None,
        sport: int | None = None,
    ) -> Segment:
        """Assert the SUT emitted exactly one segment, with exactly these fields; return it.

        `win=None` / `options=None` leave those fields unchecked; `options=[]` asserts no options."""
        segs = self.segments()
        assert len(segs) == 1, f"expected one segment, got {len(segs)}: {[describe(s) for s in segs]}"
        seg = segs[0]
        self.check(seg, flags, seq, ack, win, payload, options, dport=dport, sport=sport)
        return seg

    def expect_many(self, n: int) -> list[Segment]:
        segs = self.segments()
        assert len(segs) == n, f"expected {n} segments, got {len(segs)}: {[describe(s) for s in segs]}"
        return segs

    def check(
        self,
        seg: Segment,
        flags: str | int,
        seq: int,
        ack: int = 0,
        win: int | None = None,
        payload: bytes = b"",
        options: list[Option] | None = None,
        *,
        dport: int | None = None,
        sport: int | None = None,
    ) -> None:
        want = flags_of(flags)
        got = describe(seg)
        assert seg.flags == want, f"flags {flag_text(seg.flags)} != {flag_text(want)}: {got}"
        assert seg.seq == seq & 0xFFFFFFFF, f"seq {seg.seq} != {seq & 0xFFFFFFFF}: {got}"
        assert seg.ack == ack & 0xFFFFFFFF, f"ack {seg.ack} != {ack & 0xFFFFFFFF}: {got}"
        if win is not None:
            assert seg.window == win, f"win {seg.window} != {win}: {got}"
        assert bytes(seg.payload) == payload, f"payload {len(seg.payload)} bytes != {len(payload)}: {got}"
        if options is not None:
            assert list(seg.options) == options, f"options {list(seg.options)} != {options}: {got}"
        assert seg.src == self.host.address and seg.dst == self.ip, got
        assert seg.sport == (sport if sport is not None else self.sut_port), got
        assert seg.dport == (dport if dport is not None else self.port), got

    def expect_nothing(self) -> None:
        segs = self.segments()
        assert not segs, f"expected nothing, got {[describe(s) for s in segs]}"


def describe(seg: Segment) -> str:
    opts = ",".join(
        o.name + ("" if not o.values else " " + " ".join(map(str, o.values))) for o in seg.options
    )
    return (
        f"{seg.sport}>{seg.dport} {flag_text(seg.flags)} seq {seg.seq} ack {seg.ack} win {seg.window}"
        f" len {len(seg.payload)}" + (f" <{opts}>" if opts else "")
    )


# ---- hosts and fixed ISNs ---------------------------------------------------------------------------------


def make_host(address: str = SUT_IP, *, iss: int = SUT_ISS, ts_offset: int = 0, **settings: Any) -> Host:
    """A SUT host with a constant ISN and TS offset, and the scenarios' environment (6 MiB rmem max).

    The Tail Loss Probe (Linux's default tcp_early_retrans=3) is off here, as with
    `sysctl net.ipv4.tcp_early_retrans=0`, so that each test sees the one mechanism it is about (the RTO,
    its backoff, Karn...); tests/stack/test_tlp.py covers the probe itself."""
    settings.setdefault("tcp_early_retrans", 0)
    host = Host(address, seed=1, **settings)
    fix_isn(host, iss, ts_offset)
    return host


def fix_isn(host: Host, iss: int = SUT_ISS, ts_offset: int = 0) -> None:
    host.isn.isn = lambda *a, **k: iss  # type: ignore[method-assign]
    host.isn.ts_offset = lambda *a, **k: ts_offset  # type: ignore[method-assign]


PEER_TS_BASE = 7000  # the peer's TS clock: 7000 + now in ms (so its TS vals never go backwards)


@dataclass
class Options:
    """What the peer offers in its SYN (or SYN-ACK)."""

    mss: int | None = 1460
    sack: bool = True
    ts: bool = True
    wscale: int | None = 7

    def encode(self, val: int, ecr: int = 0) -> bytes:
        return peer_syn_options(
            mss=self.mss, sack=self.sack, ts=(val, ecr) if self.ts else None, wscale=self.wscale
        )


ALL = Options()
NO_TS = Options(ts=False)
NO_SACK = Options(sack=False)
NONE = Options(mss=None, sack=False, ts=False, wscale=None)


@dataclass
class Conn:
    """One established connection of the SUT with the scripted peer, and the numbers both sides expect.

    `snd` is the SUT's SND.NXT and `rcv` its RCV.NXT as the test expects them; tests move them along."""

    host: Host
    peer: Peer
    sock: Any  # the SUT's socket (accepted or connecting)
    listener: Any = None
    offered: Options = field(default_factory=Options)
    snd: int = SUT_ISS + 1
    rcv: int = PEER_ISN + 1
    peer_ts: int = 0  # the latest TS val the peer sent (what the SUT echoes)
    win: int | None = None  # the SUT's window field expected on its segments (None: unchecked)

    @property
    def conn(self) -> stack.Connection:
        c = self.sock.conn
        assert c is not None
        return c

    @property
    def ts(self) -> bool:
        return self.offered.ts

    @property
    def now(self) -> int:
        return self.peer.now

    def advance(self, to: int) -> None:
        self.peer.advance(to)

    def sut_opts(self) -> list[Option]:
        """The options of a SUT segment at now: <nop,nop,TS val now_ms ecr peer_ts> with TS, none without."""
        return ts_opts(self.peer.now // MS, self.peer_ts) if self.ts else []

    def peer_opts(self) -> bytes:
        if not self.ts:
            return b""
        self.peer_ts = PEER_TS_BASE + self.peer.now // MS
        return ts_option(self.peer_ts, self.peer.last_ts_val)

    def psend(
        self,
        flags: str | int,
        payload: bytes = b"",
        *,
        seq: int | None = None,
        ack: int | None = None,
        win: int = 512,
    ) -> None:
        """The peer sends a segment of this connection (with its TS option when negotiated)."""
        seq = self.rcv if seq is None else seq
        ack = self.snd if ack is None else ack
        self.peer.send(flags, seq, ack, win, payload, self.peer_opts())

    def expect(
        self,
        flags: str | int,
        payload: bytes = b"",
        *,
        seq: int | None = None,
        ack: int | None = None,
        win: int | None = -1,
        options: list[Option] | None = None,
    ) -> Segment:
        """Assert the SUT sent exactly one segment; seq/ack default to the expected SND.NXT / RCV.NXT,
        options to <nop,nop,TS now peer_ts> (or none), win to `self.win`."""
        return self.peer.expect(
            flags,
            self.snd if seq is None else seq,
            self.rcv if ack is None else ack,
            self.win if win == -1 else win,
            payload,
            self.sut_opts() if options is None else options,
        )

    def expect_nothing(self) -> None:
        self.peer.expect_nothing()


def server_listen(host: Host, backlog: int = 8, port: int = SUT_PORT, reuse: bool = True) -> Any:
    lsock = host.socket()
    if reuse:
        lsock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
    lsock.bind(("0.0.0.0", port))
    lsock.listen(backlog)
    return lsock


def server_established(
    offered: Options = ALL,
    *,
    t0: int = 100 * MS,
    rtt: int = 100 * MS,
    host: Host | None = None,
    **settings: Any,
) -> Conn:
    """SUT = server: listen(8), the peer's SYN at t0, the SYN-ACK, the peer's ACK at t0 + rtt, accept().

    After it: SUT SND.NXT = 1001, RCV.NXT = 5001, ESTABLISHED, nothing pending, nothing armed."""
    host = host or make_host(**settings)
    peer = Peer(host)
    lsock = server_listen(host)
    peer.advance(t0)
    c = Conn(host, peer, None, lsock, offered)
    c.peer_ts = PEER_TS_BASE + t0 // MS
    peer.send("S", PEER_ISN, 0, 65535, b"", offered.encode(c.peer_ts))
    peer.expect("S.", SUT_ISS, PEER_ISN + 1)
    peer.advance(t0 + rtt)
    c.psend(".", seq=PEER_ISN + 1, ack=SUT_ISS + 1)
    c.sock, _ = lsock.accept()
    assert c.sock.state is State.ESTABLISHED
    peer.expect_nothing()
    c.win = (510 if offered.ts else 502) if offered.wscale is not None else None
    return c


def client_established(
    offered: Options = ALL,
    *,
    t0: int = 1 * SEC,
    rtt: int = 100 * MS,
    host: Host | None = None,
    **settings: Any,
) -> Conn:
    """SUT = client: connect() at t0 from port 40000 to the peer's port 8080, SYN, the peer's SYN-ACK
    after rtt, the SUT's ACK.

    After it: SUT SND.NXT = 1001, RCV.NXT = 5001, ESTABLISHED, nothing pending, nothing armed."""
    host = host or make_host(**settings)
    peer = Peer(host, port=SUT_PORT, sut_port=PEER_PORT)
    peer.advance(t0)
    sock = host.socket()
    sock.bind(("0.0.0.0", PEER_PORT))
    assert sock.connect_ex((PEER_IP, SUT_PORT)) == errno.EINPROGRESS
    peer.expect("S", SUT_ISS, 0)
    peer.advance(t0 + rtt)
    c = Conn(host, peer, sock, None, offered)
    c.peer_ts = PEER_TS_BASE + peer.now // MS
    peer.send("S.", PEER_ISN, SUT_ISS + 1, 65535, b"", offered.encode(c.peer_ts, t0 // MS))
    c.expect(".", win=None)
    assert sock.state is State.ESTABLISHED
    c.win = 502 if offered.wscale is not None else None
    return c


# ---- two hosts over an in-memory wire ---------------------------------------------------------------------


@dataclass
class Wire:
    """Two hosts joined by a lossless in-memory link with a fixed one-way delay, on a virtual clock that
    jumps to the next packet arrival or timer deadline (min over both hosts)."""

    a: Host
    b: Host
    delay: int = 10 * MS
    now: int = 0
    in_flight: list[tuple[int, int, Host, bytes]] = field(default_factory=list)
    transitions: list[stack.StateChanged] = field(default_factory=list)
    log: list[tuple[int, str, Segment]] = field(default_factory=list)  # (time sent, sender name, segment)
    _n: int = 0

    def __post_init__(self) -> None:
        for h in (self.a, self.b):
            h.subscribe(self._observe)

    def _observe(self, ev: stack.Event) -> None:
        if isinstance(ev, stack.StateChanged):
            self.transitions.append(ev)

    def _pump(self) -> None:
        for src, dst in ((self.a, self.b), (self.b, self.a)):
            for pkt in src.poll(self.now):
                seg = parse_packet(pkt)
                assert isinstance(seg, Segment)
                self.log.append((self.now, src.name, seg))
                self._n += 1
                self.in_flight.append((self.now + self.delay, self._n, dst, pkt))

    def run(self, until: int, app: Any = None) -> None:
        """Run every event up to `until` (inclusive); `app()` is called after each step (it may send or
        read). The clock ends at `until`."""
        while True:
            self._pump()
            if app is not None:
                app()
                self._pump()
            due = sorted((p for p in self.in_flight if p[0] <= self.now), key=lambda p: (p[0], p[1]))
            if due:
                self.in_flight = [p for p in self.in_flight if p[0] > self.now]
                for _, _, dst, pkt in due:
                    dst.receive(pkt, self.now)
                continue
            times = [t for t in (self.a.next_deadline(), self.b.next_deadline()) if t is not None]
            times += [p[0] for p in self.in_flight]
            nxt = min(times) if times else None
            if nxt is None or nxt > until:
                self.now = max(self.now, until)
                self._pump()
                return
            self.now = max(nxt, self.now)


def linger(onoff: int, secs: int) -> bytes:
    return struct.pack("ii", onoff, secs)
