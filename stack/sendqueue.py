"""The send side's memory: bytes the application wrote, and the segments sent but not yet acknowledged.

Bytes live in one bytearray starting at `base` (the sequence number of its first byte); acknowledged bytes
are cut off the front with `del buf[:n]`. Transmitted segments are remembered with their boundaries,
flags and send times, as Linux keeps its retransmission queue: a retransmission resends the same segment
(collapsing small neighbours into it when they fit, like tcp_retrans_try_collapse()), an RTT sample comes
from the newest acknowledged segment never retransmitted (Karn), and SACK marks segments, not bytes.
"""

from __future__ import annotations

from collections import deque

from .wire import FIN, PSH, SYN


class SentSegment:
    __slots__ = ("end", "first_sent", "flags", "lost", "retrans", "sacked", "sent_at", "start")

    def __init__(self, start: int, end: int, flags: int, now: int) -> None:
        self.start = start
        self.end = end
        self.flags = flags  # SYN / FIN / PSH bits this segment carries
        self.sent_at = now
        self.first_sent = now
        self.retrans = 0
        self.sacked = False
        self.lost = False

    def __repr__(self) -> str:
        return f"SentSegment({self.start}:{self.end} flags={self.flags:#x} retrans={self.retrans})"


class SendQueue:
    __slots__ = ("base", "buf", "fin_seq", "push_marks", "segs", "write_seq")

    def __init__(self, first_data_seq: int) -> None:
        self.buf = bytearray()
        self.base = first_data_seq  # sequence number of buf[0]
        self.write_seq = first_data_seq  # sequence number after the last byte written
        self.push_marks: deque[int] = deque()  # end of each write: where PSH goes
        self.segs: deque[SentSegment] = deque()
        self.fin_seq: int | None = None  # set once the application closed its sending side

    def reset_base(self, first_data_seq: int) -> None:
        self.base = self.write_seq = first_data_seq

    @property
    def buffered(self) -> int:
        return len(self.buf)

    @property
    def end_seq(self) -> int:
        """One past the last sequence number the application has queued (FIN included)."""
        return self.write_seq + (1 if self.fin_seq is not None else 0)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.buf += data
        self.write_seq += len(data)
        if self.push_marks and self.push_marks[-1] == self.write_seq - len(data):
            # A new write right behind the previous one that is still unsent moves the push point,
            # as Linux marks PSH on the tail skb when the write ends (tcp_push()).
            self.push_marks[-1] = self.write_seq
        else:
            self.push_marks.append(self.write_seq)

    def data(self, start: int, end: int) -> bytes:
        """Payload bytes for sequence range [start, end) (end clipped to written data)."""
        end = min(end, self.write_seq)
        if end <= start:
            return b""
        return bytes(self.buf[start - self.base : end - self.base])

    def push_in(self, start: int, end: int) -> bool:
        """True if a write ended inside (start, end]: that segment carries PSH."""
        for mark in self.push_marks:
            if start < mark <= end:
                return True
            if mark > end:
                break
        return False

    def record(self, start: int, end: int, flags: int, now: int) -> SentSegment:
        seg = SentSegment(start, end, flags & (SYN | FIN | PSH), now)
        self.segs.append(seg)
        return seg

    def acknowledge(self, ack: int) -> list[SentSegment]:
        """Drop everything below ack; return the segments that became fully acknowledged."""
        done: list[SentSegment] = []
        segs = self.segs
        while segs and segs[0].end <= ack:
            done.append(segs.popleft())
        if segs and segs[0].start < ack:
            segs[0].start = ack  # a partial ACK trims the head segment (tcp_trim_head())
        cut = min(ack, self.write_seq) - self.base
        if cut > 0:
            del self.buf[:cut]
            self.base += cut
        marks = self.push_marks
        while marks and marks[0] <= ack:
            marks.popleft()
        return done
