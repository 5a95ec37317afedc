"""The socket facade (Python's non-blocking socket semantics with Linux's errnos) and the observability
surface: the event stream, snapshot(), host.connections()."""

from __future__ import annotations

import errno
import socket as pysocket

import pytest

from stack import (
    MS,
    SEC,
    RttSample,
    SegmentDropped,
    SegmentReceived,
    SegmentSent,
    SocketEvent,
    State,
    StateChanged,
    TimerArmed,
    TimerCancelled,
    TimerFired,
)
from stack.events import Event

from .helpers import (
    ALL,
    NO_TS,
    PEER_IP,
    PEER_ISN,
    SUT_IP,
    SUT_ISS,
    SUT_PORT,
    Peer,
    client_established,
    make_host,
    server_established,
    server_listen,
)

CONN = (SUT_IP, SUT_PORT, PEER_IP, 40000)


def summary(ev: Event) -> tuple[object, ...]:
    """A compact, exact view of an event (segments as flags/seq/ack/len)."""
    name = type(ev).__name__
    if isinstance(ev, SegmentSent | SegmentReceived):
        s = ev.segment
        return (name, ev.now, ev.conn, s.flags, s.seq, s.ack, len(s.payload)) + (
            (ev.reason,) if isinstance(ev, SegmentSent) else ()
        )
    if isinstance(ev, SegmentDropped):
        return (name, ev.now, ev.conn, ev.reason)
    if isinstance(ev, StateChanged):
        return (name, ev.now, ev.conn, ev.old, ev.new, ev.cause)
    if isinstance(ev, TimerArmed):
        return (name, ev.now, ev.conn, ev.timer, ev.deadline)
    if isinstance(ev, TimerFired | TimerCancelled):
        return (name, ev.now, ev.conn, ev.timer)
    if isinstance(ev, RttSample):
        return (name, ev.now, ev.conn, ev.rtt, ev.srtt, ev.rttvar, ev.rto)
    if isinstance(ev, SocketEvent):
        return (name, ev.now, ev.conn, ev.what)
    return (name, ev.now)


# ---------------------------------------------------------------------------------------------------------
# the event stream


def test_event_stream_of_a_passive_open_and_one_data_exchange() -> None:
    host = make_host()
    events: list[Event] = []
    host.subscribe(events.append)
    peer = Peer(host)
    lsock = server_listen(host)
    peer.advance(100 * MS)
    peer.send("S", PEER_ISN, 0, 65535, b"", NO_TS.encode(0))
    peer.advance(200 * MS)
    peer.send(".", PEER_ISN + 1, SUT_ISS + 1, 512)
    sock, _ = lsock.accept()
    sock.send(b"hello")
    peer.advance(300 * MS)
    peer.send(".", PEER_ISN + 1, SUT_ISS + 6, 512)
    assert [summary(e) for e in events] == [
        ("SocketEvent", 0, ("0.0.0.0", 8080, "0.0.0.0", 0), "listening"),
        ("SegmentReceived", 100 * MS, None, 0x02, 5000, 0, 0),
        ("StateChanged", 100 * MS, CONN, State.LISTEN, State.SYN_RCVD, "SYN received"),
        ("SegmentSent", 100 * MS, CONN, 0x12, 1000, 5001, 0, "syn-ack"),
        ("TimerArmed", 100 * MS, CONN, "syn-ack", 1100 * MS),
        ("SegmentReceived", 200 * MS, None, 0x10, 5001, 1001, 0),
        ("TimerCancelled", 200 * MS, CONN, "syn-ack"),
        ("RttSample", 200 * MS, CONN, 100 * MS, 100 * MS, 50 * MS, 300 * MS),
        ("StateChanged", 200 * MS, CONN, State.SYN_RCVD, State.ESTABLISHED, "ACK of our SYN"),
        ("SocketEvent", 200 * MS, CONN, "connected"),
        ("SocketEvent", 200 * MS, CONN, "accept-ready"),
        ("SocketEvent", 200 * MS, CONN, "accepted"),
        ("SegmentSent", 200 * MS, CONN, 0x18, 1001, 5001, 5, "data"),
        ("TimerArmed", 200 * MS, CONN, "retransmit", 500 * MS),
        ("SegmentReceived", 300 * MS, CONN, 0x10, 5001, 1006, 0),
        ("RttSample", 300 * MS, CONN, 100 * MS, 100 * MS, 37_500, 300 * MS),
        ("TimerCancelled", 300 * MS, CONN, "retransmit"),
    ]


