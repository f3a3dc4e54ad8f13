"""Coroutine streams: StreamReader, StreamWriter, open_connection and start_server.

The reader's parsing is tested by feeding it bytes by hand (no sockets, at
every chunk size); everything that touches a connection runs over real
TCP and UNIX sockets on every multiplexer, in both coroutine styles.
"""

import hashlib
import os
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.streams import (
    DEFAULT_LIMIT,
    StreamProtocol,
    StreamReader,
    StreamWriter,
    open_connection,
    open_unix_connection,
    start_server,
    start_unix_server,
)
from reactor import Deferred, ensure_deferred, fail, gather, inline_callbacks
from reactor.defer import Failure
from reactor.errors import (
    CancelledError,
    ConnectionAborted,
    ConnectionDone,
    ConnectionLost,
    IncompleteReadError,
    LimitOverrunError,
)
from reactor.task import sleep
from support import Endpoints

KINDS = ["tcp4", "unix"]

# For the async and inline_callbacks tests: fail in 20 s rather than hang.
pytestmark = pytest.mark.reactor_timeout(20)


# -- helpers -------------------------------------------------------------------


def success_result_of(d):
    """The result ``d`` already has; fails the test if it has none or failed."""
    box = []
    d.add_both(box.append)
    assert box, f"{d!r} has no result yet"
    if isinstance(box[0], Failure):
        pytest.fail(f"expected a result, got {box[0]!r}:\n{box[0].get_traceback()}")
    return box[0]


def failure_result_of(d, *types):
    """The Failure ``d`` already has (now handled); it must match one of ``types``."""
    box = []
    d.add_both(box.append)
    assert box, f"{d!r} has no result yet"
    assert isinstance(box[0], Failure), f"expected a failure, got {box[0]!r}"
    assert box[0].check(*types), f"expected one of {types}, got {box[0]!r}"
    return box[0]


class FakeTransport:
    """Just enough of a transport for a reader and a writer: records flow control and closing."""

    def __init__(self):
        self.reading = True
        self.pauses = 0
        self.resumes = 0
        self.written = bytearray()
        self.eof = False
        self.closed = False
        self.aborted = False

    def pause_reading(self):
        self.reading = False
        self.pauses += 1

    def resume_reading(self):
        self.reading = True
        self.resumes += 1

    def write(self, data):
        self.written += data

    def writelines(self, seq):
        for chunk in seq:
            self.written += chunk

    def write_eof(self):
        self.eof = True

    def can_write_eof(self):
        return True

    def lose_connection(self):
        self.closed = True

    def abort_connection(self):
        self.aborted = True

    def is_closing(self):
        return self.closed or self.aborted

    def get_extra_info(self, name, default=None):
        return {"peername": ("192.0.2.1", 4242)}.get(name, default)


def make_reader(limit=DEFAULT_LIMIT):
    reader = StreamReader(limit)
    transport = FakeTransport()
    reader.set_transport(transport)
    return reader, transport


async def collect_lines(reader):
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            return lines
        lines.append(line)


@pytest.fixture(params=KINDS)
def ends(request):
    e = Endpoints(request.param)
    yield e
    e.cleanup()


def serve(reactor, ends, handler, **kw):
    """A listening stream server for ``handler`` (start_server or start_unix_server)."""
    if ends.kind == "unix":
        ends._count += 1
        d = start_unix_server(reactor, handler, os.path.join(ends._dir, f"s{ends._count}.sock"), **kw)
    else:
        d = start_server(reactor, handler, 0, interface="127.0.0.1", **kw)
    return success_result_of(d)


def connect(reactor, ends, listener, **kw):
    """A Deferred of (reader, writer) connected to ``listener``."""
    if ends.kind == "unix":
        return open_unix_connection(reactor, listener.get_host(), **kw)
    return open_connection(reactor, "127.0.0.1", listener.port, **kw)


async def until(reactor, predicate, timeout=10.0):
    """Let the reactor run until ``predicate()`` holds; fail after ``timeout`` seconds."""
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        await sleep(reactor, 0.002)


async def all_closed(writers):
    for writer in writers:
        await writer.wait_closed()


# -- StreamReader, fed by hand ------------------------------------------------


def test_read_hands_out_what_is_buffered_at_once():
    reader, _ = make_reader()
    reader.feed_data(b"abcdef")
    assert success_result_of(reader.read(4)) == b"abcd"
    assert success_result_of(reader.read(10)) == b"ef"
    assert success_result_of(reader.read(0)) == b""
    d = reader.read(5)
    assert not d.called
    chunk = b"xyz"
    reader.feed_data(chunk)
    # A chunk that fits the waiting read is handed over as it is.
    assert success_result_of(d) is chunk
    d = reader.read(2)
    reader.feed_data(b"12345")
    assert success_result_of(d) == b"12"
    reader.feed_data(bytearray(b"6"))
    d = reader.read(-1)
    assert not d.called
    reader.feed_data(b"78")
    assert not d.called
    reader.feed_eof()
    assert success_result_of(d) == b"345678"
    assert reader.at_eof()
    assert success_result_of(reader.read(3)) == b""
    assert success_result_of(reader.read()) == b""


