"""UDP datagram transports (IPv4, IPv6) on every multiplexer."""

import errno
import logging
import socket
import sys

import pytest

from protocols import DatagramProtocol
from reactor import udp
from reactor.address import Address
from reactor.defer import Failure
from reactor.errors import ConnectionDone, ConnectionLost
from support import has_ipv6, run_until

HOSTS = ["127.0.0.1"] + (["::1"] if has_ipv6() else [])


@pytest.fixture(params=HOSTS)
def host(request):
    return request.param


class Recorder(DatagramProtocol):
    """Records every callback it gets."""

    def __init__(self) -> None:
        self.made = 0
        self.datagrams: list[tuple[bytes, Address]] = []
        self.errors: list[Exception] = []
        self.lost: list = []

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.made += 1

    def datagram_received(self, data, addr) -> None:
        self.datagrams.append((data, addr))

    def error_received(self, exc) -> None:
        self.errors.append(exc)

    def connection_lost(self, reason) -> None:
        self.lost.append(reason)


def endpoint(reactor, host, protocol=None):
    protocol = protocol if protocol is not None else Recorder()
    reactor.listen_udp(0, protocol, interface=host)
    return protocol


def close_all(reactor, *protocols):
    for p in protocols:
        p.transport.close()
    run_until(reactor, lambda: all(p.lost for p in protocols))


