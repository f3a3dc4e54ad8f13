"""Stream transports, listeners and connectors at their edges: odd calls, raising hooks, errors."""

import errno
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time

import pytest

from reactor import Address
from reactor.errors import CancelledError, ConnectionAborted, ConnectionDone, ConnectionLost
from support import Endpoints, Recorder, RecordingFactory, run_until


@pytest.fixture(params=["tcp4", "unix"])
def ends(request):
    e = Endpoints(request.param)
    yield e
    e.cleanup()


@pytest.fixture
def short_dir():
    # UNIX socket paths are limited to about 100 bytes: keep them short.
    d = tempfile.mkdtemp(prefix="pr-")
    yield d
    shutil.rmtree(d)


def connected_pair(reactor, ends, server_protocol=Recorder, client_protocol=Recorder):
    server = RecordingFactory(server_protocol)
    client = RecordingFactory(client_protocol)
    listener = ends.listen(reactor, server)
    connector = ends.connect(reactor, listener, client)
    run_until(reactor, lambda: server.built and client.built and server.built[0].transport and client.built[0].transport)
    return listener, connector, server.built[0], client.built[0]


def finish(reactor, listener, *protocols):
    """Abort what is still open, wait for every connection_lost, close the listener."""
    for p in protocols:
        if p.transport is not None and not p.transport.is_closing():
            p.transport.abort_connection()
    run_until(reactor, lambda: all(p.lost_count for p in protocols))
    listener.close()


def stall(reader, writer, size=1 << 30):
    """Pause ``reader`` and write to ``writer`` until some of it waits in our buffer."""
    reader.transport.pause_reading()
    writer.transport.set_write_buffer_limits(high=size)
    chunk = b"s" * 65536
    sent = 0
    while writer.transport.get_write_buffer_size() == 0:
        writer.transport.write(chunk)
        sent += len(chunk)
    return sent


def stop_pool(reactor):
    if reactor._pool is not None:
        reactor._pool.stop()
        reactor._pool = None


# -- writing -------------------------------------------------------------------------