def test_read_waiting_gets_a_copy_of_mutable_data_and_empty_feeds_are_ignored():
    reader, _ = make_reader()
    d = reader.read(10)
    reader.feed_data(b"")
    assert not d.called
    data = bytearray(b"mutable")
    reader.feed_data(data)
    result = success_result_of(d)
    assert result == b"mutable" and type(result) is bytes


def test_read_waits_for_eof():
    reader, _ = make_reader()
    d = reader.read(4)
    reader.feed_eof()
    assert success_result_of(d) == b""
    assert reader.at_eof()


def test_readexactly():
    reader, _ = make_reader()
    d = reader.readexactly(5)
    reader.feed_data(b"ab")
    assert not d.called
    reader.feed_data(b"cdefg")
    assert success_result_of(d) == b"abcde"
    assert success_result_of(reader.readexactly(0)) == b""
    assert success_result_of(reader.readexactly(2)) == b"fg"
    with pytest.raises(ValueError):
        reader.readexactly(-1)
    reader.feed_data(b"xyz")
    d = reader.readexactly(10)
    reader.feed_eof()
    err = failure_result_of(d, IncompleteReadError).value
    assert err.partial == b"xyz" and err.expected == 10
    assert "3 bytes read on a total of 10" in str(err)
    err = failure_result_of(reader.readexactly(1), IncompleteReadError).value
    assert err.partial == b"" and err.expected == 1


def test_readline_at_every_chunk_size():
    data = b"one\ntwo\r\nthree\n\nlast"
    for size in range(1, len(data) + 1):
        reader, _ = make_reader()
        d = ensure_deferred(collect_lines(reader))
        for i in range(0, len(data), size):
            reader.feed_data(data[i:i + size])
        assert not d.called
        reader.feed_eof()
        # The unfinished line comes at EOF, then b"" (which ends the loop).
        assert success_result_of(d) == [b"one\n", b"two\r\n", b"three\n", b"\n", b"last"], size
        assert success_result_of(reader.readline()) == b""


def test_readuntil_at_every_chunk_size():
    data = b"alpha\r\nbeta\r\r\n\r\ngamma\r"
    for size in range(1, len(data) + 1):
        reader, _ = make_reader()

        async def collect():
            frames = []
            while True:
                try:
                    frames.append(await reader.readuntil(b"\r\n"))
                except IncompleteReadError as exc:
                    return frames, exc

        d = ensure_deferred(collect())
        for i in range(0, len(data), size):
            reader.feed_data(data[i:i + size])
        reader.feed_eof()
        frames, exc = success_result_of(d)
        assert frames == [b"alpha\r\n", b"beta\r\r\n", b"\r\n"], size
        assert exc.partial == b"gamma\r" and exc.expected is None


READ_OPS = st.lists(
    st.one_of(
        st.just(("line",)),
        st.tuples(st.just("until"), st.sampled_from([b";", b"ab", b"\n;"])),
        st.tuples(st.just("exactly"), st.integers(0, 12)),
    ),
    max_size=12,
)


async def run_reads(reader, ops):
    outcomes = []
    for op in ops:
        try:
            if op[0] == "line":
                got = await reader.readline()
            elif op[0] == "until":
                got = await reader.readuntil(op[1])
            else:
                got = await reader.readexactly(op[1])
            outcomes.append(("ok", got))
        except IncompleteReadError as exc:
            outcomes.append(("incomplete", exc.partial, exc.expected))
        except LimitOverrunError:
            outcomes.append(("overrun",))
    outcomes.append(("rest", await reader.read()))
    return outcomes


@settings(max_examples=300, deadline=None)
@given(
    data=st.lists(st.sampled_from([b"a", b"b", b"\n", b";", b"xyz"]), max_size=40).map(b"".join),
    cuts=st.lists(st.integers(0, 120), max_size=12),
    ops=READ_OPS,
)
def test_what_reads_return_does_not_depend_on_chunking(data, cuts, ops):
    # read(n) is left out: "up to n bytes" depends on the chunks by definition.
    whole = StreamReader(limit=8)
    whole.feed_data(data)
    whole.feed_eof()
    expected = success_result_of(ensure_deferred(run_reads(whole, ops)))
    split = StreamReader(limit=8)
    d = ensure_deferred(run_reads(split, ops))
    start = 0
    for cut in sorted({c for c in cuts if c < len(data)}) + [len(data)]:
        split.feed_data(data[start:cut])
        start = cut
    split.feed_eof()
    assert success_result_of(d) == expected


def test_readuntil_remembers_how_far_it_searched():
    reader, _ = make_reader(limit=10**6)
    d = reader.readuntil(b"END")
    for i in range(1000):
        reader.feed_data(b"x")
        # Each arrival is searched from where the last search stopped.
        assert reader._searched == max(0, i + 1 - 2)
    reader.feed_data(b"EN")
    assert not d.called
    reader.feed_data(b"D!")
    assert success_result_of(d) == b"x" * 1000 + b"END"
    assert reader._searched == 0
    assert success_result_of(reader.read(10)) == b"!"


