"""`tcpplay drill FILE --ui`: the DrillPlayer the app steps through, and the app showing a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack import State
from tcpplay.drill.parser import parse_file, parse_text
from tcpplay.drill.player import DrillPlayer, pick_script
from tcpplay.lab import LabError

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "conformance-examples"
SCRIPT_13 = EXAMPLES / "13-active-close-4way.txt"
GOOD = Path(__file__).with_name("active-close-4way.pkt")


def example_13() -> Path:
    if SCRIPT_13.exists():
        return SCRIPT_13
    if GOOD.exists():
        return GOOD
    pytest.skip("no active-close script available")


def player_for(text: str, name: str = "mutated.pkt") -> DrillPlayer:
    drill = parse_text(text, filename=name)
    return DrillPlayer(pick_script(drill, None), filename=name)


def test_each_statement_is_a_step_and_the_lab_shows_the_sut() -> None:
    path = example_13()
    drill = parse_file(path)
    player = DrillPlayer(pick_script(drill, None), filename=str(path))
    assert player.passed and player.highlight is None
    assert len(player.steps) == len(drill.scripts[0].statements)
    assert player.index == 0 and len(player.lab.capture) == 0
    replaced = []
    player.on_lab_replaced = replaced.append
    assert player.next()
    assert player.index == 1 and replaced == [player.lab]
    player.goto(len(player.steps))
    assert player.done and not player.next()
    # The SUT's own connection, in TIME_WAIT after the four-way close, with every segment in the capture.
    assert player.lab.state("sut") is State.TIME_WAIT
    flags = [r.segment.flags for r in player.lab.capture if r.segment is not None]
    assert len(flags) == 11
    assert [r.src for r in player.lab.capture][:3] == ["sut", "peer", "sut"]
    assert player.steps[-1].narration.endswith("PASS")
    # Going back rebuilds a lab with only the earlier statements run (deterministically).
    player.goto(7)  # sysctl, socket, fcntl, connect, > S, < S., > . : the handshake
    assert len(player.lab.capture) == 3
    again = [r.packet for r in player.lab.capture]
    player.goto(7)
    assert [r.packet for r in player.lab.capture] == again


def test_a_failing_statement_is_narrated_with_expected_and_actual_and_highlighted() -> None:
    text = example_13().read_text().replace("> F. 101:101(0) ack 1", "> F. 101:101(0) ack 2")
    player = player_for(text, "mutated.txt")
    assert not player.passed
    failing = [s for s in player.steps if s.narration.startswith("✗ FAIL")]
    assert len(failing) == 1 and failing[0].pause
    assert "expected: " in failing[0].narration and "ack 2" in failing[0].narration
    assert "actual:   " in failing[0].narration and "ack 1" in failing[0].narration
    assert player.highlight_at is not None
    later = player.steps[player.highlight_at :]
    assert later and all("not reached" in s.narration for s in later)
    player.goto(player.highlight_at)
    assert player.highlight is not None
    record = list(player.lab.capture)[player.highlight - 1]
    assert record.src == "sut" and record.segment is not None and record.segment.flags & 0x01  # our FIN


def test_unknown_part_is_a_clear_error() -> None:
    drill = parse_file(example_13())
    with pytest.raises(LabError, match="no part 'Z'"):
        pick_script(drill, "Z")


async def test_the_app_steps_through_a_failing_script_and_selects_the_segment() -> None:
    from tcpplay.ui.app import TcpPlayApp

    text = example_13().read_text().replace("> F. 101:101(0) ack 1", "> F. 101:101(0) ack 2")
    player = player_for(text, "mutated.txt")
    app = TcpPlayApp(player=player, tick=None, still=True, remember_theme=False)
    assert player.highlight_at is not None
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(player.highlight_at):
            await pilot.press("space")
        assert "✗ FAIL" in app.narration
        row = app.log_view.selected_row()
        assert row is not None and row[1].number == player.highlight
