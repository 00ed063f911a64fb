"""Reliability tests run the real `grmux` flow against a Prefect test server and the sandbox."""

from __future__ import annotations

import pytest

from tasks.context import forget_services


@pytest.fixture(scope="session")
def prefect_api():
    """A throw-away Prefect server for the session; yields its API URL (subprocesses use it too)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()
    forget_services()


@pytest.fixture(autouse=True)
def fresh_clients():
    yield
    forget_services()
