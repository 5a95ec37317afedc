"""A bare app around LadderView for snapshot tests: the ladder, fed by the drop story, and nothing else."""

from __future__ import annotations

from textual.app import App, ComposeResult

from stack import State
from tcpplay.ui.ladder import LadderView

from .story import drop_story


class LadderApp(App[None]):
    """The ladder after the drop story; optionally one segment highlighted."""

    def __init__(self, select: int | None = None) -> None:
        super().__init__()
        self.select_number = select

    def compose(self) -> ComposeResult:
        yield LadderView("client", "server", id="ladder")

    def on_mount(self) -> None:
        ladder = self.query_one(LadderView)
        drop_story(
            ladder.add_lab_event,
            lambda now: ladder.add_state_change(now, "server", State.CLOSED, State.LISTEN),
        )
        if self.select_number is not None:
            ladder.select(self.select_number)


if __name__ == "__main__":
    LadderApp().run()
