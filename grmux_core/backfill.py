"""A long time range cut into slices, and what a (re)run of the range does with each slice. PURE.

A backfill of months is run as one child deployment run per slice (an hour, a day), so every
worker of the pool takes slices and an interrupted backfill does not start over. This module
decides, without I/O:

* the slices of ``[since, until)`` (:func:`plan_slices`): each keeps the calls that *started*
  inside it and lists RWS up to ``interval_buffer_minutes`` after its end, so a call crossing a
  slice boundary is found by exactly one slice (the rule of the split window, see
  :mod:`grmux_core.windows`);
* each slice's identity (:meth:`Slice.key`): a hash of its bounds and filters, the same for every
  run of the same backfill; child runs carry it as a tag, which is how a rerun finds them;
* what a rerun does with a slice given its earlier child runs (:func:`verdict`): skip it (a run
  completed with nothing failed or pending), wait for it (a run is still going), or run it again.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from grmux_core.contract import LIST_END, LIST_START, query_time
from grmux_core.errors import ConfigError
from grmux_core.listing import Listing

#: The slice tag's prefix; the rest is :meth:`Slice.key`.
SLICE_TAG = "grmux-slice-"
TERMINAL = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


def parse_time(value: Any, name: str) -> datetime:
    """An ISO-8601 time (a date alone = its midnight), UTC when it has no zone."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ConfigError(f"{name} = {value!r} is not valid: allowed is an ISO-8601 time, "
                              "e.g. 2026-09-01 or 2026-09-01T00:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Slice:
    """One slice: keeps the calls with ``start <= call start < end``; lists up to ``end + buffer``."""

    start: datetime
    end: datetime
    filters: str = ""
    buffer_minutes: int = 0

    def keeps(self, call_start: datetime) -> bool:
        return self.start <= call_start < self.end

    def query(self, time_format: str = "epoch_ms") -> str:
        """The RWS list query of the slice: its times (with the buffer, in ``[htcc]
        list_time_format``) and the filters."""
        listed_until = self.end + timedelta(minutes=self.buffer_minutes)
        text = (f"{LIST_START}={quote(query_time(self.start, time_format))}"
                f"&{LIST_END}={quote(query_time(listed_until, time_format))}")
        return f"{text}&{self.filters}" if self.filters else text

    def key(self) -> str:
        """The same for every run of the same backfill (bounds and filters, not the buffer)."""
        text = f"{self.start.astimezone(UTC).isoformat()}|{self.end.astimezone(UTC).isoformat()}|{self.filters}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def tag(self) -> str:
        return SLICE_TAG + self.key()

    def label(self) -> str:
        fmt = "%Y-%m-%dT%H:%MZ"
        return f"{self.start.astimezone(UTC).strftime(fmt)}..{self.end.astimezone(UTC).strftime(fmt)}"


def plan_slices(since: datetime, until: datetime, slice_minutes: int, *, filters: str = "",
                buffer_minutes: int = 0) -> list[Slice]:
    """``[since, until)`` cut into consecutive slices of ``slice_minutes`` (the last may be shorter)."""
    if until <= since:
        raise ConfigError(f"until = {until.isoformat()} is not valid: allowed is a time after since "
                          f"({since.isoformat()})")
    if slice_minutes < 1:
        raise ConfigError(f"slice_minutes = {slice_minutes} is not valid: allowed is 1 or more")
    step = timedelta(minutes=slice_minutes)
    slices = []
    start = since
    while start < until:
        end = min(start + step, until)
        slices.append(Slice(start, end, filters.strip(), buffer_minutes))
        start = end
    return slices


#: bounds of a slice sized from a count: an hour at least (a flow run's start-up must be worth it),
#: a week at most (a slice's listing is held in its run's memory)
MIN_SLICE_MINUTES, MAX_SLICE_MINUTES = 60, 7 * 24 * 60


