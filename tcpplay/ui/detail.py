"""Packet detail: the selected segment dissected by scapy as a tree, and its bytes as a hex dump in which the
chosen field's bytes light up (Wireshark's packet details and packet bytes panes).

The tree's structure (layers and fields, in order) comes from scapy, so what a person sees is what they
would get from `IP(raw).show()` in their own scripts; the byte offsets and the human-readable values come
from `tcpplay.format.header_fields`, which knows exactly where each field sits (scapy does not say). scapy is
slow to import (~0.4 s), so it is imported on first use, never at start-up.
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from ..capture import DELIVERED, CaptureRecord
from ..format import Field, describe_time, header_fields, hexdump_rows
from .logmodel import peer_label
from .themes import theme_colour

Span = tuple[int, int]

# scapy field name → tcpplay.format field name, per layer.
_IP_FIELDS = {
    "version": "version",
    "ihl": "header length",
    "tos": "DSCP/ECN",
    "len": "total length",
    "id": "identification",
    "flags": "flags",
    "frag": "fragment offset",
    "ttl": "TTL",
    "proto": "protocol",
    "chksum": "header checksum",
    "src": "source address",
    "dst": "destination address",
    "options": "options",
}
_TCP_FIELDS = {
    "sport": "source port",
    "dport": "destination port",
    "seq": "sequence number",
    "ack": "acknowledgment number",
    "dataofs": "data offset",
    "reserved": "data offset",
    "flags": "flags",
    "window": "window",
    "chksum": "checksum",
    "urgptr": "urgent pointer",
}
_OPTION_NAMES = {
    "MSS": "MSS",
    "WScale": "window scale",
    "SAckOK": "SACK permitted",
    "Timestamp": "timestamps",
    "SAck": "SACK",
    "NOP": "NOP",
    "EOL": "EOL",
}


def load_scapy_ip() -> Any:
    """scapy's IP class (imported on demand; the app warms this up in a worker thread after first paint)."""
    from scapy.layers.inet import IP

    return IP


class HexView(Static):
    """The packet's bytes, 16 a line, with the highlighted span marked in both the hex and ASCII columns."""

    DEFAULT_CSS = """
    HexView { width: 74; height: auto; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.data = b""
        self.span: Span | None = None

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.show(self.data, self.span))

    def show(self, data: bytes, span: Span | None) -> None:
        lines_before = -1 if not self.data else (len(self.data) + 15) // 16
        self.data = data
        self.span = span
        # A new layout only when the dump's height changes: moving the highlight repaints just this widget.
        self.update(self.render_text(), layout=lines_before != (len(data) + 15) // 16 or not data)

    def render_text(self) -> Text:
        if not self.data:
            return self.legend()
        variables = self.app.theme_variables
        mark = Style(bgcolor=theme_colour(variables, "hex-highlight", "accent", "#665200"), bold=True)
        dim = Style(color=theme_colour(variables, "event-note", "secondary", "#888888"))
        lo, hi = (self.span[0], self.span[0] + self.span[1]) if self.span else (-1, -1)
        out = Text(no_wrap=True)
        for off, chunk in hexdump_rows(self.data):
            out.append(f"{off:04x}  ", style=dim)
            for i in range(16):
                if i == 8:
                    out.append(" ")
                if i >= len(chunk):
                    out.append("   ")
                    continue
                pos = off + i
                inside = lo <= pos < hi
                out.append(f"{chunk[i]:02x}", style=mark if inside else "")
                joined = inside and lo <= pos + 1 < hi and i not in (7, 15)
                out.append(" ", style=mark if joined else "")
            out.append(" ")
            for i, byte in enumerate(chunk):
                ch = chr(byte) if 0x20 <= byte < 0x7F else "."
                out.append(ch, style=mark if lo <= off + i < hi else dim if ch == "." else "")
            out.append("\n")
        out.rstrip()
        return out

    def legend(self) -> Text:
        """With no segment selected, the pane explains the log's colours and marks rather than stay blank."""
        variables = self.app.theme_variables

        def style(*chain: str, bold: bool = True) -> Style:
            return Style(color=theme_colour(variables, *chain), bold=bold)

        out = Text(no_wrap=True)
        out.append("How to read the log\n", style="bold")
        out.append("flags   ")
        for letter, name, var in (
            ("S", "SYN", "flag-syn"),
            (".", "ACK", "flag-ack"),
            ("F", "FIN", "flag-fin"),
            ("R", "RST", "flag-rst"),
            ("P", "PSH", "flag-psh"),
            ("U", "URG", "flag-urg"),
        ):
            out.append(letter, style=style(var))
            out.append(f" {name}  ")
        out.append("\nfate    ")
        out.append("✗ dropped, lost, corrupted", style=style("fate-bad"))
        out.append("  ")
        out.append("⇉ duplicated  ↯ reordered", style=style("fate-odd"))
        out.append("\nexpert  ")
        out.append("[zero window]", style=style("expert-warn", bold=False))
        out.append(" warn  ")
        out.append("[retransmission]", style=style("expert-note", bold=False))
        out.append(" note  ")
        out.append("[window update]", style=style("expert-chat", bold=False))
        out.append(" chat")
        out.append("\nnumbers relative to each side's ISN (m: absolute), like Wireshark")
        out.append("\n\n↑/↓ select a segment: its fields appear on the left and its")
        out.append("\nbytes here; moving through the fields lights up their bytes.")
        return out


