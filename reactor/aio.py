"""asyncio underneath the reactor, and Deferreds to and from asyncio futures.

How a reactor sits on an asyncio loop
-------------------------------------

``Reactor("asyncio", loop=loop)`` gives the reactor an ``AsyncioMultiplexer``.
The reactor keeps everything it owns (descriptor tables, timer heap, ready
queue, wake-up fd); asyncio only does the waiting. ``register``/``modify``/
``unregister`` become ``loop.add_reader``/``add_writer``/``remove_*``, and
the callbacks asyncio calls on readiness just note ``(fd, READ or WRITE)``
in a dict. They never call a descriptor: the reactor's pass stays the only
place user callbacks run, with its usual order and guards.

Some facts about asyncio that shape the rest:

- ``loop.run_forever()`` cannot be entered while the loop runs, and a loop
  that nobody runs calls nothing. So there are two ways the reactor's passes
  happen, and the multiplexer switches between them on its own, pass by pass:

  *Driven*: the reactor's own ``run()``/``iterate()``/``run_until_complete``
  call ``poll(timeout)``, which runs the asyncio loop itself until an I/O
  callback fires or ``timeout`` passes (a readiness callback calls
  ``loop.stop()``; a ``call_later(timeout, loop.stop)`` bounds the wait;
  ``stop()`` before ``run_forever()`` makes asyncio poll exactly once with a
  zero timeout). Other asyncio work on the loop runs meanwhile, so asyncio
  coroutines keep going while the reactor drives.

  *Embedded*: somebody else runs the loop (``asyncio.run(main())``). The
  reactor then never calls ``run()``; instead its pass is an asyncio callback,
  ``_serve``, which the multiplexer keeps *armed* as one asyncio timer for
  the moment the reactor next has work: at once if its ready queue is not
  empty, else when its earliest timer is due, and at once when an fd becomes
  ready. After each pass it re-arms from the reactor's state.

- asyncio cannot see work the reactor is given between passes
  (``call_soon``/``call_later`` from an asyncio coroutine). The reactor
  therefore tells its multiplexer, through the optional ``work_added(when)``
  hook, whenever it schedules something; the multiplexer re-arms if that is
  earlier than what is armed. Inside a pass the hook does nothing: the pass
  re-arms when it ends. ``run_until_complete`` and the wait for shutdown
  hooks poke the same hook when their Deferred fires, since asyncio code can
  fire it while ``poll`` runs the loop. ``call_from_thread`` needs no hook:
  it writes to the reactor's wake-up fd, an asyncio reader like any other.
  (One gap: ``DelayedCall.reset``/``delay`` called from asyncio code outside
  a pass are not seen until the next pass, so a timer moved *earlier* that
  way may run late, at its old time.)

- A timer handle left armed while the reactor drives would stop the loop
  early for nothing, so ``poll`` disarms on entry and re-arms on exit. The
  armed timer is what lets a reactor that was driven hand over to an
  embedding loop (or the other way round) at any pass.

- asyncio's selector is level-triggered, so readiness noted but not yet
  handed to the reactor can be dropped safely: asyncio reports it again.
  Hang-up and error are reported by asyncio to both callbacks, which fits
  the reactor's rule that they count as readable and writable.

- Time: the reactor's clock is ``time.monotonic()``; asyncio's is
  ``loop.time()``, which may differ (other loop implementations), so only
  delays cross between them.

- Cost: a driven pass enters and leaves ``run_forever()`` and moves the
  armed timer, a few microseconds more than an epoll pass (about 6 against
  1.7 on the development machine). Asyncio underneath is for sharing a loop.

When the asyncio loop runs (embedded), the reactor's ``running`` stays False
and ``stop()``/shutdown hooks do not apply: ``Reactor.close()`` ends it, and
removes every reader, writer and timer it put on the loop. With ``loop=None``
the reactor uses the running loop if there is one, else a new loop of its
own, which ``close()`` closes.

Futures and Deferreds
---------------------

``from_future(f)`` and ``as_future(d, loop)`` (also ``Deferred.from_future``
and ``d.as_future(loop)``) carry a result, an exception or a cancellation
across, in both directions. Both sides belong to one thread: the thread that
runs the asyncio loop, which is the reactor thread when the reactor sits on
that loop.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING, Any, Awaitable

from .defer import Deferred, Failure
from .errors import CancelledError
from .multiplexers import READ, WRITE

if TYPE_CHECKING:
    from .core import Reactor

__all__ = ["AsyncioMultiplexer", "as_future", "from_future"]


class AsyncioMultiplexer:
    """A multiplexer that lets an asyncio loop do the waiting; see the module docstring."""

    name = "asyncio"
    READ_MASK = READ
    WRITE_MASK = WRITE
    READABLE = READ

    def __init__(self, reactor: Reactor, loop: asyncio.AbstractEventLoop | None = None) -> None:
        owned = False
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = asyncio.new_event_loop()
                owned = True
        #: The asyncio loop doing the waiting.
        self.loop = loop
        self._owned = owned
        self._reactor = reactor
        self._registered: dict[int, int] = {}
        self._events: dict[int, int] = {}
        # True while poll() runs the loop for the reactor (driven).
        self._driving = False
        # True while _serve() runs a pass from inside the loop (embedded).
        self._serving = False
        # The one asyncio timer that runs _serve, and when (reactor clock) it is due.
        self._armed: asyncio.TimerHandle | None = None
        self._armed_when = 0.0
        self._closed = False

    # -- the multiplexer interface ------------------------------------------

    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd`` for ``events`` on the asyncio loop."""
        if fd in self._registered:
            raise FileExistsError(f"fd {fd} already registered")
        self._apply(fd, 0, events)
        self._registered[fd] = events

    def modify(self, fd: int, events: int) -> None:
        """Change what ``fd`` is watched for."""
        old = self._registered.get(fd)
        if old is None:
            raise FileNotFoundError(f"fd {fd} not registered")
        self._apply(fd, old, events)
        self._registered[fd] = events

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; unknown or already closed fds are ignored."""
        events = self._registered.pop(fd, None)
        if events is None:
            return
        self._events.pop(fd, None)
        loop = self.loop
        for wanted, remove in ((READ, loop.remove_reader), (WRITE, loop.remove_writer)):
            if events & wanted:
                try:
                    remove(fd)
                except (OSError, ValueError):
                    # Closed before being removed: the selector dropped it already.
                    pass

    def _apply(self, fd: int, old: int, new: int) -> None:
        loop = self.loop
        added = 0
        try:
            if new & READ and not old & READ:
                loop.add_reader(fd, self._on_io, fd, READ)
                added = READ
            if new & WRITE and not old & WRITE:
                loop.add_writer(fd, self._on_io, fd, WRITE)
        except BaseException:
            # Leave nothing half-done: undo the reader added just above.
            if added:
                loop.remove_reader(fd)
            raise
        if old & READ and not new & READ:
            loop.remove_reader(fd)
        if old & WRITE and not new & WRITE:
            loop.remove_writer(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Run the asyncio loop until an fd is ready or ``timeout`` passes; return the ready fds.

        Inside a pass run by the loop itself (embedded), return what the loop
        has noted without waiting. Raises RuntimeError if somebody else is
        running the loop: the reactor then serves on it by itself.
        """
        if self._serving:
            return self._take_events()
        loop = self.loop
        if loop.is_running():
            raise RuntimeError(
                "the reactor's asyncio loop is already running: the reactor serves on it by itself, "
                "so do not call its run(), iterate() or run_until_complete() from inside that loop")
        # Level-triggered: anything noted earlier is reported again if still true.
        self._events.clear()
        self._disarm()
        self._driving = True
        stopper = None
        try:
            if timeout is None:
                pass
            elif timeout <= 0.0:
                # Documented asyncio behaviour: one poll with a zero timeout.
                loop.stop()
            else:
                stopper = loop.call_later(timeout, loop.stop)
            loop.run_forever()
        finally:
            self._driving = False
            if stopper is not None:
                stopper.cancel()
        # Re-arm, so that whoever runs the loop next, we or an embedding
        # program, finds the reactor's work scheduled.
        self._sync()
        return self._take_events()

    def _take_events(self) -> list[tuple[int, int]]:
        events = self._events
        if not events:
            return []
        self._events = {}
        return list(events.items())

    def close(self) -> None:
        """Remove every reader, writer and timer this reactor put on the loop; close the loop if it is ours."""
        if self._closed:
            return
        self._closed = True
        self._disarm()
        for fd in list(self._registered):
            self.unregister(fd)
        self._events.clear()
        if self._owned:
            self.loop.close()

    def fileno(self) -> int | None:
        """The OS handle behind the multiplexer: asyncio's is its own business."""
        return None

    # -- scheduling the reactor's passes --------------------------------------

    def work_added(self, when: float) -> None:
        """The reactor scheduled work due at ``when`` (reactor clock; 0.0 for at once)."""
        if self._serving or self._closed:
            return
        self._arm(when)

    def _on_io(self, fd: int, mask: int) -> None:
        events = self._events
        events[fd] = events.get(fd, 0) | mask
        if self._driving:
            self.loop.stop()
        else:
            self._arm(0.0)

    def _arm(self, when: float) -> None:
        armed = self._armed
        if armed is not None:
            if self._armed_when <= when:
                return
            armed.cancel()
        # A TimerHandle even for "at once": a cancelled one is free for
        # asyncio, while a cancelled call_soon handle costs it a wake-up.
        self._armed = self.loop.call_later(when - time.monotonic(), self._serve)
        self._armed_when = when

    def _disarm(self) -> None:
        armed = self._armed
        if armed is not None:
            armed.cancel()
            self._armed = None

    def _sync(self) -> None:
        """Arm for the reactor's next work, or disarm if it has none."""
        if self._closed:
            return
        reactor = self._reactor
        if reactor._ready:
            when = 0.0
        else:
            next_time = reactor._timers.next_time()
            if next_time is None:
                self._disarm()
                return
            when = next_time
        if self._armed is not None and self._armed_when == when:
            return
        self._disarm()
        self._arm(when)

    def _serve(self) -> None:
        """The armed asyncio callback: run one reactor pass (embedded), or end a driven poll."""
        self._armed = None
        if self._driving:
            # The reactor's work is due while it waits in poll(): wake it.
            self.loop.stop()
            return
        if self._closed:  # pragma: no cover - close() disarms first, and asyncio skips cancelled handles
            return
        reactor = self._reactor
        self._serving = True
        try:
            reactor.iterate(0.0)
        finally:
            self._serving = False
        self._sync()

    def statistics(self) -> dict[str, Any]:
        """Fds watched, readiness noted but not yet handed over, and whether a pass is armed."""
        return {"registered": len(self._registered), "pending_events": len(self._events), "armed": self._armed is not None}


