"""inline_callbacks, ensure_deferred and ``await d``."""

from __future__ import annotations

import asyncio
import gc
import inspect
import types

import pytest

from reactor.coroutines import ensure_deferred, inline_callbacks
from reactor.defer import Deferred, Failure, fail, succeed
from reactor.errors import CancelledError
from reactor.testing import failure_result_of, success_result_of


class Boom(Exception):
    pass


# -- inline_callbacks ------------------------------------------------------------

def test_inline_callbacks_returns_a_deferred_of_the_return_value():
    @inline_callbacks
    def work(a, b=0):
        x = yield succeed(a)
        y = yield succeed(b)
        return x + y

    d = work(1, b=2)
    assert type(d) is Deferred
    assert success_result_of(d) == 3
    assert work.__name__ == "work"


def test_inline_callbacks_waits_for_unfired_deferreds():
    waiting = Deferred()
    steps = []

    @inline_callbacks
    def work():
        steps.append("start")
        x = yield waiting
        steps.append(x)
        return x * 2

    d = work()
    assert steps == ["start"] and not d.called
    waiting.callback(21)
    assert steps == ["start", 21]
    assert success_result_of(d) == 42
    assert waiting.result is None  # the generator took it


def test_yielded_failure_is_raised_in_the_generator():
    waiting = Deferred()

    @inline_callbacks
    def work():
        try:
            yield waiting
        except Boom as e:
            return f"caught {e}"

    d = work()
    waiting.errback(Boom("x"))
    assert success_result_of(d) == "caught x"


def test_yielded_fired_failure_is_raised_in_the_generator():
    @inline_callbacks
    def work():
        try:
            yield fail(Boom())
        except Boom:
            return "caught"

    assert success_result_of(work()) == "caught"


def test_uncaught_exception_fails_the_deferred():
    @inline_callbacks
    def work():
        yield succeed(1)
        raise Boom("out")

    failure = failure_result_of(work(), Boom)
    assert "work" in failure.get_traceback()


def test_exception_before_first_yield_fails_the_deferred():
    @inline_callbacks
    def work():
        raise Boom()
        yield  # pragma: no cover

    failure_result_of(work(), Boom)


def test_plain_values_are_sent_straight_back():
    @inline_callbacks
    def work():
        a = yield 1
        b = yield "two"
        c = yield None
        g = yield (x for x in ())  # a generator is a plain value here
        f = yield Failure(Boom())  # so is a Failure
        return a, b, c, type(g).__name__, type(f).__name__

    assert success_result_of(work()) == (1, "two", None, "generator", "Failure")


def test_yielding_a_coroutine_wraps_it():
    async def child(x):
        return await succeed(x) + 1

    @inline_callbacks
    def work():
        return (yield child(1))

    assert success_result_of(work()) == 2


def test_yielding_an_awaitable_object_wraps_it():
    class Awaitable:
        def __await__(self):
            return (yield from succeed("awaited").__await__())

    @inline_callbacks
    def work():
        return (yield Awaitable())

    assert success_result_of(work()) == "awaited"


def test_yield_from_a_deferred():
    waiting = Deferred()

    @inline_callbacks
    def work():
        a = yield from succeed(1)
        b = yield from waiting
        return a + b

    d = work()
    waiting.callback(2)
    assert success_result_of(d) == 3


def test_inline_callbacks_needs_a_generator_function():
    @inline_callbacks
    def not_a_generator():
        return 1

    with pytest.raises(TypeError):
        not_a_generator()


def test_returning_a_deferred_chains_it():
    inner = Deferred()

    @inline_callbacks
    def work():
        yield succeed(None)
        return inner

    d = work()
    assert not d.called
    inner.callback("later")
    assert success_result_of(d) == "later"


def test_100k_fired_yields_do_not_recurse():
    @inline_callbacks
    def work():
        total = 0
        for i in range(100_000):
            total += yield succeed(i)
        return total

    assert success_result_of(work()) == sum(range(100_000))


def test_fired_results_add_no_frames():
    depths = {}

    @inline_callbacks
    def work():
        for i in range(1, 1001):
            yield succeed(i)
            if i in (1, 1000):
                depths[i] = len(inspect.stack(0))
        yield 5  # plain values too
        depths["plain"] = len(inspect.stack(0))

    success_result_of(work())
    assert depths[1] == depths[1000] == depths["plain"]


