"""Flow control, Nagle and send-buffer limits (issue: stack data transfer), on the lab's virtual clock.

Each test pins what Linux does: a receiver that stops reading closes its window and never shrinks what it
offered (tcp_select_window()); the sender sends only segments that fit (tcp_snd_wnd_test()), probes a zero
window with SEG.SEQ = SND.UNA - 1 and exponential backoff (tcp_probe_timer()), and resumes on the window
update the receiver sends when a read frees enough room (tcp_cleanup_rbuf()).
"""

from __future__ import annotations

import errno
import itertools
import socket

import pytest

from stack import State
from tcpplay.lab import Lab

MSS = 1448


def small_receiver() -> Lab:
    lab = Lab(seed=1)
    lab.listen("server")
    lab.connect("client", options={"SO_RCVBUF": 4096})  # Linux doubles it: 8192, window up to 4096
    lab.advance(0.1)
    return lab


def sent_by(lab: Lab, host: str, since: int = 0) -> list:
    return [r for r in lab.capture if r.src == host and r.number > since]


def test_zero_window_persist_probes_back_off_and_data_resumes_on_the_window_update() -> None:
    lab = small_receiver()
    mark = lab.capture.total
    # After the handshake Linux sizes the send buffer for two windows (tcp_sndbuf_expand()): 87040.
    assert lab.send("server", bytes(100_000)) == 87040
    lab.advance(3.0)
    server = sent_by(lab, "server", mark)
    client = sent_by(lab, "client", mark)
    data = [r for r in server if r.segment.payload]
    # Two full segments fill the 2920-byte window; the 24 bytes left are not sent as a runt segment
    # (sender SWS avoidance) until the persist timer fires.
    assert [len(r.segment.payload) for r in data[:3]] == [MSS, MSS, 24]
    assert data[2].time > data[1].time + 200_000
    # The receiver never shrinks an offered window: it advertises what is left (24), then 0.
    wins = [r.segment.window for r in client]
    assert wins[:3] == [1472, 24, 0]
    # Zero-window probes: no data, SEG.SEQ = SND.UNA - 1, at exponentially growing intervals.
    probes = [r for r in server if not r.segment.payload and r.time > data[2].time]
    una = data[2].segment.seq + 24
    assert all(r.segment.seq == (una - 1) % 2**32 for r in probes)
    gaps = [b.time - a.time for a, b in itertools.pairwise(probes)]
    assert len(probes) >= 3
    assert all(later > 1.8 * earlier for earlier, later in itertools.pairwise(gaps))
    snap = lab.snapshot("server")
    assert snap is not None and snap.snd_wnd == 0 and "persist" in snap.timers
    # Reading frees the buffer: the receiver announces it at once and the sender resumes.
    mark = lab.capture.total
    assert lab.recv("client", 100_000) == bytes(2920)
    update = sent_by(lab, "client", mark)[0]
    assert update.segment.window == 2896 and not update.segment.payload
    lab.advance(0.05)
    resumed = [r for r in sent_by(lab, "server", mark) if r.segment.payload]
    assert resumed[0].time == update.time + 10_000
    assert resumed[0].segment.seq == una % 2**32
    snap = lab.snapshot("server")
    assert snap is not None and "persist" not in snap.timers


def test_send_raises_eagain_when_the_buffer_is_full_and_epipe_after_shutdown() -> None:
    lab = small_receiver()
    sock = lab.apps["server"].current()
    assert sock is not None
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 87040  # as Linux after connect
    assert sock.send(bytes(100_000)) == 87040
    with pytest.raises(BlockingIOError) as exc:
        sock.send(b"x")
    assert exc.value.errno == errno.EAGAIN
    sock.shutdown(socket.SHUT_WR)
    with pytest.raises(BrokenPipeError):
        sock.send(b"x")


def test_nagle_holds_a_small_segment_while_a_small_one_is_unacked_and_nodelay_sends_it() -> None:
    lab = Lab(seed=1)
    lab.listen("server")
    lab.connect("client")
    lab.advance(0.1)
    mark = lab.capture.total
    lab.send("client", b"a")
    lab.send("client", b"b")  # Nagle (Minshall): a small segment is unacked, so "b" waits
    lab.send("client", b"c")
    first = [r for r in sent_by(lab, "client", mark) if r.segment.payload]
    assert [r.segment.payload for r in first] == [b"a"]
    lab.advance(0.03)  # the ACK of "a" arrives at 120 ms: the held bytes go out together
    held = [r for r in sent_by(lab, "client", mark) if r.segment.payload]
    assert [r.segment.payload for r in held] == [b"a", b"bc"]
    assert held[1].time == 120_000
    mark = lab.capture.total
    lab.setsockopt("client", "TCP_NODELAY", 1)
    lab.send("client", b"d")
    lab.send("client", b"e")
    lab.send("client", b"f")
    fast = [r.segment.payload for r in sent_by(lab, "client", mark) if r.segment.payload]
    assert fast == [b"d", b"e", b"f"]


def test_paws_drops_a_segment_with_an_old_timestamp_and_acks_it() -> None:
    from stack.wire import ACK, PSH, build_packet, ts_option

    lab = Lab(seed=1)
    lab.listen("server")
    lab.connect("client")
    lab.advance(0.1)
    server = lab.hosts["server"]
    conn = next(c for c in server.conns.values())
    assert conn.ts_ok and conn.state is State.ESTABLISHED
    old_ts = (conn.ts_recent - 1000) & 0xFFFFFFFF
    drops: list[str] = []
    server.subscribe(lambda e: drops.append(getattr(e, "reason", "")))
    packet = build_packet(
        conn.raddr,
        conn.laddr,
        conn.rport,
        conn.lport,
        conn.rcv_nxt,
        conn.snd_nxt,
        ACK | PSH,
        502,
        ts_option(old_ts, 0),
        b"stale",
    )
    mark = lab.capture.total
    server.receive(packet, lab.now)
    lab.settle()
    assert "paws" in drops
    assert lab.recv("server") == b""
    reply = sent_by(lab, "server", mark)
    assert len(reply) == 1 and not reply[0].segment.payload and reply[0].segment.ack == conn.rcv_nxt % 2**32


def test_receive_buffer_autotuning_opens_the_window_for_a_fast_reader() -> None:
    lab = Lab(seed=1, delay=0.025)  # RTT 50 ms: a 64 KB window would cap the flow at 1.3 MB/s
    lab.listen("server")
    lab.connect("client")
    lab.advance(0.2)
    sock = lab.apps["client"].current()
    assert sock is not None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    server = lab.apps["server"].current()
    assert server is not None
    start_buf = server.conn.rcvbuf
    for _ in range(4000):
        try:
            while sock.send(bytes(65536)):
                pass
        except BlockingIOError:
            pass
        lab.recv("server", 1 << 24)
        lab.step()
        if lab.seconds > 2.0:
            break
    # Linux tcp_rcv_space_adjust(): the buffer (and with it the window clamp) follows what was read.
    assert start_buf == 131072
    assert server.conn.rcvbuf > 4 * start_buf
    windows = [r.segment.window << 7 for r in lab.capture if r.src == "server"]
    assert max(windows) > 4 * 65535
    locked = small_receiver().apps["client"].current()
    assert locked is not None and locked.conn.rcvbuf == 8192  # SO_RCVBUF set: no autotuning (doubled)
