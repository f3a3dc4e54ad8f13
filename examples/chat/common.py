"""What the four chat servers share: the protocol's constants, the pairing bookkeeping, the command line.

Only logic that is truly the same in every style lives here. Reading and
writing sockets is *not* shared: showing how each style does its I/O is the
point of the comparison. The blocking ``LineClient`` and ``ServerProcess``
at the bottom serve the demo, the tests and the benchmark, never a server.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any, Generic, Sequence, TypeVar

from reactor import Deferred

#: The most bytes a line may hold before its b"\n" (a b"\r" there counts).
MAX_LINE = 65536

#: The line that ends a pair (compared after the line end is stripped).
BYE = b"BYE!"

# The server's own lines (sent followed by b"\n").
PAIRED = b"* paired"
NO_PARTNER = b"* no partner yet, line dropped"
PARTNER_LEFT = b"* partner left"
TOO_LONG = b"* error: line too long"

#: The four styles, in the order the migration guide walks them.
STYLES = ("threads", "callbacks", "generators", "coroutines")

#: The interface the servers listen on unless told otherwise.
DEFAULT_HOST = "127.0.0.1"

C = TypeVar("C")


def strip_line_end(raw: bytes) -> bytes:
    """``raw`` without its trailing b"\\n" and then one b"\\r", if present."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw


class Lobby(Generic[C]):
    """Pairs clients in order of arrival and remembers who talks to whom.

    Clients are any hashable objects (each style uses its own connection
    object). The lobby does no I/O and takes no lock: the threaded server
    calls it under a lock of its own, the others from the reactor thread.
    """

    def __init__(self) -> None:
        self._waiting: C | None = None
        self._partners: dict[C, C] = {}

    def arrive(self, client: C) -> C | None:
        """Pair ``client`` with the one waiting and return that one, or make ``client`` wait and return None."""
        waiting = self._waiting
        if waiting is None:
            self._waiting = client
            return None
        self._waiting = None
        self._partners[client] = waiting
        self._partners[waiting] = client
        return waiting

    def partner_of(self, client: C) -> C | None:
        """The client paired with ``client``, or None if it waits or has left."""
        return self._partners.get(client)

    def leave(self, client: C) -> C | None:
        """Forget ``client`` (safe to call twice); return the partner it leaves behind, or None."""
        if self._waiting is client:
            self._waiting = None
            return None
        partner = self._partners.pop(client, None)
        if partner is not None:
            del self._partners[partner]
        return partner

    @property
    def waiting(self) -> C | None:
        """The client waiting for a partner, if any."""
        return self._waiting

    def pairs(self) -> int:
        """How many pairs are talking."""
        return len(self._partners) // 2


class Relays:
    """The relays (one Deferred per connection) a streams server is running, so that shutdown can cancel them."""

    def __init__(self) -> None:
        self._running: set[Deferred[Any]] = set()

    def track(self, d: Deferred[Any]) -> Deferred[Any]:
        """Remember ``d`` until it fires; return it."""
        self._running.add(d)
        d.add_both(self._forget, d)
        return d

    def _forget(self, result: Any, d: Deferred[Any]) -> Any:
        self._running.discard(d)
        return result

    def cancel_all(self) -> None:
        """Cancel every running relay: each sees CancelledError where it waits, and cleans up."""
        for d in list(self._running):
            d.cancel()

    def __len__(self) -> int:
        return len(self._running)


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line every chat server takes: ``--port``, ``--host``, ``--verbose``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=8007, help="TCP port (0: pick a free one; default 8007)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"interface to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--verbose", "-v", action="store_true", help="log connections to stderr")
    return parser.parse_args(argv)


def announce(host: str, port: int) -> None:
    """Print the line the tests and the demo wait for: ``listening on HOST:PORT``."""
    print(f"listening on {host}:{port}", flush=True)


# -- for the demo, the tests and the benchmark (never used by a server) ------

#: The directory that holds the ``examples`` package, for subprocesses' PYTHONPATH.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(PROJECT_ROOT) + (os.pathsep + path if path else "")
    return env


class ServerProcess:
    """A chat server run as ``python -m examples.chat.<style> --port 0`` in a child process."""

    def __init__(self, style: str, *, prefix: Sequence[str] = (), stderr: IO[bytes] | int | None = None, timeout: float = 10.0) -> None:
        if style not in STYLES:
            raise ValueError(f"unknown chat style {style!r}; choose from {', '.join(STYLES)}")
        self.style = style
        #: True once stop() was called (the process ending is then expected).
        self.stopped = False
        # faulthandler: a server that will not stop is sent SIGABRT (see
        # stop()), which makes it print every thread's Python stack first.
        argv = [*prefix, sys.executable, "-X", "faulthandler", "-m", f"examples.chat.{style}", "--port", "0"]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
            cwd=PROJECT_ROOT, env=_child_env(),
        )
        try:
            line = _read_line(self.proc.stdout, timeout)  # type: ignore[arg-type]
            if not line.startswith(b"listening on "):
                status = self.stop()
                raise RuntimeError(f"chat server {style!r} did not start: it said {line!r} and exited with status {status}")
            self.host, _, port = line[len(b"listening on "):].decode().strip().rpartition(":")
            self.port = int(port)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.proc.pid

    def alive(self) -> bool:
        """True while the server process runs."""
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """Ask the server to stop (SIGTERM); abort it (stacks to its stderr) if it will not; return its exit status."""
        self.stopped = True
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    """One line from a pipe, waiting ``timeout`` seconds at most (b"" at end of file)."""
    fd = stream.fileno()
    deadline = time.monotonic() + timeout
    data = b""
    # Byte by byte with os.read, so that nothing after the line is left in
    # a Python buffer where a later select() would not see it.
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError(f"no line within {timeout} s (got {data!r})")
        byte = os.read(fd, 1)
        if not byte:
            break
        data += byte
    return data


class LineClient:
    """A blocking chat client for scripts and tests: send lines, read lines, with time-outs."""

    def __init__(self, port: int, host: str = DEFAULT_HOST, *, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buffer = bytearray()
        self.closed_by_server = False

    def send(self, *lines: str | bytes) -> None:
        """Send each line followed by b"\\n"."""
        self.sock.sendall(b"".join((x.encode() if isinstance(x, str) else x) + b"\n" for x in lines))

    def recv_line(self) -> str | None:
        """The next line without its b"\\n", or None once the server closed (a reset counts as closed)."""
        buf = self._buffer
        while True:
            end = buf.find(b"\n")
            if end >= 0:
                line = bytes(buf[:end])
                del buf[:end + 1]
                return line.decode("utf-8", "replace")
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed_by_server = True
                return None
            buf += chunk

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self.sock.close()

    def __enter__(self) -> LineClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
