"""The ladder (sequence) diagram: two hosts as vertical timelines and every segment as an arrow between them.

This is the picture TCP textbooks draw, built live from the lab's capture: client on the left, server on the
right, time running down. Each segment is an arrow from its sender's timeline to its receiver's, labelled
with its flags and relative numbers (`SYN seq=0`, `SYN-ACK seq=0 ack=1`, `ACK ack=1`, `PSH,ACK 1:101`) and
coloured by its most telling flag. A segment the link dropped stops midway with ✗ and the reason; a
corrupted one arrives with a ※ mark. Each side's connection state is written beside its timeline on the
row where it changed. The time each segment left (and, when sloped, arrived) is in the left margin.

Layout. When every row fits on screen the arrows slope: a segment takes 1 + depth lines and its arrow
steps down towards the receiver, depth = its transit time in units of the fastest transit seen (1 to 3),
so a delayed or reordered segment visibly takes longer. Once the diagram is taller than the view, each
segment takes one line (a flat arrow), which keeps 100 000 segments scrollable. `sloped` forces either.
Labels shorten with the widget's width: below 110 columns the ack of data segments, `len=` and SACK blocks
go; below 72 the flags become tcpdump letters.

Public API (LadderView, a Textual ScrollView on the line API; only visible lines are ever formatted):

    LadderView(host_left: str = "client", host_right: str = "server", *,
               left_address: str | None = None, right_address: str | None = None,
               max_records: int = 100_000, name=None, id=None, classes=None)
    add_record(record: CaptureRecord, rel: tuple[int, int | None] | None = None,
               tags: Sequence[str] | None = None) -> None
        rel = (seq base, ack base) as RelativeSeq.bases gives them; None: the view keeps its own RelativeSeq.
        tags = expert tags (ExpertAnalyzer.analyze); None: the view runs its own analyzer. Pass both for
        every record or for none (the trackers must see every segment in order). Records must come in
        capture order. Cheap: nothing is formatted until a line is on screen.
    add_state_change(time: int, host: str, old: State, new: State) -> None
        time in stack microseconds (StateChanged.now). Written beside host's timeline on the row of the
        segment whose arrival (or, when the change comes first, whose sending) caused it, else on a row
        of its own. Hosts other than the two timelines are ignored.
    add_lab_event(event: LabEvent) -> None       convenience: PacketEvent and StateChanged HostEvents
    select(record_number: int) -> bool           highlight that segment and scroll to it (no message)
    clear() -> None                              forget everything (a new lab)
    follow: bool                                 keep showing the newest rows; False once the user scrolls
                                                 away from the end, True again at the end (or when set)
    sloped: bool | None                          None (default): slope when it fits; True/False: force
    selected: int | None                         record number of the highlighted segment
    model: LadderModel                           the rows and their text, without Textual (tests, export)

    class Selected(Message): record_number: int  posted when the user picks a segment: a click on it, or
                                                 up/down to move the highlight then enter

Keys: up/down move the highlight between segments, enter selects, page up/down, home/end scroll.

Theme variables (each tried in order; the first defined one that parses wins, so any Textual theme works):
    SYN      $flag-syn → $text-success → $success          FIN      $flag-fin → $text-warning → $warning
    RST      $flag-rst → $text-error → $error              data/PSH $flag-psh → $text-primary → $primary
    ACK      $flag-ack → $foreground                       ✗, ※     $fate-bad → $text-error → $error
    hosts    $<host> → $dir-<host> → built-in (e.g. $client → $dir-client → #61afef)
    cursor   $log-cursor → $block-cursor-blurred-background
    muted (times, timelines, addresses)  $foreground-muted → $foreground-darken-2
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.segment import Segment as RichSegment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from stack import State, StateChanged
from stack.wire import ACK, FIN, PSH, RST, SYN, Segment

from ..capture import (
    CORRUPTED,
    DROPPED,
    DUPLICATED,
    HOST_DOWN,
    LOST,
    NO_ROUTE,
    PARTITIONED,
    REORDERED,
    CaptureRecord,
)
from ..format import TCP_FLAG_NAMES, ExpertAnalyzer, RelativeSeq, describe_time, tcpdump_flags
from ..lab import HostEvent, LabEvent, PacketEvent
from ._theme import Palette, host_chain

__all__ = [
    "DROP_FATES",
    "LabelMode",
    "LadderModel",
    "LadderView",
    "SegmentRow",
    "StateRow",
    "flag_key",
    "flag_words",
    "label_mode",
    "segment_label",
]

LabelMode = Literal["long", "short", "tiny"]

HEADER_LINES = 2
STATE_WIDTH = 11  # len("ESTABLISHED")
LONG_WIDTH = 110  # from this width on, labels carry everything
SHORT_WIDTH = 72  # below this, flags are tcpdump letters
MAX_DEPTH = 3  # a sloped arrow drops at most this many lines
LOOKBACK = 512  # rows searched back for the segment whose arrival caused a state change
_MASK = 0xFFFFFFFF

# Fates after which the segment never reaches the receiver: the arrow stops midway.
DROP_FATES = frozenset({DROPPED, LOST, PARTITIONED, HOST_DOWN, NO_ROUTE})
FATE_TEXT = {
    DROPPED: "dropped",
    LOST: "lost",
    PARTITIONED: "cable pulled",
    HOST_DOWN: "host down",
    NO_ROUTE: "no route",
}
_FATE_SUFFIX = {CORRUPTED: " corrupted", DUPLICATED: " ×2", REORDERED: " reordered"}


# Style keys the model hands out, and the theme chains the view resolves them with.
_MUTED = ("$foreground-muted", "$foreground-darken-2", "#888888")
_CHAINS: dict[str, tuple[str, ...]] = {
    "syn": ("$flag-syn", "$text-success", "$success", "#4ebf71"),
    "fin": ("$flag-fin", "$text-warning", "$warning", "#fea62b"),
    "rst": ("$flag-rst", "$text-error", "$error", "#d17e92"),
    "psh": ("$flag-psh", "$text-primary", "$primary", "#57a5e2"),
    "ack": ("$flag-ack", "$foreground", "#e0e0e0"),
    "fate": ("$fate-bad", "$text-error", "$error", "#ff5f6d"),
    "time": _MUTED,
    "time-arrival": _MUTED,
    "timeline": _MUTED,
    "address": _MUTED,
    "header": _MUTED,
}
_BOLD_KEYS = frozenset({"fate", "host-0", "host-1", "state-0", "state-1"})
_CURSOR = ("$log-cursor", "$block-cursor-blurred-background", "#2c3a4f")


# ----------------------------------------------------------------------------------------------------------
# labels


def label_mode(width: int) -> LabelMode:
    """How much a label says at a given widget width (see the module docstring)."""
    if width >= LONG_WIDTH:
        return "long"
    return "short" if width >= SHORT_WIDTH else "tiny"


def flag_words(flags: int) -> str:
    """Flags as words, as a textbook writes them: "SYN", "SYN-ACK", "PSH,ACK", "FIN,ACK", "RST"."""
    if flags & SYN and flags & ACK:
        rest = [word for bit, word in TCP_FLAG_NAMES if flags & bit and bit not in (SYN, ACK)]
        return ",".join(["SYN-ACK", *rest])
    return ",".join(word for bit, word in TCP_FLAG_NAMES if flags & bit) or "no flags"


def flag_key(seg: Segment) -> str:
    """The flag that names the segment's colour: RST over SYN over FIN over data (or PSH) over ACK."""
    if seg.flags & RST:
        return "rst"
    if seg.flags & SYN:
        return "syn"
    if seg.flags & FIN:
        return "fin"
    if seg.payload or seg.flags & PSH:
        return "psh"
    return "ack"


