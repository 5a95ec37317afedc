"""IPv4 + TCP on the wire: parse and build packets, checksums, options.

Parsing never raises on bad input: it returns a `Malformed` with a named reason, because a host must account
for every packet it is handed (the event stream says why each dropped one was dropped). Building uses
precompiled `struct.Struct`s and the big-integer checksum fold, which is several times faster in CPython than
summing 16-bit words.
"""

from __future__ import annotations

import socket as _socket
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

# TCP flag bits (RFC 9293 §3.1).
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

IPPROTO_TCP = 6
IP_HEADER_LEN = 20
TCP_HEADER_LEN = 20
MAX_OPTIONS_LEN = 40  # data offset is 4 bits of 32-bit words: 60 - 20
DEFAULT_TTL = 64

# Option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018).
OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2
OPT_WSCALE = 3
OPT_SACK_PERM = 4
OPT_SACK = 5
OPT_TS = 8

_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_IPTCP = struct.Struct("!BBHHHBBH4s4sHHIIBBHHH")  # both fixed headers, back to back
_PSEUDO = struct.Struct("!4s4sBBH")
_TS_OPT = struct.Struct("!BBBBII")  # nop, nop, kind 8, len 10, val, ecr
_TS_WORDS = struct.Struct("!III")  # the same 12 bytes read as (nop,nop,8,10 word, val, ecr)
_NOP_NOP_TS = 0x0101080A
_U32 = struct.Struct("!I")


class Option(NamedTuple):
    """One TCP option as it stood on the wire, in wire order.

    name is tcpdump's: "mss", "nop", "eol", "wscale", "sackOK", "sack", "TS", or "unknown".
    values: mss (1460,), wscale (7,), TS (val, ecr), sack (l1, r1, l2, r2, ...), unknown (kind, length).
    """

    name: str
    values: tuple[int, ...] = ()


@dataclass(slots=True)
class Segment:
    """A decoded TCP segment with its IPv4 addresses.

    `options` keeps the wire order (for display and packetdrill matching); the summary fields below it
    (mss, wscale, sack_permitted, ts_val/ts_ecr, sack_blocks) are what the protocol logic reads.
    """

    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes = b""
    options: tuple[Option, ...] = ()
    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    ts_val: int | None = None
    ts_ecr: int | None = None
    sack_blocks: tuple[tuple[int, int], ...] = ()
    ttl: int = DEFAULT_TTL
    ip_id: int = 0
    urgent: int = 0

    @property
    def seg_len(self) -> int:
        """SEG.LEN: payload plus one for SYN and one for FIN (RFC 9293 §3.4)."""
        return len(self.payload) + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)

    @property
    def end_seq(self) -> int:
        return (self.seq + self.seg_len) & 0xFFFFFFFF


_NOP_OPTION = Option("nop")  # shared: immutable, and built for every data segment otherwise


class Malformed(NamedTuple):
    """A packet that could not be accepted as a TCP segment, and why (a short, stable reason name)."""

    reason: str
    detail: str


# --- addresses -------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def ip_to_bytes(address: str) -> bytes:
    """Canonical dotted quad to 4 bytes; raises ValueError (not OSError) for anything else.

    inet_pton, not inet_aton: inet_aton also takes "10.0.0.010" (octal), "0x7f.0.0.1" and "1.2.3.4 junk",
    which would name an address whose ip_from_bytes() spelling differs, so a host or a connection keyed by
    that string would never match the packets addressed to it.
    """
    try:
        return _socket.inet_pton(_socket.AF_INET, address)
    except (OSError, TypeError):
        return _bad_address(address)


def _bad_address(address: str) -> bytes:
    raise ValueError(f"not an IPv4 address: {address!r}")


@lru_cache(maxsize=4096)
def ip_from_bytes(raw: bytes) -> str:
    return _socket.inet_ntoa(raw)


# --- checksum ----------------------------------------------------------------------------------------------


def ones_complement_sum(data: bytes | bytearray | memoryview) -> int:
    """The 16-bit one's complement sum of data (RFC 1071), via one big-integer modulo.

    2**16 ≡ 1 (mod 0xFFFF), so a number's value mod 0xFFFF equals the end-around-carry sum of its 16-bit
    words; the only difference is that a nonzero sum of 0xFFFF comes out as 0, which is fixed up here.
    """
    n = int.from_bytes(data, "big")
    if len(data) & 1:
        n <<= 8  # pad the odd byte with a zero (without copying or, for a bytearray, mutating data)
    s = n % 0xFFFF
    if s == 0 and n:
        s = 0xFFFF
    return s


