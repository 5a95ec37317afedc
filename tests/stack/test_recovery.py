"""Loss recovery on exact traces (issue: stack data transfer).

One dropped data segment in the middle of a flight is recovered by fast retransmit after three duplicate
ACKs (with SACK the dup ACKs carry growing SACK blocks, RFC 2018; without SACK, NewReno, RFC 6582); a
dropped tail segment, after which no dup ACKs can come, is recovered by the retransmission timer
(RFC 6298 §5). Times are the lab's virtual clock with 10 ms one-way delay.
"""

from __future__ import annotations

from stack.wire import ACK, PSH
from tcpplay.format import RelativeSeq
from tcpplay.lab import Lab

MSS = 1448  # 1460 minus the 12 bytes of the timestamp option


def rows(lab: Lab, since: int) -> list[tuple[int, str, str, int, int, int, tuple[tuple[int, int], ...], str]]:
    """(time ms, sender, flags, rel seq, len, rel ack, rel SACK blocks, fate) for segments after `since`."""
    rel = RelativeSeq()
    out = []
    for rec in lab.capture:
        seg = rec.segment
        assert seg is not None
        seq_base, ack_base = rel.bases(seg)
        if rec.number <= since:
            continue
        ab = ack_base or 0
        sack = tuple(((a - ab) % 2**32, (b - ab) % 2**32) for a, b in seg.sack_blocks)
        flags = ("P" if seg.flags & PSH else "") + ("." if seg.flags & ACK else "")
        out.append(
            (
                rec.time // 1000,
                rec.src,
                flags,
                (seg.seq - seq_base) % 2**32,
                len(seg.payload),
                (seg.ack - ab) % 2**32,
                sack,
                rec.fate,
            )
        )
    return out


def established(**settings: object) -> tuple[Lab, int]:
    lab = Lab(seed=1, settings=dict(settings))
    lab.listen("server")
    lab.connect("client")
    lab.advance(0.1)
    return lab, lab.capture.total


def test_one_lost_segment_is_fast_retransmitted_after_three_dup_acks_with_sack() -> None:
    lab, mark = established()
    lab.drop_next("client", "data")
    lab.send("client", bytes(6 * MSS))
    lab.advance(1.0)
    c, s = "client", "server"
    assert rows(lab, mark) == [
        (100, c, ".", 1, MSS, 1, (), "dropped"),
        (100, c, ".", 1 + MSS, MSS, 1, (), "delivered"),
        (100, c, ".", 1 + 2 * MSS, MSS, 1, (), "delivered"),
        (100, c, ".", 1 + 3 * MSS, MSS, 1, (), "delivered"),
        (100, c, ".", 1 + 4 * MSS, MSS, 1, (), "delivered"),
        (100, c, "P.", 1 + 5 * MSS, MSS, 1, (), "delivered"),
        # Each out-of-order segment is ACKed at once with a SACK block that grows (RFC 5681 §4.2).
        (110, s, ".", 1, 0, 1, ((1 + MSS, 1 + 2 * MSS),), "delivered"),
        (110, s, ".", 1, 0, 1, ((1 + MSS, 1 + 3 * MSS),), "delivered"),
        (110, s, ".", 1, 0, 1, ((1 + MSS, 1 + 4 * MSS),), "delivered"),
        (110, s, ".", 1, 0, 1, ((1 + MSS, 1 + 5 * MSS),), "delivered"),
        (110, s, ".", 1, 0, 1, ((1 + MSS, 1 + 6 * MSS),), "delivered"),
        # Three duplicate ACKs (three SACKed segments, RFC 6675 DupThresh): the hole is resent at once,
        # 10 ms after the dup ACKs, long before the 1 s RTO.
        (120, c, ".", 1, MSS, 1, (), "delivered"),
        # The gap is filled: one cumulative ACK for everything, at once.
        (130, s, ".", 1, 0, 1 + 6 * MSS, (), "delivered"),
    ]
    client = lab.snapshot("client")
    assert client is not None
    assert client.total_retrans == 1
    assert client.ssthresh == 5  # Linux tcp_reno_ssthresh(): max(cwnd / 2, 2) with the initial cwnd of 10
    assert lab.recv("server") == bytes(6 * MSS)


