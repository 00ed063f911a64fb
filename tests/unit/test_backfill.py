"""The pure backfill planner: slices of a range, their identity, and what a rerun does with each."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qsl

import pytest

from grmux_core.backfill import (
    Action,
    Board,
    ChildRun,
    SliceStatus,
    narrow,
    parse_time,
    plan_slices,
    range_tag,
    verdict,
)
from grmux_core.errors import ConfigError
from grmux_core.listing import Listing
from grmux_core.models import CallRecording
from grmux_core.outcome import CallOutcome, Status
from grmux_core.tally import OutcomeTally

SINCE = datetime(2026, 9, 1, tzinfo=UTC)


def test_slices_cover_the_range_back_to_back_the_last_one_shorter():
    slices = plan_slices(SINCE, SINCE + timedelta(days=2, hours=5), 24 * 60)
    assert [(s.start, s.end) for s in slices] == [
        (SINCE, SINCE + timedelta(days=1)),
        (SINCE + timedelta(days=1), SINCE + timedelta(days=2)),
        (SINCE + timedelta(days=2), SINCE + timedelta(days=2, hours=5))]


def test_a_call_on_a_boundary_belongs_to_exactly_one_slice():
    slices = plan_slices(SINCE, SINCE + timedelta(hours=3), 60)
    for t in (SINCE, SINCE + timedelta(hours=1), SINCE + timedelta(hours=2, minutes=59, seconds=59)):
        assert sum(s.keeps(t) for s in slices) == 1
    assert not any(s.keeps(SINCE + timedelta(hours=3)) for s in slices)  # until is excluded


def test_a_slice_lists_its_buffer_and_keeps_its_filters():
    [piece] = plan_slices(SINCE, SINCE + timedelta(hours=1), 60, filters="userName=alice", buffer_minutes=30)
    fields = dict(parse_qsl(piece.query()))
    assert fields["startTime"] == str(int(SINCE.timestamp() * 1000))
    assert fields["endTime"] == str(int((SINCE + timedelta(minutes=90)).timestamp() * 1000))
    assert fields["userName"] == "alice"


def test_slice_identity_is_stable_and_depends_on_bounds_and_filters():
    a = plan_slices(SINCE, SINCE + timedelta(days=2), 1440, filters="x=1")
    b = plan_slices(SINCE, SINCE + timedelta(days=2), 1440, filters="x=1", buffer_minutes=60)
    c = plan_slices(SINCE, SINCE + timedelta(days=2), 1440, filters="x=2")
    assert [s.key() for s in a] == [s.key() for s in b]
    assert len({s.key() for s in a}) == 2
    assert a[0].key() != c[0].key()
    end = SINCE + timedelta(days=2)
    assert range_tag(SINCE, end, "x=1", "/site/muxer.cfg") == range_tag(SINCE, end, " x=1", "/site/muxer.cfg")
    assert range_tag(SINCE, end, "x=1", "/site/muxer.cfg") != range_tag(SINCE, end, "x=1", "/other.cfg")
    assert range_tag(SINCE, end, "x=1") != range_tag(SINCE, end, "x=2")


@pytest.mark.parametrize(("since", "until", "minutes"), [(SINCE, SINCE, 60), (SINCE, SINCE + timedelta(hours=1), 0)])
def test_empty_ranges_and_slices_are_refused(since, until, minutes):
    with pytest.raises(ConfigError):
        plan_slices(since, until, minutes)


def test_times_parse_as_iso_with_utc_by_default():
    assert parse_time("2026-09-01", "since") == SINCE
    assert parse_time("2026-09-01T02:00:00+02:00", "since") == SINCE
    with pytest.raises(ConfigError, match="since"):
        parse_time("yesterday", "since")


CLEAN = {"muxed": 3, "skipped": 1, "pending": 0, "failed": 0}


@pytest.mark.parametrize(("runs", "action", "attempt"), [
    ([], Action.RUN, 1),
    ([ChildRun("a", "COMPLETED", CLEAN)], Action.SKIP, 1),
    ([ChildRun("a", "FAILED", CLEAN | {"failed": 1})], Action.RUN, 2),
    ([ChildRun("a", "COMPLETED", CLEAN | {"pending": 2})], Action.RUN, 2),  # pending: the screen may have come
    ([ChildRun("a", "COMPLETED", None)], Action.RUN, 2),  # no counts: cannot tell it did everything
    ([ChildRun("a", "CRASHED"), ChildRun("b", "RUNNING")], Action.WAIT, 1),
    ([ChildRun("a", "CRASHED"), ChildRun("b", "SCHEDULED")], Action.WAIT, 1),
    ([ChildRun("a", "CRASHED"), ChildRun("b", "COMPLETED", CLEAN)], Action.SKIP, 1),
    ([ChildRun("a", "CRASHED"), ChildRun("b", "CANCELLED")], Action.RUN, 3),
])
def test_a_rerun_skips_clean_slices_follows_live_ones_and_reruns_the_rest(runs, action, attempt):
    found = verdict(runs)
    assert found.action == action
    if action == Action.RUN:
        assert found.attempt == attempt


def _call(start: datetime, call_id: str) -> CallRecording:
    return CallRecording(id=call_id, start=start, stop=start + timedelta(minutes=5), media_files=())


def test_narrow_keeps_only_the_calls_that_started_in_the_slice():
    [piece] = plan_slices(SINCE, SINCE + timedelta(hours=1), 60, buffer_minutes=30)
    inside, buffer = _call(SINCE + timedelta(minutes=59), "in"), _call(SINCE + timedelta(minutes=61), "next")
    narrowed = narrow(Listing([inside, buffer]), piece)
    assert [c.id for c in narrowed.calls] == ["in"]


def test_board_counts_slices_and_sums_their_calls():
    slices = plan_slices(SINCE, SINCE + timedelta(hours=4), 60)
    board = Board(slices)
    board.set(slices[0], SliceStatus.SKIPPED, run_id="r0", counts={"muxed": 2, "listed": 2})
    board.set(slices[1], SliceStatus.DONE, run_id="r1", counts={"muxed": 1, "pending": 1, "listed": 2})
    board.set(slices[2], SliceStatus.FAILED, run_id="r2", counts={"failed": 1, "listed": 1}, reason="FAILED: x")
    board.set(slices[3], SliceStatus.RUNNING, run_id="r3")
    assert board.tally() == {"to do": 0, "running": 1, "done": 1, "done earlier": 1, "failed": 1}
    assert board.percent() == 75.0
    assert board.call_counts(["muxed", "pending", "failed", "listed"]) == {"muxed": 3, "pending": 1, "failed": 1,
                                                                           "listed": 5}
    assert [r.slice for r in board.failed()] == [slices[2]]
    assert "2 done (1 earlier), 1 running, 1 failed, 0 to do, of 4" in board.describe()


def test_tally_keeps_capped_rows_failures_first_and_writes_every_outcome(tmp_path):
    tally = OutcomeTally(tmp_path / "o.csv", cap=3)
    for i in range(10):
        tally.add(CallOutcome(f"m{i}", Status.MUXED))
        tally.add(CallOutcome(f"p{i}", Status.PENDING, "no screen recording yet"))
    for i in range(5):
        tally.add(CallOutcome(f"f{i}", Status.FAILED, "broken"))
    tally.close()
    assert {k: v for k, v in tally.counts().items() if v} == {"muxed": 10, "pending": 10, "failed": 5}
    assert [o.call_id for o in tally.rows()] == ["f0", "f1", "f2"]
    assert len(tally.sample) == 3 and tally.not_muxed() == 15
    with open(tmp_path / "o.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 25 and {r["status"] for r in rows} == {"muxed", "pending", "failed"}
    assert next(r for r in rows if r["call_id"] == "f4")["reason"] == "broken"


@pytest.mark.parametrize(("mode", "since", "until", "minutes", "fan_out", "expected"), [
    ("backfill", None, None, None, None, False),  # the query backfill: one run, as before
    ("backfill", "2026-09-01", "2026-10-01", None, None, True),
    ("backfill", "2026-09-01", "2026-09-02", None, False, False),  # the slice deployment
    ("nightly", None, None, None, None, False),
    ("nightly", None, None, 720, None, True),
    ("nightly", None, None, None, True, True),
    ("primary", None, None, 720, None, False),
])
def test_which_runs_fan_out(mode, since, until, minutes, fan_out, expected):
    from flows.grmux import fans_out

    assert fans_out(mode, since, until, minutes, fan_out) is expected


def test_a_slice_run_gets_the_slice_bounds_and_filters_never_a_password():
    from flows.fanout import child_parameters
    from grmux_core.cycle import backfill_slice
    from tasks.context import RunConfig

    [piece] = plan_slices(SINCE, SINCE + timedelta(days=1), 1440, filters="userName=alice", buffer_minutes=60)
    parameters = child_parameters(RunConfig("/srv/muxer.cfg"), piece)
    assert parameters == {"mode": "backfill", "config_path": "/srv/muxer.cfg", "fan_out": False,
                          "since": "2026-09-01T00:00:00+00:00", "until": "2026-09-02T00:00:00+00:00",
                          "query": "userName=alice"}

    settings = SimpleNamespace(advanced=SimpleNamespace(call_recording_query_string="userName=alice"),
                               processing=SimpleNamespace(interval_buffer_minutes=60))  # what a slice reads
    rebuilt = backfill_slice(settings, parameters["since"], parameters["until"])
    assert rebuilt == piece and rebuilt.tag() == piece.tag()  # the child finds the parent's slice again


def test_the_summary_says_what_it_leaves_out_and_links_every_outcome(tmp_path):
    from tasks.report import summary_description, summary_rows

    tally = OutcomeTally(tmp_path / "outcomes" / "run.csv", cap=2)
    for i in range(5):
        tally.add(CallOutcome(f"f{i}", Status.FAILED, "RCS refused the key"))
    tally.add(CallOutcome("m", Status.MUXED))
    tally.close()
    text = summary_description("backfill", "backfill-query-all", tally)
    assert "5 of 6 calls not muxed" in text and "the first 2 are shown" in text and "3 more" in text
    assert (tmp_path / "outcomes" / "run.csv").as_uri() in text
    assert summary_rows(tally.rows()) == [{"call": "f0", "status": "failed", "reason": "RCS refused the key"},
                                          {"call": "f1", "status": "failed", "reason": "RCS refused the key"}]


@pytest.mark.parametrize(("sampled", "minutes", "target", "expected"), [
    (1000, 1440, 2000, 2880),  # 1,000 calls a day, 2,000 a slice: two days
    (1000, 1440, 100, 120),  # 144 min → whole hours, down
    (100_000, 1440, 10, 60),  # never below an hour
    (3, 1440, 5000, 7 * 1440),  # never above a week
    (0, 1440, 5000, 7 * 1440),  # an empty first day: the longest slice
])
def test_slice_length_from_a_first_count(sampled, minutes, target, expected):
    from grmux_core.backfill import slice_minutes_for

    assert slice_minutes_for(sampled, minutes, target) == expected
