"""TLS (reactor/tls.py) over TCP on every multiplexer, with a self-signed certificate made at test time."""

import hashlib
import shutil
import socket
import ssl
import subprocess

import pytest

from reactor.errors import ConnectionAborted, ConnectionDone, ConnectionLost
from support import Recorder, RecordingFactory, run_until


@pytest.fixture(scope="session")
def cert_files(tmp_path_factory):
    """(cert, key) paths of a self-signed certificate for localhost and 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "c.pem", where / "k.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return str(cert), str(key)


@pytest.fixture
def server_context(cert_files):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert_files)
    return ctx


@pytest.fixture
def client_context(cert_files):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cert_files[0])
    return ctx


def tls_pair(reactor, server_context, client_context, server_protocol=Recorder, client_protocol=Recorder, **connect_kw):
    server = RecordingFactory(server_protocol)
    client = RecordingFactory(client_protocol)
    listener = reactor.listen_ssl(0, server, server_context, interface="127.0.0.1")
    connector = reactor.connect_ssl("127.0.0.1", listener.port, client, client_context, **connect_kw)
    run_until(reactor, lambda: server.built and client.built and server.built[0].transport and client.built[0].transport)
    return listener, connector, server, client


def wait_quiet(reactor, listener):
    """Close the listener and wait until every connection is closed."""
    listener.close()
    run_until(reactor, lambda: not reactor.get_readers() and not reactor.get_writers())
    reactor.iterate(0)


class Greeter(Recorder):
    """Writes as soon as it is connected: on the client, before the server's handshake is done."""

    def connection_made(self, transport):
        super().connection_made(transport)
        transport.write(b"hello ")
        transport.writelines([b"over ", bytearray(b"tls")])


class RecordingEcho(Recorder):
    def data_received(self, data):
        super().data_received(data)
        self.transport.write(data)


def test_echo_round_trip(reactor, server_context, client_context):
    server = RecordingFactory(RecordingEcho)
    client = RecordingFactory(Greeter)
    listener = reactor.listen_ssl(0, server, server_context, interface="127.0.0.1")
    assert server.starts == 1
    connector = reactor.connect_ssl("127.0.0.1", listener.port, client, client_context)
    run_until(reactor, lambda: client.built and client.built[0].data == b"hello over tls")
    assert server.built[0].data == b"hello over tls"
    assert server.built[0].events == ["made"] and client.built[0].events == ["made"]
    assert connector.state == "connected"
    client.built[0].transport.lose_connection()
    wait_quiet(reactor, listener)
    assert server.stops == 1


def test_a_megabyte_both_ways(reactor, server_context, client_context):
    listener, connector, server, client = tls_pair(reactor, server_context, client_context, server_protocol=RecordingEcho)
    payload = bytes(range(256)) * 4096
    client.built[0].transport.write(payload)
    run_until(reactor, lambda: len(client.built[0].data) >= len(payload))
    assert hashlib.sha256(client.built[0].data).digest() == hashlib.sha256(payload).digest()
    assert bytes(server.built[0].data) == payload
    client.built[0].transport.lose_connection()
    wait_quiet(reactor, listener)


@pytest.mark.parametrize("closer", ["client", "server"])
def test_lose_connection_is_clean_on_both_sides(reactor, server_context, client_context, closer):
    listener, connector, server, client = tls_pair(reactor, server_context, client_context)
    s, c = server.built[0], client.built[0]
    this, other = (c, s) if closer == "client" else (s, c)
    this.transport.write(b"last words")
    this.transport.lose_connection()
    assert this.transport.is_closing() and this.transport.disconnecting
    this.transport.write(b"dropped")
    this.transport.lose_connection()  # A second call does nothing.
    run_until(reactor, lambda: s.lost_count and c.lost_count)
    assert other.data == b"last words"
    assert other.events == ["made", "eof", "lost"]
    assert this.events == ["made", "lost"]
    assert s.reason.check(ConnectionDone) and c.reason.check(ConnectionDone)
    run_until(reactor, lambda: client.lost is not None)
    assert client.lost.check(ConnectionDone) and client.failed is None
    wait_quiet(reactor, listener)


