"""Debug mode: slow callbacks are named in a warning; unhandled Deferred errors say where the Deferred was made."""

import gc
import logging
import socket
import time

import pytest

from reactor import Deferred, Reactor, fail
from reactor.defer import get_debugging, set_debugging
from support import run_until


@pytest.fixture(autouse=True)
def _debugging_back_off():
    """Creation stacks are process-wide: never let one test leave them on for the next."""
    yield
    set_debugging(False)


@pytest.fixture(params=["epoll", "poll", "select", "asyncio"])
def debug_reactor(request):
    r = Reactor(request.param, debug=True)
    try:
        yield r
    finally:
        r.close()


def slow_warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "reactor" and r.levelno == logging.WARNING]


def hog_the_loop():
    time.sleep(0.12)


def quick():
    pass


class SlowReader:
    def __init__(self, sock):
        self.sock = sock

    def fileno(self):
        return self.sock.fileno()

    def on_read(self):
        self.sock.recv(10)
        time.sleep(0.12)

    def on_write(self):
        pass

    def on_close(self, reason):
        pass

    def __repr__(self):
        return "<SlowReader>"


def test_a_slow_ready_call_and_timer_are_logged_by_name_with_duration(debug_reactor, caplog):
    caplog.set_level(logging.WARNING, logger="reactor")
    debug_reactor.call_soon(quick)
    debug_reactor.call_soon(hog_the_loop)
    debug_reactor.iterate(0)
    debug_reactor.call_later(0, hog_the_loop)
    run_until(debug_reactor, lambda: len(slow_warnings(caplog)) == 2)
    for message in slow_warnings(caplog):
        assert message.startswith("Slow callback hog_the_loop held the loop for 0.1")
        seconds = float(message.split(" for ")[1].split()[0])
        assert seconds >= 0.1
    assert not any("quick" in m for m in slow_warnings(caplog))


def test_a_slow_descriptor_is_logged_with_its_owner(debug_reactor, caplog):
    caplog.set_level(logging.WARNING, logger="reactor")
    a, b = socket.socketpair()
    reader = SlowReader(a)
    try:
        debug_reactor.add_reader(reader)
        b.send(b"x")
        run_until(debug_reactor, lambda: slow_warnings(caplog))
        assert slow_warnings(caplog)[0].startswith("Slow callback SlowReader.on_read of <SlowReader> held the loop for")
    finally:
        debug_reactor.remove_reader(reader)
        a.close()
        b.close()


def test_the_threshold_is_adjustable_and_fast_callbacks_are_quiet(debug_reactor, caplog):
    caplog.set_level(logging.WARNING, logger="reactor")
    for _ in range(50):
        debug_reactor.call_soon(quick)
    debug_reactor.iterate(0)
    assert slow_warnings(caplog) == []
    debug_reactor.slow_callback_duration = 0.005
    debug_reactor.call_soon(time.sleep, 0.01)
    debug_reactor.iterate(0)
    messages = slow_warnings(caplog)
    assert len(messages) == 1 and messages[0].startswith("Slow callback sleep")


def test_errors_in_debug_mode_are_still_logged_and_the_loop_goes_on(debug_reactor, caplog):
    ran = []

    def boom():
        raise ValueError("debug bug")

    debug_reactor.call_soon(boom)
    debug_reactor.call_soon(ran.append, "after")
    with caplog.at_level(logging.ERROR, logger="reactor"):
        debug_reactor.iterate(0)
    assert ran == ["after"]
    assert any(r.getMessage().startswith("Unhandled error in call") and r.getMessage().endswith("boom") for r in caplog.records)


def test_not_in_debug_mode_no_timing(caplog):
    r = Reactor()
    try:
        caplog.set_level(logging.WARNING, logger="reactor")
        r.call_soon(hog_the_loop)
        r.iterate(0)
        assert slow_warnings(caplog) == []
    finally:
        r.close()


def test_env_variable_turns_debug_mode_on(monkeypatch):
    monkeypatch.setenv("PYREACTOR_DEBUG", "1")
    r = Reactor()
    assert r.debug and get_debugging()
    r.close()
    assert not get_debugging()
    monkeypatch.setenv("PYREACTOR_DEBUG", "0")
    r = Reactor()
    assert not r.debug
    r.close()


# -- where an unhandled Deferred was created -------------------------------------------


def unhandled_logs(caplog):
    return [r for r in caplog.records if r.getMessage().startswith("Unhandled error in Deferred")]


def make_a_deferred_here():
    return Deferred()


def fail_here():
    return fail(KeyError("failed at birth"))


def test_unhandled_error_shows_where_the_deferred_was_created(debug_reactor, caplog):
    d = make_a_deferred_here()
    d.add_callback(lambda _: 1 / 0)
    d.callback(None)
    with caplog.at_level(logging.ERROR, logger="reactor"):
        del d
        gc.collect()
    logs = unhandled_logs(caplog)
    assert len(logs) == 1
    message = logs[0].getMessage()
    assert "The Deferred was created at:" in message
    assert "make_a_deferred_here" in message
    assert "test_unhandled_error_shows_where_the_deferred_was_created" in message
    # The innermost frame shown is the caller's line, not Deferred.__init__.
    assert message.rstrip().splitlines()[-1].strip() == "return Deferred()"
    assert "ZeroDivisionError" in logs[0].exc_text


@pytest.mark.parametrize("how", ["errback", "callback with a Failure", "cancel", "fail()"])
def test_every_way_of_failing_keeps_the_creation_stack(how, caplog):
    set_debugging(True)
    if how == "fail()":
        d = fail_here()
        frame = "fail_here"
    else:
        d = make_a_deferred_here()
        frame = "make_a_deferred_here"
        if how == "errback":
            d.errback(ValueError("x"))
        elif how == "cancel":
            d.cancel()
        else:
            from reactor import Failure

            d.callback(Failure(ValueError("y")))
    with caplog.at_level(logging.ERROR, logger="reactor"):
        del d
        gc.collect()
    logs = unhandled_logs(caplog)
    assert len(logs) == 1 and frame in logs[0].getMessage()


def test_handled_errors_and_successes_log_nothing_in_debug_mode(caplog):
    set_debugging(True)
    ok = make_a_deferred_here()
    ok.callback(1)
    handled = make_a_deferred_here()
    handled.errback(ValueError("handled"))
    handled.add_errback(lambda f: None)
    with caplog.at_level(logging.ERROR, logger="reactor"):
        del ok, handled
        gc.collect()
    assert unhandled_logs(caplog) == []


def test_without_debugging_no_creation_stack(caplog):
    assert not get_debugging()
    d = make_a_deferred_here()
    d.errback(ValueError("plain"))
    with caplog.at_level(logging.ERROR, logger="reactor"):
        del d
        gc.collect()
    logs = unhandled_logs(caplog)
    assert len(logs) == 1 and "created at" not in logs[0].getMessage()


def test_closing_a_debug_reactor_puts_the_switch_back():
    assert not get_debugging()
    outer = Reactor(debug=True)
    inner = Reactor(debug=True)
    inner.close()
    assert get_debugging()  # outer still open, and it was on before inner
    outer.close()
    assert not get_debugging()
    set_debugging(True)
    r = Reactor(debug=True)
    r.close()
    assert get_debugging()  # it was on before: stays on
