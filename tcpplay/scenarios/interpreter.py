"""Run a parsed scenario on a Lab, one step at a time, and check its expectations.

The interpreter owns no clock: it drives the lab it is given (a fresh, seeded Lab on a VirtualClock, so a
two-hour keepalive costs nothing) and watches the lab's events to answer `expect` lines. Narration goes into
the lab's log as `lab.note(text, kind="narration")`, each check as a note too ("✓ ..." or "✗ ..."), so a
printer or a UI subscribed to the lab shows the whole lesson in order.

Socket errors a lesson provokes on purpose (ECONNREFUSED, EPIPE...) are results of calls, recorded for
`expect ... error ...`; only a command the lab cannot do at all (a LabError) or a `run until` that never
comes true is a failure outside an `expect` line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stack import Segment, SocketEvent, State, StateChanged
from stack.socket import Socket

from ..format import ExpertAnalyzer, RelativeSeq, tcpdump_flags
from ..lab import HostEvent, Lab, LabError, LabEvent, Note, PacketEvent
from ..links.memory import segment_kind_matches
from .model import (
    Abort,
    Accept,
    AutoAccept,
    AutoRead,
    Close,
    Command,
    Condition,
    Connect,
    CountIn,
    Crash,
    DropNext,
    ExpectCall,
    ExpectCount,
    ExpectField,
    ExpectReceived,
    ExpectSegment,
    ExpectState,
    Impair,
    Inject,
    Listen,
    Partition,
    Pause,
    Reboot,
    Recv,
    Repeat,
    RunUntil,
    Scenario,
    SegmentPattern,
    SegmentSeen,
    Send,
    SetSockOpt,
    Show,
    Shutdown,
    StateIs,
    StopListening,
    SynFlood,
    Sysctl,
    Wait,
    format_seconds,
    pick,
)
from .parser import FIELDS

MASK = 0xFFFFFFFF

# The socket call each command makes, for `expect <call> error ...` when the lab raises.
COMMAND_CALLS: dict[type[Command], str] = {
    Listen: "listen",
    Connect: "connect",
    Accept: "accept",
    Send: "send",
    Recv: "recv",
    Shutdown: "shutdown",
    Close: "close",
    Abort: "close",
    StopListening: "close",
    SetSockOpt: "setsockopt",
}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one `expect` line (or of a command that failed): PASS or FAIL, with where and why."""

    line: int
    text: str  # the line as written
    passed: bool
    message: str  # why it failed ("" when it passed)
    time: int  # stack time (us) when it was checked
    step: int  # index of the step it belongs to

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def describe(self, filename: str = "") -> str:
        where = f"{filename}:{self.line}" if filename else f"line {self.line}"
        tail = "" if self.passed else f"  -- {self.message}"
        return f"{self.verdict}  {where}  {self.text}{tail}"


@dataclass(frozen=True, slots=True)
class SeenSegment:
    """A segment as the trace showed it: relative seq/ack (None when ACK is off), expert tags, fate."""

    number: int
    time: int
    src: str
    dst: str
    segment: Segment
    seq: int
    ack: int | None
    tags: tuple[str, ...]
    fate: str
    flags_text: str

    def describe(self) -> str:
        ack = f" ack {self.ack}" if self.ack is not None else ""
        fate = "" if self.fate == "delivered" else f" ({self.fate})"
        return (
            f"[{self.flags_text}] seq {self.seq}{ack} len {len(self.segment.payload)} "
            f"at {format_seconds(self.time)}{fate}"
        )


@dataclass(frozen=True, slots=True)
class CallRecord:
    """What a socket call returned: "ok", an errno name, or "EINPROGRESS" for a connect under way."""

    result: str
    time: int
    sock: Socket | None = None


@dataclass(slots=True)
class _Writer:
    """A program blocked in send(): the rest of its data goes in as the send buffer drains."""

    host: str
    sock: Socket
    data: bytes
    offset: int


