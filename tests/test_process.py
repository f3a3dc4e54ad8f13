"""Child processes: pipes, exit reasons, signals and clean-up, on every multiplexer."""

import logging
import os
import pickle
import signal
import sys

import pytest

from protocols import ProcessProtocol
from reactor import process as process_module
from reactor.errors import ReactorError
from reactor.errors import ProcessDone, ProcessTerminated
from support import run_until

PY = sys.executable


class Recorder(ProcessProtocol):
    """Records every callback, in order."""

    def __init__(self) -> None:
        self.events: list = []
        self.out = bytearray()
        self.err = bytearray()
        self.exited = None
        self.ended = None
        self.ended_count = 0
        self.exited_count = 0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.events.append("made")

    def out_received(self, data: bytes) -> None:
        self.out += data

    def err_received(self, data: bytes) -> None:
        self.err += data

    def child_connection_lost(self, fd: int) -> None:
        self.events.append(("lost", fd))

    def process_exited(self, reason) -> None:
        self.events.append("exited")
        self.exited_count += 1
        self.exited = reason

    def process_ended(self, reason) -> None:
        self.events.append("ended")
        self.ended_count += 1
        self.ended = reason


def spawn(reactor, code, protocol=None, **kw):
    protocol = protocol or Recorder()
    transport = reactor.spawn_process(protocol, [PY, "-c", code], **kw)
    return protocol, transport


def wait_ended(reactor, protocol, timeout=20.0):
    run_until(reactor, lambda: protocol.ended_count, timeout=timeout)
    # Let anything wrongly scheduled after process_ended show up.
    reactor.iterate(0)
    reactor.iterate(0)


def assert_reaped(pid):
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_stdout_and_stderr_reach_the_right_fd(reactor):
    p, t = spawn(reactor, "import sys; sys.stdout.write('out'); sys.stdout.flush(); sys.stderr.write('err')")
    wait_ended(reactor, p)
    assert bytes(p.out) == b"out"
    assert bytes(p.err) == b"err"
    assert p.ended.check(ProcessDone)
    assert_reaped(t.pid)


def test_stdin_echoed_back_including_a_payload_larger_than_the_pipe_buffer(reactor):
    p, t = spawn(reactor, "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())")
    payload = os.urandom(1 << 20)
    t.write(b"head:")
    t.write(bytearray(b"x"))  # into the buffer or written at once; either way in order
    t.write(payload)  # cannot all fit in a pipe: must not block
    t.writelines([memoryview(b"-a"), b"-b"])
    t.write(b"")
    t.close_stdin()
    t.write(b"ignored after close_stdin")
    wait_ended(reactor, p)
    assert bytes(p.out) == b"head:x" + payload + b"-a-b"
    assert p.events[0] == "made"
    assert sorted(e for e in p.events if isinstance(e, tuple)) == [("lost", 0), ("lost", 1), ("lost", 2)]
    assert p.events[-1] == "ended"
    assert p.exited_count == 1 and p.ended_count == 1
    assert_reaped(t.pid)


class SlowReaderFeeder(Recorder):
    """Writes to a child that reads nothing until SIGUSR1; records the flow-control calls."""

    def __init__(self) -> None:
        super().__init__()
        self.flow: list[tuple[str, int]] = []

    def pause_writing(self) -> None:
        self.flow.append(("pause", self.transport.get_write_buffer_size()))

    def resume_writing(self) -> None:
        self.flow.append(("resume", self.transport.get_write_buffer_size()))


# Blocks SIGUSR1, says so, waits for it, then reads all of stdin and prints its length.
WAIT_THEN_READ = (
    "import signal, sys\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})\n"
    "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
    "signal.sigwait({signal.SIGUSR1})\n"
    "sys.stdout.write(str(len(sys.stdin.buffer.read()))); sys.stdout.flush()\n"
)


