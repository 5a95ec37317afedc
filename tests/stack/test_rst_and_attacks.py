"""RST processing and blind-attack resistance (RFC 9293 §3.10.7.4, RFC 5961, RFC 1337; Linux
tcp_validate_incoming(), tcp_ack(), tcp_send_challenge_ack(), tcp_timewait_state_process())."""

from __future__ import annotations

import errno
import socket as pysocket

import pytest

from stack import MS, SEC, SegmentDropped, State

from .helpers import (
    ALL,
    NO_TS,
    PEER_ISN,
    SUT_ISS,
    Conn,
    Peer,
    client_established,
    make_host,
    server_established,
    server_listen,
    ts_opts,
)


def drops(c: Conn) -> list[str]:
    out: list[str] = []
    c.host.subscribe(lambda ev: out.append(ev.reason) if isinstance(ev, SegmentDropped) else None)
    return out


def with_data_exchanged(c: Conn) -> None:
    """100 bytes each way, all ACKed: SND.UNA = SND.NXT = 1101, RCV.NXT = 5101."""
    c.advance(300 * MS)
    c.psend("P.", b"i" * 100)
    c.rcv += 100
    c.expect(".")
    assert c.sock.recv(1000) == b"i" * 100
    c.sock.send(b"o" * 100)
    c.expect("P.", b"o" * 100)
    c.snd += 100
    c.advance(400 * MS)
    c.psend(".")
    c.expect_nothing()


def test_rst_at_rcv_nxt_resets_then_recv_reports_once_and_send_gets_epipe() -> None:
    c = server_established(NO_TS)
    with_data_exchanged(c)
    c.advance(500 * MS)
    c.psend("R", ack=0, win=0)
    c.expect_nothing()  # never answer a RST
    assert c.sock.state is State.CLOSED
    assert c.host.next_deadline() is None
    assert [s.state for s in c.host.connections()] == [State.LISTEN]
    with pytest.raises(ConnectionResetError):
        c.sock.recv(10)
    assert c.sock.recv(10) == b""  # the error is reported once; then end of stream
    with pytest.raises(BrokenPipeError):
        c.sock.send(b"x")


def test_rst_then_send_first_gets_econnreset_then_epipe() -> None:
    # Linux tcp_sendmsg -> sk_stream_error(): sock_error() first (ECONNRESET), EPIPE afterwards
    c = client_established(NO_TS)
    c.advance(2 * SEC)
    c.psend("R.", win=0)
    assert c.sock.state is State.CLOSED
    assert c.sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_ERROR) == errno.ECONNRESET
    with pytest.raises(BrokenPipeError):
        c.sock.send(b"x")
    c2 = client_established(NO_TS)
    c2.psend("R.", win=0)
    with pytest.raises(ConnectionResetError):
        c2.sock.send(b"x")
    with pytest.raises(BrokenPipeError):
        c2.sock.send(b"x")
    assert c2.sock.recv(10) == b""


def test_unread_data_is_still_delivered_after_a_rst() -> None:
    c = server_established(NO_TS)
    c.advance(300 * MS)
    c.psend("P.", b"last words")
    c.rcv += 10
    c.expect(".")
    c.psend("R", ack=0, win=0)
    assert c.sock.recv(100) == b"last words"
    with pytest.raises(ConnectionResetError):
        c.sock.recv(100)


def test_rst_in_close_wait_reports_epipe() -> None:
    c = server_established(NO_TS)
    c.advance(300 * MS)
    c.psend("F.")
    c.rcv += 1
    c.expect(".")
    c.psend("R", ack=0, win=0)
    assert c.sock.state is State.CLOSED
    # Linux tcp_reset(): CLOSE_WAIT -> EPIPE
    assert c.sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_ERROR) == errno.EPIPE


