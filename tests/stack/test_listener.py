"""The listener: SYN queue, accept queue, overflow, SYN cookies, backlog (Linux tcp_conn_request(),
tcp_check_req(), reqsk_timer_handler(), cookie_v4_check(), inet_csk_listen_stop(); RFC 4987)."""

from __future__ import annotations

import pytest

from stack import MS, SEC, SegmentDropped, State

from .helpers import (
    ALL,
    MSS,
    NO_TS,
    NOP,
    PEER_ISN,
    SACKOK,
    SUT_ISS,
    TS,
    WS,
    Options,
    Peer,
    make_host,
    server_listen,
    ts_opts,
)


def peers(host, n: int, first_port: int = 40000) -> list[Peer]:  # type: ignore[no-untyped-def]
    return [Peer(host, port=first_port + i) for i in range(n)]


def handshake(peer: Peer) -> None:
    peer.send("S", PEER_ISN, 0, 65535, b"", NO_TS.encode(0))
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 64240)
    peer.send(".", PEER_ISN + 1, SUT_ISS + 1, 512)
    peer.expect_nothing()


def states(host) -> list[State]:  # type: ignore[no-untyped-def]
    return [s.state for s in host.connections()]


def drop_reasons(host) -> list[str]:  # type: ignore[no-untyped-def]
    out: list[str] = []
    host.subscribe(lambda ev: out.append(ev.reason) if isinstance(ev, SegmentDropped) else None)
    return out


def test_accept_queue_holds_backlog_plus_one_then_syns_are_dropped() -> None:
    host = make_host()
    lsock = server_listen(host, backlog=2)
    reasons = drop_reasons(host)
    ps = peers(host, 4)
    for p in ps[:3]:
        handshake(p)
    snap = lsock.snapshot()
    assert (snap.backlog, snap.accept_queue, snap.syn_queue) == (2, 3, 0)
    # sk_acceptq_is_full(): > backlog. The 4th SYN is dropped without a SYN-ACK (tcp_conn_request)
    ps[3].send("S", PEER_ISN, 0, 65535)
    ps[3].expect_nothing()
    assert reasons == ["accept-queue-full"]
    assert states(host) == [State.LISTEN, State.ESTABLISHED, State.ESTABLISHED, State.ESTABLISHED]
    # accept() makes room: the client's SYN retransmission now gets its SYN-ACK
    lsock.accept()
    ps[3].advance(1 * SEC)
    ps[3].send("S", PEER_ISN, 0, 65535)
    ps[3].expect("S.", SUT_ISS, PEER_ISN + 1)


def test_full_accept_queue_drops_the_final_ack_and_keeps_the_request() -> None:
    host = make_host()
    lsock = server_listen(host, backlog=1)
    reasons = drop_reasons(host)
    a, b, c = peers(host, 3)
    handshake(a)
    # c's SYN arrives while there is still room (1 of 2)
    c.send("S", PEER_ISN, 0, 65535, b"", NO_TS.encode(0))
    c.expect("S.", SUT_ISS, PEER_ISN + 1)
    handshake(b)  # the accept queue is now full (2 = backlog + 1)
    assert lsock.snapshot().accept_queue == 2
    # c's final ACK is dropped; the request stays (Linux: inet_rsk(req)->acked = 1)
    c.advance(100 * MS)
    c.send(".", PEER_ISN + 1, SUT_ISS + 1, 512)
    c.expect_nothing()
    assert reasons == ["accept-queue-full"]
    assert lsock.snapshot().syn_queue == 1
    # the SYN-ACK keeps being retransmitted on the request's timer
    c.advance(1 * SEC)
    c.expect("S.", SUT_ISS, PEER_ISN + 1)
    assert host.next_deadline() == 3 * SEC
    # the application accepts one: room again. The client answers the retransmitted SYN-ACK with its
    # <SEQ=SND.NXT><ACK=RCV.NXT> ACK, which now completes the handshake.
    lsock.accept()
    c.advance(1100 * MS)
    c.send(".", PEER_ISN + 1, SUT_ISS + 1, 512)
    c.expect_nothing()
    snap = lsock.snapshot()
    assert (snap.accept_queue, snap.syn_queue) == (2, 0)
    assert host.next_deadline() is None


