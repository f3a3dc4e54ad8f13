"""Deferred, Failure, succeed/fail/maybe_deferred, gather, race, DeferredList."""

from __future__ import annotations

import gc
import logging
import sys

import pytest

from reactor.coroutines import ensure_deferred
from reactor.defer import (
    Deferred,
    DeferredList,
    DeferredLock,
    DeferredQueue,
    DeferredSemaphore,
    Failure,
    fail,
    gather,
    maybe_deferred,
    race,
    succeed,
)
from reactor.errors import (
    AlreadyCalledError,
    CancelledError,
    FailureGroup,
    FirstError,
    NoCurrentExceptionError,
)
from reactor.testing import Clock, assert_no_result, failure_result_of, success_result_of


# -- helpers ---------------------------------------------------------------


def unhandled_records(caplog):
    gc.collect()
    return [r for r in caplog.records if "Unhandled error in Deferred" in r.getMessage()]


class Boom(Exception):
    pass


# -- firing and the chain ------------------------------------------------------

def test_callbacks_run_in_order_and_pass_results():
    d = Deferred()
    seen = []
    d.add_callback(lambda r: r + 1).add_callback(lambda r: r * 10).add_callback(seen.append)
    assert seen == []
    d.callback(1)
    assert seen == [20]
    assert d.called and d.result is None


def test_add_methods_return_the_deferred():
    d = Deferred()
    assert d.add_callback(lambda r: r) is d
    assert d.add_errback(lambda f: f) is d
    assert d.add_both(lambda r: r) is d
    assert d.add_callbacks(lambda r: r, lambda f: f) is d
    assert d.add_timeout(1, Clock()) is d  # fired below, so the timer goes
    assert d.chain_deferred(Deferred()) is d
    d.callback(None)


def test_callbacks_added_after_firing_run_at_once():
    d = succeed(5)
    seen = []
    d.add_callback(seen.append)
    assert seen == [5]
    d.add_callback(lambda r: seen.append(("again", r)))
    assert seen == [5, ("again", None)]


def test_callback_and_errback_args_and_kwargs():
    d = Deferred()
    seen = []
    d.add_callback(lambda r, a, b=0: seen.append((r, a, b)) or r, 1, b=2)
    d.add_callback(lambda r, a: seen.append((r, a)) or r, "x")
    d.add_callbacks(lambda r, *a, **k: seen.append(("cb", r, a, k)), None,
                    callback_args=(3,), callback_kwargs={"k": 4})
    d.add_callback(lambda r: 1 / 0)
    d.add_errback(lambda f, tag, **k: seen.append((f.type, tag, k)), "eb", z=1)
    d.add_callback(lambda r: Boom())
    d.add_callbacks(None, lambda f: seen.append("skipped"))
    d.add_both(lambda r, tag: seen.append((type(r).__name__, tag)), "both")
    d.add_callbacks(lambda r: 1 / 0, lambda f: f)
    d.add_callbacks(lambda r: None, lambda f, *a, **k: seen.append((a, k)),
                    errback_args=(5,), errback_kwargs={"q": 6})
    d.callback("r")
    assert seen == [
        ("r", 1, 2),
        ("r", "x"),
        ("cb", "r", (3,), {"k": 4}),
        (ZeroDivisionError, "eb", {"z": 1}),
        ("Boom", "both"),
        ((5,), {"q": 6}),
    ]


def test_callback_that_raises_goes_to_next_errback():
    d = Deferred()
    seen = []
    d.add_callback(lambda r: 1 / 0)
    d.add_callback(lambda r: seen.append("skipped"))
    d.add_errback(lambda f: seen.append(f.type) or "recovered")
    d.add_callback(lambda r: seen.append(r))
    d.callback(1)
    assert seen == [ZeroDivisionError, "recovered"]


def test_errback_returning_a_value_goes_back_to_callbacks():
    d = Deferred()
    d.add_errback(lambda f: "fixed")
    d.errback(Boom())
    assert success_result_of(d) == "fixed"


def test_errback_returning_or_raising_a_failure_stays_on_the_error_side():
    d = Deferred()
    seen = []
    d.add_errback(lambda f: f)
    d.add_errback(lambda f: f.raise_exception())
    d.add_callback(lambda r: seen.append("skipped"))
    d.errback(Boom("x"))
    failure = failure_result_of(d, Boom)
    assert str(failure.value) == "x"
    assert seen == []


