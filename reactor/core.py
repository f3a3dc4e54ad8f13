"""The Reactor: one loop that waits on a multiplexer and runs everything else.

A pass (``iterate``) has four numbered steps, written out in ``_run_once``.
Its invariant: *that method is the only place user callbacks are called*,
each under its own guard, so a user's exception is logged to the
``"reactor"`` logger and the loop goes on. Callbacks scheduled during a pass
run in the next pass, so a callback that re-schedules itself forever still
lets I/O through.

Other threads talk to the loop through ``call_from_thread``: it appends to
the ready deque (``deque.append`` is atomic) and then writes to a wake-up fd
(an eventfd, or a pipe where there is none) that the loop watches like any
other reader, so a loop asleep in poll wakes at once.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import threading
import time
from typing import Any, Callable

from .defer import Deferred, Failure, gather, get_debugging, maybe_deferred, set_debugging
from .coroutines import ensure_deferred
from .errors import ReactorAlreadyRunning, ReactorClosed, ReactorNotRunning
from .multiplexers import READ, WRITE, make_multiplexer
from .threads import ThreadPool
from .timers import QUEUED, DelayedCall, TimerQueue

log = logging.getLogger("reactor")

MAX_POLL_TIMEOUT = 86400.0


class _Waker:
    """A wake-up fd the loop watches: any thread (or the signal module) writes, the loop drains."""

    __slots__ = ("_read_fd", "_write_fd", "_pending")

    def __init__(self, pipe: bool = False) -> None:
        # ``pipe``: for signal.set_wakeup_fd(), which writes single bytes (an
        # eventfd takes only 8-byte writes).
        if hasattr(os, "eventfd") and not pipe:
            fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._read_fd = self._write_fd = fd
        else:
            self._read_fd, self._write_fd = os.pipe()
            os.set_blocking(self._read_fd, False)
            os.set_blocking(self._write_fd, False)
        self._pending = False

    def fileno(self) -> int:
        return self._read_fd

    def wake(self) -> None:
        """Make the loop's next (or current) poll return at once."""
        # Skip the syscall while an earlier wake-up is still undrained. The
        # loop clears the flag *before* it runs what it was woken for, so a
        # wake-up can be doubled but never lost.
        if self._pending:
            return
        self._pending = True
        try:
            os.write(self._write_fd, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except (BlockingIOError, OSError):
            # Full (the loop is far behind, so it will wake anyway) or closed.
            pass

    def on_read(self) -> None:
        try:
            os.read(self._read_fd, 4096)
        except (BlockingIOError, InterruptedError):
            pass
        # Only after draining: a wake-up racing with the read then writes
        # again (harmless) instead of being eaten with the flag left set,
        # which would silence every later wake-up.
        self._pending = False

    def on_write(self) -> None:  # pragma: no cover - never registered for writing
        pass

    def on_close(self, reason: Failure) -> None:  # pragma: no cover - never fails
        pass

    def close(self) -> None:
        # Marked pending for good, so a late wake() never writes into an fd
        # number that something else may have reused.
        self._pending = True
        os.close(self._read_fd)
        if self._write_fd != self._read_fd:
            os.close(self._write_fd)


class Reactor:
    """An event loop: descriptors, timers, a ready queue, threads and shutdown hooks."""

    #: How long stop() waits for shutdown hooks' Deferreds, in seconds.
    shutdown_timeout = 30.0

    def __init__(self, multiplexer: str | None = None, *, thread_pool_size: int = 10, debug: bool | None = None, loop: Any = None) -> None:
        # Any: the multiplexers share an interface, not a base class.
        self._mux: Any
        if multiplexer == "asyncio":
            from .aio import AsyncioMultiplexer

            self._mux = AsyncioMultiplexer(self, loop)
        else:
            self._mux = make_multiplexer(multiplexer)
        self.multiplexer = self._mux.name
        # Bound once: the poll call is on every pass.
        self._poll = self._mux.poll
        # A multiplexer on a loop it does not own (reactor.aio) must hear of
        # work scheduled between passes, or that loop would not wake for it.
        self._work_added: Callable[[float], None] | None = getattr(self._mux, "work_added", None)
        self._readers: dict[int, Any] = {}
        self._writers: dict[int, Any] = {}
        self._ready: collections.deque[DelayedCall] = collections.deque()
        self._timers = TimerQueue(time.monotonic)
        self._waker = _Waker()
        self._thread_pool_size = thread_pool_size
        self._pool: ThreadPool | None = None
        self._shutdown_hooks: list[tuple[Callable[..., Any], tuple]] = []
        # The thread running the loop, recorded by the first pass; until then
        # the thread that made the reactor counts as its thread.
        self._thread_id: int | None = None
        self._creator_id = threading.get_ident()
        self._stopping = False
        self._shutting_down = False
        self._closed = False
        self.running = False
        if debug is None:
            debug = os.environ.get("PYREACTOR_DEBUG", "") not in ("", "0")
        self.debug = debug
        # Deferreds made while a debug reactor is open record where, for the
        # "Unhandled error" log. That switch is process-wide: close() puts it back.
        self._debugging_before: bool | None = None
        if debug:
            self._debugging_before = get_debugging()
            set_debugging(True)
        self.slow_callback_duration = 0.1
        self.add_reader(self._waker)

    # -- time and calls ---------------------------------------------------

    def seconds(self) -> float:
        """The monotonic time used by all timers."""
        return time.monotonic()

    def call_soon(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> DelayedCall:
        """Run ``func(*args, **kwargs)`` on the next pass, after those already queued."""
        call = DelayedCall(self._timers, 0.0, func, args, kwargs)
        call._entry = QUEUED
        self._ready.append(call)
        if self._work_added is not None:
            self._work_added(0.0)
        return call

    def call_later(self, delay: float, func: Callable[..., Any], *args: Any, **kwargs: Any) -> DelayedCall:
        """Run ``func(*args, **kwargs)`` ``delay`` seconds from now."""
        call = self._timers.call_at(time.monotonic() + delay, func, args, kwargs)
        if self._work_added is not None:
            self._work_added(call.time)
        return call

    def call_at(self, when: float, func: Callable[..., Any], *args: Any, **kwargs: Any) -> DelayedCall:
        """Run ``func(*args, **kwargs)`` when ``seconds()`` reaches ``when``."""
        call = self._timers.call_at(when, func, args, kwargs)
        if self._work_added is not None:
            self._work_added(when)
        return call

    def call_from_thread(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``func`` in the reactor thread on its next pass; safe from any thread.

        Raises ReactorClosed once the reactor is closed.
        """
        if self._closed:
            raise ReactorClosed("the reactor is closed")
        call = DelayedCall(self._timers, 0.0, func, args, kwargs)
        call._entry = QUEUED
        self._ready.append(call)
        self._waker.wake()

    def defer_to_thread(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        """Run a blocking ``func`` in the thread pool; the Deferred fires in the reactor thread."""
        pool = self._pool
        if pool is None:
            self._check_open()
            pool = self._pool = ThreadPool(self, self._thread_pool_size)
        return pool.submit(func, args, kwargs)

    def get_delayed_calls(self) -> list[DelayedCall]:
        """The pending timers, earliest first."""
        return self._timers.pending()

    def in_reactor_thread(self) -> bool:
        """True in the thread that runs the loop (until then, the one that made the reactor)."""
        tid = self._thread_id
        return (self._creator_id if tid is None else tid) == threading.get_ident()

    # -- descriptors ------------------------------------------------------

    def add_reader(self, descriptor: Any) -> None:
        """Call ``descriptor.on_read()`` whenever its fd is readable."""
        self._watch(descriptor, self._readers, self._writers, READ, WRITE)

    def add_writer(self, descriptor: Any) -> None:
        """Call ``descriptor.on_write()`` whenever its fd is writable."""
        self._watch(descriptor, self._writers, self._readers, WRITE, READ)

    def remove_reader(self, descriptor: Any) -> None:
        """Stop calling ``descriptor.on_read()``; does nothing if it was not a reader."""
        self._unwatch(descriptor, self._readers, self._writers, WRITE)

    def remove_writer(self, descriptor: Any) -> None:
        """Stop calling ``descriptor.on_write()``; does nothing if it was not a writer."""
        self._unwatch(descriptor, self._writers, self._readers, READ)

    def _watch(self, descriptor: Any, table: dict[int, Any], other: dict[int, Any], event: int, other_event: int) -> None:
        fd = descriptor.fileno()
        if table.get(fd) is descriptor:
            return
        self._update(fd, event | (other_event if fd in other else 0), fd in table or fd in other)
        # Only after the multiplexer took it (see multiplexers.py).
        table[fd] = descriptor

    def _unwatch(self, descriptor: Any, table: dict[int, Any], other: dict[int, Any], other_event: int) -> None:
        fd = self._fd_of(descriptor, table)
        if fd is None:
            return
        self._narrow(fd, other_event if fd in other else 0)
        del table[fd]

    def remove_all(self) -> list[Any]:
        """Remove every user descriptor and return them."""
        removed = []
        for descriptor in {id(d): d for d in (*self._readers.values(), *self._writers.values())}.values():
            if type(descriptor) is _Waker:
                continue
            self.remove_reader(descriptor)
            self.remove_writer(descriptor)
            removed.append(descriptor)
        return removed

    def get_readers(self) -> list[Any]:
        """The user descriptors watched for reading."""
        return [d for d in self._readers.values() if type(d) is not _Waker]

    def get_writers(self) -> list[Any]:
        """The descriptors watched for writing."""
        return list(self._writers.values())

    def _narrow(self, fd: int, events: int) -> None:
        if not events:
            self._mux.unregister(fd)
            return
        try:
            self._mux.modify(fd, events)
        except OSError:
            # The fd was closed before being removed: the kernel forgot it.
            self._mux.unregister(fd)

    def _update(self, fd: int, events: int, known: bool) -> None:
        if fd < 0:
            raise ValueError("descriptor has no open fd")
        if known:
            self._mux.modify(fd, events)
        else:
            self._mux.register(fd, events)

    @staticmethod
    def _fd_of(descriptor: Any, table: dict[int, Any]) -> int | None:
        try:
            fd = descriptor.fileno()
        except (OSError, ValueError):
            fd = -1
        if table.get(fd) is descriptor:
            return fd
        # Closed already (fileno() is -1 or was reused): find it by identity.
        for known, value in table.items():
            if value is descriptor:
                return known
        return None

    # -- the loop ---------------------------------------------------------

    def iterate(self, timeout: float | None = 0.0) -> None:
        """Run one pass, waiting at most ``timeout`` seconds for I/O or a timer."""
        self._check_open()
        self._thread_id = threading.get_ident()
        # A deadline computed a little late is negative: poll, do not wait.
        # None waits for the next event however long that takes.
        self._run_once(None if timeout is None else min(max(timeout, 0.0), MAX_POLL_TIMEOUT))

    def _run_once(self, max_timeout: float | None) -> None:
        """Run one pass: poll, dispatch I/O, run due timers, run ready calls.

        This method is the only place user callbacks are called.
        """
        ready = self._ready
        timers = self._timers
        # 1. Sleep no longer than the next timer, and not at all if work is ready.
        heap = timers.heap
        ntodo = len(ready)
        if ntodo or self._stopping:
            timeout: float | None = 0.0
        elif not heap:
            timeout = max_timeout
        else:
            when = timers.next_time()
            if when is None:
                timeout = max_timeout
            else:
                timeout = when - time.monotonic()
                if timeout < 0.0:
                    timeout = 0.0
                elif max_timeout is not None and max_timeout < timeout:
                    timeout = max_timeout
                elif timeout > MAX_POLL_TIMEOUT:
                    # poll/epoll take at most ~24.8 days; waking once a day costs nothing.
                    timeout = MAX_POLL_TIMEOUT
        events = self._poll(timeout)
        # Timers due now, not ones scheduled during this pass, run in step 3.
        # (No clock read when there are no timers: most passes of a busy server.)
        now = time.monotonic() if heap else 0.0
        if self.debug:
            self._dispatch_debug(events, timers.pop_due(now) if heap and heap[0][0] <= now else [], ntodo)
            return
        # 2. Dispatch I/O: on_read/on_write directly, under one guard each.
        if events:
            readers = self._readers
            writers = self._writers
            mux = self._mux
            readable = mux.READABLE
            read_mask = mux.READ_MASK
            write_mask = mux.WRITE_MASK
            for fd, mask in events:
                if mask == readable:
                    # Readable and nothing else, by far the commonest event:
                    # one comparison instead of two bit tests.
                    try:
                        descriptor = readers[fd]
                    except KeyError:
                        continue  # Removed by an earlier callback of this pass.
                    try:
                        descriptor.on_read()
                    except Exception:
                        self._descriptor_failed(descriptor)
                    continue
                if mask & read_mask:
                    descriptor = readers.get(fd)
                    if descriptor is not None:
                        try:
                            descriptor.on_read()
                        except Exception:
                            self._descriptor_failed(descriptor)
                            continue
                if mask & write_mask:
                    descriptor = writers.get(fd)
                    if descriptor is not None:
                        try:
                            descriptor.on_write()
                        except Exception:
                            self._descriptor_failed(descriptor)
        # 3. Run timers due at the start of the pass, earliest first, FIFO on ties.
        if heap and heap[0][0] <= now:
            due = timers.pop_due(now)
            for call in due:
                # A timer earlier in this batch may have cancelled or moved it.
                if call._entry is not QUEUED:
                    continue
                call._entry = None
                call.called = True
                try:
                    call.func(*call.args, **call.kwargs)
                except Exception:
                    log.exception("Unhandled error in timed call %r", call)
                except BaseException:
                    # SystemExit or KeyboardInterrupt leaves the loop; the
                    # timers after this one must still run when it goes on.
                    timers.requeue(due[due.index(call) + 1:])
                    raise
        # 4. Run the calls that were ready at the start of the pass.
        if not ntodo:
            return
        popleft = ready.popleft
        while ntodo:
            ntodo -= 1
            try:
                call = popleft()
            except IndexError:
                break  # A callback ran a nested pass (iterate()) that took the rest.
            if call._entry is not QUEUED:
                continue
            call._entry = None
            call.called = True
            try:
                call.func(*call.args, **call.kwargs)
            except Exception:
                log.exception("Unhandled error in call %r", call)

    def _dispatch_debug(self, events: list[tuple[int, int]], due: list[DelayedCall], ntodo: int) -> None:
        """Steps 2 to 4 of a pass, timing every callback (debug mode)."""
        read_mask = self._mux.READ_MASK
        write_mask = self._mux.WRITE_MASK
        for fd, mask in events:
            if mask & read_mask:
                descriptor = self._readers.get(fd)
                if descriptor is not None and not self._timed(descriptor.on_read, (), {}, descriptor):
                    continue
            if mask & write_mask:
                descriptor = self._writers.get(fd)
                if descriptor is not None:
                    self._timed(descriptor.on_write, (), {}, descriptor)
        for call in due:
            if call._entry is QUEUED:
                call._entry = None
                call.called = True
                try:
                    self._timed(call.func, call.args, call.kwargs, None)
                except BaseException:
                    # As in _run_once: the other due timers must still run later.
                    self._timers.requeue(due[due.index(call) + 1:])
                    raise
        ready = self._ready
        while ntodo and ready:
            ntodo -= 1
            call = ready.popleft()
            if call._entry is QUEUED:
                call._entry = None
                call.called = True
                self._timed(call.func, call.args, call.kwargs, None)

    def _timed(self, func: Callable[..., Any], args: tuple, kwargs: dict, descriptor: Any) -> bool:
        start = time.monotonic()
        try:
            func(*args, **kwargs)
        except Exception:
            if descriptor is not None:
                self._descriptor_failed(descriptor)
            else:
                log.exception("Unhandled error in call %s", _describe(func))
            return False
        finally:
            took = time.monotonic() - start
            if took >= self.slow_callback_duration:
                log.warning("Slow callback %s held the loop for %.3f s", _describe(func), took)
        return True

    def _descriptor_failed(self, descriptor: Any) -> None:
        failure = Failure()
        log.error("Unhandled error in descriptor %r; closing it", descriptor, exc_info=failure.value)
        self.remove_reader(descriptor)
        self.remove_writer(descriptor)
        try:
            descriptor.on_close(failure)
        except Exception:
            log.exception("Unhandled error in %r.on_close", descriptor)

    def run(self, install_signal_handlers: bool = True) -> None:
        """Run passes until stop(), then the shutdown hooks; SIGINT/SIGTERM call stop()."""
        self._start_running()
        restore = self._install_signal_handlers() if install_signal_handlers else None
        try:
            run_once = self._run_once
            while not self._stopping:
                run_once(None)
            self._run_shutdown_hooks()
        finally:
            if restore is not None:
                restore()
            self._stop_running()

    def stop(self) -> None:
        """End run() after the current pass, once the shutdown hooks are done; safe from any thread."""
        if not self.running:
            raise ReactorNotRunning("the reactor is not running")
        if self._shutting_down:
            return  # Already on its way out: a second Ctrl-C changes nothing.
        self._stopping = True
        self._waker.wake()

    def run_until_complete(self, awaitable: Any) -> Any:
        """Run until ``awaitable`` (a Deferred, coroutine or generator) has a result; return it or raise.

        Unlike stop(), finishing does not run the shutdown hooks, so the
        reactor can be run again.
        """
        self._check_open()
        if self.running:
            # Checked before anything is attached to ``awaitable``: a refused
            # call must not stop the loop that is running when it fires.
            raise ReactorAlreadyRunning("the reactor is already running")
        d = ensure_deferred(awaitable)
        box: list[Any] = []
        # Cleared when this call returns, so that a result arriving later
        # (this call was interrupted) cannot stop some later run().
        waiting = [True]

        def finished(result: Any) -> None:
            box.append(result)
            if waiting[0] and self.running:
                self._stopping = True
                self._poke_multiplexer()

        d.add_both(finished)
        if not box:
            self._start_running()
            try:
                run_once = self._run_once
                while not self._stopping:
                    run_once(None)
            finally:
                waiting[0] = False
                self._stop_running()
        if not box:
            raise RuntimeError("the reactor was stopped before run_until_complete's awaitable had a result")
        result = box[0]
        if isinstance(result, Failure):
            result.raise_exception()
        return result

    def _poke_multiplexer(self, result: Any = None) -> Any:
        # Code on a shared asyncio loop can fire a Deferred while poll() runs
        # that loop; nothing else would end the poll early for it.
        if self._work_added is not None:
            self._work_added(0.0)
        return result

    def _start_running(self) -> None:
        self._check_open()
        if self.running:
            raise ReactorAlreadyRunning("the reactor is already running")
        self.running = True
        self._stopping = False
        self._thread_id = threading.get_ident()

    def _stop_running(self) -> None:
        self.running = False
        self._stopping = False
        self._shutting_down = False
        if self._pool is not None:
            # No pool thread outlives run().
            self._pool.stop()
            self._pool = None

    def _install_signal_handlers(self) -> Callable[[], None] | None:
        if threading.current_thread() is not threading.main_thread():
            return None

        def on_signal(signum: int, frame: Any) -> None:
            log.info("Received signal %d; stopping", signum)
            if self.running and not self._stopping:
                self.stop()

        # Python runs on_signal in the main thread at its next bytecode, but
        # the loop may already sleep in its poll when the signal's C handler
        # runs (the signal came to another thread, or just before the poll
        # began) and then nothing interrupts that sleep. The C handler writes
        # the signal number to the wake-up fd, which we watch: the poll
        # returns, and on_signal runs.
        wakeup = _Waker(pipe=True)
        previous_fd = signal.set_wakeup_fd(wakeup._write_fd, warn_on_full_buffer=False)
        self.add_reader(wakeup)
        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)

        def restore() -> None:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(previous_fd)
            self.remove_reader(wakeup)
            wakeup.close()

        return restore

    # -- shutdown ---------------------------------------------------------

    def add_shutdown_hook(self, func: Callable[..., Any], *args: Any) -> None:
        """Call ``func(*args)`` when stop() is called; a Deferred it returns is waited for (bounded)."""
        self._shutdown_hooks.append((func, args))

    def _run_shutdown_hooks(self) -> None:
        self._shutting_down = True
        hooks, self._shutdown_hooks = self._shutdown_hooks, []
        waits = []
        for func, args in hooks:
            d = maybe_deferred(func, *args)
            waits.append(d.add_errback(self._log_hook_failure, func))
        if not waits:
            return
        done = gather(*waits)
        if done.called:
            return
        done.add_both(self._poke_multiplexer)
        deadline = time.monotonic() + self.shutdown_timeout
        self._stopping = False
        try:
            while not done.called:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.error("Shutdown hooks did not finish within %.1f s; stopping anyway", self.shutdown_timeout)
                    done.cancel()
                    break
                self._run_once(left)
        finally:
            self._stopping = True

    @staticmethod
    def _log_hook_failure(failure: Failure, func: Callable[..., Any]) -> None:
        log.error("Shutdown hook %s failed:\n%s", _describe(func), failure.get_traceback())

    def close(self) -> None:
        """Release the multiplexer, the wake-up fd and the pool threads; the reactor is unusable after."""
        if self._closed:
            return
        if self.running:
            raise RuntimeError("cannot close a running reactor")
        if self._pool is not None:
            self._pool.stop()
            self._pool = None
        self.remove_reader(self._waker)
        self._waker.close()
        self._mux.close()
        self._closed = True
        if self._debugging_before is not None:
            set_debugging(self._debugging_before)

    def _check_open(self) -> None:
        if self._closed:
            raise ReactorClosed("the reactor is closed")

    def __enter__(self) -> Reactor:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self.running else "idle"
        return f"<Reactor {self.multiplexer} {state}>"

    # -- networking (the transports live in their own modules) --------------

    def listen_tcp(self, port: int, factory: Any, *, interface: str = "", backlog: int = 1024, reuse_port: bool = False) -> Any:
        """Listen on a TCP port; returns a Listener whose ``port`` is the real one."""
        from .tcp import listen_tcp

        return listen_tcp(self, port, factory, interface=interface, backlog=backlog, reuse_port=reuse_port)

    def connect_tcp(self, host: str, port: int, factory: Any, *, timeout: float = 30.0, bind_address: tuple[str, int] | None = None) -> Any:
        """Connect to ``host:port``; returns a Connector, and the factory hears how it went."""
        from .tcp import connect_tcp

        return connect_tcp(self, host, port, factory, timeout=timeout, bind_address=bind_address)

    def listen_unix(self, path: str, factory: Any, *, backlog: int = 1024) -> Any:
        """Listen on a UNIX socket path; returns a Listener."""
        from .unix import listen_unix

        return listen_unix(self, path, factory, backlog=backlog)

    def connect_unix(self, path: str, factory: Any, *, timeout: float = 30.0) -> Any:
        """Connect to a UNIX socket path; returns a Connector."""
        from .unix import connect_unix

        return connect_unix(self, path, factory, timeout=timeout)

    def listen_udp(self, port: int, protocol: Any, *, interface: str = "") -> Any:
        """Bind a UDP port for a DatagramProtocol; returns the datagram transport."""
        from .udp import listen_udp

        return listen_udp(self, port, protocol, interface=interface)

    def listen_ssl(
        self, port: int, factory: Any, context: Any, *, interface: str = "", backlog: int = 1024,
        handshake_timeout: float | None = 60.0,
    ) -> Any:
        """Listen on a TCP port with TLS (an ``ssl.SSLContext``); returns a Listener."""
        from .tls import listen_ssl

        return listen_ssl(
            self, port, factory, context, interface=interface, backlog=backlog, handshake_timeout=handshake_timeout,
        )

    def connect_ssl(
        self, host: str, port: int, factory: Any, context: Any, *, timeout: float = 30.0,
        server_hostname: str | None = None, handshake_timeout: float | None = 60.0,
    ) -> Any:
        """Connect with TLS (an ``ssl.SSLContext``); returns a Connector."""
        from .tls import connect_ssl

        return connect_ssl(
            self, host, port, factory, context, timeout=timeout, server_hostname=server_hostname,
            handshake_timeout=handshake_timeout,
        )

    def spawn_process(self, protocol: Any, argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None) -> Any:
        """Start a child process wired to a ProcessProtocol; returns the process transport."""
        from .process import spawn_process

        return spawn_process(self, protocol, argv, env=env, cwd=cwd)


def _describe(func: Callable[..., Any]) -> str:
    name = getattr(func, "__qualname__", None)
    if name is None:
        return repr(func)
    owner = getattr(func, "__self__", None)
    if owner is not None:
        return f"{name} of {owner!r}"
    return name


def react(main: Callable[..., Any], *args: Any, multiplexer: str | None = None) -> Any:
    """Run ``main(reactor, *args)`` on a new reactor until its result is ready; return it or raise."""
    reactor = Reactor(multiplexer)
    box: list[Any] = []
    try:
        def finished(result: Any) -> None:
            box.append(result)
            if reactor.running:
                reactor.stop()

        d = maybe_deferred(main, reactor, *args)
        d.add_both(finished)
        if not box:
            reactor.run()
        else:
            reactor._run_shutdown_hooks()
        if not box:
            # Stopped (a signal, a stop() call) before main was done.
            d.cancel()
    finally:
        reactor.close()
    if not box:
        raise RuntimeError("the reactor was stopped before main() finished")
    result = box[0]
    if isinstance(result, Failure):
        result.raise_exception()
    return result
