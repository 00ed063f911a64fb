"""End-to-end alignment: real ffmpeg, real decoding.

Every scenario generates audio with beeps and screen video with white flashes on one marker clock
(``grmux_sandbox.media``), muxes them with grmux, decodes the output, and asserts:

* every expected beep and flash is within one frame (40 ms at 25 fps) of its expected output time,
  and there are no others (content in the wrong place would add or remove markers);
* black (padding) intervals are exactly the expected uncovered spans, within one frame;
* the decoder reports no errors.

Expected times are written by hand per scenario from the spec's rules, never read from the plan.
Output time 0 = first audio start; marker clock: call starts at 100 s; markers at 2, 7, 12, ... s.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from grmux_core.errors import MediaError
from grmux_core.mux import mux_files
from grmux_sandbox import media

pytestmark = pytest.mark.slow

FRAME = 0.04  # 25 fps
EPOCH = datetime(2026, 11, 27, 16, 58, 0, tzinfo=UTC)
CALL = 100.0  # marker-clock second at which the (first) audio starts


def wall(t: float) -> datetime:
    return EPOCH + timedelta(seconds=t)


@pytest.fixture(scope="module")
def make(tmp_path_factory):
    """Generate (once per module) media on the marker clock; same arguments → same file."""
    root = tmp_path_factory.mktemp("media")
    cache: dict[tuple, Path] = {}

    def _make(kind: str, start: float, duration: float, **kw) -> Path:
        key = (kind, start, duration, tuple(sorted(kw.items())))
        if key not in cache:
            name = f"{kind}_{len(cache)}"
            if kind == "audio":
                cache[key] = media.make_audio(root / f"{name}.mp3", start, duration, **kw)
            else:
                suffix = ".webm" if kw.get("codec") == "vp8" else ".mp4"
                cache[key] = media.make_screen(root / f"{name}{suffix}", start, duration, **kw)
        return cache[key]

    return _make


def _expected_markers(spans: list[tuple[float, float, float]], *, end_margin: float = 0.15) -> list[float]:
    """Marker instants (output time) inside ``spans`` of (out_start, out_end, lateness).

    A span shows marker-clock time ``CALL + t - lateness`` at output time t.
    """
    out = []
    for s, e, late in spans:
        for w in media.marker_times(CALL + s - late, CALL + e - late):
            t = w - CALL + late
            assert t - s > 0.1 and e - t > end_margin, f"scenario puts a marker on a boundary ({t})"
            out.append(t)
    return sorted(out)


def _assert_near(found: list[float], expected: list[float], what: str, tol: float = FRAME + 0.001) -> None:
    assert len(found) == len(expected), f"{what}: found {found}, expected {expected}"
    for f, e in zip(sorted(found), expected):
        assert abs(f - e) <= tol, f"{what}: found {f:.3f}, expected {e:.3f} (found {found})"


def check_output(out: Path, duration: float, audio: list[tuple[float, float]],
                 video: list[tuple[float, float, float]], *, frame: float = FRAME) -> None:
    """Decode ``out`` and compare with the expected audio/video coverage (output times);
    ``frame`` is the output's frame duration (padding boundaries are exact to it)."""
    assert out.exists()
    _assert_near(media.detect_beeps(out), _expected_markers([(s, e, 0.0) for s, e in audio]), "beeps")
    _assert_near(media.detect_flashes(out), _expected_markers(video), "flashes")
    # padding = the complement of the video coverage
    gaps, cursor = [], 0.0
    for s, e, _ in sorted(video):
        if s - cursor > 0.1:
            gaps.append((cursor, s))
        cursor = max(cursor, e)
    if duration - cursor > 0.1:
        gaps.append((cursor, duration))
    black = media.detect_black(out)
    assert len(black) == len(gaps), f"black {black}, expected padding {gaps}"
    for (bs, be), (gs, ge) in zip(black, gaps):
        assert abs(bs - gs) <= frame + 0.001, f"padding starts at {bs}, expected {gs}"
        # the last black frame starts one frame before the end of the file
        assert abs(be - ge) <= 2 * frame + 0.001, f"padding ends at {be}, expected {ge}"
    assert media.decode_errors(out) == ""


@pytest.fixture
def run(tmp_path, caplog):
    """Mux with grmux; also fail on any ffmpeg warning during the mux (e.g. DTS fix-ups at joins)."""

    def _run(tmp_path: Path, audios, screens, **kw):
        out = tmp_path / "out.mp4"
        with caplog.at_level(logging.WARNING, logger="grmux_core"):
            plan, info = mux_files([(str(p), wall(t)) for p, t in audios],
                                   [(str(p), wall(t)) for p, t in screens], out, workdir=tmp_path, **kw)
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert not warnings, warnings
        assert abs(info.duration - plan.duration) <= 0.1
        return out, plan

    return _run


