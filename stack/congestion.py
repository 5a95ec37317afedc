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

    @abstractmethod
    def on_ack(self, acked: int, cwnd_limited: bool) -> None:
        """New data was acknowledged: grow the window."""

    @abstractmethod
    def ssthresh_on_loss(self, in_flight: int) -> int:
        """The slow-start threshold to use after a loss, given the segments in flight."""


class NewReno(Controller):
    name = "reno"

    def on_ack(self, acked: int, cwnd_limited: bool) -> None:
        # Linux grows cwnd only while the sender is limited by it (tcp_is_cwnd_limited()).
        if not cwnd_limited or acked <= 0:
            return
        if self.in_slow_start:
            # RFC 5681 §3.1 / Linux tcp_slow_start(): one segment per segment ACKed, up to ssthresh.
            grow = min(self.cwnd + acked, self.ssthresh)
            acked -= grow - self.cwnd
            self.cwnd = grow
            if acked <= 0:
                return
        # Congestion avoidance: one segment per window's worth of ACKed segments (tcp_cong_avoid_ai()).
        self.cwnd_cnt += acked
        if self.cwnd_cnt >= self.cwnd:
            delta = self.cwnd_cnt // self.cwnd
            self.cwnd_cnt -= delta * self.cwnd
            self.cwnd += delta

    def ssthresh_on_loss(self, in_flight: int) -> int:
        # RFC 5681 eq. (4): ssthresh = max(FlightSize / 2, 2 * SMSS), in segments; Linux tcp_reno_ssthresh.
        return max(self.cwnd >> 1, 2) if in_flight <= 0 else max(min(self.cwnd, in_flight) >> 1, 2)


CONTROLLERS: dict[str, type[Controller]] = {NewReno.name: NewReno, "newreno": NewReno}


def make_controller(name: str, init_cwnd: int) -> Controller:
    try:
        return CONTROLLERS[name](init_cwnd)
    except KeyError:
        raise ValueError(
            f"unknown congestion control {name!r}; available: {', '.join(CONTROLLERS)}"
        ) from None
