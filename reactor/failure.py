"""Failure: an exception and its traceback, carried down a Deferred's errback chain.

A Failure is built on every error that crosses a callback chain, so it is
kept cheap: it stores the exception and the traceback object and nothing
else. Formatting happens only when somebody asks (``get_traceback``) or when
an unhandled one is logged. Frames are not copied or cleaned; a Failure keeps
its frames alive for as long as it lives, which is what lets the traceback of
an error thrown into a generator or coroutine show the frames of both the
coroutine and the code that raised it.

``Failure`` is final: the Deferred runner tells results from errors with
``type(result) is Failure``, which a subclass would silently defeat.
``reactor.defer`` re-exports it; that is where users import it from.
"""

from __future__ import annotations

import sys
import traceback
from types import TracebackType
from typing import Any, NoReturn

from .errors import NoCurrentExceptionError

# Spelled out here because inside the class ``type`` is Failure.type.
_ExcType = type[BaseException]


class Failure:
    """An exception together with the traceback where it was raised."""

    __slots__ = ("value", "tb")

    def __init__(self, exc: BaseException | None = None) -> None:
        if exc is None:
            exc = sys.exc_info()[1]
            if exc is None:
                raise NoCurrentExceptionError("Failure() needs an exception being handled, or an exception")
        elif not isinstance(exc, BaseException):
            raise TypeError(f"Failure wraps an exception, not {type(exc).__name__}")
        self.value: BaseException = exc
        self.tb: TracebackType | None = exc.__traceback__

    def __init_subclass__(cls, **kwargs: Any) -> NoReturn:
        raise TypeError("Failure is final: the Deferred runner relies on type(x) is Failure")

    @property
    def type(self) -> _ExcType:
        """The exception's class."""
        return type(self.value)

    def check(self, *types: _ExcType) -> _ExcType | None:
        """Return the first of ``types`` the exception is an instance of, or None."""
        value = self.value
        for candidate in types:
            if isinstance(value, candidate):
                return candidate
        return None

    def trap(self, *types: _ExcType) -> _ExcType:
        """Return the matching type like ``check``; if none matches, re-raise the original exception."""
        matched = self.check(*types)
        if matched is None:
            raise self.value.with_traceback(self.tb)
        return matched

    def raise_exception(self) -> NoReturn:
        """Raise the exception, with its original traceback."""
        raise self.value.with_traceback(self.tb)

    def get_traceback(self) -> str:
        """The formatted traceback and exception, as ``traceback.format_exception`` gives it."""
        return "".join(traceback.format_exception(type(self.value), self.value, self.tb))

    def get_error_message(self) -> str:
        """The exception's message (``str`` of it)."""
        return str(self.value)

    def print_traceback(self, file: Any = None) -> None:
        """Write ``get_traceback()`` to ``file`` (default: stderr)."""
        (sys.stderr if file is None else file).write(self.get_traceback())

    def __repr__(self) -> str:
        return f"<Failure {type(self.value).__qualname__}: {self.value}>"

    __str__ = __repr__
