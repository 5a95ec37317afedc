"""Results of `tcpplay drill` runs and their text / JSON renderings.

`tcpplay.drill.runner` produces these objects; the CLI prints them, and a UI can render the same objects
(or the `DrillEvent` stream the runner hands to an observer while a script runs).

Times are integer microseconds of the virtual clock, counted from the script's start (time 0).

Statuses:

* PASS        every statement behaved as the script says.
* FAIL        the stack did something else: a segment, a system call result, a state, or a time differs.
* ERROR       the script cannot be run as written (unknown sysctl, bad argument, time going backwards, ...).
* UNSUPPORTED the script uses a construct tcpplay does not model (never silently skipped, never PASS).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, TypeAlias

from stack.wire import Segment

__all__ = [
    "EXIT_FAIL",
    "EXIT_OK",
    "EXIT_USAGE",
    "DrillEvent",
    "EventKind",
    "Failure",
    "FileResult",
    "ScriptResult",
    "Status",
    "exit_code",
    "format_time",
    "render_json",
    "render_text",
]

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2

TRACE_TAIL = 15
"""How many trace events a failure report shows (the events leading up to the failure)."""


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"
    UNSUPPORTED = "UNSUPPORTED"

    def __str__(self) -> str:
        return self.value


EventKind: TypeAlias = Literal[
    "in",  # the script injected a segment into the SUT (packet, segment set)
    "out",  # the SUT emitted a segment (packet, segment set; detail = the stack's reason, e.g. "retransmit")
    "call",  # a system call ran and returned at once (text: "accept(3, ..., ...) = 4")
    "block",  # a blocking system call started and is waiting
    "return",  # a blocking system call returned
    "state",  # a connection of the SUT changed state (conn, old, new set; detail = cause)
    "drop",  # the SUT discarded a segment (detail = the stack's reason)
    "check",  # a `//=` state assertion was checked
    "sysctl",  # a sysctl setting was applied
    "note",  # anything else worth showing (a skipped PEER assertion, ...)
]


def format_time(usecs: int) -> str:
    """Virtual time as packetdrill prints it: seconds with six decimals."""
    sign = "-" if usecs < 0 else ""
    usecs = abs(usecs)
    return f"{sign}{usecs // 1_000_000}.{usecs % 1_000_000:06d}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DrillEvent:
    """One thing that happened during a run, in the order it happened.

    `text` is a one-line human rendering (segments in tcpdump form with relative sequence numbers, system
    calls with their result). `line` is the script line the event belongs to, when there is one.
    """

    time: int
    kind: EventKind
    text: str
    line: int | None = None
    packet: bytes | None = None
    segment: Segment | None = None
    conn: tuple[str, int, str, int] | None = None
    old_state: str | None = None
    new_state: str | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"time": self.time, "kind": self.kind, "text": self.text}
        if self.line is not None:
            out["line"] = self.line
        if self.packet is not None:
            out["packet"] = self.packet.hex()
        if self.conn is not None:
            out["conn"] = list(self.conn)
        if self.old_state is not None:
            out["old"] = self.old_state
            out["new"] = self.new_state
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """Why a script did not pass: the statement (line and source text), what went wrong, and the expected
    and actual values in the same notation (segments in tcpdump form, return values, states)."""

    line: int | None
    source: str | None
    reason: str
    expected: str | None = None
    actual: str | None = None
    time: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "source": self.source,
            "reason": self.reason,
            "expected": self.expected,
            "actual": self.actual,
            "time": self.time,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptResult:
    """The outcome of one script (one `--- script ---` section or a whole `.pkt` file)."""

    filename: str
    name: str
    first_line: int
    status: Status
    failure: Failure | None = None
    trace: tuple[DrillEvent, ...] = ()
    notes: tuple[str, ...] = ()
    end_time: int = 0

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    def label(self, multiple: bool) -> str:
        return f"{self.filename} [{self.name}]" if multiple else self.filename

    def as_dict(self, *, full_trace: bool = False) -> dict[str, Any]:
        trace = self.trace if full_trace else (self.trace[-TRACE_TAIL:] if self.failure else ())
        return {
            "script": self.name,
            "first_line": self.first_line,
            "status": self.status.value,
            "failure": self.failure.as_dict() if self.failure else None,
            "notes": list(self.notes),
            "end_time": self.end_time,
            "trace": [event.as_dict() for event in trace],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class FileResult:
    """All scripts of one file. `error` is set (and `scripts` empty) when the file could not be read or
    parsed; `error_status` then says whether that is a usage error (ERROR) or an unsupported file."""

    filename: str
    scripts: tuple[ScriptResult, ...] = ()
    error: str | None = None
    error_status: Status = Status.ERROR
    title: str | None = None

    @property
    def status(self) -> Status:
        if self.error is not None:
            return self.error_status
        statuses = [result.status for result in self.scripts]
        for status in (Status.ERROR, Status.UNSUPPORTED, Status.FAIL):
            if status in statuses:
                return status
        return Status.PASS

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS

    def as_dict(self, *, full_trace: bool = False) -> dict[str, Any]:
        return {
            "file": self.filename,
            "title": self.title,
            "status": self.status.value,
            "error": self.error,
            "scripts": [result.as_dict(full_trace=full_trace) for result in self.scripts],
        }


@dataclass(slots=True)
class _Summary:
    counts: dict[Status, int] = field(default_factory=lambda: dict.fromkeys(Status, 0))

    def add(self, status: Status) -> None:
        self.counts[status] += 1

    def text(self) -> str:
        parts = [f"{self.counts[s]} {s.value.lower()}" for s in Status if self.counts[s] or s is Status.PASS]
        return ", ".join(parts)


def exit_code(results: Iterable[FileResult]) -> int:
    """0 if every script passed; 2 if any file or script could not be run (read/parse error, ERROR,
    UNSUPPORTED); otherwise 1 if any script failed."""
    statuses = {result.status for result in results}
    if statuses & {Status.ERROR, Status.UNSUPPORTED}:
        return EXIT_USAGE
    if Status.FAIL in statuses:
        return EXIT_FAIL
    return EXIT_OK


def _event_line(event: DrillEvent) -> str:
    where = f"  [line {event.line}]" if event.line is not None else ""
    return f"    {format_time(event.time):>14}  {event.kind:<6} {event.text}{where}"


def _script_lines(result: ScriptResult, multiple: bool, verbose: bool) -> list[str]:
    label = result.label(multiple)
    failure = result.failure
    lines: list[str] = []
    status = f"{result.status.value:<5}"
    if failure is None:
        lines.append(f"{status} {label}")
    elif failure.line is not None:
        lines.append(f"{status} {label} line {failure.line}: {failure.source or ''}".rstrip())
    else:
        lines.append(f"{status} {label}: {failure.reason}")
    if failure is not None:
        if failure.line is not None:
            lines.append(f"  reason:   {failure.reason}")
        if failure.expected is not None:
            lines.append(f"  expected: {failure.expected}")
        if failure.actual is not None:
            lines.append(f"  actual:   {failure.actual}")
    for note in result.notes:
        lines.append(f"  note:     {note}")
    if verbose and result.trace:
        lines.append(f"  trace ({len(result.trace)} events):")
        lines.extend(_event_line(event) for event in result.trace)
    elif failure is not None and result.status is Status.FAIL and result.trace:
        tail = result.trace[-TRACE_TAIL:]
        lines.append(f"  trace (last {len(tail)} of {len(result.trace)} events):")
        lines.extend(_event_line(event) for event in tail)
    return lines


def render_text(results: Sequence[FileResult], *, verbose: bool = False) -> str:
    """The report `tcpplay drill` prints: one status line per script, details under failures, and a
    summary line when more than one script ran."""
    lines: list[str] = []
    summary = _Summary()
    for file_result in results:
        if file_result.error is not None:
            # Input problems read like compiler errors: `file: message`, `file:line:col: message`.
            status = file_result.error_status
            lines.append(
                file_result.error if status is Status.ERROR else f"{status.value} {file_result.error}"
            )
            summary.add(status)
            continue
        multiple = len(file_result.scripts) > 1
        for result in file_result.scripts:
            lines.extend(_script_lines(result, multiple, verbose))
            summary.add(result.status)
    total = sum(summary.counts.values())
    if total > 1:
        lines.append(f"{total} scripts: {summary.text()}")
    return "\n".join(lines) + "\n"


def render_json(results: Sequence[FileResult], *, verbose: bool = False) -> str:
    """Machine-readable report: every file with its scripts, failures and (for failures, or everything
    with verbose) the trace."""
    payload = {
        "exit_code": exit_code(results),
        "files": [result.as_dict(full_trace=verbose) for result in results],
    }
    return json.dumps(payload, indent=2) + "\n"
