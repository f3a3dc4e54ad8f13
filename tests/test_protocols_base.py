"""Protocol, Factory, ClientFactory, ReconnectingClientFactory (on a fake clock), datagram and process protocols."""

from __future__ import annotations

import logging
import math
import random
from typing import Any

import pytest

from protocols import (
    ClientFactory,
    DatagramProtocol,
    Factory,
    ProcessProtocol,
    Protocol,
    ReconnectingClientFactory,
)
from reactor.address import Address
from reactor.defer import Failure
from reactor.errors import ConnectionDone, NotConnectingError
from reactor.testing import Clock, StringTransport

E = 2.7182818284590451


class FakeConnector:
    """A connector that counts what is asked of it; ``reactor`` is a Clock."""

    def __init__(self, reactor: Any = None, connecting: bool = False) -> None:
        self.reactor = reactor
        self.connecting = connecting
        self.connects = 0
        self.stops = 0

    def connect(self) -> None:
        self.connects += 1
        self.connecting = True

    def stop_connecting(self) -> None:
        if not self.connecting:
            raise NotConnectingError("not connecting")
        self.stops += 1
        self.connecting = False

    def get_destination(self) -> Address:
        return Address("example.org", 7)


# -- Protocol --------------------------------------------------------------


def test_protocol_defaults() -> None:
    p = Protocol()
    assert p.transport is None and p.factory is None and not p.connected
    assert "transport" not in vars(p)  # nothing allocated per instance until connected
    t = StringTransport()
    p.connection_made(t)
    assert p.transport is t and p.connected
    p.data_received(b"ignored")
    assert p.eof_received() is None
    p.pause_writing()
    p.resume_writing()
    p.connection_lost(None)
    assert not p.connected
    assert t.value() == b""


# -- Factory ---------------------------------------------------------------


class Greeter(Protocol):
    def __init__(self, greeting: bytes = b"hi", *, twice: bool = False) -> None:
        self.greeting = greeting * (2 if twice else 1)


def test_build_protocol_sets_factory() -> None:
    class GreeterFactory(Factory):
        protocol = Greeter

    f = GreeterFactory()
    p = f.build_protocol(Address("127.0.0.1", 1))
    assert isinstance(p, Greeter) and p.factory is f and p.greeting == b"hi"
    assert f.build_protocol(None) is not p


def test_for_protocol_passes_arguments() -> None:
    f = Factory.for_protocol(Greeter, b"yo", twice=True)
    assert type(f) is Factory and f.protocol is Greeter
    p = f.build_protocol(None)
    assert p.greeting == b"yoyo" and p.factory is f
    p = Factory.for_protocol(Greeter, b"plain").build_protocol(None)
    assert p.greeting == b"plain"
    f = ClientFactory.for_protocol(Greeter)
    assert isinstance(f, ClientFactory) and f.build_protocol(None).greeting == b"hi"


def test_factory_without_protocol() -> None:
    with pytest.raises(TypeError, match="Factory.protocol is not set"):
        Factory().build_protocol(None)


def test_start_and_stop_follow_first_and_last_listener() -> None:
    class Counting(Factory):
        def __init__(self) -> None:
            self.calls: list[str] = []

        def start_factory(self) -> None:
            self.calls.append("start")

        def stop_factory(self) -> None:
            self.calls.append("stop")

    f = Counting()
    f.do_start()
    f.do_start()
    assert f.calls == ["start"] and f.num_ports == 2
    f.do_stop()
    assert f.calls == ["start"]
    f.do_stop()
    assert f.calls == ["start", "stop"] and f.num_ports == 0
    f.do_stop()  # one stop too many does nothing
    assert f.calls == ["start", "stop"] and f.num_ports == 0
    f.do_start()
    assert f.calls == ["start", "stop", "start"]
    plain = Factory()
    plain.do_start()
    plain.do_stop()


def test_client_factory_hooks_do_nothing_by_default() -> None:
    f = ClientFactory()
    c = FakeConnector()
    f.started_connecting(c)
    f.client_connection_failed(c, None)
    f.client_connection_lost(c, None)
    assert c.connects == 0


# -- ReconnectingClientFactory ---------------------------------------------