def test_full_accept_queue_with_abort_on_overflow_resets() -> None:
    host = make_host(tcp_abort_on_overflow=1)
    lsock = server_listen(host, backlog=1)
    a, b, c = peers(host, 3)
    b.send("S", PEER_ISN, 0, 65535)
    b.expect("S.", SUT_ISS, PEER_ISN + 1)
    handshake(a)
    handshake(c)  # the accept queue is full (2 = backlog + 1)
    b.send(".", PEER_ISN + 1, SUT_ISS + 1, 512)
    # tcp_check_req() listen_overflow with tcp_abort_on_overflow: RST <SEQ=SEG.ACK>, request dropped
    b.expect("R", SUT_ISS + 1, 0, 0)
    snap = lsock.snapshot()
    assert (snap.accept_queue, snap.syn_queue) == (2, 0)
    b.advance(5 * SEC)
    b.expect_nothing()


def test_full_syn_queue_without_syncookies_drops_syns() -> None:
    host = make_host(tcp_syncookies=0)
    lsock = server_listen(host, backlog=2)
    reasons = drop_reasons(host)
    ps = peers(host, 4)
    for p in ps[:3]:
        p.send("S", PEER_ISN, 0, 65535)
        p.expect("S.", SUT_ISS, PEER_ISN + 1)
    assert lsock.snapshot().syn_queue == 3  # inet_csk_reqsk_queue_is_full(): qlen > backlog
    ps[3].send("S", PEER_ISN, 0, 65535)
    ps[3].expect_nothing()
    assert reasons == ["syn-queue-full"]
    assert lsock.snapshot().syn_queue == 3


def test_syn_cookie_when_the_syn_queue_is_full() -> None:
    host = make_host()  # tcp_syncookies=1 (default)
    lsock = server_listen(host, backlog=0)
    first, flood = peers(host, 2)
    first.send("S", PEER_ISN, 0, 65535)
    first.expect("S.", SUT_ISS, PEER_ISN + 1)  # a normal request: 1 > 0, the queue is now full
    flood.advance(10 * SEC)
    flood.send("S", PEER_ISN, 0, 65535, b"", Options(mss=1400, ts=False).encode(0))
    (cookie_synack,) = flood.expect_many(1)
    # a cookie SYN-ACK: our ISN is the cookie; no timestamps, so no wscale or SACK either (Linux
    # tcp_clear_options() when the SYN has no TS): only the MSS option
    flood.check(cookie_synack, "S.", cookie_synack.seq, PEER_ISN + 1, 64240, options=[MSS(1460)])
    assert cookie_synack.seq != SUT_ISS
    # no state kept for it
    assert states(host) == [State.LISTEN, State.SYN_RCVD]
    assert lsock.snapshot().syn_queue == 1
    assert host.next_deadline() == 15 * SEC  # only the normal request's timer (1, 3, 7, 15 s)
    # the final ACK rebuilds the connection from the cookie
    flood.advance(10 * SEC + 50 * MS)
    flood.send(".", PEER_ISN + 1, cookie_synack.seq + 1, 65535)
    flood.expect_nothing()
    sock, _ = lsock.accept()
    snap = sock.snapshot()
    assert snap.state is State.ESTABLISHED
    assert (snap.iss, snap.irs, snap.snd_nxt, snap.rcv_nxt) == (
        cookie_synack.seq,
        PEER_ISN,
        (cookie_synack.seq + 1) % 2**32,
        PEER_ISN + 1,
    )
    # the MSS comes from the cookie's 2-bit table index: 1400 -> 1300 (Linux msstab {536,1300,1440,1460})
    assert (snap.peer_mss, snap.mss) == (1300, 1300)
    assert (snap.sack, snap.timestamps, snap.snd_wscale) == (False, False, None)
    # no RTT sample from a cookie SYN-ACK without timestamps: RTO 3 s (snt_synack = 0, tcp_init_metrics)
    assert (snap.srtt, snap.rto) == (None, 3 * SEC)


