"""Congestion control (RFC 5681 slow start and congestion avoidance, RFC 6582 NewReno recovery).

cwnd and ssthresh count segments, as Linux's do. The connection tells the controller what happened
(new data acknowledged, loss detected by duplicate ACKs, retransmission timeout); the controller only
does the window arithmetic, so another algorithm can be plugged in by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

INFINITE_SSTHRESH = 0x7FFFFFFF  # Linux's TCP_INFINITE_SSTHRESH


class Controller(ABC):
    name: ClassVar[str] = "base"

    def __init__(self, init_cwnd: int) -> None:
        self.cwnd = init_cwnd
        self.ssthresh = INFINITE_SSTHRESH
        self.cwnd_cnt = 0  # Linux snd_cwnd_cnt: ACKed segments counted towards the next +1 in CA

    @property
    def in_slow_start(self) -> bool:
        return self.cwnd < self.ssthresh

    def slow_start(self, acked: int) -> int:
        """RFC 5681 §3.1 / Linux tcp_slow_start(): one segment per segment ACKed, up to ssthresh.
        Returns the ACKed segments left over for congestion avoidance."""
        grow = min(self.cwnd + acked, self.ssthresh)
        acked -= grow - self.cwnd
        self.cwnd = grow
        return acked

    @abstractmethod
    def on_ack(self, acked: int, cwnd_limited: bool, now: int = 0, srtt: int = 0) -> None:
        """New data was acknowledged (acked segments, at stack time now, with the smoothed RTT in us)."""

    @abstractmethod
    def ssthresh_on_loss(self, in_flight: int) -> int:
        """The slow-start threshold to use after a loss, given the segments in flight."""


class NewReno(Controller):
    name = "reno"

    def on_ack(self, acked: int, cwnd_limited: bool, now: int = 0, srtt: int = 0) -> None:
        # Linux grows cwnd only while the sender is limited by it (tcp_is_cwnd_limited()).
        if not cwnd_limited or acked <= 0:
            return
        if self.in_slow_start:
            acked = self.slow_start(acked)
            if acked <= 0:
                return
        # Congestion avoidance: one segment per window's worth of ACKed segments (tcp_cong_avoid_ai()).
        self.cwnd_cnt += acked
        if self.cwnd_cnt >= self.cwnd:
            delta = self.cwnd_cnt // self.cwnd
            self.cwnd_cnt -= delta * self.cwnd
            self.cwnd += delta

    def ssthresh_on_loss(self, in_flight: int) -> int:
        # Linux tcp_reno_ssthresh(): max(cwnd / 2, 2). RFC 5681 eq. (4) says FlightSize / 2; Linux's cwnd
        # only grows while it is used (tcp_is_cwnd_limited()), so the two agree when it matters, and
        # half of what is still in the pipe (SACKed and lost segments excluded) would cut far too deep.
        return max(self.cwnd >> 1, 2)


class Cubic(Controller):
    """CUBIC (RFC 9438): after a loss the window follows W(t) = C*(t - K)^3 + W_max, concave up to the
    old maximum and convex beyond it, never slower than Reno would be (the Reno-friendly region).
    Slow start is Reno's (no HyStart). Floats are fine here: the same inputs give the same numbers.
    """

    name = "cubic"
    C = 0.4
    BETA = 0.7

    def __init__(self, init_cwnd: int) -> None:
        super().__init__(init_cwnd)
        self.w_max = 0.0
        self.w_last_max = 0.0
        self.k = 0.0
        self.epoch_start: int | None = None
        self.w_est = 0.0
        self.ack_count = 0.0

    def ssthresh_on_loss(self, in_flight: int) -> int:
        cwnd = float(self.cwnd)
        # RFC 9438 §4.7 fast convergence: release bandwidth to new flows when the maximum shrinks.
        if cwnd < self.w_last_max:
            self.w_last_max = cwnd
            self.w_max = cwnd * (1.0 + self.BETA) / 2.0
        else:
            self.w_last_max = cwnd
            self.w_max = cwnd
        self.epoch_start = None
        return max(int(cwnd * self.BETA), 2)

    def on_ack(self, acked: int, cwnd_limited: bool, now: int = 0, srtt: int = 0) -> None:
        if not cwnd_limited or acked <= 0:
            return
        if self.in_slow_start:
            acked = self.slow_start(acked)
            if acked <= 0:
                return
        rtt = max(srtt, 1000) / 1_000_000  # seconds, at least 1 ms
        if self.epoch_start is None:
            # RFC 9438 §4.2: a new congestion-avoidance epoch.
            self.epoch_start = now
            if self.w_max < self.cwnd:
                self.w_max = float(self.cwnd)
            self.k = ((self.w_max - self.cwnd) / self.C) ** (1.0 / 3.0) if self.w_max > self.cwnd else 0.0
            self.w_est = float(self.cwnd)
            self.ack_count = 0.0
        t = (now - self.epoch_start) / 1_000_000
        target = self.C * (t + rtt - self.k) ** 3 + self.w_max
        # RFC 9438 §4.3 Reno-friendly estimate: alpha = 3 (1 - beta) / (1 + beta) segments per RTT.
        alpha = 3.0 * (1.0 - self.BETA) / (1.0 + self.BETA)
        self.w_est += alpha * acked / max(self.cwnd, 1)
        if target < self.w_est:
            target = self.w_est
        target = min(target, 1.5 * self.cwnd)  # RFC 9438 §4.4: at most +50 % per RTT
        if target > self.cwnd:
            self.ack_count += acked * (target - self.cwnd) / self.cwnd
            if self.ack_count >= 1.0:
                whole = int(self.ack_count)
                self.cwnd += whole
                self.ack_count -= whole


CONTROLLERS: dict[str, type[Controller]] = {
    NewReno.name: NewReno,
    "newreno": NewReno,
    Cubic.name: Cubic,
}


def make_controller(name: str, init_cwnd: int) -> Controller:
    try:
        return CONTROLLERS[name](init_cwnd)
    except KeyError:
        raise ValueError(
            f"unknown congestion control {name!r}; available: {', '.join(CONTROLLERS)}"
        ) from None
