"""UNIX stream sockets: the TCP listener and connector with a path for an address.

A path left behind by a process that died is a stale socket file: binding
fails with EADDRINUSE although nobody listens. As asyncio does, a listener
removes an existing *socket* file at its path before binding (never a
regular file), and removes its own file again when it closes.
"""

from __future__ import annotations

import os
import socket
import stat
from typing import TYPE_CHECKING, Any

from .tcp import Connector, Listener, _bind_listen

if TYPE_CHECKING:
    from .core import Reactor


def listen_unix(reactor: Reactor, path: str, factory: Any, *, backlog: int = 1024) -> Listener:
    """Listen on the UNIX socket ``path``; returns the Listener."""
    if _abstract(path):
        # Linux's abstract namespace: no file on disk to clean up.
        sock = _bind_listen(socket.AF_UNIX, path, backlog, reuse_addr=False)
        return Listener(reactor, sock, factory, tcp=False)
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass
    sock = _bind_listen(socket.AF_UNIX, path, backlog, reuse_addr=False)
    listener = Listener(reactor, sock, factory, tcp=False)
    inode = os.stat(path).st_ino

    def remove_file() -> None:
        try:
            # Only our own file: another listener may have taken the path since.
            if os.stat(path).st_ino == inode:
                os.unlink(path)
        except OSError:
            pass

    listener._on_close.append(remove_file)
    return listener


def _abstract(path: str | bytes) -> bool:
    return path[:1] in ("\0", b"\0")


def connect_unix(reactor: Reactor, path: str, factory: Any, *, timeout: float = 30.0) -> Connector:
    """Connect to the UNIX socket ``path`` and return the Connector."""
    connector = Connector(reactor, path, 0, factory, timeout, family=socket.AF_UNIX)
    connector.connect()
    return connector
