"""Data-quality checks of a window's metadata, with great-expectations on a pandas frame.

RWS metadata is retried upstream for days and edited by several systems, so a window can hold
records that would make the muxer do something wrong: the same call twice, a stop before its
start, no audio, a call outside the window we asked for. Those rows are reported (which rule, per
call) and not processed; the rest of the window goes on. A media type grmux does not know by name
is only a *warning*: what the bytes are is ffprobe's call, and field RWS write ``audio/mpeg3``,
``audio/x-wav`` and more.

GX and pandas take seconds to import, so both are imported inside :func:`validate_metadata`
only: nothing on the mux path pays for them. GX runs in an ephemeral context (nothing written to
disk) with analytics and progress bars off.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from grmux_core.contract import KNOWN_MEDIA_TYPES
from grmux_core.models import CallRecording, ScreenRecording, epoch_ms
from grmux_core.windows import Window


@dataclass(frozen=True)
class Rule:
    """One expectation and the sentence an operator reads when a call breaks it."""

    name: str
    check: str  # what is expected, for the report's table
    reason: str  # why a call failing it is not processed, for the call's row


RULES: tuple[Rule, ...] = (
    Rule("unique_call_id", "each call id appears once", "the call id appears more than once in the window"),
    Rule("stop_after_start", "stopTime is after startTime", "the call's stopTime is not after its startTime"),
    Rule("has_audio", "the call has audio", "the call has no audio media file"),
    Rule("screen_spans_valid", "screen media stop after they start",
         "a screen media file does not stop after it starts"),
    Rule("starts_in_window", "the call started inside the window", "the call started outside the requested window"),
    Rule("stops_in_window", "the call stopped before the window's end",
         "the call stopped after the end of the requested window"),
)


@dataclass(frozen=True)
class RuleOutcome:
    rule: Rule
    success: bool
    unexpected: int


@dataclass
class QualityReport:
    """What the checks found: per rule, and per rejected call the reasons."""

    checked: int
    outcomes: list[RuleOutcome] = field(default_factory=list)
    rejected: dict[str, list[str]] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return not self.rejected

    def markdown(self, title: str = "Metadata quality") -> str:
        """A report for a Prefect markdown artifact (no secrets: only ids and rule names)."""
        lines = [f"## {title}", "", f"{self.checked} calls checked, {len(self.rejected)} rejected.", "",
                 "| check | result | calls failing |", "|---|---|---|"]
        for outcome in self.outcomes:
            mark = "pass" if outcome.success else "**fail**"
            lines.append(f"| {outcome.rule.check} (`{outcome.rule.name}`) | {mark} | {outcome.unexpected} |")
        if self.rejected:
            lines += ["", "### Rejected calls (not processed)", "", "| call id | reasons (rule) |", "|---|---|"]
            for call_id, reasons in sorted(self.rejected.items()):
                lines.append(f"| `{call_id}` | {'; '.join(reasons)} |")
        if self.warnings:
            lines += ["", "### Warnings (processed; ffprobe decides)", "", "| call id | warnings |", "|---|---|"]
            for call_id, notes in sorted(self.warnings.items()):
                lines.append(f"| `{call_id}` | {'; '.join(notes)} |")
        return "\n".join(lines)


def metadata_rows(
    calls: Iterable[CallRecording], screens: Mapping[str, ScreenRecording]
) -> list[dict[str, Any]]:
    """One plain row per call: the values the rules look at."""
    rows = []
    for index, call in enumerate(calls):
        screen = screens.get(call.id)
        screen_files = screen.source_files if screen else ()
        media = list(call.media_files) + list(screen_files)
        rows.append({
            "row": index,
            "call_id": call.id,
            "start_ms": epoch_ms(call.start),
            "stop_ms": epoch_ms(call.stop),
            "audio_files": len(call.audio_files),
            "unknown_types": sorted({m.type for m in media if m.type.lower() not in KNOWN_MEDIA_TYPES}),
            "bad_screen_spans": sum(1 for m in screen_files if m.stop <= m.start),
        })
    return rows


def _expectations(window: Window | None) -> list[tuple[Rule, Any]]:
    import great_expectations.expectations as gxe

    by_name = {rule.name: rule for rule in RULES}
    pairs = [
        (by_name["unique_call_id"], gxe.ExpectColumnValuesToBeUnique(column="call_id")),
        (by_name["stop_after_start"], gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="stop_ms", column_B="start_ms")),
        (by_name["has_audio"], gxe.ExpectColumnValuesToBeBetween(column="audio_files", min_value=1)),
        (by_name["screen_spans_valid"], gxe.ExpectColumnValuesToBeInSet(column="bad_screen_spans", value_set=[0])),
    ]
    if window is not None:
        lo, hi = epoch_ms(window.start), epoch_ms(window.end)
        pairs.append((by_name["starts_in_window"],
                      gxe.ExpectColumnValuesToBeBetween(column="start_ms", min_value=lo, max_value=hi)))
        pairs.append((by_name["stops_in_window"],
                      gxe.ExpectColumnValuesToBeBetween(column="stop_ms", max_value=hi)))
    return pairs


def validate_metadata(rows: list[dict[str, Any]], window: Window | None = None) -> QualityReport:
    """Run the rules over ``rows`` (see :func:`metadata_rows`); ``window`` None = backfill (no window rules)."""
    report = QualityReport(checked=len(rows))
    if not rows:
        return report
    for row in rows:
        if row["unknown_types"]:
            report.warnings[row["call_id"]] = [f"media type {kind} is not one grmux knows by name (ffprobe decides "
                                               "what the bytes are)" for kind in row["unknown_types"]]
    rows = [{k: v for k, v in row.items() if k != "unknown_types"} for row in rows]
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import pandas as pd
    from great_expectations.data_context.types.base import ProgressBarsConfig

    frame = pd.DataFrame(rows)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (context.data_sources.add_pandas("grmux_metadata")
             .add_dataframe_asset("calls")
             .add_batch_definition_whole_dataframe("window")
             .get_batch(batch_parameters={"dataframe": frame}))
    pairs = _expectations(window)
    suite = context.suites.add(gx.ExpectationSuite(name="grmux_metadata", expectations=[e for _, e in pairs]))
    result = batch.validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["row"]}
    )
    by_type = {}
    for rule, expectation in pairs:
        by_type.setdefault((expectation.expectation_type, _column_of(expectation)), rule)
    call_ids = frame["call_id"].tolist()
    for validation in result.results:
        config = validation.expectation_config
        rule = by_type[(config.type, config.kwargs.get("column") or config.kwargs.get("column_A"))]
        unexpected = validation.result.get("unexpected_index_list") or []
        report.outcomes.append(RuleOutcome(rule, bool(validation.success), len(unexpected)))
        for entry in unexpected:
            call_id = call_ids[int(entry["row"])]
            reasons = report.rejected.setdefault(call_id, [])
            reason = f"{rule.reason} (`{rule.name}`)"
            if reason not in reasons:
                reasons.append(reason)
    order = {rule.name: i for i, rule in enumerate(RULES)}
    report.outcomes.sort(key=lambda o: order[o.rule.name])
    return report


def _column_of(expectation: Any) -> str:
    return getattr(expectation, "column", None) or expectation.column_A
