"""pyreactor: a callback-style reactor, Deferreds, and coroutines on top of them."""

from .core import Reactor, react
from .coroutines import ensure_deferred, inline_callbacks
from .defer import Deferred, DeferredList, Failure, fail, gather, maybe_deferred, race, succeed
from .errors import AlreadyCalledError, CancelledError
from .task import LoopingCall, sleep
from .timers import DelayedCall
from .address import Address

__all__ = [
    "Address",
    "AlreadyCalledError",
    "CancelledError",
    "DelayedCall",
    "Deferred",
    "DeferredList",
    "Failure",
    "LoopingCall",
    "Reactor",
    "ensure_deferred",
    "fail",
    "gather",
    "inline_callbacks",
    "maybe_deferred",
    "race",
    "react",
    "sleep",
    "succeed",
]
