"""Runnable programs built on pyreactor, each one run by the tests.

- ``examples.chat``: the chat relay written four ways (threads, callbacks,
  generator coroutines, async/await); ``python -m examples.chat --demo``.
- ``examples.echo``: an echo server, the smallest pyreactor server.
- ``examples.stopwatch``: a stopwatch on LoopingCall, driven from stdin.
"""
