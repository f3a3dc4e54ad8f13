"""The reactor loop on every multiplexer: timers, ready calls, threads, descriptors, stop."""

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from reactor import Deferred, Reactor, react
from reactor.errors import ReactorAlreadyRunning, ReactorClosed, ReactorNotRunning
from reactor.multiplexers import available, make_multiplexer
from support import SocketDescriptor, run_until


# -- timers and ready calls --------------------------------------------------


def test_timers_fire_in_time_order_with_fifo_ties(reactor):
    order = []
    now = reactor.seconds()
    reactor.call_at(now + 0.03, order.append, "late")
    reactor.call_at(now + 0.01, order.append, "tie-1")
    reactor.call_at(now + 0.01, order.append, "tie-2")
    reactor.call_at(now + 0.01, order.append, "tie-3")
    reactor.call_later(0, order.append, "zero")
    run_until(reactor, lambda: len(order) == 5)
    assert order == ["zero", "tie-1", "tie-2", "tie-3", "late"]


def test_timer_does_not_fire_early(reactor):
    fired = []
    start = reactor.seconds()
    reactor.call_later(0.05, lambda: fired.append(reactor.seconds() - start))
    run_until(reactor, lambda: fired)
    assert fired[0] >= 0.05


def test_cancel_reset_and_delay_on_the_reactor(reactor):
    ran = []
    cancelled = reactor.call_later(0.01, ran.append, "cancelled")
    cancelled.cancel()
    moved = reactor.call_later(10, ran.append, "moved")
    moved.reset(0.02)
    delayed = reactor.call_later(0.01, ran.append, "delayed")
    delayed.delay(0.02)
    run_until(reactor, lambda: len(ran) == 2)
    assert ran == ["moved", "delayed"]
    assert reactor.get_delayed_calls() == []


def test_call_soon_is_fifo_and_cancellable(reactor):
    order = []
    for i in range(100):
        reactor.call_soon(order.append, i)
    skipped = reactor.call_soon(order.append, "skipped")
    skipped.cancel()
    reactor.iterate(0)
    assert order == list(range(100))


def test_call_soon_reset_moves_it_to_the_timers(reactor):
    ran = []
    call = reactor.call_soon(ran.append, "x")
    call.reset(0.01)
    reactor.iterate(0)
    assert ran == []
    run_until(reactor, lambda: ran)
    assert ran == ["x"]


def test_callbacks_scheduled_during_a_pass_run_in_the_next(reactor):
    order = []

    def first():
        order.append("first")
        reactor.call_soon(order.append, "second")

    reactor.call_soon(first)
    reactor.iterate(0)
    assert order == ["first"]
    reactor.iterate(0)
    assert order == ["first", "second"]


def test_self_rescheduling_callback_does_not_starve_io(reactor):
    a, b = socket.socketpair()
    desc = SocketDescriptor(a)
    spins = [0]

    def spin():
        spins[0] += 1
        reactor.call_soon(spin)

    try:
        reactor.add_reader(desc)
        spin_call = reactor.call_soon(spin)
        b.send(b"hello")
        run_until(reactor, lambda: desc.received == b"hello")
        assert spins[0] < 100
    finally:
        spin_call.cancel()
        for call in reactor._ready:
            call.cancel()
        reactor.remove_reader(desc)
        a.close()
        b.close()


def test_a_raising_callback_is_logged_and_the_loop_goes_on(reactor, caplog):
    ran = []

    def boom():
        raise ValueError("user bug")

    reactor.call_soon(boom)
    reactor.call_later(0, boom)
    reactor.call_soon(ran.append, "after")
    with caplog.at_level(logging.ERROR, logger="reactor"):
        reactor.iterate(0)
        reactor.iterate(0)
    assert ran == ["after"]
    errors = [r for r in caplog.records if r.name == "reactor"]
    assert len(errors) == 2
    assert all("user bug" in r.exc_text or "user bug" in str(r.exc_info) for r in errors)


# -- threads ------------------------------------------------------------------


def test_call_from_thread_many_threads_each_in_order(reactor):
    seen = {t: [] for t in range(8)}
    threads = [threading.Thread(target=lambda t=t: [reactor.call_from_thread(seen[t].append, i) for i in range(10_000)]) for t in range(8)]
    for thread in threads:
        thread.start()
    run_until(reactor, lambda: all(len(v) == 10_000 for v in seen.values()), timeout=30)
    for thread in threads:
        thread.join()
    for values in seen.values():
        assert values == list(range(10_000))