def test_event_stream_reports_timer_firing_and_retransmission() -> None:
    c = client_established(NO_TS, t0=0)
    events: list[Event] = []
    c.host.subscribe(events.append)
    c.sock.send(b"x")
    c.expect("P.", b"x")
    c.advance(400 * MS)
    c.expect("P.", b"x")
    kinds = [summary(e) for e in events if not isinstance(e, StateChanged)]
    conn = ("10.0.0.1", 40000, PEER_IP, SUT_PORT)
    assert kinds[:2] == [
        ("SegmentSent", 100 * MS, conn, 0x18, 1001, 5001, 1, "data"),
        ("TimerArmed", 100 * MS, conn, "retransmit", 400 * MS),
    ]
    assert ("TimerFired", 400 * MS, conn, "retransmit") in kinds
    assert ("SegmentSent", 400 * MS, conn, 0x18, 1001, 5001, 1, "retransmit") in kinds
    assert ("TimerArmed", 400 * MS, conn, "retransmit", 1000 * MS) in kinds
    assert any(isinstance(e, SocketEvent) is False and type(e).__name__ == "CwndChanged" for e in events)


def test_dropped_segments_carry_a_reason_name() -> None:
    c = server_established(ALL)
    reasons: list[tuple[object, str]] = []
    c.host.subscribe(lambda e: reasons.append((e.conn, e.reason)) if isinstance(e, SegmentDropped) else None)
    c.advance(1 * SEC)
    c.psend(".", ack=c.snd + 10)  # ACK of unsent data
    c.peer.send(".", c.rcv, c.snd, 512, b"", b"")  # no TS on a TS connection: accepted (Linux does)
    c.psend(".", seq=c.rcv + 10_000_000)  # out of window
    c.expect(".")
    Peer(c.host, port=41111).send(".", 1, 2, 512)  # nothing listens on that 4-tuple with an ACK
    bad = bytearray(c.peer.packet(".", c.rcv, c.snd))
    bad[-1] ^= 0xFF  # corrupt the TCP header: bad checksum
    c.host.receive(bytes(bad), c.now)
    assert reasons == [
        (CONN, "ack-of-unsent-data"),
        (CONN, "out-of-window"),
        (("0.0.0.0", 8080, "0.0.0.0", 0), "ack-to-listener"),
        (None, "bad-tcp-checksum"),
    ]


def test_unsubscribe_stops_events() -> None:
    host = make_host()
    seen: list[Event] = []
    unsubscribe = host.subscribe(seen.append)
    server_listen(host)
    n = len(seen)
    unsubscribe()
    Peer(host).send("S", PEER_ISN, 0, 65535)
    assert len(seen) == n
    assert host.observed is False


# ---------------------------------------------------------------------------------------------------------
# snapshot() and host.connections()


def test_snapshot_matches_the_exchanged_segments() -> None:
    c = server_established(ALL)
    c.advance(300 * MS)
    c.psend("P.", b"r" * 300)
    c.rcv += 300
    c.expect(".")
    c.sock.send(b"s" * 2000)
    segs = c.peer.expect_many(2)
    snap = c.sock.snapshot()
    assert snap.state is State.ESTABLISHED
    assert (snap.local, snap.remote) == ((SUT_IP, SUT_PORT), (PEER_IP, 40000))
    assert (snap.iss, snap.irs) == (SUT_ISS, PEER_ISN)
    assert (snap.snd_una, snap.snd_nxt) == (c.snd, c.snd + 2000)
    assert snap.snd_wnd == 512 << 7
    assert (snap.snd_wl1, snap.snd_wl2) == (c.rcv - 300, c.snd)
    assert snap.rcv_nxt == c.rcv
    assert snap.rcv_wup == c.rcv  # the last ACK advertised the window at RCV.NXT
    assert snap.rcv_wnd == segs[-1].window << 7  # what we advertised, all still available
    assert (snap.mss, snap.advmss, snap.peer_mss) == (1448, 1460, 1460)
    assert (snap.snd_wscale, snap.rcv_wscale, snap.sack, snap.timestamps) == (7, 7, True, True)
    assert (snap.cwnd, snap.ssthresh, snap.flight) == (10, None, 2)
    assert (snap.srtt, snap.rto) == (100 * MS, 300 * MS)
    assert snap.timers == {"retransmit": 600 * MS}
    assert (snap.send_buffered, snap.unsent, snap.recv_buffered) == (2000, 0, 300)
    assert (snap.retransmits, snap.total_retrans, snap.backoff) == (0, 0, 0)
    assert snap.id == CONN


