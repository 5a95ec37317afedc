"""Congestion control (RFC 5681, RFC 6928 IW10, RFC 6582/6675 recovery) on the lab's virtual clock.

The client pushes bulk data to a server that reads everything at once; the RTT is 20 ms (10 ms each way).
cwnd counts segments, as Linux's does; the CwndChanged events are the cwnd-over-time graph a teacher shows.
"""

from __future__ import annotations

import itertools

from stack import CwndChanged
from stack.congestion import INFINITE_SSTHRESH, NewReno, make_controller
from tcpplay.lab import Lab


def bulk(lab: Lab, seconds: float, *, drop_at: float | None = None) -> list[tuple[int, int, int, str]]:
    """Keep the client's send buffer full for `seconds` of stack time; return its cwnd changes."""
    events: list[tuple[int, int, int, str]] = []

    def record(e: object) -> None:
        if isinstance(e, CwndChanged):
            events.append((e.now // 1000, e.cwnd, e.ssthresh, e.cause))

    lab.hosts["client"].subscribe(record)
    sock = lab.apps["client"].current()
    assert sock is not None
    sock.setsockopt(1, 7, 1 << 20)  # SOL_SOCKET, SO_SNDBUF: the send buffer never limits the flight
    end = lab.now + int(seconds * 1_000_000)
    dropped = drop_at is None
    while lab.now < end:
        if not dropped and lab.now >= lab.capture.records[0].time + int(drop_at * 1_000_000):
            lab.drop_next("client", "data")
            dropped = True
        try:
            while sock.send(bytes(65536)):
                pass
        except BlockingIOError:
            pass
        lab.recv("server", 1 << 22)
        lab.step()
    return events


def connected(**settings: object) -> Lab:
    lab = Lab(seed=1, settings={"tcp_rmem": (4096, 1 << 20, 6291456), **settings})
    lab.listen("server")
    lab.connect("client")
    lab.advance(0.1)
    return lab


def test_initial_window_is_ten_segments_then_slow_start_doubles_it_every_round_trip() -> None:
    lab = connected()
    snap = lab.snapshot("client")
    assert snap is not None and snap.cwnd == 10 and snap.ssthresh is None
    events = bulk(lab, 0.1)
    by_time: dict[int, int] = {}
    for t, cwnd, _, _ in events:
        by_time[t] = cwnd  # the last value at each instant
    # One RTT after the first flight (sent at 100 ms) its ACKs arrive at 120 ms: +1 per ACKed segment.
    assert by_time[120] == 20
    assert by_time[140] == 40
    assert by_time[160] == 80
    assert all(cause == "ack" for *_, cause in events)


def test_a_loss_halves_the_window_and_congestion_avoidance_then_adds_one_segment_per_rtt() -> None:
    lab = connected()
    events = bulk(lab, 1.5, drop_at=0.13)  # mid slow start: the flight is exactly cwnd
    i = next(i for i, e in enumerate(events) if e[3] == "fast-retransmit")
    loss = events[i]
    assert events[i - 1][1] == 40  # cwnd when the three duplicate ACKs come
    _, cwnd_at_loss, ssthresh, _ = loss
    # Linux tcp_reno_ssthresh(): half the window; RFC 6675: cwnd = ssthresh on entering recovery.
    assert (cwnd_at_loss, ssthresh) == (20, 20)
    end = next(e for e in events if e[3] == "recovery-end" and e[0] >= loss[0])
    after = [e for e in events if e[0] > end[0] and e[3] == "ack"]
    assert after, "the window grows again after recovery"
    assert end[1] == ssthresh  # Linux tcp_end_cwnd_reduction(): cwnd = ssthresh when recovery ends
    assert [e[1] for e in after[:10]] == list(range(ssthresh + 1, ssthresh + 11))
    assert [b[0] - a[0] for a, b in itertools.pairwise(after[:10])] == [20] * 9  # one RTT each


def test_newreno_arithmetic() -> None:
    cc = NewReno(10)
    assert cc.ssthresh == INFINITE_SSTHRESH and cc.in_slow_start
    cc.on_ack(5, cwnd_limited=True)
    assert cc.cwnd == 15
    cc.on_ack(5, cwnd_limited=False)  # not limited by cwnd: no growth (Linux tcp_is_cwnd_limited())
    assert cc.cwnd == 15
    cc.ssthresh = 16
    cc.on_ack(4, cwnd_limited=True)  # slow start up to ssthresh (1), the rest counts towards CA (3)
    assert (cc.cwnd, cc.cwnd_cnt) == (16, 3)
    cc.on_ack(13, cwnd_limited=True)
    assert (cc.cwnd, cc.cwnd_cnt) == (17, 0)
    assert cc.ssthresh_on_loss(20) == 8  # Linux tcp_reno_ssthresh(): max(cwnd / 2, 2), cwnd = 17
    assert cc.ssthresh_on_loss(3) == 8  # what is left in the pipe does not matter
    cc.cwnd = 3
    assert cc.ssthresh_on_loss(3) == 2
    assert make_controller("reno", 10).name == "reno"


def test_cubic_grows_back_along_the_cubic_curve_after_a_loss() -> None:
    from stack.congestion import Cubic

    cc = Cubic(10)
    cc.cwnd = 100
    cc.ssthresh = cc.ssthresh_on_loss(100)
    assert cc.ssthresh == 70  # RFC 9438 §4.6: beta_cubic = 0.7
    cc.cwnd = cc.ssthresh
    sizes = []
    now = 0
    rtt = 200_000  # a long RTT, where the cubic curve (not the Reno-friendly estimate) rules
    for _ in range(60):  # 60 RTTs: 12 s
        now += rtt
        cc.on_ack(cc.cwnd, cwnd_limited=True, now=now, srtt=rtt)
        sizes.append(cc.cwnd)
    # K = cbrt(100 * 0.3 / 0.4) = 4.2 s: concave growth towards W_max = 100, a plateau there, then convex.
    at_k = sizes[round(4.2e6 / rtt) - 1]
    assert 97 <= at_k <= 101
    assert sizes[5] - sizes[0] > sizes[20] - sizes[15]  # concave: fast at first, slow near W_max
    assert sizes[-1] - sizes[-6] > sizes[25] - sizes[20]  # convex: probing beyond W_max accelerates
    assert sizes == sorted(sizes)


def test_cubic_is_reno_friendly_at_short_rtts() -> None:
    from stack.congestion import Cubic

    cc = Cubic(10)
    cc.cwnd = 100
    cc.ssthresh = cc.ssthresh_on_loss(100)
    cc.cwnd = 70
    now = 0
    for _ in range(100):  # 100 RTTs of 20 ms: Reno would add ~0.53 * 100 = 53 segments (RFC 9438 §4.3)
        now += 20_000
        cc.on_ack(cc.cwnd, cwnd_limited=True, now=now, srtt=20_000)
    assert 115 <= cc.cwnd <= 130


def test_cubic_is_selectable_on_a_live_lab() -> None:
    lab = connected(tcp_congestion_control="cubic")
    conn = next(iter(lab.hosts["client"].conns.values()))
    assert conn.cc.name == "cubic"
    events = bulk(lab, 1.0, drop_at=0.3)
    assert any(cause == "fast-retransmit" for *_, cause in events)
    assert lab.recv("server", 1 << 24) is not None
