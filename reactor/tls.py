"""TLS over the plain TCP transport, with ``ssl.MemoryBIO`` (sans-IO).

TLS here is a protocol wrapper, not a transport of its own: the TCP
``Connection`` carries ciphertext to and from a ``_TLSProtocol``, which
feeds it to an ``ssl.SSLObject`` through two memory BIOs and hands the
plaintext to the user's protocol through a ``_TLSTransport``. Nothing in
the reactor or the TCP code knows about TLS; the socket stays non-blocking
and the SSL object never touches it, so the ``SSLWantReadError`` /
``SSLWantWriteError`` dance of ``ssl.SSLSocket`` does not exist here:
"want read" only ever means "feed me more ciphertext", and the outgoing BIO
is flushed to the TCP transport after every operation (handshake, read,
write, unwrap), so nothing the SSL object produced is left behind.

Choices made, and why:

- The user's ``connection_made`` is called once the handshake is done (as
  asyncio does, unlike Twisted), so the peer's certificate is known there
  and a failed handshake never reaches the user's protocol at all. Hence
  nothing can be written before the handshake completes, and no plaintext
  is buffered.
- A failed handshake, or any TLS error later (a bad record, an alert),
  closes the TCP connection after the alert is flushed. The reason handed
  on is ``ConnectionLost`` with the ``ssl.SSLError`` as ``__cause__``, the
  convention of ``transport.py``. A client whose handshake fails hears
  ``client_connection_failed(connector, reason)`` with that reason (the TCP
  connection was made, but no usable connection ever was); after a
  successful handshake it hears ``client_connection_lost`` as usual.
- TLS cannot half-close: ``write_eof()`` sends close_notify and further
  writes raise, while reading goes on. A close_notify received calls the
  user's ``eof_received``; unless it returns True the connection is closed
  (sending our own close_notify).
- ``lose_connection()`` sends close_notify and then closes the TCP
  connection once its buffer is sent; both ends see ``ConnectionDone``.
- The handshake must finish within ``handshake_timeout`` seconds (60 by
  default, as in asyncio; None for no limit): a peer that connects and then
  says nothing, or stops half way, would otherwise hold the connection
  forever. On timeout the TCP connection is aborted (a stalled peer may not
  be reading, so nothing waits for a flush) with ``ConnectionLost`` caused by
  ``TimeoutError``; a client hears it in ``client_connection_failed``.
- Handshake failures are logged at DEBUG only: they are the peer's doing
  (an untrusted certificate, a port scanner), not a bug here.
"""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING, Any, Iterable

from .defer import Failure
from .errors import ConnectionDone, ConnectionLost
from .tcp import Connector, Listener, connect_tcp, listen_tcp
from .transport import _lost, as_bytes

if TYPE_CHECKING:
    from .core import Reactor
    from .timers import DelayedCall

log = logging.getLogger("reactor")

# Plaintext asked of SSLObject.read() at a time; one TLS record is 16 KiB.
READ_SIZE = 65536




