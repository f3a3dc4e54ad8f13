"""``python -m examples.chat --demo``: two scripted clients talk through each chat server in turn.

Each server runs as its own process (``python -m examples.chat.<style>
--port 0``), the clients are plain blocking sockets, and the conversation is
printed as it happens. The exit status is 0 when every server behaved as the
wire protocol says, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .common import STYLES, LineClient, ServerProcess

DESCRIPTIONS = {
    "threads": "blocking sockets, a thread per connection",
    "callbacks": "a LineReceiver protocol, called by the reactor",
    "generators": "inline_callbacks generators over streams (yield d)",
    "coroutines": "async def coroutines over streams (await d)",
}


class Demo:
    """Runs the scripted conversation against one server, printing each step."""

    def __init__(self, style: str, port: int) -> None:
        self.style = style
        self.port = port
        self.clients: dict[str, LineClient] = {}
        self.ok = True

    def connect(self, name: str) -> None:
        """Open a connection for ``name``."""
        self.clients[name] = LineClient(self.port, timeout=5.0)
        print(f"  {name:<6} connects")

    def say(self, name: str, line: str) -> None:
        """``name`` sends ``line``."""
        self.clients[name].send(line)
        print(f"  {name:<6} > {line}")

    def hear(self, name: str, expected: str | None) -> None:
        """``name`` reads a line (None: the server closes); a mismatch is printed and fails the demo."""
        got = self.clients[name].recv_line()
        shown = "(the server closes the connection)" if got is None else got
        if got == expected:
            print(f"  {name:<6} < {shown}")
        else:
            self.ok = False
            print(f"  {name:<6} < {shown}    !! expected {expected!r}")

    def run(self) -> None:
        """The conversation: waiting, pairing, a few lines each way, BYE!."""
        try:
            self.connect("alice")
            self.say("alice", "hello? anyone there?")
            self.hear("alice", "* no partner yet, line dropped")
            self.connect("bob")
            self.hear("alice", "* paired")
            self.hear("bob", "* paired")
            self.say("alice", "hi, I'm alice")
            self.hear("bob", "hi, I'm alice")
            self.say("bob", "hello alice, bob here")
            self.hear("alice", "hello alice, bob here")
            self.say("alice", "which server is this?")
            self.hear("bob", "which server is this?")
            self.say("bob", f"the {self.style} one")
            self.hear("alice", f"the {self.style} one")
            self.say("bob", "BYE!")
            self.hear("alice", "BYE!")
            self.hear("alice", None)
            self.hear("bob", None)
        except OSError as exc:  # TimeoutError included: a server that stopped answering
            self.ok = False
            print(f"  !! {type(exc).__name__}: {exc}")
        finally:
            for client in self.clients.values():
                client.close()


def run_demo(styles: Sequence[str]) -> bool:
    """Run the conversation through each style's server; True if all behaved."""
    all_ok = True
    for style in styles:
        print(f"== {style}: {DESCRIPTIONS[style]} (examples/chat/{style}.py)")
        try:
            server = ServerProcess(style)
        except (OSError, RuntimeError) as exc:
            print(f"  !! the server did not start: {exc}\n")
            all_ok = False
            continue
        with server:
            print(f"  server listening on {server.host}:{server.port}")
            demo = Demo(style, server.port)
            demo.run()
        all_ok = all_ok and demo.ok
        print(f"  -> {'ok' if demo.ok else 'FAILED'}\n")
    return all_ok


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the demo."""
    parser = argparse.ArgumentParser(prog="python -m examples.chat", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--demo", action="store_true", help="run the scripted conversation through each server")
    parser.add_argument("--styles", default=",".join(STYLES), help=f"comma-separated subset of {','.join(STYLES)}")
    args = parser.parse_args(argv)
    styles = [s for s in args.styles.split(",") if s]
    unknown = [s for s in styles if s not in STYLES]
    if unknown:
        parser.error(f"unknown style(s): {', '.join(unknown)}")
    if not args.demo:
        parser.print_help()
        print("\nServers: " + ", ".join(f"python -m examples.chat.{s} --port N" for s in STYLES))
        return 0
    return 0 if run_demo(styles) else 1


if __name__ == "__main__":
    sys.exit(main())
