"""The pytest plugin, run on small test files in a child pytest: the dirty-reactor check, async tests, no_leaks."""

import os
import re
from pathlib import Path

import pytest

import reactor
from reactor.pytest_plugin import multiplexer_names

pytest_plugins = ["pytester"]

ROOT = Path(reactor.__file__).resolve().parent.parent
N = len(multiplexer_names())


# "no:pyreactor": where the package is installed, its entry point would load
# the plugin a second time under another name.
# The inner test files are named test_inner_*: an in-process run must not
# meet a module of the same name that the outer run imported already.
PLUGIN_ARGS = ("-p", "no:pyreactor", "-p", "reactor.pytest_plugin", "-p", "no:cacheprovider", "-q")


@pytest.fixture
def run(pytester, monkeypatch):
    """Run pytest on the files written to ``pytester`` in a child process (for tests that leak on purpose)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))

    def run(*args):
        return pytester.runpytest_subprocess(*PLUGIN_ARGS, *args, timeout=120)

    return run


@pytest.fixture
def run_here(pytester):
    """Run pytest on the files written to ``pytester`` in this process (their leaks stay on the reactor)."""

    def run(*args):
        return pytester.runpytest_inprocess(*PLUGIN_ARGS, *args)

    return run


def failure_text(result, test_name):
    """The report section of one failing or erroring test."""
    text = result.stdout.str()
    sections = re.split(r"\n_{3,} ", text)
    found = [s for s in sections if test_name in s.splitlines()[0]]
    assert found, f"no report for {test_name} in:\n{text}"
    return "\n".join(found)


DIRTY = '''
import threading
import socket

import pytest


class LeftBehind:
    def __init__(self, sock):
        self.sock = sock

    def fileno(self):
        return self.sock.fileno()

    def on_read(self):
        pass

    def on_write(self):
        pass

    def on_close(self, reason):
        pass

    def close(self):
        self.sock.close()

    def __repr__(self):
        return "<LeftBehind descriptor>"


def forgotten_timer():
    pass


def test_timer_left(reactor):
    reactor.call_later(60, forgotten_timer)


def test_descriptor_left(reactor, request):
    a, b = socket.socketpair()
    request.addfinalizer(b.close)
    reactor.add_reader(LeftBehind(a))


def test_pool_thread_left(reactor):
    reactor.defer_to_thread(sum, [1, 2])
    reactor.iterate(0)


def test_ready_call_left(reactor):
    def again():
        reactor.call_soon(again)
    reactor.call_soon(again)


def test_tidy(reactor):
    reactor.call_later(0, forgotten_timer)
    reactor.iterate(0.01)
    reactor.iterate(0.01)
'''


def test_dirty_reactor_check_names_each_kind_of_leak(run_here, pytester):
    pytester.makepyfile(test_inner_dirty=DIRTY)
    result = run_here()
    result.assert_outcomes(passed=5 * N, errors=4 * N)
    for name in multiplexer_names():
        timer = failure_text(result, f"test_timer_left[{name}]")
        assert "dirty reactor after the test" in timer
        assert re.search(r"pending timers: \[<DelayedCall forgotten_timer at [\d.]+ pending>\]", timer)
        descriptor = failure_text(result, f"test_descriptor_left[{name}]")
        assert "descriptors still registered: [<LeftBehind descriptor>]" in descriptor
        pool = failure_text(result, f"test_pool_thread_left[{name}]")
        assert "pool threads still running: ['pyreactor-pool-0']" in pool
        ready = failure_text(result, f"test_ready_call_left[{name}]")
        assert "pending ready calls: [<DelayedCall" in ready and "again" in ready


ASYNCIO_TASK = '''
import asyncio


def test_task_left(reactor):
    async def forever():
        await asyncio.sleep(60)

    reactor._mux.loop.create_task(forever())
'''


def test_dirty_reactor_check_names_asyncio_tasks_left_on_its_own_loop(run_here, pytester):
    pytester.makepyfile(test_inner_loop_task=ASYNCIO_TASK)
    result = run_here("-k", "asyncio")
    result.assert_outcomes(passed=1, errors=1)
    assert "asyncio tasks still pending on the reactor's loop: [<Task pending name=" in result.stdout.str()
    assert "Task was destroyed but it is pending" not in result.stdout.str() + result.stderr.str()


ASYNC_TESTS = '''
import pytest

from reactor import Deferred, inline_callbacks


async def test_async_passes(reactor):
    d = Deferred()
    reactor.call_later(0.01, d.callback, 3)
    assert await d == 3


@inline_callbacks
def test_inline_passes(reactor):
    d = Deferred()
    reactor.call_later(0.01, d.callback, 4)
    x = yield d
    assert x == 4


def test_returning_a_deferred_is_waited_for(reactor):
    d = Deferred()
    reactor.call_later(0.01, d.callback, None)
    d.add_callback(lambda _: WAITED.append(True))
    return d


WAITED = []


def test_the_returned_deferred_was_waited_for():
    assert WAITED


async def test_async_without_the_fixture_gets_a_reactor():
    d = Deferred()
    d.callback(5)
    assert await d == 5


async def test_async_failure_is_reported(reactor):
    raise AssertionError("an async test failed")


@pytest.mark.reactor_timeout(0.3)
async def test_async_hangs(reactor):
    await Deferred()


@pytest.mark.reactor_timeout(0.3)
@inline_callbacks
def test_inline_hangs(reactor):
    yield Deferred()


async def test_hangs_until_the_ini_timeout():
    await Deferred()
'''


def test_async_and_inline_callbacks_tests_run_with_a_timeout(run_here, pytester):
    pytester.makepyfile(test_inner_async=ASYNC_TESTS)
    pytester.makeini("[pytest]\nreactor_timeout = 0.5\n")
    result = run_here("--durations=0", "--durations-min=0.2")
    result.assert_outcomes(passed=3 * N + 2, failed=3 * N + 1)
    out = result.stdout.str()
    for name in multiplexer_names():
        assert "TimeoutError: Deferred timed out after 0.3 seconds" in failure_text(result, f"test_async_hangs[{name}]")
        assert "TimeoutError: Deferred timed out after 0.3 seconds" in failure_text(result, f"test_inline_hangs[{name}]")
        assert "an async test failed" in failure_text(result, f"test_async_failure_is_reported[{name}]")
    assert "TimeoutError: Deferred timed out after 0.5 seconds" in failure_text(result, "test_hangs_until_the_ini_timeout")
    # Each hanging test took about its time limit, no more.
    durations = {m.group(2): float(m.group(1)) for m in re.finditer(r"([\d.]+)s call +\S+::(\S+)", out)}
    hanging = {k: v for k, v in durations.items() if "hangs" in k}
    assert len(hanging) == 2 * N + 1, out
    for test, took in hanging.items():
        limit = 0.5 if "ini" in test else 0.3
        assert limit <= took < limit + 2.0, (test, took)


NO_LEAKS = '''
import logging
import socket
import threading

import pytest

from reactor import fail

pytestmark = pytest.mark.usefixtures("no_leaks")
KEPT = []


def test_fd_leak():
    KEPT.append(socket.socket())


def test_thread_leak():
    gate = threading.Event()
    KEPT.append(gate)
    threading.Thread(target=gate.wait, args=(10,), name="leaky-thread", daemon=True).start()


def test_error_logged():
    logging.getLogger("reactor").error("something broke")


def test_error_logged_by_a_child_logger():
    logging.getLogger("reactor.tcp").error("a child broke")


def test_unhandled_deferred_error():
    fail(ValueError("nobody looked"))


def test_caplog_owns_its_errors(caplog):
    logging.getLogger("reactor").error("expected by the test")


@pytest.mark.reactor_errors_ok
def test_marker_allows_errors():
    logging.getLogger("reactor").error("allowed")


def test_warnings_are_not_errors():
    logging.getLogger("reactor").warning("just a warning")


def test_short_lived_thread_and_fd_are_fine():
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
    socket.socket().close()
'''


def test_no_leaks_catches_fds_threads_and_unexpected_errors(run, pytester):
    pytester.makepyfile(test_inner_leaks=NO_LEAKS)
    result = run()
    result.assert_outcomes(passed=9, errors=5)
    assert re.search(r"fds left open: \{'\d+': 'socket:\[\d+\]'\}", failure_text(result, "test_fd_leak"))
    assert "threads left running: ['leaky-thread']" in failure_text(result, "test_thread_leak")
    assert "errors logged to 'reactor': ['something broke']" in failure_text(result, "test_error_logged ")
    assert "errors logged to 'reactor': ['a child broke']" in failure_text(result, "test_error_logged_by_a_child_logger")
    assert "errors logged to 'reactor': ['Unhandled error in Deferred:']" in failure_text(result, "test_unhandled_deferred_error")
