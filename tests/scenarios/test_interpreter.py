"""What each command and expectation does on a Lab, and how failures read (small scenarios in text)."""

from __future__ import annotations

from tcpplay.lab import Note
from tcpplay.scenarios import parse_text
from tcpplay.scenarios.interpreter import CheckResult
from tcpplay.scenarios.player import Player

SETUP = """title: T
say: set-up
server listen
client connect
run until server is ESTABLISHED within 1 s
"""


def play(body: str, *, setup: str = SETUP, lang: str = "en") -> Player:
    player = Player(parse_text(setup + body, "t.tcp"), lang=lang)
    player.run_to_end()
    return player


def results(body: str, **kwargs: str) -> list[tuple[bool, str]]:
    return [(r.passed, r.message) for r in play(body, **kwargs).results]


def notes(player: Player, kind: str | None = None) -> list[str]:
    return [e.text for e in player.lab.log if isinstance(e, Note) and (kind is None or e.kind == kind)]


def test_passing_checks_and_their_record() -> None:
    player = play("expect client state ESTABLISHED at 0.02 s\nexpect server has 1 in ESTABLISHED\n")
    first, second = player.results
    assert first == CheckResult(6, "expect client state ESTABLISHED at 0.02 s", True, "", 30_000, 0)
    assert second.passed
    assert "✓ expect client state ESTABLISHED at 0.02 s" in notes(player, "info")
    assert first.describe("t.tcp") == "PASS  t.tcp:6  expect client state ESTABLISHED at 0.02 s"


def test_state_failures() -> None:
    assert results("expect client state CLOSED\nexpect client state ESTABLISHED at 1 s\n") == [
        (False, "client is ESTABLISHED"),
        (False, "client entered ESTABLISHED at 0.02 s"),
    ]
    assert results("server crash\nexpect server state LISTEN\n") == [(False, "server is CLOSED (it is down)")]


def test_failed_check_is_shown_in_the_trace_and_the_lesson_goes_on() -> None:
    player = play("expect client state CLOSED\nsay: more\nexpect client state ESTABLISHED\n")
    assert [r.passed for r in player.results] == [False, True]
    assert "✗ expect client state CLOSED: client is ESTABLISHED" in notes(player, "error")
    assert (
        player.results[0].describe() == "FAIL  line 6  expect client state CLOSED  -- client is ESTABLISHED"
    )


def test_host_state_follows_the_connection_after_close() -> None:
    body = "client close\nrun until client is FIN_WAIT_2 within 1 s\nserver close\n"
    body += "run until client is TIME_WAIT within 1 s\nrun until server is CLOSED within 1 s\n"
    body += "run until client is CLOSED within 61 s\nexpect client state CLOSED at 60.1 s\n"
    assert results(body) == [(True, "")]


def test_run_until_that_never_happens() -> None:
    player = play("run until client is TIME_WAIT within 2 s\nexpect client state ESTABLISHED\n")
    assert [(r.passed, r.message) for r in player.results] == [
        (False, "client did not become TIME_WAIT (it is ESTABLISHED) within 2 s (it did not happen)"),
        (True, ""),
    ]
    assert player.lab.now == 2_030_000


def test_wait_until() -> None:
    player = play("wait until 5 s\nwait until 1 s\n")
    assert player.lab.now == 5_000_000
    assert [(r.line, r.message) for r in player.results] == [(7, "it is already 5 s")]


def test_a_command_the_lab_cannot_do_fails_with_its_reason() -> None:
    setup = "title: T\nsay: x\n"
    assert results('client send "hi"\nexpect client send ok\n', setup=setup) == [
        (False, "client has no open connection; connect (or listen and accept) first"),
        (False, "client never called send()"),
    ]


def test_segment_expectations() -> None:
    body = """expect client sends [S] seq 0 mss 1460 sackOK at 0 s
expect server sends [S.] ack 1 to client delivered once
expect client sends [S] 2 times
expect client sends [R]
expect spoofed sends SYN
expect client sends [.] ack 1 in this step
say: next
expect client sends [.] in this step
expect client sends [S] tag "retransmission"
"""
    assert results(body) == [
        (True, ""),
        (True, ""),
        (False, "client sent 1 such segments"),
        (False, "no such segment; client sent [S] seq 0 len 0 at 0 s; [.] seq 1 ack 1 len 0 at 0.02 s"),
        (False, "spoofed sent nothing"),
        (True, ""),
        (False, "client sent nothing in this step"),
        (False, "no such segment; client sent [S] seq 0 len 0 at 0 s; [.] seq 1 ack 1 len 0 at 0.02 s"),
    ]


def test_call_expectations() -> None:
    setup = "title: T\nsay: x\nserver listen\n"
    body = """client connect port 9
expect client connect error ECONNREFUSED
run until client is CLOSED within 1 s
expect connect error ECONNREFUSED at 20 ms
expect client connect error ECONNREFUSED at 1 s
expect client connect ok
expect server connect ok
expect recv error EAGAIN
client connect
expect client connect ok
run until client is ESTABLISHED within 1 s
expect client connect ok at 0.04 s
server listen without SO_REUSEADDR
"""
    assert results(body, setup=setup) == [
        (False, "client's connect() is still in progress (SYN_SENT)"),
        (True, ""),
        (False, "client's connect() gave ECONNREFUSED at 0.02 s"),
        (False, "client's connect() failed with ECONNREFUSED"),
        (False, "server never called connect()"),
        (False, "any host never called recv()"),
        (False, "client's connect() is still in progress (SYN_SENT)"),
        (True, ""),
        (False, "server is already listening on port 8080"),
    ]


