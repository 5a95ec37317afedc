"""Fuzzing a Host with random and mutated packets: nothing escapes, every packet is accounted for.

The target host B holds a listener and, built with a real peer A over an in-memory loop, an ESTABLISHED
connection, a TIME_WAIT, an orphaned FIN_WAIT_2, a CLOSE_WAIT and a half-open request. Fuzz packets are
mostly aimed at those 4-tuples with sequence numbers near the live ones, and their checksums are recomputed
after mutation so most get past the parser into the TCP logic. Whatever B answers goes to A and back. A
target the fuzz kills (an in-window RST, say) is re-created, so every kind stays under fire. Seeded.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from stack import SEC, Event, Host, SegmentDropped, SegmentReceived, State
from stack.wire import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    build_packet,
    internet_checksum,
    sack_option,
    syn_options,
    tcp_checksum,
    ts_option,
)

A_ADDR, B_ADDR = "198.18.0.1", "198.18.0.2"
PORT = 80
N_PACKETS = 5000
PARSE_REASONS = {
    "truncated",
    "not-ipv4",
    "bad-ip-header-length",
    "bad-ip-total-length",
    "bad-ip-checksum",
    "not-tcp",
    "fragment",
    "bad-tcp-header-length",
    "bad-tcp-checksum",
    "bad-tcp-options",
}
EXPECTED = {
    "established": State.ESTABLISHED,
    "time-wait": State.TIME_WAIT,
    "fin-wait-2": State.FIN_WAIT_2,
    "close-wait": State.CLOSE_WAIT,
    "request": State.SYN_RCVD,
}


class Rig:
    """Two hosts over a lossless in-memory loop; every receive() is checked for accounting."""

    def __init__(self) -> None:
        self.a = Host(A_ADDR, seed=1, name="A")
        self.b = Host(B_ADDR, seed=2, name="B")
        self.now = 0
        self.events: dict[str, list[Event]] = {"A": [], "B": []}
        self.a.subscribe(self.events["A"].append)
        self.b.subscribe(self.events["B"].append)
        self.received = 0
        self.dropped: Counter[str] = Counter()
        self.held: list[tuple[Any, Any]] = []  # sockets the application keeps open
        self.request_port = 5000
        self.listener = self.b.socket()
        self.listener.bind(("0.0.0.0", PORT))
        self.listener.listen(16)

    def deliver(self, host: Host, packet: bytes) -> None:
        """host.receive(packet), then check it produced exactly one SegmentReceived, or else one drop."""
        log = self.events[host.name]
        start = len(log)
        host.receive(packet, self.now)
        during = log[start:]
        received = [e for e in during if isinstance(e, SegmentReceived)]
        dropped = [e for e in during if isinstance(e, SegmentDropped)]
        for e in dropped:
            assert e.reason, f"a drop without a reason: {e}"
            assert e.now == self.now
            self.dropped[e.reason] += 1
        assert len(received) <= 1, f"one packet was received {len(received)} times"
        if received:
            # SegmentReceived comes first; any drop after it is the TCP logic's verdict on the segment.
            first_drop = min((during.index(e) for e in dropped), default=len(during))
            assert during.index(received[0]) < first_drop
            self.received += 1
            return
        assert len(dropped) == 1, f"packet not accounted for: {len(dropped)} drops and no SegmentReceived"
        drop = dropped[0]
        assert drop.packet == packet
        if drop.segment is None:
            assert drop.reason in PARSE_REASONS, drop.reason
        else:
            assert drop.reason == "not-for-us"
            assert drop.segment.dst != host.address

    def exchange(self, rounds: int = 50) -> None:
        """Move packets both ways at the current time until the wire is quiet."""
        for _ in range(rounds):
            from_a, from_b = self.a.poll(self.now), self.b.poll(self.now)
            if not from_a and not from_b:
                return
            for p in from_a:
                self.deliver(self.b, p)
            for p in from_b:
                self.deliver(self.a, p)
        raise AssertionError(f"the hosts are still talking after {rounds} rounds at t={self.now}")

    def advance(self, until: int) -> None:
        """Run both hosts' timers up to `until`, exchanging packets at each step."""
        while True:
            deadlines = [d for d in (self.a.next_deadline(), self.b.next_deadline()) if d is not None]
            if not deadlines or min(deadlines) > until:
                break
            self.now = max(self.now, min(deadlines))
            self.exchange()
        self.now = until
        self.exchange()

    def connect(self) -> tuple[Any, Any]:
        """A connects to B:80; returns (client socket, accepted server socket)."""
        cli = self.a.socket()
        cli.connect_ex((B_ADDR, PORT))
        self.exchange()
        while True:  # pass over any connection the fuzz itself completed
            srv, addr = self.listener.accept()
            if addr == cli.getsockname():
                break
        assert cli.state is State.ESTABLISHED and srv.state is State.ESTABLISHED
        return cli, srv

    # The targets: each makes one connection on B in the named state and returns A's port for it.

    def make_established(self) -> int:
        cli, srv = self.connect()
        cli.send(b"hello")
        srv.send(b"world")
        self.exchange()
        assert srv.recv(100) == b"hello" and cli.recv(100) == b"world"
        self.held.append((cli, srv))
        return int(cli.getsockname()[1])

    def make_time_wait(self) -> int:
        # B closes first, A follows: B ends in TIME_WAIT.
        cli, srv = self.connect()
        port = int(cli.getsockname()[1])
        srv.close()
        self.exchange()
        cli.close()
        self.exchange()
        return port

    def make_fin_wait_2(self) -> int:
        # B closes, A never does: an orphaned FIN_WAIT_2 on B.
        cli, srv = self.connect()
        srv.close()
        self.exchange()
        self.held.append((cli, None))
        return int(cli.getsockname()[1])

    def make_close_wait(self) -> int:
        # A shuts down its sending side; B's application holds its socket.
        cli, srv = self.connect()
        cli.shutdown(1)
        self.exchange()
        self.held.append((cli, srv))
        return int(cli.getsockname()[1])

    def make_request(self) -> int:
        # A half-open request in B's SYN queue: a SYN "from A" whose SYN-ACK never reaches A.
        self.request_port += 1
        opts = syn_options(1460, sack=True, ts=(1, 0), wscale=7)
        self.deliver(self.b, build_packet(A_ADDR, B_ADDR, self.request_port, PORT, 1000, 0, SYN, 64240, opts))
        assert len(self.b.poll(self.now)) == 1  # the SYN-ACK, kept from A
        return self.request_port

    def b_states(self) -> dict[int, State]:
        """B's connections to A on port 80, by A's port; checks the sequence invariant on the way."""
        states = {}
        for snap in self.b.connections():
            assert (snap.snd_nxt - snap.snd_una) % 2**32 < 2**31, snap
            if snap.state is not State.LISTEN and snap.remote[0] == A_ADDR:
                states[snap.remote[1]] = snap.state
        return states

    def refresh(self, ports: dict[str, int]) -> tuple[int, dict[int, State]]:
        """Re-create every target the fuzz has killed; returns how many were re-created and B's states."""
        makers = {
            "established": self.make_established,
            "time-wait": self.make_time_wait,
            "fin-wait-2": self.make_fin_wait_2,
            "close-wait": self.make_close_wait,
            "request": self.make_request,
        }
        states = self.b_states()
        made = [name for name in makers if ports.get(name) not in states]
        if not made:
            return 0, states
        for name in made:
            ports[name] = makers[name]()
        states = self.b_states()
        for name in made:
            assert states[ports[name]] is EXPECTED[name], name
        return len(made), states