def _field_index(fields: list[Field]) -> dict[tuple[str, str], Field]:
    index: dict[tuple[str, str], Field] = {}
    for f in fields:
        index.setdefault((f.layer, f.name), f)
    return index


class PacketDetail(Horizontal):
    """The tree (left) and the hex dump (right) for one capture record."""

    DEFAULT_CSS = """
    PacketDetail { height: 1fr; }
    PacketDetail Tree { width: 1fr; min-width: 24; background: $surface; }
    PacketDetail #hex-scroll { width: 76; height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.record: CaptureRecord | None = None
        self._flags_node: TreeNode[Span] | None = None

    def compose(self) -> ComposeResult:
        tree: Tree[Span] = Tree("No segment selected", id="detail-tree")
        tree.show_root = True
        tree.guide_depth = 3
        yield tree
        with VerticalScroll(id="hex-scroll"):
            yield HexView(id="hex")

    @property
    def tree_view(self) -> Tree[Span]:
        return self.query_one("#detail-tree", Tree)

    @property
    def hex_view(self) -> HexView:
        return self.query_one("#hex", HexView)

    def clear(self, message: str = "No segment selected") -> None:
        self.record = None
        self._flags_node = None
        self.tree_view.reset(message)
        self.hex_view.show(b"", None)

    def show_record(self, record: CaptureRecord, *, focus_field: str | None = "flags") -> None:
        """Dissect record; the hex dump starts with the TCP flags byte highlighted (or focus_field)."""
        if self.record is record:
            return
        self.record = record
        tree = self.tree_view
        fields = header_fields(record.packet)
        index = _field_index(fields)
        fate = "" if record.fate == DELIVERED else f", {record.fate}"
        tree.reset(
            Text.assemble(
                (f"Segment {record.number}", "bold"),
                f": {len(record.packet)} bytes, {record.src} → {peer_label(record.dst)}"
                f" at {describe_time(record.time)} s{fate}",
            ),
            (0, len(record.packet)),
        )
        self._flags_node = None
        try:
            ip_class = load_scapy_ip()
            pkt = ip_class(record.packet)
        except Exception as exc:  # scapy may choke on a deliberately malformed packet; show our own decode
            self._fallback(tree.root, fields, f"scapy could not dissect this packet: {exc}")
        else:
            self._build(tree.root, pkt, index, fields)
        tree.root.expand()
        focus = self._flags_node if focus_field == "flags" else None
        span = focus.data if focus is not None else None
        self.hex_view.show(record.packet, span)
        if focus is not None:
            self.call_after_refresh(self._move_cursor, focus)

    def _move_cursor(self, node: TreeNode[Span]) -> None:
        tree = self.tree_view
        if node.tree is tree:
            tree.move_cursor(node)

    def _build(
        self, root: TreeNode[Span], pkt: Any, index: dict[tuple[str, str], Field], fields: list[Field]
    ) -> None:
        ip = pkt
        ihl = (ip.ihl or 5) * 4
        ip_node = root.add(
            Text.assemble(("Internet Protocol Version 4", "bold"), f", Src: {ip.src}, Dst: {ip.dst}"),
            (0, ihl),
            expand=False,
        )
        self._layer_fields(ip_node, ip, _IP_FIELDS, "IPv4", index)
        tcp = ip.payload
        if tcp.name != "TCP":
            self._fallback(root, fields, f"not TCP: {tcp.name}")
            return
        doff = (tcp.dataofs or 5) * 4
        payload_len = len(bytes(tcp.payload)) if tcp.payload.name != "NoPayload" else 0
        tcp_node = root.add(
            Text.assemble(
                ("Transmission Control Protocol", "bold"),
                f", Src Port: {tcp.sport}, Dst Port: {tcp.dport}, Seq: {tcp.seq}, Ack: {tcp.ack}, "
                f"Len: {payload_len}",
            ),
            (ihl, doff),
            expand=True,
        )
        self._layer_fields(tcp_node, tcp, _TCP_FIELDS, "TCP", index)
        option_fields = [f for f in fields if f.layer == "TCP option"]
        if option_fields:
            start = option_fields[0].offset
            end = option_fields[-1].offset + option_fields[-1].length
            opt_node = tcp_node.add(f"Options: ({end - start} bytes)", (start, end - start), expand=True)
            scapy_opts = list(tcp.options or [])
            for i, f in enumerate(option_fields):
                scapy_name = scapy_opts[i][0] if i < len(scapy_opts) else ""
                label = Text.assemble((f"{f.name}", "bold"), f": {f.value_text}" if f.value_text else "")
                if scapy_name and _OPTION_NAMES.get(scapy_name, scapy_name) != f.name:
                    label.append(f"  ({scapy_name})", style="dim")
                opt_node.add_leaf(label, (f.offset, f.length))
        payload = index.get(("payload", "payload"))
        if payload is not None:
            data = bytes(tcp.payload)
            preview = data[:24].decode("ascii", "replace")
            preview = "".join(ch if ch.isprintable() else "." for ch in preview)
            more = "…" if len(data) > 24 else ""
            root.add_leaf(
                Text.assemble(("Data", "bold"), f" ({payload.length} bytes): {preview!r}{more}"),
                (payload.offset, payload.length),
            )
        for f in fields:
            if f.name == "error":
                root.add_leaf(Text(f"⚠ {f.layer}: {f.value_text}", style="bold red"), (f.offset, f.length))

    def _layer_fields(
        self,
        node: TreeNode[Span],
        layer: Any,
        names: dict[str, str],
        layer_name: str,
        index: dict[tuple[str, str], Field],
    ) -> None:
        for fdesc in layer.fields_desc:
            name = fdesc.name
            if name == "options":
                continue
            ours = names.get(name)
            field = index.get((layer_name, ours)) if ours else None
            value = layer.getfieldval(name)
            shown = fdesc.i2repr(layer, value)
            label = Text()
            if field is not None:
                text = field.value_text
                if name == "reserved":
                    text = str(value)
                label.append(_title(ours if ours and name != "reserved" else "reserved bits"), style="bold")
                label.append(f": {text}")
                if str(shown) not in text:
                    label.append(f"  ({name}={shown})", style="dim")
                span: Span = (field.offset, field.length)
            else:
                label.append(name, style="bold")
                label.append(f": {shown}")
                span = (0, 0)
            leaf = node.add_leaf(label, span)
            if layer_name == "TCP" and name == "flags":
                self._flags_node = leaf

    @staticmethod
    def _fallback(root: TreeNode[Span], fields: list[Field], why: str) -> None:
        root.add_leaf(Text(why, style="dim"), (0, 0))
        for f in fields:
            root.add_leaf(f"{f.layer} {f.name}: {f.value_text}", (f.offset, f.length))

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Span]) -> None:
        """Moving through the tree lights up that field's bytes in the hex dump."""
        event.stop()
        if self.record is None:
            return
        span = event.node.data
        self.hex_view.show(self.record.packet, span if span and span[1] else None)


def _title(name: str) -> str:
    return name[:1].upper() + name[1:]
