"""The parent of a fanned-out backfill (or a large nightly window): one child run per slice.

The parent lists nothing and muxes nothing. It cuts the range into slices
(:func:`grmux_core.backfill.plan_slices`), looks up the child runs earlier runs of the same range
left (:func:`tasks.slices.earlier_children`), skips the slices done cleanly, follows the ones still
running, and starts the others as ``grmux/backfill-slice`` deployment runs on the same work pool,
at most ``max_parallel`` in flight, so every worker of the pool takes slices. It polls its
children in one query per round, keeps one row per slice (never one per call), shows the slices
done/running/failed in a progress artifact, and ends Failed naming the slices that failed.

Exactly-once across slices and workers is the per-call cache key and its locks (``tasks.locking``):
a slice rerun after a crash finds its finished calls cached or already muxed in RWS.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from prefect import get_run_logger
from prefect.states import Completed, Failed

from grmux_core.backfill import (
    Action,
    Board,
    Slice,
    SliceStatus,
    parse_time,
    plan_slices,
    range_tag,
    slice_minutes_for,
    verdict,
)
from grmux_core.config import Settings
from grmux_core.errors import ConfigError
from grmux_core.outcome import Status
from grmux_core.rws import default_extra_query
from grmux_core.windows import window_at
from tasks.context import RunConfig, services_for
from tasks.metadata import count_calls_task
from tasks.report import COUNT_FIELDS, SliceProgress, publish_counts, publish_slices
from tasks.slices import earlier_children, poll_children, start_slice

DEFAULT_SLICE_MINUTES = 24 * 60
#: seconds between two polls of the children (one API query per round, whatever the slice count)
POLL_SECONDS = 5.0


def range_of(settings: Settings, mode: str, now: datetime, since: Any, until: Any) -> tuple[datetime, datetime]:
    """``[since, until)`` of a backfill, or the nightly window of a run at ``now``."""
    if mode == "backfill":
        return parse_time(since, "since"), parse_time(until, "until")
    window = window_at(now, settings.processing.window_past, settings.processing.window_past_older_than)
    return window.start, window.end


def nightly_filters(run: RunConfig) -> str:
    """The extra list filters a nightly cycle would send (the userData marker on a recent RWS), so
    its slices list the same calls it would."""
    services = services_for(run)
    configured = services.settings.advanced.call_recording_extra_query_string
    return default_extra_query(configured, None if configured.strip() else services.rws.version())


def child_parameters(run: RunConfig, piece: Slice) -> dict[str, Any]:
    """A slice run's parameters: the config, the slice bounds and filters; never a password."""
    parameters: dict[str, Any] = {"mode": "backfill", "config_path": run.config_path, "fan_out": False,
                                  "since": piece.start.isoformat(), "until": piece.end.isoformat()}
    if piece.filters:
        parameters["query"] = piece.filters
    return parameters


def sized(run: RunConfig, start: datetime, end: datetime, filters: str, buffer: int, calls_per_slice: int) -> int:
    """Slice minutes holding about ``calls_per_slice`` calls, from a count of the range's first day."""
    [sample] = plan_slices(start, min(end, start + timedelta(days=1)), DEFAULT_SLICE_MINUTES, filters=filters,
                           buffer_minutes=buffer)
    counted = count_calls_task(run, sample)
    minutes = slice_minutes_for(counted, (sample.end - sample.start).total_seconds() / 60, calls_per_slice)
    get_run_logger().info("%d calls in %s: slices of %d minutes for about %d calls each (pass slice_minutes=%d "
                          "to a rerun to be sure it cuts the same slices)", counted, sample.label(), minutes,
                          calls_per_slice, minutes)
    return minutes


