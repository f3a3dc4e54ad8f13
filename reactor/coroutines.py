"""Run generator coroutines (``yield d``) and ``async def`` coroutines (``await d``) on Deferreds.

One driver serves both. It calls ``coro.send(value)`` (or ``coro.throw``
with the exception of a Failure) and looks at what comes back:

- a Deferred that already has a result: take the result and go round the
  loop again. A long run of fired Deferreds is a loop in one frame, never a
  recursion, and costs no frame per step;
- a Deferred without one: add a callback that resumes the driver, and return;
- in a generator only: a coroutine or other awaitable is wrapped with
  ``ensure_deferred``; any other value is sent straight back;
- in an ``async def``, anything else is an error (TypeError thrown in at the
  ``await``): foreign awaitables such as asyncio futures are ``reactor.aio``'s job.

``await d`` on a Deferred with a result does not even reach the driver:
``Deferred.__await__`` returns the result at once (see defer.py).

When a coroutine finishes and the only thing waiting on its Deferred is the
driver of another coroutine (``x = yield child()`` or ``await child_d``), the
driver goes on with the parent in the same loop instead of firing the
Deferred and letting its callback re-enter. The effect is the one firing
would have, but a cascade of thousands of nested coroutines finishing at once
uses no stack.

Cancelling the Deferred of a coroutine cancels the Deferred it is waiting on,
so the coroutine sees CancelledError where it waits. If it catches that and
goes on waiting for something else, its Deferred stays pending and fires with
whatever the coroutine finally returns or raises.
"""

from __future__ import annotations

import functools
from collections.abc import Coroutine
from types import CoroutineType, GeneratorType, MethodType
from typing import Any, Callable, Generator, TypeVar, cast

from .defer import _BUSY, _KEEP_WAITING, Deferred, Failure, _resume_hook

__all__ = ["ensure_deferred", "inline_callbacks"]

T = TypeVar("T")


class _Driver:
    """Steps one coroutine or generator, and owns the Deferred of its result."""

    __slots__ = ("coro", "is_generator", "deferred", "waiting", "entry")

    def __init__(self, coro: Any, is_generator: bool) -> None:
        self.coro = coro
        self.is_generator = is_generator
        self.deferred: Deferred[Any] = Deferred(self._cancel)
        # The Deferred the coroutine waits on, while it waits.
        self.waiting: Deferred[Any] | None = None
        # The callback entry (see defer.py) put on each Deferred waited on,
        # made once: a tuple is immutable, so every wait can share it. Its
        # bound method makes a cycle, broken when the coroutine ends.
        resume = self._resume
        self.entry: tuple | None = (resume, (), None, resume, (), None)

    def _resume(self, value: Any) -> None:
        """Resume the coroutine with ``value`` (a Failure is thrown in) until it waits or ends."""
        failed = type(value) is Failure
        driver = self
        driver.waiting = None
        coro = self.coro
        send = coro.send
        while True:
            try:
                if failed:
                    failed = False
                    yielded = coro.throw(value.value.with_traceback(value.tb))
                else:
                    yielded = send(value)
            except StopIteration as stop:
                value = stop.value
                failed = False
            except BaseException:
                value = Failure()
                failed = True
            else:
                if type(yielded) is not Deferred:
                    if not driver.is_generator:
                        value = _not_awaitable(yielded)
                        failed = True
                        continue
                    if not _is_awaitable(yielded):
                        value = yielded
                        continue
                    yielded = ensure_deferred(yielded)
                if yielded.called:
                    if not yielded.paused:
                        value = yielded.result
                        if value is not _BUSY:
                            yielded.result = None
                            if type(value) is Failure:
                                failed = True
                                debug = yielded._debug
                                if debug is not None:
                                    debug.failure = None
                            continue
                    driver.waiting = yielded
                    yielded.add_both(driver.entry[0])  # type: ignore[index]
                    return
                # Pending: wait for it. add_both() inlined, as this runs at
                # every wait and the Deferred cannot run callbacks now.
                driver.waiting = yielded
                entry = driver.entry
                cbs = yielded._callbacks
                if cbs is None:
                    yielded._callbacks = [entry]
                    yielded._iter = None
                else:
                    cbs.append(entry)
                return
            # The coroutine ended with ``value``.
            driver.coro = None
            driver.entry = None
            out = driver.deferred
            cbs = out._callbacks
            if (not out.called and not out.paused and cbs is not None and len(cbs) == 1
                    and type(value) is not Deferred):
                fn = cbs[0][0]
                if type(fn) is MethodType and fn.__func__ is _Driver._resume:
                    # The parent's driver is all that waits: go on with it
                    # here, as out.callback(value) -> parent._resume would.
                    out.called = True
                    out.result = None
                    out._canceller = None
                    out._callbacks = None
                    driver = cast(_Driver, fn.__self__)
                    driver.waiting = None
                    coro = driver.coro
                    send = coro.send
                    continue
            driver._settle(value, failed)
            return

    def _settle(self, value: Any, failed: bool) -> None:
        out = self.deferred
        if out.called:
            # Cancelled while the coroutine itself was running (it cancelled
            # its own Deferred): the CancelledError was delivered already.
            return
        if failed:
            out.errback(value)
        elif type(value) is Deferred:
            value.chain_deferred(out)
        else:
            out.callback(value)

    def _cancel(self, out: Deferred[Any]) -> Any:
        if self.waiting is None:
            return None
        # Cancel the Deferred at the bottom of the nest: below a coroutine
        # waiting on a coroutine waiting on ... A loop, not a cancel() per
        # level, which would recurse; the levels in between would only pass
        # the cancel down anyway, and the CancelledError climbs back up through
        # them as an ordinary result.
        bottom = self.waiting
        while True:
            if bottom.called:
                inner = bottom.result
                if type(inner) is not Deferred:
                    break
                bottom = inner
                continue
            canceller = bottom._canceller
            if type(canceller) is not MethodType or canceller.__func__ is not _Driver._cancel:
                break
            below = cast(_Driver, canceller.__self__).waiting
            if below is None:
                break
            bottom = below
        bottom.cancel()
        if out.called:
            return None
        # The coroutine caught the CancelledError (or the Deferred it waits
        # on ignored the cancel): its Deferred fires when the coroutine ends.
        return _KEEP_WAITING


