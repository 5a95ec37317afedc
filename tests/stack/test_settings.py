"""Host settings: Linux's defaults (docs/linux-reference.md), per-host overrides, live changes, validation."""

from __future__ import annotations

import dataclasses
import errno

import pytest

from stack import SEC, Host, SegmentSent, Settings, State, StateChanged

LINUX_DEFAULTS = {
    "tcp_syn_retries": 6,
    "tcp_synack_retries": 5,
    "tcp_syn_linear_timeouts": 0,  # tcpplay's documented choice (Linux >= 6.5 uses 4)
    "tcp_retries1": 3,
    "tcp_retries2": 15,
    "tcp_orphan_retries": 0,
    "tcp_rto_min_ms": 200,
    "tcp_rto_max_ms": 120_000,
    "tcp_rto_initial_ms": 1000,
    "tcp_early_retrans": 3,  # ip-sysctl: "Default: 3" (Tail Loss Probe on)
    "tcp_fin_timeout": 60,
    "tcp_timewait_len": 60,
    "tcp_max_tw_buckets": 131072,
    "tcp_tw_reuse": 2,
    "tcp_tw_reuse_delay": 1000,
    "tcp_rfc1337": 0,
    "tcp_keepalive_time": 7200,
    "tcp_keepalive_intvl": 75,
    "tcp_keepalive_probes": 9,
    "tcp_max_syn_backlog": 2048,
    "somaxconn": 4096,
    "tcp_syncookies": 1,
    "tcp_abort_on_overflow": 0,
    "tcp_challenge_ack_limit": 2**31 - 1,
    "tcp_invalid_ratelimit": 500,
    "tcp_timestamps": 1,
    "tcp_sack": 1,
    "tcp_dsack": 1,
    "tcp_window_scaling": 1,
    "tcp_rmem": (4096, 131072, 6291456),
    "tcp_wmem": (4096, 16384, 4194304),
    "rmem_max": 212992,
    "wmem_max": 212992,
    "tcp_delack_min_ms": 40,
    "tcp_delack_max_ms": 200,
    "tcp_init_cwnd": 10,
    "tcp_congestion_control": "reno",
    "mtu": 1500,
    "ip_local_port_range": (32768, 60999),
}

A, NOWHERE = "198.18.0.1", "198.18.0.99"


@pytest.mark.parametrize(("name", "value"), sorted(LINUX_DEFAULTS.items()))
def test_default(name: str, value: object) -> None:
    assert getattr(Settings(), name) == value
    assert getattr(Host(A).settings, name) == value


def test_every_setting_has_a_checked_default() -> None:
    # A setting added without a reviewed default fails here.
    assert sorted(Settings().names()) == sorted(LINUX_DEFAULTS)
    assert Settings().as_dict() == LINUX_DEFAULTS


def test_hosts_do_not_share_settings() -> None:
    a, b = Host(A), Host("198.18.0.2")
    a.set(tcp_syn_retries=2)
    assert (a.settings.tcp_syn_retries, b.settings.tcp_syn_retries) == (2, 6)
    assert Settings().tcp_syn_retries == 6


# --- behaviour follows the settings ------------------------------------------------------------------------


def blackhole_connect(
    host: Host, *, port: int = 80, change_at: int | None = None, **change: object
) -> tuple[list[int], int]:
    """connect() at the host's current time to an address that never answers; returns the SYN send times
    and the time the connection failed, both relative to the start.

    With change_at (relative), host.set(**change) is applied then, while the connection is under way."""
    sent: list[int] = []
    closed: list[int] = []

    def watch(event: object) -> None:
        if isinstance(event, SegmentSent) and event.segment.flags & 0x02:
            sent.append(event.now - start)
        if isinstance(event, StateChanged) and event.new is State.CLOSED:
            closed.append(event.now - start)

    start = host.now
    unsubscribe = host.subscribe(watch)
    sock = host.socket()
    assert sock.connect_ex((NOWHERE, port)) == errno.EINPROGRESS
    host.poll(start)
    steps = 0
    while (deadline := host.next_deadline()) is not None:
        steps += 1
        assert steps < 100
        if change_at is not None and deadline > start + change_at:
            host.poll(start + change_at)
            host.set(**change)
            change_at = None
        host.poll(deadline)
    unsubscribe()
    assert sock.state is State.CLOSED
    with pytest.raises(TimeoutError):
        sock.recv(1)
    assert len(closed) == 1
    return sent, closed[0]


