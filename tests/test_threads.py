"""The thread pool behind defer_to_thread, and blocking_call_from_thread."""

import asyncio
import contextlib
import threading
import time

import pytest

from reactor import CancelledError, Deferred, Reactor
from reactor.errors import ReactorClosed
from reactor.threads import ThreadPool, _Wait, blocking_call_from_thread
from support import run_until


@contextlib.contextmanager
def running_in_thread(reactor):
    """Run ``reactor`` in a background thread for the duration of the block."""
    started = threading.Event()
    reactor.call_soon(started.set)
    thread = threading.Thread(target=reactor.run, kwargs={"install_signal_handlers": False}, name="reactor-under-test")
    thread.start()
    assert started.wait(5)
    try:
        yield thread
    finally:
        reactor.call_from_thread(reactor.stop)
        thread.join(10)
        assert not thread.is_alive()


def pool_threads():
    return [t for t in threading.enumerate() if t.name.startswith("pyreactor-pool")]


# -- the pool -------------------------------------------------------------------


def test_defer_to_thread_never_runs_more_than_the_pool_size_at_once():
    r = Reactor(thread_pool_size=3)
    lock = threading.Lock()
    now = 0
    peak = 0

    def job(i):
        nonlocal now, peak
        with lock:
            now += 1
            peak = max(peak, now)
        time.sleep(0.02)
        with lock:
            now -= 1
        return i * i

    try:
        from reactor import gather

        results = r.run_until_complete(gather(*(r.defer_to_thread(job, i) for i in range(15))))
        assert results == [i * i for i in range(15)]
        assert peak == 3
    finally:
        r.close()


def test_pool_grows_only_while_jobs_outnumber_idle_workers(reactor):
    pool = ThreadPool(reactor, 4)
    for _ in range(5):
        reactor.run_until_complete(pool.submit(time.sleep, (0,), {}))
    # One job at a time: one worker was enough.
    assert pool.statistics()["threads"] == 1
    gate = threading.Event()
    ds = [pool.submit(gate.wait, (5,), {}) for _ in range(6)]
    stats = pool.statistics()
    assert stats["threads"] == 4 and stats["size"] == 4
    gate.set()
    run_until(reactor, lambda: all(d.called for d in ds))
    pool.stop()
    assert pool.statistics() == {"threads": 0, "busy": 0, "queued": 0, "size": 4}


def test_pool_threads_are_joined_when_run_returns(reactor):
    seen = []

    def main():
        d = reactor.defer_to_thread(lambda: threading.current_thread().name)
        d.add_callback(seen.append)
        d.add_callback(lambda _: reactor.stop())

    reactor.call_soon(main)
    reactor.run(install_signal_handlers=False)
    assert seen and seen[0].startswith("pyreactor-pool")
    assert pool_threads() == []
    assert reactor._pool is None


def test_close_joins_the_pool_of_a_reactor_that_never_ran():
    r = Reactor()
    gate = threading.Event()
    r.defer_to_thread(gate.wait, 5)
    assert len(pool_threads()) == 1
    gate.set()
    r.close()
    assert pool_threads() == []


def test_errors_reach_the_errback_with_their_type(reactor):
    def boom():
        raise KeyError("in a thread")

    with pytest.raises(KeyError, match="in a thread"):
        reactor.run_until_complete(reactor.defer_to_thread(boom))


def test_cancelling_a_queued_job_means_it_never_runs(reactor):
    ran = []
    gate = threading.Event()
    pool = ThreadPool(reactor, 1)
    busy = pool.submit(gate.wait, (5,), {})
    queued = pool.submit(ran.append, ("queued",), {})
    queued.cancel()
    with pytest.raises(CancelledError):
        reactor.run_until_complete(queued)
    gate.set()
    assert reactor.run_until_complete(busy) is True
    pool.stop()
    assert ran == []


def test_cancelling_a_running_job_drops_its_late_result(reactor, caplog):
    started = threading.Event()
    gate = threading.Event()

    def job():
        started.set()
        gate.wait(5)
        return "late"

    d = reactor.defer_to_thread(job)
    assert started.wait(5)
    d.cancel()
    gate.set()
    with pytest.raises(CancelledError):
        reactor.run_until_complete(d)
    # The late result arrives through the ready queue and is dropped quietly.
    reactor.run_until_complete(reactor.defer_to_thread(time.sleep, 0.01))
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_pool_refuses_work_once_stopped_and_stop_is_idempotent(reactor):
    pool = ThreadPool(reactor, 2)
    pool.stop()
    pool.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        pool.submit(print, (), {})
    with pytest.raises(ValueError):
        ThreadPool(reactor, 0)


def test_stop_finishes_queued_jobs_first(reactor):
    pool = ThreadPool(reactor, 1)
    done = []
    ds = [pool.submit(done.append, (i,), {}) for i in range(5)]
    pool.stop()
    assert done == [0, 1, 2, 3, 4]
    run_until(reactor, lambda: all(d.called for d in ds))


# -- blocking_call_from_thread -------------------------------------------------------


def test_blocking_call_returns_values_and_waits_on_deferreds(reactor):
    def later(value):
        d = Deferred()
        reactor.call_later(0.01, d.callback, value)
        return d

    with running_in_thread(reactor) as thread:
        assert blocking_call_from_thread(reactor, lambda a, b=0: a + b, 1, b=2) == 3
        assert blocking_call_from_thread(reactor, later, "deferred") == "deferred"
        assert blocking_call_from_thread(reactor, threading.current_thread) is thread


