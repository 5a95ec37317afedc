"""Shared pieces of the real-kernel tests (TUN link, kernel peer, namespace cleanup).

`real_kernel` skips a test, with the reason, where a private namespace with a TUN device cannot be made
(not root / no CAP_NET_ADMIN or CAP_SYS_ADMIN / no /dev/net/tun / netns creation refused). `netns_guard`
asserts after the test that no tcpplay namespace of this process or of a child it registered is left,
that no TUN fd is still open, that the namespace worker threads are gone, that the host namespace's
links and forwarding/rp_filter sysctls are exactly as they were, and that the GC thresholds are back.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tcpplay.netns import NAME_RE, PREFIX, list_namespaces, unavailable_reason

HOST_SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/rp_filter",
    "net/ipv4/conf/default/rp_filter",
    "net/ipv6/conf/all/disable_ipv6",
    "net/ipv6/conf/default/disable_ipv6",
)


@functools.cache
def _reason() -> str | None:
    return unavailable_reason()


@pytest.fixture
def real_kernel() -> None:
    reason = _reason()
    if reason is not None:
        pytest.skip(f"needs a private network namespace with a TUN device: {reason}")


def ip_netns_list() -> list[str]:
    """tcpplay namespaces as `ip netns list` shows them (the directory if `ip` is missing)."""
    if shutil.which("ip") is None:
        return list_namespaces()
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.startswith(PREFIX))


def _host_links() -> list[str]:
    return sorted(os.listdir("/sys/class/net"))


def _host_sysctls() -> dict[str, str]:
    values = {}
    for name in HOST_SYSCTLS:
        path = Path("/proc/sys") / name
        if path.exists():
            values[name] = path.read_text().strip()
    return values


def _open_tun_fds() -> list[str]:
    fds = []
    for entry in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{entry}") == "/dev/net/tun":
                fds.append(entry)
        except OSError:
            continue
    return fds


class Guard:
    """What the test registers: child processes whose namespaces must be gone too."""

    def __init__(self) -> None:
        self.pids: set[int] = {os.getpid()}

    def owned(self, names: list[str]) -> list[str]:
        mine = []
        for name in names:
            match = NAME_RE.match(name)
            if match is not None and int(match.group(1)) in self.pids:
                mine.append(name)
        return mine


@pytest.fixture
def netns_guard() -> Iterator[Guard]:
    guard = Guard()
    links, sysctls, thresholds = _host_links(), _host_sysctls(), gc.get_threshold()
    yield guard
    deadline = time.monotonic() + 2
    while guard.owned(ip_netns_list()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert guard.owned(ip_netns_list()) == [], "a tcpplay namespace was left behind"
    assert _open_tun_fds() == [], "a TUN fd (and so a device) is still open"
    workers = [t.name for t in threading.enumerate() if t.name.startswith("netns tcpplay-")]
    assert workers == [], f"namespace worker threads still alive: {workers}"
    assert _host_links() == links, "the host namespace's interfaces changed"
    assert _host_sysctls() == sysctls, "a host sysctl changed"
    assert gc.get_threshold() == thresholds, "the GC pacer did not give the thresholds back"


# ----------------------------------------------------------------------------------------------------------
# moving data


def pattern(size: int, seed: int = 0) -> bytes:
    """Incompressible, reproducible bytes."""
    block = b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(2048))
    return (block * (size // len(block) + 1))[:size]


def stack_io(sock: Any) -> tuple[Callable[[memoryview], int], Callable[[], bytes | None]]:
    """send/recv callables for one of our stack's sockets (0 / None when it would block)."""

    def send(chunk: memoryview) -> int:
        try:
            return int(sock.send(chunk))
        except BlockingIOError:
            return 0

    def recv() -> bytes | None:
        try:
            return bytes(sock.recv(1 << 20))
        except BlockingIOError:
            return None

    return send, recv


def kernel_io(sock: Any) -> tuple[Callable[[memoryview], int], Callable[[], bytes | None]]:
    """send/recv callables for a kernel socket."""

    def send(chunk: memoryview) -> int:
        try:
            return int(sock.send(chunk))
        except BlockingIOError:
            return 0

    def recv() -> bytes | None:
        try:
            return bytes(sock.recv(1 << 20))
        except BlockingIOError:
            return None

    return send, recv


def transfer(
    lab: Any,
    sender: tuple[Callable[[memoryview], int], Callable[[], bytes | None]],
    receiver: tuple[Callable[[memoryview], int], Callable[[], bytes | None]],
    data: bytes,
    timeout: float = 30.0,
) -> str:
    """Send all of `data` one way while pumping the lab; returns the SHA-256 of what arrived."""
    send, _ = sender
    _, recv = receiver
    view = memoryview(data)
    sent = got = 0
    digest = hashlib.sha256()
    deadline = time.monotonic() + timeout
    while got < len(data):
        lab.pump(0.002)
        while sent < len(data):
            n = send(view[sent : sent + 262144])
            if n <= 0:
                break
            sent += n
        while True:
            chunk = recv()
            if not chunk:
                break
            digest.update(chunk)
            got += len(chunk)
        if time.monotonic() > deadline:
            raise AssertionError(f"transfer stalled: sent {sent}, received {got} of {len(data)} bytes")
    return digest.hexdigest()


def both_ways(
    lab: Any,
    a: tuple[Callable[[memoryview], int], Callable[[], bytes | None]],
    b: tuple[Callable[[memoryview], int], Callable[[], bytes | None]],
    size: int,
    timeout: float = 30.0,
) -> float:
    """`size` bytes a->b then b->a, each checked by SHA-256; returns the seconds it took."""
    start = time.monotonic()
    for src, dst, seed in ((a, b, 1), (b, a, 2)):
        data = pattern(size, seed)
        assert transfer(lab, src, dst, data, timeout) == hashlib.sha256(data).hexdigest()
    return time.monotonic() - start