def test_callback_returning_a_failure_switches_to_errbacks():
    d = Deferred()
    d.add_callback(lambda r: Failure(Boom()))
    d.callback(1)
    failure_result_of(d, Boom)


def test_errback_forms():
    d1 = Deferred()
    d1.errback(Boom("a"))
    assert failure_result_of(d1, Boom).get_error_message() == "a"
    d2 = Deferred()
    f = Failure(Boom("b"))
    d2.errback(f)
    assert failure_result_of(d2) is f
    d3 = Deferred()
    try:
        raise Boom("c")
    except Boom:
        d3.errback()
    f3 = failure_result_of(d3, Boom)
    assert f3.tb is not None
    with pytest.raises(NoCurrentExceptionError):
        Deferred().errback()
    with pytest.raises(TypeError):
        Deferred().errback("not an exception")


def test_callback_with_a_failure_is_an_errback():
    d = Deferred()
    d.callback(Failure(Boom()))
    failure_result_of(d, Boom)


def test_firing_twice_raises():
    d = Deferred()
    d.callback(1)
    with pytest.raises(AlreadyCalledError):
        d.callback(2)
    with pytest.raises(AlreadyCalledError):
        d.errback(Boom())
    assert success_result_of(d) == 1


def test_errback_then_callback_raises():
    d = Deferred()
    d.errback(Boom())
    with pytest.raises(AlreadyCalledError):
        d.callback(1)
    failure_result_of(d, Boom)


def test_passing_a_deferred_to_callback_is_an_error():
    d = Deferred()
    with pytest.raises(TypeError):
        d.callback(Deferred())
    assert not d.called


def test_callbacks_added_while_running_run_after_the_current_ones():
    d = Deferred()
    seen = []

    def first(r):
        d.add_callback(lambda r: seen.append(("late", r)))
        seen.append("first")
        return "from-first"

    d.add_callback(first)
    d.add_callback(lambda r: seen.append(("second", r)) or r)
    d.callback(0)
    assert seen == ["first", ("second", "from-first"), ("late", "from-first")]


def test_result_is_visible_after_the_chain():
    d = Deferred()
    assert d.result is None and not d.called
    d.add_callback(lambda r: r * 2)
    d.callback(21)
    assert d.result == 42


# -- Deferreds returned by callbacks --------------------------------------------

def test_callback_returning_unfired_deferred_suspends_the_chain():
    outer, inner = Deferred(), Deferred()
    seen = []
    outer.add_callback(lambda r: inner)
    outer.add_callback(seen.append)
    outer.callback("ignored")
    assert seen == []
    assert outer.paused == 1
    assert "waiting on" in repr(outer)
    inner.callback("inner result")
    assert seen == ["inner result"]
    assert outer.paused == 0
    # The outer chain took the inner result over.
    assert inner.result is None


def test_inner_failure_carries_on_in_the_outer_chain():
    outer, inner = Deferred(), Deferred()
    outer.add_callback(lambda r: inner)
    outer.callback(None)
    inner.errback(Boom())
    failure_result_of(outer, Boom)


def test_callback_returning_fired_deferred_takes_its_result():
    outer = Deferred()
    inner = fail(Boom())
    outer.add_callback(lambda r: inner)
    outer.callback(None)
    failure_result_of(outer, Boom)
    assert inner.result is None


def test_callbacks_added_to_inner_after_the_link_see_none():
    outer, inner = Deferred(), Deferred()
    outer.add_callback(lambda r: inner)
    outer.callback(None)
    later = []
    inner.add_callback(later.append)
    inner.callback(7)
    assert success_result_of(outer) == 7
    assert later == [None]


def test_callback_returning_its_own_deferred_puts_value_error_on_the_chain():
    d = Deferred()
    d.add_callback(lambda r: d)
    d.callback(1)
    failure = failure_result_of(d, ValueError)
    assert "returned the Deferred it was added to" in str(failure.value)


def test_inner_deferred_that_is_paused_is_waited_for():
    outer, inner = Deferred(), Deferred()
    inner.pause()
    inner.callback(3)
    outer.add_callback(lambda r: inner)
    outer.callback(None)
    assert_no_result(outer)
    inner.unpause()
    assert success_result_of(outer) == 3


def test_outer_that_is_user_paused_keeps_the_inner_result_until_unpaused():
    outer, inner = Deferred(), Deferred()
    outer.add_callback(lambda r: inner)
    seen = []
    outer.add_callback(seen.append)
    outer.callback(None)
    outer.pause()
    inner.callback("v")
    assert seen == []
    outer.unpause()
    assert seen == ["v"]


