"""Child processes: three pipes and a pidfd, all watched as ordinary descriptors.

``spawn_process`` starts the child with ``subprocess.Popen`` (which gets
fork/exec, close_fds and the error reporting of a failed exec right) and then
owns the parent's ends of its stdin, stdout and stderr pipes, set
non-blocking. stdout and stderr are readers; stdin is a writer with a buffer,
so ``write()`` never blocks however much the child leaves unread.

Why a pidfd for the exit. The classic way to hear of a child's death is a
SIGCHLD handler, which is process-global state: it fights with any other
library that installs one, it runs at an arbitrary point of the loop, and a
handler that reaps with ``waitpid(-1)`` steals other code's children. Linux
(5.3 and later) instead gives us ``pidfd_open(pid)``: an fd that becomes
readable when that one child exits. It goes into the multiplexer like any
socket (select, poll, epoll and asyncio all take it), touches no signal
disposition, and reaping only that pid is then race-free. The same fd lets
``signal_process`` use ``pidfd_send_signal``, which can never hit a recycled
pid. Where ``pidfd_open`` is missing or refused (old kernel, seccomp), we
fall back to ``popen.poll()`` every 50 ms: slower to notice, still correct.

Callbacks, in order: ``connection_made(transport)``; any number of
``child_data_received(fd, data)``; ``child_connection_lost(fd)`` once per
pipe (scheduled with ``call_soon``, never inside the user's own call);
``process_exited(reason)`` once, when the child is reaped; and
``process_ended(reason)`` once, after both the exit and every pipe's close.
``reason`` is a Failure of ProcessDone (exit status 0) or ProcessTerminated
(non-zero status, or killed by a signal). A protocol that raises is logged
to the ``"reactor"`` logger and the process goes on being served.

Flow control on stdin, as on a stream transport: when more than the high
mark (64 KiB by default; ``set_write_buffer_limits``) waits for a child that
reads slowly, the protocol's ``pause_writing()`` is called, and
``resume_writing()`` once the buffer is down to the low mark. Writes are
still taken while paused (nothing is lost); the calls are the protocol's
cue to stop producing.
"""

from __future__ import annotations

import logging
import os
import signal as _signal
import subprocess
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .defer import Failure
from .errors import ProcessDone, ProcessTerminated
from .transport import as_bytes, write_buffer_limits

if TYPE_CHECKING:
    from .core import Reactor

log = logging.getLogger("reactor")

READ_SIZE = 65536
# How often the fallback (no pidfd) polls the child for its exit, in seconds.
POLL_INTERVAL = 0.05




def _exit_reason(returncode: int) -> Failure:
    """The Failure handed to process_exited/process_ended for a Popen returncode."""
    if returncode == 0:
        return Failure(ProcessDone("process exited with status 0"))
    if returncode < 0:
        return Failure(ProcessTerminated(signal=-returncode))
    return Failure(ProcessTerminated(exit_code=returncode))


def _signal_number(sig: int | str) -> int:
    """``15``, ``'TERM'`` or ``'SIGTERM'`` -> 15."""
    if isinstance(sig, str):
        name = sig.upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        try:
            return int(getattr(_signal.Signals, name))
        except AttributeError:
            raise ValueError(f"unknown signal name {sig!r}") from None
    return int(sig)


