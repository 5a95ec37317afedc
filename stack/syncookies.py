"""SYN cookies (RFC 4987 §3.6), laid out as Linux's: the listener keeps no state for a cookie SYN-ACK.

ISN = H1(4-tuple) + client ISN + (minute counter << 24) + ((H2(4-tuple, counter) + MSS index) mod 2**24).
The final ACK (ack = ISN + 1) gives the counter back from the top byte and the MSS index from the low
24 bits; a cookie older than two minutes is refused. With timestamps, the low 6 bits of our TSval carry
window scale (4 bits) and SACK-permitted (1 bit), which the peer echoes in TSecr (Linux's
cookie_init_timestamp()): that is how a cookie connection keeps its options.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .isn import IsnGenerator

MSS_TABLE = (536, 1300, 1440, 1460)  # Linux msstab[]
COOKIE_BITS = 24
COOKIE_MASK = (1 << COOKIE_BITS) - 1
MAX_AGE_MINUTES = 2
TS_OPT_BITS = 6
TS_WSCALE_NONE = 0x0F
TS_SACK_BIT = 0x10


def minute_counter(now_us: int) -> int:
    return now_us // 60_000_000


def _hashes(gen: IsnGenerator, four: tuple[str, int, str, int], count: int) -> tuple[int, int]:
    key = f"{four[0]}:{four[1]}>{four[2]}:{four[3]}".encode()
    return gen.cookie_hash(b"h1 " + key), gen.cookie_hash(b"h2 " + key + count.to_bytes(4, "big"))


def mss_index(mss: int) -> int:
    idx = 0
    for i, value in enumerate(MSS_TABLE):
        if value <= mss:
            idx = i
    return idx


def make_cookie(
    gen: IsnGenerator, four: tuple[str, int, str, int], client_isn: int, mss: int, now_us: int
) -> tuple[int, int]:
    """Return (our ISN, the MSS the cookie can remember)."""
    count = minute_counter(now_us)
    idx = mss_index(mss)
    h1, h2 = _hashes(gen, four, count)
    isn = (h1 + client_isn + (count << COOKIE_BITS) + ((h2 + idx) & COOKIE_MASK)) & 0xFFFFFFFF
    return isn, MSS_TABLE[idx]


def check_cookie(
    gen: IsnGenerator, four: tuple[str, int, str, int], client_isn: int, cookie: int, now_us: int
) -> int | None:
    """The MSS a valid cookie encodes, or None for a forged or expired one."""
    count = minute_counter(now_us)
    h1, _ = _hashes(gen, four, 0)
    rest = (cookie - h1 - client_isn) & 0xFFFFFFFF
    issued = (count - (rest >> COOKIE_BITS)) & 0xFF
    if issued >= MAX_AGE_MINUTES:
        return None
    when = count - issued
    _, h2 = _hashes(gen, four, when)
    idx = ((rest & COOKIE_MASK) - h2) & COOKIE_MASK
    if idx >= len(MSS_TABLE):
        return None
    return MSS_TABLE[idx]


def encode_ts_options(ts_now: int, wscale: int | None, sack: bool) -> int:
    """A TSval whose low bits carry the SYN's options; never ahead of the TS clock."""
    opts = (wscale if wscale is not None else TS_WSCALE_NONE) | (TS_SACK_BIT if sack else 0)
    ts = ((ts_now >> TS_OPT_BITS) << TS_OPT_BITS) | opts
    if ((ts - ts_now) & 0xFFFFFFFF) < 0x80000000 and ts != ts_now:
        ts = (ts - (1 << TS_OPT_BITS)) & 0xFFFFFFFF
    return ts


def decode_ts_options(ecr: int) -> tuple[int | None, bool]:
    wscale = ecr & 0x0F
    return (None if wscale == TS_WSCALE_NONE else min(wscale, 14)), bool(ecr & TS_SACK_BIT)
