"""The embedding examples, run as users run them: ``python -m examples.embed_*`` in a child process.

The Tk one needs a display: the test starts Xvfb on a display it picks
itself (``-displayfd``), or uses $DISPLAY when there is no Xvfb, and skips
only when neither exists (or tkinter is missing from this Python).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``python -X dev -m examples.NAME ARGS`` and return what it did (dev mode shows ResourceWarnings)."""
    return subprocess.run(
        [sys.executable, "-X", "dev", "-m", f"examples.{name}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env,
    )


def test_embed_thread_talks_to_the_reactor_thread_with_blocking_calls():
    done = run_example("embed_thread", "--lines", "4")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].startswith("echo server on 127.0.0.1:") and lines[0].endswith("(reactor thread: reactor)")
    assert lines[1:5] == [f"echoed: line {i} from the main thread" for i in range(4)]
    assert lines[5:] == ["nothing more to read (TimeoutError after 0.2 s)", "reactor stopped; main thread done"]


def test_embed_asyncio_mixes_both_on_one_loop():
    done = run_example("embed_asyncio")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines() == [
        "reactor on the running asyncio loop: <Reactor asyncio idle>",
        "asyncio client got from pyreactor server: HELLO",
        "asyncio client got from pyreactor server: ONE LOOP",
        "pyreactor client got: rotcaer",
        "pyreactor client got: oicnysa",
        "pyreactor client got: an asyncio future, awaited by pyreactor",
        "timers fired in order: ['asyncio timer (10 ms)', 'reactor timer (20 ms)']",
        "cancelling the future ran the Deferred's canceller",
        "reactor closed; asyncio.run closes the loop",
    ]


# -- Tk ------------------------------------------------------------------------------------


def _has_tkinter() -> bool:
    done = subprocess.run([sys.executable, "-c", "import tkinter"], capture_output=True)
    return done.returncode == 0


@pytest.fixture(scope="module")
def display():
    """A display for Tk: a fresh Xvfb if there is one, else $DISPLAY; skip if neither."""
    if not _has_tkinter():
        pytest.skip("this Python was built without tkinter (_tkinter); the Tk example cannot run")
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        if os.environ.get("DISPLAY"):
            yield os.environ["DISPLAY"]
            return
        pytest.skip("no display: Xvfb is not installed and $DISPLAY is not set")
    # -displayfd: Xvfb picks a free display number and writes it to the pipe
    # once the server is ready, so neither a guess nor a sleep is needed.
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_end), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=(write_end,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as ready:
            number = ready.readline().strip()
        if not number:
            pytest.skip(f"Xvfb did not start (exit status {proc.wait(5)})")
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a wedged X server
            proc.kill()
            proc.wait()


def _env_with(display: str | None) -> dict:
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    if display is not None:
        env["DISPLAY"] = display
    return env


def test_embed_tk_shows_ticker_lines_and_exits_by_itself(display):
    done = run_example("embed_tk", "--exit-after", "5", env=_env_with(display))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ticker on 127.0.0.1:")
    shown = [line for line in lines if line.startswith("shown: ")]
    assert [line.split(" at ")[0] for line in shown] == [f"shown: tick {i}" for i in range(1, 6)]
    assert lines[-1] == "window closed after showing 5 lines"


def test_embed_tk_shows_lines_from_another_server(display):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve():
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"first line from the test\nsecond line\r\nthird\n")
            conn.recv(1)  # until the window closes the connection

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        done = run_example("embed_tk", "--exit-after", "3", "--connect", f"127.0.0.1:{port}", env=_env_with(display))
    finally:
        thread.join(10)
        server.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "shown: first line from the test",
        "shown: second line",
        "shown: third",
        "window closed after showing 3 lines",
    ]


def test_embed_tk_without_a_display_says_so():
    if not _has_tkinter():
        pytest.skip("this Python was built without tkinter")
    done = run_example("embed_tk", "--exit-after", "1", env=_env_with(None))
    assert done.returncode == 2
    assert done.stderr.startswith("cannot open a window:")
