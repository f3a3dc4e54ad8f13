"""examples/stopwatch.py: the Stopwatch on a test Clock, and the program through pipes and files."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from examples.stopwatch import Stopwatch
from reactor.testing import Clock

ROOT = Path(__file__).resolve().parents[1]


class ClockReactor(Clock):
    """A test Clock that records stop() as the stopwatch's reactor would get it."""

    stopped = False

    def stop(self) -> None:
        self.stopped = True


def test_stopwatch_ticks_on_the_clock_and_keeps_time_across_stop_and_reset():
    clock = ClockReactor()
    out: list[str] = []
    watch = Stopwatch(clock, 0.1, out.append)
    watch.command("start")
    for _ in range(3):
        clock.advance(0.1)
    clock.advance(0.05)
    watch.command("lap")
    watch.command(" STOP ")
    clock.advance(1.0)  # stopped: no ticks, no time counted
    watch.command("stop")
    watch.command("start")
    clock.advance(0.1)
    watch.command("start")
    watch.command("reset")
    clock.advance(0.1)
    watch.command("lap")
    watch.command("")
    watch.command("jump")
    watch.command("quit")
    watch.command("quit")
    assert out == [
        "started", "time 0.10", "time 0.20", "time 0.30", "lap 1: 0.35", "stopped at 0.35",
        "not running",
        "started", "time 0.45", "already running",
        "reset", "time 0.10", "lap 1: 0.10",
        "unknown command 'jump'; commands: start, stop, lap, reset, quit",
        "bye",
    ]
    assert clock.stopped and not watch.running
    clock.advance(1.0)
    assert out[-1] == "bye"


class Program:
    """``python -m examples.stopwatch`` with its stdout read line by line against deadlines."""

    def __init__(self, tmp_path: Path, *args: str, stdin=subprocess.PIPE) -> None:
        self.stderr_path = tmp_path / "stopwatch.stderr"
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "examples.stopwatch", *args],
                stdin=stdin, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT,
            )
        self._buffer = b""

    def send(self, *commands: str) -> None:
        self.proc.stdin.write("".join(c + "\n" for c in commands).encode())
        self.proc.stdin.flush()

    def line(self, timeout: float = 10.0) -> str | None:
        """The next line of output, or None at its end."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                pytest.fail(f"no output line within {timeout} s")
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def line_matching(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Skip ``time`` lines up to the next line, which must match ``pattern``."""
        while True:
            line = self.line(timeout)
            assert line is not None, f"output ended while waiting for {pattern!r}"
            if not line.startswith("time "):
                match = re.fullmatch(pattern, line)
                assert match, f"{line!r} does not match {pattern!r}"
                return match

    def finish(self, timeout: float = 10.0) -> int:
        """Wait for the exit; return the status; close the pipes."""
        try:
            status = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()
        assert self.stderr_path.read_text() == ""
        return status


@pytest.fixture
def program(tmp_path):
    made: list[Program] = []

    def make(*args: str, **kw) -> Program:
        p = Program(tmp_path, *args, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        if p.proc.poll() is None:
            p.proc.kill()
        p.proc.wait()
        for pipe in (p.proc.stdin, p.proc.stdout):
            if pipe is not None:
                pipe.close()


def test_commands_through_a_pipe(program):
    p = program("--interval", "0.05")
    p.send("start")
    assert p.line() == "started"
    times = []
    while len(times) < 4:
        line = p.line()
        assert line is not None and line.startswith("time ")
        times.append(float(line.split()[1]))
    assert times == sorted(times) and times[0] > 0
    p.send("lap")
    lap = float(p.line_matching(r"lap 1: (\d+\.\d\d)").group(1))
    assert lap >= times[-1]
    p.send("stop")
    stopped = p.line_matching(r"stopped at (\d+\.\d\d)").group(1)
    # Stopped: the very next line answers the next command (no tick in between).
    p.send("lap")
    assert p.line() == f"lap 2: {stopped}"
    p.send("reset", "lap", "stop", "dance", "quit")
    assert [p.line() for _ in range(5)] == [
        "reset", "lap 1: 0.00", "not running",
        "unknown command 'dance'; commands: start, stop, lap, reset, quit", "bye",
    ]
    assert p.line() is None
    assert p.finish() == 0


def test_end_of_input_quits_while_running(program):
    p = program("--interval", "0.05")
    p.send("start")
    assert p.line() == "started"
    assert p.line().startswith("time ")
    p.proc.stdin.close()
    p.line_matching("bye")
    assert p.line() is None
    assert p.finish() == 0


def test_commands_from_a_regular_file_which_epoll_refuses(program, tmp_path):
    commands = tmp_path / "commands.txt"
    commands.write_text("start\nlap\nstop\nquit")  # no newline after the last command
    with open(commands, "rb") as stdin:
        p = program(stdin=stdin)
    lines = []
    while (line := p.line()) is not None:
        lines.append(line)
    assert p.finish() == 0
    # All at once: a file is always readable, so the commands run back to back.
    assert lines[0] == "started" and lines[-1] == "bye"
    assert re.fullmatch(r"lap 1: 0\.0\d", lines[1]) and re.fullmatch(r"stopped at 0\.0\d", lines[2])


def test_stdin_from_dev_null_quits_at_once(program):
    with open(os.devnull, "rb") as stdin:
        p = program(stdin=stdin)
    assert p.line() == "bye"
    assert p.line() is None
    assert p.finish() == 0
