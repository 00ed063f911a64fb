"""Outcomes of a run, streamed: counted, written to a CSV file, and only a capped sample kept.

A backfill run can see hundreds of thousands of calls; holding one :class:`CallOutcome` per call
(and one summary-table row per call not muxed) grows the flow run's memory with the window. The
tally keeps a fixed amount whatever the window: the counts per status, the first
:data:`ROW_CAP` failures and the first :data:`ROW_CAP` other calls not muxed (the summary table's
rows, failures first), and the first :data:`ROW_CAP` outcomes of any status (the run's returned
data). Every outcome goes to the CSV file as it arrives, so the full list is on disk, not in memory.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from grmux_core.metrics import Backlog
from grmux_core.outcome import CallOutcome, Status

#: How many rows of each kind a run keeps in memory (summary table rows, returned outcomes).
ROW_CAP = 200
CSV_FIELDS = ("call_id", "status", "reason", "media_id", "output", "duration_s", "reencoded_spans")


class OutcomeTally:
    """Counts every outcome, writes each to ``csv_path`` (when given), keeps capped samples."""

    def __init__(self, csv_path: Path | None = None, cap: int = ROW_CAP):
        self.cap = cap
        self.found: Counter[Status] = Counter()
        self.failed_rows: list[CallOutcome] = []
        self.other_rows: list[CallOutcome] = []
        self.sample: list[CallOutcome] = []
        self.muxed: list[CallOutcome] = []  # their latencies make the latency table and percentiles
        self.call_ends: Mapping[str, datetime] = {}  # set by the caller: the listed calls' ends
        self._oldest_pending_end: datetime | None = None
        self._pending_count = 0
        self.csv_path = csv_path
        self._file: IO[str] | None = None
        self._writer: Any = None
        if csv_path is not None:
            csv_path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(csv_path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed by close()
            self._writer = csv.writer(self._file)
            self._writer.writerow(CSV_FIELDS)

    def add(self, outcome: CallOutcome) -> None:
        self.found[outcome.status] += 1
        if len(self.sample) < self.cap:
            self.sample.append(outcome)
        if outcome.status == Status.MUXED and outcome.latency_s is not None:
            self.muxed.append(outcome)
        if outcome.status == Status.PENDING and outcome.call_id in self.call_ends:
            end = self.call_ends[outcome.call_id]
            if self._oldest_pending_end is None or end < self._oldest_pending_end:
                self._oldest_pending_end = end
            self._pending_count += 1
        if outcome.status == Status.FAILED:
            if len(self.failed_rows) < self.cap:
                self.failed_rows.append(outcome)
        elif outcome.status != Status.MUXED and len(self.other_rows) < self.cap:
            self.other_rows.append(outcome)
        if self._writer is not None:
            self._writer.writerow([getattr(outcome, name) for name in CSV_FIELDS])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def total(self) -> int:
        return sum(self.found.values())

    def counts(self) -> dict[str, int]:
        return {status.value: self.found.get(status, 0) for status in Status}

    def not_muxed(self) -> int:
        return self.total - self.found.get(Status.MUXED, 0)

    def backlog(self, now: datetime) -> Backlog:
        """The pending calls with a known end, and the oldest one's age at ``now``."""
        if self._oldest_pending_end is None:
            return Backlog(self._pending_count, None)
        return Backlog(self._pending_count, round((now - self._oldest_pending_end).total_seconds() / 3600, 2))

    def rows(self) -> list[CallOutcome]:
        """The summary table's rows: failures first, then skipped/pending calls, at most ``cap``."""
        failed = sorted(self.failed_rows, key=lambda o: o.call_id)
        others = sorted(self.other_rows, key=lambda o: (o.status, o.call_id))
        return (failed + others)[: self.cap]