def test_untrusted_certificate_fails_the_client(reactor, server_context):
    untrusting = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    server = RecordingFactory()
    client = RecordingFactory()
    listener = reactor.listen_ssl(0, server, server_context, interface="127.0.0.1")
    connector = reactor.connect_ssl("127.0.0.1", listener.port, client, untrusting)
    run_until(reactor, lambda: client.failed is not None)
    assert client.failed.check(ConnectionLost)
    assert isinstance(client.failed.value.__cause__, ssl.SSLCertVerificationError)
    assert client.lost is None
    assert connector.state == "disconnected"
    # Neither user protocol ever heard of a connection.
    assert client.built[0].events == []
    wait_quiet(reactor, listener)
    assert all(p.events == [] for p in server.built)


def test_wrong_server_hostname_fails(reactor, server_context, client_context):
    server = RecordingFactory()
    client = RecordingFactory()
    listener = reactor.listen_ssl(0, server, server_context, interface="127.0.0.1")
    reactor.connect_ssl("127.0.0.1", listener.port, client, client_context, server_hostname="example.com")
    run_until(reactor, lambda: client.failed is not None)
    assert isinstance(client.failed.value.__cause__, ssl.SSLCertVerificationError)
    wait_quiet(reactor, listener)


def test_connect_ssl_by_name_checks_that_name(reactor, server_context, client_context):
    server = RecordingFactory()
    client = RecordingFactory()
    listener = reactor.listen_ssl(0, server, server_context, interface="127.0.0.1")
    reactor.connect_ssl("localhost", listener.port, client, client_context)
    run_until(reactor, lambda: client.built and client.built[0].transport or client.failed)
    if client.failed is None:
        assert client.built[0].transport.get_extra_info("ssl_object").server_hostname == "localhost"
        client.built[0].transport.lose_connection()
    wait_quiet(reactor, listener)
    reactor._pool.stop()  # The lookup ran in the thread pool.
    reactor._pool = None
    if client.failed is not None:
        pytest.skip(f"localhost does not resolve to 127.0.0.1 here: {client.failed.value}")


def test_extra_info(reactor, server_context, client_context):
    listener, connector, server, client = tls_pair(reactor, server_context, client_context)
    ct, st = client.built[0].transport, server.built[0].transport
    cert = ct.get_extra_info("peercert")
    assert dict(x[0] for x in cert["subject"])["commonName"] == "localhost"
    assert ("DNS", "localhost") in cert["subjectAltName"]
    assert st.get_extra_info("peercert") is None  # No client certificate was asked for.
    assert isinstance(ct.get_extra_info("ssl_object"), ssl.SSLObject)
    assert ct.get_extra_info("sslcontext") is client_context
    assert ct.get_extra_info("cipher")[0]
    assert ct.get_extra_info("version").startswith("TLS")
    assert ct.get_extra_info("peername") == ct.get_peer() == st.get_host()
    assert ct.get_extra_info("socket") is not None
    assert ct.get_extra_info("nonsense", 42) == 42
    assert st.get_peer() == ct.get_host()
    ct.set_tcp_nodelay(True)
    ct.set_tcp_keepalive(True)
    assert ct.can_write_eof()
    assert "TLSTransport" in repr(ct)
    assert "TLSProtocol" in repr(connector.transport.protocol)
    assert "TLSFactory" in repr(listener.factory)
    ct.abort_connection()
    run_until(reactor, lambda: client.built[0].lost_count and server.built[0].lost_count)
    assert client.built[0].reason.check(ConnectionAborted)
    assert server.built[0].reason.check(ConnectionDone, ConnectionLost)
    wait_quiet(reactor, listener)


def test_write_type_checks(reactor, server_context, client_context):
    listener, connector, server, client = tls_pair(reactor, server_context, client_context)
    ct = client.built[0].transport
    with pytest.raises(TypeError, match="str"):
        ct.write("text")
    with pytest.raises(TypeError):
        ct.write(12)
    ct.write(b"")
    ct.write(memoryview(b"ok"))
    run_until(reactor, lambda: server.built[0].data == b"ok")
    ct.lose_connection()
    wait_quiet(reactor, listener)


