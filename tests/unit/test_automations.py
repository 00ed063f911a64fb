"""The alert automations as data (what each matches), and the Prefect members they rely on: the
trigger schema, negated label matching ("!canary") and a loaded block's private document id."""

from __future__ import annotations

from prefect.blocks.core import Block
from prefect.events.schemas.automations import EventTrigger
from prefect.server.events.schemas.events import matches

from deployments.automations import automation_specs
from grmux_core.config import load_settings
from tests.support import ROOT


def specs() -> dict[str, dict]:
    return {spec["name"]: spec for spec in automation_specs(load_settings(ROOT / "muxer.cfg"))}


def test_one_automation_per_alert_each_a_valid_prefect_trigger():
    found = specs()
    assert sorted(found) == ["grmux: canary red", "grmux: pending too old", "grmux: primary not completing",
                             "grmux: run failed"]
    for spec in found.values():
        EventTrigger.model_validate(spec["trigger"])  # the JSON form Prefect accepts


def test_primary_stall_is_three_poll_intervals_proactive():
    trigger = specs()["grmux: primary not completing"]["trigger"]
    assert trigger["posture"] == "Proactive" and trigger["within"] == 3 * 5 * 60  # muxer.cfg: 5 minutes
    assert trigger["expect"] == ["prefect.flow-run.Completed"]


def test_run_failed_excludes_the_canary_deployment_which_has_its_own_alert():
    related = specs()["grmux: run failed"]["trigger"]["match_related"]
    deployment = next(r for r in related if r["prefect.resource.role"] == "deployment")["prefect.resource.name"]
    assert matches(deployment, "primary") and matches(deployment, "backfill")
    assert not matches(deployment, "canary")


def test_a_loaded_block_carries_its_document_id_in_a_private_attribute():
    # deployments.automations.notification_block_id reads Block._block_document_id
    assert "_block_document_id" in Block.__private_attributes__
