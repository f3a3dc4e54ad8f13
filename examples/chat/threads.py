"""The chat relay with blocking sockets and a thread per connection.

Run: ``python -m examples.chat.threads --port 8007`` (the wire protocol is in
``examples/chat/__init__.py``).

This is the starting point of ``docs/migration.md``: the code reads top to
bottom like the relay in the design notes (read a line, send it to the
partner), and the operating system does the waiting. What it costs is a
thread, and its stack, per connection; ``benchmarks/bench_chat.py`` measures
how much. What needs care is that several threads write to one socket:

- Who writes to a client's socket: its partner's thread (forwarded lines),
  its own thread (notices to itself), the accept loop and the partner's
  thread (``* paired``). Each ``Client`` has a ``send_lock`` so that two
  lines never interleave.
- Only the thread that owns a socket closes it. Another thread that wants it
  gone calls ``shutdown()``: that wakes the owner blocked in ``recv()`` (a
  ``close()`` would not, on Linux) and any thread blocked in ``sendall()``,
  and the fd number cannot be reused while someone still uses it.
- Back-pressure comes free: ``sendall()`` blocks while the partner's socket
  buffer is full, so the sender's thread stops reading its own socket,
  and TCP slows the sender down.
- Errors: a send to a client that has gone raises OSError (EPIPE,
  ECONNRESET); it is ignored, because that client's own thread sees the end
  of its stream and does the leaving.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from typing import Any, Sequence

from .common import BYE, MAX_LINE, NO_PARTNER, PAIRED, PARTNER_LEFT, TOO_LONG, Lobby, announce, parse_args, strip_line_end

log = logging.getLogger("examples.chat.threads")


class Client:
    """One connection: its socket, and a lock so that lines sent to it from several threads never interleave."""

    def __init__(self, sock: socket.socket, addr: Any) -> None:
        self.sock = sock
        self.addr = addr
        self.send_lock = threading.Lock()

    def send_line(self, line: bytes) -> None:
        """Send ``line`` and b"\\n", blocking while the client's buffer is full; errors are ignored."""
        with self.send_lock:
            self.send_locked(line)

    def send_locked(self, line: bytes) -> None:
        """``send_line`` for a caller that already holds ``send_lock``."""
        try:
            self.sock.sendall(line + b"\n")
        except OSError:
            pass  # Gone: the client's own thread notices and cleans up.

    def hang_up(self) -> None:
        """Shut the socket down, waking whichever thread is blocked on it; safe from any thread."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # Already shut down, or the peer went first (ENOTCONN).


class Relay:
    """The shared state: the lobby, and the lock that guards it."""

    def __init__(self) -> None:
        self.lobby: Lobby[Client] = Lobby()
        self.lock = threading.Lock()

    def arrive(self, me: Client) -> Client | None:
        """Pair ``me`` (called in the accept loop, so pairs follow the order of arrival); return the partner."""
        # ``me`` gets ``* paired`` before the pair is visible to the partner's
        # thread, which could otherwise forward a line to ``me`` first. The
        # socket is fresh, so this short send cannot block the accept loop.
        with me.send_lock:
            with self.lock:
                partner = self.lobby.arrive(me)
            if partner is not None:
                me.send_locked(PAIRED)
        return partner

    def partner_of(self, me: Client) -> Client | None:
        """``me``'s partner, or None."""
        with self.lock:
            return self.lobby.partner_of(me)

    def leave(self, me: Client) -> Client | None:
        """Forget ``me``; return the partner it leaves behind."""
        with self.lock:
            return self.lobby.leave(me)


def serve_client(relay: Relay, me: Client, greet: Client | None) -> None:
    """The thread of one connection: relay its lines until BYE!, the end of its stream, or an error."""
    if greet is not None:
        # The partner that was waiting learns it is paired before it can
        # receive any line from us: this thread has not read one yet.
        greet.send_line(PAIRED)
    reader = me.sock.makefile("rb")
    try:
        while True:
            try:
                # At most MAX_LINE bytes and the b"\n": a longer line is cut
                # here, so a client cannot make us buffer more than that.
                raw = reader.readline(MAX_LINE + 1)
            except OSError:
                raw = b""  # A reset: the same as the end of the stream here.
            if not raw.endswith(b"\n"):
                if len(raw) > MAX_LINE:
                    me.send_line(TOO_LONG)
                # Otherwise the end of the stream; a partial last line is dropped.
                break
            line = strip_line_end(raw)
            if line == BYE:
                partner = relay.leave(me)
                if partner is not None:
                    partner.send_line(BYE)
                    partner.hang_up()
                break
            partner = relay.partner_of(me)
            if partner is None:
                # Check again holding our own send lock: the ``* paired``
                # that a newcomer's thread sends us takes that lock too, so
                # it cannot slip in before a "no partner" decided earlier.
                with me.send_lock:
                    partner = relay.partner_of(me)
                    if partner is None:
                        me.send_locked(NO_PARTNER)
                        continue
            partner.send_line(line)
    finally:
        partner = relay.leave(me)
        if partner is not None:
            partner.send_line(PARTNER_LEFT)
            partner.hang_up()
        # Wake a thread blocked sending to us, then close under the send
        # lock, so that nobody is inside sendall() on this fd as it closes.
        me.hang_up()
        reader.close()
        with me.send_lock:
            me.sock.close()
        log.info("%s left", me.addr)


def serve_forever(relay: Relay, listener: socket.socket) -> None:
    """Accept connections, pair them, and start a thread for each; runs until interrupted."""
    count = 0
    while True:
        sock, addr = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        me = Client(sock, addr)
        partner = relay.arrive(me)
        count += 1
        thread = threading.Thread(target=serve_client, args=(relay, me, partner), name=f"chat-{count}", daemon=True)
        # Started with SIGINT and SIGTERM blocked, which the thread inherits:
        # the kernel then hands those signals to the main thread, whose
        # accept() they interrupt. Delivered to a relay thread instead, they
        # would wait for the next connection to reach Python's handler.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            thread.start()
        except RuntimeError as exc:
            # Out of threads (or memory for their stacks): the cost this
            # style pays per connection, made visible.
            log.error("cannot start a thread for %s: %s; closing it", addr, exc)
            left = relay.leave(me)
            if left is not None:
                left.send_line(PARTNER_LEFT)
                left.hang_up()
            sock.close()
            continue
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        log.info("%s arrived%s", addr, " and is paired" if partner is not None else "; waiting")


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """Listen and relay until SIGINT or SIGTERM."""
    args = parse_args("Chat relay: blocking sockets, a thread per connection.", argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    # SIGTERM ends the accept loop the way Ctrl-C does; the relay threads are
    # daemons and die with the process.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    listener = socket.create_server((args.host, args.port), backlog=1024)
    try:
        host, port = listener.getsockname()[:2]
        announce(host, port)
        serve_forever(Relay(), listener)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
