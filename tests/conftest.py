"""The project's own tests run under the plugin's leak check."""

import pytest


@pytest.fixture(autouse=True)
def _leak_check(no_leaks):
    """Every test fails if it leaks fds or threads or logs an unexpected error."""
    yield
