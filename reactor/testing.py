"""Test kits: a fake clock, a recording transport, an in-memory connection.

Everything here is public and meant for users' own tests as much as ours:
protocols are tested by feeding bytes and reading what they wrote, and
anything that takes a clock (``add_timeout``, ``LoopingCall``, ``sleep``,
``ReconnectingClientFactory``) is driven by ``Clock.advance`` instead of
real time.
"""

from __future__ import annotations

import errno
import os
from typing import Any, Callable, Iterable

from .address import Address
from .defer import Deferred, Failure
from .errors import ConnectionAborted, ConnectionDone, ConnectionLost
from .timers import QUEUED, DelayedCall, TimerQueue


def success_result_of(d: Deferred) -> Any:
    """The result ``d`` already has (taken off it); AssertionError if it has none or failed."""
    box: list[Any] = []
    d.add_both(box.append)
    if not box:
        raise AssertionError(f"{d!r} has no result")
    if isinstance(box[0], Failure):
        raise AssertionError(f"{d!r} failed:\n{box[0].get_traceback()}")
    return box[0]


def failure_result_of(d: Deferred, *types: type[BaseException]) -> Failure:
    """The Failure ``d`` already has (taken off it), checked against ``types`` if given."""
    box: list[Any] = []
    d.add_both(box.append)
    if not box:
        raise AssertionError(f"{d!r} has no result")
    if not isinstance(box[0], Failure):
        raise AssertionError(f"{d!r} succeeded with {box[0]!r}")
    if types and not box[0].check(*types):
        raise AssertionError(f"expected a failure of {types}, got {box[0]!r}")
    return box[0]


def assert_no_result(d: Deferred) -> None:
    """Raise AssertionError if ``d`` already has a result (which it keeps)."""
    box: list[Any] = []

    def peek(result: Any) -> Any:
        box.append(result)
        return result

    d.add_both(peek)
    if box:
        raise AssertionError(f"{d!r} has a result: {box[0]!r}")


