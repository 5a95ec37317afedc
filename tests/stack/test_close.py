"""Connection teardown, exact segments (scenarios 13, 15; RFC 9293 §3.6, §3.10.4, §3.10.7.4; Linux
tcp_close(), tcp_fin(), tcp_time_wait())."""

from __future__ import annotations

import errno
import socket as pysocket

import pytest

from stack import MS, SEC, State, StateChanged

from .helpers import (
    ALL,
    NO_TS,
    PEER_IP,
    PEER_ISN,
    PEER_PORT,
    SUT_ISS,
    SUT_PORT,
    Conn,
    Options,
    Peer,
    client_established,
    make_host,
    server_established,
)

SACK_WS = Options(ts=False)  # the scenarios' peer: <mss 1460,sackOK,nop,nop,nop,wscale 7>


def transitions(c: Conn) -> list[tuple[State, State]]:
    out: list[tuple[State, State]] = []
    c.host.subscribe(lambda ev: out.append((ev.old, ev.new)) if isinstance(ev, StateChanged) else None)
    return out


def test_active_close_four_way_scenario_13() -> None:
    c = client_established(NO_TS, t0=0)
    seen = transitions(c)
    c.advance(100 * MS)
    assert c.sock.send(b"a" * 100) == 100
    c.expect("P.", b"a" * 100)
    c.snd += 100
    c.advance(200 * MS)
    c.psend(".")
    c.expect_nothing()
    # segment 1: our FIN at seq 1101
    c.sock.shutdown(pysocket.SHUT_WR)
    c.expect("F.")
    assert c.sock.state is State.FIN_WAIT_1
    with pytest.raises(BrokenPipeError):
        c.sock.send(b"x" * 10)
    # RTO after two 100 ms samples (srtt 100 ms, rttvar 43.75 ms -> 100 + max(175, 200) = 300 ms)
    assert c.conn.timers == {"retransmit": 500 * MS}
    c.snd += 1
    # segment 2: the peer ACKs the FIN (FIN counts one) -> FIN_WAIT_2, no timer (not orphaned)
    c.advance(300 * MS)
    c.psend(".")
    c.expect_nothing()
    assert c.sock.state is State.FIN_WAIT_2
    assert c.conn.timers == {} and c.host.next_deadline() is None
    # data still flows to us in FIN_WAIT_2 and is ACKed at once (quick-ACK)
    c.advance(400 * MS)
    c.psend("P.", b"b" * 50)
    c.rcv += 50
    c.expect(".")
    assert c.sock.recv(1000) == b"b" * 50
    assert c.sock.state is State.FIN_WAIT_2
    # segment 3: the peer's FIN; segment 4: our ACK at once -> TIME_WAIT
    c.advance(500 * MS)
    c.psend("F.")
    c.rcv += 1
    c.expect(".")
    assert c.sock.state is State.TIME_WAIT
    assert c.sock.recv(1000) == b""
    assert c.conn.timers == {"time-wait": 60_500 * MS}
    c.sock.close()
    assert c.conn.state is State.TIME_WAIT
    assert [s.state for s in c.host.connections()] == [State.TIME_WAIT]
    c.advance(60_500 * MS - 1)
    assert c.conn.state is State.TIME_WAIT
    c.advance(60_500 * MS)
    assert c.conn.state is State.CLOSED
    assert c.host.connections() == [] and c.host.next_deadline() is None
    c.expect_nothing()
    assert seen == [
        (State.ESTABLISHED, State.FIN_WAIT_1),
        (State.FIN_WAIT_1, State.FIN_WAIT_2),
        (State.FIN_WAIT_2, State.TIME_WAIT),
        (State.TIME_WAIT, State.CLOSED),
    ]


