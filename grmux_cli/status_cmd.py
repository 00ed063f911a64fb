"""``grmux status``: the last runs of the ``grmux`` flow and their counts, from the Prefect API.

The counts come from each run's counts table artifact (:func:`tasks.report.publish_counts`), so
they are the numbers the UI shows. Runs without one (crashed before the end, stopped before the
calls, or older than the artifact) show ``-``. Prefect (and :mod:`tasks.report`, which imports it)
is imported when the command runs, so ``grmux --help`` stays light.

``--since 7d`` prints the history instead: per day (UTC), the p50/p95 latency over every muxed call
(from the ``grmux-<mode>-latency`` artifacts of the period's runs) and the backlog trend (the
largest pending count and the oldest pending age any run of the day saw, from the counts artifacts).
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from grmux_cli.exit_codes import ExitCode, exit_code_for
from grmux_core.cycle import MODES

FLOW_NAME = "grmux"


def last_runs(limit: int = 10) -> list[dict[str, Any]]:
    """The last ``limit`` runs of the flow, newest first, each with its counts (or ``None``)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
        FlowFilter,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    from tasks.report import counts_key, counts_of

    # runs the scheduler created ahead (hourly canary, nightly) are not "last runs"
    not_scheduled = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(not_any_=[StateType.SCHEDULED])))

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name={"any_": [FLOW_NAME]}),
                                     flow_run_filter=not_scheduled, sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                                     limit=limit)
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[r.id for r in runs]),
            key=ArtifactFilterKey(any_=[counts_key(mode) for mode in MODES]))) if runs else []
    by_run = {a.flow_run_id: counts_of(a.data) for a in artifacts}
    out = []
    for run in runs:
        start = run.start_time or run.expected_start_time
        out.append({"id": str(run.id), "name": run.name, "state": run.state_name or "", "start": start.isoformat() if start else "",
                    "message": (run.state.message if run.state else "") or "", "counts": by_run.get(run.id)})
    return out


def parse_since(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m`` → a duration."""
    match = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", text or "")
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 7d, 12h or 30m")
    unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


PAGE = 200


def history(since: timedelta) -> list[Any]:
    """Every run's figures of the period (``RunFigures``), from the counts and latency artifacts."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowFilter,
        FlowRunFilter,
        FlowRunFilterStartTime,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    from grmux_core.metrics import RunFigures
    from tasks.report import counts_key, latency_key

    keys = [counts_key(mode) for mode in MODES] + [latency_key(mode) for mode in MODES]
    start = datetime.now(UTC) - since
    found: list[Any] = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)),
                flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=start)),
                flow_filter=FlowFilter(name={"any_": [FLOW_NAME]}),
                sort=ArtifactSort.CREATED_DESC, limit=PAGE, offset=len(found))
            found += page
            if len(page) < PAGE:
                break
    runs: dict[Any, dict[str, Any]] = {}
    for artifact in found:
        entry = runs.setdefault(artifact.flow_run_id, {"day": artifact.created.astimezone(UTC).date().isoformat(),
                                                       "latencies": (), "counts": {}})
        rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
        if artifact.key.endswith("-latency"):
            entry["latencies"] = tuple(float(r["latency s"]) for r in rows)
        else:
            entry["counts"] = dict(rows[0]) if rows else {}
    figures = []
    for entry in runs.values():
        counts = entry["counts"]
        oldest = counts.get("oldest pending h")
        figures.append(RunFigures(entry["day"], entry["latencies"], counts.get("pending"),
                                  oldest if isinstance(oldest, int | float) else None))
    return figures


def _print_history(since: timedelta, text: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from grmux_core.metrics import daily_trend

    table = Table(title=f"flow {FLOW_NAME} since {text}: latency (call end to registration) and backlog per day (UTC)")
    columns = ("day", "runs", "muxed", "p50 latency s", "p95 latency s", "max pending", "oldest pending h")
    for column in columns:
        table.add_column(column, justify="left" if column == "day" else "right")
    for row in daily_trend(history(since)):
        table.add_row(*("-" if row[c] is None else str(row[c]) for c in columns))
    Console().print(table)


def _status(args: argparse.Namespace) -> ExitCode:
    from rich.console import Console
    from rich.table import Table

    from grmux_core.metrics import METRIC_FIELDS
    from tasks.report import COUNT_FIELDS

    try:
        if args.since:
            _print_history(parse_since(args.since), args.since)
            return ExitCode.OK
        runs = last_runs(args.limit)
    except argparse.ArgumentTypeError as error:
        print(f"grmux status: {error}")
        return ExitCode.USAGE
    except Exception as error:  # connection refused, wrong URL, no server: say so in one line
        code = exit_code_for(error)
        if code is not ExitCode.UNAVAILABLE:
            raise
        from prefect.settings import PREFECT_API_URL

        print(f"grmux: cannot read runs from the Prefect API at {PREFECT_API_URL.value() or '(PREFECT_API_URL unset)'}: "
              f"{type(error).__name__}: {error}. Start the server or set PREFECT_API_URL.")
        return code
    table = Table(title=f"last {args.limit} runs of flow {FLOW_NAME}")
    figures = (*COUNT_FIELDS, *METRIC_FIELDS)
    for column in ("start", "run", "state", *figures):
        table.add_column(column, justify="right" if column in figures else "left")
    for run in runs:
        counts = run["counts"] or {}
        cells = [str(counts[field]) if field in counts else "-" for field in figures]
        table.add_row(run["start"][:19], run["name"], run["state"], *cells)
    Console().print(table)
    return ExitCode.OK


def register(subparsers: argparse._SubParsersAction) -> None:
    status = subparsers.add_parser(
        "status", help="the last runs of the grmux flow: counts, latency, backlog (Prefect API)",
        description="Reads PREFECT_API_URL. Counts come from each run's counts artifact.")
    status.add_argument("--limit", type=int, default=10, help="how many runs (default 10)")
    status.add_argument("--since", help="instead: p50/p95 latency and backlog per day over this period (7d, 12h)")
    status.set_defaults(func=_status)
