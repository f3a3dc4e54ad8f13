"""DelayedCall and the timer heap.

The heap holds tuples ``(when, seq, call)``. ``seq`` comes from one
``itertools.count()`` per queue, so calls due at the same time run in the
order they were scheduled (neither asyncio nor Twisted promise that).
Tuples, not lists: heapq compares tuples about three times faster, which is
most of the cost of running a million timers.

Nothing is ever searched for in the heap. A call points at its live entry
(``call._entry``); an entry whose call points elsewhere is dead. Cancelling
a call just clears that pointer; ``reset`` and ``delay`` push a fresh entry
and point the call at it. Dead entries are dropped when they reach the top,
and the whole heap is compacted once more than half of it is dead, so a
million cancelled timers cost O(log n) each and never pile up.

A call waiting in a plain list rather than the heap (the owner's ready
queue, or the batch of due timers being run) has ``_entry is QUEUED``; the
runner calls it only if that still holds, so cancel and reset need no search
there either. A ready call that is reset moves to the heap.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, Callable

_MIN_COMPACT = 64

# Marks a call that waits in a list outside the heap; see the module docstring.
QUEUED: list = []


class DelayedCall:
    """A call scheduled on a reactor or clock; cancel, reset or delay it before it runs."""

    __slots__ = ("time", "func", "args", "kwargs", "called", "cancelled", "_entry", "_queue", "__weakref__")

    def __init__(self, queue: TimerQueue, when: float, func: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        self.time = when
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.called = False
        self.cancelled = False
        self._entry: tuple | list | None = None
        self._queue = queue

    def active(self) -> bool:
        """True until the call has run or been cancelled."""
        return not (self.called or self.cancelled)

    def get_time(self) -> float:
        """The time at which the call is due."""
        return self.time

    def cancel(self) -> None:
        """Stop the call from running; does nothing if it already ran or was cancelled."""
        if self.called or self.cancelled:
            return
        self.cancelled = True
        entry = self._entry
        self._entry = None
        if entry is not None and entry is not QUEUED:
            self._queue._kill(entry)

    def reset(self, delay: float) -> None:
        """Make the call due ``delay`` seconds from now instead."""
        self._require_active("reset")
        queue = self._queue
        self._move(queue.now() + delay)

    def delay(self, extra: float) -> None:
        """Push the call ``extra`` seconds later than it was due."""
        self._require_active("delay")
        self._move(self.time + extra)

    def _require_active(self, what: str) -> None:
        if self.called:
            raise ValueError(f"cannot {what} a call that already ran")
        if self.cancelled:
            raise ValueError(f"cannot {what} a cancelled call")

    def _move(self, when: float) -> None:
        entry = self._entry
        self._queue._push(when, self)
        # Counted dead only now that the call points at its new entry.
        if entry is not None and entry is not QUEUED:
            self._queue._kill(entry)

    def __repr__(self) -> str:
        func = getattr(self.func, "__qualname__", None) or repr(self.func)
        state = "called" if self.called else "cancelled" if self.cancelled else "pending"
        return f"<DelayedCall {func} at {self.time:.6f} {state}>"


class TimerQueue:
    """A heap of DelayedCalls ordered by (time, scheduling order)."""

    __slots__ = ("heap", "now", "_seq", "_dead")

    def __init__(self, now: Callable[[], float]) -> None:
        self.heap: list[tuple] = []
        self.now = now
        self._seq = itertools.count()
        self._dead = 0

    def call_at(self, when: float, func: Callable[..., Any], args: tuple, kwargs: dict) -> DelayedCall:
        """Schedule ``func(*args, **kwargs)`` at time ``when``; ValueError if ``when`` is NaN."""
        if when != when:
            raise ValueError("a timer's time cannot be NaN")
        call = DelayedCall(self, when, func, args, kwargs)
        call._entry = entry = (when, next(self._seq), call)
        heapq.heappush(self.heap, entry)
        return call

    def _push(self, when: float, call: DelayedCall) -> None:
        if when != when:
            raise ValueError("a timer's time cannot be NaN")
        call.time = when
        call._entry = entry = (when, next(self._seq), call)
        heapq.heappush(self.heap, entry)

    def _kill(self, entry: tuple) -> None:
        """Count ``entry`` as dead (its call no longer points at it)."""
        self._dead += 1
        heap = self.heap
        if self._dead > _MIN_COMPACT and self._dead * 2 > len(heap):
            # In place, so that anyone holding ``self.heap`` sees the result.
            heap[:] = [e for e in heap if e[2]._entry is e]
            heapq.heapify(heap)
            self._dead = 0

    def next_time(self) -> float | None:
        """When the earliest live call is due, or None if there is none."""
        heap = self.heap
        while heap and heap[0][2]._entry is not heap[0]:
            heapq.heappop(heap)
            self._dead -= 1
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> list[DelayedCall]:
        """Remove and return the live calls due at ``now``, earliest first, marked QUEUED."""
        heap = self.heap
        due = []
        pop = heapq.heappop
        while heap and heap[0][0] <= now:
            entry = pop(heap)
            call = entry[2]
            if call._entry is not entry:
                self._dead -= 1
                continue
            call._entry = QUEUED
            due.append(call)
        return due

    def requeue(self, calls: list[DelayedCall]) -> None:
        """Put back calls taken by pop_due but not run (a call before them raised BaseException)."""
        for call in calls:
            if call._entry is QUEUED:
                self._push(call.time, call)

    def pending(self) -> list[DelayedCall]:
        """The live calls, earliest first."""
        return [e[2] for e in sorted(self.heap) if e[2]._entry is e]

    def __len__(self) -> int:
        return len(self.heap) - self._dead
