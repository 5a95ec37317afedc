"""The TUN link on the lab's virtual clock: our two stacks, the kernel routing between them, no real time.

Every packet crosses the kernel (written to the sender's device, read back from the receiver's), yet time
only moves when the lab moves it, so hours of keepalive cost nothing. The capture holds what the kernel
forwarded (TTL 63), exactly what a sniffer on the receiving device sees.
"""

from __future__ import annotations

import gc
import socket as pysocket
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from stack import State
from tcpplay import netns as netns_mod
from tcpplay.capture import CORRUPTED, DELIVERED, DUPLICATED
from tcpplay.clock import VirtualClock
from tcpplay.lab import SEC, Lab, LabError
from tcpplay.links.tun import TunLink, same_packet, write_sysctl

from .realkernel import Guard, netns_guard, real_kernel

__all__ = ["netns_guard", "real_kernel"]

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
DEVICE = {"client": "tp0", "server": "tp1"}


@pytest.fixture
def lab(real_kernel: None, netns_guard: Guard) -> Iterator[Lab]:
    with Lab(link="tun", virtual_time=True) as lab:
        yield lab


def _sniffer(ifname: str) -> pysocket.socket:
    sock = pysocket.socket(pysocket.AF_PACKET, pysocket.SOCK_DGRAM, pysocket.htons(ETH_P_ALL))
    sock.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_RCVBUF, 1 << 22)
    sock.bind((ifname, 0))
    sock.setblocking(False)
    return sock


def _sniff(lab: Lab) -> dict[str, pysocket.socket]:
    link = lab.link
    assert isinstance(link, TunLink)
    ns = link.netns
    return {name: ns.adopt_socket(ns.call(_sniffer, name)) for name in ("tp0", "tp1")}


def _outgoing(sniffers: dict[str, pysocket.socket]) -> Counter[tuple[str, bytes]]:
    """What the kernel transmitted on each device (tcpdump's "Out" packets), as (device, bytes)."""
    seen: Counter[tuple[str, bytes]] = Counter()
    for name, sock in sniffers.items():
        while True:
            try:
                data, address = sock.recvfrom(65536)
            except BlockingIOError:
                break
            if address[2] == PACKET_OUTGOING:
                seen[(name, data)] += 1
    return seen


def test_virtual_clock_and_the_memory_links_delay(lab: Lab) -> None:
    link = lab.link
    assert isinstance(link, TunLink) and not link.realtime
    assert isinstance(lab.clock, VirtualClock) and not lab.realtime_link and lab.link_mode == "tun"
    assert "virtual time" in lab.describe_link() and "delay 10 ms" in lab.describe_link()
    started = time.monotonic()
    lab.listen("server")
    lab.connect("client")
    assert lab.run_until_state("client", "ESTABLISHED", 5)
    assert lab.now == 20_000  # SYN 10 ms out, SYN-ACK 10 ms back: the memory link's timing
    lab.setsockopt("client", "SO_KEEPALIVE", 1)
    lab.advance(3 * 3600)  # three hours of keepalive probes, answered through the kernel
    assert time.monotonic() - started < 5
    assert lab.now == 20_000 + 3 * 3600 * SEC
    assert lab.state("client") is State.ESTABLISHED
    records = list(lab.capture)
    assert len(records) >= 5
    assert all(r.fate == DELIVERED and r.packet[8] == 63 for r in records)  # routed by the kernel
    assert all(r.arrival == r.time + 10_000 for r in records)
    assert link.stats["tx"] == len(records) == link.stats["rx:tp0"] + link.stats["rx:tp1"]
    assert gc.get_threshold()[2] < 1 << 30  # the GC pacer is for real time only: thresholds are back


