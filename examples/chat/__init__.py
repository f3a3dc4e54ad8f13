"""The chat relay, written four ways over one wire protocol.

The relay from the design notes: two people connect, each line one of them
types goes to the other, and "BYE!" ends the conversation. It is written

- ``threads.py``: blocking sockets, a thread per connection;
- ``callbacks.py``: a ``LineReceiver`` subclass, the reactor calls it;
- ``generators.py``: ``inline_callbacks`` generators over streams (``yield d``);
- ``coroutines.py``: ``async def`` coroutines over streams (``await d``).

Each is a server: ``python -m examples.chat.<style> --port N`` (``--port 0``
picks a free port), which prints ``listening on 127.0.0.1:PORT`` and serves
until SIGINT or SIGTERM. ``python -m examples.chat --demo`` runs two
scripted clients through each of them in turn. What is shared (the pairing
bookkeeping, the constants, the command line) is in ``common.py``; the I/O is
each style's own. ``docs/migration.md`` walks from one to the next.

The wire protocol
-----------------

Every rule below holds for all four servers, and ``tests/test_chat.py``
checks each rule against each of them.

Lines
    A line is UTF-8 text ending in ``b"\\n"``; a ``b"\\r"`` just before the
    ``b"\\n"`` is stripped, so ``telnet`` and ``nc -C`` work. The server never
    decodes: it forwards the bytes it got, minus the line end, followed by
    ``b"\\n"``. Bytes after the last ``b"\\n"`` when a client disconnects are
    not a line and are dropped.

Length
    A line holds at most ``MAX_LINE`` = 65536 bytes (64 KiB) before its
    ``b"\\n"`` (a ``b"\\r"`` there counts). A client that sends more, with or
    without a newline at the end, gets the line ``* error: line too long``
    and is disconnected; its partner gets ``* partner left`` and is
    disconnected too; nobody else notices. The server never buffers more
    than about one line per connection to find that out.

Pairing
    Clients are paired in order of arrival: the first with the second, the
    third with the fourth, and so on (a client that leaves while waiting
    frees its place for the next one). When a pair is made both clients get
    the line ``* paired``. There is never more than one client waiting.

Waiting
    A line from a client that has no partner yet is dropped, and the server
    answers ``* no partner yet, line dropped``, so a client knows, without
    guessing at timing, that nothing it sends before ``* paired`` reaches
    anyone. (Queueing those lines until a partner comes was the other
    choice; dropping them keeps the server's memory bounded by one line a
    connection and makes all four styles identical without a lock-ordering
    puzzle in the threaded one.)

Relay
    After ``* paired``, every line a client sends goes to its partner, in
    order, and nowhere else.

BYE!
    The line ``BYE!`` (exactly; after stripping the line end) is forwarded
    to the partner like any line, and then both connections are closed by
    the server. No notice follows. From a client still waiting, ``BYE!``
    just disconnects it.

Leaving
    A client whose partner disconnects without ``BYE!`` (end of file, a
    reset, or a line too long) gets ``* partner left`` and is disconnected.

Notices
    The server's own lines all start with ``* ``. A partner could type the
    same text; telling them apart would need a framing this example does
    not have (a real chat would escape forwarded lines).

Closing
    The server closes with ``close()`` as soon as its last line is sent,
    without waiting to read what the client may still be sending. If
    unread input is left (say, the rest of a line that was too long), the
    kernel sends a reset after the data: a client sees the server's last
    line, then ``ECONNRESET`` instead of a clean end of file.
"""
