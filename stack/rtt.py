"""Retransmission timeout from RTT samples (RFC 6298), with Linux's floor of 200 ms.

Times are integer microseconds. Karn's rule is the caller's job: feed only samples from segments that were
not retransmitted (or from timestamps, which are unambiguous, RFC 7323 §4).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RttEstimator:
    rto_min: int = 200_000
    rto_max: int = 120_000_000
    rto: int = 1_000_000  # RFC 6298 §2.1: initial RTO of 1 s
    srtt: int = 0
    rttvar: int = 0
    has_sample: bool = False
    latest: int = 0

    def sample(self, rtt: int) -> None:
        rtt = max(rtt, 1)
        self.latest = rtt
        if not self.has_sample:
            # RFC 6298 §2.2: first measurement.
            self.srtt = rtt
            self.rttvar = rtt // 2
            self.has_sample = True
        else:
            # RFC 6298 §2.3: alpha = 1/8, beta = 1/4.
            self.rttvar = (3 * self.rttvar + abs(self.srtt - rtt)) // 4
            self.srtt = (7 * self.srtt + rtt) // 8
        # RFC 6298 §2.3 with K = 4; G (clock granularity) is 1 us here. Linux floors the variance term at
        # rto_min rather than the sum (tcp_set_rto: srtt + max(4*rttvar, rto_min)); RFC 6298 §2.4 floors
        # the sum at 1 s. We follow Linux.
        self.rto = min(self.rto_max, self.srtt + max(4 * self.rttvar, self.rto_min))
