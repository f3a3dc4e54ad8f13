"""A Tk window fed by a socket: Tk's main loop drives the reactor with ``after``.

Run: ``python -m examples.embed_tk`` (needs a display and tkinter). With
``--exit-after N`` the window closes itself once it has shown N lines, which
is how the tests run it under Xvfb. ``--connect HOST:PORT`` shows the lines
of some other line-based server instead of the built-in ticker.

A GUI toolkit owns the main thread and its loop (``root.mainloop()``), so the
reactor cannot call ``run()``. Instead a Tk timer calls
``reactor.iterate(0)`` every ``--tick`` milliseconds: one non-blocking pass
of the reactor (poll with a zero timeout, then I/O, timers and ready calls),
after which Tk goes back to redrawing and handling clicks. Everything stays
in one thread, so protocol callbacks may touch widgets directly. The price
is latency: data waits up to one tick (10 ms by default) before it is
shown, and an idle window still wakes 100 times a second. A program that
cares can register the reactor's fds with Tk (``createfilehandler``) or run
the reactor in a thread of its own and hand results over with ``after``.

What is shown: by default the program also serves a ticker, a pyreactor
server that sends one line every 50 ms from a ``LoopingCall``; the window's
client connects to it over TCP like any other client would, and every line
received updates a Label (the latest line) and a Text (the history).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Sequence

from protocols import ClientFactory, Factory, Protocol
from protocols.basic import LineReceiver
from reactor import LoopingCall, Reactor


class Ticker(Protocol):
    """Server side: sends ``tick N at T`` every 50 ms while connected."""

    def connection_made(self, transport: Any) -> None:
        """Start ticking."""
        super().connection_made(transport)
        self.count = 0
        self.started = time.monotonic()
        self.loop = LoopingCall(self.factory.reactor, self.tick)
        self.loop.start(0.05)

    def tick(self) -> None:
        """Send one line."""
        self.count += 1
        self.transport.write(f"tick {self.count} at {time.monotonic() - self.started:.2f} s\n".encode())

    def connection_lost(self, reason: Any) -> None:
        """Stop ticking."""
        if self.loop.running:
            self.loop.stop()


class TickerFactory(Factory):
    """Builds Ticker protocols; they need the reactor for their LoopingCall."""

    protocol = Ticker

    def __init__(self, reactor: Reactor) -> None:
        self.reactor = reactor


class Display(LineReceiver):
    """Client side: shows every line it receives in the window."""

    delimiter = b"\n"

    def line_received(self, line: bytes) -> None:
        """Hand the line to the window."""
        self.factory.window.show(line.decode(errors="replace").rstrip("\r"))

    def connection_lost(self, reason: Any) -> None:
        """Say so in the window."""
        self.factory.window.show(f"(connection closed: {reason.value})")


class DisplayFactory(ClientFactory):
    """Connects Display protocols to one window."""

    protocol = Display

    def __init__(self, window: Window) -> None:
        self.window = window

    def client_connection_failed(self, connector: Any, reason: Any) -> None:
        """Show why."""
        self.window.show(f"(could not connect: {reason.value})")


class Window:
    """The Tk side: a Label, a Text, and the ``after`` timer that drives the reactor."""

    def __init__(self, reactor: Reactor, tick_ms: int, exit_after: int | None) -> None:
        import tkinter

        self.reactor = reactor
        self.tick_ms = tick_ms
        self.exit_after = exit_after
        self.shown = 0
        self.connector: Any = None
        self.listener: Any = None
        self.root = tkinter.Tk()
        self.root.title("pyreactor: live data from a socket")
        self.latest = tkinter.Label(self.root, text="(waiting for data)", font=("TkFixedFont", 14), width=40)
        self.latest.pack(padx=8, pady=8)
        self.history = tkinter.Text(self.root, height=10, width=50)
        self.history.pack(padx=8, pady=(0, 8))
        self.root.protocol("WM_DELETE_WINDOW", self.close)
        self._after: str | None = self.root.after(0, self.drive)

    def drive(self) -> None:
        """One reactor pass, then back to Tk until the next tick."""
        self.reactor.iterate(0)
        if self._after is not None:
            self._after = self.root.after(self.tick_ms, self.drive)

    def show(self, text: str) -> None:
        """Put ``text`` in the Label and append it to the Text (runs inside a reactor pass)."""
        if self._after is None:
            return  # closing: the widgets are about to go
        self.latest.configure(text=text)
        self.history.insert("end", text + "\n")
        self.history.see("end")
        self.shown += 1
        # Read the widget back: what is printed is what the window shows.
        print(f"shown: {self.latest.cget('text')}", flush=True)
        if self.exit_after is not None and self.shown >= self.exit_after:
            # Close from Tk's side, not in the middle of the reactor's pass.
            self.root.after_idle(self.close)

    def close(self) -> None:
        """Stop driving, close the connections and the reactor, destroy the window."""
        if self._after is None:
            return
        self.root.after_cancel(self._after)
        self._after = None
        if self.connector is not None:
            self.connector.disconnect()
        if self.listener is not None:
            self.listener.close()
        # Let the closes complete: connection_lost runs on a later pass.
        deadline = time.monotonic() + 1.0
        while (self.reactor.get_readers() or self.reactor.get_writers()) and time.monotonic() < deadline:
            self.reactor.iterate(0.01)
        for call in self.reactor.get_delayed_calls():
            call.cancel()
        self.reactor.close()
        self.root.destroy()


def main(argv: Sequence[str] | None = None) -> int:
    """Open the window and run Tk's main loop, which drives the reactor."""
    parser = argparse.ArgumentParser(description="pyreactor driven by Tk's main loop")
    parser.add_argument("--exit-after", type=int, default=None, metavar="N", help="close the window after showing N lines")
    parser.add_argument("--connect", metavar="HOST:PORT", help="show lines from this server instead of the built-in ticker")
    parser.add_argument("--tick", type=int, default=10, metavar="MS", help="milliseconds between reactor passes (default 10)")
    args = parser.parse_args(argv)

    reactor = Reactor()
    try:
        window = Window(reactor, args.tick, args.exit_after)
    except Exception as exc:  # tkinter.TclError without a display; ImportError without tkinter
        reactor.close()
        print(f"cannot open a window: {exc}", file=sys.stderr)
        return 2
    if args.connect:
        host, _, port = args.connect.rpartition(":")
    else:
        window.listener = reactor.listen_tcp(0, TickerFactory(reactor), interface="127.0.0.1")
        host, port = "127.0.0.1", str(window.listener.port)
        print(f"ticker on {host}:{port}", flush=True)
    window.connector = reactor.connect_tcp(host, int(port), DisplayFactory(window))
    window.root.mainloop()
    print(f"window closed after showing {window.shown} lines", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
