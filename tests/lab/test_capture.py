"""The capture: every segment with its time, direction, bytes and fate, in a bounded ring, and pcap export.

The pcap file is read back with scapy and compared packet by packet: the same bytes, the same timestamps
(stack time in seconds), the same count, so what Wireshark shows is exactly what tcpplay showed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.utils import rdpcap

from tcpplay.capture import Capture
from tcpplay.lab import Lab, LabError


def busy_lab(capture_size: int = 100_000) -> Lab:
    lab = Lab(seed=3, capture_size=capture_size)
    lab.listen("server")
    lab.connect("client")
    lab.advance(0.1)
    lab.drop_next("client", "data")
    lab.send("client", bytes(5000))
    lab.advance(1.0)
    lab.recv("server")
    lab.close("client")
    lab.advance(0.2)
    return lab


def test_pcap_round_trip_has_every_packet_with_its_timestamp(tmp_path: Path) -> None:
    lab = busy_lab()
    records = list(lab.capture)
    path = tmp_path / "run.pcap"
    assert lab.export_pcap(str(path)) == len(records)
    packets = rdpcap(str(path))
    assert len(packets) == len(records)
    for record, packet in zip(records, packets, strict=True):
        assert bytes(packet) == record.packet
        assert float(packet.time) == pytest.approx(record.time / 1_000_000, abs=1e-6)
        assert packet.haslayer(IP) and packet.haslayer(TCP)
        assert packet[TCP].seq == record.segment.seq and packet[TCP].ack == record.segment.ack
    # A dropped segment is in the capture too (it left its sender), with its fate.
    assert [r.fate for r in records].count("dropped") == 1


def test_the_ring_keeps_the_newest_segments_and_numbers_stay_global() -> None:
    lab = busy_lab(capture_size=5)
    assert len(lab.capture) == 5
    numbers = [r.number for r in lab.capture]
    assert numbers == list(range(lab.capture.total - 4, lab.capture.total + 1))
    assert lab.capture.total > 5
    with pytest.raises(ValueError, match="at least one"):
        Capture(0)


def test_every_record_has_time_direction_bytes_and_fate() -> None:
    lab = Lab(seed=1)
    lab.impair("client", loss=0.5)
    lab.listen("server")
    lab.connect("client")
    assert lab.run_until_state("client", "ESTABLISHED", timeout=60)
    lab.send("client", bytes(30_000))
    lab.advance(30)
    fates = {r.fate for r in lab.capture}
    assert "lost" in fates and "delivered" in fates
    for r in lab.capture:
        assert r.src in ("client", "server") and r.dst in ("client", "server") and r.src != r.dst
        assert r.segment is not None and r.time >= 0
        if r.fate == "delivered":
            assert r.arrival == r.time + 10_000  # the 10 ms one-way delay


def test_export_to_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    lab = busy_lab()
    with pytest.raises(LabError, match="cannot write pcap file"):
        lab.export_pcap(str(tmp_path / "no" / "such" / "dir" / "x.pcap"))


def test_the_event_log_never_keeps_packets_the_capture_let_go() -> None:
    from tcpplay.lab import PacketEvent

    lab = Lab(seed=1, capture_size=500)
    lab.listen("server")
    lab.connect("client")
    lab.advance(0.1)
    while lab.capture.total < 3000:
        lab.send("client", b"z" * 65536)
        lab.advance(0.05)
        lab.recv("server", 1 << 20)
    assert len(lab.log) == 500  # as long as the capture by default
    oldest = min(r.number for r in lab.capture)
    kept = [e.record.number for e in lab.log if isinstance(e, PacketEvent)]
    assert kept and min(kept) >= oldest
    assert Lab(seed=1, capture_size=500, log_size=2000).log.maxlen == 2000  # an explicit size wins
