"""Structural tests for the hot paths: counts of calls, not timings."""

import socket

from protocols import Protocol
from reactor import Reactor
from reactor.transport import Connection


class CountingSocket:
    """A socket wrapper that counts send() and sendmsg() calls."""

    def __init__(self, sock):
        self._sock = sock
        self.sends = 0
        self.family = sock.family

    def send(self, data):
        self.sends += 1
        return self._sock.send(data)

    def sendmsg(self, buffers):
        self.sends += 1
        return self._sock.sendmsg(buffers)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_n_ready_callbacks_cost_one_poll(reactor):
    polls = []
    real_poll = reactor._poll

    def counting_poll(timeout):
        polls.append(timeout)
        return real_poll(timeout)

    reactor._poll = counting_poll
    ran = []
    for i in range(1000):
        reactor.call_soon(ran.append, i)
    reactor.iterate(1.0)
    assert ran == list(range(1000))
    # One poll, and it did not wait: work was ready.
    assert polls == [0.0]


def test_a_write_to_an_idle_connection_is_one_send_and_no_buffer():
    r = Reactor("epoll" if hasattr(__import__("select"), "epoll") else None)
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        counting = CountingSocket(a)
        transport = Connection(r, counting, Protocol())
        transport.start()
        transport.write(b"x" * 64)
        assert counting.sends == 1
        assert transport._buffer is None
        assert transport.get_write_buffer_size() == 0
        assert r.get_writers() == []
        assert b.recv(100) == b"x" * 64
        transport.abort_connection()
        r.iterate(0)
    finally:
        a.close()
        b.close()
        r.close()