def test_write_eof_sends_close_notify(reactor, server_context, client_context):
    listener, connector, server, client = tls_pair(reactor, server_context, client_context)
    c, s = client.built[0], server.built[0]
    s.keep_open_on_eof = True
    c.transport.write(b"request")
    c.transport.write_eof()
    c.transport.write_eof()  # Once is enough.
    with pytest.raises(RuntimeError):
        c.transport.write(b"more")
    run_until(reactor, lambda: "eof" in s.events)
    assert s.data == b"request"
    # The server may still answer: reading goes on after write_eof().
    s.transport.write(b"response")
    run_until(reactor, lambda: c.data == b"response")
    s.transport.lose_connection()
    run_until(reactor, lambda: c.lost_count and s.lost_count)
    assert c.events == ["made", "eof", "lost"]
    assert c.reason.check(ConnectionDone) and s.reason.check(ConnectionDone)
    wait_quiet(reactor, listener)


class PausesOnData(Recorder):
    """Pauses reading after each chunk until the test resumes it."""

    def data_received(self, data):
        super().data_received(data)
        self.transport.pause_reading()


def test_pause_and_resume_reading(reactor, server_context, client_context):
    listener, connector, server, client = tls_pair(reactor, server_context, client_context, client_protocol=PausesOnData)
    c, s = client.built[0], server.built[0]
    # Several records in one write: they may arrive in one TCP read.
    payload = b"r" * 100_000
    s.transport.write(payload)
    run_until(reactor, lambda: c.data)
    assert not c.transport.is_reading()
    seen = len(c.data)
    for _ in range(5):
        reactor.iterate(0.01)
    assert len(c.data) == seen
    while len(c.data) < len(payload):
        c.transport.resume_reading()
        c.transport.resume_reading()  # Idempotent.
        before = len(c.data)
        run_until(reactor, lambda: len(c.data) > before)
    assert bytes(c.data) == payload
    c.transport.resume_reading()
    c.transport.lose_connection()
    wait_quiet(reactor, listener)


def test_write_buffer_limits_pause_the_writer(reactor, server_context, client_context):
    listener, connector, server, client = tls_pair(reactor, server_context, client_context)
    c, s = client.built[0], server.built[0]
    c.transport.pause_reading()
    s.transport.set_write_buffer_limits(high=1024)
    assert s.transport.get_write_buffer_limits() == (256, 1024)
    s.transport.write(b"x" * (8 * 1024 * 1024))
    assert "pause" in s.events
    assert s.transport.get_write_buffer_size() > 0
    c.transport.resume_reading()
    run_until(reactor, lambda: "resume" in s.events)
    run_until(reactor, lambda: len(c.data) == 8 * 1024 * 1024)
    c.transport.lose_connection()
    wait_quiet(reactor, listener)


def test_corrupt_record_loses_the_connection_with_the_ssl_error(reactor, server_context, client_context):
    listener, connector, server, client = tls_pair(reactor, server_context, client_context)
    c = client.built[0]
    # An application-data record whose MAC cannot be right.
    connector.transport.protocol.data_received(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)
    connector.transport.protocol.data_received(b"ignored after the error")
    run_until(reactor, lambda: c.lost_count and server.built[0].lost_count)
    assert c.reason.check(ConnectionLost)
    assert isinstance(c.reason.value.__cause__, ssl.SSLError)
    run_until(reactor, lambda: client.lost is not None)
    assert client.lost.check(ConnectionLost) and client.failed is None
    wait_quiet(reactor, listener)


def test_plain_tcp_client_to_a_tls_server(reactor, server_context):
    server = RecordingFactory()
    plain = RecordingFactory(Greeter)
    listener = reactor.listen_ssl(0, server, server_context, interface="127.0.0.1")
    reactor.connect_tcp("127.0.0.1", listener.port, plain)
    run_until(reactor, lambda: plain.built and plain.built[0].lost_count)
    assert server.built[0].events == []
    wait_quiet(reactor, listener)


def test_peer_closing_during_the_handshake(reactor, client_context):
    # A TCP server that closes at once: the TLS client never gets a handshake.
    server = RecordingFactory()
    listener = reactor.listen_tcp(0, server, interface="127.0.0.1")
    client = RecordingFactory()
    reactor.connect_ssl("127.0.0.1", listener.port, client, client_context)
    # Read the ClientHello first: closing with it unread would reset the connection.
    run_until(reactor, lambda: server.built and server.built[0].data)
    server.built[0].transport.lose_connection()
    run_until(reactor, lambda: client.failed is not None)
    assert client.failed.check(ConnectionLost)
    assert "handshake" in str(client.failed.value)
    assert client.built[0].events == []
    wait_quiet(reactor, listener)