def test_rst_at_rcv_nxt_minus_1_after_a_fin_resets() -> None:
    # Linux tcp_reset_check(): RST with SEQ = RCV.NXT - 1 in CLOSE_WAIT / LAST_ACK / CLOSING (the
    # "FIN then RST with the FIN's sequence number" of macOS)
    c = server_established(NO_TS)
    c.advance(300 * MS)
    c.psend("F.")
    c.rcv += 1
    c.expect(".")
    c.psend("R", seq=c.rcv - 1, ack=0, win=0)
    c.expect_nothing()
    assert c.sock.state is State.CLOSED


def test_in_window_rst_gets_a_rate_limited_challenge_ack() -> None:
    c = server_established(ALL)
    reasons = drops(c)
    with_data_exchanged(c)
    c.advance(1 * SEC)
    # RFC 5961 §3.2: in the window but not exactly RCV.NXT -> <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
    # (the RSTs carry no TS option here; the ACK echoes TS.Recent of the last valid segment)
    c.peer.send("R", c.rcv + 1000, 0, 0)
    c.expect(".")
    assert c.sock.state is State.ESTABLISHED
    # a second one within 500 ms: nothing (per-socket tcp_invalid_ratelimit)
    c.advance(1 * SEC + 499 * MS)
    c.peer.send("R", c.rcv + 2000, 0, 0)
    c.expect_nothing()
    # 500 ms after the first: again one challenge ACK
    c.advance(1500 * MS)
    c.peer.send("R", c.rcv + 3000, 0, 0)
    c.expect(".")
    assert c.sock.state is State.ESTABLISHED
    assert reasons.count("rst-in-window-challenged") == 3
    # the genuine peer, challenged, answers with a RST at exactly RCV.NXT: that one resets
    c.peer.send("R", c.rcv, 0, 0)
    assert c.sock.state is State.CLOSED


def test_rst_out_of_window_is_ignored_silently() -> None:
    c = server_established(NO_TS)
    with_data_exchanged(c)
    c.advance(1 * SEC)
    c.psend("R", seq=c.rcv + 10_000_000, ack=0, win=0)  # beyond RCV.NXT + RCV.WND
    c.psend("R", seq=c.rcv - 10, ack=0, win=0)  # before RCV.NXT
    c.psend("R.", seq=c.rcv - 10, win=0)
    c.expect_nothing()
    assert c.sock.state is State.ESTABLISHED
    assert c.host.next_deadline() is None


def test_syn_in_established_gets_a_challenge_ack() -> None:
    c = server_established(NO_TS)
    with_data_exchanged(c)
    c.advance(1 * SEC)
    # RFC 5961 §4.2: any SYN (in window or not) -> challenge ACK, the connection is untouched
    c.psend("S", seq=c.rcv + 5, ack=0, win=65535)
    c.expect(".")
    c.advance(2 * SEC)
    c.psend("S", seq=123456, ack=0, win=65535)
    c.expect(".")
    assert c.sock.state is State.ESTABLISHED
    # and shares the rate limit with other out-of-window replies
    c.advance(2100 * MS)
    c.psend("S", seq=7, ack=0, win=65535)
    c.expect_nothing()


def test_challenge_ack_shares_the_rate_limit_with_dup_acks() -> None:
    # tcp_send_challenge_ack() and tcp_send_dupack() both use tp->last_oow_ack_time
    c = server_established(NO_TS)
    with_data_exchanged(c)
    c.advance(1 * SEC)
    c.psend(".", seq=c.rcv + 10_000_000)  # out-of-window bare ACK: dup ACK
    c.expect(".")
    c.advance(1100 * MS)
    c.psend("R", seq=c.rcv + 10, ack=0, win=0)  # 100 ms later: the challenge ACK is suppressed
    c.expect_nothing()
    c.advance(1500 * MS)
    c.psend("R", seq=c.rcv + 10, ack=0, win=0)
    c.expect(".")


def test_out_of_window_data_gets_a_dup_ack_every_time() -> None:
    # tcp_oow_rate_limited() does not limit segments that occupy sequence space
    c = server_established(NO_TS)
    with_data_exchanged(c)
    for i in range(3):
        c.advance((1000 + i) * MS)
        c.psend("P.", b"old", seq=c.rcv - 50)  # an old duplicate
        c.expect(".")


