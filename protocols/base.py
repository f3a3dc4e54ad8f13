"""Protocols and factories: the classes users subclass.

Protocols are plain objects that the transports call; nothing here knows
about sockets or the reactor. A Protocol allocates nothing in ``__init__``
(its state lives in class attributes until a connection sets it), so an idle
connection costs little more than its transport.

``ReconnectingClientFactory`` is the one piece with behaviour of its own: it
retries failed or lost client connections with exponential backoff and
jitter, on a clock (``testing.Clock`` in tests, the connector's reactor
otherwise).
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any

from reactor.errors import NotConnectingError

if TYPE_CHECKING:
    from reactor.defer import Failure
    from reactor.timers import DelayedCall


class Protocol:
    """A stream protocol: the transport calls these methods as bytes and events arrive."""

    factory: Any = None
    transport: Any = None
    connected: bool = False

    def connection_made(self, transport: Any) -> None:
        """The connection is up: remember the transport (overriders call super())."""
        self.transport = transport
        self.connected = True

    def data_received(self, data: bytes) -> None:
        """Bytes arrived; called with whatever the transport read, in no fixed chunking."""

    def eof_received(self) -> bool | None:
        """The peer shut its write side; return True to keep ours open, else the transport closes."""
        return None

    def connection_lost(self, reason: Failure) -> None:
        """The connection is gone; ``reason`` wraps ConnectionDone, ConnectionLost or ConnectionAborted."""
        self.connected = False

    def pause_writing(self) -> None:
        """The transport's write buffer went over its high-water mark: stop producing."""

    def resume_writing(self) -> None:
        """The transport's write buffer drained below its low-water mark: produce again."""


class Factory:
    """Builds a protocol for each connection and tracks the listeners using it."""

    protocol: Any = None
    num_ports: int = 0
    _protocol_args: tuple = ()
    _protocol_kwargs: dict[str, Any] | None = None

    @classmethod
    def for_protocol(cls, protocol: Any, *args: Any, **kwargs: Any) -> Factory:
        """A factory of this class whose protocols are ``protocol(*args, **kwargs)``."""
        factory = cls()
        factory.protocol = protocol
        factory._protocol_args = args
        factory._protocol_kwargs = kwargs
        return factory

    def build_protocol(self, addr: Any) -> Any:
        """A new protocol for a connection from or to ``addr``, with ``factory`` set to self."""
        protocol_class = self.protocol
        if protocol_class is None:
            raise TypeError(f"{type(self).__name__}.protocol is not set")
        kwargs = self._protocol_kwargs
        if kwargs:
            p = protocol_class(*self._protocol_args, **kwargs)
        else:
            p = protocol_class(*self._protocol_args)
        p.factory = self
        return p

    def do_start(self) -> None:
        """Called by each listener or connector as it starts using the factory."""
        if self.num_ports == 0:
            self.start_factory()
        self.num_ports += 1

    def do_stop(self) -> None:
        """Called by each listener or connector as it stops; the last one stops the factory."""
        if self.num_ports == 0:
            # More stops than starts: a caller's bug, but stopping twice must not hurt.
            return
        self.num_ports -= 1
        if self.num_ports == 0:
            self.stop_factory()

    def start_factory(self) -> None:
        """Hook: the first listener or connector came up (open shared resources here)."""

    def stop_factory(self) -> None:
        """Hook: the last listener or connector went down (release shared resources here)."""


class ClientFactory(Factory):
    """A factory for outgoing connections, told about connect attempts and their end."""

    def started_connecting(self, connector: Any) -> None:
        """A connection attempt began; ``connector.stop_connecting()`` would cancel it."""

    def client_connection_failed(self, connector: Any, reason: Failure) -> None:
        """The attempt failed (ConnectionRefusedError, TimeoutError, a resolver error...)."""

    def client_connection_lost(self, connector: Any, reason: Failure) -> None:
        """An established connection ended; ``connector.connect()`` would reconnect."""