def request_response(c: Conn) -> None:
    """Scenario 15A's exchange: the peer's 100-byte request, our immediate ACK, our 100-byte response."""
    c.advance(300 * MS)
    c.psend("P.", b"q" * 100)
    c.rcv += 100
    c.expect(".")  # quick-ACK for the first data segment
    assert c.sock.recv(1000) == b"q" * 100
    assert c.sock.send(b"r" * 100) == 100
    c.expect("P.", b"r" * 100)
    c.snd += 100
    c.advance(400 * MS)
    c.psend(".")
    c.expect_nothing()


def test_three_segment_close_part_a_delayed_ack_rides_on_our_fin() -> None:
    c = server_established(SACK_WS)
    seen = transitions(c)
    request_response(c)
    # segment 1: the peer's FIN. Ping-pong mode: the ACK is delayed by ATO = 40 ms (TCP_DELACK_MIN)
    c.advance(500 * MS)
    c.psend("F.")
    c.rcv += 1
    c.expect_nothing()
    assert c.sock.state is State.CLOSE_WAIT
    assert c.conn.timers == {"delayed-ack": 540 * MS}
    # ... the application reads EOF and closes 10 ms later: one FIN that also ACKs the peer's FIN
    c.advance(510 * MS)
    assert c.sock.recv(1000) == b""
    c.sock.close()
    c.expect("F.")
    c.snd += 1
    assert c.conn.state is State.LAST_ACK
    assert "delayed-ack" not in c.conn.timers and "retransmit" in c.conn.timers
    c.advance(540 * MS)
    c.expect_nothing()  # no separate ACK is ever sent
    # segment 3: the peer's ACK of our FIN -> CLOSED, the 4-tuple is free
    c.advance(610 * MS)
    c.psend(".")
    c.expect_nothing()
    assert c.conn.state is State.CLOSED
    assert [s.state for s in c.host.connections()] == [State.LISTEN]
    assert c.host.next_deadline() is None
    assert seen == [
        (State.ESTABLISHED, State.CLOSE_WAIT),
        (State.CLOSE_WAIT, State.LAST_ACK),
        (State.LAST_ACK, State.CLOSED),
    ]
    # the peer's next segment finds nothing: <SEQ=SEG.ACK><CTL=RST>
    c.advance(620 * MS)
    c.psend(".")
    c.expect("R", seq=c.snd, ack=0, win=0)


def test_four_segment_close_when_the_app_waits_longer_than_the_delayed_ack() -> None:
    c = server_established(SACK_WS)
    request_response(c)
    c.advance(500 * MS)
    c.psend("F.")
    c.rcv += 1
    c.advance(540 * MS - 1)
    c.expect_nothing()
    # the delayed ACK fires exactly 40 ms after the FIN
    c.advance(540 * MS)
    c.expect(".")
    assert c.conn.timers == {}
    c.advance(600 * MS)
    c.sock.close()
    c.expect("F.")
    c.snd += 1
    assert c.conn.state is State.LAST_ACK
    c.advance(700 * MS)
    c.psend(".")
    assert c.conn.state is State.CLOSED
    c.expect_nothing()


def test_fin_right_after_the_handshake_is_acked_at_once() -> None:
    # No data yet: ATO is 0, so Linux's delayed ACK fires at once (packetdrill close-remote-fin-then-close)
    c = server_established(SACK_WS)
    c.advance(210 * MS)
    c.psend("F.")
    c.rcv += 1
    c.expect(".")
    assert c.sock.state is State.CLOSE_WAIT
    c.advance(220 * MS)
    c.sock.close()
    c.expect("F.")
    c.snd += 1
    c.advance(230 * MS)
    c.psend(".")
    assert c.conn.state is State.CLOSED
    c.psend(".")
    c.expect("R", seq=c.snd, ack=0, win=0)