def test_resumed_generator_adds_no_frames_per_fired_step():
    waiting = Deferred()
    depths = []

    @inline_callbacks
    def work():
        yield waiting
        for i in range(1, 1001):
            yield succeed(i)
            if i in (1, 1000):
                depths.append(len(inspect.stack(0)))

    d = work()
    waiting.callback(None)
    success_result_of(d)
    assert len(depths) == 2 and depths[0] == depths[1]


def test_generator_object_given_to_ensure_deferred():
    def gen():
        x = yield succeed(3)
        return x + 1

    assert success_result_of(ensure_deferred(gen())) == 4


# -- cancellation -------------------------------------------------------------------

def test_cancel_cancels_the_awaited_deferred_and_the_generator_sees_it():
    cancelled = []
    waiting = Deferred(cancelled.append)
    seen = []

    @inline_callbacks
    def work():
        try:
            yield waiting
        except CancelledError:
            seen.append("cancelled")
            raise

    d = work()
    d.cancel()
    assert cancelled == [waiting]
    assert seen == ["cancelled"]
    failure_result_of(d, CancelledError)


def test_generator_that_catches_cancel_and_returns_a_value():
    @inline_callbacks
    def work():
        try:
            yield Deferred()
        except CancelledError:
            return "cleaned up"

    d = work()
    d.cancel()
    assert success_result_of(d) == "cleaned up"


def test_generator_that_catches_cancel_and_waits_again():
    second = Deferred()

    @inline_callbacks
    def work():
        try:
            yield Deferred()
        except CancelledError:
            pass
        return (yield second)

    d = work()
    d.cancel()
    assert not d.called
    second.callback("after cancel")
    assert success_result_of(d) == "after cancel"


def test_cancel_when_the_waited_deferred_ignores_it_keeps_waiting():
    waiting = Deferred()
    waiting.callback(None)
    waiting.pause()  # fired but held: cancel() cannot reach it

    @inline_callbacks
    def work():
        x = yield waiting
        return ("finished", x)

    d = work()
    d.cancel()
    assert not d.called
    waiting.unpause()
    assert success_result_of(d) == ("finished", None)


def test_generator_that_cancels_its_own_deferred():
    box = {}
    waiting = Deferred()

    @inline_callbacks
    def work():
        yield waiting
        # Not waiting on anything now: the Deferred fails with CancelledError
        # at once, and what the generator returns afterwards is dropped.
        box["d"].cancel()
        return "dropped"

    box["d"] = work()
    waiting.callback(None)
    failure_result_of(box["d"], CancelledError)


def test_cancel_after_completion_does_nothing():
    @inline_callbacks
    def work():
        return (yield succeed(1))

    d = work()
    d.cancel()
    assert success_result_of(d) == 1


# -- nested coroutines -----------------------------------------------------------------

def test_nested_inline_callbacks():
    waiting = Deferred()

    @inline_callbacks
    def child(n):
        x = yield waiting
        return x + n

    @inline_callbacks
    def parent():
        a = yield child(1)
        b = yield child(2)  # waiting has been consumed: None + 2 fails
        return a, b

    d = parent()
    waiting.callback(10)
    failure_result_of(d, TypeError)


# Starting 10,000 nested coroutines recurses by nature (each starts its
# child); these build the nest bottom-up so that only the finishing cascade,
# which is the driver's business, runs 10,000 levels deep.

def test_10k_nested_generators_finishing_at_once_do_not_recurse():
    bottom = Deferred()

    @inline_callbacks
    def level(child):
        return (yield child) + 1

    d = bottom
    for _ in range(10_000):
        d = level(d)
    assert not d.called
    bottom.callback(0)
    assert success_result_of(d) == 10_000


def test_10k_nested_generators_failing_at_once_do_not_recurse():
    bottom = Deferred()

    @inline_callbacks
    def level(child):
        return (yield child)

    d = bottom
    for _ in range(10_000):
        d = level(d)
    bottom.errback(Boom())
    failure_result_of(d, Boom)


def test_10k_nested_async_defs_finishing_at_once_do_not_recurse():
    bottom = Deferred()

    async def level(child):
        return await child + 1

    d = bottom
    for _ in range(10_000):
        d = ensure_deferred(level(d))
    bottom.callback(0)
    assert success_result_of(d) == 10_000


def test_nested_child_deferred_with_other_listeners_fires_normally():
    bottom = Deferred()
    seen = []

    @inline_callbacks
    def child():
        return (yield bottom)

    @inline_callbacks
    def parent():
        c = child()
        c.add_callback(lambda r: seen.append(r) or r)
        return (yield c)

    d = parent()
    bottom.callback(5)
    assert seen == [5]
    assert success_result_of(d) == 5


