"""Time windows, their split into sub-intervals, and shard membership.

The window of one cycle is ``[now - window_past, now - window_past_older_than]``. RWS selects
calls that *started* at or after ``startTime`` and *ended* at or before ``endTime``, so a call that
crosses a sub-interval boundary would be listed by two neighbouring sub-intervals (or by none).
The split therefore lists each sub-interval with a buffer after its end (the longest expected call)
and keeps only the calls that started inside it: every call that starts in the window and lasts at
most ``interval_buffer_minutes`` is selected by exactly one sub-interval.

Sharding: a call belongs to shard ``crc32(call id) mod total_muxers``. A backup instance covers the
shard of the *next* primary, so one dead primary is always covered by somebody.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from grmux_core.errors import ConfigError

MIN_SPLIT_INTERVAL_MINUTES = 720


@dataclass(frozen=True)
class Window:
    """A closed time range ``[start, end]`` in UTC."""

    start: datetime
    end: datetime

    @property
    def minutes(self) -> float:
        return (self.end - self.start).total_seconds() / 60

    def label(self) -> str:
        """Short text for run names: ``2026-11-27T16:00Z..2026-11-28T04:00Z``."""
        fmt = "%Y-%m-%dT%H:%MZ"
        return f"{self.start.astimezone(UTC).strftime(fmt)}..{self.end.astimezone(UTC).strftime(fmt)}"


@dataclass(frozen=True)
class SubInterval:
    """One piece of a split window.

    ``start``/``end`` bound the calls this piece *keeps* (by call start, ``start <= t < end``, and
    ``t <= end`` for the last piece); ``query_start``/``query_end`` are what is asked of RWS.
    """

    start: datetime
    end: datetime
    query_start: datetime
    query_end: datetime
    last: bool = False

    def keeps(self, call_start: datetime) -> bool:
        """Whether this piece owns a call that started at ``call_start``."""
        if self.last:
            return self.start <= call_start <= self.end
        return self.start <= call_start < self.end


def window_at(now: datetime, window_past: int, window_past_older_than: int = 0) -> Window:
    """The window of a cycle that runs (or was scheduled) at ``now``.

    ``now`` must be timezone-aware; flows pass the run's *scheduled* start so a late run still
    covers the window it was scheduled for.
    """
    if now.tzinfo is None:
        raise ValueError("window_at needs a timezone-aware datetime")
    if window_past_older_than >= window_past:
        raise ConfigError(
            f"[processing] window_past_older_than = {window_past_older_than} is not valid: allowed is a "
            f"value below window_past ({window_past})"
        )
    now = now.astimezone(UTC)
    return Window(now - timedelta(minutes=window_past), now - timedelta(minutes=window_past_older_than))


def split_problems(window_minutes: float, max_interval: object, buffer: object) -> list[str]:
    """The split rules of the spec, as messages (empty when the values are usable)."""
    problems: list[str] = []
    if isinstance(max_interval, int):
        upper = window_minutes / 2
        if not MIN_SPLIT_INTERVAL_MINUTES <= max_interval <= upper:
            problems.append(
                f"[processing] max_interval_minutes = {max_interval} is not valid: allowed is "
                f"{MIN_SPLIT_INTERVAL_MINUTES} ≤ max_interval_minutes ≤ window/2 = {upper:g} "
                f"(window = window_past - window_past_older_than = {window_minutes:g} minutes); "
                f"splitting needs a window of at least {2 * MIN_SPLIT_INTERVAL_MINUTES} minutes"
            )
        if isinstance(buffer, int) and not 1 <= buffer < max_interval:
            problems.append(
                f"[processing] interval_buffer_minutes = {buffer} is not valid: allowed is "
                f"1 ≤ interval_buffer_minutes < max_interval_minutes ({max_interval})"
            )
    return problems


def split_window(window: Window, max_interval_minutes: int, interval_buffer_minutes: int) -> list[SubInterval]:
    """Cut ``window`` into consecutive sub-intervals of ``max_interval_minutes``.

    Each lists with ``startTime = its start`` and ``endTime = min(its end + buffer, window end)``
    and keeps the calls that started inside it. Raises :class:`ConfigError` when the values break
    the spec's rules (720 ≤ max ≤ window/2, 1 ≤ buffer < max).
    """
    problems = split_problems(window.minutes, max_interval_minutes, interval_buffer_minutes)
    if problems:
        raise ConfigError(problems)
    step = timedelta(minutes=max_interval_minutes)
    buffer = timedelta(minutes=interval_buffer_minutes)
    pieces: list[SubInterval] = []
    start = window.start
    while start < window.end:
        end = min(start + step, window.end)
        last = end >= window.end
        pieces.append(SubInterval(start, end, start, min(end + buffer, window.end), last))
        start = end
    return pieces


# --------------------------------------------------------------------------------------------
# Sharding


@dataclass(frozen=True)
class Shard:
    """The calls one instance processes: those with ``crc32(id) mod total == index``."""

    index: int
    total: int

    def owns(self, call_id: str) -> bool:
        return shard_of(call_id, self.total) == self.index

    def label(self) -> str:
        return f"shard{self.index}of{self.total}"


def shard_of(call_id: str, total_muxers: int) -> int:
    """The shard a call belongs to: ``crc32(call id, UTF-8) mod total_muxers``."""
    return zlib.crc32(call_id.encode("utf-8")) % total_muxers


def effective_shard(muxer_id: int, total_muxers: int, muxer_type: str = "primary") -> Shard | None:
    """The shard this instance covers, or ``None`` without sharding (``muxer_id`` -1).

    A backup covers ``(muxer_id + 1) mod total_muxers``: backup 2 of 4 covers shard 3, backup 3
    of 4 covers shard 0.
    """
    if muxer_id < 0:
        return None
    if muxer_id >= total_muxers:
        raise ConfigError(
            f"[processing] muxer_id = {muxer_id} is not valid: allowed is -1 or 0 to {total_muxers - 1}"
        )
    index = (muxer_id + 1) % total_muxers if muxer_type == "backup" else muxer_id
    return Shard(index, total_muxers)

