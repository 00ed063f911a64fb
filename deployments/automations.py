"""The grmux alerts as Prefect automations, created (or updated) idempotently by ``deployments.setup``.

Each alert is one automation named ``grmux: <alert>``; running setup again updates it in place
(and removes duplicates of the name), so there is always one of each. Every action sends a
notification through the block the operator names with ``--notify-block`` (``<block type slug>/
<block name>``, e.g. ``slack-webhook/ops`` or ``custom-webhook/grmux-alerts``).

=============================  ==================================================================
``grmux: run failed``           a deployment run of flow ``grmux`` (any deployment but the
                                canary, which has its own alert) ends Failed or Crashed
``grmux: canary red``           the canary emitted ``grmux.canary.red`` (failing step in the body)
``grmux: primary not completing``  no Completed run of ``grmux/primary`` for 3 × ``min_poll_interval``
``grmux: pending too old``      a cycle emitted ``grmux.backlog.pending-too-old``: its oldest pending
                                call is older than ``[advanced] pending_alert_hours``
=============================  ==================================================================
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from grmux_core.config import Settings
from tasks.alerts import EVENT_PENDING_AGE
from tasks.canary import EVENT_RED as EVENT_CANARY_RED

FLOW = "grmux"
PREFIX = "grmux: "
#: How many poll intervals without a Completed primary run before the "not completing" alert.
STALL_INTERVALS = 3


def _flow_related() -> dict[str, str]:
    return {"prefect.resource.role": "flow", "prefect.resource.name": FLOW}


def automation_specs(settings: Settings) -> list[dict[str, Any]]:
    """The four alerts as plain data: name, description, trigger (Prefect's JSON form), subject, body.

    Pure, so a unit test reads what each alert matches without a server.
    """
    stall = timedelta(minutes=STALL_INTERVALS * settings.processing.min_poll_interval)
    return [
        {"name": PREFIX + "run failed",
         "description": "A deployment run of flow grmux (not the canary) ended Failed or Crashed.",
         "trigger": {"type": "event", "posture": "Reactive", "threshold": 1, "within": 0,
                     "expect": ["prefect.flow-run.Failed", "prefect.flow-run.Crashed"],
                     "match": {"prefect.resource.id": "prefect.flow-run.*"},
                     "match_related": [_flow_related(),
                                       {"prefect.resource.role": "deployment", "prefect.resource.name": "!canary"}]},
         "subject": "grmux: run {{ flow_run.name }} {{ flow_run.state.name }}",
         "body": "Flow run {{ flow_run.name }} ended {{ flow_run.state.name }}: {{ flow_run.state.message }}"},
        {"name": PREFIX + "canary red",
         "description": "The sync canary failed a step (storage write, RCS, ffmpeg, alignment, ...).",
         "trigger": {"type": "event", "posture": "Reactive", "threshold": 1, "within": 0,
                     "expect": [EVENT_CANARY_RED], "match": {"prefect.resource.id": "grmux.canary.*"}},
         "subject": "grmux: canary red at {{ event.payload.step }}",
         "body": "The grmux sync canary is red at step {{ event.payload.step }}: {{ event.payload.reason }}"},
        {"name": PREFIX + "primary not completing",
         "description": f"No Completed run of grmux/primary for {STALL_INTERVALS} x min_poll_interval "
                        f"({int(stall.total_seconds() // 60)} min).",
         "trigger": {"type": "event", "posture": "Proactive", "threshold": 1,
                     "within": int(stall.total_seconds()),
                     "expect": ["prefect.flow-run.Completed"],
                     "match": {"prefect.resource.id": "prefect.flow-run.*"},
                     "match_related": [_flow_related(),
                                       {"prefect.resource.role": "deployment", "prefect.resource.name": "primary"}]},
         "subject": "grmux: no completed primary run",
         "body": f"No run of grmux/primary completed in the last {int(stall.total_seconds() // 60)} minutes: "
                 "check the workers (prefect worker start --pool grmux) and the last runs' states."},
        {"name": PREFIX + "pending too old",
         "description": f"The oldest pending call is older than {settings.advanced.pending_alert_hours:g} h.",
         "trigger": {"type": "event", "posture": "Reactive", "threshold": 1, "within": 0,
                     "expect": [EVENT_PENDING_AGE], "match": {"prefect.resource.id": "grmux.backlog.*"}},
         "subject": "grmux: pending calls older than {{ event.payload.alert_hours }} h",
         "body": "Cycle {{ event.payload.cycle }}: {{ event.payload.pending }} call(s) pending, the oldest "
                 "{{ event.payload.oldest_hours }} h old: screen recordings are not arriving."},
    ]


def notification_block_id(reference: str) -> UUID:
    """The block document id of ``<block type slug>/<block name>`` (it must exist)."""
    from prefect.blocks.core import Block

    if "/" not in reference:
        raise SystemExit(f"--notify-block {reference!r}: give <block type slug>/<block name>, "
                         "e.g. custom-webhook/grmux-alerts")
    block = Block.load(reference)
    block_id = block._block_document_id  # contract test: tests/unit/test_prefect_contract.py
    if block_id is None:
        raise SystemExit(f"notification block {reference} has no id")
    return block_id


def ensure_automations(settings: Settings, notify_block: str) -> list[str]:
    """Create or update every alert automation; returns their names."""
    from prefect.client.orchestration import get_client
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger

    block_id = notification_block_id(notify_block)
    names = []
    with get_client(sync_client=True) as client:
        for spec in automation_specs(settings):
            automation = AutomationCore(
                name=spec["name"], description=spec["description"], enabled=True,
                trigger=EventTrigger.model_validate(spec["trigger"]),
                actions=[SendNotification(block_document_id=block_id, subject=spec["subject"], body=spec["body"])])
            existing = client.read_automations_by_name(spec["name"])
            if existing:
                client.update_automation(existing[0].id, automation)
                for duplicate in existing[1:]:
                    client.delete_automation(duplicate.id)
            else:
                client.create_automation(automation)
            names.append(spec["name"])
    return names
