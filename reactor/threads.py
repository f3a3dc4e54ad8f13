"""Threads: a bounded pool behind ``defer_to_thread``, and calls into the reactor thread.

The pool starts workers lazily, one per job up to ``size``, and lets idle
workers wait on one queue; results go back to the reactor thread through
``call_from_thread``, so Deferreds only ever fire in the reactor thread.
``stop()`` puts one sentinel per worker on the queue and joins them all, so
no pool thread outlives ``Reactor.close()`` or the end of ``run()``.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Any, Callable

from .defer import Deferred, Failure, maybe_deferred

if TYPE_CHECKING:
    from .core import Reactor

_STOP = None


class ThreadPool:
    """At most ``size`` worker threads running blocking calls for one reactor."""

    def __init__(self, reactor: Reactor, size: int = 10, name: str = "pyreactor-pool") -> None:
        if size < 1:
            raise ValueError("a thread pool needs at least one thread")
        self.size = size
        self.name = name
        self._reactor = reactor
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._busy = 0
        self._lock = threading.Lock()
        self._stopped = False

    def submit(self, func: Callable[..., Any], args: tuple, kwargs: dict) -> Deferred:
        """Run ``func(*args, **kwargs)`` in a worker; the Deferred fires in the reactor thread."""
        if self._stopped:
            raise RuntimeError("the thread pool is stopped")
        d: Deferred = Deferred()
        with self._lock:
            self._jobs.put((d, func, args, kwargs))
            # A new worker only when the queued jobs outnumber the idle ones.
            if self._jobs.qsize() > self._idle and len(self._threads) < self.size:
                thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        return d

    def _work(self) -> None:
        call_back = self._reactor.call_from_thread
        jobs = self._jobs
        lock = self._lock
        while True:
            with lock:
                self._idle += 1
            job = jobs.get()
            with lock:
                self._idle -= 1
            if job is _STOP:
                return
            d, func, args, kwargs = job
            with lock:
                self._busy += 1
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                call_back(d.errback, Failure(exc))
            else:
                call_back(d.callback, result)
            finally:
                # Drop references now, not when the next job arrives.
                del job, d, func, args, kwargs
                with lock:
                    self._busy -= 1

    def statistics(self) -> dict[str, int]:
        """Threads started, busy now, and the pool's size."""
        with self._lock:
            return {"threads": len(self._threads), "busy": self._busy, "size": self.size}

    def threads(self) -> list[threading.Thread]:
        """The worker threads started so far."""
        return list(self._threads)

    def stop(self, timeout: float | None = None) -> None:
        """Finish queued jobs, end every worker, and join them."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(_STOP)
        for thread in threads:
            thread.join(timeout)
        self._threads.clear()


def blocking_call_from_thread(reactor: Reactor, func: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
    """Run ``func`` in the reactor thread, wait for its result (Deferreds too), and return it or raise.

    Raises RuntimeError when called from the reactor's own thread (it would
    wait forever) and TimeoutError when ``timeout`` seconds pass first.
    """
    if reactor.in_reactor_thread():
        raise RuntimeError("blocking_call_from_thread() called from the reactor thread: it would deadlock")
    done = threading.Event()
    box: list[Any] = []

    def finished(result: Any) -> None:
        box.append(result)
        done.set()

    def start() -> None:
        maybe_deferred(func, *args, **kwargs).add_both(finished)

    reactor.call_from_thread(start)
    if not done.wait(timeout):
        raise TimeoutError(f"blocking_call_from_thread: no result within {timeout} s")
    result = box[0]
    if isinstance(result, Failure):
        result.raise_exception()
    return result
