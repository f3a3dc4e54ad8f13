"""The address type transports report for their two ends."""

from __future__ import annotations

from typing import NamedTuple


class Address(NamedTuple):
    """A network endpoint: host and port (IPv6 hosts without brackets)."""

    host: str
    port: int
