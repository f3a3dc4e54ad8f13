"""StringTransport and connect_in_memory: the fakes other tests lean on must behave like transports."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from protocols import Protocol
from protocols.basic import LineReceiver
from reactor.address import Address
from reactor.errors import ConnectionAborted, ConnectionDone, ConnectionLost
from reactor.testing import StringTransport, connect_in_memory

# -- StringTransport -------------------------------------------------------


def test_records_writes() -> None:
    t = StringTransport()
    t.write(b"abc")
    t.write(bytearray(b"de"))
    t.write(memoryview(b"f"))
    t.writelines([b"g", b"", b"hi"])
    assert t.value() == b"abcdefghi"
    t.clear()
    assert t.value() == b""
    t.write(b"again")
    assert t.value() == b"again"


@pytest.mark.parametrize("bad", ["text", 12, [1, 2], None])
def test_write_rejects_non_bytes(bad: Any) -> None:
    t = StringTransport()
    with pytest.raises(TypeError):
        t.write(bad)
    with pytest.raises(TypeError):
        t.writelines([b"ok", bad])
    assert t.value() == b"ok"


def test_close_flags() -> None:
    t = StringTransport()
    assert not t.is_closing() and not t.disconnecting and not t.aborted
    t.lose_connection()
    assert t.is_closing() and t.disconnecting and not t.aborted
    t = StringTransport()
    t.abort_connection()
    assert t.is_closing() and t.aborted


def test_write_eof() -> None:
    t = StringTransport()
    assert t.can_write_eof() and not t.eof_written
    t.write_eof()
    assert t.eof_written and not t.is_closing()


def test_addresses_default_and_given() -> None:
    t = StringTransport()
    assert t.get_host() == Address("127.0.0.1", 12345)
    assert t.get_peer() == Address("127.0.0.1", 54321)
    t = StringTransport(host=Address("::1", 80), peer=Address("10.0.0.2", 4000))
    assert t.get_host() == ("::1", 80)
    assert t.get_peer().port == 4000


def test_reading_and_writing_controls() -> None:
    t = StringTransport()
    assert t.producer_state == "producing"
    t.pause_reading()
    assert t.producer_state == "paused"
    t.resume_reading()
    assert t.producer_state == "producing"
    assert t.write_buffer_limits == (65536, 16384)
    t.set_write_buffer_limits(high=100, low=10)
    assert t.write_buffer_limits == (100, 10)
    with pytest.raises(ValueError):
        t.set_write_buffer_limits(high=10, low=100)
    with pytest.raises(ValueError):
        t.set_write_buffer_limits(high=10, low=-1)
    t.write(b"x" * 1000)
    assert t.get_write_buffer_size() == 0
    t.set_tcp_nodelay(True)
    t.set_tcp_keepalive(1)
    assert t.tcp_nodelay is True and t.tcp_keepalive is True


# -- connect_in_memory -----------------------------------------------------


class Recorder(Protocol):
    """Records everything that happens to it; may greet, echo, or keep its write side after EOF."""

    def __init__(self, greeting: bytes = b"", echo: bool = False, keep_open_on_eof: bool = False) -> None:
        self.greeting = greeting
        self.echo = echo
        self.keep_open_on_eof = keep_open_on_eof
        self.received = b""
        self.events: list[str] = []
        self.reasons: list[Any] = []

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.events.append("made")
        if self.greeting:
            transport.write(self.greeting)

    def data_received(self, data: bytes) -> None:
        self.received += data
        if self.echo:
            self.transport.write(data)

    def eof_received(self) -> bool | None:
        self.events.append("eof")
        return self.keep_open_on_eof or None

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, reason: Any) -> None:
        super().connection_lost(reason)
        self.events.append("lost")
        self.reasons.append(reason)


def test_connection_made_on_both_and_greetings_flushed() -> None:
    server, client = Recorder(greeting=b"220 hi\r\n"), Recorder()
    pump = connect_in_memory(server, client)
    assert server.events == ["made"] and client.events == ["made"]
    assert client.received == b"220 hi\r\n"
    assert server.connected and client.connected
    assert pump.server_transport.get_peer() == pump.client_transport.get_host() == Address("127.0.0.1", 54321)
    assert pump.client_transport.get_peer() == pump.server_transport.get_host() == Address("127.0.0.1", 12345)


def test_nothing_moves_until_flush() -> None:
    server, client = Recorder(greeting=b"hello"), Recorder()
    pump = connect_in_memory(server, client, flush=False)
    assert client.received == b""
    assert pump.server_transport.get_write_buffer_size() == 5
    assert pump.server_transport.value() == b"hello"
    pump.flush()
    assert client.received == b"hello"
    assert pump.server_transport.get_write_buffer_size() == 0
    assert not pump.pump()


def test_echo_round_trip() -> None:
    server, client = Recorder(echo=True), Recorder()
    pump = connect_in_memory(server, client)
    client.transport.write(b"ping")
    client.transport.writelines([b" ", b"pong"])
    pump.flush()
    assert server.received == b"ping pong"
    assert client.received == b"ping pong"


def test_lose_connection_delivers_everything_then_done_on_both_once() -> None:
    server, client = Recorder(), Recorder()
    pump = connect_in_memory(server, client)
    client.transport.write(b"last words")
    client.transport.lose_connection()
    assert client.transport.is_closing()
    pump.flush()
    assert server.received == b"last words"
    for proto in (server, client):
        assert proto.events == ["made", "lost"]
        [reason] = proto.reasons
        assert reason.check(ConnectionDone)
        assert not proto.connected
    # Closing again, or writing, after the end changes nothing.
    client.transport.lose_connection()
    server.transport.write(b"too late")
    with pytest.raises(TypeError):
        server.transport.write("still checked")
    pump.flush()
    assert client.received == b"" and len(server.reasons) == len(client.reasons) == 1


def test_bytes_written_to_a_closing_peer_are_not_delivered() -> None:
    server, client = Recorder(echo=True), Recorder()
    pump = connect_in_memory(server, client)
    client.transport.write(b"bye")
    client.transport.lose_connection()
    pump.flush()
    # The server's echo was on its way when the client closed: a closed socket reads nothing.
    assert server.received == b"bye" and client.received == b""
    assert client.events == ["made", "lost"]


def test_both_sides_closing_at_once() -> None:
    server, client = Recorder(), Recorder()
    pump = connect_in_memory(server, client)
    server.transport.write(b"unread")
    client.transport.write(b"unread too")
    server.transport.lose_connection()
    client.transport.lose_connection()
    pump.flush()
    assert server.events == client.events == ["made", "lost"]


def test_write_eof_reaches_eof_received_and_default_closes() -> None:
    server, client = Recorder(), Recorder()
    pump = connect_in_memory(server, client)
    client.transport.write(b"request")
    client.transport.write_eof()
    client.transport.write(b"after eof: dropped")
    pump.flush()
    assert server.received == b"request"
    assert server.events == ["made", "eof", "lost"]
    assert client.events == ["made", "lost"]
    assert server.reasons[0].check(ConnectionDone) and client.reasons[0].check(ConnectionDone)


def test_eof_received_true_keeps_the_write_side_open() -> None:
    server, client = Recorder(keep_open_on_eof=True), Recorder()
    pump = connect_in_memory(server, client)
    client.transport.write_eof()
    pump.flush()
    assert server.events == ["made", "eof"] and client.events == ["made"]
    server.transport.write(b"the answer")
    server.transport.lose_connection()
    pump.flush()
    assert client.received == b"the answer"
    assert server.events == ["made", "eof", "lost"] and client.events == ["made", "lost"]


def test_both_half_closed_ends_the_connection() -> None:
    server, client = Recorder(keep_open_on_eof=True), Recorder(keep_open_on_eof=True)
    pump = connect_in_memory(server, client)
    client.transport.write_eof()
    server.transport.write(b"reply")
    server.transport.write_eof()
    pump.flush()
    assert client.received == b"reply"
    assert server.events == ["made", "eof", "lost"] and client.events == ["made", "eof", "lost"]


def test_abort_drops_unsent_bytes_and_resets_the_peer() -> None:
    server, client = Recorder(), Recorder()
    pump = connect_in_memory(server, client)
    client.transport.write(b"never sent")
    client.transport.abort_connection()
    pump.flush()
    assert server.received == b""
    [mine], [theirs] = client.reasons, server.reasons
    assert mine.check(ConnectionAborted)
    assert theirs.check(ConnectionLost)
    assert isinstance(theirs.value.__cause__, ConnectionResetError)
    assert theirs.value.__cause__.errno == errno.ECONNRESET


def test_paused_reader_gets_nothing_until_resumed() -> None:
    server, client = Recorder(), Recorder()
    pump = connect_in_memory(server, client)
    server.transport.pause_reading()
    client.transport.write(b"queued")
    client.transport.lose_connection()
    pump.flush()
    assert server.received == b"" and client.events == ["made"]
    server.transport.resume_reading()
    pump.flush()
    assert server.received == b"queued"
    assert server.events == client.events == ["made", "lost"]


def test_eof_to_a_closing_peer_is_not_delivered() -> None:
    server, client = Recorder(), Recorder()
    pump = connect_in_memory(server, client)
    client.transport.pause_reading()
    server.transport.write(b"stuck")
    server.transport.lose_connection()  # waits: the client reads nothing
    client.transport.write_eof()
    pump.flush()
    assert server.events == ["made"] and client.events == ["made"]
    client.transport.resume_reading()
    pump.flush()
    assert client.received == b"stuck"
    assert server.events == ["made", "lost"] and client.events == ["made", "lost"]


def test_write_buffer_marks_pause_and_resume_the_writer() -> None:
    server, client = Recorder(), Recorder()
    pump = connect_in_memory(server, client)
    client.transport.set_write_buffer_limits(high=10, low=2)
    client.transport.write(b"x" * 10)
    assert client.events == ["made"]
    client.transport.write(b"x")
    assert client.events == ["made", "pause"]
    client.transport.write(b"more")
    assert client.events == ["made", "pause"]
    pump.flush()
    assert client.events == ["made", "pause", "resume"]
    assert len(server.received) == 15


def test_endless_conversation_is_reported() -> None:
    server, client = Recorder(echo=True), Recorder(echo=True)
    pump = connect_in_memory(server, client)
    client.transport.write(b"forever")
    with pytest.raises(RuntimeError, match="rounds"):
        pump.flush(max_rounds=50)


def test_line_receivers_talk_over_memory() -> None:
    class Upper(LineReceiver):
        def line_received(self, line: bytes) -> None:
            if line == b"QUIT":
                self.transport.lose_connection()
            else:
                self.send_line(line.upper())

    class Collect(LineReceiver):
        def __init__(self) -> None:
            self.lines: list[bytes] = []

        def line_received(self, line: bytes) -> None:
            self.lines.append(line)

    server, client = Upper(), Collect()
    pump = connect_in_memory(server, client)
    for word in (b"one", b"two", b"QUIT", b"ignored"):
        client.send_line(word)
    pump.flush()
    assert client.lines == [b"ONE", b"TWO"]
    assert not server.connected and not client.connected


def test_result_helpers_report_what_a_deferred_holds():
    from reactor.defer import Deferred, fail, succeed
    from reactor.testing import assert_no_result, failure_result_of, success_result_of

    assert success_result_of(succeed(3)) == 3
    assert failure_result_of(fail(KeyError("k")), KeyError).check(KeyError)
    pending = Deferred()
    assert_no_result(pending)
    with pytest.raises(AssertionError, match="no result"):
        success_result_of(pending)
    with pytest.raises(AssertionError, match="no result"):
        failure_result_of(pending)
    with pytest.raises(AssertionError, match="failed"):
        success_result_of(fail(ValueError("v")))
    with pytest.raises(AssertionError, match="succeeded"):
        failure_result_of(succeed(1))
    with pytest.raises(AssertionError, match="expected a failure"):
        failure_result_of(fail(ValueError("v")), KeyError)
    with pytest.raises(AssertionError, match="has a result"):
        assert_no_result(succeed(2))
