"""Framers: protocols that cut a byte stream into lines or length-prefixed strings.

How the buffering works, and why
--------------------------------

A transport hands ``data_received`` whatever one read returned: half a
line, a thousand lines, or a single byte at a time from a slow or hostile
peer. A framer must cost time linear in the bytes received however they are
chunked. The classic way to lose that is to rescan, re-slice or re-copy the
whole buffer on every call: byte-at-a-time delivery of one long line then
costs O(n**2).

So each framer keeps:

- ``_buffer``: one ``bytearray`` that incoming bytes are appended to
  (amortised O(1) per byte). It is allocated on the first bytes and dropped
  again whenever everything in it has been consumed, so an idle connection
  holds no buffer at all.
- ``_start``: the offset of the first unconsumed byte. Frames are taken by
  moving ``_start`` forward; nothing is deleted per frame. The consumed prefix
  is deleted once, when the outermost ``data_received`` call returns
  (``_drain``), so a chunk of a thousand frames costs one deletion, not a
  thousand.
- for ``LineReceiver``, ``_scanned``: how many bytes after ``_start`` are
  known to hold no start of a delimiter. The next search begins there, so a
  byte is searched once however many calls it took to arrive. (It is kept
  relative to ``_start`` so that deleting the consumed prefix leaves it valid.)
  The length-prefixed framers re-read at most a few bytes of header per call
  and remember a parsed netstring length, so they need no such offset.

User code runs in the middle of this: ``line_received`` may call
``data_received`` again (the bytes are appended and the running loop gets
to them in order: nothing is parsed twice or out of order), switch to raw
mode (``_start`` is stored before each callback, so the loop knows exactly
which bytes are left), switch back with ``set_line_mode(extra)`` (``extra``
is inserted at ``_start``, ahead of what is still buffered), or close the
connection. ``_busy`` marks a parse in progress so that only the outermost
call parses and compacts. Once the transport is closing, whatever is left in
the buffer, and whatever arrives afterwards, is dropped unparsed: a protocol
that closed the connection has said it wants no more frames.

Frames are handed to user code as ``bytes`` (one copy out of the buffer). In
raw mode, a chunk arriving while nothing is buffered goes straight to
``raw_data_received`` without being copied at all.

Oversized frames: each framer has ``MAX_LENGTH``. A frame over it calls the
framer's hook (``line_length_exceeded(line)`` or
``length_limit_exceeded(length)``), whose default logs an error to
``logging.getLogger("reactor.protocols")`` and closes the connection. A
line that has no delimiter yet counts as too long as soon as the buffered
part cannot be a legal line plus a partial delimiter, so a peer cannot make
the buffer grow without bound. If an overriding hook leaves the connection
open, ``LineReceiver`` drops the long line (up to its delimiter) and goes on
with the next one; the length-prefixed framers stop parsing altogether,
because nothing after a length they refuse can be trusted.
"""

from __future__ import annotations

import logging
from typing import Any

from .base import Protocol

__all__ = ["Int32StringReceiver", "LineReceiver", "NetstringReceiver"]


def _drain(proto: Any) -> None:
    """Run ``proto._parse`` over its buffer, then drop the consumed prefix once."""
    buf = proto._buffer
    proto._busy = True
    try:
        proto._parse(buf)
    finally:
        proto._busy = False
        start = proto._start
        if start:
            proto._start = 0
            if start >= len(buf):
                proto._buffer = None
            else:
                del buf[:start]


def _give_up(proto: Any, problem: str) -> None:
    """Log why the peer's stream is refused, then close the connection."""
    transport = proto.transport
    peer = transport.get_peer() if transport is not None else None
    logging.getLogger("reactor.protocols").error(
        "%s: %s (peer %s); closing the connection", type(proto).__name__, problem, peer
    )
    if transport is not None:
        transport.lose_connection()


