"""What a run leaves in the Prefect UI: the calls not muxed, the cycle's counts, a data-quality report, progress.

Two table artifacts per run, so each stays one kind of row:

* ``grmux-<mode>-summary`` — one row per call that did not end muxed, with its status and reason;
* ``grmux-<mode>-counts`` — one row: how many calls ended in each status, how many were listed
  and how many list requests the listing needed (:data:`COUNT_FIELDS`), then the cycle's latency
  and backlog figures (:data:`grmux_core.metrics.METRIC_FIELDS`). ``grmux status`` reads this one;
  a new figure of the cycle is one more field here (and a column there);
* ``grmux-<mode>-latency`` — one row per muxed call: its end, its registration, the delay between.
  Prefect keeps every version of an artifact key, so these rows are the history
  ``grmux status --since 7d`` computes the daily p50/p95 from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from grmux_core.backfill import Board
from grmux_core.metrics import METRIC_FIELDS
from grmux_core.outcome import CallOutcome, Status
from grmux_core.tally import OutcomeTally

#: The columns of the counts artifact, in order: one per call status, then the calls listed for
#: this shard (malformed records included), then the list requests sent to RWS (next links and
#: narrowings of possibly truncated answers included). Every listed call ends with exactly one
#: status, so ``listed`` equals the sum of the statuses; a difference would be a call lost on the way.
COUNT_FIELDS: tuple[str, ...] = (*(status.value for status in Status), "listed", "list_requests")


def artifact_key(*parts: str) -> str:
    """Artifact keys allow only lowercase letters, digits and dashes."""
    text = "-".join(parts).lower()
    return "".join(c if c.isalnum() or c == "-" else "-" for c in text).strip("-")


def summary_key(mode: str) -> str:
    return artifact_key("grmux", mode, "summary")


def counts_key(mode: str) -> str:
    return artifact_key("grmux", mode, "counts")


def counts_of(data: Any) -> dict[str, Any]:
    """The one row of a counts table artifact (the API gives a table's rows as JSON text)."""
    rows = json.loads(data) if isinstance(data, str) else data
    return dict(rows[0]) if rows else {}


def latency_key(mode: str) -> str:
    return artifact_key("grmux", mode, "latency")


def latency_rows(outcomes: Iterable[CallOutcome]) -> list[dict[str, object]]:
    """One row per muxed call that carries a latency (the history of ``grmux status --since``)."""
    return [{"call": o.call_id, "latency s": o.latency_s} for o in sorted(outcomes, key=lambda o: o.call_id)
            if o.status == Status.MUXED and o.latency_s is not None]


def summary_rows(outcomes: Iterable[CallOutcome]) -> list[dict[str, str]]:
    """One row per call given, with its status and reason."""
    return [{"call": o.call_id, "status": o.status.value, "reason": o.reason} for o in outcomes]


def summary_description(mode: str, label: str, tally: OutcomeTally, figures: dict[str, object] | None = None) -> str:
    """What the capped table shows, what it leaves out, and where the full list is."""
    shown = len(tally.rows())
    text = f"{label}: {tally.not_muxed()} of {tally.total} calls not muxed (the counts are in {counts_key(mode)})"
    if figures:
        text += "; " + ", ".join(f"{name} {figures[name]}" for name in METRIC_FIELDS if name in figures)
    if shown < tally.not_muxed():
        text += f"; the first {shown} are shown (failures first), {tally.not_muxed() - shown} more are counted only"
    if tally.csv_path is not None:
        text += f". Every call's outcome: [{tally.csv_path.name}]({tally.csv_path.as_uri()}) ({tally.csv_path})"
    return text


def publish_summary(mode: str, label: str, tally: OutcomeTally, figures: dict[str, object] | None = None) -> None:
    """The calls not muxed (at most the tally's cap, failures first) and a link to the full CSV."""
    create_table_artifact(summary_rows(tally.rows()), key=summary_key(mode),
                          description=summary_description(mode, label, tally, figures))


def publish_counts(mode: str, label: str, row: dict[str, int | float | str]) -> None:
    description = f"{label}: " + ", ".join(f"{row[field]} {field}" for field in (*COUNT_FIELDS, *METRIC_FIELDS)
                                           if field in row)
    create_table_artifact([row], key=counts_key(mode), description=description)


def publish_latency(mode: str, label: str, outcomes: list[CallOutcome]) -> None:
    rows = latency_rows(outcomes)
    if rows:
        create_table_artifact(rows, key=latency_key(mode), description=f"{label}: latency of {len(rows)} muxed call(s), "
                              "call end to registration")


def publish_quality(mode: str, markdown: str) -> None:
    create_markdown_artifact(markdown, key=artifact_key("grmux", mode, "quality"),
                             description="metadata checks of the window (great-expectations)")


class Progress:
    """A progress artifact updated as calls finish (at most every ``step`` percent)."""

    def __init__(self, total: int, step: float = 5.0):
        self.total = max(total, 1)
        self.step = step
        self.done = 0
        self._shown = 0.0
        self._id: UUID = create_progress_artifact(0.0, description=f"calls muxed or tried, of {total}")

    def advance(self, n: int = 1) -> None:
        self.done += n
        pct = min(100.0, 100.0 * self.done / self.total)
        if pct - self._shown >= self.step or pct >= 100.0:
            update_progress_artifact(self._id, pct)
            self._shown = pct


def slices_key(mode: str) -> str:
    return artifact_key("grmux", mode, "slices")


class SliceProgress:
    """The parent run's progress artifact: the share of slices finished, and the board's tally."""

    def __init__(self, board: Board):
        self.board = board
        self._id: UUID = create_progress_artifact(board.percent(), description=board.describe())
        self._shown = (board.percent(), board.describe())

    def update(self) -> None:
        now = (self.board.percent(), self.board.describe())
        if now != self._shown:
            update_progress_artifact(self._id, now[0], description=now[1])
            self._shown = now


def publish_slices(mode: str, label: str, board: Board) -> None:
    """One row per slice: its state, child run and counts (the parent's last word on each)."""
    create_table_artifact(board.table(), key=slices_key(mode), description=f"{label}: {board.describe()}")


def publish_timeline(call_id: str, plan: object, headline: str) -> None:
    """The call's alignment plan drawn to scale (SVG embedded in markdown) plus its span table.

    Published for calls that failed after planning or needed re-encoding: the two cases where an
    operator asks "what did grmux do with this call?".
    """
    from grmux_core.timeline import plan_markdown

    markdown = plan_markdown(plan, title=f"call {call_id}", embed_svg=True)
    create_markdown_artifact(f"**{headline}**\n\n{markdown}", key=artifact_key("grmux-call", call_id),
                             description=f"alignment plan of call {call_id}: {headline}")
