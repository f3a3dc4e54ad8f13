"""The chat relay's wire protocol, checked against each of the four servers.

Every test runs once per style (threads, callbacks, generators, coroutines).
Each server runs as a child process, ``python -m examples.chat.<style>
--port 0``, started fresh for each test; the clients are blocking sockets
with time-outs (``LineClient``). Teardown fails a test whose server died,
did not exit 0 on SIGTERM, or wrote a traceback or an error to stderr.
"""

from __future__ import annotations

import select
import socket
import struct
import time

import pytest

from examples.chat.common import MAX_LINE, STYLES, LineClient, ServerProcess

PAIRED = "* paired"
NO_PARTNER = "* no partner yet, line dropped"
PARTNER_LEFT = "* partner left"
TOO_LONG = "* error: line too long"


@pytest.fixture(params=STYLES)
def server(request, tmp_path):
    """A fresh chat server of each style; its stderr must stay free of errors."""
    stderr_path = tmp_path / "server.stderr"
    with open(stderr_path, "wb") as stderr:
        srv = ServerProcess(request.param, stderr=stderr)
    try:
        yield srv
        assert srv.stopped or srv.alive(), f"the {srv.style} server died during the test"
    finally:
        status = srv.stop()
        text = stderr_path.read_text(errors="replace")
    assert status == 0, f"exit status {status} after SIGTERM; stderr:\n{text}"
    assert "Traceback" not in text and "ERROR" not in text, f"the {srv.style} server complained:\n{text}"


@pytest.fixture
def connect(server):
    """``connect()`` opens a client to the server; all are closed after the test."""
    opened: list[LineClient] = []

    def connect() -> LineClient:
        client = LineClient(server.port, timeout=10.0)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()


def expect(client: LineClient, *lines: str | None) -> None:
    """Read ``len(lines)`` lines from ``client`` and compare (None: the server closed)."""
    got = [client.recv_line() for _ in lines]
    assert got == list(lines)


def pair(connect) -> tuple[LineClient, LineClient]:
    """Two clients, connected one after the other and paired."""
    a, b = connect(), connect()
    expect(a, PAIRED)
    expect(b, PAIRED)
    return a, b


def test_clients_are_paired_in_order_of_arrival(connect):
    c1, c2, c3, c4 = connect(), connect(), connect(), connect()
    for c in (c1, c2, c3, c4):
        expect(c, PAIRED)
    c1.send("from 1")
    c3.send("from 3")
    c4.send("from 4")
    c2.send("from 2")
    expect(c2, "from 1")
    expect(c4, "from 3")
    expect(c3, "from 4")
    expect(c1, "from 2")


def test_lines_before_pairing_are_dropped_with_a_notice(connect):
    early = connect()
    early.send("is anyone there?", "hello?")
    expect(early, NO_PARTNER, NO_PARTNER)
    late = connect()
    expect(early, PAIRED)
    expect(late, PAIRED)
    early.send("now we talk")
    expect(late, "now we talk")
    late.send("yes")
    expect(early, "yes")


def test_relay_keeps_order_and_bytes_in_both_directions(connect):
    a, b = pair(connect)
    lines_a = [f"a{i} héllo wörld ✓" for i in range(100)]
    lines_b = [f"b{i}" for i in range(100)]
    # Sent in one go each, so that the server gets many lines per read.
    a.send(*lines_a)
    b.send(*lines_b)
    expect(b, *lines_a)
    expect(a, *lines_b)


def test_line_end_rules_and_the_longest_line(connect):
    a, b = pair(connect)
    longest = b"L" * MAX_LINE  # exactly the limit: allowed
    a.send(b"crlf\r", b"", b"inner\rcarriage", b"two\r\r", longest, b"\xff not utf-8 \xfe")
    expect(b, "crlf", "", "inner\rcarriage", "two\r")
    assert b.recv_line() == "L" * MAX_LINE
    # The server forwards bytes as they came; it does not validate UTF-8.
    b.sock.settimeout(10)
    expect(b, b"\xff not utf-8 \xfe".decode("utf-8", "replace"))


@pytest.mark.parametrize("who", ["first", "second"])
def test_bye_is_forwarded_then_both_are_closed(connect, who):
    first, second = pair(connect)
    sender, other = (first, second) if who == "first" else (second, first)
    other.send("before bye")
    expect(sender, "before bye")
    sender.send("BYE!\r")
    expect(other, "BYE!", None)
    expect(sender, None)
    # Only that pair ended: the next two clients pair with each other.
    c, d = pair(connect)
    c.send("still here")
    expect(d, "still here")


def test_bye_from_a_waiting_client_closes_it_and_frees_its_place(connect):
    alone = connect()
    alone.send("BYE!")
    expect(alone, None)
    newcomer = connect()
    newcomer.send("hello?")
    expect(newcomer, NO_PARTNER)


