"""LoopingCall and sleep, driven by testing.Clock."""

from __future__ import annotations

import pytest

from reactor.defer import Deferred, fail
from reactor.errors import CancelledError
from reactor.task import LoopingCall, sleep
from reactor.testing import Clock, failure_result_of, success_result_of


class Boom(Exception):
    pass


class ManualClock:
    """A clock whose calls the test runs by hand (interval 0 would spin testing.Clock.advance)."""

    def __init__(self):
        self.now = 0.0
        self.calls = []

    def seconds(self):
        return self.now

    def call_later(self, delay, fn, *args):
        clock = Clock()  # only for a real DelayedCall object
        call = clock.call_later(delay, fn, *args)
        self.calls.append(call)
        return call

    def run_next(self):
        call = self.calls.pop(0)
        call.called = True
        call.func(*call.args)
        return call


# -- LoopingCall ---------------------------------------------------------------

def test_calls_now_and_every_interval():
    clock = Clock()
    calls = []
    lc = LoopingCall(clock, lambda tag, k=None: calls.append((clock.seconds(), tag, k)), "t", k=1)
    d = lc.start(2.0)
    assert lc.running and lc.interval == 2.0
    assert calls == [(0.0, "t", 1)]
    clock.advance(1.9)
    assert len(calls) == 1
    clock.advance(0.1)
    clock.advance(2.0)
    assert [c[0] for c in calls] == [0.0, 2.0, 4.0]
    lc.stop()
    assert not lc.running
    assert success_result_of(d) is lc
    assert clock.get_delayed_calls() == []


def test_now_false_waits_one_interval():
    clock = Clock()
    calls = []
    lc = LoopingCall(clock, lambda: calls.append(clock.seconds()))
    lc.start(1.0, now=False)
    assert calls == []
    clock.advance(1.0)
    assert calls == [1.0]
    lc.stop()


def test_stop_fires_the_start_deferred_with_the_looping_call():
    clock = Clock()
    lc = LoopingCall(clock, lambda: None)
    d = lc.start(1)
    assert not d.called
    lc.stop()
    assert success_result_of(d) is lc


def test_stop_from_inside_the_function():
    clock = Clock()
    count = []

    def fn():
        count.append(1)
        if len(count) == 3:
            lc.stop()

    lc = LoopingCall(clock, fn)
    d = lc.start(1)
    clock.pump([1, 1, 1, 1])
    assert len(count) == 3
    assert success_result_of(d) is lc
    assert clock.get_delayed_calls() == []


def test_function_raising_errbacks_and_stops():
    clock = Clock()
    n = []

    def fn():
        n.append(1)
        if len(n) == 2:
            raise Boom("second call")

    lc = LoopingCall(clock, fn)
    d = lc.start(1)
    clock.advance(1)
    assert not lc.running
    failure_result_of(d, Boom)
    clock.advance(10)
    assert len(n) == 2
    assert clock.get_delayed_calls() == []


def test_function_returning_a_failed_deferred_errbacks():
    clock = Clock()
    lc = LoopingCall(clock, lambda: fail(Boom()))
    failure_result_of(lc.start(1), Boom)
    assert not lc.running


def test_next_call_waits_for_the_functions_deferred():
    clock = Clock()
    pending = []
    times = []

    def fn():
        times.append(clock.seconds())
        d = Deferred()
        pending.append(d)
        return d

    lc = LoopingCall(clock, fn)
    lc.start(1.0)
    clock.advance(5)  # nothing: the first call is still going
    assert times == [0.0]
    pending[0].callback(None)  # done at t=5: the next tick is t=6
    clock.advance(0.5)
    assert times == [0.0]
    clock.advance(0.5)
    assert times == [0.0, 6.0]
    lc.stop()  # while fn's Deferred is pending: fires when it is done
    pending[1].callback(None)
    assert not lc.running


def test_stop_while_the_functions_deferred_is_pending():
    clock = Clock()
    pending = Deferred()
    lc = LoopingCall(clock, lambda: pending)
    d = lc.start(1)
    lc.stop()
    assert not d.called
    pending.callback(None)
    assert success_result_of(d) is lc


def test_skipped_intervals_are_not_bunched():
    clock = Clock()
    times = []
    lc = LoopingCall(clock, lambda: times.append(clock.seconds()))
    lc.start(1.0)
    clock.advance(3.5)  # a stall: ticks 1, 2, 3 missed; one call now
    assert times == [0.0, 3.5]
    clock.advance(0.5)
    assert times == [0.0, 3.5, 4.0]
    lc.stop()


