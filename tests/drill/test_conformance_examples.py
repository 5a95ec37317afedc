"""Every script of the shared conformance examples must pass against our stack.

The examples were validated on Linux 6.18 with packetdrill. If one fails, the stack diverges from Linux at the
reported line (or the runner misreads the notation); the failure message shows expected vs actual and the
trace. They must also pass with other ISN seeds and with the peer's sequence space shifted near the 2**32
wrap, so nothing depends on particular absolute numbers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpplay.drill.ast import Packet
from tcpplay.drill.parser import parse_file
from tcpplay.drill.report import Status, render_text
from tcpplay.drill.runner import RunConfig, run_path

EXAMPLES = Path("/work/shared/conformance-examples")
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.txt"))

pytestmark = pytest.mark.skipif(not EXAMPLE_FILES, reason=f"no conformance examples in {EXAMPLES}")


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.name)
def test_example_passes(path: Path) -> None:
    result = run_path(path)
    assert result.scripts, f"{path.name} has no script"
    assert result.passed, render_text([result])


@pytest.mark.parametrize(
    "config",
    [
        RunConfig(seed=7),
        RunConfig(seed=12345, peer_seq_offset=0xFFFFFF00),
        RunConfig(peer_seq_offset=0x7FFFFFF0),
    ],
    ids=["seed-7", "peer-space-at-wrap", "peer-space-half"],
)
def test_examples_do_not_depend_on_absolute_numbers(config: RunConfig) -> None:
    results = [run_path(path, config=config) for path in EXAMPLE_FILES]
    failed = [result for result in results if not result.passed]
    assert not failed, render_text(failed)


def test_every_segment_is_matched_by_one_line() -> None:
    """The runner's bookkeeping on the examples: in a passing run every segment the SUT sent was matched by
    exactly one `>` statement (nothing extra, nothing missing)."""
    for path in EXAMPLE_FILES:
        drill = parse_file(path)
        result = run_path(path)
        for script, outcome in zip(drill.scripts, result.scripts, strict=True):
            assert outcome.status is Status.PASS
            lines = sum(1 for stmt in script.statements if isinstance(stmt, Packet) and stmt.outbound)
            emitted = sum(1 for event in outcome.trace if event.kind == "out")
            assert emitted == lines, f"{path.name} [{script.name}]: {emitted} segments, {lines} '>' lines"