def test_a_waiting_client_that_disconnects_frees_its_place(connect):
    alone = connect()
    alone.sock.shutdown(socket.SHUT_WR)
    # The server closes our end once it has let us go.
    expect(alone, None)
    newcomer = connect()
    newcomer.send("hello?")
    expect(newcomer, NO_PARTNER)


@pytest.mark.parametrize("how", ["close", "close-mid-line", "reset"])
def test_partner_disconnect_is_announced_and_closes_the_other(connect, how):
    leaver, stayer = pair(connect)
    if how == "close-mid-line":
        # An unterminated last line is not a line: it must not be forwarded.
        leaver.send(b"complete")
        leaver.sock.sendall(b"partial")
        expect(stayer, "complete")
    if how == "reset":
        leaver.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    leaver.close()
    expect(stayer, PARTNER_LEFT, None)


def _send_ignoring_reset(client: LineClient, data: bytes) -> None:
    # The server may close (and so reset) while we are still sending.
    try:
        client.sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


@pytest.mark.parametrize("line", [b"x" * (MAX_LINE + 1) + b"\n", b"y" * (1 << 20)], ids=["limit+1", "1MB-no-newline"])
def test_a_line_too_long_ends_that_pair_only(connect, line):
    bystander_a, bystander_b = pair(connect)
    offender, partner = pair(connect)
    _send_ignoring_reset(offender, line)
    expect(offender, TOO_LONG, None)
    expect(partner, PARTNER_LEFT, None)
    bystander_a.send("unaffected")
    expect(bystander_b, "unaffected")
    bystander_b.send("indeed")
    expect(bystander_a, "indeed")


def test_a_waiting_client_with_a_line_too_long_is_closed(connect):
    offender = connect()
    _send_ignoring_reset(offender, b"z" * (1 << 20))
    expect(offender, TOO_LONG, None)
    newcomer = connect()
    newcomer.send("hello?")
    expect(newcomer, NO_PARTNER)


def test_back_pressure_a_reader_that_stalls_stops_its_partner(connect):
    """A partner that does not read makes the server stop reading the sender (bounded memory), losing nothing."""
    sender, reader = pair(connect)
    cap = 64 * 1024 * 1024  # several times what the kernel buffers of three sockets hold
    line = b"%08d" + b"." * 1000 + b"\n"
    sock = sender.sock
    sock.setblocking(False)
    sent_lines = 0  # lines begun; all but the one in ``pending`` are complete
    pending = b""
    total = 0
    # Send until the server stops taking data: no progress for 1 s, or the
    # cap (a server without back-pressure would swallow all of it).
    while total < cap:
        if not pending:
            pending = line % sent_lines
            sent_lines += 1
        try:
            n = sock.send(pending)
        except BlockingIOError:
            if not select.select([], [sock], [], 1.0)[1]:
                break
            continue
        total += n
        pending = pending[n:]
    assert total < cap, "the server kept reading a sender whose partner does not read"
    complete = sent_lines - 1 if pending else sent_lines
    # Every complete line arrives once the reader reads; then the last one.
    reader.sock.settimeout(30)
    for i in range(complete):
        got = reader.recv_line()
        assert got is not None and got[:8] == "%08d" % i, f"line {i} of {complete}: {got!r:.40}"
    if pending:
        sock.setblocking(True)
        sock.settimeout(30)
        sock.sendall(pending)
        assert reader.recv_line()[:8] == "%08d" % complete


def test_two_hundred_pairs_exchange_fifty_lines_each(connect):
    clients = [connect() for _ in range(400)]
    for c in clients:
        expect(c, PAIRED)
    for i, c in enumerate(clients):
        c.send(*[f"client {i} line {k}" for k in range(50)])
    for i, c in enumerate(clients):
        partner = i + 1 if i % 2 == 0 else i - 1
        expect(c, *[f"client {partner} line {k}" for k in range(50)])
    # Everybody hangs up at once; the server survives it (checked at teardown)
    # and still pairs newcomers.
    deadline = time.monotonic() + 10
    for c in clients:
        c.close()
    a, b = pair(connect)
    a.send("after the storm")
    expect(b, "after the storm")
    assert time.monotonic() < deadline


def test_sigterm_stops_the_server_and_closes_every_connection(server, connect):
    a, b = pair(connect)
    waiting = connect()
    waiting.send("anyone?")
    expect(waiting, NO_PARTNER)
    assert server.stop() == 0
    for client in (a, b, waiting):
        # The streams servers cancel their relays, and a cancelled relay
        # tells its partner; the others just go away with the process.
        lines = []
        while (line := client.recv_line()) is not None:
            lines.append(line)
        assert set(lines) <= {PARTNER_LEFT}
