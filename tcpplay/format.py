"""How segments look to a person: tcpdump lines, Wireshark-style expert tags, hex dumps, header fields, times.

Everything here is plain text and plain data, with no UI import, so the headless demo printer, the Textual
packet log, the detail pane and the packetdrill runner's failure messages all show a segment the same way,
and the way a reader already knows from tcpdump and Wireshark.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Literal

from stack.wire import (
    ACK,
    CWR,
    ECE,
    FIN,
    IP_HEADER_LEN,
    IPPROTO_TCP,
    OPT_EOL,
    OPT_MSS,
    OPT_NOP,
    OPT_SACK,
    OPT_SACK_PERM,
    OPT_TS,
    OPT_WSCALE,
    PSH,
    RST,
    SYN,
    TCP_HEADER_LEN,
    URG,
    Option,
    Segment,
    flags_text,
    internet_checksum,
    ip_from_bytes,
    tcp_checksum,
)

__all__ = [
    "ACKED_UNSEEN",
    "DUPLICATE_ACK",
    "EXPERT_SEVERITY",
    "FAST_RETRANSMISSION",
    "KEEP_ALIVE",
    "KEEP_ALIVE_ACK",
    "OUT_OF_ORDER",
    "PREVIOUS_SEGMENT_NOT_CAPTURED",
    "RETRANSMISSION",
    "REUSED_PORTS",
    "SPURIOUS_RETRANSMISSION",
    "WINDOW_FULL",
    "WINDOW_UPDATE",
    "ZERO_WINDOW",
    "ZERO_WINDOW_PROBE",
    "ZERO_WINDOW_PROBE_ACK",
    "ExpertAnalyzer",
    "Field",
    "Layer",
    "RelativeSeq",
    "describe_time",
    "expert_severity",
    "format_duration",
    "header_fields",
    "hexdump",
    "hexdump_rows",
    "option_text",
    "tcpdump_flags",
    "tcpdump_line",
]

_MASK = 0xFFFFFFFF
_HALF = 0x80000000


def _sdiff(a: int, b: int) -> int:
    """a - b as a signed 32-bit serial-number difference (RFC 1982), so comparisons survive wraparound."""
    return ((a - b + _HALF) & _MASK) - _HALF


# --- tcpdump one-line form ----------------------------------------------------------------------------------


def _rel(value: int, base: int | None) -> int:
    return value if base is None else (value - base) & _MASK


def option_text(opt: Option, *, sack_base: int | None = None) -> str:
    """One option as tcpdump prints it inside `options [...]`.

    SACK edges are made relative to sack_base (the ack base: they name bytes of the peer's sequence space,
    which is what tcpdump subtracts). An option kind tcpdump would not decode either is printed with
    tcpdump's name for it, `unknown-<kind>`; tcpdump follows that with the option's data in hex, which a
    Segment does not keep, so that part is left out.
    """
    name, values = opt.name, opt.values
    if name in ("mss", "wscale"):
        return f"{name} {values[0]}"
    if name == "TS":
        return f"TS val {values[0]} ecr {values[1]}"
    if name == "sack":
        edges = [_rel(v, sack_base) for v in values]
        blocks = "".join(f"{{{edges[i]}:{edges[i + 1]}}}" for i in range(0, len(edges) - 1, 2))
        return f"sack {len(values) // 2} {blocks}"
    if name == "unknown":
        return f"unknown-{values[0]}" if values else "unknown"
    return name  # nop, eol, sackOK


# The letters inside tcpdump's `Flags [...]`, in print-tcp.c's order ("S.E" for an ECN SYN-ACK); "none"
# when no flag is set. The stack's own flags_text is exactly that.
tcpdump_flags = flags_text


def tcpdump_line(
    seg: Segment,
    *,
    rel_seq_base: int | None = None,
    rel_ack_base: int | None = None,
    show_addresses: bool = True,
) -> str:
    """The segment as `tcpdump -n` prints it, minus the timestamp and the leading "IP ".

    Follows print-tcp.c: `seq X` only when there is payload (`X:Y`, Y = X + length) or SYN/FIN/RST;
    `ack N` only with the ACK flag; `urg N` only with URG; `win` is the raw header field (unscaled);
    `options [...]` only when the header has options; `length` is the payload length. With a base given,
    seq/ack (and SACK edges, relative to the ack base) are printed modulo 2**32 relative to it.
    """
    length = len(seg.payload)
    out = f"{seg.src}.{seg.sport} > {seg.dst}.{seg.dport}: " if show_addresses else ""
    out += f"Flags [{tcpdump_flags(seg.flags)}]"
    if length or seg.flags & (SYN | FIN | RST):
        seq = _rel(seg.seq, rel_seq_base)
        out += f", seq {seq}:{(seq + length) & _MASK}" if length else f", seq {seq}"
    if seg.flags & ACK:
        out += f", ack {_rel(seg.ack, rel_ack_base)}"
    out += f", win {seg.window}"
    if seg.flags & URG:
        out += f", urg {seg.urgent}"
    if seg.options:
        out += ", options [" + ",".join(option_text(o, sack_base=rel_ack_base) for o in seg.options) + "]"
    return out + f", length {length}"


# --- relative sequence numbers ------------------------------------------------------------------------------

_FlowKey = tuple[str, int, str, int]


def _flow_keys(seg: Segment) -> tuple[_FlowKey, _FlowKey]:
    return (seg.src, seg.sport, seg.dst, seg.dport), (seg.dst, seg.dport, seg.src, seg.sport)


class RelativeSeq:
    """Per-direction sequence bases, so numbers read 0, 1, 101 instead of 3 210 998 001 (as in Wireshark).

    Feed every segment in capture order through `bases` (or `format`). Rules, from Wireshark's
    tcp_analyze_sequence_number():
    - a SYN sets its direction's base to its ISN, so the SYN shows `seq 0` and the first data byte is 1;
    - a direction first seen without a SYN (capture started mid-stream) gets base seq - 1, so its first
      segment shows `seq 1`, as if its SYN had been seen;
    - the other direction's base, if still unknown when an ACK arrives, is taken as ack - 1 (the ACK of a
      SYN is ISN + 1), so that ack shows as 1;
    - a SYN with a different ISN on the same 4-tuple (the connection was reopened) replaces that base; a
      SYN without ACK also forgets the other direction's base, which its SYN-ACK will bring anew.
    """

    def __init__(self) -> None:
        self._base: dict[_FlowKey, int] = {}

    def bases(self, seg: Segment) -> tuple[int, int | None]:
        """Record seg and return (seq base, ack base) for it; the ack base is None until it is known."""
        fwd, rev = _flow_keys(seg)
        if seg.flags & SYN:
            if self._base.get(fwd) != seg.seq:
                if fwd in self._base and not seg.flags & ACK:
                    self._base.pop(rev, None)
                self._base[fwd] = seg.seq
        elif fwd not in self._base:
            self._base[fwd] = (seg.seq - 1) & _MASK
        if rev not in self._base and seg.flags & ACK:
            self._base[rev] = (seg.ack - 1) & _MASK
        return self._base[fwd], self._base.get(rev)

    def format(self, seg: Segment, absolute: bool = False) -> str:
        """tcpdump_line with this tracker's bases (state is updated even when absolute is asked for)."""
        seq_base, ack_base = self.bases(seg)
        if absolute:
            return tcpdump_line(seg)
        return tcpdump_line(seg, rel_seq_base=seq_base, rel_ack_base=ack_base)


