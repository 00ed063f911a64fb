"""Session-wide test settings and fixtures.

An isolated Prefect home, no telemetry and patient start-ups, set before any test module imports
Prefect so every Prefect setting read later sees them. Fixtures: ``prefect_api`` (one Prefect
test server for the whole session, started by the first test that needs it), ``fresh_clients``
(every test), ``cleanup`` (clean-up that never hides the test's own failure).
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections.abc import Iterator

import pytest

from deployments.processes import handle_sigint
from tests.support.cleanup import Cleanup

# started in the background by a script, the session inherits SIGINT ignored: no child it starts
# (Prefect's own test server included) may inherit that (see deployments/processes.py)
handle_sigint()

_HOME = tempfile.mkdtemp(prefix="grmux-test-prefect-")
for name, value in {
    "PREFECT_HOME": _HOME,
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "GX_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}.items():
    os.environ.setdefault(name, value)
for name in ("HTCC_PASSWORD", "RCS_PASSWORD", "WEBDAV_PASSWORD", "GRMUX_SECRET_BLOCKS", "PREFECT_API_URL"):
    os.environ.pop(name, None)


def service_reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (with the reason) when a machine service is absent — but fail under CI=true."""
    if service_reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: tests that need it must run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A throw-away Prefect server (SQLite) for the whole session; yields its API URL, which
    subprocesses need. Only tests that ask for it (tests/flows asks for every test) start it."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    """Close the clients a flow run in this process cached (tasks.context), so the next test builds
    its own for its own sandbox. A no-op for tests that never loaded tasks.context."""
    yield
    context = sys.modules.get("tasks.context")
    if context is not None:
        context.forget_services()


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    """Steps run after the test, newest first, all of them; a failing step is reported as a teardown
    error next to (never instead of) the test's own result."""
    with Cleanup() as stack:
        yield stack
