"""tcpplay drill's executor: our own scripts, the known divergences, the library API and the CLI."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from stack.wire import Malformed, parse_packet
from tcpplay.drill import cli
from tcpplay.drill.parser import parse_text
from tcpplay.drill.report import DrillEvent, FileResult, ScriptResult, Status, render_json, render_text
from tcpplay.drill.runner import LINUX_DEFAULTS, RunConfig, run_file, run_path, run_script

HERE = Path(__file__).parent
SCRIPTS = sorted(HERE.glob("*.pkt"))
DIVERGENCES = sorted((HERE / "known_divergences").glob("*.pkt"))
REPO = HERE.parent.parent

SERVER = """\
    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
   +0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
   +0 bind(3, ..., ...) = 0
   +0 listen(3, 8) = 0
"""
HANDSHAKE = """\
  +.1 < S 0:0(0) win 65535 <mss 1460,nop,nop,sackOK,nop,wscale 7>
   +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,sackOK,nop,wscale 7>
  +.1 < . 1:1(0) ack 1 win 502
"""


def run_text(text: str, **config: object) -> ScriptResult:
    (script,) = parse_text(text, "t.pkt").scripts
    return run_script(script, filename="t.pkt", config=RunConfig(**config))  # type: ignore[arg-type]


def assert_fails(result: ScriptResult, line: int, *words: str) -> None:
    assert result.status is Status.FAIL, render_text([FileResult(filename="t.pkt", scripts=(result,))])
    assert result.failure is not None
    assert result.failure.line == line, result.failure
    for word in words:
        assert word in result.failure.reason, result.failure.reason


# -------------------------------------------------------------------------------------------- the scripts


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.name)
def test_own_script_passes(path: Path) -> None:
    result = run_path(path)
    assert result.passed, render_text([result])


@pytest.mark.parametrize("path", DIVERGENCES, ids=lambda path: path.name)
def test_known_divergence_still_fails(path: Path) -> None:
    """These scripts describe Linux; our stack does something else at the line named in the script's
    `// DIVERGENCE line N` comment. When one starts passing, move it to tests/drill/."""
    marker = next(line for line in path.read_text().splitlines() if line.startswith("// DIVERGENCE line "))
    line = int(marker.split()[3].rstrip(":"))
    result = run_path(path)
    assert result.status is Status.FAIL, f"{path.name} passes now: move it to tests/drill/"
    (script,) = result.scripts
    assert script.failure is not None and script.failure.line == line, render_text([result])


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 30


# ------------------------------------------------------------------------------------------ library API


def test_observer_sees_every_event_as_it_happens() -> None:
    seen: list[DrillEvent] = []
    drill = parse_text(SERVER + HANDSHAKE + "   +0 accept(3, ..., ...) = 4\n", "t.pkt")
    result = run_file(drill, observer=seen.append)
    (script,) = result.scripts
    assert script.passed
    assert tuple(seen) == script.trace
    kinds = [event.kind for event in seen]
    assert {"call", "in", "out", "state"} <= set(kinds)
    for event in seen:
        if event.kind in ("in", "out"):
            assert event.packet is not None and event.segment is not None
            assert not isinstance(parse_packet(event.packet), Malformed)
    states = [(event.old_state, event.new_state) for event in seen if event.kind == "state"]
    assert ("LISTEN", "SYN_RCVD") in states and ("SYN_RCVD", "ESTABLISHED") in states
    times = [event.time for event in seen]
    assert times == sorted(times)


def test_runs_are_reproducible() -> None:
    first = run_path(SCRIPTS[0])
    second = run_path(SCRIPTS[0])
    assert [e.text for s in first.scripts for e in s.trace] == [
        e.text for s in second.scripts for e in s.trace
    ]


def test_failure_carries_the_statement() -> None:
    result = run_text(SERVER + HANDSHAKE.replace("> S. 0:0(0) ack 1", "> S. 0:0(0) ack 2"))
    assert_fails(result, 6, "ack 1 (expected 2)")
    assert result.failure is not None
    assert result.failure.source == "+0 > S. 0:0(0) ack 2 <mss 1460,nop,nop,sackOK,nop,wscale 7>"
    assert result.failure.expected is not None and "ack 2" in result.failure.expected
    assert result.failure.actual is not None and "ack 1" in result.failure.actual


def test_linux_defaults_apply_before_the_script() -> None:
    assert LINUX_DEFAULTS["tcp_syn_linear_timeouts"] == 4  # Linux >= 6.5; tcpplay's own default is 0


# -------------------------------------------------------------------------------------------- blocking


CLIENT_SYN = "   +0 > S 0:0(0) <...>\n"


def test_blocking_connect_returns_on_the_syn_ack() -> None:
    text = (
        "    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
        "   +0...0.3 connect(3, ..., ...) = 0\n"
        + CLIENT_SYN
        + "  +.3 < S. 0:0(0) ack 1 win 65535 <mss 1460>\n"
        "   +0 > . 1:1(0) ack 1\n"
    )
    assert run_text(text).passed


def test_blocking_call_must_not_return_early() -> None:
    text = (
        "    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
        "   +0...0.5 connect(3, ..., ...) = 0\n"
        + CLIENT_SYN
        + "  +.3 < S. 0:0(0) ack 1 win 65535 <mss 1460>\n"
        "   +0 > . 1:1(0) ack 1\n"
    )
    assert_fails(run_text(text), 2, "timing error", "returned at 0.300000 s, expected at 0.500000 s")


def test_blocking_call_must_not_return_late() -> None:
    text = (
        "    0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n"
        "   +0...0.1 connect(3, ..., ...) = 0\n"
        + CLIENT_SYN
        + "  +.3 < S. 0:0(0) ack 1 win 65535 <mss 1460>\n"
    )
    assert_fails(run_text(text), 2, "still blocked at 0.112500 s", "tolerance 0.012500 s")


def test_call_expected_to_block_must_block() -> None:
    text = SERVER + HANDSHAKE + "   +0...0.2 accept(3, ..., ...) = 4\n"
    assert_fails(run_text(text), 8, "returned at once")


def test_a_blocking_call_without_end_time_must_not_block() -> None:
    text = SERVER + "   +0 accept(3, ..., ...) = 4\n" + HANDSHAKE
    assert_fails(run_text(text), 5, "still blocked")


def test_second_call_while_one_blocks() -> None:
    text = (
        SERVER
        + "   +0...1 accept(3, ..., ...) = 4\n  +.1 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0\n"
    )
    assert_fails(run_text(text), 6, "still blocked")


def test_nonblocking_socket_never_blocks() -> None:
    text = SERVER + "   +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n   +0 fcntl(3, F_GETFL) = 2050\n"
    text += "   +0 accept(3, ..., ...) = -1 EAGAIN (Resource temporarily unavailable)\n"
    assert run_text(text).passed


def test_blocked_call_finishes_after_the_last_statement() -> None:
    text = SERVER + "   +0...0.2 accept(3, ..., ...) = 4\n" + HANDSHAKE
    assert run_text(text).passed


# ------------------------------------------------------------------------------------ script problems


def test_unknown_sysctl_is_an_error_naming_it() -> None:
    result = run_text("`sysctl -q net.ipv4.tcp_no_such_thing=1`\n" + SERVER)
    assert result.status is Status.ERROR
    assert result.failure is not None and result.failure.line == 1
    assert "net.ipv4.tcp_no_such_thing" in result.failure.reason


def test_bad_sysctl_value_is_an_error() -> None:
    result = run_text('`sysctl -q net.ipv4.tcp_rmem="1 2"`\n' + SERVER)
    assert result.status is Status.ERROR
    assert result.failure is not None and "tcp_rmem" in result.failure.reason


def test_sysctl_noop_only_with_the_value_the_stack_implements() -> None:
    assert run_text("`sysctl -q net.ipv4.tcp_ecn=0 net.ipv4.tcp_no_metrics_save=1`\n" + SERVER).passed
    result = run_text("`sysctl -q net.ipv4.tcp_ecn=1`\n" + SERVER)
    assert result.status is Status.ERROR
    assert result.failure is not None and "tcp_ecn" in result.failure.reason


def test_tcp_early_retrans_is_a_real_setting() -> None:
    # 3 (Linux's default, Tail Loss Probe on) and 0 (off) are both modelled.
    assert run_text("`sysctl -q net.ipv4.tcp_early_retrans=0`\n" + SERVER).passed
    assert run_text("`sysctl -q net.ipv4.tcp_early_retrans=3`\n" + SERVER).passed
    result = run_text("`sysctl -q net.ipv4.tcp_early_retrans=9`\n" + SERVER)
    assert result.status is Status.ERROR and result.failure is not None
    assert "tcp_early_retrans" in result.failure.reason


def test_sysctl_with_other_unit() -> None:
    # net.ipv4.tcp_rto_min_us (Linux 6.11) maps onto tcp_rto_min_ms.
    assert run_text("`sysctl -q net.ipv4.tcp_rto_min_us=200000`\n" + SERVER).passed
    assert run_text("`sysctl -q net.ipv4.tcp_rto_min_us=200001`\n" + SERVER).status is Status.ERROR


def test_unsupported_construct_is_reported_not_skipped() -> None:
    result = run_text(SERVER + "   +0 `echo hello`\n" + HANDSHAKE)
    assert result.status is Status.UNSUPPORTED
    assert result.failure is not None and result.failure.line == 5
    assert (
        result.failure.reason.startswith("unsupported: shell command")
        and "at line 5" in result.failure.reason
    )
    assert not result.trace  # nothing ran


def test_unsupported_system_call_and_option() -> None:
    result = run_text(SERVER + "   +0 sendto(3, ..., 10, 0, ..., ...) = 10\n")
    assert result.status is Status.UNSUPPORTED
    assert result.failure is not None and "system call sendto()" in result.failure.reason
    result = run_text(SERVER + "   +0 setsockopt(3, SOL_SOCKET, SO_BROADCAST, [1], 4) = 0\n")
    assert result.status is Status.UNSUPPORTED
    assert (
        result.failure is not None and result.failure.reason == "unsupported: constant SO_BROADCAST at line 5"
    )
    result = run_text(SERVER + "   +0 setsockopt(3, SOL_SOCKET, SO_TYPE, [1], 4) = 0\n")
    assert result.status is Status.UNSUPPORTED


def test_peer_state_assertion_is_noted_not_checked() -> None:
    result = run_text(SERVER + "//= PEER: ESTABLISHED\n")
    assert result.passed
    assert result.notes and "PEER state assertion not checked" in result.notes[0]


def test_inbound_packet_needs_a_window() -> None:
    result = run_text(SERVER + "  +.1 < S 0:0(0) <mss 1460>\n")
    assert result.status is Status.ERROR
    assert result.failure is not None and "win" in result.failure.reason


def test_state_assertion_cannot_go_back_in_time() -> None:
    result = run_text(SERVER + "//= +5 SUT: LISTEN\n   +1 listen(3, 8) = 0\n")
    assert result.status is Status.ERROR
    assert result.failure is not None and "state assertion" in result.failure.reason


def test_file_without_script_is_not_a_pass(tmp_path: Path) -> None:
    path = tmp_path / "33-property.txt"
    path.write_text("TITLE: a property\nID: 33\nTIMING: none\n")
    result = run_path(path)
    assert result.status is Status.UNSUPPORTED
    assert result.error is not None and "no script" in result.error


# ---------------------------------------------------------------------------------------------- the CLI


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="tcpplay drill")
    parser.add_argument("--seed", type=int, default=1)
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(list(argv)))


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.pkt"
    good.write_text(SERVER + HANDSHAKE)
    bad = tmp_path / "bad.pkt"
    bad.write_text(SERVER + HANDSHAKE.replace("ack 1 <mss", "ack 9 <mss"))
    assert run_cli(str(good)) == 0
    assert capsys.readouterr().out == f"PASS  {good}\n"
    assert run_cli(str(good), str(bad)) == 1
    out = capsys.readouterr().out
    assert f"FAIL  {bad} line 6: +0 > S. 0:0(0) ack 9" in out
    assert "  expected: " in out and "  actual:   " in out and "  trace (last " in out
    assert out.rstrip().endswith("2 scripts: 1 pass, 1 fail")


def test_cli_bad_input_is_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "blob.pkt"
    binary.write_bytes(b"\x00\x01\x02garbage")
    syntax = tmp_path / "syntax.pkt"
    syntax.write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > S 0:1(0) <...>\n")
    code = run_cli(str(tmp_path / "missing.pkt"), str(tmp_path), str(binary), str(syntax))
    assert code == 2
    out = capsys.readouterr().out
    assert f"{tmp_path / 'missing.pkt'}: no such file" in out
    assert f"{tmp_path}: is a directory" in out
    assert f"{binary}: not a text file" in out
    assert f"{syntax}:2:" in out and "inconsistent sequence range" in out
    assert "Traceback" not in out


def test_cli_unsupported_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "u.pkt"
    path.write_text(SERVER + "   +0 %{ print(1) }%\n")
    assert run_cli(str(path)) == 2
    assert "UNSUPPORTED" in capsys.readouterr().out


def test_cli_json_and_verbose(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "good.pkt"
    path.write_text(SERVER + HANDSHAKE)
    assert run_cli("--format", "json", str(path)) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["exit_code"] == 0
    (entry,) = payload["files"]
    assert entry["status"] == "PASS" and entry["scripts"][0]["trace"] == []
    assert run_cli("--verbose", str(path)) == 0
    out = capsys.readouterr().out
    assert "trace (" in out and "Flags [S.]" in out


def test_cli_tolerance_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "late.pkt"  # the SYN-ACK is expected 3 ms late: inside 4 ms, outside 2 ms
    path.write_text(SERVER + HANDSHAKE.replace("   +0 > S.", "+.003 > S."))
    assert run_cli(str(path)) == 0
    assert run_cli("--tolerance_usecs", "2000", str(path)) == 1
    capsys.readouterr()
    with pytest.raises(SystemExit):
        run_cli("--tolerance_usecs", "-5", str(path))


def test_render_json_is_valid_for_failures(tmp_path: Path) -> None:
    path = tmp_path / "bad.pkt"
    path.write_text(SERVER + HANDSHAKE.replace("ack 1 <mss", "ack 9 <mss"))
    payload = json.loads(render_json([run_path(path)]))
    failure = payload["files"][0]["scripts"][0]["failure"]
    assert failure["line"] == 6 and "ack 1 (expected 9)" in failure["reason"]
    assert payload["files"][0]["scripts"][0]["trace"]


def test_module_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "good.pkt"
    path.write_text(SERVER + HANDSHAKE)
    done = subprocess.run(
        [sys.executable, "-m", "tcpplay.drill", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"PASS  {path}\n"
