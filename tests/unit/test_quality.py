"""great-expectations metadata checks: which calls are rejected, and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from grmux_core.models import parse_call_recording, parse_screen_recording
from grmux_core.quality import RULES, metadata_rows, validate_metadata
from grmux_core.windows import Window

T0 = datetime(2026, 11, 27, 12, tzinfo=UTC)
WINDOW = Window(T0 - timedelta(hours=1), T0 + timedelta(hours=1))


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def media(media_id: str, kind: str, start: datetime, seconds: float) -> dict:
    return {"mediaId": media_id, "type": kind, "startTime": iso(start), "stopTime": iso(start + timedelta(seconds=seconds)),
            "originalMediaDescriptor": {"storage": "webDAV", "path": f"http://dav:80/{media_id}"}}


def call(call_id: str, start: datetime, seconds: float, files: list[dict]) -> dict:
    return {"id": call_id, "startTime": iso(start), "stopTime": iso(start + timedelta(seconds=seconds)),
            "mediaFiles": files}


def test_each_rule_rejects_its_calls_with_a_readable_reason():
    good = call("good", T0, 60, [media("g.mp3", "audio/mp3", T0, 60)])
    dup = call("dup", T0, 60, [media("d.mp3", "audio/mp3", T0, 60)])
    silent = call("silent", T0, 60, [])
    odd = call("odd", T0, 60, [media("o.mp3", "audio/mp3", T0, 60), media("o.ogg", "audio/ogg", T0, 60)])
    outside = call("outside", T0 - timedelta(hours=3), 60, [media("x.mp3", "audio/mp3", T0 - timedelta(hours=3), 60)])
    late = call("late", T0 + timedelta(minutes=59), 600, [media("l.mp3", "audio/mp3", T0 + timedelta(minutes=59), 600)])
    calls = [parse_call_recording(c) for c in (good, dup, dup, silent, odd, outside, late)]
    backwards = parse_screen_recording({"id": "good", "mediaFiles": [
        {**media("s.mp4", "video/mp4", T0, 30), "stopTime": iso(T0)}]})  # zero length
    rows = metadata_rows(calls, {"good": backwards})
    report = validate_metadata(rows, WINDOW)
    reasons = {rule.name: f"{rule.reason} (`{rule.name}`)" for rule in RULES}
    assert report.rejected == {
        "good": [reasons["screen_spans_valid"]],
        "dup": [reasons["unique_call_id"]],
        "silent": [reasons["has_audio"]],
        "outside": [reasons["starts_in_window"]],
        "late": [reasons["stops_in_window"]],
    }
    # an unknown media type is a warning, not a rejection: ffprobe decides what the bytes are
    assert list(report.warnings) == ["odd"] and "audio/ogg" in report.warnings["odd"][0]
    assert not report.success
    markdown = report.markdown("Metadata quality — test")
    assert "7 calls checked, 5 rejected." in markdown and "| `dup` |" in markdown
    assert "### Warnings" in markdown and "| `odd` |" in markdown
    assert [o.rule.name for o in report.outcomes] == [r.name for r in RULES]


def test_field_media_types_are_neither_rejected_nor_warned():
    files = [media("a.mp3", kind, T0, 60) for kind in ("audio/mpeg3", "audio/mpeg", "audio/x-wav", "audio/mp3")]
    calls = [parse_call_recording(call(f"c{i}", T0, 60, [f])) for i, f in enumerate(files)]
    report = validate_metadata(metadata_rows(calls, {}), WINDOW)
    assert report.success and report.warnings == {}


def test_a_clean_backfill_passes_without_window_rules():
    calls = [parse_call_recording(call(f"c{i}", T0 - timedelta(days=30), 60,
                                       [media(f"c{i}.mp3", "audio/mp3", T0 - timedelta(days=30), 60)]))
             for i in range(3)]
    report = validate_metadata(metadata_rows(calls, {}), window=None)
    assert report.success and report.checked == 3
    assert {o.rule.name for o in report.outcomes} == {r.name for r in RULES} - {"starts_in_window", "stops_in_window"}
    assert all(o.success for o in report.outcomes)


@pytest.mark.parametrize("rows", [[]])
def test_an_empty_window_needs_no_great_expectations(rows):
    report = validate_metadata(rows, WINDOW)
    assert report.success and report.checked == 0 and report.outcomes == []
