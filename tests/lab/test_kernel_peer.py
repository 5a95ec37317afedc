"""Our stack against Linux: a real kernel socket in the lab's private namespace, over a TUN device.

Both roles: our client <-> Linux server (kernel_role="server") and Linux client <-> our server
(kernel_role="client"). Our side is read from the stack's snapshots and trace, the kernel's from inet_diag.
"""

from __future__ import annotations

import errno
import socket as pysocket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stack import State, StateChanged
from tcpplay.capture import LOST
from tcpplay.lab import HostEvent, Lab

from .realkernel import Guard, both_ways, kernel_io, netns_guard, real_kernel, stack_io

__all__ = ["netns_guard", "real_kernel"]

MIB = 1 << 20
PORT = 8080
ROLES = ["server", "client"]  # the kernel's role


@dataclass
class Pair:
    lab: Lab
    ours: Any  # our stack's socket
    theirs: pysocket.socket  # the kernel's socket
    us: str  # our host's name
    kernel: str  # the kernel peer's name


def establish(lab: Lab, port: int = PORT) -> Pair:
    """A new connection between our host and the kernel, whichever side the kernel plays."""
    kernel = lab.kernel
    assert kernel is not None
    us = lab.other(kernel.name)
    if kernel.name == "server":
        if kernel.listener is None:
            kernel.listen(port)
        ours = lab.connect(us, kernel.name, port)
        theirs = None
        assert lab.run_until(lambda: ours.state is State.ESTABLISHED, 5)
        deadline = time.monotonic() + 5
        while theirs is None and time.monotonic() < deadline:
            lab.pump(0.01)
            theirs = kernel.accept()
        assert theirs is not None
    else:
        app = lab.apps[us]
        if app.listener is None:
            lab.listen(us, port)
        before = len(app.conns)
        theirs = lab.connect(kernel.name, us, port)
        assert lab.run_until(lambda: len(app.conns) > before, 5), "our server never accepted"
        ours = app.conns[-1]
        assert lab.run_until(lambda: kernel.state(theirs) is State.ESTABLISHED, 5)
    assert ours.state is State.ESTABLISHED
    snap = kernel.snapshot(theirs)
    assert snap is not None and snap.state is State.ESTABLISHED
    return Pair(lab, ours, theirs, us, kernel.name)


@pytest.fixture(params=ROLES, ids=lambda role: f"kernel-{role}")
def pair(request: pytest.FixtureRequest, real_kernel: None, netns_guard: Guard) -> Iterator[Pair]:
    with Lab(peer="kernel", kernel_role=request.param) as lab:
        yield establish(lab)


def our_states(lab: Lab, host: str) -> list[State]:
    return [e.event.new for e in lab.log if isinstance(e, HostEvent) and e.host == host
            and isinstance(e.event, StateChanged)]  # fmt: skip


def test_handshake_options_agree(pair: Pair) -> None:
    """Both sides agree on what the handshake negotiated, each seen from its own side."""
    ours = pair.ours.conn.snapshot()
    theirs = pair.lab.kernel.snapshot(pair.theirs)
    assert ours.local == theirs.remote and ours.remote == theirs.local
    assert ours.sack and theirs.sack and ours.timestamps and theirs.timestamps
    assert ours.snd_wscale == theirs.rcv_wscale and ours.rcv_wscale == theirs.snd_wscale
    assert theirs.mss == 1448 and ours.mss == 1448  # 1500 - 40 - 12 (timestamps)
    syn = pair.lab.capture.records[0].segment
    assert syn is not None and syn.flags & 0x02


def test_8mib_each_way_then_graceful_close(pair: Pair) -> None:
    lab, kernel = pair.lab, pair.lab.kernel
    assert kernel is not None
    seconds = both_ways(lab, stack_io(pair.ours), kernel_io(pair.theirs), 8 * MIB, timeout=40)
    print(f"8 MiB each way with the kernel as {pair.kernel}: {seconds:.2f} s")

    if pair.kernel == "server":
        # We close first: FIN_WAIT_1 -> FIN_WAIT_2 here, CLOSE_WAIT there; then the kernel closes.
        lab.close(pair.us)
        assert lab.run_until(lambda: pair.ours.conn.state is State.FIN_WAIT_2, 5)
        assert kernel.state(pair.theirs) is State.CLOSE_WAIT
        assert pair.theirs.recv(100) == b""  # the kernel application sees end of stream
        pair.theirs.close()
        # Its FIN sits in the TUN device until we pump: the kernel is in LAST_ACK meanwhile.
        assert kernel.state(pair.theirs) is State.LAST_ACK
        assert lab.run_until(lambda: pair.ours.conn.state is State.TIME_WAIT, 5)
        assert lab.run_until(lambda: kernel.snapshot(pair.theirs) is None, 5)  # the kernel forgot it
        assert our_states(lab, pair.us)[-3:] == [State.FIN_WAIT_1, State.FIN_WAIT_2, State.TIME_WAIT]
    else:
        # The kernel closes first: FIN_WAIT_1/2 and TIME_WAIT there (seen after close() only through
        # inet_diag), CLOSE_WAIT then LAST_ACK here.
        pair.theirs.shutdown(pysocket.SHUT_WR)
        assert kernel.state(pair.theirs) is State.FIN_WAIT_1
        assert lab.run_until(lambda: pair.ours.conn.state is State.CLOSE_WAIT, 5)
        assert lab.run_until(lambda: kernel.state(pair.theirs) is State.FIN_WAIT_2, 5)
        assert lab.recv(pair.us) == b""
        pair.theirs.close()  # an orphan in FIN_WAIT_2 now: no fd, still in inet_diag
        lab.close(pair.us)
        assert pair.ours.conn.state is State.LAST_ACK
        assert lab.run_until(lambda: pair.ours.conn.state is State.CLOSED, 5)
        snap = kernel.snapshot(pair.theirs)
        assert snap is not None and snap.state is State.TIME_WAIT and "time-wait" in snap.timers
        assert our_states(lab, pair.us)[-3:] == [State.CLOSE_WAIT, State.LAST_ACK, State.CLOSED]


