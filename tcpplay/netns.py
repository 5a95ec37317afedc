"""Private network namespaces for the real-kernel links, and the guarantee that none outlives its run.

Safety rule of the whole project: every packet tcpplay puts on a real interface stays inside a network
namespace tcpplay created itself, and that namespace (with its TUN devices) is removed on every exit path.
Nothing here ever configures the host namespace.

How a namespace is made and entered. One dedicated worker thread calls unshare(CLONE_NEWNET): on Linux a
network namespace belongs to a *thread* (task), so only that thread moves into the fresh namespace while the
main thread and every other thread stay where they were. The worker then bind-mounts its namespace at
/run/netns/<name> (pyroute2's `netns.attach`, the same layout `ip netns add` makes, so `ip netns exec <name>
tcpdump -i tp0` works). Everything that must be created inside the namespace -- TUN devices (a TUN device
is created in the namespace of the task that opens /dev/net/tun), netlink and inet_diag sockets, the kernel
peer's TCP sockets, /proc/sys writes -- runs as a call on that worker (`PrivateNetns.call`). A file
descriptor keeps the namespace it was created in, so the fds can then be used from any thread. The worker
checks the inode of its own namespace before every call, and the main thread never calls setns, so no code
path can fall back to the host namespace by mistake. Why not `setns` in a throwaway thread or pyroute2's
forked helper: unshare in the worker needs no fork of a (possibly multi-threaded, Textual) process and has
no window in which a thread is in the wrong namespace.

How it is removed. Unmounting and unlinking /run/netns/<name> drops the last reference besides our own fds
and the worker; closing those fds (the TUN devices are not persistent: they vanish with their fd) and
stopping the worker frees the namespace, and the kernel deletes what was in it. That happens in
`close()`, which is idempotent and is reached from: the context manager, `atexit`, and handlers for SIGTERM
and SIGHUP (clean up, then exit with 128+signal). SIGINT keeps Python's behaviour (KeyboardInterrupt unwinds
the context managers, then atexit runs); while a cleanup runs, SIGINT/SIGTERM/SIGHUP are deferred so a
second Ctrl-C cannot cut it in half. A run killed by SIGKILL cannot clean up: its namespace stays mounted,
and the next start removes it (`sweep_stale`), recognising it by name (`tcpplay-<pid>-<random>`) and by a
marker file in /run/tcpplay holding the owner's pid and process start time (so a recycled pid does not
keep a dead run's namespace alive).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from queue import SimpleQueue
from types import FrameType
from typing import Any, TypeVar

from .lab import LabError

T = TypeVar("T")

PREFIX = "tcpplay-"
NETNS_DIR = Path("/run/netns")  # where `ip netns` (and pyroute2, via the /var/run symlink) keep names
MARKER_DIR = Path("/run/tcpplay")
NAME_RE = re.compile(r"^tcpplay-(\d+)-([0-9a-f]{6,16})$")
CLONE_NEWNET = 0x40000000
MNT_DETACH = 2
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
TUN_PATH = "/dev/net/tun"
MEMORY_HINT = "or use the default --link memory, which needs no privileges"


class NetnsError(LabError):
    """A private namespace could not be created, used or removed."""


class PrivilegeError(NetnsError):
    """The process lacks what a real-kernel link needs (root / CAP_NET_ADMIN, /dev/net/tun, netns)."""


_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return _libc


# ----------------------------------------------------------------------------------------------------------
# privileges


def effective_capabilities() -> int | None:
    """CapEff of this process as a bit mask, or None if /proc cannot tell."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        return None
    return None


