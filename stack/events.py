"""The trace: frozen events a Host emits for observers (the lab, the UI, tests).

Every event carries `now`, the stack time in microseconds at which it happened, never the wall clock, so a
trace is reproducible. `conn` identifies the connection as (local_ip, local_port, remote_ip, remote_port),
or None for host-level events (a malformed packet, a listener-less port).
"""

from __future__ import annotations

from dataclasses import dataclass

from .state import State
from .wire import Segment

ConnId = tuple[str, int, str, int]


@dataclass(frozen=True, slots=True)
class Event:
    now: int


@dataclass(frozen=True, slots=True)
class SegmentSent(Event):
    conn: ConnId | None
    segment: Segment
    packet: bytes
    reason: (
        str  # "syn", "syn-ack", "data", "ack", "fin", "rst", "retransmit", "keepalive", "challenge-ack"...
    )


@dataclass(frozen=True, slots=True)
class SegmentReceived(Event):
    conn: ConnId | None
    segment: Segment


@dataclass(frozen=True, slots=True)
class SegmentDropped(Event):
    conn: ConnId | None
    segment: Segment | None  # None when the packet could not be decoded
    packet: bytes
    reason: str  # a stable name: "bad-tcp-checksum", "paws", "ack-of-unsent-data", "accept-queue-full"...
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    conn: ConnId
    old: State
    new: State
    cause: str


@dataclass(frozen=True, slots=True)
class TimerArmed(Event):
    conn: ConnId
    timer: str  # "retransmit", "delayed-ack", "persist", "keepalive", "time-wait", "fin-wait-2", "syn-ack"
    deadline: int


@dataclass(frozen=True, slots=True)
class TimerFired(Event):
    conn: ConnId
    timer: str


@dataclass(frozen=True, slots=True)
class TimerCancelled(Event):
    conn: ConnId
    timer: str


@dataclass(frozen=True, slots=True)
class RttSample(Event):
    conn: ConnId
    rtt: int
    srtt: int
    rttvar: int
    rto: int


@dataclass(frozen=True, slots=True)
class CwndChanged(Event):
    conn: ConnId
    cwnd: int  # segments
    ssthresh: int  # segments
    cause: str  # "ack", "fast-retransmit", "rto", "recovery-end", "idle-restart"


@dataclass(frozen=True, slots=True)
class SocketEvent(Event):
    conn: ConnId | None
    what: str  # "accepted", "connected", "error", "readable", "eof", "orphaned", "listening", "closed"
    detail: str = ""
