"""The ladder diagram: labels, the row model built from a real lab run, drops, state labels, selection,
scrolling and tail-follow at 100 000 segments, and two snapshots.

The exact-text tests pin what a reader sees (the arrows, where a dropped segment stops, which row carries
which state), so a change to the picture is a deliberate one. The lab is seeded and on a virtual clock.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from textual.app import App, ComposeResult

from stack import State, StateChanged
from stack.wire import ACK, FIN, PSH, RST, SYN, Segment, build_packet, parse_packet, sack_option
from tcpplay.capture import CORRUPTED, DELIVERED, DROPPED, DUPLICATED, CaptureRecord
from tcpplay.lab import HostEvent, LabEvent, PacketEvent
from tcpplay.ui.ladder import LadderModel, LadderView, SegmentRow, StateRow, flag_words, segment_label

from .snapshot_apps.ladder_app import LadderApp
from .snapshot_apps.story import drop_story

MS = 1_000


def _segment(
    flags: int, seq: int = 1000, ack: int = 5000, payload: bytes = b"", window: int = 502
) -> Segment:
    packet = build_packet("198.18.0.1", "198.18.0.2", 40000, 8080, seq, ack, flags, window, b"", payload)
    seg = parse_packet(packet)
    assert isinstance(seg, Segment)
    return seg


def story_model(width_sloped: bool = False) -> LadderModel:
    """The drop story fed into a bare model, with the server's listen() marked as a state change."""
    model = LadderModel("client", "server")

    def observe(event: LabEvent) -> None:
        if isinstance(event, PacketEvent):
            model.add_record(event.record)
        elif isinstance(event, HostEvent) and isinstance(event.event, StateChanged):
            change = event.event
            model.add_state_change(change.now, event.host, change.old, change.new)

    drop_story(observe, lambda now: model.add_state_change(now, "server", State.CLOSED, State.LISTEN))
    model.set_sloped(width_sloped)
    return model


# ----------------------------------------------------------------------------------------------------------
# labels


def test_flag_words() -> None:
    assert flag_words(SYN) == "SYN"
    assert flag_words(SYN | ACK) == "SYN-ACK"
    assert flag_words(ACK) == "ACK"
    assert flag_words(PSH | ACK) == "PSH,ACK"
    assert flag_words(FIN | ACK) == "FIN,ACK"
    assert flag_words(RST) == "RST"
    assert flag_words(0) == "no flags"


def test_segment_labels_in_each_width() -> None:
    syn = _segment(SYN, seq=1000, ack=0)
    synack = _segment(SYN | ACK, seq=7000, ack=1001)
    ack = _segment(ACK, seq=1001, ack=7001)
    data = _segment(PSH | ACK, seq=1001, ack=7001, payload=b"x" * 100)
    fin = _segment(FIN | ACK, seq=1101, ack=7001)
    assert segment_label(syn, 1000, None, "short") == "SYN seq=0"
    assert segment_label(synack, 7000, 1000, "short") == "SYN-ACK seq=0 ack=1"
    assert segment_label(ack, 1000, 7000, "short") == "ACK ack=1"
    assert segment_label(data, 1000, 7000, "short") == "PSH,ACK 1:101"
    assert segment_label(data, 1000, 7000, "long") == "PSH,ACK 1:101 ack=1 len=100"
    assert segment_label(data, 1000, 7000, "tiny") == "P. 1:101"
    assert segment_label(fin, 1000, 7000, "short") == "FIN,ACK seq=101"
    assert segment_label(fin, 1000, 7000, "long") == "FIN,ACK seq=101 ack=1"
    assert segment_label(data, 1000, 7000, "long", ("retransmission",)) == (
        "PSH,ACK 1:101 ack=1 len=100 [retransmission]"
    )
    assert segment_label(data, 1000, 7000, "tiny", ("retransmission",)) == "P. 1:101"