# --- expert analysis ----------------------------------------------------------------------------------------

RETRANSMISSION = "retransmission"
FAST_RETRANSMISSION = "fast retransmission"
SPURIOUS_RETRANSMISSION = "spurious retransmission"
OUT_OF_ORDER = "out-of-order"
PREVIOUS_SEGMENT_NOT_CAPTURED = "previous segment not captured"
ZERO_WINDOW = "zero window"
ZERO_WINDOW_PROBE = "zero window probe"
ZERO_WINDOW_PROBE_ACK = "zero window probe ACK"
WINDOW_UPDATE = "window update"
WINDOW_FULL = "window full"
KEEP_ALIVE = "keep-alive"
KEEP_ALIVE_ACK = "keep-alive ACK"
ACKED_UNSEEN = "ACKed unseen segment"
REUSED_PORTS = "reused ports"
DUPLICATE_ACK = "duplicate ACK"  # emitted as "duplicate ACK #N"

EXPERT_SEVERITY: dict[str, str] = {
    RETRANSMISSION: "note",
    FAST_RETRANSMISSION: "note",
    SPURIOUS_RETRANSMISSION: "note",
    OUT_OF_ORDER: "warn",
    PREVIOUS_SEGMENT_NOT_CAPTURED: "warn",
    ZERO_WINDOW: "warn",
    ZERO_WINDOW_PROBE: "note",
    ZERO_WINDOW_PROBE_ACK: "note",
    WINDOW_UPDATE: "chat",
    WINDOW_FULL: "warn",
    KEEP_ALIVE: "note",
    KEEP_ALIVE_ACK: "note",
    ACKED_UNSEEN: "warn",
    REUSED_PORTS: "note",
    DUPLICATE_ACK: "note",
}
"""Wireshark's expert severity of each tag ("chat" < "note" < "warn"), for colouring."""


