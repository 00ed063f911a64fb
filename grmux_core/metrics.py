"""Latency and backlog: how long muxed calls took to reach RWS, and how many calls wait, how long.

Pure functions over outcomes and times; the flow publishes them (artifacts, an event) and
``grmux status`` aggregates the stored figures per day.

* **latency** of a muxed call: from the call's end (``stopTime``) to the moment its muxed file
  was registered in RWS. It includes the wait for the screen recording, which is the usual
  reason a call is late.
* **backlog** of a window: the calls left ``pending`` (no screen recording yet), how many and the
  age of the oldest (from its end), which the pending-age alert compares with
  ``[advanced] pending_alert_hours``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from grmux_core.outcome import CallOutcome, Status

#: The extra columns of the counts artifact (and of ``grmux status``).
METRIC_FIELDS: tuple[str, ...] = ("p50 latency s", "p95 latency s", "oldest pending h")


def latency_seconds(call_end: datetime, registered: datetime) -> float:
    """Call end → registration, in seconds (never negative: clocks of two hosts may disagree a little)."""
    return max(0.0, round((registered - call_end).total_seconds(), 3))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation between closest ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 3)


@dataclass(frozen=True)
class Backlog:
    """The pending calls of a window: how many, and the oldest one's age in hours (None: none)."""

    count: int
    oldest_hours: float | None

    def too_old(self, alert_hours: float) -> bool:
        return self.oldest_hours is not None and self.oldest_hours > alert_hours


def latencies(outcomes: Iterable[CallOutcome]) -> list[float]:
    """The latencies of the muxed calls that carry one."""
    return [o.latency_s for o in outcomes if o.status == Status.MUXED and o.latency_s is not None]


def metric_row(outcomes: Sequence[CallOutcome], pending: Backlog) -> dict[str, float | str]:
    """The :data:`METRIC_FIELDS` of one cycle (``-`` where there is nothing to measure)."""
    values = latencies(outcomes)
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return {"p50 latency s": "-" if p50 is None else p50, "p95 latency s": "-" if p95 is None else p95,
            "oldest pending h": "-" if pending.oldest_hours is None else pending.oldest_hours}


@dataclass(frozen=True)
class RunFigures:
    """What one stored run contributes to the daily trend."""

    day: str  # YYYY-MM-DD (UTC)
    latencies: tuple[float, ...]
    pending: int | None
    oldest_pending_hours: float | None


def daily_trend(runs: Iterable[RunFigures]) -> list[dict[str, object]]:
    """Per day: runs, muxed calls, p50/p95 latency over every muxed call of the day, and the backlog
    trend (the largest pending count and oldest pending age any run of that day saw)."""
    days: dict[str, list[RunFigures]] = {}
    for run in runs:
        days.setdefault(run.day, []).append(run)
    rows = []
    for day in sorted(days):
        group = days[day]
        values = [v for r in group for v in r.latencies]
        pending = [r.pending for r in group if r.pending is not None]
        oldest = [r.oldest_pending_hours for r in group if r.oldest_pending_hours is not None]
        rows.append({"day": day, "runs": len(group), "muxed": len(values),
                     "p50 latency s": percentile(values, 50), "p95 latency s": percentile(values, 95),
                     "max pending": max(pending) if pending else None,
                     "oldest pending h": max(oldest) if oldest else None})
    return rows