def missing_privilege() -> str | None:
    """Why this process cannot run a real-kernel link (a sentence naming what is missing), or None.

    Checks what the link will do: unshare/mount need CAP_SYS_ADMIN, configuring the devices needs
    CAP_NET_ADMIN, and /dev/net/tun must exist and open. Root without those capabilities (a default
    container) is refused too, which a bare `euid == 0` test would miss.
    """
    caps = effective_capabilities()
    if caps is None:
        if os.geteuid() != 0:
            return f"the tun link must run as root (or with CAP_NET_ADMIN and CAP_SYS_ADMIN); {MEMORY_HINT}"
    else:
        lacking = [
            name
            for name, bit in (("CAP_NET_ADMIN", CAP_NET_ADMIN), ("CAP_SYS_ADMIN", CAP_SYS_ADMIN))
            if not caps >> bit & 1
        ]
        if lacking:
            return (
                f"the tun link needs root with {' and '.join(lacking)} (to create a private network "
                f"namespace and TUN devices in it); run it with sudo, {MEMORY_HINT}"
            )
    if not os.path.exists(TUN_PATH):
        return f"{TUN_PATH} does not exist (load the tun module, or give it to the container); {MEMORY_HINT}"
    try:
        os.close(os.open(TUN_PATH, os.O_RDWR | os.O_CLOEXEC))
    except OSError as exc:
        return f"cannot open {TUN_PATH}: {exc.strerror}; {MEMORY_HINT}"
    return None


def check_privileges() -> None:
    """Raise PrivilegeError (a LabError) naming the missing privilege, or return."""
    problem = missing_privilege()
    if problem is not None:
        raise PrivilegeError(problem)


def unavailable_reason() -> str | None:
    """For tests and the CLI: None if a private namespace with a TUN device can really be made here."""
    problem = missing_privilege()
    if problem is not None:
        return problem
    try:
        with PrivateNetns.create() as ns:
            fd = ns.call(_probe_tun)
            os.close(fd)
    except (LabError, OSError) as exc:
        return f"cannot create a private network namespace with a TUN device: {exc}"
    return None