def test_inner_deferred_still_running_is_waited_for():
    # outer's callback runs while inner is running its own callbacks; outer
    # must wait for inner's final result, not grab a half-made one.
    inner, outer = Deferred(), Deferred()
    outer.add_callback(lambda r: inner)
    inner.add_callback(lambda r: outer.callback(None) or r + 1)
    inner.add_callback(lambda r: r * 10)
    inner.callback(1)
    assert success_result_of(outer) == 20


# -- chain_deferred ------------------------------------------------------------

def test_chain_deferred_passes_the_result_and_goes_on_with_none():
    a, b = Deferred(), Deferred()
    a.chain_deferred(b)
    after = []
    a.add_callback(after.append)
    a.callback("x")
    assert success_result_of(b) == "x"
    assert after == [None]


def test_chain_deferred_passes_failures_and_they_become_the_targets():
    a, b = Deferred(), Deferred()
    a.chain_deferred(b)
    a.errback(Boom())
    assert a.result is None
    failure_result_of(b, Boom)


def test_chain_deferred_to_itself_raises_at_once():
    d = Deferred()
    with pytest.raises(ValueError):
        d.chain_deferred(d)


def test_chain_deferred_to_an_already_fired_target_fails_the_chain():
    a, b = Deferred(), succeed(1)
    a.chain_deferred(b)
    a.callback(2)
    failure_result_of(a, AlreadyCalledError)
    assert success_result_of(b) == 1


def test_chain_deferred_to_a_bare_cancelled_target_is_forgiven():
    a, b = Deferred(), Deferred()
    b.cancel()
    failure_result_of(b, CancelledError)
    a.chain_deferred(b)
    a.callback(2)
    assert a.result is None


# -- pause / unpause -------------------------------------------------------------

def test_pause_holds_callbacks_until_unpause():
    d = Deferred()
    seen = []
    d.add_callback(seen.append)
    d.pause()
    d.pause()
    d.callback(1)
    assert seen == []
    d.unpause()
    assert seen == []
    d.unpause()
    assert seen == [1]
    d.unpause()  # not paused: nothing happens
    assert d.paused == 0


def test_pause_from_a_callback_stops_the_rest():
    d = Deferred()
    seen = []
    d.add_callback(lambda r: d.pause() or r)
    d.add_callback(seen.append)
    d.callback(1)
    assert seen == []
    d.unpause()
    assert seen == [1]


def test_unpause_of_an_unfired_deferred_runs_nothing():
    d = Deferred()
    d.pause()
    d.unpause()
    assert not d.called


def test_paused_failure_is_still_reported_if_never_handled(caplog):
    d = Deferred()
    d.pause()
    d.errback(Boom())
    del d
    assert len(unhandled_records(caplog)) == 1


# -- cancel --------------------------------------------------------------------

def test_cancel_without_canceller_errbacks_with_cancelled_error():
    d = Deferred()
    d.cancel()
    failure_result_of(d, CancelledError)


def test_cancel_calls_the_canceller_with_the_deferred():
    seen = []
    d = Deferred(seen.append)
    d.cancel()
    assert seen == [d]
    failure_result_of(d, CancelledError)


def test_canceller_that_fires_the_deferred_wins():
    d = Deferred(lambda d: d.callback("cancelled nicely"))
    d.cancel()
    assert success_result_of(d) == "cancelled nicely"


def test_canceller_that_errbacks_wins():
    d = Deferred(lambda d: d.errback(Boom()))
    d.cancel()
    failure_result_of(d, Boom)


def test_cancel_after_firing_does_nothing():
    seen = []
    d = Deferred(seen.append)
    d.callback(1)
    d.cancel()
    assert seen == []
    assert success_result_of(d) == 1


def test_late_callback_after_bare_cancel_is_ignored_once():
    d = Deferred()
    d.cancel()
    d.callback("late")  # ignored
    with pytest.raises(AlreadyCalledError):
        d.callback("later")
    failure_result_of(d, CancelledError)


def test_late_errback_after_bare_cancel_is_ignored_once():
    d = Deferred()
    d.cancel()
    d.errback(Boom())
    with pytest.raises(AlreadyCalledError):
        d.errback(Boom())
    failure_result_of(d, CancelledError)


