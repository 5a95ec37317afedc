"""What an observer may read about a connection at one instant: every RFC 9293 variable and more.

Sequence numbers are the 32-bit values seen on the wire; times and durations are microseconds; timer
deadlines are absolute stack times. The UI's state panels render exactly this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .state import State


@dataclass(frozen=True, slots=True)
class ConnectionSnapshot:
    local: tuple[str, int]
    remote: tuple[str, int]
    state: State
    iss: int = 0
    irs: int = 0
    snd_una: int = 0
    snd_nxt: int = 0
    snd_wnd: int = 0
    snd_wl1: int = 0
    snd_wl2: int = 0
    rcv_nxt: int = 0
    rcv_wnd: int = 0
    rcv_wup: int = 0
    mss: int = 0  # effective send MSS (peer MSS minus our option bytes)
    advmss: int = 0  # the MSS we advertised
    peer_mss: int = 0
    snd_wscale: int | None = None
    rcv_wscale: int | None = None
    sack: bool = False
    timestamps: bool = False
    cwnd: int = 0
    ssthresh: int | None = None
    flight: int = 0
    srtt: int | None = None
    rttvar: int | None = None
    rto: int = 0
    backoff: int = 0
    retransmits: int = 0
    total_retrans: int = 0
    send_buffered: int = 0
    send_buffer: int = 0
    unsent: int = 0
    recv_buffered: int = 0
    recv_ooo: int = 0
    recv_buffer: int = 0
    timers: dict[str, int] = field(default_factory=dict)
    orphan: bool = False
    error: int = 0
    keepalive: bool = False
    probes_out: int = 0
    quickack: int = 0
    pingpong: bool = False
    ato: int = 0
    # Listeners only.
    backlog: int | None = None
    syn_queue: int = 0
    accept_queue: int = 0
    # Request sockets (half-open, in a listener's SYN queue) only.
    is_request: bool = False

    @property
    def id(self) -> tuple[str, int, str, int]:
        return (self.local[0], self.local[1], self.remote[0], self.remote[1])