def segment_label(
    seg: Segment,
    seq_base: int | None,
    ack_base: int | None,
    mode: LabelMode = "long",
    tags: Sequence[str] = (),
) -> str:
    """The arrow's label: flags, then relative seq (a `start:end` range when there is data), ack, extras.

    The ack of a segment carrying data or FIN matters less than its sequence range, so the short form
    keeps it only for SYN-ACKs and bare ACKs. A zero window is always shown: it explains a stall.
    """
    length = len(seg.payload)
    seq = seg.seq if seq_base is None else (seg.seq - seq_base) & _MASK
    ack = seg.ack if ack_base is None else (seg.ack - ack_base) & _MASK
    flags = seg.flags
    parts = [tcpdump_flags(flags) if mode == "tiny" else flag_words(flags)]
    if length:
        parts.append(f"{seq}:{(seq + length) & _MASK}")
    elif flags & (SYN | FIN | RST):
        parts.append(f"seq={seq}")
    if flags & ACK and (mode == "long" or flags & SYN or not (length or flags & (FIN | RST))):
        parts.append(f"ack={ack}")
    if mode == "long" and length:
        parts.append(f"len={length}")
    if seg.window == 0 and not flags & RST:
        parts.append("win=0")
    if mode == "long" and seg.sack_blocks:
        blocks = ",".join(
            f"{(left - (ack_base or 0)) & _MASK}:{(right - (ack_base or 0)) & _MASK}"
            for left, right in seg.sack_blocks
        )
        parts.append(f"sack={blocks}")
    text = " ".join(parts)
    if tags and mode != "tiny":
        text += " [" + ", ".join(tags) + "]"
    return text


