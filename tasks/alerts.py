"""Events the flows emit for the alerts (the automations of :mod:`deployments.automations` trigger on them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from prefect import get_run_logger
from prefect.events import emit_event
from prefect.variables import Variable

from grmux_core.metrics import Backlog

#: Emitted by a cycle whose oldest pending call is older than ``[advanced] pending_alert_hours``.
EVENT_PENDING_AGE = "grmux.backlog.pending-too-old"
#: While the backlog stays too old, the event (and so the notification) repeats at most this often,
#: not every cycle.
PENDING_ALERT_REPEAT = timedelta(hours=1)


def due(mode: str, now: datetime) -> bool:
    """Whether the pending-age event of ``mode`` is due: none was emitted in the last
    :data:`PENDING_ALERT_REPEAT` (the last emission is kept in the Prefect variable
    ``grmux_pending_alert_<mode>``)."""
    name = f"grmux_pending_alert_{mode}"
    last = Variable.get(name, default=None)
    if isinstance(last, str) and now - datetime.fromisoformat(last) < PENDING_ALERT_REPEAT:
        return False
    Variable.set(name, now.isoformat(), overwrite=True)
    return True


def emit_pending_age(mode: str, label: str, pending: Backlog, alert_hours: float, now: datetime) -> None:
    """Log the old backlog; emit the event when :func:`due`."""
    get_run_logger().warning("backlog: %d pending call(s), the oldest %.1f h old (alert above %g h)",
                             pending.count, pending.oldest_hours or 0.0, alert_hours)
    if not due(mode, now):
        return
    emit_event(EVENT_PENDING_AGE, resource={"prefect.resource.id": f"grmux.backlog.{mode}",
                                            "prefect.resource.name": f"grmux {mode} backlog"},
               payload={"cycle": label, "pending": pending.count, "oldest_hours": pending.oldest_hours,
                        "alert_hours": alert_hours})