def internet_checksum(data: bytes) -> int:
    return ~ones_complement_sum(data) & 0xFFFF


def tcp_checksum(src: bytes, dst: bytes, tcp: bytes) -> int:
    return internet_checksum(_PSEUDO.pack(src, dst, 0, IPPROTO_TCP, len(tcp)) + tcp)


# --- options -----------------------------------------------------------------------------------------------


def syn_options(mss: int, *, sack: bool, ts: tuple[int, int] | None, wscale: int | None) -> bytes:
    """Options of a SYN or SYN-ACK in Linux's layout (tcp_options_write()).

    With everything on: mss, sackOK, TS, nop, wscale (20 bytes). Without TS: mss, nop, nop, sackOK,
    nop, wscale. Without SACK: mss, nop, nop, TS, nop, wscale.
    """
    out = bytearray(struct.pack("!BBH", OPT_MSS, 4, mss))
    if ts is not None:
        if sack:
            out += bytes((OPT_SACK_PERM, 2, OPT_TS, 10))
        else:
            out += bytes((OPT_NOP, OPT_NOP, OPT_TS, 10))
        out += struct.pack("!II", ts[0], ts[1])
    elif sack:
        out += bytes((OPT_NOP, OPT_NOP, OPT_SACK_PERM, 2))
    if wscale is not None:
        out += bytes((OPT_NOP, OPT_WSCALE, 3, wscale))
    return bytes(out)


def ts_option(val: int, ecr: int) -> bytes:
    """nop, nop, TS val ecr: the 12 bytes Linux puts on every segment once timestamps are negotiated."""
    return _TS_OPT.pack(OPT_NOP, OPT_NOP, OPT_TS, 10, val & 0xFFFFFFFF, ecr & 0xFFFFFFFF)