def test_blocking_call_reraises_exceptions_and_failures(reactor):
    def fails_later():
        d = Deferred()
        reactor.call_later(0.01, d.errback, LookupError("later"))
        return d

    def raises():
        raise ValueError("at once")

    with running_in_thread(reactor):
        with pytest.raises(ValueError, match="at once"):
            blocking_call_from_thread(reactor, raises)
        with pytest.raises(LookupError, match="later"):
            blocking_call_from_thread(reactor, fails_later)


def test_blocking_call_timeout_cancels_the_deferred(reactor):
    pending = Deferred()
    cancelled = []
    pending.add_errback(lambda f: cancelled.append(f.check(CancelledError)))
    with running_in_thread(reactor):
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="within 0.05 s"):
            blocking_call_from_thread(reactor, lambda: pending, timeout=0.05)
        assert 0.05 <= time.monotonic() - start < 2
        deadline = time.monotonic() + 5
        while not cancelled and time.monotonic() < deadline:
            time.sleep(0.005)
    assert cancelled == [CancelledError]


def test_blocking_call_that_times_out_before_it_starts_never_runs(reactor):
    ran = []
    outcome = []
    reactor.iterate(0)  # this thread is now the reactor's, and it does not serve meanwhile
    thread = threading.Thread(target=lambda: outcome.append(_catch(blocking_call_from_thread, reactor, ran.append, 1, timeout=0.02)))
    thread.start()
    thread.join(5)
    assert isinstance(outcome[0], TimeoutError)
    for _ in range(3):
        reactor.iterate(0)
    assert ran == []


def _catch(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except BaseException as exc:
        return exc


def test_blocking_call_refuses_the_reactor_thread(reactor):
    errors = []

    def inside():
        errors.append(_catch(blocking_call_from_thread, reactor, int))
        reactor.stop()

    reactor.call_soon(inside)
    reactor.run(install_signal_handlers=False)
    assert isinstance(errors[0], RuntimeError)
    assert "reactor's own thread" in str(errors[0])
    # After run() too: this thread still is the reactor's thread.
    with pytest.raises(RuntimeError, match="own thread"):
        blocking_call_from_thread(reactor, int)


def test_blocking_call_refuses_the_thread_of_the_asyncio_loop_under_the_reactor():
    async def main():
        r = Reactor("asyncio")
        try:
            with pytest.raises(RuntimeError, match="own thread"):
                blocking_call_from_thread(r, int)
        finally:
            r.close()

    asyncio.run(main())


def test_blocking_call_on_a_closed_reactor_raises():
    r = Reactor()
    r.close()
    errors = []
    thread = threading.Thread(target=lambda: errors.append(_catch(blocking_call_from_thread, r, int)))
    thread.start()
    thread.join(5)
    assert isinstance(errors[0], ReactorClosed)


def test_a_pool_worker_waiting_on_the_reactor_is_released_when_the_pool_stops(reactor):
    # A job that calls back into the reactor while the reactor stops would
    # deadlock the join in stop(); it gets a RuntimeError instead.
    waiting = threading.Event()
    outcome = []

    def job():
        waiting.set()
        outcome.append(_catch(blocking_call_from_thread, reactor, lambda: Deferred()))

    def main():
        reactor.defer_to_thread(job)
        reactor.call_soon(lambda: waiting.wait(5) and reactor.stop())

    reactor.call_soon(main)
    start = time.monotonic()
    reactor.run(install_signal_handlers=False)
    assert time.monotonic() - start < 5
    assert isinstance(outcome[0], RuntimeError) and "stopped" in str(outcome[0])
    assert pool_threads() == []
    # The dropped call is still queued; it and the cancel run harmlessly.
    for _ in range(3):
        reactor.iterate(0)


def test_a_pool_worker_cannot_start_waiting_once_its_pool_is_stopping(reactor):
    pool = ThreadPool(reactor, 1)
    reactor._pool = pool
    entered = threading.Event()
    release = threading.Event()
    outcome = []

    def job():
        entered.set()
        release.wait(5)
        outcome.append(_catch(blocking_call_from_thread, reactor, int))

    pool.submit(job, (), {})
    assert entered.wait(5)
    stopper = threading.Thread(target=pool.stop)
    stopper.start()
    while not pool._stopped:
        time.sleep(0.001)
    release.set()
    stopper.join(5)
    reactor._pool = None
    assert isinstance(outcome[0], RuntimeError) and "stopping" in str(outcome[0])
    run_until(reactor, lambda: not reactor._ready)


def test_a_worker_of_another_pool_may_wait(reactor):
    # Only this reactor's own workers are tied to its pool's lifetime.
    with running_in_thread(reactor):
        other = Reactor()
        try:
            d = other.defer_to_thread(blocking_call_from_thread, reactor, lambda: 7)
            assert other.run_until_complete(d) == 7
        finally:
            other.close()


def test_blocking_call_from_a_plain_thread_while_the_reactor_has_a_pool(reactor):
    with running_in_thread(reactor):
        assert blocking_call_from_thread(reactor, reactor.defer_to_thread, lambda: "via the pool") == "via the pool"
        # The pool exists now; this thread is not one of its workers.
        assert reactor._pool is not None
        assert blocking_call_from_thread(reactor, lambda: 5) == 5


def test_a_result_that_arrived_wins_over_a_late_give_up():
    wait = _Wait()
    wait.finish("arrived")
    wait.give_up(TimeoutError("too late"))
    assert wait.result == "arrived" and not wait.abandoned
