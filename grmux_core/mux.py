"""Execute a :class:`~grmux_core.plan.MuxPlan` with ffmpeg, and verify the result.

Fast path: one black padding clip per output signature (same codec, size, pix_fmt, profile, frame
rate and — crucially — MP4 timescale), encoded once and kept in the padding-clip cache under the
temp dir (:mod:`grmux_core.scratch`); an ffconcat list with ``duration`` + ``outpoint`` per entry
pins every span to its slot; the video is stream-copied. The audio is rendered with real silence
(``adelay`` + ``amix`` + ``apad`` + ``atrim``, no edit-list offsets) and encoded to AAC **in the same
ffmpeg invocation** that writes the MP4 (``+faststart``): one process for the whole mux.

Slow path, only for spans the plan marks ``reencode``: that span alone is encoded to the output
signature with libx264 (scale/letterbox, fps, pix_fmt, no B-frames, same timescale) and then joins
the list like any other clip.

Each input is probed once (:func:`probe_media`): the planner's inputs and the per-call input checks
read the same probe. The output is written under a temporary name next to the target, verified,
and renamed only then; on any failure nothing is left behind. ``docs/performance.md`` has the
measured figures (``benchmarks/mux_speed.py`` prints them).
"""

from __future__ import annotations

import bisect
import logging
import os
import shutil
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from grmux_core import ffmpeg as ff
from grmux_core.errors import MediaError, VerificationError
from grmux_core.plan import DEFAULT_DRIFT, AudioInput, DriftBand, MuxPlan, ScreenInput, VideoSpan, plan_mux
from grmux_core.probe import (
    AudioInfo,
    MediaInfo,
    Mp3Gapless,
    Sps,
    VideoSignature,
    id3v2_size,
    parse_framecrc,
    parse_mp3_gapless,
    parse_probe,
    parse_sps_trace,
)
from grmux_core.scratch import padding_cache_dir, trim_padding_cache

log = logging.getLogger("grmux.mux")

#: Verification: the output duration must equal the call within this (spec §5).
DURATION_TOLERANCE = 0.1
#: AAC encoder priming in samples; ffmpeg may report it as a negative audio start_time.
AAC_PRIMING_SAMPLES = 1024


@dataclass(frozen=True)
class MuxTools:
    """Executables and limits, from ``[processing]``."""

    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    timeout: float = ff.DEFAULT_TIMEOUT
    probe_timeout: float = ff.DEFAULT_PROBE_TIMEOUT
    x264_preset: str = "veryfast"  # for re-encoded spans only; pads are trivial to encode


# ---------------------------------------------------------------- probing inputs

def probe_file(path: str | os.PathLike[str], tools: MuxTools = MuxTools(),
               logger: logging.Logger | None = None, *, every_packet: bool = False) -> MediaInfo:
    """Probe one file with one ffprobe into a :class:`MediaInfo`.

    ``every_packet`` also reads every packet (keyframes, where the video really ends). A video
    whose container has no duration (MediaRecorder WebM) is read that way in any case: its
    duration is where its packets end.
    """
    data = ff.probe(path, ffprobe=tools.ffprobe, timeout=tools.probe_timeout, logger=logger,
                    every_packet=every_packet)
    info = parse_probe(data, os.fspath(path), every_packet=every_packet)
    if info.duration is None and info.video is not None and not every_packet:
        return probe_file(path, tools, logger, every_packet=True)
    if not info.duration or info.duration <= 0:
        raise MediaError(f"media file {path} has no duration (empty or truncated)")
    return info