def expert_severity(tag: str) -> str:
    """Severity of one tag from ExpertAnalyzer.analyze ("duplicate ACK #3" counts as "duplicate ACK")."""
    if tag.startswith(DUPLICATE_ACK + " #"):
        tag = DUPLICATE_ACK
    return EXPERT_SEVERITY[tag]


@dataclass(slots=True)
class _Flow:
    """What the analyzer knows about one direction. Sequence positions are unwrapped (plain ints that keep
    growing past 2**32) so ranges compare simply; raw 32-bit header values are kept where noted."""

    isn: int | None = None  # raw ISN of this side's SYN
    nxt: int | None = None  # highest seq + SEG.LEN seen: Wireshark's "next expected sequence number"
    contiguous: int | None = None  # end of data seen without a hole (Wireshark's maxseqtobeacked)
    seen: list[list[int]] = field(default_factory=list)  # merged [start, end) ranges seen above `acked`
    acked: int | None = None  # highest cumulative ACK the peer sent for this direction's data
    last_ack: int | None = None  # raw ACK field of this side's latest segment; None if ACK was clear
    window: int | None = None  # raw window field of this side's latest segment
    window_bytes: int | None = None  # the same window in bytes, when the scale factor is known
    prev_syn: bool = False  # latest segment was a SYN (its window is never scaled)
    offered_wscale: int | None = None  # wscale option of this side's SYN
    shift: int | None = None  # window scale in effect for this side's windows; None while unknown
    dupacks: int = 0
    last_tags: tuple[str, ...] = ()
    probe_end: int | None = None  # end of an outstanding zero window probe byte
    max_ts: int | None = None  # newest TS val sent

    def unwrap(self, raw: int) -> int:
        if self.nxt is None:
            return raw
        return self.nxt + _sdiff(raw, self.nxt & _MASK)

    def add_seen(self, start: int, end: int) -> None:
        merged: list[list[int]] = []
        for s, e in self.seen:
            if e < start or s > end:
                merged.append([s, e])
            else:
                start, end = min(s, start), max(e, end)
        merged.append([start, end])
        merged.sort()
        self.seen = merged

    def covers(self, pos: int) -> bool:
        """Was the byte at pos seen before (or already acknowledged by the peer)?"""
        if self.acked is not None and pos < self.acked:
            return True
        return any(s <= pos < e for s, e in self.seen)

    def extend(self, pos: int) -> int:
        """The end of the seen run that pos touches, or pos itself."""
        for s, e in self.seen:
            if s <= pos <= e:
                return max(e, pos)
        return pos

    def acknowledge(self, pos: int) -> None:
        if self.acked is None or pos > self.acked:
            self.acked = pos
            self.seen = [[max(s, pos), e] for s, e in self.seen if e > pos]


