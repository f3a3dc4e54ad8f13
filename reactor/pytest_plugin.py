"""The pytest plugin (entry point ``pyreactor``): a reactor fixture and a dirty-reactor check.

- ``reactor``: a fresh Reactor, once per multiplexer this platform has
  (select, poll, epoll, and asyncio as a loop underneath), closed after the
  test. A test that leaves timers pending, descriptors registered or pool
  threads alive on it fails, with a message that names them.
- ``async def`` test functions, ``inline_callbacks`` test functions and
  tests of the ``reactor`` fixture that return a Deferred run on that reactor
  until done, with a per-test timeout (ini ``reactor_timeout``, default 30 s,
  or the marker ``@pytest.mark.reactor_timeout(seconds)``); past it the test
  fails with TimeoutError. An async test without the fixture gets a reactor
  of its own.
- ``no_leaks``: fails a test that leaves fds or threads behind, or lets an
  error be logged to the ``"reactor"`` logger without looking at it (a test
  that requests ``caplog`` owns its log, as does one marked
  ``@pytest.mark.reactor_errors_ok``). Opt in with
  ``@pytest.mark.usefixtures("no_leaks")`` or an autouse fixture.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
import warnings
from typing import Any, Iterator

import pytest

from .core import Reactor
from .coroutines import ensure_deferred
from .defer import Deferred
from .multiplexers import available


def multiplexer_names() -> list[str]:
    """The multiplexers the ``reactor`` fixture runs each test on."""
    # The asyncio-backed multiplexer (reactor.aio) works wherever asyncio does.
    return available() + ["asyncio"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("reactor_timeout", "seconds an async/Deferred test may run", default="30")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "reactor_timeout(seconds): time limit of an async or Deferred test")
    config.addinivalue_line("markers", "reactor_errors_ok: errors logged to 'reactor' do not fail the test")


def dirty_report(reactor: Reactor) -> list[str]:
    """What a test left behind on ``reactor``: pending timers, descriptors, pool threads."""
    problems = []
    calls = reactor.get_delayed_calls()
    if calls:
        problems.append(f"pending timers: {calls!r}")
    ready = [c for c in reactor._ready if c.active()]
    if ready:
        problems.append(f"pending ready calls: {ready!r}")
    descriptors = {id(d): d for d in (*reactor.get_readers(), *reactor.get_writers())}
    if descriptors:
        problems.append(f"descriptors still registered: {list(descriptors.values())!r}")
    pool = reactor._pool
    if pool is not None:
        alive = [t.name for t in pool.threads() if t.is_alive()]
        if alive:
            problems.append(f"pool threads still running: {alive!r}")
    tasks = _own_asyncio_tasks(reactor)
    if tasks:
        problems.append(f"asyncio tasks still pending on the reactor's loop: {tasks!r}")
    return problems


def _own_asyncio_tasks(reactor: Reactor) -> list[Any]:
    """Unfinished asyncio tasks on a loop the reactor made for itself (multiplexer "asyncio")."""
    mux = reactor._mux
    if not getattr(mux, "_owned", False) or mux.loop.is_closed():
        return []
    import asyncio  # the asyncio multiplexer imported it already

    return [t for t in asyncio.all_tasks(mux.loop) if not t.done()]


def clean(reactor: Reactor) -> None:
    """Cancel timers and close descriptors left on ``reactor`` so that it can be closed."""
    for call in reactor.get_delayed_calls():
        call.cancel()
    for call in reactor._ready:
        call.cancel()
    for task in _own_asyncio_tasks(reactor):
        task.cancel()
    for descriptor in reactor.remove_all():
        closer = getattr(descriptor, "abort_connection", None) or getattr(descriptor, "close", None)
        try:
            if closer is not None:
                closer()
        except Exception:
            pass
        sock = getattr(descriptor, "socket", None)
        if sock is not None:
            sock.close()
    # Closing may have scheduled connection_lost calls; run them out.
    for _ in range(3):
        reactor.iterate(0)
    for call in reactor.get_delayed_calls():
        call.cancel()


@pytest.fixture(params=multiplexer_names())
def reactor(request: pytest.FixtureRequest) -> Iterator[Reactor]:
    """A fresh Reactor on each multiplexer; the test fails if it leaves it dirty."""
    r = Reactor(request.param)
    try:
        yield r
        # Let calls already made (connection_lost and the like) finish.
        deadline = time.monotonic() + 1.0
        while r._ready and time.monotonic() < deadline:
            r.iterate(0)
        problems = dirty_report(r)
        if problems:
            clean(r)
            pytest.fail("dirty reactor after the test:\n  " + "\n  ".join(problems), pytrace=False)
    finally:
        if r.running:  # pragma: no cover - only if a test hangs mid-run
            r._stop_running()
        r.close()


def _is_async_test(func: Any) -> bool:
    if inspect.iscoroutinefunction(func):
        return True
    # inline_callbacks wraps a generator function with functools.wraps.
    inner = inspect.unwrap(func)
    return inner is not func and inspect.isgeneratorfunction(inner)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    func = pyfuncitem.obj
    funcargs = pyfuncitem.funcargs
    is_async = _is_async_test(func)
    # A plain test of the reactor fixture may return a Deferred to wait for;
    # pytest itself would reject that (a Deferred has __await__).
    if not is_async and "reactor" not in funcargs:
        return None
    kwargs = {name: funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    reactor = funcargs.get("reactor")
    own = reactor is None
    if own:
        reactor = Reactor()
    try:
        result = func(**kwargs)
        if not is_async and not isinstance(result, Deferred):
            if result is not None:
                warnings.warn(pytest.PytestReturnNotNoneWarning(
                    f"Test functions should return None or a Deferred, but {pyfuncitem.nodeid} returned {type(result)!r}"))
            return True
        d = result if isinstance(result, Deferred) else ensure_deferred(result)
        marker = pyfuncitem.get_closest_marker("reactor_timeout")
        timeout = float(marker.args[0]) if marker else float(pyfuncitem.config.getini("reactor_timeout"))
        d.add_timeout(timeout, reactor)
        reactor.run_until_complete(d)
    finally:
        if own:
            clean(reactor)
            reactor.close()
    return True


def _fd_snapshot() -> set[tuple[str, str]]:
    """The open fds as (number, what it points to) pairs."""
    # Pairs, not numbers: listing /proc/self/fd opens an fd of its own, whose
    # number the next socket gets; and a number closed and reused for
    # something else is something new.
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:  # pragma: no cover - no /proc
        return set()
    pairs = set()
    for fd in names:
        try:
            pairs.add((fd, os.readlink(f"/proc/self/fd/{fd}")))
        except OSError:
            pass  # closed meanwhile (the listing's own fd among them)
    return pairs


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaks fds or threads, or logs unexpected errors to ``"reactor"``."""
    import gc

    threads_before = set(threading.enumerate())
    fds_before = _fd_snapshot()
    collector = _ErrorCollector()
    logger = logging.getLogger("reactor")
    logger.addHandler(collector)
    try:
        yield
        # Deferreds that die with an unhandled error log it from __del__.
        gc.collect()
    finally:
        logger.removeHandler(collector)
    problems = []
    deadline = time.monotonic() + 2.0
    while True:
        extra_threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        extra_fds = _fd_snapshot() - fds_before
        # Threads end and fds close asynchronously: give them a moment.
        if not (extra_threads or extra_fds) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    if extra_threads:
        problems.append(f"threads left running: {[t.name for t in extra_threads]!r}")
    if extra_fds:
        problems.append(f"fds left open: {dict(sorted(extra_fds))!r}")
    owns_log = "caplog" in request.fixturenames or request.node.get_closest_marker("reactor_errors_ok")
    if collector.records and not owns_log:
        messages = [r.getMessage().splitlines()[0] for r in collector.records]
        problems.append(f"errors logged to 'reactor': {messages!r}")
    if problems:
        pytest.fail("leaks after the test:\n  " + "\n  ".join(problems), pytrace=False)
