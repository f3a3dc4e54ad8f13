"""Chat relay benchmark: the four styles of examples/chat, idle memory and relay throughput.

Run (from the repository root): ``python benchmarks/bench_chat.py``
(options: ``--conns 1000 --big 10000 --seconds 5 --rounds 3 --styles ...``).

For each style and each connection count (``--conns``, and ``--big`` for
the 10,000-connection run) it starts one server,
``python -m examples.chat.<style> --port 0``, pinned to CPU 0 with
``taskset -c 0``, and one load client (this file with ``--client``) pinned
to CPU 1, and then:

1. Idle memory. The server's VmRSS (and VmSize, and thread count) is read
   from /proc/PID/status before the client connects and again once all N
   connections are open and paired (the client has read ``* paired`` on
   every one) and the server has had half a second to settle. The growth
   divided by N is the cost of one idle connection in the server process.
   Kernel socket buffers are not in RSS and not counted.
2. Throughput. The client then drives a closed loop on its first L
   connections (L in ``--load``, up to N): in each pair one side starts with
   ``--depth`` lines in flight, and every line a client receives is
   answered with one line, so each pair always has ``--depth`` lines inside
   the server. After a one-second warm-up it counts the lines received
   (= lines the server relayed) for ``--seconds``; the server's CPU time
   over that window comes from /proc/PID/stat, which gives the server's CPU
   time per relayed line and its share of a CPU. The client's own CPU use
   is reported too: near 100% would mean the client, not the server, is the
   limit. On a machine busy with other work, lines/s follows the CPU share
   the server got; CPU time per line is the figure that compares styles.

After each window the client stops answering and waits (30 s at most)
until every line still in flight has arrived; any that do not are
reported as an error. The whole session (start, connect, measure) is
repeated ``--rounds`` times per style (``--big-rounds`` for the big run),
in a rotating order; medians are reported, with the range of lines/s. Lines are 32 bytes. Numbers vary with the machine and its load; the
comparison between styles run back to back is the point.
"""

from __future__ import annotations

import argparse
import os
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from procstat import cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
STYLES = ("threads", "callbacks", "generators", "coroutines")
LINE = b"." * 31 + b"\n"


# -- the load client (a child process: python bench_chat.py --client PORT N) --

def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError(f"closed by the server after {data!r}")
        data += chunk
    return data


def _load(socks: list[socket.socket], depth: int, warmup: float, seconds: float) -> dict[str, float]:
    """Closed-loop relay traffic on ``socks`` (pairs: 0-1, 2-3, ...); counts lines received in the window."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    backlog: dict[socket.socket, bytes] = {}

    def send(s: socket.socket, data: bytes) -> None:
        if s in backlog:
            backlog[s] += data
            return
        try:
            n = s.send(data)
        except BlockingIOError:
            n = 0
        if n < len(data):
            backlog[s] = data[n:]
            sel.modify(s, selectors.EVENT_READ | selectors.EVENT_WRITE)

    sent = received = 0
    for s in socks[0::2]:
        send(s, LINE * depth)
        sent += depth
    start = time.monotonic()
    window_start = start + warmup
    window_end = window_start + seconds
    counted = 0
    cpu0 = 0.0
    in_window = False
    replying = True
    while True:
        now = time.monotonic()
        if not in_window and replying and now >= window_start:
            in_window = True
            counted = 0
            cpu0 = time.process_time()
            print("window", flush=True)
        if in_window and now >= window_end:
            in_window = False
            replying = False
            cpu = time.process_time() - cpu0
            lines_in_window = counted
            print("window-end", flush=True)
            drain_deadline = now + 30
        if not replying and (sent == received or time.monotonic() > drain_deadline):
            break
        for key, events in sel.select(0.05):
            s = key.fileobj
            if events & selectors.EVENT_WRITE:
                data = backlog.pop(s)
                sel.modify(s, selectors.EVENT_READ)
                send(s, data)
            if events & selectors.EVENT_READ:
                data = s.recv(262144)
                if not data:
                    raise ConnectionError("the server closed a connection under load")
                n = data.count(b"\n")
                received += n
                if in_window:
                    counted += n
                if replying and n:
                    send(s, LINE * n)
                    sent += n
    sel.close()
    for s in socks:
        s.setblocking(True)
    return {"lines": lines_in_window, "seconds": seconds, "client_cpu": cpu, "lost": sent - received}


def client_main(port: int, n: int) -> int:
    """Open ``n`` connections in pairs, report ``ready``, then run the ``load L DEPTH WARMUP SECONDS`` commands read from stdin."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=60)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        for i, s in enumerate(socks):
            line = _read_line(s)
            if line != b"* paired\n":
                print(f"error connection {i} got {line!r}", flush=True)
                return 1
    except OSError as exc:
        print(f"error after {len(socks)} connections: {exc}", flush=True)
        return 1
    print("ready", flush=True)
    try:
        for command in sys.stdin:
            words = command.split()
            if not words or words[0] == "quit":
                break
            _, count, depth, warmup, seconds = words
            result = _load(socks[:int(count)], int(depth), float(warmup), float(seconds))
            print("result " + " ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    finally:
        for s in socks:
            s.close()
    return 0


# -- the driver ------------------------------------------------------------------

def _pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)]
    return []


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmSize in bytes, and Threads, from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmSize"):
                out[key] = int(value.split()[0]) * 1024
            elif key == "Threads":
                out[key] = int(value)
    return out