class ExpertAnalyzer:
    """Wireshark's TCP "SEQ/ACK analysis" flags, for segments fed in capture order.

    `analyze(seg)` returns the tags for seg, in the order the rules below are checked (Wireshark's order in
    tcp_analyze_sequence_number()). "Next expected seq" of a direction is the highest seq + SEG.LEN seen in
    it; "length" is the payload length; "the peer" is the reverse direction. Rules:

    - "reused ports": a SYN without ACK whose ISN differs from the ISN this direction used before (or on a
      4-tuple seen mid-stream). The state of both directions starts afresh.
    - "zero window probe": 1 byte of payload at the next expected seq while the peer's last window was 0.
      It does not advance the next expected seq (until the peer ACKs the byte) and skips the checks up to
      "duplicate ACK" below.
    - "zero window": window field 0 and none of SYN, FIN, RST.
    - "previous segment not captured": seq beyond the next expected seq, not RST.
    - "keep-alive": length 0 or 1, seq one below the next expected seq, none of SYN, FIN, RST.
    - "window update": length 0, no SYN/FIN/RST, seq at the next expected seq, same ACK as this direction's
      previous segment, window non-zero and different from it. Not after a SYN: a SYN's window is unscaled.
    - "window full": payload that ends exactly at the peer's last ACK + its window in bytes, no SYN/FIN/RST.
      Needs the window scale, so only once the handshake was seen: SYN and SYN-ACK both with wscale scale
      later windows by 2**wscale; one without it means no scaling.
    - "keep-alive ACK": like a duplicate ACK (same seq, ACK and non-zero window as before) right after a
      keep-alive from the peer. Supersedes "duplicate ACK".
    - "zero window probe ACK": length 0, window 0 as before, same seq/ACK, right after a zero window probe
      from the peer. Supersedes "duplicate ACK".
    - "duplicate ACK #N": length 0, no SYN/FIN/RST, seq at the next expected seq, same ACK and the same
      non-zero window as this direction's previous segment, and (RFC 5681's condition, stricter than
      Wireshark) the peer has data outstanding beyond that ACK. N counts them since the ACK last changed.
    - "ACKed unseen segment": ACKs beyond the end of the data seen contiguously from the peer. The unseen
      data then counts as sent, so the same gap is reported once.
    - For segments with payload, SYN or FIN (a keep-alive excepted), at most one of:
      - "spurious retransmission": all of its payload lies below the peer's latest ACK;
      - "fast retransmission": seq below the next expected seq, and the peer has sent >= 2 duplicate ACKs
        acknowledging exactly this seq (Wireshark also wants the last one within 20 ms; there is no clock
        here);
      - "out-of-order": seq below the next expected seq, its first byte never seen before (it fills a
        hole), and, when both carry timestamps, its TS val not newer than the newest seen in this direction.
        Wireshark instead calls it out-of-order when it comes within 3 ms (or the handshake RTT) of the
        highest segment; "never seen and not sent later" is the same idea without a clock: a resend of a
        segment lost before the capture point carries a newer TS val;
      - "retransmission": seq below the next expected seq. As in Wireshark, a segment of more than one
        byte starting one below the next expected seq is not one (data resent after a 1-byte probe).
    Wireshark also files fast and spurious retransmissions under tcp.analysis.retransmission; here each
    segment gets only the most specific tag, as in Wireshark's Info column.
    """

    def __init__(self) -> None:
        self._flows: dict[_FlowKey, _Flow] = {}

    def analyze(self, seg: Segment) -> tuple[str, ...]:
        """Tags for seg (empty when nothing is notable), updating the per-direction state."""
        fkey, rkey = _flow_keys(seg)
        flags = seg.flags
        syn, fin, rst, has_ack = flags & SYN, flags & FIN, flags & RST, flags & ACK
        ctl = flags & (SYN | FIN | RST)
        tags: list[str] = []

        fwd = self._flows.get(fkey)
        if syn and not has_ack and fwd is not None and fwd.nxt is not None and fwd.isn != seg.seq:
            tags.append(REUSED_PORTS)
            fwd = None
            self._flows.pop(rkey, None)
        if fwd is None:
            fwd = self._flows[fkey] = _Flow()
        rev = self._flows.setdefault(rkey, _Flow())

        length = len(seg.payload)
        window = seg.window
        nxt = fwd.nxt
        seq = fwd.unwrap(seg.seq)

        zwp = length == 1 and nxt is not None and seq == nxt and rev.window == 0
        if zwp:
            tags.append(ZERO_WINDOW_PROBE)
        else:
            if window == 0 and not ctl:
                tags.append(ZERO_WINDOW)
            if nxt is not None and seq > nxt and not rst:
                tags.append(PREVIOUS_SEGMENT_NOT_CAPTURED)
            if length <= 1 and nxt is not None and seq == nxt - 1 and not ctl:
                tags.append(KEEP_ALIVE)
            repeat = (
                length == 0
                and not ctl
                and seq == nxt
                and has_ack
                and seg.ack == fwd.last_ack
                and fwd.window is not None
                and not fwd.prev_syn
            )
            if repeat and window != 0 and window != fwd.window:
                tags.append(WINDOW_UPDATE)
            if (
                length > 0
                and not ctl
                and rev.window_bytes is not None
                and rev.last_ack is not None
                and (seg.seq + length) & _MASK == (rev.last_ack + rev.window_bytes) & _MASK
            ):
                tags.append(WINDOW_FULL)
            if repeat and window != 0 and window == fwd.window and KEEP_ALIVE in rev.last_tags:
                tags.append(KEEP_ALIVE_ACK)
            elif repeat and window == 0 and fwd.window == 0 and ZERO_WINDOW_PROBE in rev.last_tags:
                tags.append(ZERO_WINDOW_PROBE_ACK)
            elif (
                repeat
                and window != 0
                and window == fwd.window
                and rev.nxt is not None
                and rev.unwrap(seg.ack) < rev.nxt
            ):
                fwd.dupacks += 1
                tags.append(f"{DUPLICATE_ACK} #{fwd.dupacks}")

        if has_ack and seg.ack != fwd.last_ack:
            fwd.dupacks = 0
        if has_ack and rev.nxt is not None:
            acked = rev.unwrap(seg.ack)
            if rev.probe_end is not None and acked >= rev.probe_end:
                # The peer took the probe byte: it now counts as sent, so the next segment is not "beyond".
                rev.nxt = max(rev.nxt, rev.probe_end)
                if rev.contiguous is not None and rev.contiguous >= rev.probe_end - 1:
                    rev.contiguous = max(rev.contiguous, rev.probe_end)
                rev.probe_end = None
            if rev.contiguous is not None and acked > rev.contiguous:
                tags.append(ACKED_UNSEEN)
                rev.contiguous = rev.extend(acked)
                rev.nxt = max(rev.nxt, acked)

        if (length or syn or fin) and KEEP_ALIVE not in tags:
            self._classify_resend(seg, fwd, rev, seq, tags)

        end = seq + seg.seg_len
        if length or syn or fin:
            fwd.add_seen(seq, end)
        if zwp:
            fwd.probe_end = end
        elif fwd.nxt is None or end > fwd.nxt:
            fwd.nxt = end
        if fwd.contiguous is None:
            fwd.contiguous = fwd.nxt
        elif seq <= fwd.contiguous and not zwp:
            fwd.contiguous = fwd.extend(max(fwd.contiguous, end))

        self._learn_window_scale(seg, fwd, rev)
        fwd.window = window
        fwd.prev_syn = bool(syn)
        if syn:
            fwd.window_bytes = window
            fwd.isn = seg.seq
        else:
            fwd.window_bytes = None if fwd.shift is None else window << fwd.shift
        fwd.last_ack = seg.ack if has_ack else None
        if seg.ts_val is not None and (fwd.max_ts is None or _sdiff(seg.ts_val, fwd.max_ts) > 0):
            fwd.max_ts = seg.ts_val
        if has_ack and rev.nxt is not None:
            rev.acknowledge(rev.unwrap(seg.ack))
        fwd.last_tags = tuple(tags)
        return fwd.last_tags

    @staticmethod
    def _classify_resend(seg: Segment, fwd: _Flow, rev: _Flow, seq: int, tags: list[str]) -> None:
        """Spurious / fast / out-of-order / plain retransmission, most specific first."""
        length = len(seg.payload)
        nxt = fwd.nxt
        behind = nxt is not None and seq < nxt
        if length > 1 and nxt is not None and seq == nxt - 1:
            behind = False
        if length > 0 and rev.last_ack is not None and seq + length <= fwd.unwrap(rev.last_ack):
            tags.append(SPURIOUS_RETRANSMISSION)
        elif not behind:
            return
        elif rev.dupacks >= 2 and rev.last_ack == seg.seq:
            tags.append(FAST_RETRANSMISSION)
        elif not fwd.covers(seq) and not (
            seg.ts_val is not None and fwd.max_ts is not None and _sdiff(seg.ts_val, fwd.max_ts) > 0
        ):
            tags.append(OUT_OF_ORDER)
        else:
            tags.append(RETRANSMISSION)

    @staticmethod
    def _learn_window_scale(seg: Segment, fwd: _Flow, rev: _Flow) -> None:
        """RFC 7323 §2.2: scaling is on only if both SYNs carry wscale; the SYNs' own windows are unscaled."""
        if not seg.flags & SYN:
            return
        if not seg.flags & ACK:
            fwd.offered_wscale = seg.wscale
            if seg.wscale is None:
                fwd.shift = rev.shift = 0
        elif seg.wscale is None or (rev.isn is not None and rev.offered_wscale is None):
            fwd.shift = rev.shift = 0
        else:
            fwd.shift = min(seg.wscale, 14)
            rev.shift = None if rev.offered_wscale is None else min(rev.offered_wscale, 14)


