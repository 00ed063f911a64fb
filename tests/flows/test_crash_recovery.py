"""The crash-recovery automations of ``deployments.setup``: created once however often setup runs,
matching only ``grmux-*`` runs (never the ``resumed-grmux-*`` rerun), and rerunning with the crashed
run's parameters. The kill -9 → Crashed → rerun path itself, which needs the heartbeat wait and
workers, is tests/e2e/test_crash_recovery.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

import jinja2
import pytest
from prefect.client.orchestration import get_client

from deployments.setup import RERUN_AUTOMATION, ZOMBIE_AUTOMATION, ensure_crash_recovery, rerun_parameters


def remove_crash_recovery() -> None:
    """The automations act on every run of the session's server (a test may set a short window):
    gone once this test is done."""
    with get_client(sync_client=True) as client:
        for name in (ZOMBIE_AUTOMATION, RERUN_AUTOMATION):
            for automation in client.read_automations_by_name(name):
                client.delete_automation(automation.id)


def test_setup_creates_each_automation_once_however_often_it_runs(cleanup):
    cleanup.callback(remove_crash_recovery)
    assert ensure_crash_recovery() == [ZOMBIE_AUTOMATION, RERUN_AUTOMATION]
    ensure_crash_recovery()
    with get_client(sync_client=True) as client:
        [zombie] = client.read_automations_by_name(ZOMBIE_AUTOMATION)
        [rerun] = client.read_automations_by_name(RERUN_AUTOMATION)
    assert dict(rerun.trigger.match.items())["prefect.resource.name"] == ["grmux-*"]
    assert rerun.trigger.expect == {"prefect.flow-run.Crashed"}
    assert rerun.actions[0].type == "run-deployment" and rerun.actions[0].source == "inferred"
    assert zombie.actions[0].type == "change-flow-run-state"


def render(template: dict, parameters: dict):
    text = jinja2.Template(template["value"]["template"]).render(flow_run=SimpleNamespace(parameters=parameters))
    return json.loads(text)


def test_the_rerun_gets_the_crashed_runs_parameters_and_the_defaults_for_the_rest():
    crashed = {"mode": "backfill", "query": "callerPhoneNumber=555*", "muxer_id": 1}
    rendered = {name: render(t, crashed) for name, t in rerun_parameters().items()}
    assert rendered["mode"] == "backfill" and rendered["query"] == "callerPhoneNumber=555*"
    assert rendered["muxer_id"] == 1 and rendered["config_path"] == "muxer.cfg" and rendered["split"] is None


def test_the_unresponsive_window_is_set_by_setup_and_never_at_or_below_the_shortest_heartbeat(capsys):
    from deployments.setup import UNRESPONSIVE_AFTER_S, crash_recovery_automations, main

    assert crash_recovery_automations()[0].trigger.within.total_seconds() == UNRESPONSIVE_AFTER_S == 450
    assert crash_recovery_automations(45)[0].trigger.within.total_seconds() == 45
    with pytest.raises(SystemExit) as refused:
        main(["--heartbeat-timeout", "30"])
    assert refused.value.code == 2 and "must exceed 30 s" in capsys.readouterr().err
