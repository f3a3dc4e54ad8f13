"""Helpers shared by the I/O tests: waiting with a deadline, endpoints, recording protocols."""

from __future__ import annotations

import os
import socket
import tempfile
import time

import pytest

from protocols import ClientFactory, Factory, Protocol


def run_until(reactor, predicate, timeout=10.0):
    """Iterate ``reactor`` until ``predicate()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        reactor.iterate(0.01)


def has_ipv6() -> bool:
    """True if ::1 can be bound here."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class SocketDescriptor:
    """A raw descriptor over one end of a socketpair, recording what it sees."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.setblocking(False)
        self.received = bytearray()
        self.writes = 0
        self.closed_with = None

    def fileno(self) -> int:
        return self.sock.fileno()

    def on_read(self) -> None:
        self.received += self.sock.recv(65536)

    def on_write(self) -> None:
        self.writes += 1

    def on_close(self, reason) -> None:
        self.closed_with = reason


class Endpoints:
    """Listen and connect over one kind of stream socket: tcp4, tcp6 or unix."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._dir = tempfile.mkdtemp(prefix="pyreactor-") if kind == "unix" else None
        self._count = 0

    def listen(self, reactor, factory, **kw):
        if self.kind == "unix":
            self._count += 1
            return reactor.listen_unix(os.path.join(self._dir, f"s{self._count}.sock"), factory)
        host = "::1" if self.kind == "tcp6" else "127.0.0.1"
        return reactor.listen_tcp(0, factory, interface=host, **kw)

    def address(self, listener):
        """What a raw socket connects to for ``listener``."""
        if self.kind == "unix":
            return listener.get_host()
        return (listener.get_host().host, listener.port)

    def connect(self, reactor, listener, factory, **kw):
        if self.kind == "unix":
            return reactor.connect_unix(listener.get_host(), factory, **kw)
        return reactor.connect_tcp(listener.get_host().host, listener.port, factory, **kw)

    def raw_socket(self) -> socket.socket:
        family = {"unix": socket.AF_UNIX, "tcp6": socket.AF_INET6, "tcp4": socket.AF_INET}[self.kind]
        return socket.socket(family, socket.SOCK_STREAM)

    def cleanup(self) -> None:
        if self._dir is not None:
            for name in os.listdir(self._dir):
                os.unlink(os.path.join(self._dir, name))
            os.rmdir(self._dir)


class Recorder(Protocol):
    """Records every callback it gets."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.data = bytearray()
        self.reason = None
        self.lost_count = 0
        self.keep_open_on_eof = False

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self):
        self.events.append("eof")
        return self.keep_open_on_eof

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, reason) -> None:
        self.events.append("lost")
        self.lost_count += 1
        self.reason = reason


class Echo(Protocol):
    """Writes back what it receives."""

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class RecordingFactory(ClientFactory):
    """Builds protocols of one class and remembers them and what happened."""

    def __init__(self, protocol=Recorder) -> None:
        self.protocol = protocol
        self.built: list = []
        self.failed = None
        self.lost = None
        self.starts = 0
        self.stops = 0

    def build_protocol(self, addr):
        p = super().build_protocol(addr)
        self.built.append(p)
        return p

    def start_factory(self) -> None:
        self.starts += 1

    def stop_factory(self) -> None:
        self.stops += 1

    def client_connection_failed(self, connector, reason) -> None:
        self.failed = reason

    def client_connection_lost(self, connector, reason) -> None:
        self.lost = reason


def server_factory(protocol=Recorder) -> RecordingFactory:
    """A factory for the server side (the same class; Factory's API is a subset)."""
    assert issubclass(RecordingFactory, Factory)
    return RecordingFactory(protocol)
