"""tcpplay's userspace TCP/IP stack: sans-IO, faithful to RFC 9293 and to Linux where the RFCs leave room.

    from stack import Host
    a, b = Host("198.18.0.1", seed=1), Host("198.18.0.2", seed=2)
    srv = b.socket(); srv.bind(("0.0.0.0", 8080)); srv.listen(8)
    cli = a.socket(); cli.connect_ex(("198.18.0.2", 8080))     # EINPROGRESS, SYN queued
    for pkt in a.poll(0): b.receive(pkt, 0)                      # move packets yourself...

Time is integer microseconds everywhere (`stack.SEC`, `stack.MS`). Nothing here does IO or reads a clock.
"""

from .connection import MS, SEC, Connection, SocketOptions
from .events import (
    ConnId,
    CwndChanged,
    Event,
    RttSample,
    SegmentDropped,
    SegmentReceived,
    SegmentSent,
    SocketEvent,
    StateChanged,
    TimerArmed,
    TimerCancelled,
    TimerFired,
)
from .host import Host
from .settings import Settings
from .snapshot import ConnectionSnapshot
from .socket import Socket
from .state import LEGAL_TRANSITIONS, SYNCHRONIZED, State
from .wire import Malformed, Option, Segment, build_packet, parse_packet

__all__ = [
    "LEGAL_TRANSITIONS",
    "MS",
    "SEC",
    "SYNCHRONIZED",
    "ConnId",
    "Connection",
    "ConnectionSnapshot",
    "CwndChanged",
    "Event",
    "Host",
    "Malformed",
    "Option",
    "RttSample",
    "Segment",
    "SegmentDropped",
    "SegmentReceived",
    "SegmentSent",
    "Settings",
    "Socket",
    "SocketEvent",
    "SocketOptions",
    "State",
    "StateChanged",
    "TimerArmed",
    "TimerCancelled",
    "TimerFired",
    "build_packet",
    "parse_packet",
]