class Clock:
    """A manual clock: time moves only when ``advance`` or ``pump`` says so."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._timers = TimerQueue(self.seconds)

    def seconds(self) -> float:
        """The current fake time."""
        return self._now

    def call_later(self, delay: float, func: Callable[..., Any], *args: Any, **kwargs: Any) -> DelayedCall:
        """Schedule ``func(*args, **kwargs)`` ``delay`` fake seconds from now."""
        return self._timers.call_at(self._now + delay, func, args, kwargs)

    def call_soon(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> DelayedCall:
        """Schedule ``func`` for the next ``advance`` (even ``advance(0)``)."""
        return self._timers.call_at(self._now, func, args, kwargs)

    def advance(self, amount: float = 0.0) -> None:
        """Move time forward and run every call due by then, earliest first.

        Calls scheduled by those calls run too if they are due; an exception
        from a call propagates to the test, as Twisted's Clock does.
        """
        if amount < 0:
            raise ValueError("time cannot go backwards")
        self._now += amount
        timers = self._timers
        while True:
            due = timers.pop_due(self._now)
            if not due:
                return
            for index, call in enumerate(due):
                if call._entry is not QUEUED:
                    continue
                call._entry = None
                call.called = True
                try:
                    call.func(*call.args, **call.kwargs)
                except BaseException:
                    # Put the rest back so one failing call loses no others.
                    timers.requeue(due[index + 1:])
                    raise

    def pump(self, timings: Iterable[float]) -> None:
        """Advance by each amount in turn."""
        for amount in timings:
            self.advance(amount)

    def get_delayed_calls(self) -> list[DelayedCall]:
        """The calls still pending, earliest first."""
        return self._timers.pending()


class StringTransport:
    """A transport that records what is written to it, for unit-testing protocols without sockets."""

    def __init__(self, host: Address | None = None, peer: Address | None = None) -> None:
        self._written = bytearray()
        self.host = Address("127.0.0.1", 12345) if host is None else host
        self.peer = Address("127.0.0.1", 54321) if peer is None else peer
        self.disconnecting = False
        self.aborted = False
        self.eof_written = False
        self.producer_state = "producing"
        self.write_buffer_limits = (65536, 16384)
        self.tcp_nodelay = False
        self.tcp_keepalive = False

    def write(self, data: bytes) -> None:
        """Record ``data``; raises TypeError unless it is bytes-like."""
        if isinstance(data, str):
            raise TypeError("write() takes bytes-like data, not str (encode it first)")
        self._written += data

    def writelines(self, seq: Iterable[bytes]) -> None:
        """Record each item of ``seq`` in turn."""
        for data in seq:
            self.write(data)

    def value(self) -> bytes:
        """Everything written so far (since the last ``clear()``)."""
        return bytes(self._written)

    def clear(self) -> None:
        """Forget what was written so far."""
        self._written.clear()

    def write_eof(self) -> None:
        """Record that the write side was shut (``eof_written``)."""
        self.eof_written = True

    def can_write_eof(self) -> bool:
        """True: the write side can be shut on its own."""
        return True

    def lose_connection(self) -> None:
        """Record a clean close (``disconnecting``)."""
        self.disconnecting = True

    def abort_connection(self) -> None:
        """Record an abort (``aborted``, and ``disconnecting`` as the connection is going too)."""
        self.aborted = True
        self.disconnecting = True

    def is_closing(self) -> bool:
        """True once ``lose_connection`` or ``abort_connection`` was called."""
        return self.disconnecting

    def get_host(self) -> Address:
        """This end's address, as given to the constructor."""
        return self.host

    def get_peer(self) -> Address:
        """The other end's address, as given to the constructor."""
        return self.peer

    def pause_reading(self) -> None:
        """Record that the protocol asked for no more data (``producer_state == "paused"``)."""
        self.producer_state = "paused"

    def resume_reading(self) -> None:
        """Record that the protocol wants data again (``producer_state == "producing"``)."""
        self.producer_state = "producing"

    def set_write_buffer_limits(self, high: int = 65536, low: int = 16384) -> None:
        """Record the marks (``write_buffer_limits == (high, low)``); raises ValueError unless 0 <= low <= high."""
        if not 0 <= low <= high:
            raise ValueError(f"need 0 <= low <= high, got high={high!r} low={low!r}")
        self.write_buffer_limits = (high, low)

    def get_write_buffer_size(self) -> int:
        """Bytes waiting to be sent: none, a StringTransport sends everything at once."""
        return 0

    def set_tcp_nodelay(self, flag: bool) -> None:
        """Record the TCP_NODELAY wish (``tcp_nodelay``)."""
        self.tcp_nodelay = bool(flag)

    def set_tcp_keepalive(self, flag: bool) -> None:
        """Record the SO_KEEPALIVE wish (``tcp_keepalive``)."""
        self.tcp_keepalive = bool(flag)