def _mp3_gapless(path: str | os.PathLike[str]) -> tuple[Mp3Gapless | None, int]:
    """The gapless header of an MP3 file and the size of its MP3 stream (after any ID3v2 tag)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16384)
            skip = id3v2_size(head)
            if skip:
                f.seek(skip)
                head = f.read(16384)
            size = os.fstat(f.fileno()).st_size - skip
    except OSError:
        return None, 0
    return parse_mp3_gapless(head), size


def mp3_header_duration(path: str | os.PathLike[str], info: MediaInfo) -> float | None:
    """Exact decoded duration of an MP3 from its Xing/Info + LAME header, without decoding.

    ffmpeg trims the LAME encoder delay and padding when it decodes (mp3dec.c), so the decoded
    length is ``frames × samples_per_frame − delay − padding``: exact to the sample (checked
    against full decodes at 8/16/22.05/44.1 kHz, CBR and VBR, with ID3v2 tags). Returns None
    (the caller decodes) when there is no such header, or when it disagrees with ffprobe's
    container duration by more than one frame (a tag from an edited or damaged file).
    """
    gapless, _ = _mp3_gapless(path)
    if gapless is None or info.audio is None or gapless.sample_rate != info.audio.sample_rate:
        return None
    if info.duration is None or abs(gapless.container_duration - info.duration) > \
            gapless.samples_per_frame / gapless.sample_rate + 0.001:
        return None
    return gapless.duration


def mp3_fast_probe(path: str | os.PathLike[str]) -> MediaInfo | None:
    """An MP3 whose header says all a probe would, with no process started.

    ffprobe reads the same first frame (it decodes nothing further), so the result is what it
    would report: one MP3 stream, its rate and channels, and the container duration (every frame,
    encoder delay and padding included). A file shorter than its header says (truncated upload)
    returns None, and so does anything without such a header: the caller then runs ffprobe.
    """
    gapless, size = _mp3_gapless(path)
    if gapless is None or gapless.stream_bytes is None or size < gapless.stream_bytes:
        return None
    audio = AudioInfo("mp3", gapless.sample_rate, gapless.channels, 0.0)
    return MediaInfo(os.fspath(path), "mp3", gapless.container_duration, None, audio, n_video=0, n_audio=1)


def mp3_duration(path: str | os.PathLike[str], info: MediaInfo, tools: MuxTools = MuxTools(),
                 logger: logging.Logger | None = None) -> float:
    """Decoded duration of an MP3: from its gapless header when it has one, else by decoding it."""
    duration = mp3_header_duration(path, info)
    if duration is not None:
        (logger or log).debug("%s: %.6f s decoded (from the Xing/LAME header)", path, duration)
        return duration
    return ff.decoded_duration(path, ffmpeg=tools.ffmpeg, timeout=tools.timeout, logger=logger)


def probe_media(paths: Sequence[str], tools: MuxTools = MuxTools(), logger: logging.Logger | None = None,
                *, every_packet: Collection[str] = ()) -> list[MediaInfo | MediaError]:
    """Probe each file once, in order; a file that cannot be probed gives its MediaError in its place.

    A ``.mp3`` whose Xing/LAME header is complete is read in Python (:func:`mp3_fast_probe`); the
    other files are probed by ffprobe, side by side when there are several (each ffprobe is mostly
    process start-up). The paths in ``every_packet`` have every packet read in the same process.
    """
    results: list[MediaInfo | MediaError | None] = [
        mp3_fast_probe(p) if str(p).lower().endswith(".mp3") else None for p in paths]
    for info in results:
        if info is not None:
            (logger or log).debug("%s: MP3 %d Hz x %d (from its Xing/LAME header, no ffprobe)",
                                  info.path, info.audio.sample_rate, info.audio.channels)

    def one(path: str) -> MediaInfo | MediaError:
        try:
            return probe_file(path, tools, logger, every_packet=path in every_packet)
        except MediaError as exc:
            return exc

    slow = [k for k, found in enumerate(results) if found is None]
    if len(slow) <= 1:  # the usual call: one MP3 + one screen recording → one ffprobe, no threads
        probed = [one(paths[k]) for k in slow]
    else:
        from concurrent.futures import ThreadPoolExecutor
        from contextvars import copy_context

        with ThreadPoolExecutor(max_workers=4) as pool:  # each probe in a copy of this context: the stop token
            probed = list(pool.map(lambda p: copy_context().run(one, p), [paths[k] for k in slow]))
    for k, found in zip(slow, probed):
        results[k] = found
    return [r for r in results if r is not None]


def audio_input(path: str, start: datetime, info: MediaInfo, tools: MuxTools = MuxTools(),
                logger: logging.Logger | None = None, metadata_duration: float | None = None) -> AudioInput:
    """The planner's input for one probed call audio (an MP3 counts its decoded samples)."""
    if info.audio is None:
        raise MediaError(f"audio recording {path} has no audio stream")
    duration = info.duration or 0.0
    if info.audio.codec == "mp3":  # container duration includes encoder delay + padding
        duration = mp3_duration(path, info, tools, logger)
    return AudioInput(os.fspath(path), start, duration, info.audio.sample_rate or 8000, info.audio.channels or 1,
                      metadata_duration)


def screen_input(path: str, start: datetime, info: MediaInfo,
                 metadata_duration: float | None = None) -> ScreenInput:
    """The planner's input for one probed screen recording (keyframes when its packets were read)."""
    if info.video is None:
        raise MediaError(f"screen recording {path} has no video stream")
    return ScreenInput(os.fspath(path), start, info.duration or 0.0, info.video, info.format_name, info.keyframes,
                       metadata_duration, info.frame_times)


Timed = tuple[str, datetime] | tuple[str, datetime, datetime]


def _metadata_span(entry: Timed) -> float | None:
    """stop − start of a ``(path, start[, stop])`` entry (None without a stop)."""
    return (entry[2] - entry[1]).total_seconds() if len(entry) > 2 else None  # type: ignore[misc]


