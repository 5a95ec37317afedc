"""The lab's clocks. Stack time is integer microseconds; the stack itself never reads a clock.

VirtualClock jumps straight to the next event (tests, headless demos: a 2-hour keepalive costs nothing).
ScaledClock maps the wall clock onto stack time at a speed factor for the TUI: pause, resume, 0.1x-1000x,
and jumps forward when the user steps to the next event.
"""

from __future__ import annotations

import time
from collections.abc import Callable

SEC = 1_000_000
MIN_SPEED = 0.1
MAX_SPEED = 1000.0


class VirtualClock:
    """Time moves only when the lab moves it."""

    realtime = False

    def __init__(self, start: int = 0) -> None:
        self._now = start
        self.paused = False
        self.speed = 1.0

    def now(self) -> int:
        return self._now

    def jump(self, to: int) -> None:
        if to < self._now:
            raise ValueError(f"the clock cannot go back from {self._now} to {to} us")
        self._now = to


class ScaledClock:
    """Real time scaled by `speed`, starting paused or running."""

    realtime = True

    def __init__(self, speed: float = 1.0, *, paused: bool = False, wall: Callable[[], float] | None = None):
        self._wall = wall or time.monotonic
        self.speed = self._check_speed(speed)
        self._base_stack = 0
        self._base_wall = self._wall()
        self.paused = paused

    @staticmethod
    def _check_speed(speed: float) -> float:
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise ValueError(f"speed must be between {MIN_SPEED}x and {MAX_SPEED:g}x, got {speed}")
        return speed

    def now(self) -> int:
        if self.paused:
            return self._base_stack
        return self._base_stack + int((self._wall() - self._base_wall) * self.speed * SEC)

    def _rebase(self) -> None:
        self._base_stack = self.now()
        self._base_wall = self._wall()

    def pause(self) -> None:
        if not self.paused:
            self._rebase()
            self.paused = True

    def resume(self) -> None:
        if self.paused:
            self._base_wall = self._wall()
            self.paused = False

    def set_speed(self, speed: float) -> None:
        self._rebase()
        self.speed = self._check_speed(speed)

    def jump(self, to: int) -> None:
        """Move stack time forward to `to` (step to the next event, skip to the next timer)."""
        current = self.now()
        if to < current:
            raise ValueError(f"the clock cannot go back from {current} to {to} us")
        self._base_stack = to
        self._base_wall = self._wall()