class _TLSProtocol:
    """The protocol the TCP transport sees: decrypts for, and encrypts from, the user's protocol."""

    def __init__(
        self, protocol: Any, context: ssl.SSLContext, server_side: bool, server_hostname: str | None,
        handshake_timeout: float | None = None,
    ) -> None:
        self.protocol = protocol
        self.context = context
        self.server_side = server_side
        self.server_hostname = server_hostname
        self.handshake_timeout = handshake_timeout
        self._handshake_timer: DelayedCall | None = None
        self.transport: Any = None
        self.tls_transport: _TLSTransport | None = None
        self.ssl_object: ssl.SSLObject | None = None
        self.handshaken = False
        # The reason given to the user (and the client factory), once known.
        self.reason: Failure | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._error: BaseException | None = None
        self._closing = False
        self._eof_sent = False
        self._eof_delivered = False
        self._keep_open = False
        self._close_notify_seen = False
        self._reading_paused = False
        self._lost = False

    # -- from the TCP transport ---------------------------------------------

    def connection_made(self, transport: Any) -> None:
        """Create the SSL object and start the handshake (the client speaks first)."""
        self.transport = transport
        self.ssl_object = self.context.wrap_bio(
            self._incoming, self._outgoing, server_side=self.server_side, server_hostname=self.server_hostname,
        )
        self.tls_transport = _TLSTransport(self)
        if self.handshake_timeout is not None:
            self._handshake_timer = transport.reactor.call_later(self.handshake_timeout, self._handshake_timed_out)
        self._handshake()

    def data_received(self, data: bytes) -> None:
        """Feed ciphertext in; finish the handshake; pass the plaintext on."""
        if self._error is not None:
            return
        self._incoming.write(data)
        if not self.handshaken:
            self._handshake()
            if not self.handshaken:
                return
        self._read_plaintext()

    def eof_received(self) -> bool:
        """The peer shut its TCP write side, with or without a close_notify first."""
        if not self.handshaken:
            return False
        if not self._eof_delivered:
            self._eof_delivered = True
            self._keep_open = bool(self.protocol.eof_received())
        return self._keep_open

    def pause_writing(self) -> None:
        """The TCP buffer is full: tell the user's protocol."""
        if self.handshaken:
            self.protocol.pause_writing()

    def resume_writing(self) -> None:
        """The TCP buffer drained: tell the user's protocol."""
        if self.handshaken:
            self.protocol.resume_writing()

    def connection_lost(self, reason: Failure) -> None:
        """The TCP connection is gone: say why, in TLS terms, to the user's protocol."""
        self._lost = True
        self._cancel_handshake_timer()
        if self._error is not None:
            reason = _lost(self._error, f"TLS error: {self._error}")
        elif self._close_notify_seen and reason.check(ConnectionLost):
            # The peer closed cleanly and then closed its socket with our
            # close_notify (or a session ticket) unread, which resets the
            # connection: nothing was lost.
            reason = Failure(ConnectionDone("connection closed cleanly"))
        elif not self.handshaken and reason.check(ConnectionDone):
            reason = _lost(reason.value, "connection closed during the TLS handshake")
        self.reason = reason
        if self.handshaken:
            self.protocol.connection_lost(reason)

    # -- the TLS machinery ----------------------------------------------------

    def _handshake(self) -> None:
        assert self.ssl_object is not None
        try:
            self.ssl_object.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except ssl.SSLError as exc:  # SSLCertVerificationError included.
            self._fail(exc)
            return
        self.handshaken = True
        self._cancel_handshake_timer()
        self._flush()
        log.debug("TLS handshake done with %s: %s", self.transport.get_peer(), self.ssl_object.version())
        # An error in here propagates to the TCP transport's guard, which
        # closes the connection with ConnectionLost, just as for plain TCP.
        self.protocol.connection_made(self.tls_transport)

    def _handshake_timed_out(self) -> None:
        self._handshake_timer = None
        self._fail(TimeoutError(f"TLS handshake not done within {self.handshake_timeout:g} s"), abort=True)

    def _cancel_handshake_timer(self) -> None:
        timer, self._handshake_timer = self._handshake_timer, None
        if timer is not None:
            timer.cancel()

    def _read_plaintext(self) -> None:
        """Hand the user what the SSL object can decrypt, until it wants more or the user stops us."""
        sslobj = self.ssl_object
        assert sslobj is not None
        protocol = self.protocol
        while not (self._closing or self._reading_paused or self._lost):
            try:
                chunk = sslobj.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                chunk = b""
            except ssl.SSLError as exc:
                self._fail(exc)
                return
            if not chunk:
                # close_notify: read() raises SSLZeroReturnError the first
                # time and returns b"" ever after.
                self._close_notify_received()
                break
            protocol.data_received(chunk)
        # Reads may produce output (TLS 1.3 key updates, alerts).
        self._flush()

    def _close_notify_received(self) -> None:
        self._close_notify_seen = True
        self._flush()
        if self._eof_delivered:
            return
        self._eof_delivered = True
        self._keep_open = bool(self.protocol.eof_received())
        if not self._keep_open:
            assert self.tls_transport is not None
            self.tls_transport.lose_connection()

    def _flush(self) -> None:
        """Send whatever the SSL object has produced."""
        data = self._outgoing.read()
        if data:
            self.transport.write(data)

    def _fail(self, exc: BaseException, abort: bool = False) -> None:
        """A TLS error: send the alert, then close the TCP connection (at once if ``abort``)."""
        self._error = exc
        self._closing = True
        log.debug("TLS error with %s: %s", self.transport.get_peer(), exc)
        if abort:
            self.transport.abort_connection()
            return
        self._flush()
        self.transport.lose_connection()

    def _shutdown(self) -> None:
        """Send close_notify (once)."""
        if self._eof_sent:
            return
        self._eof_sent = True
        assert self.ssl_object is not None
        try:
            self.ssl_object.unwrap()
        except ssl.SSLWantReadError:
            pass  # The peer's close_notify has not come yet; we do not wait for it.
        except ssl.SSLError as exc:
            log.debug("TLS unwrap with %s failed: %s", self.transport.get_peer(), exc)
        self._flush()

    def __repr__(self) -> str:
        side = "server" if self.server_side else "client"
        state = "open" if self.handshaken else "handshaking"
        return f"<_TLSProtocol {side} {state} protocol={type(self.protocol).__name__}>"


