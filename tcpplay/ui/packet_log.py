"""The packet log: one line per segment (tcpdump's form, coloured flags, expert tags, fate) with the state
changes and user actions in between, on Textual's line API.

A DataTable builds a widget row per line and slows to a crawl near 100 000 rows; a `ScrollView` with
`render_line` (the way Toolong shows multi-gigabyte logs) only formats the lines on screen, so the cost of a
repaint does not depend on how long the log is. New rows are appended to the LogModel by the app and shown
in batches (the app calls `rows_added()` at most ~20 times a second). The view follows the tail unless the
user has scrolled or moved the cursor away from it, as `tail -f` in a pager does.
"""

from __future__ import annotations

import time
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer

from ..capture import DELIVERED
from ..format import describe_time, expert_severity
from .logmodel import EVENT, PACKET, LogModel, Row, absolute_text, peer_label
from .themes import theme_colour

FATE_MARK = {
    "dropped": "✗ dropped",
    "lost": "✗ lost",
    "corrupted": "✗ corrupted",
    "duplicated": "⇉ duplicated",
    "reordered": "↯ reordered",
    "partitioned": "✗ cable pulled",
    "host-down": "✗ host down",
    "no-route": "✗ no such host",
}
ODD_FATES = frozenset({"duplicated", "reordered"})

_FLAG_VARS = (
    ("F", "flag-fin"),
    ("S", "flag-syn"),
    ("R", "flag-rst"),
    ("P", "flag-psh"),
    (".", "flag-ack"),
    ("U", "flag-urg"),
    ("E", "flag-ece"),
    ("W", "flag-cwr"),
)
_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, ".": 0x10, "U": 0x20, "E": 0x40, "W": 0x80}

RESIZE_INTERVAL = 0.25  # seconds between scroll-range updates while rows keep arriving (throttle on)
NUMBER_WIDTH = 7
TIME_WIDTH = 11
SIDE_WIDTH = 7
FLAGS_WIDTH = 6


def column_header(left: str, right: str) -> str:
    """The title line above the log, aligned with render_line's columns."""
    flow = f"{left[:SIDE_WIDTH]:>{SIDE_WIDTH}} ⇄ {right[:SIDE_WIDTH]:<{SIDE_WIDTH}}"
    return f"{'No.':>{NUMBER_WIDTH - 1}} {'Time':>{TIME_WIDTH - 1}}  {flow} {'Flags':<{FLAGS_WIDTH}} Segment"


