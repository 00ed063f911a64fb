"""Flow tests run the real `grmux` flow against a Prefect test server and the sandbox."""

from __future__ import annotations

import pytest
from prefect.testing.utilities import prefect_test_harness

from tasks.context import forget_services


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=180):
        yield
    forget_services()


@pytest.fixture(autouse=True)
def fresh_clients():
    yield
    forget_services()
