"""Framers: LineReceiver, NetstringReceiver, Int32StringReceiver over a StringTransport."""

from __future__ import annotations

import logging
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.basic import Int32StringReceiver, LineReceiver, NetstringReceiver
from reactor.testing import StringTransport

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- helpers ---------------------------------------------------------------


class Lines(LineReceiver):
    """Records lines; over-long lines are recorded (not closed on) when ``keep_going``."""

    def __init__(self, max_length: int = 16384, keep_going: bool = False) -> None:
        self.MAX_LENGTH = max_length
        self.keep_going = keep_going
        self.events: list[tuple[str, bytes]] = []

    def line_received(self, line: bytes) -> None:
        self.events.append(("line", line))

    def raw_data_received(self, data: bytes) -> None:
        self.events.append(("raw", data))

    def line_length_exceeded(self, line: bytes) -> None:
        self.events.append(("too long", b""))
        if not self.keep_going:
            super().line_length_exceeded(line)


class RawSwitcher(Lines):
    """Protocol with a raw section: ``RAW<n>`` switches to raw mode for exactly n bytes."""

    want = 0

    def line_received(self, line: bytes) -> None:
        if line.startswith(b"RAW"):
            self.want = int(line[3:])
            self.events.append(("line", line))
            self.set_raw_mode()
            if self.want == 0:
                self.set_line_mode()
        else:
            self.events.append(("line", line))

    def raw_data_received(self, data: bytes) -> None:
        mine, rest = data[: self.want], data[self.want:]
        self.want -= len(mine)
        self.events.append(("raw", mine))
        if self.want == 0:
            self.set_line_mode(rest)


class Strings(NetstringReceiver):
    """Records strings and errors."""

    def __init__(self, max_length: int = 99999) -> None:
        self.MAX_LENGTH = max_length
        self.events: list[tuple[str, Any]] = []

    def string_received(self, string: bytes) -> None:
        self.events.append(("string", string))

    def length_limit_exceeded(self, length: int) -> None:
        self.events.append(("too long", length))
        super().length_limit_exceeded(length)

    def netstring_parse_error(self, problem: str) -> None:
        self.events.append(("malformed", None))
        super().netstring_parse_error(problem)


class Int32s(Int32StringReceiver):
    """Records strings and refused lengths."""

    def __init__(self, max_length: int = 99999) -> None:
        self.MAX_LENGTH = max_length
        self.events: list[tuple[str, Any]] = []

    def string_received(self, string: bytes) -> None:
        self.events.append(("string", string))

    def length_limit_exceeded(self, length: int) -> None:
        self.events.append(("too long", length))
        super().length_limit_exceeded(length)


