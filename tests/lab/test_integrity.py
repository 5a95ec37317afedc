"""Data integrity under a bad network (issue: stack data transfer).

Random data goes both ways between two stacks over the seeded in-memory link with loss, reordering,
duplication, corruption and jitter; the bytes each side reads must hash to what the other sent, both sides
must end their connections cleanly, and nothing may raise. The same seeds give the same run every time.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from stack import State
from tcpplay.lab import Lab

MIXES = {
    "clean": {},
    "loss-5": {"loss": 0.05},
    "loss-20": {"loss": 0.20},
    "reorder": {"reorder": 0.2, "reorder_delay": 0.015, "jitter": 0.004},
    "duplicate": {"duplicate": 0.1},
    "corrupt-1": {"corrupt": 0.01},
    "everything": {"loss": 0.08, "reorder": 0.1, "duplicate": 0.05, "corrupt": 0.01, "jitter": 0.003},
}
SEEDS = range(1, 7)
SIZE = 60_000


def transfer(seed: int, mix: dict[str, float]) -> tuple[Lab, bytes, bytes, bytes, bytes]:
    lab = Lab(seed=seed)
    for host in ("client", "server"):
        if mix:
            lab.impair(host, **mix)
    rng = random.Random(seed)
    up = rng.randbytes(SIZE)
    down = rng.randbytes(SIZE // 2 + seed * 1000)
    lab.listen("server", 8080)
    lab.connect("client", "server", 8080)
    assert lab.run_until(lambda: lab.state("server") is State.ESTABLISHED, timeout=300)
    got_up, got_down = bytearray(), bytearray()
    sent_up = sent_down = 0
    client = lab.apps["client"].current()
    server = lab.apps["server"].current()
    assert client is not None and server is not None
    for _ in range(20_000):
        if sent_up < len(up):
            sent_up += lab.send("client", up[sent_up : sent_up + 16384])
        if sent_down < len(down):
            sent_down += lab.send("server", down[sent_down : sent_down + 16384])
        got_up += lab.recv("server")
        got_down += lab.recv("client")
        if len(got_up) == len(up) and len(got_down) == len(down):
            break
        lab.step()
    return lab, up, bytes(got_up), down, bytes(got_down)


@pytest.mark.parametrize("mix", list(MIXES), ids=list(MIXES))
def test_bytes_arrive_intact_both_ways_and_close_cleanly(mix: str) -> None:
    for seed in SEEDS:
        lab, up, got_up, down, got_down = transfer(seed, MIXES[mix])
        assert hashlib.sha256(got_up).hexdigest() == hashlib.sha256(up).hexdigest(), f"seed {seed}"
        assert hashlib.sha256(got_down).hexdigest() == hashlib.sha256(down).hexdigest(), f"seed {seed}"
        close_both(lab, seed)


def close_both(lab: Lab, seed: int) -> None:
    """Graceful close: the client first, then the server once it has read the EOF; nothing may remain."""
    lab.close("client")
    assert lab.run_until(lambda: lab.recv("server") == b"" and lab.state("server") is State.CLOSE_WAIT, 600)
    lab.close("server")
    left = lambda: [c for c in lab.connections("server") if c.state is not State.LISTEN]  # noqa: E731
    assert lab.run_until(lambda: not left(), timeout=600), f"seed {seed}: server still has {left()}"
    assert lab.run_until(lambda: not lab.connections("client"), timeout=600), f"seed {seed}"


def test_a_lossy_run_is_reproducible() -> None:
    first = transfer(3, MIXES["everything"])[0]
    second = transfer(3, MIXES["everything"])[0]
    assert [(r.time, r.src, r.packet, r.fate) for r in first.capture] == [
        (r.time, r.src, r.packet, r.fate) for r in second.capture
    ]
    assert any(r.fate == "lost" for r in first.capture)
    assert any(r.fate == "corrupted" for r in first.capture) or any(
        r.fate == "duplicated" for r in first.capture
    )