def test_zero_window_and_sack_blocks() -> None:
    zero = _segment(ACK, seq=1001, ack=7001, window=0)
    assert segment_label(zero, 1000, 7000, "short") == "ACK ack=1 win=0"
    packet = build_packet(
        "198.18.0.1", "198.18.0.2", 40000, 8080, 1001, 7001, ACK, 502, sack_option([(7101, 7201)]), b""
    )
    sacked = parse_packet(packet)
    assert isinstance(sacked, Segment)
    assert segment_label(sacked, 1000, 7000, "long") == "ACK ack=1 sack=101:201"
    assert segment_label(sacked, 1000, 7000, "short") == "ACK ack=1"


# ----------------------------------------------------------------------------------------------------------
# the row model, from a real lab run

FLAT_100 = """\
                  client                                                            server
    time     198.18.0.1:52658                                                   198.18.0.2:8080
0.000000             │                                                                 │ LISTEN
0.000000    SYN_SENT │────────────────────────── SYN seq=0 ───────────────────────────▶│ SYN_RCVD
0.010000 ESTABLISHED │◀────────────────────── SYN-ACK seq=0 ack=1 ─────────────────────│
0.020000             │────────────────────────── ACK ack=1 ───────────────────────────▶│ ESTABLISHED
1.000000             │──────────────────────── PSH,ACK 1:101 ─────────────────────────▶│
1.010000             │◀────────────────────────── ACK ack=101 ─────────────────────────│
2.000000             │─────── PSH,ACK 101:151 ───────✗ dropped                         │
2.220000             │─────────────── PSH,ACK 101:151 [retransmission] ───────────────▶│
2.230000             │◀────────────────────────── ACK ack=151 ─────────────────────────│
3.000000  FIN_WAIT_1 │─────────────────────── FIN,ACK seq=151 ────────────────────────▶│ CLOSE_WAIT
3.050000  FIN_WAIT_2 │◀────────────────────────── ACK ack=152 ─────────────────────────│
4.000000   TIME_WAIT │◀───────────────────────── FIN,ACK seq=1 ────────────────────────│ LAST_ACK
4.010000             │────────────────────────── ACK ack=2 ───────────────────────────▶│ CLOSED"""

SLOPED_120 = """\
                  client                                                                                server
    time     198.18.0.1:52658                                                                       198.18.0.2:8080
0.000000             │                                                                                     │ LISTEN
0.000000    SYN_SENT │─────────────── SYN seq=0 ────────────────╮                                          │
0.010000             │                                          ╰─────────────────────────────────────────▶│ SYN_RCVD
0.010000             │                                          ╭─────────── SYN-ACK seq=0 ack=1 ──────────│
0.020000 ESTABLISHED │◀─────────────────────────────────────────╯                                          │
0.020000             │─────────────── ACK ack=1 ────────────────╮                                          │
0.030000             │                                          ╰─────────────────────────────────────────▶│ ESTABLISHED
1.000000             │────── PSH,ACK 1:101 ack=1 len=100 ───────╮                                          │
1.010000             │                                          ╰─────────────────────────────────────────▶│
1.010000             │                                          ╭─────────────── ACK ack=101 ──────────────│
1.020000             │◀─────────────────────────────────────────╯                                          │
2.000000             │─ PSH,ACK 101:151 ack=1 len=50 ─╮                                                    │
                     │                                ╰────────✗ dropped                                   │
2.220000             │─ PSH,ACK 101:151 ack=1 len=50 [retransmission] ─╮                                   │
2.230000             │                                                 ╰──────────────────────────────────▶│
2.230000             │                                          ╭─────────────── ACK ack=151 ──────────────│
2.240000             │◀─────────────────────────────────────────╯                                          │
3.000000  FIN_WAIT_1 │───────── FIN,ACK seq=151 ack=1 ──────────╮                                          │
3.010000             │                                          ╰─────────────────────────────────────────▶│ CLOSE_WAIT
3.050000             │                                          ╭─────────────── ACK ack=152 ──────────────│
3.060000  FIN_WAIT_2 │◀─────────────────────────────────────────╯                                          │
4.000000             │                                          ╭────────── FIN,ACK seq=1 ack=152 ─────────│ LAST_ACK
4.010000   TIME_WAIT │◀─────────────────────────────────────────╯                                          │
4.010000             │─────────────── ACK ack=2 ────────────────╮                                          │
4.020000             │                                          ╰─────────────────────────────────────────▶│ CLOSED"""  # noqa: E501