def test_empty_writes_and_writelines(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    client.transport.write(b"")
    client.transport.writelines([])
    assert client.transport.get_write_buffer_size() == 0
    client.transport.writelines([b"a", bytearray(b"b"), memoryview(b"c")])
    client.transport.writelines(iter([b"d", b"e"]))
    run_until(reactor, lambda: server.data == b"abcde")
    with pytest.raises(TypeError):
        client.transport.writelines(["text"])
    finish(reactor, listener, server, client)


def test_writes_after_lose_connection_and_after_close_are_dropped(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    sent = stall(client, server)
    server.transport.lose_connection()
    assert server.transport.is_closing() and server.transport.disconnecting
    server.transport.write(b"after lose_connection")
    server.transport.writelines([b"nor", b"this"])
    client.transport.resume_reading()
    run_until(reactor, lambda: server.lost_count and client.lost_count)
    assert client.data == b"s" * sent
    server.transport.write(b"after close")
    assert server.transport.get_write_buffer_size() == 0
    assert server.reason.check(ConnectionDone) and client.reason.check(ConnectionDone)
    listener.close()


def test_write_buffer_limits(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    t = server.transport
    assert t.get_write_buffer_limits() == (16384, 65536)
    t.set_write_buffer_limits(high=1000)
    assert t.get_write_buffer_limits() == (250, 1000)
    t.set_write_buffer_limits(low=100)
    assert t.get_write_buffer_limits() == (100, 400)
    t.set_write_buffer_limits(high=0)
    assert t.get_write_buffer_limits() == (0, 0)
    t.set_write_buffer_limits()
    assert t.get_write_buffer_limits() == (16384, 65536)
    for bad in ({"high": 10, "low": 20}, {"high": -4}, {"low": -1}):
        with pytest.raises(ValueError):
            t.set_write_buffer_limits(**bad)
        assert t.get_write_buffer_limits() == (16384, 65536)
    # Lowering the high mark below what is buffered pauses the producer at once.
    stall(client, server)
    assert "pause" not in server.events
    size = t.get_write_buffer_size()
    t.write(b"")
    assert t.get_write_buffer_size() == size
    t.set_write_buffer_limits(high=1, low=0)
    assert server.events.count("pause") == 1
    client.transport.resume_reading()
    run_until(reactor, lambda: "resume" in server.events)
    assert t.get_write_buffer_size() == 0
    finish(reactor, listener, server, client)


def test_write_eof_with_data_buffered_sends_everything_before_the_eof(reactor, ends):
    class EofRecorder(Recorder):
        def eof_received(self):
            self.data_at_eof = len(self.data)
            return super().eof_received()

    listener, connector, server, client = connected_pair(reactor, ends, client_protocol=EofRecorder)
    client.keep_open_on_eof = True
    sent = stall(client, server)
    assert server.transport.can_write_eof()
    server.transport.write_eof()
    server.transport.write_eof()
    assert server.transport.get_write_buffer_size() > 0
    client.transport.resume_reading()
    run_until(reactor, lambda: "eof" in client.events)
    assert client.data_at_eof == sent
    # The other direction is still open.
    client.transport.write(b"reply")
    run_until(reactor, lambda: server.data == b"reply")
    assert server.lost_count == 0 and client.lost_count == 0
    client.transport.lose_connection()
    run_until(reactor, lambda: server.lost_count and client.lost_count)
    assert server.reason.check(ConnectionDone) and client.reason.check(ConnectionDone)
    listener.close()


def test_write_eof_after_lose_connection_is_ignored(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    server.transport.write(b"bye")
    server.transport.lose_connection()
    server.transport.write_eof()
    run_until(reactor, lambda: server.lost_count and client.lost_count)
    assert client.data == b"bye"
    assert server.reason.check(ConnectionDone)
    listener.close()


# Regression: small writes are appended to the bytearray being sent; it is trimmed only when fully sent, so a backlog that never empties grows without bound (fixed).
def test_memory_follows_the_backlog_not_the_bytes_ever_sent(reactor, short_dir):
    import tracemalloc

    factory = RecordingFactory()
    path = os.path.join(short_dir, "stream.sock")
    listener = reactor.listen_unix(path, factory)
    raw = socket.socket(socket.AF_UNIX)
    raw.connect(path)
    run_until(reactor, lambda: factory.built and factory.built[0].transport)
    server = factory.built[0]
    t = server.transport
    t.set_write_buffer_limits(high=1 << 30)
    while t.get_write_buffer_size() == 0:
        t.write(b"f" * 65536)
    raw.setblocking(False)
    chunk = b"c" * 8192
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        # A peer that reads as fast as we write: the backlog stays small but never empties.
        for _ in range(2000):
            t.write(chunk)
            try:
                raw.recv(8192)
            except BlockingIOError:
                pass
            reactor.iterate(0)
        grown = tracemalloc.get_traced_memory()[0] - before
        backlog = t.get_write_buffer_size()
        assert backlog < 1024 * 1024
        assert grown < backlog + 2 * 1024 * 1024, f"{grown} bytes held for a backlog of {backlog} (16 MB written)"
    finally:
        tracemalloc.stop()
        raw.close()
        t.abort_connection()
        run_until(reactor, lambda: server.lost_count)
        listener.close()


# -- closing ---------------------------------------------------------------------------


def test_lose_connection_twice_gives_one_connection_lost(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    server.transport.lose_connection()
    server.transport.lose_connection()
    run_until(reactor, lambda: server.lost_count and client.lost_count)
    for _ in range(3):
        reactor.iterate(0)
    assert server.lost_count == 1 and client.lost_count == 1
    assert server.events == ["made", "lost"]
    listener.close()


def test_abort_after_lose_connection_drops_the_buffer(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    stall(client, server)
    server.transport.lose_connection()
    assert server.transport.get_write_buffer_size() > 0
    server.transport.abort_connection()
    server.transport.abort_connection()
    assert server.transport.get_write_buffer_size() == 0
    client.transport.resume_reading()
    run_until(reactor, lambda: server.lost_count and client.lost_count)
    assert server.reason.check(ConnectionAborted)
    assert server.lost_count == 1
    listener.close()


def test_pause_and_resume_reading_twice_and_while_closing(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    server.transport.pause_reading()
    server.transport.pause_reading()
    assert not server.transport.is_reading()
    client.transport.write(b"held")
    for _ in range(5):
        reactor.iterate(0.005)
    assert server.data == b""
    server.transport.resume_reading()
    server.transport.resume_reading()
    assert server.transport.is_reading()
    run_until(reactor, lambda: server.data == b"held")
    # Closing with data still buffered: reading stays off whatever is called.
    stall(client, server)
    server.transport.lose_connection()
    assert not server.transport.is_reading()
    server.transport.pause_reading()
    server.transport.resume_reading()
    assert not server.transport.is_reading()
    client.transport.write(b"too late")
    client.transport.resume_reading()
    run_until(reactor, lambda: server.lost_count and client.lost_count)
    assert server.data == b"held"
    listener.close()


def test_resume_reading_after_eof_does_not_read_again(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    server.keep_open_on_eof = True
    client.transport.write(b"last words")
    client.transport.write_eof()
    run_until(reactor, lambda: "eof" in server.events)
    assert not server.transport.is_reading()
    server.transport.pause_reading()
    server.transport.resume_reading()
    assert not server.transport.is_reading()
    server.transport.write(b"answer")
    server.transport.write_eof()
    run_until(reactor, lambda: server.lost_count and client.lost_count)
    assert server.data == b"last words" and client.data == b"answer"
    listener.close()


def test_eof_received_closing_the_transport_itself_gives_one_connection_lost(reactor, ends):
    class CloseOnEof(Recorder):
        def eof_received(self):
            super().eof_received()
            self.transport.write(b"goodbye")
            self.transport.lose_connection()
            return True  # ignored: the connection is closing already

    listener, connector, server, client = connected_pair(reactor, ends, server_protocol=CloseOnEof)
    client.keep_open_on_eof = True
    client.transport.write_eof()
    run_until(reactor, lambda: server.lost_count and client.lost_count)
    for _ in range(3):
        reactor.iterate(0)
    assert server.events == ["made", "eof", "lost"]
    assert server.reason.check(ConnectionDone)
    assert client.data == b"goodbye"
    listener.close()


def test_data_received_aborting_then_raising_gives_one_connection_lost(reactor, ends, caplog):
    class AbortThenRaise(Recorder):
        def data_received(self, data):
            self.transport.abort_connection()
            raise RuntimeError("after abort")

    listener, connector, server, client = connected_pair(reactor, ends, server_protocol=AbortThenRaise)
    client.transport.write(b"x")
    run_until(reactor, lambda: server.lost_count and client.lost_count)
    for _ in range(3):
        reactor.iterate(0)
    assert server.lost_count == 1
    assert server.reason.check(ConnectionAborted)
    assert any("after abort" in (r.exc_text or "") for r in caplog.records)
    listener.close()


def test_write_eof_after_the_peer_reset_is_harmless(reactor):
    factory = RecordingFactory()
    listener = reactor.listen_tcp(0, factory, interface="127.0.0.1")
    raw = socket.create_connection(("127.0.0.1", listener.port))
    run_until(reactor, lambda: factory.built and factory.built[0].transport)
    server = factory.built[0]
    server.transport.pause_reading()
    raw.send(b"unread")
    for _ in range(3):
        reactor.iterate(0.005)
    _vanish(raw, "tcp4")
    # shutdown() now fails with ENOTCONN: nothing to report yet...
    server.transport.write_eof()
    for _ in range(3):
        reactor.iterate(0.005)
    assert server.lost_count == 0
    # ...reading finds the reset.
    server.transport.resume_reading()
    run_until(reactor, lambda: server.lost_count)
    assert server.reason.check(ConnectionLost, ConnectionDone)
    listener.close()


# -- addresses and reprs ---------------------------------------------------------------------


def test_extra_info_and_addresses_after_close(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    t = client.transport
    assert t.get_extra_info("peername") == t.get_peer()
    assert t.get_extra_info("sockname") == t.get_host()
    assert t.get_extra_info("no such thing") is None
    assert t.get_extra_info("no such thing", 5) == 5
    if ends.kind == "unix":
        assert t.get_peer() == listener.get_host()
        assert connector.get_destination() == listener.get_host()
    else:
        assert t.get_peer() == Address("127.0.0.1", listener.port)
    t.abort_connection()
    run_until(reactor, lambda: client.lost_count and server.lost_count)
    assert t.get_host() is None
    assert t.get_peer() is None
    assert t.get_extra_info("peername") is None
    listener.close()


def test_reprs_tell_what_and_in_which_state(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    where = listener.get_host()
    assert repr(listener) == f"<Listener {where} factory=RecordingFactory>"
    assert repr(connector) == f"<Connector to {connector.get_destination()} connected>"
    t = client.transport
    assert repr(t) == f"<Connection fd={t.fileno()} open protocol=Recorder>"
    stall(server, client)
    t.lose_connection()
    assert repr(t) == f"<Connection fd={t.fileno()} closing protocol=Recorder>"
    t.abort_connection()
    assert repr(t) == f"<Connection fd={t.fileno()} closed protocol=Recorder>"
    run_until(reactor, lambda: client.lost_count)
    assert repr(connector) == f"<Connector to {connector.get_destination()} disconnected>"
    server.transport.resume_reading()
    run_until(reactor, lambda: server.lost_count)
    listener.close()
    assert repr(listener) == "<Listener closed factory=RecordingFactory>"


# -- the peer goes away -------------------------------------------------------------------------


def _vanish(raw, kind):
    """Close ``raw`` so that our next send fails (RST for TCP, EPIPE for UNIX)."""
    if kind != "unix":
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()


def test_peer_vanishing_while_data_is_buffered_gives_connection_lost(reactor, ends):
    factory = RecordingFactory()
    listener = ends.listen(reactor, factory)
    raw = ends.raw_socket()
    raw.connect(ends.address(listener))
    run_until(reactor, lambda: factory.built and factory.built[0].transport)
    server = factory.built[0]
    # Only the write side can notice: reading is paused.
    server.transport.pause_reading()
    server.transport.set_write_buffer_limits(high=1 << 30)
    while server.transport.get_write_buffer_size() == 0:
        server.transport.write(b"w" * 65536)
    _vanish(raw, ends.kind)
    run_until(reactor, lambda: server.lost_count)
    assert server.reason.check(ConnectionLost)
    assert isinstance(server.reason.value.__cause__, OSError)
    assert server.transport.get_write_buffer_size() == 0
    listener.close()


def test_write_to_a_vanished_peer_fails_later_not_in_write(reactor, ends):
    factory = RecordingFactory()
    listener = ends.listen(reactor, factory)
    raw = ends.raw_socket()
    raw.connect(ends.address(listener))
    run_until(reactor, lambda: factory.built and factory.built[0].transport)
    server = factory.built[0]
    server.transport.pause_reading()
    raw.send(b"unread")  # unread data makes the close a reset
    for _ in range(3):
        reactor.iterate(0.005)
    _vanish(raw, ends.kind)
    server.transport.write(b"into the void")
    server.transport.write(b"and more")  # the transport is closed now: dropped
    assert server.lost_count == 0  # connection_lost comes on a later pass
    run_until(reactor, lambda: server.lost_count)
    assert server.reason.check(ConnectionLost)
    assert isinstance(server.reason.value.__cause__, OSError)
    listener.close()


def test_urgent_data_neither_reaches_the_protocol_nor_breaks_the_connection(reactor):
    factory = RecordingFactory()
    listener = reactor.listen_tcp(0, factory, interface="127.0.0.1")
    raw = socket.create_connection(("127.0.0.1", listener.port))
    try:
        run_until(reactor, lambda: factory.built and factory.built[0].transport)
        server = factory.built[0]
        # The socket polls readable (POLLPRI, or select's exceptional set)
        # while recv() has nothing for us.
        raw.send(b"!", socket.MSG_OOB)
        for _ in range(5):
            reactor.iterate(0.01)
        assert server.lost_count == 0
        raw.sendall(b"normal data")
        run_until(reactor, lambda: server.data == b"normal data")
        assert server.lost_count == 0
    finally:
        raw.close()
    run_until(reactor, lambda: factory.built[0].lost_count)
    listener.close()


# -- protocol callbacks that raise --------------------------------------------------------------


def test_pause_and_resume_writing_raising_are_logged_and_the_data_flows(reactor, ends, caplog):
    class Touchy(Recorder):
        def pause_writing(self):
            super().pause_writing()
            raise RuntimeError("pause_writing bug")

        def resume_writing(self):
            super().resume_writing()
            raise RuntimeError("resume_writing bug")

    listener, connector, server, client = connected_pair(reactor, ends, server_protocol=Touchy)
    client.transport.pause_reading()
    server.transport.set_write_buffer_limits(high=65536)
    total = 0
    while "pause" not in server.events:
        server.transport.write(b"p" * 16384)
        total += 16384
    client.transport.resume_reading()
    run_until(reactor, lambda: "resume" in server.events and len(client.data) == total)
    assert server.lost_count == 0 and client.lost_count == 0
    text = "\n".join((r.getMessage() + (r.exc_text or "")) for r in caplog.records)
    assert "pause_writing bug" in text and "resume_writing bug" in text
    finish(reactor, listener, server, client)


def test_connection_lost_raising_is_logged_and_the_connector_still_hears(reactor, ends, caplog):
    class BadLoser(Recorder):
        def connection_lost(self, reason):
            super().connection_lost(reason)
            raise RuntimeError("connection_lost bug")

    listener, connector, server, client = connected_pair(reactor, ends, client_protocol=BadLoser)
    server.transport.lose_connection()
    run_until(reactor, lambda: client.lost_count and server.lost_count)
    run_until(reactor, lambda: client.factory.lost is not None)
    assert client.factory.lost.check(ConnectionDone)
    assert connector.state == "disconnected"
    assert any("connection_lost bug" in (r.exc_text or "") for r in caplog.records)
    listener.close()


def test_eof_received_raising_closes_with_connection_lost(reactor, ends, caplog):
    class BadEof(Recorder):
        def eof_received(self):
            raise RuntimeError("eof_received bug")

    listener, connector, server, client = connected_pair(reactor, ends, server_protocol=BadEof)
    client.keep_open_on_eof = True
    client.transport.write(b"data")
    client.transport.write_eof()
    run_until(reactor, lambda: server.lost_count and client.lost_count)
    assert server.data == b"data"
    assert server.reason.check(ConnectionLost)
    assert isinstance(server.reason.value.__cause__, RuntimeError)
    assert any("eof_received bug" in (r.exc_text or "") for r in caplog.records)
    listener.close()


# -- factories -----------------------------------------------------------------------------------


class PickyFactory(RecordingFactory):
    """Refuses its first connection: by raising, or by returning None."""

    def __init__(self, mode):
        super().__init__()
        self.mode = mode
        self.refused = 0

    def build_protocol(self, addr):
        if self.refused == 0:
            self.refused += 1
            if self.mode == "raise":
                raise RuntimeError("build_protocol bug")
            return None
        return super().build_protocol(addr)


@pytest.mark.parametrize("mode", ["raise", "none"])
def test_server_build_protocol_refusing_drops_only_that_connection(reactor, ends, caplog, mode):
    server = PickyFactory(mode)
    listener = ends.listen(reactor, server)
    first = RecordingFactory()
    ends.connect(reactor, listener, first)
    run_until(reactor, lambda: first.built and first.built[0].lost_count)
    assert first.built[0].reason.check(ConnectionDone, ConnectionLost)
    second = RecordingFactory()
    ends.connect(reactor, listener, second)
    run_until(reactor, lambda: server.built and second.built and second.built[0].transport)
    second.built[0].transport.write(b"served")
    run_until(reactor, lambda: server.built[0].data == b"served")
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    if mode == "raise":
        assert any("build_protocol bug" in (r.exc_text or "") for r in errors)
    else:
        assert errors == []
    finish(reactor, listener, server.built[0], second.built[0])


@pytest.mark.parametrize("mode", ["raise", "none"])
def test_client_build_protocol_refusing_fails_the_connection(reactor, ends, caplog, mode):
    server = RecordingFactory()
    listener = ends.listen(reactor, server)
    client = PickyFactory(mode)
    connector = ends.connect(reactor, listener, client)
    run_until(reactor, lambda: client.failed is not None)
    assert connector.state == "disconnected"
    assert client.built == []
    if mode == "raise":
        assert client.failed.check(RuntimeError) and "build_protocol bug" in str(client.failed.value)
    else:
        assert client.failed.check(RuntimeError) and "None" in str(client.failed.value)
    # The server saw the socket come and go.
    run_until(reactor, lambda: server.built and server.built[0].lost_count)
    # The connector can try again, and this time the factory takes it.
    connector.connect()
    run_until(reactor, lambda: client.built and client.built[0].transport)
    run_until(reactor, lambda: len(server.built) == 2)
    finish(reactor, listener, client.built[0], server.built[1])


def test_factory_hooks_that_raise_are_logged_and_not_fatal(reactor, ends, caplog):
    class Grumpy(RecordingFactory):
        def stop_factory(self):
            raise RuntimeError("stop_factory bug")

        def started_connecting(self, connector):
            raise RuntimeError("started_connecting bug")

        def client_connection_lost(self, connector, reason):
            raise RuntimeError("client_connection_lost bug")

    class BadStart(RecordingFactory):
        def start_factory(self):
            raise RuntimeError("start_factory bug")

    server = Grumpy()
    listener = ends.listen(reactor, server)
    client = Grumpy()
    connector = ends.connect(reactor, listener, client)
    run_until(reactor, lambda: client.built and server.built and client.built[0].transport)
    connector.disconnect()
    run_until(reactor, lambda: client.built[0].lost_count and server.built[0].lost_count)
    assert connector.state == "disconnected"
    listener.close()
    # A listener whose factory fails to start still serves.
    bad_start = BadStart()
    other = ends.listen(reactor, bad_start)
    late = RecordingFactory()
    ends.connect(reactor, other, late)
    run_until(reactor, lambda: bad_start.built and late.built and late.built[0].transport)
    finish(reactor, other, bad_start.built[0], late.built[0])
    text = "\n".join(r.exc_text or "" for r in caplog.records)
    for hook in ("start_factory", "stop_factory", "started_connecting", "client_connection_lost"):
        assert f"{hook} bug" in text


def test_duck_typed_factories_need_only_build_protocol(reactor, ends):
    class Minimal:
        def __init__(self):
            self.built = []

        def build_protocol(self, addr):
            p = Recorder()
            self.built.append(p)
            return p

    server, client = Minimal(), Minimal()
    listener = ends.listen(reactor, server)
    connector = ends.connect(reactor, listener, client)
    run_until(reactor, lambda: server.built and client.built and client.built[0].transport)
    client.built[0].transport.write(b"duck")
    run_until(reactor, lambda: server.built[0].data == b"duck")
    connector.disconnect()
    run_until(reactor, lambda: server.built[0].lost_count and client.built[0].lost_count)
    listener.close()


# -- connectors --------------------------------------------------------------------------------


def test_started_connecting_may_stop_connecting(reactor, ends):
    class Changes(RecordingFactory):
        def started_connecting(self, connector):
            connector.stop_connecting()

    server = RecordingFactory()
    listener = ends.listen(reactor, server)
    client = Changes()
    connector = ends.connect(reactor, listener, client)
    assert connector.state == "disconnected"
    assert client.failed.check(CancelledError)
    for _ in range(5):
        reactor.iterate(0.005)
    assert client.built == [] and server.built == []
    listener.close()


def test_disconnect_while_connecting_stops_and_when_disconnected_does_nothing(reactor, ends):
    server = RecordingFactory()
    listener = ends.listen(reactor, server)
    client = RecordingFactory()
    connector = ends.connect(reactor, listener, client)
    assert connector.state == "connecting"
    connector.disconnect()
    assert connector.state == "disconnected"
    assert client.failed.check(CancelledError)
    connector.disconnect()
    assert connector.state == "disconnected"
    for _ in range(5):
        reactor.iterate(0.005)
    assert client.built == []
    # The kernel may have completed the handshake: the server then sees the socket close.
    run_until(reactor, lambda: all(p.lost_count for p in server.built))
    listener.close()


def test_connect_is_refused_unless_disconnected(reactor, ends):
    server = RecordingFactory()
    listener = ends.listen(reactor, server)
    client = RecordingFactory()
    connector = ends.connect(reactor, listener, client)
    if connector.state == "connecting":
        with pytest.raises(RuntimeError, match="connecting"):
            connector.connect()
    run_until(reactor, lambda: client.built and client.built[0].transport and server.built)
    with pytest.raises(RuntimeError, match="connected"):
        connector.connect()
    assert len(client.built) == 1
    finish(reactor, listener, client.built[0], server.built[0])


def test_bind_address_sets_the_local_end(reactor):
    server = RecordingFactory()
    listener = reactor.listen_tcp(0, server, interface="127.0.0.1")
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    client = RecordingFactory()
    reactor.connect_tcp("127.0.0.1", listener.port, client, bind_address=("127.0.0.1", port))
    run_until(reactor, lambda: server.built and server.built[0].transport and client.built)
    assert server.built[0].transport.get_peer() == Address("127.0.0.1", port)
    # A local address someone else holds: the attempt fails, and says why.
    failing = RecordingFactory()
    reactor.connect_tcp("127.0.0.1", listener.port, failing, bind_address=("127.0.0.1", listener.port))
    run_until(reactor, lambda: failing.failed is not None)
    assert failing.failed.value.errno == errno.EADDRINUSE
    finish(reactor, listener, server.built[0], client.built[0])


def _fake_resolver(monkeypatch, results):
    calls = []

    def getaddrinfo(host, port, *args):
        calls.append(host)
        return [(family, socket.SOCK_STREAM, 0, "", address) for family, address in results(port)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


BOGUS_FAMILY = 12345  # socket() fails with EAFNOSUPPORT


def test_each_resolved_address_is_tried_in_turn(reactor, monkeypatch):
    server = RecordingFactory()
    listener = reactor.listen_tcp(0, server, interface="127.0.0.1")
    calls = _fake_resolver(monkeypatch, lambda port: [
        (BOGUS_FAMILY, ("127.0.0.1", port)),     # no socket for this family
        (socket.AF_INET, ("127.0.0.2", port)),   # nobody listens there: refused
        (socket.AF_INET, ("127.0.0.1", port)),   # the listener
    ])
    client = RecordingFactory()
    connector = reactor.connect_tcp("several.example", listener.port, client)
    run_until(reactor, lambda: client.built and client.built[0].transport or client.failed)
    assert client.failed is None
    assert calls == ["several.example"]
    assert connector.get_destination() == Address("several.example", listener.port)
    assert client.built[0].transport.get_peer() == Address("127.0.0.1", listener.port)
    run_until(reactor, lambda: server.built)
    assert len(server.built) == 1
    finish(reactor, listener, server.built[0], client.built[0])
    stop_pool(reactor)


@pytest.mark.parametrize("results, expected", [
    (lambda port: [(socket.AF_INET, ("127.0.0.2", port))], ConnectionRefusedError),
    (lambda port: [(BOGUS_FAMILY, ("127.0.0.1", port))], OSError),
    (lambda port: [], OSError),
], ids=["refused", "no-socket", "no-address"])
def test_when_every_address_fails_the_last_error_is_reported(reactor, monkeypatch, results, expected):
    _fake_resolver(monkeypatch, results)
    client = RecordingFactory()
    connector = reactor.connect_tcp("nowhere.example", 9, client)
    run_until(reactor, lambda: client.failed is not None)
    assert client.failed.check(expected)
    assert connector.state == "disconnected"
    stop_pool(reactor)


class CountingFactory(RecordingFactory):
    """Also keeps every client_connection_failed reason."""

    def __init__(self):
        super().__init__()
        self.failures = []

    def client_connection_failed(self, connector, reason):
        super().client_connection_failed(connector, reason)
        self.failures.append(reason)


def _held_resolver(monkeypatch, *answers):
    """A getaddrinfo that waits until released, then gives the next answer (an exception is raised)."""
    release = threading.Event()
    calls = []
    answers = list(answers)

    def getaddrinfo(host, port, *args):
        answer = answers.pop(0)
        calls.append(host)
        release.wait(5)
        if isinstance(answer, Exception):
            raise answer
        return [(socket.AF_INET, socket.SOCK_STREAM, 0, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls, release


NOT_FOUND = socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize("answer", ["address", "error"])
def test_stop_connecting_while_resolving_ignores_the_answer(reactor, monkeypatch, answer):
    calls, release = _held_resolver(monkeypatch, "127.0.0.1" if answer == "address" else NOT_FOUND)
    server = RecordingFactory()
    listener = reactor.listen_tcp(0, server, interface="127.0.0.1")
    client = CountingFactory()
    connector = reactor.connect_tcp("held.example", listener.port, client)
    run_until(reactor, lambda: calls)  # the lookup is under way
    connector.stop_connecting()
    release.set()
    stop_pool(reactor)  # the answer now waits for the next pass
    for _ in range(5):
        reactor.iterate(0.01)
    assert [f.type for f in client.failures] == [CancelledError]
    assert client.built == [] and server.built == []
    assert connector.state == "disconnected"
    listener.close()


# Regression: a lookup from an abandoned attempt is used by the next connect(): the connector connects twice (fixed).
@pytest.mark.parametrize("stale", ["address", "error"])
def test_a_stale_lookup_does_not_make_a_second_connection(reactor, monkeypatch, stale):
    calls, release = _held_resolver(monkeypatch, "127.0.0.1" if stale == "address" else NOT_FOUND, "127.0.0.1")
    server = RecordingFactory()
    listener = reactor.listen_tcp(0, server, interface="127.0.0.1")
    client = CountingFactory()
    connector = reactor.connect_tcp("slow.example", listener.port, client)
    run_until(reactor, lambda: calls)  # the first lookup is under way
    # Given up, then retried at once (a timeout and a reconnecting factory do the same).
    connector.stop_connecting()
    connector.connect()
    run_until(reactor, lambda: len(calls) == 2)
    release.set()
    stop_pool(reactor)  # both answers now wait for the next pass
    try:
        run_until(reactor, lambda: client.built and server.built)
        for _ in range(10):
            reactor.iterate(0.01)
        assert len(client.built) == 1
        assert len(server.built) == 1
        # Only the stop_connecting() was reported: the stale answer, good or bad, was dropped.
        assert [f.type for f in client.failures] == [CancelledError]
        assert connector.state == "connected"
    finally:
        for p in client.built + server.built:
            if p.transport is not None:
                p.transport.abort_connection()
        run_until(reactor, lambda: all(p.lost_count for p in client.built + server.built))
        listener.close()
        stop_pool(reactor)


def test_stop_connecting_after_the_kernel_connected_but_before_the_protocol_heard(reactor, short_dir):
    path = os.path.join(short_dir, "quick.sock")
    server = RecordingFactory()
    listener = reactor.listen_unix(path, server)
    client = CountingFactory()
    connector = reactor.connect_unix(path, client)
    # The attempt starts on the next pass, and a UNIX connect completes at
    # once; the protocol would hear of it on the pass after.
    reactor.iterate(0)
    assert connector.state == "connecting"
    connector.stop_connecting()
    for _ in range(5):
        reactor.iterate(0.005)
    assert client.built == []
    assert [f.type for f in client.failures] == [CancelledError]
    run_until(reactor, lambda: all(p.lost_count for p in server.built))
    listener.close()


@pytest.mark.parametrize("how", ["unix-missing-path", "tcp-bind-address-in-use"])
# Regression: a connect that fails at once calls client_connection_failed inside connect_*(), before it returns (fixed).
def test_client_connection_failed_never_runs_inside_connect(reactor, short_dir, how):
    class Retrying(RecordingFactory):
        # Reconnecting at once from the hook would recurse without bound.
        def client_connection_failed(self, connector, reason):
            self.failed = reason
            self.failed_inside_connect = not returned

    returned = False
    client = Retrying()
    if how == "unix-missing-path":
        reactor.connect_unix(os.path.join(short_dir, "nobody.sock"), client)
    else:
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        try:
            reactor.connect_tcp("127.0.0.1", 9, client, bind_address=holder.getsockname())
        finally:
            holder.close()
    returned = True
    run_until(reactor, lambda: client.failed is not None)
    assert client.failed_inside_connect is False


# -- listeners: accept errors -------------------------------------------------------------------


class FlakyAccept:
    """Stands in for a listener's socket; its accept() raises the given errors first."""

    def __init__(self, real, errors):
        self.real = real
        self.errors = list(errors)
        self.calls = []

    def accept(self):
        self.calls.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)
        return self.real.accept()

    def __getattr__(self, name):
        return getattr(self.real, name)


def raw_client(ends, listener):
    """A plain blocking socket connected to ``listener`` (queued until accepted)."""
    raw = ends.raw_socket()
    raw.connect(ends.address(listener))
    return raw


@pytest.mark.parametrize("err", [errno.EMFILE, errno.ENOBUFS])
def test_out_of_resources_pauses_accepting_then_resumes(reactor, ends, caplog, err):
    server = RecordingFactory()
    listener = ends.listen(reactor, server)
    listener.accept_pause = 0.05
    flaky = listener.socket = FlakyAccept(listener.socket, [OSError(err, os.strerror(err))])
    raw = raw_client(ends, listener)
    try:
        run_until(reactor, lambda: flaky.calls)
        failed_at = flaky.calls[0]
        assert listener not in reactor.get_readers()
        run_until(reactor, lambda: server.built and server.built[0].transport)
        # No accept() while paused: the loop did not spin on the readable socket.
        assert all(t - failed_at >= 0.05 for t in flaky.calls[1:])
        assert listener in reactor.get_readers()
    finally:
        raw.close()
    run_until(reactor, lambda: server.built[0].lost_count)
    listener.close()
    assert any("pausing accepts" in r.getMessage() for r in caplog.records)


def test_closing_a_paused_listener_cancels_the_resume(reactor, ends, caplog):
    server = RecordingFactory()
    listener = ends.listen(reactor, server)
    flaky = listener.socket = FlakyAccept(listener.socket, [OSError(errno.EMFILE, "Too many open files")])
    raw = raw_client(ends, listener)
    run_until(reactor, lambda: flaky.calls)
    assert reactor.get_delayed_calls() != []
    listener.close()
    raw.close()
    assert reactor.get_delayed_calls() == []
    assert server.built == []


@pytest.mark.parametrize("err", [errno.ECONNABORTED, errno.EPROTO])
def test_a_connection_aborted_before_accept_is_logged_and_skipped(reactor, ends, caplog, err):
    server = RecordingFactory()
    listener = ends.listen(reactor, server)
    listener.socket = FlakyAccept(listener.socket, [OSError(err, os.strerror(err))])
    raw = raw_client(ends, listener)
    run_until(reactor, lambda: server.built and server.built[0].transport)
    raw.close()
    run_until(reactor, lambda: server.built[0].lost_count)
    listener.close()
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "accept()" in r.getMessage()]
    assert len(warnings) == 1
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_an_unexpected_exception_while_accepting_keeps_the_listener_listening(reactor, ends, caplog):
    server = RecordingFactory()
    listener = ends.listen(reactor, server)
    listener.socket = FlakyAccept(listener.socket, [RuntimeError("accept bug")])
    raw = raw_client(ends, listener)
    run_until(reactor, lambda: server.built and server.built[0].transport)
    raw.close()
    run_until(reactor, lambda: server.built[0].lost_count)
    listener.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("still listening" in m for m in messages), messages


def test_accepts_per_pass_bounds_one_pass(reactor, ends):
    server = RecordingFactory()
    listener = ends.listen(reactor, server)
    listener.accepts_per_pass = 2
    raws = [raw_client(ends, listener) for _ in range(5)]
    try:
        while not server.built:
            reactor.iterate(1.0)
        assert len(server.built) == 2
        run_until(reactor, lambda: len(server.built) == 5)
    finally:
        for raw in raws:
            raw.close()
    run_until(reactor, lambda: all(p.lost_count for p in server.built))
    listener.close()


# Regression: Listener.on_read goes on calling accept() after a protocol closed the listener: a spurious EBADF error is logged (fixed).
def test_closing_the_listener_from_connection_made_is_quiet(reactor, ends, caplog):
    class OneShot(Recorder):
        def connection_made(self, transport):
            super().connection_made(transport)
            listener.close()  # serve this one connection, then stop listening
            transport.write(b"only you")
            transport.lose_connection()

    server = RecordingFactory(OneShot)
    listener = ends.listen(reactor, server)
    raw = raw_client(ends, listener)
    try:
        run_until(reactor, lambda: server.built and server.built[0].lost_count)
        assert raw.recv(100) == b"only you"
    finally:
        raw.close()
    assert server.stops == 1
    noise = [r.getMessage() for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    assert noise == []


@pytest.mark.parametrize("name", ["select", "poll"])
# Regression: Listener.on_read treats every non-resource accept error as per-connection: a dead socket spins the loop, 64 warnings a pass (fixed).
def test_a_listener_whose_socket_died_does_not_spin(name, caplog):
    from reactor import Reactor

    with Reactor(name) as r:
        listener = r.listen_tcp(0, RecordingFactory(), interface="127.0.0.1")
        try:
            listener.socket.close()  # behind the listener's back: accept() now fails with EBADF
            passes = 0
            deadline = time.monotonic() + 0.2
            while time.monotonic() < deadline:
                r.iterate(0.05)
                passes += 1
            warnings = [rec for rec in caplog.records if "accept()" in rec.getMessage()]
            assert passes < 50 and len(warnings) < 50, f"{passes} passes and {len(warnings)} warnings in 0.2 s"
        finally:
            listener.close()
            r.remove_all()


# -- listeners: binding ---------------------------------------------------------------------


def test_a_port_in_use_raises_and_leaks_nothing(reactor):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    factory = RecordingFactory()
    try:
        with pytest.raises(OSError) as info:
            reactor.listen_tcp(holder.getsockname()[1], factory, interface="127.0.0.1")
        assert info.value.errno == errno.EADDRINUSE
        assert reactor.get_readers() == []
        assert factory.starts == 0
    finally:
        holder.close()


def test_reuse_port_lets_two_listeners_share_a_port(reactor):
    first_factory, second_factory = RecordingFactory(), RecordingFactory()
    first = reactor.listen_tcp(0, first_factory, interface="127.0.0.1", reuse_port=True)
    second = reactor.listen_tcp(first.port, second_factory, interface="127.0.0.1", reuse_port=True)
    assert second.port == first.port
    client = RecordingFactory()
    reactor.connect_tcp("127.0.0.1", first.port, client)
    run_until(reactor, lambda: client.built and (first_factory.built or second_factory.built))
    served = (first_factory.built + second_factory.built)[0]
    run_until(reactor, lambda: served.transport is not None)
    finish(reactor, first, served, client.built[0])
    second.close()


# -- UNIX socket files ------------------------------------------------------------------------


def test_a_stale_socket_file_is_replaced(reactor, short_dir):
    path = os.path.join(short_dir, "stale.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.close()  # the file stays behind, as after a crash
    server = RecordingFactory()
    listener = reactor.listen_unix(path, server)
    client = RecordingFactory()
    reactor.connect_unix(path, client)
    run_until(reactor, lambda: server.built and client.built and client.built[0].transport)
    assert listener.get_host() == path and listener.port == 0
    finish(reactor, listener, server.built[0], client.built[0])
    assert not os.path.exists(path)


def test_a_regular_file_at_the_path_is_never_removed(reactor, short_dir):
    path = os.path.join(short_dir, "data.txt")
    with open(path, "w") as f:
        f.write("precious")
    with pytest.raises(OSError) as info:
        reactor.listen_unix(path, RecordingFactory())
    assert info.value.errno == errno.EADDRINUSE
    with open(path) as f:
        assert f.read() == "precious"


def test_closing_removes_only_our_own_socket_file(reactor, short_dir):
    path = os.path.join(short_dir, "shared.sock")
    first = reactor.listen_unix(path, RecordingFactory())
    second_factory = RecordingFactory()
    second = reactor.listen_unix(path, second_factory)  # takes the path over
    first.close()
    assert os.path.exists(path)
    client = RecordingFactory()
    reactor.connect_unix(path, client)
    run_until(reactor, lambda: second_factory.built and client.built and client.built[0].transport)
    finish(reactor, second, second_factory.built[0], client.built[0])
    assert not os.path.exists(path)


def test_closing_when_the_file_is_already_gone(reactor, short_dir):
    path = os.path.join(short_dir, "gone.sock")
    listener = reactor.listen_unix(path, RecordingFactory())
    os.unlink(path)
    listener.close()
    assert not os.path.exists(path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract UNIX sockets are Linux-only")
def test_connecting_to_an_abstract_unix_address(reactor):
    path = f"\0pyreactor-connect-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    client = RecordingFactory()
    try:
        reactor.connect_unix(path, client)
        run_until(reactor, lambda: client.built and client.built[0].transport)
        conn, _ = server.accept()
        # The kernel names abstract addresses in bytes; we give the str back.
        assert client.built[0].transport.get_peer() == path
        conn.sendall(b"abstract")
        run_until(reactor, lambda: client.built[0].data == b"abstract")
        conn.close()
        run_until(reactor, lambda: client.built[0].lost_count)
    finally:
        server.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract UNIX sockets are Linux-only")
# Regression: listen_unix os.stat()s the path, which fails with ValueError for an abstract (NUL-led) address (fixed).
def test_an_abstract_unix_address_works(reactor):
    path = f"\0pyreactor-test-{os.getpid()}"
    server = RecordingFactory()
    listener = reactor.listen_unix(path, server)
    client = RecordingFactory()
    reactor.connect_unix(path, client)
    run_until(reactor, lambda: server.built and client.built and client.built[0].transport)
    finish(reactor, listener, server.built[0], client.built[0])