def test_three_segment_close_part_b_fin_ack_in_fin_wait_1() -> None:
    c = client_established(SACK_WS, t0=0)
    seen = transitions(c)
    c.advance(200 * MS)
    c.sock.close()
    c.expect("F.")
    c.snd += 1
    assert c.conn.state is State.FIN_WAIT_1 and c.conn.orphan
    # segment 2: the peer's FIN also ACKs ours -> TIME_WAIT directly, FIN_WAIT_2 skipped
    c.advance(300 * MS)
    c.psend("F.")
    c.rcv += 1
    c.expect(".")
    assert c.conn.state is State.TIME_WAIT
    assert c.conn.timers == {"time-wait": 60_300 * MS}
    assert seen == [(State.ESTABLISHED, State.FIN_WAIT_1), (State.FIN_WAIT_1, State.TIME_WAIT)]


def test_simultaneous_close_goes_through_closing() -> None:
    c = client_established(NO_TS, t0=0)
    seen = transitions(c)
    c.advance(200 * MS)
    c.sock.close()
    c.expect("F.")
    # the peer's FIN crosses ours (it does not ACK our FIN)
    c.advance(210 * MS)
    c.psend("F.")
    c.snd += 1
    c.rcv += 1
    c.expect(".")  # ACKed at once
    assert c.conn.state is State.CLOSING
    assert "retransmit" in c.conn.timers
    c.advance(220 * MS)
    c.psend(".")
    c.expect_nothing()
    assert c.conn.state is State.TIME_WAIT
    assert c.conn.timers == {"time-wait": 60_220 * MS}
    assert seen == [
        (State.ESTABLISHED, State.FIN_WAIT_1),
        (State.FIN_WAIT_1, State.CLOSING),
        (State.CLOSING, State.TIME_WAIT),
    ]


def test_fin_retransmitted_in_closing() -> None:
    c = client_established(NO_TS, t0=0)
    c.advance(200 * MS)
    c.sock.close()
    c.expect("F.")
    c.advance(210 * MS)
    c.psend("F.")
    c.rcv += 1
    c.expect(".", ack=c.rcv, seq=c.snd + 1)
    # our FIN (sent at 200 ms, RTO 300 ms) is lost: retransmitted at 500 ms, unchanged
    c.advance(500 * MS)
    c.expect("F.")
    c.snd += 1
    c.advance(510 * MS)
    c.psend(".")
    assert c.conn.state is State.TIME_WAIT


def test_close_wait_lasts_forever_if_the_app_never_closes() -> None:
    c = server_established(NO_TS)
    c.advance(300 * MS)
    c.psend("F.")
    c.rcv += 1
    c.expect(".")
    assert c.sock.state is State.CLOSE_WAIT
    assert c.host.next_deadline() is None
    c.advance(10 * 86400 * SEC)
    assert c.sock.state is State.CLOSE_WAIT
    c.expect_nothing()
    # the application can still send in CLOSE_WAIT (half-close)
    assert c.sock.send(b"late") == 4
    c.expect("P.", b"late")
    assert c.sock.recv(10) == b""


def test_close_in_syn_sent_sends_nothing() -> None:
    host = make_host()
    peer = Peer(host, port=SUT_PORT, sut_port=PEER_PORT)
    sock = host.socket()
    sock.bind(("0.0.0.0", PEER_PORT))
    sock.connect_ex((PEER_IP, SUT_PORT))
    peer.expect("S", SUT_ISS, 0)
    conn = sock.conn
    sock.close()
    assert conn.state is State.CLOSED
    assert host.next_deadline() is None and host.connections() == []
    peer.advance(10 * SEC)
    peer.expect_nothing()
    # a late SYN-ACK finds no connection: <SEQ=SEG.ACK><CTL=RST>
    peer.send("S.", PEER_ISN, SUT_ISS + 1, 65535)
    peer.expect("R", SUT_ISS + 1, 0, 0)
    # the port is free again
    again = host.socket()
    again.bind(("0.0.0.0", PEER_PORT))


