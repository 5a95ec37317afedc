"""Keepalive (scenario 23; RFC 1122 §4.2.3.6; Linux tcp_keepalive_timer(), tcp_xmit_probe_skb()) and
SO_LINGER / abortive close (scenario 21; RFC 9293 §3.10.5; RFC 2525 §2.17; Linux __tcp_close())."""

from __future__ import annotations

import errno
import socket as pysocket

import pytest

from stack import MS, SEC, State

from .helpers import (
    ALL,
    NO_TS,
    SUT_PORT,
    Conn,
    Options,
    linger,
    server_established,
)

SCENARIO_PEER = Options(ts=False)


def keepalive_server(offered: Options = SCENARIO_PEER, **settings: int) -> Conn:
    """Scenario 23: accept() at 0.2 s, SO_KEEPALIVE set at once; nothing else is ever sent."""
    c = server_established(offered, **settings)
    c.sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_KEEPALIVE, 1)
    assert c.sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_KEEPALIVE) == 1
    return c


def test_keepalive_probe_after_7200s_answered_then_next_7200s_after_the_answer_scenario_23() -> None:
    c = keepalive_server()
    t0 = 200 * MS
    assert c.conn.timers == {"keepalive": t0 + 7200 * SEC}
    c.advance(t0 + 7200 * SEC - 1)
    c.expect_nothing()
    c.advance(t0 + 7200 * SEC)
    # the probe: SEG.SEQ = SND.NXT - 1, no data, ACK = RCV.NXT (tcp_xmit_probe_skb)
    c.expect(".", seq=c.snd - 1)
    assert c.conn.timers == {"keepalive": t0 + 7275 * SEC}  # tcp_keepalive_intvl if unanswered
    # the peer ACKs the "old" segment
    t1 = t0 + 7200 * SEC + 100 * MS
    c.advance(t1)
    c.psend(".")
    c.expect_nothing()
    assert c.sock.state is State.ESTABLISHED
    assert c.sock.snapshot().probes_out == 0
    # at the 75 s check the connection is not idle long enough: re-armed for 7200 s after the ACK
    c.advance(t0 + 7275 * SEC)
    c.expect_nothing()
    assert c.conn.timers == {"keepalive": t1 + 7200 * SEC}
    c.advance(t1 + 7200 * SEC)
    c.expect(".", seq=c.snd - 1)
    c.advance(t1 + 7200 * SEC + 100 * MS)
    c.psend(".")
    assert c.sock.state is State.ESTABLISHED


def test_keepalive_probe_carries_timestamps() -> None:
    c = keepalive_server(ALL)
    c.advance(200 * MS + 7200 * SEC)
    c.expect(".", seq=c.snd - 1)  # <nop,nop,TS val now ecr TS.Recent>


def test_unanswered_keepalive_probes_every_75s_then_rst_and_etimedout() -> None:
    c = keepalive_server()
    t = 200 * MS + 7200 * SEC
    for i in range(9):
        c.advance(t + i * 75 * SEC)
        c.expect(".", seq=c.snd - 1)
        assert c.sock.snapshot().probes_out == i + 1
    # after tcp_keepalive_probes (9) unanswered probes, the next timeout: RST, then ETIMEDOUT
    c.advance(t + 9 * 75 * SEC - 1)
    c.expect_nothing()
    c.advance(t + 9 * 75 * SEC)
    c.expect("R.", win=502)  # tcp_send_active_reset(): <SEQ=SND.NXT><ACK=RCV.NXT>
    assert c.sock.state is State.CLOSED
    assert c.host.next_deadline() is None
    with pytest.raises(TimeoutError):
        c.sock.recv(10)


