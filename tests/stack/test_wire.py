"""stack.wire: exact packet bytes, checksums, TCP options, and the parser's named reasons for bad packets.

Checksums are verified against `ref_sum` below, a plain RFC 1071 loop over 16-bit words, written
independently of the big-integer fold the stack uses.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stack import seqnum
from stack.wire import (
    ACK,
    CWR,
    ECE,
    FIN,
    PSH,
    RST,
    SYN,
    URG,
    Malformed,
    Option,
    Segment,
    build_packet,
    build_segment,
    encode_options,
    flags_text,
    internet_checksum,
    ip_from_bytes,
    ip_to_bytes,
    ones_complement_sum,
    parse_options,
    parse_packet,
    sack_option,
    syn_options,
    ts_option,
)

SRC, DST = "10.0.0.1", "10.0.0.2"
SRC_B, DST_B = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])


# --- an independent reference ------------------------------------------------------------------------------


def ref_sum(data: bytes) -> int:
    """RFC 1071: add 16-bit big-endian words with end-around carry."""
    if len(data) % 2:
        data = data + b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


def ref_checksum(data: bytes) -> int:
    return (~ref_sum(data)) & 0xFFFF


def ref_tcp_checksum(src: bytes, dst: bytes, tcp: bytes) -> int:
    pseudo = src + dst + bytes([0, 6]) + len(tcp).to_bytes(2, "big")
    return ref_checksum(pseudo + tcp)


def with_ip_checksum(ip_header: bytearray) -> bytearray:
    """Recompute the IPv4 header checksum in place (for hand-made malformed packets)."""
    ip_header[10:12] = b"\x00\x00"
    ip_header[10:12] = ref_checksum(bytes(ip_header)).to_bytes(2, "big")
    return ip_header


def refix(packet: bytearray) -> bytes:
    """Recompute both checksums of a (well-framed) packet after editing it."""
    ihl = (packet[0] & 0x0F) * 4
    packet[ihl + 16 : ihl + 18] = b"\x00\x00"
    tcp = bytes(packet[ihl:])
    packet[ihl + 16 : ihl + 18] = ref_tcp_checksum(bytes(packet[12:16]), bytes(packet[16:20]), tcp).to_bytes(
        2, "big"
    )
    head = with_ip_checksum(bytearray(packet[:ihl]))
    packet[:ihl] = head
    return bytes(packet)


def sample(*, checksum: bool = True) -> bytes:
    """ACK with 4 bytes of data: 44 bytes in all."""
    return build_packet(SRC, DST, 1234, 80, 1000, 2000, ACK, 512, b"", b"data", checksum=checksum)


def reason_of(data: bytes, *, verify_checksum: bool = True) -> str:
    result = parse_packet(data, verify_checksum=verify_checksum)
    assert isinstance(result, Malformed), result
    return result.reason


# --- the reference itself ----------------------------------------------------------------------------------


def test_reference_checksum_matches_rfc1071_worked_example() -> None:
    # RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (end-around carry included).
    assert ref_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2
    assert ref_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


# --- ones_complement_sum -----------------------------------------------------------------------------------


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_ones_complement_sum_matches_reference(data: bytes) -> None:
    assert ones_complement_sum(data) == ref_sum(data)
    assert internet_checksum(data) == ref_checksum(data)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=64), st.sampled_from([0x00, 0xFF]), st.booleans())
def test_ones_complement_sum_uniform_data(n: int, byte: int, odd: bool) -> None:
    data = bytes([byte]) * (2 * n + (1 if odd else 0))
    assert ones_complement_sum(data) == ref_sum(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 0x0000),
        (b"\x00", 0x0000),
        (b"\x00\x00\x00\x00", 0x0000),
        (b"\xff\xff", 0xFFFF),  # a nonzero sum that is ≡ 0 mod 0xFFFF must come out as 0xFFFF
        (b"\xff\xff\xff\xff", 0xFFFF),
        (b"\xff", 0xFF00),  # odd length: padded with a zero byte on the right
        (b"\x01", 0x0100),
        (b"\x00\x01\xff\xfe", 0xFFFF),
        (b"\x80\x00\x80\x00", 0x0001),  # carry wraps around
        (b"\x12\x34\x56", 0x6834),
    ],
)
def test_ones_complement_sum_edge_cases(data: bytes, expected: int) -> None:
    assert ref_sum(data) == expected
    assert ones_complement_sum(data) == expected


def test_ones_complement_sum_accepts_buffers_without_mutating_them() -> None:
    buf = bytearray(b"\x12\x34\x56")
    assert ones_complement_sum(buf) == 0x6834
    assert buf == bytearray(
        b"\x12\x34\x56"
    )  # the odd byte's zero pad must not be appended to the caller's buffer
    assert ones_complement_sum(memoryview(b"\x12\x34\x56")) == 0x6834


# --- addresses ---------------------------------------------------------------------------------------------


def test_ip_address_conversion() -> None:
    assert ip_to_bytes("198.18.0.1") == bytes([198, 18, 0, 1])
    assert ip_from_bytes(bytes([198, 18, 0, 1])) == "198.18.0.1"
    assert ip_to_bytes("0.0.0.0") == b"\x00\x00\x00\x00"
    assert ip_to_bytes("255.255.255.255") == b"\xff\xff\xff\xff"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.256",
        "a.b.c.d",
        "1.2.3.4 junk",
        "10.0.0.010",
        "0x7f.0.0.1",
        " 1.2.3.4",
    ],
)
def test_ip_to_bytes_rejects_non_canonical_addresses(bad: str) -> None:
    # Every accepted spelling must round-trip, or a Host keyed by it never matches its own packets.
    with pytest.raises(ValueError, match="not an IPv4 address"):
        ip_to_bytes(bad)


# --- build_packet ------------------------------------------------------------------------------------------


def test_build_packet_exact_bytes() -> None:
    pkt = build_packet(
        SRC, DST, 1234, 80, 0x01020304, 0x0A0B0C0D, SYN | ACK, 65535, b"", b"hi", ip_id=0x1234, ttl=64
    )
    assert len(pkt) == 42
    ip, tcp = pkt[:20], pkt[20:]
    # IPv4: version 4 / IHL 5, TOS 0, total 42, id, DF and no fragment offset, TTL 64, protocol 6 (TCP).
    assert ip[:10] == bytes.fromhex("45 00 002a 1234 4000 40 06")
    assert ip[12:] == SRC_B + DST_B
    zeroed_ip = ip[:10] + b"\x00\x00" + ip[12:]
    assert int.from_bytes(ip[10:12], "big") == ref_checksum(zeroed_ip)
    assert ref_sum(ip) == 0xFFFF
    # TCP: ports, seq, ack, data offset 5 words, flags SYN|ACK, window, checksum, urgent 0, payload.
    assert tcp[:16] == bytes.fromhex("04d2 0050 01020304 0a0b0c0d 50 12 ffff")
    assert tcp[18:20] == b"\x00\x00"
    assert tcp[20:] == b"hi"
    zeroed_tcp = tcp[:16] + b"\x00\x00" + tcp[16 + 2 :]
    assert int.from_bytes(tcp[16:18], "big") == ref_tcp_checksum(SRC_B, DST_B, zeroed_tcp)


def test_build_packet_full_layout_pinned() -> None:
    # The whole packet as a literal, with the checksums the reference gives.
    pkt = build_packet(SRC, DST, 1, 2, 3, 4, ACK | PSH, 5, b"", b"x", ip_id=7)
    ip_csum = ref_checksum(bytes.fromhex("4500 0029 0007 4000 4006 0000 0a000001 0a000002"))
    tcp_wo = bytes.fromhex("0001 0002 00000003 00000004 5018 0005 0000 0000") + b"x"
    tcp_csum = ref_tcp_checksum(SRC_B, DST_B, tcp_wo)
    expected = (
        bytes.fromhex("4500 0029 0007 4000 4006")
        + ip_csum.to_bytes(2, "big")
        + SRC_B
        + DST_B
        + bytes.fromhex("0001 0002 00000003 00000004 5018 0005")
        + tcp_csum.to_bytes(2, "big")
        + b"\x00\x00x"
    )
    assert pkt == expected


def test_build_packet_wraps_seq_ack_and_ip_id_and_sets_ttl() -> None:
    pkt = build_packet(SRC, DST, 1, 2, 2**32 + 5, 2**33 + 7, ACK, 0, ip_id=0x1_0002, ttl=3)
    assert pkt[4:6] == b"\x00\x02"
    assert pkt[8] == 3
    assert pkt[24:32] == bytes.fromhex("00000005 00000007")
    seg = parse_packet(pkt)
    assert isinstance(seg, Segment)
    assert (seg.seq, seg.ack, seg.ttl, seg.ip_id) == (5, 7, 3, 2)


def test_build_packet_pads_options_to_32_bits() -> None:
    pkt = build_packet(SRC, DST, 1, 2, 3, 4, ACK, 5, b"\x01\x01\x01", b"")
    assert pkt[32] >> 4 == 6  # data offset: 24 bytes
    assert pkt[40:44] == b"\x01\x01\x01\x00"
    assert len(pkt) == 44
    assert int.from_bytes(pkt[2:4], "big") == 44


def test_build_parse_round_trip_of_every_field() -> None:
    opts = syn_options(1460, sack=True, ts=(11, 22), wscale=7)
    pkt = build_packet(SRC, DST, 40000, 443, 123, 456, SYN | ACK | ECE, 29200, opts, b"", ip_id=9, ttl=55)
    seg = parse_packet(pkt)
    assert isinstance(seg, Segment)
    assert (seg.src, seg.dst, seg.sport, seg.dport) == (SRC, DST, 40000, 443)
    assert (seg.seq, seg.ack, seg.flags, seg.window, seg.payload) == (123, 456, SYN | ACK | ECE, 29200, b"")
    assert (seg.mss, seg.wscale, seg.sack_permitted, seg.ts_val, seg.ts_ecr) == (1460, 7, True, 11, 22)
    assert (seg.ttl, seg.ip_id, seg.urgent) == (55, 9, 0)
    assert seg.options == (
        Option("mss", (1460,)),
        Option("sackOK"),
        Option("TS", (11, 22)),
        Option("nop"),
        Option("wscale", (7,)),
    )
    assert build_segment(seg) == pkt


# --- checksum offload --------------------------------------------------------------------------------------


def test_checksum_offload_writes_zero_and_parser_accepts_it_only_when_told() -> None:
    pkt = sample(checksum=False)
    assert pkt[36:38] == b"\x00\x00"
    assert pkt[10:12] == b"\x00\x00"  # offload leaves the IPv4 header checksum to the "driver" too
    assert sample() != pkt
    assert ref_tcp_checksum(SRC_B, DST_B, pkt[20:]) != 0  # zero is not this segment's real checksum
    seg = parse_packet(pkt, verify_checksum=False)
    assert isinstance(seg, Segment)
    assert seg.payload == b"data"
    bad = parse_packet(pkt)
    assert isinstance(bad, Malformed)
    assert bad.reason == "bad-ip-checksum"  # verified in order: the IPv4 header first
    only_tcp_zero = bytearray(sample())
    only_tcp_zero[36:38] = b"\x00\x00"
    bad = parse_packet(bytes(only_tcp_zero))
    assert isinstance(bad, Malformed) and bad.reason == "bad-tcp-checksum"
    wrong_ip = bytearray(pkt)
    wrong_ip[10] = 0x12  # a nonzero IPv4 checksum is checked even with offload
    bad = parse_packet(bytes(wrong_ip), verify_checksum=False)
    assert isinstance(bad, Malformed) and bad.reason == "bad-ip-checksum"


def test_checksum_offload_still_rejects_a_wrong_nonzero_checksum() -> None:
    pkt = bytearray(sample())
    pkt[36] ^= 0x01
    assert pkt[36:38] != b"\x00\x00"
    for verify in (False, True):
        result = parse_packet(bytes(pkt), verify_checksum=verify)
        assert isinstance(result, Malformed)
        assert result.reason == "bad-tcp-checksum"
    # A correct nonzero checksum is accepted either way.
    assert isinstance(parse_packet(sample(), verify_checksum=False), Segment)


def test_payload_corruption_is_caught() -> None:
    pkt = bytearray(sample())
    pkt[-1] ^= 0x40
    result = parse_packet(bytes(pkt))
    assert isinstance(result, Malformed)
    assert result.reason == "bad-tcp-checksum"


# --- options -----------------------------------------------------------------------------------------------


def test_syn_options_linux_layout_everything_on() -> None:
    opts = syn_options(1460, sack=True, ts=(0x01020304, 0x05060708), wscale=7)
    assert opts == bytes.fromhex("020405b4 0402 080a 01020304 05060708 01 030307")
    assert len(opts) == 20


def test_syn_options_without_timestamps() -> None:
    assert syn_options(1460, sack=True, ts=None, wscale=7) == bytes.fromhex("020405b4 01010402 01030307")


def test_syn_options_without_sack() -> None:
    opts = syn_options(1460, sack=False, ts=(1, 2), wscale=7)
    assert opts == bytes.fromhex("020405b4 0101080a 00000001 00000002 01030307")


def test_syn_options_other_combinations() -> None:
    assert syn_options(536, sack=False, ts=None, wscale=None) == bytes.fromhex("02040218")
    assert syn_options(1460, sack=True, ts=None, wscale=None) == bytes.fromhex("020405b4 01010402")
    assert syn_options(1460, sack=False, ts=None, wscale=14) == bytes.fromhex("020405b4 0103030e")
    assert syn_options(1460, sack=True, ts=(3, 0), wscale=None) == bytes.fromhex(
        "020405b4 0402080a 00000003 00000000"
    )


def test_ts_option() -> None:
    assert ts_option(0x11223344, 0x55667788) == bytes.fromhex("0101080a 11223344 55667788")
    assert ts_option(2**32 + 1, -1) == bytes.fromhex("0101080a 00000001 ffffffff")
    assert len(ts_option(0, 0)) == 12


def test_sack_option() -> None:
    assert sack_option([(1, 2)]) == bytes.fromhex("0101050a 00000001 00000002")
    assert sack_option([(10, 20), (30, 40), (2**32 + 1, 2**32 + 2)]) == bytes.fromhex(
        "0101051a 0000000a 00000014 0000001e 00000028 00000001 00000002"
    )


def test_ts_and_sack_parse_back() -> None:
    opts = ts_option(7, 8) + sack_option([(100, 200), (300, 400)])
    seg = parse_packet(build_packet(SRC, DST, 1, 2, 3, 4, ACK, 5, opts))
    assert isinstance(seg, Segment)
    assert (seg.ts_val, seg.ts_ecr) == (7, 8)
    assert seg.sack_blocks == ((100, 200), (300, 400))
    assert seg.options[-1] == Option("sack", (100, 200, 300, 400))


def test_fast_path_timestamp_only_segment() -> None:
    seg = parse_packet(build_packet(SRC, DST, 1, 2, 3, 4, ACK, 5, ts_option(9, 10), b"z"))
    assert isinstance(seg, Segment)
    assert seg.options == (Option("nop"), Option("nop"), Option("TS", (9, 10)))
    assert (seg.ts_val, seg.ts_ecr, seg.payload) == (9, 10, b"z")


ROUND_TRIPS = [
    [Option("mss", (1460,)), Option("sackOK"), Option("TS", (1, 2)), Option("nop"), Option("wscale", (7,))],
    [Option("nop"), Option("nop"), Option("TS", (2**32 - 1, 0))],
    [Option("nop"), Option("nop"), Option("sack", (1, 2, 3, 4))],
    [Option("mss", (536,))],
    [],
]


@pytest.mark.parametrize("options", ROUND_TRIPS)
def test_encode_options_round_trip(options: list[Option]) -> None:
    raw = encode_options(options)
    assert len(raw) % 4 == 0
    seg = Segment(SRC, DST, 1, 2, 0, 0, ACK, 0)
    assert parse_options(raw, seg) is None
    assert list(seg.options) == options
    # And through a whole packet.
    parsed = parse_packet(build_packet(SRC, DST, 1, 2, 0, 0, ACK, 0, raw))
    assert isinstance(parsed, Segment)
    assert list(parsed.options) == options


def test_encode_options_pads_with_eol() -> None:
    raw = encode_options([Option("wscale", (7,))])
    assert raw == bytes.fromhex("030307 00")
    seg = Segment(SRC, DST, 1, 2, 0, 0, ACK, 0)
    assert parse_options(raw, seg) is None
    assert seg.options == (Option("wscale", (7,)), Option("eol"))


def test_encode_options_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="cannot encode option 'bogus'"):
        encode_options([Option("bogus")])


def test_unknown_option_kind_is_kept_and_skipped() -> None:
    seg = parse_packet(build_packet(SRC, DST, 1, 2, 3, 4, ACK, 5, bytes.fromhex("1e04abcd 020405b4")))
    assert isinstance(seg, Segment)
    assert seg.options == (Option("unknown", (30, 4)), Option("mss", (1460,)))
    assert seg.mss == 1460


def test_eol_stops_option_parsing() -> None:
    # After EOL come bytes that would be a malformed TS option; they must be ignored.
    seg = parse_packet(build_packet(SRC, DST, 1, 2, 3, 4, ACK, 5, bytes.fromhex("01 00 0803 020405b4")))
    assert isinstance(seg, Segment)
    assert seg.options == (Option("nop"), Option("eol"))
    assert seg.mss is None
    assert seg.ts_val is None


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("0800", "option kind 8 at offset 0 has bad length 0"),
        ("0201", "option kind 2 at offset 0 has bad length 1"),
        ("020805b4", "option kind 2 at offset 0 has bad length 8"),  # overruns the option space
        ("0101 1e07 0000", "option kind 30 at offset 2 has bad length 7"),
        ("020305", "MSS option length 3, expected 4"),
        ("03040700", "window scale option length 4, expected 3"),
        ("0809 00000001 000000", "timestamp option length 9, expected 10"),
        ("050b 00000001 00000002 00", "SACK option length 11, expected 2 + 8*n"),
        ("0502", "SACK option length 2, expected 2 + 8*n"),
        ("0403", "SACK-permitted option length 3, expected 2"),
        ("010101 02", "option kind 2 at offset 3 has no length byte"),
    ],
)
def test_bad_options(raw: str, detail: str) -> None:
    pkt = build_packet(SRC, DST, 1, 2, 3, 4, ACK, 5, bytes.fromhex(raw))  # padded with 0s to 32 bits
    result = parse_packet(pkt)
    assert result == Malformed("bad-tcp-options", detail)


# --- malformed packets -------------------------------------------------------------------------------------


def _mutated_header(pkt: bytes, offset: int, value: bytes, *, fix_ip: bool = True) -> bytes:
    out = bytearray(pkt)
    out[offset : offset + len(value)] = value
    if fix_ip:
        ihl = min((out[0] & 0x0F) * 4, len(out))
        out[:20] = with_ip_checksum(bytearray(out[:20])) if ihl == 20 else out[:20]
    return bytes(out)


def test_truncated_ip() -> None:
    assert reason_of(sample()[:19]) == "truncated"
    assert reason_of(b"") == "truncated"


def test_not_ipv4() -> None:
    pkt = _mutated_header(sample(), 0, b"\x65")
    assert parse_packet(pkt) == Malformed("not-ipv4", "IP version 6")


def test_bad_ihl() -> None:
    small = _mutated_header(sample(), 0, b"\x44")
    assert parse_packet(small) == Malformed("bad-ip-header-length", "IHL 16 bytes in a 44-byte packet")
    short = sample()
    big = bytearray(short[:20])
    big[0] = 0x4F  # 60 bytes of header in a 44-byte packet
    assert reason_of(bytes(big) + short[20:]) == "bad-ip-header-length"


def test_bad_total_length() -> None:
    too_long = _mutated_header(sample(), 2, (45).to_bytes(2, "big"))
    assert parse_packet(too_long) == Malformed("bad-ip-total-length", "total length 45, packet has 44 bytes")
    too_short = _mutated_header(sample(), 2, (19).to_bytes(2, "big"))
    assert reason_of(too_short) == "bad-ip-total-length"


def test_trailing_link_padding_is_ignored() -> None:
    seg = parse_packet(sample() + b"\x00" * 6)
    assert isinstance(seg, Segment)
    assert seg.payload == b"data"


def test_ip_options_are_skipped() -> None:
    plain = sample()
    head = bytearray(plain[:20]) + b"\x01\x01\x01\x00"  # IHL 6: four bytes of IP options (nop, nop, nop, eol)
    head[0] = 0x46
    head[2:4] = (len(plain) + 4).to_bytes(2, "big")
    head[10:12] = b"\x00\x00"
    head[10:12] = ref_checksum(bytes(head)).to_bytes(2, "big")
    seg = parse_packet(bytes(head) + plain[20:])
    assert isinstance(seg, Segment)
    assert (seg.sport, seg.dport, seg.payload) == (1234, 80, b"data")


def test_bad_ip_checksum() -> None:
    pkt = bytearray(sample())
    pkt[10] ^= 0xFF
    assert parse_packet(bytes(pkt)) == Malformed("bad-ip-checksum", "IPv4 header checksum does not verify")
    # The IP header checksum is checked even when TCP checksums are offloaded.
    assert reason_of(bytes(pkt), verify_checksum=False) == "bad-ip-checksum"


def test_not_tcp() -> None:
    pkt = _mutated_header(sample(), 9, b"\x11")
    assert parse_packet(pkt) == Malformed("not-tcp", "IP protocol 17")


@pytest.mark.parametrize("frag", [0x2000, 0x0001, 0x6001, 0x1FFF])
def test_fragment(frag: int) -> None:
    pkt = _mutated_header(sample(), 6, frag.to_bytes(2, "big"))
    assert parse_packet(pkt) == Malformed("fragment", "IP fragments are not reassembled")


def test_df_alone_is_not_a_fragment() -> None:
    pkt = _mutated_header(sample(), 6, b"\x00\x00")
    assert isinstance(parse_packet(pkt), Segment)


def test_truncated_tcp() -> None:
    pkt = sample()
    cut = bytearray(pkt[:39])
    cut[2:4] = (39).to_bytes(2, "big")
    cut[:20] = with_ip_checksum(bytearray(cut[:20]))
    assert parse_packet(bytes(cut)) == Malformed("truncated", "19 bytes is shorter than a TCP header")


def test_bad_data_offset() -> None:
    pkt = bytearray(sample())
    pkt[32] = 0x40  # 16 bytes: less than the fixed header
    assert parse_packet(refix(pkt)) == Malformed(
        "bad-tcp-header-length", "data offset 16 bytes in a 24-byte segment"
    )
    pkt[32] = 0x70  # 28 bytes in a 24-byte segment
    assert reason_of(refix(pkt)) == "bad-tcp-header-length"


def test_bad_tcp_checksum() -> None:
    pkt = bytearray(sample())
    pkt[37] ^= 0x10
    assert parse_packet(bytes(pkt)) == Malformed("bad-tcp-checksum", "TCP checksum does not verify")


def test_refix_helper_produces_valid_packets() -> None:
    # The helper the malformed tests rely on must itself produce packets the parser accepts.
    pkt = bytearray(sample())
    pkt[-1] = ord("D")
    seg = parse_packet(refix(pkt))
    assert isinstance(seg, Segment)
    assert seg.payload == b"datD"


# --- flags -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "text"),
    [
        (FIN | PSH | ACK, "FP."),
        (SYN | ACK, "S."),
        (RST | ACK, "R."),
        (SYN, "S"),
        (ACK, "."),
        (0, "none"),
        (FIN | SYN | RST | PSH | ACK | URG | ECE | CWR, "FSRP.UEW"),
        (SYN | ECE | CWR, "SEW"),
        (URG | ACK, ".U"),
    ],
)
def test_flags_text(flags: int, text: str) -> None:
    assert flags_text(flags) == text


# --- Segment and sequence numbers --------------------------------------------------------------------------


def _seg(seq: int, flags: int, payload: bytes = b"") -> Segment:
    return Segment(SRC, DST, 1, 2, seq, 0, flags, 0, payload)


@pytest.mark.parametrize(
    ("seq", "flags", "payload", "seg_len", "end_seq"),
    [
        (100, ACK, b"", 0, 100),
        (100, SYN, b"", 1, 101),
        (100, FIN | ACK, b"", 1, 101),
        (100, SYN | FIN, b"", 2, 102),
        (100, FIN | ACK, b"abc", 4, 104),
        (2**32 - 1, SYN, b"", 1, 0),
        (2**32 - 2, ACK, b"hello", 5, 3),
        (2**32 - 3, FIN | ACK, b"ab", 3, 0),
    ],
)
def test_segment_length_and_end(seq: int, flags: int, payload: bytes, seg_len: int, end_seq: int) -> None:
    seg = _seg(seq, flags, payload)
    assert seg.seg_len == seg_len
    assert seg.end_seq == end_seq


def test_unwrap_around_the_wrap_point() -> None:
    top = 2**32
    assert seqnum.unwrap(5, top - 10) == top + 5  # just past the wrap: ahead of the reference
    assert seqnum.unwrap(top - 10, top + 5) == top - 10  # and back: behind it
    assert seqnum.unwrap(100, 100) == 100
    assert seqnum.unwrap(100, top + 100) == top + 100
    assert seqnum.unwrap(0, top - 1) == top
    ref = 3 * top + 7
    assert seqnum.unwrap((ref + 2**31 - 1) % top, ref) == ref + 2**31 - 1  # furthest ahead
    assert seqnum.unwrap((ref + 2**31) % top, ref) == ref - 2**31  # exactly half: counted behind
    assert seqnum.wrap(top + 3) == 3
    assert seqnum.wrap(top - 1) == top - 1


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**40), st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_unwrap_inverts_wrap_within_half_the_space(ref: int, delta: int) -> None:
    assert seqnum.unwrap(seqnum.wrap(ref + delta), ref) == ref + delta


def test_struct_formats_are_network_order() -> None:
    # Guard against a native-order struct slipping in: the source port's high byte comes first.
    pkt = build_packet(SRC, DST, 0x0102, 0x0304, 0, 0, ACK, 0x0506)
    assert struct.unpack_from("!HH", pkt, 20) == (0x0102, 0x0304)
    assert pkt[34:36] == b"\x05\x06"


def test_build_packet_takes_at_most_40_bytes_of_options() -> None:
    pkt = build_packet(SRC, DST, 1, 2, 3, 4, ACK, 5, b"\x01" * 40)
    assert pkt[32] >> 4 == 15
    seg = parse_packet(pkt)
    assert isinstance(seg, Segment)
    assert seg.options == (Option("nop"),) * 40
    with pytest.raises(ValueError, match="44 bytes of TCP options; the data offset allows at most 40"):
        build_packet(SRC, DST, 1, 2, 3, 4, ACK, 5, b"\x01" * 41)
