"""The tcpplay app: two endpoint panels, the packet log with its detail pane, the ladder and state diagrams,
a narration bar and a status line, over one Lab.

The UI renders lab snapshots and events and sends user actions to the lab; no protocol logic lives here.
Time: with the ScaledClock of `tcpplay` (real time × speed) an interval timer calls the lab up to the clock
~20 times a second and repaints in one batch; with a VirtualClock (tests, demos) nothing moves unless the
user steps, skips to a timer or plays the next demo step. Every user action repaints at once, so a key
press is never waiting for the next tick.
"""

from __future__ import annotations

import gc
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Static, TabbedContent, TabPane

from stack import SocketEvent, State, StateChanged

from ..capture import CaptureRecord
from ..clock import MAX_SPEED, MIN_SPEED, ScaledClock, VirtualClock
from ..format import describe_time, format_duration
from ..lab import DEFAULT_PORT, HostEvent, Lab, LabError, LabEvent, Note, PacketEvent
from .commands import COMMANDS, DEMO_ACTIONS, action_name, bindings
from .config import load_config, save_config
from .detail import PacketDetail, load_scapy_ip
from .endpoint import EndpointPanel, read_sockopts
from .help import HelpScreen
from .logmodel import PACKET, LogFilter, LogModel
from .modals import (
    DropModal,
    ExportModal,
    FilterModal,
    ImpairModal,
    KeepaliveModal,
    LingerModal,
    PortModal,
    SendModal,
    SettingsModal,
    SpeedModal,
    SynFloodModal,
)
from .packet_log import PacketLog, column_header
from .themes import DEFAULT_THEME, load_themes

SPEEDS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
TICK = 1 / 20
# Work per 50 ms frame, so a key pressed mid-frame waits at most ~25 ms before it is handled: lab events
# processed up to the clock, then new log rows ingested; what does not fit waits for the next frame.
SYNC_BUDGET = 0.015
INGEST_BUDGET = 0.010
AUTOPLAY_SECONDS = 4.0
SCAPY_WARMUP = 2.0  # seconds after start-up
DETAIL_DELAY = 0.06  # the detail pane follows the log's cursor this long after it stops moving
THEME_ORDER = ("dark", "light", "high-contrast")
LADDER_BACKLOG = 100_000  # the ladder keeps no more than this many segments either


def theme_order(name: str) -> tuple[int, str]:
    """Sort key: ours in THEME_ORDER, then any other theme by name."""
    return (THEME_ORDER.index(name) if name in THEME_ORDER else len(THEME_ORDER), name)


class DemoPlayer(Protocol):
    """What the app needs from a demo player (tcpplay.scenarios.player.Player implements it)."""

    lab: Lab
    index: int  # steps run so far
    on_lab_replaced: Callable[[Lab], None] | None

    @property
    def steps(self) -> Sequence[Any]:
        """The steps, each with .title and .narration."""

    def next(self) -> bool: ...

    def goto(self, index: int) -> None: ...


def pick_hosts(lab: Lab) -> tuple[str, str]:
    """The two hosts the panels show: client and server when the lab has them (a kernel peer included)."""
    names = list(lab.hosts)
    kernel = getattr(lab, "kernel", None)
    if kernel is not None and kernel.name not in names:
        names.append(kernel.name)
    if "client" in names and "server" in names:
        return ("client", "server")
    if len(names) < 2:
        raise LabError("the app needs a lab with two hosts")
    return (names[0], names[1])


