"""Three-way handshake, exact segments (scenarios 01, 02; RFC 9293 §3.5, §3.10.7; Linux tcp_input.c)."""

from __future__ import annotations

import errno
import socket as pysocket

import pytest

from stack import MS, SEC, State

from .helpers import (
    ALL,
    MSS,
    NO_SACK,
    NO_TS,
    NONE,
    NOP,
    PEER_IP,
    PEER_ISN,
    PEER_PORT,
    PEER_TS_BASE,
    SACKOK,
    SUT_ISS,
    SUT_PORT,
    TS,
    WS,
    Conn,
    Options,
    Peer,
    client_established,
    make_host,
    server_established,
    server_listen,
    sut_syn_options,
    ts_opts,
)

# ---------------------------------------------------------------------------------------------------------
# passive open


def test_passive_open_all_options_scenario_01() -> None:
    host = make_host()
    peer = Peer(host)
    lsock = server_listen(host)
    assert lsock.state is State.LISTEN
    with pytest.raises(BlockingIOError):
        lsock.accept()
    peer.advance(100 * MS)
    peer.send("S", PEER_ISN, 0, 65535, b"", ALL.encode(1000))
    # Linux SYN-ACK: 20 option bytes mss,sackOK,TS,nop,wscale; window rounddown(65536, 1460-12) = 65160.
    seg = peer.expect("S.", SUT_ISS, PEER_ISN + 1, 65160, options=sut_syn_options(100, 1000))
    assert seg.ts_val == 100 and seg.ts_ecr == 1000
    # the request sits in the SYN queue (ss shows SYN-RECV), nothing to accept yet
    snaps = host.connections()
    assert [s.state for s in snaps] == [State.LISTEN, State.SYN_RCVD]
    req = snaps[1]
    assert req.is_request and (req.iss, req.irs) == (SUT_ISS, PEER_ISN)
    assert (req.snd_nxt, req.rcv_nxt) == (SUT_ISS + 1, PEER_ISN + 1)
    assert (req.snd_wscale, req.rcv_wscale, req.sack, req.timestamps) == (7, 7, True, True)
    assert req.timers == {"syn-ack": 1100 * MS}  # first SYN-ACK retransmission 1 s later
    assert host.next_deadline() == 1100 * MS
    with pytest.raises(BlockingIOError):
        lsock.accept()
    peer.expect_nothing()

    peer.advance(200 * MS)
    peer.send(".", PEER_ISN + 1, SUT_ISS + 1, 512, b"", ts_opts(1100, 100))
    peer.expect_nothing()
    sock, addr = lsock.accept()
    assert addr == (PEER_IP, 40000)
    assert sock.state is State.ESTABLISHED
    assert host.next_deadline() is None  # SYN-ACK timer cancelled, nothing else armed
    snap = sock.snapshot()
    assert (snap.iss, snap.irs, snap.snd_una, snap.snd_nxt, snap.rcv_nxt) == (1000, 5000, 1001, 1001, 5001)
    assert snap.snd_wnd == 512 << 7  # the 3rd segment's window is scaled
    assert (snap.snd_wscale, snap.rcv_wscale, snap.sack, snap.timestamps) == (7, 7, True, True)
    assert snap.mss == 1448 and snap.advmss == 1460 and snap.peer_mss == 1460
    assert snap.cwnd == 10
    # one RTT sample from the SYN-ACK (100 ms): RTO = srtt + max(4*rttvar, 200 ms) = 300 ms (tcp_set_rto)
    assert (snap.srtt, snap.rttvar, snap.rto) == (100 * MS, 50 * MS, 300 * MS)

    assert sock.send(b"x" * 100) == 100
    # window field: ALIGN(rcv_ssthresh 65160, 128) >> 7 = 510 (__tcp_select_window)
    peer.expect("P.", SUT_ISS + 1, PEER_ISN + 1, 510, b"x" * 100, ts_opts(200, 1100))
    assert sock.conn.timers == {"retransmit": 500 * MS}
    peer.advance(300 * MS)
    peer.send(".", PEER_ISN + 1, SUT_ISS + 101, 512, b"", ts_opts(1200, 200))
    peer.expect_nothing()
    assert sock.conn.timers == {}
    assert sock.snapshot().snd_una == SUT_ISS + 101


