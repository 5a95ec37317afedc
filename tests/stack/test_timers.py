"""Timers with exact deadlines: SYN / SYN-ACK retries (scenario 07), RTO (RFC 6298 + Linux), give-up,
TIME_WAIT, delayed ACK (Linux tcp_timer.c, tcp_input.c, tcp_output.c)."""

from __future__ import annotations

import errno
import socket as pysocket

import pytest

from stack import MS, SEC, State

from .helpers import (
    NO_TS,
    NOP,
    PEER_IP,
    PEER_ISN,
    PEER_PORT,
    SACK,
    SUT_ISS,
    SUT_PORT,
    Peer,
    client_established,
    make_host,
    server_established,
    server_listen,
    sut_syn_options,
    ts_opts,
)


def connect(host_settings: dict[str, int] | None = None) -> tuple[Peer, object]:
    host = make_host(**(host_settings or {}))
    peer = Peer(host, port=SUT_PORT, sut_port=PEER_PORT)
    sock = host.socket()
    sock.bind(("0.0.0.0", PEER_PORT))
    assert sock.connect_ex((PEER_IP, SUT_PORT)) == errno.EINPROGRESS
    return peer, sock


@pytest.mark.parametrize(
    ("settings", "syn_times", "give_up"),
    [
        # Part A: classic exponential schedule (tcp_syn_linear_timeouts=0, tcpplay's default)
        ({}, [0, 1, 3, 7, 15, 31, 63], 127),
        # Part B: Linux >= 6.5 (4 linear timeouts first, then 6 doublings)
        ({"tcp_syn_linear_timeouts": 4}, [0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67], 131),
        # fewer retries: the give-up comes after the (retries+1)-th timeout
        ({"tcp_syn_retries": 2}, [0, 1, 3], 7),
    ],
)
def test_syn_retransmission_schedule_and_etimedout(
    settings: dict[str, int], syn_times: list[int], give_up: int
) -> None:
    peer, sock = connect(settings)
    conn = sock.conn  # type: ignore[attr-defined]
    for i, t in enumerate(syn_times):
        peer.advance(t * SEC)
        # identical SYNs (same ISN, window and option layout); only TS val follows the clock
        peer.expect("S", SUT_ISS, 0, 64240, options=sut_syn_options(t * 1000, 0))
        nxt = syn_times[i + 1] if i + 1 < len(syn_times) else give_up
        assert peer.next_deadline() == nxt * SEC
        assert conn.timers == {"retransmit": nxt * SEC}
        assert sock.state is State.SYN_SENT  # type: ignore[attr-defined]
    peer.advance(give_up * SEC - 1)
    assert sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_ERROR) == 0  # type: ignore[attr-defined]
    assert sock.state is State.SYN_SENT  # type: ignore[attr-defined]
    peer.advance(give_up * SEC)
    peer.expect_nothing()  # Linux sends no RST when SYN retries give up
    assert sock.state is State.CLOSED  # type: ignore[attr-defined]
    assert peer.host.next_deadline() is None and peer.host.connections() == []
    assert sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_ERROR) == errno.ETIMEDOUT  # type: ignore[attr-defined]


def test_syn_timeout_reported_by_connect_as_timeout_error() -> None:
    peer, sock = connect({"tcp_syn_retries": 1})
    peer.advance(3 * SEC)
    with pytest.raises(TimeoutError):
        sock.connect((PEER_IP, SUT_PORT))  # type: ignore[attr-defined]


def test_synack_retries_then_request_gone_at_63s() -> None:
    host = make_host()
    peer = Peer(host)
    lsock = server_listen(host)
    peer.send("S", PEER_ISN, 0, 65535)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 64240)
    for t, nxt in [(1, 3), (3, 7), (7, 15), (15, 31), (31, 63)]:
        peer.advance(t * SEC - 1)
        peer.expect_nothing()
        peer.advance(t * SEC)
        peer.expect("S.", SUT_ISS, PEER_ISN + 1, 64240)
        assert host.next_deadline() == nxt * SEC
        assert [s.state for s in host.connections()] == [State.LISTEN, State.SYN_RCVD]
    peer.advance(63 * SEC)
    peer.expect_nothing()  # no RST: the request is silently forgotten
    assert [s.state for s in host.connections()] == [State.LISTEN]
    assert host.connections()[0].syn_queue == 0
    assert host.next_deadline() is None
    # the late ACK finds no request: RST <SEQ=SEG.ACK> (cookies were never sent, so none is checked)
    peer.send(".", PEER_ISN + 1, SUT_ISS + 1, 512)
    peer.expect("R", SUT_ISS + 1, 0, 0)
    with pytest.raises(BlockingIOError):
        lsock.accept()