def probe_inputs(
    audios: Sequence[Timed],
    screens: Sequence[Timed],
    tools: MuxTools = MuxTools(),
    logger: logging.Logger | None = None,
) -> tuple[list[AudioInput], list[ScreenInput]]:
    """Probe every input once and build the planner's inputs (stop = start + probed duration).

    Entries are ``(path, start)`` or ``(path, start, metadata stop)``; with a stop the planner
    checks the file's length against it (clock drift). Every packet is read only for screen
    recordings that start before the call (the only head cuts the planner makes need their
    keyframe times).
    """
    if not audios:
        raise MediaError("a call needs at least one audio recording")
    call_start = min(e[1] for e in audios)
    paths = [os.fspath(e[0]) for e in [*audios, *screens]]
    infos = probe_media(paths, tools, logger, every_packet={os.fspath(e[0]) for e in screens if e[1] < call_start})
    for info in infos:
        if isinstance(info, MediaError):
            raise info
    a_in = [audio_input(os.fspath(e[0]), e[1], i, tools, logger, _metadata_span(e))  # type: ignore[arg-type]
            for e, i in zip(audios, infos)]
    s_in = [screen_input(os.fspath(e[0]), e[1], i, _metadata_span(e))  # type: ignore[arg-type]
            for e, i in zip(screens, infos[len(audios):])]
    return a_in, s_in


# ---------------------------------------------------------------- building pieces

#: Bump when the padding recipe changes: cached clips of older recipes are then ignored.
PAD_RECIPE = 2
_PAD_LOCK = threading.Lock()


def _sig_key(sig: VideoSignature, recipe: Sequence[str] = ()) -> str:
    """Cache file name of the padding clip for ``sig``; ``recipe`` (the encoder argv) is hashed in,
    so a different ffmpeg executable or encoder option never reuses another one's clip."""
    fps = sig.fps.replace("/", "_")
    recipe_text = "\0".join([str(PAD_RECIPE), *recipe])
    digest = f"{zlib.crc32(recipe_text.encode()):08x}"  # zlib: already loaded, hashlib is a slow import
    return (f"pad_{sig.codec}_{sig.width}x{sig.height}_{sig.pix_fmt}_{sig.timescale}_{fps}_"
            f"{(sig.profile or 'any').replace(' ', '')}_{sig.level or 0}_{digest}.mp4")


def _x264_args(sig: VideoSignature, preset: str) -> list[str]:
    args = ["-c:v", "libx264", "-preset", preset, "-pix_fmt", sig.pix_fmt, "-bf", "0",
            "-video_track_timescale", str(sig.timescale)]
    if sig.x264_profile:
        args += ["-profile:v", sig.x264_profile]
    if sig.level:
        args += ["-level", str(sig.level)]
    return args


def _pad_features(sig: VideoSignature) -> list[str]:
    """x264 options that make the padding clip's SPS the content's profile: ``ultrafast`` alone turns
    CABAC and 8x8 transforms off, which makes a Constrained Baseline SPS whatever ``-profile`` says,
    and that SPS would become the output's decoder configuration in front of High/CABAC frames."""
    if sig.profile in ("Main",):
        return ["-x264-params", "cabac=1"]
    if sig.profile and sig.profile.startswith("High"):
        return ["-x264-params", "cabac=1:8x8dct=1"]
    return []


def padding_clip(sig: VideoSignature, cache_dir: Path, tools: MuxTools,
                 logger: logging.Logger | None = None) -> Path:
    """A one-frame black H.264 MP4 matching ``sig``: from the cache, or encoded once and cached.

    The ffconcat ``duration`` of each entry holds that frame for the whole slice (MP4 stores the
    long sample duration), so a slice of any length costs one frame. The tail ends with one extra
    one-frame entry so the video track ends exactly at the call's end (see :func:`write_ffconcat`).
    Built by hand: a lavfi ``color`` source plus ordered codec options gain nothing from ffmpeg-python.

    The cache may be shared by several processes: a clip is encoded under a unique name and
    renamed into place (atomic), so a reader finds a whole clip or none; a hit refreshes its
    time, so the trim (:func:`~grmux_core.scratch.trim_padding_cache`) evicts the least used.
    """
    args = [tools.ffmpeg, *ff.GLOBAL_ARGS, "-v", "error", "-f", "lavfi",
            "-i", f"color=c=black:s={sig.width + sig.width % 2}x{sig.height + sig.height % 2}:r={sig.fps}",
            "-vf", f"format={sig.pix_fmt},crop={sig.width}:{sig.height}:0:0", "-frames:v", "1",
            *_x264_args(sig, "ultrafast"), *_pad_features(sig), "-tune", "stillimage", "-an"]
    path = cache_dir / _sig_key(sig, args)
    if _cached(path):
        return path
    with _PAD_LOCK:  # one encode per signature even when calls run on threads
        if _cached(path):
            return path
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}-{threading.get_ident()}.part.mp4")
        try:
            ff.run([*args, str(tmp)], timeout=tools.timeout, logger=logger, what="ffmpeg (padding clip)")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    trim_padding_cache(cache_dir)
    return path


