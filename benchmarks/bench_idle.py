"""Idle connections: resident memory per connection held by one server process.

Run: ``python benchmarks/bench_idle.py [--conns 19000] [--rounds 3]``

Each server from ``echo_servers.py`` (pyreactor Protocol and streams style,
asyncio Protocol and streams style, uvloop and Twisted where installed)
starts on 127.0.0.1, pinned to CPU 0. A holder process on CPU 1 opens
``--conns`` connections and keeps them open without sending anything. The
server's VmRSS is read from /proc before the connections and once its fd
count shows every connection accepted and its RSS has settled; the growth
divided by the connection count is the figure. This machine allows 20,000
fds per process, hence 19,000 by default.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_echo import _pin, stop_server  # noqa: E402

HOLDER = """
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
print("open", flush=True)
sys.stdin.read()
"""


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def measure(impl: str, conns: int) -> float:
    """Bytes of server RSS growth per idle connection."""
    server = subprocess.Popen(
        _pin(0) + [sys.executable, os.path.join(HERE, "echo_servers.py"), impl],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    holder = None
    try:
        port = int(server.stdout.readline())
        # Warm up: one connection made and closed, so one-time allocations are not counted.
        socket.create_connection(("127.0.0.1", port)).close()
        time.sleep(0.3)
        before_fds = _fds(server.pid)
        before = _rss_kib(server.pid)
        holder = subprocess.Popen(
            _pin(1) + [sys.executable, "-c", HOLDER, str(port), str(conns)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert holder.stdout.readline().strip() == "open"
        deadline = time.monotonic() + 60
        while _fds(server.pid) < before_fds + conns and time.monotonic() < deadline:
            time.sleep(0.05)
        if _fds(server.pid) < before_fds + conns:
            raise RuntimeError(f"{impl}: only {_fds(server.pid) - before_fds} of {conns} connections accepted")
        # Settle: RSS stable for half a second.
        last = _rss_kib(server.pid)
        while True:
            time.sleep(0.5)
            now = _rss_kib(server.pid)
            if now == last:
                break
            last = now
        return (last - before) * 1024 / conns
    finally:
        if holder is not None:
            holder.stdin.close()
            holder.wait(timeout=30)
        stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=19_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    impls = ["pyreactor", "pyreactor-streams", "asyncio", "asyncio-streams"]
    if importlib.util.find_spec("uvloop"):
        impls.append("uvloop")
    if importlib.util.find_spec("twisted"):
        impls.append("twisted")
    runs: dict[str, list[float]] = {impl: [] for impl in impls}
    for round_no in range(args.rounds):
        for impl in impls:
            runs[impl].append(measure(impl, args.conns))
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"{args.conns} idle connections, server RSS growth per connection, median of {args.rounds} rounds")
    for impl, values in runs.items():
        print(f"  {impl:<18} {statistics.median(values):8.0f} B   (range {min(values):.0f}-{max(values):.0f})")


if __name__ == "__main__":
    main()
