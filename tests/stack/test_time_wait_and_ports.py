"""TIME_WAIT and the port space (scenario 17; RFC 9293 §3.6, RFC 6191; Linux tcp_timewait_state_process(),
tcp_twsk_unique(), inet_bind_conflict(), __inet_hash_connect())."""

from __future__ import annotations

import errno
import socket as pysocket

import pytest

from stack import MS, SEC, State

from .helpers import (
    ALL,
    MSS,
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
    sut_syn_options,
    ts_opts,
)

SCENARIO_PEER = Options(ts=False)  # <mss 1460,sackOK,nop,nop,nop,wscale 7>


def client_time_wait(offered: Options = SCENARIO_PEER, **settings: int) -> Conn:
    """Scenario 17's start: the SUT (client) closes first, the peer answers FIN/ACK -> TIME_WAIT at 300 ms."""
    c = client_established(offered, t0=0, **settings)
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


def server_time_wait(offered: Options = SCENARIO_PEER, **settings: int) -> Conn:
    """The SUT (server, listener kept open) closes first -> its child is in TIME_WAIT on port 8080."""
    c = server_established(offered, **settings)
    c.advance(300 * MS)
    c.sock.close()
    c.expect("F.")
    c.snd += 1
    c.advance(400 * MS)
    c.psend("F.")
    c.rcv += 1
    c.expect(".")
    assert c.conn.state is State.TIME_WAIT
    return c


def test_scenario_17_old_syn_acked_without_restart_then_rst_after_expiry() -> None:
    c = client_time_wait()
    t0 = 300 * MS
    # 59 s later an old duplicate SYN (seq < RCV.NXT, no ACK bit): ACK <SEQ=SND.NXT><ACK=RCV.NXT> ...
    c.advance(t0 + 59 * SEC)
    c.peer.send("S", PEER_ISN, 0, 65535, b"", [MSS(1460)])
    c.expect(".", win=502)
    assert c.conn.state is State.TIME_WAIT
    # ... and the timer is NOT restarted (no ACK bit)
    assert c.conn.timers == {"time-wait": t0 + 60 * SEC}
    c.advance(t0 + 60 * SEC)
    assert c.conn.state is State.CLOSED
    # at t0 + 63 s the TCB is gone: an ACK gets <SEQ=SEG.ACK><CTL=RST>
    c.advance(t0 + 63 * SEC)
    c.psend(".")
    c.expect("R", ack=0, win=0, options=[])
    assert c.host.connections() == []


def test_ack_in_time_wait_restarts_the_timer_and_is_answered() -> None:
    c = client_time_wait()
    c.advance(30 * SEC)
    # an old duplicate data segment with ACK: answered, and the 2MSL timer starts over
    c.psend("P.", b"old", seq=c.rcv - 10)
    c.expect(".")
    assert c.conn.timers == {"time-wait": 90 * SEC}


def test_in_window_bare_ack_in_time_wait_restarts_the_timer_silently() -> None:
    c = client_time_wait()
    c.advance(30 * SEC)
    c.psend(".")
    c.expect_nothing()
    assert c.conn.timers == {"time-wait": 90 * SEC}


def test_old_syns_acks_are_rate_limited_in_time_wait() -> None:
    c = client_time_wait()
    c.advance(10 * SEC)
    c.peer.send("S", PEER_ISN, 0, 65535)
    c.expect(".")
    c.advance(10 * SEC + 100 * MS)
    c.peer.send("S", PEER_ISN, 0, 65535)
    c.expect_nothing()  # tcp_invalid_ratelimit: 500 ms
    c.advance(10 * SEC + 500 * MS)
    c.peer.send("S", PEER_ISN, 0, 65535)
    c.expect(".")


