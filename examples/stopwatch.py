"""A stopwatch on LoopingCall, driven by commands typed on stdin.

Run: ``python -m examples.stopwatch [--interval 0.1]``, then type one command
a line: ``start``, ``stop``, ``lap``, ``reset``, ``quit`` (the end of input
quits too). While running it prints the elapsed time every interval::

    started
    time 0.10
    time 0.20
    lap 1: 0.27
    stopped at 0.31
    bye

The design notes wish for this program because threads make it awkward: one
thread would block reading the keyboard while another ticks, and the two
would share the stopwatch's state under a lock. Here one reactor does both:
stdin is a *descriptor* (an object with ``fileno``/``on_read``/``on_write``/
``on_close``) that the reactor calls when a command can be read, and the
ticks are a ``LoopingCall`` on the same reactor, so nothing runs concurrently
and nothing needs a lock.

Stdin that cannot be polled: epoll refuses regular files and ``/dev/null``
(``epoll_ctl`` fails with EPERM), because reading them never blocks. poll(2)
and select(2) accept them and report them always readable, which is the
truth, so if registering with the default multiplexer fails with EPERM, the
program uses a ``poll`` reactor instead (``multiplexer_for`` asks epoll first). Commands read from a file then all
run at once, back to back (the times they print are about 0); use a pipe or
a terminal to space them out.

Stdin is left in blocking mode: its file description is shared with the
shell (or whatever started us), and O_NONBLOCK would change it for them too.
A read right after the reactor says the fd is readable does not block.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
from typing import Callable, Sequence

from reactor import LoopingCall, Reactor

COMMANDS = ("start", "stop", "lap", "reset", "quit")


class Stopwatch:
    """The stopwatch's state and commands; prints to ``out``; ticks on ``reactor``."""

    def __init__(self, reactor: Reactor, interval: float = 0.1, out: Callable[[str], None] = print) -> None:
        self.reactor = reactor
        self.interval = interval
        self.out = out
        self._ticker = LoopingCall(reactor, self._tick)
        self._accumulated = 0.0  # time counted before the current run
        self._started_at: float | None = None  # None while stopped
        self._laps = 0
        self.done = False

    @property
    def running(self) -> bool:
        """True between start and stop."""
        return self._started_at is not None

    def elapsed(self) -> float:
        """Seconds counted so far."""
        if self._started_at is None:
            return self._accumulated
        return self._accumulated + self.reactor.seconds() - self._started_at

    def command(self, text: str) -> None:
        """Run one command line (blank lines are ignored)."""
        name = text.strip().lower()
        if not name:
            return
        handler = getattr(self, f"do_{name}", None) if name in COMMANDS else None
        if handler is None:
            self.out(f"unknown command {name!r}; commands: {', '.join(COMMANDS)}")
            return
        handler()

    def do_start(self) -> None:
        """Start counting (and printing)."""
        if self.running:
            self.out("already running")
            return
        self._started_at = self.reactor.seconds()
        self.out("started")
        self._ticker.start(self.interval, now=False)

    def do_stop(self) -> None:
        """Stop counting; the time is kept."""
        if not self.running:
            self.out("not running")
            return
        self._accumulated = self.elapsed()
        self._started_at = None
        self._ticker.stop()
        self.out(f"stopped at {self._accumulated:.2f}")

    def do_lap(self) -> None:
        """Print a numbered lap time."""
        self._laps += 1
        self.out(f"lap {self._laps}: {self.elapsed():.2f}")

    def do_reset(self) -> None:
        """Back to zero (still running, if it was)."""
        self._accumulated = 0.0
        self._laps = 0
        if self.running:
            self._started_at = self.reactor.seconds()
        self.out("reset")

    def do_quit(self) -> None:
        """Stop everything and end the program."""
        if self.done:
            return
        self.done = True
        if self.running:
            self._accumulated = self.elapsed()
            self._started_at = None
            self._ticker.stop()
        self.out("bye")
        self.reactor.stop()

    def _tick(self) -> None:
        self.out(f"time {self.elapsed():.2f}")


class LineInput:
    """A descriptor for a readable fd that hands each line to ``on_line`` and calls ``on_eof`` at the end."""

    def __init__(self, reactor: Reactor, fd: int, on_line: Callable[[str], None], on_eof: Callable[[], None]) -> None:
        self.reactor = reactor
        self.fd = fd
        self.on_line = on_line
        self.on_eof = on_eof
        self._buffer = b""

    def fileno(self) -> int:
        """The fd the reactor watches."""
        return self.fd

    def on_read(self) -> None:
        """Read what is there; run each complete line; at the end, the unfinished one, then on_eof."""
        data = os.read(self.fd, 65536)
        if not data:
            self.reactor.remove_reader(self)
            rest, self._buffer = self._buffer, b""
            if rest:
                self.on_line(rest.decode("utf-8", "replace"))
            self.on_eof()
            return
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for line in lines:
            self.on_line(line.decode("utf-8", "replace"))

    def on_write(self) -> None:
        """Never registered for writing."""

    def on_close(self, reason: object) -> None:
        """The reactor dropped us after a read failed: treat it as the end of input."""
        self.on_eof()


def multiplexer_for(fd: int) -> str | None:
    """None (the reactor's best) if epoll can watch ``fd`` or is absent, else "poll" (see the module docstring)."""
    if not hasattr(select, "epoll"):
        return None
    with select.epoll() as probe:
        try:
            probe.register(fd, select.EPOLLIN)
        except PermissionError:
            return "poll"
    return None


def _print(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:
        pass  # Nobody reads our output any more; the commands still count.


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stopwatch until ``quit`` or the end of stdin."""
    parser = argparse.ArgumentParser(description="A stopwatch driven by commands on stdin: " + ", ".join(COMMANDS))
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between printed times (default 0.1)")
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error("--interval must be positive")
    stdin_fd = sys.stdin.fileno()
    reactor = Reactor(multiplexer_for(stdin_fd))
    watch = Stopwatch(reactor, args.interval, _print)
    stdin = LineInput(reactor, stdin_fd, watch.command, watch.do_quit)
    reactor.add_reader(stdin)
    # Signal handlers off: Ctrl-C ends the program with KeyboardInterrupt, as
    # any command-line tool; a stopwatch has nothing to clean up.
    reactor.run(install_signal_handlers=False)
    reactor.remove_reader(stdin)
    reactor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