class Interpreter:
    """Runs the steps of `scenario` on `lab` in `lang`; `results` grows as expectations are checked."""

    def __init__(self, scenario: Scenario, lab: Lab, lang: str = "en") -> None:
        self.scenario = scenario
        self.lab = lab
        self.lang = lang
        self.results: list[CheckResult] = []
        self.step_index = -1
        self.segments: list[SeenSegment] = []
        self._step_start = 0
        self._rel = RelativeSeq()
        self._expert = ExpertAnalyzer()
        self._calls: dict[tuple[str, str], CallRecord] = {}
        self._last_caller: dict[str, str] = {}
        self._outcome: dict[tuple[str, tuple[str, int, str, int]], tuple[str, int]] = {}
        self._entered: dict[tuple[str, tuple[str, int, str, int] | None, State], int] = {}
        self._notes: list[Note] | None = None
        self._writers: list[_Writer] = []
        self._auto_read: set[str] = set()
        self._unsubscribe = lab.subscribe(self._observe)

    # ------------------------------------------------------------------------------------------------------
    # watching the lab

    def _observe(self, event: LabEvent) -> None:
        if isinstance(event, PacketEvent):
            rec = event.record
            seg = rec.segment
            if seg is None:
                return
            seq_base, ack_base = self._rel.bases(seg)
            tags = self._expert.analyze(seg)
            seq = (seg.seq - seq_base) & MASK
            ack = None
            if seg.flags & 0x10:
                ack = seg.ack if ack_base is None else (seg.ack - ack_base) & MASK
            flags = tcpdump_flags(seg.flags)
            self.segments.append(
                SeenSegment(rec.number, rec.time, rec.src, rec.dst, seg, seq, ack, tags, rec.fate, flags)
            )
        elif isinstance(event, HostEvent):
            e = event.event
            if isinstance(e, StateChanged):
                self._entered[(event.host, e.conn, e.new)] = event.time
                self._entered[(event.host, None, e.new)] = event.time
            elif isinstance(e, SocketEvent) and e.conn is not None and e.what in ("connected", "error"):
                key = (event.host, e.conn)
                if key not in self._outcome:
                    result = "ok" if e.what == "connected" else e.detail.split(":", 1)[0]
                    self._outcome[key] = (result, event.time)
        elif isinstance(event, Note) and self._notes is not None:
            self._notes.append(event)

    def close(self) -> None:
        """Stop watching the lab."""
        self._unsubscribe()

    # ------------------------------------------------------------------------------------------------------
    # running

    def run_step(self, index: int) -> None:
        """Narrate step `index` and run its commands."""
        step = self.scenario.steps[index]
        self.step_index = index
        self._step_start = len(self.segments)
        self.lab.note(pick(step.narration, self.lang), kind="narration")
        for command in step.commands:
            self.execute(command)

    def run_all(self) -> list[CheckResult]:
        for index in range(len(self.scenario.steps)):
            self.run_step(index)
        return self.results

    def execute(self, command: Command) -> None:
        try:
            self._execute(command)
        except LabError as exc:
            self._record(command, False, str(exc))

    def _execute(self, c: Command) -> None:
        lab = self.lab
        if isinstance(c, Repeat):
            for _ in range(c.count):
                for inner in c.body:
                    self.execute(inner)
            return
        if isinstance(c, Wait):
            span = c.duration.us
            if c.until:
                span -= lab.now
                if span < 0:
                    self._record(c, False, f"it is already {format_seconds(lab.now)}")
                    return
            self._run(span, None)
            return
        if isinstance(c, RunUntil):
            test = self._condition(c.condition)
            if not self._run(c.within.us, test):
                self._record(
                    c, False, f"{self._describe_condition(c.condition)} within {c.within} (it did not happen)"
                )
            return
        if isinstance(
            c, ExpectState | ExpectCount | ExpectSegment | ExpectCall | ExpectField | ExpectReceived
        ):
            passed, message = self._expect(c)
            self._record(c, passed, message)
            return
        if isinstance(c, Pause):
            return
        if isinstance(c, Show):
            parts = [f"{name} {self._field(c.host, name)[1]}" for name in c.fields]
            lab.note(", ".join(parts), c.host, kind="info")
            return
        if isinstance(c, AutoAccept):
            lab.apps[c.host].auto_accept = c.on
            what = "accepts new connections at once" if c.on else "stops calling accept()"
            lab.note(f"the program {what}", c.host, kind="info")
            lab.settle()
            return
        if isinstance(c, AutoRead):
            if c.on:
                self._auto_read.add(c.host)
            else:
                self._auto_read.discard(c.host)
            what = "reads everything as it arrives" if c.on else "stops reading"
            lab.note(f"the program {what}", c.host, kind="info")
            self._pump()
            return
        if isinstance(c, Sysctl):
            lab.set_setting(c.host, c.name, c.value)
            return
        if isinstance(c, DropNext):
            lab.drop_next(c.direction, c.kind, c.count)
            return
        if isinstance(c, Impair):
            lab.impair(c.direction, **dict(c.values))
            return
        if isinstance(c, Partition):
            lab.partition(c.on)
            return
        if isinstance(c, SynFlood):
            lab.syn_flood(c.target, c.count, c.port)
            return
        if isinstance(c, Crash):
            lab.crash(c.host)
            self._writers = [w for w in self._writers if w.host != c.host]
            return
        if isinstance(c, Reboot):
            lab.reboot(c.host)
            self._writers = [w for w in self._writers if w.host != c.host]
            return
        if isinstance(c, Inject):
            lab.inject(c.host, c.flags, seq=c.seq, ack=c.ack, window=c.window, payload=c.payload)
            return
        self._socket_call(c)

    def _socket_call(self, c: Command) -> None:
        """A command that makes socket calls: run it, and record what each call returned."""
        lab = self.lab
        host = getattr(c, "host", "")
        self._notes = []
        sock: Socket | None = None
        failed: str | None = None
        try:
            if isinstance(c, Listen):
                lab.listen(c.host, c.port, c.backlog, reuseaddr=c.reuseaddr)
            elif isinstance(c, StopListening):
                lab.close(c.host, listener=True)
            elif isinstance(c, Connect):
                made = lab.connect(c.host, c.to, c.port, bind_port=c.bind_port)
                sock = made if isinstance(made, Socket) else None
            elif isinstance(c, Accept):
                lab.accept(c.host)
            elif isinstance(c, Send):
                sock = self._send(c)
            elif isinstance(c, Recv):
                lab.recv(c.host, c.size)
            elif isinstance(c, Shutdown):
                lab.shutdown(c.host, c.how)
            elif isinstance(c, Close):
                lab.close(c.host)
            elif isinstance(c, Abort):
                lab.abort(c.host)
            elif isinstance(c, SetSockOpt):
                lab.setsockopt(c.host, c.name, c.value)
            else:  # pragma: no cover - the parser makes no other commands
                raise LabError(f"cannot run {c.text!r}")
        except OSError as exc:
            failed = _errno_name(exc)
        finally:
            notes, self._notes = self._notes, None
        now = lab.now
        connect_noted = False
        for note in notes:
            if note.host != host or " = " not in note.text:
                continue
            call = note.text.split("(", 1)[0]
            result = note.text.split(" = ", 1)[1]
            outcome = result.split()[1] if result.startswith("-1 ") else "ok"
            if call == "connect":
                if outcome == "EINPROGRESS":
                    continue
                connect_noted = True
            self._set_call(host, call, CallRecord(outcome, note.time, sock))
        own = COMMAND_CALLS.get(type(c))
        if own is not None and failed is not None:
            self._set_call(host, own, CallRecord(failed, now, sock))
        if isinstance(c, Connect) and sock is not None and failed is None and not connect_noted:
            conn = sock.conn
            if conn is not None:
                # A 4-tuple used before (a reused port): forget the old connection's outcome.
                key = (host, conn.id)
                previous = self._outcome.get(key)
                if previous is not None and previous[1] < now:
                    del self._outcome[key]
            self._set_call(host, "connect", CallRecord("EINPROGRESS", now, sock))
        self._pump()

    def _set_call(self, host: str, call: str, record: CallRecord) -> None:
        self._calls[(host, call)] = record
        self._last_caller[call] = host

    def _send(self, c: Send) -> Socket | None:
        """send(): what does not fit in the send buffer now is written as it drains (a blocking send).
        A program still blocked in an earlier send() cannot call send() again: new data queues behind."""
        lab = self.lab
        app = lab.apps[c.host]
        current = app.current()
        for writer in self._writers:
            if writer.sock is current:
                writer.data += c.data
                lab.note(f"send({len(c.data)} bytes) waits: the program is still blocked in send()", c.host)
                return current
        n = lab.send(c.host, c.data)
        sock = app.current()
        if n < len(c.data) and sock is not None:
            rest = len(c.data) - n
            lab.note(f"send() blocks: {rest} more bytes go in as the send buffer drains", c.host, kind="info")
            self._writers.append(_Writer(c.host, sock, c.data, n))
        return sock

    def _pump(self) -> None:
        """Let blocked writers write and auto-reading programs read, at the current instant."""
        lab = self.lab
        moved = True
        while moved:
            moved = False
            for writer in list(self._writers):
                if writer.host in lab.down or writer.sock.closed or writer.sock.conn is None:
                    self._writers.remove(writer)
                    continue
                try:
                    n = writer.sock.send(writer.data[writer.offset :])
                except BlockingIOError:
                    continue
                except OSError as exc:
                    self._writers.remove(writer)
                    name = _errno_name(exc)
                    self._set_call(writer.host, "send", CallRecord(name, lab.now, writer.sock))
                    lab.note(f"send() = -1 {name} (while blocked in send)", writer.host, kind="error")
                    continue
                writer.offset += n
                moved = moved or n > 0
                if writer.offset >= len(writer.data):
                    self._writers.remove(writer)
                    lab.note(f"send() returns: all {len(writer.data)} bytes written", writer.host)
            for host in sorted(self._auto_read):
                if host in lab.down or host not in lab.apps:
                    continue
                app = lab.apps[host]
                for sock in app.conns:
                    if sock.closed or sock.conn is None:
                        continue
                    while True:
                        try:
                            data = sock.recv(1 << 20)
                        except OSError:
                            break
                        if not data:
                            break
                        app.take(data)
                        moved = True
            if moved:
                lab.settle()

    def _run(self, limit_us: int, test: Callable[[], bool] | None) -> bool:
        """Let up to `limit_us` of stack time pass, stopping early once test() holds; pumps as it goes."""

        def check() -> bool:
            self._pump()
            return test() if test is not None else False

        return self.lab.run_until(check, timeout=limit_us / 1_000_000)

    # ------------------------------------------------------------------------------------------------------
    # what the lab looks like

    def main_socket(self, host: str) -> Socket | None:
        """The connection the host's program last worked with: its current open one, or else the newest
        one it closed (which the kernel may still hold in FIN_WAIT, TIME_WAIT... or which is CLOSED)."""
        app = self.lab.apps.get(host)
        if app is None or host in self.lab.down:
            return None
        live = app.current()
        if live is not None:
            return live
        return app.conns[-1] if app.conns else None

    def host_state(self, host: str) -> State:
        """The state of the host's main connection; LISTEN with only a listener; CLOSED with nothing."""
        sock = self.main_socket(host)
        if sock is not None:
            return sock.conn.state if sock.conn is not None else sock.state
        app = self.lab.apps.get(host)
        listening = app is not None and app.listener is not None and not app.listener.closed
        if listening and host not in self.lab.down:
            return State.LISTEN
        return State.CLOSED

    def _entered_at(self, host: str, state: State) -> int | None:
        sock = self.main_socket(host)
        if sock is not None and sock.conn is not None:
            t = self._entered.get((host, sock.conn.id, state))
            if t is not None:
                return t
        return self._entered.get((host, None, state))

    def _condition(self, cond: Condition) -> Callable[[], bool]:
        if isinstance(cond, StateIs):
            return lambda: self.host_state(cond.host) is cond.state
        if isinstance(cond, CountIn):
            return lambda: cond.count.test(self.lab.count_in_state(cond.host, cond.state))
        start = len(self.segments)
        pattern = cond.pattern

        def seen() -> bool:
            return any(_matches(s, pattern) for s in self.segments[start:])

        return seen

    def _describe_condition(self, cond: Condition) -> str:
        if isinstance(cond, StateIs):
            return f"{cond.host} did not become {cond.state} (it is {self.host_state(cond.host)})"
        if isinstance(cond, CountIn):
            have = self.lab.count_in_state(cond.host, cond.state)
            return f"{cond.host} did not get {cond.count} in {cond.state} (it has {have})"
        assert isinstance(cond, SegmentSeen)
        return f"{cond.pattern.src} sent no {_pattern_text(cond.pattern)}"

    # ------------------------------------------------------------------------------------------------------
    # expectations

    def _record(self, c: Command, passed: bool, message: str) -> None:
        result = CheckResult(c.line, c.text, passed, message, self.lab.now, self.step_index)
        self.results.append(result)
        if passed:
            self.lab.note(f"✓ {c.text}", kind="info")
        else:
            self.lab.note(f"✗ {c.text}: {message}", kind="error")

    def _expect(self, c: Command) -> tuple[bool, str]:
        if isinstance(c, ExpectState):
            state = self.host_state(c.host)
            if state is not c.state:
                down = " (it is down)" if c.host in self.lab.down else ""
                return False, f"{c.host} is {state}{down}"
            if c.at is not None:
                when = self._entered_at(c.host, c.state)
                if when is None:
                    return False, f"no record of when {c.host} entered {c.state}"
                if not c.at.matches(when):
                    return False, f"{c.host} entered {c.state} at {format_seconds(when)}"
            return True, ""
        if isinstance(c, ExpectCount):
            have = self.lab.count_in_state(c.host, c.state)
            if not c.count.test(have):
                return False, f"{c.host} has {have} in {c.state}"
            return True, ""
        if isinstance(c, ExpectSegment):
            return self._expect_segment(c)
        if isinstance(c, ExpectCall):
            return self._expect_call(c)
        if isinstance(c, ExpectField):
            return self._expect_field(c)
        assert isinstance(c, ExpectReceived)
        got = bytes(self.lab.apps[c.host].received) if c.host in self.lab.apps else b""
        if c.data is not None:
            if got != c.data:
                return False, f"{c.host} received {got[:60]!r}" + ("..." if len(got) > 60 else "")
            return True, ""
        total = self.lab.apps[c.host].received_total if c.host in self.lab.apps else 0
        if total != c.size:
            return False, f"{c.host} received {total} bytes"
        return True, ""

    def _expect_segment(self, c: ExpectSegment) -> tuple[bool, str]:
        pattern = c.pattern
        scope = self.segments[self._step_start :] if c.this_step else self.segments
        where = " in this step" if c.this_step else ""
        hits = [s for s in scope if _matches(s, pattern)]
        if c.times is None:
            if hits:
                return True, ""
        elif c.times.test(len(hits)):
            return True, ""
        else:
            return False, f"{pattern.src} sent {len(hits)} such segments{where}"
        mine = [s for s in scope if s.src == pattern.src]
        if not mine:
            return False, f"{pattern.src} sent nothing{where}"
        last = mine[-4:]
        shown = ("...; " if len(mine) > 4 else "") + "; ".join(s.describe() for s in last)
        return False, f"no such segment{where}; {pattern.src} sent {shown}"

    def _expect_call(self, c: ExpectCall) -> tuple[bool, str]:
        host = c.host or self._last_caller.get(c.call)
        who = c.host or "any host"
        record = self._calls.get((host, c.call)) if host is not None else None
        if host is None or record is None:
            return False, f"{who} never called {c.call}()"
        result, when = record.result, record.time
        if c.call == "connect" and result == "EINPROGRESS" and record.sock is not None:
            conn = record.sock.conn
            outcome = self._outcome.get((host, conn.id)) if conn is not None else None
            if outcome is not None:
                result, when = outcome
        if result == "EINPROGRESS":
            return False, f"{host}'s connect() is still in progress ({self.host_state(host)})"
        wanted = c.errno_name or "ok"
        if result != wanted:
            got = "succeeded" if result == "ok" else f"failed with {result}"
            return False, f"{host}'s {c.call}() {got}"
        if c.at is not None and not c.at.matches(when):
            return False, f"{host}'s {c.call}() gave {result} at {format_seconds(when)}"
        return True, ""

    def _field(self, host: str, name: str) -> tuple[int | None, str]:
        """A field of the host's main connection (or its listener): (value, as shown), or (None, why)."""
        lab = self.lab
        kind = FIELDS[name]
        snap: object | None = None
        if name in ("syn_queue", "accept_queue", "backlog"):
            app = lab.apps.get(host)
            listener = app.listener if app is not None else None
            if listener is not None and listener.listener is not None:
                snap = listener.listener.snapshot()
            if snap is None:
                return None, "(not listening)"
        else:
            sock = self.main_socket(host)
            if sock is not None and sock.conn is not None:
                snap = sock.conn.snapshot()
            if snap is None:
                return None, "(no connection)"
        raw = getattr(snap, name)
        if raw is None:
            return None, "infinite" if name == "ssthresh" else "(not measured yet)"
        value = int(raw)
        if kind == "time":
            return value, format_ms(value)
        if kind == "bool":
            return value, "on" if value else "off"
        return value, str(value)

    def _expect_field(self, c: ExpectField) -> tuple[bool, str]:
        value, shown = self._field(c.host, c.field_name)
        if value is None:
            return False, f"{c.host}'s {c.field_name} is {shown}"
        if not _compare(value, c.op, c.value):
            return False, f"{c.host}'s {c.field_name} is {shown}"
        return True, ""


