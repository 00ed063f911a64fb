"""Latency and backlog figures: percentiles, pending ages, the daily trend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from grmux_core.metrics import (
    Backlog,
    RunFigures,
    daily_trend,
    latency_seconds,
    metric_row,
    percentile,
)
from grmux_core.outcome import CallOutcome, Status
from grmux_core.tally import OutcomeTally

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_percentiles_interpolate_between_ranks():
    assert percentile([], 50) is None
    assert percentile([10.0], 95) == 10.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(1, 101)), 95) == 95.05


def test_latency_is_call_end_to_registration_never_negative():
    assert latency_seconds(NOW, NOW + timedelta(minutes=3)) == 180.0
    assert latency_seconds(NOW, NOW - timedelta(seconds=2)) == 0.0


def test_backlog_counts_pending_calls_and_ages_the_oldest_from_its_end():
    outcomes = [CallOutcome("a", Status.PENDING), CallOutcome("b", Status.PENDING), CallOutcome("c", Status.MUXED)]
    ends = {"a": NOW - timedelta(hours=7), "b": NOW - timedelta(hours=1), "c": NOW - timedelta(hours=9)}
    tally = OutcomeTally()
    tally.call_ends = ends
    for outcome in outcomes:
        tally.add(outcome)
    found = tally.backlog(NOW)
    assert found == Backlog(2, 7.0)
    assert found.too_old(6) and not found.too_old(7.5)
    assert OutcomeTally().backlog(NOW) == Backlog(0, None) and not Backlog(0, None).too_old(0.1)


def test_metric_row_of_a_cycle():
    outcomes = [CallOutcome(str(i), Status.MUXED, latency_s=float(i)) for i in (10, 20, 30)]
    assert metric_row(outcomes, Backlog(1, 2.5)) == {"p50 latency s": 20.0, "p95 latency s": 29.0,
                                                     "oldest pending h": 2.5}
    assert metric_row([], Backlog(0, None)) == {"p50 latency s": "-", "p95 latency s": "-", "oldest pending h": "-"}


def test_daily_trend_pools_every_call_of_a_day():
    rows = daily_trend([RunFigures("2026-12-02", (10.0, 30.0), 3, 1.5), RunFigures("2026-12-01", (5.0,), 0, None),
                        RunFigures("2026-12-02", (20.0,), 5, 4.0)])
    assert [r["day"] for r in rows] == ["2026-12-01", "2026-12-02"]
    assert rows[1] == {"day": "2026-12-02", "runs": 2, "muxed": 3, "p50 latency s": 20.0, "p95 latency s": 29.0,
                       "max pending": 5, "oldest pending h": 4.0}
    assert rows[0]["oldest pending h"] is None