def test_call_from_thread_wakes_a_blocked_loop_quickly(reactor):
    woke = []
    sent = []

    def poke():
        time.sleep(0.05)
        sent.append(time.monotonic())
        reactor.call_from_thread(woke.append, True)

    thread = threading.Thread(target=poke)
    thread.start()
    # No timers: the loop blocks in poll until something wakes it.
    reactor.iterate(5.0)
    while not woke:
        reactor.iterate(5.0)
    latency = time.monotonic() - sent[0]
    thread.join()
    assert latency < 0.05


def test_defer_to_thread_runs_in_a_pool_thread(reactor):
    results = []
    main = threading.get_ident()
    d = reactor.defer_to_thread(threading.get_ident)
    d.add_callback(results.append)
    run_until(reactor, lambda: results)
    assert results[0] != main
    failed = reactor.defer_to_thread(lambda: 1 / 0)
    errors = []
    failed.add_errback(lambda f: errors.append(f.type))
    run_until(reactor, lambda: errors)
    assert errors == [ZeroDivisionError]
    reactor._pool.stop()
    reactor._pool = None


# -- descriptors --------------------------------------------------------------


def test_socketpair_descriptor_read_and_write_dispatch(reactor):
    a, b = socket.socketpair()
    desc = SocketDescriptor(a)
    try:
        reactor.add_reader(desc)
        reactor.add_writer(desc)
        run_until(reactor, lambda: desc.writes > 0)
        reactor.remove_writer(desc)
        writes = desc.writes
        b.sendall(b"ping")
        run_until(reactor, lambda: desc.received == b"ping")
        reactor.iterate(0)
        assert desc.writes == writes
        assert reactor.get_readers() == [desc]
        assert reactor.get_writers() == []
    finally:
        reactor.remove_reader(desc)
        a.close()
        b.close()


def test_peer_hangup_counts_as_readable(reactor):
    a, b = socket.socketpair()
    desc = SocketDescriptor(a)
    eof = []
    desc.on_read = lambda: eof.append(a.recv(10))
    try:
        reactor.add_reader(desc)
        b.close()
        run_until(reactor, lambda: eof)
        assert eof[0] == b""
    finally:
        reactor.remove_reader(desc)
        a.close()


def test_raising_descriptor_is_removed_closed_logged_and_others_served(reactor, caplog):
    a1, b1 = socket.socketpair()
    a2, b2 = socket.socketpair()
    bad = SocketDescriptor(a1)
    good = SocketDescriptor(a2)

    def explode():
        raise RuntimeError("descriptor bug")

    bad.on_read = explode
    try:
        reactor.add_reader(bad)
        reactor.add_reader(good)
        b1.send(b"x")
        b2.send(b"y")
        with caplog.at_level(logging.ERROR, logger="reactor"):
            run_until(reactor, lambda: bad.closed_with is not None and good.received)
        assert bad.closed_with.check(RuntimeError)
        assert bad not in reactor.get_readers()
        assert any("descriptor bug" in (r.exc_text or "") for r in caplog.records)
        b2.send(b"z")
        run_until(reactor, lambda: good.received == b"yz")
    finally:
        reactor.remove_reader(good)
        for s in (a1, b1, a2, b2):
            s.close()


def test_remove_after_close_finds_the_descriptor_by_identity(reactor):
    a, b = socket.socketpair()
    desc = SocketDescriptor(a)
    reactor.add_reader(desc)
    reactor.add_writer(desc)
    a.close()  # fileno() is now -1
    reactor.remove_reader(desc)
    reactor.remove_writer(desc)
    assert reactor.get_readers() == [] and reactor.get_writers() == []
    b.close()


def test_remove_all_returns_user_descriptors(reactor):
    a, b = socket.socketpair()
    desc = SocketDescriptor(a)
    reactor.add_reader(desc)
    reactor.add_reader(desc)  # twice is once
    reactor.add_writer(desc)
    assert reactor.remove_all() == [desc]
    assert reactor.get_readers() == []
    a.close()
    b.close()


# -- iterate, run, stop ----------------------------------------------------------


def test_iterate_zero_does_not_block(reactor):
    start = time.monotonic()
    for _ in range(100):
        reactor.iterate(0)
    assert time.monotonic() - start < 0.5


def test_iterate_blocks_at_most_its_timeout_when_idle(reactor):
    start = time.monotonic()
    reactor.iterate(0.05)
    took = time.monotonic() - start
    assert 0.04 <= took < 0.5


def test_iterate_wakes_for_a_timer_before_its_timeout(reactor):
    fired = []
    reactor.call_later(0.02, fired.append, 1)
    start = time.monotonic()
    while not fired:
        reactor.iterate(2.0)
    assert time.monotonic() - start < 1.0


