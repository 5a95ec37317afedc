"""Every segment that crosses the link, with its time, direction, bytes and fate, in a bounded ring.

Records are numbered from 1 for the whole run; the ring keeps the newest `maxlen`, so a long bulk transfer
cannot grow memory without bound. The pcap export goes through scapy (imported only when exporting).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from stack.wire import Malformed, Segment, parse_packet

# Fates a segment can meet on the wire.
DELIVERED = "delivered"
DROPPED = "dropped"  # by the user ("drop the next segment")
LOST = "lost"  # random loss
CORRUPTED = "corrupted"  # delivered with flipped bits; the receiver's checksum catches it
DUPLICATED = "duplicated"  # delivered, and a copy of it too
REORDERED = "reordered"  # delivered late, behind later segments
PARTITIONED = "partitioned"  # cable pulled
HOST_DOWN = "host-down"  # the destination crashed
NO_ROUTE = "no-route"  # nobody owns the destination address (spoofed SYN flood replies)
FATES = (DELIVERED, DROPPED, LOST, CORRUPTED, DUPLICATED, REORDERED, PARTITIONED, HOST_DOWN, NO_ROUTE)


@dataclass(slots=True)
class CaptureRecord:
    number: int
    time: int  # stack time (us) when the segment left its sender
    src: str  # host name ("client", "server", "spoofed", "kernel"...)
    dst: str
    packet: bytes
    fate: str = DELIVERED
    arrival: int | None = None
    note: str = ""
    _segment: Segment | None = field(default=None, repr=False)

    @property
    def segment(self) -> Segment | None:
        """The decoded segment (decoded on first use; None for a packet that does not decode).

        The cached segment's payload is a zero-copy view into `packet`, so keeping the decoded form costs
        a few hundred bytes per record, not a second copy of the data (100 000 full-size segments would
        otherwise hold ~150 MB twice).
        """
        if self._segment is None:
            parsed = parse_packet(self.packet, verify_checksum=False)
            if isinstance(parsed, Malformed):
                return None
            if parsed.payload:
                end = int.from_bytes(self.packet[2:4], "big")  # IPv4 total length
                view = memoryview(self.packet)[end - len(parsed.payload) : end]
                parsed.payload = cast(bytes, view)  # supports len(), truth, ==, bytes(): all readers need
            self._segment = parsed
        return self._segment


class Capture:
    def __init__(self, maxlen: int = 100_000) -> None:
        if maxlen < 1:
            raise ValueError("the capture must hold at least one segment")
        self.records: deque[CaptureRecord] = deque(maxlen=maxlen)
        self.total = 0

    def add(self, time: int, src: str, dst: str, packet: bytes, fate: str, note: str = "") -> CaptureRecord:
        self.total += 1
        record = CaptureRecord(self.total, time, src, dst, packet, fate, note=note)
        self.records.append(record)
        return record

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[CaptureRecord]:
        return iter(self.records)

    def clear(self) -> None:
        self.records.clear()

    def export_pcap(self, path: str | Path, *, start_epoch: float = 0.0) -> int:
        """Write the capture as a pcap file (LINKTYPE_RAW IPv4) via scapy; returns packets written.

        Timestamps are stack time (seconds from the lab's start) plus start_epoch.
        """
        from scapy.layers.inet import IP
        from scapy.utils import wrpcap

        packets = []
        for record in self.records:
            pkt = IP(record.packet)
            pkt.time = start_epoch + record.time / 1_000_000
            packets.append(pkt)
        target = Path(path)
        try:
            wrpcap(str(target), packets, linktype=228)  # 228 = LINKTYPE_IPV4
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write pcap file {target}: {exc.strerror}") from None
        return len(packets)
