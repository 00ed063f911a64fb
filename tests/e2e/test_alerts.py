"""Alerts end to end: a real `prefect server`, `deployments.setup --notify-block` run twice (still one
automation per alert), and a local webhook receiver that gets exactly one notification for each of:
a deployment run that fails, two cycles whose oldest pending call is too old (the event the flow
emits, at most once an hour), a red canary (the event the canary emits).

The failing run is a run of a deployment of flow ``grmux`` whose state the test sets to Failed
through the API (what a worker reports for a failed run), so no worker is needed; the other two
are real `grmux run` / `grmux canary` processes against the sandbox. The proactive "primary not
completing" alert needs 3 × min_poll_interval of silence and is only checked to exist.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from deployments.demo import start_alert_receiver
from deployments.local_server import prefect_server
from deployments.processes import run_process
from grmux_sandbox.site import Sandbox
from tests.support import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
ALERTS = ("grmux: canary red", "grmux: pending too old", "grmux: primary not completing", "grmux: run failed")


@pytest.fixture
def receiver(cleanup):
    return start_alert_receiver(cleanup)


def wait_for(received: list[dict], word: str, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in received if word in r.get("subject", "")]
        if found:
            time.sleep(3)  # a duplicate would arrive within the same evaluation
            return [r for r in received if word in r.get("subject", "")]
        time.sleep(1)
    raise AssertionError(f"no notification with {word!r} within {timeout} s; got {received}")


def in_server(env: dict[str, str], code: str) -> str:
    done = run_process([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


BLOCK = """
from prefect.blocks.notifications import CustomWebhookNotificationBlock
CustomWebhookNotificationBlock(name="grmux-alerts", url={url!r}, method="POST",
    json_data={{"subject": "{{{{subject}}}}", "body": "{{{{body}}}}"}}).save("grmux-alerts", overwrite=True)
"""
AUTOMATIONS_THEN_A_FAILED_RUN = """
import json
from prefect.client.orchestration import get_client
from prefect.states import Failed
with get_client(sync_client=True) as client:
    print(json.dumps(sorted(a.name for a in client.read_automations() if a.name.startswith("grmux: "))))
    flow_id = client.create_flow_from_name("grmux")
    deployment_id = client.create_deployment(flow_id=flow_id, name="backfill", entrypoint="flows/grmux.py:grmux")
    run = client.create_flow_run_from_deployment(deployment_id)
    client.set_flow_run_state(run.id, Failed(message="3 of 5 calls failed"), force=True)
"""


def test_setup_twice_then_one_notification_per_alert(tmp_path, receiver, cleanup):
    url, received = receiver
    env = cleanup.enter_context(prefect_server(tmp_path / "prefect-home", log_path=tmp_path / "server.log"))
    sandbox = cleanup.enter_context(Sandbox.start(tmp_path / "site"))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    sandbox.seed(1, seed=3, scenarios=["late_screen"], start=start, size=(320, 240), duration=(10.0, 12.0))
    config = sandbox.write_config(tmp_path / "muxer.cfg", pending_alert_hours=1)
    in_server(env, BLOCK.format(url=url))
    for _ in range(2):
        setup = run_process([sys.executable, "-m", "deployments.setup", "--config", str(config),
                             "--notify-block", "custom-webhook/grmux-alerts"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert setup.returncode == 0, setup.stdout + setup.stderr
    assert json.loads(in_server(env, AUTOMATIONS_THEN_A_FAILED_RUN)) == list(ALERTS)  # one of each, not two
    [failed] = wait_for(received, "Failed")
    assert "3 of 5 calls failed" in failed["body"]

    grmux = [sys.executable, "-m", "grmux_cli"]
    for _ in range(2):  # the second cycle within the hour logs the old backlog but does not notify again
        cycle = run_process([*grmux, "run", "--config", str(config)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
        assert cycle.returncode == 0, cycle.stdout + cycle.stderr  # a pending call is not a failure
    [pending] = wait_for(received, "pending")
    assert "1 call(s) pending, the oldest 3." in pending["body"]

    no_location = sandbox.write_config(tmp_path / "red.cfg", canary_location="")
    red = run_process([*grmux, "canary", "--config", str(no_location)], cwd=ROOT, env=env, capture_output=True,
                      text=True, timeout=300)
    assert red.returncode == 1, red.stdout + red.stderr
    [canary] = wait_for(received, "canary red")
    assert "configuration" in canary["subject"] and "canary_location" in canary["body"]
    assert len(received) == 3, received  # the red canary's Failed run did not also alert as "run failed"
