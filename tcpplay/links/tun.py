"""The TUN link: each stack host attached to its own TUN device in a private namespace, the kernel between.

Topology (all inside the namespace tcpplay created, see tcpplay/netns.py; only 198.18.0.0/15 is used):

    client stack 198.18.0.1 =fd= tp0 [198.18.255.1]  kernel, ip_forward=1  [198.18.255.2] tp1 =fd= server
                                                                                      stack 198.18.0.2

A packet the client's stack emits is written to tp0's fd; the kernel receives it on tp0, routes it
(198.18.0.2/32 dev tp1) and transmits it on tp1, where our read of tp1's fd hands it to the server's
`receive`. `ip netns exec <ns> tcpdump -ni tp0` shows the traffic. With the kernel peer
(tcpplay/links/kernel.py) there is one device: the kernel owns the peer's address on tp0 and a real socket
answers there.

Impairments (loss, delay, jitter, duplication, reordering, corruption, rate, partition, "drop the next")
are those of the memory link, applied in our link layer: to the packets a stack host emits before they are
written to its device, and to the packets the kernel peer sends after they are read from the device and
before our host receives them. A packet that crosses the kernel between two of our hosts is impaired once,
at its sender, as on the memory wire.

The link is real time: `realtime = True`, stack time is the lab's ScaledClock at 1x (microseconds since
the lab started), and the lab drives it with `fileno()` (for select), `poll_arrivals(now)` (non-blocking
reads), `send(...)` (egress at a stack time, now or later when delayed) and the memory link's
`schedule/next_arrival/pop_due` for deliveries into our hosts (delayed kernel-peer packets wait there).

Virtual time (`use_virtual_time`, `Lab(link="tun", virtual_time=True)`): between two of our stacks the kernel
only routes -- no kernel TCP timer is involved -- so a lesson may keep the lab's virtual clock (a two-hour
keepalive still runs in seconds). Each packet a host emits crosses the kernel synchronously (`forward`): it
is written to the sender's device, and the lab waits in real time (up to FORWARD_TIMEOUT) until the kernel
has routed it out of the receiver's device, then schedules that copy at its virtual arrival time. What the
kernel emits on its own (ICMP...) is counted in `stats` and never delivered. A kernel peer has real timers:
it stays real time.
"""

from __future__ import annotations

import errno
import fcntl
import gc
import heapq
import math
import os
import select
import struct
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stack.wire import Segment

from ..capture import DELIVERED
from ..clock import ScaledClock
from ..lab import LabError
from ..netns import NetnsError, PrivateNetns
from .memory import MemoryLink, Verdict

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
TUN_PATH = "/dev/net/tun"
MTU = 1500
TXQUEUELEN = 1000  # packets the kernel may queue towards a device before we read them
ROUTER_NET = "198.18.255."  # the kernel's own address on device tp<i> is 198.18.255.<i+1>
SPOOF_NET = "198.19.0.0/16"  # the lab's spoofed sources (SYN flood); nobody answers there
SPOOF_RAW = bytes([198, 19])
LAB_PREFIXES = ("198.18.", "198.19.")  # 198.18.0.0/15 (RFC 2544)
MAX_READS = 256  # per device per poll: bounds the latency of one lab round
IPPROTO_TCP = 6
FORWARD_TIMEOUT = 1.0  # virtual time: real seconds the kernel may take to route one packet between devices


class RealtimeError(LabError):
    """What a real-time (kernel) link cannot do: pause, change speed, jump in time."""


class RealtimeClock(ScaledClock):
    """The kernel's clock does not pause or skip: stack time is monotonic microseconds since the lab
    started, at 1x. Requests to pause, change speed or jump are refused with a clear error."""

    def __init__(self) -> None:
        super().__init__(1.0)

    def pause(self) -> None:
        raise RealtimeError("a real-time link (tun / kernel peer) cannot pause: the kernel's clock runs on")

    def set_speed(self, speed: float) -> None:
        if speed != 1.0:
            raise RealtimeError("a real-time link (tun / kernel peer) runs at 1x: the kernel's clock does")

    def jump(self, to: int) -> None:
        if to > self.now():
            raise RealtimeError("a real-time link (tun / kernel peer) cannot jump ahead in time")


