"""A listening socket: the SYN queue of half-open requests and the accept queue of finished connections.

Linux's model (and tcpplay's): a SYN creates a small request socket, not a full connection; it answers
with a SYN-ACK and retransmits it on its own timer (1, 3, 7, 15, 31 s; gone at 63 s). The third segment
turns it into a full connection in the accept queue. A full SYN queue means SYN cookies (no state kept)
or a dropped SYN; a full accept queue drops the SYN and the final ACK (or answers with a RST when
tcp_abort_on_overflow is set).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from . import syncookies
from .connection import MS, SEC, TCP_MSS_DEFAULT, Connection, SocketOptions, oow_rate_limited
from .events import SocketEvent, StateChanged, TimerArmed, TimerCancelled, TimerFired
from .sendqueue import SentSegment
from .snapshot import ConnectionSnapshot
from .state import State
from .wire import ACK, FIN, RST, SYN, Segment, syn_options

if TYPE_CHECKING:
    from .host import Host


class RequestSock:
    """A half-open connection in a listener's SYN queue (Linux's request_sock, TCP_NEW_SYN_RECV)."""

    def __init__(self, listener: Listener, seg: Segment, iss: int, now: int) -> None:
        host = listener.host
        s = host.settings
        self.listener = listener
        self.id = (seg.dst, seg.dport, seg.src, seg.sport)
        self.timers: dict[str, int] = {}
        self.queued: dict[str, int] = {}
        self.irs = seg.seq
        self.iss = iss
        self.peer_mss = seg.mss or TCP_MSS_DEFAULT
        self.sack_ok = bool(s.tcp_sack and seg.sack_permitted)
        self.ts_ok = bool(s.tcp_timestamps and seg.ts_val is not None)
        self.wscale_ok = bool(s.tcp_window_scaling and seg.wscale is not None)
        self.snd_wscale = min(seg.wscale or 0, 14) if self.wscale_ok else 0
        self.ts_recent = seg.ts_val or 0
        self.ts_offset = host.isn.ts_offset(*self.id) if s.tcp_timestamps == 1 else 0
        self.peer_window = seg.window
        self.num_timeout = 0
        self.num_retrans = 0
        self.acked = False  # the final ACK came but the accept queue was full
        self.cookie = False  # rebuilt from a SYN cookie: no record of when the SYN-ACK was sent
        self.first_sent = now
        self.last_sent = now
        self.last_oow_ack: int | None = None
        # The window we offer (Linux tcp_openreq_init_rwin()): computed like a connection's.
        probe = Connection(host, *self.id, listener.opts.copy())
        probe.init_rcv_window(probe.advmss - (12 if self.ts_ok else 0))
        if not self.wscale_ok:
            probe.rcv_wscale = 0
            probe.window_clamp = min(probe.window_clamp, 65535)
        self.advmss = probe.advmss
        self.rcv_wnd = probe.rcv_wnd
        self.rcv_wscale = probe.rcv_wscale
        self.window_clamp = probe.window_clamp

    def ts_now(self, now: int) -> int:
        return (now // MS + self.ts_offset) & 0xFFFFFFFF

    def send_synack(self, now: int, reason: str, ts_val: int | None = None) -> None:
        ts = None
        if self.ts_ok:
            ts = (ts_val if ts_val is not None else self.ts_now(now), self.ts_recent)
        options = syn_options(
            self.advmss, sack=self.sack_ok, ts=ts, wscale=self.rcv_wscale if self.wscale_ok else None
        )
        self.listener.host.send_segment(
            None,
            self.id[0],
            self.id[2],
            self.id[1],
            self.id[3],
            self.iss,
            self.irs + 1,
            SYN | ACK,
            min(self.rcv_wnd, 65535),
            options,
            b"",
            now,
            reason,
        )
        self.last_sent = now

    def on_timer(self, name: str, now: int) -> None:
        """Linux reqsk_timer_handler(): retransmit the SYN-ACK with exponential backoff, then give up."""
        listener = self.listener
        host = listener.host
        if host.observed:
            host.emit(TimerFired(now, self.id, name))
        if self.num_timeout >= host.settings.tcp_synack_retries:
            listener.drop_request(self, now, State.CLOSED, "SYN-ACK retries exhausted")
            return
        self.send_synack(now, "retransmit")
        self.num_retrans += 1
        self.num_timeout += 1
        self.arm(now)

    def arm(self, now: int) -> None:
        host = self.listener.host
        timeout = min(
            host.settings.tcp_rto_initial_ms * MS << self.num_timeout, host.settings.tcp_rto_max_ms * MS
        )
        host.timers.arm(self, "syn-ack", now + timeout)
        if host.observed:
            host.emit(TimerArmed(now, self.id, "syn-ack", now + timeout))

    def cancel_timer(self, now: int) -> None:
        host = self.listener.host
        if host.timers.cancel(self, "syn-ack") and host.observed:
            host.emit(TimerCancelled(now, self.id, "syn-ack"))

    def snapshot(self) -> ConnectionSnapshot:
        return ConnectionSnapshot(
            local=(self.id[0], self.id[1]),
            remote=(self.id[2], self.id[3]),
            state=State.SYN_RCVD,
            iss=self.iss,
            irs=self.irs,
            snd_una=self.iss,
            snd_nxt=(self.iss + 1) & 0xFFFFFFFF,
            snd_wnd=self.peer_window,
            rcv_nxt=(self.irs + 1) & 0xFFFFFFFF,
            rcv_wnd=self.rcv_wnd,
            advmss=self.advmss,
            peer_mss=self.peer_mss,
            snd_wscale=self.snd_wscale if self.wscale_ok else None,
            rcv_wscale=self.rcv_wscale if self.wscale_ok else None,
            sack=self.sack_ok,
            timestamps=self.ts_ok,
            retransmits=self.num_timeout,
            timers=dict(self.timers),
            is_request=True,
        )


class Listener:
    def __init__(self, host: Host, sock: Any, addr: str, port: int, backlog: int, opts: SocketOptions):
        self.host = host
        self.sock = sock
        self.addr = addr
        self.port = port
        self.opts = opts
        self.backlog = 0
        self.set_backlog(backlog)
        self.syn_queue: dict[tuple[str, int, str, int], RequestSock] = {}
        self.accept_queue: deque[Connection] = deque()
        self.last_overflow: int | None = None  # when cookies were last sent (Linux tcp_synq_overflow())
        self.id = (addr, port, "0.0.0.0", 0)

    def set_backlog(self, backlog: int) -> None:
        # Linux: sk_max_ack_backlog = min(backlog, somaxconn); a negative backlog means somaxconn.
        somaxconn = self.host.settings.somaxconn
        self.backlog = somaxconn if backlog < 0 else min(backlog, somaxconn)

    # Linux sk_acceptq_is_full(): the accept queue holds backlog + 1 connections.
    def accept_queue_full(self) -> bool:
        return len(self.accept_queue) > self.backlog

    def syn_queue_full(self) -> bool:
        return len(self.syn_queue) > self.backlog

    def emit_state(
        self, conn_id: tuple[str, int, str, int], old: State, new: State, now: int, cause: str
    ) -> None:
        if self.host.observed:
            self.host.emit(StateChanged(now, conn_id, old, new, cause))

    # ----------------------------------------------------------------------------------------------------

    def on_segment(self, seg: Segment, now: int, isn: int | None = None) -> None:
        """RFC 9293 §3.10.7.2 LISTEN, with request sockets looked up first (Linux tcp_v4_rcv())."""
        key = (seg.dst, seg.dport, seg.src, seg.sport)
        req = self.syn_queue.get(key)
        if req is not None and isn is None:
            self._rcv_request(req, seg, now)
            return
        flags = seg.flags
        host = self.host
        if flags & RST:
            host.drop(seg, "rst-to-listener", now, self.id)
            return
        if flags & ACK:
            if not flags & SYN and self._cookie_ack(seg, now):
                return
            # "Any acknowledgment is bad if it arrives on a connection still in the LISTEN state."
            host.drop(seg, "ack-to-listener", now, self.id)
            host.send_reset_for(seg, now, "rst-ack-to-listener")
            return
        if not flags & SYN or flags & FIN:
            host.drop(seg, "not-a-syn", now, self.id)
            return
        self._conn_request(seg, now, isn)

    def _conn_request(self, seg: Segment, now: int, isn: int | None) -> None:
        """Linux tcp_conn_request()."""
        host = self.host
        s = host.settings
        want_cookie = False
        if (s.tcp_syncookies == 2 or self.syn_queue_full()) and isn is None:
            if not s.tcp_syncookies:
                host.drop(seg, "syn-queue-full", now, self.id)
                return
            want_cookie = True
        if self.accept_queue_full():
            host.drop(seg, "accept-queue-full", now, self.id)
            return
        if (
            not want_cookie
            and not s.tcp_syncookies
            and s.tcp_max_syn_backlog - len(self.syn_queue) < (s.tcp_max_syn_backlog >> 2)
        ):
            host.drop(seg, "syn-backlog-exhausted", now, self.id)
            return
        key = (seg.dst, seg.dport, seg.src, seg.sport)
        if want_cookie:
            self._send_cookie(seg, now)
            return
        if isn is None:
            isn = host.isn.isn(*key, now)
        req = RequestSock(self, seg, isn, now)
        self.syn_queue[key] = req
        self.emit_state(key, State.LISTEN, State.SYN_RCVD, now, "SYN received")
        req.send_synack(now, "syn-ack")
        req.arm(now)

    def _send_cookie(self, seg: Segment, now: int) -> None:
        host = self.host
        key = (seg.dst, seg.dport, seg.src, seg.sport)
        if self.last_overflow is None or now - self.last_overflow >= SEC:
            host.emit_socket(
                now, key, "syn-flood", f"possible SYN flooding on port {self.port}: sending cookies"
            )
        self.last_overflow = now
        isn, mss = syncookies.make_cookie(host.isn, key, seg.seq, seg.mss or TCP_MSS_DEFAULT, now)
        req = RequestSock(self, seg, isn, now)
        req.advmss = min(req.advmss, 65535)
        req.peer_mss = mss
        ts_val = None
        if req.ts_ok:
            ts_val = syncookies.encode_ts_options(
                req.ts_now(now), seg.wscale if req.wscale_ok else None, req.sack_ok
            )
        else:
            # Without timestamps a cookie cannot remember window scaling or SACK: offer neither.
            req.wscale_ok = False
            req.sack_ok = False
            req.rcv_wscale = 0
        req.send_synack(now, "syn-ack-cookie", ts_val=ts_val)

    def _cookie_ack(self, seg: Segment, now: int) -> bool:
        """Linux cookie_v4_check(): an ACK that completes a cookie handshake makes a connection."""
        host = self.host
        s = host.settings
        if not s.tcp_syncookies or self.last_overflow is None or now - self.last_overflow > 2 * 60 * SEC:
            return False
        key = (seg.dst, seg.dport, seg.src, seg.sport)
        client_isn = (seg.seq - 1) & 0xFFFFFFFF
        cookie = (seg.ack - 1) & 0xFFFFFFFF
        mss = syncookies.check_cookie(host.isn, key, client_isn, cookie, now)
        if mss is None:
            return False
        if self.accept_queue_full():
            host.drop(seg, "accept-queue-full", now, self.id)
            return True
        syn = Segment(seg.src, seg.dst, seg.sport, seg.dport, client_isn, 0, SYN, seg.window, mss=mss)
        if seg.ts_ecr is not None and s.tcp_timestamps:
            wscale, sack = syncookies.decode_ts_options(seg.ts_ecr)
            syn.ts_val = seg.ts_val if seg.ts_val is not None else 0
            syn.ts_ecr = 0
            syn.wscale = wscale
            syn.sack_permitted = bool(sack and s.tcp_sack)
        req = RequestSock(self, syn, cookie, now)
        req.cookie = True
        req.peer_mss = mss
        self.emit_state(key, State.LISTEN, State.SYN_RCVD, now, "valid SYN cookie in ACK")
        self._make_child(req, seg, now)
        return True

    def _rcv_request(self, req: RequestSock, seg: Segment, now: int) -> None:
        """Linux tcp_check_req(): a segment for a half-open request."""
        host = self.host
        flags = seg.flags
        if flags == SYN and seg.seq == req.irs:
            # A retransmitted SYN: resend the SYN-ACK (rate-limited like other out-of-window replies).
            if not self._req_rate_limited(req, now):
                req.send_synack(now, "syn-ack-retransmit")
                req.num_retrans += 1
                # Linux tcp_check_req(): "Reset timer after retransmitting SYNACK" (mod_timer_pending to
                # now + reqsk_timeout()).
                req.arm(now)
            else:
                host.drop(seg, "syn-retransmit-rate-limited", now, req.id)
            return
        if flags & ACK and seg.ack != (req.iss + 1) & 0xFFFFFFFF:
            host.drop(seg, "bad-ack-for-request", now, req.id)
            host.send_reset_for(seg, now, "rst-bad-ack")
            return
        rcv_nxt = (req.irs + 1) & 0xFFFFFFFF
        seq_off = (seg.seq - rcv_nxt) & 0xFFFFFFFF
        end_off = (seq_off + seg.seg_len) & 0xFFFFFFFF
        in_window = (
            seq_off < req.rcv_wnd
            or (seg.seg_len == 0 and seq_off == 0)
            or (end_off != 0 and end_off <= req.rcv_wnd and seq_off >= 0x80000000)
        )
        if not in_window:
            host.drop(seg, "out-of-window", now, req.id)
            if not flags & RST and not self._req_rate_limited(req, now):
                host.send_segment(
                    None,
                    req.id[0],
                    req.id[2],
                    req.id[1],
                    req.id[3],
                    req.iss + 1,
                    rcv_nxt,
                    ACK,
                    min(req.rcv_wnd >> req.rcv_wscale, 65535),
                    b"",
                    b"",
                    now,
                    "dup-ack",
                )
            return
        if flags & (RST | SYN):
            if not flags & RST:
                host.send_reset_for(seg, now, "rst-syn-in-window")
            # RFC 9293 §3.10.7.4: a RST in SYN-RECEIVED from a passive open returns to LISTEN.
            self.drop_request(req, now, State.LISTEN, "RST in SYN_RCVD" if flags & RST else "SYN in window")
            return
        if not flags & ACK:
            host.drop(seg, "no-ack", now, req.id)
            return
        if self.accept_queue_full():
            if host.settings.tcp_abort_on_overflow:
                host.drop(seg, "accept-queue-full", now, req.id)
                host.send_reset_for(seg, now, "rst-accept-queue-full")
                self.drop_request(req, now, State.CLOSED, "accept queue full (tcp_abort_on_overflow)")
            else:
                # Linux: forget the ACK, keep the request; the SYN-ACK retransmit will try again.
                req.acked = True
                host.drop(seg, "accept-queue-full", now, req.id)
            return
        del self.syn_queue[req.id]
        req.cancel_timer(now)
        self._make_child(req, seg, now)

    def _req_rate_limited(self, req: RequestSock, now: int) -> bool:
        if oow_rate_limited(req.last_oow_ack, now, self.host.settings.tcp_invalid_ratelimit):
            return True
        req.last_oow_ack = now
        return False

    def _make_child(self, req: RequestSock, seg: Segment, now: int) -> None:
        """Linux tcp_create_openreq_child(): a full connection in SYN_RCVD that processes the ACK."""
        host = self.host
        child = Connection(host, *req.id, self.opts.copy())
        child.listener = self
        child.state = State.SYN_RCVD
        child.iss = req.iss
        child.irs = req.irs
        child.snd_una = req.iss
        child.snd_nxt = req.iss + 1
        child.sq.reset_base(req.iss + 1)
        child.sq.segs.append(SentSegment(req.iss, req.iss + 1, SYN, req.last_sent))
        child.sq.segs[0].first_sent = req.first_sent
        # Linux cookie_tcp_reqsk_init() sets snt_synack = 0: no RTT sample from the send time of a cookie
        # SYN-ACK (tcp_synack_rtt_meas()); only TSecr can give one, else RTO falls back to 3 s. Marking the
        # SYN as retransmitted routes _syn_acked() that way.
        child.sq.segs[0].retrans = 1 if req.cookie else req.num_retrans
        child.rcv_nxt = req.irs + 1
        child.rcv_wup = child.rcv_nxt
        child.rcv_wnd = req.rcv_wnd
        child.rcv_ssthresh = req.rcv_wnd
        child.window_clamp = req.window_clamp
        child.rcv_wscale = req.rcv_wscale if req.wscale_ok else 0
        child.wscale_ok = req.wscale_ok
        child.snd_wscale = req.snd_wscale
        child.sack_ok = req.sack_ok
        child.ts_ok = req.ts_ok
        child.ts_offset = req.ts_offset
        child.ts_recent = req.ts_recent
        child.ts_recent_stamp = now if req.ts_ok else 0
        child.peer_mss = req.peer_mss
        child.advmss = req.advmss
        child.snd_wl1 = child.irs
        child.total_retrans = req.num_retrans
        child.lrcvtime = now
        child.sync_mss()
        host.register(child)
        child._rcv_synchronized(seg, now)
        if child.state is State.SYN_RCVD:
            # The ACK did not complete the handshake after all (e.g. it was a RST): forget the child.
            host.unregister(child)
            return
        if child.state is not State.CLOSED:
            child._start_keepalive(now)
        self.accept_queue.append(child)
        if host.observed:
            host.emit(SocketEvent(now, child.id, "accept-ready", f"{len(self.accept_queue)} in accept queue"))

    def drop_request(self, req: RequestSock, now: int, new: State, cause: str) -> None:
        self.syn_queue.pop(req.id, None)
        req.cancel_timer(now)
        self.emit_state(req.id, State.SYN_RCVD, new, now, cause)

    def close(self, now: int) -> None:
        """Linux inet_csk_listen_stop(): forget requests; abort connections nobody accepted."""
        for req in list(self.syn_queue.values()):
            self.drop_request(req, now, State.CLOSED, "listener closed")
        while self.accept_queue:
            child = self.accept_queue.popleft()
            child.orphan = True
            child.app_abort(now)

    def snapshot(self) -> ConnectionSnapshot:
        return ConnectionSnapshot(
            local=(self.addr, self.port),
            remote=("0.0.0.0", 0),
            state=State.LISTEN,
            backlog=self.backlog,
            syn_queue=len(self.syn_queue),
            accept_queue=len(self.accept_queue),
        )