def test_a_slow_child_pauses_and_resumes_the_writer_and_loses_nothing(reactor):
    p, t = spawn(reactor, WAIT_THEN_READ, protocol=SlowReaderFeeder())
    assert t.get_write_buffer_limits() == (16384, 65536)
    t.set_write_buffer_limits(high=100_000)
    assert t.get_write_buffer_limits() == (25_000, 100_000)
    run_until(reactor, lambda: p.out == b"ready\n")
    chunk = b"x" * 10_000
    written = 0
    while not p.flow:  # a producer that writes until told to stop
        t.write(chunk)
        written += len(chunk)
        assert written < 10_000_000, "pause_writing never came"
    # Paused once, just past the high mark (the pipe took its share first).
    assert p.flow == [("pause", t.get_write_buffer_size())]
    assert 100_000 < p.flow[0][1] <= 110_000
    t.write(chunk)  # still taken while paused: nothing is lost
    written += len(chunk)
    t.signal_process("USR1")
    run_until(reactor, lambda: len(p.flow) == 2)
    assert p.flow[1][0] == "resume" and p.flow[1][1] <= 25_000
    t.close_stdin()
    wait_ended(reactor, p)
    assert bytes(p.out) == b"ready\n" + str(written).encode()
    assert p.ended.check(ProcessDone)


def test_lowering_the_high_mark_below_the_buffer_pauses_at_once(reactor):
    p, t = spawn(reactor, WAIT_THEN_READ, protocol=SlowReaderFeeder())
    run_until(reactor, lambda: p.out == b"ready\n")
    t.write(b"y" * 300_000)  # more than a pipe holds, and over the default 64 KiB mark
    assert p.flow and p.flow[0][0] == "pause"
    t.set_write_buffer_limits(high=10**9)
    t.set_write_buffer_limits(high=1000)  # already paused: no second call
    assert [kind for kind, _ in p.flow] == ["pause"]
    with pytest.raises(ValueError, match="low <= high"):
        t.set_write_buffer_limits(high=10, low=20)
    t.signal_process("USR1")
    t.close_stdin()
    wait_ended(reactor, p)
    assert bytes(p.out) == b"ready\n300000"
    assert [kind for kind, _ in p.flow] == ["pause", "resume"]


def test_a_protocol_without_flow_control_methods_is_served(reactor):
    class Plain:
        """Duck-typed: only the callbacks a process transport must have."""

        def __init__(self):
            self.out = bytearray()
            self.ended = None

        def connection_made(self, transport):
            self.transport = transport

        def child_data_received(self, fd, data):
            self.out += data

        def child_connection_lost(self, fd):
            pass

        def process_exited(self, reason):
            pass

        def process_ended(self, reason):
            self.ended = reason

    p = Plain()
    t = reactor.spawn_process(p, [PY, "-c", WAIT_THEN_READ])
    run_until(reactor, lambda: p.out == b"ready\n")
    t.write(b"z" * 300_000)
    t.signal_process("USR1")
    t.close_stdin()
    run_until(reactor, lambda: p.ended is not None, timeout=20.0)
    assert bytes(p.out) == b"ready\n300000"


def test_write_rejects_str_and_non_buffers(reactor):
    p, t = spawn(reactor, "pass")
    with pytest.raises(TypeError, match="not str"):
        t.write("text")
    with pytest.raises(TypeError, match="int"):
        t.write(3)
    wait_ended(reactor, p)


def test_exit_zero_is_process_done(reactor):
    p, t = spawn(reactor, "raise SystemExit(0)")
    wait_ended(reactor, p)
    assert p.exited.check(ProcessDone) and p.ended.check(ProcessDone)
    assert p.ended.value.exit_code == 0 and p.ended.value.signal is None
    assert isinstance(p.ended.value, ReactorError)
    assert p.exited is p.ended
    assert t.is_closing()


def test_exit_three_is_process_terminated(reactor):
    p, t = spawn(reactor, "raise SystemExit(3)")
    wait_ended(reactor, p)
    err = p.ended.value
    assert isinstance(err, ProcessTerminated) and isinstance(err, ReactorError)
    assert err.exit_code == 3 and err.signal is None
    assert "status 3" in str(err)
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.exit_code, clone.signal) == (3, None)


@pytest.mark.parametrize("sig", ["TERM", "SIGTERM", signal.SIGTERM, 15])
def test_signal_process_term_on_a_sleeping_child(reactor, sig):
    p, t = spawn(reactor, "import sys, time; print('ready', flush=True); time.sleep(60)")
    run_until(reactor, lambda: p.out)  # past interpreter start-up
    assert not t.is_closing()
    t.signal_process(sig)
    wait_ended(reactor, p)
    err = p.ended.value
    assert isinstance(err, ProcessTerminated)
    assert err.signal == 15 and err.exit_code is None
    assert "signal 15" in str(err)
    with pytest.raises(ProcessLookupError):
        t.signal_process("KILL")
    assert_reaped(t.pid)


