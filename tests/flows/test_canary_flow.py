"""`grmux canary` against the Prefect test server and the sandbox: green (with an encrypted segment)
exits 0 and leaves the canary artifact. Red runs: tests/integration/test_canary.py (each step) and
tests/e2e/test_alerts.py (exit 1 and the alert)."""

from __future__ import annotations

import pytest

from grmux_cli.exit_codes import ExitCode
from grmux_cli.main import main
from grmux_sandbox.site import Sandbox

pytestmark = pytest.mark.slow


def canary_artifact() -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_latest_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["grmux-canary"])))
    assert len(found) == 1
    return str(found[0].data)


def test_grmux_canary_green(tmp_path, capsys, cleanup):
    sandbox = cleanup.enter_context(Sandbox.start(tmp_path / "site"))
    certificate = str(sandbox.keys.certificate_path)
    config = sandbox.write_config(tmp_path / "muxer.cfg")
    assert main(["canary", "--config", str(config), "--certificate", certificate]) == ExitCode.OK
    assert "grmux canary: Completed: canary green" in capsys.readouterr().out
    markdown = canary_artifact()
    assert "# Sync canary: GREEN" in markdown and "| flash | 7.2 | 7.2 |" in markdown