class _Pipe:
    """The parent's end of one of the child's pipes, as a descriptor (fd 0 written, 1 and 2 read)."""

    __slots__ = ("process", "child_fd", "file", "_fd", "closed")

    def __init__(self, process: ProcessTransport, child_fd: int, file: Any) -> None:
        self.process = process
        self.child_fd = child_fd
        self.file = file
        self._fd = file.fileno()
        self.closed = False
        os.set_blocking(self._fd, False)

    def __repr__(self) -> str:
        return f"<_Pipe child fd {self.child_fd} of pid {self.process.pid} fd={self._fd}>"

    def fileno(self) -> int:
        """The parent-side fd (kept after close so the reactor can still find it)."""
        return self._fd

    def on_read(self) -> None:
        """Read what the child wrote and hand it to the protocol; EOF closes the pipe."""
        if self.child_fd == 0:
            # stdin is watched for reading only to hear that the child's end
            # closed (the write end then polls as an error, which counts as
            # readable): there is nothing to read.
            self.process._close_pipe(0)
            return
        try:
            data = os.read(self._fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.debug("read from child fd %d of pid %d failed: %s", self.child_fd, self.process.pid, exc)
            data = b""
        if data:
            self.process._call(self.process.protocol.child_data_received, self.child_fd, data)
        else:
            self.process._close_pipe(self.child_fd)

    def on_write(self) -> None:
        """Flush the stdin buffer."""
        self.process._flush_stdin()

    def on_close(self, reason: Failure) -> None:
        """The reactor dropped us after an error: close this pipe."""
        self.process._close_pipe(self.child_fd)


class _ExitWatcher:
    """The child's pidfd as a descriptor: readable once the child has exited."""

    __slots__ = ("process", "_fd")

    def __init__(self, process: ProcessTransport, pidfd: int) -> None:
        self.process = process
        self._fd = pidfd

    def __repr__(self) -> str:
        return f"<_ExitWatcher pid {self.process.pid} pidfd={self._fd}>"

    def fileno(self) -> int:
        """The pidfd."""
        return self._fd

    def on_read(self) -> None:
        """The child exited: reap it."""
        self.process._check_exit()

    def on_write(self) -> None:  # pragma: no cover - never registered as a writer
        """Never called."""

    def on_close(self, reason: Failure) -> None:  # pragma: no cover - on_read does not raise
        """The reactor dropped us after an error: watch the child by polling instead."""
        self.process._stop_watching()
        self.process._poll_exit()


class ProcessTransport:
    """A running child process: write to its stdin, close its pipes, signal it."""

    def __init__(self, reactor: Reactor, protocol: Any, popen: subprocess.Popen) -> None:
        self.reactor = reactor
        self.protocol = protocol
        self.popen = popen
        #: The child's process id.
        self.pid: int = popen.pid
        self._pipes: dict[int, _Pipe] = {
            0: _Pipe(self, 0, popen.stdin),
            1: _Pipe(self, 1, popen.stdout),
            2: _Pipe(self, 2, popen.stderr),
        }
        # Pipes whose child_connection_lost has run (not merely been scheduled).
        self._lost: set[int] = set()
        self._stdin_buffer = bytearray()
        self._stdin_closing = False
        self._stdin_high, self._stdin_low = write_buffer_limits(None, None)
        self._stdin_paused = False
        self._losing = False
        self._reason: Failure | None = None
        self._ended = False
        self._watcher: _ExitWatcher | None = None
        self._poller: Any = None

    def __repr__(self) -> str:
        return f"<ProcessTransport pid={self.pid} {'running' if self._reason is None else 'exited'}>"

    def _start(self) -> None:
        pidfd_open: Callable[[int], int] | None = getattr(os, "pidfd_open", None)
        pidfd = None
        if pidfd_open is not None:
            try:
                pidfd = pidfd_open(self.pid)
            except OSError as exc:
                log.debug("pidfd_open(%d) failed (%s); polling for the exit instead", self.pid, exc)
        # stdin too: its write end polls as an error once the child's end closes.
        for pipe in self._pipes.values():
            self.reactor.add_reader(pipe)
        if pidfd is not None:
            self._watcher = _ExitWatcher(self, pidfd)
            self.reactor.add_reader(self._watcher)
        else:
            self._poller = self.reactor.call_later(POLL_INTERVAL, self._poll_exit)
        # Last, so that a protocol closing pipes in connection_made finds them registered.
        self._call(self.protocol.connection_made, self)

    # -- public API -------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` to the child's stdin without blocking; what the pipe refuses is buffered."""
        if type(data) is not bytes:
            data = as_bytes(data)
        pipe = self._pipes[0]
        if pipe.closed or self._stdin_closing or not data:
            return  # After close_stdin(), writes go nowhere (as in Twisted).
        if self._stdin_buffer:
            self._stdin_buffer += data
            self._check_stdin_high()
            return
        try:
            sent = os.write(pipe.fileno(), data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            # The child closed its stdin or died: nobody will ever read this.
            log.debug("write to stdin of pid %d failed: %s", self.pid, exc)
            self._close_pipe(0)
            return
        if sent < len(data):
            self._stdin_buffer += memoryview(data)[sent:]
            self.reactor.add_writer(pipe)
            self._check_stdin_high()

    def writelines(self, lines: Iterable[bytes | bytearray | memoryview]) -> None:
        """Write each of ``lines`` to the child's stdin."""
        for line in lines:
            self.write(line)

    def get_write_buffer_size(self) -> int:
        """Bytes written to stdin that the child has not taken yet."""
        return len(self._stdin_buffer)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the stdin marks for pause_writing (above ``high``) and resume_writing (at or below ``low``)."""
        self._stdin_high, self._stdin_low = write_buffer_limits(high, low)
        self._check_stdin_high()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """The (low, high) stdin marks."""
        return self._stdin_low, self._stdin_high

    def close_stdin(self) -> None:
        """Close the child's stdin once what is buffered has been written."""
        self._stdin_closing = True
        if not self._stdin_buffer:
            self._close_pipe(0)

    def close_stdout(self) -> None:
        """Close the child's stdout now; the child gets EPIPE/SIGPIPE if it writes more."""
        self._close_pipe(1)

    def close_stderr(self) -> None:
        """Close the child's stderr now."""
        self._close_pipe(2)

    def lose_connection(self) -> None:
        """Close all three pipes (stdin after flushing); the child is not signalled."""
        self._losing = True
        self.close_stdin()
        self.close_stdout()
        self.close_stderr()

    def signal_process(self, sig: int | str) -> None:
        """Send ``sig`` (a number, or a name such as ``'TERM'``, ``'KILL'``, ``'INT'``) to the child."""
        number = _signal_number(sig)
        if self.popen.returncode is not None:
            raise ProcessLookupError(f"process {self.pid} has already exited")
        if self._watcher is not None:
            # Through the pidfd: it names this child, never a recycled pid.
            _signal.pidfd_send_signal(self._watcher.fileno(), number)
        else:
            os.kill(self.pid, number)

    def is_closing(self) -> bool:
        """True after lose_connection(), or once the child has exited."""
        return self._losing or self._reason is not None

    # -- internals --------------------------------------------------------

    def _call(self, func: Callable[..., Any], *args: Any) -> None:
        """Run a protocol callback; log what it raises and go on."""
        try:
            func(*args)
        except Exception:
            log.exception("Unhandled error in %s of %r (pid %d)", getattr(func, "__name__", func), self.protocol, self.pid)

    def _call_optional(self, name: str) -> None:
        """Run the protocol's ``name()`` if it has one (protocols are duck-typed)."""
        method = getattr(self.protocol, name, None)
        if method is not None:
            self._call(method)

    def _check_stdin_high(self) -> None:
        if not self._stdin_paused and len(self._stdin_buffer) > self._stdin_high:
            self._stdin_paused = True
            self._call_optional("pause_writing")

    def _flush_stdin(self) -> None:
        pipe = self._pipes[0]
        buf = self._stdin_buffer
        try:
            sent = os.write(pipe.fileno(), buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.debug("write to stdin of pid %d failed: %s", self.pid, exc)
            self._close_pipe(0)
            return
        del buf[:sent]
        if self._stdin_paused and len(buf) <= self._stdin_low:
            self._stdin_paused = False
            self._call_optional("resume_writing")
        if buf:
            return
        self.reactor.remove_writer(pipe)
        if self._stdin_closing:
            self._close_pipe(0)

    def _close_pipe(self, child_fd: int) -> None:
        """Unregister and close one pipe now; tell the protocol on the next pass."""
        pipe = self._pipes[child_fd]
        if pipe.closed:
            return
        pipe.closed = True
        # Unregistered before the fd is closed, so its number cannot be
        # reused while the multiplexer still watches it.
        self.reactor.remove_reader(pipe)
        self.reactor.remove_writer(pipe)
        if child_fd == 0:
            self._stdin_buffer.clear()
        try:
            pipe.file.close()
        except OSError as exc:  # pragma: no cover - close of a pipe fd does not fail
            log.debug("closing child fd %d of pid %d: %s", child_fd, self.pid, exc)
        self.reactor.call_soon(self._pipe_lost, child_fd)

    def _pipe_lost(self, child_fd: int) -> None:
        self._lost.add(child_fd)
        self._call(self.protocol.child_connection_lost, child_fd)
        self._maybe_ended()

    def _poll_exit(self) -> None:
        self._poller = None
        if self.popen.poll() is None:
            self._poller = self.reactor.call_later(POLL_INTERVAL, self._poll_exit)
            return
        self._exited()

    def _check_exit(self) -> None:
        if self.popen.poll() is None:  # pragma: no cover - a pidfd is readable only once the child exited
            return
        self._stop_watching()
        self._exited()

    def _stop_watching(self) -> None:
        watcher = self._watcher
        if watcher is not None:
            self._watcher = None
            self.reactor.remove_reader(watcher)
            os.close(watcher.fileno())

    def _exited(self) -> None:
        returncode = self.popen.returncode
        assert returncode is not None
        self._reason = _exit_reason(returncode)
        self._call(self.protocol.process_exited, self._reason)
        self._maybe_ended()

    def _maybe_ended(self) -> None:
        if self._ended or self._reason is None or len(self._lost) < 3:
            return
        self._ended = True
        self._call(self.protocol.process_ended, self._reason)


def spawn_process(reactor: Reactor, protocol: Any, argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None) -> ProcessTransport:
    """Start ``argv`` as a child process wired to ``protocol``; return its transport."""
    popen = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        close_fds=True,
        bufsize=0,
    )
    transport = ProcessTransport(reactor, protocol, popen)
    transport._start()
    return transport