def test_readuntil_checks_its_separator():
    reader, _ = make_reader()
    with pytest.raises(ValueError):
        reader.readuntil(b"")
    reader.feed_data(b"a|b|")
    assert success_result_of(reader.readuntil(bytearray(b"|"))) == b"a|"
    assert success_result_of(reader.readuntil(memoryview(b"|"))) == b"b|"


def test_line_at_the_limit_is_fine_and_one_byte_more_is_not():
    reader, _ = make_reader(limit=10)
    reader.feed_data(b"0123456789\n")
    assert success_result_of(reader.readline()) == b"0123456789\n"
    reader.feed_data(b"0123456789X\nnext\n")
    err = failure_result_of(reader.readline(), LimitOverrunError).value
    assert "over the stream's limit of 10" in str(err)
    # readline drops the over-long line and goes on with the next one.
    assert success_result_of(reader.readline()) == b"next\n"


def test_waiting_readline_fails_once_the_line_outgrows_the_limit():
    reader, _ = make_reader(limit=8)
    d = reader.readline()
    reader.feed_data(b"12345")
    assert not d.called
    reader.feed_data(b"6789")
    err = failure_result_of(d, LimitOverrunError).value
    assert "no end of line in 9 bytes" in str(err) and err.consumed == 9
    # The whole line is dropped, also the part that arrives later.
    d = reader.readline()
    reader.feed_data(b"abc")
    reader.feed_data(b"def\nok")
    assert not d.called
    reader.feed_data(b"\n")
    assert success_result_of(d) == b"ok\n"
    # An over-long last line is dropped up to EOF.
    reader.feed_data(b"0123456789")
    failure_result_of(reader.readline(), LimitOverrunError)
    reader.feed_data(b"more")
    reader.feed_eof()
    assert success_result_of(reader.readline()) == b""


def test_readuntil_over_the_limit_leaves_the_bytes_buffered():
    reader, _ = make_reader(limit=4)
    d = reader.readuntil(b"::")
    reader.feed_data(b"abcde")
    assert not d.called  # the separator may still start at index 4
    reader.feed_data(b"f")
    err = failure_result_of(d, LimitOverrunError).value
    assert err.consumed == 5 and "not found" in str(err)
    reader.feed_data(b"::")
    err = failure_result_of(reader.readuntil(b"::"), LimitOverrunError).value
    assert err.consumed == 6 and "found after 6 bytes" in str(err)
    assert success_result_of(reader.read(100)) == b"abcdef::"


def test_only_one_read_may_wait():
    reader, _ = make_reader()
    d = reader.readline()
    for second in (reader.read, reader.readline, lambda: reader.readexactly(2), reader.readuntil):
        with pytest.raises(RuntimeError, match="already waiting"):
            second()
    reader.feed_data(b"done\n")
    assert success_result_of(d) == b"done\n"


@pytest.mark.parametrize("start", [
    lambda r: r.read(100),
    lambda r: r.read(),
    lambda r: r.readexactly(6),
    lambda r: r.readline(),
    lambda r: r.readuntil(b"!"),
])
def test_cancelling_a_waiting_read_keeps_the_data(start):
    reader, _ = make_reader()
    d = start(reader)
    d.cancel()
    failure_result_of(d, CancelledError)
    reader.feed_data(b"abc")
    # The next read may wait: the cancelled one is forgotten.
    d = reader.readexactly(6)
    reader.feed_data(b"def\n!")
    assert success_result_of(d) == b"abcdef"
    d = reader.readexactly(5)
    d.cancel()
    failure_result_of(d, CancelledError)
    reader.feed_eof()
    assert success_result_of(reader.read()) == b"\n!"


def test_cancelled_waiter_is_forgotten_by_eof_too():
    reader, _ = make_reader()
    d = reader.readexactly(3)
    d.cancel()
    failure_result_of(d, CancelledError)
    reader.feed_eof()
    assert success_result_of(reader.read()) == b""


def test_error_comes_after_the_bytes_that_arrived_before_it():
    reader, _ = make_reader()
    reader.feed_data(b"line\npart")
    error = ConnectionLost("reset by peer")
    reader.set_exception(error)
    assert reader.exception() is error
    assert not reader.at_eof()
    assert success_result_of(reader.readline()) == b"line\n"
    # "part" can answer read(n), but not a line, exactly 10 bytes or read-to-EOF.
    failure_result_of(reader.readline(), ConnectionLost)
    failure_result_of(reader.readexactly(10), ConnectionLost)
    failure_result_of(reader.readuntil(b"!"), ConnectionLost)
    failure_result_of(reader.read(), ConnectionLost)
    assert success_result_of(reader.read(2)) == b"pa"
    assert success_result_of(reader.read(10)) == b"rt"
    assert reader.at_eof()
    assert failure_result_of(reader.read(10), ConnectionLost).value is error


def test_error_fails_the_waiting_read():
    reader, _ = make_reader()
    d = reader.readexactly(4)
    reader.feed_data(b"ab")
    reader.set_exception(ConnectionAborted("aborted"))
    failure_result_of(d, ConnectionAborted)


