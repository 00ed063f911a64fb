"""How one call ends: its :class:`Status` and the :class:`CallOutcome` that carries the reason.

Every call of a cycle ends in exactly one outcome (nothing is lost silently): ``muxed``,
``skipped`` (already muxed), ``pending`` (no screen recording yet, or deferred by the cycle
deadline), ``cancelled`` (the run was cancelled before or while the call ran: nothing of it was
registered, the next run does it) or ``failed`` with a one-sentence reason. Outcomes travel as plain data (task results, artifacts, the log file), so
:meth:`CallOutcome.to_data` and :meth:`CallOutcome.from_data` are the one round trip.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """The end state of one call. A member *is* its string (``Status.MUXED == "muxed"``)."""

    MUXED = "muxed"
    SKIPPED = "skipped"
    PENDING = "pending"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class CallOutcome:
    """How one call ended. Plain data: it goes into artifacts, logs and the task result cache."""

    call_id: str
    status: Status
    reason: str = ""
    media_id: str = ""
    output: str = ""
    duration_s: float = 0.0
    reencoded_spans: int = 0
    sources: tuple[str, ...] = ()
    #: muxed calls: seconds from the call's end to its registration in RWS (see grmux_core.metrics)
    latency_s: float | None = None

    def __post_init__(self) -> None:
        # Outcomes are rebuilt from stored data (plain strings, lists): normalise, or fail loudly.
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "sources", tuple(self.sources))

    def to_data(self) -> dict[str, Any]:
        """JSON-able fields (status as its string, sources as a list), for results and artifacts."""
        return dataclasses.asdict(self) | {"status": self.status.value, "sources": list(self.sources)}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> CallOutcome:
        """The inverse of :meth:`to_data`."""
        return cls(**data)

    def log_line(self) -> str:
        """The one line per call outcome of the log file."""
        text = f"call {self.call_id} {self.status}"
        if self.media_id:
            text += f" as {self.media_id} ({self.duration_s:.3f} s) at {self.output}"
        if self.reason:
            text += f": {self.reason}"
        return text


def first_line(error: BaseException) -> str:
    """An error's first line: the sentence an operator reads in the summary table."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
