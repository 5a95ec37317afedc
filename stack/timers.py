"""One heap of deadlines per host, with lazy cancellation.

Each owner (a connection or a pending request) keeps its live deadlines in a dict `timers` (name ->
deadline). Arming only pushes onto the heap when the new deadline is earlier than what the heap already
holds for that (owner, name), so a retransmission timer restarted on every ACK does not grow the heap;
a popped entry whose deadline no longer matches is re-pushed at the live deadline or dropped.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Protocol


class TimerOwner(Protocol):
    timers: dict[str, int]
    queued: dict[str, int]

    def on_timer(self, name: str, now: int) -> None: ...


class TimerHeap:
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, TimerOwner, str]] = []
        self._counter = itertools.count()

    def arm(self, owner: TimerOwner, name: str, deadline: int) -> None:
        owner.timers[name] = deadline
        queued = owner.queued.get(name)
        if queued is None or deadline < queued:
            owner.queued[name] = deadline
            heapq.heappush(self._heap, (deadline, next(self._counter), owner, name))

    @staticmethod
    def cancel(owner: TimerOwner, name: str) -> bool:
        return owner.timers.pop(name, None) is not None

    def next_deadline(self) -> int | None:
        heap = self._heap
        while heap:
            deadline, _, owner, name = heap[0]
            live = owner.timers.get(name)
            if live == deadline:
                return deadline
            heapq.heappop(heap)
            if owner.queued.get(name) == deadline:
                del owner.queued[name]
            if live is not None and name not in owner.queued:
                owner.queued[name] = live
                heapq.heappush(heap, (live, next(self._counter), owner, name))
        return None

    def pop_due(self, now: int) -> tuple[TimerOwner, str, int] | None:
        """The earliest live timer due at or before now (removed from its owner), or None."""
        deadline = self.next_deadline()
        if deadline is None or deadline > now:
            return None
        _, _, owner, name = heapq.heappop(self._heap)
        owner.queued.pop(name, None)
        del owner.timers[name]
        return owner, name, deadline

    def __len__(self) -> int:
        return len(self._heap)
