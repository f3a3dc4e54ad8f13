"""Deferred: a result that is not there yet, and the chain of callbacks waiting for it.

How the runner works
--------------------

A Deferred holds a list of entries, each a 6-tuple ``(callback, args,
kwargs, errback, args, kwargs)``; ``None`` on one side means "pass the result
through". Firing stores the result and walks the list: the current result
picks the side (``type(result) is Failure`` means the errback side), the
chosen function's return value becomes the new result, and an exception it
raises becomes a Failure. The list is walked with a list iterator kept on the
Deferred between runs, so a chain that stops half way resumes where it left
off, entries appended while the chain runs are seen, and nothing is ever
popped from the front.

When a callback returns another Deferred ``inner``:

- if ``inner`` already has a result and is not busy, the result is taken
  (``inner.result`` becomes None, so ``inner`` no longer owns an error) and
  the walk goes on, with no extra frame;
- otherwise the outer Deferred pauses, keeps ``inner`` as its result (that is
  how ``cancel()`` finds what to forward to), and appends a *link* entry to
  ``inner``. When ``inner``'s walk reaches that link it hands its result to
  the outer Deferred and continues with the outer Deferred *in the same loop*:
  ``inner`` goes on an explicit stack and is resumed when the outer one is
  done. ``chain_deferred`` uses the same kind of link. So a chain of any
  length is run by one Python frame; there is no recursion to run out of.

While the loop walks a Deferred (or keeps it on the stack) the Deferred's
``result`` holds the marker ``_BUSY``; the real result lives in a local of
the loop. That marker is the re-entrancy guard: a callback that adds
callbacks to a running Deferred only appends, and the loop already walking
it gets to them. A Deferred that is running, paused or waiting has no result
to hand out yet: callbacks that return it, ``await`` and ``yield`` all wait
for it instead. (A marker in ``result`` rather than a flag of its own saves a
slot to fill in every Deferred, which ``await succeed(x)`` notices.)

Unhandled errors: when a walk ends with a Failure, the Deferred gets a tiny
``_UnhandledError`` object holding it; when a later walk ends with a non-Failure
result (somebody handled it), or the result is handed on, the holder is
emptied. The holder's ``__del__`` logs "Unhandled error in Deferred" if it
still holds a Failure when the Deferred is collected. Only Deferreds that end
with an error pay for the holder, and the Deferred class itself has no
``__del__``, so successful Deferreds are freed at full speed.

Debugging (``set_debugging(True)``, which a ``Reactor(debug=True)`` calls):
each new Deferred gets its holder at once, carrying the stack where the
Deferred was made, and the "Unhandled error" log shows that stack too.
Holders are therefore filled in place (``_hold``) rather than replaced.

``Deferred`` and ``Failure`` are final: the runner recognizes them with
``type(x) is ...``, which is several times cheaper than ``isinstance`` on the
path every callback takes.
"""

from __future__ import annotations

import logging
import traceback
from collections import deque
from types import CoroutineType, GeneratorType, MethodType
from typing import Any, Callable, Generator, Generic, Iterable, Iterator, NoReturn, TypeVar

from .errors import AlreadyCalledError, CancelledError, FailureGroup, FirstError
from .failure import Failure

__all__ = [
    "Deferred",
    "DeferredList",
    "DeferredLock",
    "DeferredQueue",
    "DeferredSemaphore",
    "Failure",
    "fail",
    "gather",
    "get_debugging",
    "maybe_deferred",
    "race",
    "set_debugging",
    "succeed",
]

T = TypeVar("T")

_new = object.__new__

# The coroutine driver's resume function, filled in by reactor.coroutines
# (which imports this module, so it cannot be imported here); Deferred.callback
# hands results straight to it. A one-element list, not a rebound global.
_resume_hook: list[Any] = [None]

# Whether new Deferreds record where they were made; see set_debugging().
_debugging = False


