"""The OS readiness APIs behind one small interface.

Some facts that shape this module:

- Each API reports events in its own bits. Translating them into ours on
  every event would cost a call per event on the hottest path of the
  program, so each multiplexer instead publishes ``READ_MASK`` and
  ``WRITE_MASK``: the native bits that mean "call on_read" and "call
  on_write". Hang-up and error are in both masks, so a descriptor that waits
  to read or to write is woken and finds EOF or the error itself. The
  reactor only calls a descriptor that registered for that direction.
  ``READABLE`` is the native value of the commonest event of all, "readable
  and nothing else": the reactor tests for it with one integer comparison
  before it looks at single bits.
- poll(2) takes whole milliseconds. A timer 0.4 ms away rounded *down* to
  0 ms would make the loop spin until it is due, so timeouts are rounded up.
  epoll's Python binding already rounds its float seconds up.
- A multiplexer keeps only what the OS call needs; the reactor owns the
  fd -> descriptor maps. Our own state changes only after the OS call has
  succeeded, so a failed register leaves nothing half-done.
- select(2) cannot watch fds >= FD_SETSIZE (usually 1024); it is here for
  portability and as a reference, not for ten thousand connections.

The interface: ``register(fd, events)``, ``modify(fd, events)``,
``unregister(fd)``, ``poll(timeout) -> [(fd, native_events), ...]`` with
``timeout`` in seconds or None to wait forever, and ``close()``. ``events``
is a combination of ``READ`` and ``WRITE``.
"""

from __future__ import annotations

import errno
import math
import os
import select
from typing import Callable

READ = 1
WRITE = 4
# glibc's fixed size of an fd_set; select() fails for any fd at or above it.
FD_SETSIZE = 1024


class SelectMultiplexer:
    """select(2): everywhere, but limited to fds below FD_SETSIZE."""

    name = "select"
    READ_MASK = READ
    WRITE_MASK = WRITE
    READABLE = READ

    def __init__(self) -> None:
        self._readers: set[int] = set()
        self._writers: set[int] = set()

    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd`` for ``events``; ValueError for fds select() cannot watch."""
        if fd in self._readers or fd in self._writers:
            raise FileExistsError(errno.EEXIST, "fd already registered", fd)
        if fd >= FD_SETSIZE:
            # One such fd would make every select() call fail.
            raise ValueError(f"select() cannot watch fd {fd} (>= FD_SETSIZE {FD_SETSIZE}); use poll or epoll")
        self._set(fd, events)

    def modify(self, fd: int, events: int) -> None:
        """Change what ``fd`` is watched for."""
        if fd not in self._readers and fd not in self._writers:
            raise FileNotFoundError(errno.ENOENT, "fd not registered", fd)
        self._set(fd, events)

    def _set(self, fd: int, events: int) -> None:
        if events & READ:
            self._readers.add(fd)
        else:
            self._readers.discard(fd)
        if events & WRITE:
            self._writers.add(fd)
        else:
            self._writers.discard(fd)

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; unknown fds are ignored."""
        self._readers.discard(fd)
        self._writers.discard(fd)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait up to ``timeout`` seconds and return the ready fds."""
        try:
            r, w, x = select.select(self._readers, self._writers, self._writers, timeout)
        except (OSError, ValueError):
            # An fd was closed behind our back: report it so that its
            # descriptor reads, meets the error and is closed.
            return self._bad_fds()
        result: dict[int, int] = {}
        for fd in r:
            result[fd] = READ
        for fd in w:
            result[fd] = result.get(fd, 0) | WRITE
        for fd in x:
            result[fd] = READ | WRITE
        return list(result.items())

    def _bad_fds(self) -> list[tuple[int, int]]:
        bad = []
        for fd in self._readers | self._writers:
            try:
                os.fstat(fd)
            except OSError:
                bad.append((fd, READ | WRITE))
        return bad

    def close(self) -> None:
        """Release the multiplexer (select holds no OS resource)."""
        self._readers.clear()
        self._writers.clear()

    def fileno(self) -> int | None:
        """The OS handle behind the multiplexer, if it has one."""
        return None


class _PollLike:
    """The shared body of poll and epoll: both keep an OS object keyed by fd."""

    name = ""
    READ_MASK = 0
    WRITE_MASK = 0
    READABLE = 0
    _READ = 0
    _WRITE = 0
    _make: Callable[[], object]
    _per_second = 1.0

    def __init__(self) -> None:
        self._poller = type(self)._make()
        self._registered: set[int] = set()

    def _native(self, events: int) -> int:
        native = 0
        if events & READ:
            native |= self._READ
        if events & WRITE:
            native |= self._WRITE
        return native

    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd`` for ``events``."""
        if fd in self._registered:
            raise FileExistsError(errno.EEXIST, "fd already registered", fd)
        self._poller.register(fd, self._native(events))
        self._registered.add(fd)

    def modify(self, fd: int, events: int) -> None:
        """Change what ``fd`` is watched for."""
        if fd not in self._registered:
            raise FileNotFoundError(errno.ENOENT, "fd not registered", fd)
        self._poller.modify(fd, self._native(events))

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; unknown or already closed fds are ignored."""
        if fd not in self._registered:
            return
        self._registered.discard(fd)
        try:
            self._poller.unregister(fd)
        except (OSError, KeyError):
            # The fd was closed first: the kernel dropped it already.
            pass

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait up to ``timeout`` seconds and return the ready fds."""
        if timeout is None:
            return self._poller.poll()
        if self._per_second != 1.0:
            # Whole milliseconds, rounded up; see the module docstring.
            return self._poller.poll(math.ceil(timeout * 1000.0))
        return self._poller.poll(timeout)

    def close(self) -> None:
        """Release the OS object."""
        self._registered.clear()

    def fileno(self) -> int | None:
        """The OS handle behind the multiplexer, if it has one."""
        return None