def test_story_rows_and_labels() -> None:
    model = story_model()
    labels = [model.label(i, "long") for i in range(len(model.rows))]
    assert labels == [
        "",  # the state row for listen()
        "SYN seq=0",
        "SYN-ACK seq=0 ack=1",
        "ACK ack=1",
        "PSH,ACK 1:101 ack=1 len=100",
        "ACK ack=101",
        "PSH,ACK 101:151 ack=1 len=50",
        "PSH,ACK 101:151 ack=1 len=50 [retransmission]",
        "ACK ack=151",
        "FIN,ACK seq=151 ack=1",
        "ACK ack=152",
        "FIN,ACK seq=1 ack=152",
        "ACK ack=2",
    ]
    assert [model.label(i, "short") for i in (1, 2, 3, 4)] == [
        "SYN seq=0",
        "SYN-ACK seq=0 ack=1",
        "ACK ack=1",
        "PSH,ACK 1:101",
    ]
    assert model.segment_count == 12
    assert model.addresses == ["198.18.0.1:52658", "198.18.0.2:8080"]


def test_story_flat_at_100_columns() -> None:
    assert "\n".join(story_model().render_text(100)) == FLAT_100


def test_story_sloped_at_120_columns() -> None:
    assert "\n".join(story_model(width_sloped=True).render_text(120)) == SLOPED_120


def test_state_labels_sit_on_the_rows_that_caused_them() -> None:
    model = story_model()
    states = {}
    for row in model.rows:
        if isinstance(row, SegmentRow):
            states[row.record.number] = (row.send_state, row.arrive_state)
    assert states[1] == ("SYN_SENT", "SYN_RCVD")  # connect() then the SYN; the SYN lands: SYN_RCVD
    assert states[2] == (None, "ESTABLISHED")  # the SYN-ACK lands at the client
    assert states[3] == (None, "ESTABLISHED")  # the ACK lands at the server
    assert states[9] == ("FIN_WAIT_1", "CLOSE_WAIT")
    assert states[10] == (None, "FIN_WAIT_2")
    assert states[11] == ("LAST_ACK", "TIME_WAIT")
    assert states[12] == (None, "CLOSED")
    first = model.rows[0]
    assert isinstance(first, StateRow) and first.states == [None, "LISTEN"]


