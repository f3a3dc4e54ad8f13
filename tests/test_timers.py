"""The timer heap: ordering, cancel/reset/delay, lazy deletion and compaction."""

import gc

import pytest

from reactor import Reactor
from reactor.testing import Clock
from reactor.timers import TimerQueue


def test_calls_run_in_time_order_ties_first_scheduled_first():
    clock = Clock()
    order = []
    clock.call_later(2, order.append, "c")
    clock.call_later(1, order.append, "a")
    clock.call_later(1, order.append, "b")
    clock.call_later(0, order.append, "now")
    clock.advance(1)
    assert order == ["now", "a", "b"]
    clock.advance(1)
    assert order == ["now", "a", "b", "c"]


def test_cancel_is_idempotent_and_stops_the_call():
    clock = Clock()
    ran = []
    call = clock.call_later(1, ran.append, 1)
    assert call.active()
    call.cancel()
    call.cancel()
    assert not call.active() and call.cancelled and not call.called
    clock.advance(5)
    assert ran == []
    assert clock.get_delayed_calls() == []


def test_cancel_after_run_does_nothing():
    clock = Clock()
    call = clock.call_later(1, lambda: None)
    clock.advance(1)
    assert call.called
    call.cancel()
    assert not call.cancelled


def test_reset_moves_the_call_relative_to_now():
    clock = Clock()
    ran = []
    call = clock.call_later(5, ran.append, "x")
    clock.advance(1)
    call.reset(10)
    assert call.get_time() == 11
    clock.advance(9)
    assert ran == []
    clock.advance(1)
    assert ran == ["x"]


def test_reset_earlier_and_delay():
    clock = Clock()
    ran = []
    a = clock.call_later(10, ran.append, "a")
    b = clock.call_later(5, ran.append, "b")
    a.reset(1)
    b.delay(2)
    assert b.time == 7
    clock.advance(1)
    assert ran == ["a"]
    clock.advance(6)
    assert ran == ["a", "b"]
    # Only the live entries remain counted.
    assert len(clock._timers) == 0


def test_reset_or_delay_a_finished_call_raises():
    clock = Clock()
    done = clock.call_later(0, lambda: None)
    clock.advance(0)
    with pytest.raises(ValueError, match="already ran"):
        done.reset(1)
    gone = clock.call_later(1, lambda: None)
    gone.cancel()
    with pytest.raises(ValueError, match="cancelled"):
        gone.delay(1)


def test_a_call_can_cancel_a_later_call_due_in_the_same_batch():
    clock = Clock()
    ran = []
    second = clock.call_later(1, ran.append, "second")
    clock.call_later(0.5, second.cancel)
    clock.advance(2)
    assert ran == []


def test_a_call_can_reset_a_later_call_due_in_the_same_batch():
    clock = Clock()
    ran = []
    second = clock.call_later(1, ran.append, "second")
    clock.call_later(0.5, second.reset, 10)
    clock.advance(2)
    assert ran == []
    clock.advance(10)
    assert ran == ["second"]


def test_clock_advance_error_propagates_and_keeps_the_rest():
    clock = Clock()
    ran = []

    def boom():
        raise RuntimeError("boom")

    clock.call_later(1, boom)
    clock.call_later(1, ran.append, "after")
    with pytest.raises(RuntimeError):
        clock.advance(1)
    clock.advance(0)
    assert ran == ["after"]


def test_clock_pump_and_negative_advance():
    clock = Clock()
    ran = []
    clock.call_later(3, ran.append, 3)
    clock.pump([1, 1, 1])
    assert ran == [3] and clock.seconds() == 3
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_repr_names_the_function_and_state():
    clock = Clock()
    call = clock.call_later(1, test_repr_names_the_function_and_state)
    assert "test_repr_names_the_function_and_state" in repr(call) and "pending" in repr(call)
    call.cancel()
    assert "cancelled" in repr(call)


def test_mass_cancellation_compacts_the_heap():
    queue = TimerQueue(lambda: 0.0)
    calls = [queue.call_at(float(i), print, (), {}) for i in range(100_000)]
    for call in calls[::2]:
        call.cancel()
    for call in calls[1::4]:
        call.cancel()
    # 75% dead: compaction keeps the heap within twice the live count.
    assert len(queue) == 25_000
    assert len(queue.heap) <= 2 * len(queue)
    for call in calls:
        call.cancel()
    assert len(queue) == 0
    assert len(queue.heap) <= 64 + 1


def test_a_million_timers_half_cancelled_run_to_completion():
    reactor = Reactor("epoll" if hasattr(__import__("select"), "epoll") else None)
    try:
        count = [0]

        def tick():
            count[0] += 1

        now = reactor.seconds()
        calls = [reactor.call_at(now + (i % 1000) * 1e-6, tick) for i in range(1_000_000)]
        for call in calls[::2]:
            call.cancel()
        assert len(reactor._timers.heap) <= 2 * 500_000
        del calls
        gc.collect()
        while reactor._timers.next_time() is not None:
            reactor.iterate(0.01)
        assert count[0] == 500_000
        assert len(reactor._timers.heap) == 0
    finally:
        reactor.close()
