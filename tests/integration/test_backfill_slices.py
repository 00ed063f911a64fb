"""Backfill slices against the sandbox's RWS: every call of a range is listed by exactly one slice
(calls crossing a slice boundary included), with the query filters, and the cheap first count
agrees with the listing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from grmux_core.backfill import plan_slices
from grmux_core.cycle import cycle_scope
from grmux_sandbox.site import Sandbox
from tasks.context import RunConfig, forget_services
from tasks.metadata import count_calls_task, list_calls_task

START = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)
FILTER = "userData=SRSScreenRecordingStateStarted"


def test_slices_list_every_filtered_call_of_the_range_exactly_once(tmp_path, cleanup):
    sandbox = cleanup.enter_context(Sandbox.start(tmp_path / "site"))
    cleanup.callback(forget_services)
    # calls of up to 5 minutes every 5-60 s: many cross a 30-minute slice boundary
    ids = sandbox.seed_metadata(300, seed=7, start=START, spacing=(5.0, 60.0), duration=(20.0, 300.0))
    with_screen = [i for i in ids if sandbox.screen_recording(i) is not None]
    assert 0 < len(with_screen) < len(ids)  # the filter matters
    config = sandbox.write_config(tmp_path / "muxer.cfg", call_recording_query_string=FILTER)
    run = RunConfig(str(config), {"advanced.call_recording_query_string": FILTER})
    settings = run.settings()
    until = START + timedelta(hours=4)
    found: Counter[str] = Counter()
    counted = 0
    for piece in plan_slices(START, until, 30, filters=FILTER,
                             buffer_minutes=settings.processing.interval_buffer_minutes):
        scope = cycle_scope(settings, "backfill", datetime.now(UTC), since=piece.start.isoformat(),
                            until=piece.end.isoformat())
        assert scope.piece == piece
        listing = list_calls_task.fn(run, scope)
        found.update(call.id for call in listing.calls)
        counted += count_calls_task.fn(run, piece)
    assert found == Counter(with_screen)
    assert counted == len(with_screen)
