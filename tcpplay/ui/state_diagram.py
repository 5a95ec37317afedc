"""RFC 9293's TCP state machine (Figure 5) in the terminal: where each endpoint is, and how it got there.

The eleven states are boxes, laid out as the RFC draws them (opening at the top, the two ways of closing
down the left and right), joined by arrows labelled event / action (`rcv SYN / snd SYN,ACK`,
`close / snd FIN`). Each host has a colour: the box of its current state is filled with it (split in two
when both hosts are in the same state, with both names on the box), and every transition it has taken so
far is drawn heavy in its colour with its step numbers, so after a handshake and a close you can read the
client's path 1-2-3-4-5 down one side and the server's down the other. A line per host at the bottom
spells the path out, including transitions the figure has no arrow for (an abort or RST to CLOSED from
anywhere, Linux's SYN in TIME_WAIT). The dashed arrow FIN_WAIT_1 → TIME_WAIT is Linux's shortcut (a FIN
that also acks our FIN), which the figure draws as FIN_WAIT_1 → CLOSING → TIME_WAIT.

Figure 5 has CLOSED twice: the top box is where a socket starts (and where an abort ends), the bottom one
is where an orderly close ends (after TIME_WAIT or LAST_ACK); a host in CLOSED is shown in the box its last
transition led to.

Two layouts: the full one needs 108×27 cells (plus a path line per host below it), the compact one 89×23
(plus one line of paths); the widget picks the largest that fits, centred, and crops if neither does.
This is pure rendering from what it is told: no protocol logic, no lab access.

Public API (StateDiagram, a Textual Widget):

    StateDiagram(*, hosts: Mapping[str, str] | None = None, name=None, id=None, classes=None)
    set_state(host: str, state: State) -> None          where host is now (no transition drawn)
    record_transition(host: str, old: State, new: State) -> None
                                                        host took old → new: the next step of its path
    reset(host: str | None = None) -> None              forget the paths and states (of one host, or all)
    hosts: dict[str, str]                               host → colour: a theme variable ("$client") or a
                                                        colour ("#61afef"); assign a new mapping to change
                                                        it. Default: client "$client", server "$server".
                                                        A host not in it gets $<host>, else a palette colour.
    states: dict[str, State]                            current state per host (read-only copy)
    path(host: str) -> list[tuple[State, State]]        the transitions recorded for host, in order
    model: StateDiagramModel                            the same without Textual (tests, plain text)

Theme variables (the first defined one that parses wins):
    host colours    the mapping's value → $<host> → $dir-<host> → built-in (#61afef client, #e5a04f server)
    lines, borders  $foreground-muted → $foreground-darken-2;   state names $foreground
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from rich.segment import Segment as RichSegment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from stack import State

from ._theme import Palette, host_chain

__all__ = ["CLOSED_END", "EDGES", "StateDiagram", "StateDiagramModel", "box_of", "edge_of"]

CLOSED_END = "CLOSED_END"  # the bottom CLOSED box of Figure 5
Span = tuple[str, str]  # (text, style key)

# Where each box sits: (column, level). Columns L/C/R, levels 0 (top) to 4.
_BOXES: dict[str, tuple[str, int]] = {
    "CLOSED": ("C", 0),
    "SYN_RCVD": ("L", 1),
    "LISTEN": ("C", 1),
    "SYN_SENT": ("R", 1),
    "ESTABLISHED": ("C", 2),
    "CLOSE_WAIT": ("R", 2),
    "FIN_WAIT_1": ("L", 3),
    "CLOSING": ("C", 3),
    "LAST_ACK": ("R", 3),
    "FIN_WAIT_2": ("L", 4),
    "TIME_WAIT": ("C", 4),
    CLOSED_END: ("R", 4),
}

# The arrows: (from box, to box) → label. Every one is in RFC 9293 Figure 5 except FIN_WAIT_1 → TIME_WAIT.
EDGES: dict[tuple[str, str], str] = {
    ("CLOSED", "LISTEN"): "listen",
    ("LISTEN", "CLOSED"): "close",
    ("CLOSED", "SYN_SENT"): "connect / snd SYN",
    ("SYN_SENT", "CLOSED"): "close, timeout",
    ("LISTEN", "SYN_RCVD"): "rcv SYN / snd SYN,ACK",
    ("SYN_RCVD", "LISTEN"): "rcv RST",
    ("LISTEN", "SYN_SENT"): "send / snd SYN",
    ("SYN_SENT", "SYN_RCVD"): "rcv SYN / snd SYN,ACK",
    ("SYN_RCVD", "ESTABLISHED"): "rcv ACK of SYN",
    ("SYN_SENT", "ESTABLISHED"): "rcv SYN,ACK / snd ACK",
    ("SYN_RCVD", "FIN_WAIT_1"): "close / snd FIN",
    ("ESTABLISHED", "FIN_WAIT_1"): "close / snd FIN",
    ("ESTABLISHED", "CLOSE_WAIT"): "rcv FIN / snd ACK",
    ("CLOSE_WAIT", "LAST_ACK"): "close / snd FIN",
    ("FIN_WAIT_1", "FIN_WAIT_2"): "rcv ACK of FIN",
    ("FIN_WAIT_1", "CLOSING"): "rcv FIN / snd ACK",
    ("FIN_WAIT_1", "TIME_WAIT"): "rcv FIN+ACK / snd ACK",
    ("CLOSING", "TIME_WAIT"): "rcv ACK of FIN",
    ("LAST_ACK", CLOSED_END): "rcv ACK of FIN",
    ("FIN_WAIT_2", "TIME_WAIT"): "rcv FIN / snd ACK",
    ("TIME_WAIT", CLOSED_END): "2MSL timeout",
}
_DASHED = frozenset({("FIN_WAIT_1", "TIME_WAIT")})
_ORDERLY_END = frozenset({State.TIME_WAIT, State.LAST_ACK})

_LIGHT = {"h": "─", "v": "│", "dh": "╌", "dv": "╎"}
_HEAVY = {"h": "━", "v": "┃", "dh": "╍", "dv": "╏"}
# Corners by the two sides they join.
_CORNERS_LIGHT = {
    frozenset("ld"): "┐",
    frozenset("lu"): "┘",
    frozenset("rd"): "┌",
    frozenset("ru"): "└",
    frozenset("lr"): "─",
    frozenset("ud"): "│",
}
_CORNERS_HEAVY = {
    frozenset("ld"): "┓",
    frozenset("lu"): "┛",
    frozenset("rd"): "┏",
    frozenset("ru"): "┗",
    frozenset("lr"): "━",
    frozenset("ud"): "┃",
}
# A line leaving a (light) box border: which border, light or heavy line.
_JUNCTIONS = {
    ("u", False): "┴",
    ("d", False): "┬",
    ("l", False): "┤",
    ("r", False): "├",
    ("u", True): "┸",
    ("d", True): "┰",
    ("l", True): "┥",
    ("r", True): "┝",
}
_ARROWS = {"u": "▲", "d": "▼", "l": "◀", "r": "▶"}


def box_of(state: State, previous: State | None = None) -> str:
    """The box a host in `state` is drawn in: CLOSED after TIME_WAIT or LAST_ACK is the bottom one."""
    if state is State.CLOSED and previous in _ORDERLY_END:
        return CLOSED_END
    return state.value


def edge_of(old: State, new: State) -> tuple[str, str] | None:
    """The figure's arrow for a transition, or None when the figure has none (e.g. an abort to CLOSED)."""
    key = (old.value, box_of(new, old))
    return key if key in EDGES else None


