"""The stack's boundary: it imports nothing of the application or its UI, does no IO and reads no clock.

The static scan walks the AST of every stack/*.py file. Python's `socket` module may be imported (for its
constants and inet_pton), but no socket may be created; `os` may be imported (os.strerror), but not used
for randomness; no module that reads a clock, waits, spawns threads or draws unseeded randomness may be
imported at all.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / "stack"

FORBIDDEN_PACKAGES = ("textual", "scapy", "pyroute2", "tcpplay")

# Modules whose import alone means a clock, concurrency, IO multiplexing or unseeded randomness.
FORBIDDEN_IMPORTS = {
    "time": "reads the wall clock",
    "datetime": "reads the wall clock",
    "threading": "spawns threads",
    "asyncio": "runs an event loop",
    "select": "waits on file descriptors",
    "selectors": "waits on file descriptors",
    "secrets": "draws unseeded randomness",
    "random": "draws randomness (the stack derives everything from its seed with hashlib)",
    "uuid": "draws randomness and reads the clock",
    "subprocess": "does IO",
}
# Attributes of otherwise allowed modules that do IO or draw randomness.
FORBIDDEN_ATTRS = {
    "os": {"urandom", "getrandom", "read", "write", "open", "system", "popen"},
    "socket": {
        "socket",
        "socketpair",
        "create_connection",
        "create_server",
        "fromfd",
        "getaddrinfo",
        "gethostbyname",
    },
}
FORBIDDEN_BUILTINS = {"open", "input", "print", "breakpoint"}

PROBE = f"""
import json, sys
import stack
print(json.dumps({{
    "file": stack.__file__,
    "host": hasattr(stack, "Host"),
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN_PACKAGES!r}),
}}))
"""


def _probe(prelude: str = "") -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", prelude + PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"importing stack failed:\n{proc.stderr}"
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_importing_stack_loads_no_application_or_ui_package() -> None:
    result = _probe()
    assert Path(str(result["file"])).resolve() == STACK / "__init__.py"
    assert result["host"] is True
    assert result["loaded"] == [], f"`import stack` pulled in {result['loaded']}"


def test_import_probe_detects_a_forbidden_package() -> None:
    # The probe must be able to fail: with a forbidden package loaded first, it reports it.
    result = _probe("import json, sys\nsys.modules['tcpplay.fake'] = json\n")
    assert result["loaded"] == ["tcpplay.fake"]


# --- static scan -------------------------------------------------------------------------------------------


def violations(source: str, filename: str) -> list[str]:
    """Every forbidden import or call in source, as 'file:line: what'."""
    tree = ast.parse(source, filename)
    found: list[str] = []
    aliases: dict[str, str] = {}  # local name -> module name, for the modules in FORBIDDEN_ATTRS

    def report(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in FORBIDDEN_IMPORTS:
                    report(node, f"import {alias.name} ({FORBIDDEN_IMPORTS[top]})")
                if top in FORBIDDEN_ATTRS:
                    aliases[alias.asname or top] = top
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top = node.module.split(".")[0]
            if top in FORBIDDEN_IMPORTS:
                report(node, f"from {node.module} import ... ({FORBIDDEN_IMPORTS[top]})")
            for alias in node.names:
                if alias.name in FORBIDDEN_ATTRS.get(top, ()):
                    report(node, f"from {top} import {alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = aliases.get(node.value.id)
            if module is not None and node.attr in FORBIDDEN_ATTRS[module]:
                report(node, f"{module}.{node.attr} (IO or randomness)")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in FORBIDDEN_BUILTINS
        ):
            report(node, f"{node.func.id}() (IO)")
    return sorted(found)


def stack_files() -> list[Path]:
    return sorted(STACK.glob("*.py"))


def test_stack_has_files_to_scan() -> None:
    names = {p.name for p in stack_files()}
    assert {"__init__.py", "wire.py", "host.py", "socket.py", "connection.py"} <= names


@pytest.mark.parametrize("path", stack_files(), ids=lambda p: p.name)
def test_stack_module_does_no_io_and_reads_no_clock(path: Path) -> None:
    found = violations(path.read_text(), f"stack/{path.name}")
    assert found == [], "forbidden in the sans-IO stack:\n" + "\n".join(found)


def test_scanner_reports_each_forbidden_use_with_file_and_line() -> None:
    source = "\n".join(
        [
            "import socket as _s",  # 1: allowed (constants)
            "import os",  # 2: allowed (strerror)
            "import time",  # 3
            "from datetime import datetime",  # 4
            "import threading, asyncio",  # 5 (two)
            "from os import urandom",  # 6
            "x = _s.AF_INET",  # 7: allowed
            "s = _s.socket(_s.AF_INET, _s.SOCK_STREAM)",  # 8
            "key = os.urandom(16)",  # 9
            "msg = os.strerror(5)",  # 10: allowed
            "import secrets, random",  # 11 (two)
            "from socket import create_connection",  # 12
            "import select, selectors",  # 13 (two)
            "open('f')",  # 14
            "def f():\n    import time as t",  # 16 (nested)
        ]
    )
    found = violations(source, "stack/example.py")
    assert sorted(line.split(": ")[0] for line in found) == sorted(
        f"stack/example.py:{n}" for n in (3, 4, 5, 5, 6, 8, 9, 11, 11, 12, 13, 13, 14, 16)
    )
    assert "stack/example.py:8: socket.socket (IO or randomness)" in found
    assert "stack/example.py:9: os.urandom (IO or randomness)" in found
    assert "stack/example.py:3: import time (reads the wall clock)" in found
