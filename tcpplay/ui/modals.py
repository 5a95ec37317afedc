"""The dialogs behind the controls that need more than a key: send data, drop next, SO_LINGER, keepalive,
settings, link impairments, SYN flood, pcap export, log filter, speed, connect/listen on a port.

Every dialog follows one rule: parse and check everything the user typed first, then make one change
through the lab. Any problem (a number that is not a number, a LabError from the lab) is shown inline,
under the form, and nothing changes; the dialog stays open so the user can fix the value. That is what a
person expects from a form, and it is the only way "invalid input changes nothing" can hold when one
dialog drives several socket options.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Select, Static, Switch

from stack.settings import Settings
from stack.socket import MAX_TCP_KEEPCNT, MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL

from ..clock import MAX_SPEED, MIN_SPEED
from ..lab import DEFAULT_PORT, Lab, LabError
from ..links.memory import DROP_KINDS
from .endpoint import read_sockopts
from .logmodel import LogFilter, parse_flag_letters

if TYPE_CHECKING:
    from .app import TcpPlayApp

MAX_SEND = 64 * 1024 * 1024


class FormError(ValueError):
    """A value the user typed that cannot be used; the message names the field."""


def parse_int(text: str, field: str, low: int, high: int) -> int:
    text = text.strip().replace("_", "")
    try:
        value = int(text)
    except ValueError:
        raise FormError(f"{field}: {text!r} is not a whole number") from None
    if not low <= value <= high:
        raise FormError(f"{field} must be between {low} and {high}, got {value}")
    return value


def parse_float(text: str, field: str, low: float, high: float) -> float:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        raise FormError(f"{field}: {text!r} is not a number") from None
    if not low <= value <= high:
        raise FormError(f"{field} must be between {low:g} and {high:g}, got {value:g}")
    return value


def unescape(text: str) -> bytes:
    r"""Text as typed, with \r \n \t \\ turned into the bytes they name (`GET / HTTP/1.0\r\n\r\n`)."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "rnt\\":
            out.append({"r": "\r", "n": "\n", "t": "\t", "\\": "\\"}[text[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out).encode("utf-8")


def generated(n: int) -> bytes:
    """N bytes of a readable repeating pattern, so a hex dump of any segment shows where it sits."""
    pattern = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-\n"
    return (pattern * (n // len(pattern) + 1))[:n]


class FormModal(ModalScreen[bool]):
    """A dialog with a title, fields, an inline error line and Apply/Cancel. Enter in a field applies."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    FormModal { align: center middle; background: $background; }
    FormModal #dialog {
        width: 72;
        max-width: 95%;
        height: auto;
        max-height: 95%;
        border: thick $primary;
        background: $panel;
        padding: 0 1;
    }
    FormModal .title { text-style: bold; color: $text; width: 1fr; padding-bottom: 1; }
    FormModal .help { color: $text-muted; padding-bottom: 1; }
    FormModal .row { height: auto; margin-bottom: 1; }
    FormModal .row > Label { width: 22; padding-top: 0; }
    FormModal .row > Input { width: 1fr; }
    FormModal .row > Select { width: 1fr; }
    FormModal #error { color: $error; text-style: bold; height: auto; }
    FormModal #error.-empty { display: none; }
    FormModal .buttons { height: auto; align-horizontal: right; padding-top: 1; }
    FormModal .buttons Button { margin-left: 1; }
    FormModal #form { height: auto; max-height: 24; }
    """

    TITLE_TEXT = ""
    HELP_TEXT = ""

    def __init__(self) -> None:
        super().__init__()

    @property
    def tcp(self) -> TcpPlayApp:
        return self.app  # type: ignore[return-value]

    @property
    def lab(self) -> Lab:
        return self.tcp.lab

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text(), classes="title")
            if self.HELP_TEXT:
                yield Static(self.HELP_TEXT, classes="help")
            with VerticalScroll(id="form"):
                yield from self.form()
            yield Static("", id="error", classes="-empty")
            with Horizontal(classes="buttons"):
                yield Button("Apply", variant="primary", id="apply")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        still = getattr(self.app, "still", False)
        for widget in self.query(Input):
            widget.cursor_blink = not still
        inputs = list(self.query(Input))
        if inputs:
            inputs[0].focus()

    def title_text(self) -> str:
        return self.TITLE_TEXT

    def form(self) -> ComposeResult:
        yield from ()

    def apply(self) -> str | None:
        """Make the change; return a short confirmation (or None). Raise FormError/LabError when invalid.

        Every form overrides this; the base form has no fields and so changes nothing."""
        return None

    @staticmethod
    def row(label: str, widget: Input | Select[str] | Switch) -> Horizontal:
        return Horizontal(Label(label), widget, classes="row")

    def value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value

    def choice(self, widget_id: str) -> str:
        value = self.query_one(f"#{widget_id}", Select).value
        return str(value) if value is not Select.NULL else ""

    def switch(self, widget_id: str) -> bool:
        return self.query_one(f"#{widget_id}", Switch).value

    def show_error(self, message: str) -> None:
        error = self.query_one("#error", Static)
        error.update(f"✗ {message}")
        error.remove_class("-empty")

    @property
    def error_text(self) -> str:
        """The inline error shown (empty when there is none); tests read it."""
        error = self.query_one("#error", Static)
        return "" if error.has_class("-empty") else str(error.render())

    def submit(self) -> None:
        try:
            message = self.apply()
        except (FormError, LabError, ValueError, OSError) as exc:
            self.show_error(str(exc))
            self.tcp.after_action()  # the lab may have logged the failed call; show it
            return
        self.dismiss(True)
        self.tcp.after_action()
        if message:
            self.tcp.notify(message, timeout=3)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    @on(Button.Pressed, "#apply")
    def _apply(self) -> None:
        self.submit()

    @on(Button.Pressed, "#cancel")
    def _cancel_button(self) -> None:
        self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)


def host_options(lab: Lab, *, both: bool = False, any_label: str | None = None) -> list[tuple[str, str]]:
    names = list(lab.hosts)
    kernel = getattr(lab, "kernel", None)
    if kernel is not None and kernel.name not in names:
        names.append(kernel.name)
    options = [(name, name) for name in names]
    if both:
        options.append(("both hosts", "both"))
    if any_label:
        options.insert(0, (any_label, "any"))
    return options


class SendModal(FormModal):
    HELP_TEXT = (
        "Type text (\\r \\n \\t work), or a byte count to send generated data. What does not fit the send "
        "buffer is written as space frees up, like a program looping on send()."
    )

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    def title_text(self) -> str:
        return f"send() on {self.host}"

    def form(self) -> ComposeResult:
        yield self.row("Text", Input(placeholder="GET / HTTP/1.0\\r\\n\\r\\n", id="text", compact=True))
        yield self.row("or N bytes", Input(placeholder="e.g. 100000", id="count", compact=True))

    def apply(self) -> str | None:
        text, count = self.value("text"), self.value("count").strip()
        if count:
            data = generated(parse_int(count, "N bytes", 1, MAX_SEND))
        elif text:
            data = unescape(text)
        else:
            raise FormError("type some text, or a number of bytes to generate")
        sent = self.tcp.send_data(self.host, data)
        if sent < len(data):
            return (
                f"{self.host}: {sent} of {len(data)} bytes in the send buffer, the rest follows as it drains"
            )
        return None


class DropModal(FormModal):
    TITLE_TEXT = "Drop the next segment"
    HELP_TEXT = "The link silently loses the next segment(s) of this kind sent in this direction."

    def form(self) -> ComposeResult:
        yield self.row(
            "Sent by",
            Select(
                host_options(self.lab, any_label="either host"),
                value="any",
                allow_blank=False,
                compact=True,
                id="direction",
            ),
        )
        kinds = [(kind, kind) for kind in DROP_KINDS]
        yield self.row("Kind", Select(kinds, value="any", allow_blank=False, compact=True, id="kind"))
        yield self.row("How many", Input("1", id="count", compact=True))

    def apply(self) -> str | None:
        count = parse_int(self.value("count"), "How many", 1, 1000)
        self.lab.drop_next(self.choice("direction"), self.choice("kind"), count)
        return None


class LingerModal(FormModal):
    HELP_TEXT = (
        "SO_LINGER on with 0 s: close() sends a RST and forgets the connection (abortive close). "
        "On with N s: close() waits up to N s for the data to be acknowledged."
    )

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    def title_text(self) -> str:
        return f"SO_LINGER on {self.host}"

    def form(self) -> ComposeResult:
        opts = read_sockopts(self.tcp.socket_of(self.host))
        on_now = opts.linger_on if opts else False
        secs = opts.linger_secs if opts else 0
        yield self.row("Linger", Switch(value=on_now, id="on"))
        yield self.row("Seconds", Input(str(secs), id="secs", compact=True))

    def apply(self) -> str | None:
        secs = parse_int(self.value("secs"), "Seconds", 0, 65535)
        on = self.switch("on")
        self.lab.setsockopt(self.host, "SO_LINGER", (int(on), secs))
        return None


class KeepaliveModal(FormModal):
    HELP_TEXT = (
        "SO_KEEPALIVE probes an idle connection: the first probe after idle seconds, then every interval "
        "seconds; after count unanswered probes the connection is dropped (ETIMEDOUT)."
    )

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    def title_text(self) -> str:
        return f"Keepalive on {self.host}"

    def form(self) -> ComposeResult:
        opts = read_sockopts(self.tcp.socket_of(self.host))
        yield self.row("Keepalive", Switch(value=opts.keepalive if opts else False, id="on"))
        yield self.row(
            "Idle (TCP_KEEPIDLE) s", Input(str(opts.keepidle if opts else 7200), id="idle", compact=True)
        )
        yield self.row(
            "Interval (KEEPINTVL) s", Input(str(opts.keepintvl if opts else 75), id="intvl", compact=True)
        )
        yield self.row("Count (TCP_KEEPCNT)", Input(str(opts.keepcnt if opts else 9), id="cnt", compact=True))

    def apply(self) -> str | None:
        idle = parse_int(self.value("idle"), "Idle", 1, MAX_TCP_KEEPIDLE)
        intvl = parse_int(self.value("intvl"), "Interval", 1, MAX_TCP_KEEPINTVL)
        cnt = parse_int(self.value("cnt"), "Count", 1, MAX_TCP_KEEPCNT)
        on = self.switch("on")
        if self.tcp.socket_of(self.host) is None and getattr(self.lab, "kernel", None) is None:
            raise LabError(f"{self.host} has no socket yet; connect or listen first")
        self.lab.setsockopt(self.host, "TCP_KEEPIDLE", idle)
        self.lab.setsockopt(self.host, "TCP_KEEPINTVL", intvl)
        self.lab.setsockopt(self.host, "TCP_KEEPCNT", cnt)
        self.lab.setsockopt(self.host, "SO_KEEPALIVE", int(on))
        return None


class SettingsModal(FormModal):
    TITLE_TEXT = "Stack settings (sysctl)"
    HELP_TEXT = "Any setting by its Linux sysctl name; tuples as numbers separated by spaces."

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    def form(self) -> ComposeResult:
        names = Settings().names()
        yield self.row(
            "Host",
            Select(
                host_options(self.lab, both=True), value=self.host, allow_blank=False, compact=True, id="host"
            ),
        )
        yield self.row(
            "Name",
            Input(placeholder="tcp_fin_timeout", id="name", suggester=SuggestFromList(names), compact=True),
        )
        yield self.row("Value", Input(placeholder="30", id="value", compact=True))
        yield Static("", id="current", classes="help")

    @on(Input.Changed, "#name")
    def _name_changed(self, event: Input.Changed) -> None:
        self.query_one("#current", Static).update(self.describe(event.value.strip()))

    def describe(self, name: str) -> str:
        defaults = Settings()
        if name not in defaults.names():
            return ""
        host = self.choice("host")
        target = host if host in self.lab.hosts else next(iter(self.lab.hosts))
        current = getattr(self.lab.hosts[target].settings, name, None)
        return f"{name}: now {_show(current)} on {target}, Linux default {_show(getattr(defaults, name))}"

    def apply(self) -> str | None:
        name = self.value("name").strip()
        raw = self.value("value").strip()
        if not name:
            raise FormError("type a setting name (start typing: names are suggested)")
        if not raw:
            raise FormError(f"type a value for {name}")
        host = self.choice("host")
        # Check on a scratch Settings first, so "both" cannot change one host and then fail on the other.
        try:
            value = Settings().checked(name, raw)
        except ValueError as exc:
            raise LabError(str(exc)) from None
        self.lab.set_setting(host, name, value)
        return f"{name} = {_show(value)} on {host}"


def _show(value: object) -> str:
    return " ".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


class ImpairModal(FormModal):
    TITLE_TEXT = "Link impairments"
    HELP_TEXT = "Per sending direction. Probabilities in %, times in ms, rate in bytes/s (0 = unlimited)."

    FIELDS: ClassVar[list[tuple[str, str, str, float]]] = [
        # (id, label, unit kind, max)
        ("loss", "Loss %", "pct", 100),
        ("delay", "Delay ms", "ms", 3_600_000),
        ("jitter", "Jitter ms", "ms", 3_600_000),
        ("reorder", "Reorder %", "pct", 100),
        ("duplicate", "Duplicate %", "pct", 100),
        ("corrupt", "Corrupt %", "pct", 100),
        ("rate", "Rate B/s", "rate", 10_000_000_000),
    ]

    def form(self) -> ComposeResult:
        yield self.row(
            "Sent by",
            Select(
                host_options(self.lab, any_label="both directions"),
                value="any",
                allow_blank=False,
                compact=True,
                id="direction",
            ),
        )
        current = self._current("any")
        for key, label, _kind, _high in self.FIELDS:
            yield self.row(label, Input(current[key], id=key, compact=True))

    def _current(self, direction: str) -> dict[str, str]:
        link = self.lab.link
        names = list(getattr(link, "impairments", {}))
        source = direction if direction != "any" else (names[0] if names else "")
        imp = link.impairment(source) if source and hasattr(link, "impairment") else None
        out: dict[str, str] = {}
        for key, _label, kind, _high in self.FIELDS:
            raw = getattr(imp, key, 0) if imp is not None else 0
            if kind == "pct":
                out[key] = f"{raw * 100:g}"
            elif kind == "ms":
                out[key] = f"{raw * 1000:g}"
            else:
                out[key] = str(int(raw))
        return out

    @on(Select.Changed, "#direction")
    def _direction_changed(self, event: Select.Changed) -> None:
        current = self._current(str(event.value))
        for key, *_ in self.FIELDS:
            self.query_one(f"#{key}", Input).value = current[key]

    def apply(self) -> str | None:
        values: dict[str, float] = {}
        for key, label, kind, high in self.FIELDS:
            number = parse_float(self.value(key), label, 0, high)
            if kind == "pct":
                values[key] = number / 100
            elif kind == "ms":
                values[key] = number / 1000
            else:
                values[key] = int(number)
        self.lab.impair(self.choice("direction"), **values)
        return None


class SynFloodModal(FormModal):
    TITLE_TEXT = "SYN flood"
    HELP_TEXT = "SYNs from spoofed addresses (198.19.x.y) that never answer the SYN-ACK: the SYN queue fills."

    def form(self) -> ComposeResult:
        yield self.row(
            "Target",
            Select(host_options(self.lab), value="server", allow_blank=False, compact=True, id="target"),
        )
        yield self.row("SYNs", Input("100", id="count", compact=True))
        yield self.row("Port", Input(str(DEFAULT_PORT), id="port", compact=True))

    def apply(self) -> str | None:
        count = parse_int(self.value("count"), "SYNs", 1, 100_000)
        port = parse_int(self.value("port"), "Port", 1, 65535)
        self.lab.syn_flood(self.choice("target"), count, port)
        return None


class ExportModal(FormModal):
    TITLE_TEXT = "Save the capture as pcap"
    HELP_TEXT = "Opens in Wireshark or `tcpdump -r`. Times are stack time (seconds since the lab started)."

    def form(self) -> ComposeResult:
        yield self.row("File name", Input("tcpplay.pcap", id="path", compact=True))

    def apply(self) -> str | None:
        path = self.value("path").strip()
        if not path:
            raise FormError("type a file name")
        n = self.lab.export_pcap(path)
        return f"saved {n} packets to {path}"


class PortModal(FormModal):
    """connect() to / listen() on a chosen port (the keys o and l use 8080 directly)."""

    def __init__(self, host: str, mode: str) -> None:
        super().__init__()
        self.host = host
        self.mode = mode  # "connect" or "listen"

    def title_text(self) -> str:
        return f"{self.mode}() on {self.host}"

    def form(self) -> ComposeResult:
        yield self.row("Port", Input(str(DEFAULT_PORT), id="port", compact=True))

    def apply(self) -> str | None:
        port = parse_int(self.value("port"), "Port", 1, 65535)
        if self.mode == "listen":
            self.lab.listen(self.host, port)
        else:
            self.lab.connect(self.host, self.lab.other(self.host), port)
        return None


class SpeedModal(FormModal):
    TITLE_TEXT = "Clock speed"
    HELP_TEXT = f"Stack seconds per wall-clock second, {MIN_SPEED:g} to {MAX_SPEED:g}."

    def form(self) -> ComposeResult:
        yield self.row(
            "Speed ×", Input(f"{getattr(self.lab.clock, 'speed', 1.0):g}", id="speed", compact=True)
        )

    def apply(self) -> str | None:
        speed = parse_float(self.value("speed"), "Speed", MIN_SPEED, MAX_SPEED)
        self.tcp.set_speed(speed)
        return None


class FilterModal(FormModal):
    TITLE_TEXT = "Filter the packet log"
    HELP_TEXT = (
        "Flags: tcpdump letters, any of them matches (S F R P . U E W). Empty fields match everything."
    )

    def form(self) -> ComposeResult:
        flt = self.tcp.model.filter
        yield self.row("Flags", Input(flt.flags, placeholder="e.g. SFR", id="flags", compact=True))
        yield self.row(
            "Sent by",
            Select(
                host_options(self.lab, any_label="either host"),
                value=flt.direction,
                allow_blank=False,
                compact=True,
                id="direction",
            ),
        )
        yield self.row("Text", Input(flt.text, placeholder="e.g. retransmission", id="text", compact=True))
        yield self.row("Show events", Switch(value=flt.events, id="events"))

    def apply(self) -> str | None:
        flags = self.value("flags").strip()
        try:
            parse_flag_letters(flags)
        except ValueError as exc:
            raise FormError(f"Flags: {exc}") from None
        flt = LogFilter(
            flags=flags,
            direction=self.choice("direction"),
            text=self.value("text").strip(),
            events=self.switch("events"),
        )
        self.tcp.set_filter(flt)
        return None


__all__ = [
    "DropModal",
    "ExportModal",
    "FilterModal",
    "FormError",
    "FormModal",
    "ImpairModal",
    "KeepaliveModal",
    "LingerModal",
    "PortModal",
    "SendModal",
    "SettingsModal",
    "SpeedModal",
    "SynFloodModal",
    "generated",
    "unescape",
]
