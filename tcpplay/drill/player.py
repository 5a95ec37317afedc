"""Watch a packetdrill script in the app: the run as a player the viewer steps through, one statement a step.

The app drives demo lessons through a player (`lab`, `steps`, `index`, `next()`, `goto()`,
`on_lab_replaced`); a DrillPlayer offers the same, so `tcpplay drill FILE --ui` shows the SUT's panels, the
packet log and the ladder exactly as a lesson does. Each step re-runs the script, deterministically, on a
fresh display lab up to that statement: the SUT is the lab's "sut" host (so its panel shows the real
connection), the injected and emitted segments go into the lab's capture, the calls into its log, and the
scripted peer is the lab's "peer" host, which only ever appears on the wire. The statement that failed is
narrated with what was expected and what the stack did, and its segment is the one `highlight` names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stack import Socket, State

from ..capture import DELIVERED
from ..lab import Lab, LabError, Note, PacketEvent
from .ast import DrillFile, Script, Statement
from .report import DrillEvent, ScriptResult, Status
from .runner import RunConfig, run_script

SUT = "sut"
PEER = "peer"


@dataclass(slots=True)
class DrillStep:
    """One script statement as a step of the player."""

    title: str
    narration: str
    line: int
    pause: bool = False


def pick_script(drill: DrillFile, part: str | None) -> Script:
    """The script to watch: the named part, else the first one."""
    if not drill.scripts:
        raise LabError(f"{drill.filename} has no script to run")
    if part is None:
        return drill.scripts[0]
    for script in drill.scripts:
        if script.name.lower() in (part.lower(), f"part {part.lower()}"):
            return script
    names = ", ".join(s.name for s in drill.scripts)
    raise LabError(f"{drill.filename} has no part {part!r}; its parts are: {names}")


class DrillPlayer:
    """A drill run the app can step through (the DemoPlayer interface of tcpplay.ui.app)."""

    def __init__(self, script: Script, *, filename: str, config: RunConfig | None = None) -> None:
        self.script = script
        self.filename = filename
        self.config = config or RunConfig()
        self.statements: list[Statement] = list(script.statements)
        self.on_lab_replaced: Callable[[Lab], None] | None = None
        self.autoplay = False
        self.highlight: int | None = None  # capture number of the failing segment, when there is one
        # One full run first: the verdict decides how every step is narrated.
        self.result: ScriptResult = run_script(script, filename=filename, config=self.config)
        self.title = f"{filename} [{script.name}]: {self.result.status.value}"
        self.steps = [self._step(i, stmt) for i, stmt in enumerate(self.statements)]
        failed_at = self._failure_line()
        # The step (count of statements run) at which the failure shows; the app then selects `highlight`.
        self.highlight_at: int | None = next(
            (i + 1 for i, stmt in enumerate(self.statements) if stmt.line == failed_at), None
        )
        self.index = 0
        self.lab = self._build(0)

    # ------------------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.index >= len(self.steps)

    @property
    def passed(self) -> bool:
        return self.result.status is Status.PASS

    @property
    def wants_pause(self) -> bool:
        return 0 < self.index <= len(self.steps) and self.steps[self.index - 1].pause

    def next(self) -> bool:
        if self.done:
            return False
        self.goto(self.index + 1)
        return not self.done

    def goto(self, index: int) -> None:
        index = max(0, min(index, len(self.steps)))
        self.index = index
        self.lab = self._build(index)
        if self.on_lab_replaced is not None:
            self.on_lab_replaced(self.lab)

    def run_to_end(self) -> None:
        self.goto(len(self.steps))

    # ------------------------------------------------------------------------------------------------

    def _failure_line(self) -> int | None:
        failure = self.result.failure
        return failure.line if failure is not None else None

    def _step(self, index: int, stmt: Statement) -> DrillStep:
        failed_at = self._failure_line()
        text = f"line {stmt.line}: {stmt.source}"
        if failed_at is not None and stmt.line == failed_at and self.result.failure is not None:
            f = self.result.failure
            parts = [f"✗ FAIL {text}", f.reason]
            if f.expected:
                parts.append(f"expected: {f.expected}")
            if f.actual:
                parts.append(f"actual:   {f.actual}")
            return DrillStep(f"line {stmt.line} FAILED", "\n".join(parts), stmt.line, pause=True)
        if failed_at is not None and stmt.line > failed_at:
            note = f"{text}  (not reached: the script failed at line {failed_at})"
            return DrillStep(f"line {stmt.line}", note, stmt.line)
        last = index == len(self.statements) - 1
        verdict = f"  — {self.result.status.value}" if last else ""
        return DrillStep(f"line {stmt.line}", f"{text}{verdict}", stmt.line)

    def _build(self, count: int) -> Lab:
        cfg = self.config
        lab = Lab(seed=cfg.seed, hosts={SUT: cfg.local_ip, PEER: cfg.remote_ip}, delay=0.0)
        sut = lab.hosts[SUT]
        failed_at = self._failure_line()
        mirror = _Mirror(lab, failed_at)
        result = run_script(
            self.script,
            filename=self.filename,
            config=cfg,
            observer=mirror,
            host=sut,
            stop_after=count,
        )
        if mirror.highlight is not None:
            self.highlight = mirror.highlight
        elif result.status is Status.FAIL and lab.capture.total:
            # The segment the stack sent instead of the expected one has no script line: the last one.
            self.highlight = lab.capture.total
        lab._now = max(lab.now, result.end_time)
        lab.clock.jump(lab.now)
        # The SUT's sockets become the lab's app sockets, so its panel shows the live connection.
        app = lab.apps[SUT]
        for listener in sut.listeners.values():
            app.listener = listener.sock
        for conn in sut.conns.values():
            if conn.state is State.LISTEN:
                continue
            # Orphans (closed by the script, e.g. in TIME_WAIT) get a view socket: this lab only displays.
            sock = conn.sock if conn.sock is not None else Socket(sut, conn)
            if sock not in app.conns:
                app.conns.append(sock)
        app.auto_accept = False
        return lab


class _Mirror:
    """Copies the runner's events into the display lab: segments to the capture, calls to the log."""

    def __init__(self, lab: Lab, failed_at: int | None) -> None:
        self.lab = lab
        self.failed_at = failed_at
        self.highlight: int | None = None

    def __call__(self, event: DrillEvent) -> None:
        lab = self.lab
        if event.kind in ("in", "out") and event.packet is not None:
            src, dst = (PEER, SUT) if event.kind == "in" else (SUT, PEER)
            record = lab.capture.add(event.time, src, dst, event.packet, DELIVERED)
            if self.failed_at is not None and event.line == self.failed_at:
                self.highlight = record.number
            lab._publish(PacketEvent(event.time, record))
        elif event.kind in ("call", "return", "block", "sysctl", "check", "note"):
            # (State changes and the stack's drops reach the lab through its own subscription to the SUT.)
            kind = "error" if event.kind == "check" and "FAIL" in event.text else "action"
            lab._publish(Note(event.time, SUT if event.kind != "sysctl" else None, event.text, kind))