def test_flow_control_pauses_over_twice_the_limit_and_resumes_at_the_limit():
    reader, transport = make_reader(limit=10)
    reader.feed_data(b"x" * 20)
    assert transport.pauses == 0
    reader.feed_data(b"x")
    assert (transport.pauses, transport.reading) == (1, False)
    reader.feed_data(b"x" * 5)
    assert transport.pauses == 1
    assert "paused" in repr(reader)
    success_result_of(reader.read(5))
    assert not transport.reading  # 21 left
    success_result_of(reader.readexactly(11))
    assert (transport.resumes, transport.reading) == (1, True)  # 10 left
    reader.feed_data(b"y" * 11)
    assert transport.pauses == 2
    # A read that needs more than is buffered lets the bytes in while it waits.
    d = reader.readexactly(100)
    assert (transport.resumes, transport.reading) == (2, True)
    reader.feed_data(b"z" * 60)
    assert transport.pauses == 2  # somebody waits for these bytes
    assert not d.called
    # Once it gives up, the next arrival pauses again.
    d.cancel()
    failure_result_of(d, CancelledError)
    reader.feed_data(b"z")
    assert transport.pauses == 3
    assert len(success_result_of(reader.read(1000))) == 82
    assert transport.reading


def test_reading_everything_buffered_resumes_a_paused_transport():
    reader, transport = make_reader(limit=4)
    reader.feed_data(b"123456789")
    assert not transport.reading
    assert success_result_of(reader.read(100)) == b"123456789"
    assert transport.reading and transport.resumes == 1


def test_read_to_eof_is_never_paused():
    reader, transport = make_reader(limit=4)
    reader.feed_data(b"123456789")
    assert transport.pauses == 1
    d = reader.read()
    assert transport.reading
    reader.feed_data(b"a" * 100)
    reader.feed_eof()
    assert success_result_of(d) == b"123456789" + b"a" * 100
    assert transport.pauses == 1


def test_reader_without_transport_buffers_without_pausing():
    reader = StreamReader(limit=2)
    reader.feed_data(b"0123456789")
    assert success_result_of(reader.read(100)) == b"0123456789"
    with pytest.raises(ValueError):
        StreamReader(limit=0)
    assert reader.limit == 2


def test_async_for_reads_lines_until_eof():
    reader, _ = make_reader()

    async def lines():
        return [line async for line in reader]

    d = ensure_deferred(lines())
    reader.feed_data(b"a\nb\nc")
    reader.feed_eof()
    assert success_result_of(d) == [b"a\n", b"b\n", b"c"]


def test_reader_repr():
    reader, _ = make_reader()
    assert repr(reader) == "<StreamReader 0 bytes buffered>"
    reader.feed_data(b"abc")
    d = reader.readline()
    assert repr(reader) == "<StreamReader 3 bytes buffered, waiting in readline>"
    d.cancel()
    failure_result_of(d, CancelledError)
    reader.set_exception(ConnectionLost("x"))
    assert "failed: ConnectionLost('x')" in repr(reader)
    other, _ = make_reader()
    other.feed_eof()
    assert "eof" in repr(other)


# -- StreamWriter and StreamProtocol, on a fake transport -----------------------


def test_writer_delegates_to_its_transport():
    transport = FakeTransport()
    writer = StreamWriter(transport)
    writer.write(b"a")
    writer.writelines([b"b", b"c"])
    assert transport.written == b"abc"
    assert writer.can_write_eof()
    writer.write_eof()
    assert transport.eof
    assert writer.get_extra_info("peername") == ("192.0.2.1", 4242)
    assert writer.get_extra_info("nothing", 7) == 7
    assert not writer.is_closing()
    writer.close()
    assert transport.closed and writer.is_closing()
    writer.abort()
    assert transport.aborted
    assert writer.transport is transport
    assert repr(writer).startswith("<StreamWriter open")


def test_drain_waits_between_the_marks():
    protocol = StreamProtocol(lambda reader, writer: None)
    transport = FakeTransport()
    protocol.connection_made(transport)
    writer = protocol.writer
    assert success_result_of(writer.drain()) is None
    protocol.pause_writing()
    assert "paused" in repr(writer)
    first, second, cancelled = writer.drain(), writer.drain(), writer.drain()
    cancelled.cancel()
    failure_result_of(cancelled, CancelledError)
    cancelled.cancel()  # a second cancel does nothing
    assert not first.called and not second.called
    order = []
    again = []

    def refill(_):
        # A drain callback writes enough to go over the mark again, and drains.
        order.append("first")
        protocol.pause_writing()
        again.append(writer.drain())

    first.add_callback(refill)
    second.add_callback(lambda _: order.append("second"))
    protocol.resume_writing()
    assert order == ["first", "second"]
    assert not again[0].called
    protocol.resume_writing()
    assert success_result_of(again[0]) is None
    protocol.resume_writing()  # nothing waits: nothing happens