def test_with_count_counts_skipped_intervals():
    clock = Clock()
    counts = []
    lc = LoopingCall.with_count(clock, counts.append)
    lc.start(1.0)
    assert counts == [1]
    clock.advance(1)
    assert counts == [1, 1]
    clock.advance(3.5)
    assert counts == [1, 1, 3]
    clock.advance(0.5)
    assert counts == [1, 1, 3, 1]
    lc.stop()


def test_with_count_now_false():
    clock = Clock()
    counts = []
    lc = LoopingCall.with_count(clock, counts.append)
    lc.start(2.0, now=False)
    clock.advance(2)
    clock.advance(7)
    assert counts == [1, 3]
    lc.stop()


def test_with_count_when_the_function_is_slow():
    clock = Clock()
    counts = []
    pending = []

    def fn(count):
        counts.append(count)
        pending.append(Deferred())
        return pending[-1]

    lc = LoopingCall.with_count(clock, fn)
    lc.start(1.0)
    clock.advance(2.5)
    pending[0].callback(None)  # done at 2.5: next tick 3
    clock.advance(0.5)
    assert counts == [1, 3]
    lc.stop()
    pending[1].callback(None)


def test_float_intervals_do_not_drift():
    clock = Clock()
    counts = []
    lc = LoopingCall.with_count(clock, counts.append)
    lc.start(0.1)
    for _ in range(1000):
        clock.advance(0.1)
    lc.stop()
    assert len(counts) == 1001
    assert set(counts) == {1}


def test_interval_zero_runs_every_pass():
    clock = ManualClock()
    counts = []
    lc = LoopingCall.with_count(clock, counts.append)
    lc.start(0)
    for _ in range(3):
        call = clock.run_next()
        assert call.time == 0.0  # always due at once
    assert counts == [1, 1, 1, 1]
    lc.stop()


def test_interval_zero_plain():
    clock = ManualClock()
    n = []
    lc = LoopingCall(clock, lambda: n.append(1))
    lc.start(0)
    clock.run_next()
    assert n == [1, 1]
    lc.stop()


def test_start_twice_and_stop_when_stopped_raise():
    clock = Clock()
    lc = LoopingCall(clock, lambda: None)
    with pytest.raises(RuntimeError):
        lc.stop()
    lc.start(1)
    with pytest.raises(RuntimeError):
        lc.start(1)
    lc.stop()
    with pytest.raises(ValueError):
        lc.start(-1)


def test_restart_after_stop():
    clock = Clock()
    calls = []
    lc = LoopingCall(clock, lambda: calls.append(clock.seconds()))
    lc.start(1)
    lc.stop()
    clock.advance(10)
    lc.start(1)
    clock.advance(1)
    assert calls == [0.0, 10.0, 11.0]
    lc.stop()


def test_cancelling_the_start_deferred_stops_the_loop():
    clock = Clock()
    calls = []
    lc = LoopingCall(clock, lambda: calls.append(1))
    d = lc.start(1)
    d.cancel()
    failure_result_of(d, CancelledError)
    assert not lc.running
    assert clock.get_delayed_calls() == []


def test_cancel_while_the_functions_deferred_is_pending(caplog):
    clock = Clock()
    pending = Deferred()
    lc = LoopingCall(clock, lambda: pending)
    d = lc.start(1)
    d.cancel()
    failure_result_of(d, CancelledError)
    pending.callback(None)  # nobody to tell
    assert clock.get_delayed_calls() == []


def test_failure_after_cancel_is_left_unhandled(caplog):
    import gc

    clock = Clock()
    pending = Deferred()
    lc = LoopingCall(clock, lambda: pending)
    d = lc.start(1)
    d.cancel()
    failure_result_of(d, CancelledError)
    pending.errback(Boom())
    pending = lc = None  # (not del: the lambda closes over pending)
    gc.collect()
    assert "Unhandled error in Deferred" in caplog.text


def test_repr():
    def tick():
        pass

    clock = Clock()
    lc = LoopingCall(clock, tick)
    assert "stopped" in repr(lc) and "tick" in repr(lc)
    lc.start(2)
    assert "every 2" in repr(lc)
    lc.stop()


# -- sleep ----------------------------------------------------------------------

def test_sleep_fires_after_the_delay():
    clock = Clock()
    d = sleep(clock, 3)
    clock.advance(2.9)
    assert not d.called
    clock.advance(0.1)
    assert success_result_of(d) is None


def test_cancelling_sleep_cancels_the_timer():
    clock = Clock()
    d = sleep(clock, 3)
    d.cancel()
    failure_result_of(d, CancelledError)
    assert clock.get_delayed_calls() == []
    clock.advance(5)  # nothing fires twice
