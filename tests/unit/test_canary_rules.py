"""The canary's pure rules: where the spec puts each marker of its layout, and how found markers
are matched (a missing or an unexpected marker makes the run red)."""

from __future__ import annotations

from grmux_core.canary import (
    LAYOUT,
    MarkerCheck,
    alignment_problem,
    canary_root,
    expected_markers,
    match_markers,
)


def test_small_overlap_shifts_the_later_screen_file():
    expected = expected_markers(LAYOUT, max_overlap_ms=500)
    assert expected["beep"] == [1, 3, 5, 7, 9, 11, 13, 15]
    assert [round(t, 3) for t in expected["flash"]] == [1, 3, 5, 7.2, 9.2, 13, 15]
    assert [round(t, 3) for t in expected["padding"]] == [10.2, 12.0]


def test_large_overlap_truncates_the_earlier_screen_file():
    expected = expected_markers(LAYOUT, max_overlap_ms=100)
    assert [round(t, 3) for t in expected["flash"]] == [1, 3, 5, 7, 9, 13, 15]
    assert [round(t, 3) for t in expected["padding"]] == [10.0, 12.0]


def test_missing_and_unexpected_markers_are_red():
    checks = match_markers("beep", [1.0, 3.0], [1.01, 4.9])
    assert [(c.kind, c.found_s) for c in checks] == [("beep", 1.01), ("beep", None), ("unexpected beep", 4.9)]
    assert "beep expected at 3.000 s not found" in alignment_problem(checks)


def test_offset_beyond_one_frame_names_the_offset_in_ms():
    checks = [MarkerCheck("beep", 1.0, 1.03), MarkerCheck("beep", 3.0, 3.2)]
    assert checks[0].ok and not checks[1].ok
    assert alignment_problem(checks).startswith("alignment offset +200 ms: beep expected at 3.000 s")
    assert alignment_problem(checks[:1]) == ""


def test_canary_location_forms():
    assert canary_root("s3://bucket/canary/").bucket == "bucket"
    assert canary_root("s3://bucket/canary/").path == "canary/"
    assert canary_root("http://dav:8080/recordings/c/").base == "http://dav:8080/recordings/c/"