# --- hex dump -----------------------------------------------------------------------------------------------


def hexdump_rows(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, up to 16 bytes) per hex dump line, for a UI that colours highlighted bytes itself."""
    return [(off, bytes(data[off : off + 16])) for off in range(0, len(data), 16)]


def hexdump(data: bytes, *, highlight: tuple[int, int] | None = None) -> list[str]:
    """Wireshark-style hex dump lines: offset, 16 hex bytes (extra gap after 8), printable ASCII or '.'.

    highlight is (offset, length) in bytes, the same pair a Field carries. Its bytes are bracketed on each
    line they touch, `46[47 48  49 4a]4b`: the brackets take the place of the separating spaces, so every
    line keeps its width (72 columns when full) and the ASCII column stays aligned.
    """
    lo, hi = (highlight[0], highlight[0] + highlight[1]) if highlight else (0, 0)
    lines = []
    for off, chunk in hexdump_rows(data):
        cells = [f"{b:02x}" for b in chunk] + ["  "] * (16 - len(chunk))
        # gaps[i] is the white space before cell i; gaps[16] sits between the last cell and the ASCII column.
        gaps = ["  " if i in (0, 8, 16) else " " for i in range(17)]
        first, last = max(lo, off) - off, min(hi, off + len(chunk)) - off  # highlighted cells [first, last)
        if first < last:
            gaps[first] = gaps[first][:-1] + "["
            gaps[last] = "]" + gaps[last][1:]
        hexpart = "".join(gaps[i] + cells[i] for i in range(16)) + gaps[16]
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{off:04x}{hexpart}{text}")
    return lines


# --- header fields ------------------------------------------------------------------------------------------

Layer = Literal["IPv4", "TCP", "TCP option", "payload"]


@dataclass(frozen=True, slots=True)
class Field:
    """One decoded field and where its bytes sit in the packet, so a UI can highlight them in the hex dump.

    name "error" marks where decoding stopped or found something wrong (value_text says what).
    """

    layer: Layer
    name: str
    value_text: str
    offset: int
    length: int


TCP_FLAG_NAMES = (  # each flag bit and its name, in the header's bit order
    (FIN, "FIN"),
    (SYN, "SYN"),
    (RST, "RST"),
    (PSH, "PSH"),
    (ACK, "ACK"),
    (URG, "URG"),
    (ECE, "ECE"),
    (CWR, "CWR"),
)


def _tcp_flags_value(flags: int) -> str:
    names = [name for bit, name in TCP_FLAG_NAMES if flags & bit]
    return f"0x{flags:03x} ({', '.join(names) if names else 'none'})"


def _checksum_text(stored: int, expected: int, *, offload_ok: bool) -> str:
    if stored == expected:
        return f"0x{stored:04x} (verified)"
    if offload_ok and stored == 0:
        return "0x0000 (not filled in: checksum offload)"
    return f"0x{stored:04x} (bad, expected 0x{expected:04x})"


class _Fields:
    """Collects fields, adding one only when its bytes are all in the packet."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.limit = len(data)  # where the current layer's bytes end
        self.out: list[Field] = []

    def has(self, offset: int, length: int) -> bool:
        return offset + length <= self.limit

    def u(self, offset: int, length: int) -> int:
        return int.from_bytes(self.data[offset : offset + length], "big")

    def add(self, layer: Layer, name: str, offset: int, length: int, text: str) -> bool:
        if not self.has(offset, length):
            return False
        self.out.append(Field(layer, name, text, offset, length))
        return True

    def error(self, layer: Layer, text: str, offset: int, length: int = 0) -> list[Field]:
        length = max(0, min(length, len(self.data) - offset))
        self.out.append(Field(layer, "error", text, offset, length))
        return self.out


