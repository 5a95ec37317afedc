"""The Textual app under load: 100 000 segments in the capture, a bulk transfer running, keys pressed.

Measured (headless, Textual's test driver, 120×40):
- start-up to first paint with the lab already holding the segments (the log then fills in the background,
  a frame's budget at a time; "log fully loaded" says when it is done);
- one page down, and the jump to the end, in the 100 000-line log;
- keypress → repaint while a bulk transfer keeps the lab and the log busy;
- the process's resident memory with all of it loaded.

Key latency is the wall time of Textual's Pilot pressing the key minus the same for a key bound to nothing:
the pilot waits for the app to go idle after each key, and that fixed wait is not the app's doing.
Run: `python -m bench --only ui` (or `python -m bench.ui_bench [--quick]`); `run()` returns the table rows.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tcpplay.clock import ScaledClock
from tcpplay.lab import Lab
from tcpplay.ui.app import TcpPlayApp, settle_garbage_collector
from tcpplay.ui.packet_log import PacketLog

Row = tuple[str, str, str]
SIZE = (120, 40)
MIB = 1 << 20


def rss_mb() -> float:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def build_lab(segments: int) -> Lab:
    """A lab whose capture holds `segments` segments of a bulk transfer, its clock paused at the end."""
    clock = ScaledClock(100.0, paused=True)
    lab = Lab(seed=1, clock=clock, delay=0.001, capture_size=max(segments, 1000))
    lab.listen("server")
    lab.connect("client")
    lab.run_until_state("client", "ESTABLISHED", timeout=5)
    block = b"x" * (256 * 1024)
    while lab.capture.total < segments:
        lab.send("client", block)
        lab.advance(0.004)  # two round trips on the 1 ms wire
        lab.recv("server", 1 << 20)
    clock.jump(lab.now)
    return lab


class Probe:
    """Times key → repaint inside the app: from the moment the key is sent to the first screen update
    written after the key's action has run (waiting behind a frame already in progress included)."""

    def __init__(self, app: TcpPlayApp) -> None:
        self.displays: list[float] = []
        self.acted: float | None = None
        original = app._display

        def display(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            self.displays.append(time.perf_counter())
            return result

        app._display = display  # type: ignore[method-assign]

    def wrap(self, owner: Any, action: str) -> None:
        """Note when owner's action_<action> has run (an instance attribute shadows the method)."""
        original = getattr(owner, f"action_{action}")

        def acted(*args: Any) -> Any:
            result = original(*args)
            self.acted = time.perf_counter()
            return result

        setattr(owner, f"action_{action}", acted)

    async def press(self, pilot: Any, key: str) -> float:
        self.acted = None
        start = time.perf_counter()
        await pilot.press(key)
        deadline = time.perf_counter() + 2.0
        while time.perf_counter() < deadline:
            acted = self.acted
            if acted is not None:
                after = [t for t in self.displays[-50:] if t >= acted]
                if after:
                    return after[0] - start
            await pilot.pause(0.005)
        return float("nan")


async def latency(
    probe: Probe, pilot: Any, key: str, repeat: int, before: Callable[[], Awaitable[None]] | None = None
) -> list[float]:
    out = []
    for _ in range(repeat):
        if before is not None:
            await before()
        out.append(await probe.press(pilot, key))
    return [v for v in out if v == v]  # drop NaN (no repaint seen)


def ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{statistics.median(ordered) * 1000:.1f} ms (p95 {p95 * 1000:.1f})"


async def measure(lab: Lab, quick: bool, lab_rss: float) -> list[Row]:
    rows: list[Row] = []
    app = TcpPlayApp(lab, remember_theme=False)
    settle_garbage_collector()  # as run_app does
    start = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first_paint = time.perf_counter() - start
        rows.append(("ui: start-up to first paint", f"{first_paint:.2f} s", "<= 1 s"))
        while app._pending:
            await pilot.pause(0.05)
        rows.append(("ui: log fully loaded (in the background)", f"{time.perf_counter() - start:.2f} s", ""))
        log = app.query_one(PacketLog)
        log.focus()
        probe = Probe(app)
        for action in ("page", "last", "first", "cursor"):
            probe.wrap(log, action)
        probe.wrap(app, "toggle_numbers")
        await pilot.press("home")
        repeat = 5 if quick else 15
        pages = await latency(probe, pilot, "pagedown", repeat)
        rows.append(("ui: scroll one page (PgDn) in the log", ms(pages), "<= 50 ms"))

        async def go_home() -> None:
            await pilot.press("home")

        ends = await latency(probe, pilot, "end", repeat, go_home)
        rows.append(("ui: jump to the end (End)", ms(ends), "<= 50 ms"))
        total = rss_mb()
        rows.append(("ui: memory the UI adds (RSS, log loaded)", f"{total - lab_rss:.0f} MB", ""))
        rows.append(("  whole process: lab and app (RSS)", f"{total:.0f} MB", "<= 300 MB"))
        # A bulk transfer in real time: the client's program writes continuously, the server reads it all.
        app.send_data("client", b"y" * (64 * MIB))
        app._auto_recv.add("server")
        assert isinstance(lab.clock, ScaledClock)
        lab.clock.resume()
        total_before = lab.capture.total
        await pilot.pause(0.5)
        presses = await latency(probe, pilot, "up", 10 if quick else 40)
        presses += await latency(probe, pilot, "m", 4 if quick else 10)
        moved = lab.capture.total - total_before
        rows.append(("ui: keypress → repaint during a bulk transfer", ms(presses), "<= 50 ms"))
        rows.append(("  segments the transfer sent meanwhile", str(moved), ""))
        rows.append(("  whole process (RSS) after the transfer", f"{rss_mb():.0f} MB", ""))
    return rows


def run(quick: bool = False) -> list[Row]:
    """The benchmark table rows (name, measured, target)."""
    segments = 20_000 if quick else 100_000
    os.environ.setdefault("XDG_CONFIG_HOME", os.path.join(os.path.dirname(__file__), ".bench-config"))
    before = rss_mb()
    start = time.perf_counter()
    lab = build_lab(segments)
    lab_rss = rss_mb()
    rows: list[Row] = [
        (f"ui: build a lab with {lab.capture.total} segments", f"{time.perf_counter() - start:.1f} s", ""),
        ("  memory of that lab (capture, event log, stacks)", f"{lab_rss - before:.0f} MB", ""),
    ]
    rows += asyncio.run(measure(lab, quick, lab_rss))
    return rows


def rows(quick: bool = False) -> list[Row]:
    """Entry point for `python -m bench` (bench/__main__.py looks up `rows`)."""
    return run(quick)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    table = run(quick="--quick" in args)
    width = max(len(r[0]) for r in table)
    vwidth = max(len(r[1]) for r in table)
    for name, value, target in table:
        print(f"{name:<{width}}  {value:<{vwidth}}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