def test_a_drain_callback_may_cancel_a_later_waiter():
    protocol = StreamProtocol(lambda reader, writer: None)
    protocol.connection_made(FakeTransport())
    writer = protocol.writer
    for end in ("resume", "lost"):
        protocol.pause_writing()
        first, second = writer.drain(), writer.drain()
        first.add_both(lambda result: second.cancel() or result)
        if end == "resume":
            protocol.resume_writing()
            assert success_result_of(first) is None
        else:
            closed_first, closed_second = writer.wait_closed(), writer.wait_closed()
            closed_first.add_callback(lambda _: closed_second.cancel())
            protocol.connection_lost(Failure(ConnectionLost("gone")))
            failure_result_of(first, ConnectionLost)
            assert success_result_of(closed_first) is None
            failure_result_of(closed_second, CancelledError)
        failure_result_of(second, CancelledError)


def test_drain_fails_when_the_connection_is_lost():
    protocol = StreamProtocol(lambda reader, writer: None)
    protocol.connection_made(FakeTransport())
    writer = protocol.writer
    protocol.pause_writing()
    d = writer.drain()
    closed = writer.wait_closed()
    cancelled = writer.wait_closed()
    cancelled.cancel()
    failure_result_of(cancelled, CancelledError)
    cancelled.cancel()
    reason = Failure(ConnectionLost("reset"))
    protocol.connection_lost(reason)
    assert failure_result_of(d, ConnectionLost).value is reason.value
    assert success_result_of(closed) is None
    # Once lost, drain fails at once and wait_closed fires at once.
    failure_result_of(writer.drain(), ConnectionLost)
    assert success_result_of(writer.wait_closed()) is None
    assert "lost" in repr(writer)
    failure_result_of(protocol.reader.read(), ConnectionLost)
    assert not protocol.connected


def test_clean_close_is_eof_for_the_reader_and_an_error_for_drain():
    protocol = StreamProtocol(lambda reader, writer: None)
    protocol.connection_made(FakeTransport())
    d = protocol.reader.readline()
    protocol.data_received(b"half a line")
    assert protocol.eof_received() is True  # keep the write side open
    assert success_result_of(d) == b"half a line"
    protocol.connection_lost(Failure(ConnectionDone("closed")))
    assert protocol.reader.at_eof() and protocol.reader.exception() is None
    failure_result_of(protocol.writer.drain(), ConnectionDone)


def test_protocol_lost_before_connection_made_only_ends_the_reader():
    protocol = StreamProtocol(lambda reader, writer: None)
    assert protocol.transport is None and protocol.writer is None and protocol.factory is None
    protocol.connection_lost(Failure(ConnectionLost("early")))
    failure_result_of(protocol.reader.read(), ConnectionLost)


# -- over sockets: both coroutine styles ---------------------------------------

async def test_async_def_client_and_server(reactor, ends):
    server_writers = []

    async def handler(reader, writer):
        server_writers.append(writer)
        async for line in reader:
            writer.write(line.upper())
            await writer.drain()
        writer.close()

    listener = serve(reactor, ends, handler)
    reader, writer = await connect(reactor, ends, listener)
    writer.write(b"hello\nwor")
    assert await reader.readline() == b"HELLO\n"
    writer.writelines([b"ld\n", b"bye"])
    assert await reader.readexactly(6) == b"WORLD\n"
    writer.write_eof()
    # The server's last line had no end; it gets it at EOF and closes.
    assert await reader.read() == b"BYE"
    assert reader.at_eof()
    await writer.wait_closed()
    await all_closed(server_writers)
    await listener.close()


@inline_callbacks
def test_inline_callbacks_client_and_server(reactor, ends):
    server_writers = []

    @inline_callbacks
    def handler(reader, writer):
        server_writers.append(writer)
        while True:
            try:
                frame = yield reader.readuntil(b";")
            except IncompleteReadError as exc:
                writer.write(b"rest=" + exc.partial)
                break
            writer.write(frame[::-1])
            yield writer.drain()
        writer.close()

    listener = serve(reactor, ends, handler)
    reader, writer = yield connect(reactor, ends, listener)
    writer.write(b"abc;de")
    assert (yield reader.readexactly(4)) == b";cba"
    writer.write(b"f;gh")
    assert (yield reader.readuntil(b"d")) == b";fed"
    writer.write_eof()
    assert (yield reader.read()) == b"rest=gh"
    yield writer.wait_closed()
    yield all_closed(server_writers)
    yield listener.close()


async def test_plain_function_handler_returning_a_deferred(reactor, ends):
    server_writers = []

    def handler(reader, writer):
        server_writers.append(writer)

        def answer(line):
            writer.write(line[::-1])
            writer.close()

        return reader.readline().add_callback(answer)

    listener = serve(reactor, ends, handler)
    reader, writer = await connect(reactor, ends, listener)
    writer.write(b"stressed\n")
    assert await reader.read() == b"\ndesserts"
    writer.close()
    await writer.wait_closed()
    await all_closed(server_writers)
    await listener.close()


