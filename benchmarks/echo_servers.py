"""Echo servers for bench_echo.py, one per implementation, all with the same behaviour.

Run: ``python benchmarks/echo_servers.py IMPL``. The server listens on
127.0.0.1 on a free port, prints the port, and serves until its standard
input closes (the benchmark closes it) or it gets SIGTERM.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def _exit_when_stdin_closes(stop) -> None:
    def watch() -> None:
        sys.stdin.read()
        stop()

    threading.Thread(target=watch, daemon=True).start()


async def echo_handler(reader, writer) -> None:
    """The streams-style echo, the same text for pyreactor and asyncio streams."""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
    except ConnectionError:
        pass  # The load generator resets its connections when it is done.
    writer.close()


def serve_pyreactor(multiplexer: str | None = None) -> None:
    from protocols import Factory, Protocol
    from reactor import Reactor

    class Echo(Protocol):
        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    reactor = Reactor(multiplexer)
    listener = reactor.listen_tcp(0, Factory.for_protocol(Echo), interface="127.0.0.1")
    print(listener.port, flush=True)
    _exit_when_stdin_closes(lambda: reactor.call_from_thread(reactor.stop))
    reactor.run()


def serve_pyreactor_streams() -> None:
    from protocols.streams import start_server
    from reactor import Reactor


    reactor = Reactor()
    listener = reactor.run_until_complete(start_server(reactor, echo_handler, 0, interface="127.0.0.1"))
    print(listener.port, flush=True)
    _exit_when_stdin_closes(lambda: reactor.call_from_thread(reactor.stop))
    reactor.run()


def _serve_asyncio(use_uvloop: bool, streams: bool, stock: bool = False) -> None:
    import asyncio
    import asyncio.selector_events

    if not stock:
        # Python 3.11's asyncio reads 256 KiB at a time; here that allocation
        # alone makes a small-message echo 4x slower (glibc maps and unmaps
        # it). 64 KiB, as pyreactor and Twisted read, is the fair peer.
        asyncio.selector_events._SelectorSocketTransport.max_size = 65536

    if use_uvloop:
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    class Echo(asyncio.Protocol):
        def connection_made(self, transport) -> None:
            self.transport = transport
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)


    if streams:
        server = loop.run_until_complete(asyncio.start_server(echo_handler, "127.0.0.1", 0))
    else:
        server = loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", 0))
    print(server.sockets[0].getsockname()[1], flush=True)
    _exit_when_stdin_closes(lambda: loop.call_soon_threadsafe(loop.stop))
    loop.run_forever()


def serve_twisted() -> None:
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import protocol, reactor

    class Echo(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:  # noqa: N802 - Twisted's API
            self.transport.write(data)

        def connectionMade(self) -> None:  # noqa: N802 - Twisted's API
            self.transport.setTcpNoDelay(True)

    factory = protocol.Factory.forProtocol(Echo)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    print(port.getHost().port, flush=True)
    _exit_when_stdin_closes(lambda: reactor.callFromThread(reactor.stop))
    reactor.run()


def serve_minimal_epoll() -> None:
    """The ceiling: an epoll loop that does recv and send and nothing else."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.setblocking(False)
    print(listener.getsockname()[1], flush=True)
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    stop_r, stop_w = os.pipe()
    ep.register(stop_r, select.EPOLLIN)
    _exit_when_stdin_closes(lambda: os.write(stop_w, b"x"))
    conns: dict[int, socket.socket] = {}
    lfd = listener.fileno()
    while True:
        for fd, _ in ep.poll():
            if fd == lfd:
                conn, _ = listener.accept()
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conns[conn.fileno()] = conn
                ep.register(conn.fileno(), select.EPOLLIN)
            elif fd == stop_r:
                return
            else:
                conn = conns[fd]
                try:
                    data = conn.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data:
                    conn.send(data)
                else:
                    ep.unregister(fd)
                    del conns[fd]
                    conn.close()


SERVERS = {
    "epoll-minimal": serve_minimal_epoll,
    "pyreactor": serve_pyreactor,
    "pyreactor-streams": serve_pyreactor_streams,
    "asyncio": lambda: _serve_asyncio(False, False),
    "asyncio-streams": lambda: _serve_asyncio(False, True),
    "asyncio-stock": lambda: _serve_asyncio(False, False, stock=True),
    "uvloop": lambda: _serve_asyncio(True, False),
    "twisted": serve_twisted,
}


if __name__ == "__main__":
    SERVERS[sys.argv[1]]()
