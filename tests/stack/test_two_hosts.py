"""Two stacks talking over an in-memory wire on a virtual clock: handshake, bulk data both ways, graceful
close, TIME_WAIT expiry; every state transition legal (RFC 9293 Figure 5 + Linux's shortcuts)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import socket as pysocket

from stack import LEGAL_TRANSITIONS, MS, SEC, Host, State

from .helpers import Wire

A_IP, B_IP = "198.18.0.1", "198.18.0.2"


def payload(n: int, salt: bytes) -> bytes:
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.blake2b(salt + i.to_bytes(4, "big")).digest()
        i += 1
    return bytes(out[:n])


def pair(delay: int = 10 * MS) -> tuple[Wire, Host, Host]:
    a = Host(A_IP, seed=11, name="A")
    b = Host(B_IP, seed=22, name="B")
    return Wire(a, b, delay=delay), a, b


def test_handshake_segments_and_states() -> None:
    w, a, b = pair()
    srv = b.socket()
    srv.bind(("0.0.0.0", 80))
    srv.listen(8)
    cli = a.socket()
    assert cli.connect_ex((B_IP, 80)) == errno.EINPROGRESS
    w.run(1 * SEC)
    conn, addr = srv.accept()
    assert addr == (A_IP, cli.getsockname()[1])
    assert cli.state is State.ESTABLISHED and conn.state is State.ESTABLISHED
    flags = [(name, seg.flags) for _, name, seg in w.log]
    assert flags == [("A", 0x02), ("B", 0x12), ("A", 0x10)]
    times = [t for t, _, _ in w.log]
    assert times == [0, 10 * MS, 20 * MS]
    syn, synack, ack = (seg for _, _, seg in w.log)
    assert synack.ack == (syn.seq + 1) % 2**32 and ack.ack == (synack.seq + 1) % 2**32
    assert ack.seq == (syn.seq + 1) % 2**32
    # both sides negotiated everything
    for s in (cli, conn):
        snap = s.snapshot()
        assert (snap.sack, snap.timestamps, snap.snd_wscale, snap.mss) == (True, True, 7, 1448)
    assert cli.snapshot().srtt == 20 * MS and conn.snapshot().srtt == 20 * MS  # 2 x 10 ms each way
    assert cli.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_ERROR) == 0
    assert a.next_deadline() is None and b.next_deadline() is None


def test_bulk_data_both_ways_and_graceful_close() -> None:
    w, a, b = pair(delay=5 * MS)
    srv = b.socket()
    srv.bind(("0.0.0.0", 80))
    srv.listen(8)
    cli = a.socket()
    cli.connect_ex((B_IP, 80))
    w.run(100 * MS)
    conn, _ = srv.accept()

    up = payload(300_000, b"up")
    down = payload(200_000, b"down")
    state = {"up_sent": 0, "down_sent": 0}
    got_up = bytearray()
    got_down = bytearray()

    def app() -> None:
        for sock, data, key in ((cli, up, "up_sent"), (conn, down, "down_sent")):
            if state[key] < len(data):
                with contextlib.suppress(BlockingIOError):
                    state[key] += sock.send(data[state[key] : state[key] + 65536])
        for sock, sink in ((conn, got_up), (cli, got_down)):
            while True:
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                sink.extend(chunk)

    w.run(20 * SEC, app)
    assert bytes(got_up) == up
    assert bytes(got_down) == down
    assert cli.snapshot().total_retrans == 0 and conn.snapshot().total_retrans == 0
    # nothing outstanding, nothing armed
    for s in (cli, conn):
        snap = s.snapshot()
        assert snap.snd_una == snap.snd_nxt and snap.send_buffered == 0
    assert w.now == 20 * SEC

    # graceful close: A first; B reads EOF and closes -> A ends in TIME_WAIT, B is gone
    t_close = w.now
    port = cli.getsockname()[1]
    cli.close()
    cli_conn = cli.conn
    w.run(t_close + 1 * SEC)
    assert conn.state is State.CLOSE_WAIT
    assert conn.recv(10) == b""
    conn.close()
    w.run(t_close + 2 * SEC)
    assert cli_conn.state is State.TIME_WAIT
    assert conn.conn.state is State.CLOSED
    assert [s.state for s in b.connections()] == [State.LISTEN]
    assert [s.state for s in a.connections()] == [State.TIME_WAIT]
    tw_deadline = cli_conn.timers["time-wait"]
    assert tw_deadline > t_close + 1 * SEC
    w.run(tw_deadline - 1)
    assert cli_conn.state is State.TIME_WAIT
    w.run(tw_deadline)
    assert cli_conn.state is State.CLOSED
    assert a.connections() == [] and a.next_deadline() is None
    # the final flags on the wire: FIN from A, its ACK, FIN from B, ACK from A
    closing = [(name, seg.flags) for t, name, seg in w.log if t >= t_close]
    assert closing[0] == ("A", 0x11)
    assert closing[-1] == ("A", 0x10)
    assert ("B", 0x11) in closing
    # every transition RFC 9293 / Linux allows, and the expected path on each side
    for ev in w.transitions:
        assert (ev.old, ev.new) in LEGAL_TRANSITIONS, ev
    by_conn: dict[tuple[str, int, str, int], list[State]] = {}
    for ev in w.transitions:
        path = by_conn.setdefault(ev.conn, [ev.old])
        assert path[-1] is ev.old, (ev, path)
        path.append(ev.new)
    a_id = (A_IP, port, B_IP, 80)
    b_id = (B_IP, 80, A_IP, port)
    assert by_conn[a_id] == [
        State.CLOSED,
        State.SYN_SENT,
        State.ESTABLISHED,
        State.FIN_WAIT_1,
        State.FIN_WAIT_2,
        State.TIME_WAIT,
        State.CLOSED,
    ]
    assert by_conn[b_id] == [
        State.LISTEN,
        State.SYN_RCVD,
        State.ESTABLISHED,
        State.CLOSE_WAIT,
        State.LAST_ACK,
        State.CLOSED,
    ]


def test_simultaneous_close_between_two_stacks() -> None:
    w, a, b = pair()
    srv = b.socket()
    srv.bind(("0.0.0.0", 80))
    srv.listen(8)
    cli = a.socket()
    cli.connect_ex((B_IP, 80))
    w.run(1 * SEC)
    conn, _ = srv.accept()
    c1, c2 = cli.conn, conn.conn
    cli.close()
    conn.close()  # both FINs leave at the same instant and cross
    w.run(2 * SEC)
    assert c1.state is State.TIME_WAIT and c2.state is State.TIME_WAIT
    for ev in w.transitions:
        assert (ev.old, ev.new) in LEGAL_TRANSITIONS, ev
    assert [(ev.old, ev.new) for ev in w.transitions if ev.conn == c1.id][-2:] == [
        (State.FIN_WAIT_1, State.CLOSING),
        (State.CLOSING, State.TIME_WAIT),
    ]
    w.run(70 * SEC)
    assert c1.state is State.CLOSED and c2.state is State.CLOSED


def test_connect_to_a_closed_port_is_refused() -> None:
    w, a, _b = pair()
    cli = a.socket()
    cli.connect_ex((B_IP, 81))
    w.run(1 * SEC)
    assert cli.state is State.CLOSED
    assert cli.connect_ex((B_IP, 81)) == errno.ECONNREFUSED
    assert [(name, seg.flags) for _, name, seg in w.log] == [("A", 0x02), ("B", 0x14)]


def test_peer_crash_then_rst_on_next_segment() -> None:
    w, a, b = pair()
    srv = b.socket()
    srv.bind(("0.0.0.0", 80))
    srv.listen(8)
    cli = a.socket()
    cli.connect_ex((B_IP, 80))
    w.run(1 * SEC)
    srv.accept()
    b.crash()  # B forgets everything silently
    cli.send(b"anyone there?")
    w.run(2 * SEC)
    assert cli.state is State.CLOSED
    assert cli.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_ERROR) == errno.ECONNRESET