def test_late_callback_from_a_cancelled_errback_is_forgiven():
    d = Deferred()
    d.add_errback(lambda f: d.callback("late"))
    d.cancel()
    assert d.result is None


def test_late_callback_after_cancel_with_a_lazy_canceller_raises():
    d = Deferred(lambda d: None)
    d.cancel()
    with pytest.raises(AlreadyCalledError):
        d.callback("late")
    failure_result_of(d, CancelledError)


def test_cancel_forwards_to_the_inner_deferred():
    cancelled = []
    inner = Deferred(cancelled.append)
    outer = Deferred()
    outer.add_callback(lambda r: inner)
    outer.callback(None)
    outer.cancel()
    assert cancelled == [inner]
    failure_result_of(outer, CancelledError)


def test_canceller_is_not_kept_after_firing():
    d = Deferred(lambda d: None)
    d.callback(1)
    assert d._canceller is None


def test_keep_waiting_canceller_leaves_deferred_pending():
    from reactor.defer import _KEEP_WAITING

    d = Deferred(lambda d: _KEEP_WAITING)
    d.cancel()
    assert not d.called


# -- add_timeout -----------------------------------------------------------------

def test_timeout_cancels_and_raises_timeout_error():
    clock = Clock()
    cancelled = []
    d = Deferred(cancelled.append).add_timeout(5, clock)
    clock.advance(4.9)
    assert_no_result(d)
    clock.advance(0.1)
    assert cancelled == [d]
    failure = failure_result_of(d, TimeoutError)
    assert "5" in str(failure.value)


def test_firing_before_the_timeout_cancels_the_timer():
    clock = Clock()
    d = Deferred().add_timeout(5, clock)
    assert len(clock.get_delayed_calls()) == 1
    d.callback("ok")
    assert clock.get_delayed_calls() == []
    assert success_result_of(d) == "ok"


def test_cancel_before_the_timeout_stays_cancelled_error():
    clock = Clock()
    d = Deferred().add_timeout(5, clock)
    d.cancel()
    failure_result_of(d, CancelledError)
    assert clock.get_delayed_calls() == []


def test_on_timeout_cancel_gets_the_timeout_failure_and_seconds():
    clock = Clock()
    seen = []

    def on_timeout_cancel(result, timeout):
        seen.append((result.type, timeout))
        return "substitute"

    d = Deferred().add_timeout(2.5, clock, on_timeout_cancel)
    clock.advance(2.5)
    assert seen == [(TimeoutError, 2.5)]
    assert success_result_of(d) == "substitute"


def test_on_timeout_cancel_not_called_when_fired_in_time():
    clock = Clock()
    seen = []
    d = Deferred().add_timeout(2, clock, lambda r, t: seen.append(r))
    d.callback(1)
    clock.advance(5)
    assert seen == [] and success_result_of(d) == 1


def test_timeout_when_canceller_fires_with_a_value():
    clock = Clock()
    seen = []
    d = Deferred(lambda d: d.callback("gave up")).add_timeout(1, clock, lambda r, t: seen.append(r) or r)
    clock.advance(1)
    assert seen == ["gave up"]
    assert success_result_of(d) == "gave up"


def test_timeout_forwards_to_inner():
    clock = Clock()
    inner = Deferred()
    outer = Deferred()
    outer.add_callback(lambda r: inner)
    outer.callback(None)
    outer.add_timeout(1, clock)
    clock.advance(1)
    failure_result_of(outer, TimeoutError)
    assert inner.called and inner.result is None  # its CancelledError went to outer


# -- unhandled errors ------------------------------------------------------------

def test_unhandled_failure_is_logged_once_on_collection(caplog):
    caplog.set_level(logging.ERROR, logger="reactor")

    def raiser():
        raise Boom("never handled")

    d = Deferred()
    d.add_callback(lambda r: raiser())
    d.callback(1)
    del d
    records = unhandled_records(caplog)
    assert len(records) == 1
    record = records[0]
    assert record.name == "reactor"
    text = caplog.text
    assert "Boom: never handled" in text
    assert "raiser" in text  # the traceback is there
    # Collected once, logged once.
    assert len(unhandled_records(caplog)) == 1


def test_fail_unhandled_is_logged(caplog):
    d = fail(Boom())
    del d
    assert len(unhandled_records(caplog)) == 1


def test_errback_without_callbacks_unhandled_is_logged(caplog):
    d = Deferred()
    d.errback(Boom())
    del d
    assert len(unhandled_records(caplog)) == 1


