"""Reactor edge cases: descriptor failures, timers in one pass, signals, react, threads, odd timeouts.

The debug-mode dispatch (``_dispatch_debug``/``_timed``) is tested elsewhere.
"""

import functools
import logging
import math
import os
import signal
import socket
import tempfile
import threading
import time

import pytest

from reactor import Deferred, Reactor, react, succeed
from reactor.errors import ReactorAlreadyRunning, ReactorClosed
from support import SocketDescriptor, run_until


class Pair(SocketDescriptor):
    """A descriptor over one end of a socketpair; the test drives the other end."""

    def __init__(self):
        sock, self.peer = socket.socketpair()
        super().__init__(sock)

    def close(self):
        self.sock.close()
        self.peer.close()


@pytest.fixture
def pair():
    p = Pair()
    yield p
    p.close()


def in_main_thread():
    return threading.current_thread() is threading.main_thread()


# -- the Reactor object ------------------------------------------------------------


def test_context_manager_closes_the_reactor_and_repr_tells_the_state():
    with Reactor("select") as r:
        assert repr(r) == "<Reactor select idle>"
        seen = []
        r.call_soon(lambda: (seen.append(repr(r)), r.stop()))
        r.run(install_signal_handlers=False)
        assert seen == ["<Reactor select running>"]
    assert repr(r) == "<Reactor select closed>"
    with pytest.raises(ReactorClosed):
        r.iterate(0)


def test_close_while_running_raises_and_the_loop_goes_on(reactor):
    errors = []

    def try_close():
        try:
            reactor.close()
        except RuntimeError as exc:
            errors.append(str(exc))
        reactor.stop()

    reactor.call_soon(try_close)
    reactor.run(install_signal_handlers=False)
    assert errors == ["cannot close a running reactor"]
    # Still usable: the close was refused.
    reactor.call_soon(errors.append, "after")
    reactor.iterate(0)
    assert errors[-1] == "after"


def test_explicit_debug_false_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("PYREACTOR_DEBUG", "1")
    with Reactor("select") as on, Reactor("select", debug=False) as off:
        assert on.debug is True
        assert off.debug is False


def test_call_at_and_get_delayed_calls_earliest_first(reactor):
    ran = []
    now = reactor.seconds()
    late = reactor.call_at(now + 0.05, ran.append, "late")
    early = reactor.call_at(now + 0.01, ran.append, "early")
    dropped = reactor.call_later(0.02, ran.append, "dropped")
    dropped.cancel()
    assert reactor.get_delayed_calls() == [early, late]
    assert early.get_time() == now + 0.01
    run_until(reactor, lambda: len(ran) == 2)
    assert ran == ["early", "late"]
    assert reactor.get_delayed_calls() == []


# -- descriptors ---------------------------------------------------------------------


def test_add_writer_twice_is_once_and_remove_takes_it_away(reactor, pair):
    writes = []
    pair.on_write = lambda: writes.append(1)
    reactor.add_writer(pair)
    reactor.add_writer(pair)
    assert reactor.get_writers() == [pair]
    run_until(reactor, lambda: writes)
    reactor.remove_writer(pair)
    count = len(writes)
    reactor.iterate(0)
    assert len(writes) == count
    assert reactor.get_writers() == []


def test_add_reader_with_a_closed_socket_raises_and_registers_nothing(reactor, pair):
    pair.sock.close()  # fileno() is now -1
    with pytest.raises(ValueError):
        reactor.add_reader(pair)
    with pytest.raises(ValueError):
        reactor.add_writer(pair)
    assert reactor.get_readers() == [] and reactor.get_writers() == []


def test_a_reader_removed_by_an_earlier_callback_of_the_pass_is_not_called(reactor):
    # Two descriptors readable in the same pass; whichever runs first removes
    # the other, which must then not be called for the event already polled.
    socks = [socket.socketpair() for _ in range(2)]
    try:
        class Remover(SocketDescriptor):
            def on_read(self):
                super().on_read()
                other = descriptors[1] if self is descriptors[0] else descriptors[0]
                reactor.remove_reader(other)

        descriptors = [Remover(a) for a, _ in socks]
        for d in descriptors:
            reactor.add_reader(d)
        for _, b in socks:
            b.send(b"x")
        run_until(reactor, lambda: any(d.received for d in descriptors))
        assert sorted(len(d.received) for d in descriptors) == [0, 1]
        assert len(reactor.get_readers()) == 1
        reactor.remove_all()
    finally:
        for a, b in socks:
            a.close()
            b.close()


