"""Every exception class the package raises.

Time-outs use the builtin ``TimeoutError`` and refused connects the builtin
``ConnectionRefusedError``; everything else specific to pyreactor is here.
"""

from __future__ import annotations

from typing import Any


class ReactorError(Exception):
    """Base class of pyreactor's own errors."""


class AlreadyCalledError(ReactorError):
    """A Deferred was fired a second time."""


class CancelledError(ReactorError):
    """A Deferred was cancelled before it had a result."""


class NoCurrentExceptionError(ReactorError):
    """``Failure()`` was built with no argument outside an ``except`` block."""


class ReactorNotRunning(ReactorError, RuntimeError):
    """stop() was called on a reactor that is not running."""


class ReactorAlreadyRunning(ReactorError, RuntimeError):
    """run() was called on a reactor that is already running."""


class ReactorClosed(ReactorError, RuntimeError):
    """The reactor was closed and can no longer be used."""


class ConnectionDone(ReactorError, ConnectionError):
    """The connection was closed cleanly, by either side."""


class ConnectionLost(ReactorError, ConnectionError):
    """The connection was lost uncleanly (reset or error; the OS error is ``__cause__``)."""


class ConnectionAborted(ReactorError, ConnectionError):
    """The connection was closed by ``abort_connection()``."""


class IncompleteReadError(ReactorError, EOFError):
    """EOF came before a stream read was satisfied."""

    def __init__(self, partial: bytes, expected: int | None) -> None:
        self.partial = partial
        self.expected = expected
        want = "undefined" if expected is None else str(expected)
        super().__init__(f"{len(partial)} bytes read on a total of {want} expected bytes")

    def __reduce__(self) -> Any:
        return type(self), (self.partial, self.expected)


class LimitOverrunError(ReactorError):
    """A stream line or frame went over the reader's limit before its separator."""

    def __init__(self, message: str, consumed: int) -> None:
        super().__init__(message)
        self.consumed = consumed

    def __reduce__(self) -> Any:
        return type(self), (self.args[0], self.consumed)


class FirstError(ReactorError):
    """A DeferredList with ``fire_on_one_errback`` saw one of its Deferreds fail."""

    def __init__(self, sub_failure: Any, index: int) -> None:
        super().__init__(sub_failure, index)
        self.sub_failure = sub_failure
        self.index = index

    def __str__(self) -> str:
        return f"FirstError[#{self.index}, {self.sub_failure!r}]"


class FailureGroup(ReactorError):
    """Every Deferred given to ``race`` failed; ``failures`` lists them in input order."""

    def __init__(self, failures: list[Any]) -> None:
        super().__init__(failures)
        self.failures = failures


class NotConnectingError(ReactorError, RuntimeError):
    """stop_connecting() was called on a connector that is not connecting."""


class DirtyReactorError(ReactorError, AssertionError):
    """A test left descriptors, timers or threads behind on its reactor."""


class ProcessDone(ReactorError):
    """The child exited with status 0."""

    exit_code: int | None = 0
    signal: int | None = None


class ProcessTerminated(ReactorError):
    """The child exited with a non-zero status (``exit_code``) or was killed by ``signal``."""

    def __init__(self, exit_code: int | None = None, signal: int | None = None) -> None:
        if signal is not None:
            message = f"process killed by signal {signal}"
        else:
            message = f"process exited with status {exit_code}"
        super().__init__(message)
        self.exit_code = exit_code
        self.signal = signal

    def __reduce__(self) -> Any:
        return type(self), (self.exit_code, self.signal)
