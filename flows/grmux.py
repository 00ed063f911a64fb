"""The ``grmux`` flow: one cycle — window → shard → bulk reads → quality → mux each call → report.

Four deployments run it in four modes (see ``prefect.yaml`` and :mod:`grmux_core.cycle`).
Parameters hold the config path and overrides only; passwords come from the environment or a
Prefect Secret block (``GRMUX_SECRET_BLOCKS``), never from parameters.

The window is taken from the run's *scheduled* start, so a late run covers the window it was
scheduled for. Calls are submitted through a sliding window of ``[advanced] worker_threads``
futures, which bounds parallelism and keeps a 10,000-call window from creating every task run at
once. The run ends Failed (red) when any call failed, after every call was tried.
"""

from __future__ import annotations

import os
import queue
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run as runtime_flow_run
from prefect.states import Cancelled, Completed, Failed
from prefect.task_runners import ThreadPoolTaskRunner

from flows.fanout import fan_out_range
from grmux_core.cancel import StopToken, process_token, stop_on_signals, stopping
from grmux_core.config import Settings
from grmux_core.cycle import CycleScope, cycle_scope, mode_overrides
from grmux_core.encryption import OutputEncryption, startup_warning
from grmux_core.logs import attach_log_file, outcome_logger
from grmux_core.metrics import Backlog, metric_row
from grmux_core.models import CallRecording
from grmux_core.outcome import CallOutcome, Status, first_line
from grmux_core.scratch import clean_stale_workdirs
from grmux_core.tally import OutcomeTally
from grmux_core.triage import triage
from tasks.alerts import emit_pending_age
from tasks.call import CallFailed, mux_call
from tasks.cancel import watch_for_cancel
from tasks.context import RunConfig
from tasks.metadata import list_calls_task, read_encryption_task, read_screens_task, validate_task
from tasks.report import Progress, publish_counts, publish_latency, publish_quality, publish_summary
from tasks.secrets import load_secret_blocks

#: Upper bound of the thread pool; the real parallelism is ``worker_threads`` (≤ 64 by config).
MAX_POOL = 64


def scheduled_now() -> datetime:
    """The run's scheduled start (deployment runs), else now."""
    scheduled = runtime_flow_run.scheduled_start_time
    if scheduled is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(scheduled.timestamp(), UTC)


def _run_config(parameters: dict[str, Any]) -> RunConfig:
    overrides = mode_overrides(
        parameters.get("mode", "primary"),
        query=parameters.get("query"),
        window_past=parameters.get("window_past"),
        window_past_older_than=parameters.get("window_past_older_than"),
        muxer_id=parameters.get("muxer_id"),
        total_muxers=parameters.get("total_muxers"),
        split=parameters.get("split"),
    )
    return RunConfig(os.path.abspath(parameters.get("config_path", "muxer.cfg")), overrides)