def test_close_in_syn_rcvd_of_a_simultaneous_open_sends_fin() -> None:
    host = make_host()
    peer = Peer(host, port=SUT_PORT, sut_port=PEER_PORT)
    sock = host.socket()
    sock.bind(("0.0.0.0", PEER_PORT))
    sock.connect_ex((PEER_IP, SUT_PORT))
    peer.expect("S", SUT_ISS, 0)
    peer.send("S", PEER_ISN, 0, 65535, b"", NO_TS.encode(0))
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 64240)
    conn = sock.conn
    # RFC 9293 §3.10.4 SYN-RECEIVED CLOSE with nothing queued: send FIN, FIN-WAIT-1 (Linux tcp_send_fin)
    sock.close()
    peer.expect("F.", SUT_ISS + 1, PEER_ISN + 1, 502, options=[])
    assert conn.state is State.FIN_WAIT_1
    # the peer ACKs SYN and FIN: an orphan in FIN_WAIT_2, reaped after tcp_fin_timeout
    peer.advance(10 * MS)
    peer.send(".", PEER_ISN + 1, SUT_ISS + 2, 512)
    peer.expect_nothing()
    assert conn.state is State.FIN_WAIT_2
    assert conn.timers == {"fin-wait-2": 60_010 * MS}


def test_half_close_shut_wr_with_data_flowing_the_other_way() -> None:
    c = server_established(NO_TS)
    c.win = None  # the window shrinks with the buffered data (receive-buffer model, not checked here)
    c.advance(300 * MS)
    c.sock.shutdown(pysocket.SHUT_WR)
    c.expect("F.")
    c.snd += 1
    c.advance(400 * MS)
    c.psend(".")
    assert c.sock.state is State.FIN_WAIT_2
    # 3 full segments from the peer: quick-ACK mode ACKs each at once
    for i in range(3):
        c.advance((410 + i) * MS)
        c.psend(".", bytes([65 + i]) * 1460)
        c.rcv += 1460
        c.expect(".")
    assert c.sock.recv(10_000) == b"A" * 1460 + b"B" * 1460 + b"C" * 1460
    with pytest.raises(BlockingIOError):
        c.sock.recv(10)
    c.advance(500 * MS)
    c.psend("FP.", b"end")
    c.rcv += 4
    c.expect(".")
    assert c.sock.state is State.TIME_WAIT
    assert c.sock.recv(100) == b"end"
    assert c.sock.recv(100) == b""


def test_last_ack_fin_retransmission_then_closed() -> None:
    c = server_established(NO_TS)
    c.advance(300 * MS)
    c.psend("F.")
    c.rcv += 1
    c.expect(".")
    c.sock.close()
    c.expect("F.")
    assert c.conn.state is State.LAST_ACK
    # srtt 100 ms, RTO 300 ms: the FIN is retransmitted at 600 ms, then 1.2 s later
    assert c.conn.timers == {"retransmit": 600 * MS}
    c.advance(600 * MS)
    c.expect("F.")
    assert c.conn.timers == {"retransmit": 1200 * MS}
    c.advance(1200 * MS)
    c.expect("F.")
    c.snd += 1
    c.advance(1250 * MS)
    c.psend(".")
    assert c.conn.state is State.CLOSED
    c.expect_nothing()
    assert c.host.next_deadline() is None


def test_orphaned_fin_wait_2_killed_after_tcp_fin_timeout() -> None:
    c = client_established(NO_TS, t0=0)
    seen = transitions(c)
    c.advance(200 * MS)
    c.sock.close()
    c.expect("F.")
    c.snd += 1
    c.advance(300 * MS)
    c.psend(".")
    assert c.conn.state is State.FIN_WAIT_2
    # tcp_fin_time(): max(tcp_fin_timeout = 60 s, 3.5 * RTO)
    assert c.conn.timers == {"fin-wait-2": 60_300 * MS}
    assert [s.state for s in c.host.connections()] == [State.FIN_WAIT_2]
    c.advance(60_300 * MS - 1)
    assert c.conn.state is State.FIN_WAIT_2
    c.advance(60_300 * MS)
    c.expect_nothing()  # silently gone, no RST
    assert c.conn.state is State.CLOSED
    assert c.host.connections() == []
    assert seen[-1] == (State.FIN_WAIT_2, State.CLOSED)
    # the peer's late FIN finds nothing: RST <SEQ=SEG.ACK>
    c.psend("F.")
    c.expect("R", ack=0, win=0)