class LineReceiver(Protocol):
    """Calls ``line_received`` once per line; can switch to raw mode and back."""

    delimiter: bytes = b"\r\n"
    MAX_LENGTH: int = 16384

    _buffer: bytearray | None = None
    _start: int = 0
    _scanned: int = 0
    _scanned_for: bytes | None = None  # the delimiter that ``_scanned`` is valid for
    _busy: bool = False
    _line_mode: bool = True
    _discarding: bool = False  # dropping the rest of an over-long line

    def data_received(self, data: bytes) -> None:
        """Buffer ``data`` and deliver every complete line (or raw chunk) in it."""
        buf = self._buffer
        if buf is not None:
            buf += data
            if self._busy:
                return
            # Fast path for trickling bytes: a delimiter can only be completed
            # by a chunk holding its last byte, and the length check can wait
            # while the buffer is under the limit. Skipped bytes are searched
            # later, once: still linear.
            delimiter = self.delimiter
            if (self._scanned_for is delimiter and len(buf) < self.MAX_LENGTH
                    and delimiter[-1] not in data and self._line_mode):
                return
            _drain(self)
        elif self._line_mode or self._busy:
            self._buffer = bytearray(data)
            if not self._busy:
                _drain(self)
        else:
            self._raw_direct(data)

    def _raw_direct(self, data: bytes) -> None:
        # Raw mode with nothing buffered: hand the chunk over uncopied.
        transport = self.transport
        if transport is not None and transport.is_closing():
            return
        self._busy = True
        try:
            self.raw_data_received(data)
        finally:
            self._busy = False
        # raw_data_received may have switched back with leftover bytes, or fed more.
        if self._buffer is not None:
            _drain(self)

    def _parse(self, buf: bytearray) -> None:
        try:
            self._parse_lines(buf)
        except BaseException:
            # A callback raised mid-buffer: complete lines may be left behind,
            # so the next call must search rather than take the fast path.
            self._scanned_for = None
            raise

    def _parse_lines(self, buf: bytearray) -> None:
        transport = self.transport
        while True:
            start = self._start
            end = len(buf)
            if transport is not None and transport.is_closing():
                self._start = end
                return
            if not self._line_mode:
                if start == end:
                    return
                self._start = end
                self.raw_data_received(bytes(buf[start:end]))
                continue
            delimiter = self.delimiter
            if delimiter is self._scanned_for:
                index = buf.find(delimiter, start + self._scanned)
            else:
                # The delimiter changed: what was scanned for the old one proves nothing.
                if not delimiter:
                    raise ValueError(f"{type(self).__name__}.delimiter must not be empty")
                self._scanned_for = delimiter
                index = buf.find(delimiter, start)
            if index < 0:
                # A delimiter may still begin in the last len(delimiter) - 1 bytes.
                resume = end - len(delimiter) + 1
                if self._discarding:
                    if resume > start:
                        self._start = resume
                    self._scanned = 0
                    return
                self._scanned = resume - start if resume > start else 0
                if end - start < self.MAX_LENGTH + len(delimiter):
                    return
                # Even if a delimiter began right now, this line would be too long.
                self._discarding = True
                self._start = resume
                self._scanned = 0
                self.line_length_exceeded(bytes(buf[start:end]))
                continue
            self._start = index + len(delimiter)
            self._scanned = 0
            if self._discarding:
                self._discarding = False
            elif index - start > self.MAX_LENGTH:
                self.line_length_exceeded(bytes(buf[start:index]))
            else:
                self.line_received(bytes(buf[start:index]))

    def line_received(self, line: bytes) -> None:
        """Hook: one line arrived, without its delimiter."""
        raise NotImplementedError

    def raw_data_received(self, data: bytes) -> None:
        """Hook: bytes arrived in raw mode."""
        raise NotImplementedError

    def send_line(self, line: bytes) -> None:
        """Write ``line`` followed by the delimiter."""
        self.transport.write(line + self.delimiter)

    def set_raw_mode(self) -> None:
        """Deliver everything still buffered, and all that follows, to ``raw_data_received``."""
        self._line_mode = False
        self._discarding = False
        if not self._busy and self._buffer is not None:
            _drain(self)

    def set_line_mode(self, extra: bytes = b"") -> None:
        """Go back to lines; ``extra`` is parsed first, ahead of anything still buffered."""
        self._line_mode = True
        self._discarding = False
        self._scanned = 0
        if extra:
            buf = self._buffer
            if buf is None:
                self._buffer = bytearray(extra)
            else:
                at = self._start
                buf[at:at] = extra
        if not self._busy and self._buffer is not None:
            _drain(self)

    def line_length_exceeded(self, line: bytes) -> None:
        """Hook: a line went over MAX_LENGTH (``line`` may be only its start); logs and closes."""
        _give_up(self, f"line of {len(line)}+ bytes exceeds MAX_LENGTH={self.MAX_LENGTH}")


def _feed(proto: Any, data: bytes) -> None:
    """Append ``data`` to a length-prefixed framer's buffer and parse once a frame can be complete."""
    buf = proto._buffer
    if buf is None:
        proto._buffer = bytearray(data)
    else:
        buf += data
        # Bytes trickling into a frame: nothing to do until it is complete.
        if len(buf) < proto._need:
            return
    if not proto._busy:
        _drain(proto)


def _bad_length_field(field: bytearray) -> bool:
    # Decimal digits without leading zeros, so that every string has one encoding.
    return not field.isdigit() or (field[0] == 0x30 and len(field) > 1)


