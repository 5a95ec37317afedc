"""Colour themes: TOML files in `themes/` (and in `$XDG_CONFIG_HOME/tcpplay/themes/`) → Textual Themes.

Every colour that carries meaning (one per TCP flag, per connection state, per expert severity, per fate)
is a theme *variable*, so CSS can say `$flag-syn` and the packet log can look the same names up when it
paints lines itself. A theme file may omit variables; the dark palette fills the gaps, because a
half-finished user theme should still give a readable screen rather than a CSS error at start-up.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

from .config import config_dir

DEFAULT_THEME = "dark"
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "themes"

# tcpplay's own theme variables with the dark theme's values, the fallback for any theme that lacks one.
VARIABLE_DEFAULTS: dict[str, str] = {
    "flag-syn": "#5fd7ff",
    "flag-ack": "#8fcf7f",
    "flag-fin": "#d7afff",
    "flag-rst": "#ff5f6d",
    "flag-psh": "#ffd75f",
    "flag-urg": "#ff87d7",
    "flag-ece": "#ffaf5f",
    "flag-cwr": "#ffaf5f",
    "state-closed": "#5c6370",
    "state-listen": "#3d7eff",
    "state-syn-sent": "#0fa3b1",
    "state-syn-rcvd": "#2a9d8f",
    "state-established": "#3fae5a",
    "state-fin-wait-1": "#d19a66",
    "state-fin-wait-2": "#c7843a",
    "state-close-wait": "#e5c07b",
    "state-closing": "#e06c75",
    "state-last-ack": "#be5046",
    "state-time-wait": "#a66cd6",
    "expert-chat": "#7f8c98",
    "expert-note": "#61afef",
    "expert-warn": "#ffb454",
    "fate-bad": "#ff5f6d",
    "fate-odd": "#e5c07b",
    "dir-client": "#61afef",
    "dir-server": "#98c379",
    "event-state": "#c8ccd4",
    "event-note": "#7f8c98",
    "event-error": "#ff5f6d",
    "log-cursor": "#2c3a4f",
    "hex-highlight": "#665200",
    "bar-fill": "#4ea1ff",
}

_COLOUR_KEYS = (
    "primary",
    "secondary",
    "warning",
    "error",
    "success",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)

FALLBACK_THEME = Theme(
    name=DEFAULT_THEME,
    primary="#4ea1ff",
    secondary="#2f6fb3",
    accent="#ffb454",
    warning="#ffb454",
    error="#ff5f6d",
    success="#5fd7a0",
    foreground="#d8dee9",
    background="#14171c",
    surface="#1b1f26",
    panel="#262b34",
    dark=True,
    variables=dict(VARIABLE_DEFAULTS),
)


def theme_colour(variables: Mapping[str, str], *chain: str) -> str:
    """The first entry of chain that is a colour: a variable name ("text-muted") or a literal ("#888888").

    Some Textual variables are CSS expressions ("auto 60%") that only mean something to CSS; widgets that
    paint with Rich styles need a plain colour, so those are skipped. Alpha is dropped (a terminal cell
    cannot be translucent).
    """
    for item in chain:
        value = variables.get(item, item)
        try:
            return Color.parse(value).hex6
        except ColorParseError:
            continue
    return "#888888"


class ThemeFileError(ValueError):
    """A theme file that cannot be used, with the file and the reason in the message."""


@dataclass(frozen=True, slots=True)
class LoadedThemes:
    themes: dict[str, Theme]
    problems: list[str]


def _colour(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ThemeFileError(f"{path.name}: {key} must be a colour string, got {value!r}")
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeFileError(f"{path.name}: {key} = {value!r} is not a colour") from None
    return value


def theme_from_toml(path: Path) -> Theme:
    """Parse one theme file; ThemeFileError says which key is wrong, so a user can fix their theme."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeFileError(f"{path.name}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(f"{path.name}: not valid TOML ({exc})") from None
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise ThemeFileError(f"{path.name}: name must be a non-empty string")
    if "primary" not in data:
        raise ThemeFileError(f"{path.name}: a theme needs at least a primary colour")
    colours: dict[str, Any] = {key: _colour(path, key, data[key]) for key in _COLOUR_KEYS if key in data}
    raw_vars = data.get("variables", {})
    if not isinstance(raw_vars, dict):
        raise ThemeFileError(f"{path.name}: [variables] must be a table")
    variables = dict(VARIABLE_DEFAULTS)
    for key, value in raw_vars.items():
        variables[str(key)] = _colour(path, f"variables.{key}", value)
    spread = data.get("luminosity_spread", 0.15)
    if not isinstance(spread, int | float):
        raise ThemeFileError(f"{path.name}: luminosity_spread must be a number")
    return Theme(
        name=name,
        dark=bool(data.get("dark", True)),
        luminosity_spread=float(spread),
        variables=variables,
        **colours,
    )


def theme_dirs() -> list[Path]:
    """Bundled themes first, then the user's own (which may override a bundled one by name)."""
    return [BUNDLED_DIR, config_dir() / "themes"]


def load_themes(dirs: list[Path] | None = None) -> LoadedThemes:
    """Every usable theme in dirs; broken files are reported in `problems` and skipped."""
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    for folder in dirs if dirs is not None else theme_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = theme_from_toml(path)
            except ThemeFileError as exc:
                problems.append(str(exc))
                continue
            themes[theme.name] = theme
    if DEFAULT_THEME not in themes:
        themes[DEFAULT_THEME] = FALLBACK_THEME
    return LoadedThemes(themes, problems)
