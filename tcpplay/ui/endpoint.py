"""An endpoint panel: one host's connection as RFC 9293 describes it, refreshed from stack snapshots.

It shows what a person would otherwise piece together from `ss -tanoi` and a textbook: the state as a
coloured badge, the send and receive sequence variables both relative (as Wireshark shows them) and
absolute (as they are on the wire), negotiated options, congestion and RTT estimates, buffer fill, and every
running timer counting down in stack time. A host that holds several connections (a SYN flood, a pile of
TIME_WAITs) gets an `ss -tan`-style table; `[` and `]` choose which one the details describe.

Nothing here changes the lab except which of the host's own sockets the controls act on (the lab's
`apps[host].selected`), which is exactly what choosing a row means.
"""

from __future__ import annotations

import errno
import socket as pysocket
import struct
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from stack import ConnectionSnapshot, Socket, State

from ..format import format_duration
from ..lab import Lab
from .logmodel import peer_label

MASK = 0xFFFFFFFF
TIMER_ORDER = (
    "retransmit",
    "loss-probe",
    "delayed-ack",
    "persist",
    "keepalive",
    "time-wait",
    "fin-wait-2",
    "syn-ack",
    "linger",
)
TIMER_LABEL = {"time-wait": "time-wait (2MSL)"}
SHORT_TIMER = {
    "retransmit": "rto",
    "loss-probe": "tlp",
    "delayed-ack": "delack",
    "keepalive": "keepalive",
    "time-wait": "2MSL",
    "fin-wait-2": "fin-wait-2",
    "syn-ack": "synack",
}
SS_NAMES = {
    State.ESTABLISHED: "ESTAB",
    State.SYN_SENT: "SYN-SENT",
    State.SYN_RCVD: "SYN-RECV",
    State.FIN_WAIT_1: "FIN-WAIT-1",
    State.FIN_WAIT_2: "FIN-WAIT-2",
    State.TIME_WAIT: "TIME-WAIT",
    State.CLOSE_WAIT: "CLOSE-WAIT",
    State.LAST_ACK: "LAST-ACK",
    State.CLOSING: "CLOSING",
    State.LISTEN: "LISTEN",
    State.CLOSED: "UNCONN",
}
TABLE_ROWS = 6
ConnKey = tuple[str, int, str, int]
# A stack ConnectionSnapshot, or a kernel peer's KernelSnapshot (inet_diag): the same names where both
# have a value, fewer fields on the kernel's side (no ISS/IRS: the kernel does not report them).
Snapshot = Any


def state_class(state: State | str) -> str:
    """CSS class for a state badge: `state-time-wait` → background `$state-time-wait` from the theme."""
    name = state.name if isinstance(state, State) else state
    return "state-" + name.lower().replace("_", "-")


def human_bytes(n: int) -> str:
    if n < 10_000:
        return str(n)
    if n < 10_000_000:
        return f"{n / 1024:.0f}K"
    return f"{n / 1048576:.1f}M"


def bar(used: int, total: int, width: int = 12) -> str:
    """A fill bar with eighth-block resolution, so a few bytes in a large buffer still show."""
    if total <= 0:
        return "▕" + " " * width + "▏"
    eighths = min(width * 8, round(used / total * width * 8))
    if used and eighths < 2:
        eighths = 2  # the thinnest block would read as the bar's right edge
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if part else ""
    body = "█" * full + partial
    return "▕" + body + "·" * (width - len(body)) + "▏"


def set_text(widget: Static, content: Text) -> None:
    """Update a Static with a layout pass only when its line count changes: a countdown ticking at 20 fps
    must repaint one widget, not re-lay-out the whole screen (which costs ~15 ms a frame)."""
    previous = getattr(widget, "_shown", None)
    if previous is not None and previous == content:
        return
    lines = content.plain.count("\n")
    layout = previous is None or previous.plain.count("\n") != lines
    widget._shown = content  # type: ignore[attr-defined]
    widget.update(content, layout=layout)


@dataclass(frozen=True, slots=True)
class SockOpts:
    """The socket options a user set with this app's controls, read back with getsockopt."""

    nodelay: bool = False
    keepalive: bool = False
    keepidle: int = 0
    keepintvl: int = 0
    keepcnt: int = 0
    linger_on: bool = False
    linger_secs: int = 0