class PollMultiplexer(_PollLike):
    """poll(2): portable, no fd limit."""

    name = "poll"
    _READ = select.POLLIN | select.POLLPRI
    _WRITE = select.POLLOUT
    _BAD = select.POLLERR | select.POLLHUP | select.POLLNVAL
    READ_MASK = _READ | _BAD
    WRITE_MASK = _WRITE | _BAD
    READABLE = select.POLLIN
    _make = select.poll
    _per_second = 1000.0


if hasattr(select, "epoll"):

    class EpollMultiplexer(_PollLike):
        """epoll(7): Linux, O(ready fds) per poll."""

        name = "epoll"
        _READ = select.EPOLLIN | select.EPOLLPRI
        _WRITE = select.EPOLLOUT
        _BAD = select.EPOLLERR | select.EPOLLHUP
        READ_MASK = _READ | _BAD
        WRITE_MASK = _WRITE | _BAD
        READABLE = select.EPOLLIN

        @staticmethod
        def _make() -> object:
            return select.epoll()

        def close(self) -> None:
            """Release the epoll fd."""
            self._registered.clear()
            self._poller.close()

        def fileno(self) -> int | None:
            """The epoll fd."""
            return self._poller.fileno()

        def __init__(self) -> None:
            super().__init__()
            # epoll takes float seconds (rounded up) or None as they are, so
            # the reactor may call the OS object's poll with no wrapper.
            self.poll = self._poller.poll  # type: ignore[method-assign]


def available() -> list[str]:
    """The multiplexer names this platform has, best first."""
    names = []
    if hasattr(select, "epoll"):
        names.append("epoll")
    if hasattr(select, "poll"):
        names.append("poll")
    names.append("select")
    return names


def make_multiplexer(name: str | None = None) -> SelectMultiplexer | _PollLike:
    """A new multiplexer by name, or the best available for None."""
    if name is None:
        name = available()[0]
    if name == "epoll" and hasattr(select, "epoll"):
        return EpollMultiplexer()
    if name == "poll" and hasattr(select, "poll"):
        return PollMultiplexer()
    if name == "select":
        return SelectMultiplexer()
    raise ValueError(f"unknown or unavailable multiplexer {name!r}; available: {', '.join(available())}")
