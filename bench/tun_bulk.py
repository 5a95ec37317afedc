"""Bulk transfer between our stack and Linux over a TUN device (MTU 1500), one direction at a time.

    from bench.tun_bulk import run
    run()  # {"stack->linux": MB/s, "linux->stack": MB/s, ...}

Needs root (a private network namespace and a TUN device; see tcpplay/netns.py). The numbers are the
throughput of the whole real-time path: our stack in Python, the lab's pump (select, one read() or write()
per packet, capture record per packet), and the kernel. MB/s are 10^6 bytes per second of payload, timed
from the first send() to the last byte read by the receiving application.
"""

from __future__ import annotations

import hashlib
import os
import socket as pysocket
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from tcpplay.links.tun import TunLink

MIB = 1 << 20
DEFAULT_SIZE = 64 * MIB
CHUNK = 256 * 1024
PORT = 5201


def _pattern(size: int) -> bytes:
    """Incompressible, reproducible payload (a hash chain), so corruption cannot hide."""
    block = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(CHUNK // 32))
    return (block * (size // len(block) + 1))[:size]


def _transfer(
    lab: Any,
    send: Callable[[memoryview], int],
    recv: Callable[[], bytes | None],
    data: bytes,
    timeout: float,
) -> tuple[float, str, float]:
    """Push `data` with send(), drain with recv() until all arrived; returns (seconds, sha256 received,
    CPU seconds this process used meanwhile)."""
    view = memoryview(data)
    total = len(data)
    sent = got = 0
    digest = hashlib.sha256()
    start = time.perf_counter()
    cpu = time.process_time()
    deadline = start + timeout
    while got < total:
        lab.pump(0.001)
        while sent < total:
            n = send(view[sent : sent + CHUNK])
            if n <= 0:
                break
            sent += n
        while True:
            chunk = recv()
            if not chunk:
                break
            digest.update(chunk)
            got += len(chunk)
        if time.perf_counter() > deadline:
            raise TimeoutError(f"bulk transfer stalled: {got} of {total} bytes after {timeout} s")
    return time.perf_counter() - start, digest.hexdigest(), time.process_time() - cpu


def _stack_send(sock: Any) -> Callable[[memoryview], int]:
    def send(chunk: memoryview) -> int:
        try:
            return int(sock.send(chunk))
        except BlockingIOError:
            return 0

    return send


def _stack_recv(sock: Any) -> Callable[[], bytes | None]:
    def recv() -> bytes | None:
        try:
            return bytes(sock.recv(1 << 20))
        except BlockingIOError:
            return None

    return recv


def _kernel_send(sock: pysocket.socket) -> Callable[[memoryview], int]:
    def send(chunk: memoryview) -> int:
        try:
            return sock.send(chunk)
        except BlockingIOError:
            return 0

    return send


def _kernel_recv(sock: pysocket.socket) -> Callable[[], bytes | None]:
    def recv() -> bytes | None:
        try:
            return sock.recv(1 << 20)
        except BlockingIOError:
            return None

    return recv


def run(
    size: int = DEFAULT_SIZE, timeout: float = 300.0, settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Our stack (client) <-> Linux (server) over TUN, `size` bytes each way; MB/s per direction.

    settings: stack sysctls for our host (e.g. bigger tcp_wmem/tcp_rmem) to see what buffers cost."""
    from stack import Socket
    from tcpplay.lab import Lab

    data = _pattern(size)
    want = hashlib.sha256(data).hexdigest()
    result: dict[str, Any] = {"size": size, "mtu": 1500}
    with Lab(peer="kernel", kernel_role="server", settings=settings) as lab:
        kernel = lab.kernel
        assert kernel is not None
        kernel.listen(PORT)
        sock = lab.connect("client", "server", PORT)
        assert isinstance(sock, Socket)  # our stack's end (the kernel's would be a socket.socket)
        ksock = None
        limit = time.monotonic() + 5
        while ksock is None:
            if time.monotonic() > limit:
                raise TimeoutError("the kernel never accepted our connection")
            lab.pump(0.01)
            ksock = kernel.accept()
        lab.run_until(lambda: sock.state.name == "ESTABLISHED", 5)

        for key, send, recv in (
            ("stack->linux", _stack_send(sock), _kernel_recv(ksock)),
            ("linux->stack", _kernel_send(ksock), _stack_recv(sock)),
        ):
            seconds, digest, cpu = _transfer(lab, send, recv, data, timeout)
            result[key] = size / seconds / 1e6
            result[f"{key} ok"] = digest == want
            # Payload per CPU-second of this process: what the path would do with a whole core to
            # itself (the box may be shared; the kernel's own work is not counted).
            result[f"{key} per cpu-s"] = size / cpu / 1e6 if cpu > 0 else 0.0
        snap = sock.conn.snapshot() if sock.conn is not None else None
        ksnap = kernel.snapshot(ksock)
        result["stack retransmits"] = snap.total_retrans if snap else None
        result["linux retransmits"] = ksnap.total_retrans if ksnap else None
        link = cast("TunLink", lab.link)
        result["link"] = dict(link.stats)
        counters = link.counters()["tp0"]
        result["tun tx_dropped"] = counters.get("tx_dropped", 0)  # the kernel's queue towards us overflowed
    return result


def rows(quick: bool) -> list[tuple[str, str, str]]:
    """The bench runner's rows (label, measured, target): 64 MiB each way, 8 MiB with --quick."""
    from tcpplay.netns import missing_privilege

    problem = missing_privilege()
    if problem is not None:
        return [("tun bulk, our stack <-> Linux", "skipped", problem.split(";")[0])]
    size = 8 * MIB if quick else DEFAULT_SIZE
    result = run(size)
    out: list[tuple[str, str, str]] = []
    for key, label in (("stack->linux", "our stack -> Linux"), ("linux->stack", "Linux -> our stack")):
        ok = "" if result[f"{key} ok"] else " SHA-256 MISMATCH"
        out.append((f"tun {size // MIB} MiB, {label}, MTU 1500", f"{result[key]:.1f} MB/s{ok}", ">= 50 MB/s"))
    out.append(
        (
            "  retransmits (stack / Linux), tun queue drops",
            f"{result['stack retransmits']} / {result['linux retransmits']}, {result['tun tx_dropped']}",
            "",
        )
    )
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    size = int(args[0]) * MIB if args else DEFAULT_SIZE
    from tcpplay.netns import missing_privilege

    problem = missing_privilege()
    if problem is not None:
        print(f"tun_bulk: skipped: {problem}")
        return 0
    result = run(size)
    print(f"tun_bulk ({size // MIB} MiB each way, MTU 1500, pid {os.getpid()}):")
    for key in ("stack->linux", "linux->stack"):
        ok = "sha256 ok" if result[f"{key} ok"] else "SHA-256 MISMATCH"
        per_cpu = result[f"{key} per cpu-s"]
        print(f"  {key:14} {result[key]:7.1f} MB/s  ({ok}; {per_cpu:.1f} MB per CPU-second)")
    print(f"  retransmits: stack {result['stack retransmits']}, linux {result['linux retransmits']}", end="")
    print(f"; packets the kernel dropped at tp0's queue: {result['tun tx_dropped']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