def _cached(path: Path) -> bool:
    """Whether ``path`` is a complete cached clip; marks it as just used."""
    try:
        if path.stat().st_size == 0:
            return False
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def own_padding_clip(sig: VideoSignature, cache_dir: Path, work: Path, tools: MuxTools,
                     logger: logging.Logger | None = None) -> Path:
    """The padding clip as a hard link in this mux's ``work`` folder (a copy across file systems),
    so a trim of the shared cache by another process can never remove it mid-mux."""
    own = work / "pad.mp4"
    for _ in range(3):
        clip = padding_clip(sig, cache_dir, tools, logger)
        try:
            os.link(clip, own)
        except FileNotFoundError:
            continue  # trimmed by another process in between: encode it again
        except OSError:
            shutil.copyfile(clip, own)
        return own
    raise MediaError(f"the padding clip cache {cache_dir} loses its clips as soon as they are made: "
                     "is another program cleaning it?")


def retime_copy(source: str, scale: float, out: Path, tools: MuxTools,
                logger: logging.Logger | None = None) -> Path:
    """A stream copy of ``source``'s video with every timestamp multiplied by ``scale``
    (``-itsscale``): drift correction without re-encoding a frame (the time base is kept)."""
    ff.run([tools.ffmpeg, *ff.GLOBAL_ARGS, "-v", "error", "-itsscale", f"{scale:.9f}", "-i", source,
            "-map", "0:v:0", "-c", "copy", "-an", str(out)], timeout=tools.timeout, logger=logger,
           what="ffmpeg (re-time for drift)")
    return out


def reencode_span(span: VideoSpan, sig: VideoSignature, out: Path, tools: MuxTools,
                  logger: logging.Logger | None = None, source: str | None = None) -> Path:
    """Encode ``span`` of its source (or of ``source``, its re-timed copy) to the output signature
    (letterboxed, CFR, no B-frames)."""
    import ffmpeg  # ffmpeg-python: builds the filter chain; imported only on the slow path

    w, h = sig.width, sig.height
    back = span.seek_back
    # The output track carries the main screen's rotation: a source with the same one keeps its
    # coded pixels (the track's matrix turns them); any other is turned upright by the decoder.
    keep_coded = bool(sig.rotation) and span.src_rotation == sig.rotation
    src = ffmpeg.input(source or span.source, ss=f"{span.src_in - back:.6f}", t=f"{span.src_len + back:.6f}",
                       **({"noautorotate": None} if keep_coded else {}))
    v = src.video
    sw, sh = span.src_size
    if span.src_rotation in (90, 270) and not keep_coded:
        sw, sh = sh, sw
    if not (0 < sw <= w and 0 < sh <= h):  # larger (or unknown): scale down to fit; smaller: pad only
        v = v.filter("scale", w, h, force_original_aspect_ratio="decrease")
    v = (v.filter("pad", w, h, "(ow-iw)/2", "(oh-ih)/2", color="black")
         .filter("setsar", 1))
    if span.variable_rate:
        # Every source frame at its own time (no CFR grid: a burst keeps all its frames, a static
        # stretch stays one frame); the frame on screen at the cut is shown from the span's start.
        v = v.filter("setpts", f"max(PTS-{back:.6f}/TB,0)")
    else:
        v = v.filter("fps", fps=sig.fps)
    v = v.filter("format", sig.pix_fmt)
    # Codec options go in as one ordered list: ffmpeg-python would sort the kwargs.
    node = ffmpeg.output(v, str(out), an=None, fps_mode="passthrough" if span.variable_rate else "cfr")
    args = ff.compile_stream(node, tools.ffmpeg, [*ff.GLOBAL_ARGS, "-v", "error"])
    extra = _x264_args(sig, tools.x264_preset) + ["-g", str(max(1, round(sig.fps_float * 2)))]
    if span.variable_rate:  # the encoder's default time base is 1/rate: it would round times to that grid
        extra += ["-enc_time_base", f"1/{sig.timescale}", "-force_key_frames", "expr:gte(t,n_forced*2)"]
    args = args[:-1] + extra + args[-1:]
    ff.run(args, timeout=tools.timeout, logger=logger, what="ffmpeg (re-encode span)")
    return out


def _q(path: Path | str) -> str:
    return "'" + str(Path(path).resolve()).replace("'", "'\\''") + "'"