class NetstringReceiver(Protocol):
    """Receives and sends netstrings: ``b"<length>:<bytes>,"``."""

    MAX_LENGTH: int = 99999

    _buffer: bytearray | None = None
    _start: int = 0
    _busy: bool = False
    _length: int = -1  # length of the string being read; -1 while reading the length field
    _broken: bool = False  # the stream can no longer be parsed: drop everything
    _need: int = 0  # buffer length below which parsing cannot progress

    def data_received(self, data: bytes) -> None:
        """Buffer ``data`` and deliver every complete netstring in it."""
        _feed(self, data)

    def _parse(self, buf: bytearray) -> None:
        transport = self.transport
        # A legal length has at most as many digits as MAX_LENGTH, so neither
        # the search for its colon nor the checks below ever cover more.
        width = len(str(self.MAX_LENGTH))
        while True:
            start = self._start
            end = len(buf)
            if self._broken or (transport is not None and transport.is_closing()):
                self._start = end
                return
            length = self._length
            if length < 0:
                colon = buf.find(b":", start, start + width + 1)
                if colon < 0:
                    field = buf[start:start + width + 1]
                    if not field:
                        return
                    if _bad_length_field(field):
                        self._broken = True
                        self.netstring_parse_error(f"bad length field {bytes(field)!r}")
                    elif len(field) > width:
                        self._broken = True
                        self.length_limit_exceeded(int(field))
                    else:
                        return
                    continue
                field = buf[start:colon]
                if not field or _bad_length_field(field):
                    self._broken = True
                    self.netstring_parse_error(f"bad length field {bytes(field)!r}")
                    continue
                length = int(field)
                if length > self.MAX_LENGTH:
                    self._broken = True
                    self.length_limit_exceeded(length)
                    continue
                self._start = start = colon + 1
                self._length = length
            stop = start + length
            if end <= stop:
                # _drain is about to drop the bytes before ``start``.
                self._need = stop + 1 - start
                return
            self._need = 0
            if buf[stop] != 0x2C:
                self._broken = True
                self.netstring_parse_error(
                    f"expected b',' after a {length}-byte string, got {bytes(buf[stop:stop + 1])!r}"
                )
                continue
            self._length = -1
            self._start = stop + 1
            self.string_received(bytes(buf[start:stop]))

    def string_received(self, string: bytes) -> None:
        """Hook: one string arrived."""
        raise NotImplementedError

    def send_string(self, string: bytes) -> None:
        """Write ``string`` as a netstring."""
        self.transport.write(b"%d:%b," % (len(string), string))

    def length_limit_exceeded(self, length: int) -> None:
        """Hook: a string announced as ``length`` bytes (at least) exceeds MAX_LENGTH; logs and closes."""
        _give_up(self, f"netstring of {length} bytes exceeds MAX_LENGTH={self.MAX_LENGTH}")

    def netstring_parse_error(self, problem: str) -> None:
        """Hook: the peer sent something that is not a netstring; logs and closes."""
        _give_up(self, f"malformed netstring: {problem}")


class Int32StringReceiver(Protocol):
    """Receives and sends strings prefixed by their length as a 4-byte big-endian unsigned int."""

    MAX_LENGTH: int = 99999

    _buffer: bytearray | None = None
    _start: int = 0
    _busy: bool = False
    _broken: bool = False  # a refused length: nothing after it can be trusted
    _need: int = 0  # buffer length below which parsing cannot progress

    def data_received(self, data: bytes) -> None:
        """Buffer ``data`` and deliver every complete string in it."""
        _feed(self, data)

    def _parse(self, buf: bytearray) -> None:
        transport = self.transport
        while True:
            start = self._start
            end = len(buf)
            if self._broken or (transport is not None and transport.is_closing()):
                self._start = end
                return
            body = start + 4
            if end < body:
                return
            length = int.from_bytes(buf[start:body], "big")
            if length > self.MAX_LENGTH:
                self._broken = True
                self.length_limit_exceeded(length)
                continue
            stop = body + length
            if end < stop:
                # _drain is about to drop the bytes before ``start``.
                self._need = stop - start
                return
            self._need = 0
            self._start = stop
            self.string_received(bytes(buf[body:stop]))

    def string_received(self, string: bytes) -> None:
        """Hook: one string arrived."""
        raise NotImplementedError

    def send_string(self, string: bytes) -> None:
        """Write ``string`` with its length prefix; raises ValueError from 2**32 bytes up."""
        length = len(string)
        if length >= 1 << 32:
            raise ValueError(f"a string of {length} bytes does not fit a 32-bit length prefix")
        self.transport.write(length.to_bytes(4, "big") + string)

    def length_limit_exceeded(self, length: int) -> None:
        """Hook: a string announced as ``length`` bytes exceeds MAX_LENGTH; logs and closes."""
        _give_up(self, f"string of {length} bytes exceeds MAX_LENGTH={self.MAX_LENGTH}")