def read_sockopts(sock: Socket | None) -> SockOpts | None:
    if sock is None or sock.closed:
        return None
    try:
        linger = sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER, 8)
        onoff, secs = struct.unpack("ii", linger) if isinstance(linger, bytes) else (0, 0)
        return SockOpts(
            nodelay=bool(sock.getsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_NODELAY)),
            keepalive=bool(sock.getsockopt(pysocket.SOL_SOCKET, pysocket.SO_KEEPALIVE)),
            keepidle=int(sock.getsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_KEEPIDLE)),
            keepintvl=int(sock.getsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_KEEPINTVL)),
            keepcnt=int(sock.getsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_KEEPCNT)),
            linger_on=bool(onoff),
            linger_secs=int(secs),
        )
    except OSError:
        return None


@dataclass(slots=True)
class PanelView:
    """Everything one paint of a panel needs (compared with the previous one to skip needless repaints)."""

    host: str
    address: str
    down: bool
    acting: bool
    now: int
    conns: list[Snapshot]
    selected: Snapshot | None
    badge: State | None
    listener: Snapshot | None
    opts: SockOpts | None
    error: int = 0


class EndpointPanel(VerticalScroll):
    """One host. `refresh_from(lab)` is cheap when nothing changed; the app calls it each tick."""

    DEFAULT_CSS = """
    EndpointPanel {
        border: round $panel-lighten-2;
        border-title-color: $text;
        border-title-style: bold;
        padding: 0 0 0 1;
        scrollbar-size-vertical: 1;
    }
    EndpointPanel.acting {
        border: round $accent;
        border-subtitle-color: $accent;
    }
    EndpointPanel .badge-row { height: 1; }
    EndpointPanel .badge {
        width: auto;
        padding: 0 1;
        text-style: bold;
        color: auto 90%;
        background: $state-closed;
    }
    EndpointPanel .badge.down { background: $error; }
    EndpointPanel .flow { width: 1fr; padding: 0 1; color: $text-muted; }
    EndpointPanel .table { height: auto; }
    EndpointPanel .details { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    EndpointPanel .table { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, host: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.host = host
        self.pinned: ConnKey | None = None  # chosen with [ / ]
        self.last_current: ConnKey | None = None
        self._last_view: PanelView | None = None
        self.view: PanelView | None = None
        self.border_title = host

    def compose(self) -> ComposeResult:
        with Horizontal(classes="badge-row"):
            yield Static("CLOSED", classes="badge state-closed")
            yield Static("", classes="flow")
        yield Static("", classes="table")
        yield Static("", classes="details")

    # --------------------------------------------------------------------------------------------------
    # choosing the connection to describe

    def _current(self, lab: Lab) -> tuple[Socket | None, Snapshot | None]:
        """The socket the host's program uses now and its connection's snapshot. A kernel peer (a real
        Linux socket over TUN) has no stack socket here: the lab's snapshot of it stands in."""
        app = lab.apps.get(self.host)
        if app is None:
            return None, lab.snapshot(self.host)
        sock = app.current()
        if sock is not None and sock.conn is not None:
            return sock, sock.conn.snapshot()
        return sock, None

    @staticmethod
    def address_of(lab: Lab, host: str) -> str:
        address_of = getattr(lab, "address_of", None)
        if address_of is not None:
            return str(address_of(host))
        return lab.hosts[host].address

    def build_view(self, lab: Lab, *, acting: bool) -> PanelView:
        down = self.host in lab.down
        conns: list[Snapshot] = [] if down else list(lab.connections(self.host))
        listener = next((c for c in conns if c.state is State.LISTEN), None)
        sock, current = (None, None) if down else self._current(lab)
        by_id = {c.id: c for c in conns}
        selected: Snapshot | None = None
        if self.pinned is not None and self.pinned in by_id:
            selected = by_id[self.pinned]
        elif current is not None:
            self.last_current = current.id
            selected = by_id.get(current.id, current)
        elif self.last_current is not None and self.last_current in by_id:
            selected = by_id[self.last_current]
        elif listener is not None:
            selected = listener
        else:
            others = [c for c in conns if c.state is not State.LISTEN]
            selected = others[-1] if others else None
        if self.pinned is not None and self.pinned not in by_id:
            self.pinned = None
        badge = None if down else (selected.state if selected is not None else State.CLOSED)
        opts_sock = (
            sock if sock is not None else (lab.apps[self.host].listener if self.host in lab.apps else None)
        )
        return PanelView(
            host=self.host,
            address=self.address_of(lab, self.host),
            down=down,
            acting=acting,
            # Countdowns are the only thing that moves with the clock alone; without timers, time passing
            # must not cause a repaint.
            now=lab.now if any(c.timers for c in conns) or (selected is not None and selected.timers) else 0,
            conns=conns,
            selected=selected,
            badge=badge,
            listener=listener,
            opts=None if down else read_sockopts(opts_sock),
            error=getattr(selected, "error", 0) if selected is not None else 0,
        )

    def move_selection(self, lab: Lab, delta: int) -> Snapshot | None:
        """Select the previous/next connection in the table; the app's controls then act on it if it is
        one of the host's own sockets (a half-open request or an orphan has no socket to act on)."""
        view = self.view or self.build_view(lab, acting=False)
        conns = view.conns
        if not conns:
            return None
        ids = [c.id for c in conns]
        current = view.selected.id if view.selected is not None and view.selected.id in ids else None
        index = ids.index(current) if current is not None else -1
        index = max(0, min(len(ids) - 1, index + delta)) if index >= 0 else 0
        chosen = conns[index]
        self.pinned = chosen.id
        app = lab.apps.get(self.host)
        if app is not None:
            for i, sock in enumerate(app.conns):
                if sock.conn is not None and not sock.closed and sock.conn.snapshot().id == chosen.id:
                    app.selected = i
        self._last_view = None
        return chosen

    # --------------------------------------------------------------------------------------------------
    # painting

    def refresh_from(self, lab: Lab, *, acting: bool) -> None:
        view = self.build_view(lab, acting=acting)
        self.view = view
        if view == self._last_view:
            return
        self._last_view = view
        self.set_class(acting, "acting")
        self.border_subtitle = "◆ controls act here" if acting else ""
        self.border_title = f"{self.host} {view.address}"
        badge = self.query_one(".badge", Static)
        flow = self.query_one(".flow", Static)
        table = self.query_one(".table", Static)
        details = self.query_one(".details", Static)
        for cls in list(badge.classes):
            if cls.startswith("state-"):
                badge.remove_class(cls)
        badge.set_class(view.down, "down")
        if view.down:
            badge.update("DOWN")
            flow.update("crashed: sends nothing, hears nothing (R reboots it)")
            table.display = False
            set_text(details, Text(""))
            return
        state = view.badge or State.CLOSED
        badge.add_class(state_class(state))
        badge.update(str(state))
        sel = view.selected
        if sel is None:
            flow.update("no sockets")
        elif sel.state is State.LISTEN:
            flow.update(f"listening on {sel.local[0]}:{sel.local[1]}")
        else:
            flow.update(f"{sel.local[0]}:{sel.local[1]} → {peer_label(sel.remote[0])}:{sel.remote[1]}")
        show_table = len([c for c in view.conns if c.state is not State.LISTEN]) > 1
        table.display = show_table
        if show_table:
            set_text(table, self._fmt_table(view))
        text = self._fmt_details(view)
        text.rstrip()
        set_text(details, text)

    def _fmt_table(self, view: PanelView) -> Text:
        """`ss -tan -o` in a panel: column widths fit the rows shown (and Local goes when every row has the
        same local port, as in a SYN flood), so the timer countdown column keeps its room."""
        conns = view.conns
        selected_id = view.selected.id if view.selected is not None else None
        ids = [c.id for c in conns]
        index = ids.index(selected_id) if selected_id in ids else 0
        start = max(0, min(index - TABLE_ROWS // 2, len(conns) - TABLE_ROWS))
        shown = conns[start : start + TABLE_ROWS]
        rows: list[tuple[str, int, int, str, str, str, bool]] = []
        for snap in shown:
            if snap.state is State.LISTEN:
                recvq, sendq, peer = snap.accept_queue, snap.backlog or 0, "*:*"
            else:
                recvq, sendq = snap.recv_buffered, snap.send_buffered
                peer = f"{snap.remote[0]}:{snap.remote[1]}"
            timer = ""
            if snap.timers:
                name, deadline = min(snap.timers.items(), key=lambda kv: kv[1])
                left = format_duration(max(0, deadline - view.now)).replace(" ", "")
                timer = f"{SHORT_TIMER.get(name, name)} {left}"
            state = SS_NAMES.get(snap.state, str(snap.state))
            rows.append((state, recvq, sendq, f":{snap.local[1]}", peer, timer, snap.id == selected_id))
        state_w = max([5, *(len(r[0]) for r in rows)])
        peer_w = max([4, *(len(r[4]) for r in rows)])
        with_local = len({snap.local[1] for snap in conns}) > 1
        out = Text(no_wrap=True, overflow="crop")
        local_head = f"{'Local':<6} " if with_local else ""
        out.append(f"{'State':<{state_w}} Recv-Q Send-Q {local_head}{'Peer':<{peer_w}} Timer\n", style="bold")
        for state, recvq, sendq, local, peer, timer, selected in rows:
            local_cell = f"{local:<6} " if with_local else ""
            line = f"{state:<{state_w}} {recvq:>6} {sendq:>6} {local_cell}{peer:<{peer_w}} {timer}"
            out.append(line + "\n", style="reverse" if selected else "")
        rest = len(conns) - len(shown)
        counts: dict[str, int] = {}
        for snap in conns:
            key = SS_NAMES.get(snap.state, str(snap.state))
            counts[key] = counts.get(key, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in counts.items())
        more = f"{rest} more · " if rest > 0 else ""
        out.append(f"{more}{summary} · [ ] choose", style="dim")
        return out

    def _fmt_details(self, view: PanelView) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        snap = view.selected
        if view.listener is not None:
            lst = view.listener
            out.append("listen ", style="bold")
            out.append(f":{lst.local[1]} · backlog {lst.backlog} · SYN-Q {lst.syn_queue} · ")
            out.append(f"accept-Q {lst.accept_queue}\n")
        if snap is None:
            out.append("No socket. l: listen · o: connect · c/s: pick the host", style="dim")
            return out
        if snap.state is State.LISTEN:
            out.append("Waiting for SYNs; accepted connections appear here.\n", style="dim")
            self._fmt_opts(out, view)
            return out
        if not hasattr(snap, "iss"):
            self._fmt_kernel(out, snap, view.now)
            return out
        if snap.is_request:
            out.append("half-open request in the SYN queue (no socket yet)\n", style="dim")
        # Timers first: the countdowns are what moves, and they must stay visible when the panel is short.
        self._fmt_timers(out, snap, view.now)
        if view.error:
            out.append(f"error {errno.errorcode.get(view.error, str(view.error))}\n", style="bold red")
        self._fmt_variables(out, snap)
        self._fmt_options(out, snap)
        self._fmt_congestion(out, snap)
        self._fmt_buffers(out, snap)
        self._fmt_opts(out, view)
        return out

    def _fmt_kernel(self, out: Text, s: Snapshot, now: int) -> None:
        """A Linux socket as inet_diag describes it (what `ss -ti` shows): no sequence variables."""
        out.append(f"Linux socket ({getattr(s, 'congestion', '') or 'kernel'}, ")
        out.append(f"ca_state {getattr(s, 'ca_state', '?')})\n", style="dim")
        self._fmt_timers(out, s, now)
        self._fmt_options(out, s)
        self._fmt_congestion(out, s)
        out.append(
            f"Recv-Q {s.recv_buffered} · Send-Q {s.send_buffered} · unacked {getattr(s, 'unacked', 0)}"
        )
        out.append(f" · lost {getattr(s, 'lost', 0)} · retrans {getattr(s, 'retrans', 0)}\n")

    @staticmethod
    def _fmt_pair(out: Text, label: str, value: int, base: int | None) -> None:
        """`SND.NXT      19  1585227365`: relative (to ISS/IRS, as Wireshark counts), then absolute, dim."""
        out.append(f"{label:<8}", style="bold")
        if base is None:
            out.append(f"{'—':>7}{'':11}")
            return
        out.append(f"{(value - base) & MASK:>7}")
        out.append(f" {value:>10}", style="dim")

    @staticmethod
    def _fmt_plain(out: Text, label: str, value: str) -> None:
        out.append(f"{label:<8}", style="bold")
        out.append(f"{value:>7}{'':11}")

    def _fmt_variables(self, out: Text, s: ConnectionSnapshot) -> None:
        """RFC 9293 §3.3.1's variables, send side left (relative to ISS), receive side right (to IRS)."""
        known_irs = s.state not in (State.SYN_SENT, State.CLOSED) or s.irs != 0
        irs = s.irs if known_irs else None
        self._fmt_pair(out, "ISS", s.iss, s.iss)
        out.append("  ")
        self._fmt_pair(out, "IRS", s.irs, irs)
        out.append("\n")
        self._fmt_pair(out, "SND.UNA", s.snd_una, s.iss)
        out.append("  ")
        self._fmt_pair(out, "RCV.NXT", s.rcv_nxt, irs)
        out.append("\n")
        self._fmt_pair(out, "SND.NXT", s.snd_nxt, s.iss)
        out.append("  ")
        self._fmt_plain(out, "RCV.WND", str(s.rcv_wnd))
        out.append("\n")
        self._fmt_plain(out, "SND.WND", str(s.snd_wnd))
        out.append("  ")
        if s.unsent:
            self._fmt_plain(out, "unsent", str(s.unsent))
        out.append("\n")

    @staticmethod
    def _fmt_options(out: Text, s: Snapshot) -> None:
        """Negotiated options: MSS (ours to send / peer's / our advertised), wscale send/recv, SACK, TS."""
        mss = f"MSS {s.mss or '—'}"
        peer_mss = getattr(s, "peer_mss", 0)  # a kernel peer's snapshot has no peer MSS
        if peer_mss or s.advmss:
            mss += f" peer {peer_mss or '—'} adv {s.advmss or '—'}"
        if s.snd_wscale is not None or s.rcv_wscale is not None:
            ws = f"wscale {s.snd_wscale}/{s.rcv_wscale}"
        else:
            ws = "wscale off"
        out.append(f"{mss} · {ws} · SACK {'✓' if s.sack else '✗'} TS {'✓' if s.timestamps else '✗'}\n")

    @staticmethod
    def _fmt_congestion(out: Text, s: Snapshot) -> None:
        ssthresh = "∞" if s.ssthresh is None else str(s.ssthresh)
        out.append(f"cwnd {s.cwnd} · ssthresh {ssthresh} · flight {s.flight}")
        if s.total_retrans:
            out.append(f" · retransmits {s.total_retrans}", style="bold")
        out.append("\n")
        srtt = format_duration(s.srtt) if s.srtt is not None else "—"
        rttvar = format_duration(s.rttvar) if s.rttvar is not None else "—"
        out.append(f"SRTT {srtt} · RTTVAR {rttvar} · RTO {format_duration(s.rto)}")
        if s.backoff:
            out.append(f" (backoff ×{1 << s.backoff})", style="bold")
        out.append("\n")

    @staticmethod
    def _fmt_buffers(out: Text, s: ConnectionSnapshot) -> None:
        out.append("send ")
        out.append(bar(s.send_buffered, s.send_buffer, 10), style="bold")
        out.append(f" {human_bytes(s.send_buffered)}/{human_bytes(s.send_buffer)}")
        out.append("  recv ")
        out.append(bar(s.recv_buffered + s.recv_ooo, s.recv_buffer, 10), style="bold")
        out.append(f" {human_bytes(s.recv_buffered)}/{human_bytes(s.recv_buffer)}")
        if s.recv_ooo:
            out.append(f" +{s.recv_ooo} ooo", style="dim")
        out.append("\n")

    @staticmethod
    def _fmt_timers(out: Text, s: Snapshot, now: int) -> None:
        out.append("timers ", style="bold")
        if not s.timers:
            out.append("none\n", style="dim")
            return
        names = sorted(s.timers, key=lambda n: (TIMER_ORDER.index(n) if n in TIMER_ORDER else 99, n))
        parts = [f"{TIMER_LABEL.get(n, n)} {format_duration(max(0, s.timers[n] - now))}" for n in names]
        out.append(" · ".join(parts) + "\n")

    @staticmethod
    def _fmt_opts(out: Text, view: PanelView) -> None:
        o = view.opts
        if o is None:
            return
        ka = f"keepalive {o.keepidle}/{o.keepintvl}/{o.keepcnt}" if o.keepalive else "keepalive off"
        if view.selected is not None and view.selected.probes_out:
            ka += f" ({view.selected.probes_out} probes out)"
        linger = f"linger {o.linger_secs} s" if o.linger_on else "linger off"
        out.append(f"NODELAY {'on' if o.nodelay else 'off'} · {ka} · {linger}", style="dim")