def test_syn_cookie_with_timestamps_recovers_wscale_and_sack_from_tsecr() -> None:
    host = make_host(tcp_syncookies=2)  # 2: always cookies
    lsock = server_listen(host)
    peer = Peer(host)
    peer.advance(10 * SEC)
    peer.send("S", PEER_ISN, 0, 65535, b"", ALL.encode(17000))
    (synack,) = peer.expect_many(1)
    # cookie_init_timestamp(): the low 6 bits of TS val carry the peer's wscale (7) and SACK (0x10);
    # (10000 >> 6 << 6) | 23 = 10007 is ahead of the clock, so 64 less: 9943
    peer.check(
        synack,
        "S.",
        synack.seq,
        PEER_ISN + 1,
        65160,
        options=[MSS(1460), SACKOK, TS(9943, 17000), NOP, WS(7)],
    )
    assert states(host) == [State.LISTEN]  # tcp_syncookies=2: no request even with an empty queue
    assert host.next_deadline() is None
    peer.advance(10 * SEC + 50 * MS)
    peer.send(".", PEER_ISN + 1, synack.seq + 1, 512, b"", ts_opts(17050, 9943))
    peer.expect_nothing()
    sock, _ = lsock.accept()
    snap = sock.snapshot()
    assert (snap.snd_wscale, snap.rcv_wscale, snap.sack, snap.timestamps) == (7, 7, True, True)
    assert snap.snd_wnd == 512 << 7
    assert (snap.peer_mss, snap.mss) == (1460, 1448)
    # the TSecr gives the RTT sample: 10050 - 9943 = 107 ms (tcp_ack_update_rtt from TS)
    assert snap.srtt == 107 * MS
    sock.send(b"hi")
    peer.expect("P.", synack.seq + 1, PEER_ISN + 1, None, b"hi", ts_opts(10050, 17050))


def test_forged_cookie_ack_gets_rst() -> None:
    host = make_host(tcp_syncookies=2)
    lsock = server_listen(host)
    peer = Peer(host)
    peer.send("S", PEER_ISN, 0, 65535)
    (synack,) = peer.expect_many(1)
    peer.send(".", PEER_ISN + 1, synack.seq + 1000, 512)  # not the cookie
    peer.expect("R", synack.seq + 1000, 0, 0)
    other = Peer(host, port=41000)  # the right cookie number from another 4-tuple is no good either
    other.send(".", PEER_ISN + 1, synack.seq + 1, 512)
    other.expect("R", synack.seq + 1, 0, 0)
    assert states(host) == [State.LISTEN]
    with pytest.raises(BlockingIOError):
        lsock.accept()


def test_cookie_ack_is_refused_without_a_recent_overflow() -> None:
    # Linux tcp_synq_no_recent_overflow(): cookies are only checked if some were sent recently
    host = make_host()
    server_listen(host)
    peer = Peer(host)
    peer.send(".", PEER_ISN + 1, 12345, 512)
    peer.expect("R", 12345, 0, 0)


def test_somaxconn_caps_the_backlog() -> None:
    host = make_host(somaxconn=3)
    lsock = server_listen(host, backlog=100)
    assert lsock.snapshot().backlog == 3
    lsock.listen(1)  # listen() again changes the backlog
    assert lsock.snapshot().backlog == 1
    lsock.listen(-1)  # negative: somaxconn
    assert lsock.snapshot().backlog == 3