def closed_port(host) -> int:
    """A port on ``host`` that nobody listens on (bound, read, released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def test_datagrams_both_ways_with_addresses(reactor, host):
    a = endpoint(reactor, host)
    b = endpoint(reactor, host)
    assert a.made == b.made == 1
    a_addr, b_addr = a.transport.get_host(), b.transport.get_host()
    a.transport.write(b"ping", b_addr)
    run_until(reactor, lambda: b.datagrams)
    assert b.datagrams == [(b"ping", a_addr)]
    data, sender = b.datagrams[0]
    assert isinstance(sender, Address) and sender.host == host
    b.transport.write(bytearray(b"pong"), sender)
    b.transport.write(memoryview(b"pong2"), (host, a_addr.port))
    run_until(reactor, lambda: len(a.datagrams) == 2)
    assert a.datagrams == [(b"pong", b_addr), (b"pong2", b_addr)]
    assert not a.errors and not b.errors
    close_all(reactor, a, b)


def test_many_datagrams_arrive(reactor, host):
    # More than MAX_DATAGRAMS_PER_PASS, so reading spans several passes.
    a = endpoint(reactor, host)
    b = endpoint(reactor, host)
    count = 3 * udp.MAX_DATAGRAMS_PER_PASS + 7
    sent = {b"%d" % i for i in range(count)}
    for payload in sorted(sent):
        a.transport.write(payload, b.transport.get_host())
    run_until(reactor, lambda: len(b.datagrams) >= count)
    assert {d for d, _ in b.datagrams} == sent
    assert len(b.datagrams) == count
    close_all(reactor, a, b)


def test_port_zero_gives_the_real_port(reactor, host):
    p = endpoint(reactor, host)
    addr = p.transport.get_host()
    assert addr.port != 0 and addr.port == p.transport.port
    assert addr == Address(*p.transport.socket.getsockname()[:2])
    assert p.transport.get_extra_info("sockname") == addr
    assert p.transport.get_extra_info("socket") is p.transport.socket
    assert p.transport.get_extra_info("peername") is None
    assert p.transport.get_extra_info("nothing", 5) == 5
    assert f":{addr.port} open" in repr(p.transport)
    close_all(reactor, p)
    assert p.transport.get_host() == addr
    assert "closed" in repr(p.transport)


def test_default_interface_binds_ipv4_any(reactor):
    p = endpoint(reactor, "")
    assert p.transport.get_host().host == "0.0.0.0"
    assert p.transport.socket.family == socket.AF_INET
    close_all(reactor, p)


def test_bad_writes_raise(reactor, host):
    p = endpoint(reactor, host)
    target = p.transport.get_host()
    with pytest.raises(TypeError, match="not str"):
        p.transport.write("text", target)
    with pytest.raises(TypeError, match="not int"):
        p.transport.write(12, target)
    with pytest.raises(ValueError, match="not connected"):
        p.transport.write(b"x")
    close_all(reactor, p)


def test_host_names_are_refused_not_looked_up(reactor, host):
    a = endpoint(reactor, host)
    b = endpoint(reactor, host)
    port = b.transport.get_host().port
    # A name that would need DNS: refused at once, with what to do instead.
    for name in ("localhost", "no-such-host.invalid"):
        with pytest.raises(ValueError, match="IP address.*resolve names first"):
            a.transport.write(b"by name", (name, port))
        with pytest.raises(ValueError, match="IP address"):
            a.transport.connect(name, port)
    a.transport.write(b"by address", (host, port))
    run_until(reactor, lambda: b.datagrams)
    assert [data for data, _ in b.datagrams] == [b"by address"]
    assert a.transport.get_peer() is None
    # An address of the other family is refused the same way.
    other = "::1" if host == "127.0.0.1" else "127.0.0.1"
    with pytest.raises(ValueError, match="IPv[46] on this socket"):
        a.transport.write(b"other family", (other, port))
    close_all(reactor, a, b)


def test_the_empty_host_means_this_machine(reactor):
    # As for socket.sendto(): "" is INADDR_ANY, which Linux delivers locally.
    a = endpoint(reactor, "127.0.0.1")
    b = endpoint(reactor, "127.0.0.1")
    a.transport.write(b"to any", ("", b.transport.get_host().port))
    run_until(reactor, lambda: b.datagrams)
    assert b.datagrams[0][0] == b"to any"
    close_all(reactor, a, b)


def test_checked_hosts_are_remembered_in_a_bounded_set(reactor, host, monkeypatch):
    monkeypatch.setattr(udp, "MAX_CHECKED_HOSTS", 2)
    a = endpoint(reactor, host)
    b = endpoint(reactor, host)
    port = b.transport.get_host().port
    # Three spellings of the same address: three hosts to check.
    spellings = ["127.0.0.1", "127.1", "127.0.1"] if host == "127.0.0.1" else ["::1", "0::1", "0:0::1"]
    for i, spelling in enumerate(spellings):
        a.transport.write(b"%d" % i, (spelling, port))
    run_until(reactor, lambda: len(b.datagrams) == 3)
    assert sorted(data for data, _ in b.datagrams) == [b"0", b"1", b"2"]
    assert len(a.transport._numeric_hosts) <= 2
    close_all(reactor, a, b)


def test_bind_failure_closes_the_socket(reactor, host):
    p = endpoint(reactor, host)
    with pytest.raises(OSError) as info:
        reactor.listen_udp(p.transport.port, Recorder(), interface=host)
    assert info.value.errno == errno.EADDRINUSE
    close_all(reactor, p)


def test_close_calls_connection_lost_once_and_unregisters(reactor, host):
    p = endpoint(reactor, host)
    assert p.transport in reactor.get_readers()
    assert p.transport.is_reading() and not p.transport.is_closing()
    p.transport.close()
    assert p.transport.is_closing() and not p.transport.is_reading()
    assert p.transport not in reactor.get_readers()
    assert p.transport.socket.fileno() == -1
    assert p.lost == []  # scheduled, not called in the middle of close()
    p.transport.close()
    p.transport.lose_connection()
    p.transport.abort_connection()
    p.transport.stop_listening()
    p.transport.write(b"after close", ("127.0.0.1", 9))  # goes nowhere
    p.transport.pause_reading()
    p.transport.resume_reading()
    run_until(reactor, lambda: p.lost)
    reactor.iterate(0)
    assert len(p.lost) == 1 and p.lost[0].check(ConnectionDone)
    assert not reactor.get_readers() and not reactor.get_writers()
    with pytest.raises(OSError):
        p.transport.connect(host, 9)


@pytest.mark.parametrize("method", ["lose_connection", "abort_connection", "stop_listening"])
def test_close_aliases(reactor, method):
    p = endpoint(reactor, "127.0.0.1")
    getattr(p.transport, method)()
    run_until(reactor, lambda: p.lost)
    assert len(p.lost) == 1 and p.lost[0].check(ConnectionDone)


def test_protocol_error_in_datagram_received_is_logged_and_endpoint_survives(reactor, host, caplog):
    class Flaky(Recorder):
        def datagram_received(self, data, addr):
            if data == b"boom":
                raise RuntimeError("bad datagram")
            super().datagram_received(data, addr)

    a = endpoint(reactor, host)
    b = endpoint(reactor, host, Flaky())
    a.transport.write(b"boom", b.transport.get_host())
    a.transport.write(b"fine", b.transport.get_host())
    run_until(reactor, lambda: b.datagrams)
    assert [d for d, _ in b.datagrams] == [b"fine"]
    assert any("datagram_received" in r.getMessage() and r.exc_info for r in caplog.records if r.name == "reactor")
    assert not b.transport.is_closing()
    close_all(reactor, a, b)


def test_error_in_connection_made_closes_the_transport(reactor, caplog):
    class Bad(Recorder):
        def connection_made(self, transport):
            super().connection_made(transport)
            raise RuntimeError("no")

    p = Bad()
    reactor.listen_udp(0, p, interface="127.0.0.1")
    assert p.transport.is_closing()
    run_until(reactor, lambda: p.lost)
    assert p.lost[0].check(ConnectionLost)
    assert isinstance(p.lost[0].value.__cause__, RuntimeError)
    assert any("connection_made" in r.getMessage() for r in caplog.records)


def test_errors_in_error_received_and_connection_lost_are_logged(reactor, caplog):
    class Bad(Recorder):
        def error_received(self, exc):
            super().error_received(exc)
            raise RuntimeError("error_received failed")

        def connection_lost(self, reason):
            super().connection_lost(reason)
            raise RuntimeError("connection_lost failed")

    p = endpoint(reactor, "127.0.0.1", Bad())
    p.transport._error(OSError(errno.EIO, "test"))
    assert len(p.errors) == 1
    close_all(reactor, p)
    reactor.iterate(0)
    messages = [r.getMessage() for r in caplog.records]
    assert any("error_received" in m for m in messages)
    assert any("connection_lost" in m for m in messages)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ICMP errors reach connected UDP sockets on Linux")
def test_connect_to_closed_port_reports_connection_refused(reactor, host):
    p = endpoint(reactor, host)
    port = closed_port(host)
    p.transport.connect(host, port)
    assert p.transport.get_peer() == Address(host, port)
    assert p.transport.get_extra_info("peername") == Address(host, port)
    with pytest.raises(ValueError, match="connected to"):
        p.transport.write(b"x", (host, port + 1 if port < 65535 else port - 1))
    p.transport.write(b"anyone there?")
    # The ICMP error marks the socket in error (readable); the next recv reports it.
    run_until(reactor, lambda: p.errors)
    assert isinstance(p.errors[0], ConnectionRefusedError)
    assert p.errors[0].errno == errno.ECONNREFUSED
    assert not p.transport.is_closing()
    # Reported once: the next send goes out again (and is refused again).
    p.transport.write(b"again", (host, port))
    run_until(reactor, lambda: len(p.errors) == 2)
    assert isinstance(p.errors[1], ConnectionRefusedError)
    close_all(reactor, p)


def test_connected_endpoint_exchanges_with_its_peer(reactor, host):
    a = endpoint(reactor, host)
    b = endpoint(reactor, host)
    b_addr = b.transport.get_host()
    a.transport.connect(b_addr.host, b_addr.port)
    a.transport.write(b"to peer")
    run_until(reactor, lambda: b.datagrams)
    b.transport.write(b"back", b.datagrams[0][1])
    run_until(reactor, lambda: a.datagrams)
    assert a.datagrams == [(b"back", b_addr)]
    close_all(reactor, a, b)


def test_pause_reading_stops_delivery_until_resume(reactor, host):
    a = endpoint(reactor, host)
    b = endpoint(reactor, host)
    target = b.transport.get_host()
    b.transport.pause_reading()
    b.transport.pause_reading()
    assert not b.transport.is_reading()
    a.transport.write(b"held", target)
    # A second endpoint's datagram proves the first one had time to arrive.
    c = endpoint(reactor, host)
    a.transport.write(b"marker", c.transport.get_host())
    run_until(reactor, lambda: c.datagrams)
    for _ in range(5):
        reactor.iterate(0.01)
    assert b.datagrams == []
    b.transport.resume_reading()
    b.transport.resume_reading()
    run_until(reactor, lambda: b.datagrams)
    assert [d for d, _ in b.datagrams] == [b"held"]
    close_all(reactor, a, b, c)


def test_pause_inside_datagram_received_stops_the_pass(reactor, host):
    class Pauser(Recorder):
        def datagram_received(self, data, addr):
            super().datagram_received(data, addr)
            self.transport.pause_reading()

    a = endpoint(reactor, host)
    b = endpoint(reactor, host, Pauser())
    for i in range(3):
        a.transport.write(b"%d" % i, b.transport.get_host())
    run_until(reactor, lambda: b.datagrams)
    for _ in range(5):
        reactor.iterate(0.01)
    assert len(b.datagrams) == 1
    b.transport.resume_reading()
    run_until(reactor, lambda: len(b.datagrams) == 2)
    b.transport.resume_reading()
    run_until(reactor, lambda: len(b.datagrams) == 3)
    close_all(reactor, a, b)


class Choked:
    """Wraps a socket: send/sendto would block until opened, or fail with ``error``."""

    def __init__(self, sock):
        self.sock = sock
        self.open = False
        self.error = None

    def _check(self):
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        if not self.open:
            raise BlockingIOError(errno.EAGAIN, "would block")

    def sendto(self, data, addr):
        self._check()
        return self.sock.sendto(data, addr)

    def send(self, data):
        self._check()
        return self.sock.send(data)

    def __getattr__(self, name):
        return getattr(self.sock, name)


def test_would_block_queues_and_sends_on_writable(reactor, host):
    a = endpoint(reactor, host)
    b = endpoint(reactor, host)
    target = b.transport.get_host()
    choked = a.transport.socket = Choked(a.transport.socket)
    a.transport.write(b"one", target)
    a.transport.write(b"two", target)
    assert a.transport.get_write_buffer_size() == 6
    assert a.transport in reactor.get_writers()
    reactor.iterate(0.01)  # writable, but still blocked: stays queued
    assert a.transport.get_write_buffer_size() == 6
    choked.open = True
    run_until(reactor, lambda: len(b.datagrams) == 2)
    assert [d for d, _ in b.datagrams] == [b"one", b"two"]
    assert a.transport not in reactor.get_writers()
    assert a.transport.get_write_buffer_size() == 0
    close_all(reactor, a, b)


def test_queue_is_bounded_and_send_errors_are_reported(reactor, host, monkeypatch):
    monkeypatch.setattr(udp, "MAX_QUEUED_DATAGRAMS", 3)
    a = endpoint(reactor, host)
    b = endpoint(reactor, host)
    target = b.transport.get_host()
    choked = a.transport.socket = Choked(a.transport.socket)
    for payload in (b"1", b"2", b"3", b"4"):
        a.transport.write(payload, target)
    assert len(a.errors) == 1 and a.errors[0].errno == errno.ENOBUFS
    # The first queued datagram fails outright on send: dropped, reported, next one goes.
    choked.open = True
    choked.error = OSError(errno.EMSGSIZE, "too long")
    run_until(reactor, lambda: len(b.datagrams) == 2)
    assert [d for d, _ in b.datagrams] == [b"2", b"3"]
    assert a.errors[1].errno == errno.EMSGSIZE
    # An immediate send error is reported too, and the transport stays up.
    choked.error = OSError(errno.EMSGSIZE, "too long")
    a.transport.write(b"5", target)
    assert a.errors[2].errno == errno.EMSGSIZE and not a.transport.is_closing()
    close_all(reactor, a, b)


def test_close_from_error_received_during_flush(reactor, host):
    class Closer(Recorder):
        def error_received(self, exc):
            super().error_received(exc)
            self.transport.close()

    a = endpoint(reactor, host, Closer())
    choked = a.transport.socket = Choked(a.transport.socket)
    a.transport.write(b"1", ("127.0.0.1" if ":" not in host else "::1", 9))
    a.transport.write(b"2", ("127.0.0.1" if ":" not in host else "::1", 9))
    choked.open = True
    choked.error = OSError(errno.EMSGSIZE, "too long")
    run_until(reactor, lambda: a.lost)
    assert len(a.errors) == 1
    assert not reactor.get_writers()


def test_real_send_error_goes_to_error_received(reactor):
    p = endpoint(reactor, "127.0.0.1")
    p.transport.write(b"x" * 70000, p.transport.get_host())  # over the UDP maximum
    assert len(p.errors) == 1 and p.errors[0].errno == errno.EMSGSIZE
    close_all(reactor, p)


def test_on_close_from_the_reactor_closes_with_connection_lost(reactor):
    p = endpoint(reactor, "127.0.0.1")
    try:
        raise RuntimeError("descriptor failed")
    except RuntimeError:
        reason = Failure()
    p.transport.on_close(reason)
    run_until(reactor, lambda: p.lost)
    assert p.lost[0].check(ConnectionLost)
    assert isinstance(p.lost[0].value.__cause__, RuntimeError)


def test_close_inside_datagram_received_stops_reading(reactor, host):
    class Closer(Recorder):
        def datagram_received(self, data, addr):
            super().datagram_received(data, addr)
            self.transport.close()

    a = endpoint(reactor, host)
    b = endpoint(reactor, host, Closer())
    for i in range(3):
        a.transport.write(b"%d" % i, b.transport.get_host())
    run_until(reactor, lambda: b.lost)
    assert len(b.datagrams) == 1
    close_all(reactor, a)


def test_interrupted_recv_ends_the_pass(reactor, caplog):
    p = endpoint(reactor, "127.0.0.1")

    class Interrupted:
        def __init__(self, sock):
            self.sock = sock

        def recvfrom(self, size):
            raise InterruptedError

        def __getattr__(self, name):
            return getattr(self.sock, name)

    real = p.transport.socket
    p.transport.socket = Interrupted(real)
    p.transport.on_read()
    assert p.datagrams == [] and p.errors == []
    p.transport.socket = real
    close_all(reactor, p)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
