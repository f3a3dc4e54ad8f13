"""The project's own tests run under the plugin's leak check and a hang watchdog."""

import faulthandler
import sys

import pytest

# No single test takes anywhere near this; a hung one would otherwise hold
# CI until its overall time limit, with nothing said about where it hung.
HANG_LIMIT = 180.0


@pytest.fixture(autouse=True)
def _leak_check(no_leaks):
    """Every test fails if it leaks fds or threads or logs an unexpected error."""
    yield


@pytest.fixture(autouse=True)
def _hang_watchdog():
    """Dump every thread's stack and exit if one test runs longer than HANG_LIMIT."""
    faulthandler.dump_traceback_later(HANG_LIMIT, exit=True, file=sys.__stderr__)
    yield
    faulthandler.cancel_dump_traceback_later()
