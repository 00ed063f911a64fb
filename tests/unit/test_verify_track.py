"""Verification of the output's video track against the plan (pure: captured ffmpeg text, built plans)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from grmux_core.mux import check_track
from grmux_core.plan import plan_mux
from grmux_core.probe import MediaInfo, Sps, parse_framecrc, parse_sps_trace
from tests.support.builders import H264, audio, screen

DATA = Path(__file__).parent / "data"


def test_sps_trace_gives_every_sps_in_order():
    """A lead pad encoded the old way (Constrained Baseline) before High content, joined by concat:
    the sample description's SPS, then each in-band one."""
    sps = parse_sps_trace((DATA / "sps_trace_pad_then_high.txt").read_text())
    assert [s.profile_idc for s in sps] == [66, 66, 100, 100, 100]
    assert {(s.width, s.height, s.chroma) for s in sps} == {(320, 240, "yuv420p")}


def test_sps_size_includes_cropping_for_odd_444_and_even_420():
    odd = {"profile_idc": 244, "chroma_format_idc": 3, "pic_width_in_mbs_minus1": 85,
           "pic_height_in_map_units_minus1": 47, "frame_mbs_only_flag": 1, "frame_crop_right_offset": 11,
           "frame_crop_bottom_offset": 1}
    text = "\n".join(f"{k}  {n:>3}  {name}  0 = {v}" for k, (n, (name, v)) in enumerate(enumerate(odd.items())))
    assert parse_sps_trace(text) == [Sps(244, 1365, 767, "yuv444p")]
    hd = {"profile_idc": 100, "chroma_format_idc": 1, "pic_width_in_mbs_minus1": 119,
          "pic_height_in_map_units_minus1": 67, "frame_mbs_only_flag": 1, "frame_crop_bottom_offset": 4}
    text = "\n".join(f"1 {name} 0 = {v}" for name, v in hd.items())
    assert parse_sps_trace(text) == [Sps(100, 1920, 1080, "yuv420p")]


def _info(w=1280, h=720, pix_fmt="yuv420p") -> MediaInfo:
    return MediaInfo("out.mp4", "mp4", 10.0, replace(H264, width=w, height=h, pix_fmt=pix_fmt), None, 1, 1)


PLAN = plan_mux([audio(0, 10)], [screen(1.5, 5)], padding_slice_ms=10000)  # pad 0-1.5, screen 1.5-6.5, pad 6.5-10
GOOD = [0.0, 1.5, 3.5, 5.5, 6.5, 9.96]  # keyframes: pad, screen (2 s GOP), tail pad + its last frame
SPS = [Sps(100, 1280, 720, "yuv420p")] * 3


def test_a_good_track_passes():
    assert check_track(PLAN, _info(), GOOD, SPS) == []


def test_a_size_change_mid_track_fails():
    problems = check_track(PLAN, _info(), GOOD, [*SPS, Sps(66, 1280, 718, "yuv420p")])
    assert problems and "in-band SPS #3 says 1280x718" in problems[0]


def test_a_sample_description_unlike_the_frames_fails():
    problems = check_track(PLAN, _info(1364, 766, "yuv444p"), GOOD, [Sps(244, 1365, 767, "yuv444p")])
    assert problems and "the sample description says 1365x767" in problems[0]


def test_screen_shown_early_fails():
    """The screen's keyframes start at 0 (its GOP every 2 s) although the plan starts it at 1.5 s."""
    early = [0.0, 2.0, 4.0, 6.5, 9.96]
    problems = check_track(PLAN, _info(), early, SPS)
    assert any("no keyframe at 1.500 s where the plan starts screen #0" in p for p in problems), problems


def test_content_inside_padding_fails():
    problems = check_track(PLAN, _info(), [0.0, 0.5, 1.0, 1.5, 3.5, 5.5, 6.5, 9.96], SPS)
    assert any("keyframes in the padding at 0.000–1.500 s" in p for p in problems), problems


def test_framecrc_timestamps():
    text = "#tb 0: 1/12800\n#media_type 0: video\n0,          0,          0,      512,      848, 0xe7acec60\n" \
           "0,      41216,      42240,      512,    92772, 0x5fcb1a2a\n"
    assert parse_framecrc(text) == [0.0, 3.3]


def test_keyframe_packet_next_to_a_bframe_clip_may_be_late_by_its_reorder_delay():
    """Measured on the benchmark's output: the padding after a copied B-frame clip has packet PTS
    295.10 for a planned 295.02 (decoded at 295.02); more than that delay late still fails."""
    plan = plan_mux([audio(0, 10)], [screen(1.5, 5, video=replace(H264, reorder_delay=0.08))],
                    padding_slice_ms=10000)
    assert check_track(plan, _info(), [0.0, 1.58, 3.58, 5.58, 6.58, 9.96], SPS) == []
    assert check_track(plan, _info(), [0.0, 1.58, 3.58, 5.58, 6.7, 9.96], SPS) != []