def write_ffconcat(plan: MuxPlan, files: list[Path], list_path: Path) -> Path:
    """The concat list: ``duration`` pins each span's slot; ``outpoint`` ends it before the next
    clip's first DTS (B-frame reorder delay, notes §1.3) so DTS stay monotonic."""
    lines = ["ffconcat version 1.0"]
    spans = plan.video
    frame = 1.0 / (plan.signature.fps_float or 25.0)
    half_frame = frame / 2
    for k, (span, f) in enumerate(zip(spans, files)):
        # Before a join, also drop a frame starting less than half a frame before the boundary:
        # clips start off the frame grid, and such a frame would collide with the next clip's
        # first frame once timestamps are rounded to the frame rate (decoders report it as
        # non-monotonic DTS). The previous frame holds instead.
        cut = max(spans[k + 1].reorder_delay, span.reorder_delay, half_frame) if k + 1 < len(spans) else 0.0
        lines.append(f"file {_q(f)}")
        if span.action == "copy":
            origin = span.source_start_time + span.src_in
            if span.src_in > 0:
                lines.append(f"inpoint {origin:.6f}")
            lines.append(f"outpoint {origin + max(span.src_len - cut, min(span.src_len, 0.001)):.6f}")
        elif span.action == "reencode":  # starts at 0, no B-frames
            lines.append(f"outpoint {max(span.src_len - cut, min(span.src_len, 0.001)):.6f}")
        elif k + 1 == len(spans) and span.length > 1.5 * frame:
            # final padding: hold the frame, then one more frame so the track ends at the call's end
            lines.append(f"duration {span.length - frame:.6f}")
            lines.append(f"file {_q(f)}")
            lines.append(f"duration {frame:.6f}")
            continue
        lines.append(f"duration {span.length:.6f}")
    list_path.write_text("\n".join(lines) + "\n")
    return list_path


def _audio_bitrate(sample_rate: int, channels: int) -> str:
    return "32k" if sample_rate <= 16000 and channels <= 1 else "96k"


def final_mux_args(plan: MuxPlan, list_path: Path, out: Path, audios: Sequence[AudioInput],
                   tools: MuxTools) -> list[str]:
    """One ffmpeg invocation: concat-copied video + the whole audio timeline encoded to AAC.

    Built by hand (the same argv ffmpeg-python compiled before): this runs for every call, and
    importing ffmpeg-python is a visible share of a short job, for a graph of at most a few
    filters whose values are all numbers.
    """
    T = plan.duration
    inputs = ["-f", "concat", "-safe", "0", "-i", str(list_path)]
    delays, legs = [], []
    for k, seg in enumerate(plan.audio_segments, start=1):
        inputs += ["-i", str(seg.source)]
        if seg.start > 0:
            label = f"[d{k}]"
            delays.append(f"[{k}:a]adelay=all=1:delays={seg.start * 1000:.3f}{label}")
            legs.append(label)
        else:
            legs.append(f"[{k}:a]")
    chain = delays
    if len(legs) == 1:
        mixed = legs[0]
    else:
        chain.append(f"{''.join(legs)}amix=duration=longest:inputs={len(legs)}:normalize=0[mix]")
        mixed = "[mix]"
    chain.append(f"{mixed}apad=whole_dur={T:.6f},atrim=end={T:.6f}[aout]")
    rate = max(a.sample_rate for a in audios)
    chans = max(a.channels for a in audios)
    return [tools.ffmpeg, *ff.GLOBAL_ARGS, "-v", "warning", *inputs, "-filter_complex", ";".join(chain),
            "-map", "0:v", "-map", "[aout]", "-f", "mp4", "-ac", str(chans), "-acodec", "aac", "-ar", str(rate),
            "-b:a", _audio_bitrate(rate, chans), "-movflags", "+faststart", "-vcodec", "copy",
            *_video_track_args(plan), str(out)]


def _video_track_args(plan: MuxPlan) -> list[str]:
    """Sample entry and track matrix of the output video.

    When the track joins clips of several encodes (padding, re-encoded spans, other recordings),
    each brings its own SPS/PPS: the concat demuxer puts them in-band before every keyframe, and
    the sample entry is ``avc3`` (ISO/IEC 14496-15: parameter sets in the samples) — with ``avc1``
    the sample entry would hold the first clip's parameter sets only, and claim them valid for
    every frame. One copied recording alone stays ``avc1``. The main screen's rotation (display
    matrix) is set on the track, so it holds for every frame whatever clip comes first.
    """
    args = []
    files = {s.source if s.action == "copy" else f"{s.action}:{k}" for k, s in enumerate(plan.video)}
    files = {f if not f.startswith("pad:") else "pad" for f in files if f is not None}
    if len(files) > 1:
        args += ["-tag:v", "avc3"]
    if plan.signature.rotation:
        args += ["-metadata:s:v:0", f"rotate={plan.signature.rotation}"]
    return args