def test_passive_open_without_timestamps() -> None:
    host = make_host()
    peer = Peer(host)
    lsock = server_listen(host)
    peer.send("S", PEER_ISN, 0, 65535, b"", NO_TS.encode(0))
    # no TS: mss,nop,nop,sackOK,nop,wscale; window rounddown(65536, 1460) = 64240
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 64240, options=[MSS(1460), NOP, NOP, SACKOK, NOP, WS(7)])
    peer.advance(50 * MS)
    peer.send(".", PEER_ISN + 1, SUT_ISS + 1, 512)
    sock, _ = lsock.accept()
    assert sock.snapshot().mss == 1460
    assert sock.send(b"y" * 10) == 10
    # ALIGN(64240, 128) >> 7 = 502
    peer.expect("P.", SUT_ISS + 1, PEER_ISN + 1, 502, b"y" * 10, [])
    peer.expect_nothing()


def test_passive_open_peer_without_any_option_gets_mss_only_and_536() -> None:
    host = make_host()
    peer = Peer(host)
    lsock = server_listen(host)
    peer.send("S", PEER_ISN, 0, 8192)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 64240, options=[MSS(1460)])
    peer.advance(10 * MS)
    peer.send(".", PEER_ISN + 1, SUT_ISS + 1, 8192)
    sock, _ = lsock.accept()
    snap = sock.snapshot()
    # RFC 9293 §3.7.1 / Linux TCP_MSS_DEFAULT: no MSS option means 536
    assert (snap.mss, snap.peer_mss) == (536, 536)
    assert (snap.snd_wscale, snap.rcv_wscale, snap.sack, snap.timestamps) == (None, None, False, False)
    assert snap.snd_wnd == 8192  # unscaled
    assert sock.send(b"z" * 1000) == 1000
    a, b = peer.expect_many(2)
    # no window scaling: __tcp_select_window() keeps the offered 64240 (it is within one rcv_mss of the
    # free space), unrounded
    peer.check(a, ".", SUT_ISS + 1, PEER_ISN + 1, 64240, b"z" * 536, [])
    peer.check(b, "P.", SUT_ISS + 537, PEER_ISN + 1, 64240, b"z" * 464, [])
    peer.expect_nothing()


@pytest.mark.parametrize(
    ("offered", "options"),
    [
        (Options(sack=False, ts=False, wscale=None), [MSS(1460)]),
        (Options(sack=True, ts=False, wscale=None), [MSS(1460), NOP, NOP, SACKOK]),
        (Options(sack=False, ts=False, wscale=3), [MSS(1460), NOP, WS(7)]),
        (Options(sack=False, ts=True, wscale=None), [MSS(1460), NOP, NOP, TS(0, 7000)]),
        (NO_SACK, [MSS(1460), NOP, NOP, TS(0, 7000), NOP, WS(7)]),
    ],
)
def test_synack_carries_only_options_the_peer_offered(offered: Options, options: list[object]) -> None:
    # RFC 7323 §1.3/§2.2, RFC 2018 §2: wscale, TS and sackOK in a SYN-ACK only if the SYN had them.
    host = make_host()
    peer = Peer(host)
    server_listen(host)
    peer.send("S", PEER_ISN, 0, 65535, b"", offered.encode(7000))
    window = 65160 if offered.ts else 64240
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, window, options=options)  # type: ignore[arg-type]


@pytest.mark.parametrize(("rmem_max", "wscale"), [(6 * 1024 * 1024, 7), (32 * 1024 * 1024, 10), (131072, 2)])
def test_window_scale_follows_tcp_rmem_max(rmem_max: int, wscale: int) -> None:
    # tcp_select_initial_window(): shift until max(tcp_rmem[2], rmem_max) fits in 16 bits
    host = make_host(tcp_rmem=(4096, 131072, rmem_max))
    peer = Peer(host)
    server_listen(host)
    peer.send("S", PEER_ISN, 0, 65535, b"", ALL.encode(7000))
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 65160, options=sut_syn_options(0, 7000, wscale=wscale))


def test_window_scaling_off_by_sysctl() -> None:
    host = make_host(tcp_window_scaling=0)
    peer = Peer(host)
    server_listen(host)
    peer.send("S", PEER_ISN, 0, 65535, b"", ALL.encode(7000))
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 65160, options=[MSS(1460), SACKOK, TS(0, 7000)])


