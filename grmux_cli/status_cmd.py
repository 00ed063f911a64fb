"""``grmux status``: the last runs of the ``grmux`` flow and their counts, from the Prefect API.

The counts come from each run's counts table artifact (:func:`tasks.report.publish_counts`), so
they are the numbers the UI shows. Runs without one (crashed before the end, stopped before the
calls, or older than the artifact) show ``-``. Prefect (and :mod:`tasks.report`, which imports it)
is imported when the command runs, so ``grmux --help`` stays light.
"""

from __future__ import annotations

import argparse
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
    )
    from prefect.client.schemas.sorting import FlowRunSort

    from tasks.report import counts_key, counts_of

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name={"any_": [FLOW_NAME]}),
                                     sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit)
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


def _status(args: argparse.Namespace) -> ExitCode:
    from rich.console import Console
    from rich.table import Table

    from tasks.report import COUNT_FIELDS

    try:
        runs = last_runs(args.limit)
    except Exception as error:  # connection refused, wrong URL, no server: say so in one line
        code = exit_code_for(error)
        if code is not ExitCode.UNAVAILABLE:
            raise
        from prefect.settings import PREFECT_API_URL

        print(f"grmux: cannot read runs from the Prefect API at {PREFECT_API_URL.value() or '(PREFECT_API_URL unset)'}: "
              f"{type(error).__name__}: {error}. Start the server or set PREFECT_API_URL.")
        return code
    table = Table(title=f"last {args.limit} runs of flow {FLOW_NAME}")
    for column in ("start", "run", "state", *COUNT_FIELDS):
        table.add_column(column, justify="right" if column in COUNT_FIELDS else "left")
    for run in runs:
        counts = run["counts"] or {}
        cells = [str(counts[field]) if field in counts else "-" for field in COUNT_FIELDS]
        table.add_row(run["start"][:19], run["name"], run["state"], *cells)
    Console().print(table)
    return ExitCode.OK


def register(subparsers: argparse._SubParsersAction) -> None:
    status = subparsers.add_parser(
        "status", help="the last runs of the grmux flow and their counts (Prefect API)",
        description="Reads PREFECT_API_URL. Counts come from each run's counts artifact.")
    status.add_argument("--limit", type=int, default=10, help="how many runs (default 10)")
    status.set_defaults(func=_status)