def test_synack_retries_setting() -> None:
    host = make_host(tcp_synack_retries=2)
    peer = Peer(host)
    server_listen(host)
    peer.send("S", PEER_ISN, 0, 65535)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1)
    peer.advance(1 * SEC)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1)
    peer.advance(3 * SEC)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1)
    assert host.next_deadline() == 7 * SEC
    peer.advance(7 * SEC)
    peer.expect_nothing()
    assert host.connections()[0].syn_queue == 0


def test_retransmitted_syn_to_request_resends_synack() -> None:
    host = make_host()
    peer = Peer(host)
    server_listen(host)
    peer.send("S", PEER_ISN, 0, 65535)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1)
    # the client's SYN retransmission (its own 1 s timer) gets the SYN-ACK again at once
    peer.advance(1 * SEC - 10 * MS)
    peer.send("S", PEER_ISN, 0, 65535)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1)
    # and the request's timer starts over from this retransmission (tcp_check_req(): "Reset timer after
    # retransmitting SYNACK"), still with the un-backed-off 1 s
    assert host.next_deadline() == 1990 * MS
    peer.advance(1990 * MS)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1)
    assert host.next_deadline() == 3990 * MS


# ---------------------------------------------------------------------------------------------------------
# retransmission timeout of data


def test_data_rto_after_a_handshake_sample_and_exponential_backoff_to_the_cap() -> None:
    c = client_established(NO_TS, t0=0, rtt=100 * MS)
    assert c.conn.rtt.rto == 300 * MS
    c.sock.send(b"x" * 100)
    c.expect("P.", b"x" * 100)
    t = 100 * MS
    rto = 300 * MS
    expected = []
    while rto < 120 * SEC:
        t += rto
        expected.append(t)
        rto = min(rto * 2, 120 * SEC)
    expected += [expected[-1] + 120 * SEC, expected[-1] + 240 * SEC]
    last = 100 * MS
    for at in expected:
        assert c.host.next_deadline() == at, at - last
        c.advance(at - 1)
        c.expect_nothing()
        c.advance(at)
        c.expect("P.", b"x" * 100)  # the same segment, unchanged (no TS)
        last = at
    assert c.conn.timers == {"retransmit": expected[-1] + 120 * SEC}  # capped at TCP_RTO_MAX 120 s
    assert c.sock.snapshot().rto == 120 * SEC


def test_rto_floor_200ms_after_a_near_zero_rtt_sample() -> None:
    c = client_established(NO_TS, t0=0, rtt=1 * MS)
    # srtt 1 ms, rttvar 0.5 ms: RTO = srtt + max(4 * rttvar, TCP_RTO_MIN) = 201 ms (tcp_set_rto)
    snap = c.sock.snapshot()
    assert (snap.srtt, snap.rttvar, snap.rto) == (1 * MS, 500, 201 * MS)
    c.advance(10 * MS)
    c.sock.send(b"y")
    c.expect("P.", b"y")
    assert c.conn.timers == {"retransmit": 211 * MS}
    c.advance(211 * MS)
    c.expect("P.", b"y")
    assert c.conn.timers == {"retransmit": 211 * MS + 402 * MS}