def test_handled_failure_is_not_logged(caplog):
    d = Deferred()
    d.add_errback(lambda f: None)
    d.errback(Boom())
    d2 = fail(Boom())
    d2.add_errback(lambda f: None)
    d3 = Deferred()
    d3.errback(Boom())
    d3.add_errback(lambda f: "ok")  # handled later: no log either
    del d, d2, d3
    assert unhandled_records(caplog) == []


def test_failure_handed_to_outer_is_logged_once_by_the_outer(caplog):
    outer, inner = Deferred(), Deferred()
    outer.add_callback(lambda r: inner)
    outer.callback(None)
    inner.errback(Boom())
    outer = inner = None  # (not del: the lambdas close over them)
    assert len(unhandled_records(caplog)) == 1


def test_stolen_failure_of_fired_inner_is_handled_by_outer(caplog):
    inner = fail(Boom())
    outer = Deferred()
    outer.add_callback(lambda r: inner)
    outer.add_errback(lambda f: None)
    outer.callback(None)
    outer = inner = None  # (not del: the lambdas close over them)
    assert unhandled_records(caplog) == []


def test_cancelled_and_never_handled_is_logged(caplog):
    d = Deferred()
    d.cancel()
    del d
    assert len(unhandled_records(caplog)) == 1


# -- no recursion limit -------------------------------------------------------------

def test_100k_callbacks_on_one_deferred():
    d = Deferred()
    for _ in range(100_000):
        d.add_callback(lambda r: r + 1)
    d.callback(0)
    assert d.result == 100_000


def test_100k_callbacks_alternating_sides():
    d = Deferred()
    for _ in range(50_000):
        d.add_callback(lambda r: Failure(Boom()))
        d.add_errback(lambda f: 1)
    d.callback(0)
    assert d.result == 1


def _nested(n):
    ds = [Deferred() for _ in range(n)]
    for i in range(n - 1):
        ds[i].add_callback(lambda r, nxt=ds[i + 1]: nxt)
    ds[-1].add_callback(lambda r: r + 1)
    return ds


def test_10k_nested_deferreds_fired_outermost_first():
    ds = _nested(10_000)
    for d in ds[:-1]:
        d.callback(None)
    assert all(d.paused for d in ds[:-1])
    ds[-1].callback(41)  # the result climbs up 10,000 levels in one go
    assert ds[0].result == 42
    assert not any(d.paused for d in ds)


def test_10k_nested_deferreds_fired_innermost_first():
    ds = _nested(10_000)
    for d in reversed(ds):
        d.callback(None if d is not ds[-1] else 41)
    assert ds[0].result == 42


def test_100k_nested_deferreds_fired_outermost_first_is_linear():
    # Quadratic work would take minutes here; linear takes well under a second.
    ds = _nested(100_000)
    for d in ds[:-1]:
        d.callback(None)
    ds[-1].callback(0)
    assert ds[0].result == 1


def test_10k_nested_failure_climbs_the_chain():
    ds = _nested(10_000)
    for d in ds[:-1]:
        d.callback(None)
    ds[-1].errback(Boom())
    failure_result_of(ds[0], Boom)


def test_10k_chain_deferred():
    ds = [Deferred() for _ in range(10_000)]
    for a, b in zip(ds, ds[1:]):
        a.chain_deferred(b)
    ds[0].callback("x")
    assert ds[-1].result == "x"


def test_nested_chain_cancelled_from_the_top():
    ds = _nested(10_000)
    for d in ds[:-1]:
        d.callback(None)
    ds[0].cancel()
    failure_result_of(ds[0], CancelledError)


# -- misc -------------------------------------------------------------------------

def test_deferred_is_generic_and_final():
    d = Deferred[int]()
    d.callback(1)
    assert success_result_of(d) == 1
    with pytest.raises(TypeError):
        type("Sub", (Deferred,), {})
    with pytest.raises(TypeError):
        type("SubFailure", (Failure,), {})


def test_repr():
    d = Deferred()
    assert "pending" in repr(d)
    d.callback(3)
    assert "current result: 3" in repr(d)


def test_repr_while_running():
    d = Deferred()
    seen = []
    d.add_callback(lambda r: seen.append(repr(d)))
    d.callback(1)
    assert "running" in seen[0]


# -- Failure ------------------------------------------------------------------------

def _raise_boom():
    raise Boom("kaboom")


