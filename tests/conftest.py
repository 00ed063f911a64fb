"""Session-wide test settings: an isolated Prefect home, no telemetry, patient start-ups.

Set before any test module imports Prefect, so every Prefect setting read later sees them.
"""

from __future__ import annotations

import os
import socket
import tempfile

import pytest

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
