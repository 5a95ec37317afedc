"""The help screen (`?` / F1): every key, grouped, generated from the command table so it is never stale."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from .commands import COMMANDS, DEMO

INTRO = (
    "Two tcpplay stacks talk over an in-memory wire. Keys act on the host whose panel has the accent "
    "border (c / s to switch). Every control is also in the command palette (ctrl+p)."
)


def help_table(*, demo: bool) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="bold", no_wrap=True, min_width=12)
    table.add_column()
    table.add_column(style="dim")
    group = None
    for cmd in COMMANDS:
        if cmd.group == DEMO and not demo:
            continue
        if cmd.group != group:
            group = cmd.group
            table.add_row("", "", "")
            table.add_row("", Text(group, style="bold underline"), "")
        table.add_row(cmd.shown_keys or "palette", cmd.title, cmd.help)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", show=True),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen #help-box {
        width: 110;
        max-width: 98%;
        height: 90%;
        border: thick $primary;
        background: $panel;
        padding: 0 1;
    }
    HelpScreen #help-title { text-style: bold; padding-bottom: 1; }
    """

    def __init__(self, *, demo: bool = False) -> None:
        super().__init__()
        self.demo = demo

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box") as box:
            box.border_title = "tcpplay keys (Esc closes)"
            yield Static(INTRO, id="help-title")
            yield Static(help_table(demo=self.demo))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
