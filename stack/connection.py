"""One TCP connection: RFC 9293's state machine, with Linux's choices where the RFC leaves room.

The code follows the order of RFC 9293 §3.10.7 event processing (and of Linux's tcp_rcv_state_process()):
sequence check, RST, SYN, ACK, data, FIN; then the output path (tcp_write_xmit()) and the ACK decision
(__tcp_ack_snd_check()). Every sequence number is an unwrapped int (see seqnum.py). Times are integer
microseconds passed in by the host; nothing here reads a clock.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .congestion import INFINITE_SSTHRESH, Controller, make_controller
from .events import CwndChanged, RttSample, SocketEvent, StateChanged, TimerArmed, TimerCancelled
from .recvqueue import ReceiveQueue
from .rtt import RttEstimator
from .sendqueue import SendQueue, SentSegment
from .seqnum import unwrap, wrap
from .snapshot import ConnectionSnapshot
from .state import State
from .wire import ACK, FIN, PSH, RST, SYN, Segment, ip_to_bytes, sack_option, syn_options, ts_option

if TYPE_CHECKING:
    from .host import Host

MS = 1000
SEC = 1_000_000
TCP_MSS_DEFAULT = 536  # RFC 9293 §3.7.1: the MSS to assume when the peer sends no MSS option
TCP_MIN_MSS = 88
TCP_MAX_QUICKACKS = 16
TCP_MAX_WSCALE = 14
TCP_TIMEOUT_FALLBACK = 3 * SEC  # RFC 6298 §5.7: RTO after a retransmitted SYN with no RTT sample
TCP_RESOURCE_PROBE_INTERVAL = 500 * MS
TCP_PAWS_WINDOW = 1

# States in which the application may still queue data, and those in which a FIN can be pending.
_CAN_SEND = frozenset({State.ESTABLISHED, State.CLOSE_WAIT})
_SENDING = frozenset({State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK})
# Linux tcp_need_reset(): states in which an abort must tell the peer with a RST.
_NEED_RESET = frozenset(
    {State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.FIN_WAIT_2, State.SYN_RCVD}
)


def oow_rate_limited(last: int | None, now: int, limit_ms: int) -> bool:
    """Linux __tcp_oow_rate_limited(): is a reply at `now` within limit_ms of the previous one (`last`)?
    The caller records `now` as the new `last` when this says no."""
    return last is not None and 0 <= now - last < limit_ms * MS


@dataclass(slots=True)
class SocketOptions:
    """Options a socket carries and a connection obeys (set through setsockopt)."""

    reuseaddr: bool = False
    keepalive: bool = False
    keepidle: int | None = None  # seconds; None = the host's tcp_keepalive_time
    keepintvl: int | None = None
    keepcnt: int | None = None
    nodelay: bool = False
    linger_on: bool = False
    linger_secs: int = 0
    rcvbuf: int | None = None  # the doubled value Linux stores; None = tcp_rmem[1]
    sndbuf: int | None = None
    maxseg: int | None = None

    def copy(self) -> SocketOptions:
        return SocketOptions(**{name: getattr(self, name) for name in self.__slots__})


class Connection:
    """A TCB (RFC 9293 §3.3.1) plus Linux's per-socket machinery: delayed-ACK engine, timers, queues."""

    def __init__(self, host: Host, laddr: str, lport: int, raddr: str, rport: int, opts: SocketOptions):
        self.host = host
        self.settings = host.settings
        self.id = (laddr, lport, raddr, rport)
        self.laddr, self.lport, self.raddr, self.rport = laddr, lport, raddr, rport
        self.addr_bytes = (ip_to_bytes(laddr), ip_to_bytes(raddr))  # for Host.send_data()
        self.opts = opts
        self.state = State.CLOSED
        self.timers: dict[str, int] = {}
        self.queued: dict[str, int] = {}
        # RFC 9293 §3.3.1 send and receive sequence variables (unwrapped).
        self.iss = 0
        self.irs = 0
        self.snd_una = 0
        self.snd_nxt = 0
        self.snd_wnd = 0
        self.snd_wl1 = 0
        self.snd_wl2 = 0
        self.max_window = 0
        self.rcv_nxt = 0
        self.rcv_wnd = 0
        self.rcv_wup = 0  # RCV.NXT when the window was last advertised (Linux rcv_wup)
        self._window_key: tuple[int, ...] = ()  # select_window()'s inputs last time, and its result
        self._window_raw = 0
        # Options.
        s = self.settings
        self.advmss = min(s.mtu - 40, opts.maxseg or 65535)
        self.peer_mss = TCP_MSS_DEFAULT
        self.mss = TCP_MSS_DEFAULT
        self.wscale_ok = False
        self.snd_wscale = 0
        self.rcv_wscale = 0
        self.sack_ok = False
        self.ts_ok = False
        self.ts_recent = 0
        self.ts_recent_stamp = 0
        self.ts_offset = host.isn.ts_offset(laddr, lport, raddr, rport) if s.tcp_timestamps == 1 else 0
        # Buffers.
        self.rcvbuf = opts.rcvbuf or s.tcp_rmem[1]
        self.sndbuf = opts.sndbuf or s.tcp_wmem[1]
        self.copied = 0  # bytes the application has read (Linux copied_seq, as a count)
        self.rcvq_space = 0  # bytes read in the last measured RTT (Linux rcvq_space.space)
        self.rcvq_seq = 0
        self.rcvq_time: int | None = None
        self.window_clamp = 0
        self.rcv_ssthresh = 0
        self.sq = SendQueue(0)
        self.rq = ReceiveQueue()
        self.ooo_fin: int | None = None
        # Retransmission.
        self.rtt = RttEstimator(s.tcp_rto_min_ms * MS, s.tcp_rto_max_ms * MS, s.tcp_rto_initial_ms * MS)
        self.backoff = 0
        self.retransmits = 0
        self.total_rto = 0
        self.retrans_stamp: int | None = None
        self.total_retrans = 0
        self.syn_retransmitted = False
        self.cc: Controller = make_controller(s.tcp_congestion_control, s.tcp_init_cwnd)
        self.dupacks = 0
        self.recovery_point: int | None = None  # RFC 6582 "recover" / RFC 6675 RecoveryPoint
        self.tlp_high_seq: int | None = None  # RFC 8985 TLPRxtOut: SND.NXT when a loss probe went out
        self.tlp_retrans = False  # that probe was a retransmission (not new data)
        self.highest_sack = 0
        self.scoreboard_marked = False  # some segment was marked SACKed or lost since the queue was clean
        self.dsacks_received = 0
        self.dsack: tuple[int, int] | None = None  # a duplicate to report in the next ACK (RFC 2883)
        self.in_loss = False
        self.max_packets_out = 0  # largest flight in the current window (Linux max_packets_out)
        self.is_cwnd_limited = False
        self.cwnd_usage_seq = 0
        self.snd_sml = 0  # end of the last small segment sent (Minshall's Nagle)
        # Delayed-ACK engine (Linux icsk_ack).
        self.ack_pending = False
        self.ack_now = False
        self.quick = 0
        self.ato = 0
        self.pingpong = 0
        self.lrcvtime = 0
        self.rcv_mss = TCP_MSS_DEFAULT
        self.last_oow_ack: int | None = None
        self.bytes_acked = 0  # Linux tp->bytes_acked (RFC 4898): bounds the RFC 5961 §5.2 old-ACK window
        # Liveness.
        self.rcv_tstamp = 0
        self.lsndtime = 0
        self.probes_out = 0
        # Application side.
        self.sock: Any = None
        self.orphan = False
        self.listener: Any = None
        self.shut_rd = False
        self.shut_wr = False
        self.fin_received = False
        self.error = 0
        self.syn_rcv_wscale = 0  # the window scale our SYN offered (set by connect())
        self.tw_mode = False  # Linux's timewait minisocket in substate FIN_WAIT2 (an orphan)
        self.lingering = False
        self.closed_cause = ""

    # ----------------------------------------------------------------------------------------------------
    # helpers

    def _now_ts(self, now: int) -> int:
        # Linux's TCP timestamp clock ticks in milliseconds, plus the per-connection random offset.
        return (now // MS + self.ts_offset) & 0xFFFFFFFF

    def set_state(self, new: State, now: int, cause: str) -> None:
        old = self.state
        if old is new:
            return
        self.state = new
        self.host.on_state_change(self, old, new)
        if self.host.observed:
            self.host.emit(StateChanged(now, self.id, old, new, cause))

    def arm(self, name: str, deadline: int, now: int) -> None:
        self.host.timers.arm(self, name, deadline)
        if self.host.observed:
            self.host.emit(TimerArmed(now, self.id, name, deadline))

    def cancel(self, name: str, now: int) -> None:
        if self.host.timers.cancel(self, name) and self.host.observed:
            self.host.emit(TimerCancelled(now, self.id, name))

    def cancel_all_timers(self, now: int) -> None:
        for name in list(self.timers):
            self.cancel(name, now)

    def socket_event(self, now: int, what: str, detail: str = "") -> None:
        if self.host.observed:
            self.host.emit(SocketEvent(now, self.id, what, detail))

    @property
    def packets_out(self) -> int:
        return len(self.sq.segs)

    def in_flight(self) -> int:
        """Segments in the network: sent, not acknowledged, not SACKed and not considered lost.

        While no segment was ever marked SACKed or lost (the common case) this is just the count, so the
        hot path does not scan the retransmission queue.
        """
        if not self.scoreboard_marked:
            return len(self.sq.segs)
        n = 0
        for seg in self.sq.segs:
            if not seg.sacked and not seg.lost:
                n += 1
        if n == len(self.sq.segs):
            self.scoreboard_marked = False
        return n

    def keepalive_time(self) -> int:
        return (self.opts.keepidle or self.settings.tcp_keepalive_time) * SEC

    def keepalive_intvl(self) -> int:
        return (self.opts.keepintvl or self.settings.tcp_keepalive_intvl) * SEC

    def keepalive_probes(self) -> int:
        return self.opts.keepcnt or self.settings.tcp_keepalive_probes

    # ----------------------------------------------------------------------------------------------------
    # windows and MSS

    def init_rcv_window(self, mss_for_window: int) -> None:
        """Linux tcp_select_initial_window(): window and scale offered in our SYN or SYN-ACK."""
        s = self.settings
        locked = self.opts.rcvbuf is not None
        space = self.rcvbuf // 2  # tcp_full_space(): half the buffer is window, half overhead
        clamp = 65535 << TCP_MAX_WSCALE
        if locked:
            clamp = space
        space = min(space, clamp)
        if space > mss_for_window:
            space -= space % mss_for_window
        self.rcv_wnd = min(space, 65535)
        self.rcv_wscale = 0
        if s.tcp_window_scaling:
            big = space if locked else max(space, s.tcp_rmem[2], s.rmem_max)
            big = min(big, clamp)
            self.rcv_wscale = max(0, min(big.bit_length() - 1 - 15, TCP_MAX_WSCALE))
        self.window_clamp = min(65535 << self.rcv_wscale, clamp)
        self.rcv_ssthresh = self.rcv_wnd

    def init_buffer_space(self) -> None:
        """Linux tcp_init_buffer_space() at the end of the handshake."""
        full = self.rcvbuf // 2
        if self.window_clamp >= full:
            self.window_clamp = full
        self.rcv_ssthresh = min(self.rcv_ssthresh, self.window_clamp)
        self.rcvq_space = min(self.rcv_ssthresh, self.rcv_wnd, self.settings.tcp_init_cwnd * self.advmss)
        self.sndbuf_expand()

    def sndbuf_expand(self) -> None:
        """Linux tcp_sndbuf_expand(): room for two congestion windows of segments (fast recovery needs
        one window beyond the flight), counted as the kernel counts a segment's memory (per_mss), so
        SO_SNDBUF reads as on Linux (87040 with the initial window of 10). Not when the user set it."""
        if self.opts.sndbuf is not None:
            return
        per_mss = 1 << (max(self.peer_mss, self.mss) + 640 - 1).bit_length()  # roundup_pow_of_two()
        per_mss += 256  # + the sk_buff itself
        want = 2 * max(self.cc.cwnd, self.settings.tcp_init_cwnd, 4) * per_mss
        want = min(want, self.settings.tcp_wmem[2])
        if want > self.sndbuf:
            self.sndbuf = want

    def rcv_space_adjust(self, now: int) -> None:
        """Linux tcp_rcv_space_adjust() ("DRS"): once per RTT, grow the receive buffer to twice what the
        application read in the last RTT (plus headroom for a sender in slow start), up to tcp_rmem[2],
        so a fast reader gets a window that keeps the pipe full. Not when the user set SO_RCVBUF."""
        if not self.rtt.has_sample:
            return
        if self.rcvq_time is None:
            self.rcvq_time, self.rcvq_seq = now, self.copied
            return
        if now - self.rcvq_time < self.rtt.srtt:
            return
        copied = self.copied - self.rcvq_seq
        if copied > self.rcvq_space:
            if self.opts.rcvbuf is None:
                rcvwin = 2 * copied + 16 * self.advmss
                grow = rcvwin * (copied - self.rcvq_space) // max(self.rcvq_space, 1)
                rcvwin += 2 * grow
                rcvbuf = min(2 * rcvwin, self.settings.tcp_rmem[2])
                if rcvbuf > self.rcvbuf:
                    self.rcvbuf = rcvbuf
                    self.window_clamp = min(rcvbuf // 2, 65535 << self.rcv_wscale)
            self.rcvq_space = copied
        self.rcvq_time, self.rcvq_seq = now, self.copied

    def sync_mss(self) -> None:
        """Effective send MSS (Linux tcp_sync_mss()): path MSS bounded by the peer's, minus our options."""
        mss = min(self.settings.mtu - 40, self.peer_mss)
        if self.opts.maxseg:
            mss = min(mss, self.opts.maxseg)
        if self.ts_ok:
            mss -= 12
        # Linux tcp_bound_to_half_wnd(): never more than half the largest window the peer offered.
        if self.max_window:
            cutoff = self.max_window // 2 if self.max_window > TCP_MSS_DEFAULT else self.max_window
            mss = max(min(mss, cutoff), 68 - 40 - (12 if self.ts_ok else 0))
        self.mss = max(mss, 1)

    def free_space(self) -> int:
        """Receive buffer space not holding data, in window units (half the buffer, see _compute_window)."""
        rq = self.rq
        free = (self.rcvbuf >> 1) - len(rq.ready)
        if rq.ooo:
            free -= rq.ooo_bytes
        return free if free > 0 else 0

    def receive_window(self) -> int:
        """Linux tcp_receive_window(): what is left of the window we last advertised."""
        return max(0, self.rcv_wup + self.rcv_wnd - self.rcv_nxt)

    def _compute_window(self) -> int:
        """Linux __tcp_select_window(), with window-from-space modelled as half the buffer."""
        mss = self.rcv_mss
        free = self.free_space()
        allowed = self.rcvbuf >> 1
        full = min(self.window_clamp, allowed)
        if mss > full:
            mss = full
            if mss <= 0:
                return 0
        unit = 1 << self.rcv_wscale
        if free < (full >> 1):
            self.quick = 0
            free -= free % unit
            # Receiver silly window avoidance (RFC 9293 §3.8.6.2.2): a window below an MSS (or 1/16 of
            # the buffer) is advertised as zero.
            if free < (allowed >> 4) or free < mss:
                return 0
        free = min(free, self.rcv_ssthresh)
        if self.rcv_wscale:
            return (free + unit - 1) // unit * unit
        window = self.rcv_wnd
        if window <= free - mss or window > free:
            window = free - free % mss if mss else free
        elif mss == full and free > window + (full >> 1):
            window = free
        return window

    def _window_inputs(self) -> tuple[int, ...]:
        """What select_window()'s result can change with, between two calls. (rcv_wnd and rcv_wup are set
        by select_window itself; rcv_mss changes only with new data, i.e. with rcv_nxt; window_clamp only
        with rcvbuf; rcv_wscale never after the handshake.) quick is one: _compute_window() clears
        quick-ACK mode when space runs low, as Linux's __tcp_select_window() does."""
        rq = self.rq
        return (
            self.rcv_nxt,
            len(rq.ready),
            rq.ooo_bytes if rq.ooo else 0,
            self.rcv_ssthresh,
            self.rcvbuf,
            self.quick,
        )

    def select_window(self) -> int:
        """The window field for an outgoing segment (Linux tcp_select_window()); never shrinks the window."""
        key = self._window_inputs()
        if key == self._window_key:
            # A burst of segments with nothing received in between: same inputs, same window.
            return self._window_raw
        cur = self.receive_window()
        new = self._compute_window()
        if new < cur:
            # RFC 9293 §3.8.6.2.2 / RFC 7323 §2.4: do not shrink the window we offered.
            unit = 1 << self.rcv_wscale
            new = (cur + unit - 1) // unit * unit
        self.rcv_wnd = new
        self.rcv_wup = self.rcv_nxt
        raw = min(new, 65535 << self.rcv_wscale) >> self.rcv_wscale
        self._window_key = self._window_inputs()
        self._window_raw = raw
        return raw

    # ----------------------------------------------------------------------------------------------------
    # output

    def _options(self, flags: int, now: int) -> bytes:
        opts = b""
        if self.ts_ok:
            opts = ts_option(self._now_ts(now), self.ts_recent)
        if self.sack_ok and (self.rq.ooo or self.dsack) and not flags & RST:
            limit = 3 if self.ts_ok else 4
            blocks = []
            if self.dsack is not None:
                # RFC 2883 §4: the duplicate goes first, once.
                blocks.append(self.dsack)
                self.dsack = None
            blocks += self.rq.sack_blocks(limit - len(blocks))
            opts += sack_option([(wrap(a), wrap(b)) for a, b in blocks])
        return opts

    def _syn_options(self, now: int, *, synack: bool) -> bytes:
        """Linux tcp_syn_options(): a full socket's SYN, and its SYN-ACK of a simultaneous open
        (tcp_send_synack()), carry what the sysctls enable, whatever the peer offered; TSecr is TS.Recent
        (the peer's SYN TS val for a SYN-ACK; 0 for a SYN unless the 4-tuple was taken over from
        TIME_WAIT)."""
        s = self.settings
        ts = (self._now_ts(now), self.ts_recent) if s.tcp_timestamps else None
        return syn_options(
            self.advmss,
            sack=bool(s.tcp_sack),
            ts=ts,
            # The scale our SYN offered: a peer SYN without one turns scaling off for the connection
            # (rcv_wscale = 0), but the SYN-ACK repeats our SYN (Linux never clears it on this path).
            wscale=self.syn_rcv_wscale if s.tcp_window_scaling else None,
        )

    def transmit(
        self,
        now: int,
        seq: int,
        flags: int,
        payload: bytes = b"",
        *,
        reason: str,
        options: bytes | None = None,
    ) -> None:
        """Put one segment on the wire (via the host's outbox)."""
        if flags & SYN:
            window = min(self.rcv_wnd, 65535)  # RFC 7323 §2.2: the SYN's window is never scaled
            ack = self.rcv_nxt if flags & ACK else 0
            if options is None:
                options = self._syn_options(now, synack=bool(flags & ACK))
        else:
            flags |= ACK
            window = self.select_window()
            ack = self.rcv_nxt
            if options is None:
                options = self._options(flags, now)
        self.host.send_segment(
            self,
            self.laddr,
            self.raddr,
            self.lport,
            self.rport,
            seq,
            ack,
            flags,
            window,
            options,
            payload,
            now,
            reason,
        )
        if flags & ACK:
            self._ack_sent(now)

    def _ack_sent(self, now: int) -> None:
        """Linux tcp_event_ack_sent(): any ACK we send satisfies the pending (delayed) ACK."""
        if self.quick:
            pkts = 1 if self.ack_pending else 0
            if pkts >= self.quick:
                self.quick = 0
                self.ato = 40 * MS
            else:
                self.quick -= pkts
        self.ack_pending = False
        self.ack_now = False
        if "delayed-ack" in self.timers:
            self.cancel("delayed-ack", now)

    def send_ack(self, now: int, reason: str = "ack") -> None:
        self.transmit(now, self.snd_nxt, ACK, reason=reason)

    def send_rst(self, now: int, reason: str = "rst") -> None:
        """An abortive RST from this connection: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK>. Linux's
        tcp_send_active_reset() goes through tcp_transmit_skb(), so it carries the current window and the
        TS option like any other segment ("Flags [R.], seq 1, ack 6, win 512, options [nop,nop,TS ...]")."""
        self.transmit(now, self.snd_nxt, RST | ACK, reason=reason)

    def _rate_limited(self, now: int, attr: str) -> bool:
        """Linux __tcp_oow_rate_limited(): at most one such reply per tcp_invalid_ratelimit ms."""
        if oow_rate_limited(getattr(self, attr), now, self.settings.tcp_invalid_ratelimit):
            return True
        setattr(self, attr, now)
        return False

    def send_dupack(self, seg: Segment, now: int, reason: str = "dup-ack") -> None:
        """Answer an unacceptable segment with an ACK (RFC 9293 §3.10.7.4 first check)."""
        # Linux tcp_oow_rate_limited(): only segments without data (or with SYN) are rate-limited.
        if (not seg.payload or seg.flags & SYN) and self._rate_limited(now, "last_oow_ack"):
            self.host.drop(seg, "ack-rate-limited", now, self.id)
            return
        self.enter_quickack()
        self.send_ack(now, reason)

    def send_challenge_ack(self, now: int) -> None:
        """RFC 5961 §3.2/§4.2 challenge ACK, rate-limited per connection (Linux: 1 per 500 ms)."""
        # Linux tcp_send_challenge_ack(): the same per-socket clock as other out-of-window replies
        # (tp->last_oow_ack_time), so a dup ACK and a challenge ACK within 500 ms count as one.
        if self._rate_limited(now, "last_oow_ack"):
            return
        if self.host.challenge_ack_budget(now):
            self.send_ack(now, "challenge-ack")

    def _cwnd_event(self, now: int, cause: str) -> None:
        if self.host.observed:
            ss = self.cc.ssthresh if self.cc.ssthresh != INFINITE_SSTHRESH else -1
            self.host.emit(CwndChanged(now, self.id, self.cc.cwnd, ss, cause))

    def output(self, now: int) -> None:
        """Send what the windows allow: lost segments first, then new data and the FIN (tcp_write_xmit())."""
        if self.state not in _SENDING:
            return
        sq = self.sq
        if self.in_loss or self.recovery_point is not None:
            self._retransmit_lost(now)
        elif sq.write_seq <= self.snd_nxt and (sq.fin_seq is None or self.snd_nxt > sq.fin_seq):
            return  # nothing new to send
        window_limited = False
        cwnd_limited = False
        sent = 0
        # Nothing below changes these (only new data is sent), so they are read once.
        segs = sq.segs
        mss = self.mss
        cwnd = self.cc.cwnd
        wnd_end = self.snd_una + self.snd_wnd
        nodelay = self.opts.nodelay
        host = self.host
        # The second and later data segments of a burst share the first one's header (see below).
        header: tuple[int, int, bytes] | None = None
        while True:
            seq = self.snd_nxt
            write_seq = sq.write_seq
            data_left = write_seq - seq
            fin_pending = sq.fin_seq is not None and seq <= sq.fin_seq
            if data_left <= 0 and not fin_pending:
                break
            size = mss if data_left >= mss else max(data_left, 0)
            end = seq + size
            fin = fin_pending and end == write_seq
            if size > 0 or not fin:
                if (self.in_flight() if self.scoreboard_marked else len(segs)) >= cwnd:
                    cwnd_limited = True
                    break
                if end > wnd_end:
                    window_limited = True
                    break
                # Nagle (RFC 9293 §3.7.4) with Minshall's refinement, as Linux tcp_nagle_check().
                if size < mss and not fin and not nodelay and segs and self.snd_una < self.snd_sml <= seq:
                    break
            sent += 1
            if fin or header is None:
                self._send_data(now, seq, size, fin)
                # What the first segment did once (ACK sent, RTO armed, D-SACK reported) is done for
                # the burst; the window, RCV.NXT and the options (same clock, nothing received
                # meanwhile) are the same for every later one, as tcp_select_window() and
                # tcp_established_options() would compute them again.
                header = (self.select_window(), self.rcv_nxt, self._options(ACK, now))
                continue
            # The lean path of a data segment (the work _send_data() would repeat for nothing).
            flags = ACK | PSH if sq.push_in(seq, end) else ACK
            base = sq.base
            sq.record(seq, end, flags, now)
            self.snd_nxt = end
            if size < mss:
                self.snd_sml = end
            window, ack, options = header
            host.send_data(self, seq, ack, flags, window, options, sq.buf[seq - base : end - base], now)
            self._data_sent(now)
        if window_limited and not self.packets_out and "persist" not in self.timers:
            # Linux tcp_check_probe_timer(): nothing in flight and the window is closed: probe it.
            self.arm("persist", now + self._probe0_when(), now)
        if sent or cwnd_limited:
            self._cwnd_validate(cwnd_limited)
        if sent:
            self._schedule_loss_probe(now, advancing_rto=False)

    def _cwnd_validate(self, limited: bool) -> None:
        """Linux tcp_cwnd_validate(): remember, per window of data, whether cwnd was what held us back
        (and the largest flight), so cwnd grows only when it is actually used (RFC 7661's spirit)."""
        if (
            self.snd_una >= self.cwnd_usage_seq
            or limited
            or (not self.is_cwnd_limited and self.packets_out > self.max_packets_out)
        ):
            self.is_cwnd_limited = limited
            self.max_packets_out = self.packets_out
            self.cwnd_usage_seq = self.snd_nxt

    def _send_data(self, now: int, seq: int, size: int, fin: bool) -> None:
        """One new segment [seq, seq+size), with the FIN if asked: PSH where a write ended (Linux
        tcp_mark_push())."""
        flags = ACK
        if size and self.sq.push_in(seq, seq + size):
            flags |= PSH
        if fin:
            flags |= FIN
        self._send_new(now, seq, seq + size + (1 if fin else 0), flags, size)

    def _send_new(self, now: int, seq: int, end: int, flags: int, size: int) -> None:
        payload = self.sq.data(seq, seq + size)
        first = not self.sq.segs
        self.sq.record(seq, end, flags, now)
        self.snd_nxt = end
        if size < self.mss:
            self.snd_sml = end
        self.transmit(now, seq, flags, payload, reason="fin" if flags & FIN and not size else "data")
        self._data_sent(now)
        # Linux tcp_event_new_data_sent(): (re)start the RTO for a first flight or over a pending probe.
        if first or "loss-probe" in self.timers or "retransmit" not in self.timers:
            self._rearm_rto(now)
        if "persist" in self.timers:
            self.cancel("persist", now)

    def _data_sent(self, now: int) -> None:
        """Linux tcp_event_data_sent(): a reply within ATO of the last data received means ping-pong."""
        self.lsndtime = now
        if self.ato and now - self.lrcvtime < self.ato:
            self.pingpong += 1

    def _retransmit_segment(self, seg: SentSegment, now: int, reason: str, *, probe: bool = False) -> None:
        sq = self.sq
        # Collapse small following segments into this one when they fit (tcp_retrans_try_collapse()).
        while seg.flags & SYN == 0:
            idx = sq.segs.index(seg)
            if idx + 1 >= len(sq.segs):
                break
            nxt = sq.segs[idx + 1]
            if nxt.sacked or nxt.retrans or nxt.flags & SYN or (nxt.end - seg.start) > self.mss:
                break
            if seg.flags & FIN:
                break
            seg.end = nxt.end
            seg.flags |= nxt.flags
            del sq.segs[idx + 1]
            nxt.lost = False  # merged away: a caller walking a copy of the queue must skip it
        if seg.flags & SYN:
            self.transmit(
                now, seg.start, seg.flags | (ACK if self.state is State.SYN_RCVD else 0), reason=reason
            )
        else:
            data_end = min(seg.end, sq.write_seq)
            payload = sq.data(seg.start, data_end)
            self.transmit(now, seg.start, ACK | (seg.flags & (FIN | PSH)), payload, reason=reason)
        if self.retrans_stamp is None and not probe:
            self.retrans_stamp = seg.first_sent
        seg.retrans += 1
        seg.sent_at = now
        seg.lost = False
        self.total_retrans += 1

    def _retransmit_lost(self, now: int, reason: str = "retransmit") -> None:
        for seg in list(self.sq.segs):
            if seg.lost and not seg.sacked:
                if self.in_flight() >= self.cc.cwnd:
                    return
                self._retransmit_segment(seg, now, reason)

    def _probe0_when(self) -> int:
        base = max(self.rtt.rto, self.settings.tcp_rto_min_ms * MS)
        return min(base << self.backoff, self.settings.tcp_rto_max_ms * MS)

    # ----------------------------------------------------------------------------------------------------
    # active open

    def connect(self, now: int) -> None:
        """RFC 9293 §3.10.1 OPEN (active): choose ISS, send SYN, enter SYN_SENT."""
        host = self.host
        self.iss = host.isn.isn(self.laddr, self.lport, self.raddr, self.rport, now)
        if host.reuse_isn is not None:
            self.iss, host.reuse_isn = host.reuse_isn, None
            self.ts_recent, host.reuse_ts_recent = host.reuse_ts_recent, 0
        self._start_active(now)

    def _start_active(self, now: int) -> None:
        self.snd_una = self.iss
        self.snd_nxt = self.iss + 1
        self.sq.reset_base(self.iss + 1)
        self.init_rcv_window(self.advmss)
        self.syn_rcv_wscale = self.rcv_wscale
        self.set_state(State.SYN_SENT, now, "connect()")
        self.sq.segs.append(SentSegment(self.iss, self.iss + 1, SYN, now))
        self.transmit(now, self.iss, SYN, reason="syn")
        self.arm("retransmit", now + self.rtt.rto, now)

    # ----------------------------------------------------------------------------------------------------
    # input

    def on_segment(self, seg: Segment, now: int) -> str | None:
        """Process one segment addressed to this connection. Returns "reopen" when a SYN legitimately
        reopens a TIME_WAIT connection (the host then hands the SYN to the listener)."""
        st = self.state
        if st is State.ESTABLISHED and self._fast_path(seg, now):
            return None
        if st is State.SYN_SENT:
            self._rcv_synsent(seg, now)
            return None
        if st is State.TIME_WAIT or self.tw_mode:
            return self._rcv_timewait(seg, now)
        if st is State.CLOSED:
            self.host.drop(seg, "connection-closed", now, self.id)
            return None
        self._rcv_synchronized(seg, now)
        return None

    def _fast_path(self, seg: Segment, now: int) -> bool:
        """Linux's header prediction (tcp_rcv_established()): the next in-order segment of a bulk flow
        (ACK or PSH+ACK, same window, fresh timestamp, no SACK or recovery state) skips the general
        checks. Returns False, having changed nothing, for anything else; the slow path then handles it
        with exactly the same outcome, only slower.
        """
        if seg.flags & ~PSH != ACK or seg.sack_blocks or self.scoreboard_marked:
            return False
        if self.recovery_point is not None or self.in_loss or self.rq.ooo or not self.snd_wnd:
            return False
        rcv_nxt = self.rcv_nxt
        if seg.seq != rcv_nxt & 0xFFFFFFFF or seg.window << self.snd_wscale != self.snd_wnd:
            return False
        seq = rcv_nxt
        ts_val = seg.ts_val
        if self.ts_ok:
            if ts_val is None or ((ts_val - self.ts_recent) & 0xFFFFFFFF) >= 0x80000000:
                return False
        elif ts_val is not None:
            return False
        una = self.snd_una
        ack = una + ((seg.ack - una + 0x80000000) & 0xFFFFFFFF) - 0x80000000  # unwrap() inlined
        payload = seg.payload
        n = len(payload)
        if ack > self.snd_nxt or ack < una or (ack == una and not n):
            return False  # ACK of unsent data, an old ACK, or a possible duplicate ACK: the slow path decides
        if n and n > self.rcv_wup + self.rcv_wnd - rcv_nxt:
            return False  # beyond what we offered (receive_window())
        if ts_val is not None and seq <= self.rcv_wup:
            # RFC 7323 §4.3: TS.Recent from segments at the left edge of the window.
            self.ts_recent = ts_val
            self.ts_recent_stamp = now
        self.probes_out = 0
        self.rcv_tstamp = now
        advanced = ack > una
        if advanced:
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            self._new_ack(seg, ack, now)
        if n:
            self.rq.ready += payload
            self.rcv_nxt = seq + n
            self._event_data_recv(n, now)
            if self.host.observed:
                self.socket_event(now, "readable", f"{len(self.rq.ready)} bytes buffered")
        sq = self.sq
        if advanced or sq.write_seq > self.snd_nxt or sq.fin_seq is not None:
            self.output(now)  # (a pure receiver with nothing queued has nothing to send)
        self._ack_check(now)
        return True

    def _paws_reject(self, seg: Segment, now: int) -> bool:
        """RFC 7323 §5.3 PAWS: a TSval older than TS.Recent marks an old duplicate."""
        if not self.ts_ok or seg.ts_val is None or not self.ts_recent_stamp:
            return False
        diff = (self.ts_recent - seg.ts_val) & 0xFFFFFFFF
        if diff == 0 or diff >= 0x80000000 or diff <= TCP_PAWS_WINDOW:
            return False
        # RFC 7323 §5.5: TS.Recent older than 24 days is invalid.
        return now - self.ts_recent_stamp < 24 * 86400 * SEC

    def _rcv_synsent(self, seg: Segment, now: int) -> None:
        """RFC 9293 §3.10.7.3 SYN-SENT, with Linux tcp_rcv_synsent_state_process() details."""
        flags = seg.flags
        if flags & ACK:
            ack = unwrap(seg.ack, self.snd_una)
            if ack <= self.iss or ack > self.snd_nxt:
                # An old duplicate SYN-ACK (or a stray ACK): <SEQ=SEG.ACK><CTL=RST> unless it is a RST.
                if not flags & RST:
                    self.host.drop(seg, "unacceptable-ack-in-syn-sent", now, self.id)
                    self.host.send_reset_for(seg, now, "rst-bad-synack")
                else:
                    self.host.drop(seg, "unacceptable-rst-in-syn-sent", now, self.id)
                return
            if (
                self.settings.tcp_timestamps
                and seg.ts_ecr
                and self.retrans_stamp is None
                and not self._ecr_plausible(seg.ts_ecr, now)
            ):
                self.host.drop(seg, "bad-ts-ecr-in-syn-sent", now, self.id)
                self.host.send_reset_for(seg, now, "rst-bad-synack")
                return
        if flags & RST:
            if flags & ACK:
                # RFC 9293: "error: connection reset"; Linux reports ECONNREFUSED for a RST to our SYN.
                self._reset(now, errno.ECONNREFUSED, "RST in SYN_SENT: connection refused")
            else:
                self.host.drop(seg, "rst-without-ack-in-syn-sent", now, self.id)
            return
        if not flags & SYN:
            self.host.drop(seg, "no-syn-in-syn-sent", now, self.id)
            return
        self.irs = seg.seq
        self.rcv_nxt = self.irs + 1
        self.rcv_wup = self.rcv_nxt
        self._negotiate(seg, ours_from_settings=True)
        self.ts_recent = seg.ts_val or 0
        self.ts_recent_stamp = now if seg.ts_val is not None else 0
        if flags & ACK:
            # SYN-ACK acceptable: ESTABLISHED.
            ack = unwrap(seg.ack, self.snd_una)
            self._syn_acked(seg, ack, now)
            self.snd_wnd = seg.window  # RFC 7323 §2.2: the window of a SYN is never scaled
            self.snd_wl1 = seg.seq
            self.snd_wl2 = ack
            self.max_window = max(self.max_window, self.snd_wnd)
            self.sync_mss()
            self.init_buffer_space()
            self.set_state(State.ESTABLISHED, now, "SYN-ACK received")
            self.socket_event(now, "connected")
            self.rcv_tstamp = now
            self._start_keepalive(now)
            # Linux acks the SYN-ACK at once (no delayed ACK here in the default case).
            self.send_ack(now, "ack")
            self.output(now)
        else:
            # Simultaneous open (RFC 9293 Figure 8): SYN_SENT -> SYN_RCVD, send SYN-ACK with our ISS.
            self.snd_wnd = seg.window
            self.snd_wl1 = seg.seq
            self.set_state(State.SYN_RCVD, now, "SYN received in SYN_SENT (simultaneous open)")
            head = self.sq.segs[0] if self.sq.segs else None
            if head is not None:
                head.flags = SYN
            self.transmit(
                now, self.iss, SYN | ACK, reason="syn-ack", options=self._synack_options_simopen(now)
            )

    def _synack_options_simopen(self, now: int) -> bytes:
        return self._syn_options(now, synack=True)

    def _ecr_plausible(self, ecr: int, now: int) -> bool:
        # Linux: the echoed TS must lie between our SYN's send time and now.
        head = self.sq.segs[0] if self.sq.segs else None
        start = self._now_ts(head.first_sent if head else now)
        return ((ecr - start) & 0xFFFFFFFF) <= ((self._now_ts(now) - start) & 0xFFFFFFFF)

    def _negotiate(self, seg: Segment, *, ours_from_settings: bool) -> None:
        """Options are used only if both SYNs carried them (RFC 7323 §1.3, §2.2; RFC 2018 §2)."""
        s = self.settings
        self.peer_mss = seg.mss if seg.mss else TCP_MSS_DEFAULT
        self.sack_ok = bool(s.tcp_sack and seg.sack_permitted)
        self.ts_ok = bool(s.tcp_timestamps and seg.ts_val is not None)
        if not self.ts_ok:
            self.ts_offset = 0 if s.tcp_timestamps != 1 else self.ts_offset
        if s.tcp_window_scaling and seg.wscale is not None:
            self.wscale_ok = True
            # RFC 7323 §2.3: a shift above 14 is used as 14.
            self.snd_wscale = min(seg.wscale, TCP_MAX_WSCALE)
        else:
            self.wscale_ok = False
            self.snd_wscale = 0
            self.rcv_wscale = 0
            self.window_clamp = min(self.window_clamp, 65535)

    def _syn_acked(self, seg: Segment, ack: int, now: int) -> None:
        head = self.sq.segs.popleft() if self.sq.segs else None
        if self.listener is None:
            # Linux counts the SYN in bytes_acked on an active (or simultaneous) open; a passive child
            # starts with SND.UNA = ISS + 1 (tcp_create_openreq_child()).
            self.bytes_acked += ack - self.snd_una
        self.snd_una = ack
        if head is not None and head.retrans == 0:
            self._rtt_sample(now - head.sent_at, now)
        elif self.ts_ok and seg.ts_ecr:
            self._rtt_sample(((self._now_ts(now) - seg.ts_ecr) & 0xFFFFFFFF) * MS, now)
        else:
            # RFC 6298 §5.7 / Linux tcp_init_metrics(): a retransmitted SYN with no sample -> RTO 3 s.
            self.rtt.rto = TCP_TIMEOUT_FALLBACK
        if head is not None and head.retrans:
            self.syn_retransmitted = True
        if self.total_retrans > 1:
            # Linux tcp_init_transfer(): cwnd 1 (RFC 5681 §3.1) only after more than one SYN or SYN-ACK
            # retransmission ("In light of RFC6298 more aggressive 1sec initRTO").
            self.cc.cwnd = 1
        self.backoff = 0
        self.retransmits = 0
        self.total_rto = 0
        self.retrans_stamp = None
        self.cancel("retransmit", now)

    def _rtt_sample(self, rtt: int, now: int) -> None:
        self.rtt.sample(rtt)
        if self.host.observed:
            r = self.rtt
            self.host.emit(RttSample(now, self.id, rtt, r.srtt, r.rttvar, r.rto))

    def _rcv_synchronized(self, seg: Segment, now: int) -> None:
        """RFC 9293 §3.10.7.4 (SYN-RECEIVED and the synchronized states)."""
        flags = seg.flags
        seq = unwrap(seg.seq, self.rcv_nxt)
        seg_len = len(seg.payload) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        end = seq + seg_len
        # RFC 7323 §5.3: PAWS first; a RST is still accepted.
        if self._paws_reject(seg, now) and not flags & RST:
            self.host.drop(seg, "paws", now, self.id)
            self.send_dupack(seg, now)
            return
        # First: sequence number acceptable? (Linux tcp_sequence())
        if end < self.rcv_wup or seq > self.rcv_nxt + self.receive_window():
            if flags & RST and self._reset_check(seq):
                self._on_rst(now)
                return
            self.host.drop(seg, "out-of-window", now, self.id)
            if not flags & RST:
                if flags & SYN:
                    self.send_challenge_ack(now)
                else:
                    self.send_dupack(seg, now)
            return
        # Second: RST (RFC 5961 §3.2).
        if flags & RST:
            exact = seq == self.rcv_nxt or self._reset_check(seq)
            if not exact and self.sack_ok and self.rq.ooo:
                last = self.rq.ooo[-1]
                exact = seq == last[0] + len(last[1])
            if exact:
                self._on_rst(now)
            else:
                self.host.drop(seg, "rst-in-window-challenged", now, self.id)
                self.send_challenge_ack(now)
            return
        # Fourth: SYN in a synchronized state -> challenge ACK (RFC 5961 §4.2), except the SYN-ACK that
        # completes a simultaneous open.
        if flags & SYN:
            simopen_synack = (
                self.state is State.SYN_RCVD
                and flags & ACK
                and seg_len == 1
                and seq + 1 == self.rcv_nxt
                and unwrap(seg.ack, self.snd_una) == self.snd_nxt
            )
            if not simopen_synack:
                self.host.drop(seg, "syn-in-synchronized-state", now, self.id)
                self.send_challenge_ack(now)
                return
            seq += 1  # the SYN's sequence number is already consumed
            # Linux tcp_data_queue() then sees 5000:5001 as an old duplicate and ACKs it at once.
            self._ack_at_once()
        # Fifth: ACK off -> drop.
        if not flags & ACK:
            self.host.drop(seg, "no-ack", now, self.id)
            return
        # RFC 7323 §4.3 (Linux tcp_replace_ts_recent()): remember TSval of in-window segments.
        if (
            self.ts_ok
            and seg.ts_val is not None
            and seq <= self.rcv_wup
            and (((seg.ts_val - self.ts_recent) & 0xFFFFFFFF) < 0x80000000 or not self.ts_recent_stamp)
        ):
            self.ts_recent = seg.ts_val
            self.ts_recent_stamp = now
        verdict = self._process_ack(seg, seq, now)
        if verdict == "discard":
            return
        if verdict == "reset":
            self.host.send_reset_for(seg, now, "rst-bad-ack")
            return
        st = self.state
        if st is State.CLOSED:
            return
        # Seventh: segment text; eighth: FIN.
        data_or_fin = bool(seg.payload) or bool(flags & FIN)
        if data_or_fin:
            if st in (State.CLOSE_WAIT, State.CLOSING, State.LAST_ACK) and seq >= self.rcv_nxt:
                # The peer already sent its FIN: later data is ignored (Linux: "break").
                self.host.drop(seg, "data-after-fin", now, self.id)
            elif (
                st in (State.FIN_WAIT_1, State.FIN_WAIT_2)
                and self.shut_rd
                and seq + len(seg.payload) > self.rcv_nxt
                and seg.payload
            ):
                # Linux: new data after the application closed its reading side -> reset the connection
                # (tcp_reset() + the caller's tcp_v4_send_reset(): <SEQ=SEG.ACK><CTL=RST>).
                self.host.drop(seg, "data-after-close", now, self.id)
                self.host.send_reset_for(seg, now, "rst-data-after-close")
                self._done(now, "new data arrived after close()", error=0)
                return
            else:
                self._data_queue(seg, seq, now)
        if self.state is State.CLOSED:
            return
        self.output(now)
        self._ack_check(now)

    def _reset_check(self, seq: int) -> bool:
        """Linux tcp_reset_check(): a RST at RCV.NXT - 1 after the peer's FIN is accepted (in or out of
        the window), for stacks that send FIN then a RST with the FIN's sequence number."""
        return seq == self.rcv_nxt - 1 and self.state in (State.CLOSE_WAIT, State.LAST_ACK, State.CLOSING)

    def _process_ack(self, seg: Segment, seq: int, now: int) -> str:
        """RFC 9293 §3.10.7.4 fifth check, as Linux tcp_ack(). Returns "ok", "discard" or "reset"."""
        ack = unwrap(seg.ack, self.snd_una)
        st = self.state
        if ack > self.snd_nxt:
            # Linux drops an ACK of data never sent, without replying in ESTABLISHED (RFC 9293 says to ACK
            # it); tcp_rcv_state_process() answers it with a challenge ACK in the other synchronized states.
            self.host.drop(seg, "ack-of-unsent-data", now, self.id)
            if st is State.SYN_RCVD:
                return "reset"
            if st is not State.ESTABLISHED:
                self.send_challenge_ack(now)
            return "discard"
        if ack < self.snd_una:
            if st is State.SYN_RCVD:
                self.host.drop(seg, "bad-ack-in-syn-rcvd", now, self.id)
                return "reset"
            # RFC 5961 §5.2: an ACK too old to be in the peer's window gets a challenge ACK.
            # Linux tcp_ack(): the window is min(max_window, bytes_acked) ("do not accept ACK for bytes we
            # never sent").
            if ack < self.snd_una - min(self.max_window, self.bytes_acked):
                self.host.drop(seg, "ack-too-old", now, self.id)
                self.send_challenge_ack(now)
                return "discard"
            return "ok"  # an old duplicate ACK: ignore the ACK field, process the rest
        if st is State.SYN_RCVD:
            # RFC 9293: SYN-RECEIVED + acceptable ACK -> ESTABLISHED (simultaneous open path).
            self._syn_acked(seg, ack, now)
            self.snd_wnd = seg.window << self.snd_wscale
            self.snd_wl1 = seq
            self.snd_wl2 = ack
            self.max_window = max(self.max_window, self.snd_wnd)
            self.sync_mss()
            self.init_buffer_space()
            self.set_state(State.ESTABLISHED, now, "ACK of our SYN")
            self.socket_event(now, "connected")
        nwin = seg.window << self.snd_wscale
        prior_una = self.snd_una
        prior_wnd = self.snd_wnd
        # RFC 9293 §3.10.7.4: update the send window only from newer segments (SND.WL1/SND.WL2); Linux
        # tcp_may_update_window() (6.5+) also takes a zero window from a segment with SEQ == SND.WL1.
        if (
            ack > self.snd_una
            or seq > self.snd_wl1
            or (seq == self.snd_wl1 and (nwin > self.snd_wnd or not nwin))
        ):
            if self.snd_wnd != nwin:
                self.snd_wnd = nwin
                if nwin > self.max_window:
                    self.max_window = nwin
                    self.sync_mss()
            self.snd_wl1 = seq
            self.snd_wl2 = ack
        self.probes_out = 0
        self.rcv_tstamp = now
        dsacks_before = self.dsacks_received
        newly_sacked = self._sacktag(seg, ack) if self.sack_ok and seg.sack_blocks else 0
        if ack > prior_una:
            self._new_ack(seg, ack, now)
        elif (
            ack == prior_una
            and self.packets_out
            and not seg.payload
            and not seg.flags & (SYN | FIN)
            and (nwin == prior_wnd or newly_sacked)
        ):
            self._dupack(now)
        if self.sack_ok and self.recovery_point is not None and self.sq.segs:
            self._mark_sack_losses()
        if self.tlp_high_seq is not None:
            self._process_tlp_ack(ack, ack > prior_una, self.dsacks_received > dsacks_before, now)
        if self.snd_wnd and "persist" in self.timers:
            # Linux tcp_ack_probe(): the window opened, stop probing.
            self.cancel("persist", now)
            self.backoff = 0
        # State changes driven by the ACK of our FIN.
        fin_acked = self.sq.fin_seq is not None and self.snd_una > self.sq.fin_seq
        st = self.state
        if fin_acked:
            if st is State.FIN_WAIT_1:
                self.cancel("linger", now)
                self.lingering = False
                if self.orphan and seg.payload and seq + len(seg.payload) > self.rcv_nxt:
                    # Linux tcp_rcv_state_process() FIN_WAIT1: tcp_done() + tcp_v4_send_reset() (SEQ=SEG.ACK)
                    self.host.drop(seg, "data-after-close", now, self.id)
                    self.host.send_reset_for(seg, now, "rst-data-after-close")
                    self._done(now, "new data arrived after close()", error=0)
                    return "discard"
                if seg.flags & FIN and self._fin_in_order(seg, seq):
                    # RFC 9293 §3.10.7.4 eighth: FIN-WAIT-1 whose FIN is ACKed in this very segment goes
                    # straight to TIME-WAIT (_on_fin); FIN_WAIT_2 is never observable (scenario 15B).
                    return "ok"
                self.set_state(State.FIN_WAIT_2, now, "ACK of our FIN")
                if self.orphan:
                    self._orphan_fin_wait_2(now, fin_in_segment=bool(seg.flags & FIN))
            elif st is State.CLOSING:
                self.cancel("linger", now)
                self._enter_time_wait(now, "ACK of our FIN in CLOSING")
                return "discard"
            elif st is State.LAST_ACK:
                self.cancel("linger", now)
                self._done(now, "ACK of our FIN in LAST_ACK", error=0)
                return "discard"
        return "ok"

    def _fin_in_order(self, seg: Segment, seq: int) -> bool:
        """Will _data_queue() process this segment's FIN now (in order, not dropped for a zero window)?"""
        end = seq + len(seg.payload)
        if not seq <= self.rcv_nxt <= end:
            return False
        return not ((seq < self.rcv_nxt or seg.payload) and self.receive_window() == 0)

    def _sacktag(self, seg: Segment, ack: int) -> int:
        """Mark the segments the peer SACKed (RFC 2018 §3); returns how many became SACKed.

        A first block below the cumulative ACK, or inside the second block, is a D-SACK (RFC 2883 §4): it
        reports a duplicate the peer received, not new data, and is left out of the scoreboard.
        """
        una = self.snd_una
        blocks = [(unwrap(left, una), unwrap(right, una)) for left, right in seg.sack_blocks]
        first = blocks[0]
        if first[1] <= ack or (len(blocks) > 1 and blocks[1][0] <= first[0] and first[1] <= blocks[1][1]):
            self.dsacks_received += 1
            blocks = blocks[1:]
        newly = 0
        for left, right in blocks:
            if right <= left or right > self.snd_nxt or left < ack:
                continue  # an invalid or stale block (RFC 2018 §3: the receiver may renege; we ignore it)
            for sent in self.sq.segs:
                if sent.start >= right:
                    break
                if not sent.sacked and sent.start >= left and sent.end <= right:
                    sent.sacked = True
                    self.scoreboard_marked = True
                    sent.lost = False
                    newly += 1
                    self.highest_sack = max(self.highest_sack, sent.end)
        return newly

    def _sacked_out(self) -> int:
        return sum(1 for sent in self.sq.segs if sent.sacked)

    def _mark_sack_losses(self) -> None:
        """RFC 6675 §4 IsLost(): a hole with DupThresh (3) SACKed segments above it is lost."""
        above = 0
        for sent in reversed(self.sq.segs):
            if sent.sacked:
                above += 1
            elif above >= 3 and sent.retrans == 0 and sent.end <= self.highest_sack:
                sent.lost = True
                self.scoreboard_marked = True

    def _new_ack(self, seg: Segment, ack: int, now: int) -> None:
        acked = self.sq.acknowledge(ack)
        self.bytes_acked += ack - self.snd_una
        self.snd_una = ack
        # Karn's rule (RFC 6298 §3): sample only from a segment never retransmitted; fall back to TSecr.
        sample = None
        for s in reversed(acked):
            if s.retrans == 0:
                sample = now - s.sent_at
                break
        if sample is None and self.ts_ok and seg.ts_ecr and not any(s.retrans for s in acked[-1:]):
            sample = ((self._now_ts(now) - seg.ts_ecr) & 0xFFFFFFFF) * MS
        if sample is not None:
            self._rtt_sample(sample, now)
        self.backoff = 0
        self.retransmits = 0
        self.retrans_stamp = None
        n_acked = len(acked)
        if self.recovery_point is not None:
            if ack >= self.recovery_point:
                # RFC 6582 §3.2 step 3, option (2) / RFC 6675 §5 (full ACK): cwnd = ssthresh, which is what
                # Linux's tcp_end_cwnd_reduction() does (option (1) would collapse to 1-2 segments when the
                # flight is empty).
                self.cc.cwnd = max(self.cc.ssthresh, 1)
                self.recovery_point = None
                self.dupacks = 0
                self._cwnd_event(now, "recovery-end")
            elif self.sack_ok:
                # RFC 6675: the scoreboard (not the partial ACK) decides what to resend; output() sends
                # lost segments first while the pipe is below cwnd.
                head = self.sq.segs[0] if self.sq.segs else None
                if head is not None and not head.sacked and head.retrans == 0:
                    head.lost = True
                    self.scoreboard_marked = True
            else:
                # Partial ACK: retransmit the next hole, deflate by the amount acked, plus one.
                self.cc.cwnd = max(self.cc.cwnd - n_acked + 1, 1)
                if self.sq.segs:
                    self._retransmit_segment(self.sq.segs[0], now, "fast-retransmit")
                self._cwnd_event(now, "partial-ack")
        else:
            self.dupacks = 0
            if self.in_loss and all(not s.lost for s in self.sq.segs):
                self.in_loss = False
            before = self.cc.cwnd
            # Linux tcp_is_cwnd_limited(): in slow start, grow while cwnd < 2 * the largest recent flight.
            cwnd_limited = (
                self.cc.cwnd < 2 * self.max_packets_out if self.cc.in_slow_start else self.is_cwnd_limited
            )
            self.cc.on_ack(n_acked, cwnd_limited, now, self.rtt.srtt)
            if self.cc.cwnd != before:
                self._cwnd_event(now, "ack")
                self.sndbuf_expand()
        if self.sq.segs:
            # Linux tcp_set_xmit_timer(): a tail loss probe if one applies, else the RTO.
            if not self._schedule_loss_probe(now, advancing_rto=True):
                self._rearm_rto(now)
        else:
            for name in ("retransmit", "loss-probe"):
                if name in self.timers:
                    self.cancel(name, now)

    # ----------------------------------------------------------------------------------------------------
    # the transmit timer: RTO or tail loss probe (RFC 8985 §7; Linux shares one timer slot for both)

    def _rto_delta(self, now: int) -> int:
        """Linux tcp_rto_delta_us(): how far in the future the RTO of the oldest segment is."""
        head = self.sq.segs[0] if self.sq.segs else None
        sent = head.sent_at if head is not None else now
        return sent + self.rtt.rto - now

    def _rearm_rto(self, now: int) -> None:
        """Linux tcp_rearm_rto(): the RTO from now, or what is left of it when a probe was pending."""
        if not self.sq.segs:
            return
        rto = self.rtt.rto
        if "loss-probe" in self.timers:
            self.cancel("loss-probe", now)
            rto = max(self._rto_delta(now), 1)
        self.arm("retransmit", now + rto, now)

    def _schedule_loss_probe(self, now: int, *, advancing_rto: bool) -> bool:
        """Linux tcp_schedule_loss_probe(): for a SACK connection in the open state, probe the tail after
        2*SRTT (plus the minimum RTO when one segment is out: the peer may delay its ACK), but never later
        than the RTO would fire. Returns False when no probe applies (the caller arms the RTO)."""
        s = self.settings
        if s.tcp_early_retrans not in (3, 4) or not self.sq.segs or not self.sack_ok:
            return False
        if self.recovery_point is not None or self.in_loss or self.state not in _SENDING:
            return False
        if self.in_flight() < self.cc.cwnd and self.sq.write_seq > self.snd_nxt:
            return False  # not limited by cwnd and new data waits: it goes out anyway
        if self.rtt.has_sample:
            timeout = 2 * self.rtt.srtt + (s.tcp_rto_min_ms * MS if self.packets_out == 1 else 2 * MS)
            timeout = max(timeout, 10 * MS)
        else:
            timeout = s.tcp_rto_initial_ms * MS
        rto_delta = self.rtt.rto if advancing_rto else self._rto_delta(now)
        if rto_delta > 0:
            timeout = min(timeout, rto_delta)
        if "retransmit" in self.timers:
            self.cancel("retransmit", now)
        self.arm("loss-probe", now + timeout, now)
        return True

    def _loss_probe_timer(self, now: int) -> None:
        """Linux tcp_send_loss_probe() (RFC 8985 §7.3): one new segment if the window allows, else the
        last segment again; then the RTO, from now. At most one probe per tail loss episode."""
        if not self.sq.segs:
            return
        sent = False
        if self.tlp_high_seq is None:
            sq = self.sq
            seq = self.snd_nxt
            size = min(self.mss, max(sq.write_seq - seq, 0))
            if size and seq + size <= self.snd_una + self.snd_wnd:
                self._send_data(now, seq, size, sq.fin_seq is not None and seq + size == sq.write_seq)
                self.tlp_retrans = False
                sent = True
            else:
                last = sq.segs[-1]
                if not last.sacked:
                    self._retransmit_segment(last, now, "loss-probe", probe=True)
                    self.tlp_retrans = True
                    sent = True
            if sent:
                self.tlp_high_seq = self.snd_nxt
        if sent:
            if "loss-probe" in self.timers:
                self.cancel("loss-probe", now)
            self.arm("retransmit", now + self.rtt.rto, now)
        else:
            self._rearm_rto(now)

    def _process_tlp_ack(self, ack: int, advanced: bool, dsack: bool, now: int) -> None:
        """Linux tcp_process_tlp_ack(): did the probe repair a loss (reduce cwnd) or was nothing lost?"""
        high = self.tlp_high_seq
        if high is None or ack < high:
            return
        if not self.tlp_retrans or dsack:
            self.tlp_high_seq = None  # new data probed, or both copies arrived: no loss
        elif ack > high:
            # The probe's ACK moved past it: a loss was repaired. Reduce cwnd once (CWR), as Linux does.
            self.cc.ssthresh = self.cc.ssthresh_on_loss(self.in_flight())
            self.cc.cwnd = max(self.cc.ssthresh, 1)
            self.tlp_high_seq = None
            self._cwnd_event(now, "loss-probe-recovery")
        elif not advanced:
            self.tlp_high_seq = None  # a pure duplicate ACK: original and probe both arrived

    def _dupack(self, now: int) -> None:
        """RFC 5681 §3.2 / RFC 6582: count duplicate ACKs; the third triggers fast retransmit.

        With SACK (RFC 6675) the trigger is DupThresh duplicate ACKs or DupThresh SACKed segments, cwnd
        drops to ssthresh at once (no inflation), and the scoreboard picks what to retransmit.
        """
        self.dupacks += 1
        if self.sack_ok:
            enough = self.dupacks >= 3 or self._sacked_out() >= 3
            if self.recovery_point is None and self.sq.segs and enough:
                self.cc.ssthresh = self.cc.ssthresh_on_loss(self.in_flight())
                self.cc.cwnd = self.cc.ssthresh
                self.cc.cwnd_cnt = 0
                self.recovery_point = self.snd_nxt
                head = self.sq.segs[0]
                if not head.sacked:
                    head.lost = True
                    self.scoreboard_marked = True
                self._mark_sack_losses()
                self._cwnd_event(now, "fast-retransmit")
                self._retransmit_lost(now, reason="fast-retransmit")
            return
        if self.recovery_point is not None:
            self.cc.cwnd += 1  # window inflation for each further duplicate ACK
            return
        if self.dupacks == 3 and self.sq.segs:
            self.cc.ssthresh = self.cc.ssthresh_on_loss(self.packets_out)
            self.cc.cwnd = self.cc.ssthresh + 3
            self.recovery_point = self.snd_nxt
            self._retransmit_segment(self.sq.segs[0], now, "fast-retransmit")
            self._cwnd_event(now, "fast-retransmit")

    def _data_queue(self, seg: Segment, seq: int, now: int) -> None:
        """Linux tcp_data_queue(): in-order data to the application, the rest kept or re-ACKed."""
        payload = seg.payload
        fin = bool(seg.flags & FIN)
        data_end = seq + len(payload)
        rcv_nxt = self.rcv_nxt
        if seq == rcv_nxt:
            if payload and self.receive_window() == 0:
                self.host.drop(seg, "zero-window", now, self.id)
                self._ack_at_once()
                return
            if payload:
                self.rq.ready += payload
                self.rcv_nxt = data_end
                self._event_data_recv(len(payload), now)
            had_ooo = bool(self.rq.ooo)
            if had_ooo:
                self.rcv_nxt = self.rq.pull(self.rcv_nxt)
                if not self.rq.ooo:
                    # RFC 5681 §4.2: ACK at once when a gap is filled.
                    self.ack_now = True
            if self.ooo_fin is not None and self.ooo_fin == self.rcv_nxt and not fin:
                fin = True
                self.ooo_fin = None
            if fin:
                self._on_fin(now)
            if payload:
                self.socket_event(now, "readable", f"{len(self.rq.ready)} bytes buffered")
            return
        if data_end + (1 if fin else 0) <= rcv_nxt:
            # A retransmission of what we already have: ACK at once (Linux tcp_send_dupack()), reporting
            # the duplicate as a D-SACK block (RFC 2883).
            self.host.drop(seg, "duplicate", now, self.id)
            if payload:
                self._set_dsack(seq, data_end)
            self._ack_at_once()
            return
        if seq < rcv_nxt:
            # Partial overlap: keep the new part, D-SACK the old part.
            self._set_dsack(seq, rcv_nxt)
            payload = payload[rcv_nxt - seq :]
            seq = rcv_nxt
            if self.receive_window() == 0:
                self.host.drop(seg, "zero-window", now, self.id)
                self._ack_at_once()
                return
            self.rq.ready += payload
            self.rcv_nxt = seq + len(payload)
            self._event_data_recv(len(payload), now)
            if self.rq.ooo:
                self.rcv_nxt = self.rq.pull(self.rcv_nxt)
            if fin or (self.ooo_fin is not None and self.ooo_fin == self.rcv_nxt):
                self.ooo_fin = None
                self._on_fin(now)
            return
        # Out of order: beyond RCV.NXT. Keep it (if it fits the window) and ACK at once with SACK.
        if seq >= rcv_nxt + self.receive_window():
            self.host.drop(seg, "beyond-window", now, self.id)
            self.ack_pending = True
            self.ack_now = True
            return
        if payload and not self.rq.add_out_of_order(seq, bytes(payload)):
            self._set_dsack(seq, data_end)
        if fin:
            self.ooo_fin = data_end
        self.ack_pending = True
        self.ack_now = True

    def _set_dsack(self, start: int, end: int) -> None:
        if self.sack_ok and self.settings.tcp_dsack and end > start:
            self.dsack = (start, end)

    def _event_data_recv(self, length: int, now: int) -> None:
        """Linux tcp_event_data_recv(): the delayed-ACK engine's clock (ATO) and quick-ACK mode."""
        self.ack_pending = True
        # tcp_measure_rcv_mss(): the peer's segment size as we see it.
        if length >= self.rcv_mss:
            self.rcv_mss = min(length, self.window_clamp or length)
        if not self.ato:
            # The first data segment: start in quick-ACK mode (TCP_MAX_QUICKACKS).
            self.incr_quickack(TCP_MAX_QUICKACKS)
            self.ato = 40 * MS
        else:
            m = now - self.lrcvtime
            if m <= 20 * MS:
                self.ato = (self.ato >> 1) + 20 * MS
            elif m < self.ato:
                self.ato = min((self.ato >> 1) + m, self.rtt.rto)
            elif m > self.rtt.rto:
                self.incr_quickack(TCP_MAX_QUICKACKS)
        self.lrcvtime = now
        if length >= 128:
            self._grow_window(length)

    def _grow_window(self, length: int) -> None:
        """Linux tcp_grow_window(): raise rcv_ssthresh as the peer shows it sends full segments."""
        if self.rcv_ssthresh >= self.window_clamp or self.rcv_ssthresh >= self.free_space():
            return
        incr = 2 * self.advmss if length >= 640 else 2 * self.rcv_mss
        self.rcv_ssthresh = min(self.rcv_ssthresh + incr, self.window_clamp)

    def incr_quickack(self, max_quickacks: int) -> None:
        quickacks = self.rcv_wnd // (2 * max(self.rcv_mss, 1)) or 2
        quickacks = min(quickacks, max_quickacks)
        if quickacks > self.quick:
            self.quick = quickacks

    def enter_quickack(self) -> None:
        """Linux tcp_enter_quickack_mode(): ACK the next segments at once, leave ping-pong mode."""
        self.incr_quickack(TCP_MAX_QUICKACKS)
        self.pingpong = 0
        self.ato = 40 * MS

    def _ack_at_once(self) -> None:
        """Linux tcp_enter_quickack_mode() + inet_csk_schedule_ack() + ICSK_ACK_NOW: this segment gets an
        ACK straight away (a retransmission, a segment we had to drop, a filled gap...)."""
        self.enter_quickack()
        self.ack_pending = True
        self.ack_now = True

    def _on_fin(self, now: int) -> None:
        """RFC 9293 §3.10.7.4 eighth check, as Linux tcp_fin()."""
        self.fin_received = True
        self.rcv_nxt += 1
        self.ack_pending = True
        st = self.state
        self.socket_event(now, "eof", "peer sent FIN")
        if st in (State.SYN_RCVD, State.ESTABLISHED):
            self.set_state(State.CLOSE_WAIT, now, "FIN received")
            # Linux enters ping-pong mode: the ACK of a FIN is delayed, hoping to ride on our FIN.
            self.pingpong = max(self.pingpong, 1)
        elif st is State.FIN_WAIT_1:
            self.send_ack(now)
            if self.sq.fin_seq is not None and self.snd_una > self.sq.fin_seq:
                # Our FIN was ACKed by this same segment: TIME_WAIT at once (three-segment close).
                self._enter_time_wait(now, "FIN+ACK received in FIN_WAIT_1")
            else:
                # Simultaneous close: ACK at once, CLOSING.
                self.set_state(State.CLOSING, now, "FIN received in FIN_WAIT_1 (simultaneous close)")
        elif st is State.FIN_WAIT_2:
            self.send_ack(now)
            self._enter_time_wait(now, "FIN received in FIN_WAIT_2")

    def _ack_check(self, now: int) -> None:
        """Linux __tcp_ack_snd_check(): ACK now, or arm the delayed-ACK timer."""
        if not self.ack_pending or self.state is State.CLOSED or self.state is State.TIME_WAIT:
            return
        more_than_one_full = (
            self.rcv_nxt - self.rcv_wup > self.rcv_mss and self._compute_window() >= self.rcv_wnd
        )
        # (quick > 0 and pingpong < 1 is Linux's tcp_in_quickack_mode())
        if more_than_one_full or (self.quick > 0 and self.pingpong < 1) or self.ack_now:
            self.send_ack(now)
            return
        self._send_delayed_ack(now)

    def _send_delayed_ack(self, now: int) -> None:
        """Linux tcp_send_delayed_ack()."""
        # ato is 0 until the first data segment: Linux then arms the timer for "now" (a FIN right after the
        # handshake is ACKed at once, packetdrill close-remote-fin-then-close.pkt).
        ato = self.ato
        delack_min = self.settings.tcp_delack_min_ms * MS
        delack_max = self.settings.tcp_delack_max_ms * MS
        if ato > delack_min:
            max_ato = delack_max if self.pingpong >= 1 else SEC // 2
            if self.rtt.has_sample:
                max_ato = min(max_ato, max(self.rtt.srtt, delack_min))
            ato = min(ato, max_ato)
        ato = min(ato, delack_max)
        deadline = now + ato
        current = self.timers.get("delayed-ack")
        if current is not None:
            if current <= now + (ato >> 2):
                self.send_ack(now)
                return
            if current <= deadline:
                return  # "use new timeout only if there wasn't an older one earlier": nothing changes
        self.arm("delayed-ack", deadline, now)

    # ----------------------------------------------------------------------------------------------------
    # closing

    def _orphan_fin_wait_2(self, now: int, *, fin_in_segment: bool) -> None:
        """An orphan reaching FIN_WAIT_2 lives at most tcp_fin_timeout (Linux tcp_fin_time())."""
        rto = self.rtt.rto
        tmo = max(self.settings.tcp_fin_timeout * SEC, (rto << 2) - (rto >> 1))
        if not fin_in_segment:
            if not self._tw_bucket_available():
                self._done(now, "tcp_max_tw_buckets reached: FIN_WAIT_2 dropped", error=0)
                return
            self.tw_mode = True
            self._release_send_side(now)
        self.arm("fin-wait-2", now + tmo, now)

    def _tw_bucket_available(self) -> bool:
        return self.host.tw_count() < self.settings.tcp_max_tw_buckets

    def _release_send_side(self, now: int) -> None:
        for name in ("retransmit", "persist", "delayed-ack", "keepalive", "linger"):
            if name in self.timers:
                self.cancel(name, now)

    def _enter_time_wait(self, now: int, cause: str) -> None:
        """Linux tcp_time_wait(): keep the 4-tuple for 2*MSL, or close at once if no bucket is free."""
        self.tw_mode = False
        if not self._tw_bucket_available():
            # Linux: "TCP: time wait bucket table overflow" -> the connection simply disappears.
            self._done(now, "tcp_max_tw_buckets reached: TIME_WAIT skipped", error=0)
            return
        self.cancel_all_timers(now)
        self.set_state(State.TIME_WAIT, now, cause)
        self.tw_since = now
        self.arm("time-wait", now + self.settings.tcp_timewait_len * SEC, now)

    def _rcv_timewait(self, seg: Segment, now: int) -> str | None:
        """Linux tcp_timewait_state_process() for TIME_WAIT and an orphan's FIN_WAIT_2."""
        flags = seg.flags
        seq = unwrap(seg.seq, self.rcv_nxt)
        end = seq + seg.seg_len
        paws = self._paws_reject(seg, now)
        if self.tw_mode and self.state is State.FIN_WAIT_2:
            in_window = seq <= self.rcv_nxt + self.rcv_wnd and end >= self.rcv_nxt
            if paws or not in_window:
                self._tw_ack(seg, now)
                return None
            if flags & RST:
                self._done(now, "RST in FIN_WAIT_2", error=0)
                return None
            if flags & SYN and seq >= self.rcv_nxt:
                self.host.send_reset_for(seg, now, "rst-syn-in-fin-wait-2")
                return None
            if not flags & ACK or end <= self.rcv_nxt or end == seq:
                self.host.drop(seg, "duplicate", now, self.id)
                return None
            if not flags & FIN or end != self.rcv_nxt + 1:
                # New data after a half-duplex close: reset.
                self.host.send_reset_for(seg, now, "rst-data-after-close")
                self._done(now, "new data arrived after close()", error=0)
                return None
            # The FIN: enter the real TIME_WAIT and ACK it.
            self.rcv_nxt = end
            self.fin_received = True
            if seg.ts_val is not None and self.ts_ok:
                self.ts_recent, self.ts_recent_stamp = seg.ts_val, now
            self.send_ack(now)
            self._enter_time_wait(now, "FIN received in FIN_WAIT_2")
            return None
        # Real TIME_WAIT.
        if not paws and seq == self.rcv_nxt and (end == seq or flags & RST):
            # In-window segment: may be only a RST or a bare ACK.
            if flags & RST:
                if self.settings.tcp_rfc1337 == 0:
                    # RFC 1337 "TIME_WAIT assassination" is what Linux allows by default.
                    self._done(now, "RST in TIME_WAIT (tcp_rfc1337=0)", error=0)
                    return None
            else:
                self.arm("time-wait", now + self.settings.tcp_timewait_len * SEC, now)
            if seg.ts_val is not None and self.ts_ok:
                self.ts_recent, self.ts_recent_stamp = seg.ts_val, now
            self.host.drop(seg, "time-wait-bare-ack", now, self.id)
            return None
        if flags & SYN and not flags & (RST | ACK) and not paws:
            newer_ts = (
                self.ts_ok
                and seg.ts_val is not None
                and ((seg.ts_val - self.ts_recent) & 0xFFFFFFFF) not in (0,)
                and ((seg.ts_val - self.ts_recent) & 0xFFFFFFFF) < 0x80000000
            )
            # Linux tcp_v4_rcv() TCP_TW_SYN: without a listener the TIME_WAIT stays and ACKs the SYN.
            if (seq > self.rcv_nxt or newer_ts) and self.host.listener_for(self.laddr, self.lport):
                # RFC 9293 §3.10.7.4 note / RFC 6191: a new incarnation may reuse the 4-tuple.
                # The host hands the SYN to a listener (and ends this TIME_WAIT) if there is one; if there is
                # none, Linux's tcp_v4_rcv() falls through to an ACK from TIME_WAIT (TCP_TW_SYN -> TW_ACK).
                self.host.reopen_isn = self.snd_nxt + 65535 + 2
                return "reopen"
        if not flags & RST:
            # Old duplicates: ACK them; restart 2MSL on anything with ACK (or a PAWS reject).
            if paws or flags & ACK:
                self.arm("time-wait", now + self.settings.tcp_timewait_len * SEC, now)
            self._tw_ack(seg, now)
            return None
        self.host.drop(seg, "rst-out-of-window-time-wait", now, self.id)
        return None

    def _tw_ack(self, seg: Segment, now: int, *, rate_limit: bool = True) -> None:
        if (
            rate_limit
            and ((not seg.payload and not seg.flags & FIN) or seg.flags & SYN)
            and self._rate_limited(now, "last_oow_ack")
        ):
            self.host.drop(seg, "ack-rate-limited", now, self.id)
            return
        self.host.drop(seg, "answered-from-time-wait", now, self.id)
        self.host.send_segment(
            self,
            self.laddr,
            self.raddr,
            self.lport,
            self.rport,
            self.snd_nxt,
            self.rcv_nxt,
            ACK,
            min(self.rcv_wnd >> self.rcv_wscale, 65535),
            ts_option(self._now_ts(now), self.ts_recent) if self.ts_ok else b"",
            b"",
            now,
            "time-wait-ack",
        )

    def _on_rst(self, now: int) -> None:
        """Linux tcp_reset(): the connection is gone; tell the application why."""
        st = self.state
        if st is State.SYN_RCVD and self.listener is not None:
            self._done(now, "RST in SYN_RCVD", error=0)
            return
        if st is State.CLOSE_WAIT:
            err = errno.EPIPE
        elif st in (State.CLOSING, State.LAST_ACK, State.TIME_WAIT):
            err = 0
        else:
            err = errno.ECONNRESET
        self._reset(now, err, f"RST received in {st}")

    def _reset(self, now: int, err: int, cause: str) -> None:
        self._done(now, cause, error=err)

    def _done(self, now: int, cause: str, *, error: int) -> None:
        """Linux tcp_done(): CLOSED, timers stopped, the 4-tuple released; queued output discarded."""
        if error:
            self.error = error
            self.socket_event(now, "error", f"{errno.errorcode.get(error, error)}: {cause}")
        self.cancel_all_timers(now)
        self.tw_mode = False
        self.lingering = False
        self.closed_cause = cause
        self.shut_wr = True
        self.sq.segs.clear()
        self.sq.buf.clear()
        self.sq.base = self.sq.write_seq
        self.set_state(State.CLOSED, now, cause)
        self.host.unregister(self)

    # ----------------------------------------------------------------------------------------------------
    # timers

    def on_timer(self, name: str, now: int) -> None:
        if self.host.observed:
            from .events import TimerFired

            self.host.emit(TimerFired(now, self.id, name))
        if name == "retransmit":
            self._retransmit_timer(now)
        elif name == "loss-probe":
            self._loss_probe_timer(now)
        elif name == "delayed-ack":
            self._delack_timer(now)
        elif name == "persist":
            self._probe_timer(now)
        elif name == "keepalive":
            self._keepalive_timer(now)
        elif name == "time-wait":
            self._done(now, "TIME_WAIT expired (2*MSL)", error=0)
        elif name == "fin-wait-2":
            self._done(now, "FIN_WAIT_2 timeout (tcp_fin_timeout)", error=0)
        elif name == "linger":
            self._linger_timer(now)

    def _write_timeout(self, now: int) -> bool:
        """Linux tcp_write_timeout(): has this connection retried long enough?"""
        s = self.settings
        if self.state in (State.SYN_SENT, State.SYN_RCVD):
            limit = s.tcp_syn_retries if self.state is State.SYN_SENT else s.tcp_synack_retries
            if self.state is State.SYN_SENT:
                limit += s.tcp_syn_linear_timeouts
            return self.retransmits >= limit
        retry_until = s.tcp_retries2
        if self.orphan:
            alive = self.rtt.rto < s.tcp_rto_max_ms * MS
            retry_until = s.tcp_orphan_retries or (8 if alive else 0)
        if not self.retransmits or self.retrans_stamp is None:
            return False
        return now - self.retrans_stamp >= self._model_timeout(retry_until, s.tcp_rto_min_ms * MS)

    def _model_timeout(self, boundary: int, rto_base: int) -> int:
        """Linux tcp_model_timeout(): the time `boundary` exponential backoffs take from rto_base."""
        rto_max = self.settings.tcp_rto_max_ms * MS
        thresh = max((rto_max // rto_base).bit_length() - 1, 0)
        if boundary <= thresh:
            return ((2 << boundary) - 1) * rto_base
        return ((2 << thresh) - 1) * rto_base + (boundary - thresh) * rto_max

    def _retransmit_timer(self, now: int) -> None:
        """RFC 6298 §5.4-5.6 / Linux tcp_retransmit_timer()."""
        if not self.sq.segs:
            return
        st = self.state
        if self._write_timeout(now):
            if st is State.SYN_RCVD and self.listener is not None:
                self._done(now, "SYN-ACK retries exhausted", error=0)
            else:
                # Linux sends no RST when it gives up retransmitting (tcp_write_err()).
                self._reset(now, errno.ETIMEDOUT, f"retransmission timeout in {st}")
            return
        if st not in (State.SYN_SENT, State.SYN_RCVD):
            # RFC 5681 §3.1 eq. (4) and cwnd = 1 (loss window); every outstanding segment is lost.
            if not self.in_loss:
                self.cc.ssthresh = self.cc.ssthresh_on_loss(self.packets_out)
            self.cc.cwnd = 1
            self.cc.cwnd_cnt = 0
            self.in_loss = True
            self.tlp_high_seq = None  # RFC 8985: an RTO ends the tail loss episode
            self.recovery_point = None
            self.dupacks = 0
            for seg in self.sq.segs:
                if not seg.sacked:
                    seg.lost = True
                    self.scoreboard_marked = True
            self._cwnd_event(now, "rto")
        head = self.sq.segs[0]
        self._retransmit_segment(head, now, "retransmit")
        self.retransmits += 1
        self.total_rto += 1
        linear = st is State.SYN_SENT and self.total_rto <= self.settings.tcp_syn_linear_timeouts
        if not linear:
            # RFC 6298 §5.5: back off the timer.
            self.backoff += 1
            self.rtt.rto = min(self.rtt.rto << 1, self.settings.tcp_rto_max_ms * MS)
        self.arm("retransmit", now + self.rtt.rto, now)

    def _delack_timer(self, now: int) -> None:
        """Linux tcp_delack_timer_handler()."""
        if not self.ack_pending or self.state in (State.CLOSED, State.TIME_WAIT):
            return
        if self.pingpong < 1:
            self.ato = min(self.ato << 1, self.rtt.rto)  # delayed ACK missed: inflate ATO
        else:
            self.pingpong = 0  # leave ping-pong mode, deflate ATO
            self.ato = 40 * MS
        self.send_ack(now, "delayed-ack")

    def _probe_timer(self, now: int) -> None:
        """Zero-window probe (RFC 9293 §3.8.6.1; Linux tcp_probe_timer() / tcp_send_probe0())."""
        if self.packets_out or (
            self.sq.write_seq <= self.snd_nxt and (self.sq.fin_seq is None or self.snd_nxt > self.sq.fin_seq)
        ):
            self.probes_out = 0
            return
        max_probes = self.settings.tcp_retries2
        if self.orphan:
            alive = self.rtt.rto < self.settings.tcp_rto_max_ms * MS
            max_probes = self.settings.tcp_orphan_retries or (8 if alive else 0)
        if self.probes_out >= max_probes:
            self._reset(now, errno.ETIMEDOUT, "zero-window probes unanswered")
            return
        if self.snd_wnd > 0 and self.snd_una + self.snd_wnd > self.snd_nxt:
            # The window opened a little: send what fits (tcp_write_wakeup()).
            size = min(self.mss, self.snd_una + self.snd_wnd - self.snd_nxt, self.sq.write_seq - self.snd_nxt)
            if size > 0:
                self._send_data(now, self.snd_nxt, size, False)
                return
        # Linux's zero-window probe: no data, SEG.SEQ = SND.UNA - 1, which the peer must ACK.
        self.transmit(now, self.snd_una - 1, ACK, reason="window-probe", options=None)
        self.probes_out += 1
        self.backoff += 1
        self.arm("persist", now + self._probe0_when(), now)

    def _start_keepalive(self, now: int) -> None:
        if self.opts.keepalive and self.state is State.ESTABLISHED:
            self.arm("keepalive", now + self.keepalive_time(), now)

    def set_keepalive(self, on: bool, now: int) -> None:
        """Linux tcp_set_keepalive(): arming starts the idle clock from now."""
        self.opts.keepalive = on
        if on and self.state in (State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.FIN_WAIT_2):
            self.arm("keepalive", now + self.keepalive_time(), now)
        elif not on and "keepalive" in self.timers:
            self.cancel("keepalive", now)

    def keepidle_changed(self, now: int) -> None:
        """Linux tcp_sock_set_keepidle_locked(): with keepalive on, re-arm the timer counting the idle time
        already elapsed (it fires at once if the connection has been idle longer than the new value)."""
        if self.opts.keepalive and self.state not in (State.CLOSED, State.LISTEN):
            elapsed = now - max(self.lrcvtime, self.rcv_tstamp)
            self.arm("keepalive", now + max(self.keepalive_time() - elapsed, 0), now)

    def _keepalive_timer(self, now: int) -> None:
        """RFC 1122 §4.2.3.6 keep-alives, as Linux tcp_keepalive_timer()."""
        if not self.opts.keepalive or self.state in (State.CLOSED, State.LISTEN, State.SYN_SENT):
            return
        if self.packets_out or self.sq.write_seq > self.snd_nxt:
            # Data outstanding: the retransmission timer is in charge.
            self.arm("keepalive", now + self.keepalive_time(), now)
            return
        elapsed = now - max(self.lrcvtime, self.rcv_tstamp)
        if elapsed >= self.keepalive_time():
            if self.probes_out >= self.keepalive_probes():
                # Linux sends a RST when keepalive gives up, then reports ETIMEDOUT.
                self.send_rst(now, "rst-keepalive-timeout")
                self._reset(now, errno.ETIMEDOUT, "keepalive probes unanswered")
                return
            # The probe: SEG.SEQ = SND.NXT - 1, no data (tcp_xmit_probe_skb()).
            self.transmit(now, self.snd_una - 1, ACK, reason="keepalive")
            self.probes_out += 1
            self.arm("keepalive", now + self.keepalive_intvl(), now)
        else:
            self.arm("keepalive", now + self.keepalive_time() - elapsed, now)

    def _linger_timer(self, now: int) -> None:
        """SO_LINGER {1, N}: the FIN was not acknowledged within N seconds: abort."""
        self.lingering = False
        if self.state in (State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK):
            self.send_rst(now, "rst-linger-timeout")
            self._done(now, "SO_LINGER timeout: FIN not acknowledged", error=0)

    # ----------------------------------------------------------------------------------------------------
    # application calls (the Socket facade checks arguments and raises; these only act)

    def app_send(self, data: bytes | bytearray | memoryview, now: int) -> int:
        room = self.sndbuf - self.sq.buffered
        if room <= 0:
            return 0
        chunk = data[:room]
        self.sq.write(chunk)
        self.output(now)
        return len(chunk)

    def app_recv(self, bufsize: int, now: int) -> bytes:
        ready = self.rq.ready
        n = min(bufsize, len(ready))
        if n <= 0:
            return b""
        out = bytes(ready[:n])
        del ready[:n]
        self.copied += n
        self.rcv_space_adjust(now)
        self._cleanup_rbuf(n, now)
        return out

    def _cleanup_rbuf(self, copied: int, now: int) -> None:
        """Linux tcp_cleanup_rbuf(): after a read, send an ACK if it opened the window a lot."""
        if self.state in (State.CLOSED, State.TIME_WAIT, State.SYN_SENT):
            return
        time_to_ack = self.ack_pending and self.rcv_nxt - self.rcv_wup > self.rcv_mss
        if copied > 0 and not time_to_ack and not self.fin_received:
            now_win = self.receive_window()
            if 2 * now_win <= self.window_clamp:
                new_win = self._compute_window()
                if new_win and new_win >= 2 * now_win:
                    time_to_ack = True
        if time_to_ack:
            self.send_ack(now, "window-update")

    def app_shutdown_wr(self, now: int) -> None:
        """shutdown(SHUT_WR): queue a FIN behind the data (Linux tcp_shutdown())."""
        if self.shut_wr:
            return
        self.shut_wr = True
        st = self.state
        if st is State.SYN_SENT:
            self._done(now, "shutdown() in SYN_SENT", error=0)
            return
        if st in (State.ESTABLISHED, State.SYN_RCVD, State.CLOSE_WAIT):
            self._queue_fin(now)

    def _queue_fin(self, now: int) -> None:
        st = self.state
        new = State.LAST_ACK if st is State.CLOSE_WAIT else State.FIN_WAIT_1
        self.sq.fin_seq = self.sq.write_seq
        self.set_state(new, now, "close()" if self.orphan else "shutdown(SHUT_WR)")
        # RFC 9293 §3.10.4 (SYN-RECEIVED, nothing queued) and Linux tcp_send_fin(): the FIN goes out at once.
        self.output(now)

    def app_close(self, now: int) -> None:
        """close(): Linux __tcp_close()."""
        self.orphan = True
        self.shut_rd = True
        st = self.state
        if st is State.SYN_SENT:
            self._done(now, "close() in SYN_SENT", error=0)
            return
        if st in (State.CLOSED, State.TIME_WAIT):
            return
        unread = len(self.rq.ready) + self.rq.ooo_bytes
        if unread:
            # RFC 2525 §2.17: closing with unread data aborts with a RST.
            self.send_rst(now, "rst-unread-data")
            self._done(now, f"close() with {unread} unread bytes", error=0)
            return
        if self.opts.linger_on and self.opts.linger_secs == 0:
            self.app_abort(now)
            return
        if not self.shut_wr:
            self.shut_wr = True
            if st in (State.ESTABLISHED, State.SYN_RCVD, State.CLOSE_WAIT):
                self._queue_fin(now)
        st = self.state
        if st is State.FIN_WAIT_2 and self.state is not State.CLOSED:
            self._orphan_fin_wait_2(now, fin_in_segment=False)
        if (
            self.opts.linger_on
            and self.opts.linger_secs > 0
            and st
            in (
                State.FIN_WAIT_1,
                State.CLOSING,
                State.LAST_ACK,
            )
        ):
            self.lingering = True
            self.arm("linger", now + self.opts.linger_secs * SEC, now)

    def app_abort(self, now: int) -> None:
        """RFC 9293 §3.10.5 ABORT (Linux tcp_disconnect()): RST if the peer holds state, then CLOSED."""
        st = self.state
        if st is State.CLOSED:
            return
        if st in _NEED_RESET or (st in (State.CLOSING, State.LAST_ACK) and self.snd_nxt != self.sq.end_seq):
            self.send_rst(now, "rst-abort")
        self._done(now, "abort (SO_LINGER {1,0} or explicit)", error=0)

    # ----------------------------------------------------------------------------------------------------
    # observation

    def snapshot(self) -> ConnectionSnapshot:
        sq = self.sq
        cc = self.cc
        return ConnectionSnapshot(
            local=(self.laddr, self.lport),
            remote=(self.raddr, self.rport),
            state=self.state,
            iss=wrap(self.iss),
            irs=wrap(self.irs),
            snd_una=wrap(self.snd_una),
            snd_nxt=wrap(self.snd_nxt),
            snd_wnd=self.snd_wnd,
            snd_wl1=wrap(self.snd_wl1),
            snd_wl2=wrap(self.snd_wl2),
            rcv_nxt=wrap(self.rcv_nxt),
            rcv_wnd=self.receive_window(),
            rcv_wup=wrap(self.rcv_wup),
            mss=self.mss,
            advmss=self.advmss,
            peer_mss=self.peer_mss,
            snd_wscale=self.snd_wscale if self.wscale_ok else None,
            rcv_wscale=self.rcv_wscale if self.wscale_ok else None,
            sack=self.sack_ok,
            timestamps=self.ts_ok,
            cwnd=cc.cwnd,
            ssthresh=None if cc.ssthresh == INFINITE_SSTHRESH else cc.ssthresh,
            flight=self.in_flight(),
            srtt=self.rtt.srtt if self.rtt.has_sample else None,
            rttvar=self.rtt.rttvar if self.rtt.has_sample else None,
            rto=self.rtt.rto,
            backoff=self.backoff,
            retransmits=self.retransmits,
            total_retrans=self.total_retrans,
            send_buffered=sq.buffered,
            send_buffer=self.sndbuf,
            unsent=max(0, sq.write_seq - max(self.snd_nxt, sq.base)),
            recv_buffered=len(self.rq.ready),
            recv_ooo=self.rq.ooo_bytes,
            recv_buffer=self.rcvbuf,
            timers=dict(self.timers),
            orphan=self.orphan,
            error=self.error,
            keepalive=self.opts.keepalive,
            probes_out=self.probes_out,
            quickack=self.quick,
            pingpong=self.pingpong >= 1,
            ato=self.ato,
        )