def test_ack_of_unsent_data_is_dropped_silently_in_established() -> None:
    c = server_established(NO_TS)
    reasons = drops(c)
    with_data_exchanged(c)
    c.advance(1 * SEC)
    c.psend(".", ack=c.snd + 1000)
    c.psend("P.", b"data with a bad ack", ack=c.snd + 1000)
    c.expect_nothing()
    assert reasons == ["ack-of-unsent-data", "ack-of-unsent-data"]
    assert c.sock.state is State.ESTABLISHED
    with pytest.raises(BlockingIOError):
        c.sock.recv(100)  # the whole segment was discarded
    snap = c.sock.snapshot()
    assert (snap.snd_una, snap.rcv_nxt) == (c.snd, c.rcv)


def test_ack_of_unsent_data_in_close_wait_gets_a_challenge_ack() -> None:
    # tcp_rcv_state_process(): "if ((int)reason < 0) tcp_send_challenge_ack(sk)" outside ESTABLISHED
    c = server_established(NO_TS)
    with_data_exchanged(c)
    c.advance(1 * SEC)
    c.psend("F.")
    c.rcv += 1
    c.advance(1040 * MS)
    c.expect(".")  # the delayed ACK of the FIN (ping-pong mode)
    c.advance(2 * SEC)
    c.psend(".", ack=c.snd + 1000)
    c.expect(".")
    assert c.sock.state is State.CLOSE_WAIT


def test_old_ack_below_the_window_gets_a_challenge_ack() -> None:
    c = server_established(NO_TS)
    reasons = drops(c)
    with_data_exchanged(c)
    # 100 bytes acked so far: Linux's window for old ACKs is min(max_window, bytes_acked) = 100
    c.advance(1 * SEC)
    c.psend(".", ack=c.snd - 100)  # SND.UNA - 100: still acceptable, silently ignored (old duplicate)
    c.expect_nothing()
    c.psend(".", ack=c.snd - 101)  # RFC 5961 §5.2: older than that -> challenge ACK, dropped
    c.expect(".")
    assert reasons == ["ack-too-old"]
    c.advance(2 * SEC)
    c.psend("P.", b"blind data", ack=c.snd - 5000)
    c.expect(".")
    with pytest.raises(BlockingIOError):
        c.sock.recv(100)  # the injected data was not accepted


def test_old_ack_with_data_inside_the_window_is_accepted() -> None:
    c = server_established(NO_TS)
    with_data_exchanged(c)
    c.advance(1 * SEC)
    c.psend("P.", b"fresh", ack=c.snd - 50)
    c.rcv += 5
    assert c.sock.recv(100) == b"fresh"
    c.advance(1040 * MS)
    c.expect(".")  # delayed ACK (the connection is interactive)


def test_paws_old_timestamp_gets_a_dup_ack_and_is_dropped_but_rst_passes() -> None:
    c = server_established(ALL)
    reasons = drops(c)
    with_data_exchanged(c)
    c.advance(1 * SEC)
    # RFC 7323 §5.3: a TSval older than TS.Recent -> drop, ACK
    c.peer.send("P.", c.rcv, c.snd, 512, b"stale", ts_opts(5, c.peer.last_ts_val))
    c.expect(".")
    assert reasons == ["paws"]
    with pytest.raises(BlockingIOError):
        c.sock.recv(10)
    # "a RST is accepted even if it did not pass PAWS" (tcp_validate_incoming)
    c.peer.send("R", c.rcv, 0, 0, b"", ts_opts(5, 0))
    assert c.sock.state is State.CLOSED


def time_wait(**settings: int) -> Conn:
    c = client_established(NO_TS, t0=0, **settings)
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


def test_rst_kills_time_wait_with_rfc1337_off() -> None:
    c = time_wait()
    c.advance(10 * SEC)
    c.psend("R", win=0, ack=0)
    c.expect_nothing()
    assert c.conn.state is State.CLOSED
    assert c.host.connections() == [] and c.host.next_deadline() is None
    # the 4-tuple is free: the same local port can connect again
    s = c.host.socket()
    s.bind(("0.0.0.0", c.peer.sut_port))