def refix(packet: bytearray) -> None:
    """Recompute whichever checksums the (possibly mangled) framing still lets us locate."""
    if len(packet) < 20:
        return
    ihl = (packet[0] & 0x0F) * 4
    if ihl < 20 or ihl > len(packet):
        return
    total = min(int.from_bytes(packet[2:4], "big"), len(packet))
    if packet[9] == 6 and total - ihl >= 20:
        packet[ihl + 16 : ihl + 18] = b"\x00\x00"
        csum = tcp_checksum(bytes(packet[12:16]), bytes(packet[16:20]), bytes(packet[ihl:total]))
        packet[ihl + 16 : ihl + 18] = csum.to_bytes(2, "big")
    packet[10:12] = b"\x00\x00"
    packet[10:12] = internet_checksum(bytes(packet[:ihl])).to_bytes(2, "big")


COMMON_FLAGS = [SYN, SYN | ACK, ACK, ACK, ACK | PSH, FIN | ACK, RST, RST | ACK, FIN | PSH | ACK, SYN | FIN, 0]


def random_options(rng: random.Random) -> bytes:
    kind = rng.randrange(7)
    if kind == 0:
        return b""
    if kind in (1, 2):
        return ts_option(rng.getrandbits(32), rng.getrandbits(32))
    if kind == 3:
        ts = (rng.getrandbits(32), rng.getrandbits(32)) if rng.random() < 0.5 else None
        wscale = rng.choice([None, 0, 7, 14, 255])
        return syn_options(rng.randrange(65536), sack=rng.random() < 0.5, ts=ts, wscale=wscale)
    if kind == 4:
        blocks = [(rng.getrandbits(32), rng.getrandbits(32)) for _ in range(rng.randint(1, 3))]
        return ts_option(rng.getrandbits(32), 0) + sack_option(blocks)
    # Random option bytes: mostly known kinds with random lengths.
    out = bytearray()
    limit = rng.randint(1, 40)
    while len(out) < limit:
        out.append(rng.choice([0, 1, 2, 3, 4, 5, 8, rng.randrange(256)]))
        if rng.random() < 0.8:
            out.append(rng.randrange(12))
        out += rng.randbytes(rng.randrange(6))
    return bytes(out[:40])


