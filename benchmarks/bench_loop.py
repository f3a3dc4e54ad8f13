"""Loop micro-benchmarks: call_soon throughput and timers, pyreactor against asyncio.

Run: ``python benchmarks/bench_loop.py [--rounds 5]``

- call_soon: schedule N callbacks that do nothing, run them all; CPU time per callback.
- timers: schedule 100,000 timers at spread-out delays, cancel every other
  one, run the loop until the rest have fired; total CPU time.

Peers run in the same process, interleaved, several rounds; medians and
same-round ratios are printed. (Twisted is left out: its reactor cannot be
restarted within a process, and its test Clock re-sorts on every callLater.)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from reactor import Reactor  # noqa: E402

N_SOON = 200_000
N_TIMERS = 100_000


def _noop() -> None:
    pass


def soon_pyreactor() -> float:
    r = Reactor()
    try:
        call_soon = r.call_soon
        start = time.process_time()
        for _ in range(N_SOON):
            call_soon(_noop)
        r.iterate(0)
        return (time.process_time() - start) / N_SOON
    finally:
        r.close()


def soon_asyncio() -> float:
    loop = asyncio.new_event_loop()
    try:
        call_soon = loop.call_soon
        start = time.process_time()
        for _ in range(N_SOON):
            call_soon(_noop)
        loop.call_soon(loop.stop)
        loop.run_forever()
        return (time.process_time() - start) / N_SOON
    finally:
        loop.close()


def timers_pyreactor() -> float:
    r = Reactor()
    try:
        fired = [0]

        def tick() -> None:
            fired[0] += 1

        start = time.process_time()
        calls = [r.call_later((i % 1000) * 1e-5, tick) for i in range(N_TIMERS)]
        for call in calls[::2]:
            call.cancel()
        while fired[0] < N_TIMERS // 2:
            r.iterate(0.01)
        return time.process_time() - start
    finally:
        r.close()


def timers_asyncio() -> float:
    loop = asyncio.new_event_loop()
    try:
        fired = [0]

        def tick() -> None:
            fired[0] += 1
            if fired[0] == N_TIMERS // 2:
                loop.stop()

        start = time.process_time()
        calls = [loop.call_later((i % 1000) * 1e-5, tick) for i in range(N_TIMERS)]
        for call in calls[::2]:
            call.cancel()
        loop.run_forever()
        return time.process_time() - start
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    shapes = {
        "call_soon (us/callback)": {"pyreactor": soon_pyreactor, "asyncio": soon_asyncio},
        "100k timers, half cancelled (s)": {"pyreactor": timers_pyreactor, "asyncio": timers_asyncio},
    }
    for shape, peers in shapes.items():
        runs: dict[str, list[float]] = {name: [] for name in peers}
        for _ in range(args.rounds):
            for name, fn in peers.items():
                gc.collect()
                runs[name].append(fn())
        scale = 1e6 if "us" in shape else 1.0
        print(shape)
        base = runs["asyncio"]
        for name, values in runs.items():
            ratio = statistics.median(v / b for v, b in zip(values, base))
            print(f"  {name:<14} {statistics.median(values) * scale:10.3f}   {ratio:5.2f}x asyncio")


if __name__ == "__main__":
    main()
