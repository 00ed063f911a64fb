"""Windows, the split into sub-intervals, and sharding — including property tests."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grmux_core.errors import ConfigError
from grmux_core.windows import (
    Shard,
    Window,
    effective_shard,
    shard_of,
    split_window,
    window_at,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_window_from_window_past_and_older_than():
    w = window_at(NOW, 720, 0)
    assert (w.start, w.end) == (NOW - timedelta(hours=12), NOW)
    w = window_at(NOW, 60, 30)
    assert (w.start, w.end) == (NOW - timedelta(minutes=60), NOW - timedelta(minutes=30))
    assert w.label() == "2026-11-28T11:00Z..2026-11-28T11:30Z"


def test_window_needs_aware_time_and_a_non_empty_range():
    with pytest.raises(ValueError):
        window_at(datetime(2026, 1, 1), 60)
    with pytest.raises(ConfigError, match="below window_past"):
        window_at(NOW, 60, 60)


def test_split_cuts_consecutive_pieces_with_buffered_queries():
    w = window_at(NOW, 2880)
    pieces = split_window(w, 720, 240)
    assert len(pieces) == 4
    assert pieces[0].start == w.start and pieces[-1].end == w.end
    assert all(a.end == b.start for a, b in itertools.pairwise(pieces))
    assert pieces[0].query_end == pieces[0].end + timedelta(minutes=240)
    assert pieces[-1].query_end == w.end  # never past the window
    assert [p.last for p in pieces] == [False, False, False, True]


def test_split_shortens_the_last_piece():
    w = window_at(NOW, 1500)
    pieces = split_window(w, 720, 60)
    assert [(p.end - p.start).total_seconds() / 60 for p in pieces] == [720, 720, 60]


@pytest.mark.parametrize(
    ("window_minutes", "max_interval", "buffer", "message"),
    [
        (1439, 720, 240, "720 ≤ max_interval_minutes ≤ window/2 = 719.5"),
        (2880, 719, 240, "720 ≤ max_interval_minutes ≤ window/2 = 1440"),
        (2880, 1441, 240, "window/2 = 1440"),
        (2880, 720, 0, "1 ≤ interval_buffer_minutes < max_interval_minutes (720)"),
        (2880, 720, 720, "1 ≤ interval_buffer_minutes < max_interval_minutes (720)"),
    ],
)
def test_split_rejects_out_of_range_values_with_the_rule(window_minutes, max_interval, buffer, message):
    with pytest.raises(ConfigError) as info:
        split_window(window_at(NOW, window_minutes), max_interval, buffer)
    assert message in str(info.value)


def listed(piece, start: datetime, stop: datetime) -> bool:
    """What RWS returns for a piece's query: started at/after startTime, ended at/before endTime."""
    return piece.query_start <= start and stop <= piece.query_end


@settings(max_examples=300, deadline=None)
@given(
    window_minutes=st.integers(min_value=1440, max_value=7 * 1440),
    max_interval=st.integers(min_value=720, max_value=3 * 1440),
    buffer=st.integers(min_value=1, max_value=719),
    start_fraction=st.floats(min_value=0, max_value=1),
    duration_s=st.integers(min_value=0, max_value=719 * 60),
)
def test_every_call_in_the_window_is_selected_by_exactly_one_piece(
    window_minutes, max_interval, buffer, start_fraction, duration_s
):
    max_interval = min(max_interval, window_minutes // 2)
    duration = timedelta(seconds=min(duration_s, buffer * 60))
    w = Window(NOW - timedelta(minutes=window_minutes), NOW)
    start = w.start + (w.end - w.start - duration) * start_fraction
    start = start.replace(microsecond=(start.microsecond // 1000) * 1000)  # RWS times are ms
    stop = start + duration
    if stop > w.end:  # the unsplit window would not list it either
        return
    pieces = split_window(w, max_interval, buffer)
    chosen = [p for p in pieces if listed(p, start, stop) and p.keeps(start)]
    assert len(chosen) == 1


ids = st.one_of(st.uuids().map(lambda u: u.hex), st.text(min_size=1, max_size=40))


@settings(max_examples=200, deadline=None)
@given(call_ids=st.lists(ids, max_size=50, unique=True), total=st.integers(min_value=1, max_value=16))
def test_shards_partition_the_calls(call_ids, total):
    shards = [Shard(i, total) for i in range(total)]
    for call_id in call_ids:
        owners = [s.index for s in shards if s.owns(call_id)]
        assert owners == [shard_of(call_id, total)]


@given(total=st.integers(min_value=1, max_value=64), data=st.data())
def test_backup_covers_the_next_shard_and_the_last_wraps_to_zero(total, data):
    muxer_id = data.draw(st.integers(min_value=0, max_value=total - 1))
    assert effective_shard(muxer_id, total, "primary") == Shard(muxer_id, total)
    expected = 0 if muxer_id == total - 1 else muxer_id + 1
    assert effective_shard(muxer_id, total, "backup") == Shard(expected, total)


def test_spec_examples_and_no_sharding():
    assert effective_shard(2, 4, "backup").index == 3
    assert effective_shard(3, 4, "backup").index == 0
    assert effective_shard(-1, 4, "backup") is None
    with pytest.raises(ConfigError):
        effective_shard(4, 4)


def test_shard_is_crc32_of_the_utf8_id():
    import zlib

    call_id = uuid.UUID(int=7).hex
    assert shard_of(call_id, 5) == zlib.crc32(call_id.encode()) % 5
    assert shard_of("0a1b", 1) == 0
