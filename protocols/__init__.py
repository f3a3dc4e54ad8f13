"""What users subclass: protocols and factories, framers, coroutine streams."""

from .base import ClientFactory, DatagramProtocol, Factory, ProcessProtocol, Protocol, ReconnectingClientFactory

__all__ = [
    "ClientFactory",
    "DatagramProtocol",
    "Factory",
    "ProcessProtocol",
    "Protocol",
    "ReconnectingClientFactory",
]