# ----------------------------------------------------------------------------------------------------------
# rows


class SegmentRow:
    """One segment: its record, which timeline sent it, its relative bases, tags, slope depth and states."""

    __slots__ = (
        "ack_base",
        "arrive_state",
        "depth",
        "dst_side",
        "record",
        "send_state",
        "seq_base",
        "src_side",
        "tags",
    )

    def __init__(
        self,
        record: CaptureRecord,
        src_side: int,
        dst_side: int,
        seq_base: int | None,
        ack_base: int | None,
        tags: tuple[str, ...],
        depth: int,
    ) -> None:
        self.record = record
        self.src_side = src_side  # 0 left timeline, 1 right, -1 neither (e.g. a spoofed address)
        self.dst_side = dst_side
        self.seq_base = seq_base
        self.ack_base = ack_base
        self.tags = tags
        self.depth = depth
        self.send_state: str | None = None  # sender's new state, written where the arrow leaves
        self.arrive_state: str | None = None  # receiver's new state, written where the arrow lands

    @property
    def time(self) -> int:
        return self.record.time

    @property
    def delivered(self) -> bool:
        return self.record.fate not in DROP_FATES and self.record.arrival is not None

    @property
    def forward(self) -> bool:
        """Left to right? A segment from outside the two hosts comes in from the side facing its target."""
        if self.src_side == 0:
            return True
        if self.src_side == 1:
            return False
        return self.dst_side != 0


class StateRow:
    """State changes with no segment to sit beside: their time and the new state per timeline."""

    __slots__ = ("states", "time")

    def __init__(self, time: int) -> None:
        self.time = time
        self.states: list[str | None] = [None, None]

    @property
    def empty(self) -> bool:
        return self.states[0] is None and self.states[1] is None


Row = SegmentRow | StateRow
Span = tuple[str, str]  # (text, style key)


@dataclass(frozen=True, slots=True)
class _Geometry:
    width: int
    time_width: int
    state_width: int
    xl: int  # column of the left timeline
    xr: int  # column of the right timeline
    mode: LabelMode


class _Cells:
    """A line being drawn: one character and one style key per cell; later writes overwrite earlier ones."""

    __slots__ = ("chars", "keys", "width")

    def __init__(self, width: int) -> None:
        self.width = width
        self.chars = [" "] * width
        self.keys = [""] * width

    def put(self, x: int, text: str, key: str) -> None:
        for i, ch in enumerate(text):
            if 0 <= x + i < self.width:
                self.chars[x + i] = ch
                self.keys[x + i] = key

    def runs(self) -> list[Span]:
        spans: list[Span] = []
        start = 0
        keys, chars = self.keys, self.chars
        for i in range(1, self.width + 1):
            if i == self.width or keys[i] != keys[start]:
                spans.append(("".join(chars[start:i]), keys[start]))
                start = i
        return spans


def _fit(text: str, room: int) -> str:
    if len(text) <= room:
        return text
    return text[: room - 1] + "…" if room >= 2 else ""