def header_fields(packet: bytes) -> list[Field]:
    """Every IPv4 and TCP header field, each TCP option, and the payload, with byte offsets in packet.

    Fields sharing bytes say so by their spans: version and header length both cover byte 0; IP flags and
    fragment offset both cover bytes 6-7. TCP "flags" is byte 13 (0x12 = SYN+ACK). Never raises: on a
    malformed packet it returns the fields it could decode and then a Field named "error".
    """
    f = _Fields(bytes(packet))
    n = len(f.data)
    if n == 0:
        return f.error("IPv4", "empty packet", 0)
    version, ihl = f.data[0] >> 4, (f.data[0] & 0x0F) * 4
    f.add("IPv4", "version", 0, 1, str(version))
    if version != 4:
        return f.error("IPv4", f"not IPv4 (version {version})", 0, 1)
    f.add("IPv4", "header length", 0, 1, f"{ihl} bytes ({ihl // 4})")
    if f.has(1, 1):
        tos = f.data[1]
        f.add("IPv4", "DSCP/ECN", 1, 1, f"0x{tos:02x} (DSCP {tos >> 2}, ECN {tos & 3})")
    total = f.u(2, 2)
    f.add("IPv4", "total length", 2, 2, str(total))
    f.add("IPv4", "identification", 4, 2, f"0x{f.u(4, 2):04x} ({f.u(4, 2)})")
    frag = f.u(6, 2)
    ip_flags = frag >> 13
    flag_names = [name for bit, name in ((4, "RB"), (2, "DF"), (1, "MF")) if ip_flags & bit]
    f.add("IPv4", "flags", 6, 2, f"0x{ip_flags:x} ({', '.join(flag_names) if flag_names else 'none'})")
    f.add("IPv4", "fragment offset", 6, 2, str((frag & 0x1FFF) * 8))
    if f.has(8, 1):
        f.add("IPv4", "TTL", 8, 1, str(f.data[8]))
    proto = f.data[9] if f.has(9, 1) else None
    if proto is not None:
        f.add("IPv4", "protocol", 9, 1, f"{proto} (TCP)" if proto == IPPROTO_TCP else str(proto))
    if f.has(10, 2) and n >= ihl >= IP_HEADER_LEN:
        stored = f.u(10, 2)
        expected = internet_checksum(f.data[:10] + b"\x00\x00" + f.data[12:ihl])
        f.add("IPv4", "header checksum", 10, 2, _checksum_text(stored, expected, offload_ok=False))
    else:
        f.add("IPv4", "header checksum", 10, 2, f"0x{f.u(10, 2):04x}")
    f.add("IPv4", "source address", 12, 4, ip_from_bytes(f.data[12:16]) if f.has(12, 4) else "")
    f.add("IPv4", "destination address", 16, 4, ip_from_bytes(f.data[16:20]) if f.has(16, 4) else "")
    if n < IP_HEADER_LEN:
        return f.error("IPv4", f"truncated: {n} bytes, an IPv4 header needs {IP_HEADER_LEN}", 0, n)
    if ihl < IP_HEADER_LEN or ihl > n:
        return f.error("IPv4", f"bad header length {ihl} in a {n}-byte packet", 0, 1)
    if ihl > IP_HEADER_LEN:
        f.add("IPv4", "options", IP_HEADER_LEN, ihl - IP_HEADER_LEN, f.data[IP_HEADER_LEN:ihl].hex())
    end = n
    if total < ihl or total > n:
        f.error("IPv4", f"total length {total}, packet has {n} bytes", 2, 2)
    else:
        end = total
    if proto != IPPROTO_TCP:
        return f.error("IPv4", f"not TCP (protocol {proto})", 9, 1)
    if frag & 0x3FFF:
        return f.error("IPv4", "IP fragment (not reassembled)", 6, 2)
    f.limit = end
    _tcp_fields(f, ihl, end)
    if n > end:
        f.limit = n
        f.add("IPv4", "trailing bytes", end, n - end, f"{n - end} bytes beyond the total length")
    return f.out


