"""`tcpplay demo`: the list, headless runs of names and files, exit codes, and handing over to the app."""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

import pytest

from tcpplay.scenarios import cli
from tcpplay.scenarios.player import Player

GOOD = """title: A file lesson
description: Made in a test. Second sentence.
say: The server listens.
server listen
expect server state LISTEN
"""


def demo(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="tcpplay demo")
    cli.add_arguments(parser)
    code = cli.run(parser.parse_args(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = demo(["--list"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("handshake ") and "The three-way handshake" in lines[0]
    assert lines[1].strip() == "How a connection starts: SYN, SYN-ACK, ACK."
    assert len(lines) == 2 * 24


def test_list_in_chinese_and_without_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = demo(["--lang", "zh"], capsys)
    assert code == 0
    assert "三次握手" in out.splitlines()[0]
    assert out.rstrip().endswith("(or: tcpplay demo NAME --headless)")


def test_headless_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = demo(["connection-refused", "--headless", "--seed", "2"], capsys)
    assert (code, err) == (0, "")
    assert out.startswith("== Connection refused ==\n")
    assert out.rstrip().endswith("PASS: 5 passed, 0 failed")


def test_headless_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.tcp"
    path.write_text(GOOD, encoding="utf-8")
    code, out, _ = demo([str(path), "--headless"], capsys)
    assert code == 0
    assert "PASS  mine.tcp:5  expect server state LISTEN" in out


def test_a_failing_check_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.tcp"
    path.write_text(GOOD.replace("LISTEN", "CLOSED"), encoding="utf-8")
    code, out, _ = demo([str(path), "--headless"], capsys)
    assert code == 1
    assert "FAIL  bad.tcp:5  expect server state CLOSED  -- server is LISTEN" in out
    assert out.rstrip().endswith("FAIL: 0 passed, 1 failed")


def test_unknown_name_suggests_close_ones(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = demo(["handshak", "--headless"], capsys)
    assert (code, out) == (2, "")
    assert err == (
        "tcpplay: error: no lesson named 'handshak'; did you mean handshake? "
        "(tcpplay demo --list shows them all)\n"
    )
    code, _, err = demo(["time", "--headless"], capsys)
    assert code == 2 and "did you mean" in err and "time-wait-lost-ack" in err
    code, _, err = demo(["zzzz"], capsys)
    assert code == 2 and "the lessons are: handshake, four-way-close" in err


def test_syntax_error_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.tcp"
    path.write_text("title: T\nsay: x\nwiat 3 s\n", encoding="utf-8")
    code, out, err = demo([str(path), "--headless"], capsys)
    assert (code, out) == (2, "")
    assert err.startswith(f'{path}:3:1: unknown command "wiat", did you mean wait?')
    code, _, err = demo([str(tmp_path / "nope.tcp"), "--headless"], capsys)
    assert code == 2 and err.startswith("tcpplay: error: cannot read ")


def test_app_missing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "tcpplay.ui.app", None)
    code, _, err = demo(["handshake"], capsys)
    assert code == 1
    assert "run the lesson with --headless instead" in err


def fake_app(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Player, str | None, str | None]]:
    seen: list[tuple[Player, str | None, str | None]] = []

    def run_app(*, player: Player, theme: str | None, pcap: str | None) -> int:
        seen.append((player, theme, pcap))
        return 0

    monkeypatch.setitem(sys.modules, "tcpplay.ui.app", types.SimpleNamespace(run_app=run_app))
    return seen


def test_app_gets_a_player(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen = fake_app(monkeypatch)
    code, _, _ = demo(["mss", "--lang", "zh", "--seed", "4", "--theme", "light", "--pcap", "x.pcap"], capsys)
    assert code == 0
    ((player, theme, pcap),) = seen
    assert (player.scenario.name, player.lang, player.seed, player.index) == ("mss", "zh", 4, 0)
    assert (theme, pcap) == ("light", "x.pcap")


@pytest.mark.parametrize(
    "argv",
    [
        ["--seed", "5", "--theme", "high-contrast", "demo", "handshake"],
        ["demo", "handshake", "--seed", "5", "--theme", "high-contrast"],
    ],
)
def test_top_level_options_reach_the_lesson_wherever_they_are_written(
    monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    from tcpplay.cli import main

    seen = fake_app(monkeypatch)
    assert main(argv) == 0
    ((player, theme, pcap),) = seen
    assert (player.seed, theme, pcap) == (5, "high-contrast", None)


def test_without_a_seed_a_lesson_uses_seed_1(monkeypatch: pytest.MonkeyPatch) -> None:
    from tcpplay.cli import main

    seen = fake_app(monkeypatch)
    assert main(["demo", "handshake"]) == 0
    assert seen[0][0].seed == 1


def test_python_dash_m() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tcpplay.scenarios", "simultaneous-close", "--headless", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == '{"type": "summary", "passed": 11, "failed": 0}'