def execute_plan(
    plan: MuxPlan,
    audios: Sequence[AudioInput],
    output: str | os.PathLike[str],
    *,
    tools: MuxTools = MuxTools(),
    workdir: str | os.PathLike[str] | None = None,
    pad_cache_dir: str | os.PathLike[str] | None = None,
    logger: logging.Logger | None = None,
    progress: ff.ProgressCallback | None = None,
    verify: bool = True,
    timings: dict[str, float] | None = None,
) -> MediaInfo | None:
    """Render ``plan`` to ``output`` (MP4). Returns the verified output's probe (None if not verified).

    ``workdir``: scratch space (a fresh temp dir under it is made and removed); ``pad_cache_dir``:
    the padding-clip cache (default: the one under ``workdir`` or the system temp dir). ``timings``,
    when given, receives the seconds spent per stage (``pad``, ``reencode``, ``mux``, ``verify``).
    """
    logger = logger or log
    timings = {} if timings is None else timings
    cache = Path(pad_cache_dir) if pad_cache_dir else padding_cache_dir(workdir or tempfile.gettempdir())
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(f".{out.stem}.partial-{os.getpid()}.mp4")
    work = Path(tempfile.mkdtemp(prefix="grmux-mux-", dir=workdir))
    verifier: ff.Prestarted | None = None
    scanner: ff.Prestarted | None = None
    try:
        list_path = _concat_list(plan, cache, work, tools, logger, timings)
        if verify:  # their start-up overlaps the mux; they read the file once that is written
            verifier = start_verifier(tools, logger)
            scanner = start_sps_scanner(tools, logger)
        t = time.perf_counter()
        result = ff.run(final_mux_args(plan, list_path, tmp_out, audios, tools), timeout=tools.timeout,
                        logger=logger, progress=progress, what="ffmpeg (mux)")
        if result.stderr.strip():  # run at -v warning: timestamp fix-ups at joins show up here
            logger.warning("ffmpeg warnings while muxing %s:\n%s", out.name, ff._tail(result.stderr))
        t = _lap(timings, "mux", t)
        info = finish_verifier(verifier, tmp_out, plan.duration, tools, plan=plan,
                               sps_scanner=scanner) if verifier else None
        os.replace(tmp_out, out)
        _lap(timings, "verify", t)
        return info
    except BaseException:
        tmp_out.unlink(missing_ok=True)
        raise
    finally:
        for proc in (verifier, scanner):
            if proc is not None:
                proc.cancel()  # no-op once finished; a mux failure leaves it waiting on stdin
        shutil.rmtree(work, ignore_errors=True)


def _lap(timings: dict[str, float], stage: str, since: float) -> float:
    now = time.perf_counter()
    timings[stage] = timings.get(stage, 0.0) + now - since
    return now


def _concat_list(plan: MuxPlan, cache: Path, work: Path, tools: MuxTools, logger: logging.Logger,
                 timings: dict[str, float]) -> Path:
    """The clips of every video span (padding from the cache, re-encoded spans, copied sources)
    and the ffconcat list that joins them, in ``work``."""
    files: list[Path] = []
    pad: Path | None = None
    retimed: dict[tuple[str, float], Path] = {}
    t = time.perf_counter()
    for k, span in enumerate(plan.video):
        source = span.source or ""
        if span.kind == "recording" and span.time_scale != 1.0:
            key = (source, span.time_scale)
            if key not in retimed:
                retimed[key] = retime_copy(source, span.time_scale, work / f"retimed{len(retimed):02d}.mp4",
                                           tools, logger)
                t = _lap(timings, "retime", t)
            source = str(retimed[key])
        if span.action == "pad":
            if pad is None:
                pad = own_padding_clip(plan.signature, cache, work, tools, logger)
                t = _lap(timings, "pad", t)
            files.append(pad)
        elif span.action == "reencode":
            files.append(reencode_span(span, plan.signature, work / f"span{k:03d}.mp4", tools, logger, source))
            t = _lap(timings, "reencode", t)
        else:
            files.append(Path(source))
    list_path = write_ffconcat(plan, files, work / "video.ffconcat")
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("ffconcat list:\n%s", list_path.read_text())
    return list_path


# ---------------------------------------------------------------- verification

def check_output(info: MediaInfo, expected_duration: float) -> list[str]:
    """PURE: what is wrong with a probed output (empty list = good)."""
    problems = []
    if info.n_video != 1:
        problems.append(f"{info.n_video} video streams (expected 1)")
    if info.n_audio != 1:
        problems.append(f"{info.n_audio} audio streams (expected 1)")
    if info.duration is None or abs(info.duration - expected_duration) > DURATION_TOLERANCE:
        problems.append(f"duration {info.duration} s, call is {expected_duration:.3f} s "
                        f"(tolerance {DURATION_TOLERANCE * 1000:.0f} ms)")
    if info.video is not None and abs(info.video.start_time) > 0.001:
        problems.append(f"video starts at {info.video.start_time:.3f} s, not 0")
    if info.audio is not None:
        # ffmpeg hides AAC priming behind an edit list; some builds report it as a negative start.
        priming = AAC_PRIMING_SAMPLES / (info.audio.sample_rate or 8000)
        if not (-priming - 0.001 <= info.audio.start_time <= 0.001):
            problems.append(f"audio starts at {info.audio.start_time:.3f} s, not 0")
    return problems


