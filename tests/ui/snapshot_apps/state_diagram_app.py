"""A bare app around StateDiagram for snapshot tests: each host's path through the drop story."""

from __future__ import annotations

from textual.app import App, ComposeResult

from stack import State, StateChanged
from tcpplay.lab import HostEvent, LabEvent
from tcpplay.ui.state_diagram import StateDiagram

from .story import drop_story


class StateDiagramApp(App[None]):
    """The diagram after the story: client in TIME_WAIT, server CLOSED (via LAST_ACK), both paths drawn."""

    def compose(self) -> ComposeResult:
        yield StateDiagram(id="diagram")

    def on_mount(self) -> None:
        diagram = self.query_one(StateDiagram)
        diagram.set_state("client", State.CLOSED)

        def observe(event: LabEvent) -> None:
            if isinstance(event, HostEvent) and isinstance(event.event, StateChanged):
                diagram.record_transition(event.host, event.event.old, event.event.new)

        drop_story(observe, lambda _now: diagram.set_state("server", State.LISTEN))


if __name__ == "__main__":
    StateDiagramApp().run()