class _Marker:
    """A named sentinel."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


# The callback slot of a link entry; its args are (target, is_chain).
_LINK: Any = _Marker("<link>")

# A canceller may return this to say "I handed the cancellation on and the
# Deferred stays pending": used by coroutine drivers whose coroutine caught
# the CancelledError and went on waiting for something else.
_KEEP_WAITING: Any = _Marker("<keep waiting>")

# ``result`` of a Deferred whose callbacks are being run (see above).
_BUSY: Any = _Marker("<running its callbacks>")

# ``_canceller`` of a Deferred cancelled without a canceller: its producer,
# who does not know about the cancel, may still fire it once, harmlessly.
_FORGIVE_ONE: Any = _Marker("<forgives one late result>")


class _UnhandledError:
    """Holds the Failure a Deferred ended with; logs it if nobody took it before collection."""

    __slots__ = ("failure", "created")

    def __init__(self, failure: Failure | None) -> None:
        self.failure: Failure | None = failure
        self.created: list[traceback.FrameSummary] | None = None

    def __del__(self) -> None:
        failure = self.failure
        if failure is None:
            return
        self.failure = None
        try:
            value = failure.value
            where = ""
            if self.created is not None:
                where = "\nThe Deferred was created at:\n" + "".join(traceback.format_list(self.created)).rstrip("\n")
            logging.getLogger("reactor").error(
                "Unhandled error in Deferred:%s", where, exc_info=(type(value), value, failure.tb)
            )
        except Exception:  # pragma: no cover - logging torn down at interpreter exit
            pass


class Deferred(Generic[T]):
    """A result that is not there yet; add callbacks now, fire it once later."""

    # ``_iter`` is set whenever ``_callbacks`` becomes a list and is read only
    # then. ``_canceller`` is left unset by succeed()/fail(), whose Deferreds
    # are born fired and never need it.
    __slots__ = ("called", "result", "paused", "_callbacks", "_iter", "_canceller", "_debug", "__weakref__")
    called: bool
    result: Any
    paused: int
    _callbacks: list[tuple] | None
    _iter: Iterator[tuple] | None
    _canceller: Callable[[Deferred[Any]], Any] | None
    _debug: _UnhandledError | None

    def __init__(self, canceller: Callable[[Deferred[Any]], Any] | None = None) -> None:
        self.called = False
        self.result = None
        self.paused = 0
        self._callbacks = None
        self._canceller = canceller
        self._debug = None if not _debugging else _creation_holder()

    def __init_subclass__(cls, **kwargs: Any) -> NoReturn:
        raise TypeError("Deferred is final: wrap it rather than subclass it")

    # -- adding callbacks ---------------------------------------------------

    def add_callbacks(
        self,
        callback: Callable[..., Any] | None,
        errback: Callable[..., Any] | None = None,
        callback_args: tuple = (),
        callback_kwargs: dict[str, Any] | None = None,
        errback_args: tuple = (),
        errback_kwargs: dict[str, Any] | None = None,
    ) -> Deferred[Any]:
        """Add a callback and an errback at the same point of the chain; return self."""
        entry = (callback, callback_args, callback_kwargs, errback, errback_args, errback_kwargs)
        cbs = self._callbacks
        if cbs is None:
            self._callbacks = [entry]
            self._iter = None
        else:
            cbs.append(entry)
        if self.called:
            self._run_callbacks()
        return self

    def add_callback(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        """Add ``callback(result, *args, **kwargs)`` for the success side; return self."""
        # add_callbacks inlined: this is the most called method of the class.
        entry = (callback, args, kwargs, None, (), None)
        cbs = self._callbacks
        if cbs is None:
            self._callbacks = [entry]
            self._iter = None
        else:
            cbs.append(entry)
        if self.called:
            self._run_callbacks()
        return self

    def add_errback(self, errback: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[T]:
        """Add ``errback(failure, *args, **kwargs)`` for the error side; return self."""
        entry = (None, (), None, errback, args, kwargs)
        cbs = self._callbacks
        if cbs is None:
            self._callbacks = [entry]
            self._iter = None
        else:
            cbs.append(entry)
        if self.called:
            self._run_callbacks()
        return self

    def add_both(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        """Add ``callback(result_or_failure, *args, **kwargs)`` for both sides; return self."""
        entry = (callback, args, kwargs, callback, args, kwargs)
        cbs = self._callbacks
        if cbs is None:
            self._callbacks = [entry]
            self._iter = None
        else:
            cbs.append(entry)
        if self.called:
            self._run_callbacks()
        return self

    def chain_deferred(self, d: Deferred[Any]) -> Deferred[Any]:
        """Fire ``d`` with this Deferred's result when it comes (this one goes on with None); return self."""
        if d is self:
            raise ValueError("a Deferred cannot be chained to itself")
        link = (d, True)
        return self.add_callbacks(_LINK, _LINK, link, None, link, None)

    def add_timeout(
        self,
        seconds: float,
        clock: Any,
        on_timeout_cancel: Callable[[Any, float], Any] | None = None,
    ) -> Deferred[T]:
        """Cancel this Deferred if it has no result after ``seconds`` on ``clock``; return self.

        The CancelledError of a time-out becomes the builtin TimeoutError;
        ``on_timeout_cancel(result, seconds)``, if given, then gets that
        result and its return value goes on down the chain.
        """
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            self.cancel()

        call = clock.call_later(seconds, expire)

        def settle(result: Any) -> Any:
            if not timed_out:
                call.cancel()
                return result
            if type(result) is Failure and result.check(CancelledError):
                result = Failure(TimeoutError(f"Deferred timed out after {seconds} seconds"))
            if on_timeout_cancel is not None:
                return on_timeout_cancel(result, seconds)
            return result

        return self.add_both(settle)

    # -- firing -------------------------------------------------------------

    def callback(self, result: T | Failure) -> None:
        """Fire with ``result``; raises AlreadyCalledError if already fired."""
        if self.called:
            self._fired_again()
            return
        if type(result) is Deferred:
            raise TypeError("callback() takes a result, not a Deferred; use chain_deferred() to link them")
        self.called = True
        self._canceller = None
        cbs = self._callbacks
        if cbs is None:
            self.result = result
            if type(result) is Failure:
                _hold(self, result)
            return
        if len(cbs) == 1 and self._iter is None and not self.paused and type(result) is not Failure:
            fn = cbs[0][0]
            if type(fn) is MethodType and fn.__func__ is _resume_hook[0]:
                # The only thing waiting is a coroutine driver (``await d``):
                # hand it the result directly; the general runner would do the
                # same with more steps. The driver takes the result over and
                # returns None, as its callback would leave it.
                self._callbacks = None
                self.result = None
                try:
                    fn(result)
                except BaseException:
                    _hold(self, Failure())
                return
        self.result = result
        self._run_callbacks()

    def errback(self, fail: Failure | BaseException | None = None) -> None:
        """Fire with a Failure (from an exception, a Failure, or None for the one being handled)."""
        if fail is None:
            fail = Failure()
        elif type(fail) is not Failure:
            if not isinstance(fail, BaseException):
                raise TypeError(f"errback() takes an exception or a Failure, not {type(fail).__name__}")
            fail = Failure(fail)
        if self.called:
            self._fired_again()
            return
        self.called = True
        self.result = fail
        self._canceller = None
        if self._callbacks is not None:
            self._run_callbacks()
        else:
            _hold(self, fail)

    def _fired_again(self) -> None:
        if getattr(self, "_canceller", None) is _FORGIVE_ONE:
            self._canceller = None
            return
        raise AlreadyCalledError(f"{self!r} was already fired")

    def pause(self) -> None:
        """Stop running callbacks (after the current one) until ``unpause()``."""
        self.paused += 1

    def unpause(self) -> None:
        """Undo one ``pause()``; the last one resumes the callbacks. Does nothing if not paused."""
        if not self.paused:
            return
        self.paused -= 1
        if not self.paused and self.called:
            self._run_callbacks()

    def cancel(self) -> None:
        """Stop waiting: call the canceller, or errback with CancelledError; forward to an inner Deferred."""
        # Walk down to the innermost Deferred being waited on (a loop: chains
        # can be thousands deep); only that one can be cancelled.
        d = self
        while d.called:
            inner = d.result
            if type(inner) is not Deferred:
                return
            d = inner
        canceller = d._canceller
        if canceller is not None and canceller(d) is _KEEP_WAITING:
            return
        if not d.called:
            # errback() inlined, to mark the Deferred forgiving before its
            # callbacks run (one of them may be the producer's late fire).
            failure = Failure(CancelledError())
            d.called = True
            d.result = failure
            d._canceller = _FORGIVE_ONE if canceller is None else None
            if d._callbacks is not None:
                d._run_callbacks()
            else:
                _hold(d, failure)

    # -- the runner ---------------------------------------------------------

    def _run_callbacks(self) -> None:
        """Walk the callbacks of this Deferred and of every Deferred waiting on it, in one loop."""
        busy = _BUSY
        if self.result is busy:
            return
        # Locals for the names the loop touches on every entry.
        failure_type = Failure
        deferred_type = Deferred
        link_marker = _LINK
        current = self
        stack: list[Deferred[Any]] | None = None
        while True:
            result = current.result
            cbs = current._callbacks
            if cbs is not None and not current.paused:
                current.result = busy
                it = current._iter
                if it is None:
                    it = iter(cbs)
                target = None
                for entry in it:
                    if type(result) is failure_type:
                        fn = entry[3]
                        if fn is None:
                            continue
                        args = entry[4]
                        kwargs = entry[5]
                    else:
                        fn = entry[0]
                        if fn is None:
                            continue
                        args = entry[1]
                        kwargs = entry[2]
                    if fn is link_marker:
                        target, is_chain = args
                        if is_chain:
                            if target.called:
                                # Fired by someone else meanwhile: what callback() would do.
                                try:
                                    target._fired_again()
                                    result = None
                                except AlreadyCalledError:
                                    result = failure_type()
                                target = None
                                continue
                            target.called = True
                            target._canceller = None
                        else:
                            target.paused -= 1
                        target.result = result
                        result = None
                        break
                    try:
                        if kwargs:
                            result = fn(result, *args, **kwargs)
                        elif args:
                            result = fn(result, *args)
                        else:
                            result = fn(result)
                    except BaseException:
                        result = failure_type()
                    else:
                        if type(result) is deferred_type:
                            inner = result
                            if inner is current:
                                # (No repr of fn here: nothing in this loop may raise.)
                                result = failure_type(ValueError(
                                    "a callback returned the Deferred it was added to"))
                            elif inner.called and not inner.paused and inner.result is not busy:
                                result = inner.result
                                inner.result = None
                                debug = inner._debug
                                if debug is not None:
                                    debug.failure = None
                            else:
                                current.paused += 1
                                continuation = (current, False)
                                entry = (link_marker, continuation, None, link_marker, continuation, None)
                                icbs = inner._callbacks
                                if icbs is None:
                                    inner._callbacks = [entry]
                                    inner._iter = None
                                else:
                                    icbs.append(entry)
                                break
                    if current.paused:
                        break
                else:
                    # Every callback ran: drop them (and what they reference).
                    it = None
                    current._callbacks = None
                current._iter = it
                if target is not None:
                    # ``current`` stays busy: it waits on the stack for the
                    # Deferred it handed its result to.
                    if stack is None:
                        stack = [current]
                    else:
                        stack.append(current)
                    current = target
                    continue
                current.result = result
            # Done with ``current`` for now: note whether it ends with an error.
            debug = current._debug
            if type(result) is failure_type:
                if debug is None:
                    current._debug = _UnhandledError(result)
                else:
                    debug.failure = result
            elif debug is not None:
                debug.failure = None
            if not stack:
                return
            current = stack.pop()
            # It handed its result on; it goes on from None.
            current.result = None

    # -- coroutines -----------------------------------------------------------

    def __await__(self) -> Generator[Any, Any, T]:
        """Wait for the result inside a coroutine run by ensure_deferred (or inline_callbacks).

        Like ``yield d`` (and Twisted), this takes the result over: the
        Deferred is left holding None, and an error it held counts as handled.
        """
        # Fast path: a Deferred with a result hands it over without yielding
        # to the driver at all.
        if self.called and not self.paused:
            result = self.result
            if result is not _BUSY:
                self.result = None
                # A Deferred left holding a Failure always has a holder, so
                # without one the result is a plain value.
                debug = self._debug
                if debug is None:
                    return result
                if type(result) is Failure:
                    debug.failure = None
                    raise result.value.with_traceback(result.tb)
                return result
        # The driver sends the result back in, or throws the error in.
        return (yield self)

    __iter__ = __await__

    # -- asyncio (reactor.aio, imported only when used) ---------------------

    @staticmethod
    def from_future(future: Any) -> Deferred[Any]:
        """A Deferred of an asyncio future's result; cancelling either side cancels the other."""
        from .aio import from_future

        return from_future(future)

    def as_future(self, loop: Any = None) -> Any:
        """An asyncio future of this Deferred's result (``loop``: default the running one); cancels both ways."""
        from .aio import as_future

        return as_future(self, loop)

    def __repr__(self) -> str:
        if not self.called:
            state = "pending"
        elif type(self.result) is Deferred:
            state = f"waiting on Deferred at {id(self.result):#x}"
        else:
            state = f"current result: {self.result!r}"
        return f"<Deferred at {id(self):#x} {state}>"