def test_keepalive_probe_answered_by_rst_resets_the_connection() -> None:
    c = keepalive_server()
    c.advance(200 * MS + 7200 * SEC)
    c.expect(".", seq=c.snd - 1)
    # the peer rebooted: it answers the probe (SEG.ACK = our RCV.NXT) with <SEQ=SEG.ACK><CTL=RST>
    c.advance(200 * MS + 7200 * SEC + 10 * MS)
    c.psend("R", ack=0, win=0)
    assert c.sock.state is State.CLOSED
    with pytest.raises(ConnectionResetError):
        c.sock.recv(10)


def test_tcp_keepidle_intvl_cnt_are_honoured() -> None:
    c = server_established(SCENARIO_PEER)
    s = c.sock
    s.setsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_KEEPIDLE, 10)
    s.setsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_KEEPINTVL, 2)
    s.setsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_KEEPCNT, 3)
    assert c.conn.timers == {}  # no keepalive until SO_KEEPALIVE
    assert [
        s.getsockopt(pysocket.IPPROTO_TCP, o)
        for o in (pysocket.TCP_KEEPIDLE, pysocket.TCP_KEEPINTVL, pysocket.TCP_KEEPCNT)
    ] == [10, 2, 3]
    c.advance(1 * SEC)
    s.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_KEEPALIVE, 1)
    assert c.conn.timers == {"keepalive": 11 * SEC}  # tcp_set_keepalive(): a full idle time from now
    # the last segment came at 0.2 s: the first check at 11 s finds 10.8 s of idleness
    for t in (11, 13, 15):
        c.advance(t * SEC)
        c.expect(".", seq=c.snd - 1)
    c.advance(17 * SEC)
    c.expect("R.")
    assert s.state is State.CLOSED
    assert s.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_ERROR) == errno.ETIMEDOUT


def test_changing_keepidle_counts_the_idle_time_already_elapsed() -> None:
    # Linux tcp_sock_set_keepidle_locked(): re-arm at (new idle - time already idle)
    c = keepalive_server()
    c.advance(100 * SEC)
    c.sock.setsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_KEEPIDLE, 300)
    assert c.conn.timers == {"keepalive": 300_200 * MS}
    c.advance(300_200 * MS)
    c.expect(".", seq=c.snd - 1)
    # already idle longer than the new value: the probe goes at once
    c.sock.setsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_KEEPIDLE, 60)
    c.advance(300_200 * MS)
    c.expect(".", seq=c.snd - 1)


def test_keepalive_defaults_from_settings_and_off_by_default() -> None:
    c = server_established(
        SCENARIO_PEER, tcp_keepalive_time=30, tcp_keepalive_intvl=5, tcp_keepalive_probes=1
    )
    assert c.sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_KEEPALIVE) == 0  # RFC 1122: MUST default off
    c.advance(100 * SEC)
    c.expect_nothing()
    c.sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_KEEPALIVE, 1)
    c.advance(130 * SEC)
    c.expect(".", seq=c.snd - 1)
    c.advance(135 * SEC)
    c.expect("R.")


def test_keepalive_not_sent_while_data_is_outstanding() -> None:
    c = keepalive_server(tcp_keepalive_time=10)
    c.sock.send(b"x")
    c.expect("P.", b"x")
    # the retransmission timer is in charge: at 10.2 s the keepalive only re-arms
    c.advance(10_200 * MS)
    segs = c.peer.segments()
    assert all(s.payload == b"x" for s in segs)  # retransmissions of the data, no probe


def test_keepalive_off_cancels_the_timer() -> None:
    c = keepalive_server()
    c.sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_KEEPALIVE, 0)
    assert c.conn.timers == {} and c.host.next_deadline() is None


# ---------------------------------------------------------------------------------------------------------
# SO_LINGER