def test_data_rto_without_any_rtt_sample_is_3s() -> None:
    # RFC 6298 §2.1 initial RTO 1 s applies to the SYN. A handshake that gave no RTT sample (retransmitted
    # SYN-ACK, no timestamps) leaves RTO at 3 s for the data (RFC 6298 §5.7, Linux tcp_init_metrics()).
    host = make_host()
    peer = Peer(host)
    lsock = server_listen(host)
    peer.send("S", PEER_ISN, 0, 65535, b"", NO_TS.encode(0))
    peer.expect("S.", SUT_ISS, PEER_ISN + 1)
    peer.advance(1 * SEC)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1)
    peer.advance(1100 * MS)
    peer.send(".", PEER_ISN + 1, SUT_ISS + 1, 512)
    sock, _ = lsock.accept()
    assert sock.snapshot().rto == 3 * SEC
    sock.send(b"d")
    peer.expect("P.", SUT_ISS + 1, PEER_ISN + 1, 502, b"d")
    assert host.next_deadline() == 4100 * MS
    peer.advance(4100 * MS)
    peer.expect("P.", SUT_ISS + 1, PEER_ISN + 1, 502, b"d")
    assert host.next_deadline() == 10100 * MS


def test_karn_no_rtt_sample_from_a_retransmitted_segment() -> None:
    c = client_established(NO_TS, t0=0, rtt=100 * MS)
    before = c.sock.snapshot()
    c.sock.send(b"k" * 10)
    c.expect("P.", b"k" * 10)
    c.advance(400 * MS)
    c.expect("P.", b"k" * 10)  # RTO 300 ms expired
    c.snd += 10
    assert c.conn.rtt.rto == 600 * MS
    # the ACK comes 5 ms after the retransmission: ambiguous, no sample (RFC 6298 §3, Karn)
    c.advance(405 * MS)
    c.psend(".")
    after = c.sock.snapshot()
    assert (after.srtt, after.rttvar) == (before.srtt, before.rttvar)
    assert after.rto == 600 * MS  # the backed-off RTO is kept until a valid sample
    assert c.host.next_deadline() is None
    # the next segment is timed with the backed-off RTO, and its clean ACK gives a new sample
    c.sock.send(b"l")
    c.expect("P.", b"l")
    assert c.conn.timers == {"retransmit": 1005 * MS}
    c.advance(455 * MS)
    c.snd += 1
    c.psend(".")
    snap = c.sock.snapshot()
    # RFC 6298 §2.3: rttvar = 3/4 * 50 + 1/4 * |100 - 50| = 50 ms, srtt = 7/8 * 100 + 1/8 * 50 = 93.75 ms
    assert (snap.srtt, snap.rttvar) == (93_750, 50 * MS)
    assert snap.rto == 93_750 + 200 * MS


@pytest.mark.parametrize(
    ("retries2", "rtt", "retransmit_at", "dies_at"),
    [
        # RTO 201 ms (1 ms RTT): tcp_model_timeout(3, 200 ms) = 3 s; expiries 0.201, 0.603, 1.407, 3.015
        (3, 1 * MS, [201, 603, 1407], 3015),
        # RTO 300 ms: the budget is time, not a count: only 3 retransmissions before 4.5 s >= 3 s
        (3, 100 * MS, [300, 900, 2100], 4500),
        # tcp_model_timeout(1, 200 ms) = 600 ms
        (1, 1 * MS, [201], 603),
    ],
)
def test_retries2_give_up_with_etimedout_and_no_rst(
    retries2: int, rtt: int, retransmit_at: list[int], dies_at: int
) -> None:
    c = client_established(NO_TS, t0=0, rtt=rtt, tcp_retries2=retries2)
    c.advance(1 * SEC)
    t0 = c.now
    c.sock.send(b"r" * 10)
    c.expect("P.", b"r" * 10)
    for at in retransmit_at:
        c.advance(t0 + at * MS)
        c.expect("P.", b"r" * 10)
    assert c.host.next_deadline() == t0 + dies_at * MS
    c.advance(t0 + dies_at * MS)
    c.expect_nothing()  # tcp_write_err(): no RST
    assert c.sock.state is State.CLOSED
    assert c.host.connections() == []
    with pytest.raises(TimeoutError):
        c.sock.recv(10)


