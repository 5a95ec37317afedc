"""Shared set-up for the UI tests: a private config dir, seeded labs on a virtual clock, a still app.

Every test gets its own XDG_CONFIG_HOME (a theme chosen in one test must not leak into another, nor into
the developer's real config), and apps are built with no interval timer and no cursor blink, so a screen
depends only on what the test did to the lab.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tcpplay.clock import VirtualClock
from tcpplay.lab import Lab
from tcpplay.ui.app import TcpPlayApp

SIZE = (120, 40)


@pytest.fixture(autouse=True)
def private_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    config = tmp_path / "xdg"
    config.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    yield config


def new_lab(seed: int = 1) -> Lab:
    return Lab(seed=seed, clock=VirtualClock())


def established(seed: int = 1) -> Lab:
    """server listening on 8080, client connected, the handshake done and 50 ms of quiet after it."""
    lab = new_lab(seed)
    lab.listen("server")
    lab.connect("client")
    assert lab.run_until_state("client", "ESTABLISHED", timeout=5)
    lab.advance(0.05)
    return lab


def still_app(lab: Lab, **kwargs: object) -> TcpPlayApp:
    """The app as tests want it: no real-time timer, no blinking cursor, no config writes unless asked."""
    kwargs.setdefault("remember_theme", False)
    return TcpPlayApp(lab, tick=None, still=True, **kwargs)  # type: ignore[arg-type]