# ----------------------------------------------------------------------------------------------------------


def format_ms(us: int) -> str:
    """A duration in milliseconds for `show` and messages: `200 ms`, `20.5 ms`."""
    text = f"{us / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{text} ms"


def _errno_name(exc: OSError) -> str:
    import errno

    return errno.errorcode.get(exc.errno or 0, str(exc.errno))


def _compare(value: int, op: str, target: int) -> bool:
    return {
        "=": value == target,
        "!=": value != target,
        ">=": value >= target,
        "<=": value <= target,
        ">": value > target,
        "<": value < target,
    }[op]


def _matches(s: SeenSegment, p: SegmentPattern) -> bool:
    seg = s.segment
    if s.src != p.src:
        return False
    if p.dst is not None and s.dst != p.dst:
        return False
    if p.flags is not None and seg.flags != p.flags:
        return False
    if p.kind is not None and not segment_kind_matches(seg, p.kind):
        return False
    if p.seq is not None and s.seq != p.seq & MASK:
        return False
    if p.ack is not None and (s.ack is None or s.ack != p.ack & MASK):
        return False
    if p.length is not None and len(seg.payload) != p.length:
        return False
    if p.window is not None and seg.window != p.window:
        return False
    if p.mss is not None and seg.mss != p.mss:
        return False
    if p.wscale is not None and seg.wscale != p.wscale:
        return False
    if p.sack_ok is not None and bool(seg.sack_permitted) != p.sack_ok:
        return False
    if p.tag is not None and not any(t == p.tag or t.startswith(p.tag + " #") for t in s.tags):
        return False
    if p.fate is not None and s.fate != p.fate:
        return False
    return p.at is None or p.at.matches(s.time)


def _pattern_text(p: SegmentPattern) -> str:
    parts = [p.label or "segment"]
    for name in ("seq", "ack", "length", "window", "mss", "wscale"):
        value = getattr(p, name)
        if value is not None:
            parts.append(f"{name} {value}")
    if p.fate:
        parts.append(p.fate)
    if p.at is not None:
        parts.append(f"at {p.at}")
    return " ".join(parts)