def test_closing_a_listener_resets_unaccepted_connections() -> None:
    host = make_host()
    lsock = server_listen(host)
    a, b, c = peers(host, 3)
    handshake(a)
    handshake(b)
    c.send("S", PEER_ISN, 0, 65535)
    c.expect("S.", SUT_ISS, PEER_ISN + 1)
    a.advance(100 * MS)
    a.send("P.", PEER_ISN + 1, SUT_ISS + 1, 512, b"unread")
    a.expect(".", SUT_ISS + 1, PEER_ISN + 7, 502)
    assert states(host) == [State.LISTEN, State.ESTABLISHED, State.ESTABLISHED, State.SYN_RCVD]
    lsock.close()
    # inet_csk_listen_stop() -> tcp_disconnect(): RST <SEQ=SND.NXT><ACK=RCV.NXT> for each child
    # (an active reset goes through tcp_transmit_skb(): it carries the window like any segment)
    a.expect("R.", SUT_ISS + 1, PEER_ISN + 7, 502, options=[])
    b.expect("R.", SUT_ISS + 1, PEER_ISN + 1, 502, options=[])
    c.expect_nothing()  # the half-open request is forgotten silently
    assert host.connections() == []
    assert host.next_deadline() is None
    # the port is free; c's late ACK finds nothing
    c.send(".", PEER_ISN + 1, SUT_ISS + 1, 512)
    c.expect("R", SUT_ISS + 1, 0, 0)
    again = host.socket()
    again.bind(("0.0.0.0", 8080))


def test_connections_lists_listener_requests_and_established_children() -> None:
    host = make_host()
    server_listen(host)
    a, b = peers(host, 2)
    handshake(a)
    b.send("S", PEER_ISN, 0, 65535, b"", ALL.encode(7000))
    b.expect("S.", SUT_ISS, PEER_ISN + 1)
    snaps = host.connections()
    assert [(s.state, s.remote, s.is_request) for s in snaps] == [
        (State.LISTEN, ("0.0.0.0", 0), False),
        (State.ESTABLISHED, ("10.0.0.2", 40000), False),
        (State.SYN_RCVD, ("10.0.0.2", 40001), True),
    ]
    listener, child, req = snaps
    assert (listener.local, listener.backlog, listener.syn_queue, listener.accept_queue) == (
        ("0.0.0.0", 8080),
        8,
        1,
        1,
    )
    assert child.local == ("10.0.0.1", 8080)
    assert req.timestamps and req.sack and req.snd_wscale == 7
    assert req.timers == {"syn-ack": 1 * SEC}


def test_data_before_accept_is_kept_for_the_application() -> None:
    host = make_host()
    lsock = server_listen(host)
    (p,) = peers(host, 1)
    handshake(p)
    p.send("P.", PEER_ISN + 1, SUT_ISS + 1, 512, b"early")
    p.expect(".", SUT_ISS + 1, PEER_ISN + 6, 502)
    sock, _ = lsock.accept()
    assert sock.recv(100) == b"early"


def test_syn_with_fin_to_listener_is_dropped() -> None:
    host = make_host()
    server_listen(host)
    (p,) = peers(host, 1)
    p.send("SF", PEER_ISN, 0, 65535)
    p.expect_nothing()
    assert states(host) == [State.LISTEN]


def test_retransmitted_syn_while_request_pending_is_rate_limited() -> None:
    host = make_host()
    server_listen(host)
    (p,) = peers(host, 1)
    p.send("S", PEER_ISN, 0, 65535)
    p.expect("S.", SUT_ISS, PEER_ISN + 1)
    p.advance(100 * MS)
    p.send("S", PEER_ISN, 0, 65535)
    p.expect("S.", SUT_ISS, PEER_ISN + 1)
    p.advance(200 * MS)
    p.send("S", PEER_ISN, 0, 65535)  # within 500 ms of the last reply
    p.expect_nothing()
    p.advance(600 * MS)
    p.send("S", PEER_ISN, 0, 65535)
    p.expect("S.", SUT_ISS, PEER_ISN + 1)