def test_so_linger_zero_aborts_with_rst_scenario_21() -> None:
    c = server_established(SCENARIO_PEER)
    assert c.sock.send(b"a" * 100) == 100
    c.expect("P.", b"a" * 100)
    c.snd += 100
    c.advance(300 * MS)
    c.psend(".")
    c.sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER, linger(1, 0))
    assert c.sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER, 8) == linger(1, 0)
    conn = c.conn
    c.sock.close()
    # one RST <SEQ=SND.NXT><ACK=RCV.NXT> (Linux: R. with the window, like any tcp_transmit_skb segment)
    c.expect("R.")
    assert conn.state is State.CLOSED
    assert [s.state for s in c.host.connections()] == [State.LISTEN]
    assert c.host.next_deadline() is None
    # the connection no longer exists: the peer's next segment gets <SEQ=SEG.ACK><CTL=RST>
    c.advance(400 * MS)
    c.psend(".")
    c.expect("R", ack=0, win=0)
    # no TIME_WAIT holds the port: a new socket binds :8080 without SO_REUSEADDR
    c.listener.close()
    s = c.host.socket()
    s.bind(("0.0.0.0", SUT_PORT))


def test_so_linger_zero_discards_unsent_data() -> None:
    c = server_established(SCENARIO_PEER)
    c.advance(300 * MS)
    c.psend(".", win=0)  # the peer's window is closed: data stays queued
    c.sock.send(b"q" * 500)
    c.expect_nothing()
    c.sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER, linger(1, 0))
    c.sock.close()
    c.expect("R.")  # SEQ = SND.NXT: the unsent bytes are never sent, no FIN
    c.advance(10 * SEC)
    c.expect_nothing()


def test_so_linger_n_aborts_if_the_fin_is_not_acked_within_n_seconds() -> None:
    # tcpplay's sockets never block: close() returns at once and the linger time runs on a timer; if the
    # FIN is still unacknowledged when it expires, the connection is aborted (RST, no TIME_WAIT).
    c = server_established(SCENARIO_PEER)
    c.advance(300 * MS)
    c.sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER, linger(1, 5))
    conn = c.conn
    c.sock.close()
    c.expect("F.")
    assert conn.state is State.FIN_WAIT_1
    assert conn.timers["linger"] == 5300 * MS
    # the FIN is retransmitted meanwhile (RTO 300 ms, doubling)
    c.advance(5300 * MS - 1)
    assert {s.flags for s in c.peer.segments()} == {0x11}
    c.advance(5300 * MS)
    c.expect("R.", seq=c.snd + 1)
    assert conn.state is State.CLOSED
    assert c.host.next_deadline() is None


def test_so_linger_n_fin_acked_in_time_closes_normally() -> None:
    c = server_established(SCENARIO_PEER)
    c.advance(300 * MS)
    c.sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER, linger(1, 5))
    conn = c.conn
    c.sock.close()
    c.expect("F.")
    c.snd += 1
    c.advance(400 * MS)
    c.psend(".")
    assert conn.state is State.FIN_WAIT_2
    assert "linger" not in conn.timers
    c.advance(500 * MS)
    c.psend("F.")
    c.rcv += 1
    c.expect(".")
    assert conn.state is State.TIME_WAIT


def test_close_with_unread_data_sends_rst_rfc_2525() -> None:
    c = server_established(ALL)
    c.advance(300 * MS)
    c.psend("P.", b"unread")
    c.rcv += 6
    c.expect(".")
    conn = c.conn
    c.sock.close()
    # RFC 2525 §2.17 / Linux tcp_close(): data_was_unread -> tcp_send_active_reset(), no FIN
    c.expect("R.")
    assert conn.state is State.CLOSED
    assert c.host.next_deadline() is None


def test_close_after_reading_everything_sends_fin() -> None:
    c = server_established(SCENARIO_PEER)
    c.advance(300 * MS)
    c.psend("P.", b"read me")
    c.rcv += 7
    c.expect(".")
    assert c.sock.recv(100) == b"read me"
    c.sock.close()
    c.expect("F.")


def test_abort_method_is_linger_zero() -> None:
    c = server_established(NO_TS)
    conn = c.conn
    c.sock.abort()
    c.expect("R.")
    assert conn.state is State.CLOSED
