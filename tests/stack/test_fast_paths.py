"""The two data fast paths change speed, never behaviour: a transfer run with a fast path disabled puts
exactly the same bytes on the wire, at the same times, as the same transfer run with it.

- Receive: Connection._fast_path() (Linux's header prediction). Disabled, every segment takes the full
  RFC 9293 §3.10.7.4 path.
- Send: the second and later segments of a burst go through Host.send_data() with the header the first
  one computed. Disabled here by routing them back through transmit(), which computes the window and the
  options again and builds the packet with build_packet().
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from stack import MS, Connection, Host

Wire = list[tuple[int, str, bytes]]


def transfer(drop_every: int, *, a_to_b: int, b_to_a: int, read_size: int) -> tuple[Wire, bytes, bytes]:
    """Both directions at once over a 5 ms wire that drops every drop_every-th packet; small reads make
    the receiver send window updates. Returns the wire (time, sender, packet) and both digests."""
    a = Host("198.18.0.1", seed=3)
    b = Host("198.18.0.2", seed=4)
    srv = b.socket()
    srv.bind(("0.0.0.0", 8080))
    srv.listen(8)
    cli = a.socket()
    cli.connect_ex(("198.18.0.2", 8080))
    data_a = bytes((i * 7 + 3) % 251 for i in range(a_to_b))
    data_b = bytes((i * 11 + 5) % 241 for i in range(b_to_a))
    got_b, got_a = bytearray(), bytearray()
    wire: Wire = []
    in_flight: list[tuple[int, Host, bytes]] = []
    conn = None
    sent_a = sent_b = 0
    now = count = 0
    while True:
        moved = False
        for name, host, other in (("a", a, b), ("b", b, a)):
            for pkt in host.poll(now):
                moved = True
                count += 1
                wire.append((now, name, pkt))
                if count % drop_every:
                    in_flight.append((now + 5 * MS, other, pkt))
        due = [p for p in in_flight if p[0] <= now]
        in_flight = [p for p in in_flight if p[0] > now]
        for _, host, pkt in due:
            moved = True
            host.receive(pkt, now)
        if conn is None:
            try:
                conn, _ = srv.accept()
                moved = True
            except BlockingIOError:
                pass
        if conn is not None:
            for sock, data, sent in ((cli, data_a, sent_a), (conn, data_b, sent_b)):
                if sent < len(data):
                    try:
                        n = sock.send(data[sent : sent + 20_000])
                    except BlockingIOError:
                        continue
                    moved = True
                    if sock is cli:
                        sent_a += n
                    else:
                        sent_b += n
            for sock, sink in ((conn, got_b), (cli, got_a)):
                try:
                    chunk = sock.recv(read_size)
                except BlockingIOError:
                    continue
                if chunk:
                    moved = True
                    sink += chunk
        if len(got_b) == len(data_a) and len(got_a) == len(data_b):
            break
        if not moved:
            nexts = [t for t, _, _ in in_flight]
            nexts += [d for d in (a.next_deadline(), b.next_deadline()) if d is not None]
            assert nexts, "the transfer stalled"
            now = max(now, min(nexts))
            assert now < 600_000 * MS, "the transfer took more than 10 minutes of stack time"
    assert bytes(got_b) == data_a and bytes(got_a) == data_b, "the transfer did not complete intact"
    return wire, hashlib.sha256(got_b).digest(), hashlib.sha256(got_a).digest()


CASES = [
    pytest.param(1_000_000, 300_000, 0, 65536, id="bulk-one-way"),
    pytest.param(1_000_000, 200_000, 150_000, 3000, id="both-ways-small-reads"),
    pytest.param(23, 200_000, 0, 65536, id="one-way-loss"),
    pytest.param(11, 120_000, 90_000, 5000, id="both-ways-heavy-loss"),
]


def run_with(patch: Callable[[pytest.MonkeyPatch], None], mp: pytest.MonkeyPatch, *args: int) -> Wire:
    with mp.context() as m:
        patch(m)
        wire, _, _ = transfer(args[0], a_to_b=args[1], b_to_a=args[2], read_size=args[3])
    return wire


def no_receive_fast_path(m: pytest.MonkeyPatch) -> None:
    m.setattr(Connection, "_fast_path", lambda self, seg, now: False)


def no_send_fast_path(m: pytest.MonkeyPatch) -> None:
    def general(
        self: Host,
        conn: Connection,
        seq: int,
        ack: int,
        flags: int,
        window: int,
        options: bytes,
        payload: bytes | bytearray,
        now: int,
    ) -> None:
        conn.transmit(now, seq, flags, bytes(payload), reason="data")

    m.setattr(Host, "send_data", general)


@pytest.mark.parametrize(("drop_every", "a_to_b", "b_to_a", "read_size"), CASES)
def test_the_receive_fast_path_changes_nothing_on_the_wire(
    monkeypatch: pytest.MonkeyPatch, drop_every: int, a_to_b: int, b_to_a: int, read_size: int
) -> None:
    args = (drop_every, a_to_b, b_to_a, read_size)
    fast = run_with(lambda m: None, monkeypatch, *args)
    slow = run_with(no_receive_fast_path, monkeypatch, *args)
    assert len(fast) == len(slow)
    for i, (f, s) in enumerate(zip(fast, slow, strict=True)):
        assert f == s, f"packet {i} differs: {f[:2]} vs {s[:2]}"


@pytest.mark.parametrize(("drop_every", "a_to_b", "b_to_a", "read_size"), CASES)
def test_the_send_burst_path_changes_nothing_on_the_wire(
    monkeypatch: pytest.MonkeyPatch, drop_every: int, a_to_b: int, b_to_a: int, read_size: int
) -> None:
    args = (drop_every, a_to_b, b_to_a, read_size)
    calls = []
    with monkeypatch.context() as m:
        original = Host.send_data

        def counting(self: Host, *a: Any) -> None:
            calls.append(1)
            original(self, *a)

        m.setattr(Host, "send_data", counting)
        fast, _, _ = transfer(drop_every, a_to_b=a_to_b, b_to_a=b_to_a, read_size=read_size)
    assert len(calls) > 20  # the burst path really carried segments in this run
    slow = run_with(no_send_fast_path, monkeypatch, *args)
    assert len(fast) == len(slow)
    for i, (f, s) in enumerate(zip(fast, slow, strict=True)):
        assert f == s, f"packet {i} differs: {f[:2]} vs {s[:2]}"
