"""Coroutine streams: ``data = await reader.readline()`` and ``writer.write(data)`` over a transport.

A connection is three small objects: a ``StreamProtocol`` that the transport
calls, a ``StreamReader`` that buffers what arrives, and a ``StreamWriter``
that sends and reports flow control. Every method that may wait returns a
Deferred, so the same reader serves ``x = yield reader.readline()`` in an
``inline_callbacks`` generator and ``x = await reader.readline()`` in an
``async def`` run by ``ensure_deferred``.

How reads wait
--------------

A read first tries to finish from the buffer. If it can, it returns an
already-fired Deferred (``succeed``), and ``await`` takes the result from it
without the coroutine driver ever seeing it. If it cannot, the reader keeps
one waiter: the Deferred it returned, plus *what* it waits for, as a plain
function and its argument (``_take_some`` and ``n``, ``_take_until`` and the
separator, ...). Every arrival (``feed_data``), EOF or error calls that
function again; once it has an answer the waiter is fired with it, *right
there*, inside ``data_received``.

Why fire directly rather than hop through ``call_soon``: the hop would cost
a DelayedCall and a pass of the loop per read, and buys nothing here. The
reader clears its waiter before firing, so the coroutine that runs inside
the callback may read again at once; re-entrant calls see a consistent
reader. asyncio wakes the task on the next loop pass instead; that is the
biggest single difference in cost per request. When nothing is buffered and
the waiter is ``read(n)`` with a chunk of at most ``n`` bytes, the chunk
from ``recv()`` is handed over as it is, never copied into the buffer.

Only one read may wait at a time (a second one raises RuntimeError, as in
asyncio). Cancelling the waiting Deferred only forgets the waiter: the
buffered bytes stay for the next read. Misuse (a second waiting read, a bad
argument) raises at the call; what the connection does (EOF before a frame
is complete, an over-long line, a reset) comes as a failed Deferred, which
``await`` and ``yield`` raise at the same place.

``readuntil`` remembers how far it has searched (``_searched``), so a long
line arriving a byte at a time costs linear time, not quadratic.

Limits and flow control
-----------------------

``limit`` (64 KiB by default) bounds a line or frame: ``readline()`` and
``readuntil()`` fail with ``LimitOverrunError`` as soon as more than
``limit`` bytes precede the separator. ``readuntil()`` leaves the bytes in
the buffer (``consumed`` says how many were examined, as in asyncio), for
the caller to deal with. ``readline()`` drops the whole line through its
newline, also the part still to come (``_discarding``), so what readline
returns does not depend on how the bytes were chunked; asyncio drops only
what was buffered, and reads the rest of the line as the next line. Most
servers close the connection on that error anyway.

The reader pauses its transport (``pause_reading``) when more than
``2 * limit`` bytes are buffered and nobody waits for them, and resumes it
when a read brings the buffer to ``limit`` or less, so a fast peer cannot
fill our memory while the handler is busy. A read that needs more than is
buffered (``readexactly(n)`` with a large ``n``, ``read()`` to EOF) resumes
reading while it waits: the caller asked for those bytes.

Ends
----

EOF from the peer is EOF for the reader, but the write side stays open
until the handler closes it (``eof_received`` returns True): a server can
answer a request that ends with a half-close. A connection lost with an
error (``ConnectionLost``, ``ConnectionAborted``) is raised by the read that
would otherwise have seen EOF; bytes that arrived before the error are still
handed out by reads they satisfy. A clean close is plain EOF.

``writer.drain()`` fires at once while the transport's write buffer is at or
below its high mark, else when it falls to the low mark (the transport's
``pause_writing``/``resume_writing``), and fails with the reason's exception
if the connection is lost first, or was lost already (``ConnectionDone``
after a clean close). ``writer.wait_closed()`` fires with None once the
connection is gone, however it ended: reads and ``drain()`` report errors,
closing does not raise them a second time.

Handlers
--------

``start_server`` (and ``start_unix_server``) calls ``handler(reader, writer)``
for each connection; ``open_connection`` (and ``open_unix_connection``)
gives a client its pair; ``StreamProtocol(on_made, limit)`` is the protocol
both use, for factories of one's own. A handler may be an ``async def``, an
``inline_callbacks`` generator function, or a plain function returning a
Deferred or None. An exception, or a failed Deferred, is logged to the
``"reactor"`` logger and the connection is aborted; that includes a reset
the handler did not catch, as in asyncio. A handler cancelled from outside
(its Deferred, say by a server shutting down) is not an error: the
connection is closed, flushing what was written. A handler that returns
normally leaves the connection as it is: closing it is the handler's job
(``writer.close()``), as in asyncio.
"""