def test_full_overlap(make, tmp_path, run):
    a = make("audio", 100, 30)
    s = make("screen", 100, 30)
    out, plan = run(tmp_path, [(a, 100)], [(s, 100)])
    assert [v.action for v in plan.video] == ["copy"]
    check_output(out, 30, [(0, 30)], [(0, 30, 0)])


def test_screen_late_and_early(make, tmp_path, run):
    a = make("audio", 100, 30)
    s = make("screen", 104.5, 10)
    out, plan = run(tmp_path, [(a, 100)], [(s, 104.5)], padding_slice_ms=2000)
    pads = [v for v in plan.video if v.kind == "padding"]
    assert max(p.length for p in pads) <= 2.0 + 1e-6 and len(pads) == 3 + 8  # 4.5 s → 3 slices, 15.5 s → 8
    check_output(out, 30, [(0, 30)], [(4.5, 14.5, 0)])


def test_gap_between_two_screens_with_b_frames(make, tmp_path, run):
    a = make("audio", 100, 30)
    s1 = make("screen", 101.3, 10, bframes=2)
    s2 = make("screen", 116.6, 10, bframes=2)
    out, plan = run(tmp_path, [(a, 100)], [(s1, 101.3), (s2, 116.6)])
    assert all(v.action in ("copy", "pad") for v in plan.video)
    check_output(out, 30, [(0, 30)], [(1.3, 11.3, 0), (16.6, 26.6, 0)])


def test_small_overlap_shifts_the_later_screen(make, tmp_path, run):
    a = make("audio", 100, 30)
    s1 = make("screen", 101.3, 10)
    s2 = make("screen", 111.0, 10)  # overlaps s1 by 300 ms ≤ 500 ms
    out, _ = run(tmp_path, [(a, 100)], [(s1, 101.3), (s2, 111.0)])
    check_output(out, 30, [(0, 30)], [(1.3, 11.3, 0), (11.3, 21.3, 0.3)])


def test_large_overlap_truncates_the_earlier_screen(make, tmp_path, run):
    a = make("audio", 100, 30)
    s1 = make("screen", 101.3, 12)  # ends 113.3
    s2 = make("screen", 110.4, 10)  # overlap 2.9 s > 500 ms
    out, _ = run(tmp_path, [(a, 100)], [(s1, 101.3), (s2, 110.4)])
    check_output(out, 30, [(0, 30)], [(1.3, 10.4, 0), (10.4, 20.4, 0)])


def test_two_audio_segments_with_a_gap(make, tmp_path, run):
    a1 = make("audio", 100, 13.5)
    a2 = make("audio", 118, 12)
    s = make("screen", 100, 30)
    out, plan = run(tmp_path, [(a1, 100), (a2, 118)], [(s, 100)])
    assert [x.kind for x in plan.audio] == ["audio", "silence", "audio"]
    check_output(out, 30, [(0, 13.5), (18, 30)], [(0, 30, 0)])


def test_screen_starting_before_the_call_on_a_keyframe(make, tmp_path, run):
    a = make("audio", 100, 30)
    s = make("screen", 96.0, 20)  # keyframes every 2 s: the cut at 4.0 s is on one
    out, plan = run(tmp_path, [(a, 100)], [(s, 96.0)])
    assert plan.video[0].action == "copy" and abs(plan.video[0].src_in - 4.0) < 1e-6
    check_output(out, 30, [(0, 30)], [(0, 16, 0)])


def test_long_gop_cut_between_keyframes(make, tmp_path, run):
    a = make("audio", 100, 30)
    s = make("screen", 96.7, 30, gop=250)  # keyframes at 0, 10, 20 s; cut at 3.3 s
    out, plan = run(tmp_path, [(a, 100)], [(s, 96.7)])
    actions = [(v.action, round(v.start, 3), round(v.end, 3)) for v in plan.video]
    assert actions[:2] == [("reencode", 0.0, 6.7), ("copy", 6.7, 26.7)], actions
    check_output(out, 30, [(0, 30)], [(0, 26.7, 0)])


def test_webm_vp8_input(make, tmp_path, run):
    a = make("audio", 100, 30)
    s = make("screen", 103.3, 20, codec="vp8")
    out, plan = run(tmp_path, [(a, 100)], [(s, 103.3)])
    assert [v.action for v in plan.video if v.kind == "recording"] == ["reencode"]
    check_output(out, 30, [(0, 30)], [(3.3, 23.3, 0)])


