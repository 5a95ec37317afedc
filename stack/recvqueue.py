"""The receive side's memory: in-order bytes waiting for the application, and out-of-order segments.

Out-of-order data is kept as sorted, non-overlapping [start, end) ranges with their bytes; duplicate and
overlapping parts are trimmed on arrival, so every byte is delivered exactly once and in order. The
ranges double as the SACK blocks a receiver reports (RFC 2018 §4: the most recently changed first).
"""

from __future__ import annotations


class ReceiveQueue:
    __slots__ = ("ooo", "ready", "recent")

    def __init__(self) -> None:
        self.ready = bytearray()
        self.ooo: list[tuple[int, bytes]] = []  # (start seq, data), sorted, non-overlapping
        self.recent: list[int] = []  # starts of ranges, most recently changed first

    @property
    def ooo_bytes(self) -> int:
        return sum(len(d) for _, d in self.ooo)

    def add_out_of_order(self, start: int, data: bytes) -> bool:
        """Keep a segment that lies beyond RCV.NXT. Returns False if all of it was already held."""
        end = start + len(data)
        merged_start, merged = start, bytearray(data)
        keep: list[tuple[int, bytes]] = []
        new_bytes = len(data)
        for s, d in self.ooo:
            e = s + len(d)
            if e < merged_start or s > merged_start + len(merged):
                keep.append((s, d))
                continue
            # Overlapping or adjacent: merge, preferring bytes already held.
            lo = min(s, merged_start)
            hi = max(e, merged_start + len(merged))
            buf = bytearray(hi - lo)
            buf[merged_start - lo : merged_start - lo + len(merged)] = merged
            buf[s - lo : e - lo] = d
            new_bytes -= max(0, min(e, end) - max(s, start))
            merged_start, merged = lo, buf
        keep.append((merged_start, bytes(merged)))
        keep.sort(key=lambda r: r[0])
        self.ooo = keep
        starts = {s for s, _ in keep}
        self.recent = [merged_start] + [s for s in self.recent if s in starts and s != merged_start]
        return new_bytes > 0

    def pull(self, rcv_nxt: int) -> int:
        """Move out-of-order data that now continues the stream into `ready`; return the new RCV.NXT."""
        while self.ooo and self.ooo[0][0] <= rcv_nxt:
            s, d = self.ooo.pop(0)
            if s + len(d) > rcv_nxt:
                self.ready += d[rcv_nxt - s :]
                rcv_nxt = s + len(d)
        starts = {s for s, _ in self.ooo}
        self.recent = [s for s in self.recent if s in starts]
        return rcv_nxt

    def sack_blocks(self, limit: int) -> list[tuple[int, int]]:
        by_start = {s: s + len(d) for s, d in self.ooo}
        order = self.recent + [s for s in by_start if s not in self.recent]
        return [(s, by_start[s]) for s in order[:limit]]
