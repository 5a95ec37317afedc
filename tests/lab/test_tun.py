"""Our stack <-> our stack over two TUN devices, the kernel routing between them in a private namespace."""

from __future__ import annotations

import os
import socket as pysocket
from collections.abc import Iterator

import pytest

from stack import State
from tcpplay import netns as netns_mod
from tcpplay.capture import LOST
from tcpplay.lab import Lab, LabError
from tcpplay.links.tun import RealtimeClock, RealtimeError

from .realkernel import Guard, both_ways, netns_guard, real_kernel, stack_io

__all__ = ["netns_guard", "real_kernel"]

MIB = 1 << 20
ETH_P_ALL = 0x0003


@pytest.fixture
def lab(real_kernel: None, netns_guard: Guard) -> Iterator[Lab]:
    with Lab(link="tun") as lab:
        yield lab


def _connect(lab: Lab) -> tuple[object, object]:
    lab.listen("server", 8080)
    client = lab.connect("client", "server", 8080)
    assert lab.run_until(lambda: bool(lab.apps["server"].conns), 5)
    server = lab.apps["server"].conns[-1]
    assert lab.run_until(lambda: client.state is State.ESTABLISHED and server.state is State.ESTABLISHED, 5)
    return client, server


def _sniffer(ifname: str) -> pysocket.socket:
    """What tcpdump does: a packet socket on the device (created inside the namespace)."""
    sock = pysocket.socket(pysocket.AF_PACKET, pysocket.SOCK_DGRAM, pysocket.htons(ETH_P_ALL))
    sock.bind((ifname, 0))
    sock.setblocking(False)
    return sock


def test_the_kernel_routes_between_our_hosts(lab: Lab) -> None:
    link = lab.link
    ns = link.netns
    assert lab.link_mode == "tun" and link.realtime and isinstance(lab.clock, RealtimeClock)
    sniff = {name: ns.adopt_socket(ns.call(_sniffer, name)) for name in ("tp0", "tp1")}
    client, _server = _connect(lab)
    seen: dict[str, list[bytes]] = {"tp0": [], "tp1": []}
    for name, sock in sniff.items():
        while True:
            try:
                seen[name].append(sock.recv(65536))
            except BlockingIOError:
                break
    syn_tp0 = next(p for p in seen["tp0"] if p[9] == 6 and p[20 + 13] == 0x02)
    syn_tp1 = next(p for p in seen["tp1"] if p[9] == 6 and p[20 + 13] == 0x02)
    assert syn_tp0[12:20] == syn_tp1[12:20] == bytes([198, 18, 0, 1, 198, 18, 0, 2])
    assert syn_tp0[8] == 64 and syn_tp1[8] == 63  # the kernel forwarded it (TTL - 1)
    counters = link.counters()
    assert counters["tp0"]["rx_packets"] >= 2 and counters["tp1"]["tx_packets"] >= 2
    # Only lab addresses (198.18.0.0/15) appear on the devices.
    for packet in seen["tp0"] + seen["tp1"]:
        if packet[0] >> 4 == 4:
            src, dst = packet[12:14], packet[16:18]
            assert src in (b"\xc6\x12", b"\xc6\x13") and dst in (b"\xc6\x12", b"\xc6\x13")
    assert client.state is State.ESTABLISHED


def test_8mib_each_way_then_graceful_close(lab: Lab) -> None:
    client, server = _connect(lab)
    seconds = both_ways(lab, stack_io(client), stack_io(server), 8 * MIB, timeout=60)
    print(f"8 MiB each way stack<->stack through the kernel: {seconds:.2f} s")
    lab.close("client")
    assert lab.run_until(lambda: (client.conn.state, server.state) == (State.FIN_WAIT_2, State.CLOSE_WAIT), 5)
    assert lab.recv("server") == b""
    lab.close("server")
    assert server.conn.state is State.LAST_ACK
    assert lab.run_until(lambda: (client.conn.state, server.conn.state) == (State.TIME_WAIT, State.CLOSED), 5)
    stats = lab.link.stats
    assert stats["rx:tp1"] > 5700 and stats["rx:tp0"] > 5700  # 8 MiB / 1448 each way, via the kernel
    assert not any(key.startswith(("write-error", "read-error")) for key in stats)