def test_remove_reader_when_fileno_raises_finds_it_by_identity(reactor, pair):
    reactor.add_reader(pair)
    reactor.add_writer(pair)

    def broken_fileno():
        raise ValueError("I/O operation on closed file")

    pair.fileno = broken_fileno
    reactor.remove_reader(pair)
    reactor.remove_writer(pair)
    assert reactor.get_readers() == [] and reactor.get_writers() == []
    # Removing again is a no-op, not an error.
    reactor.remove_reader(pair)


def test_on_write_raising_removes_the_descriptor_and_calls_on_close(reactor, pair, caplog):
    def explode():
        raise RuntimeError("on_write bug")

    pair.on_write = explode
    reactor.add_reader(pair)
    reactor.add_writer(pair)
    run_until(reactor, lambda: pair.closed_with is not None)
    assert pair.closed_with.check(RuntimeError)
    assert pair not in reactor.get_readers() and pair not in reactor.get_writers()
    assert any("on_write bug" in (r.exc_text or "") for r in caplog.records)


def test_on_close_raising_is_logged_and_the_loop_goes_on(reactor, pair, caplog):
    def explode():
        raise RuntimeError("on_read bug")

    def close_badly(reason):
        raise KeyError("on_close bug")

    pair.on_read = explode
    pair.on_close = close_badly
    reactor.add_reader(pair)
    pair.peer.send(b"x")
    ran = []
    reactor.call_later(0.02, ran.append, "timer")
    run_until(reactor, lambda: ran)
    assert pair not in reactor.get_readers()
    messages = [r.getMessage() for r in caplog.records]
    assert any("on_close" in m for m in messages), messages
    assert any("on_close bug" in (r.exc_text or "") for r in caplog.records)


# -- timers within one pass ----------------------------------------------------------------


def test_a_timer_cancelled_by_an_earlier_one_in_the_same_pass_does_not_run(reactor):
    ran = []
    when = reactor.seconds() + 0.01
    victim = None

    def first():
        ran.append("first")
        victim.cancel()

    reactor.call_at(when, first)
    victim = reactor.call_at(when, ran.append, "victim")
    reactor.call_at(when, ran.append, "third")
    run_until(reactor, lambda: "third" in ran)
    reactor.iterate(0)
    assert ran == ["first", "third"]
    assert victim.cancelled and not victim.called


def test_a_timer_reset_by_an_earlier_one_in_the_same_pass_runs_later(reactor):
    ran = []
    when = reactor.seconds() + 0.01
    moved = None

    def first():
        ran.append(("first", reactor.seconds()))
        moved.reset(0.05)

    reactor.call_at(when, first)
    moved = reactor.call_at(when, lambda: ran.append(("moved", reactor.seconds())))
    run_until(reactor, lambda: len(ran) == 2)
    (name1, t1), (name2, t2) = ran
    assert (name1, name2) == ("first", "moved")
    assert t2 - t1 >= 0.05


# Regression: timers due in the same pass as one raising SystemExit/KeyboardInterrupt are dropped: active() forever, never run (fixed).
def test_timers_due_with_one_that_exits_still_run_later(reactor):
    ran = []
    when = reactor.seconds() + 0.01

    def leave():
        raise SystemExit(3)  # or a KeyboardInterrupt without signal handlers

    reactor.call_at(when, leave)
    survivor = reactor.call_at(when, ran.append, "survivor")
    try:
        with pytest.raises(SystemExit):
            run_until(reactor, lambda: False, timeout=2)
        # The caller caught it and drives the loop again.
        for _ in range(5):
            reactor.iterate(0.01)
        assert ran == ["survivor"]
        assert not survivor.active()
    finally:
        survivor.cancel()