class TcpPlayApp(App[int]):
    """tcpplay's terminal UI over one Lab (or a demo player's labs)."""

    CSS_PATH = "app.tcss"
    TITLE = "tcpplay"
    BINDINGS: ClassVar[list[BindingType]] = list(bindings())
    COMMAND_PALETTE_BINDING = "ctrl+p"

    def __init__(
        self,
        lab: Lab | None = None,
        *,
        theme: str | None = None,
        pcap_on_exit: str | None = None,
        player: DemoPlayer | None = None,
        tick: float | None = TICK,
        still: bool = False,
        remember_theme: bool = True,
    ) -> None:
        """tick: seconds between clock syncs (None: no timer; tests call `tick()` themselves).
        still: no cursor blink or animation, for deterministic snapshots."""
        super().__init__()
        if player is not None:
            lab = player.lab
        if lab is None:
            raise LabError("TcpPlayApp needs a lab or a demo player")
        self.lab: Lab = lab
        self.player = player
        self.pcap_on_exit = pcap_on_exit
        self.pcap_saved: str | None = None
        self.tick_interval = tick
        self.still = still
        self.remember_theme = remember_theme
        if still:
            self.animation_level = "none"
        self.hosts = pick_hosts(lab)
        self.acting = self.hosts[0]
        self.model = LogModel()
        self.absolute = False
        self.narration = ""
        self.lagging = 0
        self._pending: list[LabEvent] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._send_queue: dict[str, bytearray] = {}
        self._auto_recv: set[str] = set()
        self._autoplay: Timer | None = None
        self._timer: Timer | None = None
        self._detail_timer: Timer | None = None
        self._ladder_widget: Any = None
        self._tabs_active = "packets"
        self._diagram_widget: Any = None
        self.panels: list[EndpointPanel] = []
        # What the ladder has not been shown yet while its tab is hidden (fed in one batch when it opens:
        # a hidden ladder that re-lays itself out every frame would cost the whole screen a reflow).
        self._ladder_backlog: deque[tuple[Any, ...]] = deque(maxlen=LADDER_BACKLOG)
        self._live = False
        loaded = load_themes()
        self.theme_problems = loaded.problems
        for t in loaded.themes.values():
            self.register_theme(t)
        wanted = (
            theme.strip().lower() if theme is not None else str(load_config().get("theme", DEFAULT_THEME))
        )
        if wanted not in loaded.themes:
            if theme is not None:
                ours = ", ".join(sorted(loaded.themes, key=theme_order))
                raise LabError(f"unknown theme {theme!r}; the themes are: {ours}")
            wanted = DEFAULT_THEME
        self.theme = wanted
        for name in list(self.available_themes):
            if name not in loaded.themes:
                self.unregister_theme(name)
        self._saved_theme = str(load_config().get("theme", ""))
        # --theme NAME is remembered, like a theme picked with T in the app.
        explicit = theme is not None and remember_theme and wanted != self._saved_theme
        if explicit and save_config({"theme": wanted}) is not None:
            self._saved_theme = wanted

    # ------------------------------------------------------------------------------------------------------
    # layout

    def compose(self) -> ComposeResult:
        yield Static("", id="narration")
        with Horizontal(id="endpoints"):
            yield EndpointPanel(self.hosts[0], id="panel-0")
            yield EndpointPanel(self.hosts[1], id="panel-1")
        with TabbedContent(id="tabs", initial="packets"):
            with TabPane("Packets", id="packets"):
                yield Static(column_header(*self.hosts), id="log-header")
                yield PacketLog(self.model, self.hosts, id="log")
                yield PacketDetail(id="detail")
            with TabPane("Ladder", id="ladder"):
                yield self._make_ladder()
            with TabPane("State diagram", id="states"):
                yield self._make_state_diagram()
        yield Static("", id="status")
        yield Footer()

    def _make_ladder(self) -> Widget:
        """The ladder is imported lazily: a broken or missing diagram module must not stop the lab."""
        try:
            from .ladder import LadderView
        except Exception as exc:
            return Static(f"The ladder diagram could not be loaded: {exc}", id="ladder-view")
        left, right = (self._address(h) for h in self.hosts)
        return LadderView(*self.hosts, left_address=left, right_address=right, id="ladder-view")

    def _make_state_diagram(self) -> Widget:
        try:
            from .state_diagram import StateDiagram
        except Exception as exc:
            return Static(f"The state diagram could not be loaded: {exc}", id="state-view")
        return StateDiagram(id="state-view")

    def _address(self, host: str) -> str | None:
        address_of = getattr(self.lab, "address_of", None)
        if address_of is not None:
            return str(address_of(host))
        return self.lab.hosts[host].address if host in self.lab.hosts else None

    def on_mount(self) -> None:
        # The widgets every frame touches, looked up once (a DOM query per frame costs milliseconds).
        self.log_view = self.query_one(PacketLog)
        self.detail = self.query_one(PacketDetail)
        self.panels = list(self.query(EndpointPanel))
        self.status_bar = self.query_one("#status", Static)
        self.narration_bar = self.query_one("#narration", Static)
        ladder = self.query_one("#ladder-view")
        self._ladder_widget = None if isinstance(ladder, Static) else ladder
        diagram = self.query_one("#state-view")
        self._diagram_widget = None if isinstance(diagram, Static) else diagram
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self.tick_interval:
            # Before attaching: with the timer on, a lab that already holds many events is ingested a
            # frame's budget at a time instead of delaying the first paint.
            self._timer = self.set_interval(self.tick_interval, self.tick)
            self.log_view.throttle = True
            # scapy takes ~0.4 s to import: do it in a thread once the first screens are painted, so the
            # first segment a user selects dissects at once without slowing the start.
            self.set_timer(SCAPY_WARMUP, self._warm_up_scapy)
        self._attach_lab(self.lab)
        self._live = True
        self.log_view.focus()
        self._layout_for(self.size.height)
        if self.player is not None:
            self._show_step()
        for problem in self.theme_problems:
            self.notify(problem, title="theme file skipped", severity="warning")

    def _warm_up_scapy(self) -> None:
        self.run_worker(load_scapy_ip, thread=True, exclusive=True, group="scapy", exit_on_error=False)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._tabs_active = event.pane.id or ""
        self.screen.set_class(event.pane.id == "states", "-diagram")
        if event.pane.id == "ladder":
            self._flush_ladder()
            row = self.log_view.selected_row()
            ladder = self._ladder()
            if ladder is not None and row is not None and row[0] == PACKET:
                ladder.select(row[1].number)

    def on_resize(self) -> None:
        self._layout_for(self.size.height)

    def _layout_for(self, height: int) -> None:
        """Below ~36 rows the panels and detail pane shrink so the log keeps some lines (100×30 usable)."""
        self.screen.set_class(height < 36, "-compact")

    # ------------------------------------------------------------------------------------------------------
    # the lab: attaching, events, ticking

    def _attach_lab(self, lab: Lab) -> None:
        """Show `lab`: replay what it has logged so far, then follow its events as they happen."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.lab = lab
        self.model.reset()
        self._pending.clear()
        self._send_queue.clear()
        self._auto_recv.clear()
        ladder = self._ladder()
        if ladder is not None:
            ladder.clear()
        diagram = self._state_diagram()
        if diagram is not None:
            diagram.reset()
        self._pending.extend(lab.log)
        self._unsubscribe = lab.subscribe(self._pending.append)
        if self.player is not None:
            self.player.on_lab_replaced = self._lab_replaced
        if self.panels:
            self.log_view.reset()
            self.detail.clear()
        self._ladder_backlog.clear()
        for panel in self.panels:
            panel.pinned = None
            panel.last_current = None
        self.refresh_views()

    def _lab_replaced(self, lab: Lab) -> None:
        self._attach_lab(lab)

    def _ladder(self) -> Any:
        """The LadderView, or None when its module could not be loaded (a notice shows in its tab)."""
        return self._ladder_widget

    def _state_diagram(self) -> Any:
        return self._diagram_widget

    def tick(self) -> None:
        """One frame: bring the lab up to the clock (within a time budget), then repaint what changed."""
        if not self._live:
            return
        self._advance_clock()
        try:
            self.refresh_views()
        except NoMatches:
            self._live = False  # the app is closing and its widgets are already gone

    def _advance_clock(self) -> None:
        lab = self.lab
        clock = lab.clock
        if getattr(lab, "realtime_link", False):
            self._guard(lab.sync_clock)
            return
        if not clock.realtime or clock.paused:
            return
        target = clock.now()
        deadline = time.perf_counter() + SYNC_BUDGET
        try:
            while lab.now < target:
                due = lab.next_event_time()
                if due is None or due > target:
                    lab.run_to(target)
                    break
                lab.run_to(max(due, lab.now))
                if time.perf_counter() > deadline:
                    break
        except LabError as exc:
            self._pause_clock()
            self.notify(str(exc), title="the lab stopped", severity="error")
        self.lagging = max(0, target - lab.now)

    def _pause_clock(self) -> None:
        clock = self.lab.clock
        if isinstance(clock, ScaledClock) and not getattr(self.lab, "realtime_link", False):
            clock.pause()

    def refresh_views(self) -> None:
        """Feed new events to the log, repaint the panels, status and diagrams (cheap when idle)."""
        self._run_programs()
        if not self.panels:
            return
        narration = self._ingest() if self._pending else None
        if narration is not None:
            self.narrate(narration)
        for panel in self.panels:
            panel.refresh_from(self.lab, acting=panel.host == self.acting)
        diagram = self._state_diagram()
        if diagram is not None:
            current = diagram.states
            for panel in self.panels:
                view = panel.view
                if view is not None and view.badge is not None and current.get(panel.host) != view.badge:
                    diagram.set_state(panel.host, view.badge)  # where the panel's badge says it is
        self._update_status()

    def _ingest(self) -> str | None:
        """Move pending lab events into the log, ladder and state diagram; returns the last narration.

        With the real-time timer running, one call does at most INGEST_BUDGET of work and leaves the rest
        for the next frames, so a lab that arrives with 100 000 segments (a demo replayed to its last
        step) paints at once and keys stay responsive while the log fills. Without the timer (tests) it
        takes everything, so what a test sees depends only on what it did.
        """
        pending = self._pending  # the lab appends to this very list object: consume it in place
        ladder = self._ladder()
        if ladder is not None and not self._ladder_visible():
            ladder = None  # kept in the backlog instead
            backlog = self._ladder_backlog
        else:
            backlog = None
        diagram = self._state_diagram()
        model = self.model
        deadline = time.perf_counter() + INGEST_BUDGET if self._timer is not None else None
        narration = None
        added = False
        done = 0
        for event in pending:
            done += 1
            added |= model.add(event)
            if isinstance(event, PacketEvent):
                # Share the log's relative numbers and expert tags: both need every segment in order.
                tags = model.rows[-1][4] if model.rows and model.rows[-1][1] is event.record else ()
                if ladder is not None:
                    self._feed_ladder(ladder, (event.record, model.last_bases, tags))
                elif backlog is not None:
                    backlog.append((event.record, model.last_bases, tags))
            elif isinstance(event, HostEvent):
                if isinstance(event.event, StateChanged):
                    if ladder is not None:
                        ladder.add_lab_event(event)
                    elif backlog is not None:
                        backlog.append((event,))
                if diagram is not None:
                    self._diagram_event(diagram, event)
            elif isinstance(event, Note) and event.kind == "narration" and self.player is None:
                narration = event.text
            if deadline is not None and not done % 128 and time.perf_counter() > deadline:
                break
        del pending[:done]
        self._trim_to_capture()
        if added:
            self.log_view.rows_added()
        return narration

    def _trim_to_capture(self) -> None:
        """Keep the log no longer than the capture ring (in steps of a tenth of it, to amortise the copy)."""
        records = self.lab.capture.records
        oldest = self.model.oldest_packet()
        if not records or oldest is None:
            return
        first = records[0].number
        if first - oldest > max(1, (records.maxlen or len(records)) // 10):
            self.model.drop_packets_before(first)

    @staticmethod
    def _feed_ladder(ladder: Any, item: tuple[Any, ...]) -> None:
        if len(item) == 1:
            ladder.add_lab_event(item[0])
            return
        record, bases, tags = item
        ladder.add_record(record, bases, tags)

    def _ladder_visible(self) -> bool:
        return self._tabs_active == "ladder"

    def _flush_ladder(self) -> None:
        ladder = self._ladder()
        if ladder is None:
            return
        backlog = self._ladder_backlog
        while backlog:
            self._feed_ladder(ladder, backlog.popleft())

    def _diagram_event(self, diagram: Any, event: HostEvent) -> None:
        """Feed the state diagram the transitions of the connection between the two hosts (a SYN flood's
        half-open requests would scribble over the server's path), plus listen() as CLOSED → LISTEN, which
        the stack reports as a socket event rather than a state change."""
        e = event.event
        if event.host not in self.hosts:
            return
        if isinstance(e, StateChanged):
            peer = self.hosts[1 - self.hosts.index(event.host)]
            if e.conn[2] == self._address(peer):
                diagram.record_transition(event.host, e.old, e.new)
        elif isinstance(e, SocketEvent) and e.what == "listening":
            diagram.record_transition(event.host, State.CLOSED, State.LISTEN)

    def _run_programs(self) -> None:
        """The little programs on each host: write what is left of a send, read what arrives (auto-recv)."""
        lab = self.lab
        for host, buf in list(self._send_queue.items()):
            if not buf:
                self._send_queue.pop(host, None)
                continue
            snap = lab.snapshot(host)
            if snap is None or host in lab.down or str(snap.state) not in ("ESTABLISHED", "CLOSE_WAIT"):
                self._send_queue.pop(host, None)
                lab.note(f"program stops writing: {len(buf)} bytes never sent (the connection is gone)", host)
                continue
            buffer = getattr(snap, "send_buffer", None)  # a kernel peer's snapshot does not say: just try
            room = 65536 if buffer is None else buffer - getattr(snap, "send_buffered", 0)
            if room <= 0:
                continue
            try:
                n = lab.send(host, bytes(buf[:room]))
            except LabError:
                self._send_queue.pop(host, None)
                continue
            del buf[:n]
        for host in list(self._auto_recv):
            snap = lab.snapshot(host)
            if snap is None or host in lab.down:
                continue
            if getattr(snap, "recv_buffered", 0) > 0:
                try:
                    lab.recv(host)
                except (LabError, OSError):
                    self._auto_recv.discard(host)

    def after_action(self) -> None:
        """Repaint right after a user action (no waiting for the next tick)."""
        self.refresh_views()

    def _guard(self, fn: Callable[[], Any]) -> Any:
        """Run a lab call; a LabError/OSError becomes an error notification (the lab stays as it was)."""
        try:
            return fn()
        except (LabError, OSError) as exc:
            self.notify(str(exc) or type(exc).__name__, severity="error", timeout=4)
            return None
        finally:
            if self._live:
                self.refresh_views()

    # ------------------------------------------------------------------------------------------------------
    # status and narration

    def narrate(self, text: str) -> None:
        """Show text in the narration bar (hidden when empty); the demo player's steps come through here."""
        self.narration = text
        bar = self.narration_bar
        bar.update(text)
        bar.display = bool(text)

    def clock_text(self) -> str:
        lab = self.lab
        clock = lab.clock
        if getattr(lab, "realtime_link", False):
            return f"● real time 1x ({lab.link_mode})"
        if isinstance(clock, VirtualClock):
            return "virtual clock (n steps)" if self.player is None else "demo clock"
        state = "⏸ paused" if clock.paused else "▶"
        return f"{state} {clock.speed:g}x"

    def _update_status(self) -> None:
        lab = self.lab
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(f" {self.clock_text()} ", style="bold reverse")
        out.append(f" t={describe_time(lab.now)} s ")
        if self.lagging > 100_000:
            out.append(f" ⚠ lab {format_duration(self.lagging)} behind the clock ", style="bold")
        if len(self._pending) > 1000:
            out.append(f" loading log: {len(self._pending)} events to go ", style="bold")
        out.append("│ ")
        out.append(lab.describe_link())
        out.append(" │ ")
        out.append(f"keys act on {self.acting} (c/s)", style="bold")
        if self.absolute:
            out.append(" │ absolute seq")
        if self.model.filter.active:
            out.append(f" │ filter: {self.model.filter.describe()}", style="bold")
        for host, buf in self._send_queue.items():
            if buf:
                out.append(f" │ {host} writing, {len(buf)} B left")
        if self._auto_recv:
            out.append(f" │ auto-recv {'/'.join(sorted(self._auto_recv))}")
        if self.player is not None:
            out.append(f" │ step {self.player.index}/{len(self.player.steps)}")
            if self._autoplay is not None:
                out.append(" autoplay")
        status = self.status_bar
        if out != getattr(status, "_shown", None):
            status._shown = out  # type: ignore[attr-defined]
            status.update(out, layout=False)  # one fixed line: repainting it must not re-lay-out the screen

    # ------------------------------------------------------------------------------------------------------
    # selection sync between the log, the detail pane and the ladder

    def on_packet_log_cursor_moved(self, message: PacketLog.CursorMoved) -> None:
        """The log's cursor moved: the ladder follows at once, the detail pane when the cursor rests.

        Dissecting with scapy and rebuilding the tree costs ~20 ms; holding ↓ or PgDn must move the log
        at key-repeat speed, so in the live app the detail waits DETAIL_DELAY for the cursor to settle.
        """
        row = message.row
        ladder = self._ladder()
        if ladder is not None and row is not None and row[0] == PACKET:
            ladder.select(row[1].number)
        if self._detail_timer is not None:
            self._detail_timer.stop()
            self._detail_timer = None
        if self.still or self._timer is None:
            self._show_detail(row)
        else:
            self._detail_timer = self.set_timer(DETAIL_DELAY, lambda: self._show_detail(row))

    def _show_detail(self, row: Any) -> None:
        self._detail_timer = None
        detail = self.detail
        if row is None:
            detail.clear()
        elif row[0] != PACKET:
            detail.clear("An event line: select a segment line to dissect it")
        else:
            detail.show_record(row[1])

    def select_packet(self, number: int) -> None:
        """Select capture packet `number` in the log and detail (the ladder's selection comes here)."""
        if not self.log_view.select_packet(number, notify=True):
            record = self._record(number)
            if record is not None:
                self.detail.show_record(record)

    def _record(self, number: int) -> CaptureRecord | None:
        records = self.lab.capture.records
        if not records:
            return None
        index = number - records[0].number
        return records[index] if 0 <= index < len(records) else None

    def on_ladder_view_selected(self, message: Any) -> None:
        """A segment picked in the ladder becomes the log's and the detail pane's selection too."""
        self.select_packet(int(message.record_number))

    # ------------------------------------------------------------------------------------------------------
    # helpers for actions and modals

    def socket_of(self, host: str) -> Any:
        app = self.lab.apps.get(host)
        if app is None:
            return None
        return app.current() or (
            app.listener if app.listener is not None and not app.listener.closed else None
        )

    def send_data(self, host: str, data: bytes) -> int:
        """send() now; whatever does not fit is written by the host's program as the buffer drains."""
        sent = self.lab.send(host, data)
        if sent < len(data):
            self._send_queue.setdefault(host, bytearray()).extend(data[sent:])
        return sent

    def set_speed(self, speed: float) -> None:
        clock = self.lab.clock
        if not isinstance(clock, ScaledClock):
            raise LabError("this lab runs on a virtual clock: time moves when you step (n) or skip (t)")
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise LabError(f"speed must be between {MIN_SPEED:g}x and {MAX_SPEED:g}x")
        clock.set_speed(speed)
        self.refresh_views()

    def set_filter(self, flt: LogFilter) -> None:
        self.model.set_filter(flt)
        self.log_view.rows_added()
        self.refresh_views()

    def theme_names(self) -> list[str]:
        names = list(self.available_themes)
        return sorted(names, key=theme_order)

    def _theme_changed(self, theme: Any) -> None:
        name = getattr(theme, "name", str(theme))
        if self.remember_theme and name != self._saved_theme and save_config({"theme": name}) is not None:
            self._saved_theme = name

    # ------------------------------------------------------------------------------------------------------
    # enabling actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        modal = len(self.screen_stack) > 1
        if action in DEMO_ACTIONS:
            return self.player is not None and not modal
        if action == "pause":
            return self.player is None and not modal
        return True

    # ------------------------------------------------------------------------------------------------------
    # actions: hosts

    def action_act_on(self, host: str) -> None:
        if host not in self.hosts:
            return
        self.acting = host
        self.refresh_views()

    def _panel(self, host: str) -> EndpointPanel:
        return self.panels[self.hosts.index(host)]

    def action_select_conn(self, delta: int) -> None:
        chosen = self._panel(self.acting).move_selection(self.lab, delta)
        if chosen is None:
            self.notify(f"{self.acting} holds no connections", timeout=2)
        self.refresh_views()

    def action_crash(self) -> None:
        self._send_queue.pop(self.acting, None)
        self._guard(lambda: self.lab.crash(self.acting))

    def action_reboot(self) -> None:
        self._send_queue.pop(self.acting, None)
        self._auto_recv.discard(self.acting)
        panel = self._panel(self.acting)
        panel.pinned = panel.last_current = None
        self._guard(lambda: self.lab.reboot(self.acting))

    # ------------------------------------------------------------------------------------------------------
    # actions: connection

    def action_listen(self) -> None:
        self._guard(lambda: self.lab.listen(self.acting, DEFAULT_PORT))

    def action_connect(self) -> None:
        self._guard(lambda: self.lab.connect(self.acting, self.lab.other(self.acting), DEFAULT_PORT))

    def action_connect_port(self) -> None:
        self.push_screen(PortModal(self.acting, "connect"))

    def action_listen_port(self) -> None:
        self.push_screen(PortModal(self.acting, "listen"))

    def action_accept(self) -> None:
        sock = self._guard(lambda: self.lab.accept(self.acting))
        if sock is None and self.acting in self.lab.apps and self.lab.apps[self.acting].listener is not None:
            self.notify("nothing in the accept queue (auto-accept may have taken it already)", timeout=3)

    def action_toggle_auto_accept(self) -> None:
        app = self.lab.apps.get(self.acting)
        if app is None:
            return
        app.auto_accept = not app.auto_accept
        self.notify(f"{self.acting}: auto-accept {'on' if app.auto_accept else 'off'}", timeout=2)
        self.refresh_views()

    def action_send(self) -> None:
        self.push_screen(SendModal(self.acting))

    def action_recv(self) -> None:
        data = self._guard(lambda: self.lab.recv(self.acting))
        if data:
            preview = data[:40].decode("utf-8", "replace").replace("\r", "\\r").replace("\n", "\\n")
            self.notify(
                f"{self.acting} read {len(data)} bytes: {preview}{'…' if len(data) > 40 else ''}", timeout=3
            )

    def action_toggle_auto_recv(self) -> None:
        if self.acting in self._auto_recv:
            self._auto_recv.discard(self.acting)
        else:
            self._auto_recv.add(self.acting)
        self.refresh_views()

    def action_shutdown(self) -> None:
        self._guard(lambda: self.lab.shutdown(self.acting, "wr"))

    def action_close(self) -> None:
        self._guard(lambda: self.lab.close(self.acting))

    def action_abort(self) -> None:
        self._send_queue.pop(self.acting, None)
        self._guard(lambda: self.lab.abort(self.acting))

    # ------------------------------------------------------------------------------------------------------
    # actions: options, link

    def action_linger(self) -> None:
        self.push_screen(LingerModal(self.acting))

    def action_keepalive(self) -> None:
        self.push_screen(KeepaliveModal(self.acting))

    def action_nodelay(self) -> None:
        opts = read_sockopts(self.socket_of(self.acting))
        on = not (opts.nodelay if opts else False)
        self._guard(lambda: self.lab.setsockopt(self.acting, "TCP_NODELAY", int(on)))

    def action_settings(self) -> None:
        self.push_screen(SettingsModal(self.acting))

    def action_drop(self) -> None:
        self.push_screen(DropModal())

    def action_impair(self) -> None:
        self.push_screen(ImpairModal())

    def action_partition(self) -> None:
        link = self.lab.link
        self._guard(lambda: self.lab.partition(not getattr(link, "partitioned", False)))

    def action_flood(self) -> None:
        self.push_screen(SynFloodModal())

    # ------------------------------------------------------------------------------------------------------
    # actions: time

    def action_pause(self) -> None:
        clock = self.lab.clock
        if isinstance(clock, VirtualClock):
            self.notify("virtual clock: nothing moves until you step (n) or skip to a timer (t)", timeout=3)
            return
        if clock.paused:
            self._guard(clock.resume)
        else:
            self._guard(clock.pause)

    def action_step(self) -> None:
        if getattr(self.lab, "realtime_link", False):
            self.notify("a real-time link runs on the kernel's clock: there is no stepping", timeout=3)
            return
        result = self._guard(self.lab.step)
        if result is None:
            self.notify("nothing pending: no segment in flight, no timer running", timeout=3)

    def action_faster(self) -> None:
        self._change_speed(1)

    def action_slower(self) -> None:
        self._change_speed(-1)

    def _change_speed(self, direction: int) -> None:
        clock = self.lab.clock
        current = getattr(clock, "speed", 1.0)
        if direction > 0:
            choices = [s for s in SPEEDS if s > current + 1e-9]
            target = choices[0] if choices else SPEEDS[-1]
        else:
            choices = [s for s in SPEEDS if s < current - 1e-9]
            target = choices[-1] if choices else SPEEDS[0]
        try:
            self.set_speed(target)
        except LabError as exc:
            self.notify(str(exc), severity="warning", timeout=3)

    def action_speed(self) -> None:
        self.push_screen(SpeedModal())

    def action_skip_timer(self) -> None:
        nxt = self._guard(self.lab.skip_to_next_timer)
        if nxt is None:
            if not getattr(self.lab, "realtime_link", False):
                self.notify("no timer is running", timeout=2)
            return
        deadline, host, timer = nxt
        self.notify(f"jumped to {host}'s {timer} timer at {describe_time(deadline)} s", timeout=3)

    # ------------------------------------------------------------------------------------------------------
    # actions: view

    def action_tab(self, name: str) -> None:
        self.query_one(TabbedContent).active = name

    def action_filter(self) -> None:
        self.push_screen(FilterModal())

    def action_toggle_numbers(self) -> None:
        self.absolute = not self.absolute
        self.log_view.set_absolute(self.absolute)
        self.refresh_views()

    def action_next_theme(self) -> None:
        names = self.theme_names()
        index = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(index + 1) % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_export(self) -> None:
        self.push_screen(ExportModal())

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(demo=self.player is not None))

    async def action_quit(self) -> None:
        self._live = False
        self.save_pcap_on_exit()
        self.exit(0)

    def save_pcap_on_exit(self) -> None:
        """--pcap FILE: write the capture once, as the app closes."""
        if not self.pcap_on_exit or self.pcap_saved is not None:
            return
        try:
            n = self.lab.export_pcap(self.pcap_on_exit)
        except LabError as exc:
            self.pcap_saved = f"could not save the capture: {exc}"
        else:
            self.pcap_saved = f"saved {n} packets to {self.pcap_on_exit}"

    # ------------------------------------------------------------------------------------------------------
    # actions: demo

    def _show_step(self) -> None:
        player = self.player
        if player is None:
            return
        if player.index == 0 or not player.steps:
            first = player.steps[0] if player.steps else None
            title = getattr(first, "title", "") if first is not None else ""
            intro = f"Demo: {len(player.steps)} steps. space/enter runs the next one"
            self.narrate(f"{intro}{f' ({title})' if title else ''}, ⌫ goes back, a plays them all.")
            return
        step = player.steps[min(player.index, len(player.steps)) - 1]
        header = f"Step {player.index}/{len(player.steps)}"
        title = getattr(step, "title", "")
        self.narrate(f"{header}{f' · {title}' if title else ''}\n{getattr(step, 'narration', '')}".rstrip())
        # A drill run that failed names the segment to show (DrillPlayer.highlight) once its step is reached.
        highlight = getattr(player, "highlight", None)
        at = getattr(player, "highlight_at", None)
        if highlight is not None and at is not None and player.index >= at:
            self.select_packet(highlight)

    def action_demo_next(self) -> None:
        player = self.player
        if player is None:
            return
        try:
            more = player.next()
        except Exception as exc:  # a scenario that fails must not take the app down with it
            self.notify(f"the step failed: {exc}", severity="error")
            more = False
        if not more:
            self._stop_autoplay()
            self.notify("end of the demo (⌫ goes back)", timeout=3)
        self._show_step()
        self.refresh_views()

    def action_demo_prev(self) -> None:
        player = self.player
        if player is None or player.index <= 0:
            return
        self._stop_autoplay()
        try:
            player.goto(player.index - 1)
        except Exception as exc:
            self.notify(f"could not go back: {exc}", severity="error")
        if player.lab is not self.lab:
            self._attach_lab(player.lab)
        self._show_step()
        self.refresh_views()

    def action_demo_autoplay(self) -> None:
        if self._autoplay is not None:
            self._stop_autoplay()
        else:
            self._autoplay = self.set_interval(AUTOPLAY_SECONDS, self._autoplay_step)
            self._autoplay_step()
        self.refresh_views()

    def _autoplay_step(self) -> None:
        player = self.player
        if player is None:
            return
        self.action_demo_next()
        if getattr(player, "wants_pause", False) or getattr(player, "done", False):
            self._stop_autoplay()

    def _stop_autoplay(self) -> None:
        if self._autoplay is not None:
            self._autoplay.stop()
            self._autoplay = None

    # ------------------------------------------------------------------------------------------------------
    # the command palette: every control, by name

    def get_system_commands(self, screen: Screen[Any]) -> Any:
        yield from super().get_system_commands(screen)
        for cmd in COMMANDS:
            name = action_name(cmd.action)
            if self.check_action(name, ()) is False:
                continue
            keys = f" [{cmd.shown_keys}]" if cmd.keys else ""
            yield SystemCommand(cmd.title, f"{cmd.help}{keys}", self._runner(cmd.action))

    def _runner(self, action: str) -> Callable[[], Any]:
        async def run() -> None:
            await self.run_action(action)

        return run

    def on_unmount(self) -> None:
        self._live = False
        if self._timer is not None:
            self._timer.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


