"""Listing one cycle's calls: by backfill query, by split sub-intervals, or by window; one shard."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from grmux_core.errors import RecordError
from grmux_core.models import CallRecording
from grmux_core.rws import ListStats, RwsClient
from grmux_core.windows import Shard, SubInterval, Window


@dataclass
class Listing:
    """The calls of one cycle after listing and shard filtering, plus what could not be parsed,
    and what the listing cost (``stats``: list requests and narrowings, for the counts artifact)."""

    calls: list[CallRecording] = field(default_factory=list)
    bad_records: list[RecordError] = field(default_factory=list)
    other_shard: int = 0
    stats: ListStats = field(default_factory=ListStats)

    def take(self, records: Iterator[CallRecording | RecordError], keeps: Callable[[datetime], bool],
             shard: Shard | None) -> None:
        """Add the records ``keeps`` accepts by start time; count other shards' calls, keep bad records."""
        for record in records:
            if isinstance(record, RecordError):
                if shard is None or record.call_id is None or shard.owns(record.call_id):
                    self.bad_records.append(record)
            elif not keeps(record.start):
                continue
            elif shard is not None and not shard.owns(record.id):
                self.other_shard += 1
            else:
                self.calls.append(record)


def _any_time(_start: datetime) -> bool:
    return True


def list_calls(
    rws: RwsClient,
    *,
    window: Window | None,
    pieces: Iterable[SubInterval] | None = None,
    query: str | None = None,
    shard: Shard | None = None,
) -> Listing:
    """List the cycle's calls: by backfill ``query``, by split ``pieces``, or by ``window``.

    With pieces, each keeps only the calls that started inside it, so a call is found once.
    Calls of other shards are counted, not kept. Malformed records are kept as RecordErrors. Every
    mode narrows an answer that may be truncated (:func:`~grmux_core.rws.list_pages`) and raises
    :class:`~grmux_core.errors.ListingIncomplete` where it cannot: the cycle never goes on with a
    partial listing.
    """
    listing = Listing()
    stats = listing.stats
    if query is not None:
        listing.take(rws.list_by_query(query, stats=stats), _any_time, shard)
    elif pieces:
        for piece in pieces:
            listing.take(rws.list_recordings(piece.query_start, piece.query_end, stats=stats), piece.keeps, shard)
    elif window is not None:
        listing.take(rws.list_recordings(window.start, window.end, stats=stats), _any_time, shard)
    return listing