# Regression: the debug-mode pass (_dispatch_debug) still drops due timers after one raising SystemExit (fixed).
def test_timers_due_with_one_that_exits_still_run_later_in_debug_mode():
    with Reactor("select", debug=True) as r:
        ran = []
        when = r.seconds() + 0.01

        def leave():
            raise SystemExit(3)

        r.call_at(when, leave)
        survivor = r.call_at(when, ran.append, "survivor")
        try:
            with pytest.raises(SystemExit):
                run_until(r, lambda: False, timeout=2)
            for _ in range(5):
                r.iterate(0.01)
            assert ran == ["survivor"]
        finally:
            survivor.cancel()


def test_ready_calls_queued_with_one_that_exits_still_run_later(reactor):
    ran = []

    def leave():
        raise SystemExit(3)

    reactor.call_soon(leave)
    reactor.call_soon(ran.append, "survivor")
    with pytest.raises(SystemExit):
        reactor.iterate(0)
    reactor.iterate(0)
    assert ran == ["survivor"]


def test_a_sub_millisecond_timer_does_not_make_the_loop_spin(reactor):
    # poll(2) counts whole milliseconds: 0.4 ms rounded down would be a busy loop.
    worst = 0
    for _ in range(20):
        fired = []
        reactor.call_later(0.0004, fired.append, True)
        passes = 0
        while not fired:
            reactor.iterate(1.0)
            passes += 1
        worst = max(worst, passes)
    assert worst <= 3


# -- signals ------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_run_after_the_hooks_and_the_old_handler_comes_back(reactor, signum):
    if not in_main_thread():
        pytest.skip("signal handlers live in the main thread")
    before = signal.getsignal(signum)
    order = []

    def send():
        if signal.getsignal(signum) == before:
            # Not installed: sending would kill the test run.
            order.append("handler not installed")
            reactor.stop()
            return
        os.kill(os.getpid(), signum)

    def slow_hook():
        d = Deferred()
        reactor.call_later(0.02, lambda: (order.append("slow hook"), d.callback(None)))
        return d

    reactor.add_shutdown_hook(order.append, "hook")
    reactor.add_shutdown_hook(slow_hook)
    reactor.call_later(0.01, send)
    reactor.run()
    assert order == ["hook", "slow hook"]
    assert not reactor.running
    assert signal.getsignal(signum) == before


def _blocked_in_a_syscall(thread: threading.Thread) -> bool:
    """True while ``thread`` sleeps in the kernel (here: the loop waiting in its poll)."""
    with open(f"/proc/self/task/{thread.native_id}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "S"


def test_a_signal_the_poll_does_not_see_still_stops_run(reactor):
    # The C-level handler may run while the loop is already asleep in its
    # poll and that poll is not interrupted: the signal came to another
    # thread, or just before the poll began. Only a wake-up fd written by
    # the C handler (signal.set_wakeup_fd) ends that sleep; without it run()
    # would sleep until the next I/O or timer (here the 10 s watchdog).
    if not in_main_thread():
        pytest.skip("signal handlers live in the main thread")
    before = signal.getsignal(signal.SIGTERM)
    outcome = []
    main = threading.main_thread()

    def signal_from_another_thread():
        deadline = time.monotonic() + 5.0
        while not _blocked_in_a_syscall(main) and time.monotonic() < deadline:
            time.sleep(0.001)
        # Sent to this thread itself: the main thread's poll is not interrupted.
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    def watchdog():
        outcome.append("still running after 10 s")
        reactor.stop()

    seen = []
    helper = threading.Thread(target=signal_from_another_thread)
    timer = reactor.call_later(10.0, watchdog)
    reactor.call_soon(helper.start)
    # The wake-up pipe is the reactor's own: users do not see it.
    reactor.call_soon(lambda: seen.append((reactor.get_readers(), reactor.remove_all())))
    started = time.monotonic()
    reactor.run()
    helper.join()
    if timer.active():
        timer.cancel()
    assert outcome == []
    assert seen == [([], [])]
    assert time.monotonic() - started < 5.0
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_second_signal_before_the_loop_notices_the_first_is_harmless(reactor):
    if not in_main_thread():
        pytest.skip("signal handlers live in the main thread")
    before = signal.getsignal(signal.SIGINT)
    hooks = []

    def send_twice():
        if signal.getsignal(signal.SIGINT) == before:
            hooks.append("handler not installed")
            reactor.stop()
            return
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)

    reactor.add_shutdown_hook(hooks.append, "hook")
    reactor.call_soon(send_twice)
    reactor.run()
    assert hooks == ["hook"]
    assert signal.getsignal(signal.SIGINT) == before