def merge_raw(events: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Join adjacent raw chunks: how raw bytes are chunked is not part of the contract."""
    merged: list[tuple[str, Any]] = []
    for kind, value in events:
        if kind == "raw" and merged and merged[-1][0] == "raw":
            merged[-1] = ("raw", merged[-1][1] + value)
        elif kind != "raw" or value:
            merged.append((kind, value))
    return merged


def run(make: Callable[[], Any], chunks: list[bytes]) -> tuple[list[tuple[str, Any]], bool]:
    """Feed ``chunks`` to a fresh protocol; return its events and whether it closed."""
    proto = make()
    transport = StringTransport()
    proto.connection_made(transport)
    for chunk in chunks:
        proto.data_received(chunk)
    return merge_raw(proto.events), transport.disconnecting


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    return [stream[a:b] for a, b in zip(points, points[1:])]


def chunked(stream: bytes, size: int) -> list[bytes]:
    return [stream[i:i + size] for i in range(0, len(stream), size)]


def assert_every_chunk_size(make: Callable[[], Any], stream: bytes) -> tuple[list, bool]:
    whole = run(make, [stream])
    for size in range(1, len(stream) + 1):
        assert run(make, chunked(stream, size)) == whole, f"chunk size {size}"
    return whole


line_streams = st.lists(
    st.sampled_from([b"a", b"bc", b"\r", b"\n", b"\r\n", b"xyzzy", b"\r\r\n"]), max_size=40
).map(b"".join)


# -- LineReceiver ----------------------------------------------------------


@FAST
@given(stream=line_streams, cuts=st.lists(st.integers(min_value=0), max_size=20), keep_going=st.booleans())
def test_lines_any_split_gives_the_same_lines(stream: bytes, cuts: list[int], keep_going: bool, caplog) -> None:
    def make() -> Lines:
        return Lines(max_length=6, keep_going=keep_going)

    assert run(make, split(stream, cuts)) == run(make, [stream])


@FAST
@given(stream=line_streams)
def test_lines_byte_at_a_time_matches_a_model(stream: bytes) -> None:
    expected = [("line", line) for line in stream.split(b"\r\n")[:-1]]
    assert run(Lines, chunked(stream, 1)) == (expected, False)


def test_lines_every_chunk_size() -> None:
    stream = b"hello\r\nworld\r\n\r\n\r\rhalf\rline\r\n" + b"x" * 30 + b"\r\ntail"
    events, closed = assert_every_chunk_size(Lines, stream)
    assert events == [
        ("line", b"hello"), ("line", b"world"), ("line", b""), ("line", b"\r\rhalf\rline"), ("line", b"x" * 30)
    ]
    assert not closed


def test_line_of_exactly_max_length_passes_however_split() -> None:
    stream = b"12345\r\n123456\r\nok\r\n"
    events, closed = assert_every_chunk_size(lambda: Lines(max_length=5, keep_going=True), stream)
    assert events == [("line", b"12345"), ("too long", b""), ("line", b"ok")]
    assert not closed


def test_too_long_line_logs_calls_hook_and_closes(caplog: pytest.LogCaptureFixture) -> None:
    proto = Lines(max_length=10)
    transport = StringTransport()
    proto.connection_made(transport)
    with caplog.at_level(logging.ERROR, logger="reactor"):
        proto.data_received(b"short\r\n" + b"y" * 11 + b"\r\nnever\r\n")
    assert proto.events == [("line", b"short"), ("too long", b"")]
    assert transport.disconnecting
    [record] = [r for r in caplog.records if r.name.startswith("reactor")]
    assert record.levelno == logging.ERROR
    assert "MAX_LENGTH=10" in record.getMessage() and "Lines" in record.getMessage()
    assert "closing the connection" in record.getMessage()
    # Whatever comes after the close is dropped, not buffered.
    proto.data_received(b"more\r\n" * 100)
    assert proto._buffer is None
    assert proto.events == [("line", b"short"), ("too long", b"")]


def test_too_long_line_without_delimiter_is_caught_before_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    proto = Lines(max_length=10)
    transport = StringTransport()
    proto.connection_made(transport)
    for _ in range(11):  # 11 bytes might still be 10 bytes and a b"\r"
        proto.data_received(b"z")
    assert not transport.disconnecting
    proto.data_received(b"z")
    assert transport.disconnecting
    assert proto.events == [("too long", b"")]
    assert "exceeds MAX_LENGTH=10" in caplog.text


def test_overridden_hook_can_skip_the_long_line() -> None:
    stream = b"ok\r\n" + b"w" * 50 + b"\r\naft\r\n" + b"v" * 5 + b"\r\nend\r\n"
    events, closed = assert_every_chunk_size(lambda: Lines(max_length=4, keep_going=True), stream)
    assert events == [("line", b"ok"), ("too long", b""), ("line", b"aft"), ("too long", b""), ("line", b"end")]
    assert not closed


def test_default_hook_without_transport_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    proto = Lines(max_length=2)
    proto.data_received(b"abcdef\r\n")
    assert proto.events == [("too long", b"")]
    assert "peer None" in caplog.text


def test_send_line() -> None:
    proto = LineReceiver()
    transport = StringTransport()
    proto.connection_made(transport)
    proto.send_line(b"hello")
    proto.delimiter = b"\n"
    proto.send_line(b"")
    assert transport.value() == b"hello\r\n\n"


def test_line_received_may_feed_more_data_reentrantly() -> None:
    class Feeder(Lines):
        def line_received(self, line: bytes) -> None:
            super().line_received(line)
            if line == b"one":
                self.data_received(b"inserted\r\n")
                self.events.append(("back from", line))

    events = run(Feeder, [b"one\r\ntwo\r\n"])
    # The re-fed bytes are appended, not parsed inside the call: they come after "two".
    assert events == ([("line", b"one"), ("back from", b"one"), ("line", b"two"), ("line", b"inserted")], False)


def test_raw_handler_feeding_more_then_switching_back_with_leftover() -> None:
    class Juggler(Lines):
        def line_received(self, line: bytes) -> None:
            super().line_received(line)
            if line == b"go raw":
                self.set_raw_mode()

        def raw_data_received(self, data: bytes) -> None:
            super().raw_data_received(data[:2])
            self.data_received(b"later\r\n")
            # Not necessarily bytes from the stream: whatever is given is parsed next.
            self.set_line_mode(data[2:].upper())

    events = run(Juggler, [b"first\r\ngo raw\r\nRRleft\r\n"])
    assert events == (
        [("line", b"first"), ("line", b"go raw"), ("raw", b"RR"), ("line", b"LEFT"), ("line", b"later")], False
    )


def test_raw_mode_and_back_mid_buffer_loses_nothing() -> None:
    stream = b"head\r\nRAW7\r\n\r\nab\r\ncd\r\nnext\r\nRAW0\r\nlast\r\nRAW3\r\nxyz"
    events, _ = assert_every_chunk_size(RawSwitcher, stream)
    assert events == [
        ("line", b"head"), ("line", b"RAW7"), ("raw", b"\r\nab\r\nc"), ("line", b"d"),
        ("line", b"next"), ("line", b"RAW0"), ("line", b"last"), ("line", b"RAW3"), ("raw", b"xyz"),
    ]


@st.composite
def mixed_streams(draw: Any) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A stream of lines and raw sections, and the events it must produce."""
    stream, expected = [], []
    for kind in draw(st.lists(st.sampled_from(["line", "raw"]), max_size=12)):
        if kind == "line":
            line = draw(st.binary(max_size=8).filter(lambda b: b"\r\n" not in b and not b.endswith(b"\r")))
            if line.startswith(b"RAW"):
                continue
            stream.append(line + b"\r\n")
            expected.append(("line", line))
        else:
            data = draw(st.binary(max_size=12) | st.sampled_from([b"\r\n", b"RAW2\r\n", b"\r"]))
            stream.append(b"RAW%d\r\n" % len(data) + data)
            expected.append(("line", b"RAW%d" % len(data)))
            if data:
                expected.append(("raw", data))
    return b"".join(stream), merge_raw(expected)


@FAST
@given(case=mixed_streams(), cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_raw_sections_any_split(case: tuple[bytes, list], cuts: list[int]) -> None:
    stream, expected = case
    assert run(RawSwitcher, split(stream, cuts)) == (expected, False)


def test_raw_chunk_with_nothing_buffered_is_passed_uncopied() -> None:
    proto = Lines()
    proto.connection_made(StringTransport())
    proto.set_raw_mode()
    chunk = b"q" * 1000
    proto.data_received(chunk)
    assert proto.events[0][1] is chunk
    assert proto._buffer is None


def test_set_raw_mode_from_outside_flushes_the_partial_line() -> None:
    proto = Lines()
    proto.connection_made(StringTransport())
    proto.data_received(b"done\r\npartial")
    proto.set_raw_mode()
    assert proto.events == [("line", b"done"), ("raw", b"partial")]
    proto.set_line_mode(b"extra\r\nmore")
    proto.data_received(b"\r\n")
    assert proto.events[2:] == [("line", b"extra"), ("line", b"more")]


def test_set_line_mode_extra_goes_before_what_is_buffered() -> None:
    proto = Lines()
    proto.connection_made(StringTransport())
    proto.data_received(b"tail")
    proto.set_line_mode(b"first\r\nhead-")
    assert proto.events == [("line", b"first")]
    proto.data_received(b"\r\n")
    assert proto.events == [("line", b"first"), ("line", b"head-tail")]


def test_raw_handler_switching_back_then_feeding_more() -> None:
    class Back(Lines):
        def raw_data_received(self, data: bytes) -> None:
            super().raw_data_received(data)
            self.set_line_mode()
            self.data_received(b"fed\r\n")

    proto = Back()
    proto.connection_made(StringTransport())
    proto.set_raw_mode()
    proto.data_received(b"blob")
    assert proto.events == [("raw", b"blob"), ("line", b"fed")]
    assert proto._buffer is None


def test_raw_data_after_close_is_dropped() -> None:
    proto = Lines()
    transport = StringTransport()
    proto.connection_made(transport)
    proto.set_raw_mode()
    transport.lose_connection()
    proto.data_received(b"late")
    assert proto.events == []


def test_closing_from_line_received_stops_the_buffer() -> None:
    class Quitter(Lines):
        def line_received(self, line: bytes) -> None:
            super().line_received(line)
            if line == b"QUIT":
                self.transport.lose_connection()

    assert run(Quitter, [b"a\r\nQUIT\r\nb\r\n", b"c\r\n"]) == ([("line", b"a"), ("line", b"QUIT")], True)


def test_changing_the_delimiter_between_lines() -> None:
    class Switch(Lines):
        def line_received(self, line: bytes) -> None:
            super().line_received(line)
            self.delimiter = b"\n" if self.delimiter == b"\r\n" else b"\r\n"

    stream = b"one\r\ntwo\nthree\r\nfour\n"
    events, _ = assert_every_chunk_size(Switch, stream)
    assert events == [("line", b"one"), ("line", b"two"), ("line", b"three"), ("line", b"four")]


def test_changing_the_delimiter_between_calls() -> None:
    proto = Lines()
    proto.connection_made(StringTransport())
    proto.data_received(b"one\ntwo")
    assert proto.events == []
    proto.delimiter = b"\n"
    proto.data_received(b"o")  # no delimiter byte in it, yet "one" is now a line
    assert proto.events == [("line", b"one")]


def test_empty_delimiter_is_refused() -> None:
    proto = Lines()
    proto.delimiter = b""
    with pytest.raises(ValueError, match="delimiter"):
        proto.data_received(b"abc")


def test_longer_delimiter() -> None:
    class Boundary(Lines):
        delimiter = b"--END--"

    events, _ = assert_every_chunk_size(Boundary, b"a--END--b-END--c--END---END-")
    assert events == [("line", b"a"), ("line", b"b-END--c")]
    events, _ = assert_every_chunk_size(Boundary, b"---END----END--")
    assert events == [("line", b"-"), ("line", b"")]


def test_idle_protocol_holds_no_buffer() -> None:
    proto = Lines()
    assert "_buffer" not in vars(proto)
    proto.connection_made(StringTransport())
    proto.data_received(b"whole line\r\n")
    assert proto._buffer is None
    proto.data_received(b"half")
    assert bytes(proto._buffer) == b"half"


def test_exception_in_line_received_leaves_the_parser_usable() -> None:
    class Grumpy(Lines):
        def line_received(self, line: bytes) -> None:
            if line == b"boom":
                raise RuntimeError("boom")
            super().line_received(line)

    proto = Grumpy()
    proto.connection_made(StringTransport())
    with pytest.raises(RuntimeError):
        proto.data_received(b"boom\r\nafter\r\n")
    proto.data_received(b"")
    assert proto.events == [("line", b"after")]


# -- NetstringReceiver -----------------------------------------------------


def netstring(s: bytes) -> bytes:
    return b"%d:%s," % (len(s), s)


netstring_streams = st.lists(
    st.binary(max_size=12).map(netstring)
    | st.sampled_from([b"0", b"1", b"12", b":", b",", b"x", b"01:", b"3:abc;", b"99999:", b"123456"]),
    max_size=12,
).map(b"".join)


@FAST
@pytest.mark.reactor_errors_ok
@given(stream=netstring_streams, cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_netstrings_any_split_gives_the_same_events(stream: bytes, cuts: list[int]) -> None:
    def make() -> Strings:
        return Strings(max_length=50)

    assert run(make, split(stream, cuts)) == run(make, [stream])


@FAST
@given(strings=st.lists(st.binary(max_size=40), max_size=10), cuts=st.lists(st.integers(min_value=0), max_size=30))
def test_valid_netstrings_round_trip(strings: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(netstring(s) for s in strings)
    assert run(Strings, split(stream, cuts)) == ([("string", s) for s in strings], False)


def test_netstrings_every_chunk_size() -> None:
    stream = b"".join(netstring(s) for s in [b"", b"hello", b"1:x,", b"\x00" * 20, b":"])
    events, closed = assert_every_chunk_size(Strings, stream)
    assert events == [("string", s) for s in [b"", b"hello", b"1:x,", b"\x00" * 20, b":"]]
    assert not closed


@pytest.mark.parametrize(
    "stream",
    [b"abc", b"x:", b":", b"01:a,", b"00:", b"-1:", b" 1:a,", b"3:abc;", b"3:abcd", b"1a:", b"1:a,GET / HTTP/1.1"],
)
def test_malformed_netstring_logs_and_closes(stream: bytes, caplog: pytest.LogCaptureFixture) -> None:
    events, closed = assert_every_chunk_size(Strings, stream)
    assert closed
    assert events[-1] == ("malformed", None)
    assert "malformed netstring" in caplog.text


def test_netstring_length_over_max(caplog: pytest.LogCaptureFixture) -> None:
    events, closed = assert_every_chunk_size(lambda: Strings(max_length=100), b"2:ok,500:" + b"x" * 500 + b",")
    assert events == [("string", b"ok"), ("too long", 500)] and closed
    # A length with more digits than MAX_LENGTH can have is refused before its colon.
    events, closed = assert_every_chunk_size(lambda: Strings(max_length=100), b"12345678")
    assert events == [("too long", 1234)] and closed
    assert "exceeds MAX_LENGTH=100" in caplog.text


def test_netstring_at_max_length_passes() -> None:
    events, closed = assert_every_chunk_size(lambda: Strings(max_length=10), netstring(b"k" * 10))
    assert events == [("string", b"k" * 10)] and not closed


def test_netstring_hook_that_keeps_the_connection_stops_parsing() -> None:
    class Lenient(Strings):
        def length_limit_exceeded(self, length: int) -> None:
            self.events.append(("too long", length))

    proto = Lenient(max_length=3)
    transport = StringTransport()
    proto.connection_made(transport)
    proto.data_received(b"1:a,5:abcde,1:b,")
    proto.data_received(b"1:c,")
    assert proto.events == [("string", b"a"), ("too long", 5)]
    assert not transport.disconnecting


def test_string_received_may_feed_more_data_reentrantly() -> None:
    for make, encode in [(Strings, netstring), (Int32s, int32)]:

        class Feeder(make):  # type: ignore[valid-type, misc]
            def string_received(self, string: bytes) -> None:
                super().string_received(string)
                if string == b"one":
                    self.data_received(encode(b"inserted"))
                    self.events.append(("back from", string))

        events = run(Feeder, [encode(b"one") + encode(b"two")])
        assert events == ([("string", b"one"), ("back from", b"one"), ("string", b"two"), ("string", b"inserted")],
                          False)


def test_send_string_netstring() -> None:
    proto = NetstringReceiver()
    transport = StringTransport()
    proto.connection_made(transport)
    proto.send_string(b"hello")
    proto.send_string(b"")
    proto.send_string(bytearray(b"ab"))
    assert transport.value() == b"5:hello,0:,2:ab,"


# -- Int32StringReceiver ---------------------------------------------------


def int32(s: bytes) -> bytes:
    return len(s).to_bytes(4, "big") + s


@FAST
@pytest.mark.reactor_errors_ok
@given(
    parts=st.lists(st.binary(max_size=30).map(int32) | st.binary(max_size=6), max_size=10),
    cuts=st.lists(st.integers(min_value=0), max_size=20),
)
def test_int32_any_split_gives_the_same_events(parts: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(parts)

    def make() -> Int32s:
        return Int32s(max_length=1000)

    assert run(make, split(stream, cuts)) == run(make, [stream])


@FAST
@given(strings=st.lists(st.binary(max_size=40), max_size=10), cuts=st.lists(st.integers(min_value=0), max_size=30))
def test_valid_int32_round_trip(strings: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(int32(s) for s in strings)
    assert run(Int32s, split(stream, cuts)) == ([("string", s) for s in strings], False)


def test_int32_every_chunk_size() -> None:
    strings = [b"", b"a", b"\x00\x00\x00\x05", b"z" * 17]
    events, closed = assert_every_chunk_size(Int32s, b"".join(int32(s) for s in strings))
    assert events == [("string", s) for s in strings] and not closed


def test_int32_length_over_max(caplog: pytest.LogCaptureFixture) -> None:
    stream = int32(b"fine") + (101).to_bytes(4, "big") + b"x" * 101 + int32(b"never")
    events, closed = assert_every_chunk_size(lambda: Int32s(max_length=100), stream)
    assert events == [("string", b"fine"), ("too long", 101)] and closed
    assert "string of 101 bytes exceeds MAX_LENGTH=100" in caplog.text
    events, closed = run(Int32s, [b"\xff\xff\xff\xff"])
    assert events == [("too long", 2**32 - 1)] and closed


def test_int32_closing_from_string_received_stops_the_buffer() -> None:
    class Once(Int32s):
        def string_received(self, string: bytes) -> None:
            super().string_received(string)
            self.transport.lose_connection()

    assert run(Once, [int32(b"a") + int32(b"b"), int32(b"c")]) == ([("string", b"a")], True)


def test_send_string_int32() -> None:
    proto = Int32StringReceiver()
    transport = StringTransport()
    proto.connection_made(transport)
    proto.send_string(b"hey")
    proto.send_string(b"")
    assert transport.value() == b"\x00\x00\x00\x03hey\x00\x00\x00\x00"


def test_send_string_int32_too_big() -> None:
    class Huge(bytes):
        def __len__(self) -> int:
            return 2**32

    proto = Int32StringReceiver()
    transport = StringTransport()
    proto.connection_made(transport)
    with pytest.raises(ValueError, match="32-bit"):
        proto.send_string(Huge())
    assert transport.value() == b""


def test_default_hooks_are_abstract() -> None:
    for proto, call in [
        (LineReceiver(), lambda p: p.data_received(b"x\r\n")),
        (LineReceiver(), lambda p: (p.set_raw_mode(), p.data_received(b"x"))),
        (NetstringReceiver(), lambda p: p.data_received(b"1:x,")),
        (Int32StringReceiver(), lambda p: p.data_received(int32(b"x"))),
    ]:
        with pytest.raises(NotImplementedError):
            call(proto)