@pytest.mark.parametrize("returns", [None, 42])
async def test_plain_function_handler_returning_none_or_a_value(reactor, ends, returns):
    server_writers = []

    def handler(reader, writer):
        server_writers.append(writer)
        writer.write(b"greetings\n")
        writer.close()
        return returns

    listener = serve(reactor, ends, handler)
    reader, writer = await connect(reactor, ends, listener)
    assert await reader.readline() == b"greetings\n"
    assert await reader.readline() == b""
    writer.close()
    await writer.wait_closed()
    await all_closed(server_writers)
    await listener.close()


async def test_plain_generator_handler_is_run_like_inline_callbacks(reactor, ends):
    server_writers = []

    def handler(reader, writer):
        server_writers.append(writer)
        line = yield reader.readline()
        writer.write(b"you said " + line)
        writer.close()

    listener = serve(reactor, ends, handler)
    reader, writer = await connect(reactor, ends, listener)
    writer.write(b"hi\n")
    assert await reader.read() == b"you said hi\n"
    writer.close()
    await all_closed(server_writers)
    await listener.close()


def _failing_handlers(server_writers):
    async def async_def(reader, writer):
        server_writers.append(writer)
        await reader.readline()
        raise ValueError("handler broke")

    @inline_callbacks
    def generator(reader, writer):
        server_writers.append(writer)
        yield reader.readline()
        raise ValueError("handler broke")

    def raises(reader, writer):
        server_writers.append(writer)
        raise ValueError("handler broke")

    def failed_deferred(reader, writer):
        server_writers.append(writer)
        return fail(ValueError("handler broke"))

    return {
        "async_def": async_def, "generator": generator, "raises": raises, "failed_deferred": failed_deferred,
    }


@pytest.mark.parametrize("style", ["async_def", "generator", "raises", "failed_deferred"])
async def test_handler_error_is_logged_and_the_connection_aborted(reactor, ends, caplog, style):
    server_writers = []
    handler = _failing_handlers(server_writers)[style]
    listener = serve(reactor, ends, handler)
    reader, writer = await connect(reactor, ends, listener)
    writer.write(b"trigger\n")
    try:
        assert await reader.read() == b""
    except ConnectionLost:
        pass  # the abort may reset the connection rather than close it
    await all_closed(server_writers)
    assert server_writers[0].is_closing()
    records = [r for r in caplog.records if "Unhandled error in stream handler" in r.getMessage()]
    assert len(records) == 1
    assert records[0].name == "reactor"
    assert records[0].exc_info[0] is ValueError and "handler broke" in str(records[0].exc_info[1])
    assert handler.__qualname__ in records[0].getMessage()
    writer.close()
    await writer.wait_closed()
    await listener.close()


async def test_cancelled_handler_closes_the_connection_quietly(reactor, ends):
    server_writers = []
    running = []

    def handler(reader, writer):
        server_writers.append(writer)

        async def serve():
            writer.write(b"welcome\n")
            await reader.readline()

        running.append(ensure_deferred(serve()))
        return running[-1]

    listener = serve(reactor, ends, handler)
    reader, writer = await connect(reactor, ends, listener)
    assert await reader.readline() == b"welcome\n"
    running[0].cancel()  # the way a server shutting down stops its handlers
    assert await reader.read() == b""
    await all_closed(server_writers)
    writer.close()
    await writer.wait_closed()
    await listener.close()


# -- over sockets: reading ------------------------------------------------------


async def test_write_side_stays_open_after_the_peers_eof(reactor, ends):
    server_writers = []
    facts = {}

    async def handler(reader, writer):
        server_writers.append(writer)
        request = await reader.read()
        facts["at_eof"] = reader.at_eof()
        facts["closing"] = writer.is_closing()
        # Still open a while later: only the handler closes it.
        await sleep(reactor, 0.02)
        facts["closing_later"] = writer.is_closing()
        writer.write(b"got " + request)
        await writer.drain()
        writer.close()

    listener = serve(reactor, ends, handler)
    reader, writer = await connect(reactor, ends, listener)
    writer.write(b"the request")
    writer.write_eof()
    assert await reader.read() == b"got the request"
    assert facts == {"at_eof": True, "closing": False, "closing_later": False}
    await writer.wait_closed()
    await all_closed(server_writers)
    await listener.close()


async def test_readline_over_the_limit_gets_a_clear_error(reactor, ends):
    server_writers = []

    async def handler(reader, writer):
        server_writers.append(writer)
        try:
            await reader.readline()
        except LimitOverrunError as exc:
            writer.write(f"error: {exc}\n".encode())
        writer.close()

    listener = serve(reactor, ends, handler, limit=100)
    reader, writer = await connect(reactor, ends, listener)
    writer.write(b"x" * 500)
    answer = await reader.readline()
    assert answer.startswith(b"error: no end of line in") and b"limit of 100" in answer
    writer.close()
    await all_closed(server_writers)
    await listener.close()


async def test_timed_out_read_loses_no_data(reactor, ends):
    server_writers = []
    go = Deferred()

    async def handler(reader, writer):
        server_writers.append(writer)
        writer.write(b"ab")
        await go
        writer.write(b"cd")
        writer.close()

    listener = serve(reactor, ends, handler)
    reader, writer = await connect(reactor, ends, listener)
    d = reader.readexactly(4).add_timeout(0.05, reactor)
    with pytest.raises(TimeoutError):
        await d
    go.callback(None)
    assert await reader.readexactly(4) == b"abcd"
    writer.close()
    await all_closed(server_writers)
    await listener.close()