class ReconnectingClientFactory(ClientFactory):
    """A client factory that reconnects after failures and losses, backing off exponentially.

    Each retry waits the previous delay (at first ``initial_delay``) times
    ``factor``, so about ``initial_delay * factor**n`` after n failures in a
    row, spread by a normal jitter of relative width ``jitter`` so that
    clients cut off together do not all come back together. Delays never
    exceed ``max_delay``; a draw above it is reflected below it rather than
    clipped, which would bring the herd back in step. After ``max_retries``
    retries in a row (None: no limit) it gives up and logs why.

    A connection that gets as far as ``build_protocol`` counts as a success:
    ``build_protocol`` calls ``reset_delay()`` itself, so users need not (and
    overriders should call ``super().build_protocol(addr)``).

    Timers run on ``clock`` if set, else on ``connector.reactor``; the
    jitter draws from ``rng`` (a ``random.Random``) if set, else from the
    ``random`` module, so tests can make it repeatable.
    ``stop_trying()`` cancels a pending retry and any attempt in flight; set
    ``continue_trying = True`` and call ``connector.connect()`` to start over.
    """

    initial_delay: float = 1.0
    factor: float = 2.7182818284590451  # e, as in Twisted
    jitter: float = 0.11962656472  # about 12% spread, as in Twisted
    max_delay: float = 3600.0
    max_retries: int | None = None
    clock: Any = None
    rng: random.Random | None = None

    retries: int = 0
    continue_trying: bool = True
    connector: Any = None
    _call_id: DelayedCall | None = None
    _delay: float | None = None

    @property
    def delay(self) -> float:
        """The current backoff delay: ``initial_delay`` until the first retry."""
        return self.initial_delay if self._delay is None else self._delay

    @delay.setter
    def delay(self, value: float) -> None:
        self._delay = value

    def retry(self, connector: Any = None) -> None:
        """Schedule ``connector.connect()`` after the next backoff delay, unless stopped or out of retries."""
        if not self.continue_trying:
            return
        if connector is None:
            connector = self.connector
            if connector is None:
                raise ValueError("no connector to retry")
        pending = self._call_id
        if pending is not None and pending.active():
            # One attempt reported twice (failed, then lost) counts as one failure.
            return
        self.retries += 1
        if self.max_retries is not None and self.retries > self.max_retries:
            logging.getLogger("reactor.protocols").info(
                "%s: abandoning %r after %d retries", type(self).__name__, _destination(connector), self.retries - 1
            )
            return
        self.delay = self._next_delay(self.delay)
        clock = self.clock if self.clock is not None else connector.reactor
        self._call_id = clock.call_later(self.delay, self._reconnect, connector)

    def _next_delay(self, delay: float) -> float:
        delay = min(delay * self.factor, self.max_delay)
        if self.jitter:
            rng = self.rng if self.rng is not None else random
            delay = rng.normalvariate(delay, delay * self.jitter)
            # Reflect rather than clip at the cap: clipping would line up
            # every client at exactly max_delay, the herd jitter is there to break.
            if delay > self.max_delay:
                delay = 2 * self.max_delay - delay
            delay = max(0.0, delay)
        return delay

    def _reconnect(self, connector: Any) -> None:
        self._call_id = None
        connector.connect()

    def client_connection_failed(self, connector: Any, reason: Failure) -> None:
        """Retry after the backoff delay unless ``stop_trying()`` was called."""
        if self.continue_trying:
            self.connector = connector
            self.retry()

    def client_connection_lost(self, connector: Any, reason: Failure) -> None:
        """Retry after the backoff delay unless ``stop_trying()`` was called."""
        if self.continue_trying:
            self.connector = connector
            self.retry()

    def build_protocol(self, addr: Any) -> Any:
        """Reset the backoff (the connection succeeded) and build the protocol."""
        self.reset_delay()
        return super().build_protocol(addr)

    def reset_delay(self) -> None:
        """Forget past failures: the next retry waits about ``initial_delay * factor`` again."""
        self._delay = None
        self.retries = 0

    def stop_trying(self) -> None:
        """Cancel any pending retry and attempt in flight, and retry no more."""
        call = self._call_id
        if call is not None:
            self._call_id = None
            call.cancel()
        self.continue_trying = False
        connector = self.connector
        if connector is not None:
            try:
                connector.stop_connecting()
            except NotConnectingError:
                pass


def _destination(connector: Any) -> Any:
    getter = getattr(connector, "get_destination", None)
    return getter() if getter is not None else connector


class DatagramProtocol:
    """A datagram (UDP) protocol: one call per datagram, with the sender's address."""

    transport: Any = None

    def connection_made(self, transport: Any) -> None:
        """The protocol was bound to a datagram transport."""
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """A datagram arrived from ``addr``."""

    def error_received(self, exc: Exception) -> None:
        """A send or receive failed (ICMP port unreachable and the like); the transport stays up."""

    def connection_lost(self, reason: Failure | None) -> None:
        """The transport was closed."""


class ProcessProtocol:
    """Talks to a child process: its output fds, and its exit."""

    transport: Any = None

    def connection_made(self, transport: Any) -> None:
        """The process started; ``transport`` writes to its stdin and signals it."""
        self.transport = transport

    def child_data_received(self, fd: int, data: bytes) -> None:
        """Bytes arrived on the child's ``fd``; by default 1 goes to out_received, 2 to err_received."""
        if fd == 1:
            self.out_received(data)
        elif fd == 2:
            self.err_received(data)

    def out_received(self, data: bytes) -> None:
        """Bytes arrived on the child's stdout."""

    def err_received(self, data: bytes) -> None:
        """Bytes arrived on the child's stderr."""

    def child_connection_lost(self, fd: int) -> None:
        """The pipe on the child's ``fd`` closed."""

    def pause_writing(self) -> None:
        """The child's stdin buffer went over the high mark: stop writing until resume_writing()."""

    def resume_writing(self) -> None:
        """The child's stdin buffer fell to the low mark: writing may go on."""

    def process_exited(self, reason: Failure) -> None:
        """The child exited (its pipes may still be open); ``reason.value`` has the exit status."""

    def process_ended(self, reason: Failure) -> None:
        """The child exited and all its pipes closed: nothing more will arrive."""