def test_run_in_another_thread_leaves_signals_alone(reactor):
    before = signal.getsignal(signal.SIGINT)
    started = threading.Event()
    outcome = []

    def target():
        try:
            reactor.run()  # install_signal_handlers=True, but not the main thread
            outcome.append("returned")
        except BaseException as exc:  # pragma: no cover - the failure being tested for
            outcome.append(exc)

    reactor.call_soon(started.set)
    thread = threading.Thread(target=target)
    thread.start()
    assert started.wait(5)
    assert reactor.running
    assert not reactor.in_reactor_thread()
    reactor.stop()
    thread.join(5)
    assert outcome == ["returned"]
    assert signal.getsignal(signal.SIGINT) == before


# Regression: a second stop()/SIGINT while shutdown hooks are awaited makes the loop busy-poll (fixed).
def test_a_second_stop_while_hooks_are_awaited_does_not_spin(reactor):
    polls = [0]
    real_poll = reactor._poll

    def counting_poll(timeout):
        polls[0] += 1
        return real_poll(timeout)

    reactor._poll = counting_poll

    def hook():
        d = Deferred()
        reactor.call_later(0.2, d.callback, None)
        # What a second Ctrl-C, or a second component, does meanwhile.
        reactor.call_later(0.01, reactor.stop)
        return d

    reactor.add_shutdown_hook(hook)
    reactor.call_soon(reactor.stop)
    reactor.run(install_signal_handlers=False)
    # Two timers and a wake-up or two: a handful of polls, not one per microsecond.
    assert polls[0] < 50, f"{polls[0]} polls while waiting 0.2 s for a hook"


# -- run_until_complete, react ------------------------------------------------------------


def test_run_until_complete_with_a_fired_deferred_returns_at_once(reactor):
    assert reactor.run_until_complete(succeed("done")) == "done"
    failed = Deferred()
    failed.errback(KeyError("gone"))
    with pytest.raises(KeyError):
        reactor.run_until_complete(failed)
    assert not reactor.running


# Regression: run_until_complete on a fired Deferred leaves _stopping set, so iterate() never waits (fixed).
def test_iterate_still_waits_after_run_until_complete_on_a_fired_deferred(reactor):
    reactor.run_until_complete(succeed(1))
    start = time.monotonic()
    reactor.iterate(0.05)
    assert time.monotonic() - start >= 0.04


# Regression: a refused nested run_until_complete still stops the outer run() when its Deferred fires (fixed).
def test_a_refused_nested_run_until_complete_does_not_stop_the_outer_run(reactor):
    d = Deferred()
    log = []

    def nested():
        try:
            reactor.run_until_complete(d)
        except ReactorAlreadyRunning:
            log.append("refused")
        reactor.call_later(0.01, d.callback, "fired")
        reactor.call_later(0.1, lambda: (log.append("stopped by its owner"), reactor.stop()))

    reactor.call_soon(nested)
    try:
        reactor.run(install_signal_handlers=False)
        assert log == ["refused", "stopped by its owner"]
    finally:
        for call in reactor.get_delayed_calls():
            call.cancel()


# Regression: stop() during run_until_complete ends the loop with an empty result box: IndexError (fixed).
def test_stop_during_run_until_complete_raises_a_clear_error(reactor):
    never = Deferred()
    stopper = reactor.call_later(0.01, reactor.stop)
    try:
        with pytest.raises(RuntimeError, match="stop"):
            reactor.run_until_complete(never)
    finally:
        stopper.cancel()
    assert not reactor.running


# Regression: run_until_complete interrupted by stop() leaves its callback on the Deferred; firing later stops an unrelated run() (fixed).
def test_an_interrupted_run_until_complete_does_not_stop_a_later_run(reactor):
    d = Deferred()
    reactor.call_later(0.01, reactor.stop)
    with pytest.raises(RuntimeError):
        reactor.run_until_complete(d)
    log = []
    reactor.call_later(0.01, d.callback, "late result")
    owner = reactor.call_later(0.1, lambda: (log.append("stopped by its owner"), reactor.stop()))
    try:
        reactor.run(install_signal_handlers=False)
        assert log == ["stopped by its owner"]
    finally:
        owner.cancel()