def test_failure_captures_the_current_exception():
    try:
        _raise_boom()
    except Boom as e:
        f = Failure()
        assert f.value is e
    assert f.type is Boom
    assert f.tb is not None
    with pytest.raises(NoCurrentExceptionError):
        Failure()
    with pytest.raises(TypeError):
        Failure("nope")


def test_failure_of_a_fresh_exception_has_no_traceback():
    f = Failure(Boom())
    assert f.tb is None
    assert "Boom" in f.get_traceback()


def test_failure_check():
    f = Failure(Boom())
    assert f.check(ValueError) is None
    assert f.check(ValueError, Exception) is Exception
    assert f.check(Boom) is Boom


def test_failure_trap_returns_match_or_reraises_the_original():
    try:
        _raise_boom()
    except Boom:
        f = Failure()
    assert f.trap(KeyError, Boom) is Boom
    with pytest.raises(Boom) as info:
        f.trap(KeyError)
    assert info.value is f.value


def test_trap_in_an_errback_passes_other_errors_on():
    d = Deferred()
    d.add_errback(lambda f: f.trap(KeyError))
    d.errback(Boom())
    failure = failure_result_of(d, Boom)
    assert "trap" in failure.get_traceback()


def test_failure_raise_exception_keeps_the_traceback():
    try:
        _raise_boom()
    except Boom:
        f = Failure()
    with pytest.raises(Boom) as info:
        f.raise_exception()
    assert info.value is f.value
    assert "_raise_boom" in "".join(str(e.name) for e in info.traceback)


def test_failure_get_traceback_and_message_and_repr():
    try:
        _raise_boom()
    except Boom:
        f = Failure()
    text = f.get_traceback()
    assert text.startswith("Traceback")
    assert "_raise_boom" in text
    assert "Boom: kaboom" in text
    assert f.get_error_message() == "kaboom"
    assert repr(f) == "<Failure Boom: kaboom>"
    assert str(f) == repr(f)


def test_failure_print_traceback(capsys):
    f = Failure(Boom("printed"))
    f.print_traceback()
    assert "Boom: printed" in capsys.readouterr().err
    out = []

    class Sink:
        def write(self, s):
            out.append(s)

    f.print_traceback(Sink())
    assert "printed" in out[0]


def test_failure_from_a_callback_has_the_callback_frame():
    def bad_callback(r):
        raise Boom()

    d = succeed(1)
    d.add_callback(bad_callback)
    assert "bad_callback" in failure_result_of(d).get_traceback()


# -- succeed / fail / maybe_deferred -------------------------------------------------

def test_succeed_and_fail():
    assert success_result_of(succeed("v")) == "v"
    assert success_result_of(succeed()) is None
    failure_result_of(fail(Boom()), Boom)
    f = Failure(Boom())
    assert failure_result_of(fail(f)) is f
    try:
        raise Boom()
    except Boom:
        d = fail()
    failure_result_of(d, Boom)


def test_succeed_deferred_supports_every_method():
    d = succeed(1)
    d.pause()
    seen = []
    d.add_callback(seen.append)
    assert seen == []
    d.unpause()
    assert seen == [1]
    d.cancel()
    with pytest.raises(AlreadyCalledError):
        d.callback(2)


def test_maybe_deferred():
    assert success_result_of(maybe_deferred(lambda a, b=0: a + b, 1, b=2)) == 3
    d = Deferred()
    assert maybe_deferred(lambda: d) is d
    failure_result_of(maybe_deferred(lambda: 1 / 0), ZeroDivisionError)
    failure_result_of(maybe_deferred(lambda: Failure(Boom())), Boom)

    async def coro(x):
        return x * 2

    assert success_result_of(maybe_deferred(coro, 4)) == 8


# -- gather -----------------------------------------------------------------------------

def test_gather_results_in_order():
    a, b, c = Deferred(), succeed("b"), Deferred()
    g = gather(a, b, c)
    assert_no_result(g)
    c.callback("c")
    assert_no_result(g)
    a.callback("a")
    assert success_result_of(g) == ["a", "b", "c"]


def test_gather_of_nothing():
    assert success_result_of(gather()) == []


def test_gather_first_failure_and_consumes_errors(caplog):
    a, b, c = Deferred(), Deferred(), Deferred()
    g = gather(a, b, c)
    b.errback(Boom("first"))
    failure = failure_result_of(g, Boom)
    assert str(failure.value) == "first"
    a.errback(KeyError("second"))
    c.callback(1)
    assert a.result is None and b.result is None
    del a, b, c, g, failure
    assert unhandled_records(caplog) == []