def test_third_ack_carrying_data_is_queued_and_acked_at_once() -> None:
    host = make_host()
    peer = Peer(host)
    lsock = server_listen(host)
    peer.send("S", PEER_ISN, 0, 65535, b"", NO_TS.encode(0))
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 64240)
    peer.advance(100 * MS)
    peer.send("P.", PEER_ISN + 1, SUT_ISS + 1, 512, b"hello")
    # the first data segment puts the child in quick-ACK mode (tcp_event_data_recv: ato == 0)
    peer.expect(".", SUT_ISS + 1, PEER_ISN + 6, 502, options=[])
    sock, _ = lsock.accept()
    assert sock.state is State.ESTABLISHED
    assert sock.recv(100) == b"hello"
    peer.expect_nothing()


def test_lost_third_ack_synack_retransmitted_and_dupack_completes() -> None:
    host = make_host()
    peer = Peer(host)
    lsock = server_listen(host)
    peer.advance(100 * MS)
    peer.send("S", PEER_ISN, 0, 65535, b"", ALL.encode(7100))
    first = peer.expect("S.", SUT_ISS, PEER_ISN + 1, 65160, options=sut_syn_options(100, 7100))
    # the peer's ACK is lost; at +1 s the same SYN-ACK again, only TS val differs
    peer.advance(1100 * MS - 1)
    peer.expect_nothing()
    peer.advance(1100 * MS)
    again = peer.expect("S.", SUT_ISS, PEER_ISN + 1, 65160, options=sut_syn_options(1100, 7100))
    assert again.window == first.window and again.payload == first.payload
    assert host.connections()[1].retransmits == 1
    assert host.next_deadline() == 3100 * MS  # 1 s, then 2 s backoff
    # the ESTABLISHED client answers the duplicate SYN-ACK with <SEQ=SND.NXT><ACK=RCV.NXT> (challenge ACK)
    peer.advance(1200 * MS)
    peer.send(".", PEER_ISN + 1, SUT_ISS + 1, 512, b"", ts_opts(8200, 1100))
    peer.expect_nothing()
    sock, _ = lsock.accept()
    snap = sock.snapshot()
    assert snap.state is State.ESTABLISHED
    # RTT from the echoed TS of the retransmitted SYN-ACK (tcp_synack_rtt_meas): 100 ms -> RTO 300 ms
    assert (snap.srtt, snap.rto) == (100 * MS, 300 * MS)
    # one SYN-ACK retransmission keeps the initial window: Linux cuts cwnd to 1 only when
    # total_retrans > 1 (tcp_init_transfer)
    assert snap.cwnd == 10
    assert host.next_deadline() is None


def test_lost_third_ack_without_timestamps_falls_back_to_rto_3s() -> None:
    host = make_host()
    peer = Peer(host)
    lsock = server_listen(host)
    peer.send("S", PEER_ISN, 0, 65535, b"", NO_TS.encode(0))
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 64240)
    peer.advance(1 * SEC)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 64240)
    peer.advance(3 * SEC)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 64240)
    peer.advance(3 * SEC + 100 * MS)
    peer.send(".", PEER_ISN + 1, SUT_ISS + 1, 512)
    sock, _ = lsock.accept()
    snap = sock.snapshot()
    # Karn: no sample from a retransmitted SYN-ACK; RFC 6298 §5.7 / tcp_init_metrics(): RTO 3 s
    assert (snap.srtt, snap.rto) == (None, 3 * SEC)
    assert snap.cwnd == 1  # two SYN-ACK retransmissions: cwnd 1 (RFC 5681 §3.1, tcp_init_transfer)


def test_lost_third_ack_recovered_by_the_clients_data() -> None:
    host = make_host()
    peer = Peer(host)
    lsock = server_listen(host)
    peer.send("S", PEER_ISN, 0, 65535, b"", NO_TS.encode(0))
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 64240)
    peer.advance(100 * MS)
    with pytest.raises(BlockingIOError):
        lsock.accept()
    # the ACK was lost; the client's first data segment (ACK set) completes the handshake
    peer.send("P.", PEER_ISN + 1, SUT_ISS + 1, 512, b"GET /")
    peer.expect(".", SUT_ISS + 1, PEER_ISN + 6, 502, options=[])
    sock, _ = lsock.accept()
    assert sock.recv(10) == b"GET /"
    assert host.next_deadline() is None
    peer.expect_nothing()


# ---------------------------------------------------------------------------------------------------------
# active open