def test_react_with_an_already_fired_result_still_runs_the_hooks():
    order = []

    def main(reactor):
        def hook():
            d = Deferred()
            reactor.call_later(0.01, lambda: (order.append("hook done"), d.callback(None)))
            return d

        reactor.add_shutdown_hook(hook)
        return succeed("result")

    assert react(main, multiplexer="select") == "result"
    assert order == ["hook done"]
    assert react(lambda reactor, x: x * 2, 21) == 42


# Regression: react() raises IndexError when the reactor stops before main's Deferred fires (fixed).
def test_react_stopped_before_main_finishes_does_not_raise_index_error():
    def main(reactor):
        reactor.call_later(0.01, reactor.stop)
        return Deferred()

    try:
        react(main, multiplexer="select")
    except IndexError as exc:
        pytest.fail(f"react() leaked an internal IndexError: {exc!r}")
    except Exception:
        pass  # a clear error (cancelled, stopped) is fine


# Regression: iterate() called from a callback pops from an empty ready deque and kills run() (fixed).
def test_iterate_from_inside_a_callback_does_not_kill_run(reactor, caplog):
    ran = []

    def reentrant():
        ran.append("a")
        reactor.iterate(0)  # a nested loop, as a modal dialog would run

    reactor.call_soon(reentrant)
    reactor.call_soon(ran.append, "b")
    reactor.call_soon(ran.append, "c")
    stopper = reactor.call_later(0.02, reactor.stop)
    try:
        reactor.run(install_signal_handlers=False)
        assert sorted(ran) == ["a", "b", "c"]
    finally:
        stopper.cancel()


# -- threads ---------------------------------------------------------------------------------


def test_iterate_from_another_thread_makes_that_thread_the_reactor_thread():
    with Reactor("select") as r:
        assert r.in_reactor_thread()
        answers = []

        def drive():
            r.iterate(0)
            answers.append(r.in_reactor_thread())

        thread = threading.Thread(target=drive)
        thread.start()
        thread.join()
        assert answers == [True]
        assert not r.in_reactor_thread()


def test_close_stops_a_pool_used_without_run():
    threads = set(threading.enumerate())
    r = Reactor("select")
    results = []
    r.defer_to_thread(threading.get_ident).add_callback(results.append)
    while not results:
        r.iterate(1.0)
    assert results[0] != threading.get_ident()
    assert set(threading.enumerate()) != threads  # the worker waits for more
    r.close()
    assert set(threading.enumerate()) == threads


# Regression: before the first pass in_reactor_thread() is True in every thread, not only the creator's (fixed).
def test_in_reactor_thread_is_false_in_another_thread_before_the_first_pass():
    with Reactor("select") as r:
        answers = []
        thread = threading.Thread(target=lambda: answers.append(r.in_reactor_thread()))
        thread.start()
        thread.join()
        assert r.in_reactor_thread()
        assert answers == [False]


# Regression: Waker.on_read clears _pending before draining, so a racing wake is eaten and later wakes are skipped (fixed).
def test_a_wake_racing_with_the_drain_is_not_lost(reactor, monkeypatch):
    waker_fd = reactor._waker.fileno()
    real_read = os.read
    armed = [True]
    ran = []

    def read_with_a_racing_thread(fd, n):
        # Another thread calls call_from_thread just as the loop drains the wake-up fd.
        if armed[0] and fd == waker_fd:
            armed[0] = False
            racer = threading.Thread(target=reactor.call_from_thread, args=(ran.append, "racer"))
            racer.start()
            racer.join()
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", read_with_a_racing_thread)
    reactor.call_from_thread(ran.append, "first")
    run_until(reactor, lambda: ran == ["first", "racer"])
    monkeypatch.setattr(os, "read", real_read)
    # Now a later wake-up must still reach a loop asleep in poll.
    timer = threading.Timer(0.02, reactor.call_from_thread, (ran.append, "later"))
    start = time.monotonic()
    timer.start()
    try:
        while len(ran) < 3:
            reactor.iterate(0.3)
        assert time.monotonic() - start < 0.2
    finally:
        timer.join()