def test_impairments_apply_on_the_tun_path(lab: Lab) -> None:
    client, server = _connect(lab)
    lab.impair("any", loss=0.02)
    both_ways(lab, stack_io(client), stack_io(server), 1 * MIB, timeout=40)
    assert {r.src for r in lab.capture.records if r.fate == LOST} == {"client", "server"}
    lab.impair("any", loss=0.0, delay=0.020)
    before = lab.now
    lab.send("client", b"ping")
    assert lab.run_until(lambda: bool(server.conn.rq.ready), 2)
    assert lab.now - before >= 20_000  # held back 20 ms in our link layer before the write
    lab.drop_next("client", "data")
    lab.send("client", b"dropped once")

    def sent() -> list[str]:  # Nagle may hold it until "ping" is acknowledged
        return [r.fate for r in lab.capture.records if r.segment and r.segment.payload == b"dropped once"]

    assert lab.run_until(lambda: bool(sent()), 2)
    assert sent()[0] == "dropped"
    assert lab.run_until(lambda: len(sent()) == 2, 3)  # our RTO resends it, and that copy goes through
    assert lab.run_until(lambda: server.conn.rq.ready.endswith(b"dropped once"), 2)
    lab.partition(True)
    assert "cable pulled" in lab.describe_link()
    lab.partition(False)


def test_real_time_cannot_pause_or_jump(lab: Lab) -> None:
    with pytest.raises(RealtimeError):
        lab.clock.pause()
    with pytest.raises(RealtimeError):
        lab.clock.set_speed(10)
    with pytest.raises(LabError):
        lab.skip_to_next_timer()
    t0 = lab.now
    lab.advance(0.05)
    assert lab.now - t0 >= 50_000 and lab.clock.now() >= lab.now


def test_a_virtual_clock_is_refused_for_a_real_link() -> None:
    from tcpplay.clock import VirtualClock

    with pytest.raises(LabError, match="kernel's clock"):
        Lab(link="tun", clock=VirtualClock())


def test_missing_privilege_is_a_clear_lab_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns_mod, "effective_capabilities", lambda: 0)
    with pytest.raises(netns_mod.PrivilegeError) as caught:
        Lab(link="tun")
    assert isinstance(caught.value, LabError)
    text = str(caught.value)
    assert "CAP_NET_ADMIN" in text and "--link memory" in text
    assert not [n for n in netns_mod.list_namespaces() if n.startswith(f"tcpplay-{os.getpid()}-")]


def test_unprivileged_process_gets_the_error(real_kernel: None, tmp_path: object) -> None:
    """A real unprivileged process (setpriv: nobody, no capabilities) gets PrivilegeError, not a trace."""
    import shutil
    import subprocess
    import sys

    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    code = (
        "import sys\n"
        "from tcpplay.lab import Lab, LabError\n"
        "try:\n"
        "    Lab(link='tun')\n"
        "except LabError as exc:\n"
        "    print(type(exc).__name__, exc); sys.exit(3)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    cmd += ["--bounding-set=-all", sys.executable, "-c", code]
    env = {**os.environ, "PYTHONPATH": root, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env, timeout=60, check=False)
    if result.returncode != 3 and "Permission denied" in result.stderr:
        pytest.skip(f"the checkout is not readable by nobody: {result.stderr.strip()[-200:]}")
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith("PrivilegeError") and "--link memory" in result.stdout


def test_only_lab_addresses_are_accepted(real_kernel: None, netns_guard: Guard) -> None:
    with pytest.raises(LabError, match=r"198\.18\.0\.0/15"):
        Lab(link="tun", hosts={"client": "10.0.0.1", "server": "198.18.0.2"})


def test_syn_flood_is_routed_by_the_kernel(lab: Lab) -> None:
    """Spoofed sources cross the kernel (rp_filter off inside the namespace) to our server, whose SYN-ACKs
    are written out and dropped by the kernel (no route to 198.19.0.0/16): fate no-route, captured once."""
    lab.listen("server", 8080)
    lab.syn_flood("server", count=10)
    assert lab.run_until(lambda: lab.count_in_state("server", State.SYN_RCVD) == 10, 5)
    synacks = [r for r in lab.capture.records if r.src == "server"]
    assert len(synacks) == 10 and {r.fate for r in synacks} == {"no-route"}
    assert len([r for r in lab.capture.records if r.src == "spoofed"]) == 10
