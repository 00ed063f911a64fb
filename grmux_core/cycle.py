"""What one cycle covers, decided from the settings, the run mode and the scheduled time.

The four deployments run one flow in four modes; this is the one place that says what a mode
changes:

* ``primary``  — the configured window, the configured shard;
* ``backup``   — the configured window (deploy it with the older half: ``window_past=N``,
  ``window_past_older_than=N/2``), the backup shard ``(muxer_id + 1) mod total_muxers``;
* ``backfill`` — exactly ``call_recording_query_string`` (or the ``query`` parameter), no window;
  or, given ``since``/``until``, the calls that started in ``[since, until)`` and match the
  ``query`` filters (one slice of a fanned-out backfill, :mod:`grmux_core.backfill`);
* ``nightly``  — the past ``NIGHTLY_WINDOW_MINUTES`` (two days), split into sub-intervals, so
  calls whose screen media arrived with the SR nightly upload are muxed (again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from grmux_core.backfill import Slice, parse_time
from grmux_core.config import Settings
from grmux_core.errors import ConfigError
from grmux_core.windows import Shard, SubInterval, Window, effective_shard, split_window, window_at

MODES = ("primary", "backup", "backfill", "nightly")
NIGHTLY_WINDOW_MINUTES = 2 * 24 * 60


@dataclass(frozen=True)
class CycleScope:
    mode: str
    window: Window | None
    pieces: tuple[SubInterval, ...]
    query: str | None
    shard: Shard | None
    piece: Slice | None = None  # a backfill slice: keep only the calls that started inside it

    def label(self) -> str:
        """For run names: mode, window (or backfill), shard."""
        what = self.piece.label() if self.piece else self.window.label() if self.window else "query"
        shard = self.shard.label() if self.shard else "all"
        return f"{self.mode}-{what}-{shard}"


def mode_overrides(mode: str, *, query: Any = None, window_past: int | None = None,
                   window_past_older_than: int | None = None, muxer_id: int | None = None,
                   total_muxers: int | None = None, split: bool | None = None) -> dict[str, Any]:
    """Flow parameters → ``"section.option"`` overrides of muxer.cfg (validated by the loader)."""
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r} is not valid: allowed is one of {', '.join(MODES)}")
    overrides: dict[str, Any] = {
        "processing.window_past": window_past,
        "processing.window_past_older_than": window_past_older_than,
        "processing.muxer_id": muxer_id,
        "processing.total_muxers": total_muxers,
        "processing.split_window_enabled": split,
    }
    if mode in ("primary", "backup"):
        overrides["processing.muxer_type"] = mode
    if mode == "nightly":
        if window_past is None:
            overrides["processing.window_past"] = NIGHTLY_WINDOW_MINUTES
            overrides["processing.window_past_older_than"] = window_past_older_than or 0
        if split is None:
            overrides["processing.split_window_enabled"] = True
    if query is not None and str(query).strip():
        overrides["advanced.call_recording_query_string"] = str(query).strip()
    return {key: value for key, value in overrides.items() if value is not None}


def backfill_slice(settings: Settings, since: Any, until: Any) -> Slice:
    """The slice ``[since, until)`` with the backfill query as its filters (one child run's scope)."""
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if end <= start:
        raise ConfigError(f"until = {end.isoformat()} is not valid: allowed is a time after since ({start.isoformat()})")
    return Slice(start, end, settings.advanced.call_recording_query_string.strip(),
                 settings.processing.interval_buffer_minutes)


def cycle_scope(settings: Settings, mode: str, now: datetime, *, since: Any = None, until: Any = None) -> CycleScope:
    """The window (or query), its sub-intervals and the shard of one cycle run at ``now``;
    with ``since`` and ``until`` (backfill), the one slice between them."""
    proc, adv = settings.processing, settings.advanced
    shard = effective_shard(proc.muxer_id, proc.total_muxers, proc.muxer_type)
    if mode == "backfill" and (since is not None or until is not None):
        if since is None or until is None:
            raise ConfigError("a backfill by time needs both since and until")
        piece = backfill_slice(settings, since, until)
        # the window the metadata checks see is the one listed: a kept call may end in the buffer
        listed = Window(piece.start, piece.end + timedelta(minutes=piece.buffer_minutes))
        return CycleScope("backfill", listed, (), piece.query(settings.htcc.list_time_format), shard, piece)
    if mode == "backfill" or (adv.backfill and mode != "nightly"):
        if not adv.backfill:
            raise ConfigError("backfill needs a query: pass --param query=... or set "
                              "[advanced] call_recording_query_string")
        return CycleScope("backfill", None, (), adv.call_recording_query_string, shard)
    window = window_at(now, proc.window_past, proc.window_past_older_than)
    pieces: tuple[SubInterval, ...] = ()
    if proc.split_window_enabled:
        pieces = tuple(split_window(window, proc.max_interval_minutes, proc.interval_buffer_minutes))
    return CycleScope(mode, window, pieces, None, shard)
