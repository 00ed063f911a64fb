"""Events the flows emit for the alerts (the automations of :mod:`deployments.automations` trigger on them)."""

from __future__ import annotations

from prefect import get_run_logger
from prefect.events import emit_event

from grmux_core.metrics import Backlog

#: Emitted by a cycle whose oldest pending call is older than ``[advanced] pending_alert_hours``.
EVENT_PENDING_AGE = "grmux.backlog.pending-too-old"


def emit_pending_age(mode: str, label: str, pending: Backlog, alert_hours: float) -> None:
    get_run_logger().warning("backlog: %d pending call(s), the oldest %.1f h old (alert above %g h)",
                             pending.count, pending.oldest_hours or 0.0, alert_hours)
    emit_event(EVENT_PENDING_AGE, resource={"prefect.resource.id": f"grmux.backlog.{mode}",
                                            "prefect.resource.name": f"grmux {mode} backlog"},
               payload={"cycle": label, "pending": pending.count, "oldest_hours": pending.oldest_hours,
                        "alert_hours": alert_hours})