def test_gather_cancel_cancels_all():
    cancelled = []
    ds = [Deferred(cancelled.append) for _ in range(3)]
    g = gather(*ds)
    g.cancel()
    assert cancelled == ds
    failure_result_of(g, CancelledError)


def test_gather_cancel_when_inputs_ignore_it():
    d = Deferred(lambda d: d.pause() if False else None)
    d.pause()  # paused: cancel() errbacks it, but the result is held
    g = gather(d)
    g.cancel()
    failure_result_of(g, CancelledError)
    d.unpause()
    assert d.result is None  # its CancelledError was consumed by gather


def test_gather_accepts_coroutines():
    async def one():
        return 1

    assert success_result_of(gather(one(), succeed(2))) == [1, 2]
    with pytest.raises(TypeError):
        gather(42)


# -- race --------------------------------------------------------------------------------

def test_race_first_success_wins_and_others_are_cancelled():
    cancelled = []
    a, b, c = Deferred(cancelled.append), Deferred(cancelled.append), Deferred(cancelled.append)
    r = race(a, b, c)
    a.errback(Boom())
    assert_no_result(r)
    b.callback("b")
    assert success_result_of(r) == (1, "b")
    assert cancelled == [c]
    assert c.result is None  # its CancelledError was consumed


def test_race_all_fail_gives_failure_group_in_input_order():
    a, b = Deferred(), Deferred()
    r = race(a, b)
    b.errback(KeyError("b"))
    a.errback(Boom("a"))
    failure = failure_result_of(r, FailureGroup)
    assert [f.type for f in failure.value.failures] == [Boom, KeyError]


def test_race_cancel_cancels_all_and_fails_with_cancelled_error():
    cancelled = []
    ds = [Deferred(cancelled.append) for _ in range(2)]
    r = race(*ds)
    r.cancel()
    assert cancelled == ds
    failure_result_of(r, CancelledError)


def test_race_of_fired_deferreds():
    assert success_result_of(race(succeed(1), succeed(2))) == (0, 1)


def test_race_of_nothing_fails():
    failure = failure_result_of(race(), FailureGroup)
    assert failure.value.failures == []


def test_race_loser_with_a_lazy_canceller_is_cancelled_and_consumed():
    a = Deferred(lambda d: None)
    b = Deferred()
    r = race(a, b)
    b.callback("b")
    assert success_result_of(r) == (1, "b")
    assert a.called and a.result is None  # its CancelledError was consumed


# -- DeferredList -----------------------------------------------------------------------

def test_deferred_list_collects_success_and_failures():
    a, b = Deferred(), Deferred()
    dl = DeferredList([a, b], consume_errors=True)
    b.errback(Boom())
    assert_no_result(dl)
    a.callback("a")
    results = success_result_of(dl)
    assert results[0] == (True, "a")
    assert results[1][0] is False and results[1][1].check(Boom)
    assert b.result is None


def test_deferred_list_without_consume_errors_leaves_inputs_failed(caplog):
    a = Deferred()
    dl = DeferredList([a])
    a.errback(Boom())
    success_result_of(dl)
    assert isinstance(a.result, Failure)
    a.add_errback(lambda f: None)
    del a, dl
    assert unhandled_records(caplog) == []


def test_deferred_list_consume_errors_prevents_the_log(caplog):
    a = Deferred()
    dl = DeferredList([a], consume_errors=True)
    a.errback(Boom())
    success_result_of(dl)
    del a, dl
    assert unhandled_records(caplog) == []


def test_deferred_list_fire_on_one_callback():
    a, b = Deferred(), Deferred()
    dl = DeferredList([a, b], fire_on_one_callback=True)
    a.errback(Boom())
    assert_no_result(dl)
    b.callback("b")
    assert success_result_of(dl) == ("b", 1)
    a.add_errback(lambda f: None)


def test_deferred_list_fire_on_one_callback_all_failing_gives_the_list():
    a = Deferred()
    dl = DeferredList([a], fire_on_one_callback=True, consume_errors=True)
    a.errback(Boom())
    [(ok, failure)] = success_result_of(dl)
    assert not ok and failure.check(Boom)


