"""The language reference (tcpplay.scenarios' docstring, copied into the README) tells the truth."""

from __future__ import annotations

import re
import textwrap

import tcpplay.scenarios
from tcpplay.scenarios import parse_text

from .helpers import failures, run


def test_the_complete_example_parses_and_passes() -> None:
    doc = tcpplay.scenarios.__doc__ or ""
    start = doc.index("A complete example::")
    block = doc[start:].split("::", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line)
    text = textwrap.dedent("\n".join(lines))
    scenario = parse_text(text, "example.tcp")
    assert scenario.title["zh"] == "连接被拒绝"
    code, output = run(scenario)
    assert code == 0, failures(output)
    code, output = run(scenario, lang="zh")
    assert code == 0, failures(output)


def test_every_example_line_in_the_reference_parses() -> None:
    """Each indented command in the reference's tables is valid on its own (comments stripped; lines with
    optional parts in [brackets] or alternatives a|b are templates, not commands)."""
    doc = tcpplay.scenarios.__doc__ or ""
    body = doc[: doc.index("A complete example::")]
    header = "title: T\nsay: x\n"
    checked = 0
    for raw in body.splitlines():
        if not raw.startswith("    ") or raw.startswith("     "):
            continue
        line = raw.split("  #", 1)[0].strip()
        first = line.split(" ")[0] if line else ""
        if not line or first.endswith(":") or "|" in line or "..." in line or first in ("rate",):
            continue
        if re.search(r"\[(?:[^\]]*[a-z0-9 ]|N\])", line):
            continue
        if first in ("title", "title.zh", "description", "step", "say", "say.zh"):
            continue
        parse_text(header + line + "\n", "reference.tcp")
        checked += 1
    assert checked >= 20
