"""TCP (IPv4, IPv6) and UNIX stream transports on every multiplexer."""

import hashlib
import os
import socket
import struct
import subprocess
import sys
import textwrap

import pytest

from protocols import Protocol, ReconnectingClientFactory
from reactor.errors import CancelledError, ConnectionAborted, ConnectionDone, ConnectionLost, NotConnectingError
from support import Echo, Endpoints, Recorder, RecordingFactory, has_ipv6, run_until

KINDS = ["tcp4", "unix"] + (["tcp6"] if has_ipv6() else [])


@pytest.fixture(params=KINDS)
def ends(request):
    e = Endpoints(request.param)
    yield e
    e.cleanup()


def connected_pair(reactor, ends, server_protocol=Recorder, client_protocol=Recorder, **listen_kw):
    server = RecordingFactory(server_protocol)
    client = RecordingFactory(client_protocol)
    listener = ends.listen(reactor, server, **listen_kw)
    connector = ends.connect(reactor, listener, client)
    run_until(reactor, lambda: server.built and client.built and server.built[0].transport and client.built[0].transport)
    return listener, connector, server.built[0], client.built[0]


def close_all(reactor, listener, *protocols):
    for p in protocols:
        if p.transport is not None and not p.transport.is_closing():
            p.transport.abort_connection()
    run_until(reactor, lambda: all(p.lost_count for p in protocols if hasattr(p, "lost_count")))
    listener.close()