def slice_minutes_for(sampled_calls: int, sample_minutes: float, calls_per_slice: int) -> int:
    """The slice length (whole hours) that holds about ``calls_per_slice`` calls, from a count of
    ``sampled_calls`` over the first ``sample_minutes`` of the range (an empty sample: the longest)."""
    if calls_per_slice < 1:
        raise ConfigError(f"calls_per_slice = {calls_per_slice} is not valid: allowed is 1 or more")
    if sampled_calls <= 0:
        return MAX_SLICE_MINUTES
    minutes = calls_per_slice * sample_minutes / sampled_calls
    hours = max(1, int(minutes // 60))
    return max(MIN_SLICE_MINUTES, min(MAX_SLICE_MINUTES, hours * 60))


def narrow(listing: Listing, piece: Slice) -> Listing:
    """The listing with only the calls that started inside ``piece`` (the buffer's calls belong to
    the next slice). Malformed records are kept: without a start time they cannot be placed."""
    return dataclasses.replace(listing, calls=[call for call in listing.calls if piece.keeps(call.start)])


def range_tag(since: datetime, until: datetime, filters: str = "", config: str = "") -> str:
    """A tag shared by every child run of one backfill range of one config (found with one query),
    whatever the slice length: a rerun cut differently still sees the earlier children."""
    text = f"{config}|{since.astimezone(UTC).isoformat()}|{until.astimezone(UTC).isoformat()}|{filters.strip()}"
    return "grmux-backfill-" + hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ChildRun:
    """What the parent knows of one earlier child run of a slice."""

    id: str
    state: str  # a Prefect state type: SCHEDULED, PENDING, RUNNING, COMPLETED, FAILED, ...
    counts: dict[str, int] | None = None  # its counts artifact, once it finished

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL

    @property
    def clean(self) -> bool:
        """Completed with nothing failed and nothing pending: nothing left for a rerun to do."""
        return (self.state == "COMPLETED" and self.counts is not None
                and not self.counts.get("failed") and not self.counts.get("pending"))


class Action(StrEnum):
    SKIP = "skip"  # a clean run exists
    WAIT = "wait"  # a run is still going (a killed parent's child): follow it, start nothing
    RUN = "run"  # never run, or the last run failed / left calls pending


@dataclass(frozen=True)
class Verdict:
    action: Action
    run: ChildRun | None = None  # the run skipped or waited for
    attempt: int = 1  # the attempt number of a new run (its idempotency key)


def verdict(runs: Iterable[ChildRun]) -> Verdict:
    """What to do with a slice, given its earlier child runs (any order)."""
    runs = list(runs)
    for run in runs:
        if run.clean:
            return Verdict(Action.SKIP, run)
    for run in runs:
        if not run.finished:
            return Verdict(Action.WAIT, run)
    return Verdict(Action.RUN, attempt=len(runs) + 1)


class SliceStatus(StrEnum):
    TODO = "to do"
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "done earlier"
    FAILED = "failed"


@dataclass
class SliceRow:
    slice: Slice
    status: SliceStatus = SliceStatus.TODO
    run_id: str = ""
    counts: dict[str, int] | None = None
    reason: str = ""


class Board:
    """The parent's view of every slice: one row each, the totals, the progress fraction."""

    def __init__(self, slices: Iterable[Slice]):
        self.rows = {s.key(): SliceRow(s) for s in slices}

    def set(self, piece: Slice, status: SliceStatus, *, run_id: str = "", counts: dict[str, int] | None = None,
            reason: str = "") -> None:
        row = self.rows[piece.key()]
        row.status, row.reason = status, reason
        row.run_id = run_id or row.run_id
        row.counts = counts if counts is not None else row.counts

    def tally(self) -> dict[str, int]:
        found = {status.value: 0 for status in SliceStatus}
        for row in self.rows.values():
            found[row.status.value] += 1
        return found

    def finished(self) -> int:
        return sum(1 for r in self.rows.values() if r.status in (SliceStatus.DONE, SliceStatus.SKIPPED,
                                                                 SliceStatus.FAILED))

    def percent(self) -> float:
        return 100.0 * self.finished() / max(1, len(self.rows))

    def failed(self) -> list[SliceRow]:
        return [r for r in self.rows.values() if r.status == SliceStatus.FAILED]

    def call_counts(self, fields: Iterable[str]) -> dict[str, int]:
        """The calls of every finished slice, summed per field (slices done earlier included)."""
        fields = list(fields)
        total = dict.fromkeys(fields, 0)
        for row in self.rows.values():
            for name in fields:
                total[name] += int((row.counts or {}).get(name, 0))
        return total

    def describe(self) -> str:
        tally = self.tally()
        return (f"slices: {tally['done'] + tally['done earlier']} done ({tally['done earlier']} earlier), "
                f"{tally['running']} running, {tally['failed']} failed, {tally['to do']} to do, "
                f"of {len(self.rows)}")

    def table(self) -> list[dict[str, Any]]:
        out = []
        for row in self.rows.values():
            counts = row.counts or {}
            out.append({"slice": row.slice.label(), "status": row.status.value, "run": row.run_id,
                        **{k: counts.get(k, "") for k in ("muxed", "skipped", "pending", "failed", "listed")},
                        "reason": row.reason})
        return out
