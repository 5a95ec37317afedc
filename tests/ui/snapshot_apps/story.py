"""The story the ladder and state-diagram tests watch: handshake, data, a drop and its retransmission, close.

Seeded lab on a virtual clock, so every run produces the same segments at the same microseconds. The lab
publishes no event for listen() (a listener is not a connection), so `listened` lets a viewer mark it.
"""

from __future__ import annotations

from collections.abc import Callable

from tcpplay.clock import VirtualClock
from tcpplay.lab import Lab, LabEvent


def drop_story(observer: Callable[[LabEvent], None], listened: Callable[[int], None] | None = None) -> Lab:
    """Run the story with observer subscribed from the start; returns the lab (client left in TIME_WAIT)."""
    lab = Lab(seed=1, clock=VirtualClock())
    lab.subscribe(observer)
    lab.listen("server")
    if listened is not None:
        listened(lab.now)
    lab.connect("client")
    lab.advance(1)
    lab.send("client", b"x" * 100)
    lab.advance(1)
    lab.drop_next("client")
    lab.send("client", b"y" * 50)
    lab.advance(1)
    lab.recv("server")
    lab.close("client")
    lab.advance(1)
    lab.recv("server")
    lab.close("server")
    lab.advance(1)
    return lab
