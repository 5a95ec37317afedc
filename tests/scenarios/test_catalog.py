"""Every built-in lesson runs headless, passes its own checks, and prints exactly its golden file.

The golden files (tests/scenarios/golden/NAME.txt) hold the English headless output with seed 1. After a
change that is meant to alter the output (new narration, a stack fix), rewrite them and review the diff:

    TCPPLAY_UPDATE_GOLDEN=1 .venv/bin/pytest tests/scenarios
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import pytest

from tcpplay.scenarios import catalog_paths, load, parse_file, scenario_name

from .helpers import failures, run

GOLDEN = Path(__file__).with_name("golden")
UPDATE = os.environ.get("TCPPLAY_UPDATE_GOLDEN") == "1"
NAMES = [scenario_name(str(path)) for path in catalog_paths()]

# The lessons the catalog must offer (issue 6); a missing or renamed file fails test_catalog_is_complete.
EXPECTED = {
    "handshake",
    "four-way-close",
    "three-segment-close",
    "half-close",
    "simultaneous-open",
    "simultaneous-close",
    "connection-refused",
    "lost-syn",
    "lost-syn-ack",
    "lost-third-ack",
    "old-duplicate-syn",
    "time-wait-lost-ack",
    "bind-time-wait",
    "time-wait-pileup",
    "syn-flood",
    "accept-queue-overflow",
    "linger-abort",
    "close-unread-data",
    "keepalive",
    "half-open",
    "retransmission",
    "mss",
    "zero-window",
    "slow-start",
}


def test_catalog_is_complete() -> None:
    assert set(NAMES) == EXPECTED
    assert len(NAMES) == len(set(NAMES)), "two catalog files have the same lesson name"


@pytest.mark.parametrize("name", NAMES)
def test_lesson_passes_and_matches_golden(name: str) -> None:
    code, output = run(load(name))
    assert code == 0, f"{name} failed its own checks:\n{failures(output)}"
    golden = GOLDEN / f"{name}.txt"
    if UPDATE:
        golden.write_text(output, encoding="utf-8")
        return
    assert golden.exists(), f"no golden file for {name}; create it with TCPPLAY_UPDATE_GOLDEN=1"
    expected = golden.read_text(encoding="utf-8")
    if output != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), output.splitlines(), "golden", "now", lineterm="", n=2
        )
        shown = "\n".join(list(diff)[:60])
        pytest.fail(
            f"{name}: output differs from {golden.name} (TCPPLAY_UPDATE_GOLDEN=1 rewrites it):\n{shown}"
        )


def test_no_stray_golden_files() -> None:
    stray = {p.stem for p in GOLDEN.glob("*.txt")} - set(NAMES)
    assert not stray, f"golden files without a lesson: {sorted(stray)}"


@pytest.mark.parametrize("name", NAMES)
def test_lesson_passes_in_chinese(name: str) -> None:
    scenario = load(name)
    code, output = run(scenario, lang="zh")
    assert code == 0, f"{name} (zh) failed:\n{failures(output)}"
    assert output.startswith(f"== {scenario.title['zh']} ==\n")
    for step in scenario.steps:
        assert f"# {step.narration['zh']}" in output


@pytest.mark.parametrize("name", NAMES)
def test_lesson_is_fully_translated(name: str) -> None:
    scenario = load(name)
    assert scenario.title.keys() == {"en", "zh"}
    assert scenario.description.keys() == {"en", "zh"}
    for step in scenario.steps:
        assert step.narration.keys() == {"en", "zh"}, f"step on line {step.line} lacks a translation"
        assert step.title.keys() == {"en", "zh"}
        assert all(text.strip() for text in step.narration.values())


@pytest.mark.parametrize("name", NAMES)
def test_lesson_has_checks_and_ends_with_one(name: str) -> None:
    """Every lesson is also a test: it checks something, and its last step ends with an assertion."""
    scenario = load(name)
    last = scenario.steps[-1].commands
    assert last, f"{name}: the last step runs nothing"
    assert type(last[-1]).__name__.startswith("Expect"), f"{name}: the last step does not end in an expect"


def test_same_seed_same_bytes() -> None:
    scenario = load("slow-start")
    assert run(scenario) == run(scenario)


def test_other_seeds_still_pass() -> None:
    """Lessons check relative numbers and times, never a seed's ISNs or ports."""
    for path in catalog_paths():
        scenario = parse_file(path)
        code, output = run(scenario, seed=7)
        assert code == 0, f"{scenario.name} with seed 7:\n{failures(output)}"


def test_json_output() -> None:
    code, output = run(load("connection-refused"), fmt="json", lang="zh")
    assert code == 0
    objects = [json.loads(line) for line in output.splitlines()]
    first, last = objects[0], objects[-1]
    assert first["type"] == "scenario" and first["name"] == "connection-refused" and first["lang"] == "zh"
    assert last == {"type": "summary", "passed": 5, "failed": 0}
    kinds = {obj["type"] for obj in objects}
    assert {"narration", "segment", "state", "action", "check", "info"} <= kinds
    checks = [obj for obj in objects if obj["type"] == "check"]
    assert all(check["verdict"] == "PASS" for check in checks)
    assert checks[0]["line"] > 0 and checks[0]["text"].startswith("expect ")
