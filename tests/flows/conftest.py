"""Flow tests run the real `grmux` flow against the session's Prefect test server and the sandbox."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _every_flow_test_needs_the_prefect_server(prefect_api: str) -> str:
    return prefect_api