def test_new_syn_with_higher_seq_reopens_a_time_wait_with_isn_snd_nxt_plus_65537() -> None:
    c = server_time_wait(NO_TS)
    seen: list[tuple[State, State]] = []
    c.host.subscribe(lambda ev: seen.append((ev.old, ev.new)) if hasattr(ev, "new") else None)
    c.advance(10 * SEC)
    new_isn = 90_000
    assert new_isn > c.rcv
    c.peer.send("S", new_isn, 0, 65535, b"", NO_TS.encode(0))
    # tcp_timewait_state_process(): TCP_TW_SYN, isn = tw_snd_nxt + 65535 + 2; the listener answers
    c.peer.expect("S.", c.snd + 65537, new_isn + 1, 64240)
    assert c.conn.state is State.CLOSED
    assert [(s.state, s.is_request) for s in c.host.connections()] == [
        (State.LISTEN, False),
        (State.SYN_RCVD, True),
    ]
    assert seen[:2] == [(State.TIME_WAIT, State.CLOSED), (State.LISTEN, State.SYN_RCVD)]
    c.advance(10 * SEC + 10 * MS)
    c.peer.send(".", new_isn + 1, c.snd + 65538, 512)
    sock, _ = c.listener.accept()
    assert sock.snapshot().iss == c.snd + 65537


def test_new_syn_without_a_listener_is_only_acked() -> None:
    # A client's TIME_WAIT: no listener on its port, so TCP_TW_SYN falls through to an ACK.
    c = client_time_wait()
    c.advance(10 * SEC)
    c.peer.send("S", c.rcv + 100_000, 0, 65535)
    c.expect(".")
    assert c.conn.state is State.TIME_WAIT


def test_timestamp_newer_syn_reopens_even_with_an_old_seq() -> None:
    c = server_time_wait(ALL)
    c.advance(10 * SEC)
    ts = c.peer_ts + 10_000
    c.peer.send("S", PEER_ISN, 0, 65535, b"", ALL.encode(ts))  # seq <= RCV.NXT but a newer TS val
    c.peer.expect("S.", c.snd + 65537, PEER_ISN + 1, 65160, options=sut_syn_options(10_000, ts))
    assert c.conn.state is State.CLOSED


def test_timestamp_older_syn_with_higher_seq_is_paws_rejected() -> None:
    c = server_time_wait(ALL)
    c.advance(10 * SEC)
    c.peer.send("S", c.rcv + 100_000, 0, 65535, b"", ALL.encode(1))  # TS val older than TS.Recent
    # PAWS rejects it: ACK (and the timer is restarted, "paws_reject || th->ack")
    c.expect(".", options=ts_opts(10_000, c.peer_ts))
    assert c.conn.state is State.TIME_WAIT
    assert c.conn.timers == {"time-wait": 70 * SEC}


def test_bind_eaddrinuse_while_time_wait_holds_the_port() -> None:
    c = client_time_wait()
    s = c.host.socket()
    with pytest.raises(OSError) as exc:
        s.bind(("0.0.0.0", PEER_PORT))
    assert exc.value.errno == errno.EADDRINUSE
    # SO_REUSEADDR on the new socket only is not enough: the old socket did not set it
    s.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
    with pytest.raises(OSError):
        s.bind(("0.0.0.0", PEER_PORT))
    # once TIME_WAIT is over, the port is free
    c.advance(60_300 * MS)
    s.bind(("0.0.0.0", PEER_PORT))


def test_so_reuseaddr_on_both_sockets_allows_binding_over_time_wait() -> None:
    # inet_bind_conflict(): no conflict if both sockets have SO_REUSEADDR and the other is not listening.
    c = server_time_wait(NO_TS)  # the listener (and so its children) set SO_REUSEADDR
    c.listener.close()
    fresh = c.host.socket()
    with pytest.raises(OSError) as exc:
        fresh.bind(("0.0.0.0", SUT_PORT))
    assert exc.value.errno == errno.EADDRINUSE
    fresh.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
    fresh.bind(("0.0.0.0", SUT_PORT))
    fresh.listen(8)
    assert [s.state for s in c.host.connections()] == [State.LISTEN, State.TIME_WAIT]