def test_one_lost_segment_without_sack_is_recovered_by_newreno_fast_retransmit() -> None:
    lab, mark = established(tcp_sack=0)
    lab.drop_next("client", "data")
    lab.send("client", bytes(6 * MSS))
    lab.advance(1.0)
    c, s = "client", "server"
    trace = rows(lab, mark)
    dupacks = [r for r in trace if r[1] == s and r[5] == 1]
    assert len(dupacks) == 5
    assert all(r[6] == () for r in dupacks)  # no SACK negotiated
    # The third duplicate ACK arrives at 120 ms and triggers the fast retransmission at once.
    assert (120, c, ".", 1, MSS, 1, (), "delivered") in trace
    assert trace[-1] == (130, s, ".", 1, 0, 1 + 6 * MSS, (), "delivered")


def test_lost_tail_segment_is_recovered_by_the_retransmission_timer() -> None:
    lab, mark = established(tcp_early_retrans=0)  # the RTO alone (Linux: sysctl tcp_early_retrans=0)
    lab.send("client", bytes(2 * MSS))
    lab.drop_next("client", "data")
    lab.send("client", b"tail")
    lab.advance(0.021)  # the two ACKs (sent at 110 ms) have reached the client and restarted its RTO
    client = lab.snapshot("client")
    assert client is not None
    rto_ms = client.rto // 1000
    assert client.timers["retransmit"] == 120_000 + client.rto
    assert 200 <= rto_ms < 300  # SRTT ~20 ms plus Linux's 200 ms floor on the variance term
    lab.advance(2.0)
    c, s = "client", "server"
    assert rows(lab, mark) == [
        (100, c, ".", 1, MSS, 1, (), "delivered"),
        (100, c, "P.", 1 + MSS, MSS, 1, (), "delivered"),
        (100, c, "P.", 1 + 2 * MSS, 4, 1, (), "dropped"),
        # Quick-ACK mode at the start of the connection: every segment is ACKed at once.
        (110, s, ".", 1, 0, 1 + MSS, (), "delivered"),
        (110, s, ".", 1, 0, 1 + 2 * MSS, (), "delivered"),
        # Nothing follows the lost tail, so no duplicate ACK can come: only the RTO brings it back.
        (120 + rto_ms, c, "P.", 1 + 2 * MSS, 4, 1, (), "delivered"),
        (130 + rto_ms, s, ".", 1, 0, 1 + 2 * MSS + 4, (), "delivered"),
    ]
    assert lab.recv("server") == bytes(2 * MSS) + b"tail"


def test_with_linux_defaults_the_lost_tail_comes_back_as_a_tail_loss_probe() -> None:
    """RFC 8985 §7 / Linux tcp_schedule_loss_probe(): on a SACK connection the tail is probed after
    2*SRTT + 200 ms (one segment out), capped by the RTO: here the same instant as the RTO would be, but
    it is a probe: no backoff, no RTO, and cwnd stays (the loss was repaired without a timeout)."""
    lab, mark = established()
    lab.send("client", bytes(2 * MSS))
    lab.drop_next("client", "data")
    lab.send("client", b"tail")
    lab.advance(0.021)
    client = lab.snapshot("client")
    assert client is not None
    assert "retransmit" not in client.timers
    probe_at = client.timers["loss-probe"]
    # PTO = 2*SRTT + rto_min (one segment in flight), capped by a full RTO from this ACK (120 ms): Linux
    # passes advancing_rto when SND.UNA moved.
    assert probe_at == 120_000 + min(2 * client.srtt + 200_000, client.rto)
    lab.advance(2.0)
    again = [r for r in lab.capture if r.number > mark and r.src == "client" and r.segment.payload == b"tail"]
    assert [r.time for r in again] == [100_000, probe_at]
    after = lab.snapshot("client")
    assert after is not None
    assert after.backoff == 0 and after.retransmits == 0 and after.cwnd >= 10
    assert lab.recv("server") == bytes(2 * MSS) + b"tail"
