"""The cycle's triage: which listed calls end from their metadata alone, and which need muxing.

Used by the flow and by ``benchmarks/pipeline_overhead.py`` alike, so the benchmark measures the
same decisions the flow makes. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from grmux_core.errors import RecordError
from grmux_core.listing import Listing
from grmux_core.models import CallRecording, ScreenRecording, is_already_muxed, source_media_ids
from grmux_core.outcome import CallOutcome, Status


def classify(call: CallRecording, screen: ScreenRecording | RecordError | None) -> CallOutcome | None:
    """The outcome decided from metadata alone, or ``None`` when the call needs muxing."""
    if isinstance(screen, RecordError):
        return CallOutcome(call.id, Status.FAILED, f"its screen recording metadata is malformed: {screen}")
    if screen is None or not [m for m in screen.source_files if m.is_video]:
        return CallOutcome(call.id, Status.PENDING, "no screen recording yet")
    if is_already_muxed(call, screen):
        return CallOutcome(call.id, Status.SKIPPED, "already muxed",
                           sources=tuple(sorted(source_media_ids(call, screen))))
    return None


def work_key(call: CallRecording, screen: ScreenRecording) -> str:
    """Identity of one unit of work: the call and its current sources (new late media → new key)."""
    digest = hashlib.sha256("\n".join(sorted(source_media_ids(call, screen))).encode()).hexdigest()[:16]
    return f"grmux-{call.id}-{digest}"


@dataclass
class Triage:
    """The outcomes decided before muxing, and the calls left to mux with their work keys."""

    outcomes: list[CallOutcome] = field(default_factory=list)
    to_mux: list[tuple[CallRecording, str]] = field(default_factory=list)


def triage(listing: Listing, screens: Mapping[str, ScreenRecording | RecordError],
           rejected: Mapping[str, Sequence[str]]) -> Triage:
    """Malformed records and calls the metadata checks ``rejected`` fail; then :func:`classify`."""
    result = Triage([CallOutcome(bad.call_id or "<no id>", Status.FAILED, f"its metadata is malformed: {bad}")
                     for bad in listing.bad_records])
    for call in listing.calls:
        if call.id in rejected:
            result.outcomes.append(CallOutcome(call.id, Status.FAILED, "rejected by the metadata checks: "
                                               + "; ".join(rejected[call.id])))
            continue
        screen = screens.get(call.id)
        decided = classify(call, screen)
        if decided is not None:
            result.outcomes.append(decided)
        else:
            assert isinstance(screen, ScreenRecording)
            result.to_mux.append((call, work_key(call, screen)))
    return result
