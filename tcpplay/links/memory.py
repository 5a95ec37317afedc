"""The in-memory wire: per-direction delay, jitter, loss, duplication, reordering, corruption, bandwidth,
partition and "drop the next segment" rules, all drawn from one seeded RNG so every run repeats exactly.

The link does not move time. `transmit` decides a packet's fate and arrival time(s); the lab asks for the
next arrival and collects due deliveries as its clock reaches them.
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field, fields

from stack.wire import ACK, FIN, RST, SYN, Malformed, Segment, parse_packet

from ..capture import CORRUPTED, DELIVERED, DROPPED, DUPLICATED, LOST, PARTITIONED, REORDERED

SEC = 1_000_000

# Kinds a drop rule can match, by what the segment carries.
DROP_KINDS = ("any", "SYN", "SYN-ACK", "ACK", "FIN", "RST", "data", "pure-ACK")


@dataclass(slots=True)
class Impairment:
    """What one direction of the wire does to packets. Times in seconds, probabilities 0..1."""

    delay: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0  # probability a packet is held back by an extra `reorder_delay`
    reorder_delay: float = 0.005
    corrupt: float = 0.0
    rate: int = 0  # bytes per second; 0 = unlimited

    def validate(self) -> None:
        for name in ("loss", "duplicate", "reorder", "corrupt"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability between 0 and 1 (0-100 %), got {value}")
        for name in ("delay", "jitter", "reorder_delay"):
            value = getattr(self, name)
            if not 0.0 <= value <= 3600.0:
                raise ValueError(f"{name} must be between 0 and 3600 seconds, got {value}")
        if self.rate < 0:
            raise ValueError(f"rate must be >= 0 bytes/s (0 = unlimited), got {self.rate}")

    def describe(self) -> str:
        parts = []
        if self.delay:
            parts.append(f"delay {self.delay * 1000:g} ms")
        if self.jitter:
            parts.append(f"jitter {self.jitter * 1000:g} ms")
        for name in ("loss", "duplicate", "reorder", "corrupt"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name} {value * 100:g}%")
        if self.rate:
            parts.append(f"rate {self.rate} B/s")
        return ", ".join(parts) or "clean"


@dataclass(slots=True)
class DropRule:
    direction: str  # a sender's host name, or "any"
    kind: str = "any"
    count: int = 1

    def matches(self, src: str, seg: Segment | None) -> bool:
        if self.direction not in ("any", src):
            return False
        return segment_kind_matches(seg, self.kind)


def segment_kind_matches(seg: Segment | None, kind: str) -> bool:
    if kind == "any":
        return True
    if seg is None:
        return False
    f = seg.flags
    if kind == "SYN":
        return bool(f & SYN) and not f & ACK
    if kind == "SYN-ACK":
        return bool(f & SYN) and bool(f & ACK)
    if kind == "FIN":
        return bool(f & FIN)
    if kind == "RST":
        return bool(f & RST)
    if kind == "data":
        return bool(seg.payload)
    if kind == "ACK":
        return bool(f & ACK)
    if kind == "pure-ACK":
        return f & (SYN | FIN | RST) == 0 and bool(f & ACK) and not seg.payload
    raise ValueError(f"unknown segment kind {kind!r}; one of {', '.join(DROP_KINDS)}")


@dataclass(slots=True)
class Verdict:
    fate: str
    arrivals: list[int] = field(default_factory=list)  # stack times at which copies arrive


class MemoryLink:
    """Two or more named endpoints on one wire; impairments are set per sending host."""

    name = "memory"

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(f"memory-link:{seed}")
        self.impairments: dict[str, Impairment] = {}
        self.drop_rules: list[DropRule] = []
        self.partitioned = False
        self._queue: list[tuple[int, int, str, bytes, int]] = []  # (arrival, order, dst, packet, record no.)
        self._order = itertools.count()
        self._busy_until: dict[str, int] = {}

    def impairment(self, src: str) -> Impairment:
        return self.impairments.setdefault(src, Impairment())

    def set_impairment(self, src: str, **values: float) -> Impairment:
        """Change some impairment fields for packets sent by `src` ("any" for every direction)."""
        names = {f.name for f in fields(Impairment)}
        for key in values:
            if key not in names:
                raise ValueError(f"unknown impairment {key!r}; one of {', '.join(sorted(names))}")
        targets = list(self.impairments) if src == "any" else [src]
        for target in targets:
            imp = self.impairment(target)
            old = {f.name: getattr(imp, f.name) for f in fields(Impairment)}
            for key, value in values.items():
                setattr(imp, key, type(old[key])(value))
            try:
                imp.validate()
            except ValueError:
                for key, value in old.items():
                    setattr(imp, key, value)
                raise
        return self.impairment(targets[0]) if targets else Impairment()

    def add_drop_rule(self, direction: str, kind: str = "any", count: int = 1) -> DropRule:
        if kind not in DROP_KINDS:
            raise ValueError(f"unknown segment kind {kind!r}; one of {', '.join(DROP_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        rule = DropRule(direction, kind, count)
        self.drop_rules.append(rule)
        return rule

    def transmit(self, src: str, packet: bytes, now: int, seg: Segment | None = None) -> Verdict:
        """Decide what happens to a packet `src` puts on the wire at `now`."""
        if seg is None:
            parsed = parse_packet(packet, verify_checksum=False)
            seg = None if isinstance(parsed, Malformed) else parsed
        for rule in self.drop_rules:
            if rule.matches(src, seg):
                rule.count -= 1
                if rule.count <= 0:
                    self.drop_rules.remove(rule)
                return Verdict(DROPPED)
        if self.partitioned:
            return Verdict(PARTITIONED)
        imp = self.impairment(src)
        rng = self.rng
        if imp.loss and rng.random() < imp.loss:
            return Verdict(LOST)
        start = now
        if imp.rate:
            # Serialization: one packet at a time per direction at `rate` bytes per second.
            start = max(now, self._busy_until.get(src, 0))
            self._busy_until[src] = start + len(packet) * SEC // imp.rate
            start = self._busy_until[src]
        delay = imp.delay
        if imp.jitter:
            delay += rng.uniform(0.0, imp.jitter)
        fate = DELIVERED
        if imp.reorder and rng.random() < imp.reorder:
            delay += imp.reorder_delay
            fate = REORDERED
        arrival = start + round(delay * SEC)
        arrivals = [arrival]
        if imp.corrupt and rng.random() < imp.corrupt:
            fate = CORRUPTED
        if imp.duplicate and rng.random() < imp.duplicate:
            arrivals.append(arrival + round(rng.uniform(0.0, max(imp.jitter, 0.001)) * SEC))
            fate = DUPLICATED if fate == DELIVERED else fate
        return Verdict(fate, arrivals)

    def corrupt(self, packet: bytes) -> bytes:
        """Flip one bit inside the TCP segment (the IP header stays intact, so TCP's checksum catches it)."""
        data = bytearray(packet)
        ihl = (data[0] & 0x0F) * 4 if data else 20
        if len(data) <= ihl:
            return bytes(data)
        pos = self.rng.randrange(ihl, len(data))
        if ihl + 16 <= pos < ihl + 18:
            pos = ihl + 4  # do not flip the checksum field itself into a match
        data[pos] ^= 1 << self.rng.randrange(8)
        return bytes(data)

    def schedule(self, dst: str, packet: bytes, arrival: int, record: int) -> None:
        heapq.heappush(self._queue, (arrival, next(self._order), dst, packet, record))

    def next_arrival(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def pop_due(self, now: int) -> tuple[int, str, bytes, int] | None:
        if self._queue and self._queue[0][0] <= now:
            arrival, _, dst, packet, record = heapq.heappop(self._queue)
            return arrival, dst, packet, record
        return None

    def in_flight(self) -> int:
        return len(self._queue)

    def flush(self, dst: str | None = None) -> int:
        """Forget packets in flight (to dst, or all); returns how many."""
        before = len(self._queue)
        if dst is None:
            self._queue.clear()
        else:
            self._queue = [item for item in self._queue if item[2] != dst]
            heapq.heapify(self._queue)
        return before - len(self._queue)

    def describe(self) -> str:
        parts = []
        for src, imp in sorted(self.impairments.items()):
            text = imp.describe()
            if text != "clean":
                parts.append(f"{src}→: {text}")
        if self.partitioned:
            parts.append("cable pulled")
        if self.drop_rules:
            parts.append(
                "drop next: " + ", ".join(f"{r.kind} from {r.direction} x{r.count}" for r in self.drop_rules)
            )
        return "; ".join(parts) or "clean wire"
