"""Time-driven tasks: LoopingCall and sleep, on any clock (a Reactor or testing.Clock).

LoopingCall keeps to a fixed grid of ticks ``start + k * interval``. After
each call it schedules the next one for the first tick after *now*, so a
call that overran, or a clock that stalled, skips the ticks it missed rather
than firing them in a burst. ``with_count`` passes the function how many
ticks went by since its previous call, so the skipped ones are counted.
Tick numbers are integers worked out from the elapsed time, which keeps
floating-point drift from adding up over a long run.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Protocol

from .defer import Deferred, Failure, maybe_deferred
from .timers import DelayedCall

__all__ = ["ClockLike", "LoopingCall", "sleep"]

# Calls are scheduled _EARLY intervals before their tick, and ticks are found
# with floor(elapsed / interval + _TICK_SLACK): a clock whose time is a sum of
# rounded steps (0.1 + 0.1 + ...) then never runs a call one step late, and a
# call that runs a hair early still counts as on its tick.
_EARLY = 1e-7
_TICK_SLACK = 1e-6


class ClockLike(Protocol):
    """What LoopingCall, sleep and add_timeout need of a clock."""

    def seconds(self) -> float:
        """The current time."""

    def call_later(self, delay: float, func: Callable[..., Any], *args: Any, **kwargs: Any) -> DelayedCall:
        """Schedule ``func(*args, **kwargs)`` after ``delay`` seconds."""


class LoopingCall:
    """Call ``fn(*args, **kwargs)`` every ``interval`` seconds until stopped."""

    def __init__(self, clock: ClockLike, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.clock = clock
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.running = False
        self.interval: float | None = None
        self.call: DelayedCall | None = None
        self._deferred: Deferred[LoopingCall] | None = None
        self._counting = False
        self._start_time = 0.0
        self._last_tick = 0

    @classmethod
    def with_count(cls, clock: ClockLike, fn: Callable[[int], Any]) -> LoopingCall:
        """A LoopingCall that calls ``fn(count)``, count being the intervals passed since its last call."""
        looping = cls(clock, fn)
        looping._counting = True
        return looping

    def start(self, interval: float, now: bool = True) -> Deferred[LoopingCall]:
        """Start calling; the Deferred fires with self on stop(), or fails with what ``fn`` raised.

        With ``now`` the first call happens at once, else after one interval.
        Cancelling the Deferred stops the loop.
        """
        if self.running:
            raise RuntimeError("this LoopingCall is already running")
        if interval < 0:
            raise ValueError(f"interval must be >= 0, not {interval!r}")
        self.running = True
        self.interval = interval
        d: Deferred[LoopingCall] = Deferred(self._cancel)
        self._deferred = d
        self._start_time = self.clock.seconds()
        if now:
            self._last_tick = -1
            self._run()
        else:
            self._last_tick = 0
            self._schedule(self._start_time)
        return d

    def stop(self) -> None:
        """Stop calling; start()'s Deferred fires with self (after a pending call's Deferred, if any)."""
        if not self.running:
            raise RuntimeError("this LoopingCall is not running")
        self.running = False
        call = self.call
        if call is not None:
            self.call = None
            call.cancel()
            self._fire()

    def _cancel(self, _: Deferred[Any]) -> None:
        self.running = False
        self._deferred = None
        call = self.call
        if call is not None:
            self.call = None
            call.cancel()

    def _tick(self, now: float) -> int:
        return math.floor((now - self._start_time) / self.interval + _TICK_SLACK)  # type: ignore[operator]

    def _run(self) -> None:
        self.call = None
        if self._counting:
            if self.interval:
                tick = self._tick(self.clock.seconds())
                count = max(tick - self._last_tick, 1)
                self._last_tick = tick
            else:
                count = 1
            d = maybe_deferred(self.fn, count)
        else:
            d = maybe_deferred(self.fn, *self.args, **self.kwargs)
        d.add_callbacks(self._done, self._failed)

    def _done(self, _: Any) -> None:
        if self.running:
            self._schedule(self.clock.seconds())
        else:
            self._fire()

    def _failed(self, failure: Failure) -> Failure | None:
        self.running = False
        d, self._deferred = self._deferred, None
        if d is None:
            # Cancelled meanwhile: nobody is listening, so leave it unhandled (and logged).
            return failure
        d.errback(failure)
        return None

    def _fire(self) -> None:
        d, self._deferred = self._deferred, None
        if d is not None:
            d.callback(self)

    def _schedule(self, now: float) -> None:
        interval = self.interval
        if interval:
            due = self._start_time + (self._tick(now) + 1 - _EARLY) * interval
            delay = max(due - now, 0.0)
        else:
            delay = 0.0
        self.call = self.clock.call_later(delay, self._run)

    def __repr__(self) -> str:
        fn = getattr(self.fn, "__qualname__", None) or repr(self.fn)
        state = f"every {self.interval}s" if self.running else "stopped"
        return f"<LoopingCall {fn} {state}>"


def sleep(clock: ClockLike, seconds: float) -> Deferred[None]:
    """A Deferred that fires with None after ``seconds`` on ``clock``; cancelling it cancels the timer."""
    d: Deferred[None] = Deferred(lambda _: call.cancel())
    call = clock.call_later(seconds, d.callback, None)
    return d
