"""The packet log's data: one compact row per segment or event, filtered views, no Textual import.

Lab events arrive in order; each segment is decoded once here (relative numbers and Wireshark's expert tags
need every segment in capture order, so they cannot be computed lazily for the visible lines only) and
kept as a small tuple holding its text. Everything else (styling, cropping to the window) happens only for
the lines on screen, in `packet_log.py`. That split is what keeps 100 000 rows cheap: ~200 bytes a row and
no per-row widget. Rows hold the CaptureRecord itself (shared with the lab's capture ring) so the detail
pane and the absolute-number view can go back to the packet's bytes.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any, Final

from stack import SegmentDropped, SocketEvent, StateChanged, TimerFired
from stack.wire import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, Malformed, Segment, parse_packet

from ..capture import CaptureRecord
from ..format import ExpertAnalyzer, RelativeSeq, tcpdump_flags, tcpdump_line
from ..lab import SPOOF_PREFIX, HostEvent, LabEvent, Note, PacketEvent

PACKET: Final = 0
EVENT: Final = 1

# A packet row: (PACKET, record, flags, text after "Flags [..]" with relative numbers, expert tags).
# An event row: (EVENT, time, host or "", text, style key): state changes, notes, drops, socket events.
Row = tuple[Any, ...]

FLAG_LETTERS: dict[str, int] = {
    "F": FIN,
    "S": SYN,
    "R": RST,
    "P": PSH,
    ".": ACK,
    "U": URG,
    "E": ECE,
    "W": CWR,
}

# Socket events that are only noise next to the segments and state changes that already show them.
_QUIET_SOCKET_EVENTS = frozenset({"readable", "accept-ready", "listening", "accepted", "eof"})
_QUIET_DROPS = frozenset({"time-wait-bare-ack", "answered-from-time-wait"})


@dataclass(frozen=True, slots=True)
class LogFilter:
    """What the log shows. flags: tcpdump letters, a row matches if it has any of them ("" = all)."""

    flags: str = ""
    direction: str = "any"  # "any", or the sending host's name
    text: str = ""
    events: bool = True  # state changes, notes and socket events between the segments

    @property
    def active(self) -> bool:
        return bool(self.flags or self.direction != "any" or self.text or not self.events)

    def describe(self) -> str:
        parts = []
        if self.flags:
            parts.append(f"flags {self.flags}")
        if self.direction != "any":
            parts.append(f"from {self.direction}")
        if self.text:
            parts.append(f"text {self.text!r}")
        if not self.events:
            parts.append("segments only")
        return ", ".join(parts) or "off"


def parse_flag_letters(text: str) -> int:
    """tcpdump letters ("S", "S.", "FR"...) → a flag mask; ValueError names a letter that is not a flag."""
    mask = 0
    for ch in text.replace(" ", "").replace(",", ""):
        bit = FLAG_LETTERS.get(ch.upper() if ch != "." else ch)
        if bit is None:
            raise ValueError(f"{ch!r} is not a tcpdump flag letter; use S F R P . U E W")
        mask |= bit
    return mask


def peer_label(name: str) -> str:
    """Addresses outside the lab (the SYN flood's spoofed sources) are shown as "spoofed"."""
    return "spoofed" if name.startswith(SPOOF_PREFIX) else name


class LogModel:
    """Rows for the packet log, in arrival order, with an optional filtered view and a row cap."""

    def __init__(self, *, max_rows: int = 250_000) -> None:
        self.max_rows = max_rows
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new lab: the demo player went back a step)."""
        self.rows: list[Row] = []
        self.first = 0  # absolute index of rows[0]; rows trimmed from the front move it on
        self.view: list[int] | None = None  # absolute indices of matching rows when a filter is active
        self.filter = LogFilter()
        self._flag_mask = 0
        self.rel = RelativeSeq()
        self.expert = ExpertAnalyzer()
        self._pkt_first = -1  # capture number of the first packet row we hold
        self._pkt_rows = array("q")  # absolute row index of packet number _pkt_first + i
        self.widest = 0  # longest row text seen, for the horizontal scroll range
        self.generation = 0  # bumped when rows change other than by appending (trim, filter, reset)
        # (seq base, ack base) of the last packet row, so the ladder can share our relative numbering
        self.last_bases: tuple[int, int | None] = (0, None)

    # --------------------------------------------------------------------------------------------------
    # ingest

    def add(self, event: LabEvent) -> bool:
        """Turn a lab event into a row (or not: timer arms and quiet socket events are skipped)."""
        row = self._row(event)
        if row is None:
            return False
        index = self.first + len(self.rows)
        self.rows.append(row)
        if row[0] == PACKET:
            number = row[1].number
            if self._pkt_first < 0:
                self._pkt_first = number
            gap = number - self._pkt_first - len(self._pkt_rows)
            if gap >= 0:
                self._pkt_rows.extend([index] * (gap + 1))
        width = len(row[3]) + 60
        if width > self.widest:
            self.widest = width
        if self.view is not None and self.matches(row):
            self.view.append(index)
        if len(self.rows) > self.max_rows:
            self._trim(len(self.rows) - self.max_rows * 9 // 10)
        return True

    def _row(self, event: LabEvent) -> Row | None:
        if isinstance(event, PacketEvent):
            return self._packet_row(event.record)
        if isinstance(event, HostEvent):
            e = event.event
            if isinstance(e, StateChanged):
                return (
                    EVENT,
                    event.time,
                    event.host,
                    f"{e.old} → {e.new}  ({e.cause})",
                    f"state:{e.new.name}",
                )
            if isinstance(e, SegmentDropped):
                if e.reason in _QUIET_DROPS:
                    return None
                detail = f" ({e.detail})" if e.detail else ""
                return (EVENT, event.time, event.host, f"drops a segment: {e.reason}{detail}", "error")
            if isinstance(e, SocketEvent):
                if e.what in _QUIET_SOCKET_EVENTS:
                    return None
                style = "error" if e.what == "error" else "event"
                text = f"{e.what}: {e.detail}" if e.detail else e.what
                return (EVENT, event.time, event.host, text, style)
            if isinstance(e, TimerFired):
                return (EVENT, event.time, event.host, f"timer {e.timer} fired", "timer")
            return None
        if isinstance(event, Note):
            style = {"error": "error", "narration": "narration", "info": "info"}.get(event.kind, "note")
            return (EVENT, event.time, event.host or "", event.text, style)
        return None

    def _packet_row(self, record: CaptureRecord) -> Row:
        parsed = parse_packet(record.packet, verify_checksum=False)
        if isinstance(parsed, Malformed):
            self.last_bases = (0, None)
            return (
                PACKET,
                record,
                -1,
                f"undecodable packet ({parsed.reason}), {len(record.packet)} bytes",
                (),
            )
        seq_base, ack_base = self.last_bases = self.rel.bases(parsed)
        tags = self.expert.analyze(parsed)
        text = tcpdump_line(parsed, rel_seq_base=seq_base, rel_ack_base=ack_base, show_addresses=False)
        return (PACKET, record, parsed.flags, _after_flags(text), tags)

    def drop_packets_before(self, number: int) -> None:
        """Forget every row older than capture packet `number` (the capture ring has let them go: rows must
        not keep their packets alive, nor show segments the detail pane can no longer open)."""
        i = number - self._pkt_first
        if self._pkt_first < 0 or i <= 0:
            return
        if i >= len(self._pkt_rows):
            self._trim(len(self.rows))
            return
        self._trim(self._pkt_rows[i] - self.first)

    def oldest_packet(self) -> int | None:
        return self._pkt_first if self._pkt_first >= 0 and len(self._pkt_rows) else None

    def _trim(self, count: int) -> None:
        """Drop the oldest rows in one go (amortised: a tenth of the cap at a time)."""
        del self.rows[:count]
        self.first += count
        if self.view is not None:
            del self.view[: bisect_left(self.view, self.first)]
        cut = bisect_left(self._pkt_rows, self.first)
        if cut:
            del self._pkt_rows[:cut]
            self._pkt_first += cut
        self.generation += 1

    # --------------------------------------------------------------------------------------------------
    # filtered view

    def set_filter(self, flt: LogFilter) -> None:
        """Apply a filter (ValueError for bad flag letters, before anything changes)."""
        mask = parse_flag_letters(flt.flags)
        self.filter = flt
        self._flag_mask = mask
        if not flt.active:
            self.view = None
        else:
            first = self.first
            self.view = [first + i for i, row in enumerate(self.rows) if self.matches(row)]
        self.generation += 1

    def matches(self, row: Row) -> bool:
        flt = self.filter
        if row[0] == PACKET:
            record: CaptureRecord = row[1]
            if self._flag_mask and (row[2] < 0 or not row[2] & self._flag_mask):
                return False
            if flt.direction != "any" and record.src != flt.direction:
                return False
            if flt.text:
                return flt.text.lower() in self.search_text(row).lower()
            return True
        if not flt.events or self._flag_mask or flt.direction != "any":
            return False
        return not flt.text or flt.text.lower() in f"{row[2]} {row[3]}".lower()

    @staticmethod
    def search_text(row: Row) -> str:
        record: CaptureRecord = row[1]
        return " ".join(
            (record.src, peer_label(record.dst), flags_text(row[2]), row[3], *row[4], record.fate)
        )

    # --------------------------------------------------------------------------------------------------
    # access

    def __len__(self) -> int:
        return len(self.view) if self.view is not None else len(self.rows)

    def absolute(self, position: int) -> int:
        """Absolute row index of a view position."""
        return self.view[position] if self.view is not None else self.first + position

    def get(self, position: int) -> Row:
        return self.rows[self.absolute(position) - self.first]

    def position_of_absolute(self, index: int) -> int | None:
        if self.view is None:
            pos = index - self.first
            return pos if 0 <= pos < len(self.rows) else None
        pos = bisect_left(self.view, index)
        return pos if pos < len(self.view) and self.view[pos] == index else None

    def position_of_packet(self, number: int) -> int | None:
        """View position of capture packet `number`, or None (trimmed away or hidden by the filter)."""
        i = number - self._pkt_first
        if self._pkt_first < 0 or not 0 <= i < len(self._pkt_rows):
            return None
        return self.position_of_absolute(self._pkt_rows[i])

    def packet_count(self) -> int:
        return len(self._pkt_rows)


def flags_text(flags: int) -> str:
    """tcpdump's letters for a flag byte ("S.", "F.", "R"), "?" for an undecodable packet."""
    return "?" if flags < 0 else tcpdump_flags(flags)


