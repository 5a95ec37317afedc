"""The Lab: hosts, the link between them, a clock, the capture, and every control a user has.

The UI, the demo interpreter and the drill runner all talk only to a Lab. It moves packets from one host's
output onto the link and from the link into the other host at their arrival times, fires host timers on
time, and tells observers (the UI, the headless printer) what happened, in stack time.

User-facing times are seconds (floats); inside, stack time is integer microseconds.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket as pysocket
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stack import Event, Host, Socket, SocketEvent, State
from stack.snapshot import ConnectionSnapshot
from stack.wire import SYN, build_packet, syn_options

from .capture import CORRUPTED, HOST_DOWN, NO_ROUTE, Capture, CaptureRecord
from .clock import ScaledClock, VirtualClock
from .links.memory import DROP_KINDS, Impairment, MemoryLink

if TYPE_CHECKING:
    from .links.kernel import KernelPeer, KernelSnapshot
    from .links.tun import Arrival

SEC = 1_000_000
LAB_NET = "198.18.0.0/15"  # RFC 2544: reserved for network benchmarking labs
DEFAULT_HOSTS = {"client": "198.18.0.1", "server": "198.18.0.2"}
DEFAULT_PORT = 8080
SPOOF_PREFIX = "198.19."
RECEIVED_KEEP = 1 << 20  # bytes of what a program read that the lab keeps (the first ones)


class LabError(Exception):
    """A user action that cannot be done, with a message that says why and what to do instead."""


# ----------------------------------------------------------------------------------------------------------
# what observers see


@dataclass(frozen=True, slots=True)
class PacketEvent:
    """A segment was put on the wire (its fate is already decided; see record.fate)."""

    time: int
    record: CaptureRecord


@dataclass(frozen=True, slots=True)
class HostEvent:
    """A trace event from one host's stack (state change, timer, socket event, drop...)."""

    time: int
    host: str
    event: Event


@dataclass(frozen=True, slots=True)
class Note:
    """A user action and its result, or narration."""

    time: int
    host: str | None
    text: str
    kind: str = "action"  # "action", "narration", "error", "info"


LabEvent = PacketEvent | HostEvent | Note


@dataclass(slots=True)
class App:
    """What the user's program on a host holds: a listener and connection sockets."""

    listener: Socket | None = None
    conns: list[Socket] = field(default_factory=list)
    selected: int = -1  # index into conns; -1 = the newest
    auto_accept: bool = True
    # What the program read: the first RECEIVED_KEEP bytes (what a lesson compares) and the total count.
    # Keeping everything would grow without bound in a long bulk transfer.
    received: bytearray = field(default_factory=bytearray)
    received_total: int = 0

    def take(self, data: bytes) -> None:
        self.received_total += len(data)
        room = RECEIVED_KEEP - len(self.received)
        if room > 0:
            self.received += data[:room]

    def current(self) -> Socket | None:
        live = [s for s in self.conns if not s.closed]
        if not live:
            return None
        if 0 <= self.selected < len(self.conns) and not self.conns[self.selected].closed:
            return self.conns[self.selected]
        return live[-1]


SOCKOPTS: dict[str, tuple[int, int]] = {
    "SO_REUSEADDR": (pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR),
    "SO_KEEPALIVE": (pysocket.SOL_SOCKET, pysocket.SO_KEEPALIVE),
    "SO_LINGER": (pysocket.SOL_SOCKET, pysocket.SO_LINGER),
    "SO_RCVBUF": (pysocket.SOL_SOCKET, pysocket.SO_RCVBUF),
    "SO_SNDBUF": (pysocket.SOL_SOCKET, pysocket.SO_SNDBUF),
    "TCP_NODELAY": (pysocket.IPPROTO_TCP, pysocket.TCP_NODELAY),
    "TCP_KEEPIDLE": (pysocket.IPPROTO_TCP, pysocket.TCP_KEEPIDLE),
    "TCP_KEEPINTVL": (pysocket.IPPROTO_TCP, pysocket.TCP_KEEPINTVL),
    "TCP_KEEPCNT": (pysocket.IPPROTO_TCP, pysocket.TCP_KEEPCNT),
    "TCP_MAXSEG": (pysocket.IPPROTO_TCP, pysocket.TCP_MAXSEG),
}


