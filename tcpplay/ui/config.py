"""The app's small persistent config: `$XDG_CONFIG_HOME/tcpplay/config.toml` (default `~/.config/...`).

Only choices a person makes once and expects to stick (today: the theme) live here. The file is read with
`tomllib` and written by hand (flat `key = value` lines), so no extra dependency is needed; a missing or
broken file means defaults, never a crash, because a config file must not stop the lab from opening.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

CONFIG_NAME = "config.toml"


def config_dir() -> Path:
    """Where tcpplay keeps its config, following the XDG base directory spec (tests point it at a tmp dir)."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "tcpplay"


def config_path() -> Path:
    return config_dir() / CONFIG_NAME


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The config as a dict; {} when the file is missing or unreadable (it must not block start-up)."""
    target = path or config_path()
    try:
        with target.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, ValueError):  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
        return {}
    return data if isinstance(data, dict) else {}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def save_config(updates: dict[str, Any], path: Path | None = None) -> Path | None:
    """Merge updates into the config file; returns the path, or None when it could not be written.

    Failing to save a preference is not worth interrupting the user for, so OSError is swallowed here and
    the caller may say so in a notification.
    """
    target = path or config_path()
    data = load_config(target)
    data.update(updates)
    lines = ["# tcpplay settings (written by the app; safe to edit)"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in sorted(data.items()) if _flat(value)]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError:
        return None
    return target


def _flat(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)
