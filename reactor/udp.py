"""UDP: one bound datagram socket as a transport for one DatagramProtocol.

Datagrams are not streams, and that changes almost every rule the stream
transport in ``transport.py`` follows:

- Reading: one ``recvfrom()`` is one datagram, whole or not at all. A pass
  reads at most ``MAX_DATAGRAMS_PER_PASS`` of them, so a flood on one port
  cannot starve every other descriptor and timer; what is left is read on
  the next pass (the fd is still readable).
- Errors are not fatal. ICMP "port unreachable" after sending to a closed
  port comes back as ``ECONNREFUSED`` from the *next* ``recvfrom()`` or
  ``send()`` on a connected socket (on Linux). It goes to
  ``protocol.error_received(exc)`` and the transport stays up, as in asyncio.
- Writing: ``write()`` calls ``sendto()`` at once. The kernel almost always
  takes a datagram or fails it outright; only when it would block is the
  datagram queued (whole, with its address) and sent from ``on_write``. The
  queue is bounded: UDP is allowed to lose datagrams and a slow interface
  must not grow our memory without end, so past ``MAX_QUEUED_DATAGRAMS`` a
  datagram is dropped and ``error_received`` hears ``ENOBUFS``.
- Addresses must be IP addresses. ``write(data, (host, port))`` and
  ``connect(host, port)`` refuse a host name with ValueError, as Twisted
  does: the socket calls would resolve it with a blocking DNS lookup inside
  the loop. Resolve names first, off the loop:
  ``reactor.defer_to_thread(socket.getaddrinfo, name, port, 0, socket.SOCK_DGRAM)``.
  Hosts already checked are remembered (a bounded set), so a server
  answering the same peers pays for the check once.
- Closing is immediate: there is no handshake to finish, so ``close()``,
  ``lose_connection()`` and ``abort_connection()`` are the same thing and
  drop anything still queued. As with streams the socket is closed right
  after it is unregistered, and ``connection_lost`` runs on the next pass,
  exactly once, with a Failure of ``ConnectionDone``.

Every protocol callback runs under a guard that logs to the "reactor"
logger: a protocol that raises in ``datagram_received`` loses that datagram,
not its port.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections import deque
from typing import TYPE_CHECKING, Any

from .address import Address
from .defer import Failure
from .errors import ConnectionDone
from .transport import _address, _lost, as_bytes, start_protocol

if TYPE_CHECKING:
    from .core import Reactor

log = logging.getLogger("reactor")

# Bigger than any UDP payload (65507 over IPv4), so nothing is truncated.
READ_SIZE = 65536
# Datagrams read in one on_read(); the rest wait for the next pass.
MAX_DATAGRAMS_PER_PASS = 64
# Datagrams held while the kernel would block; beyond this they are dropped.
MAX_QUEUED_DATAGRAMS = 1024

_RETRY_ERRORS = (BlockingIOError, InterruptedError)
# Numeric hosts remembered per transport before the set is started afresh.
MAX_CHECKED_HOSTS = 1024
# Host names the socket module maps to addresses without a lookup.
_SPECIAL_HOSTS = frozenset(("", "<broadcast>"))


class DatagramTransport:
    """A bound UDP socket as a transport for one DatagramProtocol."""

    __slots__ = (
        "reactor", "socket", "protocol", "_fd", "_host", "_peer", "_queue",
        "_reading_paused", "_closed", "_numeric_hosts", "__weakref__",
    )

    def __init__(self, reactor: Reactor, sock: socket.socket, protocol: Any) -> None:
        self.reactor = reactor
        self.socket = sock
        self.protocol = protocol
        self._fd = sock.fileno()
        # Kept so get_host() still answers after close().
        self._host = _address(sock.getsockname())
        self._peer: Address | None = None
        self._queue: deque[tuple[bytes, Any]] = deque()
        self._reading_paused = False
        self._closed = False
        # Hosts known to be IP addresses (see _check_numeric).
        self._numeric_hosts: set[str] = set()

    def start(self) -> None:
        """Start reading and tell the protocol it is bound."""
        start_protocol(self)

    # -- descriptor -------------------------------------------------------

    def fileno(self) -> int:
        """The socket's fd (kept after close so the reactor can still find it)."""
        return self._fd

    def on_read(self) -> None:
        """Read up to MAX_DATAGRAMS_PER_PASS datagrams and hand each to the protocol."""
        sock = self.socket
        protocol = self.protocol
        for _ in range(MAX_DATAGRAMS_PER_PASS):
            # The protocol may have paused or closed us in the last callback.
            if self._closed or self._reading_paused:
                return
            try:
                data, raw = sock.recvfrom(READ_SIZE)
            except _RETRY_ERRORS:
                return
            except OSError as exc:
                self._error(exc)
                continue
            try:
                protocol.datagram_received(data, Address(raw[0], raw[1]))
            except Exception:
                log.exception("Unhandled error in %r.datagram_received", protocol)

    def on_write(self) -> None:
        """Send queued datagrams until the kernel would block or the queue is empty."""
        queue = self._queue
        while queue:
            data, addr = queue[0]
            try:
                self._send(data, addr)
            except _RETRY_ERRORS:
                return
            except OSError as exc:
                # The datagram is dropped either way; the next one may fare better.
                queue.popleft()
                self._error(exc)
                if self._closed:
                    return
                continue
            queue.popleft()
        self.reactor.remove_writer(self)

    def on_close(self, reason: Failure) -> None:
        """The reactor dropped us after a callback raised: close, blaming that error."""
        self._close(_lost(reason.value, f"descriptor raised {reason.type.__name__}: {reason.value}"))

    # -- writing ----------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        """Send one datagram to ``addr`` (or the connected peer); errors go to error_received."""
        if type(data) is not bytes:
            data = as_bytes(data)
        if addr is not None and self._peer is not None and _address(addr) != self._peer:
            raise ValueError(f"transport is connected to {self._peer}; cannot send to {addr}")
        if addr is None and self._peer is None:
            raise ValueError("no address given and the transport is not connected")
        if self._closed:
            return  # As with streams: after close, writes go nowhere.
        if addr is not None and addr[0] not in self._numeric_hosts:
            self._check_numeric(addr[0])
        queue = self._queue
        if queue:
            self._enqueue(data, addr)
            return
        try:
            self._send(data, addr)
        except _RETRY_ERRORS:
            self._enqueue(data, addr)
            self.reactor.add_writer(self)
        except OSError as exc:
            self._error(exc)

    def _check_numeric(self, host: Any) -> None:
        """Refuse ``host`` unless it is an IP address of our socket's family (a name would block)."""
        if host not in _SPECIAL_HOSTS:
            family = self.socket.family
            try:
                # AI_NUMERICHOST: parse only, never a DNS query.
                socket.getaddrinfo(host, None, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST)
            except (socket.gaierror, UnicodeError, TypeError):
                kind = "IPv6" if family == socket.AF_INET6 else "IPv4"
                raise ValueError(
                    f"UDP needs an IP address ({kind} on this socket), not {host!r}:"
                    " resolve names first, off the loop (reactor.defer_to_thread(socket.getaddrinfo, ...))"
                ) from None
        hosts = self._numeric_hosts
        if len(hosts) >= MAX_CHECKED_HOSTS:
            hosts.clear()
        hosts.add(host)

    def _send(self, data: bytes, addr: Any) -> None:
        if addr is None:
            self.socket.send(data)
        else:
            self.socket.sendto(data, tuple(addr))

    def _enqueue(self, data: bytes, addr: Any) -> None:
        if len(self._queue) >= MAX_QUEUED_DATAGRAMS:
            self._error(OSError(errno.ENOBUFS, "send queue full; datagram dropped"))
            return
        self._queue.append((data, addr))

    def get_write_buffer_size(self) -> int:
        """Bytes queued but not yet taken by the kernel."""
        return sum(len(data) for data, _ in self._queue)

    # -- addresses --------------------------------------------------------

    def connect(self, host: str, port: int) -> None:
        """Make ``(host, port)`` the default peer; only its datagrams are received after this."""
        if self._closed:
            raise OSError(errno.EBADF, "transport is closed")
        self._check_numeric(host)
        self.socket.connect((host, port))
        self._peer = _address(self.socket.getpeername())

    def get_host(self) -> Address:
        """Our bound address, with the real port (also when bound to port 0)."""
        return self._host

    def get_peer(self) -> Address | None:
        """The peer given to connect(), or None."""
        return self._peer

    @property
    def port(self) -> int:
        """The bound port."""
        return self._host.port

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """asyncio-style access to ``socket``, ``peername`` and ``sockname``."""
        if name == "socket":
            return self.socket
        if name == "peername":
            return self._peer
        if name == "sockname":
            return self._host
        return default

    # -- reading control --------------------------------------------------

    def pause_reading(self) -> None:
        """Stop calling datagram_received until resume_reading(); the kernel queues (and may drop)."""
        if self._reading_paused:
            return
        self._reading_paused = True
        if not self._closed:
            self.reactor.remove_reader(self)

    def resume_reading(self) -> None:
        """Start calling datagram_received again."""
        if not self._reading_paused:
            return
        self._reading_paused = False
        if not self._closed:
            self.reactor.add_reader(self)

    def is_reading(self) -> bool:
        """True while datagram_received may be called."""
        return not (self._reading_paused or self._closed)

    # -- closing ----------------------------------------------------------

    def close(self) -> None:
        """Unregister and close the socket now; connection_lost follows on the next pass."""
        self._close(Failure(ConnectionDone("datagram transport closed")))

    def lose_connection(self) -> None:
        """Same as close() (Twisted's name)."""
        self.close()

    def abort_connection(self) -> None:
        """Same as close(): a datagram transport has nothing to flush or abort."""
        self.close()

    def stop_listening(self) -> None:
        """Same as close() (Twisted's name for a listening port)."""
        self.close()

    def is_closing(self) -> bool:
        """True once the transport was closed."""
        return self._closed

    def _close(self, reason: Failure) -> None:
        if self._closed:
            return
        self._closed = True
        reactor = self.reactor
        reactor.remove_reader(self)
        reactor.remove_writer(self)
        self._queue.clear()
        self.socket.close()
        reactor.call_soon(self._connection_lost, reason)

    def _connection_lost(self, reason: Failure) -> None:
        protocol = self.protocol
        try:
            protocol.connection_lost(reason)
        except Exception:
            log.exception("Unhandled error in %r.connection_lost", protocol)

    def _error(self, exc: OSError) -> None:
        try:
            self.protocol.error_received(exc)
        except Exception:
            log.exception("Unhandled error in %r.error_received", self.protocol)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} fd={self._fd} {self._host.host}:{self._host.port} {state} protocol={type(self.protocol).__name__}>"


def listen_udp(reactor: Reactor, port: int, protocol: Any, *, interface: str = "") -> DatagramTransport:
    """Bind ``interface:port`` ("" means every IPv4 interface) for ``protocol``; returns the transport."""
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    host = interface or "0.0.0.0"
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
        transport = DatagramTransport(reactor, sock, protocol)
    except BaseException:
        sock.close()
        raise
    transport.start()
    return transport