def test_bind_conflicts_with_a_listener_even_with_so_reuseaddr() -> None:
    host = make_host()
    a = host.socket()
    a.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
    a.bind(("0.0.0.0", 8080))
    a.listen(8)
    b = host.socket()
    b.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
    with pytest.raises(OSError) as exc:
        b.bind(("0.0.0.0", 8080))
    assert exc.value.errno == errno.EADDRINUSE
    with pytest.raises(OSError):
        b.bind(("10.0.0.1", 8080))  # a specific address overlaps the wildcard


def tw_reuse_setup(reuse: int, offered: Options = ALL) -> Conn:
    c = client_time_wait(offered, tcp_tw_reuse=reuse)
    return c


@pytest.mark.parametrize(("reuse", "allowed"), [(1, True), (0, False), (2, False)])
def test_tcp_tw_reuse_lets_connect_take_an_old_time_wait(reuse: int, allowed: bool) -> None:
    c = tw_reuse_setup(reuse)  # TIME_WAIT entered at 300 ms, with timestamps
    s = c.host.socket()
    s.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
    c.conn.opts.reuseaddr = True  # both sockets set SO_REUSEADDR, so bind() itself is allowed
    s.bind(("0.0.0.0", PEER_PORT))
    # at exactly +1 s it is too early (time_after32(now, tw_entry_stamp + tcp_tw_reuse_delay))
    c.advance(1300 * MS)
    assert s.connect_ex((PEER_IP, SUT_PORT)) == errno.EADDRNOTAVAIL
    c.advance(1301 * MS)
    code = s.connect_ex((PEER_IP, SUT_PORT))
    if not allowed:  # 0: off; 2: loopback only
        assert code == errno.EADDRNOTAVAIL
        assert c.conn.state is State.TIME_WAIT
        return
    assert code == errno.EINPROGRESS
    assert c.conn.state is State.CLOSED
    # the new SYN: ISN = tw SND.NXT + 65537, TSecr = the TIME_WAIT's TS.Recent (tcp_twsk_unique)
    c.peer.expect("S", c.snd + 65537, 0, 64240, options=sut_syn_options(1301, c.peer_ts))


def test_tw_reuse_needs_timestamps() -> None:
    c = tw_reuse_setup(1, SCENARIO_PEER)  # no TS on this connection
    s = c.host.socket()
    c.advance(5 * SEC)
    # the implicit port choice cannot use the TIME_WAIT 4-tuple either: range of one port
    c.host.set(ip_local_port_range=(PEER_PORT, PEER_PORT))
    assert s.connect_ex((PEER_IP, SUT_PORT)) == errno.EADDRNOTAVAIL


def test_tw_reuse_by_implicit_port_choice() -> None:
    c = tw_reuse_setup(1)
    c.host.set(ip_local_port_range=(PEER_PORT, PEER_PORT))
    c.advance(2 * SEC)
    s = c.host.socket()
    assert s.connect_ex((PEER_IP, SUT_PORT)) == errno.EINPROGRESS
    assert s.getsockname() == ("10.0.0.1", PEER_PORT)
    c.peer.expect("S", c.snd + 65537, 0, 64240)


def test_max_tw_buckets_zero_skips_time_wait() -> None:
    c = client_established(NO_TS, t0=0, tcp_max_tw_buckets=0)
    seen: list[tuple[State, State]] = []
    c.host.subscribe(lambda ev: seen.append((ev.old, ev.new)) if hasattr(ev, "new") else None)
    c.advance(200 * MS)
    c.sock.close()
    c.expect("F.")
    c.snd += 1
    c.psend("F.")
    c.rcv += 1
    c.expect(".")  # the FIN is still ACKed
    assert c.conn.state is State.CLOSED
    assert seen == [(State.ESTABLISHED, State.FIN_WAIT_1), (State.FIN_WAIT_1, State.CLOSED)]
    assert c.host.connections() == [] and c.host.next_deadline() is None
    s = c.host.socket()
    s.bind(("0.0.0.0", PEER_PORT))  # nothing holds the port