from __future__ import annotations

import logging
from types import CoroutineType, GeneratorType
from typing import Any, Callable, Iterable

from reactor.coroutines import ensure_deferred
from reactor.defer import Deferred, Failure, fail, succeed
from reactor.errors import CancelledError, ConnectionDone, IncompleteReadError, LimitOverrunError

from .base import ClientFactory, Factory, Protocol

__all__ = [
    "DEFAULT_LIMIT",
    "StreamProtocol",
    "StreamReader",
    "StreamWriter",
    "open_connection",
    "open_unix_connection",
    "start_server",
    "start_unix_server",
]

log = logging.getLogger("reactor")

#: The default line/frame limit of a StreamReader, in bytes.
DEFAULT_LIMIT = 65536

# What a take function returns when the buffer cannot answer yet.
_NOT_YET: Any = object()


class StreamReader:
    """Bytes received on one connection, handed out by reads that return Deferreds."""

    __slots__ = (
        "_buffer", "_limit", "_eof", "_exception", "_waiter", "_want", "_want_arg",
        "_searched", "_transport", "_paused", "_discarding",
    )

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit <= 0:
            raise ValueError(f"limit must be positive, not {limit!r}")
        self._buffer = bytearray()
        self._limit = limit
        self._eof = False
        self._exception: BaseException | None = None
        # The pending read: its Deferred, and the take function (and its
        # argument) that says when and with what to fire it.
        self._waiter: Deferred[Any] | None = None
        self._want: Callable[[StreamReader, Any], Any] | None = None
        self._want_arg: Any = None
        # Where the pending readuntil/readline resumes its search.
        self._searched = 0
        self._transport: Any = None
        self._paused = False
        # True while the rest of an over-long line is being dropped.
        self._discarding = False

    @property
    def limit(self) -> int:
        """The longest line or frame (bytes before the separator) that readline/readuntil accept."""
        return self._limit

    # -- fed by the protocol ------------------------------------------------

    def set_transport(self, transport: Any) -> None:
        """Use ``transport``'s pause_reading/resume_reading for flow control."""
        self._transport = transport

    def feed_data(self, data: bytes) -> None:
        """Add bytes that arrived; a pending read that they complete fires now."""
        if self._discarding:
            data = self._skip_line_rest(data)
        waiter = self._waiter
        buf = self._buffer
        if waiter is not None:
            if waiter.called:
                # Cancelled while waiting (see _start): forget it.
                waiter = self._waiter = None
            elif (
                not buf and self._want is _TAKE_SOME
                and type(data) is bytes and 0 < len(data) <= self._want_arg
            ):
                # The echo-server case: hand the received bytes over uncopied.
                self._waiter = None
                waiter.callback(data)
                return
        if not data:
            return
        buf += data
        if waiter is not None:
            self._wake()
        # Nobody wants these bytes yet: past twice the limit, stop reading.
        if len(buf) > 2 * self._limit and self._waiter is None and not self._paused:
            transport = self._transport
            if transport is not None:
                self._paused = True
                transport.pause_reading()

    def _skip_line_rest(self, data: bytes) -> bytes:
        """Drop ``data`` up to the end of the over-long line; return what follows it."""
        index = data.find(b"\n")
        if index < 0:
            return b""
        self._discarding = False
        return data[index + 1:]

    def feed_eof(self) -> None:
        """No more bytes will come: a pending read and later ones see EOF."""
        self._eof = True
        self._discarding = False
        if self._waiter is not None:
            self._wake()

    def set_exception(self, exc: BaseException) -> None:
        """The connection failed: reads that would see EOF raise ``exc`` instead."""
        self._exception = exc
        self._eof = True
        if self._waiter is not None:
            self._wake()

    def exception(self) -> BaseException | None:
        """The error the connection ended with, if any."""
        return self._exception

    def at_eof(self) -> bool:
        """True once EOF (or an error) arrived and the buffer is empty."""
        return self._eof and not self._buffer

    # -- reads --------------------------------------------------------------

    def read(self, n: int = -1) -> Deferred[bytes]:
        """Up to ``n`` bytes (at once if any are buffered; b"" at EOF); with ``n < 0``, all until EOF."""
        if self._waiter is not None:
            self._check_idle()
        if n > 0:
            # _start and _take_some inlined: this is the hot path of a streaming server.
            buf = self._buffer
            if buf:
                if len(buf) <= n:
                    data = bytes(buf)
                    buf.clear()
                    self._searched = 0
                    if self._paused:
                        self._resume()
                    return succeed(data)
                return succeed(self._take(n))
            if not self._eof:
                # (Nothing to resume: every read that empties the buffer resumes the transport.)
                d: Deferred[bytes] = Deferred()
                self._waiter = d
                self._want = _TAKE_SOME
                self._want_arg = n
                return d
            return self._start(_TAKE_SOME, n)
        if n == 0:
            return succeed(b"")
        return self._start(_TAKE_ALL, None)

    def readexactly(self, n: int) -> Deferred[bytes]:
        """Exactly ``n`` bytes; fails with IncompleteReadError (``.partial``, ``.expected``) at EOF."""
        if n < 0:
            raise ValueError(f"readexactly() needs n >= 0, not {n!r}")
        if self._waiter is not None:
            self._check_idle()
        if n == 0:
            return succeed(b"")
        return self._start(_TAKE_EXACTLY, n)

    def readuntil(self, separator: bytes = b"\n") -> Deferred[bytes]:
        """The bytes up to and including ``separator``.

        Fails with IncompleteReadError at EOF (``.partial`` holds what was
        left) and with LimitOverrunError, leaving the bytes buffered, when
        more than ``limit`` bytes come before the separator.
        """
        if not separator:
            raise ValueError("readuntil() needs a non-empty separator")
        if type(separator) is not bytes:
            separator = bytes(memoryview(separator))
        if self._waiter is not None:
            self._check_idle()
        self._searched = 0
        return self._start(_TAKE_UNTIL, separator)

    def readline(self) -> Deferred[bytes]:
        """The next line, ending in b"\\n"; at EOF the unfinished line, then b"".

        A line longer than ``limit`` fails with LimitOverrunError (as soon
        as it is known to be too long) and the whole line is dropped,
        through its newline, however its bytes arrive.
        """
        if self._waiter is not None:
            self._check_idle()
        self._searched = 0
        return self._start(_TAKE_LINE, None)

    def __aiter__(self) -> StreamReader:
        """``async for line in reader``: lines until EOF."""
        return self

    def __anext__(self) -> Deferred[bytes]:
        """The next line; StopAsyncIteration at EOF."""
        return self.readline().add_callback(_stop_at_eof)

    # -- waiting --------------------------------------------------------------

    def _check_idle(self) -> None:
        """Raise RuntimeError if a read is waiting; forget a waiter that was cancelled."""
        if not self._waiter.called:  # type: ignore[union-attr]
            raise RuntimeError("another read is already waiting on this stream; only one may wait at a time")
        self._waiter = None

    def _start(self, want: Callable[[StreamReader, Any], Any], arg: Any) -> Deferred[Any]:
        """Answer from the buffer now, or become the waiter."""
        try:
            result = want(self, arg)
        except Exception as exc:
            return fail(exc)
        if result is not _NOT_YET:
            return succeed(result)
        # No canceller, so no bound method to allocate per read: a cancelled
        # waiter fires itself with CancelledError, and the reader notices it
        # (waiter.called) at its next event and forgets it. The buffered
        # bytes stay where they are.
        d: Deferred[Any] = Deferred()
        self._waiter = d
        self._want = want
        self._want_arg = arg
        if self._paused:
            # This read needs more than is buffered: let it come.
            self._resume()
        return d

    def _wake(self) -> None:
        """Something arrived: fire the waiter if it can be answered now."""
        waiter = self._waiter
        if waiter.called:  # type: ignore[union-attr]
            self._waiter = None
            return
        try:
            result = self._want(self, self._want_arg)  # type: ignore[misc]
        except Exception:
            self._waiter = None
            waiter.errback()  # type: ignore[union-attr]
            return
        if result is not _NOT_YET:
            # Cleared before firing: the callback may read again at once.
            self._waiter = None
            waiter.callback(result)  # type: ignore[union-attr]

    def _resume(self) -> None:
        self._paused = False
        self._transport.resume_reading()

    def _raise_if_failed(self) -> None:
        exc = self._exception
        if exc is not None:
            # Drop the traceback of the last raise, or each raise would add to it.
            raise exc.with_traceback(None)

    # -- take functions: the answer, _NOT_YET, or raise ----------------------

    def _take(self, n: int) -> bytes:
        """Remove and return the first ``n`` buffered bytes."""
        buf = self._buffer
        if n >= len(buf):
            data = bytes(buf)
            buf.clear()
        else:
            with memoryview(buf) as view:
                data = bytes(view[:n])
            # Deleting from the front of a bytearray moves a start offset; no copy.
            del buf[:n]
        self._searched = 0
        if self._paused and len(buf) <= self._limit:
            self._resume()
        return data

    def _take_some(self, n: int) -> Any:
        # Only called with bytes buffered or at EOF: read() itself waits
        # when neither holds, and _wake runs only after one of them.
        if self._buffer:
            return self._take(n)
        self._raise_if_failed()
        return b""

    def _take_all(self, _: Any) -> Any:
        if not self._eof:
            return _NOT_YET
        self._raise_if_failed()
        return self._take(len(self._buffer))

    def _take_exactly(self, n: int) -> Any:
        buf = self._buffer
        if len(buf) >= n:
            return self._take(n)
        if not self._eof:
            return _NOT_YET
        self._raise_if_failed()
        raise IncompleteReadError(self._take(len(buf)), n)

    def _take_until(self, sep: bytes) -> Any:
        buf = self._buffer
        limit = self._limit
        size = len(sep)
        index = buf.find(sep, self._searched)
        if index >= 0:
            if index > limit:
                raise LimitOverrunError(
                    f"separator {sep!r} found after {index} bytes, over the stream's limit of {limit}", index
                )
            return self._take(index + size)
        # The separator cannot start before this point: search on from here.
        resume = len(buf) - size + 1
        if resume > limit:
            raise LimitOverrunError(
                f"separator {sep!r} not found in the first {resume + size - 1} bytes;"
                f" over the stream's limit of {limit}", resume
            )
        if resume > 0:
            self._searched = resume
        if not self._eof:
            return _NOT_YET
        self._raise_if_failed()
        raise IncompleteReadError(self._take(len(buf)), None)

    def _take_line(self, _: Any) -> Any:
        buf = self._buffer
        limit = self._limit
        index = buf.find(b"\n", self._searched)
        if index >= 0:
            if index <= limit:
                return self._take(index + 1)
            self._take(index + 1)
            raise LimitOverrunError(
                f"line of {index + 1} bytes is over the stream's limit of {limit}; dropped", index
            )
        size = len(buf)
        if size > limit:
            self._take(size)
            # Its end is still to come: drop that too when it arrives.
            self._discarding = not self._eof
            raise LimitOverrunError(
                f"no end of line in {size} bytes, over the stream's limit of {limit}; dropped", size
            )
        self._searched = size
        if not self._eof:
            return _NOT_YET
        self._raise_if_failed()
        return self._take(size)

    def __repr__(self) -> str:
        state = [f"{len(self._buffer)} bytes buffered"]
        if self._eof:
            state.append("eof" if self._exception is None else f"failed: {self._exception!r}")
        if self._waiter is not None and not self._waiter.called:
            state.append(f"waiting in {_WANT_NAMES[self._want]}")
        if self._paused:
            state.append("paused")
        return f"<StreamReader {', '.join(state)}>"


