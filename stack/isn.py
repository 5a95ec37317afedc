"""Initial sequence numbers per RFC 6528: ISN = M + F(4-tuple, secret).

M is a clock ticking every 64 ns (Linux: `ns >> 6`), F a keyed hash of the connection's 4-tuple. The
secret comes from the host's seed, so the same seed and the same times give the same ISNs: demos and
tests are reproducible, and two connections on different 4-tuples still get unrelated ISNs.
"""

from __future__ import annotations

import hashlib


class IsnGenerator:
    def __init__(self, seed: int) -> None:
        self._key = hashlib.blake2b(str(seed).encode(), digest_size=16, person=b"tcpplay-isn").digest()

    def isn(self, laddr: str, lport: int, raddr: str, rport: int, now: int) -> int:
        # RFC 6528 §3: F() must not be computable from the outside; a keyed BLAKE2b stands in for SipHash.
        h = hashlib.blake2b(f"{laddr}:{lport}>{raddr}:{rport}".encode(), digest_size=4, key=self._key)
        offset = int.from_bytes(h.digest(), "big")
        return (offset + (now * 1000 >> 6)) & 0xFFFFFFFF

    def ts_offset(self, laddr: str, lport: int, raddr: str, rport: int) -> int:
        """Linux tcp_timestamps=1: a random per-connection offset on the TS clock (secure_tcp_ts_off)."""
        h = hashlib.blake2b(f"ts {laddr}:{lport}>{raddr}:{rport}".encode(), digest_size=4, key=self._key)
        return int.from_bytes(h.digest(), "big")

    def cookie_hash(self, data: bytes) -> int:
        """A keyed 32-bit hash for SYN cookies (RFC 4987 §3.6)."""
        return int.from_bytes(hashlib.blake2b(data, digest_size=4, key=self._key).digest(), "big")
