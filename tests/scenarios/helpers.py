"""Shared helpers for the scenario tests: run a lesson headless and capture what it prints."""

from __future__ import annotations

import io

from tcpplay.scenarios.cli import run_headless
from tcpplay.scenarios.model import Scenario


def run(scenario: Scenario, *, lang: str = "en", fmt: str = "text", seed: int = 1) -> tuple[int, str]:
    """(exit code, output) of `tcpplay demo ... --headless`."""
    out = io.StringIO()
    code = run_headless(scenario, lang=lang, fmt=fmt, seed=seed, out=out)
    return code, out.getvalue()


def failures(output: str) -> str:
    """The FAIL lines of a headless run (for assertion messages)."""
    return "\n".join(line for line in output.splitlines() if line.startswith("FAIL"))
