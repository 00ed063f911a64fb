"""The in-process track reader (``grmux_core.mp4track``) against ffmpeg on generated files.

Ground truth: ffprobe's full packet list (every packet demuxed, keyframe flag and PTS) and
ffmpeg's ``trace_headers`` of every SPS (the sample description's, then each in-band one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grmux_core import ffmpeg as ff
from grmux_core.mp4track import read_video_track
from grmux_core.mux import mux_files
from grmux_core.probe import parse_sps_trace
from grmux_sandbox import media
from tests.integration.test_mux_alignment import CALL, wall

pytestmark = pytest.mark.slow


def _ffprobe_keyframes(path: Path) -> list[float]:
    res = ff.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
                  "-of", "json", str(path)], what="ffprobe (test)")
    return sorted(float(p["pts_time"]) for p in json.loads(res.stdout)["packets"] if "K" in p["flags"])


def _ffmpeg_sps(path: Path) -> list:
    res = ff.run(["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-v", "info", "-i", str(path), "-map", "0:v:0",
                  "-c", "copy", "-bsf:v", "filter_units=pass_types=7,trace_headers", "-f", "null", "-"],
                 what="ffmpeg (test)")
    return parse_sps_trace(res.stderr)


def _same(path: Path) -> None:
    track = read_video_track(path)
    expected = _ffprobe_keyframes(path)
    assert len(track.keyframes) == len(expected)
    assert all(abs(a - b) < 1e-6 for a, b in zip(track.keyframes, expected)), (track.keyframes, expected)
    assert track.sps == _ffmpeg_sps(path)


@pytest.mark.parametrize("screen", [{"size": (1365, 767), "pix_fmt": "yuv444p"},
                                    {"preset": "medium", "bframes": 2, "rotate": 90}], ids=["odd444", "bframes"])
def test_padded_output_keyframes_and_sps_match_ffmpeg(tmp_path, screen):
    """avc3 output (padding then a copied screen): in-band SPS per keyframe, an edit list when the
    screen has B-frames."""
    a = media.make_audio(tmp_path / "a.mp3", CALL, 8)
    s = media.make_screen(tmp_path / "s.mp4", 101.5, 5, **screen)
    out = tmp_path / "out.mp4"
    mux_files([(str(a), wall(CALL), wall(CALL + 8))], [(str(s), wall(101.5), wall(106.5))], out, workdir=tmp_path)
    track = read_video_track(out)
    assert len(track.sps) > 1  # the sample description's and in-band ones
    _same(out)
    _same(s)  # the source: moov at the end


def test_vfr_screen_with_its_moov_at_the_end(tmp_path):
    """Irregular ``stts`` deltas; the moov after the media data (found by walking the top-level boxes)."""
    s = media.make_screen(tmp_path / "s.mp4", 0, 6, vfr=True, bframes=2, gop=10)
    _same(s)


def test_a_file_cut_inside_its_moov_is_an_mp4_error(tmp_path):
    from grmux_core.mp4track import Mp4Error

    s = media.make_screen(tmp_path / "s.mp4", 0, 2, faststart=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(s.read_bytes()[:600])  # inside the moov
    with pytest.raises(Mp4Error):
        read_video_track(cut)