def test_stop_from_a_callback(reactor):
    reactor.call_later(0.01, reactor.stop)
    reactor.run(install_signal_handlers=False)
    assert not reactor.running


def test_stop_from_another_thread(reactor):
    started = threading.Event()
    reactor.call_soon(started.set)
    thread = threading.Thread(target=lambda: (started.wait(5), time.sleep(0.02), reactor.stop()))
    thread.start()
    reactor.run(install_signal_handlers=False)
    thread.join()
    assert not reactor.running


def test_stop_when_not_running_raises(reactor):
    with pytest.raises(ReactorNotRunning):
        reactor.stop()


def test_run_twice_at_once_raises(reactor):
    errors = []

    def nested():
        try:
            reactor.run()
        except ReactorAlreadyRunning as exc:
            errors.append(exc)
        reactor.stop()

    reactor.call_soon(nested)
    reactor.run(install_signal_handlers=False)
    assert len(errors) == 1


def test_shutdown_hooks_run_and_their_deferreds_are_awaited(reactor):
    order = []

    def slow_hook():
        d = Deferred()
        reactor.call_later(0.02, lambda: (order.append("slow done"), d.callback(None)))
        return d

    reactor.add_shutdown_hook(order.append, "plain")
    reactor.add_shutdown_hook(slow_hook)
    reactor.call_soon(reactor.stop)
    reactor.run(install_signal_handlers=False)
    assert order == ["plain", "slow done"]


def test_failing_shutdown_hook_is_logged(reactor, caplog):
    def bad_hook():
        raise RuntimeError("hook bug")

    reactor.add_shutdown_hook(bad_hook)
    reactor.call_soon(reactor.stop)
    with caplog.at_level(logging.ERROR, logger="reactor"):
        reactor.run(install_signal_handlers=False)
    assert any("hook bug" in r.getMessage() for r in caplog.records)


def test_shutdown_hook_timeout_is_bounded(reactor, caplog):
    reactor.shutdown_timeout = 0.05
    never = Deferred()
    reactor.add_shutdown_hook(lambda: never)
    reactor.call_soon(reactor.stop)
    start = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="reactor"):
        reactor.run(install_signal_handlers=False)
    assert time.monotonic() - start < 2
    assert any("did not finish" in r.getMessage() for r in caplog.records)


def test_run_until_complete_with_a_deferred_and_a_coroutine(reactor):
    d = Deferred()
    reactor.call_later(0.01, d.callback, 42)
    assert reactor.run_until_complete(d) == 42

    async def main():
        x = Deferred()
        reactor.call_later(0.01, x.callback, 7)
        return await x * 2

    assert reactor.run_until_complete(main()) == 14
    failing = Deferred()
    reactor.call_soon(failing.errback, KeyError("k"))
    with pytest.raises(KeyError):
        reactor.run_until_complete(failing)


def test_closed_reactor_refuses_work():
    r = Reactor()
    r.close()
    r.close()
    with pytest.raises(ReactorClosed):
        r.iterate(0)
    with pytest.raises(ReactorClosed):
        r.run()


@pytest.mark.parametrize("name", available())
def test_close_leaves_no_fd_or_thread(name):
    fds = set(os.listdir("/proc/self/fd"))
    threads = threading.active_count()
    r = Reactor(name)
    d = r.defer_to_thread(time.sleep, 0)
    r.run_until_complete(d)
    r.close()
    assert set(os.listdir("/proc/self/fd")) == fds
    assert threading.active_count() == threads


def test_unknown_multiplexer():
    with pytest.raises(ValueError, match="unknown"):
        make_multiplexer("kqueue-on-linux")


def test_react_returns_main_result_and_runs_hooks():
    order = []

    def main(reactor, value):
        reactor.add_shutdown_hook(order.append, "hook")
        d = Deferred()
        reactor.call_later(0.01, d.callback, value)
        return d

    assert react(main, 5) == 5
    assert order == ["hook"]

    def failing(reactor):
        raise LookupError("bad main")

    with pytest.raises(LookupError):
        react(failing)


def test_real_sigint_stops_a_child_reactor_after_its_hooks(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from reactor import Deferred, Reactor

        r = Reactor()

        def hook():
            d = Deferred()
            r.call_later(0.05, lambda: (print("deferred hook done", flush=True), d.callback(None)))
            return d

        r.add_shutdown_hook(lambda: print("plain hook", flush=True))
        r.add_shutdown_hook(hook)
        r.call_soon(lambda: print("ready", flush=True))
        r.run()
        r.close()
        print("exited cleanly", flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert out.splitlines() == ["plain hook", "deferred hook done", "exited cleanly"]
