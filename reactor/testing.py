"""Test kits: a fake clock, a recording transport, an in-memory connection.

Everything here is public and meant for users' own tests as much as ours:
protocols are tested by feeding bytes and reading what they wrote, and
anything that takes a clock (``add_timeout``, ``LoopingCall``, ``sleep``,
``ReconnectingClientFactory``) is driven by ``Clock.advance`` instead of
real time.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from .timers import QUEUED, DelayedCall, TimerQueue


class Clock:
    """A manual clock: time moves only when ``advance`` or ``pump`` says so."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._timers = TimerQueue(self.seconds)

    def seconds(self) -> float:
        """The current fake time."""
        return self._now

    def call_later(self, delay: float, func: Callable[..., Any], *args: Any, **kwargs: Any) -> DelayedCall:
        """Schedule ``func(*args, **kwargs)`` ``delay`` fake seconds from now."""
        return self._timers.call_at(self._now + delay, func, args, kwargs)

    def call_soon(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> DelayedCall:
        """Schedule ``func`` for the next ``advance`` (even ``advance(0)``)."""
        return self._timers.call_at(self._now, func, args, kwargs)

    def advance(self, amount: float = 0.0) -> None:
        """Move time forward and run every call due by then, earliest first.

        Calls scheduled by those calls run too if they are due; an exception
        from a call propagates to the test, as Twisted's Clock does.
        """
        if amount < 0:
            raise ValueError("time cannot go backwards")
        self._now += amount
        timers = self._timers
        while True:
            due = timers.pop_due(self._now)
            if not due:
                return
            for index, call in enumerate(due):
                if call._entry is not QUEUED:
                    continue
                call._entry = None
                call.called = True
                try:
                    call.func(*call.args, **call.kwargs)
                except BaseException:
                    # Put the rest back so one failing call loses no others.
                    for rest in due[index + 1:]:
                        if rest._entry is QUEUED:
                            timers._push(rest.time, rest)
                    raise

    def pump(self, timings: Iterable[float]) -> None:
        """Advance by each amount in turn."""
        for amount in timings:
            self.advance(amount)

    def get_delayed_calls(self) -> list[DelayedCall]:
        """The calls still pending, earliest first."""
        return self._timers.pending()