def make_packet(rig: Rig, rng: random.Random, ports: dict[str, int]) -> tuple[bytes, str]:
    """A fuzz packet for B, and the name of the target it was aimed at."""
    target = rng.choice([*ports, *ports, "listener", "closed-port", "random"])
    src, dst = A_ADDR, B_ADDR
    if rng.random() < 0.03:
        src = f"198.18.0.{rng.randrange(1, 255)}"
    if rng.random() < 0.02:
        dst = f"198.18.1.{rng.randrange(1, 255)}"
    sport, dport = ports.get(target, rng.randrange(1, 65536)), PORT
    if target == "closed-port":
        dport = 81
    elif target == "random":
        dport = rng.randrange(65536)
    seq, ack = rng.getrandbits(32), rng.getrandbits(32)
    conn = rig.b.connection(dport, (src, sport)) if dst == B_ADDR else None
    if conn is not None and rng.random() < 0.85:
        snap = conn.snapshot()
        seq = (snap.rcv_nxt + rng.choice([0, 0, 0, -1, 1, rng.randint(-3000, 70000)])) % 2**32
        ack = (snap.snd_nxt + rng.choice([0, 0, -1, 1, rng.randint(-70000, 3000)])) % 2**32
    flags = rng.choice(COMMON_FLAGS) if rng.random() < 0.8 else rng.getrandbits(8)
    payload = rng.randbytes(rng.choice([0, 0, 0, 1, rng.randint(1, 1460)]))
    window = rng.randrange(65536)
    options = random_options(rng)
    packet = bytearray(
        build_packet(
            src, dst, sport, dport, seq, ack, flags, window, options, payload, ip_id=rng.getrandbits(16)
        )
    )
    mutation = rng.randrange(12)
    if mutation == 0:  # flip bits anywhere
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(packet))
            packet[i] ^= 1 << rng.randrange(8)
    elif mutation == 1:  # truncate (and say so in the IP header, half of the time)
        packet = packet[: rng.randrange(len(packet) + 1)]
        if rng.random() < 0.5 and len(packet) >= 4:
            packet[2:4] = len(packet).to_bytes(2, "big")
    elif mutation == 2:  # overwrite one header byte
        packet[rng.randrange(min(len(packet), 60))] = rng.randrange(256)
    elif mutation == 3:  # random data offset
        packet[32] = (rng.randrange(16) << 4) | (packet[32] & 0x0F)
    elif mutation == 4:  # pure noise
        packet = bytearray(rng.randbytes(rng.randrange(120)))
    elif mutation == 5:  # noise behind a plausible IPv4/TCP start
        packet = bytearray(b"\x45\x00" + rng.randbytes(rng.randrange(60)))
        if len(packet) >= 10:
            packet[9] = 6
    # mutation >= 6: the well-formed packet as built.
    if (0 < mutation < 4 and rng.random() < 0.8) or (mutation == 0 and rng.random() < 0.5) or mutation == 5:
        refix(packet)
    return bytes(packet), target


def test_fuzzed_packets_are_all_accounted_for_and_the_host_survives() -> None:
    rig = Rig()
    ports: dict[str, int] = {}
    made, alive = rig.refresh(ports)
    assert made == 5
    assert sorted(map(str, alive.values())) == sorted(map(str, EXPECTED.values()))
    rng = random.Random(0x7CB)
    hits: Counter[str] = Counter()
    remade = 0
    for _ in range(N_PACKETS):
        rig.advance(rig.now + rng.randrange(0, 20_000))
        packet, target = make_packet(rig, rng, ports)
        received = rig.received
        rig.deliver(rig.b, packet)
        if rig.received > received and ports.get(target) in alive:
            hits[target] += 1
        rig.exchange()
        made, alive = rig.refresh(ports)
        remade += made

    # The fuzz reached each of the parser's verdicts, the TCP logic of each kind of target, and a good
    # spread of the TCP logic's verdicts; the numbers are those of this seed, with margin.
    assert set(rig.dropped) >= PARSE_REASONS, PARSE_REASONS - set(rig.dropped)
    for name in EXPECTED:
        assert hits[name] >= 200, (name, hits[name])
    assert remade >= 50
    tcp_reasons = set(rig.dropped) - PARSE_REASONS
    assert len(tcp_reasons) >= 15, sorted(tcp_reasons)

    # Afterwards the host still works: let timers settle, then a fresh client connects and talks.
    rig.advance(rig.now + 200 * SEC)
    cli, srv = rig.connect()
    data = bytes(range(256)) * 40
    assert cli.send(data) == len(data)
    rig.advance(rig.now + 1 * SEC)
    got = b""
    while len(got) < len(data):
        got += srv.recv(65536)
    assert got == data
    assert srv.send(b"pong") == 4
    rig.exchange()
    assert cli.recv(10) == b"pong"
    cli.close()
    rig.advance(rig.now + 1 * SEC)
    assert srv.recv(10) == b""
