"""Colours looked up in the app's theme variables at paint time, each with a chain of fallbacks.

The ladder and the state diagram paint their lines themselves (line API), so they need Rich styles rather
than CSS. They also want variables that only tcpplay's themes define ($flag-syn, $client...): naming such a
variable in DEFAULT_CSS would be a parse error under any other theme, so instead each colour is a chain like
("$flag-syn", "$text-success", "$success", "#4ebf71") tried in order until one parses. Values with an alpha
channel are blended over the widget's background, since a terminal cell cannot be translucent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.style import Style
from textual.color import Color, ColorParseError
from textual.widget import Widget

GREY = Color(128, 128, 128)

# Host colours: tcpplay themes define $client/$server (or $dir-client/$dir-server); these are the last resort.
HOST_FALLBACKS: dict[str, str] = {"client": "#61afef", "server": "#e5a04f"}
EXTRA_HOST_COLOURS = ("#c678dd", "#56b6c2", "#98c379", "#e06c75")


def resolve(variables: Mapping[str, str], chain: Sequence[str]) -> Color:
    """The first entry of chain that names a defined variable ("$name") or is itself a colour that parses."""
    for item in chain:
        value = variables.get(item[1:]) if item.startswith("$") else item
        if not value:
            continue
        try:
            return Color.parse(value)
        except ColorParseError:
            continue  # e.g. "auto 60%": meaningful to CSS, not a colour on its own
    return GREY


def host_chain(host: str, index: int = 0, spec: str | None = None) -> tuple[str, ...]:
    """The lookup chain for a host's colour: an explicit spec, then $<host>, $dir-<host>, a fixed colour."""
    fallback = HOST_FALLBACKS.get(host, EXTRA_HOST_COLOURS[index % len(EXTRA_HOST_COLOURS)])
    chain = (f"${host}", f"$dir-{host}", fallback)
    return (spec, *chain) if spec else chain


class Palette:
    """Rich styles for one widget, resolved from theme variables and cached until the theme changes."""

    def __init__(self, widget: Widget) -> None:
        self.widget = widget
        self._cache: dict[tuple[str, ...], Style] = {}

    def clear(self) -> None:
        self._cache.clear()

    def background(self) -> Color:
        return self.widget.background_colors[1]

    def color(self, chain: Sequence[str]) -> Color:
        """A solid colour: the chain's colour blended over the widget background."""
        variables = self.widget.app.theme_variables or self.widget.app.get_css_variables()
        return self.background() + resolve(variables, chain)

    def style(self, key: str, chain: Sequence[str], *, bold: bool = False, reverse: bool = False) -> Style:
        """The style for key (a cache key; chain is only read on the first call after a theme change)."""
        cache_key = (key, str(bold), str(reverse))
        style = self._cache.get(cache_key)
        if style is None:
            colour = self.color(chain)
            if reverse:
                style = Style(color=self.background().rich_color, bgcolor=colour.rich_color, bold=bold)
            else:
                style = Style(color=colour.rich_color, bold=bold)
            self._cache[cache_key] = style
        return style

    def bg(self, key: str, chain: Sequence[str]) -> Style:
        """A background-only style (for a highlighted row)."""
        cache_key = ("bg", key)
        style = self._cache.get(cache_key)
        if style is None:
            style = Style(bgcolor=self.color(chain).rich_color)
            self._cache[cache_key] = style
        return style
