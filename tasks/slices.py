"""The Prefect side of a fanned-out backfill: start a slice's child run, read child runs back.

Child runs are found again by their tags, not by anything the parent holds: every child carries
the range tag (one per backfill range and config, :func:`grmux_core.backfill.range_tag`) and its
slice's tag (:meth:`grmux_core.backfill.Slice.tag`). A rerun of the parent, a retry, or a second
parent started by hand therefore sees the same children. The idempotency key ``<slice>-<attempt>``
makes two parents racing on the same slice share one child run instead of muxing it twice.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterTags,
)
from prefect.deployments import run_deployment

from grmux_core.backfill import SLICE_TAG, ChildRun, Slice
from tasks.report import counts_key, counts_of

SLICE_DEPLOYMENT = "grmux/backfill-slice"
PAGE = 200


def start_slice(piece: Slice, attempt: int, parameters: dict[str, Any], tags: list[str],
                deployment: str = SLICE_DEPLOYMENT) -> str:
    """Create the slice's child deployment run (linked to this run as a subflow); its id.

    ``timeout=0``: the parent does not block on one child; it polls all of its children at once.
    """
    flow_run = run_deployment(deployment, parameters=parameters, timeout=0, as_subflow=True,
                              tags=[*tags, piece.tag()], idempotency_key=f"{piece.key()}-{attempt}")
    return str(flow_run.id)


def _counts(client: Any, run_ids: list[UUID]) -> dict[str, dict[str, int]]:
    if not run_ids:
        return {}
    artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=run_ids), key=ArtifactFilterKey(any_=[counts_key("backfill")])))
    return {str(a.flow_run_id): counts_of(a.data) for a in artifacts}


def _child_runs(client: Any, flow_runs: list[Any]) -> list[tuple[Any, ChildRun]]:
    finished = [r.id for r in flow_runs if r.state and r.state.is_final()]
    counts = _counts(client, finished)
    return [(r, ChildRun(str(r.id), r.state.type.value if r.state else "SCHEDULED", counts.get(str(r.id))))
            for r in flow_runs]


def earlier_children(range_tag: str) -> dict[str, list[ChildRun]]:
    """Every child run of the range so far, by slice tag (one query per page of runs)."""
    found: dict[str, list[ChildRun]] = defaultdict(list)
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            page = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[range_tag])),
                                         limit=PAGE, offset=offset)
            for flow_run, child in _child_runs(client, page):
                for tag in flow_run.tags:
                    if tag.startswith(SLICE_TAG):
                        found[tag].append(child)
            if len(page) < PAGE:
                return found
            offset += PAGE


def poll_children(run_ids: list[str]) -> dict[str, tuple[ChildRun, str]]:
    """The children's states now (and, for finished ones, their counts and state message)."""
    out: dict[str, tuple[ChildRun, str]] = {}
    with get_client(sync_client=True) as client:
        for start in range(0, len(run_ids), PAGE):
            ids = [UUID(i) for i in run_ids[start:start + PAGE]]
            page = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)), limit=PAGE)
            for flow_run, child in _child_runs(client, page):
                out[child.id] = (child, (flow_run.state.message if flow_run.state else "") or "")
    return out