def test_default_syn_schedule() -> None:
    sent, failed = blackhole_connect(Host(A, seed=1))
    assert sent == [t * SEC for t in (0, 1, 3, 7, 15, 31, 63)]
    assert failed == 127 * SEC


def test_constructor_setting_applies() -> None:
    host = Host(A, seed=1, tcp_syn_retries=3)
    assert host.settings.tcp_syn_retries == 3
    sent, failed = blackhole_connect(host)
    assert sent == [0, 1 * SEC, 3 * SEC, 7 * SEC]
    assert failed == 15 * SEC


def test_set_on_a_live_host_applies_to_the_next_connection() -> None:
    host = Host(A, seed=1)
    assert blackhole_connect(host) == ([t * SEC for t in (0, 1, 3, 7, 15, 31, 63)], 127 * SEC)
    host.set(tcp_syn_retries=2)
    assert host.settings.tcp_syn_retries == 2
    assert host.now == 127 * SEC
    sent, failed = blackhole_connect(host, port=81)
    assert sent == [0, 1 * SEC, 3 * SEC]
    assert failed == 7 * SEC  # 1 + 2 + 4 s


def test_set_while_a_connection_is_retrying_applies_at_its_next_timeout() -> None:
    # As with sysctl -w: the retry limit is read when the retransmission timer fires.
    sent, failed = blackhole_connect(Host(A, seed=1), change_at=2 * SEC, tcp_syn_retries=1)
    assert sent == [0, 1 * SEC]
    assert failed == 3 * SEC


def test_linear_syn_timeouts() -> None:
    # Linux >= 6.5's default (tcp_syn_linear_timeouts=4): 67 s to the last SYN, failure at 131 s.
    sent, failed = blackhole_connect(Host(A, seed=1, tcp_syn_linear_timeouts=4))
    assert sent == [t * SEC for t in (0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67)]
    assert failed == 131 * SEC


def test_tcp_rmem_sets_the_receive_buffer_of_new_connections() -> None:
    host = Host(A, seed=1)
    host.set(tcp_rmem="4096 65536 6291456")
    sock = host.socket()
    sock.connect_ex((NOWHERE, 80))
    snap = sock.snapshot()
    assert snap.recv_buffer == 65536
    assert sock.getsockopt(1, 8) == 65536  # SOL_SOCKET, SO_RCVBUF


# --- validation --------------------------------------------------------------------------------------------


def test_unknown_setting_in_constructor_suggests_the_name() -> None:
    with pytest.raises(ValueError) as info:
        Host(A, tcp_syn_retires=3)
    assert str(info.value) == (
        "unknown setting 'tcp_syn_retires' (did you mean tcp_syn_retries, tcp_synack_retries, tcp_retries2?)"
    )


def test_unknown_setting_in_set_suggests_close_names() -> None:
    host = Host(A)
    with pytest.raises(
        ValueError, match=r"unknown setting 'tcp_keepalive_tme' \(did you mean tcp_keepalive_time"
    ):
        host.set(tcp_keepalive_tme=10)