def _probe_tun() -> int:
    import fcntl
    import struct

    fd = os.open(TUN_PATH, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", b"tpprobe", 0x0001 | 0x1000))
    except OSError:
        os.close(fd)
        raise
    return fd


# ----------------------------------------------------------------------------------------------------------
# names, markers, stale namespaces


def list_namespaces() -> list[str]:
    """Names of tcpplay's namespaces currently mounted (any run's), sorted."""
    try:
        return sorted(name for name in os.listdir(NETNS_DIR) if name.startswith(PREFIX))
    except OSError:
        return []


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None


def _owner_alive(name: str) -> bool:
    """Is the run that made namespace `name` still alive? Unknown names count as alive (never touched)."""
    match = NAME_RE.match(name)
    if match is None:
        return True
    pid = int(match.group(1))
    started = _start_time(pid)
    if started is None:
        return False
    try:
        marker = json.loads((MARKER_DIR / name).read_text())
    except (OSError, ValueError):
        return True  # pid alive and no marker to prove it is another process: leave it
    recorded = marker.get("starttime")
    return recorded is None or recorded == started  # no start time recorded: cannot tell, keep it


def sweep_stale() -> list[str]:
    """Remove namespaces (and markers) left by tcpplay runs that died without cleaning up (SIGKILL, power
    loss of the process...). Namespaces of live runs, this one's included, are left alone."""
    removed: list[str] = []
    with _lock:
        for name in list_namespaces():
            if name in _live or _owner_alive(name):
                continue
            _remove_mount(name)
            _remove_marker(name)
            removed.append(name)
        with contextlib.suppress(OSError):
            for marker in MARKER_DIR.iterdir():
                name = marker.name
                orphan = name.startswith(PREFIX) and not (NETNS_DIR / name).exists() and name not in _live
                if orphan and not _owner_alive(name):
                    _remove_marker(name)
    return removed


def _write_marker(name: str) -> None:
    data = {
        "pid": os.getpid(),
        "starttime": _start_time(os.getpid()),
        "created": time.time(),
        "argv": sys.argv[:4],
    }
    with contextlib.suppress(OSError):  # the pid in the name still identifies the owner without it
        MARKER_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        (MARKER_DIR / name).write_text(json.dumps(data))


def _remove_marker(name: str) -> None:
    with contextlib.suppress(OSError):
        (MARKER_DIR / name).unlink()


def _remove_mount(name: str) -> None:
    """Unmount and unlink /run/netns/<name> (idempotent; like `ip netns delete`)."""
    path = str(NETNS_DIR / name).encode()
    _lib().umount2(path, MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# ----------------------------------------------------------------------------------------------------------
# the worker thread that lives in the namespace


_Job = tuple[Callable[..., Any], tuple[Any, ...], "Future[Any]"]


class _NsWorker(threading.Thread):
    """The one thread inside the private namespace; runs submitted calls one at a time."""

    def __init__(self, name: str) -> None:
        super().__init__(name=f"netns {name}", daemon=True)
        self.ns_name = name
        self.ready: Future[int] = Future()
        self.inode = 0
        self.queue: SimpleQueue[_Job | None] = SimpleQueue()

    def run(self) -> None:
        try:
            if _lib().unshare(CLONE_NEWNET) != 0:
                code = ctypes.get_errno()
                raise OSError(code, f"unshare(CLONE_NEWNET): {os.strerror(code)}")
            from pyroute2 import netns as pr_netns

            # Bind-mount this thread's namespace at /run/netns/<name> (O_EXCL: never reuse a name).
            pr_netns.attach(self.ns_name, f"{os.getpid()}/task/{threading.get_native_id()}")
            self.inode = os.stat("/proc/thread-self/ns/net").st_ino
        except BaseException as exc:
            self.ready.set_exception(exc)
            return
        self.ready.set_result(self.inode)
        while True:
            item = self.queue.get()
            if item is None:
                return
            fn, args, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                if os.stat("/proc/thread-self/ns/net").st_ino != self.inode:
                    raise NetnsError("the namespace worker is not in its namespace; refusing to run")
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)


class PrivateNetns:
    """A network namespace this run created, with the fds opened in it; removed by close()."""

    def __init__(self, name: str, worker: _NsWorker) -> None:
        self.name = name
        self.path = NETNS_DIR / name
        self._worker = worker
        self._fds: list[int] = []
        self._sockets: list[socket.socket] = []
        self._closers: list[Callable[[], None]] = []
        self.closed = False

    @classmethod
    def create(cls, *, sweep: bool = True) -> PrivateNetns:
        """Sweep namespaces of dead runs, then create a fresh one (`tcpplay-<pid>-<random>`)."""
        check_privileges()
        if sweep:
            sweep_stale()
        _install_handlers()  # before the mount exists, so no signal can catch it unprotected
        try:
            return cls._create()
        except BaseException:
            if not _live:
                _restore_handlers()
            raise

    @classmethod
    def _create(cls) -> PrivateNetns:
        with _lock:
            name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
            _creating.add(name)  # a signal during creation removes it too
            worker = _NsWorker(name)
            try:
                _write_marker(name)
                worker.start()
                inode = worker.ready.result(timeout=10)
            except BaseException as exc:
                worker.queue.put(None)
                if worker.is_alive():
                    worker.join(timeout=2)
                _remove_mount(name)
                _remove_marker(name)
                _creating.discard(name)
                if not isinstance(exc, Exception):
                    raise  # KeyboardInterrupt, SystemExit: not a creation error
                if isinstance(exc, OSError) and exc.errno in (errno.EPERM, errno.EACCES):
                    raise PrivilegeError(
                        f"cannot create a network namespace ({exc.strerror}): the tun link needs root "
                        f"with CAP_SYS_ADMIN and CAP_NET_ADMIN; {MEMORY_HINT}"
                    ) from None
                raise NetnsError(f"cannot create network namespace {name}: {exc}") from exc
            ns = cls(name, worker)
            try:
                if os.stat(ns.path).st_ino != inode or inode == os.stat("/proc/self/ns/net").st_ino:
                    raise NetnsError(f"namespace {name} is not the fresh one its worker made")
            except (OSError, NetnsError):
                ns._teardown()
                _creating.discard(name)
                raise
            _live[name] = ns
            _creating.discard(name)
        return ns

    # ------------------------------------------------------------------------------------------------------

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 30.0) -> T:
        """Run fn(*args) on the thread inside the namespace and return its result (or raise its error)."""
        if self.closed:
            raise NetnsError(f"namespace {self.name} is already removed")
        future: Future[T] = Future()
        self._worker.queue.put((fn, args, future))
        return future.result(timeout=timeout)

    def adopt_fd(self, fd: int) -> int:
        """Close fd when the namespace is removed (a TUN device lives exactly as long as its fd)."""
        self._fds.append(fd)
        return fd

    def adopt_socket(self, sock: socket.socket) -> socket.socket:
        self._sockets.append(sock)
        return sock

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run fn (best effort) when the namespace is removed, before its fds are closed."""
        self._closers.append(fn)

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM) -> socket.socket:
        """A socket created inside the namespace (closed with it)."""
        return self.adopt_socket(self.call(socket.socket, family, type))

    def close(self) -> None:
        """Remove the namespace and everything in it. Idempotent; safe from atexit and signal handlers."""
        if self.closed and self.name not in _live:
            return
        _begin_cleanup()
        try:
            self._teardown()
        finally:
            _live.pop(self.name, None)
            _end_cleanup()

    def _teardown(self) -> None:
        while self._closers:  # first, while the worker can still run calls for them
            with contextlib.suppress(Exception):
                self._closers.pop()()
        self.closed = True
        while self._sockets:
            with contextlib.suppress(OSError):
                self._sockets.pop().close()
        while self._fds:
            with contextlib.suppress(OSError):
                os.close(self._fds.pop())
        _remove_mount(self.name)
        _remove_marker(self.name)
        self._worker.queue.put(None)
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout=2)

    def __enter__(self) -> PrivateNetns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PrivateNetns {self.name}{' removed' if self.closed else ''}>"


# ----------------------------------------------------------------------------------------------------------
# every exit path


_lock = threading.RLock()
_live: dict[str, PrivateNetns] = {}
_creating: set[str] = set()
_cleanup_depth = 0
_pending_signals: list[int] = []
_previous_handlers: dict[int, Any] = {}
CLEANUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def cleanup_all() -> None:
    """Remove every namespace this process still holds (atexit, signal handlers, tests)."""
    for ns in list(_live.values()):
        ns.close()
    for name in list(_creating):  # interrupted half way through create()
        _remove_mount(name)
        _remove_marker(name)
        _creating.discard(name)


def _begin_cleanup() -> None:
    global _cleanup_depth
    _cleanup_depth += 1


def _end_cleanup() -> None:
    global _cleanup_depth
    _cleanup_depth -= 1
    if _cleanup_depth == 0:
        if not _live:
            _restore_handlers()
        while _pending_signals:
            # Deliver it again now that the cleanup is over; Python runs the handler in the main
            # thread, whichever thread finished the cleanup.
            signal.raise_signal(_pending_signals.pop(0))


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM/SIGHUP: remove our namespaces, then do what the previous handler would have done.
    SIGINT: only the previous behaviour (KeyboardInterrupt); the unwinding and atexit clean up.
    During a cleanup every one of them waits until it is finished."""
    if _cleanup_depth > 0:
        _pending_signals.append(signum)
        return
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if signum != signal.SIGINT:
        cleanup_all()
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _install_handlers() -> None:
    """Install the handlers once, from the main thread only (Python's rule); elsewhere rely on atexit."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in CLEANUP_SIGNALS:
        if signum in _previous_handlers:
            continue
        current = signal.getsignal(signum)
        if current == signal.SIG_IGN or current is None:
            continue  # the program chose to ignore it (nohup) or it was set outside Python: leave it
        _previous_handlers[signum] = current
        signal.signal(signum, _on_signal)


def _restore_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, previous in list(_previous_handlers.items()):
        if signal.getsignal(signum) is _on_signal:
            signal.signal(signum, previous)
        del _previous_handlers[signum]


atexit.register(cleanup_all)