def _derive_seed(seed: int, name: str, generation: int = 0) -> int:
    digest = hashlib.blake2b(f"{seed}:{name}:{generation}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def errno_name(code: int) -> str:
    return errno.errorcode.get(code, str(code))


def _real_link_mode(link: str | None, peer: str | None) -> str:
    """The real-time link to open: "tun" (stack to stack over TUN), "kernel" (a kernel peer), or ""."""
    if link not in (None, "memory", "tun"):
        raise LabError(f"link must be 'memory' or 'tun', not {link!r}")
    if peer not in (None, "stack", "kernel"):
        raise LabError(f"peer must be 'stack' or 'kernel', not {peer!r}")
    if peer == "kernel":
        if link == "memory":
            raise LabError("the kernel peer is reached over a TUN device: use link 'tun' (or leave it unset)")
        return "kernel"
    return "tun" if link == "tun" else ""


class Lab:
    """Two (or more) stack hosts on an in-memory wire, a clock, and the controls a user has."""

    def __init__(
        self,
        *,
        seed: int = 1,
        hosts: dict[str, str] | None = None,
        settings: dict[str, Any] | None = None,
        delay: float | None = None,  # seconds each way; None = 10 ms on the memory link, 0 on real ones
        clock: VirtualClock | ScaledClock | None = None,
        capture_size: int = 100_000,
        checksum: bool = True,
        log_size: int | None = None,
        link: str | None = None,
        peer: str | None = None,
        kernel_role: str = "server",
        virtual_time: bool = False,
    ) -> None:
        """link: "memory" (the default; no privileges) or "tun" (each stack host on a TUN device in a private
        network namespace, the kernel routing between them; needs root). peer="kernel": the host named
        `kernel_role` is Linux itself, a real socket in that namespace facing our other host over TUN
        (implies link "tun"). Real-time links run on a RealtimeClock (1x, no pause: the kernel's clock),
        default to no added delay, are driven by `pump()` and hold a namespace that `close_link()` (or
        `with Lab(...)`, atexit, SIGTERM/SIGHUP) removes.

        virtual_time=True with link "tun" (no kernel peer): the kernel only routes between two of our
        stacks, so the lab keeps `clock` (a VirtualClock by default) and the memory link's 10 ms default
        delay; each packet crosses the kernel synchronously and arrives at its virtual time (see
        `_put_through_kernel`). The namespace is held and removed as above. On the memory link it is the
        normal mode; with a kernel peer it is refused (the kernel's timers are real)."""
        real = _real_link_mode(link, peer)
        if virtual_time and real == "kernel":
            raise LabError(
                "a kernel peer runs on the kernel's real clock (its timers are real): virtual time only "
                "works between two of our stacks (link 'tun' without a kernel peer)"
            )
        if real and clock is not None and not virtual_time:
            raise LabError(
                "a real-time link (tun / kernel peer) runs on the kernel's clock; pass no clock "
                "(or virtual_time=True for a tun link between two of our stacks)"
            )
        self.seed = seed
        self.clock = clock or VirtualClock()
        self.link = MemoryLink(seed)
        self.link_mode = "memory"
        self.kernel: KernelPeer | None = None
        self.realtime_link = False
        if real and not virtual_time:
            from .links.tun import RealtimeClock

            self.clock = RealtimeClock()  # stack time: monotonic microseconds since the lab started
        self.capture = Capture(capture_size)
        self.checksum = checksum
        # The event log's packet events hold their capture records: a log longer than the capture would
        # keep alive packets the capture ring already let go (twice the memory in a long bulk transfer).
        self.log: deque[LabEvent] = deque(maxlen=capture_size if log_size is None else log_size)
        self._observers: list[Callable[[LabEvent], None]] = []
        self._settings = dict(settings or {})
        self.hosts: dict[str, Host] = {}
        self.apps: dict[str, App] = {}
        self.down: set[str] = set()
        self._generation: dict[str, int] = {}
        self._unsubscribe: dict[str, Callable[[], None]] = {}
        self._now = self.clock.now()
        self.trace_timers = True
        kernel_name = kernel_role if real == "kernel" else None
        for name, address in (hosts or DEFAULT_HOSTS).items():
            if name != kernel_name:
                self._add_host(name, address)
        if real:
            self._open_real_link(hosts or DEFAULT_HOSTS, kernel_name)
        if delay is None:
            delay = 0.0 if real and not virtual_time else 0.010
        try:
            if real and virtual_time:
                tun: Any = self.link
                tun.use_virtual_time()
                self.realtime_link = False
            for name in [*self.hosts, *([kernel_name] if kernel_name else [])]:
                self.link.set_impairment(name, delay=delay)
        except BaseException:
            self.close_link()  # never leave a namespace behind a constructor that failed
            raise

    # ------------------------------------------------------------------------------------------------------
    # hosts

    def _add_host(self, name: str, address: str) -> Host:
        if name in ("any", "both", "spoofed"):
            raise LabError(f"{name!r} is a reserved word and cannot name a host")
        generation = self._generation.get(name, 0)
        try:
            host = Host(
                address,
                seed=_derive_seed(self.seed, name, generation),
                name=name,
                checksum=self.checksum,
                **self._settings,
            )
        except ValueError as exc:
            raise LabError(str(exc)) from None
        self.hosts[name] = host
        self.apps[name] = App()
        self._unsubscribe[name] = host.subscribe(
            lambda event, n=name: self._host_event(n, event), segments=False
        )
        return host

    def _open_real_link(self, addresses: dict[str, str], kernel_name: str | None) -> None:
        """Create the private namespace, the TUN devices and (for a kernel peer) the Linux end."""
        from .links.tun import open_tun_link

        kernel: tuple[str, str] | None = None
        if kernel_name is not None:
            if kernel_name not in addresses:
                raise LabError(f"kernel_role must name a host ({', '.join(addresses)}), not {kernel_name!r}")
            kernel = (kernel_name, addresses[kernel_name])
        stack_hosts = {name: host.address for name, host in self.hosts.items()}
        self.link = open_tun_link(self.seed, stack_hosts, kernel_peer=kernel)
        self.link_mode = "kernel" if kernel else "tun"
        self.realtime_link = True
        if kernel is not None:
            from .links.kernel import KernelPeer

            name = kernel[0]
            self.kernel = KernelPeer(
                self.link.netns, name, kernel[1], lambda: self._now, lambda text: self.note(text, name)
            )

    def close_link(self) -> None:
        """Remove what the lab holds outside this process: a real-time link's namespace, its devices and
        the kernel peer's sockets. Idempotent; a memory lab holds nothing."""
        closer = getattr(self.link, "close", None)
        if closer is not None:
            closer()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_link()

    def _kernel(self, name: str) -> KernelPeer | None:
        """The kernel peer if `name` is its host name, else None."""
        kernel = self.kernel
        return kernel if kernel is not None and name == kernel.name else None

    def address_of(self, name: str) -> str:
        """The IPv4 address of a host (stack or kernel peer) by name."""
        kernel = self._kernel(name)
        return kernel.address if kernel is not None else self.host(name).address

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise LabError(f"no host named {name!r}; hosts are {', '.join(self.hosts)}") from None

    def other(self, name: str) -> str:
        others = [n for n in [*self.hosts, *([self.kernel.name] if self.kernel else [])] if n != name]
        if not others:
            raise LabError("the lab has only one host")
        return others[0]

    def name_of(self, address: str) -> str | None:
        for name, host in self.hosts.items():
            if host.address == address:
                return name
        return None

    @property
    def client(self) -> Host:
        return self.host("client")

    @property
    def server(self) -> Host:
        return self.host("server")

    # ------------------------------------------------------------------------------------------------------
    # observation

    def subscribe(self, observer: Callable[[LabEvent], None]) -> Callable[[], None]:
        self._observers.append(observer)

        def unsubscribe() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return unsubscribe

    def _publish(self, event: LabEvent) -> None:
        self.log.append(event)
        for observer in list(self._observers):
            observer(event)

    def _host_event(self, name: str, event: Event) -> None:
        # Per-segment events are not subscribed to: the capture shows segments. "readable" (one per data
        # segment received) is left out of the log for the same reason: it would double its size.
        if isinstance(event, SocketEvent) and event.what == "readable":
            return
        self._publish(HostEvent(event.now, name, event))

    def note(self, text: str, host: str | None = None, kind: str = "action") -> None:
        self._publish(Note(self._now, host, text, kind))

    @property
    def now(self) -> int:
        """Stack time in microseconds."""
        return self._now

    @property
    def seconds(self) -> float:
        return self._now / SEC

    def connections(self, host: str) -> list[ConnectionSnapshot] | list[KernelSnapshot]:
        kernel = self._kernel(host)
        if kernel is not None:
            return kernel.connections()
        if host in self.down:
            return []
        return self.host(host).connections()

    def state(self, host: str) -> State:
        """The state of the host's current connection (LISTEN if only a listener, CLOSED if nothing)."""
        kernel = self._kernel(host)
        if kernel is not None:
            return kernel.state()
        sock = self.apps[host].current() if host in self.apps else None
        if sock is not None:
            return sock.state
        app = self.apps.get(host)
        if app is not None and app.listener is not None and not app.listener.closed:
            return State.LISTEN
        return State.CLOSED

    def snapshot(self, host: str) -> ConnectionSnapshot | KernelSnapshot | None:
        kernel = self._kernel(host)
        if kernel is not None:
            return kernel.snapshot()
        sock = self.apps[host].current()
        if sock is not None and sock.conn is not None:
            return sock.conn.snapshot()
        app = self.apps[host]
        if app.listener is not None and app.listener.listener is not None:
            return app.listener.listener.snapshot()
        return None

    def describe_link(self) -> str:
        mode = self.link_mode
        return f"{mode}: {self.link.describe()}"

    # ------------------------------------------------------------------------------------------------------
    # time

    def _next_due(self) -> int | None:
        candidates: list[int] = []
        arrival = self.link.next_arrival()
        if arrival is not None:
            candidates.append(arrival)
        for name, host in self.hosts.items():
            if name in self.down:
                continue
            if host.has_output():
                candidates.append(self._now)
            deadline = host.next_deadline()
            if deadline is not None:
                candidates.append(deadline)
        return min(candidates) if candidates else None

    def next_event_time(self) -> int | None:
        """When something will next happen (an arrival or a timer), in stack microseconds."""
        return self._next_due()

    def _process_at(self, t: int) -> None:
        """Handle everything due at time t (deliveries, timers, the packets they cause), at time t."""
        self._now = max(self._now, t)
        for _ in range(100_000):
            progressed = False
            while True:
                item = self.link.pop_due(t)
                if item is None:
                    break
                arrival, dst, packet, _number = item
                progressed = True
                if dst in self.down or dst not in self.hosts:
                    continue
                self.hosts[dst].receive(packet, max(arrival, self.hosts[dst].now))
            for name, host in self.hosts.items():
                if name in self.down:
                    continue
                for packet in host.poll(t):
                    progressed = True
                    self._put_on_wire(name, packet, t)
            if self._auto_accept():
                progressed = True
            if not progressed:
                return
        raise LabError("the lab is looping at one instant (more than 100000 rounds); this is a bug")

    def _auto_accept(self) -> bool:
        """Apps with auto_accept take finished connections off the accept queue as soon as they appear."""
        took = False
        for name, app in self.apps.items():
            sock = app.listener
            if name in self.down or not app.auto_accept or sock is None or sock.listener is None:
                continue
            while sock.listener.accept_queue:
                new, peer = sock.accept()
                app.conns.append(new)
                app.selected = -1
                self.note(f"accept() = new socket for {peer[0]}:{peer[1]}", name)
                took = True
        return took

    def _put_on_wire(self, src: str, packet: bytes, t: int) -> CaptureRecord:
        if self.realtime_link:
            return self._put_on_tun(src, packet, t)
        if self.link_mode == "tun":
            return self._put_through_kernel(src, packet, t)
        dst_addr = ".".join(str(b) for b in packet[16:20])
        dst = self.name_of(dst_addr)
        verdict = self.link.transmit(src, packet, t)
        fate = verdict.fate
        if dst is None:
            fate = NO_ROUTE if verdict.arrivals else fate
        elif dst in self.down and verdict.arrivals:
            fate = HOST_DOWN
        record = self.capture.add(t, src, dst or dst_addr, packet, fate)
        if verdict.arrivals and dst is not None and fate != HOST_DOWN:
            record.arrival = verdict.arrivals[0]
            wire_packet = self.link.corrupt(packet) if fate == CORRUPTED else packet
            for arrival in verdict.arrivals:
                self.link.schedule(dst, wire_packet, arrival, record.number)
        self._publish(PacketEvent(t, record))
        return record

    def _put_through_kernel(self, src: str, packet: bytes, t: int) -> CaptureRecord:
        """Virtual-time TUN link: the memory wire's verdict (impairments, fate, arrival times), but every
        copy that crosses goes through the kernel: written to the sender's TUN device and read back from the
        receiver's once the kernel has routed it (links.tun.TunLink.forward, a bounded real-time wait), then
        delivered at its virtual arrival time. The capture holds the packet as the kernel forwarded it (TTL
        63), as tcpdump on the receiver's device shows it; a corrupted one as sent (the memory link's
        convention, fate "corrupted") under the kernel's IP header. Packets for nobody here are written out
        (the kernel has no route and drops them); packets lost in our link layer never reach the device."""
        link: Any = self.link
        dst_addr = ".".join(str(b) for b in packet[16:20])
        dst = self.name_of(dst_addr)
        verdict = link.transmit(src, packet, t)
        fate = verdict.fate
        if dst is None:
            fate = NO_ROUTE if verdict.arrivals else fate
        elif dst in self.down and verdict.arrivals:
            fate = HOST_DOWN
        copies: list[bytes] = []
        shown = packet
        if verdict.arrivals and dst is not None and fate != HOST_DOWN:
            wire_packet = link.corrupt(packet) if fate == CORRUPTED else packet
            copies = [link.forward(src, dst, wire_packet) for _ in verdict.arrivals]
            ihl = (packet[0] & 0x0F) * 4
            shown = copies[0][:ihl] + packet[ihl:] if fate == CORRUPTED else copies[0]
        elif fate == NO_ROUTE:
            link.send(src, packet, t, t)
        record = self.capture.add(t, src, dst or dst_addr, shown, fate)
        if copies:
            record.arrival = verdict.arrivals[0]
            for arrival, copy in zip(verdict.arrivals, copies, strict=True):
                link.schedule(dst, copy, arrival, record.number)
        self._publish(PacketEvent(t, record))
        return record

    def _put_on_tun(self, src: str, packet: bytes, t: int, inbound: Arrival | None = None) -> CaptureRecord:
        """Real-time link: capture the packet, decide its fate with the impairments (our link layer), then
        write it to the sender's TUN device or -- `inbound`, a packet the kernel sent (links.tun.Arrival)
        -- deliver it to our host at its arrival time (nowhere if it is for nobody here)."""
        link: Any = self.link
        if inbound is None:
            dst = link.destination(packet)
        else:
            dst = inbound.dst or link.destination(packet)
        verdict = link.transmit(src, packet, t)
        fate = verdict.fate
        if inbound is not None:
            nobody = inbound.dst is None
        else:
            nobody = dst not in self.hosts and self._kernel(dst) is None
        if nobody and verdict.arrivals:
            fate = NO_ROUTE  # a spoofed address: still written out (tcpdump sees it), the kernel drops it
        elif dst in self.down and verdict.arrivals:
            fate = HOST_DOWN
        record = self.capture.add(t, src, dst, packet, fate)
        if verdict.arrivals and fate != HOST_DOWN and (inbound is None or fate != NO_ROUTE):
            record.arrival = verdict.arrivals[0]
            wire_packet = link.corrupt(packet) if fate == CORRUPTED else packet
            for arrival in verdict.arrivals:
                if inbound is None:
                    link.send(src, wire_packet, arrival, t)
                else:
                    link.schedule(dst, wire_packet, arrival, record.number)
        self._publish(PacketEvent(t, record))
        return record

    def pump(self, timeout: float = 0.0) -> int:
        """Real-time links: wait up to `timeout` seconds for a packet from the kernel or for our next due
        event (timer, delayed packet), read what the TUN devices hold (non-blocking) and process
        everything up to the present. Returns the number of packets read. The UI calls it from its
        refresh loop, scripts in a loop; on the memory link it is sync_clock()."""
        if not self.realtime_link:
            self.sync_clock()
            return 0
        link: Any = self.link
        wait = max(0.0, timeout)
        due = self._next_due()
        if due is not None:
            wait = min(wait, max(0.0, (due - self.clock.now()) / SEC))
        if wait > 0:
            link.wait(wait)
        now = max(self.clock.now(), self._now)
        self.run_to(now)  # timers due by now first, so the capture stays in time order
        arrivals = link.poll_arrivals(now)
        for arrival in arrivals:
            if not arrival.forwarded:
                self._put_on_tun(arrival.src, arrival.packet, now, arrival)
            elif arrival.dst is not None:  # we sent it: captured and impaired when it was written
                link.schedule(arrival.dst, arrival.packet, now, 0)
        self.run_to(now)
        return len(arrivals)

    def run_to(self, t: int) -> None:
        """Process every event up to stack time t, each at its own time, and end with the clock at t."""
        if t < self._now:
            raise LabError(f"time cannot go backwards ({t} < {self._now} us)")
        while True:
            due = self._next_due()
            if due is None or due > t:
                break
            self._process_at(max(due, self._now))
        self._now = t
        self._sync_hosts()

    def advance(self, seconds: float) -> None:
        """Let `seconds` of stack time pass (virtual clock: instantly)."""
        if seconds < 0:
            raise LabError(f"cannot advance by a negative time ({seconds} s)")
        target = self._now + round(seconds * SEC)
        if self.realtime_link:  # real time: wait it out, handling the kernel's packets as they come
            while self.clock.now() < target:
                self.pump(min(0.05, (target - self.clock.now()) / SEC))
            self.pump(0)
            return
        self.run_to(target)
        if not self.clock.realtime:
            self.clock.jump(self._now)

    def step(self) -> int | None:
        """Jump to the next event and process it; returns its time, or None when nothing is pending.
        On a real-time link time cannot jump: wait (up to 1 s) for the next event instead."""
        if self.realtime_link:
            self.pump(1.0)
            return self._now
        due = self._next_due()
        if due is None:
            return None
        self.run_to(max(due, self._now))
        if isinstance(self.clock, VirtualClock) or self.clock.now() < self._now:
            self.clock.jump(self._now)
        return self._now

    def next_timer(self) -> tuple[int, str, str] | None:
        """The next host timer: (deadline, host, timer name), for "skip ahead to the next timer"."""
        best: tuple[int, str, str] | None = None
        for name, host in self.hosts.items():
            if name in self.down:
                continue
            for conn in host.conns.values():
                for timer, deadline in conn.timers.items():
                    if best is None or deadline < best[0]:
                        best = (deadline, name, timer)
            for listener in host.listeners.values():
                for req in listener.syn_queue.values():
                    for timer, deadline in req.timers.items():
                        if best is None or deadline < best[0]:
                            best = (deadline, name, timer)
        return best

    def skip_to_next_timer(self) -> tuple[int, str, str] | None:
        if self.realtime_link:
            raise LabError("cannot skip ahead on a real-time link: the kernel's clock is real time")
        nxt = self.next_timer()
        if nxt is not None:
            self.run_to(max(nxt[0], self._now))
            if self.clock.now() < self._now:
                self.clock.jump(self._now)
        return nxt

    def run_until(self, condition: Callable[[], bool], timeout: float = 60.0) -> bool:
        """Step through events until condition() holds or `timeout` seconds of stack time pass (real
        seconds on a real-time link)."""
        if self.realtime_link:
            limit = self.clock.now() + round(timeout * SEC)
            while not condition():
                left = limit - self.clock.now()
                if left <= 0:
                    return condition()
                self.pump(min(left / SEC, 0.01))
            return True
        limit = self._now + round(timeout * SEC)
        while not condition():
            due = self._next_due()
            if due is None or due > limit:
                self.run_to(max(limit, self._now))
                return condition()
            self.run_to(max(due, self._now))
        if not self.clock.realtime:
            self.clock.jump(self._now)
        return True

    def settle(self) -> None:
        """Process everything due now (after a user action) without moving time."""
        self.run_to(self._now)

    def sync_clock(self) -> None:
        """Real-time mode: process everything up to the clock's current time."""
        if self.realtime_link:
            self.pump(0)
            return
        target = self.clock.now()
        if target > self._now:
            self.run_to(target)

    def _sync_hosts(self) -> None:
        for name, host in self.hosts.items():
            if name in self.down:
                continue
            for packet in host.poll(self._now):
                self._put_on_wire(name, packet, self._now)

    # ------------------------------------------------------------------------------------------------------
    # user actions on sockets

    def _up(self, host: str) -> Host:
        if self.realtime_link:
            self.pump(0)  # act at the present, not at the last pump
        h = self.host(host)
        if host in self.down:
            raise LabError(f"{host} is down (crashed); reboot it first")
        self._sync_hosts()
        return h

    def _call(
        self, host: str, what: str, fn: Callable[[], Any], show: Callable[[Any], str] | None = None
    ) -> Any:
        """Run a socket call, log it as strace would (before the packets it causes), then push those."""
        try:
            result = fn()
        except BlockingIOError as exc:
            self.note(f"{what} = -1 {errno_name(exc.errno or 0)}", host)
            self.settle()
            raise
        except OSError as exc:
            self.note(f"{what} = -1 {errno_name(exc.errno or 0)} ({exc.strerror})", host, kind="error")
            self.settle()
            raise
        self.note(f"{what} = {show(result) if show else 0}", host)
        self.settle()
        return result

    def listen(
        self, host: str = "server", port: int = DEFAULT_PORT, backlog: int = 128, *, reuseaddr: bool = True
    ):
        """socket(), SO_REUSEADDR, bind(0.0.0.0:port), listen(backlog) on `host`."""
        kernel = self._kernel(host)
        if kernel is not None:
            return kernel.listen(port, backlog)
        h = self._up(host)
        app = self.apps[host]
        if app.listener is not None and not app.listener.closed:
            raise LabError(f"{host} is already listening on port {app.listener.getsockname()[1]}")
        sock = h.socket()
        if reuseaddr:
            sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
        self._call(host, f"bind(0.0.0.0:{port})", lambda: sock.bind(("0.0.0.0", port)))
        self._call(host, f"listen({backlog})", lambda: sock.listen(backlog))
        app.listener = sock
        return sock

    def connect(
        self,
        host: str = "client",
        to: str | tuple[str, int] | None = None,
        port: int = DEFAULT_PORT,
        *,
        bind_port: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> Socket | pysocket.socket:
        """socket() and a non-blocking connect() from `host` to another host (name) or address. A real
        socket.socket when `host` is the kernel peer."""
        if to is None:
            to = self.other(host)
        address = (self.address_of(to), port) if isinstance(to, str) else to
        kernel = self._kernel(host)
        if kernel is not None:
            return kernel.connect(address, bind_port=bind_port or 0, options=options)
        h = self._up(host)
        sock = h.socket()
        for name, value in (options or {}).items():
            self._setsockopt(sock, name, value)
        if bind_port is not None:
            self._call(host, f"bind(0.0.0.0:{bind_port})", lambda: sock.bind(("0.0.0.0", bind_port)))
        app = self.apps[host]
        app.conns.append(sock)
        app.selected = -1
        code = sock.connect_ex(address)
        self.note(
            f"connect({address[0]}:{address[1]}) = " + (f"-1 {errno_name(code)}" if code else "0"), host
        )
        self.settle()
        return sock

    def accept(self, host: str = "server") -> Socket | pysocket.socket | None:
        kernel = self._kernel(host)
        if kernel is not None:
            return kernel.accept()
        app = self.apps[host]
        self._up(host)
        if app.listener is None or app.listener.closed:
            raise LabError(f"{host} is not listening; listen first")
        try:
            sock, peer = app.listener.accept()
        except BlockingIOError:
            self.note("accept() = -1 EAGAIN (nothing in the accept queue)", host)
            return None
        app.conns.append(sock)
        app.selected = -1
        self.note(f"accept() = new socket for {peer[0]}:{peer[1]}", host)
        self.settle()
        return sock

    def _conn(self, host: str, sock: Socket | None) -> Socket:
        if sock is not None:
            return sock
        current = self.apps[host].current()
        if current is None:
            raise LabError(f"{host} has no open connection; connect (or listen and accept) first")
        return current

    def send(self, host: str, data: bytes, sock: Socket | None = None) -> int:
        """send() as much of data as the send buffer takes; returns the count (0 if it was full)."""
        kernel = self._kernel(host)
        if kernel is not None:
            return kernel.send(data)
        self._up(host)
        s = self._conn(host, sock)
        try:
            n = self._call(host, f"send({len(data)} bytes)", lambda: s.send(data), str)
        except BlockingIOError:
            return 0
        return int(n)

    def recv(self, host: str, size: int = 65536, sock: Socket | None = None) -> bytes:
        kernel = self._kernel(host)
        if kernel is not None:
            return kernel.recv(size) or b""
        self._up(host)
        s = self._conn(host, sock)
        try:
            data = self._call(
                host,
                f"recv({size})",
                lambda: s.recv(size),
                lambda d: f"{len(d)}" + ("" if d else " (end of stream)"),
            )
        except BlockingIOError:
            return b""
        self.apps[host].take(data)
        return bytes(data)

    def shutdown(self, host: str, how: str = "wr", sock: Socket | None = None) -> None:
        modes = {"rd": pysocket.SHUT_RD, "wr": pysocket.SHUT_WR, "rdwr": pysocket.SHUT_RDWR}
        if how.lower() not in modes:
            raise LabError(f"shutdown takes rd, wr or rdwr, not {how!r}")
        kernel = self._kernel(host)
        if kernel is not None:
            return kernel.shutdown(modes[how.lower()])
        self._up(host)
        s = self._conn(host, sock)
        self._call(host, f"shutdown(SHUT_{how.upper()})", lambda: s.shutdown(modes[how.lower()]))

    def close(self, host: str, sock: Socket | None = None, *, listener: bool = False) -> None:
        kernel = self._kernel(host)
        if kernel is not None:
            return kernel.close_listener() if listener else kernel.close()
        self._up(host)
        app = self.apps[host]
        if listener:
            if app.listener is None or app.listener.closed:
                raise LabError(f"{host} has no listener to close")
            self._call(host, "close(listener)", app.listener.close)
            return
        s = self._conn(host, sock)
        self._call(host, "close()", s.close)

    def abort(self, host: str, sock: Socket | None = None) -> None:
        """SO_LINGER {1, 0} then close(): the abortive release (RST)."""
        kernel = self._kernel(host)
        if kernel is not None:
            return kernel.abort()
        self._up(host)
        s = self._conn(host, sock)
        s.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_LINGER, struct.pack("ii", 1, 0))
        self.note("setsockopt(SO_LINGER, {onoff=1, linger=0}) = 0", host)
        self._call(host, "close()", s.close)

    def _setsockopt(self, sock: Socket, name: str, value: Any) -> None:
        key = name.upper()
        if key not in SOCKOPTS:
            raise LabError(f"unknown socket option {name!r}; one of {', '.join(SOCKOPTS)}")
        level, opt = SOCKOPTS[key]
        if key == "SO_LINGER":
            if not (isinstance(value, tuple | list) and len(value) == 2):
                raise LabError("SO_LINGER takes (onoff, seconds), e.g. (1, 0)")
            value = struct.pack("ii", int(value[0]), int(value[1]))
        elif isinstance(value, bool):
            value = int(value)
        try:
            sock.setsockopt(level, opt, value)
        except (OSError, TypeError) as exc:
            raise LabError(f"setsockopt({key}, {value!r}) failed: {exc}") from None

    def setsockopt(self, host: str, name: str, value: Any, sock: Socket | None = None) -> None:
        """Set a socket option on the host's current connection (or listener if it has none)."""
        kernel = self._kernel(host)
        if kernel is not None:
            return kernel.setsockopt(name, value)
        self._up(host)
        target = sock or self.apps[host].current() or self.apps[host].listener
        if target is None:
            raise LabError(f"{host} has no socket yet; connect or listen first")
        self._setsockopt(target, name, value)
        self.note(f"setsockopt({name.upper()}, {value}) = 0", host)
        self.settle()

    def set_setting(self, host: str, name: str, value: Any) -> None:
        """Change a stack setting (sysctl) on one host or "both"."""
        targets = list(self.hosts) if host in ("both", "any") else [host]
        for target in targets:
            try:
                self.host(target).set(**{name: value})
            except ValueError as exc:
                raise LabError(str(exc)) from None
        if host in ("both", "any"):
            self._settings[name] = value
        self.note(f"sysctl {name}={value}", None if host in ("both", "any") else host, kind="info")

    # ------------------------------------------------------------------------------------------------------
    # link and host actions

    def _direction(self, direction: str) -> str:
        if direction in ("any", "both"):
            return "any"
        if direction in self.hosts or self._kernel(direction) is not None:
            return direction
        aliases = {"c2s": "client", "s2c": "server"}
        if direction in aliases and aliases[direction] in self.hosts:
            return aliases[direction]
        raise LabError(
            f"direction must be a sending host ({', '.join(self.hosts)}) or 'any', not {direction!r}"
        )

    def drop_next(self, direction: str = "any", kind: str = "any", count: int = 1) -> None:
        """Drop the next `count` segments sent by `direction` that are of `kind`."""
        if kind not in DROP_KINDS:
            raise LabError(f"unknown segment kind {kind!r}; one of {', '.join(DROP_KINDS)}")
        if count < 1:
            raise LabError("count must be at least 1")
        src = self._direction(direction)
        self.link.add_drop_rule(src, kind, count)
        what = "segment" if kind == "any" else f"{kind} segment"
        plural = "s" if count > 1 else ""
        self.note(f"drop the next {count} {what}{plural} sent by {src}", None, kind="info")

    def impair(self, direction: str = "any", **values: float) -> Impairment:
        src = self._direction(direction)
        try:
            imp = self.link.set_impairment(src, **values)
        except ValueError as exc:
            raise LabError(str(exc)) from None
        self.note(f"link from {src}: {imp.describe()}", None, kind="info")
        return imp

    def partition(self, on: bool = True) -> None:
        """Pull (True) or replug (False) the cable."""
        self.link.partitioned = on
        self.note(
            "cable pulled: nothing crosses the link" if on else "cable plugged back in", None, kind="info"
        )

    def crash(self, host: str) -> None:
        """The host vanishes silently: no FIN, no RST; packets to it are lost."""
        self.host(host)
        if host in self.down:
            raise LabError(f"{host} is already down")
        self.down.add(host)
        self.link.flush(host)
        self.note(f"{host} crashed (power cut: it sends nothing and hears nothing)", host, kind="info")

    def reboot(self, host: str) -> None:
        """The host comes back with no connections (so it answers old segments with RST)."""
        old = self.host(host)
        self._unsubscribe.pop(host)()
        self._generation[host] = self._generation.get(host, 0) + 1
        self.hosts.pop(host)
        self.apps.pop(host)
        new = self._add_host(host, old.address)
        new.poll(self._now)
        self.down.discard(host)
        self.note(f"{host} rebooted: no connections, no listeners", host, kind="info")

    def syn_flood(self, target: str = "server", count: int = 100, port: int = DEFAULT_PORT) -> None:
        """Send `count` SYNs from spoofed addresses (198.19.x.y) that will never answer."""
        if count < 1 or count > 100_000:
            raise LabError("a SYN flood needs between 1 and 100000 SYNs")
        dst = self.address_of(target)
        rng_key = hashlib.blake2b(f"flood:{self.seed}:{self.capture.total}".encode(), digest_size=8).digest()
        base = int.from_bytes(rng_key, "big")
        self._sync_hosts()
        for i in range(count):
            n = (base + i * 7919) & 0xFFFF
            src = f"{SPOOF_PREFIX}{n >> 8}.{(n & 0xFF) or 1}"
            sport = 1024 + ((base >> 16) + i * 104729) % 60000
            isn = (base * (i + 1) * 2654435761) & 0xFFFFFFFF
            options = syn_options(1460, sack=True, ts=None, wscale=7)
            packet = build_packet(src, dst, sport, port, isn, 0, SYN, 64240, options, b"", checksum=True)
            self._put_on_wire("spoofed", packet, self._now)
        self.note(f"SYN flood: {count} SYNs to {target}:{port} from spoofed addresses", None, kind="info")
        self.settle()

    def export_pcap(self, path: str) -> int:
        try:
            n = self.capture.export_pcap(path)
        except OSError as exc:
            raise LabError(str(exc)) from None
        self.note(f"saved {n} packets to {os.path.abspath(path)}", None, kind="info")
        return n

    # ------------------------------------------------------------------------------------------------------
    # conveniences for scripts and tests

    def run_until_state(self, host: str, state: State | str, timeout: float = 60.0) -> bool:
        wanted = state if isinstance(state, State) else State[state]
        return self.run_until(lambda: self.state(host) is wanted, timeout)

    def count_in_state(self, host: str, state: State | str) -> int:
        wanted = state if isinstance(state, State) else State[state]
        return sum(1 for snap in self.connections(host) if snap.state is wanted)

    def inject(
        self,
        host: str,
        flags: int,
        *,
        seq: int = 0,
        ack: int = 0,
        window: int | None = None,
        payload: bytes = b"",
        sock: Socket | None = None,
    ) -> CaptureRecord:
        """Put a hand-made segment on the wire as if `host` had sent it on its current connection: the
        network delivering an old duplicate SYN, a forged RST... `seq` is relative to that connection's ISS
        and `ack` to its IRS, as the trace prints them; a SYN carries mss, sackOK and wscale options."""
        from stack.wire import ACK

        from .format import tcpdump_flags

        self._up(host)
        s = self._conn(host, sock)
        conn = s.conn
        if conn is None:
            raise LabError(f"{host} has no connection to inject a segment on; connect first")
        mask = 0xFFFFFFFF
        seq_abs = (conn.iss + seq) & mask
        ack_abs = (conn.irs + ack) & mask if flags & ACK else 0
        options = syn_options(1460, sack=True, ts=None, wscale=7) if flags & SYN else b""
        packet = build_packet(
            conn.laddr,
            conn.raddr,
            conn.lport,
            conn.rport,
            seq_abs,
            ack_abs,
            flags,
            64240 if window is None else window,
            options,
            payload,
            checksum=self.checksum,
        )
        what = f"[{tcpdump_flags(flags)}] seq {seq_abs} (its ISN {seq:+d})"
        if flags & ACK:
            what += f", ack {ack_abs} (the peer's ISN {ack:+d})"
        self.note(f"injected from {host}: {what}, length {len(payload)}", None, kind="info")
        record = self._put_on_wire(host, packet, self._now)
        self.settle()
        return record