class GcPacer:
    """Keeps Python's full (generation 2) garbage collections out of the middle of real-time traffic.

    With the lab's capture and log holding hundreds of thousands of objects, a full collection takes tens
    of milliseconds. On a real-time link that is a stall of the "wire": the kernel sees no ACK, fires its
    tail-loss probe or RTO, and shows spurious retransmissions and an inflated RTT (measured: 17-46 ms
    pauses, 3-4 spurious retransmissions per 64 MiB). While a real-time link is open, automatic full
    collections are switched off (generation 2's threshold raised) and the link runs the collection
    itself, when the old threshold says one is due and no packet has moved for IDLE seconds (or after
    MAX_DEFER seconds of continuous traffic, so memory stays bounded). Generations 0 and 1, which are
    cheap, run as usual. The previous thresholds come back when the last real-time link closes.
    """

    IDLE = 0.2
    MAX_DEFER = 30.0
    _active = 0
    _saved: tuple[int, int, int] = (700, 10, 10)

    def __init__(self) -> None:
        if GcPacer._active == 0:
            GcPacer._saved = gc.get_threshold()
            first, second, _ = GcPacer._saved
            gc.set_threshold(first, second, 1 << 30)
        GcPacer._active += 1
        self._closed = False
        self._last_busy = self._last_full = time.monotonic()

    def tick(self, busy: bool) -> None:
        """Called once per lab round; `busy`: packets moved in this round."""
        now = time.monotonic()
        if busy:
            self._last_busy = now
        if gc.get_count()[2] <= GcPacer._saved[2]:
            return
        if now - self._last_busy >= self.IDLE or now - self._last_full >= self.MAX_DEFER:
            gc.collect()
            self._last_full = time.monotonic()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        GcPacer._active -= 1
        if GcPacer._active == 0:
            gc.set_threshold(*GcPacer._saved)


@dataclass(slots=True)
class TunDevice:
    """One TUN device in the namespace and the stack host attached to it."""

    ifname: str
    fd: int
    host: str  # the stack host that owns the other end of the fd
    host_address: str
    kernel_address: str  # the kernel's own address on this device


@dataclass(frozen=True, slots=True)
class Arrival:
    """A packet read from a TUN device, for the lab: `forwarded` is True when the lab itself wrote it (one
    of our hosts, or a spoofed 198.19.x.y source of the SYN flood: captured and impaired when it was
    sent), False when the kernel sent it."""

    src: str  # host name, the kernel peer's name, or the source address
    dst: str | None  # the stack host it is for; None: nobody here (a reply to a spoofed address)
    packet: bytes
    forwarded: bool


def _raw(address: str) -> bytes:
    return bytes(int(part) for part in address.split("."))


def same_packet(forwarded: bytes, sent: bytes) -> bool:
    """Is `forwarded` the kernel's routed copy of `sent`? Everything but what forwarding may change (TTL,
    the header checksum, the IP ID) must be equal."""
    return (
        len(forwarded) == len(sent)
        and forwarded[:4] == sent[:4]
        and forwarded[6:8] == sent[6:8]
        and forwarded[9] == sent[9]
        and forwarded[12:] == sent[12:]
    )


def _check_lab_address(address: str) -> None:
    if not address.startswith(LAB_PREFIXES):
        raise LabError(f"real-kernel links only use addresses in 198.18.0.0/15 (RFC 2544), not {address}")


# ----------------------------------------------------------------------------------------------------------
# inside the namespace (these run on the namespace's worker thread)


def open_tun(ifname: str) -> int:
    """Open /dev/net/tun and create the (non-persistent) device `ifname`: it lives as long as the fd, in
    the namespace of the calling thread. Raw IPv4 packets, no packet-info header, non-blocking."""
    fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", ifname.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def write_sysctl(name: str, value: str) -> None:
    """Set a net.* sysctl of the calling thread's namespace and read it back (it must stick)."""
    path = Path("/proc/sys") / name.replace(".", "/")
    path.write_text(value)
    if path.read_text().strip() != value:
        raise NetnsError(f"sysctl {name}={value} did not take inside the namespace")


