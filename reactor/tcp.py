"""TCP listeners and connectors (UNIX sockets reuse them from ``unix.py``).

Accepting: a readable listening socket may hold many pending connections,
so one ``on_read`` accepts up to ``accepts_per_pass`` of them. When the
process is out of fds (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM),
``accept`` fails while the connection stays queued, so the socket stays
readable: going on would spin the loop at 100% CPU. Instead the listener
logs the error, stops watching its socket for ``accept_pause`` seconds and
then tries again; the queued connections wait in the backlog meanwhile.

Connecting: names are resolved in the thread pool (``getaddrinfo``
blocks); IP literals skip that step. Each resolved address is tried in turn
with a non-blocking ``connect``; the socket turning writable ends the
attempt, and ``SO_ERROR`` says how. ``timeout`` bounds the whole attempt,
resolution included.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from typing import TYPE_CHECKING, Any, Callable

from .address import Address
from .defer import Deferred, Failure, succeed
from .errors import CancelledError, NotConnectingError
from .transport import Connection, _address

if TYPE_CHECKING:
    from .core import Reactor

log = logging.getLogger("reactor")

_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
# accept(2): Linux hands errors of the pending connection itself to accept();
# they concern that connection only, and the next one may be fine.
_PER_CONNECTION = {
    errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ENETDOWN, errno.ENOPROTOOPT,
    errno.EHOSTDOWN, errno.ENONET, errno.EHOSTUNREACH, errno.EOPNOTSUPP, errno.ENETUNREACH,
}


def _call_hook(obj: Any, name: str, *args: Any) -> None:
    """Call ``obj.name(*args)`` if it exists, logging what it raises."""
    hook = getattr(obj, name, None)
    if hook is None:
        return
    try:
        hook(*args)
    except Exception:
        log.exception("Unhandled error in %s.%s", type(obj).__name__, name)


class Listener:
    """A listening socket that builds a protocol and a transport per accepted connection."""

    accepts_per_pass = 64
    accept_pause = 0.2

    def __init__(self, reactor: Reactor, sock: socket.socket, factory: Any, *, tcp: bool = True) -> None:
        self.reactor = reactor
        self.socket = sock
        self.factory = factory
        self._fd = sock.fileno()
        self._tcp = tcp
        # Kept, so that the address is still known after close().
        self._host = _address(sock.getsockname())
        self._closed = False
        self._resume_call: Any = None
        self._on_close: list[Callable[[], None]] = []
        sock.setblocking(False)
        _call_hook(factory, "do_start")
        reactor.add_reader(self)

    @property
    def port(self) -> int:
        """The port actually bound (so that port 0 can be used)."""
        return self._host.port if self._tcp else 0

    def get_host(self) -> Any:
        """The address we listen on: an Address, or a path for UNIX sockets."""
        return self._host

    def fileno(self) -> int:
        return self._fd

    def on_read(self) -> None:
        """Accept pending connections, up to ``accepts_per_pass`` at a time."""
        sock = self.socket
        reactor = self.reactor
        for _ in range(self.accepts_per_pass):
            try:
                conn, addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    log.error("accept() on %s failed: %s; pausing accepts for %.2f s", self.get_host(), exc, self.accept_pause)
                    reactor.remove_reader(self)
                    self._resume_call = reactor.call_later(self.accept_pause, self._resume)
                    return
                if exc.errno in _PER_CONNECTION:
                    log.warning("accept() on %s failed: %s", self.get_host(), exc)
                    continue
                # EBADF, EINVAL, ENOTSOCK: the listening socket itself is
                # broken and would be readable forever; stop listening.
                log.error("accept() on %s failed: %s; closing the listener", self.get_host(), exc)
                self.close()
                return
            conn.setblocking(False)
            if self._tcp:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._serve(conn, _address(addr) if addr else _address(conn.getsockname()))
            if self._closed:
                return  # The protocol closed us from connection_made.

    def _serve(self, conn: socket.socket, addr: Any) -> None:
        try:
            protocol = self.factory.build_protocol(addr)
        except Exception:
            log.exception("Unhandled error in %r.build_protocol; dropping the connection", self.factory)
            protocol = None
        if protocol is None:
            conn.close()
            return
        try:
            transport = Connection(self.reactor, conn, protocol)
            self.reactor.add_reader(transport)
        except (OSError, ValueError) as exc:
            # select() cannot watch fds >= FD_SETSIZE, for one.
            log.error("cannot serve a connection on %s: %s; dropping it", self.get_host(), exc)
            conn.close()
            return
        transport.start()

    def _resume(self) -> None:
        self._resume_call = None
        if not self._closed:
            self.reactor.add_reader(self)

    def on_write(self) -> None:  # pragma: no cover - never registered for writing
        pass

    def on_close(self, reason: Failure) -> None:
        """A callback raised while accepting: log it and keep listening."""
        log.error("Listener on %s: %s; still listening", self.get_host(), reason.value)
        if not self._closed:
            self.reactor.add_reader(self)

    def close(self) -> Deferred:
        """Stop accepting and close the socket; connections already made go on."""
        if self._closed:
            return succeed(None)
        self._closed = True
        if self._resume_call is not None:
            self._resume_call.cancel()
            self._resume_call = None
        self.reactor.remove_reader(self)
        self.socket.close()
        for hook in self._on_close:
            hook()
        _call_hook(self.factory, "do_stop")
        return succeed(None)

    stop_listening = close

    def __repr__(self) -> str:
        where = "closed" if self._closed else self.get_host()
        return f"<Listener {where} factory={type(self.factory).__name__}>"


def _bind_listen(family: int, address: Any, backlog: int, *, reuse_port: bool = False, reuse_addr: bool = True) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if reuse_addr:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # "::" means IPv6 only here (listen on "" for IPv4, "::" for IPv6).
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def listen_tcp(reactor: Reactor, port: int, factory: Any, *, interface: str = "", backlog: int = 1024, reuse_port: bool = False) -> Listener:
    """Listen on ``interface:port`` ("" means every IPv4 interface); returns the Listener."""
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    host = interface or ("::" if family == socket.AF_INET6 else "0.0.0.0")
    sock = _bind_listen(family, (host, port), backlog, reuse_port=reuse_port)
    return Listener(reactor, sock, factory)


def _ip_family(host: str) -> int | None:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host.split("%", 1)[0])
        except (OSError, ValueError):
            continue
        return family
    return None


class Connector:
    """One client's connection attempts to one destination; reusable by ``connect()``."""

    def __init__(self, reactor: Reactor, host: str, port: int, factory: Any, timeout: float, bind_address: Any = None, *, family: int | None = None) -> None:
        self.reactor = reactor
        self.host = host
        self.port = port
        self.factory = factory
        self.timeout = timeout
        self.bind_address = bind_address
        self.family = family
        self.state = "disconnected"
        self.transport: Connection | None = None
        self._attempt: _Attempt | None = None
        self._timer: Any = None
        self._start: Any = None
        # Numbers the attempts, so that a lookup finishing after its attempt
        # was given up is recognised and dropped.
        self._generation = 0

    def get_destination(self) -> Any:
        """Where this connector connects to."""
        if self.family == socket.AF_UNIX:
            return self.host
        return Address(self.host, self.port)

    def connect(self) -> None:
        """Start connecting (again); the factory hears how it goes."""
        if self.state != "disconnected":
            raise RuntimeError(f"cannot connect in state {self.state!r}")
        self.state = "connecting"
        self._generation += 1
        _call_hook(self.factory, "started_connecting", self)
        if self.state != "connecting":
            return  # started_connecting called stop_connecting().
        self._timer = self.reactor.call_later(self.timeout, self._timed_out)
        # Begin on the next pass, so that connect_*() returns before the
        # factory hears anything, even of a failure known at once.
        self._start = self.reactor.call_soon(self._resolve, self._generation)

    def _resolve(self, generation: int) -> None:
        self._start = None
        if self.family is not None:
            self._try([(self.family, self._sockaddr())])
            return
        family = _ip_family(self.host)
        if family is not None:
            self._try([(family, (self.host, self.port))])
            return
        d = self.reactor.defer_to_thread(socket.getaddrinfo, self.host, self.port, 0, socket.SOCK_STREAM)
        d.add_callbacks(self._resolved, self._lookup_failed, callback_args=(generation,), errback_args=(generation,))

    def _sockaddr(self) -> Any:
        return self.host if self.family == socket.AF_UNIX else (self.host, self.port)

    def _resolved(self, infos: list, generation: int) -> None:
        if self.state != "connecting" or generation != self._generation:
            return
        self._try([(info[0], info[4]) for info in infos])

    def _lookup_failed(self, reason: Failure, generation: int) -> None:
        if generation == self._generation:
            self._failed(reason)

    def _try(self, addresses: list[tuple[int, Any]]) -> None:
        self._attempt = _Attempt(self, addresses)
        self._attempt.next()

    def _connected(self, sock: socket.socket) -> None:
        self._cancel_timer()
        self._attempt = None
        try:
            protocol = self.factory.build_protocol(self.get_destination())
        except Exception as exc:
            protocol = None
            log.exception("Unhandled error in %r.build_protocol", self.factory)
            error: Exception = exc
        else:
            error = RuntimeError("build_protocol() returned None")
        if protocol is None:
            sock.close()
            self._failed(Failure(error))
            return
        self.state = "connected"
        self.transport = Connection(self.reactor, sock, protocol, on_lost=self._lost)
        self.transport.start()

    def _failed(self, reason: Any) -> None:
        if self.state != "connecting":
            return
        if not isinstance(reason, Failure):
            reason = Failure(reason)
        self._cancel_timer()
        if self._start is not None:
            self._start.cancel()
            self._start = None
        if self._attempt is not None:
            self._attempt.abandon()
            self._attempt = None
        self.state = "disconnected"
        _call_hook(self.factory, "client_connection_failed", self, reason)

    def _timed_out(self) -> None:
        self._timer = None
        self._failed(TimeoutError(f"connecting to {self.get_destination()} took more than {self.timeout} s"))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _lost(self, reason: Failure) -> None:
        self.state = "disconnected"
        self.transport = None
        _call_hook(self.factory, "client_connection_lost", self, reason)

    def stop_connecting(self) -> None:
        """Give up the attempt under way; the factory gets client_connection_failed."""
        if self.state != "connecting":
            raise NotConnectingError("not connecting")
        self._failed(CancelledError("connection attempt stopped"))

    def disconnect(self) -> None:
        """Stop connecting, or close the connection made."""
        if self.state == "connecting":
            self.stop_connecting()
        elif self.state == "connected" and self.transport is not None:
            self.transport.lose_connection()

    def __repr__(self) -> str:
        return f"<Connector to {self.get_destination()} {self.state}>"


