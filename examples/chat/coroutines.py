"""The chat relay as ``async def`` coroutines: ``line = await reader.readline()``.

Run: ``python -m examples.chat.coroutines --port 8007`` (the wire protocol
is in ``examples/chat/__init__.py``).

The same relay as ``generators.py``, with ``await`` where that one has
``yield`` and ``ensure_deferred`` where it has ``@inline_callbacks``. The
reactor still does the waiting: ``await d`` on a Deferred that has not fired
suspends the coroutine, and the driver behind ``ensure_deferred`` resumes it
from the Deferred's callback when the stream reader fires it (inside
``data_received``). Errors, back-pressure and cancellation sit where they
sit in the generator version:

- ``await reader.readline()`` raises LimitOverrunError or ConnectionLost;
- ``await writer.drain()`` waits while the receiver's buffer is full;
- cancelling the relay's Deferred raises CancelledError at the ``await``.

What ``async def`` adds over generators: a coroutine cannot be mistaken for
a plain generator (``yield`` of a non-Deferred silently sends it back in
``inline_callbacks``; ``await`` of one is a TypeError), type checkers follow
``await``, and ``async for line in reader`` works.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Sequence

from protocols.streams import StreamReader, StreamWriter, start_server
from reactor import CancelledError, Deferred, Reactor, ensure_deferred
from reactor.errors import LimitOverrunError

from .common import BYE, MAX_LINE, NO_PARTNER, PAIRED, PARTNER_LEFT, TOO_LONG, Lobby, Relays, announce, parse_args, strip_line_end

log = logging.getLogger("examples.chat.coroutines")


async def relay(lobby: Lobby[StreamWriter], reader: StreamReader, writer: StreamWriter) -> None:
    """Serve one client: pair it, then forward its lines until BYE!, its end of stream, or an error."""
    # The lobby knows clients by their writers: that is all a partner needs.
    partner = lobby.arrive(writer)
    if partner is not None:
        partner.write(PAIRED + b"\n")
        writer.write(PAIRED + b"\n")
    try:
        while True:
            try:
                raw = await reader.readline()
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
                await target.drain()
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


async def serve(reactor: Reactor, host: str, port: int) -> Any:
    """Start listening; return the Listener."""
    lobby: Lobby[StreamWriter] = Lobby()
    relays = Relays()

    def handle(reader: StreamReader, writer: StreamWriter) -> Deferred[None]:
        return relays.track(ensure_deferred(relay(lobby, reader, writer)))

    listener = await start_server(reactor, handle, port, interface=host, limit=MAX_LINE)
    reactor.add_shutdown_hook(listener.close)
    reactor.add_shutdown_hook(relays.cancel_all)
    return listener


def main(argv: Sequence[str] | None = None) -> int:
    """Listen and relay until SIGINT or SIGTERM."""
    args = parse_args("Chat relay: async def coroutines over streams.", argv)
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