def test_a_dropped_segment_stops_midway_with_a_cross() -> None:
    model = story_model()
    geometry = model.geometry(100)
    line = "".join(text for text, _ in model.line(model.row_lines(model.row_of_record(6) or 0)[0], 100))
    cross = line.index("✗")
    assert geometry.xl < cross < geometry.xr
    assert abs(cross - (geometry.xl + geometry.xr) // 2) <= 6  # about halfway across
    assert "▶" not in line and "◀" not in line  # no arrowhead: it never arrived
    assert line[cross:].rstrip().endswith("│")  # the right timeline is untouched
    assert line[cross + 1 : geometry.xr].strip() == "dropped"
    assert line[geometry.xl + 1 : cross] == "─────── PSH,ACK 101:151 ───────"


def test_sloped_drop_takes_two_lines_and_stops_midway() -> None:
    model = story_model(width_sloped=True)
    first, count = model.row_lines(model.row_of_record(6) or 0)
    assert count == 2
    lower = "".join(text for text, _ in model.line(first + 1, 120))
    geometry = model.geometry(120)
    assert lower.index("✗") < (geometry.xl + geometry.xr) // 2 + 6
    assert lower[: geometry.time_width].strip() == ""  # it never arrived: no arrival time


def test_state_change_merging_rules() -> None:
    model = LadderModel("a", "b")
    model.add_state_change(0, "a", State.CLOSED, State.SYN_SENT)  # parked until a's segment at t=0
    model.add_state_change(0, "nobody", State.CLOSED, State.LISTEN)  # not a timeline: ignored
    assert len(model.rows) == 1
    seg = _segment(SYN, seq=1, ack=0)
    model.add_record(CaptureRecord(1, 0, "a", "b", b"", DELIVERED, 10 * MS, _segment=seg))
    assert len(model.rows) == 1  # the parked state moved onto the SYN's row
    row = model.rows[0]
    assert isinstance(row, SegmentRow) and row.send_state == "SYN_SENT"
    model.add_state_change(10 * MS, "b", State.LISTEN, State.SYN_RCVD)  # at the SYN's arrival
    assert row.arrive_state == "SYN_RCVD"
    model.add_state_change(60_000 * MS, "a", State.TIME_WAIT, State.CLOSED)  # a timer: its own row
    last = model.rows[-1]
    assert isinstance(last, StateRow) and last.states == ["CLOSED", None]
    # a state change at an arrival time of a dropped segment does not attach to it
    model.add_record(CaptureRecord(2, 61_000 * MS, "a", "b", b"", DROPPED, None, _segment=seg))
    model.add_state_change(61_000 * MS, "b", State.LISTEN, State.SYN_RCVD)
    assert isinstance(model.rows[-1], StateRow)


def test_corrupted_arrives_with_a_mark_and_odd_fates_are_named() -> None:
    model = LadderModel("client", "server")
    seg = _segment(PSH | ACK, payload=b"x" * 10)
    model.add_record(
        CaptureRecord(1, 0, "client", "server", b"", CORRUPTED, 10 * MS, _segment=seg), (1000, 5000), ()
    )
    model.add_record(
        CaptureRecord(2, MS, "server", "client", b"", DUPLICATED, 11 * MS, _segment=seg), (1000, 5000), ()
    )
    corrupted = "".join(text for text, _ in model.line(0, 100))
    assert "※▶│" in corrupted and "PSH,ACK 0:10 corrupted" in corrupted
    assert model.label(1, "short") == "PSH,ACK 0:10 ×2"
    assert ("※", "fate") in [(t, k) for t, k in model.line(0, 100)]


def test_segments_from_elsewhere_are_dotted_and_named() -> None:
    model = LadderModel("client", "server")
    seg = _segment(SYN, seq=5, ack=0)
    model.add_record(CaptureRecord(1, 0, "spoofed", "server", b"", DELIVERED, 10 * MS, _segment=seg))
    line = "".join(text for text, _ in model.line(0, 100))
    assert "from spoofed: SYN seq=0" in line
    assert "┄" in line and line.rstrip().endswith("▶│")


def test_trimming_keeps_the_newest_records() -> None:
    model = LadderModel(max_records=100)
    seg = _segment(ACK)
    for n in range(1, 1302):
        record = CaptureRecord(n, n * MS, "client", "server", b"", DELIVERED, n * MS + 10, _segment=seg)
        model.add_record(record)
    assert model.segment_count <= 100 + 1000
    assert model.row_of_record(1) is None
    assert model.row_of_record(1301) == len(model.rows) - 1
    assert model.removed_lines > 0


# ----------------------------------------------------------------------------------------------------------
# the widget: selection, scrolling, following the tail


class Harness(App[None]):
    """A ladder alone on a screen, keeping every Selected message it posts."""

    def __init__(self, ladder: LadderView) -> None:
        super().__init__()
        self.ladder = ladder
        self.picked: list[int] = []

    def compose(self) -> ComposeResult:
        yield self.ladder

    def on_ladder_view_selected(self, message: LadderView.Selected) -> None:
        assert message.control is self.ladder
        self.picked.append(message.record_number)


def _feed_story(ladder: LadderView) -> None:
    drop_story(
        ladder.add_lab_event, lambda now: ladder.add_state_change(now, "server", State.CLOSED, State.LISTEN)
    )


async def test_click_selects_a_segment() -> None:
    ladder = LadderView()
    app = Harness(ladder)
    async with app.run_test(size=(100, 24)) as pilot:
        _feed_story(ladder)
        await pilot.pause()
        assert not ladder.model.sloped  # 13 rows + header do not fit 24 lines sloped
        row = ladder.model.row_of_record(4) or 0
        await pilot.click(LadderView, offset=(50, 2 + ladder.model.row_lines(row)[0]))
        await pilot.pause()
        assert app.picked == [4]
        assert ladder.selected == 4
        await pilot.click(LadderView, offset=(50, 2))  # the listen() state row: not a segment
        await pilot.click(LadderView, offset=(50, 0))  # the header
        await pilot.pause()
        assert app.picked == [4]


async def test_keyboard_moves_the_highlight_and_enter_selects() -> None:
    ladder = LadderView()
    app = Harness(ladder)
    async with app.run_test(size=(100, 24)) as pilot:
        _feed_story(ladder)
        await pilot.pause()
        ladder.focus()
        await pilot.press("up")  # nothing highlighted: start from the bottom of the view
        assert ladder.selected == 12
        await pilot.press("up", "up")
        assert ladder.selected == 10
        assert app.picked == []  # moving the highlight is not a selection
        await pilot.press("enter")
        await pilot.pause()
        assert app.picked == [10]
        await pilot.press("down", "down", "down", "enter")  # stops at the last segment
        await pilot.pause()
        assert app.picked == [10, 12]


async def test_select_scrolls_to_the_record_without_a_message() -> None:
    ladder = LadderView()
    app = Harness(ladder)
    async with app.run_test(size=(100, 8)) as pilot:  # 6 lines of rows: the story does not fit
        _feed_story(ladder)
        await pilot.pause()
        assert ladder.follow and ladder.scroll_y == ladder.max_scroll_y > 0
        assert ladder.select(2)
        await pilot.pause()
        first, _ = ladder.model.row_lines(ladder.model.row_of_record(2) or 0)
        assert ladder.scroll_y <= first < ladder.scroll_y + 6
        assert not ladder.follow  # scrolled away from the tail
        assert app.picked == []
        assert not ladder.select(999)


def _synthetic(count: int, first: int = 1) -> list[CaptureRecord]:
    """Segments first.. first+count-1 alternating data and ACK, 1 ms apart, 10 ms transit, 1 in 97 dropped."""
    data = _segment(PSH | ACK, payload=b"x" * 100)
    ack = _segment(ACK)
    out = []
    for n in range(first, first + count):
        src, dst, seg = ("client", "server", data) if n % 2 else ("server", "client", ack)
        fate = DROPPED if n % 97 == 0 else DELIVERED
        arrival = None if fate == DROPPED else n * MS + 10 * MS
        out.append(CaptureRecord(n, n * MS, src, dst, b"", fate, arrival, _segment=seg))
    return out


async def test_100k_segments_scroll_and_follow_the_tail() -> None:
    records = _synthetic(100_000)
    ladder = LadderView()
    app = Harness(ladder)
    async with app.run_test(size=(120, 30)) as pilot:
        start = time.perf_counter()
        for record in records:
            ladder.add_record(record, rel=(1000, 5000), tags=())
        await pilot.pause()
        elapsed = time.perf_counter() - start
        assert elapsed < 5.0, f"adding 100 000 segments took {elapsed:.2f} s"
        assert not ladder.model.sloped and ladder.model.total_lines == 100_000
        assert ladder.follow and ladder.scroll_y == ladder.max_scroll_y
        bottom = ladder.render_line(ladder.size.height - 1).text
        assert bottom.startswith("100.000000")  # the newest segment is on screen

        # a repaint formats only the visible lines: as fast at the end as at the start
        start = time.perf_counter()
        for y in range(ladder.size.height):
            ladder.render_line(y)
        assert time.perf_counter() - start < 0.1

        # the user scrolls up: the view stays put while segments keep coming
        ladder.scroll_to(y=1000, animate=False)
        await pilot.pause()
        assert not ladder.follow
        more = _synthetic(10, first=100_001)
        for record in more[:5]:
            ladder.add_record(record, rel=(1000, 5000), tags=())
        await pilot.pause()
        assert ladder.scroll_y == 1000
        assert ladder.render_line(2).text.lstrip().startswith("1.001000")

        # back at the end (End key), it follows again
        ladder.focus()
        await pilot.press("end")
        await pilot.pause()
        assert ladder.follow
        for record in more[5:]:
            ladder.add_record(record, rel=(1000, 5000), tags=())
        await pilot.pause()
        assert ladder.scroll_y == ladder.max_scroll_y
        assert ladder.render_line(ladder.size.height - 1).text.startswith("100.010000")

        # jumping to a segment in the middle
        assert ladder.select(50_000)
        await pilot.pause()
        assert ladder.scroll_y <= (ladder.model.row_of_record(50_000) or 0) < ladder.scroll_y + 28
        assert any("50.000000" in ladder.render_line(y).text for y in range(2, 30))


async def test_trimming_keeps_the_view_on_the_same_rows() -> None:
    ladder = LadderView(max_records=100)
    app = Harness(ladder)
    records = _synthetic(1101)
    async with app.run_test(size=(100, 10)) as pilot:
        for record in records[:1095]:
            ladder.add_record(record, rel=(1000, 5000), tags=())
        await pilot.pause()
        ladder.select(3)
        ladder.scroll_to(y=1050, animate=False)
        await pilot.pause()
        assert not ladder.follow and ladder.render_line(2).text.lstrip().startswith("1.051000")
        for record in records[1095:]:  # the 1101st segment: the oldest 1001 go
            ladder.add_record(record, rel=(1000, 5000), tags=())
        await pilot.pause()
        assert ladder.model.segment_count == 100 and ladder.scroll_y == 1050 - 1001
        assert ladder.render_line(2).text.lstrip().startswith("1.051000")  # still the same row on top
        assert ladder.selected is None  # its segment is gone


async def test_rows_added_before_mounting_are_shown() -> None:
    ladder = LadderView()
    _feed_story(ladder)  # the app may replay the capture before the ladder is on screen
    assert ladder.select(9)
    app = Harness(ladder)
    async with app.run_test(size=(100, 10)) as pilot:
        await pilot.pause()
        assert ladder.model.total_lines == 13 and ladder.selected == 9
        assert ladder.follow and ladder.scroll_y == ladder.max_scroll_y == 13 - 8
        assert ladder.render_line(9).text.lstrip().startswith("4.010000")


async def test_clear_and_forced_layout() -> None:
    ladder = LadderView()
    app = Harness(ladder)
    async with app.run_test(size=(120, 40)) as pilot:
        _feed_story(ladder)
        await pilot.pause()
        assert ladder.model.sloped  # 25 lines fit in 38
        ladder.sloped = False
        await pilot.pause()
        assert not ladder.model.sloped and ladder.model.total_lines == 13
        ladder.clear()
        await pilot.pause()
        assert ladder.model.total_lines == 0 and ladder.selected is None and ladder.follow
        assert ladder.render_line(2).text.strip() == "│" + " " * 85 + "│"  # timelines only


# ----------------------------------------------------------------------------------------------------------
# snapshots


def test_snapshot_story_sloped_at_120x40(snap_compare: Any) -> None:
    """Handshake, data, a drop and its retransmission, close: everything fits, so the arrows slope."""
    assert snap_compare(LadderApp(select=7), terminal_size=(120, 40))


def test_snapshot_story_flat_at_100x24(snap_compare: Any) -> None:
    """The same at 100×24: one line per segment, shorter labels, the dropped one highlighted."""
    assert snap_compare(LadderApp(select=6), terminal_size=(100, 24))


@pytest.mark.parametrize("width", [80, 100, 120, 160])
def test_every_line_is_exactly_the_width(width: int) -> None:
    for sloped in (False, True):
        model = story_model(width_sloped=sloped)
        for line in range(model.total_lines):
            assert sum(len(text) for text, _ in model.line(line, width)) == width
        for y in range(2):
            assert sum(len(text) for text, _ in model.header_line(y, width)) == width