# ----------------------------------------------------------------------------------------------------------
# geometry


@dataclass(frozen=True, slots=True)
class _Box:
    name: str
    x: int
    y: int
    w: int

    @property
    def l(self) -> int:  # noqa: E743 - the box's left edge, next to r, t, b, m
        return self.x

    @property
    def r(self) -> int:
        return self.x + self.w - 1

    @property
    def t(self) -> int:
        return self.y

    @property
    def m(self) -> int:
        return self.y + 1

    @property
    def b(self) -> int:
        return self.y + 2


@dataclass(slots=True)
class _Route:
    """An arrow: points from the attachment on the source box's border to the arrowhead by the target."""

    points: list[tuple[int, int]]
    label_segment: int | None = None  # index of the horizontal segment the label rides on, or
    beside: tuple[int, int, str] | None = None  # (x, y, "left"|"right"): label next to a vertical line


@dataclass(slots=True)
class _Layout:
    width: int
    height: int  # rows of the diagram itself (path lines go below)
    compact: bool
    boxes: dict[str, _Box] = field(default_factory=dict)
    routes: dict[tuple[str, str], _Route] = field(default_factory=dict)


def _build_layout(compact: bool) -> _Layout:
    """Place the boxes and route the arrows so that no two arrows cross (checked by the tests)."""
    bw = 13 if compact else 15
    cols = {"L": 0, "C": 38, "R": 76} if compact else {"L": 1, "C": 47, "R": 93}
    gap = 2 if compact else 3
    tops = [level * (3 + gap) for level in range(5)]
    layout = _Layout(cols["R"] + bw, tops[4] + 3, compact)
    boxes = layout.boxes
    for name, (col, level) in _BOXES.items():
        boxes[name] = _Box(name, cols[col], tops[level], bw)

    def gaps(level: int) -> tuple[int, int, int]:
        """First, middle and last row of the gap below `level`."""
        g0, g1 = tops[level] + 3, tops[level + 1] - 1
        return g0, (g0 + g1) // 2, g1

    c, ls, sr, ss = boxes["CLOSED"], boxes["LISTEN"], boxes["SYN_RCVD"], boxes["SYN_SENT"]
    es, cw = boxes["ESTABLISHED"], boxes["CLOSE_WAIT"]
    f1, cg, la = boxes["FIN_WAIT_1"], boxes["CLOSING"], boxes["LAST_ACK"]
    f2, tw, ce = boxes["FIN_WAIT_2"], boxes["TIME_WAIT"], boxes[CLOSED_END]
    g0 = gaps(0)
    g1 = gaps(1)
    g2 = gaps(2)
    g3 = gaps(3)
    half = bw // 2
    r = layout.routes
    r["CLOSED", "LISTEN"] = _Route([(c.l + 3, c.b), (c.l + 3, ls.t - 1)], beside=(c.l + 1, g0[1], "right"))
    r["LISTEN", "CLOSED"] = _Route([(c.l + 6, ls.t), (c.l + 6, c.b + 1)], beside=(c.l + 8, g0[2], "left"))
    r["CLOSED", "SYN_SENT"] = _Route(
        [(c.r - 2, c.b), (c.r - 2, g0[0]), (ss.l + 3, g0[0]), (ss.l + 3, ss.t - 1)], label_segment=1
    )
    r["SYN_SENT", "CLOSED"] = _Route([(ss.r - 2, ss.t), (ss.r - 2, c.m), (c.r + 1, c.m)], label_segment=1)
    r["LISTEN", "SYN_RCVD"] = _Route([(ls.l, ls.m), (sr.r + 1, ls.m)], label_segment=0)
    r["SYN_RCVD", "LISTEN"] = _Route(
        [(sr.r - 3, sr.t), (sr.r - 3, g0[2]), (ls.l + 1, g0[2])], label_segment=1
    )
    r["LISTEN", "SYN_SENT"] = _Route([(ls.r, ls.m), (ss.l - 1, ls.m)], label_segment=0)
    r["SYN_SENT", "SYN_RCVD"] = _Route(
        [(ss.l + 2, ss.b), (ss.l + 2, g1[0]), (sr.r - 2, g1[0])], label_segment=1
    )
    r["SYN_RCVD", "ESTABLISHED"] = _Route(
        [(sr.l + 4, sr.b), (sr.l + 4, g1[2]), (es.l + 2, g1[2])], label_segment=1
    )
    r["SYN_SENT", "ESTABLISHED"] = _Route(
        [(ss.r - 3, ss.b), (ss.r - 3, g1[2]), (es.r - 2, g1[2])], label_segment=1
    )
    r["SYN_RCVD", "FIN_WAIT_1"] = _Route(
        [(sr.l + 1, sr.b), (sr.l + 1, f1.t - 1)], beside=(sr.l + 3, es.m, "left")
    )
    r["ESTABLISHED", "FIN_WAIT_1"] = _Route(
        [(es.l + 3, es.b), (es.l + 3, g2[0]), (f1.r - 3, g2[0]), (f1.r - 3, f1.t - 1)], label_segment=1
    )
    r["ESTABLISHED", "CLOSE_WAIT"] = _Route([(es.r, es.m), (cw.l - 1, es.m)], label_segment=0)
    r["CLOSE_WAIT", "LAST_ACK"] = _Route(
        [(cw.l + half, cw.b), (cw.l + half, la.t - 1)], beside=(cw.l + half - 2, g2[1], "right")
    )
    r["FIN_WAIT_1", "FIN_WAIT_2"] = _Route(
        [(f1.l + 3, f1.b), (f1.l + 3, f2.t - 1)], beside=(f1.l + 5, g3[2], "left")
    )
    r["FIN_WAIT_1", "CLOSING"] = _Route([(f1.r, f1.m), (cg.l - 1, f1.m)], label_segment=0)
    r["FIN_WAIT_1", "TIME_WAIT"] = _Route(
        [(f1.r - 3, f1.b), (f1.r - 3, g3[0]), (tw.l + 2, g3[0]), (tw.l + 2, tw.t - 1)], label_segment=1
    )
    r["CLOSING", "TIME_WAIT"] = _Route(
        [(cg.r - 4, cg.b), (cg.r - 4, tw.t - 1)], beside=(cg.r - 2, g3[0], "left")
    )
    r["LAST_ACK", CLOSED_END] = _Route(
        [(la.l + half, la.b), (la.l + half, ce.t - 1)], beside=(la.l + half - 2, g3[2], "right")
    )
    r["FIN_WAIT_2", "TIME_WAIT"] = _Route([(f2.r, f2.m), (tw.l - 1, f2.m)], label_segment=0)
    r["TIME_WAIT", CLOSED_END] = _Route([(tw.r, tw.m), (ce.l - 1, tw.m)], label_segment=0)
    return layout


