"""The real thing: `run_app` in a real terminal (tmux), driven by keys, read back with `capture-pane`.

Pilot tests run Textual headless; this one catches what only a terminal shows (the driver, the real-time
clock and its interval timer, the screen actually painted). It uses a private tmux server (-L) so it never
touches a user's sessions, and it is skipped, with the reason, where tmux is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TMUX = shutil.which("tmux")

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (apt-get install -y tmux)")


class Terminal:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str, check: bool = True) -> str:
        assert TMUX is not None
        done = subprocess.run(
            [TMUX, "-L", self.socket, *args], capture_output=True, text=True, check=check, timeout=10
        )
        return done.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "app", check=False)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", "app", key)
            time.sleep(0.15)

    def wait_for(self, condition: Callable[[str], bool], timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if condition(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"the screen never showed what was expected; last screen:\n{text}")

    def alive(self) -> bool:
        assert TMUX is not None
        done = subprocess.run([TMUX, "-L", self.socket, "has-session", "-t", "app"], capture_output=True)
        return done.returncode == 0


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(f"tcpplay-test-{os.getpid()}")
    pcap = tmp_path / "run.pcap"
    code = f"from tcpplay.ui.app import run_app; raise SystemExit(run_app(seed=1, pcap={str(pcap)!r}))"
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "PYTHONPATH": str(ROOT),
        "TERM": "xterm-256color",
        # pytest's own COLUMNS/LINES would leak through the tmux server and override the pane's size.
        "COLUMNS": "120",
        "LINES": "40",
    }
    command = " ".join(f"{k}={v}" for k, v in env.items()) + f" {sys.executable} -c {code!r}"
    term.tmux("new-session", "-d", "-s", "app", "-x", "120", "-y", "40", "-c", str(ROOT), command)
    term.pcap = pcap  # type: ignore[attr-defined]
    try:
        yield term
    finally:
        term.tmux("kill-server", check=False)


def test_real_terminal_handshake(terminal: Terminal) -> None:
    terminal.wait_for(lambda s: "CLOSED" in s and "keys act on client" in s)
    terminal.keys("s", "l", "c", "o")
    screen = terminal.wait_for(lambda s: s.count("ESTABLISHED") >= 2 and "[S.]" in s)
    assert "client → server  [S]" in screen
    assert "client ← server  [S.]" in screen
    assert "▶ 1x" in screen  # the real-time clock runs
    terminal.keys("q")
    deadline = time.monotonic() + 10
    while terminal.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not terminal.alive()
    assert terminal.pcap.stat().st_size > 24  # type: ignore[attr-defined]