class PacketLog(ScrollView, can_focus=True):
    """The scrolling log. Keys: ↑/↓ select, PgUp/PgDn, Home/End (End follows the tail again)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last (follow)", show=False),
    ]

    DEFAULT_CSS = """
    PacketLog {
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    """

    class CursorMoved(Message):
        """The selected row changed (row is None when the log was cleared)."""

        def __init__(self, packet_log: PacketLog, row: Row | None) -> None:
            super().__init__()
            self.packet_log = packet_log
            self.row = row

        @property
        def number(self) -> int | None:
            """Capture number of the selected segment, None for an event row or nothing."""
            if self.row is None or self.row[0] != PACKET:
                return None
            return int(self.row[1].number)

    def __init__(
        self, model: LogModel, hosts: tuple[str, str] = ("client", "server"), *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.model = model
        self.hosts = hosts
        self.cursor: int | None = None
        self.follow = True
        self.absolute = False
        self._styles: dict[str, Style] = {}
        self._cache: LRUCache[tuple[int, bool, int, int], Strip] = LRUCache(1024)
        self._style_generation = 0
        self._model_generation = model.generation
        self.throttle = False  # the app turns it on when it runs its real-time frame timer
        self._resized_at = 0.0
        self._resize_timer: Timer | None = None

    # --------------------------------------------------------------------------------------------------
    # styles from the theme

    def on_mount(self) -> None:
        self.update_styles()
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.update_styles())
        self.rows_added()

    def update_styles(self) -> None:
        """Re-read colours from the theme variables ($flag-syn...): called at mount and on a theme change."""
        variables = self.app.theme_variables or self.app.get_css_variables()

        def colour(*chain: str) -> Style:
            return Style(color=theme_colour(variables, *chain))

        styles = {var: colour(var, "foreground") for _, var in _FLAG_VARS}
        for name in (
            "expert-chat",
            "expert-note",
            "expert-warn",
            "fate-bad",
            "fate-odd",
            "dir-client",
            "dir-server",
            "event-state",
            "event-note",
            "event-error",
        ):
            styles[name] = colour(name, "foreground")
        for key in variables:
            if key.startswith("state-"):
                styles[key] = Style(color=theme_colour(variables, key, "foreground"), bold=True)
        styles["cursor"] = Style(bgcolor=theme_colour(variables, "log-cursor", "primary"))
        styles["dim"] = colour("event-note", "secondary")
        styles["narration"] = Style(color=theme_colour(variables, "accent"), italic=True)
        self._styles = styles
        self._style_generation += 1
        self._cache.clear()
        self.refresh()

    # --------------------------------------------------------------------------------------------------
    # content changes

    def rows_added(self) -> None:
        """The model grew (or was filtered/trimmed/reset): resize, follow the tail, repaint.

        Changing a ScrollView's virtual size re-lays-out the whole screen (~25 ms with everything on it).
        During a bulk transfer rows arrive every frame, so with `throttle` on the size (and so the
        scrollbar) catches up at most every RESIZE_INTERVAL; meanwhile a log that follows the tail paints
        the newest rows anyway (see `top`), so what is on screen is never behind.
        """
        count = len(self.model)
        structural = self.model.generation != self._model_generation
        if structural:
            self._model_generation = self.model.generation
            self._cache.clear()
            if self.cursor is not None and self.cursor >= count:
                self.cursor = count - 1 if count else None
        now = time.monotonic()
        height = self.scrollable_content_region.height
        if (
            structural
            or not self.throttle
            or self.virtual_size.height <= height
            or now - self._resized_at >= RESIZE_INTERVAL
        ):
            self.sync_size()
        elif self._resize_timer is None:
            self._resize_timer = self.set_timer(RESIZE_INTERVAL, self.sync_size)
        self.refresh()

    def sync_size(self) -> None:
        """Bring the virtual size (scroll range) up to the model now."""
        if self._resize_timer is not None:
            self._resize_timer.stop()
            self._resize_timer = None
        self._resized_at = time.monotonic()
        count = len(self.model)
        size = Size(max(self.model.widest, 80), count)
        if size != self.virtual_size:
            self.virtual_size = size
        if self.follow:
            self.set_scroll(None, max(0, count - self.scrollable_content_region.height))

    @property
    def top(self) -> int:
        """The view position of the first line on screen (the tail's when following)."""
        if self.follow:
            return max(0, len(self.model) - self.scrollable_content_region.height)
        return int(self.scroll_y)

    def set_absolute(self, absolute: bool) -> None:
        self.absolute = absolute
        self._cache.clear()
        self.refresh()

    def reset(self) -> None:
        """The model was reset (a new lab): forget the cursor and follow the tail again."""
        self.cursor = None
        self.follow = True
        self._cache.clear()
        self._model_generation = self.model.generation
        self.rows_added()
        self.post_message(self.CursorMoved(self, None))

    # --------------------------------------------------------------------------------------------------
    # cursor and scrolling

    def select_position(self, position: int | None, *, notify: bool = True) -> None:
        """Put the cursor on a view position and scroll it into view."""
        self.sync_size()
        count = len(self.model)
        if position is not None:
            position = max(0, min(position, count - 1)) if count else None
        if position == self.cursor:
            return
        self.cursor = position
        if position is not None:
            height = max(1, self.scrollable_content_region.height)
            top = int(self.scroll_y)
            if position < top:
                self.set_scroll(None, position)
            elif position >= top + height:
                self.set_scroll(None, position - height + 1)
            self.follow = position == count - 1
        self.refresh()
        if notify:
            self.post_message(
                self.CursorMoved(self, self.model.get(position) if position is not None else None)
            )

    def select_packet(self, number: int, *, notify: bool = False) -> bool:
        """Select the row of capture packet `number` (from the ladder); False if the log does not show it."""
        position = self.model.position_of_packet(number)
        if position is None:
            return False
        self.select_position(position, notify=notify)
        return True

    def selected_row(self) -> Row | None:
        if self.cursor is None or self.cursor >= len(self.model):
            return None
        return self.model.get(self.cursor)

    def action_cursor(self, delta: int) -> None:
        self.sync_size()
        count = len(self.model)
        if not count:
            return
        if self.cursor is None:
            start = int(self.scroll_y) + max(0, self.scrollable_content_region.height - 1)
            self.select_position(min(start, count - 1) if delta < 0 else int(self.scroll_y))
            return
        self.select_position(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.sync_size()
        height = max(1, self.scrollable_content_region.height)
        if self.cursor is None:
            self.follow = False
            self.set_scroll(None, max(0, min(self.max_scroll_y, int(self.scroll_y) + direction * height)))
            self.refresh()
            return
        self.select_position(self.cursor + direction * height)

    def action_first(self) -> None:
        self.follow = False
        self.select_position(0)
        self.set_scroll(None, 0)

    def action_last(self) -> None:
        count = len(self.model)
        self.follow = True
        if count:
            self.select_position(count - 1)
        self.set_scroll(None, self.max_scroll_y)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value < old_value and round(new_value) < self.max_scroll_y:
            self.follow = False
        elif round(new_value) >= self.max_scroll_y:
            self.follow = True

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        self.sync_size()
        position = self.top + offset.y
        if 0 <= position < len(self.model):
            self.select_position(position)
            self.focus()

    # --------------------------------------------------------------------------------------------------
    # painting

    def render_line(self, y: int) -> Strip:
        scroll_x = self.scroll_offset.x
        position = self.top + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if position >= len(self.model):
            return Strip.blank(width, base)
        absolute = self.model.absolute(position)
        selected = position == self.cursor
        key = (absolute, selected, self._style_generation, int(self.absolute))
        strip = self._cache.get(key)
        if strip is None:
            strip = self._line(self.model.get(position), base, selected)
            self._cache[key] = strip
        return strip.crop_extend(
            scroll_x, scroll_x + width, base + self._styles["cursor"] if selected else base
        )

    def _line(self, row: Row, base: Style, selected: bool) -> Strip:
        st = self._styles
        if selected:
            base = base + st["cursor"]
        segments: list[Segment] = []
        add = segments.append
        if row[0] == PACKET:
            record = row[1]
            add(Segment(f"{record.number:>{NUMBER_WIDTH - 1}} ", base + st["dim"]))
            add(Segment(f"{describe_time(record.time):>{TIME_WIDTH - 1}}  ", base))
            self._flow(segments, record.src, record.dst, base)
            self._flags(segments, row[2], base)
            if record.fate != DELIVERED:
                style = st["fate-odd"] if record.fate in ODD_FATES else st["fate-bad"]
                add(Segment(f"{FATE_MARK.get(record.fate, record.fate)} ", base + style + Style(bold=True)))
            for tag in row[4]:
                severity = expert_severity(tag)
                add(Segment(f"[{tag}] ", base + st.get(f"expert-{severity}", st["expert-note"])))
            add(Segment(absolute_text(record) if self.absolute else row[3], base))
        elif row[0] == EVENT:
            _, time, host, text, style_key = row
            add(Segment(" " * NUMBER_WIDTH, base))
            add(Segment(f"{describe_time(time):>{TIME_WIDTH - 1}}  ", base))
            who = host or "lab"
            add(Segment(f"{who[:SIDE_WIDTH]:>{SIDE_WIDTH}}", base + self._host_style(host)))
            add(Segment("   ", base))
            if style_key.startswith("state:"):
                state_var = "state-" + style_key[6:].lower().replace("_", "-")
                add(Segment(f"{' ' * (SIDE_WIDTH + FLAGS_WIDTH - 2)}{text}", base + st.get(state_var, base)))
            elif style_key == "error":
                add(Segment(text, base + st["event-error"]))
            elif style_key == "narration":
                add(Segment(f"# {text}", base + st["narration"]))
            elif style_key in ("note", "info"):
                add(Segment(("$ " if style_key == "note" else "") + text, base + st["event-note"]))
            else:
                add(Segment(text, base + st["event-state"]))
        strip = Strip(segments)
        return strip

    def _host_style(self, host: str) -> Style:
        if host == self.hosts[0]:
            return self._styles["dir-client"]
        if host == self.hosts[1]:
            return self._styles["dir-server"]
        return self._styles["dim"]

    def _flow(self, segments: list[Segment], src: str, dst: str, base: Style) -> None:
        """`client → server` / `client ← server`: the client column stays left, as in the ladder."""
        server = self.hosts[1]
        if src == server:
            left, right, arrow = peer_label(dst), src, "←"
        else:
            left, right, arrow = peer_label(src), peer_label(dst), "→"
        segments.append(Segment(f"{left[:SIDE_WIDTH]:>{SIDE_WIDTH}}", base + self._host_style(left)))
        style = self._host_style(src)
        segments.append(Segment(f" {arrow} ", base + style + Style(bold=True)))
        segments.append(Segment(f"{right[:SIDE_WIDTH]:<{SIDE_WIDTH}} ", base + self._host_style(right)))

    def _flags(self, segments: list[Segment], flags: int, base: Style) -> None:
        """`[S.]` with each letter in its theme colour, padded so the rest of the line stays aligned."""
        st = self._styles
        segments.append(Segment("[", base))
        used = 0
        if flags < 0:
            segments.append(Segment("?", base + st["fate-bad"]))
            used = 1
        else:
            for letter, var in _FLAG_VARS:
                if flags & _FLAG_BITS[letter]:
                    segments.append(Segment(letter, base + st[var] + Style(bold=True)))
                    used += 1
            if not used:
                segments.append(Segment("none", base))
                used = 4
        segments.append(Segment("]" + " " * max(1, FLAGS_WIDTH - used - 1), base))
