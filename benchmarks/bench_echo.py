"""Echo benchmark: pyreactor against asyncio, uvloop, Twisted and a minimal epoll loop.

Run: ``python benchmarks/bench_echo.py [--seconds 2] [--rounds 3] [--conns 1,10,100]``

Each measurement starts one server (``echo_servers.py``) pinned to CPU 0 and
one load generator pinned to CPU 1 with ``taskset`` (``loadgen.c``, built
with the system C compiler so that the client outruns every server; the
Python ``loadgen.py`` where there is no compiler), runs
64-byte ping-pong for ``--seconds`` on every connection, and records the
requests answered and the *server's* CPU time (utime + stime from
/proc/PID/stat) over the run. The Python load generator can saturate its own
core before the server does, so server CPU per request is the figure to
compare; requests per second are printed too. Servers are interleaved within
each round, and the table shows medians over rounds plus ratios against
asyncio and against the minimal epoll loop taken from the same rounds.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys

from procstat import cpu_times

HERE = os.path.dirname(os.path.abspath(__file__))


def _pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1:
        return ["taskset", "-c", str(cpu)]
    return []


def _loadgen() -> list[str]:
    """The load generator command: the C one if it can be built, else the Python one."""
    source = os.path.join(HERE, "loadgen.c")
    binary = os.path.join(os.environ.get("TMPDIR", "/tmp"), "pyreactor-loadgen")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc and (not os.path.exists(binary) or os.path.getmtime(binary) < os.path.getmtime(source)):
        subprocess.run([cc, "-O2", "-o", binary, source], check=True)
    if os.path.exists(binary):
        return [binary]
    return [sys.executable, os.path.join(HERE, "loadgen.py")]


def stop_server(server: subprocess.Popen) -> None:
    """Close the server's stdin (its signal to exit) and wait for it; kill it if it hangs."""
    server.stdin.close()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


# The asyncio server each one is compared with: the same API style.
PEERS = {"pyreactor-streams": "asyncio-streams", "asyncio-streams": "asyncio-streams"}


def implementations() -> list[str]:
    """The servers that can run here."""
    names = ["epoll-minimal", "pyreactor", "pyreactor-streams", "asyncio", "asyncio-streams"]
    if importlib.util.find_spec("uvloop"):
        names.append("uvloop")
    if importlib.util.find_spec("twisted"):
        names.append("twisted")
    return names


def measure(
    impl: str, conns: int, seconds: float, loadgen: list[str] | None = None
) -> tuple[float, float, float, float]:
    """(requests per second, server CPU, user and system microseconds per request) for one run."""
    server = subprocess.Popen(
        _pin(0) + [sys.executable, os.path.join(HERE, "echo_servers.py"), impl],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        port = int(server.stdout.readline())
        before = cpu_times(server.pid)
        out = subprocess.run(
            _pin(1) + (loadgen or _loadgen()) + [str(port), str(conns), str(seconds)],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        )
        after = cpu_times(server.pid)
    finally:
        stop_server(server)
    requests = max(int(out.stdout.split()[0]), 1)
    user = (after[0] - before[0]) / requests * 1e6
    system = (after[1] - before[1]) / requests * 1e6
    return requests / seconds, user + system, user, system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--conns", default="1,10,100")
    parser.add_argument("--only", default="", help="comma-separated implementations")
    args = parser.parse_args()
    impls = args.only.split(",") if args.only else implementations()
    conn_counts = [int(c) for c in args.conns.split(",")]
    loadgen = _loadgen()
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for round_no in range(args.rounds):
        for conns in conn_counts:
            # Rotate the order each round so no server always goes first.
            order = impls[round_no % len(impls):] + impls[:round_no % len(impls)]
            for impl in order:
                results.setdefault((impl, conns), []).append(measure(impl, conns, args.seconds, loadgen))
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"64 B echo, {args.seconds:g} s per run, {args.rounds} rounds, server on CPU 0, load ({os.path.basename(loadgen[-1])}) on CPU 1; medians")
    print("vs asyncio: against asyncio in the same API style (streams servers against asyncio-streams)")
    print(f"{'server':<18} {'conns':>5} {'req/s':>9} {'CPU us/req':>11} {'user':>6} {'sys':>6}"
          f" {'vs asyncio':>11} {'vs epoll':>9}")
    for conns in conn_counts:
        floor = results.get(("epoll-minimal", conns))
        for impl in impls:
            base = results.get((PEERS.get(impl, "asyncio"), conns))
            runs = results[(impl, conns)]
            rps = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            user = statistics.median(r[2] for r in runs)
            system = statistics.median(r[3] for r in runs)
            # Ratios per round (same conditions), then the median of those.
            vs_asyncio = statistics.median(r[1] / b[1] for r, b in zip(runs, base)) if base else float("nan")
            vs_floor = statistics.median(r[1] / f[1] for r, f in zip(runs, floor)) if floor else float("nan")
            print(f"{impl:<18} {conns:>5} {rps:>9.0f} {cpu:>11.2f} {user:>6.2f} {system:>6.2f}"
                  f" {vs_asyncio:>10.2f}x {vs_floor:>8.2f}x")


if __name__ == "__main__":
    main()