def configure_namespace(devices: list[tuple[str, str, str]], spoof_route: bool) -> None:
    """Configure lo and the TUN devices of this namespace: up, MTU, queue length, the kernel's address,
    a host route to each attached stack host, IPv6 off, ip_forward on, rp_filter and redirects off (the
    lab's spoofed SYN flood must be routed, even back out of the device it came in on). spoof_route:
    route 198.19.0.0/16 out of the first device, so the kernel peer's answers to spoofed sources show up
    in the capture (as going nowhere) instead of dying inside the kernel.

    devices: (ifname, stack host address, kernel address). Refuses to touch anything if the netlink view
    shows an interface that is not ours (that would mean we are not in our own fresh namespace).
    """
    from pyroute2 import IPRoute

    ipv6 = Path("/proc/sys/net/ipv6/conf")
    if ipv6.exists():
        # No IPv6 link-local addresses, router solicitations or MLD reports on our devices.
        for conf in ("all", "default"):
            write_sysctl(f"net.ipv6.conf.{conf}.disable_ipv6", "1")
    with IPRoute() as ipr:
        names = {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        ours = {"lo"} | {ifname for ifname, _, _ in devices}
        if not names <= ours:
            raise NetnsError(f"refusing to configure: unexpected interfaces {sorted(names - ours)} in view")
        (lo,) = ipr.link_lookup(ifname="lo")
        ipr.link("set", index=lo, state="up")
        for ifname, host_address, kernel_address in devices:
            (index,) = ipr.link_lookup(ifname=ifname)
            ipr.link("set", index=index, mtu=MTU, txqlen=TXQUEUELEN)
            ipr.addr("add", index=index, address=kernel_address, prefixlen=32)
            ipr.link("set", index=index, state="up")
            ipr.route("add", dst=f"{host_address}/32", oif=index, prefsrc=kernel_address, scope=253)
        if spoof_route:
            ifname, _, kernel_address = devices[0]
            (index,) = ipr.link_lookup(ifname=ifname)
            ipr.route("add", dst=SPOOF_NET, oif=index, prefsrc=kernel_address, scope=253)
    write_sysctl("net.ipv4.ip_forward", "1")
    for conf in ["all", "default"] + [ifname for ifname, _, _ in devices]:
        write_sysctl(f"net.ipv4.conf.{conf}.rp_filter", "0")
        write_sysctl(f"net.ipv4.conf.{conf}.send_redirects", "0")


def device_counters(ifname: str) -> dict[str, int]:
    """The device's kernel counters (rx/tx packets, bytes, dropped) as `ip -s link` shows them."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        (link,) = ipr.get_links(ifname=ifname)
        stats = link.get_attr("IFLA_STATS64") or {}
        return {key: int(value) for key, value in dict(stats).items()}


# ----------------------------------------------------------------------------------------------------------


class TunLink(MemoryLink):
    """Our hosts on TUN devices in a private namespace; the memory link's impairments on top."""

    name = "tun"
    realtime = True  # False after use_virtual_time()

    def __init__(
        self,
        seed: int,
        netns: PrivateNetns,
        hosts: dict[str, str],
        *,
        kernel_peer: tuple[str, str] | None = None,
    ) -> None:
        """hosts: our stack hosts (name -> address), one TUN device each (tp0, tp1...). kernel_peer:
        (name, address) of the Linux end, which then owns `address` on tp0 (one stack host only)."""
        super().__init__(seed)
        if kernel_peer is not None and len(hosts) != 1:
            raise LabError("a kernel peer faces exactly one stack host")
        if not hosts:
            raise LabError("a TUN link needs at least one stack host")
        for address in [*hosts.values(), *([kernel_peer[1]] if kernel_peer else [])]:
            _check_lab_address(address)
        self.netns = netns
        self.kernel_peer = kernel_peer
        self.stats: Counter[str] = Counter()
        self.devices: list[TunDevice] = []
        self._egress: list[tuple[int, int, int, bytes]] = []  # (due, order, fd, packet)
        self._poller: select.poll | None = None
        self._tx_seen = 0
        self._by_host: dict[str, TunDevice] = {}
        # Raw 4-byte addresses -> names, so the per-packet path never formats an address.
        self._names: dict[bytes, str] = {_raw(address): name for name, address in hosts.items()}
        if kernel_peer is not None:
            self._names[_raw(kernel_peer[1])] = kernel_peer[0]
        plan = []
        for i, (name, address) in enumerate(hosts.items()):
            ifname = f"tp{i}"
            kernel_address = kernel_peer[1] if kernel_peer is not None else f"{ROUTER_NET}{i + 1}"
            fd = netns.adopt_fd(netns.call(open_tun, ifname))
            device = TunDevice(ifname, fd, name, address, kernel_address)
            self.devices.append(device)
            self._by_host[name] = device
            plan.append((ifname, address, kernel_address))
        netns.call(configure_namespace, plan, kernel_peer is not None)
        self.gc_pacer = GcPacer()
        netns.on_close(self.gc_pacer.close)
        self._local = {_raw(device.host_address): device.host for device in self.devices}
        self._pollers: dict[int, select.poll] = {}
        self._broken: str | None = None

    # ------------------------------------------------------------------------------------------------------
    # what the lab calls

    def fileno(self) -> list[int]:
        """The TUN fds, for select()/poll() in the lab's pump."""
        return [device.fd for device in self.devices]

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds until a device has a packet to read; True if one has."""
        if self._poller is None:
            self._poller = select.poll()
            for device in self.devices:
                self._poller.register(device.fd, select.POLLIN)
        return bool(self._poller.poll(max(0, math.ceil(timeout * 1000))))

    def transmit(self, src: str, packet: bytes, now: int, seg: Segment | None = None) -> Verdict:
        """The packet's fate under the impairments; the clean wire needs no parsing (the fast path)."""
        if not self.drop_rules and not self.partitioned:
            imp = self.impairments.get(src)
            if imp is None or not (
                imp.loss or imp.delay or imp.jitter or imp.duplicate or imp.reorder or imp.corrupt or imp.rate
            ):
                return Verdict(DELIVERED, [now])
        return super().transmit(src, packet, now, seg)

    def destination(self, packet: bytes) -> str:
        """Who a packet is addressed to: one of our hosts, the kernel peer, or the dotted address."""
        raw = packet[16:20]
        return self._names.get(raw) or ".".join(map(str, raw))

    def send(self, src: str, packet: bytes, at: int, now: int) -> None:
        """Put a packet our host `src` emitted on its device at stack time `at` (now, or later if delayed).
        A sender that is not one of our hosts (the lab's spoofed SYN flood) uses a device that does not
        lead to the destination, so the kernel routes the packet to it."""
        device = self._by_host.get(src) or self._device_for_foreign(packet)
        if at <= now and not self._egress:
            self._write(device.fd, packet)
            return
        heapq.heappush(self._egress, (at, self._next(), device.fd, packet))
        self.flush_egress(now)

    def flush_egress(self, now: int) -> None:
        """Write every delayed packet whose time has come, in order."""
        queue = self._egress
        while queue and queue[0][0] <= now:
            _, _, fd, packet = heapq.heappop(queue)
            self._write(fd, packet)

    def next_arrival(self) -> int | None:
        """The earliest pending event of the link: a delayed write or a delayed delivery to a host."""
        egress = self._egress[0][0] if self._egress else None
        ingress = self._queue[0][0] if self._queue else None
        if egress is None or ingress is None:
            return ingress if egress is None else egress
        return min(egress, ingress)

    def pop_due(self, now: int) -> tuple[int, str, bytes, int] | None:
        self.flush_egress(now)
        return super().pop_due(now)

    def poll_arrivals(self, now: int) -> list[Arrival]:
        """Read what the kernel put on our devices (non-blocking), up to MAX_READS per device."""
        self.flush_egress(now)
        out: list[Arrival] = []
        read = os.read
        names, local = self._names, self._local
        for device in self.devices:
            fd = device.fd
            count = 0
            for _ in range(MAX_READS):
                try:
                    packet = read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError as exc:
                    self.stats[f"read-error:{errno.errorcode.get(exc.errno or 0, exc.errno)}"] += 1
                    break
                if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != IPPROTO_TCP:
                    self.stats["ignored-non-tcp"] += 1  # IPv6, ICMP errors the kernel generates...
                    continue
                count += 1
                src_raw = packet[12:16]
                src = names.get(src_raw) or ".".join(map(str, src_raw))
                ours = src_raw in local or src_raw[:2] == SPOOF_RAW
                out.append(Arrival(src, local.get(packet[16:20]), packet, ours))
            if count:
                self.stats[f"rx:{device.ifname}"] += count
        tx = self.stats["tx"]
        self.gc_pacer.tick(bool(out) or tx != self._tx_seen)
        self._tx_seen = tx
        return out

    def in_flight(self) -> int:
        return len(self._queue) + len(self._egress)

    # ------------------------------------------------------------------------------------------------------
    # virtual time (stack to stack only)

    def use_virtual_time(self) -> None:
        """Run on the lab's virtual clock: packets cross the kernel one at a time through `forward`, and
        nothing is real time any more (so no GC pacing either). Refused with a kernel peer: its timers are
        the kernel's, and they run in real time."""
        if self.kernel_peer is not None:
            raise LabError(
                "a kernel peer runs on the kernel's real clock (its retransmission and keepalive timers are "
                "real): virtual time only works between two of our stacks (link 'tun' without a kernel peer)"
            )
        self.realtime = False
        self.gc_pacer.close()

    def forward(self, src: str, dst: str, packet: bytes, timeout: float = FORWARD_TIMEOUT) -> bytes:
        """Virtual time: write `packet`, sent by `src` (one of our hosts, or a spoofed source), to its device
        and wait in real time, up to `timeout` seconds, until the kernel has routed it out of the device of
        our host `dst`; return it as the kernel forwarded it (TTL one less, a new header checksum). Anything
        else read from that device meanwhile (ICMP the kernel generated, a stale copy) is counted in
        `stats` and dropped. LabError naming the devices if the packet never comes out; after that the link
        refuses at once (the kernel is not routing, waiting again would only make every packet slow)."""
        if self._broken is not None:
            raise LabError(self._broken)
        out = self._by_host.get(src) or self._device_for_foreign(packet)
        into = self._by_host.get(dst)
        if into is None:
            raise LabError(f"{dst!r} has no TUN device on this link")
        try:
            os.write(out.fd, packet)
        except OSError as exc:
            self.stats[f"write-error:{errno.errorcode.get(exc.errno or 0, exc.errno)}"] += 1
            raise LabError(f"cannot write {src}'s packet to {out.ifname}: {exc.strerror}") from None
        self.stats["tx"] += 1
        poller = self._pollers.get(into.fd)
        if poller is None:
            poller = self._pollers[into.fd] = select.poll()
            poller.register(into.fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = os.read(into.fd, 65536)
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                poller.poll(max(1, math.ceil(left * 1000)))
                continue
            except OSError as exc:
                self.stats[f"read-error:{errno.errorcode.get(exc.errno or 0, exc.errno)}"] += 1
                break
            if same_packet(got, packet):
                self.stats[f"rx:{into.ifname}"] += 1
                return got
            self._ignore(got)
        self._broken = (
            f"the kernel did not route {src}'s packet from {out.ifname} out of {into.ifname} (to {dst}) "
            f"within {timeout:g} s in namespace {self.netns.name}; the TUN link stopped (try --link memory)"
        )
        raise LabError(self._broken)

    def _ignore(self, packet: bytes) -> None:
        """A packet the kernel sent that no host of ours is waiting for: counted, never delivered."""
        if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != IPPROTO_TCP:
            self.stats["ignored-non-tcp"] += 1  # ICMP the kernel generated (no route, unreachable...)
        else:
            self.stats["ignored-tcp"] += 1

    def flush(self, dst: str | None = None) -> int:
        if dst is None:
            dropped = len(self._egress)
            self._egress.clear()
            return dropped + super().flush(None)
        return super().flush(dst)

    def counters(self) -> dict[str, dict[str, int]]:
        """Kernel counters of every device (read inside the namespace)."""
        return {d.ifname: self.netns.call(device_counters, d.ifname) for d in self.devices}

    def describe(self) -> str:
        where = ", ".join(f"{d.host}@{d.ifname}" for d in self.devices)
        clock = "" if self.realtime else ", virtual time"
        return f"netns {self.netns.name} ({where}{clock}); {super().describe()}"

    def close(self) -> None:
        """Remove the namespace: the devices go with their fds."""
        self._egress.clear()
        self.netns.close()

    # ------------------------------------------------------------------------------------------------------

    def _next(self) -> int:
        return next(self._order)

    def _write(self, fd: int, packet: bytes) -> None:
        try:
            os.write(fd, packet)
        except OSError as exc:
            # EIO: device down; EINVAL: a packet the kernel refuses; EAGAIN: queue full.
            self.stats[f"write-error:{errno.errorcode.get(exc.errno or 0, exc.errno)}"] += 1
        else:
            self.stats["tx"] += 1

    def _device_for_foreign(self, packet: bytes) -> TunDevice:
        dst_addr = ".".join(map(str, packet[16:20]))
        for device in self.devices:
            if device.host_address != dst_addr:
                return device
        return self.devices[0]


def open_tun_link(
    seed: int,
    hosts: dict[str, str],
    *,
    kernel_peer: tuple[str, str] | None = None,
    on_close: Callable[[], None] | None = None,
) -> TunLink:
    """Create a private namespace and a TunLink in it; the namespace is removed if anything fails."""
    netns = PrivateNetns.create()
    try:
        link = TunLink(seed, netns, hosts, kernel_peer=kernel_peer)
    except BaseException:
        netns.close()
        raise
    if on_close is not None:
        netns.on_close(on_close)
    return link