def set_debugging(on: bool) -> None:
    """Record where each new Deferred is made, for the "Unhandled error" log (process-wide; slows Deferreds)."""
    global _debugging
    _debugging = bool(on)


def get_debugging() -> bool:
    """Whether new Deferreds record where they are made."""
    return _debugging


def _creation_holder() -> _UnhandledError:
    holder = _UnhandledError(None)
    # Drop the two frames of our own: this function and Deferred.__init__.
    holder.created = traceback.extract_stack()[:-2]
    return holder


def _hold(d: Deferred[Any], failure: Failure) -> None:
    """Note that ``d`` ends with ``failure``, keeping a debugging holder if it has one."""
    debug = d._debug
    if debug is None:
        d._debug = _UnhandledError(failure)
    else:
        debug.failure = failure


def succeed(result: T = None) -> Deferred[T]:  # type: ignore[assignment]
    """A Deferred already fired with ``result``."""
    # Skips __init__: this is on the path of every ``await succeed(x)``.
    d = _new(Deferred)
    d.called = True
    d.result = result
    d.paused = 0
    d._callbacks = None
    d._debug = None
    return d


def fail(exc: BaseException | Failure | None = None) -> Deferred[Any]:
    """A Deferred already failed with ``exc`` (an exception, a Failure, or None for the current one)."""
    if exc is None:
        failure = Failure()
    elif isinstance(exc, Failure):
        failure = exc
    else:
        failure = Failure(exc)
    d = _new(Deferred)
    d.called = True
    d.result = failure
    d.paused = 0
    d._callbacks = None
    d._debug = _UnhandledError(failure)
    if _debugging:
        d._debug.created = traceback.extract_stack()[:-1]
    return d