def verify_output(path: str | os.PathLike[str], expected_duration: float, *, tools: MuxTools = MuxTools(),
                  logger: logging.Logger | None = None) -> MediaInfo:
    """Probe a muxed file; raise :class:`VerificationError` unless it is a playable call."""
    try:
        data = ff.probe(path, ffprobe=tools.ffprobe, timeout=tools.probe_timeout, logger=logger, first_packets=0)
    except VerificationError:
        raise
    except MediaError as exc:
        raise VerificationError(f"muxed output {path} cannot be read", stderr_tail=exc.stderr_tail,
                                command=exc.command) from exc
    return _checked(data, path, expected_duration)


def _checked(data: dict, path: str | os.PathLike[str], expected_duration: float) -> MediaInfo:
    info = parse_probe(data, os.fspath(path))
    problems = check_output(info, expected_duration)
    if problems:
        raise VerificationError(f"muxed output {path} failed verification: " + "; ".join(problems))
    return info


def start_verifier(tools: MuxTools = MuxTools(), logger: logging.Logger | None = None) -> ff.Prestarted:
    """The verification ffprobe, started now (while the mux runs) and fed the file later."""
    return ff.Prestarted(ff.probe_args("pipe:0", tools.ffprobe, first_packets=0), logger=logger,
                         what="ffprobe (verify)")


def start_sps_scanner(tools: MuxTools = MuxTools(), logger: logging.Logger | None = None) -> ff.Prestarted:
    """An ffmpeg that reads only the keyframes of the output's video (``-discard nokey``: the other
    samples are skipped unread) and decodes no picture: it prints every SPS (the sample
    description's, then each in-band one: ``filter_units`` keeps SPS NAL units, ``trace_headers``
    prints their fields) on stderr and each keyframe's timestamps (``framecrc``) on stdout. Every
    span of a plan starts on a keyframe (padding clips, re-encoded spans and copied cuts all do),
    so those timestamps are enough to check the spans' positions. Started early like the
    verifier; fed the file later."""
    return ff.Prestarted([tools.ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-v", "info", "-discard", "nokey",
                          "-i", "pipe:0", "-map", "0:v:0", "-c", "copy",
                          "-bsf:v", "filter_units=pass_types=7,trace_headers", "-f", "null", "-",
                          "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"], logger=logger,
                         what="ffmpeg (keyframe scan)")


def _family(pix_fmt: str) -> str:
    return pix_fmt.replace("yuvj", "yuv")[:7]


def check_track(plan: MuxPlan, info: MediaInfo, keyframes: list[float], sps: list[Sps]) -> list[str]:
    """PURE: what is wrong with the output's video track against the plan (empty list = good).

    * every SPS (the sample description's first, then each in-band one) gives the track's size
      and chroma format: no frame changes resolution or pixel format mid-track, and the sample
      description is valid for every frame;
    * a keyframe starts every span at its planned start (within one output frame, plus the
      B-frame reorder delay of a copied clip it joins), and a padding
      slice holds no keyframe but its own black one: the first and last screen frames and every
      padding boundary are where the plan put them.

    ``keyframes``: the output's keyframe PTS in seconds (:func:`parse_framecrc`).
    """
    problems: list[str] = []
    v = info.video
    if v is None:
        return problems
    if not sps:
        problems.append("no H.264 sequence parameter set found in the video track")
    for k, one in enumerate(sps):
        if (one.width, one.height, one.chroma) != (v.width, v.height, _family(v.pix_fmt)):
            where = "the sample description" if k == 0 else f"in-band SPS #{k}"
            problems.append(f"{where} says {one.width}x{one.height} {one.chroma}, the track "
                            f"{v.width}x{v.height} {v.pix_fmt}")
            break
    times = sorted(keyframes)
    if not times:
        return [*problems, "the video track has no keyframe"]
    tol = 1.0 / (plan.signature.fps_float or 25.0) + 0.001
    previous_delay = 0.0
    for span in plan.video:
        j = bisect.bisect_left(times, span.start - tol)
        what = "padding" if span.kind == "padding" else f"screen #{span.source_index}"
        # Next to a copied clip with B-frames, a keyframe's *packet* PTS can be up to that clip's
        # reorder delay late (the muxer's composition offsets); decoders still present it on time.
        late = max(span.reorder_delay, previous_delay)
        previous_delay = span.reorder_delay
        if j >= len(times) or times[j] > span.start + tol + late:
            problems.append(f"no keyframe at {span.start:.3f} s where the plan starts {what} "
                            f"(nearest {min(times, key=lambda x: abs(x - span.start)):.3f} s)")
            break
        if span.kind == "padding":  # one black frame per slice (the tail: one more); more = content there
            inside = bisect.bisect_left(times, span.end - tol) - bisect.bisect_left(times, span.start + tol)
            if inside > 1:
                problems.append(f"{inside + 1} keyframes in the padding at {span.start:.3f}–{span.end:.3f} s: "
                                "screen content where the plan has none")
                break
    return problems