def test_a_silent_client_is_cut_off_after_the_handshake_timeout(reactor, server_context, caplog):
    server = RecordingFactory()
    listener = reactor.listen_ssl(0, server, server_context, interface="127.0.0.1", handshake_timeout=0.2)
    silent = RecordingFactory()  # plain TCP: connects, says nothing
    reactor.connect_tcp("127.0.0.1", listener.port, silent)
    with caplog.at_level("DEBUG", logger="reactor"):
        run_until(reactor, lambda: silent.built and silent.built[0].lost_count, timeout=10.0)
    assert "TLS handshake not done within 0.2 s" in caplog.text
    # The server's user protocol never heard of it; the silent peer saw the connection go.
    assert server.built[0].events == []
    assert silent.built[0].events[-1] == "lost"
    wait_quiet(reactor, listener)


def test_a_server_that_never_answers_fails_the_client_after_the_timeout(reactor, client_context):
    mute = RecordingFactory()  # plain TCP server: reads the ClientHello, answers nothing
    listener = reactor.listen_tcp(0, mute, interface="127.0.0.1")
    client = RecordingFactory()
    connector = reactor.connect_ssl("127.0.0.1", listener.port, client, client_context, handshake_timeout=0.2)
    run_until(reactor, lambda: client.failed is not None, timeout=10.0)
    assert client.failed.check(ConnectionLost)
    assert isinstance(client.failed.value.__cause__, TimeoutError)
    assert client.lost is None and client.built[0].events == []
    assert connector.state == "disconnected"
    run_until(reactor, lambda: mute.built[0].lost_count)
    wait_quiet(reactor, listener)


def test_a_finished_handshake_leaves_no_timer(reactor, server_context, client_context):
    listener, connector, server, client = tls_pair(
        reactor, server_context, client_context, handshake_timeout=0.2,
    )
    assert server.built[0].events == ["made"] and client.built[0].events == ["made"]
    # Nothing of the handshake timers is left scheduled (the no_leaks fixture checks too).
    assert all(call.func.__name__ != "_handshake_timed_out" for call in reactor.get_delayed_calls())
    client.built[0].transport.lose_connection()
    wait_quiet(reactor, listener)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_handshake_timeout_must_be_positive_or_none(reactor, server_context, client_context, bad):
    with pytest.raises(ValueError, match="handshake_timeout"):
        reactor.listen_ssl(0, RecordingFactory(), server_context, handshake_timeout=bad)
    with pytest.raises(ValueError, match="handshake_timeout"):
        reactor.connect_ssl("127.0.0.1", 1, RecordingFactory(), client_context, handshake_timeout=bad)


def test_no_handshake_timeout_when_none(reactor, server_context, client_context):
    listener, connector, server, client = tls_pair(
        reactor, server_context, client_context, handshake_timeout=None,
    )
    assert client.built[0].events == ["made"]
    client.built[0].transport.lose_connection()
    wait_quiet(reactor, listener)


def test_connection_refused_reaches_the_user_factory(reactor, client_context):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    client = RecordingFactory()
    reactor.connect_ssl("127.0.0.1", port, client, client_context)
    run_until(reactor, lambda: client.failed is not None)
    assert client.failed.check(ConnectionRefusedError)
    assert client.built == []


class Refusing(RecordingFactory):
    def build_protocol(self, addr):
        return None


def test_factory_refusing_a_connection(reactor, server_context, client_context):
    server = Refusing()
    client = RecordingFactory()
    listener = reactor.listen_ssl(0, server, server_context, interface="127.0.0.1")
    reactor.connect_ssl("127.0.0.1", listener.port, client, client_context)
    run_until(reactor, lambda: client.failed is not None)
    assert client.failed.check(ConnectionLost)
    wait_quiet(reactor, listener)


class EofKeepsOpen(Recorder):
    def __init__(self):
        super().__init__()
        self.keep_open_on_eof = True


def test_eof_kept_open_then_closed(reactor, server_context, client_context):
    listener, connector, server, client = tls_pair(reactor, server_context, client_context, server_protocol=EofKeepsOpen)
    c, s = client.built[0], server.built[0]
    c.transport.lose_connection()
    run_until(reactor, lambda: c.lost_count)
    run_until(reactor, lambda: "eof" in s.events)
    for _ in range(5):
        reactor.iterate(0.01)
    assert s.events.count("eof") == 1
    s.transport.lose_connection()
    run_until(reactor, lambda: s.lost_count)
    wait_quiet(reactor, listener)