def maybe_deferred(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
    """Call ``fn`` and return its result as a Deferred (errors become a failed one, coroutines are run)."""
    try:
        result = fn(*args, **kwargs)
    except BaseException:
        return fail()
    if type(result) is Deferred:
        return result
    if type(result) is Failure:
        return fail(result)
    if type(result) is CoroutineType:
        from .coroutines import ensure_deferred

        return ensure_deferred(result)
    return succeed(result)


def _as_deferred(x: Any) -> Deferred[Any]:
    if type(x) is Deferred:
        return x
    if isinstance(x, (CoroutineType, GeneratorType)) or hasattr(x, "__await__"):
        from .coroutines import ensure_deferred

        return ensure_deferred(x)
    raise TypeError(f"expected a Deferred or a coroutine, got {type(x).__name__}")


def _cancel_all(deferreds: list[Deferred[Any]]) -> None:
    for d in deferreds:
        d.cancel()


def gather(*deferreds: Any) -> Deferred[list[Any]]:
    """A Deferred of the list of results in order, or of the first failure; cancelling it cancels all."""
    ds = [_as_deferred(x) for x in deferreds]
    results: list[Any] = [None] * len(ds)
    pending = len(ds)
    out: Deferred[list[Any]] = Deferred(lambda _: _cancel_all(ds))

    def settle(result: Any, index: int) -> Any:
        nonlocal pending
        if type(result) is Failure:
            if not out.called:
                out.errback(result)
            return None  # consumed: gather reports it, the input does not
        results[index] = result
        pending -= 1
        if not pending and not out.called:
            out.callback(results)
        return result

    if not ds:
        out.callback(results)
    for index, d in enumerate(ds):
        d.add_both(settle, index)
    return out


def race(*deferreds: Any) -> Deferred[tuple[int, Any]]:
    """A Deferred of ``(index, result)`` of the first success (others cancelled); FailureGroup if all fail."""
    ds = [_as_deferred(x) for x in deferreds]
    failures: list[Any] = [None] * len(ds)
    failed = 0
    cancelling = False

    def cancel(_: Deferred[Any]) -> None:
        nonlocal cancelling
        cancelling = True
        _cancel_all(ds)

    out: Deferred[tuple[int, Any]] = Deferred(cancel)

    def settle(result: Any, index: int) -> Any:
        nonlocal failed
        if type(result) is Failure:
            failures[index] = result
            failed += 1
            # Cancelling the race makes it fail with CancelledError (from
            # Deferred.cancel), not with a group of the inputs' cancellations.
            if failed == len(ds) and not out.called and not cancelling:
                out.errback(FailureGroup(failures))
            return None
        if not out.called:
            out.callback((index, result))
            for other in ds:
                if other is not ds[index]:
                    other.cancel()
        return result

    if not ds:
        out.errback(FailureGroup([]))
    for index, d in enumerate(ds):
        d.add_both(settle, index)
    return out


def DeferredList(  # noqa: N802 - the contract's name, after Twisted's class
    deferreds: Iterable[Deferred[Any]],
    fire_on_one_callback: bool = False,
    fire_on_one_errback: bool = False,
    consume_errors: bool = False,
) -> Deferred[Any]:
    """A Deferred of ``[(success, result), ...]`` for ``deferreds``, in order; cancelling it cancels them.

    With ``fire_on_one_callback`` it fires with ``(result, index)`` at the
    first success; with ``fire_on_one_errback`` it fails with FirstError at
    the first failure; ``consume_errors`` makes the inputs' failures handled.
    """
    ds = list(deferreds)
    results: list[Any] = [None] * len(ds)
    finished = 0
    out: Deferred[Any] = Deferred(lambda _: _cancel_all(ds))

    def settle(result: Any, index: int) -> Any:
        nonlocal finished
        ok = type(result) is not Failure
        results[index] = (ok, result)
        finished += 1
        if not out.called:
            if ok and fire_on_one_callback:
                out.callback((result, index))
            elif not ok and fire_on_one_errback:
                out.errback(FirstError(result, index))
            elif finished == len(ds):
                out.callback(results)
        if not ok and consume_errors:
            return None
        return result

    if not ds and not fire_on_one_callback:
        out.callback(results)
    for index, d in enumerate(ds):
        d.add_both(settle, index)
    return out


# -- coordination: lock, semaphore, queue ------------------------------------------


class DeferredSemaphore:
    """At most ``tokens`` holders at a time; ``acquire()`` returns a Deferred fired when it is your turn."""

    def __init__(self, tokens: int) -> None:
        if tokens < 1:
            raise ValueError(f"a semaphore needs at least one token, not {tokens!r}")
        self.limit = tokens
        self.tokens = tokens
        self._waiting: deque[Deferred[Any]] = deque()

    def acquire(self) -> Deferred[Any]:
        """A Deferred fired with self once a token is ours; cancelling it gives up the place in line."""
        if self.tokens:
            self.tokens -= 1
            return succeed(self)
        d: Deferred[Any] = Deferred(self._waiting.remove)
        self._waiting.append(d)
        return d

    def release(self) -> None:
        """Give a token back (to the first in line, if any); raises RuntimeError if none is out."""
        if self._waiting:
            self._waiting.popleft().callback(self)
        elif self.tokens < self.limit:
            self.tokens += 1
        else:
            raise RuntimeError(f"{type(self).__name__}.release() called more often than acquire()")

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        """Acquire, run ``fn(*args, **kwargs)`` (maybe_deferred-style), release; a Deferred of its result."""

        def call(_: Any) -> Deferred[Any]:
            return maybe_deferred(fn, *args, **kwargs).add_both(release)

        def release(result: Any) -> Any:
            self.release()
            return result

        return self.acquire().add_callback(call)

    def __aenter__(self) -> Deferred[Any]:
        """``async with sem:`` acquires..."""
        return self.acquire()

    def __aexit__(self, *exc_info: Any) -> Deferred[bool]:
        """...and releases, letting any exception through."""
        self.release()
        return succeed(False)


class DeferredLock(DeferredSemaphore):
    """A lock for callback code: ``acquire()`` returns a Deferred fired when the lock is ours."""

    def __init__(self) -> None:
        super().__init__(1)

    @property
    def locked(self) -> bool:
        """Whether somebody holds the lock."""
        return not self.tokens


class DeferredQueue:
    """A queue whose ``get()`` returns a Deferred; ``size`` bounds the items, ``backlog`` the waiting gets."""

    def __init__(self, size: int | None = None, backlog: int | None = None) -> None:
        self.size = size
        self.backlog = backlog
        self.pending: deque[Any] = deque()
        self.waiting: deque[Deferred[Any]] = deque()

    def put(self, obj: Any) -> None:
        """Hand ``obj`` to the first waiting get, or keep it; raises OverflowError if the queue is full."""
        if self.waiting:
            self.waiting.popleft().callback(obj)
        elif self.size is None or len(self.pending) < self.size:
            self.pending.append(obj)
        else:
            raise OverflowError(f"queue is full ({self.size} items)")

    def get(self) -> Deferred[Any]:
        """A Deferred of the next item; raises OverflowError if ``backlog`` gets already wait."""
        if self.pending:
            return succeed(self.pending.popleft())
        if self.backlog is not None and len(self.waiting) >= self.backlog:
            raise OverflowError(f"too many gets waiting ({self.backlog})")
        d: Deferred[Any] = Deferred(self.waiting.remove)
        self.waiting.append(d)
        return d