def test_orphaned_fin_wait_2_with_shorter_fin_timeout_setting() -> None:
    c = client_established(NO_TS, t0=0, tcp_fin_timeout=5)
    c.advance(200 * MS)
    c.sock.close()
    c.expect("F.")
    c.snd += 1
    c.advance(300 * MS)
    c.psend(".")
    assert c.conn.timers == {"fin-wait-2": 5300 * MS}
    c.advance(5300 * MS)
    assert c.conn.state is State.CLOSED


def test_orphaned_fin_wait_2_receives_the_fin_and_enters_time_wait() -> None:
    c = client_established(NO_TS, t0=0)
    c.advance(200 * MS)
    c.sock.close()
    c.expect("F.")
    c.snd += 1
    c.advance(300 * MS)
    c.psend(".")
    c.advance(10 * SEC)
    c.psend("F.")
    c.rcv += 1
    c.expect(".")
    assert c.conn.state is State.TIME_WAIT
    assert c.conn.timers == {"time-wait": 70 * SEC}


def test_orphaned_fin_wait_2_resets_on_new_data() -> None:
    # RFC 9293 §3.10.7.4 / RFC 1122 §4.2.2.13: data for a closed reading side -> RST
    c = client_established(NO_TS, t0=0)
    c.advance(200 * MS)
    c.sock.close()
    c.expect("F.")
    c.snd += 1
    c.advance(300 * MS)
    c.psend(".")
    c.advance(400 * MS)
    c.psend("P.", b"late data")
    c.expect("R", seq=c.snd, ack=0, win=0)
    assert c.conn.state is State.CLOSED


def test_non_orphan_fin_wait_2_lives_on() -> None:
    c = client_established(NO_TS, t0=0)
    c.advance(200 * MS)
    c.sock.shutdown(pysocket.SHUT_WR)
    c.expect("F.")
    c.snd += 1
    c.advance(300 * MS)
    c.psend(".")
    assert c.sock.state is State.FIN_WAIT_2
    assert c.host.next_deadline() is None
    c.advance(3600 * SEC)
    assert c.sock.state is State.FIN_WAIT_2
    c.expect_nothing()
    # closing it later makes it an orphan with the FIN_WAIT_2 timer from then on
    c.sock.close()
    assert c.conn.timers == {"fin-wait-2": 3660 * SEC}


def test_close_with_unsent_data_sends_data_then_fin() -> None:
    c = server_established(ALL)
    c.win = 510
    c.advance(300 * MS)
    assert c.sock.send(b"d" * 3000) == 3000
    a, b, d = c.peer.expect_many(3)
    c.peer.check(a, ".", c.snd, c.rcv, 510, b"d" * 1448, c.sut_opts())
    c.peer.check(b, ".", c.snd + 1448, c.rcv, 510, b"d" * 1448, c.sut_opts())
    c.peer.check(d, "P.", c.snd + 2896, c.rcv, 510, b"d" * 104, c.sut_opts())
    c.sock.close()
    c.snd += 3000
    c.expect("F.")
    assert c.conn.state is State.FIN_WAIT_1
    c.snd += 1
    c.advance(400 * MS)
    c.psend(".")
    assert c.conn.state is State.FIN_WAIT_2


def test_shutdown_rd_then_data_is_still_acked() -> None:
    c = server_established(NO_TS)
    c.sock.shutdown(pysocket.SHUT_RD)
    assert c.sock.recv(10) == b""
    c.advance(300 * MS)
    c.psend("P.", b"zz")
    c.rcv += 2
    c.expect(".")


def test_shutdown_on_unconnected_socket_is_enotconn() -> None:
    host = make_host()
    sock = host.socket()
    with pytest.raises(OSError) as exc:
        sock.shutdown(pysocket.SHUT_WR)
    assert exc.value.errno == errno.ENOTCONN
