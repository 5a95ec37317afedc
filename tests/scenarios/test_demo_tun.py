"""`tcpplay demo NAME --link tun`: a lesson through the Linux kernel, still on its virtual clock.

Our two stacks sit on two TUN devices in a private network namespace and the kernel routes between them;
no kernel timer is involved, so a lesson keeps its virtual time (127 s of SYN retries, hours of keepalive:
a moment each). The headless output must be the memory link's, byte for byte (the trace shows nothing the
kernel changes: TTL, IP header checksum), every check must pass, and no namespace may outlive the run.

Tests that need a namespace skip, with the reason, where one cannot be made (the check tests/lab uses);
the unprivileged error path runs the CLI as nobody (setpriv) when this process is root.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tcpplay import netns as netns_mod
from tcpplay.clock import VirtualClock
from tcpplay.lab import SEC
from tcpplay.links.tun import TunLink
from tcpplay.scenarios import catalog, load
from tcpplay.scenarios.cli import run_headless
from tcpplay.scenarios.player import Player

from ..lab.realkernel import Guard, ip_netns_list, netns_guard, real_kernel

__all__ = ["netns_guard", "real_kernel"]

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = re.compile(r"netns (tcpplay-\d+-[0-9a-f]+)")


@pytest.fixture
def tun(real_kernel: None, netns_guard: Guard) -> Iterator[None]:
    """A namespace with TUN devices can be made here; none of ours is left after the test."""
    yield


def demo(argv: list[str]) -> tuple[int, str, str]:
    """`tcpplay demo ...` through the real entry point: (exit code, stdout, stderr)."""
    from tcpplay.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["demo", *argv])
    return code, out.getvalue(), err.getvalue()


def memory_output(name: str, fmt: str = "text") -> str:
    out = io.StringIO()
    assert run_headless(load(name), fmt=fmt, out=out) == 0
    return out.getvalue()


def last_time(output: str) -> float:
    """The stack time of the trace's last timed line, in seconds."""
    times = [float(line.split()[0]) for line in output.splitlines() if re.match(r"^\d+\.\d{6} ", line)]
    return times[-1]


@pytest.mark.parametrize(
    ("name", "virtual_seconds"),
    [("handshake", 0.0), ("four-way-close", 0.0), ("lost-syn", 127.0), ("keepalive", 2 * 3600.0)],
)
def test_a_lesson_through_the_kernel(tun: None, name: str, virtual_seconds: float) -> None:
    started = time.monotonic()
    code, out, err = demo([name, "--headless", "--link", "tun"])
    elapsed = time.monotonic() - started
    assert code == 0, out + err
    assert re.search(r"^PASS: \d+ passed, 0 failed$", out.rstrip().splitlines()[-1])
    assert "Traceback" not in err
    namespace = NAMESPACE.search(err)
    assert namespace is not None, err  # stderr names the namespace (for ip netns exec ... tcpdump)
    assert namespace.group(1) not in ip_netns_list()
    assert [n for n in ip_netns_list() if n.startswith(f"tcpplay-{os.getpid()}-")] == []
    assert out == memory_output(name)  # the kernel changes nothing the trace shows
    assert last_time(out) >= virtual_seconds  # virtual time: hours of timers...
    assert elapsed < 10  # ...in a moment of real time


def test_json_output_through_the_kernel(tun: None) -> None:
    code, out, _ = demo(["syn-flood", "--headless", "--link", "tun", "--format", "json"])
    assert code == 0
    assert out == memory_output("syn-flood", "json")


def test_tcpplay_link_tun_before_demo_works_too(tun: None) -> None:
    from tcpplay.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--link", "tun", "demo", "connection-refused", "--headless"])
    assert code == 0 and "netns tcpplay-" in err.getvalue()
    assert out.getvalue().rstrip().endswith("PASS: 5 passed, 0 failed")


def test_the_packets_really_cross_the_kernel(tun: None) -> None:
    with Player("lost-syn-ack", link="tun") as player:
        lab = player.lab
        link = lab.link
        assert isinstance(link, TunLink) and isinstance(lab.clock, VirtualClock) and not lab.realtime_link
        player.run_to_end()
        assert player.passed
        crossed = [r for r in lab.capture if r.arrival is not None]
        lost = [r for r in lab.capture if r.arrival is None]
        assert crossed and lost  # the lesson drops a SYN-ACK in our link layer
        assert {r.packet[8] for r in crossed} == {63}  # forwarded: the kernel took one off the TTL
        assert {r.packet[8] for r in lost} == {64}  # never written: dropped before the device
        assert link.stats["tx"] == len(crossed) == link.stats["rx:tp0"] + link.stats["rx:tp1"]
        assert lab.now > 3 * SEC
    assert link.netns.closed


