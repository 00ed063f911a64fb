"""The canary as one Prefect task, its artifact, and its event.

One task (one thread): the canary takes one worker slot and, through :func:`tasks.call.service_guard`,
the same per-service slots (RWS, RCS, storage, ffmpeg) as the calls of a cycle running beside it.
"""

from __future__ import annotations

import socket
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.events import emit_event

from grmux_core.canary import CanaryReport, load_certificates, run_canary
from tasks.call import service_guard
from tasks.context import RunConfig, services_for
from tasks.report import artifact_key

CANARY_KEY = artifact_key("grmux", "canary")
#: The events the canary emits after each run (the "canary red" automation triggers on the first).
EVENT_RED = "grmux.canary.red"
EVENT_GREEN = "grmux.canary.green"


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(none)\n"
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(row[h]) for h in head) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def canary_markdown(report: CanaryReport) -> str:
    """The artifact: verdict, each step's time, every marker's measured offset."""
    verdict = "GREEN" if report.ok else f"RED at step **{report.failed_step}**"
    parts = [f"# Sync canary: {verdict}\n", f"{report.headline()}\n",
             (f"run `{report.run_id}`, started {report.started:%Y-%m-%d %H:%M:%S} UTC; "
             f"{report.encrypted_segments} encrypted segment(s)\n")]
    parts += [f"- {note}\n" for note in report.notes]
    parts += ["\n## Steps (seconds)\n\n", _table(report.step_rows()),
              "\n## Markers (output time; limit ±40 ms)\n\n", _table(report.marker_rows())]
    if report.left_behind:
        parts += ["\n## Left behind in storage\n\n"] + [f"- {o}\n" for o in report.left_behind]
    return "".join(parts)


def emit_canary_event(report: CanaryReport) -> None:
    """``grmux.canary.red`` / ``.green``, about this host's canary, with the failing step."""
    emit_event(EVENT_GREEN if report.ok else EVENT_RED,
               resource={"prefect.resource.id": f"grmux.canary.{socket.gethostname()}",
                         "prefect.resource.name": "grmux sync canary"},
               payload={"step": report.failed_step, "reason": report.reason, "run": report.run_id})


@task(name="canary", task_run_name="canary", retries=0)
def canary_task(run: RunConfig, certificate_paths: list[str]) -> dict[str, Any]:
    """One canary run: the report as data (red is data too: the flow decides the run's state)."""
    certificates = load_certificates(certificate_paths) if certificate_paths else None
    report = run_canary(services_for(run), certificates=certificates, guard=service_guard, logger=get_run_logger())
    create_markdown_artifact(canary_markdown(report), key=CANARY_KEY, description=report.headline())
    emit_canary_event(report)
    return report.to_data()