# Regression: _thread_id now starts as the creating thread, so blocking_call_from_thread from it races the reactor thread's start and may raise 'own thread' (fixed).
def test_blocking_call_from_the_creating_thread_while_the_reactor_thread_starts(reactor):
    from reactor.threads import blocking_call_from_thread

    go = threading.Event()

    def serve():
        go.wait(5)
        reactor.run(install_signal_handlers=False)

    thread = threading.Thread(target=serve)
    thread.start()
    # The usual embedding: start the loop's thread, then use it at once.
    starter = threading.Timer(0.02, go.set)
    starter.start()
    try:
        assert blocking_call_from_thread(reactor, lambda: 42, timeout=5) == 42
    finally:
        go.set()
        starter.join()

        def stop_if_running():
            if reactor.running:
                reactor.stop()

        reactor.call_from_thread(stop_if_running)
        thread.join(5)
        reactor.iterate(0)


# Regression: call_from_thread on a closed reactor writes 8 bytes into whatever file reuses the wake-up fd (fixed).
def test_call_from_thread_after_close_does_not_write_into_a_reused_fd():
    r = Reactor("select")
    r.iterate(0)
    old_fd = r._waker.fileno()
    r.close()
    fd, path = tempfile.mkstemp()
    try:
        if fd != old_fd:
            pytest.skip("the wake-up fd number was not reused")
        try:
            r.call_from_thread(print, "too late")
        except ReactorClosed:
            pass
        assert os.fstat(fd).st_size == 0
    finally:
        os.close(fd)
        os.unlink(path)


# -- odd timeouts and delays -------------------------------------------------------------


def test_negative_iterate_timeout_polls_without_waiting(reactor, pair):
    # Regression: select rejects a negative timeout and the pass reports no I/O (fixed).
    # Regression: a negative timeout reaches poll/epoll as 'wait forever' (fixed).
    # deadline - now, computed a little late, is negative: one pass, no waiting.
    reactor.add_reader(pair)
    pair.peer.send(b"ready")
    waker = threading.Timer(0.3, reactor.call_from_thread, (lambda: None,))
    waker.start()
    try:
        reactor.iterate(-0.01)
        assert pair.received == b"ready"
        reactor.remove_reader(pair)
        start = time.monotonic()
        reactor.iterate(-0.01)
        assert time.monotonic() - start < 0.15
    finally:
        reactor.remove_reader(pair)
        waker.cancel()
        waker.join()
        reactor.iterate(0)


@pytest.mark.parametrize("delay", [30 * 86400, math.inf], ids=["30-days", "inf"])
def test_a_far_away_timer_does_not_break_run(reactor, delay):
    # Regression: an infinite delay, or one over ~24.8 days, overflowed the poll timeout (fixed).
    far = reactor.call_later(delay, pytest.fail, "far timer fired")

    def stop_if_running():
        if reactor.running:
            reactor.stop()

    stopper = threading.Timer(0.05, reactor.call_from_thread, (stop_if_running,))
    stopper.start()
    try:
        reactor.run(install_signal_handlers=False)
    finally:
        stopper.join()
        far.cancel()
        reactor.iterate(0)
    assert not far.called


# Regression: call_later(nan) is accepted; the NaN timeout then breaks poll/epoll passes (fixed).
def test_a_nan_delay_is_refused(reactor):
    try:
        with pytest.raises(ValueError):
            reactor.call_later(math.nan, lambda: None)
    finally:
        for call in reactor.get_delayed_calls():
            call.cancel()


# -- what the log says ------------------------------------------------------------------------


def test_failing_hooks_are_named_in_the_log(reactor, caplog):
    class Service:
        def shut(self):
            raise RuntimeError("method hook")

        def __repr__(self):
            return "<Service>"

    def raiser(what):
        raise RuntimeError(what)

    reactor.add_shutdown_hook(Service().shut)
    reactor.add_shutdown_hook(functools.partial(raiser, "partial hook"))
    reactor.call_soon(reactor.stop)
    with caplog.at_level(logging.ERROR, logger="reactor"):
        reactor.run(install_signal_handlers=False)
    messages = [r.getMessage() for r in caplog.records if r.name == "reactor"]
    assert any("Service.shut of <Service>" in m and "method hook" in m for m in messages), messages
    assert any("functools.partial(" in m and "partial hook" in m for m in messages), messages