class LadderModel:
    """The rows of the diagram and how each line of it reads, with no Textual in sight.

    Rows are kept in arrival order; `starts[i]` is row i's first line in the current layout (flat: one
    line per row; sloped: 1 + depth lines per segment), so a line maps to its row by bisection and a
    repaint costs the same at 10 rows as at 100 000.
    """

    def __init__(
        self,
        host_left: str = "client",
        host_right: str = "server",
        *,
        left_address: str | None = None,
        right_address: str | None = None,
        max_records: int = 100_000,
    ) -> None:
        if max_records < 1:
            raise ValueError("the ladder must keep at least one segment")
        self.hosts = (host_left, host_right)
        self._given_addresses = (left_address, right_address)
        self.max_records = max_records
        self.clear()

    def clear(self) -> None:
        """Back to no rows (the addresses learnt from segments are forgotten, given ones kept)."""
        self.rows: list[Row] = []
        self.starts = array("q")
        self.total_lines = 0
        self.sloped_lines = 0  # height the sloped layout would need
        self.sloped = False
        self.segment_count = 0
        self.generation = 0  # bumped whenever rows are removed from the front (indexes shift)
        self.removed_lines = 0  # lines (in the layout of the time) trimmed from the front so far
        self.addresses: list[str | None] = list(self._given_addresses)
        self._by_number: dict[int, int] = {}
        self._rel = RelativeSeq()
        self._expert = ExpertAnalyzer()
        self._min_transit: int | None = None
        self._max_time = 0

    def __len__(self) -> int:
        return len(self.rows)

    # ------------------------------------------------------------------------------------------------------
    # building

    def side(self, host: str) -> int:
        """0 for the left timeline's host, 1 for the right's, -1 for anyone else."""
        if host == self.hosts[0]:
            return 0
        return 1 if host == self.hosts[1] else -1

    def _height(self, row: Row) -> int:
        return 1 + row.depth if self.sloped and isinstance(row, SegmentRow) else 1

    def _append(self, row: Row) -> None:
        self.rows.append(row)
        self.starts.append(self.total_lines)
        self.total_lines += self._height(row)
        self.sloped_lines += 1 + row.depth if isinstance(row, SegmentRow) else 1

    def _pop(self) -> None:
        row = self.rows.pop()
        self.starts.pop()
        self.total_lines -= self._height(row)
        self.sloped_lines -= 1 + row.depth if isinstance(row, SegmentRow) else 1

    def add_record(
        self,
        record: CaptureRecord,
        rel: tuple[int, int | None] | None = None,
        tags: Sequence[str] | None = None,
    ) -> None:
        """Append a segment (see LadderView.add_record)."""
        seg = record.segment
        if rel is None:
            rel = self._rel.bases(seg) if seg is not None else (0, None)
        if tags is None:
            tags = self._expert.analyze(seg) if seg is not None else ()
        src_side, dst_side = self.side(record.src), self.side(record.dst)
        if seg is not None:
            for side, address in ((src_side, f"{seg.src}:{seg.sport}"), (dst_side, f"{seg.dst}:{seg.dport}")):
                if side >= 0 and self.addresses[side] is None:
                    self.addresses[side] = address
        depth = 1
        if record.fate not in DROP_FATES and record.arrival is not None:
            transit = max(0, record.arrival - record.time)
            if transit and (self._min_transit is None or transit < self._min_transit):
                self._min_transit = transit
            if self._min_transit:
                depth = max(1, min(MAX_DEPTH, round(transit / self._min_transit)))
        row = SegmentRow(record, src_side, dst_side, rel[0], rel[1], tuple(tags), depth)
        # A state change the sender made just before sending (connect() → SYN_SENT, then the SYN) was
        # parked on a state row; it belongs where this arrow leaves.
        if src_side >= 0 and self.rows:
            last = self.rows[-1]
            if isinstance(last, StateRow) and last.time == record.time and last.states[src_side]:
                row.send_state = last.states[src_side]
                last.states[src_side] = None
                if last.empty:
                    self._pop()
        self._by_number[record.number] = len(self.rows)
        self._append(row)
        self.segment_count += 1
        self._max_time = max(self._max_time, record.time, record.arrival or 0)
        if self.segment_count > self.max_records + max(1000, self.max_records // 10):
            self._trim()

    def add_state_change(self, time: int, host: str, old: State | None, new: State) -> None:
        """Note host's new state at time (see LadderView.add_state_change)."""
        side = self.side(host)
        if side < 0:
            return
        name = str(new)
        rows = self.rows
        for i in range(len(rows) - 1, max(-1, len(rows) - 1 - LOOKBACK), -1):
            row = rows[i]
            if (
                isinstance(row, SegmentRow)
                and row.dst_side == side
                and row.arrive_state is None
                and row.record.arrival == time
                and row.delivered
            ):
                row.arrive_state = name
                return
        self._max_time = max(self._max_time, time)
        last = rows[-1] if rows else None
        if isinstance(last, StateRow) and last.time == time and last.states[side] is None:
            last.states[side] = name
            return
        state_row = StateRow(time)
        state_row.states[side] = name
        self._append(state_row)

    def _trim(self) -> None:
        """Forget the oldest segments (and state rows among them) down to max_records."""
        excess = self.segment_count - self.max_records
        cut = 0
        removed = 0
        while removed < excess:
            if isinstance(self.rows[cut], SegmentRow):
                removed += 1
            cut += 1
        self.removed_lines += self.starts[cut] if cut < len(self.starts) else self.total_lines
        self.rows = self.rows[cut:]
        self.segment_count -= removed
        self.generation += 1
        self._reindex()

    def _reindex(self) -> None:
        """Rebuild line starts and the record-number index (after a trim or a layout change)."""
        self.starts = array("q")
        self._by_number = {}
        total = sloped = 0
        for i, row in enumerate(self.rows):
            self.starts.append(total)
            if isinstance(row, SegmentRow):
                self._by_number[row.record.number] = i
                sloped += 1 + row.depth
                total += 1 + row.depth if self.sloped else 1
            else:
                sloped += 1
                total += 1
        self.total_lines = total
        self.sloped_lines = sloped

    def set_sloped(self, sloped: bool) -> None:
        """Switch layout: O(rows), which is why the view only slopes what fits on one screen by default."""
        if sloped != self.sloped:
            self.sloped = sloped
            self._reindex()

    # ------------------------------------------------------------------------------------------------------
    # lookups

    def row_at_line(self, line: int) -> tuple[int, int] | None:
        """(row index, line within the row) for a diagram line, or None past the end."""
        if line < 0 or line >= self.total_lines:
            return None
        index = bisect_right(self.starts, line) - 1
        return index, line - self.starts[index]

    def row_of_record(self, number: int) -> int | None:
        """Row index of capture record `number`, None if never added or trimmed away."""
        return self._by_number.get(number)

    def row_lines(self, index: int) -> tuple[int, int]:
        """(first line, line count) of row index in the current layout."""
        return self.starts[index], self._height(self.rows[index])

    def label(self, index: int, mode: LabelMode = "long") -> str:
        """The text on row index's arrow (with a note when the segment came from or went elsewhere)."""
        row = self.rows[index]
        if isinstance(row, StateRow):
            return ""
        rec = row.record
        seg = rec.segment
        if seg is None:
            text = f"undecodable, {len(rec.packet)} bytes"
        else:
            text = segment_label(seg, row.seq_base, row.ack_base, mode, row.tags)
        if mode != "tiny":
            text += _FATE_SUFFIX.get(rec.fate, "")
        if row.src_side < 0:
            text = f"from {rec.src}: {text}"
        elif row.dst_side < 0:
            text = f"{text} → {rec.dst}"
        return text

    # ------------------------------------------------------------------------------------------------------
    # drawing

    def geometry(self, width: int) -> _Geometry:
        """Where the time margin, state columns and timelines go at this width."""
        time_width = max(8, len(describe_time(self._max_time)))
        state_width = STATE_WIDTH if width >= 64 else 0
        xl = time_width + 1 + (state_width + 1 if state_width else 0)
        xr = width - 1 - (state_width + 1 if state_width else 0)
        return _Geometry(width, time_width, state_width, xl, xr, label_mode(width))

    def header_line(self, y: int, width: int) -> list[Span]:
        """Header line y (0: host names, 1: addresses), each centred over its timeline."""
        g = self.geometry(width)
        cells = _Cells(width)
        if y == 1:
            cells.put(g.time_width - 4, "time", "header")
        for side, x in ((0, g.xl), (1, g.xr)):
            if y == 0:
                text, key = self.hosts[side], f"host-{side}"
            else:
                text, key = self.addresses[side] or "", "address"
            start = max(0, min(width - len(text), x - len(text) // 2))
            cells.put(start, text, key)
        return cells.runs()

    def line(self, line: int, width: int) -> list[Span]:
        """Diagram line `line` (0 = first row) as spans of (text, style key) exactly `width` cells wide."""
        g = self.geometry(width)
        cells = _Cells(width)
        if g.xr > g.xl:
            cells.put(g.xl, "│", "timeline")
            cells.put(g.xr, "│", "timeline")
        found = self.row_at_line(line)
        if found is not None:
            index, sub = found
            row = self.rows[index]
            if isinstance(row, StateRow):
                cells.put(0, describe_time(row.time).rjust(g.time_width), "time")
                for side, state in enumerate(row.states):
                    if state:
                        self._put_state(cells, g, side, state)
            else:
                self._draw_segment(cells, g, index, row, sub)
        return cells.runs()

    def _put_state(self, cells: _Cells, g: _Geometry, side: int, state: str) -> None:
        if not g.state_width:
            return
        text = state[: g.state_width]
        if side == 0:
            cells.put(g.xl - 1 - len(text), text, "state-0")
        else:
            cells.put(g.xr + 2, text, "state-1")

    def _draw_segment(self, cells: _Cells, g: _Geometry, index: int, row: SegmentRow, sub: int) -> None:
        rec = row.record
        depth = row.depth if self.sloped else 0
        last = sub == depth
        if sub == 0:
            cells.put(0, describe_time(rec.time).rjust(g.time_width), "time")
            if row.send_state and row.src_side >= 0:
                self._put_state(cells, g, row.src_side, row.send_state)
        if last and row.arrive_state and row.dst_side >= 0:
            self._put_state(cells, g, row.dst_side, row.arrive_state)
        if last and depth and row.delivered and rec.arrival is not None:
            cells.put(0, describe_time(rec.arrival).rjust(g.time_width), "time-arrival")
        inner = g.xr - g.xl - 1  # cells between the timelines
        if inner < 4:
            return
        label = self.label(index, g.mode)
        seg = rec.segment
        key = flag_key(seg) if seg is not None else "ack"
        dropped = rec.fate in DROP_FATES
        extent = inner
        if dropped:  # stop midway, with room after the ✗ for the reason
            extent = max(3, min(max(inner // 2, len(label) + 4 + 2 * depth), inner - 12))
        forward = row.forward

        def x_of(p: int) -> int:
            return g.xl + 1 + p if forward else g.xr - 1 - p

        # Breakpoints (distance from the sender) where a sloped arrow steps down a line.
        breaks: list[int] = []
        if depth:
            first = max((extent - 1) // (depth + 1), min(len(label) + 4, extent - 1 - 2 * depth))
            breaks = [first + round(i * (extent - 1 - first) / depth) for i in range(depth)]
        start = 0 if sub == 0 else breaks[sub - 1]
        end = breaks[sub] if sub < depth else extent - 1
        line_char = "─" if row.src_side >= 0 and row.dst_side >= 0 else "┄"
        for p in range(start, end + 1):
            cells.put(x_of(p), line_char, key)
        if sub > 0:
            cells.put(x_of(start), "╰" if forward else "╯", key)
        if not last:
            cells.put(x_of(end), "╮" if forward else "╭", key)
        elif dropped:
            cells.put(x_of(end), "✗", "fate")
            reason = FATE_TEXT.get(rec.fate, rec.fate)
            if forward:
                cells.put(x_of(end) + 2, reason, "fate")
            else:
                cells.put(x_of(end) - 1 - len(reason), reason, "fate")
        else:
            cells.put(x_of(end), "▶" if forward else "◀", key)
            if rec.fate == CORRUPTED and end >= 2:
                cells.put(x_of(end - 1), "※", "fate")
        if sub == 0:
            # The label rides on the first line, between the sender and the first corner (or the head),
            # keeping a line cell at each end: p = 1 .. end - 2.
            room = end - 2
            text = _fit(label, room - 2)
            if text:
                a = 1 + (room - len(text) - 2) // 2  # p of the space before the text
                left = x_of(a) if forward else x_of(a + len(text) + 1)
                cells.put(left, f" {text} ", f"{key}-label")

    def render_text(self, width: int, start: int = 0, count: int | None = None) -> list[str]:
        """Plain text of the header and lines [start, start + count): for tests, copying and debugging."""
        end = self.total_lines if count is None else min(self.total_lines, start + count)
        out = ["".join(t for t, _ in self.header_line(y, width)).rstrip() for y in range(HEADER_LINES)]
        out += ["".join(t for t, _ in self.line(n, width)).rstrip() for n in range(start, end)]
        return out


# ----------------------------------------------------------------------------------------------------------
# the widget


class LadderView(ScrollView, can_focus=True):
    """The ladder diagram widget (see the module docstring for the API, keys and theme variables)."""

    DEFAULT_CSS = """
    LadderView {
        overflow-x: hidden;
        overflow-y: auto;
        height: 1fr;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Previous segment", show=False),
        Binding("down", "cursor_down", "Next segment", show=False),
        Binding("enter", "select_cursor", "Select segment", show=False),
    ]

    class Selected(Message):
        """The user picked a segment (a click, or enter on the highlighted one)."""

        def __init__(self, record_number: int, ladder: LadderView | None = None) -> None:
            self.record_number = record_number
            self.ladder = ladder
            super().__init__()

        @property
        def control(self) -> LadderView | None:
            return self.ladder

    def __init__(
        self,
        host_left: str = "client",
        host_right: str = "server",
        *,
        left_address: str | None = None,
        right_address: str | None = None,
        max_records: int = 100_000,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.model = LadderModel(
            host_left,
            host_right,
            left_address=left_address,
            right_address=right_address,
            max_records=max_records,
        )
        self._palette = Palette(self)
        self._follow = True
        self._sloped: bool | None = None
        self._selected: int | None = None  # record number of the highlighted segment
        self._removed_lines = 0
        self._sync_pending = False
        self._syncing = False

    # ------------------------------------------------------------------------------------------------------
    # public API

    def add_record(
        self,
        record: CaptureRecord,
        rel: tuple[int, int | None] | None = None,
        tags: Sequence[str] | None = None,
    ) -> None:
        """Append a segment. The screen catches up once per refresh, however many arrive in between."""
        self.model.add_record(record, rel, tags)
        self._changed()

    def add_state_change(self, time: int, host: str, old: State | None, new: State) -> None:
        """Write host's new state beside its timeline, on the row of the segment that caused it."""
        self.model.add_state_change(time, host, old, new)
        self._changed()

    def add_lab_event(self, event: LabEvent) -> None:
        """Take a lab event straight from Lab.subscribe: segments and state changes; the rest is ignored.

        A state change is taken only from a connection with the other timeline's host (once its address is
        known), so a SYN flood's half-open connections do not scribble over the server's timeline.
        """
        if isinstance(event, PacketEvent):
            self.add_record(event.record)
        elif isinstance(event, HostEvent) and isinstance(event.event, StateChanged):
            change = event.event
            side = self.model.side(event.host)
            if side < 0:
                return
            peer = self.model.addresses[1 - side]
            if peer is not None and peer.rsplit(":", 1)[0] != change.conn[2]:
                return
            self.add_state_change(change.now, event.host, change.old, change.new)

    def clear(self) -> None:
        """Forget every row (a new lab); the host names and any addresses given to the constructor stay."""
        self.model.clear()
        self._selected = None
        self._removed_lines = 0
        self._follow = True
        self._changed()

    def select(self, record_number: int) -> bool:
        """Highlight segment record_number and scroll it into view; False if the ladder does not hold it.

        Posts no message: this is how the app mirrors a selection made elsewhere (the packet log).
        """
        if self.model.row_of_record(record_number) is None:
            return False
        self._selected = record_number
        if not self.is_mounted:
            return True
        self._sync()
        self._scroll_to_selected(center=True)
        self.refresh()
        return True

    @property
    def selected(self) -> int | None:
        """Record number of the highlighted segment, if any."""
        return self._selected

    @property
    def follow(self) -> bool:
        """Whether new rows scroll the view to the end (False once the user scrolls away from it)."""
        return self._follow

    @follow.setter
    def follow(self, value: bool) -> None:
        self._follow = value
        if value:
            self._sync()

    @property
    def sloped(self) -> bool | None:
        """None: arrows slope while the whole diagram fits in the view; True/False: always/never."""
        return self._sloped

    @sloped.setter
    def sloped(self, value: bool | None) -> None:
        self._sloped = value
        self._sync()

    # ------------------------------------------------------------------------------------------------------
    # keeping the view in step with the model

    def _changed(self) -> None:
        """Schedule one _sync for a whole batch of additions (100 000 add_record calls: one re-layout)."""
        if self._sync_pending:
            return
        self._sync_pending = True
        if self.is_mounted:
            self.call_after_refresh(self._sync)

    def _viewport_lines(self) -> int:
        return max(0, self.scrollable_content_region.height - HEADER_LINES)

    def _sync(self) -> None:
        """Choose the layout, size the scroll area, keep the view on the tail (or on the same rows)."""
        self._sync_pending = False
        if not self.is_mounted:
            return
        model = self.model
        top = round(self.scroll_y)
        removed = model.removed_lines - self._removed_lines
        self._removed_lines = model.removed_lines
        if self._selected is not None and model.row_of_record(self._selected) is None:
            self._selected = None  # trimmed away
        if removed > 0:
            top = max(0, top - removed)
        found = model.row_at_line(top)
        top_row = found[0] if found is not None else None
        height = self._viewport_lines()
        sloped = self._sloped if self._sloped is not None else 0 < model.sloped_lines <= height
        relayout = sloped != model.sloped
        model.set_sloped(sloped)
        self._syncing = True
        try:
            self.virtual_size = Size(self.scrollable_content_region.width, model.total_lines + HEADER_LINES)
            # Scrolling is refused while the scrollbar is hidden, and Textual updates that only at the next
            # layout; update it now so that following the tail works in the same frame.
            self._refresh_scrollbars()
            if self._follow:
                self.scroll_to(y=self.max_scroll_y, animate=False, force=True)
            elif relayout and top_row is not None:
                self.scroll_to(y=model.starts[top_row], animate=False, force=True)
            elif removed > 0:
                self.scroll_to(y=top, animate=False, force=True)
        finally:
            self._syncing = False
        self.refresh()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if not self._syncing:
            self._follow = round(new_value) >= self.max_scroll_y

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())
        # Rows added before mounting are laid out once the widget has a size.
        self._sync_pending = True
        self.call_after_refresh(self._sync)

    def on_resize(self, event: events.Resize) -> None:
        self._sync()

    def _restyle(self) -> None:
        self._palette.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._palette.clear()

    # ------------------------------------------------------------------------------------------------------
    # highlight and selection

    def _scroll_to_selected(self, *, center: bool = False) -> None:
        index = self.model.row_of_record(self._selected) if self._selected is not None else None
        if index is None:
            return
        first, count = self.model.row_lines(index)
        height = self._viewport_lines()
        top = round(self.scroll_y)
        if center:
            target = first - max(0, (height - count) // 2)
        elif first < top:
            target = first
        elif first + count > top + height:
            target = first + count - height
        else:
            return
        self.scroll_to(y=max(0, target), animate=False, force=True)

    def _segment_from(self, index: int, step: int) -> int | None:
        """The first segment row at or after index going in direction step, or None."""
        rows = self.model.rows
        while 0 <= index < len(rows):
            if isinstance(rows[index], SegmentRow):
                return index
            index += step
        return None

    def _move_cursor(self, step: int) -> None:
        model = self.model
        if not model.rows:
            return
        current = model.row_of_record(self._selected) if self._selected is not None else None
        if current is None:
            # Start from what is on screen: the bottom row going up, the top row going down.
            top = round(self.scroll_y)
            line = top + self._viewport_lines() - 1 if step < 0 else top
            found = model.row_at_line(max(0, min(line, model.total_lines - 1)))
            start = found[0] if found is not None else len(model.rows) - 1
            index = self._segment_from(start, step)
            if index is None:
                index = self._segment_from(start, -step)
        else:
            index = self._segment_from(current + step, step)
        if index is None:
            return
        row = model.rows[index]
        assert isinstance(row, SegmentRow)
        self._selected = row.record.number
        self._scroll_to_selected()
        self.refresh()

    def action_cursor_up(self) -> None:
        self._move_cursor(-1)

    def action_cursor_down(self) -> None:
        self._move_cursor(1)

    def action_select_cursor(self) -> None:
        if self._selected is not None:
            self.post_message(self.Selected(self._selected, self))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < HEADER_LINES:
            return
        found = self.model.row_at_line(round(self.scroll_y) + offset.y - HEADER_LINES)
        if found is None:
            return
        row = self.model.rows[found[0]]
        if not isinstance(row, SegmentRow):
            return
        self._selected = row.record.number
        self.refresh()
        self.post_message(self.Selected(row.record.number, self))

    # ------------------------------------------------------------------------------------------------------
    # painting

    def _style(self, key: str) -> Style:
        if not key:
            return Style()
        if key.startswith(("host-", "state-")):
            side = int(key[-1])
            return self._palette.style(key, host_chain(self.model.hosts[side], side), bold=True)
        if key.endswith("-label"):
            return self._palette.style(key, _CHAINS[key[: -len("-label")]], bold=True)
        return self._palette.style(key, _CHAINS.get(key, _MUTED), bold=key in _BOLD_KEYS)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        cursor: Style | None = None
        if y < HEADER_LINES:
            spans = self.model.header_line(y, width)
        else:
            line = round(self.scroll_y) + y - HEADER_LINES
            spans = self.model.line(line, width)
            index = self.model.row_of_record(self._selected) if self._selected is not None else None
            if index is not None:
                first, count = self.model.row_lines(index)
                if first <= line < first + count:
                    cursor = self._palette.bg("cursor", _CURSOR)
        segments = []
        for text, key in spans:
            style = base + self._style(key)
            if cursor is not None:
                style += cursor
            segments.append(RichSegment(text, style))
        return Strip(segments, width)
