"""Example programs run as users run them: ``python -m examples...`` in a child process.

The chat servers have their own suite (test_chat.py) and so has the
stopwatch (test_stopwatch.py); here are the echo server and the chat demo,
which is the README's "run it" command.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _first_line(proc: subprocess.Popen, timeout: float = 10.0) -> str:
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            pytest.fail(f"no line within {timeout} s (got {data!r})")
        byte = os.read(fd, 1)
        if not byte:
            break
        data += byte
    return data.decode()


@pytest.fixture
def echo_server(tmp_path):
    """``python -m examples.echo --port 0``; yields (process, port); stopped with SIGTERM after the test."""
    stderr_path = tmp_path / "echo.stderr"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "examples.echo", "--port", "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT,
        )
    try:
        line = _first_line(proc)
        assert line.startswith("listening on 127.0.0.1:"), line
        yield proc, int(line.rsplit(":", 1)[1])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    assert proc.returncode == 0, stderr_path.read_text()
    assert stderr_path.read_text() == ""


def test_echo_server_echoes_everything_back(echo_server):
    proc, port = echo_server
    payload = os.urandom(1 << 20)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        # Half-close: the server answers all it got, then closes (the default eof_received).
        sock.shutdown(socket.SHUT_WR)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    assert received == payload


def test_echo_server_serves_many_clients_at_once(echo_server):
    proc, port = echo_server
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(50)]
    try:
        for i, s in enumerate(socks):
            s.sendall(b"client %d\n" % i)
        for i, s in enumerate(socks):
            expected = b"client %d\n" % i
            got = b""
            while len(got) < len(expected):
                chunk = s.recv(100)
                assert chunk
                got += chunk
            assert got == expected
    finally:
        for s in socks:
            s.close()


def test_chat_demo_runs_all_four_styles_and_exits_0():
    result = subprocess.run(
        [sys.executable, "-m", "examples.chat", "--demo"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for style in ("threads", "callbacks", "generators", "coroutines"):
        assert f"== {style}:" in out
        assert f"bob    > the {style} one" in out
    assert out.count("-> ok") == 4
    assert "!!" not in out
    assert result.stderr == ""


def test_chat_without_demo_prints_usage_and_rejects_unknown_styles():
    usage = subprocess.run([sys.executable, "-m", "examples.chat"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert usage.returncode == 0 and "--demo" in usage.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "examples.chat", "--demo", "--styles", "threads,fibers"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert bad.returncode == 2 and "fibers" in bad.stderr


def test_the_readme_example_runs_and_prints_the_echo():
    readme = (Path(ROOT) / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "b'hello, reactor\\n'"