async def test_reset_by_the_peer_fails_the_waiting_read(reactor, ends):
    server_writers = []
    errors = []

    async def handler(reader, writer):
        server_writers.append(writer)
        # Left unread by the peer, so that its close resets the connection.
        writer.write(b"x" * 1000)
        try:
            await reader.readexactly(10)
        except ConnectionLost as exc:
            errors.append(exc)

    listener = serve(reactor, ends, handler)
    raw = ends.raw_socket()
    try:
        raw.connect(ends.address(listener))
        await until(reactor, lambda: server_writers)
        if ends.kind != "unix":
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        raw.close()
    await all_closed(server_writers)
    assert len(errors) == 1 and isinstance(errors[0].__cause__, OSError)
    await listener.close()


async def test_many_clients_at_once(reactor, ends):
    server_writers = []

    async def handler(reader, writer):
        server_writers.append(writer)
        name = (await reader.readline()).strip()
        count = int(await reader.readline())
        for i in range(count):
            writer.write(b"%s %d\n" % (name, i))
        await writer.drain()
        writer.close()

    async def client(n):
        reader, writer = await connect(reactor, ends, listener)
        writer.write(b"c%d\n%d\n" % (n, n))
        lines = await collect_lines(reader)
        writer.close()
        await writer.wait_closed()
        return lines

    listener = serve(reactor, ends, handler)
    results = await gather(*[client(n) for n in range(20)])
    for n, lines in enumerate(results):
        assert lines == [b"c%d %d\n" % (n, i) for i in range(n)]
    await all_closed(server_writers)
    await listener.close()


# -- over sockets: flow control --------------------------------------------------


async def test_drain_waits_for_a_peer_that_does_not_read(reactor, ends):
    limit = 16384
    server_readers = []
    server_writers = []
    go = Deferred()
    received = []

    async def handler(reader, writer):
        server_readers.append(reader)
        server_writers.append(writer)
        await go
        total = hashlib.sha256()
        size = 0
        while True:
            data = await reader.read(65536)
            if not data:
                break
            total.update(data)
            size += len(data)
        received.append((size, total.hexdigest()))
        writer.close()

    listener = serve(reactor, ends, handler, limit=limit)
    reader, writer = await connect(reactor, ends, listener)
    transport = writer.transport
    transport.set_write_buffer_limits(high=65536, low=16384)
    sent = hashlib.sha256()
    size = 0
    chunk = os.urandom(65536)
    while True:
        writer.write(chunk)
        sent.update(chunk)
        size += len(chunk)
        d = writer.drain()
        if not d.called:
            break
        await d
        assert size < 256 * 1024 * 1024, "the peer never pushed back"
    # Stopped at the high mark: the drain is pending while the peer does not read.
    assert transport.get_write_buffer_size() > 65536
    for _ in range(10):
        await sleep(reactor, 0.002)
    assert not d.called
    # The server's reader paused its transport instead of buffering everything.
    server_reader = server_readers[0]
    assert not server_writers[0].transport.is_reading()
    assert len(server_reader._buffer) <= 2 * limit + 262144
    # The peer reads: the buffer drains and so does drain().
    go.callback(None)
    await d
    assert transport.get_write_buffer_size() <= 16384
    writer.close()
    await all_closed(server_writers)
    await writer.wait_closed()
    assert received == [(size, sent.hexdigest())]
    await listener.close()


async def test_drain_fails_when_the_connection_is_aborted_meanwhile(reactor, ends):
    server_writers = []
    outcome = {}

    async def handler(reader, writer):
        server_writers.append(writer)
        writer.transport.set_write_buffer_limits(high=1024, low=0)
        chunk = b"z" * 65536
        while True:
            writer.write(chunk)
            d = writer.drain()
            if not d.called:
                break
            await d
        # The client does not read; give up on it.
        closed = writer.wait_closed()
        writer.abort()
        try:
            await d
        except ConnectionAborted:
            outcome["drain"] = "aborted"
        try:
            await writer.drain()
        except ConnectionAborted:
            outcome["drain after"] = "aborted"
        outcome["closed"] = await closed

    listener = serve(reactor, ends, handler)
    # A small limit: the client's reader pauses its transport early.
    reader, writer = await connect(reactor, ends, listener, limit=1024)
    await all_closed(server_writers)
    assert outcome == {"drain": "aborted", "drain after": "aborted", "closed": None}
    try:
        # The bytes that made it across, then the end.
        while await reader.read(1 << 20):
            pass
    except ConnectionLost:
        pass
    writer.close()
    await writer.wait_closed()
    await listener.close()


