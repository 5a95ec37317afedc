"""A SYN that arrives for a TIME_WAIT 4-tuple (Linux tcp_timewait_state_process() and tcp_v4_rcv()).

A SYN whose sequence number is past RCV.NXT may start a new incarnation (RFC 9293 §3.6.1 note, RFC 6191):
if a listener owns the port, the TIME_WAIT ends and the listener answers with ISN = old SND.NXT + 65537;
if no listener does (the TIME_WAIT is on the side that connected), Linux keeps the TIME_WAIT and ACKs.
"""

from __future__ import annotations

from stack import State
from stack.wire import ACK, RST, SYN, build_packet, parse_packet, syn_options
from tcpplay.lab import Lab


def closed_by(first: str) -> tuple[Lab, str]:
    lab = Lab(seed=1)
    lab.listen("server")
    lab.connect("client")
    lab.advance(0.1)
    lab.close(first)
    lab.advance(0.1)
    other = "server" if first == "client" else "client"
    lab.recv(other)
    lab.close(other)
    lab.advance(0.1)
    assert lab.count_in_state(first, "TIME_WAIT") == 1
    return lab, other


def new_syn(lab: Lab, to: str) -> list:
    host = lab.hosts[to]
    tw = next(c for c in host.conns.values() if c.state is State.TIME_WAIT)
    seq = (tw.rcv_nxt + 100_000) & 0xFFFFFFFF
    packet = build_packet(
        tw.raddr,
        tw.laddr,
        tw.rport,
        tw.lport,
        seq,
        0,
        SYN,
        64240,
        syn_options(1460, sack=True, ts=None, wscale=7),
    )
    host.receive(packet, lab.now)
    out = [parse_packet(p) for p in host.poll(lab.now)]
    return [tw, seq, out]


def test_syn_to_time_wait_without_a_listener_is_acked_and_time_wait_stays() -> None:
    lab, _ = closed_by("client")
    tw, _seq, out = new_syn(lab, "client")
    assert len(out) == 1
    reply = out[0]
    assert reply.flags == ACK and not reply.flags & RST
    assert reply.seq == tw.snd_nxt & 0xFFFFFFFF and reply.ack == tw.rcv_nxt & 0xFFFFFFFF
    assert lab.count_in_state("client", "TIME_WAIT") == 1


def test_syn_to_time_wait_on_a_listening_port_reopens_with_isn_snd_nxt_plus_65537() -> None:
    lab, _ = closed_by("server")  # the server closed first: its TIME_WAIT holds the listening port
    tw, seq, out = new_syn(lab, "server")
    assert len(out) == 1
    synack = out[0]
    assert synack.flags == SYN | ACK
    assert synack.seq == (tw.snd_nxt + 65535 + 2) & 0xFFFFFFFF
    assert synack.ack == (seq + 1) & 0xFFFFFFFF
    assert lab.count_in_state("server", "TIME_WAIT") == 0
    assert lab.count_in_state("server", "SYN_RCVD") == 1