# -- futures --------------------------------------------------------------------


def from_future(future: Awaitable[Any], loop: asyncio.AbstractEventLoop | None = None) -> Deferred[Any]:
    """A Deferred of an asyncio future's result or exception; cancelling either side cancels the other.

    A coroutine or other awaitable is first wrapped in a Task on ``loop`` (or
    the running loop). Raises TypeError for anything else.
    """
    if not asyncio.isfuture(future):
        if not inspect.isawaitable(future):
            raise TypeError(f"from_future() needs an asyncio future or an awaitable, not {type(future).__name__}")
        future = asyncio.ensure_future(future, loop=loop if loop is not None else asyncio.get_running_loop())
    fut: asyncio.Future[Any] = future  # type: ignore[assignment]

    def cancel_future(d: Deferred[Any]) -> None:
        fut.cancel()

    d: Deferred[Any] = Deferred(cancel_future)

    def settle(done: asyncio.Future[Any]) -> None:
        # Cancelling the Deferred fired it already; the future's late news is moot.
        if d.called:
            return
        if done.cancelled():
            d.errback(CancelledError("the asyncio future was cancelled"))
            return
        exc = done.exception()
        if exc is not None:
            d.errback(exc)
        else:
            d.callback(done.result())

    fut.add_done_callback(settle)
    return d


def as_future(d: Deferred[Any], loop: asyncio.AbstractEventLoop | None = None) -> asyncio.Future[Any]:
    """An asyncio future of ``d``'s result; cancelling either side cancels the other.

    ``loop`` defaults to the running loop. The Deferred hands its result (or
    error) over to the future and goes on with None.
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(result: Any) -> None:
        if future.done():
            return None
        if type(result) is Failure:
            if result.check(CancelledError, asyncio.CancelledError):
                _in_loop(loop, future.cancel)
            else:
                _in_loop(loop, _set_exception, future, result.value)
        else:
            _in_loop(loop, _set_result, future, result)
        return None

    def cancel_deferred(done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            d.cancel()

    future.add_done_callback(cancel_deferred)
    d.add_both(settle)
    return future


def _in_loop(loop: asyncio.AbstractEventLoop, func: Any, *args: Any) -> None:
    # Futures are not thread-safe: from a thread other than the loop's, hand
    # the call over. A loop nobody runs can be touched from here.
    if loop.is_running():
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is not loop:
            loop.call_soon_threadsafe(func, *args)
            return
    func(*args)


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