def finish_verifier(verifier: ff.Prestarted, path: str | os.PathLike[str], expected_duration: float,
                    tools: MuxTools = MuxTools(), *, plan: MuxPlan | None = None,
                    sps_scanner: ff.Prestarted | None = None) -> MediaInfo:
    """:func:`verify_output` with a :func:`start_verifier` process: the same probe and checks;
    with ``plan`` and a :func:`start_sps_scanner` process, also :func:`check_track`."""
    import json

    scanned: list[ff.RunResult | MediaError] = []
    feeder = None
    if sps_scanner is not None:  # fed at the same time as the verifier: the two reads overlap
        def scan() -> None:
            try:
                scanned.append(sps_scanner.finish(path, timeout=tools.probe_timeout))
            except MediaError as exc:  # reported below, in the caller's thread
                scanned.append(exc)

        feeder = threading.Thread(target=scan, daemon=True)
        feeder.start()
    try:
        result = verifier.finish(path, timeout=tools.probe_timeout)
        data = json.loads(result.stdout)
    except MediaError as exc:
        raise VerificationError(f"muxed output {path} cannot be read", stderr_tail=exc.stderr_tail,
                                command=exc.command) from exc
    except json.JSONDecodeError as exc:
        raise VerificationError(f"muxed output {path} cannot be read: ffprobe printed no JSON",
                                stderr_tail=ff._tail(result.stderr), command=result.args) from exc
    finally:
        if feeder is not None:
            feeder.join()
    info = _checked(data, path, expected_duration)
    if plan is None or sps_scanner is None:
        return info
    found = scanned[0] if scanned else MediaError("the SPS scan gave no result")
    if isinstance(found, MediaError):
        raise VerificationError(f"muxed output {path}: its video cannot be scanned ({found})") from found
    problems = check_track(plan, info, parse_framecrc(found.stdout), parse_sps_trace(found.stderr))
    if problems:
        raise VerificationError(f"muxed output {path} failed verification: " + "; ".join(problems))
    return info


# ---------------------------------------------------------------- one call, end to end

def mux_inputs(
    audios: Sequence[AudioInput],
    screens: Sequence[ScreenInput],
    output: str | os.PathLike[str],
    *,
    max_overlap_ms: int = 500,
    padding_slice_ms: int = 5000,
    drift: DriftBand = DEFAULT_DRIFT,
    tools: MuxTools = MuxTools(),
    workdir: str | os.PathLike[str] | None = None,
    logger: logging.Logger | None = None,
    progress: ff.ProgressCallback | None = None,
    pad_cache_dir: str | os.PathLike[str] | None = None,
    timings: dict[str, float] | None = None,
    on_plan: Callable[[MuxPlan], None] | None = None,
) -> tuple[MuxPlan, MediaInfo]:
    """Plan → run → verify for already probed inputs. Returns the plan and the verified output's probe.

    ``on_plan`` is called with the plan before anything is rendered, so a caller can still show
    the plan (the timeline picture) when rendering or verification then fails. Padding clips come
    from ``pad_cache_dir`` (default: the padding-clip cache under ``workdir`` or the system temp
    dir), so a worker encodes each signature's clip once, not once per call. ``timings``, when
    given, receives the seconds spent per stage: ``plan``, ``pad``, ``reencode``, ``mux``, ``verify``.
    """
    timings = {} if timings is None else timings
    logger = logger or log
    t = time.perf_counter()
    plan = plan_mux(list(audios), list(screens), max_overlap_ms=max_overlap_ms, padding_slice_ms=padding_slice_ms,
                    drift=drift)
    if logger.isEnabledFor(logging.INFO):
        logger.info("mux plan:\n%s", plan.describe())
    timings["plan"] = time.perf_counter() - t
    if on_plan is not None:
        on_plan(plan)
    info = execute_plan(plan, audios, output, tools=tools, workdir=workdir, pad_cache_dir=pad_cache_dir,
                        logger=logger, progress=progress, timings=timings)
    assert info is not None
    return plan, info


def mux_files(
    audios: Sequence[Timed],
    screens: Sequence[Timed],
    output: str | os.PathLike[str],
    *,
    timings: dict[str, float] | None = None,
    tools: MuxTools = MuxTools(),
    logger: logging.Logger | None = None,
    **options: Any,
) -> tuple[MuxPlan, MediaInfo]:
    """Probe → plan → run → verify for local files given as ``(path, start)``; the options are
    :func:`mux_inputs`' (``timings`` also gets ``probe``)."""
    timings = {} if timings is None else timings
    t = time.perf_counter()
    a_in, s_in = probe_inputs(audios, screens, tools, logger or log)
    timings["probe"] = time.perf_counter() - t
    return mux_inputs(a_in, s_in, output, tools=tools, logger=logger, timings=timings, **options)
