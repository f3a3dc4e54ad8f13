"""The chat relay as a protocol: the reactor calls us when a line arrives.

Run: ``python -m examples.chat.callbacks --port 8007`` (the wire protocol is
in ``examples/chat/__init__.py``).

One thread serves every connection. Nothing here blocks or waits: each
method handles one event (a connection, a line, a full buffer, a loss) and
returns to the loop. The line framing, with its length limit, is
``LineReceiver``'s; the I/O is the transport's. Compared with
``threads.py``:

- no locks: every method runs in the reactor thread, one at a time, so
  "pair and greet both" or "check the partner, then forward" cannot be
  interleaved with anything;
- errors arrive as events: a reset or an end of file is
  ``connection_lost``, a line too long is ``line_length_exceeded``;
- back-pressure is explicit: ``transport.write`` never blocks, so when a
  client's write buffer passes its high mark the transport calls
  ``pause_writing`` and we stop *reading* whoever fills it (the partner)
  until ``resume_writing``;
- cancellation is closing: ``lose_connection`` after the last line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Sequence

from protocols import Factory
from protocols.basic import LineReceiver
from reactor import Reactor

from .common import BYE, MAX_LINE, NO_PARTNER, PAIRED, PARTNER_LEFT, TOO_LONG, Lobby, announce, parse_args, strip_line_end

log = logging.getLogger("examples.chat.callbacks")


class ChatProtocol(LineReceiver):
    """One client of the relay: forwards its lines to its partner."""

    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, lobby: Lobby[ChatProtocol]) -> None:
        self.lobby = lobby
        # Whose reading we paused because our write buffer was full.
        self._paused_producer: ChatProtocol | None = None

    def connection_made(self, transport: Any) -> None:
        """Pair with the client waiting, or wait."""
        super().connection_made(transport)
        partner = self.lobby.arrive(self)
        if partner is not None:
            partner.send_line(PAIRED)
            self.send_line(PAIRED)
        log.info("%s arrived%s", transport.get_peer(), " and is paired" if partner is not None else "; waiting")

    def line_received(self, line: bytes) -> None:
        """Forward a line to the partner; BYE! ends the pair."""
        line = strip_line_end(line)
        if line == BYE:
            partner = self.lobby.leave(self)
            if partner is not None:
                partner.send_line(BYE)
                partner.transport.lose_connection()
            self.transport.lose_connection()
            return
        partner = self.lobby.partner_of(self)
        if partner is None:
            self.send_line(NO_PARTNER)
        else:
            partner.send_line(line)

    def line_length_exceeded(self, line: bytes) -> None:
        """Too long: say so and close (instead of LineReceiver's default, which logs an error)."""
        self.send_line(TOO_LONG)
        self._leave()
        self.transport.lose_connection()

    def eof_received(self) -> None:
        """The client is done sending: leave now, before the transport closes our end.

        ``connection_lost`` would come one pass later, after the socket is
        closed; a client arriving in between would be paired with us.
        """
        self._leave()
        return None  # The transport closes once our buffer is sent.

    def connection_lost(self, reason: Any) -> None:
        """Gone (cleanly or not): the partner, if any, is told and closed."""
        super().connection_lost(reason)
        self._leave()
        log.info("%s left: %s", self.transport.get_peer(), reason.value)

    def _leave(self) -> None:
        partner = self.lobby.leave(self)
        if partner is not None:
            partner.send_line(PARTNER_LEFT)
            partner.transport.lose_connection()

    def pause_writing(self) -> None:
        """Our buffer is full of what our partner sends (or of notices to ourselves): stop reading that one."""
        producer = self.lobby.partner_of(self) or self
        self._paused_producer = producer
        producer.transport.pause_reading()

    def resume_writing(self) -> None:
        """Our buffer drained: read the one we paused again."""
        producer, self._paused_producer = self._paused_producer, None
        if producer is not None:
            producer.transport.resume_reading()


def main(argv: Sequence[str] | None = None) -> int:
    """Listen and relay until SIGINT or SIGTERM."""
    args = parse_args("Chat relay: Protocol callbacks on one reactor.", argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    reactor = Reactor()
    lobby: Lobby[ChatProtocol] = Lobby()
    listener = reactor.listen_tcp(args.port, Factory.for_protocol(ChatProtocol, lobby), interface=args.host)
    reactor.add_shutdown_hook(listener.close)
    # Announced from the first pass of run(): by then SIGTERM stops the
    # reactor cleanly, so whoever waits for the line may send it at once.
    reactor.call_soon(announce, listener.get_host().host, listener.port)
    reactor.run()
    reactor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