def settle_garbage_collector() -> None:
    """Move everything built so far (the lab, a demo's replayed capture, Textual itself) out of the cyclic
    garbage collector's sight.

    A full collection walks every tracked object: with 100 000 segments in memory that is ~0.1 s, long
    enough to be seen as a stutter, and it comes back every few frames while the log is filling. These
    objects live for the whole session anyway, so `gc.freeze()` loses nothing.
    """
    gc.collect()
    gc.freeze()


def run_app(
    *,
    seed: int = 1,
    theme: str | None = None,
    pcap: str | None = None,
    link: str | None = None,
    link_mode: str | None = None,
    peer: str | None = None,
    kernel_role: str = "server",
    speed: float = 1.0,
    player: DemoPlayer | None = None,
) -> int:
    """Build a Lab (ScaledClock at `speed`, running; real time on a TUN/kernel link), run the app, save the
    capture to `pcap` on exit. Returns the process exit code. LabError (bad theme, no privileges for a TUN
    link...) propagates for the CLI to print."""
    if not sys.stdout.isatty():
        raise LabError(
            "the app needs a terminal and standard output is not one; use --headless to print instead"
        )
    mode = link or link_mode
    if peer == "kernel" and mode == "memory":
        mode = None  # the CLI's default link; a kernel peer is always reached over TUN
    if player is not None:
        lab = player.lab
    else:
        real = (mode not in (None, "memory")) or peer == "kernel"
        clock = None if real else ScaledClock(speed)
        kwargs: dict[str, Any] = {"seed": seed, "clock": clock}
        if mode is not None or peer is not None:
            kwargs.update(link=mode, peer=peer, kernel_role=kernel_role)
        lab = Lab(**kwargs)
    app = TcpPlayApp(lab, theme=theme, pcap_on_exit=pcap, player=player)
    settle_garbage_collector()
    try:
        code = app.run()
    finally:
        app.save_pcap_on_exit()
        closer = getattr(app.lab, "close_link", None)
        if closer is not None:
            closer()
    if app.pcap_saved:
        print(app.pcap_saved)
    return int(code or 0)
