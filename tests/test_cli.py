"""The top-level `tcpplay` command without the app: the headless walkthrough, its pcap, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpplay.cli import main

README_EXCERPT = """\
0.000000  client   CLOSED → SYN_SENT  (connect())
0.000000  client   connect(198.18.0.2:8080) = -1 EINPROGRESS
0.000000  client.52658 > server.8080: Flags [S], seq 0, win 64240, options [mss 1460,sackOK,TS val 1869317101 ecr 0,nop,wscale 7], length 0
0.010000  server   LISTEN → SYN_RCVD  (SYN received)
0.010000  server.8080 > client.52658: Flags [S.], seq 0, ack 1, win 65160, options [mss 1460,sackOK,TS val 1477541656 ecr 1869317101,nop,wscale 7], length 0
0.020000  client   SYN_SENT → ESTABLISHED  (SYN-ACK received)
0.020000  client   connected
0.020000  client.52658 > server.8080: Flags [.], ack 1, win 502, options [nop,nop,TS val 1869317121 ecr 1477541656], length 0
0.030000  server   SYN_RCVD → ESTABLISHED  (ACK of our SYN)
0.030000  server   connected
0.030000  server   accept() = new socket for 198.18.0.1:52658
"""  # noqa: E501


def test_the_headless_walkthrough_prints_what_the_readme_shows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--headless"]) == 0
    out = capsys.readouterr().out
    assert README_EXCERPT in out
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert README_EXCERPT in readme
    assert out.rstrip().endswith("client connections left: 0; server: 0")


def test_the_headless_walkthrough_saves_its_capture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    path = tmp_path / "walk.pcap"
    assert main(["--headless", "--pcap", str(path)]) == 0
    assert f"saved 11 packets to {path}" in capsys.readouterr().out
    packets = rdpcap(str(path))
    assert len(packets) == 11
    assert [str(p[TCP].flags) for p in packets[:3]] == ["S", "SA", "A"]


def test_an_unwritable_pcap_path_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--headless", "--pcap", str(tmp_path / "missing" / "x.pcap")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tcpplay: error: ") and "x.pcap" in err and err.count("\n") == 1


@pytest.mark.parametrize("extra", [["--link", "tun"], ["--peer", "kernel"]])
def test_headless_refuses_a_kernel_link_and_points_to_the_lessons(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*extra, "--headless"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "tcpplay: error: --headless prints the walkthrough on the in-memory link; for a run through the "
        "kernel use a lesson: tcpplay demo handshake --headless --link tun\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
        (["--link", "wifi"], "argument --link: invalid choice: 'wifi'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_options_exit_2_with_argparse_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_headless_before_the_subcommand_plays_the_lesson_headless(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--headless", "demo", "handshake"]) == 0
    assert "PASS: 14 passed, 0 failed" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["demo", "handshake"]])
def test_the_app_refuses_to_start_without_a_terminal(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2  # pytest captures stdout: it is not a terminal
    captured = capsys.readouterr()
    assert captured.err == (
        "tcpplay: error: the app needs a terminal and standard output is not one; "
        "use --headless to print instead\n"
    )
    assert "\x1b[" not in captured.out


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("argv", [["--headless"], ["demo", "handshake", "--headless", "--format", "json"]])
def test_output_that_cannot_be_written_is_a_one_line_error(argv: list[str]) -> None:
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "tcpplay.cli", *argv], stdout=full, stderr=subprocess.PIPE, text=True
        )
    assert proc.returncode == 2
    assert proc.stderr == "tcpplay: error: cannot write the output: No space left on device\n"


def test_an_encoding_without_arrows_gets_question_marks_not_a_traceback() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run(
        [sys.executable, "-m", "tcpplay.cli", "--headless"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0 and proc.stderr == ""
    assert "0.000000  client   CLOSED ? SYN_SENT  (connect())" in proc.stdout


def test_a_headless_lesson_saves_its_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scapy.utils import rdpcap

    path = tmp_path / "lesson.pcap"
    assert main(["demo", "handshake", "--headless", "--pcap", str(path)]) == 0
    assert f"saved 5 packets to {path}" in capsys.readouterr().out
    assert len(rdpcap(str(path))) == 5


def test_drill_refuses_pcap_instead_of_ignoring_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "s.pkt"
    script.write_text("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n", encoding="utf-8")
    assert main(["--pcap", str(tmp_path / "x.pcap"), "drill", str(script)]) == 2
    assert capsys.readouterr().err.startswith("tcpplay: error: drill does not save a capture (--pcap)")
    assert not (tmp_path / "x.pcap").exists()