def make_rcf(**attrs: Any) -> tuple[ReconnectingClientFactory, FakeConnector, Clock]:
    clock = Clock()
    f = ReconnectingClientFactory()
    f.protocol = Protocol
    for name, value in attrs.items():
        setattr(f, name, value)
    return f, FakeConnector(reactor=clock), clock


def pending_delay(clock: Clock) -> float:
    [call] = clock.get_delayed_calls()
    return call.time - clock.seconds()


def fail_once(f: ReconnectingClientFactory, connector: FakeConnector, clock: Clock) -> float:
    """Report a failed attempt, run the retry it schedules, and return the delay it used."""
    before = connector.connects
    f.client_connection_failed(connector, None)
    delay = pending_delay(clock)
    clock.advance(delay)
    assert connector.connects == before + 1
    return delay


def test_delays_grow_exponentially_up_to_max_delay() -> None:
    f, connector, clock = make_rcf(jitter=0, max_delay=100.0)
    assert f.delay == 1.0
    delays = [fail_once(f, connector, clock) for _ in range(7)]
    assert delays == pytest.approx([E, E**2, E**3, E**4, 100.0, 100.0, 100.0])
    assert f.retries == 7 and f.delay == 100.0
    assert clock.get_delayed_calls() == []


def test_jittered_delays_spread_but_stay_under_the_cap() -> None:
    f, connector, clock = make_rcf(max_delay=60.0, rng=random.Random(1234))
    delays = [fail_once(f, connector, clock) for _ in range(40)]
    early = delays[:3]
    for n, d in enumerate(early, start=1):
        # Within six standard deviations of the jitter around the un-jittered ramp.
        assert abs(math.log(d) - n) < 6 * 0.12 * n
    capped = delays[10:]
    assert all(0 < d <= 60.0 for d in delays)
    assert len(set(capped)) == len(capped), "jitter must keep clients apart at the cap too"
    assert min(capped) > 60.0 * (1 - 6 * 0.12)


def test_jitter_uses_the_shared_generator_by_default() -> None:
    f, connector, clock = make_rcf()
    d = fail_once(f, connector, clock)
    assert 0 < d < 2 * E


def test_max_retries_gives_up_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    f, connector, clock = make_rcf(jitter=0, max_retries=3)
    for _ in range(3):
        fail_once(f, connector, clock)
    with caplog.at_level(logging.INFO, logger="reactor"):
        f.client_connection_failed(connector, None)
    assert clock.get_delayed_calls() == []
    assert connector.connects == 3
    assert "abandoning" in caplog.text and "example.org" in caplog.text and "3 retries" in caplog.text


def test_successful_connection_resets_the_delay() -> None:
    f, connector, clock = make_rcf(jitter=0)
    fail_once(f, connector, clock)
    fail_once(f, connector, clock)
    assert f.retries == 2 and f.delay == pytest.approx(E**2)
    p = f.build_protocol(Address("example.org", 7))
    assert isinstance(p, Protocol) and p.factory is f
    assert f.retries == 0 and f.delay == 1.0
    f.client_connection_lost(connector, None)
    assert pending_delay(clock) == pytest.approx(E)


def test_reset_delay_by_hand_and_max_retries_counts_afresh() -> None:
    f, connector, clock = make_rcf(jitter=0, max_retries=1)
    fail_once(f, connector, clock)
    f.reset_delay()
    assert fail_once(f, connector, clock) == pytest.approx(E)


def test_stop_trying_cancels_the_pending_retry() -> None:
    f, connector, clock = make_rcf(jitter=0)
    f.client_connection_lost(connector, None)
    assert len(clock.get_delayed_calls()) == 1
    f.stop_trying()
    assert clock.get_delayed_calls() == [] and not f.continue_trying
    clock.advance(1000)
    assert connector.connects == 0
    assert connector.stops == 0  # it was not connecting: NotConnectingError swallowed
    f.client_connection_failed(connector, None)
    f.client_connection_lost(connector, None)
    f.retry(connector)
    assert clock.get_delayed_calls() == []


def test_stop_trying_stops_an_attempt_in_flight() -> None:
    f, connector, clock = make_rcf(jitter=0)
    fail_once(f, connector, clock)
    assert connector.connecting
    f.stop_trying()
    assert connector.stops == 1 and not connector.connecting


