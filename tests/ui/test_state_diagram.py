"""The state diagram: the layouts are legible (no arrow crosses another, a box, or a label), the current
states and the paths show where they should, and two snapshots (full at 120×40, compact at 90×24).
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult

from stack import LEGAL_TRANSITIONS, State
from tcpplay.ui.state_diagram import (
    CLOSED_END,
    COMPACT,
    EDGES,
    FULL,
    StateDiagram,
    StateDiagramModel,
    _Layout,
    _route_cells,
    box_of,
    edge_of,
)

from .snapshot_apps.state_diagram_app import StateDiagramApp

S = State
CLIENT_PATH = [
    (S.CLOSED, S.SYN_SENT),
    (S.SYN_SENT, S.ESTABLISHED),
    (S.ESTABLISHED, S.FIN_WAIT_1),
    (S.FIN_WAIT_1, S.FIN_WAIT_2),
    (S.FIN_WAIT_2, S.TIME_WAIT),
]
SERVER_PATH = [
    (S.LISTEN, S.SYN_RCVD),
    (S.SYN_RCVD, S.ESTABLISHED),
    (S.ESTABLISHED, S.CLOSE_WAIT),
    (S.CLOSE_WAIT, S.LAST_ACK),
    (S.LAST_ACK, S.CLOSED),
]


def closed_model() -> StateDiagramModel:
    model = StateDiagramModel()
    model.set_state("client", S.CLOSED)
    model.set_state("server", S.LISTEN)
    for old, new in CLIENT_PATH:
        model.record_transition("client", old, new)
    for old, new in SERVER_PATH:
        model.record_transition("server", old, new)
    return model


def _cells_of_box(layout: _Layout, name: str) -> set[tuple[int, int]]:
    box = layout.boxes[name]
    return {(x, y) for x in range(box.l, box.r + 1) for y in range(box.t, box.b + 1)}


@pytest.mark.parametrize("layout", [FULL, COMPACT], ids=["full", "compact"])
def test_layout_is_legible(layout: _Layout) -> None:
    """No arrow crosses another or runs through a box, and every arrow ends next to its target box."""
    boxes: dict[tuple[int, int], str] = {}
    for name in layout.boxes:
        for cell in _cells_of_box(layout, name):
            assert cell not in boxes, f"{name} overlaps {boxes[cell]}"
            boxes[cell] = name
    used: dict[tuple[int, int], tuple[str, str]] = {}
    for edge, route in layout.routes.items():
        cells = _route_cells(route)
        assert boxes.get(cells[0]) == edge[0], f"{edge} does not start on its source's border"
        for cell in cells[1:]:
            assert cell not in boxes, f"{edge} runs through {boxes.get(cell)}"
            assert cell not in used, f"{edge} crosses {used[cell]} at {cell}"
            used[cell] = edge
        x, y = cells[-1]
        neighbours = {(x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)}
        assert any(boxes.get(n) == edge[1] for n in neighbours), f"{edge} does not reach {edge[1]}"
        assert 0 <= x < layout.width and 0 <= y < layout.height
    assert set(layout.routes) == set(EDGES)


def busy_model() -> StateDiagramModel:
    """Both hosts over every arrow twice, so every label carries two badges of two-digit steps."""
    model = StateDiagramModel()
    for host in ("client", "server"):
        for _ in range(2):
            for old, new in EDGES:
                model.record_transition(host, State[old], State.CLOSED if new == CLOSED_END else State[new])
    return model


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
@pytest.mark.parametrize(
    ("layout", "size"), [(FULL, (108, 30)), (COMPACT, (89, 24))], ids=["full", "compact"]
)
def test_labels_do_not_cover_arrows_or_boxes(layout: _Layout, size: tuple[int, int], busy: bool) -> None:
    """Every arrow cell still shows its line, corner, junction or head (its own label aside), every box
    its borders and name, however long the labels get with step badges."""
    model = busy_model() if busy else StateDiagramModel()
    rows = model.render_text(*size)
    line_chars = set("─│┌┐└┘├┤┬┴▶◀▲▼╌╎━┃┏┓┗┛┝┥┰┸╍╏")
    for edge, route in layout.routes.items():
        for x, y in _route_cells(route):
            ch = rows[y][x] if x < len(rows[y]) else " "
            inline = route.label_segment is not None and y == route.points[route.label_segment][1]
            assert ch in line_chars or inline, f"{edge}: {ch!r} at {(x, y)}"
    for name, box in layout.boxes.items():
        assert rows[box.t][box.l] == "┌" and rows[box.b][box.r] == "┘"
        assert rows[box.m][box.l : box.r + 1].strip("│├┤┝┥ ") == ("CLOSED" if name == CLOSED_END else name)
    assert StateDiagramModel.layout_for(*size) is layout
    if busy:
        assert model.steps()["ESTABLISHED", "CLOSE_WAIT"] == [(0, 13), (0, 34), (1, 13), (1, 34)]


def test_figure_5_transitions_have_arrows() -> None:
    """Every transition Figure 5 draws has an arrow; what the stack adds beyond it is only listed."""
    drawn = {(old, new) for old, new in LEGAL_TRANSITIONS if edge_of(old, new) is not None}
    assert (S.LISTEN, S.SYN_RCVD) in drawn and (S.TIME_WAIT, S.CLOSED) in drawn
    assert (S.FIN_WAIT_1, S.TIME_WAIT) in drawn  # Linux's shortcut, dashed
    assert edge_of(S.ESTABLISHED, S.CLOSED) is None  # an abort: no arrow in the figure
    assert edge_of(S.TIME_WAIT, S.CLOSED) == ("TIME_WAIT", CLOSED_END)
    assert box_of(S.CLOSED, S.LAST_ACK) == CLOSED_END and box_of(S.CLOSED, S.SYN_SENT) == "CLOSED"
    assert len(drawn) == len(EDGES)


def test_paths_and_current_states() -> None:
    model = closed_model()
    assert model.current_box("client") == "TIME_WAIT"
    assert model.current_box("server") == CLOSED_END
    steps = model.steps()
    assert steps["SYN_SENT", "ESTABLISHED"] == [(0, 2)]
    assert steps["LAST_ACK", CLOSED_END] == [(1, 5)]
    assert model.path_text("client") == (
        "CLOSED 1→ SYN_SENT 2→ ESTABLISHED 3→ FIN_WAIT_1 4→ FIN_WAIT_2 5→ TIME_WAIT"
    )
    assert model.path_text("server") == (
        "LISTEN 1→ SYN_RCVD 2→ ESTABLISHED 3→ CLOSE_WAIT 4→ LAST_ACK 5→ CLOSED"
    )
    assert model.path_text("client", 40) == "… 4→ FIN_WAIT_2 5→ TIME_WAIT"
    text = "\n".join(model.render_text(110, 30))
    assert "└───client────┘" in text  # TIME_WAIT's box names its occupant
    assert "└───server────┘" in text  # the bottom CLOSED, reached from LAST_ACK
    assert "1 connect / snd SYN" in text and "5 rcv ACK of FIN" in text
    assert "━" in text  # taken arrows are heavy


def test_both_hosts_in_one_state_share_the_box() -> None:
    model = StateDiagramModel()
    model.record_transition("client", S.SYN_SENT, S.ESTABLISHED)
    model.record_transition("server", S.SYN_RCVD, S.ESTABLISHED)
    rows = model.render(110, 30)
    box = FULL.boxes["ESTABLISHED"]
    ox = (110 - FULL.width) // 2
    fill = [key for text, key in rows[box.m] for _ in text][box.l + ox + 1 : box.r + ox]
    assert fill[0] == "b0" and fill[-1] == "b1" and set(fill) == {"b0", "b1"}  # split in two colours
    assert "client─server" in "".join(text for text, _ in rows[box.b])


def test_off_figure_transitions_are_listed_and_reset_forgets() -> None:
    model = StateDiagramModel()
    model.set_state("client", S.CLOSED)
    model.record_transition("client", S.CLOSED, S.SYN_SENT)
    model.record_transition("client", S.SYN_SENT, S.ESTABLISHED)
    model.record_transition("client", S.ESTABLISHED, S.CLOSED)  # RST: not an arrow of the figure
    assert model.current_box("client") == "CLOSED"
    assert model.path_text("client").endswith("3→ CLOSED")
    assert list(model.steps()) == [("CLOSED", "SYN_SENT"), ("SYN_SENT", "ESTABLISHED")]
    model.set_state("client", S.LISTEN)  # a jump nobody recorded
    assert model.path_text("client").endswith("3→ CLOSED ⋯ LISTEN")
    model.reset("client")
    assert model.states == {} and model.paths == {} and model.steps() == {}


@pytest.mark.parametrize("size", [(108, 27), (89, 23), (60, 15), (1, 1)])
def test_render_fills_any_size(size: tuple[int, int]) -> None:
    rows = closed_model().render(*size)
    assert len(rows) == size[1]
    assert all(sum(len(text) for text, _ in row) == size[0] for row in rows)


class Harness(App[None]):
    def compose(self) -> ComposeResult:
        yield StateDiagram(hosts={"client": "#ff0000", "server": "$server"})


async def test_widget_api_and_colours() -> None:
    app = Harness()
    async with app.run_test(size=(120, 40)) as pilot:
        diagram = app.query_one(StateDiagram)
        diagram.set_state("server", S.LISTEN)
        diagram.record_transition("client", S.CLOSED, S.SYN_SENT)
        await pilot.pause()
        assert diagram.states == {"server": S.LISTEN, "client": S.SYN_SENT}
        assert diagram.path("client") == [(S.CLOSED, S.SYN_SENT)]
        box = FULL.boxes["SYN_SENT"]
        x = box.l + (120 - FULL.width) // 2 + 2  # in SYN_SENT's name row: filled with the client's colour
        assert fill_colour(diagram, x, box.m) == "#ff0000"  # the colour given to the constructor
        diagram.hosts = {"client": "#00ff00", "server": "$server"}
        await pilot.pause()
        assert fill_colour(diagram, x, box.m) == "#00ff00"
        diagram.reset()
        await pilot.pause()
        assert diagram.states == {}


def fill_colour(diagram: StateDiagram, x: int, y: int) -> str | None:
    cells = [seg.style for seg in diagram.render_line(y) for _ in seg.text]
    style = cells[x]
    if style is None or style.bgcolor is None or style.bgcolor.triplet is None:
        return None
    return style.bgcolor.triplet.hex


def test_snapshot_full_at_120x40(snap_compare: Any) -> None:
    """Client in TIME_WAIT, server CLOSED (after LAST_ACK), both paths drawn and numbered."""
    assert snap_compare(StateDiagramApp(), terminal_size=(120, 40))


def test_snapshot_compact_at_90x24(snap_compare: Any) -> None:
    assert snap_compare(StateDiagramApp(), terminal_size=(90, 24))
