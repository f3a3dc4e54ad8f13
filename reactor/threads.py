"""Threads: a bounded pool behind ``defer_to_thread``, and blocking calls into the reactor thread.

Two directions, two rules.

Into a thread (``ThreadPool``): at most ``size`` workers ever exist. They are
started lazily, one per job while the queued jobs outnumber the idle
workers, and then wait on one queue. A result goes back through
``call_from_thread``, so a Deferred only ever fires in the reactor thread.
Cancelling the Deferred of a job that has not started yet removes the job; a
job that has started cannot be interrupted (Python has no way to), so its
late result is dropped instead. ``stop()`` lets queued jobs finish, then puts
one sentinel per worker on the queue and joins them all: no pool thread
outlives ``Reactor.close()`` or the end of ``run()``.

Into the reactor thread (``blocking_call_from_thread``): another thread hands
a call over with ``call_from_thread`` and sleeps on an Event until the call,
and the Deferred it may return, have a result. Three ways to hang forever
are closed off:

- calling it from the reactor's own thread would wait for a pass that the
  waiting itself prevents: RuntimeError at once;
- a pool worker that waits while its pool is being stopped would wait for a
  reactor that is no longer running and is joining that very worker: the
  pool fails such waits with RuntimeError when it stops;
- ``timeout``: on expiry the call is dropped if it has not started, and a
  Deferred it returned is cancelled; the caller gets TimeoutError.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Any, Callable

from .defer import Deferred, Failure, maybe_deferred
from .errors import ReactorClosed

if TYPE_CHECKING:
    from .core import Reactor

_STOP = None


class _Job:
    """One call waiting for, or running in, a worker."""

    __slots__ = ("deferred", "func", "args", "kwargs", "cancelled")

    def __init__(self, func: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.cancelled = False
        self.deferred: Deferred[Any] = Deferred(self._cancel)

    def _cancel(self, d: Deferred[Any]) -> None:
        # Runs in the reactor thread. A worker that has not picked the job up
        # yet skips it; one that has will have its result dropped by _deliver.
        self.cancelled = True


def _deliver(d: Deferred[Any], result: Any) -> None:
    """Fire ``d`` in the reactor thread, unless it was cancelled meanwhile."""
    if d.called:
        return
    if type(result) is Failure:
        d.errback(result)
    else:
        d.callback(result)


class ThreadPool:
    """At most ``size`` worker threads running blocking calls for one reactor."""

    def __init__(self, reactor: Reactor, size: int = 10, name: str = "pyreactor-pool") -> None:
        if size < 1:
            raise ValueError("a thread pool needs at least one thread")
        self.size = size
        self.name = name
        self._reactor = reactor
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._busy = 0
        self._lock = threading.Lock()
        self._stopped = False
        # Waits of blocking_call_from_thread made by our workers; see stop().
        self._waits: set[_Wait] = set()

    def submit(self, func: Callable[..., Any], args: tuple, kwargs: dict) -> Deferred[Any]:
        """Run ``func(*args, **kwargs)`` in a worker; the Deferred fires in the reactor thread.

        Raises RuntimeError once the pool is stopped.
        """
        job = _Job(func, args, kwargs)
        with self._lock:
            if self._stopped:
                raise RuntimeError("the thread pool is stopped")
            self._jobs.put(job)
            # A new worker only when the queued jobs outnumber the idle ones.
            if self._jobs.qsize() > self._idle and len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        return job.deferred

    def _work(self) -> None:
        call_back = self._reactor.call_from_thread
        jobs = self._jobs
        lock = self._lock
        with lock:
            self._idle += 1
        while True:
            job = jobs.get()
            with lock:
                self._idle -= 1
                if job is not _STOP and not job.cancelled:
                    self._busy += 1
            if job is _STOP:
                return
            if job.cancelled:
                with lock:
                    self._idle += 1
                continue
            try:
                result = job.func(*job.args, **job.kwargs)
            except BaseException as exc:
                result = Failure(exc)
            # Idle again *before* the result goes back: the reactor may submit
            # the next job at once, and must find this worker available.
            with lock:
                self._busy -= 1
                self._idle += 1
            call_back(_deliver, job.deferred, result)
            # Drop references now, not when the next job arrives.
            del job, result

    def statistics(self) -> dict[str, int]:
        """Threads started, busy now, jobs queued, and the pool's size."""
        with self._lock:
            return {"threads": len(self._threads), "busy": self._busy, "queued": self._jobs.qsize(), "size": self.size}

    def threads(self) -> list[threading.Thread]:
        """The worker threads started so far."""
        with self._lock:
            return list(self._threads)

    def stop(self, timeout: float | None = None) -> None:
        """Let queued jobs finish, end every worker, and join them (each for at most ``timeout``)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            threads = list(self._threads)
            waits = list(self._waits)
            self._waits.clear()
        # Workers blocked on the reactor would never finish: the reactor is
        # not serving while it stops us.
        for wait in waits:
            wait.give_up(RuntimeError("the reactor's thread pool stopped while this worker waited on the reactor"))
        for _ in threads:
            self._jobs.put(_STOP)
        for thread in threads:
            thread.join(timeout)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]

    def _add_wait(self, wait: _Wait) -> None:
        with self._lock:
            if self._stopped:
                raise RuntimeError("the reactor's thread pool is stopping: a worker cannot wait on the reactor now")
            self._waits.add(wait)

    def _remove_wait(self, wait: _Wait) -> None:
        with self._lock:
            self._waits.discard(wait)


class _Wait:
    """One blocking_call_from_thread: the caller sleeps on ``done``, the reactor fills ``result``."""

    __slots__ = ("done", "result", "started", "abandoned", "deferred", "lock")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.started = False
        self.abandoned = False
        self.deferred: Deferred[Any] | None = None
        self.lock = threading.Lock()

    def start(self, func: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        """In the reactor thread: make the call unless the caller gave up already."""
        with self.lock:
            if self.abandoned:
                return
            self.started = True
        d = maybe_deferred(func, *args, **kwargs)
        if not d.called:
            self.deferred = d
        d.add_both(self.finish)

    def finish(self, result: Any) -> None:
        """In the reactor thread: hand the result over (an error is the caller's now, not the log's)."""
        with self.lock:
            if not self.abandoned:
                self.result = result
                self.done.set()
        return None

    def give_up(self, error: BaseException) -> None:
        """In any thread: wake the caller with ``error``; the call is dropped or its Deferred cancelled."""
        with self.lock:
            if self.done.is_set():
                return
            self.abandoned = True
            self.result = Failure(error)
            self.done.set()


def blocking_call_from_thread(reactor: Reactor, func: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
    """Run ``func`` in the reactor thread, wait for its result (Deferreds too), and return it or raise.

    Raises RuntimeError when called from the reactor's own thread (it would
    wait forever), ReactorClosed for a closed reactor, and TimeoutError when
    ``timeout`` seconds pass first (the call is then dropped if it has not
    started, and a Deferred it returned is cancelled).
    """
    if _in_reactor_thread(reactor):
        raise RuntimeError(
            "blocking_call_from_thread() was called from the reactor's own thread: it would wait forever "
            "for a pass it is blocking; call the function directly (or yield/await its Deferred) instead")
    if reactor._closed:
        raise ReactorClosed("the reactor is closed")
    wait = _Wait()
    # A worker of this reactor's own pool must not outlive it; see stop().
    pool: ThreadPool | None = reactor._pool
    if pool is not None and threading.current_thread() not in pool.threads():
        pool = None
    if pool is not None:
        pool._add_wait(wait)
    try:
        reactor.call_from_thread(wait.start, func, args, kwargs)
        if not wait.done.wait(timeout):
            wait.give_up(TimeoutError(f"blocking_call_from_thread: no result from {func!r} within {timeout} s"))
    finally:
        if pool is not None:
            pool._remove_wait(wait)
    if wait.abandoned:
        # Too late for the result: stop the work if it is still going on.
        reactor.call_from_thread(_cancel_started, wait)
    result = wait.result
    if type(result) is Failure:
        result.raise_exception()
    return result


def _cancel_started(wait: _Wait) -> None:
    d = wait.deferred
    if d is not None and not d.called:
        d.cancel()


def _in_reactor_thread(reactor: Reactor) -> bool:
    """True if this thread runs (or ran) the reactor's passes, so waiting here would deadlock."""
    if reactor._thread_id == threading.get_ident():
        return True
    # On an asyncio loop the reactor serves in whichever thread runs the loop,
    # possibly before its first pass has recorded that thread.
    loop = getattr(reactor._mux, "loop", None)
    if loop is None:
        return False
    import asyncio  # only reached once reactor.aio has imported it

    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
