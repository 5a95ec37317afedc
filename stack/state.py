"""The eleven connection states of RFC 9293 §3.3.2, named as `ss` and the RFC name them (with underscores)."""

from __future__ import annotations

from enum import Enum


class State(Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN_SENT"
    SYN_RCVD = "SYN_RCVD"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"
    FIN_WAIT_2 = "FIN_WAIT_2"
    CLOSE_WAIT = "CLOSE_WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST_ACK"
    TIME_WAIT = "TIME_WAIT"

    def __str__(self) -> str:
        return self.value


# States in which the connection is synchronized (RFC 9293 §3.5.3): both ISNs are known.
SYNCHRONIZED = frozenset(
    {
        State.ESTABLISHED,
        State.FIN_WAIT_1,
        State.FIN_WAIT_2,
        State.CLOSE_WAIT,
        State.CLOSING,
        State.LAST_ACK,
        State.TIME_WAIT,
    }
)

# Every transition RFC 9293 Figure 5 allows (plus Linux's FIN_WAIT_1 -> TIME_WAIT on a FIN that acks our
# FIN, which is the figure's FIN_WAIT_1 -> CLOSING -> TIME_WAIT taken in one segment, and abort/timeout to
# CLOSED from anywhere). Tests use it to check that no illegal transition ever happens.
LEGAL_TRANSITIONS: frozenset[tuple[State, State]] = frozenset(
    {
        (State.CLOSED, State.LISTEN),
        (State.CLOSED, State.SYN_SENT),
        (State.LISTEN, State.SYN_RCVD),
        (State.LISTEN, State.SYN_SENT),
        (State.SYN_SENT, State.SYN_RCVD),
        (State.SYN_SENT, State.ESTABLISHED),
        (State.SYN_RCVD, State.ESTABLISHED),
        (State.SYN_RCVD, State.FIN_WAIT_1),
        (State.SYN_RCVD, State.LISTEN),
        (State.SYN_RCVD, State.CLOSE_WAIT),
        (State.ESTABLISHED, State.FIN_WAIT_1),
        (State.ESTABLISHED, State.CLOSE_WAIT),
        (State.FIN_WAIT_1, State.FIN_WAIT_2),
        (State.FIN_WAIT_1, State.CLOSING),
        (State.FIN_WAIT_1, State.TIME_WAIT),
        (State.FIN_WAIT_2, State.TIME_WAIT),
        (State.CLOSE_WAIT, State.LAST_ACK),
        (State.CLOSING, State.TIME_WAIT),
        (State.LAST_ACK, State.CLOSED),
        (State.TIME_WAIT, State.CLOSED),
        (State.TIME_WAIT, State.SYN_RCVD),
    }
    | {(s, State.CLOSED) for s in State if s is not State.CLOSED}
)
