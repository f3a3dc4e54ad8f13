"""The reactor in a background thread of an ordinary, blocking program.

Run: ``python -m examples.embed_thread [--lines N]``. It prints what it does,
one line per step, and exits 0.

The main thread here is plain synchronous code, the kind a larger program
already has (a CLI, a worker, a test). A reactor runs in a thread of its own
and owns every socket: an echo server (a ``Protocol`` subclass) and a stream
client connected to it. The main thread never touches them directly. It
hands each operation to the reactor thread with
``blocking_call_from_thread``, which waits for the result (and for a
Deferred the call returns) and gives it back, or raises its error, in the
main thread, like an ordinary function call. ``timeout=`` bounds each wait.

The rules this shows: reactor objects are used only in the reactor thread;
the other thread talks to it only through ``call_from_thread`` and
``blocking_call_from_thread``; shutdown goes the same way (``stop()`` from
the reactor thread, then ``join()`` and ``close()``).
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Sequence

from protocols import Factory, Protocol
from protocols.streams import open_connection
from reactor import Reactor
from reactor.threads import blocking_call_from_thread


class Echo(Protocol):
    """Writes back what it receives."""

    def data_received(self, data: bytes) -> None:
        """Send ``data`` back."""
        self.transport.write(data)


def start_reactor_thread(reactor: Reactor) -> threading.Thread:
    """Run ``reactor`` in a new thread and return once it is serving."""
    serving = threading.Event()
    reactor.call_soon(serving.set)
    # No signal handlers: only the main thread may install them, and
    # Ctrl-C belongs to the main program here.
    thread = threading.Thread(target=reactor.run, kwargs={"install_signal_handlers": False}, name="reactor")
    thread.start()
    if not serving.wait(10):
        raise RuntimeError("the reactor thread did not start")
    return thread


def main(argv: Sequence[str] | None = None) -> int:
    """Start a reactor thread, talk to an echo server through it from this thread, shut down."""
    parser = argparse.ArgumentParser(description="pyreactor in a background thread")
    parser.add_argument("--lines", type=int, default=3, help="how many lines to send through the echo server")
    args = parser.parse_args(argv)

    reactor = Reactor()
    thread = start_reactor_thread(reactor)
    call = blocking_call_from_thread
    try:
        listener = call(reactor, reactor.listen_tcp, 0, Factory.for_protocol(Echo), interface="127.0.0.1")
        print(f"echo server on 127.0.0.1:{listener.port} (reactor thread: {thread.name})", flush=True)
        # open_connection returns a Deferred; the call waits until it fires.
        reader, writer = call(reactor, open_connection, reactor, "127.0.0.1", listener.port, timeout=10)
        for i in range(args.lines):
            line = f"line {i} from the main thread\n".encode()
            call(reactor, writer.write, line)
            echoed = call(reactor, reader.readline, timeout=10)
            print(f"echoed: {echoed.decode().rstrip()}", flush=True)
        # Errors come back as exceptions, and waits can be bounded.
        try:
            call(reactor, reader.readexactly, 1, timeout=0.2)
        except TimeoutError:
            print("nothing more to read (TimeoutError after 0.2 s)", flush=True)
        call(reactor, writer.close)
        call(reactor, writer.wait_closed, timeout=10)
        call(reactor, listener.close)
    finally:
        reactor.call_from_thread(reactor.stop)
        thread.join()
        reactor.close()
    print("reactor stopped; main thread done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