def test_max_tw_buckets_counts_existing_time_waits() -> None:
    host = make_host(tcp_max_tw_buckets=1)
    first = client_established(NO_TS, t0=0, host=host)
    first.sock.close()
    first.expect("F.")
    first.snd += 1
    first.psend("F.")
    first.rcv += 1
    first.expect(".")
    assert first.conn.state is State.TIME_WAIT
    # a second connection from another port: the bucket is taken, so it closes without TIME_WAIT
    peer2 = Peer(host, port=SUT_PORT, sut_port=PEER_PORT + 1)
    s = host.socket()
    s.bind(("0.0.0.0", PEER_PORT + 1))
    s.connect_ex((PEER_IP, SUT_PORT))
    peer2.expect("S", SUT_ISS, 0)
    peer2.send("S.", PEER_ISN, SUT_ISS + 1, 65535)
    peer2.expect(".", SUT_ISS + 1, PEER_ISN + 1)
    s.close()
    peer2.expect("F.", SUT_ISS + 1, PEER_ISN + 1)
    peer2.send("F.", PEER_ISN + 1, SUT_ISS + 2, 65535)
    peer2.expect(".", SUT_ISS + 2, PEER_ISN + 2)
    assert s.conn.state is State.CLOSED
    assert [x.state for x in host.connections()] == [State.TIME_WAIT]


def test_ephemeral_ports_come_from_the_range_even_first_then_eaddrnotavail() -> None:
    host = make_host(ip_local_port_range=(50000, 50003))
    socks = []
    for _ in range(4):
        s = host.socket()
        assert s.connect_ex((PEER_IP, SUT_PORT)) == errno.EINPROGRESS
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    # __inet_hash_connect(): even ports first, then odd
    assert sorted(ports[:2]) == [50000, 50002] and sorted(ports[2:]) == [50001, 50003]
    extra = host.socket()
    assert extra.connect_ex((PEER_IP, SUT_PORT)) == errno.EADDRNOTAVAIL
    with pytest.raises(OSError) as exc:
        extra.connect((PEER_IP, SUT_PORT))
    assert exc.value.errno == errno.EADDRNOTAVAIL
    # another destination can share the local ports (the 4-tuple is what must be unique)
    other = host.socket()
    assert other.connect_ex(("10.0.0.3", SUT_PORT)) == errno.EINPROGRESS
    assert 50000 <= other.getsockname()[1] <= 50003


def test_bind_port_zero_picks_odd_ports_first_and_fails_with_eaddrinuse() -> None:
    host = make_host(ip_local_port_range=(50000, 50001))
    a, b, c = host.socket(), host.socket(), host.socket()
    a.bind(("0.0.0.0", 0))
    b.bind(("0.0.0.0", 0))
    assert [a.getsockname()[1], b.getsockname()[1]] == [50001, 50000]  # inet_csk_find_open_port(): odd first
    with pytest.raises(OSError) as exc:
        c.bind(("0.0.0.0", 0))
    assert exc.value.errno == errno.EADDRINUSE


def test_closed_connection_releases_its_port() -> None:
    host = make_host(ip_local_port_range=(50000, 50000))
    s = host.socket()
    assert s.connect_ex((PEER_IP, SUT_PORT)) == errno.EINPROGRESS
    peer = Peer(host, port=SUT_PORT, sut_port=50000)
    peer.expect("S", SUT_ISS, 0)
    peer.send("R.", 0, SUT_ISS + 1, 0)  # refused: the 4-tuple is released
    s2 = host.socket()
    assert s2.connect_ex((PEER_IP, SUT_PORT)) == errno.EINPROGRESS
    assert s2.getsockname() == ("10.0.0.1", 50000)