# -- ensure_deferred and await ---------------------------------------------------------------

def test_ensure_deferred_returns_a_deferred_unchanged():
    d = Deferred()
    assert ensure_deferred(d) is d


def test_ensure_deferred_rejects_other_things():
    with pytest.raises(TypeError):
        ensure_deferred(42)


def test_await_fired_and_unfired_deferreds():
    waiting = Deferred()

    async def work():
        a = await succeed(1)
        b = await waiting
        return a + b

    d = ensure_deferred(work())
    assert not d.called
    waiting.callback(2)
    assert success_result_of(d) == 3


def test_await_failed_deferred_raises_inside():
    waiting = Deferred()

    async def work():
        try:
            await fail(Boom("fired"))
        except Boom as e:
            first = str(e)
        try:
            await waiting
        except Boom as e:
            return first, str(e)

    d = ensure_deferred(work())
    waiting.errback(Boom("later"))
    assert success_result_of(d) == ("fired", "later")


def test_await_consumes_the_result(caplog):
    ok, bad = succeed(1), fail(Boom())

    async def work():
        await ok
        try:
            await bad
        except Boom:
            pass

    success_result_of(ensure_deferred(work()))
    assert ok.result is None and bad.result is None
    ok = bad = None  # (not del: the coroutine closes over them)
    gc.collect()
    assert "Unhandled" not in caplog.text


def test_await_a_deferred_whose_error_was_handled_gives_the_recovered_value(caplog):
    recovered = fail(Boom())
    recovered.add_errback(lambda f: "recovered")

    async def work():
        return await recovered

    assert success_result_of(ensure_deferred(work())) == "recovered"
    assert recovered.result is None
    recovered = None
    gc.collect()
    assert "Unhandled" not in caplog.text


def test_async_def_exception_fails_the_deferred():
    async def work():
        await succeed(None)
        raise Boom()

    failure_result_of(ensure_deferred(work()), Boom)


def test_await_100k_fired_deferreds():
    async def work():
        total = 0
        for i in range(100_000):
            total += await succeed(i)
        return total

    assert success_result_of(ensure_deferred(work())) == sum(range(100_000))


def test_await_fired_adds_no_frames():
    depths = {}

    async def work():
        for i in range(1, 1001):
            await succeed(i)
            if i in (1, 1000):
                depths[i] = len(inspect.stack(0))

    success_result_of(ensure_deferred(work()))
    assert depths[1] == depths[1000]


def test_await_of_a_coroutine_and_a_custom_awaitable():
    class Awaitable:
        def __await__(self):
            return (yield from succeed("custom").__await__())

    async def child():
        return await Awaitable()

    async def work():
        return await child()

    assert success_result_of(ensure_deferred(work())) == "custom"
    assert success_result_of(ensure_deferred(Awaitable())) == "custom"


def test_awaiting_a_foreign_future_raises_type_error_inside():
    loop = asyncio.new_event_loop()
    try:
        future = loop.create_future()

        async def work():
            try:
                await future
            except TypeError as e:
                return str(e)

        message = success_result_of(ensure_deferred(work()))
        assert "reactor.aio" in message
    finally:
        loop.close()


def test_async_cancel_is_seen_where_it_awaits():
    cancelled = []
    waiting = Deferred(cancelled.append)

    async def work():
        try:
            await waiting
        except CancelledError:
            return "saw it"

    d = ensure_deferred(work())
    d.cancel()
    assert cancelled == [waiting]
    assert success_result_of(d) == "saw it"


def test_async_uncaught_cancel_fails_with_cancelled_error():
    async def work():
        await Deferred()

    d = ensure_deferred(work())
    d.cancel()
    failure_result_of(d, CancelledError)


def test_types_coroutine_generator_is_run():
    @types.coroutine
    def legacy():
        x = yield succeed(5)
        return x

    assert success_result_of(ensure_deferred(legacy())) == 5


def test_awaiting_a_deferred_from_its_own_callback_waits_for_the_chain():
    d = Deferred()
    got = []

    async def watcher():
        got.append(await d)

    d.add_callback(lambda r: ensure_deferred(watcher()) and r + 1)
    d.add_callback(lambda r: r * 10)
    d.callback(1)
    # The coroutine waited for the end of d's chain, then took its result.
    assert got == [20]
    assert d.result is None


# -- tracebacks through coroutines ---------------------------------------------------------

