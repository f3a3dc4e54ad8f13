"""The chat relay as generator coroutines: ``line = yield reader.readline()``.

Run: ``python -m examples.chat.generators --port 8007`` (the wire protocol
is in ``examples/chat/__init__.py``).

``relay`` reads like the threaded version, a loop that reads a line and
sends it on, but runs in the reactor's one thread: each ``yield`` hands a
Deferred to the ``inline_callbacks`` driver and suspends the generator. How
it comes back: bytes arrive, the transport calls the stream protocol's
``data_received``, the reader finds a whole line and fires the Deferred it
returned from ``readline()``, and the driver's callback on that Deferred
sends the line into the generator, which runs on to its next ``yield``, all
inside that one ``data_received`` call. Compared with ``callbacks.py``:

- errors come back as exceptions where they happened: ``yield
  reader.readline()`` raises LimitOverrunError for a line too long and
  ConnectionLost for a reset, and ``try``/``finally`` does the leaving;
- back-pressure is a ``yield writer.drain()`` after each forwarded line: it
  waits while the partner's buffer is over its high mark, and meanwhile
  this client is not read (its stream reader pauses its transport when its
  own buffer fills);
- cancellation: cancelling the Deferred that ``relay`` returned raises
  CancelledError at the ``yield`` where it waits; SIGTERM does that to every
  relay (see ``main``), and the ``finally`` closes the connections.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Generator, Sequence

from protocols.streams import StreamReader, StreamWriter, start_server
from reactor import CancelledError, Deferred, Reactor, inline_callbacks
from reactor.errors import LimitOverrunError

from .common import BYE, MAX_LINE, NO_PARTNER, PAIRED, PARTNER_LEFT, TOO_LONG, Lobby, Relays, announce, parse_args, strip_line_end

log = logging.getLogger("examples.chat.generators")


@inline_callbacks
def relay(lobby: Lobby[StreamWriter], reader: StreamReader, writer: StreamWriter) -> Generator[Deferred[Any], Any, None]:
    """Serve one client: pair it, then forward its lines until BYE!, its end of stream, or an error."""
    # The lobby knows clients by their writers: that is all a partner needs.
    partner = lobby.arrive(writer)
    if partner is not None:
        partner.write(PAIRED + b"\n")
        writer.write(PAIRED + b"\n")
    try:
        while True:
            try:
                raw = yield reader.readline()
            except LimitOverrunError:
                writer.write(TOO_LONG + b"\n")
                return
            except ConnectionError:
                return  # A reset: the same as the end of the stream here.
            if not raw.endswith(b"\n"):
                return  # The end of the stream; a partial last line is dropped.
            line = strip_line_end(raw)
            if line == BYE:
                partner = lobby.leave(writer)
                if partner is not None:
                    partner.write(BYE + b"\n")
                    partner.close()
                return
            partner = lobby.partner_of(writer)
            if partner is None:
                writer.write(NO_PARTNER + b"\n")
                target = writer
            else:
                partner.write(line + b"\n")
                target = partner
            try:
                # Wait while the receiver's buffer is full; we read no more meanwhile.
                yield target.drain()
            except ConnectionError:
                pass  # The receiver is gone; its own relay does the leaving.
    except CancelledError:
        log.info("relay cancelled (shutting down)")
    finally:
        partner = lobby.leave(writer)
        if partner is not None:
            partner.write(PARTNER_LEFT + b"\n")
            partner.close()
        writer.close()


@inline_callbacks
def serve(reactor: Reactor, host: str, port: int) -> Generator[Deferred[Any], Any, Any]:
    """Start listening; the Deferred fires with the Listener."""
    lobby: Lobby[StreamWriter] = Lobby()
    relays = Relays()

    def handle(reader: StreamReader, writer: StreamWriter) -> Deferred[None]:
        return relays.track(relay(lobby, reader, writer))

    listener = yield start_server(reactor, handle, port, interface=host, limit=MAX_LINE)
    reactor.add_shutdown_hook(listener.close)
    reactor.add_shutdown_hook(relays.cancel_all)
    return listener


def main(argv: Sequence[str] | None = None) -> int:
    """Listen and relay until SIGINT or SIGTERM."""
    args = parse_args("Chat relay: inline_callbacks generators over streams.", argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    reactor = Reactor()
    listener = reactor.run_until_complete(serve(reactor, args.host, args.port))
    # Announced from the first pass of run(): by then SIGTERM stops the
    # reactor cleanly, so whoever waits for the line may send it at once.
    reactor.call_soon(announce, listener.get_host().host, listener.port)
    reactor.run()
    reactor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
