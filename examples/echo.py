"""An echo server: every byte a client sends comes back to it.

Run: ``python -m examples.echo --port 8008`` (``--port 0`` picks a free
port); it prints ``listening on HOST:PORT`` and serves until SIGINT or
SIGTERM. The smallest complete pyreactor server: a Protocol, a Factory, a
listener and ``run()``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from protocols import Factory, Protocol
from reactor import Reactor


class Echo(Protocol):
    """Writes back what it receives."""

    def data_received(self, data: bytes) -> None:
        """Send ``data`` back."""
        self.transport.write(data)

    def pause_writing(self) -> None:
        """The client does not read its echoes: stop reading what it sends until it does."""
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        """The client caught up: read again."""
        self.transport.resume_reading()


def main(argv: Sequence[str] | None = None) -> int:
    """Listen and echo until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description="pyreactor echo server")
    parser.add_argument("--port", type=int, default=8008, help="TCP port (0: pick a free one; default 8008)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    args = parser.parse_args(argv)
    reactor = Reactor()
    listener = reactor.listen_tcp(args.port, Factory.for_protocol(Echo), interface=args.host)
    reactor.add_shutdown_hook(listener.close)
    # Printed from the first pass of run(), once SIGINT/SIGTERM stop it cleanly.
    reactor.call_soon(print, f"listening on {listener.get_host().host}:{listener.port}", flush=True)
    reactor.run()
    reactor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