FULL = _build_layout(compact=False)
COMPACT = _build_layout(compact=True)


def _side(frm: tuple[int, int], to: tuple[int, int]) -> str:
    """The side of cell frm that cell `to` lies on: l, r, u or d."""
    (x0, y0), (x1, y1) = frm, to
    if y1 == y0:
        return "l" if x1 < x0 else "r"
    return "u" if y1 < y0 else "d"


def _route_cells(route: _Route) -> list[tuple[int, int]]:
    """Every cell an arrow passes through, in order, from the border attachment to the arrowhead."""
    cells = [route.points[0]]
    for (x0, y0), (x1, y1) in zip(route.points, route.points[1:], strict=False):
        dx = (x1 > x0) - (x1 < x0)
        dy = (y1 > y0) - (y1 < y0)
        x, y = x0, y0
        while (x, y) != (x1, y1):
            x, y = x + dx, y + dy
            cells.append((x, y))
    return cells


# ----------------------------------------------------------------------------------------------------------
# the model


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height
        self.chars = [[" "] * width for _ in range(height)]
        self.keys = [[""] * width for _ in range(height)]

    def put(self, x: int, y: int, text: str, key: str) -> None:
        if not 0 <= y < self.height:
            return
        row_c, row_k = self.chars[y], self.keys[y]
        for i, ch in enumerate(text):
            if 0 <= x + i < self.width:
                row_c[x + i] = ch
                row_k[x + i] = key

    def set_key(self, x: int, y: int, key: str) -> None:
        if 0 <= y < self.height and 0 <= x < self.width:
            self.keys[y][x] = key

    def runs(self, y: int) -> list[Span]:
        spans: list[Span] = []
        chars, keys = self.chars[y], self.keys[y]
        start = 0
        for i in range(1, self.width + 1):
            if i == self.width or keys[i] != keys[start]:
                spans.append(("".join(chars[start:i]), keys[start]))
                start = i
        return spans