def test_deferred_list_fire_on_one_errback():
    a, b = Deferred(), Deferred()
    dl = DeferredList([a, b], fire_on_one_errback=True, consume_errors=True)
    b.errback(Boom())
    failure = failure_result_of(dl, FirstError)
    assert failure.value.index == 1
    assert failure.value.sub_failure.check(Boom)
    a.callback(1)


def test_deferred_list_empty():
    assert success_result_of(DeferredList([])) == []
    assert_no_result(DeferredList([], fire_on_one_callback=True))


def test_deferred_list_cancel_cancels_all():
    cancelled = []
    ds = [Deferred(cancelled.append) for _ in range(2)]
    dl = DeferredList(ds, consume_errors=True)
    dl.cancel()
    assert cancelled == ds
    results = success_result_of(dl)
    assert all(not ok and f.check(CancelledError) for ok, f in results)


def test_recursion_limit_is_untouched():
    assert sys.getrecursionlimit() <= 10_000


def test_failure_still_unhandled_after_more_callbacks_is_logged_once(caplog):
    d = fail(Boom())
    d.add_callback(lambda r: r)  # the error passes by: still unhandled
    d.add_errback(lambda f: f)  # passed on: still unhandled
    del d
    assert len(unhandled_records(caplog)) == 1


# -- DeferredLock, DeferredSemaphore, DeferredQueue --------------------------------------

def test_lock_hands_over_in_order():
    lock = DeferredLock()
    assert not lock.locked
    first = lock.acquire()
    assert success_result_of(first) is lock and lock.locked
    second, third = lock.acquire(), lock.acquire()
    assert_no_result(second)
    lock.release()
    assert success_result_of(second) is lock
    assert_no_result(third)
    lock.release()
    success_result_of(third)
    lock.release()
    assert not lock.locked
    with pytest.raises(RuntimeError):
        lock.release()


def test_cancelled_acquire_gives_up_its_place():
    lock = DeferredLock()
    lock.acquire()
    waiter, after = lock.acquire(), lock.acquire()
    waiter.cancel()
    failure_result_of(waiter, CancelledError)
    lock.release()
    assert success_result_of(after) is lock


def test_lock_run_releases_after_success_and_failure():
    lock = DeferredLock()
    gate = Deferred()
    d1 = lock.run(lambda: gate)
    d2 = lock.run(lambda x: x * 2, 21)
    assert_no_result(d2)
    gate.callback("gated")
    assert success_result_of(d1) == "gated"
    assert success_result_of(d2) == 42
    failure_result_of(lock.run(lambda: 1 / 0), ZeroDivisionError)
    assert not lock.locked


def test_semaphore_limits_holders():
    sem = DeferredSemaphore(2)
    a, b, c = sem.acquire(), sem.acquire(), sem.acquire()
    success_result_of(a)
    success_result_of(b)
    assert_no_result(c)
    assert sem.tokens == 0
    sem.release()
    success_result_of(c)
    sem.release()
    sem.release()
    assert sem.tokens == 2
    with pytest.raises(RuntimeError):
        sem.release()
    with pytest.raises(ValueError):
        DeferredSemaphore(0)


def test_lock_in_async_with():
    lock = DeferredLock()
    order = []

    async def worker(name, gate):
        async with lock:
            order.append((name, "in"))
            await gate
            order.append((name, "out"))

    g1, g2 = Deferred(), Deferred()
    d1, d2 = ensure_deferred(worker("a", g1)), ensure_deferred(worker("b", g2))
    g2.callback(None)
    assert order == [("a", "in")]
    g1.callback(None)
    success_result_of(d1)
    success_result_of(d2)
    assert order == [("a", "in"), ("a", "out"), ("b", "in"), ("b", "out")]
    assert not lock.locked


def test_queue_put_then_get_and_get_then_put():
    q = DeferredQueue()
    q.put(1)
    assert success_result_of(q.get()) == 1
    waiting = q.get()
    assert_no_result(waiting)
    q.put(2)
    assert success_result_of(waiting) == 2


def test_queue_limits():
    q = DeferredQueue(size=1, backlog=1)
    q.put("a")
    with pytest.raises(OverflowError):
        q.put("b")
    success_result_of(q.get())
    q.get()
    with pytest.raises(OverflowError):
        q.get()


def test_queue_cancelled_get_leaves_the_line():
    q = DeferredQueue()
    first, second = q.get(), q.get()
    first.cancel()
    failure_result_of(first, CancelledError)
    q.put("x")
    assert success_result_of(second) == "x"