def test_rst_is_ignored_in_time_wait_with_rfc1337_on() -> None:
    c = time_wait(tcp_rfc1337=1)
    c.advance(10 * SEC)
    c.psend("R", win=0, ack=0)
    c.expect_nothing()
    assert c.conn.state is State.TIME_WAIT
    assert c.conn.timers == {"time-wait": 60_300 * MS}  # not restarted by the RST
    c.advance(60_300 * MS)
    assert c.conn.state is State.CLOSED


def test_out_of_window_rst_in_time_wait_is_ignored() -> None:
    c = time_wait()
    c.advance(10 * SEC)
    c.psend("R", seq=c.rcv + 100, win=0, ack=0)
    c.expect_nothing()
    assert c.conn.state is State.TIME_WAIT


def test_rst_in_syn_rcvd_removes_the_request() -> None:
    host = make_host()
    peer = Peer(host)
    lsock = server_listen(host)
    seen: list[tuple[State, State]] = []
    host.subscribe(lambda ev: seen.append((ev.old, ev.new)) if hasattr(ev, "new") else None)
    peer.send("S", PEER_ISN, 0, 65535)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1)
    assert [s.state for s in host.connections()] == [State.LISTEN, State.SYN_RCVD]
    peer.advance(100 * MS)
    peer.send("R", PEER_ISN + 1, 0, 0)
    peer.expect_nothing()
    # RFC 9293 §3.10.7.4: SYN-RECEIVED from a passive OPEN returns to LISTEN; Linux drops the request
    assert [s.state for s in host.connections()] == [State.LISTEN]
    assert seen == [(State.LISTEN, State.SYN_RCVD), (State.SYN_RCVD, State.LISTEN)]
    assert host.next_deadline() is None
    with pytest.raises(BlockingIOError):
        lsock.accept()
    peer.advance(2 * SEC)
    peer.expect_nothing()  # no SYN-ACK retransmission any more


def test_out_of_window_rst_in_syn_rcvd_is_ignored() -> None:
    host = make_host()
    peer = Peer(host)
    server_listen(host)
    peer.send("S", PEER_ISN, 0, 65535)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1)
    peer.send("R", PEER_ISN + 1_000_000, 0, 0)
    peer.expect_nothing()
    assert [s.state for s in host.connections()] == [State.LISTEN, State.SYN_RCVD]


def test_bad_ack_for_a_request_gets_rst_and_keeps_the_request() -> None:
    host = make_host()
    peer = Peer(host)
    server_listen(host)
    peer.send("S", PEER_ISN, 0, 65535)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1)
    peer.send(".", PEER_ISN + 1, SUT_ISS + 77, 512)
    peer.expect("R", SUT_ISS + 77, 0, 0)
    assert [s.state for s in host.connections()] == [State.LISTEN, State.SYN_RCVD]
    peer.send(".", PEER_ISN + 1, SUT_ISS + 1, 512)
    assert [s.state for s in host.connections()] == [State.LISTEN, State.ESTABLISHED]


def test_challenge_ack_rate_limit_is_per_connection() -> None:
    host = make_host()
    a = server_established(NO_TS, host=host)
    b = Peer(host, port=40001)
    b.send("S", PEER_ISN, 0, 65535, b"", NO_TS.encode(0))
    b.expect("S.", SUT_ISS, PEER_ISN + 1)
    b.send(".", PEER_ISN + 1, SUT_ISS + 1, 512)
    a.listener.accept()
    a.advance(1 * SEC)
    a.psend("R", seq=a.rcv + 100, ack=0, win=0)
    a.expect(".")
    # the other connection's budget is its own (tcp_invalid_ratelimit is per socket)
    b.send("R", PEER_ISN + 101, 0, 0)
    b.expect(".", SUT_ISS + 1, PEER_ISN + 1, 502)