def test_retries2_default_dies_924_6_seconds_after_the_first_transmission() -> None:
    # tcp_model_timeout(15, TCP_RTO_MIN): (2^10 - 1) * 0.2 s + 6 * 120 s = 924.6 s. With an RTO of 200 ms
    # plus the 1 us RTT sample (200.001 ms) the 16th expiry falls 1023 * 1 us later.
    c = client_established(NO_TS, t0=0, rtt=0)
    assert c.conn.rtt.rto == 200_001
    c.advance(1 * SEC)
    t0 = c.now
    c.sock.send(b"z")
    c.expect("P.", b"z")
    rto, t, n = 200_001, t0, 0
    while True:
        t += rto
        if t - t0 >= 924_600 * MS:
            break
        c.advance(t)
        c.expect("P.", b"z")
        n += 1
        rto = min(2 * rto, 120 * SEC)
    assert n == 15  # tcp_retries2 retransmissions
    assert t - t0 == 924_601_023
    assert c.host.next_deadline() == t
    c.advance(t - 1)
    assert c.sock.state is State.ESTABLISHED
    c.advance(t)
    c.expect_nothing()
    assert c.sock.state is State.CLOSED
    assert c.sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_ERROR) == errno.ETIMEDOUT


def test_ack_of_new_data_restarts_the_rto_timer() -> None:
    c = server_established(NO_TS)
    c.advance(300 * MS)
    c.sock.send(b"a" * 1460)
    c.sock.send(b"b" * 1460)
    segs = c.peer.expect_many(2)
    assert [s.seq for s in segs] == [c.snd, c.snd + 1460]
    assert c.conn.timers == {"retransmit": 600 * MS}
    c.advance(350 * MS)
    c.snd += 1460
    c.psend(".")
    # RFC 6298 §5.3: restart the timer on an ACK of new data (now + RTO)
    rto = c.conn.rtt.rto
    assert c.conn.timers == {"retransmit": 350 * MS + rto}
    c.advance(350 * MS + rto)
    c.expect("P.", b"b" * 1460)  # only the unacknowledged segment


# ---------------------------------------------------------------------------------------------------------
# TIME_WAIT


def time_wait_client(ts: bool = False):  # type: ignore[no-untyped-def]
    from .helpers import ALL

    c = client_established(ALL if ts else NO_TS, t0=0)
    c.advance(200 * MS)
    c.sock.close()
    c.expect("F.")
    c.snd += 1
    c.advance(300 * MS)
    c.psend("F.")
    c.rcv += 1
    c.expect(".")
    assert c.conn.state is State.TIME_WAIT
    return c


def test_time_wait_lasts_exactly_60s() -> None:
    c = time_wait_client()
    assert c.host.next_deadline() == 60_300 * MS
    c.advance(60_300 * MS - 1)
    assert c.conn.state is State.TIME_WAIT
    c.advance(60_300 * MS)
    assert c.conn.state is State.CLOSED
    c.expect_nothing()
    assert c.host.connections() == [] and c.host.next_deadline() is None


def test_time_wait_len_setting() -> None:
    c = client_established(NO_TS, t0=0, tcp_timewait_len=5)
    c.advance(200 * MS)
    c.sock.close()
    c.expect("F.")
    c.snd += 1
    c.psend("F.")
    c.rcv += 1
    c.expect(".")
    assert c.conn.timers == {"time-wait": 5200 * MS}


def test_retransmitted_fin_in_time_wait_is_acked_and_restarts_the_timer() -> None:
    c = time_wait_client()
    # our last ACK was lost: the peer retransmits its FIN (seq RCV.NXT - 1)
    c.advance(10 * SEC)
    c.psend("F.", seq=c.rcv - 1)
    c.expect(".")
    assert c.conn.state is State.TIME_WAIT
    assert c.conn.timers == {"time-wait": 70 * SEC}
    # FINs are not rate-limited (tcp_oow_rate_limited skips segments that occupy sequence space)
    c.advance(10 * SEC + 1 * MS)
    c.psend("F.", seq=c.rcv - 1)
    c.expect(".")
    assert c.conn.timers == {"time-wait": 70 * SEC + 1 * MS}
    c.advance(70 * SEC + 1 * MS)
    assert c.conn.state is State.CLOSED


def test_time_wait_timestamps_on_the_ack() -> None:
    c = time_wait_client(ts=True)
    c.advance(5 * SEC)
    c.psend("F.", seq=c.rcv - 1)
    # tcp_timewait_state_process(): TS.Recent is only taken from an in-window segment, so the ACK still
    # echoes the TS val of the FIN that brought us here (7300), not the retransmission's
    c.expect(".", options=ts_opts(5000, 7300))


