"""``grmux status``: the last runs of the ``grmux`` flow and their counts, from the Prefect API.

The counts come from each run's summary table artifact (see :mod:`tasks.report`), so they are the
same numbers the UI shows. Runs that crashed before their summary show ``-``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from grmux_core.pipeline import STATUSES

FLOW_NAME = "grmux"


def counts_from_table(data: Any) -> dict[str, int]:
    """The per-status counts of a summary table artifact (its ``(status)`` rows)."""
    rows = json.loads(data) if isinstance(data, str) else data
    found: dict[str, int] = {}
    for row in rows or []:
        call = str(row.get("call", ""))
        if call.startswith("(") and row.get("status") in STATUSES:
            found[row["status"]] = int(row.get("count", 0))
    return found


def last_runs(limit: int = 10) -> list[dict[str, Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterType,
        FlowFilter,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name={"any_": [FLOW_NAME]}),
                                     sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit)
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[r.id for r in runs]),
            type=ArtifactFilterType(any_=["table"]))) if runs else []
    by_run = {a.flow_run_id: counts_from_table(a.data) for a in artifacts if a.key and a.key.endswith("-summary")}
    out = []
    for run in runs:
        start = run.start_time or run.expected_start_time
        out.append({"name": run.name, "state": run.state_name or "", "start": start.isoformat() if start else "",
                    "message": (run.state.message if run.state else "") or "", "counts": by_run.get(run.id)})
    return out


def _status(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    try:
        runs = last_runs(args.limit)
    except Exception as error:  # connection refused, wrong URL, no server: say so in one line
        from prefect.settings import PREFECT_API_URL

        print(f"grmux: cannot read runs from the Prefect API at {PREFECT_API_URL.value() or '(PREFECT_API_URL unset)'}: "
              f"{type(error).__name__}: {error}. Start the server or set PREFECT_API_URL.")
        return 2
    table = Table(title=f"last {args.limit} runs of flow {FLOW_NAME}")
    for column in ("start", "run", "state", *STATUSES):
        table.add_column(column, justify="right" if column in STATUSES else "left")
    for run in runs:
        counts = run["counts"]
        cells = [str(counts.get(s, 0)) if counts is not None else "-" for s in STATUSES]
        table.add_row(run["start"][:19], run["name"], run["state"], *cells)
    Console().print(table)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    status = subparsers.add_parser("status", help="the last runs of the grmux flow and their counts (Prefect API)",
                                   description="Reads PREFECT_API_URL. Counts come from each run's summary artifact.")
    status.add_argument("--limit", type=int, default=10, help="how many runs (default 10)")
    status.set_defaults(func=_status)
