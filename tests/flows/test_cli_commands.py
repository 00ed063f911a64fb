"""The `grmux` command line against the Prefect test server and the sandbox: `grmux run`'s exit codes,
the summary and counts artifacts of its run, and `grmux status` printing them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from grmux_cli.exit_codes import ExitCode
from grmux_cli.main import main
from grmux_cli.status_cmd import last_runs
from grmux_core.metrics import METRIC_FIELDS
from grmux_sandbox.site import Sandbox
from grmux_sandbox.timeutil import parse_iso
from tasks.report import COUNT_FIELDS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("cli-site")
    sandbox = Sandbox.start(state_dir)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    calls = sandbox.seed(2, seed=41, scenarios=["normal", "corrupt"], start=start, size=(320, 240),
                         duration=(10.0, 12.0), spacing=(60.0, 70.0))
    config = sandbox.write_config(state_dir / "muxer.cfg", worker_threads=2)
    yield sandbox, {c.scenario: c for c in calls}, config
    sandbox.stop()


def artifact_rows(flow_run_id: str, key: str) -> list[dict]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]), key=ArtifactFilterKey(any_=[key])))
    assert len(found) == 1, (key, found)
    return json.loads(found[0].data)


def status_row(capsys, monkeypatch, run: dict) -> list[str]:
    """The cells `grmux status` prints for one run (a wide terminal, so no cell wraps); runs of the
    same window share their name, so the start time tells them apart."""
    monkeypatch.setenv("COLUMNS", "400")
    capsys.readouterr()
    assert main(["status", "--limit", "50"]) == ExitCode.OK
    lines = [line for line in capsys.readouterr().out.splitlines()
             if f" {run['start'][:19]} " in line and f" {run['name']} " in line]
    assert len(lines) == 1, lines
    return [cell.strip() for cell in lines[0].strip().strip("│┃").split("│")]


def test_run_with_a_failed_call_exits_calls_failed_and_status_prints_its_counts(site, capsys, monkeypatch):
    sandbox, calls, config = site
    assert main(["run", "--config", str(config)]) == ExitCode.CALLS_FAILED
    assert "grmux primary: Failed: 1 of 2 calls failed" in capsys.readouterr().out
    run = last_runs(1)[0]
    counts = {k: v for k, v in run["counts"].items() if k in COUNT_FIELDS}
    assert counts == {"muxed": 1, "skipped": 0, "pending": 0, "failed": 1, "cancelled": 0, "listed": 2, "list_requests": 1}
    # the muxed call ended about two hours ago: its latency (call end to registration) says so
    ended = parse_iso(sandbox.call_recording(calls["normal"].call_id)["stopTime"])
    latency = run["counts"]["p50 latency s"]
    assert latency == run["counts"]["p95 latency s"]
    assert abs(latency - (datetime.now(UTC) - ended).total_seconds()) < 120
    assert run["counts"]["oldest pending h"] == "-"  # nothing pending
    assert artifact_rows(run["id"], "grmux-primary-latency") == [{"call": calls["normal"].call_id, "latency s": latency}]

    summary = artifact_rows(run["id"], "grmux-primary-summary")
    assert [(row["call"], row["status"]) for row in summary] == [(calls["corrupt"].call_id, "failed")]
    assert summary[0]["reason"]  # the reason is in the table, and no count pseudo-rows are
    assert artifact_rows(run["id"], "grmux-primary-counts") == [run["counts"]]

    cells = status_row(capsys, monkeypatch, run)
    assert cells[2:] == ["Failed", "1", "0", "0", "1", "0", "2", "1", str(latency), str(latency), "-"], cells
    assert [wb["id"] for wb in sandbox.write_backs()] == [calls["normal"].call_id]

    capsys.readouterr()
    assert main(["status", "--since", "7d"]) == ExitCode.OK
    today = [line for line in capsys.readouterr().out.splitlines() if datetime.now(UTC).date().isoformat() in line]
    assert len(today) == 1 and str(latency) in today[0], today


def test_run_against_a_stopped_sandbox_exits_unavailable_and_status_shows_no_counts(tmp_path, capsys,
                                                                                     monkeypatch):
    sandbox = Sandbox.start(tmp_path / "site")
    config = sandbox.write_config(tmp_path / "muxer.cfg")
    sandbox.stop()  # RWS, RCS and storage are all gone: the listing fails after its retries
    assert main(["run", "--config", str(config)]) == ExitCode.UNAVAILABLE
    out = capsys.readouterr().out
    assert "grmux primary: Failed:" in out and "TransientError" in out and "could not be reached" in out
    run = last_runs(1)[0]
    assert run["state"] == "Failed" and run["counts"] is None
    cells = status_row(capsys, monkeypatch, run)
    assert cells[2:] == ["Failed", *["-"] * (len(COUNT_FIELDS) + len(METRIC_FIELDS))], cells