class _Attempt:
    """One non-blocking connect() after another, over the resolved addresses."""

    def __init__(self, connector: Connector, addresses: list[tuple[int, Any]]) -> None:
        self.connector = connector
        self.addresses = addresses
        self.socket: socket.socket | None = None
        self._error: OSError | None = None
        self._fd = -1
        self._soon: Any = None

    def next(self) -> None:
        connector = self.connector
        while self.addresses:
            family, address = self.addresses.pop(0)
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError as exc:
                self._error = exc
                continue
            sock.setblocking(False)
            try:
                if connector.bind_address is not None:
                    sock.bind(connector.bind_address)
                err = sock.connect_ex(address)
            except OSError as exc:
                sock.close()
                self._error = exc
                continue
            if err in (0, errno.EISCONN):
                # Connected at once (UNIX sockets, often): still report it on
                # a later pass, so connect_*() never calls the protocol itself.
                self.socket = sock
                self._soon = connector.reactor.call_soon(self._finish)
                return
            if err not in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                sock.close()
                self._error = _os_error(err, address)
                continue
            self.socket = sock
            self._fd = sock.fileno()
            connector.reactor.add_writer(self)
            return
        connector._failed(self._error or OSError("no address to connect to"))

    def fileno(self) -> int:
        return self._fd

    def on_write(self) -> None:
        sock = self.socket
        assert sock is not None
        self.connector.reactor.remove_writer(self)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            sock.close()
            self.socket = None
            self._error = _os_error(err, self.connector.get_destination())
            self.next()
            return
        self.socket = None
        self._done(sock)

    def _finish(self) -> None:
        sock, self.socket = self.socket, None
        assert sock is not None
        self._done(sock)

    def _done(self, sock: socket.socket) -> None:
        if self.connector.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connector._connected(sock)

    def on_read(self) -> None:  # pragma: no cover - registered for writing only
        pass

    def on_close(self, reason: Failure) -> None:  # pragma: no cover - callbacks here do not raise
        self.abandon()

    def abandon(self) -> None:
        """Stop this attempt and close its socket."""
        self.addresses = []
        if self._soon is not None:
            self._soon.cancel()
        if self.socket is not None:
            self.connector.reactor.remove_writer(self)
            self.socket.close()
            self.socket = None


def _os_error(err: int, address: Any) -> OSError:
    """The OSError subclass for ``err`` (ConnectionRefusedError for ECONNREFUSED)."""
    return OSError(err, f"connect to {address}: {errno.errorcode.get(err, err)}: {os.strerror(err)}")


def connect_tcp(reactor: Reactor, host: str, port: int, factory: Any, *, timeout: float = 30.0, bind_address: Any = None) -> Connector:
    """Connect to ``host:port`` and return the Connector; the factory hears the outcome."""
    connector = Connector(reactor, host, port, factory, timeout, bind_address)
    connector.connect()
    return connector