def test_unknown_setting_without_a_close_name() -> None:
    with pytest.raises(ValueError) as info:
        Host(A).set(frobnicate=1)
    assert str(info.value) == "unknown setting 'frobnicate'"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("tcp_syn_retries", "abc", "bad value for tcp_syn_retries: 'abc'"),
        ("tcp_syn_retries", -1, "tcp_syn_retries cannot be negative, got -1"),
        ("tcp_syn_retries", 2.5, "tcp_syn_retries takes a whole number, got 2.5"),
        ("tcp_syn_retries", None, "bad value for tcp_syn_retries: None"),
        ("tcp_syn_retries", 0, "tcp_syn_retries must be between 1 and 127, got 0"),
        ("tcp_syn_retries", 128, "tcp_syn_retries must be between 1 and 127, got 128"),
        ("tcp_fin_timeout", float("nan"), "tcp_fin_timeout takes a whole number, got nan"),
        ("tcp_rmem", (1, 2), "tcp_rmem takes 3 numbers, got 2"),
        ("tcp_rmem", "4096 131072", "tcp_rmem takes 3 numbers, got 2"),
        ("tcp_rmem", "a b c", "bad value for tcp_rmem: 'a b c'"),
        ("tcp_rmem", 5, "bad value for tcp_rmem: 5"),
        ("tcp_rmem", (4096, -1, 6291456), "tcp_rmem must be at least 1, got -1"),
        ("tcp_wmem", (0, 16384, 4194304), "tcp_wmem must be at least 1, got 0"),
        ("ip_local_port_range", (1024, 70000), "ip_local_port_range must be between 1 and 65535, got 70000"),
        ("ip_local_port_range", "0 100", "ip_local_port_range must be between 1 and 65535, got 0"),
        ("ip_local_port_range", "5000 4000", "ip_local_port_range must be low high with low <= high"),
        ("mtu", 40, "mtu must be between 68 and 65535, got 40"),
        ("tcp_rto_min_ms", 0, "tcp_rto_min_ms must be at least 1, got 0"),
        ("tcp_rto_max_ms", 0, "tcp_rto_max_ms must be at least 1, got 0"),
        ("tcp_rto_initial_ms", 0, "tcp_rto_initial_ms must be at least 1, got 0"),
        ("tcp_init_cwnd", 0, "tcp_init_cwnd must be at least 1, got 0"),
        ("tcp_congestion_control", "hybla", "tcp_congestion_control 'hybla' is not available"),
    ],
)
def test_bad_value_names_the_setting(name: str, value: object, message: str) -> None:
    host = Host(A)
    before = getattr(host.settings, name)
    with pytest.raises(ValueError) as info:
        host.set(**{name: value})
    assert str(info.value).startswith(message)
    assert getattr(host.settings, name) == before
    with pytest.raises(ValueError) as info2:
        Host(A, **{name: value})
    assert str(info2.value).startswith(message)


def test_a_rejected_set_changes_nothing() -> None:
    host = Host(A)
    with pytest.raises(ValueError, match="tcp_fin_timeout"):
        host.set(tcp_syn_retries=2, tcp_fin_timeout=-5)
    assert host.settings.tcp_syn_retries == 6  # not half-applied


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        ("tcp_rmem", "4096 131072 6291456", (4096, 131072, 6291456)),
        ("tcp_rmem", "4096\t87380\t33554432", (4096, 87380, 33554432)),  # as `sysctl` prints it
        ("tcp_rmem", [1, 2, 3], (1, 2, 3)),
        ("tcp_wmem", ("4096", "16384", "4194304"), (4096, 16384, 4194304)),
        ("ip_local_port_range", "1024 65535", (1024, 65535)),
        ("ip_local_port_range", (40000, 40000), (40000, 40000)),
        ("tcp_syn_retries", "3", 3),
        ("tcp_syn_retries", 4.0, 4),
        ("tcp_syn_retries", 127, 127),
        ("tcp_fin_timeout", 0, 0),
        ("mtu", 68, 68),
        ("tcp_congestion_control", "newreno", "newreno"),
    ],
)
def test_accepted_values_are_converted(name: str, value: object, stored: object) -> None:
    host = Host(A)
    host.set(**{name: value})
    assert getattr(host.settings, name) == stored
    assert type(getattr(host.settings, name)) is type(stored)


def test_settings_set_and_update_directly() -> None:
    s = Settings()
    s.set("tcp_rmem", "4096 131072 6291456")
    assert s.tcp_rmem == (4096, 131072, 6291456)
    s.update(tcp_keepalive_time=60, tcp_keepalive_intvl="10")
    assert (s.tcp_keepalive_time, s.tcp_keepalive_intvl) == (60, 10)
    assert dataclasses.replace(s).tcp_keepalive_time == 60