def sack_option(blocks: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> bytes:
    """nop, nop, SACK with the given blocks (RFC 2018 §3), as Linux writes it after the timestamp."""
    out = bytearray((OPT_NOP, OPT_NOP, OPT_SACK, 2 + 8 * len(blocks)))
    for left, right in blocks:
        out += struct.pack("!II", left & 0xFFFFFFFF, right & 0xFFFFFFFF)
    return bytes(out)


def encode_options(options: list[Option] | tuple[Option, ...]) -> bytes:
    """Encode an explicit option list (used by scripted peers and tests), padded with EOL bytes to a
    multiple of 4 because the header length counts 32-bit words."""
    out = bytearray()
    for opt in options:
        name, v = opt.name, opt.values
        if name == "nop":
            out.append(OPT_NOP)
        elif name == "eol":
            out.append(OPT_EOL)
        elif name == "mss":
            out += struct.pack("!BBH", OPT_MSS, 4, v[0])
        elif name == "wscale":
            out += bytes((OPT_WSCALE, 3, v[0]))
        elif name == "sackOK":
            out += bytes((OPT_SACK_PERM, 2))
        elif name == "TS":
            out += struct.pack("!BBII", OPT_TS, 10, v[0] & 0xFFFFFFFF, v[1] & 0xFFFFFFFF)
        elif name == "sack":
            out += bytes((OPT_SACK, 2 + 4 * len(v)))
            for x in v:
                out += _U32.pack(x & 0xFFFFFFFF)
        else:
            raise ValueError(f"cannot encode option {name!r}")
    while len(out) % 4:
        out.append(OPT_EOL)
    return bytes(out)


def parse_options(raw: bytes, seg: Segment) -> str | None:
    """Decode raw option bytes into seg (wire-order list + summary fields). Returns an error text or None."""
    opts: list[Option] = []
    i, n = 0, len(raw)
    while i < n:
        kind = raw[i]
        if kind == OPT_EOL:
            opts.append(Option("eol"))
            break
        if kind == OPT_NOP:
            opts.append(Option("nop"))
            i += 1
            continue
        if i + 1 >= n:
            return f"option kind {kind} at offset {i} has no length byte"
        length = raw[i + 1]
        if length < 2 or i + length > n:
            return f"option kind {kind} at offset {i} has bad length {length}"
        body = raw[i + 2 : i + length]
        if kind == OPT_MSS:
            if length != 4:
                return f"MSS option length {length}, expected 4"
            seg.mss = int.from_bytes(body, "big")
            opts.append(Option("mss", (seg.mss,)))
        elif kind == OPT_WSCALE:
            if length != 3:
                return f"window scale option length {length}, expected 3"
            seg.wscale = body[0]
            opts.append(Option("wscale", (body[0],)))
        elif kind == OPT_SACK_PERM:
            if length != 2:
                return f"SACK-permitted option length {length}, expected 2"
            seg.sack_permitted = True
            opts.append(Option("sackOK"))
        elif kind == OPT_TS:
            if length != 10:
                return f"timestamp option length {length}, expected 10"
            seg.ts_val = int.from_bytes(body[:4], "big")
            seg.ts_ecr = int.from_bytes(body[4:], "big")
            opts.append(Option("TS", (seg.ts_val, seg.ts_ecr)))
        elif kind == OPT_SACK:
            if (length - 2) % 8 or length < 10:
                return f"SACK option length {length}, expected 2 + 8*n"
            vals = tuple(int.from_bytes(body[j : j + 4], "big") for j in range(0, len(body), 4))
            seg.sack_blocks = tuple((vals[j], vals[j + 1]) for j in range(0, len(vals), 2))
            opts.append(Option("sack", vals))
        else:
            opts.append(Option("unknown", (kind, length)))
        i += length
    seg.options = tuple(opts)
    return None


# --- packets -----------------------------------------------------------------------------------------------


def build_packet(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    options: bytes = b"",
    payload: bytes | bytearray | memoryview = b"",
    *,
    ip_id: int = 0,
    ttl: int = DEFAULT_TTL,
    checksum: bool = True,
) -> bytes:
    """An IPv4 packet (DF set, as Linux sends TCP) holding one TCP segment.

    With checksum=False both checksum fields are left 0 (checksum offload, as on loopback, where the
    driver is trusted for both).
    """
    if len(options) % 4:
        options = options + b"\x00" * (4 - len(options) % 4)
    if len(options) > MAX_OPTIONS_LEN:
        raise ValueError(f"{len(options)} bytes of TCP options; the data offset allows at most 40")
    return pack_packet(
        ip_to_bytes(src), ip_to_bytes(dst), sport, dport, seq, ack, flags, window, options, payload,
        ip_id, ttl, checksum,
    )  # fmt: skip


def pack_packet(
    sb: bytes,
    db: bytes,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    options: bytes,
    payload: bytes | bytearray | memoryview,
    ip_id: int,
    ttl: int,
    checksum: bool,
) -> bytes:
    """build_packet()'s core, for the per-segment send path: addresses already 4 bytes, options already
    padded to a multiple of 4 and at most 40 bytes, every argument positional."""
    doff_byte = (TCP_HEADER_LEN + len(options)) << 2
    tcp_len = TCP_HEADER_LEN + len(options) + len(payload)
    total = IP_HEADER_LEN + tcp_len
    seq &= 0xFFFFFFFF
    ack &= 0xFFFFFFFF
    ip_id &= 0xFFFF
    if not checksum:
        return b"".join(
            (
                _IPTCP.pack(0x45, 0, total, ip_id, 0x4000, ttl, IPPROTO_TCP, 0, sb, db,
                            sport, dport, seq, ack, doff_byte, flags, window, 0, 0),
                options,
                payload,
            )
        )  # fmt: skip
    # One concatenation for the sum; the header is then packed again with the checksum in place,
    # so the payload is copied twice in all (sum, packet) rather than four times.
    header = _TCP.pack(sport, dport, seq, ack, doff_byte, flags, window, 0, 0)
    pseudo = _PSEUDO.pack(sb, db, 0, IPPROTO_TCP, tcp_len)
    csum = ~ones_complement_sum(b"".join((pseudo, header, options, payload))) & 0xFFFF
    ip_zero = _IP.pack(0x45, 0, total, ip_id, 0x4000, ttl, IPPROTO_TCP, 0, sb, db)
    ip_sum = ~ones_complement_sum(ip_zero) & 0xFFFF
    return b"".join(
        (
            _IPTCP.pack(0x45, 0, total, ip_id, 0x4000, ttl, IPPROTO_TCP, ip_sum, sb, db,
                        sport, dport, seq, ack, doff_byte, flags, window, csum, 0),
            options,
            payload,
        )
    )  # fmt: skip


def build_segment(seg: Segment, *, checksum: bool = True) -> bytes:
    """Encode a Segment (its `options` list, not the summary fields) as an IPv4 packet."""
    return build_packet(
        seg.src,
        seg.dst,
        seg.sport,
        seg.dport,
        seg.seq,
        seg.ack,
        seg.flags,
        seg.window,
        encode_options(seg.options),
        seg.payload,
        ip_id=seg.ip_id,
        ttl=seg.ttl,
        checksum=checksum,
    )


def parse_packet(data: bytes, *, verify_checksum: bool = True) -> Segment | Malformed:
    """Decode an IPv4 packet carrying TCP. Never raises; a bad packet comes back as Malformed(reason).

    With verify_checksum=False a zero checksum (IPv4 or TCP) is accepted (checksum offload); a nonzero one
    is still checked, so corruption on an offloading link is still caught when the sender filled it in.
    """
    n = len(data)
    if n < IP_HEADER_LEN:
        return Malformed("truncated", f"{n} bytes is shorter than an IPv4 header")
    # One unpack for the whole fixed IPv4 header; offsets instead of slices below (this runs per segment).
    ver_ihl, _, total, ip_id, frag, ttl, proto, ip_csum, src_b, dst_b = _IP.unpack_from(data)
    if ver_ihl >> 4 != 4:
        return Malformed("not-ipv4", f"IP version {ver_ihl >> 4}")
    ihl = (ver_ihl & 0x0F) * 4
    if ihl < IP_HEADER_LEN or ihl > n:
        return Malformed("bad-ip-header-length", f"IHL {ihl} bytes in a {n}-byte packet")
    if total < ihl or total > n:
        return Malformed("bad-ip-total-length", f"total length {total}, packet has {n} bytes")
    # A header whose checksum verifies sums to 0xFFFF, i.e. a nonzero multiple of 0xFFFF (see above).
    if (verify_checksum or ip_csum) and int.from_bytes(data[:ihl], "big") % 0xFFFF:
        return Malformed("bad-ip-checksum", "IPv4 header checksum does not verify")
    if proto != IPPROTO_TCP:
        return Malformed("not-tcp", f"IP protocol {proto}")
    if frag & 0x3FFF:
        return Malformed("fragment", "IP fragments are not reassembled")
    tcp_len = total - ihl
    if tcp_len < TCP_HEADER_LEN:
        return Malformed("truncated", f"{tcp_len} bytes is shorter than a TCP header")
    sport, dport, seq, ack, off_byte, flags, window, csum, urg = _TCP.unpack_from(data, ihl)
    doff = (off_byte >> 4) * 4
    if doff < TCP_HEADER_LEN or doff > tcp_len:
        return Malformed("bad-tcp-header-length", f"data offset {doff} bytes in a {tcp_len}-byte segment")
    if (verify_checksum or csum) and ones_complement_sum(
        _PSEUDO.pack(src_b, dst_b, 0, IPPROTO_TCP, tcp_len) + data[ihl:total]
    ) != 0xFFFF:
        return Malformed("bad-tcp-checksum", "TCP checksum does not verify")
    ts_val = ts_ecr = None
    options: tuple[Option, ...] = ()
    if doff == 32:
        # Fast path: the nop,nop,TS alone, as on every data segment of a timestamp connection.
        word, val, ecr = _TS_WORDS.unpack_from(data, ihl + TCP_HEADER_LEN)
        if word == _NOP_NOP_TS:
            ts_val, ts_ecr, options = val, ecr, _ts_options(val, ecr)
    # Positional construction: noticeably cheaper than keywords on this per-segment path.
    seg = Segment(
        ip_from_bytes(src_b),
        ip_from_bytes(dst_b),
        sport,
        dport,
        seq,
        ack,
        flags,
        window,
        data[ihl + doff : total],
        options,
        None,
        None,
        False,
        ts_val,
        ts_ecr,
        (),
        ttl,
        ip_id,
        urg,
    )
    if doff > TCP_HEADER_LEN and not options:
        err = parse_options(data[ihl + TCP_HEADER_LEN : ihl + doff], seg)
        if err is not None:
            return Malformed("bad-tcp-options", err)
    return seg


@lru_cache(maxsize=64)
def _ts_options(val: int, ecr: int) -> tuple[Option, ...]:
    """The option list of a nop,nop,TS segment. Cached: the segments of one burst carry the same pair,
    and the tuple is immutable, so sharing it is safe."""
    return (_NOP_OPTION, _NOP_OPTION, Option("TS", (val, ecr)))


def flags_text(flags: int) -> str:
    """tcpdump's flag letters in its order (F S R P . U E W): "S.", "F.", "FP.", "R."; "none" if empty."""
    out = ""
    for bit, ch in (
        (FIN, "F"),
        (SYN, "S"),
        (RST, "R"),
        (PSH, "P"),
        (ACK, "."),
        (URG, "U"),
        (ECE, "E"),
        (CWR, "W"),
    ):
        if flags & bit:
            out += ch
    return out or "none"