def test_snapshot_counts_retransmissions_and_backoff() -> None:
    c = server_established(NO_TS)
    c.advance(300 * MS)
    c.sock.send(b"z")
    c.expect("P.", b"z")
    c.advance(600 * MS)
    c.expect("P.", b"z")
    c.advance(1200 * MS)
    c.expect("P.", b"z")
    snap = c.sock.snapshot()
    assert (snap.retransmits, snap.total_retrans, snap.backoff, snap.rto) == (2, 2, 2, 1200 * MS)
    assert snap.timers == {"retransmit": 2400 * MS}
    assert snap.cwnd == 1  # RFC 5681 §3.1 loss window after an RTO (ssthresh: see the recovery tests)


def test_host_connections_is_what_ss_would_list() -> None:
    host = make_host()
    server_listen(host)
    a = client_established(NO_TS, t0=0, host=host)  # :40000 -> peer:8080
    assert [(s.state, s.local[1], s.remote) for s in host.connections()] == [
        (State.LISTEN, 8080, ("0.0.0.0", 0)),
        (State.ESTABLISHED, 40000, (PEER_IP, 8080)),
    ]
    a.sock.close()
    a.expect("F.")
    a.snd += 1
    a.psend("F.")
    a.rcv += 1
    a.expect(".")
    p = Peer(host, port=41000)
    p.send("S", PEER_ISN, 0, 65535)
    p.expect("S.", SUT_ISS, PEER_ISN + 1)
    # listeners first, then by local and remote address
    assert [(s.state, s.local[1], s.remote, s.is_request) for s in host.connections()] == [
        (State.LISTEN, 8080, ("0.0.0.0", 0), False),
        (State.SYN_RCVD, 8080, (PEER_IP, 41000), True),
        (State.TIME_WAIT, 40000, (PEER_IP, 8080), False),
    ]


# ---------------------------------------------------------------------------------------------------------
# the socket calls


def test_calls_on_an_unconnected_socket() -> None:
    host = make_host()
    s = host.socket()
    assert s.state is State.CLOSED and s.snapshot() is None
    assert s.getsockname() == ("0.0.0.0", 0)
    with pytest.raises(OSError) as e1:
        s.recv(10)
    assert e1.value.errno == errno.ENOTCONN
    with pytest.raises(BrokenPipeError):  # Linux sk_stream_wait_connect(): CLOSE -> EPIPE
        s.send(b"x")
    with pytest.raises(OSError) as e2:
        s.getpeername()
    assert e2.value.errno == errno.ENOTCONN
    with pytest.raises(OSError) as e3:
        s.accept()
    assert e3.value.errno == errno.EINVAL


def test_bind_errors() -> None:
    host = make_host()
    s = host.socket()
    with pytest.raises(OSError) as e1:
        s.bind(("10.9.9.9", 80))  # not an address of this host
    assert e1.value.errno == errno.EADDRNOTAVAIL
    s.bind(("10.0.0.1", 80))
    assert s.getsockname() == ("10.0.0.1", 80)
    with pytest.raises(OSError) as e2:
        s.bind(("10.0.0.1", 81))  # already bound
    assert e2.value.errno == errno.EINVAL
    t = host.socket()
    with pytest.raises(OSError) as e3:
        t.bind(("0.0.0.0", 80))  # the wildcard overlaps 10.0.0.1:80
    assert e3.value.errno == errno.EADDRINUSE
    with pytest.raises(OverflowError):
        t.bind(("0.0.0.0", 70000))
    with pytest.raises(TypeError):
        t.bind("0.0.0.0:80")  # type: ignore[arg-type]


def test_listen_without_bind_picks_a_port_and_connect_on_listener_is_eisconn() -> None:
    host = make_host(ip_local_port_range=(50000, 50001))
    s = host.socket()
    s.listen(5)
    assert s.state is State.LISTEN
    assert s.getsockname() == ("0.0.0.0", 50001)
    assert s.connect_ex((PEER_IP, 80)) == errno.EISCONN
    assert s.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_ACCEPTCONN) == 1


