"""The Player: the stepping interface the UI codes against, and going back by deterministic replay."""

from __future__ import annotations

from tcpplay.headless import TracePrinter
from tcpplay.lab import Lab
from tcpplay.scenarios import load, parse_text
from tcpplay.scenarios.player import Player, PlayerStep


def rendered(lab: Lab) -> list[str]:
    """The lab's whole log as the headless printer would print it."""
    printer = TracePrinter(lab, lambda line: None)
    return [line for line in (printer.line(event) for event in lab.log) if line is not None]


def test_steps_in_the_players_language() -> None:
    player = Player("handshake", lang="zh")
    assert player.title == "三次握手"
    assert player.steps[0] == PlayerStep(
        title="服务器监听", narration=player.scenario.steps[0].narration["zh"], line=10, pause=False
    )
    assert all(step.title and step.narration for step in player.steps)
    assert Player(load("handshake")).steps[1].title == "SYN"


def test_next_until_done() -> None:
    player = Player("connection-refused")
    assert player.index == 0 and not player.done and player.results == []
    assert player.autoplay is False
    count = 0
    while player.next():
        count += 1
        assert player.index == count
    assert count == len(player.steps) == 3
    assert player.done and player.next() is False
    assert player.passed and len(player.results) == 5


def test_goto_replays_into_a_new_lab() -> None:
    player = Player("four-way-close", seed=3)
    for _ in range(4):
        player.next()
    old_lab = player.lab
    before = rendered(old_lab)
    replaced: list[Lab] = []
    player.on_lab_replaced = replaced.append
    player.goto(2)
    assert player.index == 2
    assert replaced == [player.lab] and player.lab is not old_lab
    fresh = Player("four-way-close", seed=3)
    fresh.next()
    fresh.next()
    assert rendered(player.lab) == rendered(fresh.lab)
    assert player.results == fresh.results
    player.goto(4)
    assert rendered(player.lab) == before
    assert player.lab.now == old_lab.now


def test_goto_clamps_and_restarts() -> None:
    player = Player("connection-refused")
    player.goto(99)
    assert player.done and player.index == 3
    player.goto(-5)
    assert player.index == 0 and player.lab.now == 0 and player.results == []


def test_old_lab_no_longer_feeds_the_player() -> None:
    player = Player("handshake")
    player.next()
    old = player.lab
    player.goto(0)
    old.note("late", kind="narration")
    old.advance(5)
    player.run_to_end()
    assert player.passed


def test_pause_marks_a_step() -> None:
    scenario = parse_text("title: T\nsay: a\npause\nsay: b\n", "p.tcp")
    player = Player(scenario)
    assert [s.pause for s in player.steps] == [True, False]
    assert not player.wants_pause
    player.next()
    assert player.wants_pause
    player.next()
    assert not player.wants_pause