class _MemoryTransport(StringTransport):
    """One end of an in-memory connection: writes queue up until the Pump moves them."""

    def __init__(self, protocol: Any, host: Address, peer: Address) -> None:
        super().__init__(host, peer)
        self.protocol = protocol
        self.closed = False
        self._outgoing = bytearray()
        self._eof_delivered = False
        self._writing_paused = False

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the peer; dropped (as a socket would) after write_eof or close."""
        if self.closed or self.eof_written:
            if isinstance(data, str):
                raise TypeError("write() takes bytes-like data, not str (encode it first)")
            return
        super().write(data)
        self._outgoing += data
        if not self._writing_paused and len(self._outgoing) > self.write_buffer_limits[0]:
            self._writing_paused = True
            self.protocol.pause_writing()

    def is_closing(self) -> bool:
        """True once closing was asked for or the connection is gone."""
        return self.disconnecting or self.closed

    def get_write_buffer_size(self) -> int:
        """Bytes written but not yet moved to the peer."""
        return len(self._outgoing)


class Pump:
    """Two protocols connected in memory; ``flush()`` moves bytes and events between them.

    Nothing moves by itself: call ``pump()`` for one round or ``flush()``
    to run until quiet. A side's bytes reach the other's ``data_received``
    unless the receiver paused reading or is closing; ``write_eof()``
    reaches ``eof_received()`` after the bytes before it, and a falsy return
    closes the receiving side; ``lose_connection()`` closes once that side's
    bytes are delivered, with ``ConnectionDone`` on both sides. After
    ``abort_connection()`` the aborting side gets ``ConnectionAborted`` and
    the peer ``ConnectionLost`` (a reset); unsent bytes are dropped.
    ``connection_lost`` is called exactly once on each side.

    ``server_transport`` and ``client_transport`` are the two ends:
    StringTransports whose ``value()`` holds everything that side wrote and
    whose ``get_write_buffer_size()`` counts what is still to be moved; a
    side over its high-water mark gets ``pause_writing()``, and
    ``resume_writing()`` once the pump has moved its bytes.
    """

    def __init__(self, server: Any, client: Any, server_transport: _MemoryTransport,
                 client_transport: _MemoryTransport) -> None:
        self.server = server
        self.client = client
        self.server_transport = server_transport
        self.client_transport = client_transport

    def pump(self) -> bool:
        """One round: move queued bytes each way, then EOFs and closes; True if anything happened."""
        server_t = self.server_transport
        client_t = self.client_transport
        moved = self._deliver(client_t, server_t)
        moved = self._deliver(server_t, client_t) or moved
        moved = self._deliver_eof(client_t, server_t) or moved
        moved = self._deliver_eof(server_t, client_t) or moved
        return self._settle() or moved

    def flush(self, max_rounds: int = 100_000) -> None:
        """Pump until nothing moves; raises RuntimeError if the two sides never go quiet."""
        for _ in range(max_rounds):
            if not self.pump():
                return
        raise RuntimeError(f"still busy after {max_rounds} rounds: do the protocols answer each other forever?")

    @staticmethod
    def _deliver(sender: _MemoryTransport, receiver: _MemoryTransport) -> bool:
        outgoing = sender._outgoing
        if not outgoing or sender.closed or sender.aborted:
            return False
        if receiver.producer_state == "paused" or receiver.is_closing():
            return False
        data = bytes(outgoing)
        outgoing.clear()
        receiver.protocol.data_received(data)
        if sender._writing_paused and len(outgoing) <= sender.write_buffer_limits[1]:
            sender._writing_paused = False
            sender.protocol.resume_writing()
        return True

    @staticmethod
    def _deliver_eof(sender: _MemoryTransport, receiver: _MemoryTransport) -> bool:
        if not sender.eof_written or sender._eof_delivered or sender._outgoing or sender.closed:
            return False
        if receiver.is_closing():
            return False
        sender._eof_delivered = True
        if not receiver.protocol.eof_received():
            receiver.lose_connection()
        return True

    def _settle(self) -> bool:
        server_t = self.server_transport
        client_t = self.client_transport
        if server_t.closed:
            return False
        for side, other in ((client_t, server_t), (server_t, client_t)):
            if side.aborted:
                reset = ConnectionLost("connection reset by peer (in memory)")
                reset.__cause__ = ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))
                self._close(side, Failure(ConnectionAborted()), other, Failure(reset))
                return True
        for side, other in ((client_t, server_t), (server_t, client_t)):
            # Bytes for a peer that is closing too would never be read: don't wait for them.
            if side.disconnecting and (not side._outgoing or other.disconnecting):
                self._close(side, Failure(ConnectionDone()), other, Failure(ConnectionDone()))
                return True
        if server_t._eof_delivered and client_t._eof_delivered:
            self._close(client_t, Failure(ConnectionDone()), server_t, Failure(ConnectionDone()))
            return True
        return False

    @staticmethod
    def _close(first: _MemoryTransport, first_reason: Failure, second: _MemoryTransport,
               second_reason: Failure) -> None:
        for transport in (first, second):
            transport.closed = True
            transport._outgoing.clear()
        first.protocol.connection_lost(first_reason)
        second.protocol.connection_lost(second_reason)


def connect_in_memory(server_proto: Any, client_proto: Any, *,
                      server_address: Address = Address("127.0.0.1", 12345),
                      client_address: Address = Address("127.0.0.1", 54321),
                      flush: bool = True) -> Pump:
    """Connect two protocols in memory: ``connection_made`` on both (server first), then a flush.

    Returns the Pump that moves bytes between them; pass ``flush=False`` to
    see what ``connection_made`` wrote before it is delivered.
    """
    server_transport = _MemoryTransport(server_proto, server_address, client_address)
    client_transport = _MemoryTransport(client_proto, client_address, server_address)
    pump = Pump(server_proto, client_proto, server_transport, client_transport)
    server_proto.connection_made(server_transport)
    client_proto.connection_made(client_transport)
    if flush:
        pump.flush()
    return pump