def test_active_open_scenario_02() -> None:
    host = make_host()
    peer = Peer(host, port=SUT_PORT, sut_port=PEER_PORT)
    peer.advance(1 * SEC)
    sock = host.socket()
    assert sock.state is State.CLOSED
    sock.bind(("0.0.0.0", PEER_PORT))
    assert sock.connect_ex((PEER_IP, SUT_PORT)) == errno.EINPROGRESS
    # Linux SYN: mss 1460,sackOK,TS val ecr 0,nop,wscale 7; window 64240
    peer.expect("S", SUT_ISS, 0, 64240, options=sut_syn_options(1000, 0))
    assert sock.state is State.SYN_SENT
    assert sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_ERROR) == 0
    with pytest.raises(BlockingIOError) as exc:
        sock.send(b"x" * 10)
    assert exc.value.errno == errno.EAGAIN
    assert sock.connect_ex((PEER_IP, SUT_PORT)) == errno.EALREADY
    assert sock.conn.timers == {"retransmit": 2 * SEC}  # initial RTO 1 s
    with pytest.raises(OSError) as exc2:
        sock.getpeername()
    assert exc2.value.errno == errno.ENOTCONN

    peer.advance(1100 * MS)
    peer.send("S.", PEER_ISN, SUT_ISS + 1, 65535, b"", ALL.encode(8100, 1000))
    # the third segment at once; window field 64240 rounded up to 128 and scaled: 502
    peer.expect(".", SUT_ISS + 1, PEER_ISN + 1, 502, options=ts_opts(1100, 8100))
    assert sock.state is State.ESTABLISHED
    assert sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_ERROR) == 0
    assert sock.getpeername() == (PEER_IP, SUT_PORT)
    assert host.next_deadline() is None
    snap = sock.snapshot()
    assert (snap.snd_una, snap.snd_nxt, snap.rcv_nxt, snap.snd_wnd) == (1001, 1001, 5001, 65535)
    assert (snap.srtt, snap.rto, snap.mss, snap.cwnd) == (100 * MS, 300 * MS, 1448, 10)
    # a non-blocking connect() reports completion once (0), then EISCONN (__inet_stream_connect)
    assert sock.connect_ex((PEER_IP, SUT_PORT)) == 0
    assert sock.connect_ex((PEER_IP, SUT_PORT)) == errno.EISCONN
    assert sock.send(b"x" * 10) == 10
    peer.expect("P.", SUT_ISS + 1, PEER_ISN + 1, 502, b"x" * 10, ts_opts(1100, 8100))
    assert sock.conn.timers == {"retransmit": 1400 * MS}
    peer.expect_nothing()


def test_active_open_without_peer_options_uses_mss_536() -> None:
    host = make_host()
    peer = Peer(host, port=SUT_PORT, sut_port=PEER_PORT)
    sock = host.socket()
    sock.bind(("0.0.0.0", PEER_PORT))
    sock.connect_ex((PEER_IP, SUT_PORT))
    peer.expect("S", SUT_ISS, 0, 64240)
    peer.advance(50 * MS)
    peer.send("S.", PEER_ISN, SUT_ISS + 1, 65535, b"", NONE.encode(0))
    # no wscale from the peer: our shift is dropped too (window unscaled, 64240)
    peer.expect(".", SUT_ISS + 1, PEER_ISN + 1, 64240, options=[])
    snap = sock.snapshot()
    assert (snap.mss, snap.peer_mss, snap.sack, snap.timestamps, snap.snd_wscale) == (
        536,
        536,
        False,
        False,
        None,
    )
    assert sock.send(b"q" * 600) == 600
    a, b = peer.expect_many(2)
    peer.check(a, ".", SUT_ISS + 1, PEER_ISN + 1, 64240, b"q" * 536, [])
    peer.check(b, "P.", SUT_ISS + 537, PEER_ISN + 1, 64240, b"q" * 64, [])


def test_client_established_helper_no_timestamps() -> None:
    c = client_established(NO_TS)
    assert c.sock.snapshot().timestamps is False
    c.sock.send(b"abc")
    c.expect("P.", b"abc")
    c.expect_nothing()