def test_stop_trying_before_any_connection() -> None:
    f = ReconnectingClientFactory()
    f.stop_trying()
    assert not f.continue_trying


def test_restart_after_stop_trying() -> None:
    f, connector, clock = make_rcf(jitter=0)
    f.stop_trying()
    f.continue_trying = True
    fail_once(f, connector, clock)


def test_success_after_stop_trying_does_not_resume_retries() -> None:
    f, connector, clock = make_rcf(jitter=0)
    fail_once(f, connector, clock)
    f.stop_trying()
    f.build_protocol(None)  # the attempt won the race with stop_trying
    f.client_connection_lost(connector, None)
    assert clock.get_delayed_calls() == []


def test_explicit_clock_wins_over_the_connector_reactor() -> None:
    f, connector, clock = make_rcf(jitter=0)
    mine = Clock()
    f.clock = mine
    f.client_connection_failed(connector, None)
    assert clock.get_delayed_calls() == [] and len(mine.get_delayed_calls()) == 1


def test_one_attempt_reported_twice_schedules_one_retry() -> None:
    f, connector, clock = make_rcf(jitter=0)
    f.client_connection_failed(connector, None)
    f.client_connection_lost(connector, None)
    assert len(clock.get_delayed_calls()) == 1
    assert f.retries == 1 and f.delay == pytest.approx(E)
    clock.advance(100)
    assert connector.connects == 1


def test_retry_by_hand_with_a_connector() -> None:
    f, connector, clock = make_rcf(jitter=0)
    f.retry(connector)
    assert pending_delay(clock) == pytest.approx(E) and f.connector is None
    clock.advance(E)
    assert connector.connects == 1


def test_retry_needs_a_connector() -> None:
    with pytest.raises(ValueError, match="no connector"):
        ReconnectingClientFactory().retry()


def test_abandon_log_without_get_destination(caplog: pytest.LogCaptureFixture) -> None:
    class Bare:
        reactor = Clock()

        def connect(self) -> None:
            pass

    f = ReconnectingClientFactory()
    f.max_retries = 0
    with caplog.at_level(logging.INFO, logger="reactor"):
        f.client_connection_failed(Bare(), None)
    assert "abandoning" in caplog.text and "Bare" in caplog.text


def test_reconnects_with_a_fresh_protocol_over_memory() -> None:
    """The end-to-end shape: lose the connection, the factory's retry reconnects."""
    f, connector, clock = make_rcf(jitter=0)
    built: list[Any] = []

    def connect() -> None:
        connector.connects += 1
        p = f.build_protocol(connector.get_destination())
        built.append(p)
        p.connection_made(StringTransport())

    connector.connect = connect  # type: ignore[method-assign]
    connect()
    f.client_connection_lost(connector, Failure(ConnectionDone()))
    clock.advance(f.delay)
    assert len(built) == 2 and built[1].connected and f.retries == 0


# -- DatagramProtocol and ProcessProtocol -----------------------------------


def test_datagram_protocol() -> None:
    p = DatagramProtocol()
    t = object()
    p.connection_made(t)
    assert p.transport is t
    p.datagram_received(b"x", Address("127.0.0.1", 9))
    p.error_received(ConnectionRefusedError())
    p.connection_lost(None)


def test_process_protocol_dispatches_output() -> None:
    class Child(ProcessProtocol):
        def __init__(self) -> None:
            self.out = b""
            self.err = b""

        def out_received(self, data: bytes) -> None:
            self.out += data

        def err_received(self, data: bytes) -> None:
            self.err += data

    p = Child()
    t = object()
    p.connection_made(t)
    assert p.transport is t
    p.child_data_received(1, b"stdout")
    p.child_data_received(2, b"stderr")
    p.child_data_received(3, b"elsewhere")
    assert (p.out, p.err) == (b"stdout", b"stderr")
    p.child_connection_lost(1)
    p.process_exited(None)
    p.process_ended(None)
    base = ProcessProtocol()
    base.child_data_received(1, b"dropped")
    base.child_data_received(2, b"dropped")
