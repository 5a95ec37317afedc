"""Scripts are read only from regular files of sane size: a FIFO would block, /dev/zero would never end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tcpplay.cli import main
from tcpplay.scriptfile import MAX_SCRIPT_BYTES, read_script


def test_a_regular_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "a.tcp"
    path.write_bytes(b"server listen\n")
    assert read_script(path) == b"server listen\n"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "x.pkt"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        read_script(fifo)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_is_refused() -> None:
    with pytest.raises(OSError, match="not a regular file"):
        read_script("/dev/zero")


def test_a_directory_and_a_huge_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        read_script(tmp_path)
    big = tmp_path / "big.tcp"
    with big.open("wb") as fh:
        fh.truncate(MAX_SCRIPT_BYTES + 1)  # sparse: no real disk use
    with pytest.raises(OSError, match="larger than 16 MiB"):
        read_script(big)


@pytest.mark.parametrize("command", [["drill"], ["demo", "--headless"]])
def test_the_commands_report_a_fifo_in_one_line(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "x.tcp"
    os.mkfifo(fifo)
    assert main([*command, str(fifo)]) == 2
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "not a regular file" in text and "Traceback" not in text
