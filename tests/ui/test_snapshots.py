"""Screens that must not change by accident: pytest-textual-snapshot SVGs at 120×40.

Each test builds a seeded lab on a virtual clock, moves it to the moment worth seeing, and photographs the
app. Nothing depends on the wall clock (no interval timer, no cursor blink, no animation), so reruns give the
same bytes. Update on purpose with `pytest tests/ui --snapshot-update` and look at the report.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from tcpplay.lab import Lab
from tcpplay.ui.packet_log import PacketLog

from .conftest import SIZE, established, new_lab, still_app


async def settle(pilot: Pilot[Any]) -> None:
    await pilot.pause()
    await pilot.pause()


def test_start(snap_compare: Any) -> None:
    assert snap_compare(still_app(new_lab()), terminal_size=SIZE)


def test_after_handshake(snap_compare: Any) -> None:
    assert snap_compare(still_app(established()), terminal_size=SIZE)


def test_packet_detail_field_highlighted(snap_compare: Any) -> None:
    """The SYN-ACK selected: its tree open at Flags and byte 0x21 (0x12 = SYN+ACK) lit in the hex dump."""
    app = still_app(established())

    async def select_synack(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app.select_packet(2)
        await settle(pilot)
        app.query_one("#detail-tree").focus()
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=select_synack)


def test_ladder_view(snap_compare: Any) -> None:
    lab = established()
    lab.send("client", b"GET / HTTP/1.0\r\n\r\n")
    lab.advance(0.1)
    assert snap_compare(still_app(lab), terminal_size=SIZE, press=["2"])


def test_state_diagram_view(snap_compare: Any) -> None:
    lab = established()
    lab.close("client")
    lab.advance(0.1)
    assert snap_compare(still_app(lab), terminal_size=SIZE, press=["3"])


def test_dropped_segment_and_retransmission(snap_compare: Any) -> None:
    lab = established()
    lab.drop_next("client", "data")
    lab.send("client", b"hello, are you there?")
    lab.advance(0.6)
    assert snap_compare(still_app(lab), terminal_size=SIZE)


def closed_by_client() -> Lab:
    lab = established()
    lab.close("client")
    lab.advance(0.1)
    lab.close("server")
    lab.advance(0.1)
    return lab


def test_time_wait_countdown(snap_compare: Any) -> None:
    lab = closed_by_client()
    lab.advance(15.0)
    assert snap_compare(still_app(lab), terminal_size=SIZE)


def test_rst_from_linger(snap_compare: Any) -> None:
    lab = established()
    lab.setsockopt("client", "SO_LINGER", (1, 0))
    lab.close("client")
    lab.advance(0.1)
    assert snap_compare(still_app(lab), terminal_size=SIZE)


def test_keepalive_probes(snap_compare: Any) -> None:
    lab = established()
    lab.setsockopt("client", "TCP_KEEPIDLE", 10)
    lab.setsockopt("client", "TCP_KEEPINTVL", 5)
    lab.setsockopt("client", "TCP_KEEPCNT", 3)
    lab.setsockopt("client", "SO_KEEPALIVE", 1)
    lab.advance(21.0)
    assert snap_compare(still_app(lab), terminal_size=SIZE)


def test_syn_flood_table(snap_compare: Any) -> None:
    lab = new_lab()
    lab.listen("server")
    lab.syn_flood("server", 40)
    lab.advance(0.5)
    assert snap_compare(still_app(lab), terminal_size=SIZE, press=["s"])


@pytest.mark.parametrize("theme", ["dark", "light", "high-contrast"])
def test_theme(snap_compare: Any, theme: str) -> None:
    lab = established()
    lab.drop_next("client", "data")
    lab.send("client", b"x" * 3000)
    lab.advance(0.5)
    app = still_app(lab, theme=theme)

    async def pick_a_line(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        app.query_one(PacketLog).action_cursor(-1)
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=pick_a_line)


def test_help_screen(snap_compare: Any) -> None:
    assert snap_compare(still_app(established()), terminal_size=SIZE, press=["question_mark"])


def test_modal_input_error(snap_compare: Any) -> None:
    """The drop dialog with a count that is not a number: an inline error, the dialog still open."""
    press = ["d", "a", "b", "c", "enter"]  # the count field has focus, its "1" selected: typing replaces it
    assert snap_compare(still_app(established()), terminal_size=SIZE, press=press)
