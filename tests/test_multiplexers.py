"""The multiplexers used directly, and the reactor's recovery from fds closed behind its back."""

import errno
import logging
import os
import resource
import select
import socket
import tempfile
import time

import pytest

from reactor import Reactor
from reactor.multiplexers import READ, WRITE, SelectMultiplexer, available, make_multiplexer
from support import run_until


@pytest.fixture(params=available())
def mux(request):
    m = make_multiplexer(request.param)
    yield m
    m.close()


@pytest.fixture
def sockpair():
    a, b = socket.socketpair()
    a.setblocking(False)
    yield a, b
    a.close()
    b.close()


def events_for(mux, fd, timeout=0.0):
    """The native mask ``poll`` reported for ``fd`` (0 if none)."""
    masks = [mask for got, mask in mux.poll(timeout) if got == fd]
    assert len(masks) <= 1, "an fd reported twice in one poll"
    return masks[0] if masks else 0


def test_make_multiplexer_picks_the_best_by_default_and_each_by_name():
    names = available()
    assert names[-1] == "select"
    best = make_multiplexer()
    try:
        assert best.name == names[0]
    finally:
        best.close()
    for name in names:
        m = make_multiplexer(name)
        try:
            assert m.name == name
        finally:
            m.close()


def test_read_interest_reports_readable_data_only_when_asked(mux, sockpair):
    a, b = sockpair
    fd = a.fileno()
    mux.register(fd, READ)
    assert events_for(mux, fd) == 0
    b.send(b"x")
    mask = events_for(mux, fd, 1.0)
    assert mask & mux.READ_MASK
    assert not mask & mux.WRITE_MASK
    # Writable too once we ask for it...
    mux.modify(fd, READ | WRITE)
    mask = events_for(mux, fd)
    assert mask & mux.READ_MASK and mask & mux.WRITE_MASK
    # ...and only writable when reading is no longer wanted, data or not.
    mux.modify(fd, WRITE)
    mask = events_for(mux, fd)
    assert mask & mux.WRITE_MASK and not mask & mux.READ_MASK
    mux.unregister(fd)
    assert events_for(mux, fd) == 0


@pytest.mark.parametrize("interest", [READ, WRITE, READ | WRITE], ids=["read", "write", "both"])
def test_hangup_wakes_a_descriptor_in_the_direction_it_waits(mux, sockpair, interest):
    a, b = sockpair
    b.close()
    mux.register(a.fileno(), interest)
    mask = events_for(mux, a.fileno(), 1.0)
    if interest & READ:
        assert mask & mux.READ_MASK
    if interest & WRITE:
        assert mask & mux.WRITE_MASK


def test_register_twice_and_modify_unknown_raise_and_change_nothing(mux, sockpair):
    a, b = sockpair
    fd = a.fileno()
    with pytest.raises(FileNotFoundError):
        mux.modify(fd, READ)
    mux.register(fd, WRITE)
    with pytest.raises(FileExistsError) as info:
        mux.register(fd, READ)
    assert info.value.errno == errno.EEXIST
    # Still watched for writing only.
    b.send(b"x")
    mask = events_for(mux, fd, 1.0)
    assert mask & mux.WRITE_MASK and not mask & mux.READ_MASK


def test_unregister_unknown_or_closed_fds_is_ignored(mux):
    a, b = socket.socketpair()
    fd = a.fileno()
    mux.unregister(fd)  # never registered
    mux.register(fd, READ)
    a.close()  # the kernel may forget it now (epoll does)
    mux.unregister(fd)
    mux.unregister(fd)
    b.close()
    assert mux.poll(0) == []


def test_timeouts_zero_positive_and_none(mux, sockpair):
    a, b = sockpair
    fd = a.fileno()
    mux.register(fd, READ)
    start = time.monotonic()
    assert mux.poll(0) == []
    assert mux.poll(0.05) == []
    assert time.monotonic() - start >= 0.05
    b.send(b"x")
    # None waits forever, so it may only be called with something ready.
    assert [got for got, _ in mux.poll(None)] == [fd]


def test_sub_millisecond_timeouts_wait_rather_than_spin(mux):
    # poll(2) counts milliseconds: 0.4 ms rounded down to 0 would return at once.
    start = time.monotonic()
    for _ in range(20):
        assert mux.poll(0.0004) == []
    assert time.monotonic() - start >= 20 * 0.0004