def _raise_in_errback(failure):
    raise Boom("from errback")


def test_traceback_has_the_generator_frame_and_the_original_frames():
    waiting = Deferred()
    waiting.add_errback(_raise_in_errback)

    @inline_callbacks
    def generator_where_it_surfaces():
        yield waiting

    d = generator_where_it_surfaces()
    waiting.errback(KeyError())
    text = failure_result_of(d, Boom).get_traceback()
    assert "generator_where_it_surfaces" in text
    assert "_raise_in_errback" in text


def test_traceback_has_every_nested_generator_frame():
    waiting = Deferred()

    @inline_callbacks
    def inner_generator():
        yield waiting

    @inline_callbacks
    def outer_generator():
        yield inner_generator()

    d = outer_generator()
    try:
        raise Boom("deep")
    except Boom:
        waiting.errback()
    text = failure_result_of(d, Boom).get_traceback()
    assert "outer_generator" in text
    assert "inner_generator" in text
    assert "test_traceback_has_every_nested_generator_frame" in text


def test_traceback_has_the_async_def_frame():
    waiting = Deferred()

    async def coroutine_where_it_surfaces():
        await waiting

    d = ensure_deferred(coroutine_where_it_surfaces())
    try:
        raise Boom()
    except Boom:
        waiting.errback()
    text = failure_result_of(d, Boom).get_traceback()
    assert "coroutine_where_it_surfaces" in text


def test_non_native_coroutine_is_run():
    from collections.abc import Coroutine

    class Wrapped(Coroutine):
        """A Coroutine-ABC object that is not a native coroutine (as Cython makes)."""

        def __init__(self, coro):
            self._coro = coro

        def send(self, value):
            return self._coro.send(value)

        def throw(self, *exc):
            return self._coro.throw(*exc)

        def close(self):
            self._coro.close()

        def __await__(self):
            return self._coro.__await__()

    waiting = Deferred()

    async def work():
        return await waiting

    d = ensure_deferred(Wrapped(work()))
    waiting.callback("done")
    assert success_result_of(d) == "done"


def test_child_deferred_with_one_foreign_callback_fires_normally():
    bottom = Deferred()
    seen = []

    @inline_callbacks
    def child():
        return (yield bottom)

    c = child()
    c.add_callback(seen.append)
    bottom.callback(3)
    assert seen == [3]


def test_cancel_goes_down_through_nested_coroutines():
    cancelled = []
    bottom = Deferred(cancelled.append)
    seen = []

    @inline_callbacks
    def child():
        try:
            yield bottom
        except CancelledError:
            seen.append("child")
            raise

    async def parent():
        try:
            await child()
        except CancelledError:
            seen.append("parent")
            return "parent cleaned up"

    d = ensure_deferred(parent())
    d.cancel()
    assert cancelled == [bottom]
    assert seen == ["child", "parent"]
    assert success_result_of(d) == "parent cleaned up"


def test_cancel_of_a_deep_nest_reaches_the_bottom():
    bottom = Deferred()

    @inline_callbacks
    def level(child):
        return (yield child)

    d = bottom
    for _ in range(10_000):
        d = level(d)
    d.cancel()
    failure_result_of(d, CancelledError)
    assert bottom.called


def test_cancel_reaches_the_inner_deferred_of_an_awaited_chain():
    cancelled = []
    inner = Deferred(cancelled.append)
    outer = Deferred()
    outer.add_callback(lambda r: inner)
    outer.callback(None)  # outer now waits on inner

    async def work():
        return await outer

    d = ensure_deferred(work())
    d.cancel()
    assert cancelled == [inner]
    failure_result_of(d, CancelledError)


def test_cancel_of_a_parent_from_inside_its_running_child():
    box = {}
    gate = Deferred()

    @inline_callbacks
    def child():
        yield gate
        box["parent"].cancel()  # the child runs: nothing below it to cancel
        return "child result, dropped"

    @inline_callbacks
    def parent():
        return (yield child())

    box["parent"] = parent()
    gate.callback(None)
    failure_result_of(box["parent"], CancelledError)


def test_firing_a_deferred_a_coroutine_awaits_hands_the_result_over():
    d = Deferred()
    seen = []

    async def waiter():
        value = await d
        # The coroutine took the result over: later callbacks see None.
        d.add_callback(seen.append)
        return value * 2

    out = ensure_deferred(waiter())
    d.callback(21)
    assert success_result_of(out) == 42
    assert seen == [None]
    assert d.called and d.result is None
