"""The stream-socket transport shared by TCP and UNIX connections.

The write path is the hottest code in a server, so it is shaped around the
common case: nothing is buffered, ``write()`` calls ``send()`` at once, and
if the kernel takes everything no buffer is ever allocated. Only what the
kernel refuses is kept, in a list of chunks plus an offset into the first:

- a large ``bytes`` chunk is kept as it is (never copied, never sliced: the
  offset says how much of it was sent);
- small writes made while data waits are appended to a trailing
  ``bytearray`` we own, so a chatty protocol writing to a slow peer builds
  few chunks, not millions;
- ``on_write`` sends up to 64 chunks with one ``sendmsg()`` (scatter/gather).

Closing is scheduled, never done in the middle of a user's call:
``connection_lost`` runs on the next pass, exactly once. The socket itself
is closed at once after it is unregistered, so its fd number cannot be
reused while the multiplexer still watches it.

Reasons handed to ``connection_lost``: ``ConnectionDone`` for a clean close
by either side, ``ConnectionLost`` (the OS error or a protocol's exception
as ``__cause__``) for a reset or an error, ``ConnectionAborted`` after
``abort_connection()``.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import TYPE_CHECKING, Any, Iterable

from .address import Address
from .defer import Failure
from .errors import ConnectionAborted, ConnectionDone, ConnectionLost

if TYPE_CHECKING:
    from .core import Reactor

log = logging.getLogger("reactor")

READ_SIZE = 65536
# Chunks smaller than this are merged into a trailing bytearray when buffered.
SMALL_CHUNK = 16384
# Chunks passed to one sendmsg(); well under any IOV_MAX.
MAX_IOV = 64

_HANDLED_WRITE_ERRORS = (BlockingIOError, InterruptedError)


def as_bytes(data: Any) -> bytes:
    """``data`` as bytes for a transport's write(); TypeError for str and non-buffers."""
    if isinstance(data, str):
        raise TypeError("write() takes bytes-like data, not str; encode it first")
    try:
        # Mutable buffers are copied: the caller may change them after write().
        return bytes(memoryview(data))
    except TypeError:
        raise TypeError(f"write() takes bytes-like data, not {type(data).__name__}") from None


def start_protocol(transport: Any) -> None:
    """Register ``transport`` for reading and call connection_made; close it if that raises."""
    transport.reactor.add_reader(transport)
    try:
        transport.protocol.connection_made(transport)
    except Exception as exc:
        log.exception("Unhandled error in %r.connection_made; closing the transport", transport.protocol)
        transport._close(_lost(exc, "protocol raised in connection_made"))


def _lost(exc: BaseException | None, message: str) -> Failure:
    """A Failure of ConnectionLost with ``exc`` chained as its cause."""
    err = ConnectionLost(message)
    err.__cause__ = exc
    return Failure(err)


