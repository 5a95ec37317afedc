"""Step through a scenario: forward one narration at a time, or back to any step by replaying from scratch.

The UI codes against this interface:

    player = Player(scenario, lang="zh", seed=1)
    player.on_lab_replaced = lambda lab: ...   # re-subscribe after goto()
    player.steps[i].title, player.steps[i].narration
    while player.next(): ...                   # run the next step; False once finished
    player.goto(3)                             # a NEW Lab with steps 0..2 replayed (same bytes every time)
    player.index, player.done, player.results, player.autoplay

Going back cannot undo packets, so `goto(i)` builds a fresh Lab with the same seed and replays steps
< i; every scenario is deterministic, so the replayed lab is the same lab the viewer saw.

    Player(scenario, link="tun")               # every lab through the kernel (virtual time; needs root)
    with Player(...) as player: ...            # close() removes the lab's namespace (also on goto)

With link "tun" each lab holds a private network namespace: `goto` removes the old lab's once the new one
is built, and `close()` (or the context manager) removes the last one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from ..lab import Lab
from .interpreter import CheckResult, Interpreter
from .model import Scenario, pick


@dataclass(frozen=True, slots=True)
class PlayerStep:
    """One step as the viewer sees it, in the player's language."""

    title: str
    narration: str
    line: int  # where the step starts in the scenario file
    pause: bool  # autoplay should wait for the viewer after this step


class Player:
    """Runs `scenario` step by step on a fresh seeded Lab (virtual clock) on `link` ("memory" or "tun")."""

    def __init__(
        self,
        scenario: Scenario | str | os.PathLike[str],
        *,
        lang: str = "en",
        seed: int = 1,
        link: str = "memory",
    ) -> None:
        """Raises LabError (PrivilegeError for "tun" without root) if the first lab cannot be built."""
        if not isinstance(scenario, Scenario):
            from . import load

            scenario = load(os.fspath(scenario))
        self.scenario = scenario
        self.lang = lang
        self.seed = seed
        self.link = link
        self.autoplay = False
        self.on_lab_replaced: Callable[[Lab], None] | None = None
        self.steps: Sequence[PlayerStep] = [
            PlayerStep(pick(s.title, lang), pick(s.narration, lang), s.line, s.pause) for s in scenario.steps
        ]
        self.index = 0
        self.lab, self._interpreter = self._fresh()

    def _fresh(self) -> tuple[Lab, Interpreter]:
        lab = Lab(seed=self.seed, link=self.link, virtual_time=True)
        return lab, Interpreter(self.scenario, lab, self.lang)

    def close(self) -> None:
        """Stop watching the lab and remove what it holds outside the process (a tun link's namespace).
        Idempotent."""
        self._interpreter.close()
        self.lab.close_link()

    def __enter__(self) -> Player:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def title(self) -> str:
        return self.scenario.title_in(self.lang)

    @property
    def description(self) -> str:
        return self.scenario.description_in(self.lang)

    @property
    def done(self) -> bool:
        return self.index >= len(self.steps)

    @property
    def results(self) -> list[CheckResult]:
        """The checks made so far (PASS and FAIL), in order."""
        return list(self._interpreter.results)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self._interpreter.results)

    @property
    def wants_pause(self) -> bool:
        """The step just done asks autoplay to wait for the viewer (a `pause` line)."""
        return self.index > 0 and self.steps[self.index - 1].pause

    def next(self) -> bool:
        """Run the next step; False (and nothing done) when every step has run."""
        if self.done:
            return False
        self._interpreter.run_step(self.index)
        self.index += 1
        return True

    def goto(self, index: int) -> None:
        """Rebuild the lab from scratch and replay steps 0..index-1; then call on_lab_replaced(lab)."""
        index = max(0, min(index, len(self.steps)))
        fresh = self._fresh()  # built first: if it cannot be, the current lab stays as it is
        self.close()
        self.lab, self._interpreter = fresh
        self.index = 0
        while self.index < index:
            self.next()
        if self.on_lab_replaced is not None:
            self.on_lab_replaced(self.lab)

    def run_to_end(self) -> list[CheckResult]:
        """Run every remaining step; the results of all checks."""
        while self.next():
            pass
        return self.results
