"""What a run leaves in the Prefect UI: a summary table, a data-quality report, progress."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from grmux_core.pipeline import MUXED, STATUSES, CallOutcome


def artifact_key(*parts: str) -> str:
    """Artifact keys allow only lowercase letters, digits and dashes."""
    text = "-".join(parts).lower()
    return "".join(c if c.isalnum() or c == "-" else "-" for c in text).strip("-")


def counts(outcomes: Iterable[CallOutcome]) -> dict[str, int]:
    found = Counter(o.status for o in outcomes)
    return {status: found.get(status, 0) for status in STATUSES}


def summary_rows(outcomes: list[CallOutcome]) -> list[dict[str, str]]:
    """Counts first, then one row per call that did not end muxed (with its reason)."""
    rows = [{"call": f"({status})", "status": status, "count": str(n), "reason": ""}
            for status, n in counts(outcomes).items()]
    for outcome in sorted(outcomes, key=lambda o: (o.status, o.call_id)):
        if outcome.status != MUXED:
            rows.append({"call": outcome.call_id, "status": outcome.status, "count": "1",
                         "reason": outcome.reason})
    return rows


def publish_summary(mode: str, label: str, outcomes: list[CallOutcome]) -> None:
    tally = counts(outcomes)
    description = f"{label}: " + ", ".join(f"{n} {status}" for status, n in tally.items())
    create_table_artifact(summary_rows(outcomes), key=artifact_key("grmux", mode, "summary"),
                          description=description)


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


def publish_timeline(call_id: str, plan: object, headline: str) -> None:
    """The call's alignment plan drawn to scale (SVG embedded in markdown) plus its span table.

    Published for calls that failed after planning or needed re-encoding: the two cases where an
    operator asks "what did grmux do with this call?".
    """
    from grmux_core.timeline import plan_markdown

    markdown = plan_markdown(plan, title=f"call {call_id}", embed_svg=True)
    create_markdown_artifact(f"**{headline}**\n\n{markdown}", key=artifact_key("grmux-call", call_id),
                             description=f"alignment plan of call {call_id}: {headline}")
