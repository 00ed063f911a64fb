"""The pure planner: alignment rules (spec §5), copy-or-reencode decisions, and tiling properties."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grmux_core.errors import MediaError
from grmux_core.plan import AudioInput, plan_mux
from tests.support.builders import H264, T0, VP8, audio, screen


def recs(plan):
    return [(v.source, round(v.start, 3), round(v.end, 3), round(v.shift, 3)) for v in plan.video
            if v.kind == "recording"]


def test_output_spans_first_audio_start_to_last_audio_stop():
    plan = plan_mux([audio(10, 20, "b"), audio(0, 5, "a")], [screen(0, 30)])
    assert plan.duration == 30 and plan.call_start == T0.isoformat()
    assert [(a.kind, a.start, a.end) for a in plan.audio] == [("audio", 0, 5), ("silence", 5, 10), ("audio", 10, 30)]


def test_padding_slices_lead_gap_tail_last_one_shortened():
    plan = plan_mux([audio(0, 30)], [screen(12, 3)], padding_slice_ms=5000)
    pads = [(round(v.start, 3), round(v.end, 3)) for v in plan.video if v.kind == "padding"]
    assert pads == [(0, 5), (5, 10), (10, 12), (15, 20), (20, 25), (25, 30)]


def test_small_overlap_shifts_later_whole_and_cascades_only_through_overlaps():
    s = [screen(0, 10, "s1"), screen(9.7, 10, "s2"), screen(19.9, 5, "s3"), screen(40, 5, "s4")]
    plan = plan_mux([audio(0, 60)], s, max_overlap_ms=500)
    # s2 late by 300 ms; its shifted end (20.0) overlaps s3 by 100 ms -> s3 late by 100 ms; s4 untouched
    assert recs(plan) == [("s1", 0, 10, 0), ("s2", 10, 20, 0.3), ("s3", 20, 25, 0.1), ("s4", 40, 45, 0)]
    assert all(v.shift <= 0.5 for v in plan.video)


def test_large_overlap_truncates_the_earlier():
    plan = plan_mux([audio(0, 60)], [screen(0, 12, "s1"), screen(10, 10, "s2")], max_overlap_ms=500)
    assert recs(plan) == [("s1", 0, 10, 0), ("s2", 10, 20, 0)]
    assert any("truncated" in n for n in plan.notes)


def test_overlap_exactly_at_the_limit_is_shifted():
    plan = plan_mux([audio(0, 60)], [screen(0, 10, "s1"), screen(9.5, 10, "s2")], max_overlap_ms=500)
    assert recs(plan)[1] == ("s2", 10, 20, 0.5)


def test_screens_cut_to_the_call_and_outside_dropped():
    plan = plan_mux([audio(10, 20)], [screen(0, 15, "s1", keyframes=(0.0, 10.0)), screen(40, 5, "s2")])
    assert recs(plan) == [("s1", 0, 5, 0)]
    assert plan.video[0].action == "copy" and plan.video[0].src_in == 10.0
    assert any("outside the call" in n for n in plan.notes)


def test_head_cut_between_keyframes_reencodes_only_up_to_next_keyframe():
    plan = plan_mux([audio(0, 60)], [screen(-3.3, 40, keyframes=(0.0, 10.0, 20.0))])
    spans = [(v.action, round(v.start, 3), round(v.end, 3), round(v.src_in, 3)) for v in plan.video]
    assert spans[:2] == [("reencode", 0, 6.7, 3.3), ("copy", 6.7, 36.7, 10.0)]
    assert "not on a keyframe" in plan.video[0].reason and "0.000" in plan.video[0].reason


def test_head_cut_without_known_keyframes_is_reencoded():
    plan = plan_mux([audio(0, 60)], [screen(-3.3, 40)])
    assert plan.video[0].action == "reencode" and "unknown" in plan.video[0].reason


def test_vp8_and_mismatched_size_are_reencoded_with_reasons():
    small = replace(H264, width=640, height=360)
    plan = plan_mux([audio(0, 60)], [screen(0, 30, "big"), screen(30, 10, "vp8.webm", VP8),
                                      screen(40, 5, "small", small)])
    by_src = {v.source: v for v in plan.video if v.kind == "recording"}
    assert by_src["big"].action == "copy"
    assert by_src["vp8.webm"].action == "reencode" and "vp8" in by_src["vp8.webm"].reason
    assert by_src["small"].action == "reencode" and "size 640x360 ≠ 1280x720" in by_src["small"].reason


def test_signature_from_longest_h264_and_synthesised_without_h264():
    plan = plan_mux([audio(0, 60)], [screen(0, 5, "short", replace(H264, width=640, height=360)),
                                      screen(5, 50, "long")])
    assert (plan.signature.width, plan.signature.height) == (1280, 720) and "long" in plan.signature_reason
    plan = plan_mux([audio(0, 60)], [screen(0, 60, "v.webm", VP8)])
    assert plan.signature.codec == "h264" and plan.signature.timescale == 90000
    assert plan.needs_reencode


def test_sub_frame_gap_is_held_not_padded():
    plan = plan_mux([audio(0, 20)], [screen(0, 10.01, "s1"), screen(10.02, 9.98, "s2")])
    assert [v.kind for v in plan.video] == ["recording", "recording"]
    assert plan.video[0].end == pytest.approx(10.02)


def test_describe_explains_every_span():
    plan = plan_mux([audio(0, 30)], [screen(4, 10)])
    text = plan.describe()
    assert "pad" in text and "copy" in text and "black slice" in text and "1280x720" in text
    assert plan.to_dict()["video"][1]["action"] == "copy"


def test_invalid_inputs():
    with pytest.raises(MediaError):
        plan_mux([], [screen(0, 1)])
    with pytest.raises(MediaError, match="pending"):
        plan_mux([audio(0, 1)], [])
    with pytest.raises(MediaError, match="timezone"):
        plan_mux([AudioInput("a", datetime(2026, 1, 1), 5)], [screen(0, 1)])


segments = st.lists(st.tuples(st.floats(-20, 120, allow_nan=False), st.floats(0.05, 60, allow_nan=False)),
                    min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(audios=segments, screens=segments, overlap=st.integers(0, 2000), slice_ms=st.integers(100, 10000))
def test_video_spans_tile_the_call_exactly(audios, screens, overlap, slice_ms):
    a = [audio(s, d, f"a{i}") for i, (s, d) in enumerate(audios)]
    sc = [screen(s, d, f"s{i}", keyframes=(0.0, 7.0)) for i, (s, d) in enumerate(screens)]
    plan = plan_mux(a, sc, max_overlap_ms=overlap, padding_slice_ms=slice_ms)
    first = min(s for s, _ in audios)
    assert plan.duration == pytest.approx(max(s + d for s, d in audios) - first)
    cursor = 0.0
    for v in plan.video:  # contiguous, no overlap, no hole
        assert v.start == pytest.approx(cursor, abs=1e-6) and v.end > v.start
        cursor = v.end
        if v.kind == "padding":
            assert v.length <= slice_ms / 1000 + 0.04 + 1e-6
        else:
            assert 0 <= v.shift <= overlap / 1000 + 1e-6  # never later than the tolerated overlap
            assert v.src_in >= -1e-9
    assert cursor == pytest.approx(plan.duration, abs=1e-6)
    assert sum(v.length for v in plan.video) == pytest.approx(plan.duration, abs=1e-6)
    # audio: silence and segments cover the call; silence never overlaps a segment
    silences = [x for x in plan.audio if x.kind == "silence"]
    for sil in silences:
        for seg in plan.audio_segments:
            assert sil.end <= seg.start + 1e-6 or sil.start >= seg.end - 1e-6
    spans = sorted((x.start, x.end) for x in plan.audio)
    reach = 0.0
    for start, end in spans:
        assert start <= reach + 1e-6, f"audio hole at {reach}"
        reach = max(reach, end)
    assert reach == pytest.approx(plan.duration, abs=1e-6)


# ---------------------------------------------------------------- clock drift


def test_drift_within_the_band_retimes_the_screen_to_its_metadata_span():
    s = replace(screen(5, 10.1, "s", keyframes=(0.0, 2.0)), metadata_duration=10.0)  # +1 %
    plan = plan_mux([audio(0, 30)], [s])
    (k,) = [k for _, k in plan.retimed]
    assert abs(k - 10.0 / 10.1) < 1e-9
    rec = [v for v in plan.video if v.kind == "recording"]
    assert [(round(v.start, 6), round(v.end, 6), v.time_scale) for v in rec] == [(5.0, 15.0, k)]
    assert any("+1.00 % clock drift" in n and "re-timed" in n for n in plan.notes)
    assert "re-timed x0.99010" in plan.describe()
    from grmux_core.timeline import plan_markdown, plan_svg

    assert "clock drift" in plan_svg(plan) and "re-timed" in plan_markdown(plan)


@pytest.mark.parametrize("length", [10.0, 10.005, 10.04, 9.96])
def test_length_differences_under_the_floor_are_rounding_not_drift(length):
    plan = plan_mux([audio(0, 30)], [replace(screen(5, length, "s"), metadata_duration=10.0)])
    assert plan.retimed == () and not any("drift" in n for n in plan.notes)


@pytest.mark.parametrize("length", [10.5, 9.5])
def test_drift_beyond_the_band_fails_with_both_lengths(length):
    with pytest.raises(MediaError, match=rf"lasts {length:.3f} s but its metadata says 10.000 s"):
        plan_mux([audio(0, 30)], [replace(screen(5, length, "s"), metadata_duration=10.0)])


def test_audio_is_the_clock_noted_within_the_band_refused_beyond():
    plan = plan_mux([replace(audio(0, 30.3), metadata_duration=30.0)], [screen(0, 30)])
    assert plan.duration == 30.3 and plan.retimed == ()
    assert any("audio is the clock, not re-timed" in n for n in plan.notes)
    with pytest.raises(MediaError, match="audio #0"):
        plan_mux([replace(audio(0, 33), metadata_duration=30.0)], [screen(0, 30)])


def test_drift_band_is_configurable():
    from grmux_core.plan import DriftBand

    s = replace(screen(5, 10.5, "s"), metadata_duration=10.0)  # +5 %
    plan = plan_mux([audio(0, 30)], [s], drift=DriftBand(0.001, 0.06))
    assert len(plan.retimed) == 1
    plan = plan_mux([audio(0, 30)], [s], drift=DriftBand(0.06, 0.1))
    assert plan.retimed == ()