class _TLSTransport:
    """What the user's protocol sees: a transport that encrypts what it is given."""

    def __init__(self, tls: _TLSProtocol) -> None:
        self._tls = tls
        self._tcp = tls.transport

    # -- writing ----------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt ``data`` and send it; raises TypeError for str, RuntimeError after write_eof()."""
        if type(data) is not bytes:
            data = as_bytes(data)
        tls = self._tls
        if tls._closing or tls._lost:
            return  # After lose_connection() or a close, writes go nowhere (as for TCP).
        if tls._eof_sent:
            raise RuntimeError("write() after write_eof()")
        if not data:
            return
        sslobj = tls.ssl_object
        assert sslobj is not None
        view = memoryview(data)
        try:
            # A memory BIO never refuses bytes, but write() may still take
            # them a record at a time.
            while view:
                view = view[sslobj.write(view):]
        except ssl.SSLError as exc:
            tls._fail(exc)
            return
        tls._flush()

    def writelines(self, seq: Iterable[bytes]) -> None:
        """Write each chunk of ``seq`` in order."""
        self.write(b"".join(seq))

    def write_eof(self) -> None:
        """Send close_notify; later writes raise, reading goes on (TLS cannot half-close otherwise)."""
        tls = self._tls
        if tls._closing or tls._lost:
            return
        tls._shutdown()

    def can_write_eof(self) -> bool:
        """True: write_eof() sends close_notify."""
        return True

    # -- closing ----------------------------------------------------------

    def lose_connection(self) -> None:
        """Send close_notify, then close the TCP connection once its buffer is sent."""
        tls = self._tls
        if tls._closing or tls._lost:
            return
        tls._closing = True
        tls._shutdown()
        self._tcp.lose_connection()

    def abort_connection(self) -> None:
        """Close the TCP connection now, dropping what is buffered; no close_notify."""
        self._tls._closing = True
        self._tcp.abort_connection()

    def is_closing(self) -> bool:
        """True once lose_connection() or abort_connection() was called or the connection closed."""
        return self._tls._closing or self._tcp.is_closing()

    @property
    def disconnecting(self) -> bool:
        """True once lose_connection() was called (Twisted's name)."""
        return self._tls._closing

    # -- reading control --------------------------------------------------

    def pause_reading(self) -> None:
        """Stop calling data_received until resume_reading()."""
        self._tls._reading_paused = True
        self._tcp.pause_reading()

    def resume_reading(self) -> None:
        """Call data_received again, starting with plaintext already decrypted and waiting."""
        tls = self._tls
        if not tls._reading_paused:
            return
        tls._reading_paused = False
        self._tcp.resume_reading()
        # The SSL object may hold whole records that came before the pause.
        self._tcp.reactor.call_soon(self._drain)

    def _drain(self) -> None:
        tls = self._tls
        if tls._error is None and not tls._lost:
            tls._read_plaintext()

    def is_reading(self) -> bool:
        """True while data_received may be called."""
        return not self._tls._reading_paused and self._tcp.is_reading()

    # -- delegated to the TCP transport -----------------------------------

    def get_write_buffer_size(self) -> int:
        """Ciphertext bytes written but not yet taken by the kernel."""
        return self._tcp.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the marks for pause_writing/resume_writing (counted in ciphertext bytes)."""
        self._tcp.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The (low, high) marks."""
        return self._tcp.get_write_buffer_limits()

    def get_host(self) -> Any:
        """Our end's address."""
        return self._tcp.get_host()

    def get_peer(self) -> Any:
        """The other end's address."""
        return self._tcp.get_peer()

    def set_tcp_nodelay(self, enabled: bool) -> None:
        """TCP_NODELAY on the underlying socket."""
        self._tcp.set_tcp_nodelay(enabled)

    def set_tcp_keepalive(self, enabled: bool) -> None:
        """SO_KEEPALIVE on the underlying socket."""
        self._tcp.set_tcp_keepalive(enabled)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``ssl_object``, ``sslcontext``, ``peercert``, ``cipher``, ``version``, then the TCP transport's names."""
        tls = self._tls
        sslobj = tls.ssl_object
        assert sslobj is not None
        if name == "ssl_object":
            return sslobj
        if name == "sslcontext":
            return tls.context
        if name == "peercert":
            return sslobj.getpeercert()
        if name == "cipher":
            return sslobj.cipher()
        if name == "version":
            return sslobj.version()
        return self._tcp.get_extra_info(name, default)

    def __repr__(self) -> str:
        return f"<_TLSTransport over {self._tcp!r}>"