def _tcp_fields(f: _Fields, start: int, end: int) -> None:
    """The TCP header, options and payload of the segment in f.data[start:end]."""
    seg_len = end - start
    f.add("TCP", "source port", start, 2, str(f.u(start, 2)))
    f.add("TCP", "destination port", start + 2, 2, str(f.u(start + 2, 2)))
    f.add("TCP", "sequence number", start + 4, 4, str(f.u(start + 4, 4)))
    f.add("TCP", "acknowledgment number", start + 8, 4, str(f.u(start + 8, 4)))
    doff = (f.data[start + 12] >> 4) * 4 if f.has(start + 12, 1) else 0
    if f.has(start + 12, 1):
        reserved = f.data[start + 12] & 0x0F
        text = f"{doff} bytes ({doff // 4})" + (f", reserved bits 0x{reserved:x}" if reserved else "")
        f.add("TCP", "data offset", start + 12, 1, text)
    if f.has(start + 13, 1):
        f.add("TCP", "flags", start + 13, 1, _tcp_flags_value(f.data[start + 13]))
    f.add("TCP", "window", start + 14, 2, str(f.u(start + 14, 2)))
    if f.has(start + 16, 2):
        tcp = f.data[start:end]
        stored = f.u(start + 16, 2)
        expected = tcp_checksum(f.data[12:16], f.data[16:20], tcp[:16] + b"\x00\x00" + tcp[18:])
        text = (
            _checksum_text(stored, expected, offload_ok=True)
            if seg_len >= TCP_HEADER_LEN
            else f"0x{stored:04x}"
        )
        f.add("TCP", "checksum", start + 16, 2, text)
    f.add("TCP", "urgent pointer", start + 18, 2, str(f.u(start + 18, 2)))
    if seg_len < TCP_HEADER_LEN:
        f.error(
            "TCP", f"truncated: {max(seg_len, 0)} bytes, a TCP header needs {TCP_HEADER_LEN}", start, seg_len
        )
        return
    if doff < TCP_HEADER_LEN or doff > seg_len:
        f.error("TCP", f"data offset {doff} bytes in a {seg_len}-byte segment", start + 12, 1)
        return
    _option_fields(f, start + TCP_HEADER_LEN, start + doff)
    if end > start + doff:
        f.add("payload", "payload", start + doff, end - start - doff, f"{end - start - doff} bytes")


