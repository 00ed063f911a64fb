"""Synthetic call media with known markers, and detectors that find them again in decoded output.

Shared by the sync canary (:mod:`grmux_core.canary`), the integration tests, the sandbox data
generator, the demo and the benchmarks (through :mod:`grmux_sandbox.media`).

The idea: every recording of a call is generated on one *marker clock* — plain float seconds, the
caller chooses what 0 means (e.g. the call's wall-clock start as an epoch). Audio carries a 100 ms
1 kHz beep and video a full-white frame flash at the same instants, ``phase + k * period``. After
muxing, decode the output and compare beep onsets and flash onsets with the times where they
*should* be: alignment errors show up as measured numbers. Screen video is dark grey (``0x303030``),
never black, so black intervals in the output are padding.

Generation API (all return the written ``Path``; all accept ``ffmpeg=`` the executable)::

    make_audio(path, start, duration, *, period=5.0, phase=2.0, sample_rate=8000)   # .mp3 or .wav
    make_screen(path, start, duration, *, size=(320, 240), fps=25, gop=None, bframes=0,
                codec="h264", period=5.0, phase=2.0, faststart=False)            # .mp4 or .webm (vp8)
    marker_times(start, stop, *, period=5.0, phase=2.0) -> list[float]   # marker instants in [start, stop)

Detection API (decode the file; times are seconds from the start of the file)::

    detect_beeps(path)   -> list[float]            # beep onsets (silencedetect silence_end)
    detect_flashes(path) -> list[float]            # white-flash onsets (negate + blackdetect)
    detect_black(path)   -> list[tuple[float, float]]  # black (padding) intervals (blackdetect)
    decode_errors(path)  -> str                    # what `ffmpeg -v error -f null` printed

Generation is cheap enough for each test to make its own media.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from grmux_core import ffmpeg as ff

BEEP_SECONDS = 0.1
BACKGROUND = "0x303030"


def marker_times(start: float, stop: float, *, period: float = 5.0, phase: float = 2.0) -> list[float]:
    """Marker instants ``phase + k*period`` (marker clock) with ``start <= t < stop``."""
    k = math.ceil((start - phase) / period - 1e-9)
    out = []
    while (t := phase + k * period) < stop:
        out.append(t)
        k += 1
    return out


def _gate(start: float, period: float, phase: float) -> str:
    """ffmpeg expression true while a marker is on, for a file starting at ``start`` on the clock.

    A large multiple of the period keeps mod()'s argument positive; 1e-4 absorbs float error so a
    frame exactly on the marker instant counts as "on".
    """
    shift = start - phase + 1e-4 + period * 1e6
    return f"lt(mod({shift:.6f}+t\\,{period:g})\\,{BEEP_SECONDS:g})"


def make_audio(
    path: str | Path,
    start: float,
    duration: float,
    *,
    period: float = 5.0,
    phase: float = 2.0,
    sample_rate: int = 8000,
    ffmpeg: str = "ffmpeg",
) -> Path:
    """Mono audio (MP3 or WAV by suffix) of ``duration`` s with beeps on the marker clock."""
    path = Path(path)
    expr = f"0.5*sin(2*PI*1000*t)*{_gate(start, period, phase)}"
    args = [ffmpeg, *ff.GLOBAL_ARGS, "-v", "error", "-f", "lavfi",
            "-i", f"aevalsrc={expr}:s={sample_rate}:c=mono:d={duration:.6f}"]
    if path.suffix.lower() == ".mp3":
        args += ["-c:a", "libmp3lame", "-b:a", "32k"]
    else:
        args += ["-c:a", "pcm_s16le"]
    ff.run([*args, str(path)], what="ffmpeg (make_audio)")
    return path


def make_screen(
    path: str | Path,
    start: float,
    duration: float,
    *,
    size: tuple[int, int] = (320, 240),
    fps: int = 25,
    gop: int | None = None,
    bframes: int = 0,
    codec: str = "h264",
    period: float = 5.0,
    phase: float = 2.0,
    faststart: bool = False,
    vfr: bool = False,
    burst: tuple[float, float] | None = None,
    pix_fmt: str = "yuv420p",
    preset: str = "ultrafast",
    rotate: int | None = None,
    ffmpeg: str = "ffmpeg",
) -> Path:
    """Screen-like video: dark grey with full-white flashes on the marker clock.

    ``vfr=True`` makes it like a screen recorder that emits a frame only when the screen changes
    (``mpdecimate``, ``-fps_mode vfr``): a frame at the start, at each flash's start and end, and one
    last frame (a small change) so the file lasts ``duration``. ``pix_fmt``/``preset`` choose the
    H.264 flavour (``yuv444p`` → High 4:4:4; ``preset="medium"`` → High with CABAC and, with
    ``bframes``, B-frames); ``rotate`` writes a display matrix (degrees). ``burst=(a, b)`` (file seconds)
    adds changing noise to every frame inside it, so a VFR file has a run of frames at full rate there.

    ``gop`` is the keyframe interval in frames (default: 2 s); ``bframes`` > 0 gives a stream with
    a reorder delay (like libx264 defaults). ``codec`` is ``"h264"`` (MP4) or ``"vp8"`` (WebM).
    ``faststart=False`` leaves ``moov`` at the end, like a recorder that was still writing — so
    truncating such a file makes it unreadable.
    """
    path = Path(path)
    w, h = size
    gop = gop or 2 * fps
    vf = f"drawbox=x=0:y=0:w=iw:h=ih:c=white:t=fill:enable='{_gate(start, period, phase)}'"
    if burst:
        vf = f"noise=alls=40:allf=t+u:enable='between(t\\,{burst[0]:g}\\,{burst[1]:g})',{vf}"
    if vfr:
        last = max(duration - 1.5 / fps, 0)
        vf = f"drawbox=x=0:y=0:w=32:h=32:c=white:t=fill:enable='gte(t\\,{last:.4f})',{vf},mpdecimate"
    args = [ffmpeg, *ff.GLOBAL_ARGS, "-v", "error", "-f", "lavfi",
            "-i", f"color=c={BACKGROUND}:s={w + w % 2}x{h + h % 2}:r={fps}:d={duration:.6f}",
            "-vf", (f"format={pix_fmt},crop={w}:{h}:0:0," if (w | h) & 1 else "") + vf]
    if codec == "h264":
        args += ["-c:v", "libx264", "-preset", preset, "-pix_fmt", pix_fmt, "-g", str(gop),
                 "-keyint_min", str(gop), "-sc_threshold", "0", "-bf", str(bframes)]
        if bframes:  # ultrafast disables B-frames; re-enable them explicitly
            args += ["-x264-params", f"bframes={bframes}:b-adapt=0"]
        if faststart:
            args += ["-movflags", "+faststart"]
        if vfr:
            args += ["-fps_mode", "vfr"]

    elif codec == "vp8":
        args += ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k",
                 "-g", str(gop), "-pix_fmt", "yuv420p"]
    else:
        raise ValueError(f"codec must be h264 or vp8, not {codec!r}")
    if rotate is None:
        ff.run([*args, str(path)], what="ffmpeg (make_screen)")
        return path
    plain = path.with_name(f".{path.stem}.plain{path.suffix}")
    ff.run([*args, str(plain)], what="ffmpeg (make_screen)")
    # ffmpeg 5.1 writes the display matrix from the rotate tag on a stream copy only
    ff.run([ffmpeg, *ff.GLOBAL_ARGS, "-v", "error", "-i", str(plain), "-c", "copy", "-metadata:s:v:0",
            f"rotate={rotate}", str(path)], what="ffmpeg (make_screen rotation)")
    plain.unlink()
    return path


def _detect(path: str | Path, args: Sequence[str], ffmpeg: str) -> str:
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-i", str(path), *args, "-f", "null", "-"]
    return ff.run(argv, what="ffmpeg (detector)").stderr


_NUM = r"(-?[0-9.]+)"


def detect_beeps(path: str | Path, *, ffmpeg: str = "ffmpeg") -> list[float]:
    """Beep onsets: ends of silences that are followed by another silence (a real beep, not EOF)."""
    err = _detect(path, ["-vn", "-af", "silencedetect=n=-30dB:d=0.05"], ffmpeg)
    ends = [float(m) for m in re.findall(rf"silence_end: {_NUM}", err)]
    starts = [float(m) for m in re.findall(rf"silence_start: {_NUM}", err)]
    return [e for e in ends if any(s > e for s in starts)]


def detect_flashes(path: str | Path, *, ffmpeg: str = "ffmpeg") -> list[float]:
    """Onsets of full-white frames (negated, they are black)."""
    err = _detect(path, ["-an", "-vf", "negate,blackdetect=d=0.05:pix_th=0.10"], ffmpeg)
    return [float(m) for m in re.findall(rf"black_start:{_NUM}", err)]


def detect_black(path: str | Path, *, min_duration: float = 0.1, ffmpeg: str = "ffmpeg") -> list[tuple[float, float]]:
    """Black intervals ``(start, end)`` lasting at least ``min_duration`` s: the padding slices."""
    err = _detect(path, ["-an", "-vf", f"blackdetect=d={min_duration:g}:pix_th=0.05"], ffmpeg)
    return [(float(a), float(b)) for a, b in re.findall(rf"black_start:{_NUM} black_end:{_NUM}", err)]


def decode_errors(path: str | Path, *, ffmpeg: str = "ffmpeg") -> str:
    """Everything ffmpeg reports at level error while decoding the whole file ('' = clean)."""
    argv = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"]
    res = ff.run(argv, check=False, what="ffmpeg (decode check)")
    return res.stderr.strip()