def test_the_capture_is_what_the_receiving_device_shows(lab: Lab) -> None:
    sniffers = _sniff(lab)
    lab.listen("server")
    client = lab.connect("client")
    assert lab.run_until_state("client", "ESTABLISHED", 5)
    lab.send("client", b"x" * 5000)
    lab.drop_next("server", "pure-ACK")
    lab.advance(2)
    lab.close("client")
    lab.advance(1)
    assert client.conn is not None and client.conn.state is State.FIN_WAIT_2
    seen = _outgoing(sniffers)
    delivered = [r for r in lab.capture if r.fate == DELIVERED]
    assert len(delivered) >= 8
    for record in delivered:
        assert seen[(DEVICE[record.dst], record.packet)] >= 1, f"#{record.number} not seen on the device"
    dropped = [r for r in lab.capture if r.fate == "dropped"]
    assert len(dropped) == 1 and dropped[0].packet[8] == 64  # dropped in our link layer: never written
    assert not any(data == dropped[0].packet or same_packet(data, dropped[0].packet) for _, data in seen)


def test_duplicated_and_corrupted_packets_cross_the_kernel(lab: Lab) -> None:
    lab.listen("server")
    lab.connect("client")
    assert lab.run_until_state("client", "ESTABLISHED", 5)
    link = lab.link
    assert isinstance(link, TunLink)
    before = link.stats["rx:tp1"]
    lab.impair("client", duplicate=1.0)
    lab.send("client", b"twice")
    lab.advance(0.1)
    dup = [r for r in lab.capture if r.fate == DUPLICATED]
    assert len(dup) == 1 and dup[0].packet[8] == 63
    assert link.stats["rx:tp1"] - before == 2  # both copies were routed
    assert bytes(lab.apps["server"].conns[-1].recv(100)) == b"twice"
    lab.impair("client", duplicate=0.0, corrupt=1.0)
    lab.send("client", b"damaged")
    lab.advance(0.05)
    bad = [r for r in lab.capture if r.fate == CORRUPTED]
    assert bad and bad[0].packet[8] == 63 and bad[0].segment is not None
    assert bad[0].segment.payload == b"damaged"  # captured as sent, under the kernel's IP header
    assert lab.apps["server"].conns[-1].conn.rq.ready == b""  # the server's checksum caught it


def test_icmp_from_the_kernel_is_counted_never_delivered(lab: Lab) -> None:
    """SYN-ACKs to the flood's spoofed sources have no route: the kernel drops them and answers with
    ICMP unreachable, which nobody here receives."""
    lab.listen("server")
    lab.syn_flood("server", count=5)
    lab.advance(0.1)
    link = lab.link
    assert isinstance(link, TunLink)
    assert [r.fate for r in lab.capture if r.src == "server"] == ["no-route"] * 5
    lab.connect("client")  # its SYN is read from tp1 past the ICMP queued there
    assert lab.run_until_state("client", "ESTABLISHED", 5)
    assert link.stats["ignored-non-tcp"] >= 1


def test_a_kernel_that_does_not_route_is_a_clear_error(lab: Lab) -> None:
    link = lab.link
    assert isinstance(link, TunLink)
    link.netns.call(write_sysctl, "net.ipv4.ip_forward", "0")
    lab.listen("server")
    started = time.monotonic()
    with pytest.raises(LabError, match=r"did not route client's packet from tp0 out of tp1") as caught:
        lab.connect("client")
    assert 0.9 <= time.monotonic() - started < 3
    assert link.netns.name in str(caught.value)
    started = time.monotonic()
    with pytest.raises(LabError, match="tp1"):  # refused at once from now on
        lab.advance(1)
    assert time.monotonic() - started < 0.5


def test_kernel_peer_refuses_virtual_time() -> None:
    with pytest.raises(LabError, match="kernel's real clock"):
        Lab(peer="kernel", virtual_time=True)
    with pytest.raises(LabError, match="virtual_time=True"):
        Lab(link="tun", clock=VirtualClock())


def test_virtual_time_on_the_memory_link_is_the_memory_link() -> None:
    lab = Lab(virtual_time=True)
    assert lab.link_mode == "memory" and isinstance(lab.clock, VirtualClock)


def test_no_privileges_no_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(netns_mod, "effective_capabilities", lambda: 0)
    with pytest.raises(netns_mod.PrivilegeError, match=r"CAP_NET_ADMIN.*--link memory"):
        Lab(link="tun", virtual_time=True)
    assert not [n for n in netns_mod.list_namespaces() if n.startswith(f"tcpplay-{os.getpid()}-")]