def test_old_duplicate_synack_in_syn_sent_gets_rst_seq_its_ack() -> None:
    host = make_host()
    peer = Peer(host, port=SUT_PORT, sut_port=PEER_PORT)
    sock = host.socket()
    sock.bind(("0.0.0.0", PEER_PORT))
    sock.connect_ex((PEER_IP, SUT_PORT))
    peer.expect("S", SUT_ISS, 0)
    peer.advance(100 * MS)
    # RFC 9293 §3.10.7.3: SEG.ACK =< ISS or > SND.NXT -> <SEQ=SEG.ACK><CTL=RST>, stay in SYN_SENT
    peer.send("S.", 90000, 77777, 65535, b"", NO_TS.encode(0))
    peer.expect("R", 77777, 0, 0, options=[])
    assert sock.state is State.SYN_SENT
    peer.send("S.", 90000, SUT_ISS, 65535, b"", NO_TS.encode(0))  # ack == ISS: also unacceptable
    peer.expect("R", SUT_ISS, 0, 0)
    assert sock.state is State.SYN_SENT
    # a RST with an unacceptable ACK is dropped silently
    peer.send("R.", 0, 77777, 0)
    peer.expect_nothing()
    assert sock.state is State.SYN_SENT
    # a RST without ACK is dropped too (RFC 9293: "Otherwise (no ACK) drop the segment")
    peer.send("R", 0, 0, 0)
    peer.expect_nothing()
    assert sock.state is State.SYN_SENT
    # the real SYN-ACK still completes the handshake
    peer.send("S.", PEER_ISN, SUT_ISS + 1, 65535, b"", NO_TS.encode(0))
    peer.expect(".", SUT_ISS + 1, PEER_ISN + 1, 502, options=[])
    assert sock.state is State.ESTABLISHED


def test_rst_ack_to_syn_refuses_the_connection() -> None:
    host = make_host()
    peer = Peer(host, port=SUT_PORT, sut_port=PEER_PORT)
    sock = host.socket()
    sock.bind(("0.0.0.0", PEER_PORT))
    sock.connect_ex((PEER_IP, SUT_PORT))
    peer.expect("S", SUT_ISS, 0)
    peer.advance(1 * MS)
    peer.send("R.", 0, SUT_ISS + 1, 0)
    peer.expect_nothing()
    assert sock.state is State.CLOSED
    assert host.next_deadline() is None
    assert sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_ERROR) == errno.ECONNREFUSED
    assert sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_ERROR) == 0
    assert host.connections() == []


def test_connect_ex_reports_refusal_once() -> None:
    host = make_host()
    peer = Peer(host, port=SUT_PORT, sut_port=PEER_PORT)
    sock = host.socket()
    sock.bind(("0.0.0.0", PEER_PORT))
    sock.connect_ex((PEER_IP, SUT_PORT))
    peer.expect("S", SUT_ISS, 0)
    peer.send("R.", 0, SUT_ISS + 1, 0)
    assert sock.connect_ex((PEER_IP, SUT_PORT)) == errno.ECONNREFUSED
    # the error was reported: a new connect() on the same socket starts over (Linux allows it)
    assert sock.connect_ex((PEER_IP, SUT_PORT)) == errno.EINPROGRESS
    peer.expect("S", SUT_ISS, 0)
    peer.send("R.", 0, SUT_ISS + 1, 0)
    with pytest.raises(ConnectionRefusedError):
        sock.connect((PEER_IP, SUT_PORT))


# ---------------------------------------------------------------------------------------------------------
# segments for nothing: RFC 9293 §3.10.7.1 (CLOSED)


def test_syn_to_closed_port_gets_rst_ack() -> None:
    host = make_host()
    peer = Peer(host)
    peer.send("S", PEER_ISN, 0, 65535, b"", ALL.encode(7000))
    # <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    peer.expect("R.", 0, PEER_ISN + 1, 0, options=[])
    peer.send("S", PEER_ISN, 0, 65535, b"data")  # SYN with data: SEG.LEN = 1 + 4
    peer.expect("R.", 0, PEER_ISN + 5, 0)
    peer.send("F", PEER_ISN, 0, 65535)  # ACK-less FIN
    peer.expect("R.", 0, PEER_ISN + 1, 0)


def test_ack_to_closed_port_gets_rst_seq_seg_ack() -> None:
    host = make_host()
    peer = Peer(host)
    peer.send(".", PEER_ISN, 4242, 512)
    peer.expect("R", 4242, 0, 0, options=[])
    peer.send("P.", PEER_ISN, 0xFFFFFFF0, 512, b"abc")
    peer.expect("R", 0xFFFFFFF0, 0, 0)
    peer.send("R.", PEER_ISN, 4242, 0)  # never a RST for a RST
    peer.send("R", PEER_ISN, 0, 0)
    peer.expect_nothing()
    assert host.connections() == []


def test_segment_for_a_listening_port_with_ack_gets_rst() -> None:
    host = make_host(tcp_syncookies=0)
    peer = Peer(host)
    server_listen(host)
    # RFC 9293 §3.10.7.2: any ACK in LISTEN is bad -> <SEQ=SEG.ACK><CTL=RST>
    peer.send(".", PEER_ISN, 31337, 512)
    peer.expect("R", 31337, 0, 0)
    peer.send("R", PEER_ISN, 0, 0)  # RST to a listener: ignored
    peer.send("F", PEER_ISN, 0, 0)  # neither SYN nor ACK: dropped
    peer.expect_nothing()
    assert [s.state for s in host.connections()] == [State.LISTEN]