_OPTION_LENGTHS = {OPT_MSS: 4, OPT_WSCALE: 3, OPT_SACK_PERM: 2, OPT_TS: 10}


def _option_fields(f: _Fields, i: int, end: int) -> None:
    """One field per option in f.data[i:end]; EOL ends the list and the rest is padding."""
    while i < end:
        kind = f.data[i]
        if kind == OPT_EOL:
            f.add("TCP option", "EOL", i, 1, "end of option list")
            if end > i + 1:
                f.add("TCP option", "padding", i + 1, end - i - 1, f"{end - i - 1} bytes")
            return
        if kind == OPT_NOP:
            f.add("TCP option", "NOP", i, 1, "no-operation")
            i += 1
            continue
        length = f.data[i + 1] if i + 1 < end else 0
        if length < 2 or i + length > end:
            f.error("TCP option", f"option kind {kind} has bad length {length}", i, end - i)
            return
        body = f.data[i + 2 : i + length]
        expect = _OPTION_LENGTHS.get(kind)
        if (expect is not None and length != expect) or (kind == OPT_SACK and (length - 2) % 8):
            f.error("TCP option", f"option kind {kind} has bad length {length}", i, length)
            return
        if kind == OPT_MSS:
            f.add("TCP option", "MSS", i, length, str(int.from_bytes(body, "big")))
        elif kind == OPT_WSCALE:
            f.add("TCP option", "window scale", i, length, f"{body[0]} (multiply by {1 << min(body[0], 14)})")
        elif kind == OPT_SACK_PERM:
            f.add("TCP option", "SACK permitted", i, length, "")
        elif kind == OPT_TS:
            val, ecr = struct.unpack("!II", body)
            f.add("TCP option", "timestamps", i, length, f"val {val} ecr {ecr}")
        elif kind == OPT_SACK:
            edges = struct.unpack(f"!{len(body) // 4}I", body)
            blocks = "".join(f"{{{edges[j]}:{edges[j + 1]}}}" for j in range(0, len(edges), 2))
            f.add("TCP option", "SACK", i, length, blocks)
        else:
            f.add("TCP option", f"option kind {kind}", i, length, f"length {length}, data 0x{body.hex()}")
        i += length


# --- time ---------------------------------------------------------------------------------------------------


def describe_time(us: int) -> str:
    """A virtual time in integer microseconds as seconds with 6 decimals: 12000100 -> "12.000100"."""
    sign, us = ("-", -us) if us < 0 else ("", us)
    return f"{sign}{us // 1_000_000}.{us % 1_000_000:06d}"


def _tenths(t: int, unit: str) -> str:
    return f"{t // 10} {unit}" if t % 10 == 0 else f"{t // 10}.{t % 10} {unit}"


def format_duration(us: int) -> str:
    """A duration for a person (countdowns): "750 µs", "1.5 ms", "40 ms", "59.9 s", "2 min 5 s", "2 h 0 min".

    Rounded to nearest at the precision shown (a tenth below 10 ms and below a minute, else a whole ms,
    second or minute); a value that rounds up to the next unit is shown in that unit ("1 s", not "1000 ms").
    """
    if us < 0:
        return "-" + format_duration(-us)
    if us < 1_000:
        return f"{us} µs"
    if us < 10_000:
        t = (us + 50) // 100
        if t < 100:
            return _tenths(t, "ms")
        us = 10_000
    if us < 1_000_000:
        ms = (us + 500) // 1_000
        if ms < 1_000:
            return f"{ms} ms"
        us = 1_000_000
    if us < 60_000_000:
        t = (us + 50_000) // 100_000
        if t < 600:
            return _tenths(t, "s")
        us = 60_000_000
    if us < 3_600_000_000:
        s = (us + 500_000) // 1_000_000
        if s < 3_600:
            return f"{s // 60} min {s % 60} s"
        us = 3_600_000_000
    m = (us + 30_000_000) // 60_000_000
    return f"{m // 60} h {m % 60} min"
