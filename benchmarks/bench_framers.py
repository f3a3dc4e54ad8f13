"""Framer benchmark: is the cost linear however the bytes are chunked?

Run: ``python benchmarks/bench_framers.py [--small-mb 1] [--large-mb 10] [--repeat 1]``

Feeds a stream of ``--small-mb`` and of ``--large-mb`` megabytes to each
framer over a StringTransport, one byte per ``data_received`` call (the
worst chunking a peer can choose), and prints the seconds each took and the
ratio large/small. A linear framer shows a ratio close to large/small (10
by default); one that rescans or re-copies its buffer on every call shows
about its square (100).

Streams: short lines (~20 bytes) for LineReceiver; one single line as long
as the whole stream (no delimiter until the end: the case that breaks
parsers which search the whole buffer on every call); ~30-byte strings for
Int32StringReceiver and NetstringReceiver; and, for reference, the short
lines again in one chunk and in 16-byte chunks. Times are CPU seconds of
this process (``time.process_time``), so that other load on the machine
does not count; they include the loop that slices the stream into chunks,
the same work per byte at both sizes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from protocols.basic import Int32StringReceiver, LineReceiver, NetstringReceiver  # noqa: E402
from reactor.testing import StringTransport  # noqa: E402

MB = 1_000_000


class CountLines(LineReceiver):
    """Counts lines and their bytes."""

    def __init__(self, max_length: int = 16384) -> None:
        self.MAX_LENGTH = max_length
        self.frames = 0
        self.payload = 0

    def line_received(self, line: bytes) -> None:
        self.frames += 1
        self.payload += len(line)


class CountInt32(Int32StringReceiver):
    """Counts strings and their bytes."""

    frames = 0
    payload = 0

    def string_received(self, string: bytes) -> None:
        self.frames += 1
        self.payload += len(string)


class CountNetstrings(NetstringReceiver):
    """Counts strings and their bytes."""

    frames = 0
    payload = 0

    def string_received(self, string: bytes) -> None:
        self.frames += 1
        self.payload += len(string)


def short_lines(size: int) -> bytes:
    """About ``size`` bytes of 20-byte lines."""
    return b"".join(b"line %07d of text\r\n" % i for i in range(size // 20))


def one_long_line(size: int) -> bytes:
    return b"x" * (size - 2) + b"\r\n"


def int32_strings(size: int) -> bytes:
    return b"".join(
        len(s).to_bytes(4, "big") + s for s in (b"payload %07d of text" % i for i in range(size // 30))
    )


def netstrings(size: int) -> bytes:
    return b"".join(b"%d:%s," % (len(s), s) for s in (b"payload %07d of text" % i for i in range(size // 30)))


def feed(proto: Any, data: bytes, chunk: int) -> float:
    """Seconds to feed ``data`` to ``proto`` ``chunk`` bytes per call."""
    proto.connection_made(StringTransport())
    received = proto.data_received
    started = time.process_time()
    if chunk == 1:
        for i in range(len(data)):
            received(data[i:i + 1])
    else:
        for i in range(0, len(data), chunk):
            received(data[i:i + chunk])
    elapsed = time.process_time() - started
    assert proto.frames > 0 and not proto.transport.disconnecting, "the stream was not parsed"
    return elapsed


CASES: list[tuple[str, Callable[[int], bytes], Callable[[int], Any], int]] = [
    ("LineReceiver, 20-byte lines, 1 byte/call", short_lines, lambda size: CountLines(), 1),
    ("LineReceiver, one line of it all, 1 byte/call", one_long_line, lambda size: CountLines(size), 1),
    ("Int32StringReceiver, 30-byte frames, 1 byte/call", int32_strings, lambda size: CountInt32(), 1),
    ("NetstringReceiver, 30-byte frames, 1 byte/call", netstrings, lambda size: CountNetstrings(), 1),
    ("LineReceiver, 20-byte lines, 16 bytes/call", short_lines, lambda size: CountLines(), 16),
    ("LineReceiver, 20-byte lines, one chunk", short_lines, lambda size: CountLines(), 0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-mb", type=float, default=1.0)
    parser.add_argument("--large-mb", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs per cell")
    args = parser.parse_args()
    small, large = int(args.small_mb * MB), int(args.large_mb * MB)
    print(f"Python {platform.python_version()} on {platform.machine()}; best of {args.repeat}")
    print(f"{'case':50} {args.small_mb:>7g} MB {args.large_mb:>7g} MB   ratio  ns/byte (large)")
    for name, make_stream, make_proto, chunk in CASES:
        times = []
        for size in (small, large):
            data = make_stream(size)
            step = chunk or len(data)
            times.append(min(feed(make_proto(size), data, step) for _ in range(args.repeat)))
        ratio = times[1] / times[0]
        per_byte = times[1] / large * 1e9
        print(f"{name:50} {times[0]:8.3f} s {times[1]:8.3f} s {ratio:7.1f}  {per_byte:8.0f}", flush=True)


if __name__ == "__main__":
    main()