def created_by_automation() -> bool:
    """Whether this run was started by an automation (the crash-recovery rerun of ``deployments.setup``).

    Read from the flow run the engine already holds (no request that could fail: a rerun named
    ``grmux-…`` would be rerun again when it crashes); from the API only outside a flow run."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is not None and context.flow_run is not None:
        created_by = context.flow_run.created_by
        return created_by is not None and created_by.type == "AUTOMATION"
    try:
        with get_client(sync_client=True) as client:
            created_by = client.read_flow_run(runtime_flow_run.id).created_by
    except Exception:  # noqa: BLE001 - the name must not fail
        return False
    return created_by is not None and created_by.type == "AUTOMATION"


def run_name() -> str:
    """``grmux-<mode>-<window or query>-<shard>``, e.g. ``grmux-primary-2026-11-27T16:00Z..…-shard0of2``;
    ``resumed-grmux-…`` for the automatic rerun of a crashed run (which the rerun automation does
    not match: a rerun is never rerun again)."""
    parameters = dict(runtime_flow_run.parameters)
    mode = parameters.get("mode", "primary")
    prefix = "resumed-grmux" if created_by_automation() else "grmux"
    try:
        load_secret_blocks()
        scope = cycle_scope(_run_config(parameters).settings(), mode, scheduled_now(),
                            **_range(parameters, mode))
    except Exception:  # noqa: BLE001 - the flow itself reports the config error; the name must not fail
        return f"{prefix}-{mode}"
    if fans_out(mode, parameters.get("since"), parameters.get("until"), parameters.get("slice_minutes"),
                parameters.get("fan_out")):
        return f"{prefix}-{scope.label().rsplit('-', 1)[0]}-slices"  # the parent of slice runs: no shard
    return f"{prefix}-{scope.label()}"


def _range(parameters: dict[str, Any], mode: str) -> dict[str, Any]:
    """since/until for :func:`cycle_scope`: a backfill by time (a slice, or the parent's whole range)."""
    if mode != "backfill":
        return {}
    return {"since": parameters.get("since"), "until": parameters.get("until")}


def fans_out(mode: str, since: Any, until: Any, slice_minutes: int | None, fan_out: bool | None) -> bool:
    """Whether this run is the parent of slice runs rather than a cycle itself.

    A backfill by time fans out unless told not to (``fan_out=False``: the slice deployment);
    a nightly run fans out when it is given ``slice_minutes`` or ``fan_out=True``.
    """
    if fan_out is False:
        return False
    if mode == "backfill":
        return since is not None and until is not None
    return mode == "nightly" and (fan_out is True or slice_minutes is not None)


@flow(name="grmux", flow_run_name=run_name, task_runner=ThreadPoolTaskRunner(max_workers=MAX_POOL))
def grmux(
    mode: str = "primary",
    config_path: str = "muxer.cfg",
    query: str | int | float | None = None,  # noqa: PYI041 - int kept: Prefect would make 5 a 5.0
    window_past: int | None = None,
    window_past_older_than: int | None = None,
    muxer_id: int | None = None,
    total_muxers: int | None = None,
    split: bool | None = None,
    since: str | None = None,
    until: str | None = None,
    slice_minutes: int | None = None,
    max_parallel_slices: int = 4,
    fan_out: bool | None = None,
    calls_per_slice: int | None = None,
) -> Any:
    """One muxer cycle. ``query`` (backfill) is used as text whatever type the CLI parsed it as.

    ``since``/``until`` (ISO-8601, backfill): the calls that started in ``[since, until)`` and match
    the ``query`` filters, cut into slices of ``slice_minutes`` (default a day; or sized to hold about
    ``calls_per_slice`` calls from a count of the first day) run as child runs of
    ``grmux/backfill-slice``, at most ``max_parallel_slices`` at once. ``fan_out=False`` runs the
    range as one slice in this run (what the slice deployment does).
    """
    logger = get_run_logger()
    load_secret_blocks()
    run = _run_config({"mode": mode, "config_path": config_path, "query": query, "window_past": window_past,
                       "window_past_older_than": window_past_older_than, "muxer_id": muxer_id,
                       "total_muxers": total_muxers, "split": split})
    settings = run.settings()  # a ConfigError fails the run with the full list of problems
    for warning in settings.warnings:
        logger.warning("muxer.cfg: %s", warning)
    log_file = attach_log_file(settings.logfile.logfile_path)
    if fans_out(mode, since, until, slice_minutes, fan_out):
        return fan_out_range(run, settings, mode, scheduled_now(), since=since, until=until,
                             slice_minutes=slice_minutes, max_parallel=max_parallel_slices,
                             calls_per_slice=calls_per_slice)
    clean_stale_workdirs(settings.processing.temp_dir, logger)
    scope = cycle_scope(settings, mode, scheduled_now(), **_range({"since": since, "until": until}, mode))
    logger.info("cycle %s; log file %s", scope.label(), log_file)

    tally = OutcomeTally(outcomes_csv(settings.logfile.logfile_path))
    token = StopToken()
    unhook = process_token().on_stop(token.set)  # SIGTERM/SIGINT of this process
    try:
        with stop_on_signals(), stopping(token), watch_for_cancel(runtime_flow_run.id, token):
            listed, list_requests = collect_outcomes(run, settings, scope, tally, token)
    finally:
        unhook()
        tally.close()
    now = datetime.now(UTC)
    pending = tally.backlog(now)
    summary = summarise(mode, scope, tally, listed, list_requests, pending)
    if pending.too_old(settings.advanced.pending_alert_hours):
        emit_pending_age(mode, scope.label(), pending, settings.advanced.pending_alert_hours, now)
    failed = summary["counts"][Status.FAILED]
    if token.is_set():
        stopped = summary["counts"][Status.CANCELLED]
        # no data: Prefect's flow-run entry point reads a Cancelled state's data as the exception that
        # stopped it (a dict would print a TypeError traceback in the worker's log); the summary is
        # in the artifacts
        return Cancelled(message=f"{token.reason}: {stopped} of {tally.total} calls cancelled, "
                                 "nothing of them registered (the next run does them)")
    if failed:
        return Failed(message=f"{failed} of {tally.total} calls failed (see the summary artifact)", data=summary)
    return Completed(message="all calls muxed, skipped or pending", data=summary)


def outcomes_csv(log_folder: str) -> Path:
    """``<log folder>/outcomes/<flow run id>.csv``: every call's outcome of this run."""
    return Path(log_folder or ".").resolve() / "outcomes" / f"{runtime_flow_run.id or uuid.uuid4()}.csv"


def collect_outcomes(run: RunConfig, settings: Settings, scope: CycleScope, tally: OutcomeTally,
                     token: StopToken | None = None) -> tuple[int, int]:
    """Everything between listing and the last call: how many calls of this shard were listed
    (malformed records included) and how many list requests that took; one outcome per call goes
    to ``tally`` (with each listed call's end, for the backlog's ages) and the log file."""
    logger = get_run_logger()
    polls = settings.advanced.cycle_deadline_polls
    deadline = time.monotonic() + polls * settings.processing.min_poll_interval * 60 if polls else None
    encryption = read_encryption_task(run)  # a broken or expired certificate fails the cycle here
    warning = startup_warning(encryption)
    if warning:
        logger.warning(warning)
    elif encryption.encrypts:
        logger.info("muxed files are stored encrypted for the certificates %s", ", ".join(encryption.aliases))
    listing = list_calls_task(run, scope)
    logger.info("%d calls listed for this shard (%d of other shards, %d malformed) in %d list request(s), "
                "%d narrowing(s) of a possibly truncated answer", len(listing.calls), listing.other_shard,
                len(listing.bad_records), listing.stats.requests, listing.stats.narrowings)
    screens = read_screens_task(run, [c.id for c in listing.calls]) if listing.calls else {}
    quality = validate_task(listing, screens, scope)
    publish_quality(scope.mode, quality.markdown(f"Metadata quality — {scope.label()}"))
    if quality.warnings:
        logger.warning("%d call(s) have a media type grmux does not know by name; they are processed and "
                       "ffprobe decides what the bytes are (see the quality artifact)", len(quality.warnings))

    decided = triage(listing, screens, quality.rejected)
    listed, list_requests = len(listing.calls) + len(listing.bad_records), listing.stats.requests
    tally.call_ends = {c.id: c.stop for c in listing.calls}
    del listing, screens  # the calls to mux are in decided.to_mux; the rest is only counted from here
    for outcome in decided.outcomes:
        record(tally, outcome)
    mux_all(run, decided.to_mux, settings.advanced.worker_threads, lambda o: record(tally, o, log_run=True),
            encryption, token or StopToken(), deadline)
    return listed, list_requests


def record(tally: OutcomeTally, outcome: CallOutcome, *, log_run: bool = False) -> None:
    """One outcome: the log file, (muxed calls) the run's log, the tally and its CSV."""
    outcome_logger().info(outcome.log_line())
    if log_run:
        get_run_logger().info(outcome.log_line())
    tally.add(outcome)


def mux_all(run: RunConfig, to_mux: list[tuple[CallRecording, str]], parallel: int,
            on_outcome: Callable[[CallOutcome], None], encryption: OutputEncryption | None = None,
            token: StopToken | None = None, deadline: float | None = None) -> None:
    """Submit one task per call, at most ``parallel`` in flight; hand each outcome to ``on_outcome``.

    Works with any task runner (threads, Dask): finished futures arrive through their done
    callbacks, so a 10,000-call window never holds more than ``parallel`` futures. No call starts
    once ``token`` is set (cancel) or after ``deadline`` (``time.monotonic()``, the cycle's
    deadline): those calls end ``cancelled`` or ``pending`` ("deferred"), for the next run.
    """
    token = token or StopToken()
    progress = Progress(len(to_mux))
    finished: queue.SimpleQueue = queue.SimpleQueue()
    in_flight: dict[int, Any] = {}
    pending = list(reversed(to_mux))

    def may_start() -> bool:
        return not token.is_set() and (deadline is None or time.monotonic() < deadline)

    def refill() -> None:
        while pending and len(in_flight) < parallel and may_start():
            call, key = pending.pop()
            future = mux_call.submit(call, key, run, encryption)
            in_flight[id(future)] = call
            future.add_done_callback(finished.put)

    refill()
    while in_flight:
        future = finished.get()
        call = in_flight.pop(id(future))
        on_outcome(outcome_of(call.id, future))
        progress.advance()
        refill()
    if pending:
        left = not_started([call for call, _ in reversed(pending)], token)
        get_run_logger().warning("%d call(s) not started: %s", len(pending), left[-1].reason)
        for outcome in left:
            on_outcome(outcome)
        progress.advance(len(pending))


def not_started(calls: list[CallRecording], token: StopToken) -> list[CallOutcome]:
    """The outcomes of the calls a cancel or the cycle deadline kept from starting."""
    if token.is_set():
        return [CallOutcome(c.id, Status.CANCELLED, f"{token.reason} before it started") for c in calls]
    return [CallOutcome(c.id, Status.PENDING, "deferred: cycle deadline reached, left for the next cycle")
            for c in calls]


def outcome_of(call_id: str, future: Any) -> CallOutcome:
    """Turn a finished task run into the call's outcome (Cached = another run already did it)."""
    future.wait()  # sets the future's final state from the finished thread, without asking the API
    state = future.state
    if state.is_completed():
        outcome = CallOutcome.from_data(future.result())
        if state.name == "Cached":
            return replace(outcome, status=Status.SKIPPED, reason=f"done by an earlier or concurrent run ({outcome.status})")
        return outcome
    error = future.result(raise_on_failure=False)
    if isinstance(error, CallFailed):  # CallCancelled too
        return error.outcome
    return CallOutcome(call_id, Status.FAILED, first_line(error) if isinstance(error, BaseException) else str(state.message))


def summarise(mode: str, scope: CycleScope, tally: OutcomeTally, listed: int, list_requests: int,
              pending: Backlog) -> dict[str, Any]:
    """Publish the summary, counts and latencies; the run's data: the counts and the first outcomes only."""
    counted = tally.counts()
    row = counted | {"listed": listed, "list_requests": list_requests} | metric_row(tally.muxed, pending)
    publish_summary(mode, scope.label(), tally, row)
    publish_counts(mode, scope.label(), row)
    publish_latency(mode, scope.label(), tally.muxed)
    get_run_logger().info("cycle %s done: %s", scope.label(), ", ".join(f"{n} {s}" for s, n in counted.items()))
    return {"scope": scope.label(), "counts": counted, "listed": listed, "list_requests": list_requests,
            "backlog": {"pending": pending.count, "oldest_hours": pending.oldest_hours},
            "calls": [o.to_data() for o in tally.sample], "calls_not_shown": tally.total - len(tally.sample),
            "outcomes_csv": str(tally.csv_path)}