# The take functions, as plain functions: a waiter stores one without
# allocating a bound method per read.
_TAKE_SOME = StreamReader._take_some
_TAKE_ALL = StreamReader._take_all
_TAKE_EXACTLY = StreamReader._take_exactly
_TAKE_UNTIL = StreamReader._take_until
_TAKE_LINE = StreamReader._take_line
_WANT_NAMES: dict[Any, str] = {
    _TAKE_SOME: "read(n)", _TAKE_ALL: "read()", _TAKE_EXACTLY: "readexactly",
    _TAKE_UNTIL: "readuntil", _TAKE_LINE: "readline",
}


def _stop_at_eof(line: bytes) -> bytes:
    if not line:
        raise StopAsyncIteration
    return line


class StreamWriter:
    """The sending side of a stream connection: writes, flow control, closing."""

    __slots__ = ("transport", "_paused", "_drain_waiters", "_closed_waiters", "_lost")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        # True between the transport's pause_writing and resume_writing.
        self._paused = False
        self._drain_waiters: list[Deferred[None]] | None = None
        self._closed_waiters: list[Deferred[None]] | None = None
        # The Failure the connection ended with, once it has.
        self._lost: Failure | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` (bytes-like); never blocks. Use drain() to wait for the buffer to empty."""
        self.transport.write(data)

    def writelines(self, data: Iterable[bytes]) -> None:
        """Send each chunk of ``data`` in order."""
        self.transport.writelines(data)

    def write_eof(self) -> None:
        """Shut our write side once the buffer is sent; reading goes on."""
        self.transport.write_eof()

    def can_write_eof(self) -> bool:
        """True if the transport can half-close."""
        return self.transport.can_write_eof()

    def close(self) -> None:
        """Close the connection once every buffered byte is sent."""
        self.transport.lose_connection()

    def abort(self) -> None:
        """Close the connection now, dropping what is buffered."""
        self.transport.abort_connection()

    def is_closing(self) -> bool:
        """True once close() or abort() was called or the connection was lost."""
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The transport's ``socket``, ``peername`` or ``sockname`` (``default`` for anything else)."""
        return self.transport.get_extra_info(name, default)

    def drain(self) -> Deferred[None]:
        """A Deferred that fires once the write buffer is low enough to write more.

        It fires at once while the buffer is at or below the high mark, else
        when it falls to the low mark; it fails with the connection's error
        (ConnectionDone after a clean close) once the connection is lost.
        """
        lost = self._lost
        if lost is not None:
            return fail(lost)
        if not self._paused:
            return succeed(None)
        d: Deferred[None] = Deferred(self._cancel_drain)
        waiters = self._drain_waiters
        if waiters is None:
            self._drain_waiters = [d]
        else:
            waiters.append(d)
        return d

    def wait_closed(self) -> Deferred[None]:
        """A Deferred that fires with None once the connection is closed, however it ended."""
        if self._lost is not None:
            return succeed(None)
        d: Deferred[None] = Deferred(self._cancel_closed)
        waiters = self._closed_waiters
        if waiters is None:
            self._closed_waiters = [d]
        else:
            waiters.append(d)
        return d

    def _cancel_drain(self, d: Deferred[None]) -> None:
        waiters = self._drain_waiters
        if waiters is not None and d in waiters:
            waiters.remove(d)

    def _cancel_closed(self, d: Deferred[None]) -> None:
        waiters = self._closed_waiters
        if waiters is not None and d in waiters:
            waiters.remove(d)

    # -- called by StreamProtocol -----------------------------------------

    def _pause_writing(self) -> None:
        self._paused = True

    def _resume_writing(self) -> None:
        self._paused = False
        waiters = self._drain_waiters
        if waiters:
            # Swapped out first: a waiter's callback may write and drain again.
            self._drain_waiters = None
            for d in waiters:
                # An earlier waiter's callback may have cancelled this one.
                if not d.called:
                    d.callback(None)

    def _connection_lost(self, reason: Failure) -> None:
        self._lost = reason
        self._paused = False
        drains, self._drain_waiters = self._drain_waiters, None
        closes, self._closed_waiters = self._closed_waiters, None
        # As in _resume_writing, a callback may cancel a later waiter.
        if drains:
            for d in drains:
                if not d.called:
                    d.errback(reason)
        if closes:
            for d in closes:
                if not d.called:
                    d.callback(None)

    def __repr__(self) -> str:
        state = "lost" if self._lost is not None else "paused" if self._paused else "open"
        return f"<StreamWriter {state} transport={self.transport!r}>"


class StreamProtocol(Protocol):
    """Connects a transport's events to a StreamReader and a StreamWriter.

    ``on_made(reader, writer)`` is called from ``connection_made``. Its
    ``data_received`` is the reader's ``feed_data``.
    """

    # Slots for Protocol's attributes too, so no instance __dict__ is made.
    __slots__ = ("reader", "writer", "transport", "connected", "factory", "_on_made", "data_received")

    def __init__(
        self, on_made: Callable[[StreamReader, StreamWriter], Any], limit: int = DEFAULT_LIMIT
    ) -> None:
        self.reader = StreamReader(limit)
        # The reader's feed_data() is this protocol's data_received(): one
        # call less on every read.
        self.data_received: Callable[[bytes], None] = self.reader.feed_data
        self.writer: StreamWriter | None = None
        self.transport: Any = None
        self.connected = False
        self.factory: Any = None
        self._on_made: Callable[[StreamReader, StreamWriter], Any] | None = on_made

    def connection_made(self, transport: Any) -> None:
        """Make the writer and hand the pair to ``on_made``."""
        self.transport = transport
        self.connected = True
        self.reader.set_transport(transport)
        writer = self.writer = StreamWriter(transport)
        on_made, self._on_made = self._on_made, None
        on_made(self.reader, writer)  # type: ignore[misc]

    def eof_received(self) -> bool:
        """EOF for the reader; keep the write side open until the handler closes it."""
        self.reader.feed_eof()
        return True

    def connection_lost(self, reason: Failure) -> None:
        """Fail or fire the writer's waiters, and end the reader (EOF, or the error)."""
        self.connected = False
        writer = self.writer
        # Order matters to code woken here: the writer knows first (a woken
        # reader's drain() fails), and the reader has its end before
        # wait_closed() fires.
        if writer is not None:
            writer._lost = reason
        if reason.check(ConnectionDone):
            self.reader.feed_eof()
        else:
            self.reader.set_exception(reason.value)
        if writer is not None:
            writer._connection_lost(reason)

    def pause_writing(self) -> None:
        """The transport's buffer went over its high mark: drain() waits from now on."""
        self.writer._pause_writing()  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        """The buffer fell to the low mark: fire the waiting drain() calls."""
        self.writer._resume_writing()  # type: ignore[union-attr]


def _handler_name(handler: Any) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)


def _handler_failed(failure: Failure, handler: Any, writer: StreamWriter) -> None:
    if failure.check(CancelledError):
        # Whoever cancelled it (a server shutting down) meant it: no error,
        # and what the handler wrote is still sent.
        log.debug("Stream handler %s cancelled; closing the connection", _handler_name(handler))
        writer.close()
        return
    log.error(
        "Unhandled error in stream handler %s; aborting the connection",
        _handler_name(handler), exc_info=(failure.type, failure.value, failure.tb),
    )
    writer.abort()
    # None: the error is handled (logged), so the Deferred does not report it again.


def _run_handler(handler: Callable[..., Any], reader: StreamReader, writer: StreamWriter) -> None:
    """Call ``handler(reader, writer)``; log its error (now or later) and abort the connection."""
    try:
        result = handler(reader, writer)
    except Exception:
        _handler_failed(Failure(), handler, writer)
        return
    if result is None:
        return
    if type(result) is not Deferred:
        kind = type(result)
        if kind is not CoroutineType and kind is not GeneratorType and not hasattr(kind, "__await__"):
            return  # A plain value: there is nothing to wait for.
        result = ensure_deferred(result)
    result.add_errback(_handler_failed, handler, writer)


class _ServerFactory(Factory):
    """Builds a StreamProtocol per accepted connection and runs the handler on it."""

    def __init__(self, handler: Callable[..., Any], limit: int) -> None:
        self.handler = handler
        self.limit = limit

    def build_protocol(self, addr: Any) -> StreamProtocol:
        protocol = StreamProtocol(self._serve, self.limit)
        protocol.factory = self
        return protocol

    def _serve(self, reader: StreamReader, writer: StreamWriter) -> None:
        _run_handler(self.handler, reader, writer)


class _ClientFactory(ClientFactory):
    """Fires ``deferred`` with (reader, writer) once connected, or with the connect error."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.connector: Any = None
        self.deferred: Deferred[tuple[StreamReader, StreamWriter]] = Deferred(self._cancel)

    def started_connecting(self, connector: Any) -> None:
        self.connector = connector

    def build_protocol(self, addr: Any) -> StreamProtocol:
        protocol = StreamProtocol(self._made, self.limit)
        protocol.factory = self
        return protocol

    def _made(self, reader: StreamReader, writer: StreamWriter) -> None:
        self.deferred.callback((reader, writer))

    def client_connection_failed(self, connector: Any, reason: Failure) -> None:
        self.deferred.errback(reason)

    def _cancel(self, d: Deferred[Any]) -> None:
        # ``d`` is unfired only while connecting (connection_made fires it).
        # Stopping the attempt makes client_connection_failed fail ``d`` with CancelledError.
        self.connector.stop_connecting()


def _check_handler(handler: Any) -> None:
    if not callable(handler):
        raise TypeError(f"handler must be callable, not {type(handler).__name__}")


def open_connection(
    reactor: Any, host: str, port: int, *, limit: int = DEFAULT_LIMIT, timeout: float = 30.0,
    bind_address: tuple[str, int] | None = None,
) -> Deferred[tuple[StreamReader, StreamWriter]]:
    """Connect over TCP; a Deferred of ``(reader, writer)``, or of the connect error.

    Cancelling the Deferred stops the attempt.
    """
    if limit <= 0:
        raise ValueError(f"limit must be positive, not {limit!r}")
    factory = _ClientFactory(limit)
    reactor.connect_tcp(host, port, factory, timeout=timeout, bind_address=bind_address)
    return factory.deferred


def open_unix_connection(
    reactor: Any, path: str, *, limit: int = DEFAULT_LIMIT, timeout: float = 30.0,
) -> Deferred[tuple[StreamReader, StreamWriter]]:
    """Connect to the UNIX socket ``path``; a Deferred of ``(reader, writer)``."""
    if limit <= 0:
        raise ValueError(f"limit must be positive, not {limit!r}")
    factory = _ClientFactory(limit)
    reactor.connect_unix(path, factory, timeout=timeout)
    return factory.deferred


def start_server(
    reactor: Any, handler: Callable[[StreamReader, StreamWriter], Any], port: int, *,
    interface: str = "", limit: int = DEFAULT_LIMIT, backlog: int = 1024, reuse_port: bool = False,
) -> Deferred[Any]:
    """Serve ``handler(reader, writer)`` on TCP ``interface:port``; a Deferred of the Listener."""
    _check_handler(handler)
    if limit <= 0:
        raise ValueError(f"limit must be positive, not {limit!r}")
    try:
        listener = reactor.listen_tcp(
            port, _ServerFactory(handler, limit), interface=interface, backlog=backlog, reuse_port=reuse_port
        )
    except Exception as exc:
        return fail(exc)
    return succeed(listener)


def start_unix_server(
    reactor: Any, handler: Callable[[StreamReader, StreamWriter], Any], path: str, *,
    limit: int = DEFAULT_LIMIT, backlog: int = 1024,
) -> Deferred[Any]:
    """Serve ``handler(reader, writer)`` on the UNIX socket ``path``; a Deferred of the Listener."""
    _check_handler(handler)
    if limit <= 0:
        raise ValueError(f"limit must be positive, not {limit!r}")
    try:
        listener = reactor.listen_unix(path, _ServerFactory(handler, limit), backlog=backlog)
    except Exception as exc:
        return fail(exc)
    return succeed(listener)