def fan_out_range(run: RunConfig, settings: Settings, mode: str, now: datetime, *, since: Any, until: Any,
                  slice_minutes: int | None, max_parallel: int, calls_per_slice: int | None = None,
                  poll: float = POLL_SECONDS) -> Any:
    logger = get_run_logger()
    if max_parallel < 1:
        raise ConfigError(f"max_parallel_slices = {max_parallel} is not valid: allowed is 1 or more")
    start, end = range_of(settings, mode, now, since, until)
    filters = settings.advanced.call_recording_query_string.strip() if mode == "backfill" else nightly_filters(run)
    buffer = settings.processing.interval_buffer_minutes
    if slice_minutes is None and calls_per_slice:
        slice_minutes = sized(run, start, end, filters, buffer, calls_per_slice)
    slices = plan_slices(start, end, slice_minutes or DEFAULT_SLICE_MINUTES, filters=filters, buffer_minutes=buffer)
    label = f"{mode}-{start:%Y-%m-%dT%H:%MZ}..{end:%Y-%m-%dT%H:%MZ}-slices"
    tag = range_tag(start, end, filters, run.config_path)
    logger.info("%s: %d slices of %s minutes, at most %d at once (child runs tagged %s)", label, len(slices),
                slice_minutes or DEFAULT_SLICE_MINUTES, max_parallel, tag)

    board = Board(slices)
    in_flight, todo = resume(board, slices, earlier_children(tag))
    progress = SliceProgress(board)
    while todo or in_flight:
        while todo and len(in_flight) < max_parallel:
            piece, attempt = todo.pop(0)
            run_id = start_slice(piece, attempt, child_parameters(run, piece), [tag])
            in_flight[run_id] = piece
            board.set(piece, SliceStatus.RUNNING, run_id=run_id)
            logger.info("slice %s: child run %s (attempt %d)", piece.label(), run_id, attempt)
        progress.update()
        time.sleep(poll)
        for run_id, (child, message) in poll_children(list(in_flight)).items():
            if child.finished:
                piece = in_flight.pop(run_id)
                ok = child.state == "COMPLETED"
                board.set(piece, SliceStatus.DONE if ok else SliceStatus.FAILED, counts=child.counts,
                          reason="" if ok else f"{child.state}: {message}")
                logger.info("slice %s: %s %s", piece.label(), child.state, child.counts or message)
    progress.update()
    return finish(mode, label, board)


def resume(board: Board, slices: list[Slice], earlier: dict[str, list]) -> tuple[dict[str, Slice], list[tuple[Slice, int]]]:
    """Mark what earlier runs did: the runs to follow (by id) and the slices to start (with attempt)."""
    logger = get_run_logger()
    in_flight: dict[str, Slice] = {}
    todo: list[tuple[Slice, int]] = []
    for piece in slices:
        found = verdict(earlier.get(piece.tag(), []))
        if found.action == Action.SKIP and found.run is not None:
            board.set(piece, SliceStatus.SKIPPED, run_id=found.run.id, counts=found.run.counts)
        elif found.action == Action.WAIT and found.run is not None:
            in_flight[found.run.id] = piece
            board.set(piece, SliceStatus.RUNNING, run_id=found.run.id)
            logger.info("slice %s: following child run %s of an earlier run", piece.label(), found.run.id)
        else:
            todo.append((piece, found.attempt))
    skipped = board.tally()[SliceStatus.SKIPPED.value]
    if skipped:
        logger.info("%d of %d slices were done by earlier runs: skipped", skipped, len(slices))
    return in_flight, todo


def finish(mode: str, label: str, board: Board) -> Any:
    """The counts of every slice summed, the slice table, and the run's state (red naming failed slices)."""
    totals = board.call_counts(COUNT_FIELDS)
    publish_counts(mode, label, totals)
    publish_slices(mode, label, board)
    summary = {"scope": label, "counts": {status.value: totals[status.value] for status in Status},
               "listed": totals["listed"], "slices": board.tally()}
    failed = board.failed()
    get_run_logger().info("%s done: %s; calls %s", label, board.describe(), totals)
    if failed:
        names = ", ".join(row.slice.label() for row in failed[:20]) + (" ..." if len(failed) > 20 else "")
        return Failed(message=f"{len(failed)} of {len(board.rows)} slices failed: {names}", data=summary)
    return Completed(message=f"{len(board.rows)} slices done", data=summary)
