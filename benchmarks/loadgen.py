"""A small-message echo load generator: N connections, one request in flight on each.

Run: ``python benchmarks/loadgen.py PORT CONNECTIONS SECONDS [SIZE]``; prints
the number of answered requests. Traffic goes to 127.0.0.1 only and the run
ends by itself after SECONDS.
"""

from __future__ import annotations

import select
import socket
import sys
import time


def run(port: int, connections: int, seconds: float, size: int = 64) -> int:
    """Answered requests in ``seconds`` over ``connections`` ping-pong connections."""
    message = b"x" * size
    ep = select.epoll()
    socks: dict[int, socket.socket] = {}
    pending: dict[int, int] = {}
    for _ in range(connections):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks[s.fileno()] = s
        ep.register(s.fileno(), select.EPOLLIN)
    for fd, s in socks.items():
        s.send(message)
        pending[fd] = size
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for fd, _ in ep.poll(0.1):
            s = socks[fd]
            data = s.recv(65536)
            if not data:
                raise SystemExit("server closed a connection")
            pending[fd] -= len(data)
            if pending[fd] <= 0:
                done += 1
                s.send(message)
                pending[fd] = size
    for s in socks.values():
        s.close()
    ep.close()
    return done


if __name__ == "__main__":
    port, conns, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    size = int(sys.argv[4]) if len(sys.argv) > 4 else 64
    print(run(port, conns, secs, size))
