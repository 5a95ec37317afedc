"""A burst of new data (Connection.output()): the second and later segments take a lean path that reuses
the first one's window, RCV.NXT and options and packs the packet directly (Host.send_data()). These tests
pin that what it puts on the wire is exactly what the general path (transmit() -> build_packet()) builds.
"""

from __future__ import annotations

import struct

from stack import MS, SEC, Segment
from stack.events import SegmentSent
from stack.wire import ACK, PSH, build_packet, parse_packet, sack_option, ts_option

from .helpers import NOP, PEER_IP, PEER_PORT, SACK, SUT_IP, SUT_PORT, TS, server_established

MSS = 1448  # 1460 - 12 bytes of timestamp option


def ip_id_of(packet: bytes) -> int:
    return int(struct.unpack_from("!H", packet, 4)[0])


def test_a_burst_is_byte_identical_to_build_packet_with_consecutive_ip_ids_and_psh_on_the_last() -> None:
    c = server_established()
    data = bytes(range(256)) * 40  # 10240 bytes: 7 full segments and 104 bytes
    assert c.sock.send(data) == len(data)
    now = c.now
    packets = c.host.poll(now)
    assert len(packets) == 8
    first_id = ip_id_of(packets[0])
    opts = ts_option(now // MS, c.peer_ts)
    for i, packet in enumerate(packets):
        chunk = data[MSS * i : MSS * (i + 1)]
        flags = ACK | PSH if i == 7 else ACK
        want = build_packet(
            SUT_IP, PEER_IP, SUT_PORT, PEER_PORT, 1001 + MSS * i, 5001, flags, 510, opts, chunk,
            ip_id=(first_id + i) & 0xFFFF,
        )  # fmt: skip
        assert packet == want, f"segment {i} differs"


def test_checksum_offload_burst_leaves_both_checksums_zero() -> None:
    c = server_established()
    c.host.checksum = False
    c.sock.send(bytes(3 * MSS))
    packets = c.host.poll(c.now)
    assert len(packets) == 3
    for packet in packets:
        assert struct.unpack_from("!H", packet, 10)[0] == 0  # IPv4 header checksum
        assert struct.unpack_from("!H", packet, 36)[0] == 0  # TCP checksum
        seg = parse_packet(packet, verify_checksum=False)
        assert isinstance(seg, Segment) and len(seg.payload) == MSS


def test_every_segment_of_a_burst_repeats_the_sack_blocks_of_the_out_of_order_data_held() -> None:
    c = server_established()
    c.advance(c.now + 10 * MS)
    ecr = c.peer_ts  # an out-of-order segment does not update TS.Recent (RFC 7323 §4.3)
    # The peer's bytes 100..200 arrive ahead of 0..100: the SUT holds them and says so at once.
    c.psend("P.", b"y" * 100, seq=c.rcv + 100)
    block = [NOP, NOP, SACK((c.rcv + 100, c.rcv + 200))]
    ts = TS(c.now // MS, ecr)
    c.expect(".", options=[NOP, NOP, ts, *block])
    c.sock.send(bytes(3 * MSS))
    segs = c.peer.expect_many(3)
    for i, seg in enumerate(segs):
        c.peer.check(
            seg, "P." if i == 2 else ".", c.snd + MSS * i, c.rcv, 510, bytes(MSS), [NOP, NOP, ts, *block]
        )
    # The options bytes are the general path's: TS then the SACK option, 12 + 12 bytes.
    assert sack_option([(c.rcv + 100, c.rcv + 200)]) == bytes((1, 1, 5, 10)) + struct.pack(
        "!II", c.rcv + 100, c.rcv + 200
    )


def test_an_observer_sees_every_segment_of_a_burst_with_its_reason() -> None:
    c = server_established()
    seen: list[SegmentSent] = []
    c.host.subscribe(lambda e: seen.append(e) if isinstance(e, SegmentSent) else None)
    c.advance(c.now + 1 * SEC)
    c.sock.send(bytes(4 * MSS))
    packets = c.host.poll(c.now)
    assert [e.packet for e in seen] == packets
    assert [e.reason for e in seen] == ["data"] * 4
    assert [e.segment.seq for e in seen] == [1001 + MSS * i for i in range(4)]
    assert [e.segment.options[-1] for e in seen] == [TS(c.now // MS, c.peer_ts)] * 4
    assert all(e.conn == (SUT_IP, SUT_PORT, PEER_IP, PEER_PORT) for e in seen)
    assert all(isinstance(e.segment.payload, bytes) and len(e.segment.payload) == MSS for e in seen)