def _after_flags(text: str) -> str:
    """tcpdump_line without its leading "Flags [..], " (the log paints the flag letters itself), with
    `length N` moved in front of the options.

    The fields are tcpdump's, but a terminal line is short and options (`nop,nop,TS val .. ecr ..`) are
    the part a reader needs least, so they go last where the window may cut them off, not the length.
    """
    end = text.find("], ")
    if text.startswith("Flags [") and end >= 0:
        text = text[end + 3 :]
    start = text.find(", options [")
    if start < 0:
        return text
    stop = text.find("], length ", start)
    if stop < 0:
        return text
    options = text[start + 2 : stop + 1]
    return f"{text[:start]}{text[stop + 1 :]}, {options}"


def absolute_text(record: CaptureRecord) -> str:
    """The segment's text with absolute sequence numbers (computed on demand for the visible lines)."""
    parsed = parse_packet(record.packet, verify_checksum=False)
    if isinstance(parsed, Malformed):
        return f"undecodable packet ({parsed.reason}), {len(record.packet)} bytes"
    return _after_flags(tcpdump_line(parsed, show_addresses=False))


def decode(record: CaptureRecord) -> Segment | None:
    parsed = parse_packet(record.packet, verify_checksum=False)
    return None if isinstance(parsed, Malformed) else parsed
