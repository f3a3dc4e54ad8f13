"""asyncio and pyreactor in one program, on one loop.

Run: ``python -m examples.embed_asyncio``. It prints what each side does and
exits 0.

``asyncio.run(main())`` owns the loop. Inside it, ``Reactor("asyncio")``
puts a reactor on that running loop: asyncio does all the waiting, and the
reactor runs its passes as asyncio callbacks whenever it has work, so it
never calls ``run()``. Then, on the same loop and thread:

1. a pyreactor server (a ``LineReceiver`` subclass) answers an asyncio
   client made with ``asyncio.open_connection``;
2. an asyncio server (``asyncio.start_server``) answers a pyreactor client
   written as an ``async def`` over ``protocols.streams``;
3. results cross between the two: ``d.as_future()`` lets asyncio await a
   Deferred, and ``Deferred.from_future(f)`` lets a pyreactor coroutine
   await an asyncio future; cancelling either side cancels the other.

At the end ``reactor.close()`` removes everything the reactor put on the
loop, and ``asyncio.run`` closes the loop as usual.
"""

from __future__ import annotations

import asyncio
import sys

from protocols import Factory
from protocols.basic import LineReceiver
from protocols.streams import open_connection
from reactor import Deferred, Reactor, ensure_deferred


class Shout(LineReceiver):
    """A pyreactor server protocol: answers every line in capitals."""

    delimiter = b"\n"

    def line_received(self, line: bytes) -> None:
        """Send the line back, upper-cased."""
        self.send_line(line.upper())


async def asyncio_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An asyncio server handler: answers every line reversed."""
    while line := await reader.readline():
        writer.write(line.rstrip(b"\n")[::-1] + b"\n")
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def pyreactor_client(reactor: Reactor, port: int, ready: asyncio.Future[str]) -> list[bytes]:
    """A pyreactor coroutine: talks to the asyncio server, and awaits an asyncio future on the way."""
    reader, writer = await open_connection(reactor, "127.0.0.1", port)
    answers = []
    for word in (b"reactor", b"asyncio"):
        writer.write(word + b"\n")
        answers.append((await reader.readline()).rstrip(b"\n"))
    # An asyncio future, awaited from a Deferred-based coroutine.
    note = await Deferred.from_future(ready)
    answers.append(note.encode())
    writer.close()
    await writer.wait_closed()
    return answers


async def main() -> int:
    """Run both directions on the running loop, then clean up."""
    loop = asyncio.get_running_loop()
    reactor = Reactor("asyncio")
    print(f"reactor on the running asyncio loop: {reactor!r}", flush=True)
    try:
        # 1. pyreactor server, asyncio client.
        listener = reactor.listen_tcp(0, Factory.for_protocol(Shout), interface="127.0.0.1")
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        for word in (b"hello", b"one loop"):
            writer.write(word + b"\n")
            print(f"asyncio client got from pyreactor server: {(await reader.readline()).decode().rstrip()}", flush=True)
        writer.close()
        await writer.wait_closed()

        # 2. asyncio server, pyreactor client; 3. results both ways.
        server = await asyncio.start_server(asyncio_handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ready = loop.create_future()
        loop.call_later(0.01, ready.set_result, "an asyncio future, awaited by pyreactor")
        answers = await ensure_deferred(pyreactor_client(reactor, port, ready)).as_future()
        for answer in answers:
            print(f"pyreactor client got: {answer.decode()}", flush=True)
        server.close()
        await server.wait_closed()

        # Timers of both kinds interleave on the one loop.
        order: list[str] = []
        reactor.call_later(0.02, order.append, "reactor timer (20 ms)")
        loop.call_later(0.01, order.append, "asyncio timer (10 ms)")
        await asyncio.sleep(0.05)
        print(f"timers fired in order: {order}", flush=True)

        # Cancelling the future cancels the Deferred behind it.
        never: Deferred[None] = Deferred(lambda _: print("cancelling the future ran the Deferred's canceller", flush=True))
        future = never.as_future()
        future.cancel()
        await asyncio.sleep(0)

        await listener.close().as_future()
    finally:
        reactor.close()
    print("reactor closed; asyncio.run closes the loop", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