class Connection:
    """A connected stream socket as a transport for one protocol."""

    __slots__ = (
        "reactor", "socket", "protocol", "_fd", "_buffer", "_offset", "_buffered",
        "_high", "_low", "_protocol_paused", "_reading_paused", "_closing", "_closed",
        "_eof_wanted", "_eof_sent", "_read_eof", "_on_lost", "__weakref__",
    )

    def __init__(self, reactor: Reactor, sock: socket.socket, protocol: Any, on_lost: Any = None) -> None:
        self.reactor = reactor
        self.socket = sock
        self.protocol = protocol
        self._fd = sock.fileno()
        # None exactly while write() may send at once: nothing buffered, and
        # no close or EOF pending. Otherwise a list (empty or not), so that
        # write() tests one attribute.
        self._buffer: list | None = None
        self._offset = 0
        self._buffered = 0
        self._high = 65536
        self._low = 16384
        self._protocol_paused = False
        self._reading_paused = False
        self._closing = False
        self._closed = False
        self._eof_wanted = False
        self._eof_sent = False
        self._read_eof = False
        # Called as on_lost(reason) after connection_lost: the connector's hook.
        self._on_lost = on_lost

    def start(self) -> None:
        """Start reading and tell the protocol it is connected."""
        start_protocol(self)

    # -- descriptor -------------------------------------------------------

    def fileno(self) -> int:
        """The socket's fd (kept after close so the reactor can still find it)."""
        return self._fd

    def on_read(self) -> None:
        """Read what the kernel has and hand it to the protocol."""
        try:
            data = self.socket.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(_lost(exc, f"read failed: {exc}"))
            return
        if data:
            self.protocol.data_received(data)
        else:
            self._on_eof()

    def on_write(self) -> None:
        """Send what is buffered; finish a pending close or half-close once empty."""
        buf = self._buffer
        if buf:
            sock = self.socket
            offset = self._offset
            try:
                if len(buf) == 1:
                    first = buf[0]
                    sent = sock.send(memoryview(first)[offset:] if offset else first)
                else:
                    chunks = buf[:MAX_IOV]
                    if offset:
                        chunks[0] = memoryview(chunks[0])[offset:]
                    sent = sock.sendmsg(chunks)
                    # Release the memoryview before a protocol callback may
                    # grow the bytearray under it.
                    del chunks
            except _HANDLED_WRITE_ERRORS:
                return
            except OSError as exc:
                self._close(_lost(exc, f"write failed: {exc}"))
                return
            self._consume(sent)
            if self._buffer:
                return
        self.reactor.remove_writer(self)
        if not self._closing and not self._eof_wanted:
            self._buffer = None
        self._buffer_emptied()

    def on_close(self, reason: Failure) -> None:
        """The reactor dropped us after a callback raised: close, blaming that error."""
        self._close(_lost(reason.value, f"protocol raised {reason.type.__name__}: {reason.value}"))

    # -- writing ----------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` now if possible, buffering what the kernel does not take."""
        if type(data) is not bytes:
            data = as_bytes(data)
        if self._buffer is not None:
            self._write_later(data)
            return
        try:
            sent = self.socket.send(data)
        except _HANDLED_WRITE_ERRORS:
            sent = 0
        except OSError as exc:
            self._close(_lost(exc, f"write failed: {exc}"))
            return
        if sent != len(data):
            self._buffer = [data]
            self._offset = sent
            self._buffered = len(data) - sent
            self.reactor.add_writer(self)
            self._check_high()

    def _write_later(self, data: bytes) -> None:
        if self._closed or self._closing:
            return  # After lose_connection() or a close, writes go nowhere (as in Twisted).
        if self._eof_wanted:
            raise RuntimeError("write() after write_eof()")
        if not data:
            return
        buf = self._buffer  # A list: write() came here because it is not None.
        size = len(data)
        if size < SMALL_CHUNK:
            last = buf[-1] if buf else None
            # Not into a chunk already partly sent: it would never be
            # trimmed while the backlog never quite empties.
            if type(last) is bytearray and (len(buf) > 1 or not self._offset):
                last += data
            else:
                buf.append(bytearray(data))
        else:
            buf.append(data)
        self._buffered += size
        self._check_high()

    def _consume(self, sent: int) -> None:
        """Drop ``sent`` bytes from the front of the buffer."""
        self._buffered -= sent
        buf = self._buffer
        offset = self._offset + sent
        index = 0
        while index < len(buf):
            size = len(buf[index])
            if offset < size:
                break
            offset -= size
            index += 1
        if index:
            del buf[:index]
        self._offset = offset
        if self._protocol_paused and self._buffered <= self._low:
            self._protocol_paused = False
            try:
                self.protocol.resume_writing()
            except Exception:
                log.exception("Unhandled error in %r.resume_writing", self.protocol)

    def _check_high(self) -> None:
        if self._buffered > self._high and not self._protocol_paused:
            self._protocol_paused = True
            try:
                self.protocol.pause_writing()
            except Exception:
                log.exception("Unhandled error in %r.pause_writing", self.protocol)

    def writelines(self, seq: Iterable[bytes]) -> None:
        """Write each chunk of ``seq`` in order."""
        self.write(b"".join(seq))

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the marks for pause_writing (above ``high``) and resume_writing (at or below ``low``)."""
        self._high, self._low = write_buffer_limits(high, low)
        self._check_high()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The (low, high) marks."""
        return self._low, self._high

    def get_write_buffer_size(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        return self._buffered

    # -- closing ----------------------------------------------------------

    def write_eof(self) -> None:
        """Close the write side once the buffer is sent; reading goes on."""
        if self._eof_wanted or self._closing:
            return
        self._eof_wanted = True
        buf = self._buffer
        if buf is None:
            self._buffer = buf = []
        if not buf:
            self._buffer_emptied()

    def can_write_eof(self) -> bool:
        """Stream sockets can half-close."""
        return True

    def lose_connection(self) -> None:
        """Close once every buffered byte is sent; no more data_received after this."""
        if self._closing or self._closed:
            return
        self._closing = True
        self.reactor.remove_reader(self)
        if not self._buffer:
            self._close(Failure(ConnectionDone("connection closed cleanly")))

    def abort_connection(self) -> None:
        """Close now and drop whatever is buffered."""
        if self._closed:
            return
        self._closing = True
        self._close(Failure(ConnectionAborted("connection aborted")))

    def is_closing(self) -> bool:
        """True once lose_connection() or abort_connection() was called or the connection closed."""
        return self._closing or self._closed

    @property
    def disconnecting(self) -> bool:
        """True once lose_connection() was called (Twisted's name)."""
        return self._closing

    def _buffer_emptied(self) -> None:
        if self._closing:
            self._close(Failure(ConnectionDone("connection closed cleanly")))
        elif self._eof_wanted and not self._eof_sent:
            self._eof_sent = True
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError as exc:
                if exc.errno != errno.ENOTCONN:
                    self._close(_lost(exc, f"shutdown failed: {exc}"))
                    return
            if self._read_eof:
                self._close(Failure(ConnectionDone("connection closed cleanly")))

    def _on_eof(self) -> None:
        self._read_eof = True
        self.reactor.remove_reader(self)
        keep_open = self.protocol.eof_received()
        if self._closed:
            return
        if self._eof_sent:
            # Both directions are shut now.
            self._close(Failure(ConnectionDone("connection closed cleanly")))
        elif not keep_open:
            self.lose_connection()

    def _close(self, reason: Failure) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing = True
        reactor = self.reactor
        reactor.remove_reader(self)
        reactor.remove_writer(self)
        self._buffer = []  # Not None: nothing is sent after a close.
        self._buffered = 0
        self.socket.close()
        reactor.call_soon(self._connection_lost, reason)

    def _connection_lost(self, reason: Failure) -> None:
        protocol = self.protocol
        try:
            protocol.connection_lost(reason)
        except Exception:
            log.exception("Unhandled error in %r.connection_lost", protocol)
        if self._on_lost is not None:
            self._on_lost(reason)

    # -- reading control --------------------------------------------------

    def pause_reading(self) -> None:
        """Stop calling data_received until resume_reading()."""
        if self._reading_paused or self._closing:
            self._reading_paused = True
            return
        self._reading_paused = True
        if not self._read_eof:
            self.reactor.remove_reader(self)

    def resume_reading(self) -> None:
        """Start calling data_received again."""
        if not self._reading_paused:
            return
        self._reading_paused = False
        if not (self._closing or self._read_eof):
            self.reactor.add_reader(self)

    def is_reading(self) -> bool:
        """True while data_received may be called."""
        return not (self._reading_paused or self._closing or self._read_eof)

    # -- socket facts -----------------------------------------------------

    def get_host(self) -> Any:
        """Our end's address."""
        return _address(self.socket.getsockname()) if not self._closed else None

    def get_peer(self) -> Any:
        """The other end's address."""
        try:
            return _address(self.socket.getpeername())
        except OSError:
            return None

    def set_tcp_nodelay(self, enabled: bool) -> None:
        """Send small writes at once (TCP_NODELAY; on by default); does nothing on UNIX sockets."""
        if self.socket.family != socket.AF_UNIX:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(enabled))

    def set_tcp_keepalive(self, enabled: bool) -> None:
        """Probe an idle connection so a dead peer is noticed (SO_KEEPALIVE); does nothing on UNIX sockets."""
        if self.socket.family != socket.AF_UNIX:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(enabled))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """asyncio-style access to ``socket``, ``peername`` and ``sockname``."""
        if name == "socket":
            return self.socket
        if name == "peername":
            return self.get_peer()
        if name == "sockname":
            return self.get_host()
        return default

    def __repr__(self) -> str:
        state = "closed" if self._closed else "closing" if self._closing else "open"
        return f"<{type(self).__name__} fd={self._fd} {state} protocol={type(self.protocol).__name__}>"


def write_buffer_limits(high: int | None, low: int | None) -> tuple[int, int]:
    """The (high, low) marks for set_write_buffer_limits: defaults 64 KiB and a quarter of high."""
    if high is None:
        high = 65536 if low is None else 4 * low
    if low is None:
        low = high // 4
    if not 0 <= low <= high:
        raise ValueError(f"need 0 <= low <= high, got high={high} low={low}")
    return high, low


def _address(raw: Any) -> Any:
    """An Address for an inet socket address, the path for a UNIX one."""
    if isinstance(raw, tuple):
        return Address(raw[0], raw[1])
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "surrogateescape")
    return raw
