"""A lab's story as text: tcpdump-style lines with relative numbers, state changes and notes, in stack time.

Used by `make run` before the UI, by `tcpplay demo --headless` and by the drill runner's traces. The same
lab events always print the same bytes, so the output can be compared with golden files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TextIO

from stack import SegmentDropped, SocketEvent, StateChanged, TimerArmed, TimerFired

from .capture import DELIVERED
from .format import ExpertAnalyzer, RelativeSeq, describe_time, tcpdump_line
from .lab import HostEvent, Lab, LabEvent, Note, PacketEvent

FATE_MARK = {
    "dropped": "✗ dropped",
    "lost": "✗ lost",
    "corrupted": "✗ corrupted",
    "duplicated": "duplicated",
    "reordered": "reordered",
    "partitioned": "✗ cable pulled",
    "host-down": "✗ host down",
    "no-route": "✗ no such host",
}


class TracePrinter:
    """Turns lab events into lines; `timers` adds timer arm/fire lines (noisy, off by default)."""

    def __init__(
        self, lab: Lab, write: Callable[[str], None], *, timers: bool = False, absolute: bool = False
    ):
        self.lab = lab
        self.write = write
        self.timers = timers
        self.absolute = absolute
        self.rel = RelativeSeq()
        self.expert = ExpertAnalyzer()

    def __call__(self, event: LabEvent) -> None:
        line = self.line(event)
        if line is not None:
            self.write(line)

    def line(self, event: LabEvent) -> str | None:
        if isinstance(event, PacketEvent):
            rec = event.record
            seg = rec.segment
            if seg is None:
                when = describe_time(rec.time)
                return f"{when}  {rec.src} > {rec.dst}: undecodable packet, {len(rec.packet)} bytes"
            seq_base, ack_base = self.rel.bases(seg)
            if self.absolute:
                seq_base = ack_base = None
            text = tcpdump_line(seg, rel_seq_base=seq_base, rel_ack_base=ack_base, show_addresses=False)
            tags = self.expert.analyze(seg)
            extra = ""
            if tags:
                extra += "  [" + ", ".join(tags) + "]"
            if rec.fate != DELIVERED:
                extra += f"  {FATE_MARK.get(rec.fate, rec.fate)}"
            flow = f"{rec.src}.{seg.sport} > {rec.dst}.{seg.dport}:"
            return f"{describe_time(rec.time)}  {flow} {text}{extra}"
        if isinstance(event, HostEvent):
            e = event.event
            t = describe_time(event.time)
            if isinstance(e, StateChanged):
                return f"{t}  {event.host:>6}   {e.old} → {e.new}  ({e.cause})"
            if isinstance(e, SegmentDropped):
                if e.reason in ("time-wait-bare-ack", "answered-from-time-wait"):
                    return None
                return f"{t}  {event.host:>6}   drops a segment: {e.reason}" + (
                    f" ({e.detail})" if e.detail else ""
                )
            if isinstance(e, SocketEvent):
                if e.what in ("readable", "accept-ready", "listening", "accepted", "eof"):
                    return None
                return (
                    f"{t}  {event.host:>6}   {e.what}: {e.detail}"
                    if e.detail
                    else f"{t}  {event.host:>6}   {e.what}"
                )
            if self.timers and isinstance(e, TimerArmed):
                return f"{t}  {event.host:>6}   timer {e.timer} armed for {describe_time(e.deadline)}"
            if self.timers and isinstance(e, TimerFired):
                return f"{t}  {event.host:>6}   timer {e.timer} fired"
            return None
        if isinstance(event, Note):
            who = f"{event.host:>6}" if event.host else "   lab"
            if event.kind == "narration":
                return f"\n# {event.text}"
            return f"{describe_time(event.time)}  {who}   {event.text}"
        return None


class JsonPrinter:
    """One JSON object per event (for tools); keys are stable."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.rel = RelativeSeq()

    def __call__(self, event: LabEvent) -> None:
        obj: dict[str, object]
        if isinstance(event, PacketEvent):
            rec = event.record
            seg = rec.segment
            obj = {
                "type": "segment",
                "time_us": rec.time,
                "number": rec.number,
                "src": rec.src,
                "dst": rec.dst,
                "fate": rec.fate,
            }
            if seg is not None:
                obj["tcpdump"] = self.rel.format(seg)
            self.write(json.dumps(obj, ensure_ascii=False))
        elif isinstance(event, HostEvent) and isinstance(event.event, StateChanged):
            e = event.event
            obj = {
                "type": "state",
                "time_us": event.time,
                "host": event.host,
                "from": str(e.old),
                "to": str(e.new),
                "cause": e.cause,
            }
            self.write(json.dumps(obj, ensure_ascii=False))
        elif isinstance(event, Note):
            obj = {"type": event.kind, "time_us": event.time, "host": event.host, "text": event.text}
            self.write(json.dumps(obj, ensure_ascii=False))


def walkthrough(out: TextIO, seed: int = 1, pcap: str | None = None) -> int:
    """The headless two-host story `tcpplay --headless` prints: handshake, a little data each way, the
    close; with `pcap`, its capture is saved there too."""
    lab = Lab(seed=seed)
    lab.subscribe(TracePrinter(lab, lambda line: print(line, file=out)))
    lab.note(
        "Two tcpplay stacks on an in-memory wire (10 ms each way). The server listens.", kind="narration"
    )
    lab.listen("server", 8080, backlog=8)
    lab.note("The client connects: SYN, SYN-ACK, ACK.", kind="narration")
    lab.connect("client", "server", 8080)
    lab.run_until_state("client", "ESTABLISHED", timeout=5)
    lab.advance(0.05)
    lab.note("The client sends a request; the server reads it and answers.", kind="narration")
    lab.send("client", b"GET / HTTP/1.0\r\n\r\n")
    lab.advance(0.05)
    lab.recv("server")
    lab.send("server", b"HTTP/1.0 200 OK\r\n\r\nhello from tcpplay\n")
    lab.advance(0.1)
    lab.recv("client")
    lab.note("The client closes first: FIN, ACK, then the server's FIN and the last ACK.", kind="narration")
    lab.close("client")
    lab.advance(0.1)
    lab.recv("server")
    lab.close("server")
    lab.advance(0.1)
    lab.note(
        "The client, which closed first, waits in TIME_WAIT for 2*MSL (60 s on Linux).", kind="narration"
    )
    lab.run_until(lambda: lab.count_in_state("client", "TIME_WAIT") == 0, timeout=120)
    print(
        f"\nclient connections left: {len(lab.connections('client'))}; "
        f"server: {len([c for c in lab.connections('server') if c.state.name != 'LISTEN'])}",
        file=out,
    )
    if pcap is not None:
        lab.export_pcap(pcap)  # a LabError (unwritable path...) reaches the CLI's one-line error
    return 0