def test_our_abort_is_econnreset_for_the_kernel(pair: Pair) -> None:
    lab = pair.lab
    lab.send(pair.us, b"before the abort")
    lab.abort(pair.us)  # SO_LINGER {1, 0} + close(): a RST
    rst = lab.capture.records[-1].segment
    assert rst is not None and rst.flags & 0x04
    deadline = time.monotonic() + 5
    with pytest.raises(ConnectionResetError) as caught:
        while time.monotonic() < deadline:
            lab.pump(0.01)
            pair.theirs.setblocking(False)
            try:
                pair.theirs.recv(65536)  # the data first, then ECONNRESET
            except BlockingIOError:
                continue
    assert caught.value.errno == errno.ECONNRESET
    assert lab.run_until(lambda: lab.kernel.snapshot(pair.theirs) is None, 5)

    # And the other way round: the kernel aborts, our recv() raises ECONNRESET.
    again = establish(lab, PORT)
    again.theirs.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER, struct.pack("ii", 1, 0))
    again.theirs.close()
    assert lab.run_until(lambda: again.ours.conn.state is State.CLOSED, 5)
    with pytest.raises(ConnectionResetError):
        again.ours.recv(100)


def test_keepalive_probes_answered_both_ways(pair: Pair) -> None:
    """Our probe (seq = SND.UNA - 1, after TCP_KEEPIDLE 1 s) is ACKed by Linux, and Linux's is ACKed by us."""
    lab, kernel = pair.lab, pair.lab.kernel
    assert kernel is not None
    for name, value in (("SO_KEEPALIVE", 1), ("TCP_KEEPIDLE", 1), ("TCP_KEEPINTVL", 1)):
        lab.setsockopt(pair.us, name, value)
        kernel.setsockopt(name, value, pair.theirs)
    start = lab.capture.total
    snd_nxt = pair.ours.conn.snd_nxt & 0xFFFFFFFF
    k_snd_nxt = pair.ours.conn.rcv_nxt & 0xFFFFFFFF
    lab.advance(1.6)
    records = [r for r in lab.capture.records if r.number > start]
    segs = [(r.src, r.segment) for r in records]

    ours = [i for i, (src, s) in enumerate(segs) if src == pair.us and s.seq == (snd_nxt - 1) & 0xFFFFFFFF]
    assert ours, f"no keepalive probe from our stack in {segs}"
    answer = [src for src, s in segs[ours[0] + 1 :] if src == pair.kernel and s.ack == snd_nxt]
    assert answer, "the kernel did not answer our keepalive probe"

    k_probe = (k_snd_nxt - 1) & 0xFFFFFFFF
    theirs = [i for i, (src, s) in enumerate(segs) if src == pair.kernel and s.seq == k_probe]
    assert theirs, "no keepalive probe from the kernel"
    assert any(src == pair.us and s.ack == k_snd_nxt for src, s in segs[theirs[0] + 1 :])
    snap = kernel.snapshot(pair.theirs)
    assert snap is not None and snap.state is State.ESTABLISHED and snap.probes_out == 0
    assert "keepalive" in snap.timers
    assert pair.ours.conn.snapshot().probes_out == 0


def test_transfer_with_2_percent_loss(pair: Pair) -> None:
    """Loss applied in our link layer, both directions; SACK recovery on both sides delivers it intact."""
    lab, kernel = pair.lab, pair.lab.kernel
    assert kernel is not None
    lab.impair("any", loss=0.02)
    seconds = both_ways(lab, stack_io(pair.ours), kernel_io(pair.theirs), 2 * MIB, timeout=40)
    print(f"2 MiB each way at 2 % loss, kernel as {pair.kernel}: {seconds:.2f} s")
    lost = [r for r in lab.capture.records if r.fate == LOST]
    assert {r.src for r in lost} == {pair.us, pair.kernel}
    assert pair.ours.conn.snapshot().total_retrans > 0
    snap = kernel.snapshot(pair.theirs)
    assert snap is not None and snap.total_retrans > 0


def test_syn_flood_against_linux(real_kernel: None, netns_guard: Guard) -> None:
    """Spoofed SYNs (198.19.x.y) reach the kernel; its SYN-ACKs go nowhere (no-route in the capture) and
    its listener holds the half-open requests, as `ss -tan` would show (SYN-RECV)."""
    with Lab(peer="kernel", kernel_role="server") as lab:
        lab.listen("server", PORT)  # routed to the kernel peer
        lab.syn_flood("server", count=20, port=PORT)
        assert lab.run_until(lambda: lab.count_in_state("server", State.SYN_RCVD) == 20, 5)
        requests = [s for s in lab.connections("server") if s.is_request]
        assert len(requests) == 20 and all(s.remote[0].startswith("198.19.") for s in requests)
        lab.advance(0.05)  # read the SYN-ACKs the kernel queued on tp0
        synacks = [r for r in lab.capture.records if r.src == "server"]
        assert len(synacks) >= 20 and all(r.fate == "no-route" for r in synacks)
        listener = lab.snapshot("server")
        assert listener is not None and listener.state is State.LISTEN