def test_fileno_and_close(mux):
    fd = mux.fileno()
    if mux.name == "epoll":
        os.fstat(fd)  # an open fd
        mux.close()
        with pytest.raises(OSError):
            os.fstat(fd)
    else:
        assert fd is None
        a, b = socket.socketpair()
        try:
            mux.register(a.fileno(), READ)
            b.send(b"x")
            mux.close()
            # Closing forgets every fd.
            with pytest.raises(FileNotFoundError):
                mux.modify(a.fileno(), READ)
        finally:
            a.close()
            b.close()


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="epoll only")
def test_a_register_the_kernel_refuses_leaves_nothing_behind():
    m = make_multiplexer("epoll")
    fd, path = tempfile.mkstemp()
    try:
        # epoll cannot watch regular files.
        with pytest.raises(PermissionError):
            m.register(fd, READ)
        with pytest.raises(FileNotFoundError):
            m.modify(fd, READ)
        m.unregister(fd)
        assert m.poll(0) == []
    finally:
        m.close()
        os.close(fd)
        os.unlink(path)


def test_select_reports_an_fd_closed_behind_its_back_instead_of_failing():
    m = SelectMultiplexer()
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    try:
        m.register(c.fileno(), READ)
        fd = a.fileno()
        m.register(fd, READ)
        a.close()
        # select() itself fails with EBADF: the closed fd is reported in both
        # directions so that its descriptor meets the error.
        assert m.poll(0) == [(fd, READ | WRITE)]
        m.unregister(fd)
        d.send(b"x")
        assert m.poll(1.0) == [(c.fileno(), READ)]
    finally:
        m.close()
        for s in (a, b, c, d):
            s.close()


def test_select_reports_exceptional_conditions_as_both_directions():
    m = SelectMultiplexer()
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    try:
        m.register(server.fileno(), WRITE)
        client.send(b"!", socket.MSG_OOB)  # urgent data: select's "exceptional" set
        run_deadline = time.monotonic() + 2
        mask = 0
        while mask != READ | WRITE and time.monotonic() < run_deadline:
            mask = events_for(m, server.fileno(), 0.05)
        assert mask == READ | WRITE
    finally:
        m.close()
        for s in (client, server, listener):
            s.close()


class FdDescriptor:
    """A descriptor over a raw socket, recording on_read errors the way a transport would."""

    def __init__(self, sock):
        self.sock = sock
        self.fd = sock.fileno()
        self.received = bytearray()
        self.closed_with = None

    def fileno(self):
        return self.fd

    def on_read(self):
        self.received += self.sock.recv(100)

    def on_write(self):
        pass

    def on_close(self, reason):
        self.closed_with = reason


@pytest.mark.parametrize("name", [n for n in available() if n != "epoll"])
def test_a_descriptor_whose_fd_is_closed_behind_the_reactors_back_is_told(name, caplog):
    # epoll silently forgets a closed fd; select and poll report it, and the
    # descriptor's own read meets the error and gets it closed.
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    with Reactor(name) as r:
        lost = FdDescriptor(a)
        good = FdDescriptor(c)
        r.add_reader(lost)
        r.add_reader(good)
        a.close()
        run_until(r, lambda: lost.closed_with is not None)
        assert lost.closed_with.check(OSError)
        assert lost not in r.get_readers()
        d.send(b"still served")
        run_until(r, lambda: good.received == b"still served")
        r.remove_reader(good)
    for s in (b, c, d):
        s.close()
    assert any("closing it" in rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR)


def _high_fd_limit():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft


@pytest.mark.skipif(_high_fd_limit() <= 1100, reason="needs an fd number above FD_SETSIZE")
# Regression: select accepts fds >= FD_SETSIZE; every poll then fails, returns [] at once, and no descriptor is served (fixed).
def test_select_refuses_an_fd_above_fd_setsize_and_serves_the_others():
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    high = os.dup2(a.fileno(), 1100)
    r = Reactor("select")
    good = FdDescriptor(c)
    try:
        r.add_reader(good)
        high_desc = FdDescriptor(a)
        high_desc.fd = high
        with pytest.raises(ValueError):
            r.add_reader(high_desc)
        d.send(b"x")
        r.iterate(1.0)
        assert good.received == b"x"
    finally:
        r.remove_all()
        r.close()
        os.close(high)
        for s in (a, b, c, d):
            s.close()
