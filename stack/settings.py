"""Per-host settings, named like the Linux sysctls they mirror, with Linux's defaults.

Linux is the reference wherever the RFCs leave room (see docs/linux-reference.md in the shared material).
Units are those of the sysctl: seconds for tcp_fin_timeout and keepalive, milliseconds for *_ms, bytes
for buffers. A host's settings can be changed while it runs; new values apply from the next decision that
reads them (as with sysctl).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields
from typing import Any

from .congestion import CONTROLLERS


@dataclass(slots=True)
class Settings:
    # Connection establishment.
    tcp_syn_retries: int = 6  # tcp.h TCP_SYN_RETRIES: SYNs at 0,1,3,7,15,31,63 s, ETIMEDOUT at 127 s
    tcp_synack_retries: int = 5  # TCP_SYNACK_RETRIES: request gone at 63 s
    # Linux >= 6.5 defaults to 4; tcpplay teaches the classic exponential schedule (0).
    tcp_syn_linear_timeouts: int = 0
    # Retransmission.
    tcp_retries1: int = 3
    tcp_retries2: int = 15  # 924.6 s budget with RTO 200 ms
    tcp_orphan_retries: int = 0  # 0 means 8, as in Linux
    tcp_rto_min_ms: int = 200  # TCP_RTO_MIN
    tcp_rto_max_ms: int = 120_000  # TCP_RTO_MAX
    tcp_rto_initial_ms: int = 1000  # TCP_TIMEOUT_INIT (RFC 6298 §2.1)
    tcp_early_retrans: int = 3  # 3: Tail Loss Probe (RFC 8985) on SACK connections, as Linux; 0: off
    # Closing.
    tcp_fin_timeout: int = 60  # orphaned FIN_WAIT_2 lifetime, seconds
    tcp_timewait_len: int = 60  # TCP_TIMEWAIT_LEN = 2*MSL on Linux (not a sysctl there; a setting here)
    tcp_max_tw_buckets: int = 131072
    tcp_tw_reuse: int = 2  # 2 = loopback only
    tcp_tw_reuse_delay: int = 1000  # ms
    tcp_rfc1337: int = 0  # 0: an RST kills TIME_WAIT (RFC 1337 assassination allowed)
    # Keepalive.
    tcp_keepalive_time: int = 7200
    tcp_keepalive_intvl: int = 75
    tcp_keepalive_probes: int = 9
    # Listener queues.
    tcp_max_syn_backlog: int = 2048
    somaxconn: int = 4096
    tcp_syncookies: int = 1
    tcp_abort_on_overflow: int = 0
    # Attack resistance (RFC 5961 challenge ACKs, out-of-window ACK rate limit).
    tcp_challenge_ack_limit: int = 2**31 - 1
    tcp_invalid_ratelimit: int = 500  # ms
    # Options and buffers.
    tcp_timestamps: int = 1
    tcp_sack: int = 1
    tcp_dsack: int = 1
    tcp_window_scaling: int = 1
    tcp_rmem: tuple[int, int, int] = (4096, 131072, 6291456)
    tcp_wmem: tuple[int, int, int] = (4096, 16384, 4194304)
    rmem_max: int = 212992
    wmem_max: int = 212992
    # Delayed ACK (tcp.h TCP_DELACK_MIN / TCP_DELACK_MAX) and initial window (RFC 6928).
    tcp_delack_min_ms: int = 40
    tcp_delack_max_ms: int = 200
    tcp_init_cwnd: int = 10
    tcp_congestion_control: str = "reno"
    # The interface: MTU decides the MSS we advertise (MTU - 40).
    mtu: int = 1500
    ip_local_port_range: tuple[int, int] = (32768, 60999)

    def update(self, **changes: Any) -> None:
        """Set several settings at once; an unknown name or a bad value raises ValueError naming it, and
        then nothing is changed (every value is checked before any is applied)."""
        checked = {name: self.checked(name, value) for name, value in changes.items()}
        for name, value in checked.items():
            setattr(self, name, value)

    def set(self, name: str, value: Any) -> None:
        setattr(self, name, self.checked(name, value))

    def checked(self, name: str, value: Any) -> Any:
        """The value converted to the setting's type and range-checked; ValueError naming the setting."""
        known = {f.name: f for f in fields(self)}
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(f"unknown setting {name!r}{hint}")
        value = coerce_setting(name, getattr(self, name), value)
        check_setting(name, value)
        return value

    def names(self) -> list[str]:
        return [f.name for f in fields(self)]

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def coerce_setting(name: str, current: Any, value: Any) -> Any:
    """Convert value to the type of the setting (sysctl-style strings accepted: "4096 131072 6291456")."""
    try:
        if isinstance(current, tuple):
            parts = value.split() if isinstance(value, str) else list(value)
            if len(parts) != len(current):
                raise ValueError(f"{name} takes {len(current)} numbers, got {len(parts)}")
            return tuple(int(p) for p in parts)
        if isinstance(current, bool):
            return bool(int(value))
        if isinstance(current, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"{name} takes a whole number, got {value}")
            number = int(value)
            if number < 0:
                raise ValueError(f"{name} cannot be negative, got {number}")
            return number
        return str(value)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith(name):
            raise
        raise ValueError(f"bad value for {name}: {value!r} ({exc})") from None


# Ranges beyond "not negative", where a value outside them is either rejected by Linux's sysctl handler or
# would break the stack (a port above 65535 cannot be put in a header, an RTO of 0 retransmits forever in
# one instant, an MTU below IPv4's minimum leaves no room for an MSS). (low, high); None = no upper bound.
LIMITS: dict[str, tuple[int, int | None]] = {
    "tcp_early_retrans": (0, 4),  # Linux: 0 off, 1-2 early retransmit only (not modelled: no TLP), 3-4 TLP
    "tcp_syn_retries": (1, 127),  # Linux: tcp_syn_retries_min 1, MAX_TCP_SYNCNT 127
    "tcp_rto_min_ms": (1, None),
    "tcp_rto_max_ms": (1, None),
    "tcp_rto_initial_ms": (1, None),
    "tcp_init_cwnd": (1, None),
    "mtu": (68, 65535),  # RFC 791: every IPv4 host must take 68-byte datagrams
    "tcp_rmem": (1, None),  # Linux: each of the three values >= 1 (extra1 = SYSCTL_ONE)
    "tcp_wmem": (1, None),
    "ip_local_port_range": (1, 65535),  # Linux ipv4_local_port_range(): 1..65535, low <= high
}


def check_setting(name: str, value: Any) -> None:
    """Raise ValueError (naming the setting) when value is outside what the setting can take."""
    if name == "tcp_congestion_control":
        if value not in CONTROLLERS:
            raise ValueError(
                f"{name} {value!r} is not available; available: {', '.join(sorted(CONTROLLERS))}"
            )
        return
    limits = LIMITS.get(name)
    if limits is None:
        return
    low, high = limits
    for number in value if isinstance(value, tuple) else (value,):
        if number < low or (high is not None and number > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"{name} must be {bound}, got {number}")
    if name == "ip_local_port_range" and value[0] > value[1]:
        raise ValueError(f"{name} must be low high with low <= high, got {value[0]} {value[1]}")