class _TLSFactory:
    """Wraps the user's factory: its protocols get a _TLSProtocol around them; every other hook is the user's."""

    def __init__(
        self, factory: Any, context: ssl.SSLContext, server_side: bool, server_hostname: str | None = None,
        handshake_timeout: float | None = None,
    ) -> None:
        self.wrapped_factory = factory
        self.context = context
        self.server_side = server_side
        self.server_hostname = server_hostname
        self.handshake_timeout = handshake_timeout
        # A Connector has one connection at a time: this is it.
        self._current: _TLSProtocol | None = None

    def build_protocol(self, addr: Any) -> _TLSProtocol | None:
        """The user's protocol for ``addr``, wrapped; None (refusing) stays None."""
        protocol = self.wrapped_factory.build_protocol(addr)
        if protocol is None:
            return None
        tls = _TLSProtocol(protocol, self.context, self.server_side, self.server_hostname, self.handshake_timeout)
        if not self.server_side:
            self._current = tls
        return tls

    def client_connection_lost(self, connector: Any, reason: Failure) -> None:
        """Translate for the user: a failed handshake is a failed connection attempt."""
        tls, self._current = self._current, None
        if tls is not None and tls.reason is not None:
            reason = tls.reason
        name = "client_connection_lost" if tls is None or tls.handshaken else "client_connection_failed"
        hook = getattr(self.wrapped_factory, name, None)
        if hook is not None:
            hook(connector, reason)

    def __getattr__(self, name: str) -> Any:
        # do_start, do_stop, started_connecting, client_connection_failed...
        return getattr(self.wrapped_factory, name)

    def __repr__(self) -> str:
        return f"<_TLSFactory around {self.wrapped_factory!r}>"


#: Seconds a TLS handshake may take before the connection is aborted (asyncio's default).
HANDSHAKE_TIMEOUT = 60.0


def listen_ssl(
    reactor: Reactor, port: int, factory: Any, context: ssl.SSLContext, *, interface: str = "", backlog: int = 1024,
    handshake_timeout: float | None = HANDSHAKE_TIMEOUT,
) -> Listener:
    """Listen on ``interface:port`` with TLS (a server-side ``ssl.SSLContext``); returns the Listener."""
    tls_factory = _TLSFactory(factory, context, server_side=True, handshake_timeout=_checked(handshake_timeout))
    return listen_tcp(reactor, port, tls_factory, interface=interface, backlog=backlog)


def connect_ssl(
    reactor: Reactor, host: str, port: int, factory: Any, context: ssl.SSLContext, *,
    timeout: float = 30.0, server_hostname: str | None = None, handshake_timeout: float | None = HANDSHAKE_TIMEOUT,
) -> Connector:
    """Connect to ``host:port`` with TLS; the name checked (and sent as SNI) is ``server_hostname`` or ``host``."""
    tls_factory = _TLSFactory(
        factory, context, server_side=False, server_hostname=server_hostname or host,
        handshake_timeout=_checked(handshake_timeout),
    )
    return connect_tcp(reactor, host, port, tls_factory, timeout=timeout)


def _checked(handshake_timeout: float | None) -> float | None:
    if handshake_timeout is not None and not handshake_timeout > 0:
        raise ValueError(f"handshake_timeout must be a positive number of seconds or None, not {handshake_timeout!r}")
    return handshake_timeout
