"""No tcpplay namespace outlives its run: normal exit, exception, SIGINT, SIGTERM, SIGHUP remove it at once;
SIGKILL leaves it, and the next start removes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tcpplay import netns as netns_mod
from tcpplay.lab import Lab
from tcpplay.netns import MARKER_DIR, PrivateNetns, list_namespaces, sweep_stale

from .realkernel import Guard, ip_netns_list, netns_guard, real_kernel

__all__ = ["netns_guard", "real_kernel"]

ROOT = Path(__file__).resolve().parents[2]

# The child: a TUN lab that reports its namespace, then pumps until told otherwise. SIGINT is set back to
# Python's default, as a terminal run has it (a shell's background job inherits SIGINT ignored).
CHILD = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from tcpplay.lab import Lab
mode = sys.argv[1]
lab = Lab(link="tun")
print(lab.link.netns.name, flush=True)
if mode == "raise":
    raise RuntimeError("boom")
if mode == "once":
    sys.exit(0)  # a normal exit without close_link(): atexit removes the namespace
while True:
    lab.pump(0.05)
"""


def _spawn(guard: Guard, mode: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    guard.pids.add(proc.pid)
    assert proc.stdout is not None
    name = proc.stdout.readline().strip()
    if not name:
        proc.kill()
        raise AssertionError(f"the child did not start its lab: {proc.communicate(timeout=10)[1]}")
    assert name.startswith(f"tcpplay-{proc.pid}-")
    return proc, name


def _wait(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=20)
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_signal_removes_the_namespace_at_once(
    sig: signal.Signals, real_kernel: None, netns_guard: Guard
) -> None:
    proc, name = _spawn(netns_guard, "hold")
    assert name in ip_netns_list()
    time.sleep(0.2)  # let it be in the middle of pumping
    proc.send_signal(sig)
    code, err = _wait(proc)
    assert name not in ip_netns_list(), err
    assert not (MARKER_DIR / name).exists()
    if sig == signal.SIGINT:
        assert code in (-signal.SIGINT, 130, 1) and "KeyboardInterrupt" in err
    else:
        assert code == 128 + sig, err


def test_exception_in_the_child_removes_the_namespace(real_kernel: None, netns_guard: Guard) -> None:
    proc, name = _spawn(netns_guard, "raise")
    code, err = _wait(proc)
    assert code == 1 and "RuntimeError: boom" in err
    assert name not in ip_netns_list()


def test_exception_inside_with_removes_it_before_atexit(real_kernel: None, netns_guard: Guard) -> None:
    with pytest.raises(ZeroDivisionError), Lab(link="tun") as lab:
        name = lab.link.netns.name
        assert name in ip_netns_list()
        _ = 1 / 0
    assert name not in ip_netns_list()
    assert lab.link.netns.closed


def test_sigkill_leaves_it_and_the_next_start_removes_it(real_kernel: None, netns_guard: Guard) -> None:
    proc, name = _spawn(netns_guard, "hold")
    proc.kill()
    proc.wait(timeout=10)
    assert name in ip_netns_list(), "SIGKILL cannot be handled: the namespace must still be there"
    marker = json.loads((MARKER_DIR / name).read_text())
    assert marker["pid"] == proc.pid
    # The next start (another run) finds its owner dead and removes it before making its own.
    nxt, other = _spawn(netns_guard, "once")
    code, err = _wait(nxt)
    assert code == 0, err
    assert name not in ip_netns_list() and other not in ip_netns_list()
    assert not (MARKER_DIR / name).exists()


def test_normal_exit_and_close_are_idempotent(real_kernel: None, netns_guard: Guard) -> None:
    ns = PrivateNetns.create()
    assert ns.name in list_namespaces()
    ns.close()
    ns.close()
    assert ns.name not in list_namespaces()
    with pytest.raises(netns_mod.NetnsError):
        ns.call(os.getpid)


def test_signal_handlers_are_restored_after_the_last_namespace(real_kernel: None, netns_guard: Guard) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with PrivateNetns.create():
        assert signal.getsignal(signal.SIGTERM) is netns_mod._on_signal
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_worker_thread_is_the_only_one_in_the_namespace(real_kernel: None, netns_guard: Guard) -> None:
    host = os.stat("/proc/self/ns/net").st_ino
    with PrivateNetns.create() as ns:
        inside = ns.call(lambda: os.stat("/proc/thread-self/ns/net").st_ino)
        assert inside == os.stat(ns.path).st_ino != host
        assert os.stat("/proc/thread-self/ns/net").st_ino == host  # this thread never moved


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_sweep_decides_by_pid_and_start_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dead owner: removed. Live pid with another start time (a recycled pid): removed. Live owner: kept.
    Names that are not ours: never touched. (Plain files stand in for the mounts.)"""
    nsdir, markers = tmp_path / "netns", tmp_path / "markers"
    nsdir.mkdir()
    markers.mkdir()
    monkeypatch.setattr(netns_mod, "NETNS_DIR", nsdir)
    monkeypatch.setattr(netns_mod, "MARKER_DIR", markers)
    me = os.getpid()
    started = netns_mod._start_time(me)
    names = {
        "dead": f"tcpplay-{_dead_pid()}-00aa11bb",
        "recycled": f"tcpplay-{me}-22cc33dd",
        "alive": f"tcpplay-{me}-44ee55ff",
        "foreign": "tcpplay-someone-else",
    }
    for name in names.values():
        (nsdir / name).touch()
    (markers / names["recycled"]).write_text(json.dumps({"pid": me, "starttime": (started or 0) + 1}))
    (markers / names["alive"]).write_text(json.dumps({"pid": me, "starttime": started}))
    (markers / f"tcpplay-{_dead_pid()}-66778899").write_text("{}")  # a marker whose namespace is gone
    removed = sweep_stale()
    assert sorted(removed) == sorted([names["dead"], names["recycled"]])
    assert sorted(os.listdir(nsdir)) == sorted([names["alive"], names["foreign"]])
    assert os.listdir(markers) == [names["alive"]]