def _expect(proc: subprocess.Popen, prefix: str, timeout: float) -> str:
    """The next line of the client's output, which must start with ``prefix``."""
    line = proc.stdout.readline()
    if not line.startswith(prefix):
        raise RuntimeError(f"load client said {line.strip()!r} (wanted {prefix!r}); exit status {proc.poll()}")
    return line


def run_style(style: str, conns: int, loads: list[int], args: argparse.Namespace) -> dict[str, Any]:
    """One server, one client with ``conns`` connections: memory, then each load level."""
    sys.path.insert(0, str(ROOT))
    from examples.chat.common import ServerProcess

    result: dict[str, Any] = {"style": style, "conns": conns}
    with ServerProcess(style, prefix=_pin(0), timeout=30) as server:
        time.sleep(0.3)  # let the fresh interpreter settle before the baseline
        before = _status(server.pid)
        client = subprocess.Popen(
            _pin(1) + [sys.executable, __file__, "--client", str(server.port), str(conns)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        try:
            t0 = time.monotonic()
            line = client.stdout.readline()
            if not line.startswith("ready"):
                result["error"] = line.strip() or f"client exited with {client.wait()}"
                return result
            result["connect_seconds"] = time.monotonic() - t0
            time.sleep(0.5)  # let the server finish what the last connections started
            after = _status(server.pid)
            result["rss_per_conn"] = (after["VmRSS"] - before["VmRSS"]) / conns
            result["vsz_per_conn"] = (after["VmSize"] - before["VmSize"]) / conns
            result["rss_total"] = after["VmRSS"]
            result["threads"] = after["Threads"]
            for load in loads:
                client.stdin.write(f"load {load} {args.depth} 1.0 {args.seconds}\n")
                client.stdin.flush()
                _expect(client, "window", 60)
                cpu0 = cpu_seconds(server.pid)
                _expect(client, "window-end", args.seconds + 60)
                cpu = cpu_seconds(server.pid) - cpu0
                fields = dict(kv.split("=") for kv in _expect(client, "result", 90).split()[1:])
                lines = int(fields["lines"])
                result[f"load{load}"] = (lines / args.seconds, cpu / max(lines, 1) * 1e6, float(fields["client_cpu"]) / args.seconds)
                if int(fields["lost"]):
                    # Lines still in flight 30 s after the window: lost, or a server stuck.
                    result["error"] = f"{fields['lost']} lines undelivered 30 s after the window ({load} connections)"
            client.stdin.write("quit\n")
            client.stdin.flush()
            client.wait(60)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
            client.stdin.close()
            client.stdout.close()
            alive = server.alive()
        if not alive:
            result["error"] = "the server died"
    return result


def _median_session(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the sessions that worked (the first error if none did)."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return runs[0]
    out: dict[str, Any] = {"style": good[0]["style"], "conns": good[0]["conns"], "sessions": len(good)}
    for key in ("rss_per_conn", "vsz_per_conn", "rss_total", "threads", "connect_seconds"):
        out[key] = statistics.median(r[key] for r in good)
    for key in [k for k in good[0] if k.startswith("load")]:
        out[key] = tuple(statistics.median(r[key][i] for r in good) for i in range(3))
        rates = [r[key][0] for r in good]
        out["range" + key] = (min(rates), max(rates))
    if len(good) < len(runs):
        out["error"] = f"{len(runs) - len(good)} of {len(runs)} sessions failed: " + next(r["error"] for r in runs if "error" in r)
    return out


def _fmt_bytes(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Print the results as a markdown table."""
    print(f"\nChat relay, 32-byte lines, {args.depth} lines in flight per pair, {args.seconds:g} s windows; "
          f"medians of {args.rounds} sessions ({args.big_rounds} for {args.big} connections); "
          f"server on CPU 0, load client on CPU 1; Python {sys.version.split()[0]}\n")
    print("| style | conns | RSS / conn | VSZ / conn | server threads | server RSS | load conns | lines/s (range) | server CPU us/line | server CPU | client CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        if "error" in r and "rss_per_conn" not in r:
            print(f"| {r['style']} | {r['conns']} | failed: {r['error']} | | | | | | | | |")
            continue
        loads = sorted(int(k[4:]) for k in r if k.startswith("load"))
        ranges = {load: r.get(f"rangeload{load}") for load in loads}
        rows = loads or [None]
        for i, load in enumerate(rows):
            head = (f"| {r['style']} | {r['conns']} | {_fmt_bytes(r['rss_per_conn'])} | {_fmt_bytes(r['vsz_per_conn'])} | "
                    f"{r['threads']:.0f} | {r['rss_total'] / 2**20:.0f} MiB |") if i == 0 else "| | | | | | |"
            if load is None:
                print(head + " | | | | |")
            else:
                rate, cpu, client_cpu = r[f"load{load}"]
                # The server's share of a CPU over the window: far below 100%
                # means it waited (for the client, or for a CPU busy with others).
                low, high = ranges[load] or (rate, rate)
                spread = f" ({low / 1000:,.0f}k-{high / 1000:,.0f}k)" if r.get("sessions", 1) > 1 else ""
                print(head + f" {load} | {rate:,.0f}{spread} | {cpu:.1f} | {rate * cpu / 1e6:.0%} | {client_cpu:.0%} |")
        if "error" in r:
            print(f"| {r['style']} | {r['conns']} | error: {r['error']} | | | | | | | | |")


def main() -> int:
    """Parse the command line; run the client, or the whole benchmark."""
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        return client_main(int(sys.argv[2]), int(sys.argv[3]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", default=",".join(STYLES))
    parser.add_argument("--conns", type=int, default=1000, help="connections for the main run (default 1000)")
    parser.add_argument("--load", default="100,1000", help="active connections for the throughput runs (default 100,1000)")
    parser.add_argument("--big", type=int, default=10000, help="connections for the big run (0: skip; default 10000)")
    parser.add_argument("--big-styles", default=",".join(STYLES), help="styles for the big run")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per throughput run")
    parser.add_argument("--rounds", type=int, default=3, help="sessions per style (medians reported)")
    parser.add_argument("--big-rounds", type=int, default=3, help="sessions per style for the big run")
    parser.add_argument("--depth", type=int, default=8, help="lines in flight per pair")
    args = parser.parse_args()
    loads = [int(x) for x in args.load.split(",") if x]
    plan = [(style, args.conns, [l for l in loads if l <= args.conns], False) for style in args.styles.split(",")]
    if args.big:
        plan += [(style, args.big, [args.big], True) for style in args.big_styles.split(",")]
    sessions: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for round_no in range(args.rounds):
        # Rotate the order each round, so that no style always runs first
        # (or always right after the most expensive one).
        shift = round_no % len(plan)
        for style, conns, style_loads, big in plan[shift:] + plan[:shift]:
            if big and round_no >= args.big_rounds:
                continue
            print(f"round {round_no + 1}: {style} at {conns} connections...", file=sys.stderr, flush=True)
            try:
                outcome = run_style(style, conns, style_loads, args)
            except Exception as exc:  # one style failing must not hide the others' figures
                outcome = {"style": style, "conns": conns, "error": f"{type(exc).__name__}: {exc}"}
            sessions.setdefault((style, conns), []).append(outcome)
    results = [_median_session(sessions[(style, conns)]) for style, conns, _, _ in plan if (style, conns) in sessions]
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