def test_closed_socket_raises_ebadf_and_close_is_idempotent() -> None:
    c = server_established(NO_TS)
    c.sock.close()
    c.sock.close()
    for call in (lambda: c.sock.recv(1), lambda: c.sock.send(b"x"), lambda: c.sock.getsockname()):
        with pytest.raises(OSError) as exc:
            call()
        assert exc.value.errno == errno.EBADF


def test_send_accepts_what_fits_the_send_buffer_then_eagain() -> None:
    c = server_established(NO_TS)
    c.sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_SNDBUF, 4096)
    assert c.sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_SNDBUF) == 8192  # Linux doubles it
    c.advance(300 * MS)
    c.psend(".", win=0)  # the peer's window is closed: nothing leaves, the buffer fills
    assert c.sock.send(b"a" * 10_000) == 8192
    with pytest.raises(BlockingIOError) as exc:
        c.sock.send(b"b")
    assert exc.value.errno == errno.EAGAIN
    with pytest.raises(BlockingIOError) as exc2:
        c.sock.sendall(b"c" * 10)
    assert exc2.value.characters_written == 0
    assert c.sock.send(b"") == 0
    with pytest.raises(TypeError):
        c.sock.send("text")  # type: ignore[arg-type]


def test_recv_peek_and_eof() -> None:
    c = server_established(NO_TS)
    c.advance(300 * MS)
    c.psend("P.", b"abcdef")
    c.rcv += 6
    c.expect(".")
    assert c.sock.recv(3, pysocket.MSG_PEEK) == b"abc"
    assert c.sock.recv(4) == b"abcd"
    assert c.sock.recv(100) == b"ef"
    with pytest.raises(BlockingIOError):
        c.sock.recv(1)
    c.psend("F.")
    c.rcv += 1
    assert c.sock.recv(1) == b""
    assert c.sock.recv(1) == b""
    with pytest.raises(ValueError):
        c.sock.recv(-1)


def test_socket_options_roundtrip() -> None:
    host = make_host()
    s = host.socket()
    s.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
    s.setsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_NODELAY, 1)
    s.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_RCVBUF, 1000)
    assert s.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR) == 1
    assert s.getsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_NODELAY) == 1
    # Linux doubles SO_RCVBUF and floors it at SOCK_MIN_RCVBUF (2304)
    assert s.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_RCVBUF) == 2304
    assert s.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_TYPE) == pysocket.SOCK_STREAM
    assert s.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER, 8) == b"\x00" * 8
    assert s.getsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_KEEPIDLE) == 7200
    with pytest.raises(OSError) as exc:
        s.setsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_KEEPCNT, 128)  # MAX_TCP_KEEPCNT 127
    assert exc.value.errno == errno.EINVAL
    with pytest.raises(OSError) as exc2:
        s.setsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_KEEPIDLE, 0)
    assert exc2.value.errno == errno.EINVAL
    with pytest.raises(ValueError):
        s.setblocking(True)
    s.setblocking(False)
    assert s.gettimeout() == 0.0


def test_tcp_maxseg_limits_the_advertised_mss() -> None:
    host = make_host()
    peer = Peer(host, port=SUT_PORT, sut_port=40000)
    s = host.socket()
    s.setsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_MAXSEG, 1000)
    s.bind(("0.0.0.0", 40000))
    s.connect_ex((PEER_IP, SUT_PORT))
    seg = peer.expect("S", SUT_ISS, 0)
    assert seg.mss == 1000


def test_shutdown_rdwr_sends_fin_and_reads_eof() -> None:
    c = server_established(NO_TS)
    c.sock.shutdown(pysocket.SHUT_RDWR)
    c.expect("F.")
    assert c.sock.recv(10) == b""
    assert c.sock.state is State.FIN_WAIT_1
    with pytest.raises(OSError) as exc:
        c.sock.shutdown(99)
    assert exc.value.errno == errno.EINVAL


def test_getpeername_and_getsockname_of_an_accepted_socket() -> None:
    c = server_established(NO_TS)
    assert c.sock.getsockname() == (SUT_IP, SUT_PORT)
    assert c.sock.getpeername() == (PEER_IP, 40000)
    assert c.listener.getsockname() == ("0.0.0.0", SUT_PORT)
    assert "ESTABLISHED" in repr(c.sock)


def test_time_never_goes_backwards() -> None:
    host = make_host()
    host.poll(5 * SEC)
    with pytest.raises(ValueError):
        host.poll(4 * SEC)