def test_connect_exchange_and_clean_close_from_client(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    assert server.events == ["made"] and client.events == ["made"]
    client.transport.write(b"hello ")
    client.transport.write(bytearray(b"server"))
    run_until(reactor, lambda: server.data == b"hello server")
    server.transport.write(memoryview(b"hi client"))
    run_until(reactor, lambda: client.data == b"hi client")
    client.transport.lose_connection()
    run_until(reactor, lambda: server.lost_count and client.lost_count)
    reactor.iterate(0)
    assert server.events == ["made", "eof", "lost"]
    assert client.events == ["made", "lost"]
    assert server.lost_count == client.lost_count == 1
    assert server.reason.check(ConnectionDone)
    assert client.reason.check(ConnectionDone)
    assert connector.state == "disconnected"
    listener.close()


def test_clean_close_from_server(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    server.transport.write(b"bye")
    server.transport.lose_connection()
    run_until(reactor, lambda: server.lost_count and client.lost_count)
    assert client.data == b"bye"
    assert client.reason.check(ConnectionDone) and server.reason.check(ConnectionDone)
    assert client.lost_count == server.lost_count == 1
    listener.close()


def test_peer_reset_gives_connection_lost(reactor, ends):
    server_factory = RecordingFactory()
    listener = ends.listen(reactor, server_factory)
    raw = ends.raw_socket()
    raw.connect(ends.address(listener))
    run_until(reactor, lambda: server_factory.built)
    server = server_factory.built[0]
    server.transport.write(b"x" * 1000)
    if ends.kind != "unix":
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # Closing with unread data resets the connection (RST for TCP, ECONNRESET for UNIX).
    run_until(reactor, lambda: True)
    raw.close()
    run_until(reactor, lambda: server.lost_count)
    assert server.reason.check(ConnectionLost), server.reason
    assert isinstance(server.reason.value.__cause__, OSError)
    listener.close()


def test_abort_connection_drops_the_buffer_and_reports_aborted(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    client.transport.pause_reading()
    server.transport.write(b"z" * (8 * 1024 * 1024))
    assert server.transport.get_write_buffer_size() > 0
    server.transport.abort_connection()
    assert server.transport.get_write_buffer_size() == 0
    assert server.transport.is_closing()
    client.transport.resume_reading()
    run_until(reactor, lambda: server.lost_count and client.lost_count)
    assert server.reason.check(ConnectionAborted)
    assert client.reason.check(ConnectionDone, ConnectionLost)
    assert len(client.data) < 8 * 1024 * 1024
    listener.close()


def test_write_rejects_str(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    with pytest.raises(TypeError, match="str"):
        client.transport.write("text")
    with pytest.raises(TypeError):
        client.transport.write(12)
    close_all(reactor, listener, server, client)


def test_connect_refused(reactor, ends):
    factory = RecordingFactory()
    if ends.kind == "unix":
        # A socket file nobody listens on.
        path = os.path.join(ends._dir, "dead.sock")
        dead = socket.socket(socket.AF_UNIX)
        dead.bind(path)
        dead.close()
        reactor.connect_unix(path, factory)
    else:
        probe = ends.raw_socket()
        probe.bind(("::1" if ends.kind == "tcp6" else "127.0.0.1", 0))
        host, port = probe.getsockname()[:2]
        probe.close()
        reactor.connect_tcp(host, port, factory)
    run_until(reactor, lambda: factory.failed is not None)
    assert factory.failed.check(ConnectionRefusedError)
    assert factory.built == []


def test_connect_timeout_against_a_full_backlog(reactor):
    listener_sock = socket.socket()
    listener_sock.bind(("127.0.0.1", 0))
    listener_sock.listen(0)
    addr = listener_sock.getsockname()
    fillers = []
    try:
        # Fill the accept queue; then further SYNs are dropped and a connect hangs.
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(addr)
            fillers.append(s)
        factory = RecordingFactory()
        reactor.connect_tcp(addr[0], addr[1], factory, timeout=0.3)
        run_until(reactor, lambda: factory.failed is not None)
        assert factory.failed.check(TimeoutError)
    finally:
        for s in fillers:
            s.close()
        listener_sock.close()


def test_resolving_a_name_happens_off_the_loop(reactor):
    server = RecordingFactory()
    listener = reactor.listen_tcp(0, server, interface="127.0.0.1")
    client = RecordingFactory()
    connector = reactor.connect_tcp("localhost", listener.port, client)
    run_until(reactor, lambda: client.built and client.built[0].transport or client.failed)
    if client.failed is not None:
        pytest.skip(f"localhost does not resolve to 127.0.0.1 here: {client.failed.value}")
    assert reactor._pool is not None and reactor._pool.statistics()["threads"] >= 1
    assert connector.get_destination().port == listener.port
    run_until(reactor, lambda: server.built)
    close_all(reactor, listener, server.built[0], client.built[0])
    reactor._pool.stop()
    reactor._pool = None


def test_unresolvable_name_reaches_client_connection_failed(reactor):
    client = RecordingFactory()
    reactor.connect_tcp("no-such-host.invalid", 80, client, timeout=10)
    run_until(reactor, lambda: client.failed is not None)
    assert client.failed.check(OSError)
    reactor._pool.stop()
    reactor._pool = None


def test_fifty_megabytes_to_a_slow_reader_then_lose_connection(reactor, ends):
    payload = os.urandom(1024 * 1024) * 50
    digest = hashlib.sha256(payload).hexdigest()

    class SlowReader(Recorder):
        def data_received(self, data):
            super().data_received(data)
            self.transport.pause_reading()
            reactor.call_later(0.0005, self.transport.resume_reading)

    listener, connector, server, client = connected_pair(reactor, ends, client_protocol=SlowReader)
    server.transport.write(payload)
    server.transport.lose_connection()
    run_until(reactor, lambda: client.lost_count, timeout=60)
    assert len(client.data) == len(payload)
    assert hashlib.sha256(client.data).hexdigest() == digest
    assert client.reason.check(ConnectionDone)
    run_until(reactor, lambda: server.lost_count)
    assert server.reason.check(ConnectionDone)
    listener.close()


def test_pause_and_resume_writing_at_the_marks(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    client.transport.pause_reading()
    server.transport.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
    chunk = b"w" * 16384
    while "pause" not in server.events:
        server.transport.write(chunk)
        # Stop once the kernel buffers are full and ours grows past the mark.
        assert server.transport.get_write_buffer_size() <= 64 * 1024 + len(chunk)
    assert server.transport.get_write_buffer_size() > 64 * 1024
    client.transport.resume_reading()
    run_until(reactor, lambda: "resume" in server.events)
    assert server.transport.get_write_buffer_size() <= 16 * 1024
    assert server.events.count("pause") == 1 and server.events.count("resume") == 1
    close_all(reactor, listener, server, client)


def test_pause_reading_stops_data_until_resume(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    server.transport.pause_reading()
    assert not server.transport.is_reading()
    client.transport.write(b"held back")
    # Give the loop many chances to (wrongly) deliver the data.
    for _ in range(20):
        reactor.iterate(0.005)
    assert server.data == b""
    server.transport.resume_reading()
    run_until(reactor, lambda: server.data == b"held back")
    close_all(reactor, listener, server, client)


@pytest.mark.parametrize("closer", ["client", "server"])
def test_half_close_both_directions(reactor, ends, closer):
    listener, connector, server, client = connected_pair(reactor, ends)
    first, second = (client, server) if closer == "client" else (server, client)
    second.keep_open_on_eof = True
    first.transport.write(b"request")
    first.transport.write_eof()
    with pytest.raises(RuntimeError):
        first.transport.write(b"too late")
    run_until(reactor, lambda: "eof" in second.events)
    assert second.data == b"request"
    # The other direction still works after the half-close.
    second.transport.write(b"response")
    run_until(reactor, lambda: first.data == b"response")
    assert second.lost_count == 0 and first.lost_count == 0
    second.transport.write_eof()
    run_until(reactor, lambda: first.lost_count and second.lost_count)
    assert first.reason.check(ConnectionDone) and second.reason.check(ConnectionDone)
    listener.close()


def test_default_eof_closes_after_flushing(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends, server_protocol=Echo)
    client.keep_open_on_eof = True
    client.transport.write(b"echo me" * 1000)
    client.transport.write_eof()
    run_until(reactor, lambda: client.lost_count)
    assert client.data == b"echo me" * 1000
    listener.close()


def test_listener_port_zero_close_and_factory_hooks(reactor, ends):
    server = RecordingFactory()
    listener = ends.listen(reactor, server)
    if ends.kind != "unix":
        assert listener.port != 0
        assert listener.get_host().port == listener.port
    assert server.starts == 1
    client = RecordingFactory()
    ends.connect(reactor, listener, client)
    run_until(reactor, lambda: server.built and client.built)
    d = listener.close()
    assert d.called
    assert server.stops == 1
    listener.close()
    assert server.stops == 1
    # The live connection goes on.
    client.built[0].transport.write(b"still here")
    run_until(reactor, lambda: server.built[0].data == b"still here")
    # New connections are refused.
    late = RecordingFactory()
    ends.connect(reactor, listener, late)
    run_until(reactor, lambda: late.failed is not None)
    assert late.failed.check(ConnectionRefusedError, FileNotFoundError)
    client.built[0].transport.lose_connection()
    run_until(reactor, lambda: server.built[0].lost_count)


def test_connection_made_raising_closes_only_that_connection(reactor, ends, caplog):
    class Broken(Recorder):
        def connection_made(self, transport):
            super().connection_made(transport)
            raise RuntimeError("broken protocol")

    server = RecordingFactory(Broken)
    listener = ends.listen(reactor, server)
    client = RecordingFactory()
    ends.connect(reactor, listener, client)
    run_until(reactor, lambda: client.built and client.built[0].lost_count)
    assert server.built[0].reason.check(ConnectionLost)
    assert any("broken protocol" in (r.exc_text or "") for r in caplog.records)
    # The listener still accepts.
    again = RecordingFactory()
    ends.connect(reactor, listener, again)
    run_until(reactor, lambda: again.built and again.built[0].lost_count)
    listener.close()


def test_data_received_raising_loses_the_connection(reactor, ends, caplog):
    class Raising(Recorder):
        def data_received(self, data):
            raise ValueError("bad data")

    listener, connector, server, client = connected_pair(reactor, ends, server_protocol=Raising)
    client.transport.write(b"x")
    run_until(reactor, lambda: server.lost_count and client.lost_count)
    assert server.reason.check(ConnectionLost)
    assert isinstance(server.reason.value.__cause__, ValueError)
    listener.close()


def test_addresses(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    if ends.kind == "unix":
        assert client.transport.get_peer() == listener.get_host()
    else:
        assert client.transport.get_peer() == server.transport.get_host()
        assert server.transport.get_peer() == client.transport.get_host()
        assert client.transport.get_peer().port == listener.port
        client.transport.set_tcp_nodelay(False)
        client.transport.set_tcp_keepalive(True)
        assert client.transport.socket.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    assert client.transport.get_extra_info("socket") is client.transport.socket
    close_all(reactor, listener, server, client)


def test_connector_disconnect_and_stop_connecting(reactor, ends):
    server = RecordingFactory()
    listener = ends.listen(reactor, server)
    client = RecordingFactory()
    connector = ends.connect(reactor, listener, client)
    run_until(reactor, lambda: client.built and server.built)
    connector.disconnect()
    run_until(reactor, lambda: client.built[0].lost_count and server.built[0].lost_count)
    assert connector.state == "disconnected"
    assert client.lost.check(ConnectionDone)
    factory = RecordingFactory()
    second = ends.connect(reactor, listener, factory)
    second.stop_connecting()
    assert factory.failed.check(CancelledError)
    with pytest.raises(NotConnectingError):
        second.stop_connecting()
    assert factory.built == []
    # The kernel may have completed the handshake already: the server then sees a closed peer.
    for _ in range(10):
        reactor.iterate(0.005)
    run_until(reactor, lambda: all(p.lost_count for p in server.built))
    # A connector can connect again.
    second.connect()
    run_until(reactor, lambda: factory.built and factory.built[0].transport)
    second.disconnect()
    run_until(reactor, lambda: factory.built[0].lost_count)
    run_until(reactor, lambda: all(p.lost_count for p in server.built))
    listener.close()


def test_many_small_writes_to_a_stalled_peer_are_coalesced(reactor, ends):
    listener, connector, server, client = connected_pair(reactor, ends)
    client.transport.pause_reading()
    # Small kernel buffers, so that most of the writes wait in ours.
    server.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
    client.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    server.transport.set_write_buffer_limits(high=1 << 30)
    for i in range(100_000):
        server.transport.write(b"%d," % i)
    assert len(server.transport._buffer) < 100
    expected = b"".join(b"%d," % i for i in range(100_000))
    client.transport.resume_reading()
    run_until(reactor, lambda: len(client.data) == len(expected))
    assert client.data == expected
    close_all(reactor, listener, server, client)


def test_reconnecting_factory_against_a_listener_that_comes_back(reactor):
    made = []

    class Client(Protocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            made.append(transport)

    factory = ReconnectingClientFactory()
    factory.protocol = Client
    factory.initial_delay = 0.01
    factory.max_delay = 0.05
    factory.clock = reactor
    server = RecordingFactory()
    listener = reactor.listen_tcp(0, server, interface="127.0.0.1")
    port = listener.port
    listener.close()
    connector = reactor.connect_tcp("127.0.0.1", port, factory)
    run_until(reactor, lambda: factory.retries >= 2)
    assert factory.delay > factory.initial_delay
    listener = reactor.listen_tcp(port, server, interface="127.0.0.1")
    run_until(reactor, lambda: made)
    assert factory.delay == factory.initial_delay
    # The server goes away: the client reconnects once it is back.
    run_until(reactor, lambda: server.built)
    server.built[0].transport.abort_connection()
    listener.close()
    run_until(reactor, lambda: factory.retries >= 1)
    listener = reactor.listen_tcp(port, server, interface="127.0.0.1")
    run_until(reactor, lambda: len(made) == 2)
    factory.stop_trying()
    connector.disconnect()
    run_until(reactor, lambda: all(p.lost_count for p in server.built))
    listener.close()


EMFILE_CHILD = textwrap.dedent(
    """
    import os, resource, sys, time
    from reactor import Reactor
    from protocols import Factory, Protocol

    accepted = []

    class Hold(Protocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            accepted.append(transport)

    r = Reactor(sys.argv[1])
    listener = r.listen_tcp(0, Factory.for_protocol(Hold), interface="127.0.0.1", backlog=512)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    print(listener.port, flush=True)
    sys.stdin.readline()  # the parent has queued its connections
    # Room for about 20 accepted connections out of 60.
    used = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (used + 20, hard))
    cpu0 = time.process_time()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        r.iterate(0.05)
    cpu = time.process_time() - cpu0
    stuck = len(accepted)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    t0 = time.monotonic()
    while len(accepted) < 60 and time.monotonic() - t0 < 10:
        r.iterate(0.05)
    print(stuck, len(accepted), round(cpu, 3), flush=True)
    for t in accepted:
        t.abort_connection()
    listener.close()
    r.iterate(0)
    r.close()
    """
)


def test_emfile_pauses_accepting_without_spinning_and_resumes(reactor):
    proc = subprocess.Popen(
        [sys.executable, "-c", EMFILE_CHILD, reactor.multiplexer],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    clients = []
    try:
        port = int(proc.stdout.readline())
        for _ in range(60):
            c = socket.create_connection(("127.0.0.1", port))
            clients.append(c)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=60)
    finally:
        for c in clients:
            c.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    stuck, total, cpu = out.split()
    assert 0 < int(stuck) < 60
    assert int(total) == 60
    # One second of flood: a spinning loop would burn about a second of CPU.
    assert float(cpu) < 0.3
    assert "pausing accepts" in err