def test_different_resolutions_in_one_call(make, tmp_path, run):
    a = make("audio", 100, 30)
    s1 = make("screen", 101.3, 15)
    s2 = make("screen", 118.6, 8, size=(640, 480))
    out, plan = run(tmp_path, [(a, 100)], [(s1, 101.3), (s2, 118.6)])
    assert (plan.signature.width, plan.signature.height) == (320, 240)
    assert [v.action for v in plan.video if v.kind == "recording"] == ["copy", "reencode"]
    check_output(out, 30, [(0, 30)], [(1.3, 16.3, 0), (18.6, 26.6, 0)])


@pytest.mark.parametrize("damage", ["truncated", "garbage", "zero-length"])
def test_unreadable_input_fails_cleanly(make, tmp_path, damage):
    a = make("audio", 100, 30)
    good = make("screen", 101.3, 15)
    bad = tmp_path / "bad.mp4"
    data = good.read_bytes()
    bad.write_bytes({"truncated": data[: len(data) // 2], "garbage": os.urandom(4096),
                     "zero-length": b""}[damage])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(MediaError) as err:
        mux_files([(str(a), wall(100))], [(str(bad), wall(101.3))], out_dir / "out.mp4", workdir=tmp_path)
    assert "bad.mp4" in str(err.value)
    assert list(out_dir.iterdir()) == []  # nothing left behind, not even a partial file


# ---------------------------------------------------------------- cheap length discovery, pad cache

@pytest.mark.parametrize("encode", [
    ["-ar", "8000", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k"],
    ["-ar", "16000", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "24k", "-metadata", "title=call"],
    ["-ar", "22050", "-ac", "2", "-c:a", "libmp3lame", "-q:a", "5"],
    ["-ar", "44100", "-ac", "2", "-c:a", "libmp3lame", "-q:a", "4", "-id3v2_version", "4", "-metadata", "a=b"],
    ["-ar", "8000", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k", "-write_xing", "0"],  # no header → decode
])
@pytest.mark.parametrize("seconds", [7.3, 61.25])
def test_mp3_length_from_header_equals_the_decoded_length(tmp_path, encode, seconds):
    from grmux_core import ffmpeg as ff
    from grmux_core.mux import mp3_duration, mp3_header_duration, probe_file

    path = tmp_path / "a.mp3"
    ff.run(["ffmpeg", *ff.GLOBAL_ARGS, "-v", "error", "-f", "lavfi", "-i", f"sine=f=440:r=48000:d={seconds}",
            *encode, str(path)])
    decoded = ff.decoded_duration(path)
    info = probe_file(path)
    from_header = mp3_header_duration(path, info)
    if "-write_xing" in encode:
        assert from_header is None
    else:
        assert from_header is not None and abs(from_header - decoded) < 1e-5
        assert abs(from_header - seconds) < 1e-3
    assert abs(mp3_duration(path, info) - decoded) < 1e-5


def test_padding_clip_is_encoded_once_per_signature(make, tmp_path):
    a = make("audio", 100, 20)
    s = make("screen", 101.3, 14)
    cache = tmp_path / "pads"
    timings: list[dict[str, float]] = []
    for n in range(2):
        t: dict[str, float] = {}
        _plan, info = mux_files([(str(a), wall(100))], [(str(s), wall(101.3))], tmp_path / f"out{n}.mp4",
                               workdir=tmp_path, pad_cache_dir=cache, timings=t)
        timings.append(t)
        assert abs(info.duration - 20) <= 0.1
    pads = list(cache.iterdir())
    assert len(pads) == 1 and pads[0].name.startswith("pad_h264_320x240_yuv420p_")  # no scratch left over
    first, second = timings
    assert {"probe", "plan", "pad", "mux", "verify"} <= set(first)
    assert second["pad"] < first["pad"] / 5  # a stat() instead of an ffmpeg run
    check_output(tmp_path / "out1.mp4", 20, [(0, 20)], [(1.3, 15.3, 0)])


def test_prestarted_verifier_checks_what_verify_output_checks(make, tmp_path):
    """The pre-started ffprobe (fed through stdin) sees the same streams and duration as a file
    probe, rejects a wrong duration and unreadable bytes, and is reaped when cancelled."""
    from grmux_core.errors import VerificationError
    from grmux_core.mux import finish_verifier, start_verifier, verify_output

    a = make("audio", 100, 20)
    s = make("screen", 101.3, 14)
    out = tmp_path / "out.mp4"
    mux_files([(str(a), wall(100))], [(str(s), wall(101.3))], out, workdir=tmp_path)
    by_file = verify_output(out, 20.0)
    by_pipe = finish_verifier(start_verifier(), out, 20.0)
    assert by_pipe == by_file
    with pytest.raises(VerificationError, match="duration"):
        finish_verifier(start_verifier(), out, 21.0)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(8192))
    with pytest.raises(VerificationError, match="cannot be read"):
        finish_verifier(start_verifier(), junk, 20.0)
    v = start_verifier()
    v.cancel()
    assert v.proc.returncode is not None