def test_the_whole_catalog_through_the_kernel(tun: None) -> None:
    """Every lesson passes over TUN with the memory link's output, well within a minute."""
    results: list[str] = []
    started = time.monotonic()
    for scenario in catalog():
        out, err = io.StringIO(), io.StringIO()
        t0 = time.monotonic()
        with contextlib.redirect_stderr(err):
            code = run_headless(scenario, out=out, link="tun")
        took = time.monotonic() - t0
        mem = io.StringIO()
        run_headless(scenario, out=mem)
        same = out.getvalue() == mem.getvalue()
        results.append(f"{scenario.name:24} exit {code} {took:5.2f} s {'same' if same else 'DIFFERENT'}")
        assert code == 0, f"{scenario.name} failed over TUN:\n{out.getvalue()}{err.getvalue()}"
        assert same, f"{scenario.name}: the output over TUN differs from the memory link's"
    total = time.monotonic() - started
    print("\n".join(results), f"\ntotal {total:.2f} s", sep="")
    assert total < 60
    assert [n for n in ip_netns_list() if n.startswith(f"tcpplay-{os.getpid()}-")] == []


async def test_the_app_plays_a_lesson_through_the_kernel(
    tun: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the app, going back a step builds a new lab (a new namespace) and removes the old one."""
    from tcpplay.ui.app import TcpPlayApp

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    mine = f"tcpplay-{os.getpid()}-"
    with Player("handshake", link="tun") as player:
        app = TcpPlayApp(player=player, tick=None, still=True, remember_theme=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("space", "space", "space")
            assert player.index == 3
            first = player.lab.link
            await pilot.press("backspace")
            assert player.index == 2 and app.lab is player.lab and player.lab.link is not first
            assert isinstance(first, TunLink) and first.netns.closed
            assert len([n for n in ip_netns_list() if n.startswith(mine)]) == 1
            await pilot.press("space", "space", "space", "space", "space", "space")
            assert player.passed
    assert [n for n in ip_netns_list() if n.startswith(mine)] == []


def test_kernel_peer_is_not_for_lessons() -> None:
    from tcpplay.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--peer", "kernel", "demo", "handshake", "--headless"])
    assert code == 2 and "--link tun" in err.getvalue()


def test_without_privileges_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, with the capabilities taken away: the lab's message, exit 2, nothing printed on stdout."""
    monkeypatch.setattr(netns_mod, "effective_capabilities", lambda: 0)
    code, out, err = demo(["handshake", "--headless", "--link", "tun"])
    assert (code, out) == (2, "")
    assert err.startswith("tcpplay: error: ") and "CAP_NET_ADMIN" in err and "--link memory" in err
    assert "Traceback" not in err
    assert not [n for n in netns_mod.list_namespaces() if n.startswith(f"tcpplay-{os.getpid()}-")]


@pytest.mark.parametrize("module", ["tcpplay", "tcpplay.scenarios"])
def test_unprivileged_process_gets_the_error(module: str) -> None:
    """A real unprivileged process: `tcpplay demo` as nobody (setpriv) exits 2 with the lab's message."""
    args = ["handshake", "--headless", "--link", "tun"]
    argv = [sys.executable, "-m", module, *(["demo"] if module == "tcpplay" else []), *args]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv is not installed: cannot drop to an unprivileged user")
        drop = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]
        argv = [*drop, "--inh-caps=-all", "--bounding-set=-all", *argv]
    elif netns_mod.missing_privilege() is None:
        pytest.skip("this process is not root but holds the capabilities: there is no unprivileged path")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False
        )
    except PermissionError as exc:
        pytest.skip(f"cannot run the interpreter here: {exc}")
    if result.returncode != 2 and "Permission denied" in result.stderr:
        pytest.skip(f"the checkout is not readable by nobody: {result.stderr.strip()[-200:]}")
    if "setpriv:" in result.stderr:
        pytest.skip(f"setpriv cannot drop privileges here: {result.stderr.strip()[-200:]}")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("tcpplay: error: "), result.stderr
    assert "CAP_NET_ADMIN" in result.stderr and "--link memory" in result.stderr
    assert "Traceback" not in result.stderr
