"""Media as real recorders make it: clock drift, variable frame rate, odd sizes, mixed profiles, rotation.

Same method as ``test_mux_alignment``: media generated with markers on one clock, muxed by grmux,
the output decoded, markers compared with hand-written expected instants (never read from the plan).
Short, low-resolution fixtures except where the size is the point.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from grmux_core.errors import MediaError
from grmux_core.mux import mux_files
from grmux_sandbox import media
from tests.integration.test_mux_alignment import CALL, check_output, wall

pytestmark = pytest.mark.slow


def _drifting_screen(path: Path, start: float, span: float, drift: float) -> Path:
    """A screen whose recorder clock runs ``drift`` fast: ``span`` wall-clock seconds last
    ``span * (1 + drift)`` in the file, and every flash sits at its wall-clock instant × (1 + drift)."""
    k = 1 + drift
    return media.make_screen(path, start * k, span * k, period=5.0 * k, phase=2.0 * k)


def _mux(tmp_path: Path, caplog, audios, screens, **kw):
    """mux_files with ``(path, start, stop)`` entries on the marker clock; no ffmpeg warning allowed."""
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING, logger="grmux_core"):
        plan, info = mux_files([(str(p), wall(s), wall(e)) for p, s, e in audios],
                               [(str(p), wall(s), wall(e)) for p, s, e in screens], out, workdir=tmp_path, **kw)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warnings, warnings
    assert abs(info.duration - plan.duration) <= 0.1
    return out, plan


@pytest.fixture(scope="module")
def call_audio(tmp_path_factory) -> Path:
    return media.make_audio(tmp_path_factory.mktemp("audio") / "a.mp3", CALL, 17)


@pytest.mark.parametrize("drift", [0.01, -0.01])
def test_small_clock_drift_is_corrected(call_audio, tmp_path, caplog, drift):
    """±1 %: 12 s of wall clock last 12.12 / 11.88 s in the file (whole frames at 25 fps).
    Uncorrected, the flash at wall 112 would be 90 ms off and the screen would end 120 ms off;
    re-timed, both are on time."""
    s = _drifting_screen(tmp_path / "s.mp4", 103, 12, drift)
    out, plan = _mux(tmp_path, caplog, [(call_audio, CALL, CALL + 17)], [(s, 103, 115)])
    assert len(plan.retimed) == 1 and abs(plan.retimed[0][1] - 1 / (1 + drift)) < 1e-4, plan.retimed
    assert any("clock drift" in n and "re-timed" in n for n in plan.notes), plan.notes
    assert "re-timed" in plan.describe()
    assert [v.action for v in plan.video if v.kind == "recording"] == ["copy"]  # re-timed, still copied
    check_output(out, 17, [(0, 17)], [(3, 15, 0)])


def test_large_clock_drift_is_refused(call_audio, tmp_path, caplog):
    s = _drifting_screen(tmp_path / "s.mp4", 103, 10, 0.05)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(MediaError, match=r"lasts 10\.5\d* s but its metadata says 10\.000 s") as err:
        mux_files([(str(call_audio), wall(CALL), wall(CALL + 17))], [(str(s), wall(103), wall(113))],
                  out_dir / "out.mp4", workdir=tmp_path)
    assert "2 % drift band" in str(err.value)
    assert list(out_dir.iterdir()) == []


# ---------------------------------------------------------------- variable frame rate


def _frame_times(path: Path) -> list[float]:
    from grmux_core import ffmpeg as ff

    res = ff.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
                  "-of", "csv=p=0", str(path)], what="ffprobe (test)")
    return sorted(float(x) for x in res.stdout.split())


def test_vfr_mostly_static_screen_starting_after_the_call(tmp_path, caplog):
    """6 frames in 10 s (average 0.6 fps: "a frame" would be 1.67 s); it starts 1.5 s after the
    call, so 1.5 s of padding come first and every flash is on time. Copied: the same 6 frames."""
    a = media.make_audio(tmp_path / "a.mp3", CALL, 12)
    s = media.make_screen(tmp_path / "s.mp4", 101.5, 10, vfr=True, gop=250)
    assert len(_frame_times(s)) == 6
    out, plan = _mux(tmp_path, caplog, [(a, CALL, CALL + 12)], [(s, 101.5, 111.5)])
    assert [v.action for v in plan.video if v.kind == "recording"] == ["copy"]
    check_output(out, 12, [(0, 12)], [(1.5, 11.5, 0)])
    shown = [t for t in _frame_times(out) if 1.5 - 0.001 <= t < 11.5 - 0.001]
    assert [round(t - 1.5, 3) for t in shown] == [round(t, 3) for t in _frame_times(s)]


def test_vfr_burst_reencoded_keeps_every_frame_at_its_time(tmp_path, caplog):
    """A VFR screen that starts 3.3 s before the call with no keyframe after the cut is re-encoded;
    its burst of full-rate frames (with a flash in it) keeps every frame at its own timestamp."""
    a = media.make_audio(tmp_path / "a.mp3", CALL, 12)
    s = media.make_screen(tmp_path / "s.mp4", 96.7, 14, vfr=True, gop=250, burst=(4.5, 5.5))
    src = _frame_times(s)
    out, plan = _mux(tmp_path, caplog, [(a, CALL, CALL + 12)], [(s, 96.7, 110.7)])
    assert [v.action for v in plan.video if v.kind == "recording"] == ["reencode"]
    check_output(out, 12, [(0, 12)], [(0, 10.7, 0)])
    expected = [round(t - 3.3, 3) for t in src if 3.3 < t < 14 - 0.001]
    got = [round(t, 3) for t in _frame_times(out) if 0.001 < t < 10.7 - 0.001]
    assert got == expected


# ---------------------------------------------------------------- one valid, portable stream


def _stream(path: Path) -> dict:
    import json

    from grmux_core import ffmpeg as ff

    res = ff.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", str(path)],
                 what="ffprobe (test)")
    return json.loads(res.stdout)["streams"][0]


def _keyframe_formats(path: Path) -> set[tuple[int, int, str]]:
    """(width, height, pix_fmt) of every decoded keyframe: what the in-band SPS say."""
    import json

    from grmux_core import ffmpeg as ff

    res = ff.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-skip_frame", "nokey", "-show_entries",
                  "frame=width,height,pix_fmt", "-of", "json", str(path)], what="ffprobe (test)")
    return {(f["width"], f["height"], f["pix_fmt"]) for f in json.loads(res.stdout)["frames"]}


@pytest.mark.parametrize("size", [(1365, 767), (1281, 721)])
def test_odd_size_444_screen_after_lead_padding_keeps_its_size(tmp_path, caplog, size):
    """Odd sizes exist only outside 4:2:0 in H.264; the padding clip is made at the exact size, so
    the track, every keyframe and the copied frames agree (kept odd: nothing is re-encoded)."""
    a = media.make_audio(tmp_path / "a.mp3", CALL, 8)
    s = media.make_screen(tmp_path / "s.mp4", 101.5, 5, size=size, pix_fmt="yuv444p")
    out, plan = _mux(tmp_path, caplog, [(a, CALL, CALL + 8)], [(s, 101.5, 106.5)])
    assert [v.action for v in plan.video if v.kind == "recording"] == ["copy"]
    st = _stream(out)
    assert (st["width"], st["height"], st["pix_fmt"]) == (*size, "yuv444p")
    assert _keyframe_formats(out) == {(*size, "yuv444p")}
    check_output(out, 8, [(0, 8)], [(1.5, 6.5, 0)])


def test_420_next_to_444_is_reencoded_to_420_high(tmp_path, caplog):
    a = media.make_audio(tmp_path / "a.mp3", CALL, 12)
    s1 = media.make_screen(tmp_path / "s1.mp4", 100.5, 6, size=(321, 241), pix_fmt="yuv444p")
    s2 = media.make_screen(tmp_path / "s2.mp4", 106.5, 5)
    out, plan = _mux(tmp_path, caplog, [(a, CALL, CALL + 12)], [(s1, 100.5, 106.5), (s2, 106.5, 111.5)])
    assert [v.action for v in plan.video if v.kind == "recording"] == ["reencode", "reencode"]
    st = _stream(out)
    assert (st["width"], st["height"], st["pix_fmt"], st["profile"]) == (322, 242, "yuv420p", "High")
    assert _keyframe_formats(out) == {(322, 242, "yuv420p")}
    check_output(out, 12, [(0, 12)], [(0.5, 11.5, 0)])


def test_rotation_and_high_cabac_bframes_after_lead_padding(tmp_path, caplog):
    """The display matrix holds for the whole track although padding comes first; the padding
    clip's SPS is High like the content's, and the sample entry is avc3 (every clip's parameter
    sets in-band), so the sample description is valid for every frame."""
    a = media.make_audio(tmp_path / "a.mp3", CALL, 8)
    s = media.make_screen(tmp_path / "s.mp4", 101.5, 5, preset="medium", bframes=2, rotate=90)
    src = _stream(s)
    assert src["profile"] == "High" and src["has_b_frames"] > 0
    out, plan = _mux(tmp_path, caplog, [(a, CALL, CALL + 8)], [(s, 101.5, 106.5)])
    assert [v.action for v in plan.video if v.kind == "recording"] == ["copy"]
    st = _stream(out)
    rotation = {d.get("rotation") for d in st.get("side_data_list", [])} - {None}
    assert rotation == {d["rotation"] for d in src["side_data_list"]} == {90}
    assert (st["profile"], st["codec_tag_string"]) == ("High", "avc3")
    check_output(out, 8, [(0, 8)], [(1.5, 6.5, 0)])


# ---------------------------------------------------------------- long calls


def test_sixty_minute_call_with_a_1fps_screen(tmp_path, caplog):
    """3600 s of call, a 1 fps screen (on whole seconds, so its frames meet the markers) with lead
    and tail padding: every beep and flash where it belongs at the end as at the start, and the
    output lasts 3600.000 s. The costliest test here (a 1 h AAC encode and two 1 h decodes)."""
    a = media.make_audio(tmp_path / "a.mp3", CALL, 3600)
    s = media.make_screen(tmp_path / "s.mp4", CALL + 1, 3594, fps=1)
    out, plan = _mux(tmp_path, caplog, [(a, CALL, CALL + 3600)], [(s, CALL + 1, CALL + 3595)])
    assert abs(plan.duration - 3600) < 1e-3
    assert [v.action for v in plan.video if v.kind == "recording"] == ["copy"]
    check_output(out, 3600, [(0, 3600)], [(1, 3595, 0)], frame=1.0)