async def test_two_megabytes_echoed_with_drain(reactor, ends):
    server_writers = []

    async def handler(reader, writer):
        server_writers.append(writer)
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    listener = serve(reactor, ends, handler)
    reader, writer = await connect(reactor, ends, listener)
    payload = os.urandom(2 * 1024 * 1024)

    async def send():
        view = memoryview(payload)
        for i in range(0, len(payload), 100_000):
            writer.write(view[i:i + 100_000])
            await writer.drain()
        writer.write_eof()

    async def receive():
        return await reader.readexactly(len(payload))

    _, echoed = await gather(send(), receive())
    assert echoed == payload
    assert await reader.read() == b""
    await writer.wait_closed()
    await all_closed(server_writers)
    await listener.close()


# -- over sockets: connecting, listening, closing ------------------------------------


@pytest.mark.parametrize("how", ["close", "abort"])
async def test_wait_closed_fires_however_the_connection_ends(reactor, ends, how):
    server_writers = []
    ends_seen = []

    async def handler(reader, writer):
        server_writers.append(writer)
        try:
            ends_seen.append(await reader.read())
        except ConnectionLost as exc:
            ends_seen.append(exc)
        writer.close()

    listener = serve(reactor, ends, handler)
    reader, writer = await connect(reactor, ends, listener)
    closed = writer.wait_closed()
    assert not closed.called
    writer.write(b"last words")
    getattr(writer, how)()
    assert writer.is_closing()
    assert await closed is None
    assert await writer.wait_closed() is None
    await all_closed(server_writers)
    if how == "close":
        assert ends_seen == [b"last words"]
        assert success_result_of(reader.read()) == b""
    else:
        failure_result_of(reader.read(), ConnectionAborted)
    await listener.close()


async def test_extra_info_and_addresses(reactor, ends):
    server_writers = []

    def handler(reader, writer):
        server_writers.append(writer)
        writer.close()

    listener = serve(reactor, ends, handler)
    reader, writer = await connect(reactor, ends, listener)
    sock = writer.get_extra_info("socket")
    assert isinstance(sock, socket.socket)
    if ends.kind == "unix":
        assert writer.get_extra_info("peername") == listener.get_host()
    else:
        assert writer.get_extra_info("peername") == ("127.0.0.1", listener.port)
        assert writer.get_extra_info("sockname") == sock.getsockname()
    assert writer.get_extra_info("no such thing", "default") == "default"
    assert writer.can_write_eof()
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()
    await all_closed(server_writers)
    await listener.close()


async def test_connection_refused(reactor, ends):
    if ends.kind == "unix":
        path = os.path.join(ends._dir, "dead.sock")
        dead = socket.socket(socket.AF_UNIX)
        dead.bind(path)
        dead.close()
        d = open_unix_connection(reactor, path)
    else:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        d = open_connection(reactor, "127.0.0.1", port)
    with pytest.raises(ConnectionRefusedError):
        await d


async def test_cancelling_open_connection_stops_the_attempt(reactor, ends):
    # A listener nobody accepts from: the attempt cannot finish on its own.
    family = socket.AF_UNIX if ends.kind == "unix" else socket.AF_INET
    silent = socket.socket(family)
    try:
        if ends.kind == "unix":
            address = os.path.join(ends._dir, "silent.sock")
            silent.bind(address)
            silent.listen(1)
            d = open_unix_connection(reactor, address, timeout=5)
        else:
            silent.bind(("127.0.0.1", 0))
            silent.listen(1)
            d = open_connection(reactor, "127.0.0.1", silent.getsockname()[1], timeout=5)
        d.cancel()
        with pytest.raises(CancelledError):
            await d
        d.cancel()  # already failed: nothing happens
    finally:
        silent.close()


def test_listening_failures_come_as_failed_deferreds(reactor, ends):
    def handler(reader, writer):
        pass

    if ends.kind == "unix":
        d = start_unix_server(reactor, handler, os.path.join(ends._dir, "no", "such", "dir.sock"))
        failure_result_of(d, OSError)
    else:
        taken = socket.socket()
        try:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            d = start_server(reactor, handler, taken.getsockname()[1], interface="127.0.0.1")
            failure_result_of(d, OSError)
        finally:
            taken.close()


def test_arguments_are_checked(reactor):
    def handler(reader, writer):
        pass

    with pytest.raises(TypeError, match="callable"):
        start_server(reactor, "not a handler", 0)
    with pytest.raises(TypeError, match="callable"):
        start_unix_server(reactor, None, "/nonexistent/x.sock")
    with pytest.raises(ValueError):
        start_server(reactor, handler, 0, limit=0)
    with pytest.raises(ValueError):
        start_unix_server(reactor, handler, "/nonexistent/x.sock", limit=-1)
    with pytest.raises(ValueError):
        open_connection(reactor, "127.0.0.1", 1, limit=0)
    with pytest.raises(ValueError):
        open_unix_connection(reactor, "/nonexistent/x.sock", limit=0)


def test_run_until_complete_with_a_listener(reactor):
    # The shape echo servers and examples use: start_server's Deferred has the Listener at once.
    async def handler(reader, writer):
        writer.close()

    listener = reactor.run_until_complete(start_server(reactor, handler, 0, interface="127.0.0.1"))
    assert listener.port > 0
    reactor.run_until_complete(listener.close())