def test_signal_process_rejects_unknown_names(reactor):
    p, t = spawn(reactor, "pass")
    with pytest.raises(ValueError, match="unknown signal"):
        t.signal_process("NOPE")
    wait_ended(reactor, p)


def test_process_ended_waits_for_pipes_that_outlive_the_child(reactor):
    # The grandchild keeps stdout open after the child itself has exited.
    code = (
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(0.5); print(\"late\")'])\n"
    )
    p, t = spawn(reactor, code)
    run_until(reactor, lambda: p.exited_count)
    assert p.ended_count == 0
    assert ("lost", 1) not in p.events
    wait_ended(reactor, p)
    assert p.events.index("exited") < p.events.index(("lost", 1)) < p.events.index("ended")
    assert bytes(p.out).strip() == b"late"
    assert p.ended_count == 1 and p.exited_count == 1


def test_lose_connection_closes_every_pipe(reactor):
    # The child reads stdin to EOF, then exits once writing to its closed stdout fails.
    code = "import sys, time\nsys.stdin.read()\nwhile True:\n    print('x', flush=True)\n    time.sleep(0.01)\n"
    p, t = spawn(reactor, code)
    t.lose_connection()
    assert t.is_closing()
    t.lose_connection()  # idempotent
    t.close_stdout()
    t.write(b"goes nowhere")
    wait_ended(reactor, p)
    assert p.events.count(("lost", 0)) == p.events.count(("lost", 1)) == p.events.count(("lost", 2)) == 1
    assert p.ended.check(ProcessTerminated)  # SIGPIPE or exit status 120 from print's BrokenPipeError
    assert_reaped(t.pid)


def test_write_after_the_child_closed_stdin(reactor):
    p, t = spawn(reactor, "import os, sys, time; os.close(0); print('closed', flush=True); time.sleep(60)")
    run_until(reactor, lambda: p.out)
    t.write(b"x" * 10)  # EPIPE: the pipe is closed, not raised to the caller
    run_until(reactor, lambda: ("lost", 0) in p.events)
    t.write(b"more")
    t.signal_process("KILL")
    wait_ended(reactor, p)
    assert p.ended.value.signal == signal.SIGKILL


def test_child_closing_stdin_while_the_buffer_waits(reactor):
    code = "import os, sys, time; sys.stdin.buffer.read(10); os.close(0); print('closed', flush=True); time.sleep(60)"
    p, t = spawn(reactor, code)
    t.write(b"y" * (1 << 20))  # most of it stays buffered
    run_until(reactor, lambda: ("lost", 0) in p.events)
    t.signal_process("KILL")
    wait_ended(reactor, p)


def test_protocol_raising_in_child_data_received_is_logged_and_the_loop_goes_on(reactor, caplog):
    class Broken(Recorder):
        def child_data_received(self, fd, data):
            super().child_data_received(fd, data)
            raise ValueError("broken protocol")

    p, t = spawn(reactor, "print('one', flush=True)", protocol=Broken())
    with caplog.at_level(logging.ERROR, logger="reactor"):
        wait_ended(reactor, p)
    assert any("broken protocol" in (r.exc_text or "") for r in caplog.records)
    assert bytes(p.out) == b"one\n"
    assert p.ended.check(ProcessDone)
    # The loop still works.
    calls = []
    reactor.call_soon(calls.append, 1)
    run_until(reactor, lambda: calls)


def test_every_raising_callback_is_logged_and_each_runs_once(reactor, caplog):
    class Broken(ProcessProtocol):
        def __init__(self):
            self.seen = []

        def connection_made(self, transport):
            self.seen.append("made")
            raise RuntimeError("in made")

        def child_connection_lost(self, fd):
            self.seen.append(fd)
            raise RuntimeError("in lost")

        def process_exited(self, reason):
            self.seen.append("exited")
            raise RuntimeError("in exited")

        def process_ended(self, reason):
            self.seen.append("ended")
            raise RuntimeError("in ended")

    p = Broken()
    with caplog.at_level(logging.ERROR, logger="reactor"):
        reactor.spawn_process(p, [PY, "-c", "pass"])
        run_until(reactor, lambda: "ended" in p.seen)
        reactor.iterate(0)
    assert p.seen.count("ended") == 1 and p.seen.count("exited") == 1
    assert sorted(x for x in p.seen if isinstance(x, int)) == [0, 1, 2]
    texts = " ".join(r.exc_text or "" for r in caplog.records)
    for word in ("in made", "in lost", "in exited", "in ended"):
        assert word in texts


def test_env_and_cwd(reactor, tmp_path):
    env = dict(os.environ, PYREACTOR_TEST="hello")
    code = "import os; print(os.environ['PYREACTOR_TEST'], os.getcwd())"
    p, t = spawn(reactor, code, env=env, cwd=str(tmp_path))
    wait_ended(reactor, p)
    word, cwd = bytes(p.out).decode().split()
    assert word == "hello"
    assert os.path.samefile(cwd, tmp_path)


def test_missing_program_raises_and_leaks_nothing(reactor):
    with pytest.raises(FileNotFoundError):
        reactor.spawn_process(Recorder(), ["/nonexistent/pyreactor-no-such-program"])


def test_polling_fallback_without_pidfd(reactor, monkeypatch):
    monkeypatch.delattr(os, "pidfd_open")
    p, t = spawn(reactor, "import time; print('ready', flush=True); time.sleep(60)")
    run_until(reactor, lambda: p.out)
    assert reactor.get_delayed_calls()  # the poll timer
    t.signal_process("INT")  # through os.kill: there is no pidfd
    wait_ended(reactor, p)
    assert p.ended.check(ProcessTerminated)
    # Python turns SIGINT into KeyboardInterrupt: killed by SIGINT or status 1 if it got that far.
    assert p.ended.value.signal == signal.SIGINT or p.ended.value.exit_code == 1
    assert not reactor.get_delayed_calls()
    assert_reaped(t.pid)


def test_polling_fallback_when_pidfd_open_is_refused(reactor, monkeypatch):
    def refuse(pid):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", refuse)
    p, t = spawn(reactor, "raise SystemExit(5)")
    wait_ended(reactor, p)
    assert p.ended.value.exit_code == 5


def test_repr_names_the_pid(reactor):
    p, t = spawn(reactor, "pass")
    assert str(t.pid) in repr(t) and "running" in repr(t)
    assert all(str(t.pid) in repr(pipe) for pipe in t._pipes.values())
    assert t._watcher is None or str(t.pid) in repr(t._watcher)
    wait_ended(reactor, p)
    assert "exited" in repr(t)


def test_reason_helpers():
    assert process_module._exit_reason(0).check(ProcessDone)
    assert process_module._exit_reason(-9).value.signal == 9
    assert process_module._exit_reason(2).value.exit_code == 2
    assert process_module._signal_number("kill") == signal.SIGKILL
    assert process_module._signal_number(2) == 2


def wait_exit_unreaped(pid):
    """Block until the child has exited, leaving it for the transport to reap."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def test_write_to_a_child_that_already_exited_closes_stdin(reactor):
    p, t = spawn(reactor, "pass")
    wait_exit_unreaped(t.pid)
    t.write(b"x")  # EPIPE at once: not raised, the pipe is closed
    assert t._pipes[0].closed
    wait_ended(reactor, p)
    assert p.events.count(("lost", 0)) == 1


def test_flush_to_a_child_that_exited_closes_stdin(reactor):
    p, t = spawn(reactor, "import sys; sys.stdin.buffer.read(10)")
    t.write(b"z" * (1 << 20))
    assert reactor.get_writers()  # the rest is buffered
    wait_exit_unreaped(t.pid)
    t._pipes[0].on_write()  # as the reactor would: EPIPE closes the pipe
    assert t._pipes[0].closed and not reactor.get_writers()
    wait_ended(reactor, p)
    assert p.events.count(("lost", 0)) == 1


def test_spurious_readiness_is_ignored(reactor):
    p, t = spawn(reactor, "import time; print('ready', flush=True); time.sleep(60)")
    run_until(reactor, lambda: p.out)
    t._pipes[2].on_read()  # nothing to read: EAGAIN, no EOF
    assert not t._pipes[2].closed
    t.signal_process("KILL")
    wait_ended(reactor, p)