# ---------------------------------------------------------------------------------------------------------
# delayed ACK and quick-ACK (Linux tcp_event_data_recv, __tcp_ack_snd_check, tcp_send_delayed_ack)


def test_quickack_for_the_first_16_segments_then_delayed_ack_40ms() -> None:
    c = server_established(NO_TS)
    c.win = None  # the window field follows the buffer model (truesize in Linux): not checked here
    t = 300 * MS
    # full-sized segments 100 ms apart (no PSH): each of the first 16 is ACKed at once
    # (quickacks = min(rcv_wnd / (2 * rcv_mss), TCP_MAX_QUICKACKS) = 16)
    for _ in range(16):
        c.advance(t)
        c.psend(".", b"p" * 1460)
        c.rcv += 1460
        c.expect(".")
        assert c.sock.recv(2000) == b"p" * 1460  # the application keeps up: the window stays open
        t += 100 * MS
    # the 17th: no longer in quick-ACK mode, the ACK waits ATO = 40 ms
    c.advance(t)
    c.psend(".", b"p" * 1460)
    c.rcv += 1460
    c.expect_nothing()
    assert c.conn.timers == {"delayed-ack": t + 40 * MS}
    c.advance(t + 40 * MS - 1)
    c.expect_nothing()
    c.advance(t + 40 * MS)
    c.expect(".")
    assert c.conn.timers == {}


def test_second_full_segment_is_acked_at_once_after_quickack_mode() -> None:
    c = server_established(NO_TS)
    c.win = None  # the window field follows the buffer model (truesize in Linux): not checked here
    t = 300 * MS
    for _ in range(16):
        c.advance(t)
        c.psend(".", b"p" * 1460)
        c.rcv += 1460
        c.expect(".")
        assert c.sock.recv(2000) == b"p" * 1460  # the application keeps up: the window stays open
        t += 100 * MS
    c.advance(t)
    c.psend(".", b"p" * 1460)
    c.rcv += 1460
    c.expect_nothing()
    assert c.sock.recv(2000) == b"p" * 1460
    # more than one full segment unacknowledged: ACK now (RFC 5681 §4.2 "every second full segment")
    c.advance(t + 10 * MS)
    c.psend(".", b"p" * 1460)
    c.rcv += 1460
    c.expect(".")
    assert "delayed-ack" not in c.conn.timers


def test_delayed_ack_is_carried_by_a_reply() -> None:
    c = server_established(NO_TS)
    # after a request/reply exchange the connection is interactive (ping-pong)
    c.advance(300 * MS)
    c.psend("P.", b"req1")
    c.rcv += 4
    c.expect(".")
    c.sock.recv(10)
    c.sock.send(b"rep1")
    c.expect("P.", b"rep1")
    c.snd += 4
    c.advance(400 * MS)
    c.psend("P.", b"req2")
    c.rcv += 4
    c.expect_nothing()  # ping-pong: the ACK is delayed...
    assert c.conn.timers["delayed-ack"] == 440 * MS
    c.advance(420 * MS)
    c.sock.recv(10)
    c.sock.send(b"rep2")
    c.expect("P.", b"rep2")  # ...and rides on the reply
    assert "delayed-ack" not in c.conn.timers


def test_out_of_order_segment_is_acked_at_once() -> None:
    c = server_established(NO_TS)
    c.win = None
    c.advance(300 * MS)
    # a gap: RFC 5681 §4.2 / RFC 9293 §3.10.7.4: an out-of-order segment triggers an immediate dup ACK
    c.psend(".", b"o" * 100, seq=c.rcv + 100)
    c.expect(".", options=[NOP, NOP, SACK((c.rcv + 100, c.rcv + 200))])  # ack still RCV.NXT, with SACK
    c.psend(".", b"i" * 100)
    c.rcv += 200
    c.expect(".", options=[])  # gap filled: ACK at once, no SACK block left
    assert c.sock.recv(1000) == b"i" * 100 + b"o" * 100