# ---------------------------------------------------------------------------------------------------------
# simultaneous open (RFC 9293 Figure 8)


def test_simultaneous_open() -> None:
    host = make_host()
    events: list[tuple[State, State]] = []
    host.subscribe(lambda ev: events.append((ev.old, ev.new)) if hasattr(ev, "old") else None)
    peer = Peer(host, port=SUT_PORT, sut_port=PEER_PORT)
    peer.advance(1 * SEC)
    sock = host.socket()
    sock.bind(("0.0.0.0", PEER_PORT))
    sock.connect_ex((PEER_IP, SUT_PORT))
    peer.expect("S", SUT_ISS, 0, 64240, options=sut_syn_options(1000, 0))
    # the SYNs cross: the peer's SYN (no ACK) arrives in SYN_SENT
    peer.advance(1010 * MS)
    peer.send("S", PEER_ISN, 0, 65535, b"", NO_SACK.encode(8010))
    # a SYN-ACK with our ISS (tcp_send_synack()), window unscaled; its options are those of our SYN
    # (tcp_syn_options() looks at the sysctls, not at the peer's SYN: sackOK although the peer has none)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 64240, options=sut_syn_options(1010, 8010))
    assert sock.state is State.SYN_RCVD
    with pytest.raises(BlockingIOError):
        sock.send(b"early")
    # the peer's own SYN-ACK acknowledges our SYN: ESTABLISHED. Linux's tcp_data_queue() sees the SYN-ACK's
    # sequence space (5000:5001) as a duplicate and ACKs it at once.
    peer.advance(1020 * MS)
    peer.send("S.", PEER_ISN, SUT_ISS + 1, 65535, b"", NO_SACK.encode(8020, 1000))
    peer.expect(".", SUT_ISS + 1, PEER_ISN + 1, 502, options=ts_opts(1020, 8020))
    assert sock.state is State.ESTABLISHED
    assert events == [
        (State.CLOSED, State.SYN_SENT),
        (State.SYN_SENT, State.SYN_RCVD),
        (State.SYN_RCVD, State.ESTABLISHED),
    ]
    assert host.next_deadline() is None
    assert sock.send(b"data") == 4
    peer.expect("P.", SUT_ISS + 1, PEER_ISN + 1, 502, b"data", ts_opts(1020, 8020))


def test_simultaneous_open_completed_by_a_plain_ack() -> None:
    host = make_host()
    peer = Peer(host, port=SUT_PORT, sut_port=PEER_PORT)
    sock = host.socket()
    sock.bind(("0.0.0.0", PEER_PORT))
    sock.connect_ex((PEER_IP, SUT_PORT))
    peer.expect("S", SUT_ISS, 0)
    peer.send("S", PEER_ISN, 0, 65535, b"", NO_TS.encode(0))
    # TS too (TSecr 0: the peer sent no TS), since our SYN had it
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 64240, options=sut_syn_options(0, 0))
    # the SYN-ACK is retransmitted on the SYN's timer (1 s after the SYN)
    peer.advance(1 * SEC)
    peer.expect("S.", SUT_ISS, PEER_ISN + 1, 64240, options=sut_syn_options(1000, 0))
    peer.advance(1100 * MS)
    peer.send(".", PEER_ISN + 1, SUT_ISS + 1, 512)
    peer.expect_nothing()
    assert sock.state is State.ESTABLISHED
    assert sock.snapshot().snd_wnd == 512 << 7


def test_accept_gives_connections_in_handshake_order() -> None:
    host = make_host()
    lsock = server_listen(host)
    peers = [Peer(host, port=40000 + i) for i in range(3)]
    for p in peers:
        p.send("S", PEER_ISN, 0, 65535)
        p.expect("S.", SUT_ISS, PEER_ISN + 1)
    for p in reversed(peers):
        p.send(".", PEER_ISN + 1, SUT_ISS + 1, 512)
    ports = [lsock.accept()[1][1] for _ in range(3)]
    assert ports == [40002, 40001, 40000]
    with pytest.raises(BlockingIOError):
        lsock.accept()


def test_established_fixture_invariants() -> None:
    c: Conn = server_established()
    assert c.host.next_deadline() is None
    assert c.peer_ts == PEER_TS_BASE + 200
