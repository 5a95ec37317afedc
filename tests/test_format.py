"""tcpplay.format: tcpdump lines, relative numbers, expert tags, hex dumps, header fields, times."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from stack.wire import (
    ACK,
    CWR,
    ECE,
    FIN,
    PSH,
    RST,
    SYN,
    URG,
    Segment,
    build_packet,
    internet_checksum,
    parse_packet,
    sack_option,
    syn_options,
    ts_option,
)
from tcpplay.format import (
    ExpertAnalyzer,
    Field,
    RelativeSeq,
    describe_time,
    expert_severity,
    format_duration,
    header_fields,
    hexdump,
    hexdump_rows,
    tcpdump_flags,
    tcpdump_line,
)

ROOT = Path(__file__).resolve().parent.parent
C = ("198.18.0.1", 40000)
S = ("198.18.0.2", 8080)


def packet(
    src: tuple[str, int], seq: int, ack: int, flags: int, win: int, opts: bytes = b"", data: bytes = b""
) -> bytes:
    dst = S if src == C else C
    return build_packet(src[0], dst[0], src[1], dst[1], seq, ack, flags, win, opts, data)


def seg(
    src: tuple[str, int], seq: int, ack: int, flags: int, win: int, opts: bytes = b"", n: int = 0
) -> Segment:
    parsed = parse_packet(packet(src, seq, ack, flags, win, opts, b"x" * n))
    assert isinstance(parsed, Segment), parsed
    return parsed


def c(seq: int, ack: int, flags: int, win: int, n: int = 0, opts: bytes = b"") -> Segment:
    return seg(C, seq, ack, flags, win, opts, n)


def s(seq: int, ack: int, flags: int, win: int, n: int = 0, opts: bytes = b"") -> Segment:
    return seg(S, seq, ack, flags, win, opts, n)


CLIENT_SYN_OPTS = syn_options(1460, sack=True, ts=(100, 0), wscale=7)
SERVER_SYN_OPTS = syn_options(1460, sack=True, ts=(200, 100), wscale=7)

# --- tcpdump_line -------------------------------------------------------------------------------------------


def test_syn_with_all_options_relative_and_absolute() -> None:
    syn = c(1000, 0, SYN, 64240, opts=CLIENT_SYN_OPTS)
    assert tcpdump_line(syn, rel_seq_base=1000) == (
        "198.18.0.1.40000 > 198.18.0.2.8080: Flags [S], seq 0, win 64240, "
        "options [mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7], length 0"
    )
    assert tcpdump_line(syn) == (
        "198.18.0.1.40000 > 198.18.0.2.8080: Flags [S], seq 1000, win 64240, "
        "options [mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7], length 0"
    )


def test_syn_ack() -> None:
    synack = s(5000, 1001, SYN | ACK, 65160, opts=SERVER_SYN_OPTS)
    assert tcpdump_line(synack, rel_seq_base=5000, rel_ack_base=1000) == (
        "198.18.0.2.8080 > 198.18.0.1.40000: Flags [S.], seq 0, ack 1, win 65160, "
        "options [mss 1460,sackOK,TS val 200 ecr 100,nop,wscale 7], length 0"
    )


def test_data_segment_prints_seq_range() -> None:
    data = c(1001, 5001, PSH | ACK, 502, n=100, opts=ts_option(300, 200))
    assert tcpdump_line(data, rel_seq_base=1000, rel_ack_base=5000) == (
        "198.18.0.1.40000 > 198.18.0.2.8080: Flags [P.], seq 1:101, ack 1, win 502, "
        "options [nop,nop,TS val 300 ecr 200], length 100"
    )
    assert tcpdump_line(data, show_addresses=False) == (
        "Flags [P.], seq 1001:1101, ack 5001, win 502, options [nop,nop,TS val 300 ecr 200], length 100"
    )


def test_pure_ack_has_no_seq() -> None:
    ack = s(5001, 1101, ACK, 502)
    assert tcpdump_line(ack, rel_seq_base=5000, rel_ack_base=1000) == (
        "198.18.0.2.8080 > 198.18.0.1.40000: Flags [.], ack 101, win 502, length 0"
    )


def test_fin_and_rst_print_seq_without_range() -> None:
    fin = c(1101, 5001, FIN | ACK, 502)
    assert tcpdump_line(fin, rel_seq_base=1000, rel_ack_base=5000, show_addresses=False) == (
        "Flags [F.], seq 101, ack 1, win 502, length 0"
    )
    rst_ack = c(1101, 5001, RST | ACK, 0)
    assert tcpdump_line(rst_ack, rel_seq_base=1000, rel_ack_base=5000, show_addresses=False) == (
        "Flags [R.], seq 101, ack 1, win 0, length 0"
    )
    rst = c(1101, 0, RST, 0)
    assert tcpdump_line(rst, rel_seq_base=1000, show_addresses=False) == "Flags [R], seq 101, win 0, length 0"


def test_sack_blocks_relative_to_the_ack_base() -> None:
    opts = ts_option(5, 6) + sack_option([(1201, 1301), (1401, 1501)])
    ack = s(5001, 1101, ACK, 502, opts=opts)
    assert tcpdump_line(ack, rel_seq_base=5000, rel_ack_base=1000, show_addresses=False) == (
        "Flags [.], ack 101, win 502, options [nop,nop,TS val 5 ecr 6,nop,nop,sack 2 {201:301}{401:501}], "
        "length 0"
    )
    assert tcpdump_line(ack, show_addresses=False) == (
        "Flags [.], ack 1101, win 502, "
        "options [nop,nop,TS val 5 ecr 6,nop,nop,sack 2 {1201:1301}{1401:1501}], length 0"
    )
    one = s(5001, 1101, ACK, 502, opts=sack_option([(1201, 1301)]))
    assert tcpdump_line(one, rel_ack_base=1000, show_addresses=False) == (
        "Flags [.], ack 101, win 502, options [nop,nop,sack 1 {201:301}], length 0"
    )


def test_sequence_numbers_wrap_modulo_2_32() -> None:
    data = c(0xFFFFFFCE, 7, ACK, 10, n=100)  # 4294967246
    assert (
        tcpdump_line(data, show_addresses=False) == "Flags [.], seq 4294967246:50, ack 7, win 10, length 100"
    )
    assert tcpdump_line(data, rel_seq_base=0xFFFFFFCD, rel_ack_base=10, show_addresses=False) == (
        "Flags [.], seq 1:101, ack 4294967293, win 10, length 100"
    )


def test_flag_letters_in_tcpdump_order() -> None:
    assert [tcpdump_flags(f) for f in (SYN | ACK | ECE, SYN | ECE | CWR, FIN | SYN, RST | PSH | ACK, 0)] == [
        "S.E",
        "SEW",
        "FS",
        "RP.",
        "none",
    ]


def test_urgent_unknown_option_eol_and_no_flags() -> None:
    urgent = c(1, 1, URG | ACK | PSH, 10, n=3)
    urgent.urgent = 2
    assert (
        tcpdump_line(urgent, show_addresses=False) == "Flags [P.U], seq 1:4, ack 1, win 10, urg 2, length 3"
    )
    odd = c(1, 0, 0, 10, opts=bytes([253, 4, 0xAB, 0xCD, 1, 0]))
    assert tcpdump_line(odd, show_addresses=False) == (
        "Flags [none], win 10, options [unknown-253,nop,eol], length 0"
    )


# --- RelativeSeq --------------------------------------------------------------------------------------------


def test_relative_seq_handshake_both_directions() -> None:
    rel = RelativeSeq()
    lines = [
        rel.format(c(1000, 0, SYN, 64240)),
        rel.format(s(5000, 1001, SYN | ACK, 65160)),
        rel.format(c(1001, 5001, ACK, 502)),
        rel.format(c(1001, 5001, PSH | ACK, 502, n=100)),
        rel.format(s(5001, 1101, ACK, 509)),
    ]
    assert [line.split(": ", 1)[1] for line in lines] == [
        "Flags [S], seq 0, win 64240, length 0",
        "Flags [S.], seq 0, ack 1, win 65160, length 0",
        "Flags [.], ack 1, win 502, length 0",
        "Flags [P.], seq 1:101, ack 1, win 502, length 100",
        "Flags [.], ack 101, win 509, length 0",
    ]
    assert rel.bases(c(1101, 5001, ACK, 502)) == (1000, 5000)
    assert rel.bases(s(5001, 1101, ACK, 502)) == (5000, 1000)
    assert rel.format(c(1101, 5001, FIN | ACK, 502), absolute=True).endswith(
        "Flags [F.], seq 1101, ack 5001, win 502, length 0"
    )


def test_relative_seq_mid_stream_starts_at_one() -> None:
    rel = RelativeSeq()
    assert rel.bases(c(777, 999, ACK, 10, n=10)) == (776, 998)
    assert rel.format(c(777, 999, ACK, 10, n=10)).endswith("seq 1:11, ack 1, win 10, length 10")
    assert rel.format(s(999, 787, ACK, 10)).endswith("Flags [.], ack 11, win 10, length 0")


def test_relative_seq_reopened_connection_resets_both_bases() -> None:
    rel = RelativeSeq()
    rel.bases(c(1000, 0, SYN, 10))
    rel.bases(s(5000, 1001, SYN | ACK, 10))
    assert rel.bases(c(1001, 5001, ACK, 10)) == (1000, 5000)
    assert rel.bases(c(1000, 0, SYN, 10)) == (1000, 5000)  # a retransmitted SYN changes nothing
    assert rel.bases(c(90000, 0, SYN, 10)) == (90000, None)
    assert rel.format(s(70000, 90001, SYN | ACK, 10)).endswith("Flags [S.], seq 0, ack 1, win 10, length 0")
    assert rel.bases(c(90001, 70001, ACK, 10)) == (90000, 70000)


def test_relative_seq_learns_the_ack_base_from_a_syn_ack_without_syn() -> None:
    rel = RelativeSeq()
    assert rel.bases(s(5000, 1001, SYN | ACK, 10)) == (5000, 1000)
    assert rel.bases(c(1001, 5001, ACK, 10)) == (1000, 5000)


# --- ExpertAnalyzer -----------------------------------------------------------------------------------------


def _run(steps: list[tuple[str, Segment, tuple[str, ...]]]) -> None:
    analyzer = ExpertAnalyzer()
    got = [(label, analyzer.analyze(sg)) for label, sg, _ in steps]
    assert got == [(label, expected) for label, _, expected in steps]


WS7 = syn_options(1460, sack=False, ts=None, wscale=7)


def test_expert_tags_over_a_connection() -> None:
    x: tuple[str, ...] = ()
    _run(
        [
            ("syn", c(1000, 0, SYN, 64240, opts=WS7), x),
            ("syn-ack", s(5000, 1001, SYN | ACK, 65160, opts=WS7), x),
            ("ack", c(1001, 5001, ACK, 502), x),
            ("data 1001", c(1001, 5001, ACK, 502, n=100), x),
            ("ack 1101 after syn-ack: no window update", s(5001, 1101, ACK, 509), x),
            ("data 1101", c(1101, 5001, ACK, 502, n=100), x),
            ("data 1201", c(1201, 5001, ACK, 502, n=100), x),
            ("data 1301", c(1301, 5001, ACK, 502, n=100), x),
            ("dup ack 1", s(5001, 1101, ACK, 509), ("duplicate ACK #1",)),
            ("dup ack 2", s(5001, 1101, ACK, 509), ("duplicate ACK #2",)),
            ("resend at the dup-acked seq", c(1101, 5001, ACK, 502, n=100), ("fast retransmission",)),
            ("resend at another seq", c(1201, 5001, ACK, 502, n=100), ("retransmission",)),
            ("ack 1401", s(5001, 1401, ACK, 509), x),
            ("resend of acked data", c(1101, 5001, ACK, 502, n=100), ("spurious retransmission",)),
            ("same ack, nothing outstanding", s(5001, 1401, ACK, 509), x),
            ("same ack, new window", s(5001, 1401, ACK, 600), ("window update",)),
            ("data 1501 skips 1401", c(1501, 5001, ACK, 502, n=100), ("previous segment not captured",)),
            ("data 1401 fills the hole", c(1401, 5001, ACK, 502, n=100), ("out-of-order",)),
            ("data 1401 again", c(1401, 5001, ACK, 502, n=100), ("retransmission",)),
            ("ack 1701 beyond 1601", s(5001, 1701, ACK, 600), ("ACKed unseen segment",)),
            ("ack 1701 again", s(5001, 1701, ACK, 600), x),
            ("data 1701", c(1701, 5001, ACK, 502, n=100), x),
            ("zero window", s(5001, 1801, ACK, 0), ("zero window",)),
            ("probe byte", c(1801, 5001, ACK, 502, n=1), ("zero window probe",)),
            ("probe answered", s(5001, 1801, ACK, 0), ("zero window", "zero window probe ACK")),
            ("window opens", s(5001, 1801, ACK, 200), ("window update",)),
            ("byte at 1801, window open", c(1801, 5001, ACK, 502, n=1), x),
            ("ack 1802", s(5001, 1802, ACK, 200), x),
            # The receive window is now 200 << 7 = 25600 bytes from 1802: it ends at 27402.
            ("one byte short of the window", c(1802, 5001, ACK, 502, n=25599), x),
            ("last byte of the window", c(27401, 5001, ACK, 502, n=1), ("window full",)),
            ("ack 27402", s(5001, 27402, ACK, 200), x),
            ("keep-alive", c(27401, 5001, ACK, 502), ("keep-alive",)),
            ("keep-alive answered", s(5001, 27402, ACK, 200), ("keep-alive ACK",)),
            ("plain ack at next seq", c(27402, 5001, ACK, 502), x),
            ("repeated ack, nothing outstanding", s(5001, 27402, ACK, 200), x),
            ("fin", c(27402, 5001, FIN | ACK, 502), x),
            ("fin-ack", s(5001, 27403, FIN | ACK, 200), x),
            ("last ack", c(27403, 5002, ACK, 502), x),
            ("fin again", c(27402, 5001, FIN | ACK, 502), ("retransmission",)),
            ("new syn, new ISN", c(90000, 0, SYN, 64240, opts=WS7), ("reused ports",)),
            ("its syn-ack", s(70000, 90001, SYN | ACK, 65160, opts=WS7), x),
            ("syn again, same ISN", c(90000, 0, SYN, 64240, opts=WS7), ("retransmission",)),
        ]
    )


def test_duplicate_ack_count_restarts_when_the_ack_moves() -> None:
    x: tuple[str, ...] = ()
    _run(
        [
            ("data 1", c(1, 1, ACK, 100, n=10), x),
            ("data 11", c(11, 1, ACK, 100, n=10), x),
            ("data 21", c(21, 1, ACK, 100, n=10), x),
            ("ack 11", s(1, 11, ACK, 100), x),
            ("dup 11", s(1, 11, ACK, 100), ("duplicate ACK #1",)),
            ("ack 21", s(1, 21, ACK, 100), x),
            ("dup 21", s(1, 21, ACK, 100), ("duplicate ACK #1",)),
            ("dup 21 again", s(1, 21, ACK, 100), ("duplicate ACK #2",)),
            ("zero window repeat is not a dup ack", s(1, 21, ACK, 0), ("zero window",)),
        ]
    )


def test_an_accepted_probe_byte_counts_as_sent() -> None:
    x: tuple[str, ...] = ()
    _run(
        [
            ("data 1", c(1, 1, ACK, 100, n=10), x),
            ("zero window", s(1, 11, ACK, 0), ("zero window",)),
            ("probe", c(11, 1, ACK, 100, n=1), ("zero window probe",)),
            ("probe byte taken, window open", s(1, 12, ACK, 100), x),
            ("data after the probe byte", c(12, 1, ACK, 100, n=10), x),
        ]
    )


def test_more_data_from_one_below_the_next_seq_is_not_a_retransmission() -> None:
    # Wireshark's rule for the segment after a 1-byte probe it did not recognise as one.
    x: tuple[str, ...] = ()
    _run(
        [
            ("data 1", c(1, 1, ACK, 100, n=10), x),
            ("one byte", c(11, 1, ACK, 100, n=1), x),
            ("that byte again and more", c(11, 1, ACK, 100, n=50), x),
            ("two bytes from two below", c(59, 1, ACK, 100, n=2), ("retransmission",)),
        ]
    )


def test_rst_and_fin_are_neither_zero_window_nor_beyond_the_next_seq() -> None:
    x: tuple[str, ...] = ()
    _run(
        [
            ("data 1", c(1, 1, ACK, 100, n=10), x),
            ("fin with window 0", s(1, 11, FIN | ACK, 0), x),
            ("rst far ahead, window 0", c(5000, 2, RST | ACK, 0), x),
        ]
    )


def test_timestamps_tell_a_late_resend_from_a_reordered_segment() -> None:
    def data(seq: int, tsval: int) -> Segment:
        return c(seq, 1, ACK, 100, n=100, opts=ts_option(tsval, 1))

    x: tuple[str, ...] = ()
    _run(
        [
            ("1001", data(1001, 10), x),
            ("1201", data(1201, 11), ("previous segment not captured",)),
            ("1101 sent after 1201", data(1101, 12), ("retransmission",)),
            ("1401", data(1401, 13), ("previous segment not captured",)),
            ("1301 sent before 1401", data(1301, 13), ("out-of-order",)),
        ]
    )


def test_window_full_without_scaling_and_unknown_scaling() -> None:
    no_ws = syn_options(1460, sack=False, ts=None, wscale=None)
    x: tuple[str, ...] = ()
    _run(
        [
            ("syn without wscale", c(0, 0, SYN, 1000, opts=no_ws), x),
            ("syn-ack with wscale (ignored)", s(0, 1, SYN | ACK, 1000, opts=WS7), x),
            ("ack", c(1, 1, ACK, 1000), x),
            ("window 100, unscaled", s(1, 1, ACK, 100), x),
            ("100 bytes fill it", c(1, 1, ACK, 1000, n=100), ("window full",)),
        ]
    )
    # Mid-stream the scale factor is unknown, so a window is never judged full.
    _run([("ack", s(1, 1, ACK, 100), x), ("100 bytes", c(1, 1, ACK, 1000, n=100), x)])


def test_reused_ports_needs_a_different_isn_on_a_known_tuple() -> None:
    analyzer = ExpertAnalyzer()
    assert analyzer.analyze(c(1000, 0, SYN, 10)) == ()
    assert analyzer.analyze(s(0, 1001, RST | ACK, 0)) == ()
    assert analyzer.analyze(c(2000, 0, SYN, 10)) == ("reused ports",)
    assert analyzer.analyze(c(2001, 0, ACK, 10)) == ()


def test_expert_severity() -> None:
    assert expert_severity("duplicate ACK #3") == "note"
    assert expert_severity("window update") == "chat"
    assert expert_severity("previous segment not captured") == "warn"
    with pytest.raises(KeyError):
        expert_severity("no such tag")


# --- hexdump ------------------------------------------------------------------------------------------------

IP_HEADER = bytes.fromhex("4500003c1c4640004006b1e6c0a80068")


def test_hexdump_full_line() -> None:
    assert hexdump(IP_HEADER) == ["0000  45 00 00 3c 1c 46 40 00  40 06 b1 e6 c0 a8 00 68  E..<.F@.@......h"]
    assert hexdump(b"") == []


def test_hexdump_partial_line_keeps_the_ascii_column() -> None:
    data = bytes(range(0x41, 0x41 + 20))
    lines = hexdump(data)
    assert lines[0] == "0000  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e 4f 50  ABCDEFGHIJKLMNOP"
    assert lines[1] == "0010  51 52 53 54" + " " * 39 + "QRST"  # the hex columns end at column 56
    assert len(lines) == 2


def test_hexdump_highlight_brackets_replace_spaces() -> None:
    data = bytes(range(0x41, 0x41 + 20))
    assert hexdump(data, highlight=(6, 4))[0] == (
        "0000  41 42 43 44 45 46[47 48  49 4a]4b 4c 4d 4e 4f 50  ABCDEFGHIJKLMNOP"
    )
    assert hexdump(data, highlight=(14, 4)) == [
        "0000  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e[4f 50] ABCDEFGHIJKLMNOP",
        "0010 [51 52]53 54" + " " * 39 + "QRST",
    ]
    assert hexdump(data, highlight=(0, 0)) == hexdump(data)


def test_hexdump_rows() -> None:
    data = bytes(range(20))
    assert hexdump_rows(data) == [(0, bytes(range(16))), (16, bytes(range(16, 20)))]


# --- header_fields ------------------------------------------------------------------------------------------


def _spans(fields: list[Field]) -> list[tuple[str, str, str, int, int]]:
    return [(f.layer, f.name, f.value_text, f.offset, f.length) for f in fields]


def test_header_fields_of_a_syn_ack() -> None:
    pkt = packet(S, 5000, 1001, SYN | ACK, 65160, SERVER_SYN_OPTS)
    ip_sum = int.from_bytes(pkt[10:12], "big")
    tcp_sum = int.from_bytes(pkt[36:38], "big")
    assert _spans(header_fields(pkt)) == [
        ("IPv4", "version", "4", 0, 1),
        ("IPv4", "header length", "20 bytes (5)", 0, 1),
        ("IPv4", "DSCP/ECN", "0x00 (DSCP 0, ECN 0)", 1, 1),
        ("IPv4", "total length", "60", 2, 2),
        ("IPv4", "identification", "0x0000 (0)", 4, 2),
        ("IPv4", "flags", "0x2 (DF)", 6, 2),
        ("IPv4", "fragment offset", "0", 6, 2),
        ("IPv4", "TTL", "64", 8, 1),
        ("IPv4", "protocol", "6 (TCP)", 9, 1),
        ("IPv4", "header checksum", f"0x{ip_sum:04x} (verified)", 10, 2),
        ("IPv4", "source address", "198.18.0.2", 12, 4),
        ("IPv4", "destination address", "198.18.0.1", 16, 4),
        ("TCP", "source port", "8080", 20, 2),
        ("TCP", "destination port", "40000", 22, 2),
        ("TCP", "sequence number", "5000", 24, 4),
        ("TCP", "acknowledgment number", "1001", 28, 4),
        ("TCP", "data offset", "40 bytes (10)", 32, 1),
        ("TCP", "flags", "0x012 (SYN, ACK)", 33, 1),
        ("TCP", "window", "65160", 34, 2),
        ("TCP", "checksum", f"0x{tcp_sum:04x} (verified)", 36, 2),
        ("TCP", "urgent pointer", "0", 38, 2),
        ("TCP option", "MSS", "1460", 40, 4),
        ("TCP option", "SACK permitted", "", 44, 2),
        ("TCP option", "timestamps", "val 200 ecr 100", 46, 10),
        ("TCP option", "NOP", "no-operation", 56, 1),
        ("TCP option", "window scale", "7 (multiply by 128)", 57, 3),
    ]
    assert pkt[33] == 0x12


def test_header_fields_payload_sack_unknown_option_and_padding() -> None:
    opts = bytes([253, 4, 0xAB, 0xCD, 1, 0, 0, 0]) + sack_option([(10, 20)])
    pkt = packet(C, 1, 2, PSH | ACK, 3, opts, b"hello")
    options_and_payload = [f for f in header_fields(pkt) if f.layer in ("TCP option", "payload")]
    assert _spans(options_and_payload) == [
        ("TCP option", "option kind 253", "length 4, data 0xabcd", 40, 4),
        ("TCP option", "NOP", "no-operation", 44, 1),
        ("TCP option", "EOL", "end of option list", 45, 1),
        ("TCP option", "padding", "14 bytes", 46, 14),
        ("payload", "payload", "5 bytes", 60, 5),
    ]
    pkt = packet(C, 1, 2, ACK, 3, sack_option([(10, 20), (30, 40)]))
    sack = [f for f in header_fields(pkt) if f.name == "SACK"]
    assert _spans(sack) == [("TCP option", "SACK", "{10:20}{30:40}", 42, 18)]


def test_header_fields_checksums_bad_and_offloaded() -> None:
    pkt = bytearray(packet(C, 1, 2, ACK, 3, b"", b"data"))
    good = int.from_bytes(pkt[36:38], "big")
    pkt[36:38] = (good ^ 0x0101).to_bytes(2, "big")
    checksum = next(f for f in header_fields(bytes(pkt)) if f.name == "checksum")
    assert checksum.value_text == f"0x{good ^ 0x0101:04x} (bad, expected 0x{good:04x})"
    pkt[36:38] = b"\x00\x00"
    checksum = next(f for f in header_fields(bytes(pkt)) if f.name == "checksum")
    assert checksum.value_text == "0x0000 (not filled in: checksum offload)"
    good_ip = int.from_bytes(pkt[10:12], "big")
    pkt[10:12] = (good_ip ^ 1).to_bytes(2, "big")
    ip_sum = next(f for f in header_fields(bytes(pkt)) if f.name == "header checksum")
    assert ip_sum.value_text == f"0x{good_ip ^ 1:04x} (bad, expected 0x{good_ip:04x})"


def test_header_fields_with_ip_options_shift_the_tcp_header() -> None:
    plain = packet(S, 5000, 1001, SYN | ACK, 65160)
    ip = bytearray(plain[:20] + b"\x01\x01\x01\x00")
    ip[0] = 0x46
    ip[2:4] = (len(plain) + 4).to_bytes(2, "big")
    ip[10:12] = b"\x00\x00"
    ip[10:12] = internet_checksum(bytes(ip)).to_bytes(2, "big")
    fields = {f.name: f for f in header_fields(bytes(ip) + plain[20:])}
    assert (fields["options"].offset, fields["options"].length, fields["options"].value_text) == (
        20,
        4,
        "01010100",
    )
    assert (fields["flags"].offset, fields["flags"].value_text) == (37, "0x012 (SYN, ACK)")
    assert fields["checksum"].value_text.endswith("(verified)")
    assert fields["header checksum"].value_text.endswith("(verified)")


def test_header_fields_trailing_bytes() -> None:
    pkt = packet(C, 1, 2, ACK, 3) + b"\x00" * 6
    fields = header_fields(pkt)
    assert _spans(fields[-1:]) == [("IPv4", "trailing bytes", "6 bytes beyond the total length", 40, 6)]
    assert next(f for f in fields if f.name == "checksum").value_text.endswith("(verified)")


def test_header_fields_of_malformed_packets() -> None:
    assert header_fields(b"") == [Field("IPv4", "error", "empty packet", 0, 0)]
    assert header_fields(b"\x60" + bytes(39)) == [
        Field("IPv4", "version", "6", 0, 1),
        Field("IPv4", "error", "not IPv4 (version 6)", 0, 1),
    ]
    truncated = packet(S, 5000, 1001, SYN | ACK, 65160, SERVER_SYN_OPTS)[:30]
    assert _spans(header_fields(truncated)[12:]) == [
        ("IPv4", "error", "total length 60, packet has 30 bytes", 2, 2),
        ("TCP", "source port", "8080", 20, 2),
        ("TCP", "destination port", "40000", 22, 2),
        ("TCP", "sequence number", "5000", 24, 4),
        ("TCP", "error", "truncated: 10 bytes, a TCP header needs 20", 20, 10),
    ]
    short_ip = header_fields(truncated[:15])
    assert [f.name for f in short_ip] == [
        "version",
        "header length",
        "DSCP/ECN",
        "total length",
        "identification",
        "flags",
        "fragment offset",
        "TTL",
        "protocol",
        "header checksum",
        "error",
    ]
    assert short_ip[-1] == Field("IPv4", "error", "truncated: 15 bytes, an IPv4 header needs 20", 0, 15)

    udp = bytearray(packet(C, 1, 2, ACK, 3))
    udp[9] = 17
    assert _spans(header_fields(bytes(udp))[-1:]) == [("IPv4", "error", "not TCP (protocol 17)", 9, 1)]

    bad_doff = bytearray(packet(C, 1, 2, ACK, 3))
    bad_doff[32] = 0x40
    assert _spans(header_fields(bytes(bad_doff))[-1:]) == [
        ("TCP", "error", "data offset 16 bytes in a 20-byte segment", 32, 1)
    ]


def test_header_fields_bad_option_lengths() -> None:
    mss_len_3 = packet(C, 1, 2, ACK, 3, b"\x02\x03\x05\x01", b"hi")
    assert _spans(header_fields(mss_len_3)[-2:]) == [
        ("TCP option", "error", "option kind 2 has bad length 3", 40, 3),
        ("payload", "payload", "2 bytes", 44, 2),
    ]
    overrun = packet(C, 1, 2, ACK, 3, b"\x01\x08\x0a\x00")
    assert _spans(header_fields(overrun)[-2:]) == [
        ("TCP option", "NOP", "no-operation", 40, 1),
        ("TCP option", "error", "option kind 8 has bad length 10", 41, 3),
    ]


def test_header_fields_never_raise_and_stay_inside_the_packet() -> None:
    rng = random.Random(7)
    base = packet(C, 1, 2, PSH | ACK, 3, CLIENT_SYN_OPTS, b"payload")
    for _ in range(500):
        pkt = bytearray(base[: rng.randrange(len(base) + 1)])
        for _ in range(rng.randrange(4)):
            if pkt:
                pkt[rng.randrange(len(pkt))] = rng.randrange(256)
        for f in header_fields(bytes(pkt)):
            assert f.offset >= 0 and f.offset + f.length <= len(pkt), (bytes(pkt).hex(), f)


# --- times --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("us", "text"),
    [
        (12_000_100, "12.000100"),
        (0, "0.000000"),
        (999, "0.000999"),
        (3_000_000, "3.000000"),
        (-100, "-0.000100"),
    ],
)
def test_describe_time(us: int, text: str) -> None:
    assert describe_time(us) == text


@pytest.mark.parametrize(
    ("us", "text"),
    [
        (0, "0 µs"),
        (750, "750 µs"),
        (1_000, "1 ms"),
        (1_500, "1.5 ms"),
        (9_960, "10 ms"),
        (40_000, "40 ms"),
        (999_600, "1 s"),
        (1_500_000, "1.5 s"),
        (2_000_000, "2 s"),
        (59_900_000, "59.9 s"),
        (59_960_000, "1 min 0 s"),
        (125_000_000, "2 min 5 s"),
        (3_599_600_000, "1 h 0 min"),
        (7_200_000_000, "2 h 0 min"),
        (-40_000, "-40 ms"),
    ],
)
def test_format_duration(us: int, text: str) -> None:
    assert format_duration(us) == text


# --- no UI import -------------------------------------------------------------------------------------------


def test_importing_format_does_not_import_textual() -> None:
    code = "import sys, tcpplay.format; print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
