"""The remembered settings file: whatever is in it, the app starts (a bad file means defaults)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpplay.ui.config import config_path, load_config, save_config


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe not utf-8", b"theme = ", b"[[[", b"theme = 'dark'\ntheme = 'light'\n", b"\x00\x01\x02"],
    ids=["not-utf8", "truncated", "garbage", "duplicate-key", "binary"],
)
def test_a_broken_config_file_means_defaults(private_config: Path, content: bytes) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    assert load_config() == {}


def test_a_config_that_is_a_directory_means_defaults(private_config: Path) -> None:
    config_path().mkdir(parents=True)
    assert load_config() == {}


def test_saved_settings_load_back(private_config: Path) -> None:
    assert save_config({"theme": "light"}) is not None
    assert load_config() == {"theme": "light"}