_resume_hook[0] = _Driver._resume


def _is_awaitable(x: Any) -> bool:
    return type(x) is CoroutineType or isinstance(x, Coroutine) or hasattr(type(x), "__await__")


def _not_awaitable(x: Any) -> Failure:
    # The type's name, not a repr: the driver loop must not run user code that may raise.
    kind = type(x)
    return Failure(TypeError(
        f"ensure_deferred can only await Deferreds and coroutines that await them,"
        f" not {kind.__module__}.{kind.__qualname__} (use reactor.aio to await asyncio futures)"))


def _run(coro: Any, is_generator: bool) -> Deferred[Any]:
    driver = _Driver(coro, is_generator)
    out = driver.deferred
    driver._resume(None)
    return out


async def _await(awaitable: Any) -> Any:
    return await awaitable


def ensure_deferred(coro: Any) -> Deferred[Any]:
    """Run a coroutine (or generator coroutine); return a Deferred of its result. A Deferred is returned as is."""
    kind = type(coro)
    if kind is Deferred:
        return coro
    if kind is CoroutineType:
        return _run(coro, False)
    if kind is GeneratorType:
        return _run(coro, True)
    if isinstance(coro, Coroutine):
        return _run(coro, False)
    if hasattr(kind, "__await__"):
        return _run(_await(coro), False)
    raise TypeError(f"ensure_deferred expects a coroutine, a generator or a Deferred, not {kind.__name__}")


def inline_callbacks(fn: Callable[..., Generator[Any, Any, T]]) -> Callable[..., Deferred[T]]:
    """Decorate a generator function: ``x = yield d`` waits for d; calls return a Deferred of its return value."""

    @functools.wraps(fn)
    def run_inline(*args: Any, **kwargs: Any) -> Deferred[T]:
        gen = fn(*args, **kwargs)
        if type(gen) is not GeneratorType:
            raise TypeError(f"inline_callbacks needs a generator function; {fn!r} returned {gen!r}")
        return _run(gen, True)

    return run_inline