class StateDiagramModel:
    """Where each host is, the transitions it took, and the diagram as spans of (text, style key).

    Style keys: "line" and "label" (arrows nobody took), "border", "name", "h{i}" (host i's heavy arrows
    and labels), "b{i}" (host i's step badges and current-box fill), "t{i}" (host i's name tag),
    "legend" — i is the host's position in `hosts`.
    """

    def __init__(self, hosts: Sequence[str] = ("client", "server")) -> None:
        self.hosts: list[str] = list(hosts)
        self.states: dict[str, State] = {}
        self.paths: dict[str, list[tuple[State, State]]] = {}
        self.start: dict[str, State] = {}

    def add_host(self, host: str) -> int:
        """host's index (its colour slot), adding it at the end if new."""
        if host not in self.hosts:
            self.hosts.append(host)
        return self.hosts.index(host)

    def set_state(self, host: str, state: State) -> None:
        self.add_host(host)
        self.states[host] = state
        if not self.paths.get(host):
            self.start[host] = state

    def record_transition(self, host: str, old: State, new: State) -> None:
        self.add_host(host)
        path = self.paths.setdefault(host, [])
        if not path:
            self.start[host] = old
        path.append((old, new))
        self.states[host] = new

    def reset(self, host: str | None = None) -> None:
        for name in [host] if host is not None else list(self.hosts):
            self.states.pop(name, None)
            self.paths.pop(name, None)
            self.start.pop(name, None)

    def current_box(self, host: str) -> str | None:
        """The box to fill for host: its state's, or CLOSED_END when an orderly close brought it there."""
        state = self.states.get(host)
        if state is None:
            return None
        path = self.paths.get(host)
        previous = path[-1][0] if path and path[-1][1] is state else None
        return box_of(state, previous)

    def steps(self) -> dict[tuple[str, str], list[tuple[int, int]]]:
        """For each drawn arrow, the (host index, step number) pairs that took it, in host order."""
        taken: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for host in self.hosts:
            index = self.hosts.index(host)
            for step, (old, new) in enumerate(self.paths.get(host, []), 1):
                edge = edge_of(old, new)
                if edge is not None:
                    taken.setdefault(edge, []).append((index, step))
        return taken

    @staticmethod
    def layout_for(width: int, height: int) -> _Layout:
        """The full layout when it fits, else the compact one (cropped if even that does not fit)."""
        return FULL if width >= FULL.width and height >= FULL.height else COMPACT

    def path_pieces(self, host: str) -> list[str]:
        """host's path as pieces: ["CLOSED", "1→ SYN_SENT", "2→ ESTABLISHED"] (numbers match the badges).

        A jump nobody recorded as a transition (set_state in between) shows as "⋯ STATE".
        """
        path = self.paths.get(host, [])
        start = self.start.get(host) or (path[0][0] if path else self.states.get(host))
        if start is None:
            return []
        pieces = [str(start)]
        for step, (old, new) in enumerate(path, 1):
            if step > 1 and path[step - 2][1] is not old:
                pieces.append(f"⋯ {old}")
            pieces.append(f"{step}→ {new}")
        current = self.states.get(host)
        if current is not None and path and current is not path[-1][1]:
            pieces.append(f"⋯ {current}")
        return pieces

    def path_text(self, host: str, room: int | None = None) -> str:
        """The path pieces joined; when longer than room, the oldest steps give way to "…"."""
        pieces = self.path_pieces(host)
        text = " ".join(pieces)
        while room is not None and len(text) > room and len(pieces) > 1:
            pieces = pieces[1:]
            text = "… " + " ".join(pieces)
        return text if room is None else text[:room]

    def render(self, width: int, height: int) -> list[list[Span]]:
        """The diagram in a width × height area: one list of spans per row, each row exactly width wide."""
        layout = self.layout_for(width, height)
        canvas = _Canvas(max(width, 1), max(height, 1))
        ox = max(0, (width - layout.width) // 2)
        taken = self.steps()
        # Boxes first: arrows start on their borders with a junction.
        for box in layout.boxes.values():
            self._draw_box(canvas, box, ox)
        # Arrows nobody took, then the taken ones on top.
        for edge in sorted(layout.routes, key=lambda e: e in taken):
            self._draw_route(canvas, layout, edge, taken.get(edge, []), ox)
        for name, box in layout.boxes.items():
            self._fill_current(canvas, box, ox, name)
        self._draw_legend(canvas, layout, ox, width - ox)
        return [canvas.runs(y) for y in range(canvas.height)]

    def _draw_box(self, canvas: _Canvas, box: _Box, ox: int) -> None:
        x = box.x + ox
        inner = box.w - 2
        canvas.put(x, box.t, "┌" + "─" * inner + "┐", "border")
        canvas.put(x, box.m, "│", "border")
        canvas.put(x + 1, box.m, ("CLOSED" if box.name == CLOSED_END else box.name).center(inner), "name")
        canvas.put(box.r + ox, box.m, "│", "border")
        canvas.put(x, box.b, "└" + "─" * inner + "┘", "border")

    def _fill_current(self, canvas: _Canvas, box: _Box, ox: int, name: str) -> None:
        """Paint the box of each host that is in it: its fill, and its name on the bottom border.

        When several hosts share the box it is split between their colours, left to right.
        """
        here = [i for i, host in enumerate(self.hosts) if self.current_box(host) == name]
        if not here:
            return
        x = box.x + ox
        for k, index in enumerate(here):
            lo, hi = box.w * k // len(here), box.w * (k + 1) // len(here)
            for col in range(lo, hi):
                canvas.set_key(x + col, box.t, f"t{index}")
                canvas.set_key(x + col, box.b, f"t{index}")
                if 0 < col < box.w - 1:
                    canvas.set_key(x + col, box.m, f"b{index}")
        canvas.set_key(x, box.m, f"t{here[0]}")
        canvas.set_key(x + box.w - 1, box.m, f"t{here[-1]}")
        inner = box.w - 2
        tags = [self.hosts[i] for i in here]
        if len("─".join(tags)) > inner:
            tags = [tag[0] for tag in tags]
        col = x + 1 + (inner - len("─".join(tags))) // 2
        for index, tag in zip(here, tags, strict=True):
            canvas.put(col, box.b, tag, f"t{index}")
            col += len(tag) + 1

    def _draw_route(
        self,
        canvas: _Canvas,
        layout: _Layout,
        edge: tuple[str, str],
        taken: list[tuple[int, int]],
        ox: int,
    ) -> None:
        route = layout.routes[edge]
        heavy = bool(taken)
        glyphs = _HEAVY if heavy else _LIGHT
        corners = _CORNERS_HEAVY if heavy else _CORNERS_LIGHT
        dashed = edge in _DASHED
        hosts_here = sorted({index for index, _ in taken})
        cells = _route_cells(route)

        def key_at(i: int) -> str:
            if not hosts_here:
                return "line"
            return f"h{hosts_here[i % len(hosts_here)]}"  # stripes when several hosts took it

        for i, (x, y) in enumerate(cells):
            if i == 0:
                side = _side((x, y), cells[1])
                ch = _JUNCTIONS[side, heavy]
            elif i == len(cells) - 1:
                # The head points into the target box, which can lie across a corner from the last run.
                ch = _ARROWS[_into(x, y, layout.boxes[edge[1]])]
            else:
                sides = frozenset((_side((x, y), cells[i - 1]), _side((x, y), cells[i + 1])))
                ch = corners[sides]
                if dashed and ch in (glyphs["h"], glyphs["v"]):
                    ch = glyphs["dh"] if ch == glyphs["h"] else glyphs["dv"]
            canvas.put(x + ox, y, ch, key_at(i))
        label = EDGES[edge]
        if layout.compact:
            label = label.replace(" / ", "/")
        self._draw_label(canvas, route, label, taken, ox)

    def _draw_label(
        self, canvas: _Canvas, route: _Route, label: str, taken: list[tuple[int, int]], ox: int
    ) -> None:
        badges = _badges(taken)
        text_key = f"h{taken[0][0]}" if taken else "label"
        width = sum(len(b) + 1 for _, b in badges) + len(label)
        if route.label_segment is not None:
            (x0, y), (x1, _) = route.points[route.label_segment], route.points[route.label_segment + 1]
            lo, hi = min(x0, x1) + 2, max(x0, x1) - 2  # keep a line cell and the corner/head at each end
            room = hi - lo + 1
            if room < 3:
                return
            text = label if width + 2 <= room else label[: max(0, room - 3 - (width - len(label)))] + "…"
            total = sum(len(b) + 1 for _, b in badges) + len(text) + 2
            x = lo + max(0, (room - total) // 2)
        else:
            assert route.beside is not None
            bx, y, align = route.beside
            text = label
            x = (bx if align == "left" else bx - width + 1) - 1  # x: the leading space written below
        x += ox
        canvas.put(x, y, " ", "")
        col = x + 1
        for index, badge in badges:
            canvas.put(col, y, badge, f"b{index}")
            canvas.put(col + len(badge), y, " ", "")
            col += len(badge) + 1
        canvas.put(col, y, text, text_key)
        if route.label_segment is not None:
            canvas.put(col + len(text), y, " ", "")

    def _draw_legend(self, canvas: _Canvas, layout: _Layout, ox: int, width: int) -> None:
        """Top left: who is where. Below the diagram: each host's path (one shared line when compact)."""
        shown = [h for h in self.hosts if h in self.states or self.paths.get(h)]
        for row, host in enumerate(shown[:3]):
            index = self.hosts.index(host)
            state = self.states.get(host)
            steps = len(self.paths.get(host, []))
            canvas.put(ox, row, "■", f"h{index}")
            canvas.put(ox + 2, row, host, f"h{index}")
            text = f"{state} · {steps} step{'s' if steps != 1 else ''}" if state else "—"
            canvas.put(ox + 3 + len(host), row, text, "legend")
        below = layout.height + (0 if layout.compact else 1)
        if not shown or below >= canvas.height:
            return
        if layout.compact or canvas.height - below < len(shown):
            room = width // max(1, min(len(shown), 2))
            for k, host in enumerate(shown[:2]):
                self._put_path(canvas, host, ox + k * room, below, room - 1)
        else:
            for k, host in enumerate(shown):
                self._put_path(canvas, host, ox, below + k, width)

    def _put_path(self, canvas: _Canvas, host: str, x: int, y: int, room: int) -> None:
        index = self.hosts.index(host)
        head = f"{host}: "
        canvas.put(x, y, head, f"h{index}")
        canvas.put(x + len(head), y, self.path_text(host, max(0, room - len(head))), "legend")

    def render_text(self, width: int, height: int) -> list[str]:
        """Plain text of the diagram (for tests and copying)."""
        return ["".join(t for t, _ in row).rstrip() for row in self.render(width, height)]


def _into(x: int, y: int, box: _Box) -> str:
    """Which way an arrowhead at (x, y) must point to enter box."""
    if y == box.t - 1:
        return "d"
    if y == box.b + 1:
        return "u"
    return "r" if x < box.l else "l"


def _badges(taken: list[tuple[int, int]]) -> list[tuple[int, str]]:
    """One badge per host: its step numbers on this arrow ("2" or "2,9"), the last two at most."""
    by_host: dict[int, list[int]] = {}
    for index, step in taken:
        by_host.setdefault(index, []).append(step)
    return [(index, ",".join(str(s) for s in steps[-2:])) for index, steps in by_host.items()]


# ----------------------------------------------------------------------------------------------------------
# the widget

_MUTED = ("$foreground-muted", "$foreground-darken-2", "#888888")
_TEXT = ("$foreground", "#e0e0e0")


class StateDiagram(Widget):
    """RFC 9293 Figure 5 with each host's state and path (see the module docstring for the API)."""

    DEFAULT_CSS = """
    StateDiagram {
        height: 1fr;
        width: 1fr;
    }
    """

    DEFAULT_HOSTS: ClassVar[Mapping[str, str]] = {"client": "$client", "server": "$server"}

    def __init__(
        self,
        *,
        hosts: Mapping[str, str] | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._hosts: dict[str, str] = dict(self.DEFAULT_HOSTS if hosts is None else hosts)
        self.model = StateDiagramModel(list(self._hosts))
        self._palette = Palette(self)
        self._rows: list[list[Span]] | None = None  # the rendered diagram, until something changes
        self._rendered_size = (0, 0)

    # ------------------------------------------------------------------------------------------------------
    # public API

    @property
    def hosts(self) -> dict[str, str]:
        """host → colour (a theme variable such as "$client", or a colour); a copy: assign to change."""
        return dict(self._hosts)

    @hosts.setter
    def hosts(self, value: Mapping[str, str]) -> None:
        self._hosts = dict(value)
        for host in self._hosts:
            self.model.add_host(host)
        self._changed()
        self._restyle()

    @property
    def states(self) -> dict[str, State]:
        """Current state per host (a copy: change it through set_state/record_transition)."""
        return dict(self.model.states)

    def path(self, host: str) -> list[tuple[State, State]]:
        """The transitions recorded for host, in order (step n is path[n - 1])."""
        return list(self.model.paths.get(host, []))

    def set_state(self, host: str, state: State) -> None:
        """Show host in state without drawing a transition (its starting point, or a resync)."""
        self.model.set_state(host, state)
        self._changed()

    def record_transition(self, host: str, old: State, new: State) -> None:
        """host went old → new: its next step, drawn on the figure's arrow (or only listed, if none)."""
        self.model.record_transition(host, old, new)
        self._changed()

    def reset(self, host: str | None = None) -> None:
        """Forget states and paths: of one host, or (None) of all."""
        self.model.reset(host)
        self._changed()

    # ------------------------------------------------------------------------------------------------------
    # painting

    def _changed(self) -> None:
        self._rows = None
        self.refresh()

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._restyle())

    def on_resize(self) -> None:
        self._rows = None

    def _restyle(self) -> None:
        self._palette.clear()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._palette.clear()

    def _host_chain(self, index: int) -> tuple[str, ...]:
        host = self.model.hosts[index]
        return host_chain(host, index, self._hosts.get(host))

    def _style(self, key: str) -> Style:
        if not key:
            return Style()
        if key in ("line", "border", "label", "legend"):
            return self._palette.style(key, _MUTED)
        if key == "name":
            return self._palette.style(key, _TEXT)
        kind, index = key[0], int(key[1:])
        chain = self._host_chain(index)
        if kind == "b":
            return self._palette.style(key, chain, bold=True, reverse=True)
        return self._palette.style(key, chain, bold=True)

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._rows is None or self._rendered_size != (width, height):
            self._rows = self.model.render(width, height)
            self._rendered_size = (width, height)
        base = self.rich_style
        if not 0 <= y < len(self._rows):
            return Strip.blank(width, base)
        return Strip([RichSegment(text, base + self._style(key)) for text, key in self._rows[y]], width)