def test_errors_from_calls_are_results_not_failures() -> None:
    body = """client abort
run until server is CLOSED within 1 s
server recv
expect server recv error ECONNRESET
server send "x"
expect server send error EPIPE
server listen 9000
"""
    assert results(body) == [
        (True, ""),
        (True, ""),
        (False, "server is already listening on port 8080"),
    ]


def test_bind_error_is_recorded_for_bind_and_listen() -> None:
    body = """server close
run until client is CLOSE_WAIT within 1 s
client close
run until server is TIME_WAIT within 1 s
server stop listening
server listen without SO_REUSEADDR
expect server bind error EADDRINUSE
expect server listen error EADDRINUSE
"""
    assert results(body) == [(True, ""), (True, "")]


def test_field_expectations_and_show() -> None:
    body = """expect client cwnd 10
expect client mss >= 1448
expect client ssthresh 5
expect client rto > 1 s
expect client sack on
expect server accept_queue 0
expect client accept_queue 0
show client cwnd ssthresh rto sack srtt
"""
    player = play(body)
    assert [(r.passed, r.message) for r in player.results] == [
        (True, ""),
        (True, ""),
        (False, "client's ssthresh is infinite"),
        (False, "client's rto is 220 ms"),
        (True, ""),
        (True, ""),
        (False, "client's accept_queue is (not listening)"),
    ]
    assert "cwnd 10, ssthresh infinite, rto 220 ms, sack on, srtt 20 ms" in notes(player, "info")


def test_blocking_send_and_auto_read() -> None:
    body = """server auto-read on
client send 1000000 bytes
wait 5 s
expect server received 1000000 bytes
expect client send ok
"""
    player = play(body)
    assert [r.passed for r in player.results] == [True, True]
    texts = notes(player)
    first = next(t for t in texts if t.startswith("send(1000000 bytes) = "))
    accepted = int(first.rsplit(" ", 1)[1])
    assert 0 < accepted < 1_000_000
    assert f"send() blocks: {1_000_000 - accepted} more bytes go in as the send buffer drains" in texts
    assert "send() returns: all 1000000 bytes written" in texts
    assert bytes(player.lab.apps["server"].received[:30]) == b"abcdefghijklmnopqrstuvwxyzabcd"


def test_received_mismatch() -> None:
    body = 'client send "hello"\nwait 100 ms\nserver recv\n'
    body += 'expect server received "help"\nexpect server received 4 bytes\n'
    assert results(body) == [(False, "server received b'hello'"), (False, "server received 5 bytes")]


def test_repeat_and_auto_accept_off() -> None:
    body = """server auto-accept off
repeat 3
  client connect
end
wait 100 ms
expect server accept_queue 3
server accept
expect server accept_queue 2
"""
    assert results(body) == [(True, ""), (True, "")]


def test_link_commands() -> None:
    body = """impair from client loss 100%
client send "x"
wait 100 ms
expect client sends [P.] lost
impair from client loss 0%
partition on
server send "y"
expect server sends [P.] partitioned
partition off
drop next 2 data from server
server send "z"
wait 5 s
expect server sends [P.] dropped 2 times
syn flood 3 to server port 8080
expect spoofed sends [S] 3 times
"""
    assert all(passed for passed, _ in results(body))


def test_inject_an_old_syn() -> None:
    body = """drop next SYN from client
client connect
inject [S] from client seq -100000
run until client sends RST within 1 s
expect client sends [R] seq 1
expect client sends [S] tag "reused ports"
"""
    player = play(body, setup="title: T\nsay: x\nserver listen\n")
    assert [r.passed for r in player.results] == [True, True]
    assert any(t.startswith("injected from client: [S] seq ") for t in notes(player, "info"))


def test_sysctl_on_both_and_crash_reboot() -> None:
    body = """both sysctl tcp_keepalive_time = 10
client setsockopt SO_KEEPALIVE on
server crash
server reboot
run until client is CLOSED within 20 s
client recv
expect client recv error ECONNRESET at 10.05 s
"""
    assert results(body) == [(True, "")]


def test_narration_falls_back_to_english() -> None:
    player = play("say: two\nsay.zh: 二\n", lang="zh")
    assert notes(player, "narration") == ["set-up", "二"]
    assert [s.narration for s in player.steps] == ["set-up", "二"]


def test_a_second_send_queues_behind_a_blocked_one() -> None:
    body = """server auto-read on
client send 1000000 bytes
client send "END"
wait 5 s
expect server received 1000003 bytes
"""
    player = play(body)
    assert [r.passed for r in player.results] == [True]
    received = bytes(player.lab.apps["server"].received)
    assert received.endswith(b"END") and received[:-3] == (b"abcdefghijklmnopqrstuvwxyz" * 40000)[:1000000]
    assert "send(3 bytes) waits: the program is still blocked in send()" in notes(player)
    assert "send() returns: all 1000003 bytes written" in notes(player)
