"""The alignment planner: PURE (no I/O, no subprocess) — metadata + probes in, a frozen MuxPlan out.

Rules (``docs/architecture.md``, "Alignment rules"), and how this module reads them:

* **Output span** = first audio start → last audio stop. Output time 0 is the first audio start.
  Stops are ``start + probed duration``: the media decides, metadata stops are often rounded.
* **Audio** segments are placed at their wall-clock offsets; uncovered time is silence. Audio
  segments that overlap each other are mixed (nothing is dropped from the call's voice).
* **Screen** segments are placed at their wall-clock offsets, in start order:
  - overlap with the previous placed segment ≤ ``max_overlap_ms`` → the later one is kept whole and
    shifted to start where the previous one ends (its content is late by at most the overlap);
  - a larger overlap → the previous one is truncated where the later one starts (frame-accurate:
    end cuts need no keyframe). A previous segment left with nothing is dropped.
  - *"trailing things shift too"* is read as: a shifted segment moves as a whole, so it may in turn
    overlap the next one; the same rule is applied again with its *shifted* end. Shifts never
    accumulate past a gap, and no segment is ever placed later than ``max_overlap_ms`` after its
    wall-clock time — the bound on A/V offset the spec promises ("one frame plus the tolerated
    overlap"). Shifting everything after an overlap instead would let offsets grow without bound.
  - a later segment that lies *inside* a longer earlier one truncates the earlier one at its start,
    as the spec says; the earlier one's remainder is not resumed (that would need a head cut).
  - everything outside ``[0, duration]`` is cut off.
* **Padding** fills lead, gaps and tail with slices of ``padding_slice_ms`` (the last one of a run
  shortened). A gap shorter than one output frame is not padded: the previous span holds its last
  frame for it (or, at time 0, the first span starts that little bit early).
* **Copy or re-encode**, per span, with the reason written down: a segment is stream-copied when
  its codec/size/pixel format/time base/profile equal the output signature and its start cut falls
  on a keyframe. A start cut between keyframes re-encodes only up to the next keyframe and copies
  the rest. VP8/VP9/WebM input and mismatched parameters re-encode that segment only.
* **Output signature**: the H.264 screen segment showing longest in the output (so the most video
  is copied). Without any H.264 segment: H.264 High, yuv420p, size and rate of the longest one.

Everything is floats/str dataclasses so a plan can be printed, serialised (``to_dict``) and drawn.
"""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from grmux_core.errors import MediaError
from grmux_core.probe import VideoInfo, VideoSignature

EPS = 1e-6
#: Timescale used when no H.264 recording gives one (re-encoded output only).
DEFAULT_TIMESCALE = 90000


@dataclass(frozen=True)
class AudioInput:
    """One call audio recording. ``duration`` is the probed duration in seconds."""

    path: str
    start: datetime
    duration: float
    sample_rate: int = 8000
    channels: int = 1
    #: stop − start from the recording's metadata (None: unknown, no drift check)
    metadata_duration: float | None = None


@dataclass(frozen=True)
class ScreenInput:
    """One screen recording. ``keyframes`` (file PTS, seconds) is needed only when it starts before the call."""

    path: str
    start: datetime
    duration: float
    video: VideoInfo
    format_name: str = ""
    keyframes: tuple[float, ...] | None = None
    #: stop − start from the recording's metadata (None: unknown, no drift check)
    metadata_duration: float | None = None
    #: every frame's PTS (file seconds, sorted) when its packets were read; None: unknown
    frame_times: tuple[float, ...] | None = None
    #: Factor applied to every timestamp of the file (drift correction, set by the planner): the
    #: executor re-times a stream copy of it (``-itsscale``); ``duration``/``keyframes``/``video``
    #: are already in re-timed seconds.
    time_scale: float = 1.0


@dataclass(frozen=True)
class AudioSpan:
    """Audio on the output timeline; ``kind='silence'`` spans have no source."""

    kind: Literal["audio", "silence"]
    start: float
    end: float
    source: str | None = None
    source_index: int | None = None

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class VideoSpan:
    """Video on the output timeline.

    ``src_in`` is the offset into the source (seconds from the file's first timestamp,
    ``source_start_time``); the span shows ``src_in .. src_in + (end - start)`` of it, except for a
    sub-frame hold at its end. ``shift`` is how late the content is against its wall clock.
    ``reorder_delay`` is the B-frame delay of the copied source (0 when re-encoded or padding).
    """

    kind: Literal["recording", "padding"]
    action: Literal["copy", "reencode", "pad"]
    start: float
    end: float
    reason: str
    source: str | None = None
    source_index: int | None = None
    src_in: float = 0.0
    src_len: float = 0.0
    source_start_time: float = 0.0
    shift: float = 0.0
    reorder_delay: float = 0.0
    #: the source's timestamps are multiplied by this first (drift correction); 1 = as recorded
    time_scale: float = 1.0
    #: variable frame rate source: a re-encode keeps every frame at its own timestamp
    variable_rate: bool = False
    #: re-encode of a VFR span: how long before ``src_in`` the frame shown at ``src_in`` started
    #: (the encode starts from that frame and shows it from the span's start)
    seek_back: float = 0.0
    #: the source's coded size and display rotation (a re-encode pads rather than scales when it fits)
    src_size: tuple[int, int] = (0, 0)
    src_rotation: int = 0

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class DriftBand:
    """How far a media file's length may differ from its metadata span (shares, 0.01 = 1 %).

    Up to ``correct_from`` (or :data:`DRIFT_FLOOR_S`, whichever is more) the difference is rounding
    and is ignored; up to ``refuse_above`` a screen is re-timed to its metadata span (audio is the
    clock: it is never re-timed, only checked); beyond it the call fails with both lengths.
    """

    correct_from: float = 0.001
    refuse_above: float = 0.02


DEFAULT_DRIFT = DriftBand()
#: A length difference under this is container rounding (a frame at 25 fps plus a little), never drift.
DRIFT_FLOOR_S = 0.05


@dataclass(frozen=True)
class MuxPlan:
    call_start: str  # ISO-8601 of output time 0
    duration: float
    signature: VideoSignature
    signature_reason: str
    audio: tuple[AudioSpan, ...]
    video: tuple[VideoSpan, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    max_overlap_ms: int = 500
    padding_slice_ms: int = 5000
    #: screen index -> factor its timestamps were scaled by (drift correction)
    retimed: tuple[tuple[int, float], ...] = ()

    @property
    def audio_segments(self) -> tuple[AudioSpan, ...]:
        return tuple(s for s in self.audio if s.kind == "audio")

    @property
    def needs_reencode(self) -> bool:
        return any(s.action == "reencode" for s in self.video)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """Printable plan: the timeline, and why each span is copied, re-encoded or padded."""
        sig = self.signature
        lines = [
            (f"call start {self.call_start}, output {self.duration:.3f} s "
             f"(max overlap {self.max_overlap_ms} ms, padding slice {self.padding_slice_ms} ms)"),
            (f"output video: {sig.codec} {sig.width}x{sig.height} {sig.pix_fmt} {sig.fps} fps, "
             f"time base 1/{sig.timescale}, profile {sig.profile} — {self.signature_reason}"),
            "audio:",
        ]
        for s in self.audio:
            what = f"#{s.source_index} {s.source}" if s.kind == "audio" else "silence"
            lines.append(f"  [{s.start:9.3f} – {s.end:9.3f}] {what}")
        lines.append("video:")
        for s in self.video:
            if s.kind == "padding":
                lines.append(f"  [{s.start:9.3f} – {s.end:9.3f}] pad      {s.reason}")
            else:
                lines.append(f"  [{s.start:9.3f} – {s.end:9.3f}] {s.action:<8} #{s.source_index} {s.source} "
                             f"[{s.src_in:.3f} + {s.src_len:.3f} s]"
                             + (f" late by {s.shift * 1000:.0f} ms" if s.shift > EPS else "")
                             + (f" re-timed x{s.time_scale:.5f}" if s.time_scale != 1.0 else "")
                             + f": {s.reason}")
        if self.notes:
            lines.append("decisions:")
            lines.extend(f"  - {n}" for n in self.notes)
        return "\n".join(lines)


def _seconds(a: datetime, b: datetime) -> float:
    if a.tzinfo is None or b.tzinfo is None:
        raise MediaError("recording start times must be timezone-aware")
    return (a - b).total_seconds()


def _even(n: int) -> int:
    """``n`` rounded up to even: H.264 4:2:0 crops in 2-pixel units, so an odd size is padded by one
    black row/column (the content is never scaled or cut)."""
    return n + n % 2


def choose_signature(screens: list[ScreenInput], visible: dict[int, float]) -> tuple[VideoSignature, str]:
    """Output signature: the H.264 screen segment that shows longest (ties: the earliest).

    When that one is not 4:2:0 (High 4:4:4, 4:2:2, 10-bit) and another visible screen differs from it,
    something must be re-encoded anyway: the output is then H.264 High 4:2:0 — the profile every
    player decodes — rather than re-encoding the others *up* to a profile many players refuse.
    """
    h264 = [i for i, s in enumerate(screens) if s.video.codec == "h264"]
    shown = [i for i in range(len(screens)) if visible.get(i, 0.0) > EPS] or list(range(len(screens)))
    if h264:
        best = max(h264, key=lambda i: (visible.get(i, 0.0), -i))
        sig = screens[best].video.signature()
        alike = all(screens[i].video.codec == "h264" and not screens[i].video.signature().differences(sig)
                    for i in shown)
        if sig.pix_fmt == "yuv420p" or alike:
            return sig, (f"copied from screen #{best} ({screens[best].path}), the H.264 recording showing "
                         f"longest ({visible.get(best, 0.0):.3f} s), so the most video is stream-copied")
        out = VideoSignature("h264", _even(sig.width), _even(sig.height), "yuv420p", sig.timescale, sig.fps,
                             "High", None, sig.rotation)
        return out, (f"screen #{best} ({screens[best].path}) is {sig.profile} {sig.pix_fmt} and other screens "
                     f"differ from it: every screen is re-encoded to H.264 High 4:2:0 at its size"
                     + (" (padded to even)" if (sig.width | sig.height) & 1 else "")
                     + ", the profile every player decodes")
    best = max(range(len(screens)), key=lambda i: (visible.get(i, 0.0), -i))
    v = screens[best].video
    sig = VideoSignature("h264", _even(v.width), _even(v.height), "yuv420p", DEFAULT_TIMESCALE,
                         v.signature().fps, "High", None)
    return sig, (f"no H.264 screen recording: H.264 High at the size and rate of screen #{best} "
                 f"({screens[best].path}, {v.codec}); every screen segment is re-encoded")


@dataclass(frozen=True, slots=True)
class PlacedScreen:
    """One screen recording on the output timeline (seconds from the call start).

    ``start``/``end`` include ``shift``, how late its content is shown against its wall clock.
    ``src_in`` is where in the file the shown part begins: 0 until the segment is cut to the call.
    """

    index: int  # position in the planner's ``screens`` list
    start: float
    end: float
    shift: float = 0.0
    src_in: float = 0.0

    @property
    def length(self) -> float:
        return self.end - self.start


def _check_inputs(audios: list[AudioInput], screens: list[ScreenInput], max_overlap_ms: int,
                  padding_slice_ms: int) -> None:
    if not audios:
        raise MediaError("a call needs at least one audio recording")
    if not screens:
        raise MediaError("a call needs at least one screen recording (none yet: the call is pending)")
    if padding_slice_ms <= 0 or max_overlap_ms < 0:
        raise MediaError("padding_slice_ms must be > 0 and max_overlap_ms ≥ 0")
    for a in audios:
        if not a.duration > 0:
            raise MediaError(f"audio {a.path} has no duration")
    for s in screens:
        if not s.duration > 0:
            raise MediaError(f"screen recording {s.path} has no duration")


def drift_share(media_length: float, metadata_span: float) -> float:
    """(media − metadata) / metadata: how much faster (+) or slower (−) the recorder's clock ran."""
    return (media_length - metadata_span) / metadata_span


def _drift_verdict(what: str, length: float, span: float | None, band: DriftBand) -> tuple[bool, str]:
    """(needs re-timing, note) for one file; raises MediaError beyond the band; (False, "") when in step."""
    if span is None or span <= 0:
        return False, ""
    diff = length - span
    share = drift_share(length, span)
    if abs(diff) <= max(DRIFT_FLOOR_S, band.correct_from * span):
        return False, ""
    if abs(share) > band.refuse_above + EPS:
        raise MediaError(f"{what} lasts {length:.3f} s but its metadata says {span:.3f} s (start to stop): "
                         f"{share * 100:+.2f} % is beyond the {band.refuse_above * 100:g} % drift band; "
                         "the metadata or the file is wrong")
    return True, (f"{what} lasts {length:.3f} s, its metadata {span:.3f} s ({share * 100:+.2f} % clock drift)")


def correct_drift(audios: list[AudioInput], screens: list[ScreenInput], band: DriftBand,
                  notes: list[str]) -> list[ScreenInput]:
    """Check every file's length against its metadata span; re-time the screens that drifted.

    A re-timed screen's timestamps are scaled by span/length, so its first frame stays on its
    start and its last frame ends on its metadata stop: the wall clock decides, the recorder's
    clock is wrong. Audio is the output's clock and is never re-timed (a drifting audio file
    within the band is noted; beyond it the call fails).
    """
    for i, a in enumerate(audios):
        drifted, note = _drift_verdict(f"audio #{i} ({a.path})", a.duration, a.metadata_duration, band)
        if drifted:
            notes.append(note + ": audio is the clock, not re-timed")
    out = []
    for i, s in enumerate(screens):
        drifted, note = _drift_verdict(f"screen #{i} ({s.path})", s.duration, s.metadata_duration, band)
        if not drifted:
            out.append(s)
            continue
        k = (s.metadata_duration or s.duration) / s.duration
        notes.append(note + f": re-timed x{k:.5f} so its last frame lands on its stop")
        v = replace(s.video, start_time=s.video.start_time * k, reorder_delay=s.video.reorder_delay * k)
        kfs = tuple(t * k for t in s.keyframes) if s.keyframes is not None else None
        frames = tuple(t * k for t in s.frame_times) if s.frame_times is not None else None
        out.append(replace(s, duration=s.duration * k, video=v, keyframes=kfs, frame_times=frames, time_scale=k))
    return out


def _audio_timeline(audios: list[AudioInput], t0: datetime, duration: float, notes: list[str]) -> list[AudioSpan]:
    """Audio segments at their offsets, silence where nothing plays; overlapping audio is mixed."""
    placed = sorted(((_seconds(a.start, t0), _seconds(a.start, t0) + a.duration, i) for i, a in enumerate(audios)))
    spans: list[AudioSpan] = []
    covered = 0.0
    for s, e, i in placed:
        if s > covered + EPS:
            spans.append(AudioSpan("silence", covered, s))
        elif s < covered - EPS:
            notes.append(f"audio #{i} overlaps earlier audio by {(covered - s) * 1000:.0f} ms: both are mixed")
        spans.append(AudioSpan("audio", s, e, audios[i].path, i))
        covered = max(covered, e)
    if covered < duration - EPS:  # cannot happen (duration is the max stop), kept for safety
        spans.append(AudioSpan("silence", covered, duration))
    return spans


def _place_screens(screens: list[ScreenInput], t0: datetime, max_overlap: float,
                   notes: list[str]) -> list[PlacedScreen]:
    """The overlap rules on the wall-clock timeline, in start order (see the module doc)."""
    order = sorted(range(len(screens)), key=lambda i: (_seconds(screens[i].start, t0), i))
    placed: list[PlacedScreen] = []
    for i in order:
        s = _seconds(screens[i].start, t0)
        shift = _resolve_overlap(placed, i, s, max_overlap, notes)
        placed.append(PlacedScreen(i, s + shift, s + screens[i].duration + shift, shift))
    return placed


def _resolve_overlap(placed: list[PlacedScreen], i: int, s: float, max_overlap: float, notes: list[str]) -> float:
    """How far screen ``i`` (wall-clock start ``s``) must shift; a large overlap instead truncates or
    drops the screens already ``placed`` (changed in place)."""
    if not placed or placed[-1].end <= s + EPS:
        return 0.0
    prev = placed[-1]
    overlap = prev.end - s
    if overlap <= max_overlap + EPS:
        notes.append(f"screen #{i} overlaps screen #{prev.index} by {overlap * 1000:.0f} ms "
                     f"(≤ {max_overlap * 1000:.0f} ms): kept whole, shifted {overlap * 1000:.0f} ms later")
        return overlap
    while placed and placed[-1].end > s + EPS:
        prev = placed[-1]
        if prev.start >= s - EPS:
            placed.pop()
            notes.append(f"screen #{prev.index} lies entirely after the start of screen #{i} "
                         f"(overlap {overlap * 1000:.0f} ms > {max_overlap * 1000:.0f} ms): dropped")
        else:
            notes.append(f"screen #{prev.index} overlaps screen #{i} by {overlap * 1000:.0f} ms "
                         f"(> {max_overlap * 1000:.0f} ms): truncated at {s:.3f} s where #{i} starts")
            placed[-1] = replace(prev, end=s)
            break
    return 0.0


def _cut_to_call(placed: list[PlacedScreen], duration: float, notes: list[str]) -> list[PlacedScreen]:
    """Each placed screen clipped to ``[0, duration]`` (a head cut sets ``src_in``); one outside is left out."""
    clipped: list[PlacedScreen] = []
    for p in placed:
        cs, ce = max(p.start, 0.0), min(p.end, duration)
        if ce - cs <= EPS:
            notes.append(f"screen #{p.index} lies outside the call: not used")
            continue
        if cs > p.start + EPS or ce < p.end - EPS:
            notes.append(f"screen #{p.index} cut to the call: uses {cs - p.start:.3f}–{ce - p.start:.3f} s of the file")
        clipped.append(replace(p, start=cs, end=ce, src_in=cs - p.start))
    return clipped


def _visible(clipped: list[PlacedScreen]) -> dict[int, float]:
    """Seconds each screen recording shows in the output (what the output signature is chosen by)."""
    visible: dict[int, float] = {}
    for p in clipped:
        visible[p.index] = visible.get(p.index, 0.0) + p.end - p.start
    return visible


def _pads(start: float, end: float, slice_len: float, min_len: float) -> list[VideoSpan]:
    """Padding slices tiling [start, end): full slices, the last one shortened (a sub-frame rest merges)."""
    out: list[VideoSpan] = []
    t = start
    while end - t > EPS:
        stop = min(t + slice_len, end)
        if end - stop < min_len:
            stop = end
        out.append(VideoSpan("padding", "pad", t, stop, ""))
        t = stop
    n = len(out)
    return [VideoSpan("padding", "pad", p.start, p.end,
                      f"black slice {k + 1}/{n} ({p.length:.3f} s)") for k, p in enumerate(out)]


def _stream_problems(scr: ScreenInput, sig: VideoSignature) -> list[str]:
    """Why a screen recording cannot be stream-copied into the output (empty: it can)."""
    v = scr.video
    problems = []
    if v.codec != "h264":
        problems.append(f"{v.codec} cannot be stream-copied into an H.264 MP4")
    if scr.format_name and any(f in scr.format_name for f in ("webm", "matroska")) and v.codec != "h264":
        problems.append("WebM/Matroska input")
    if v.codec == "h264":
        problems.extend(v.signature().differences(sig))
    return problems


def _recording_spans(scr: ScreenInput, p: PlacedScreen, sig: VideoSignature, fps: float) -> list[VideoSpan]:
    """Copy-or-reencode decision for one placed, clipped screen segment."""
    v = scr.video
    start, end, src_in = p.start, p.end, p.src_in
    common = {"source": scr.path, "source_index": p.index, "source_start_time": v.start_time, "shift": p.shift,
              "time_scale": scr.time_scale, "variable_rate": v.vfr, "src_size": (v.width, v.height),
              "src_rotation": v.rotation}
    problems = _stream_problems(scr, sig)
    if problems:
        return [_reencode(scr, start, end, "re-encoded: " + "; ".join(problems), src_in, p.length, common)]
    note = " (variable frame rate: timestamps kept as recorded)" if v.vfr else ""
    if src_in <= EPS:
        return [VideoSpan("recording", "copy", start, end, "same stream parameters as the output, starts on its "
                          "first frame" + note, src_in=0.0, src_len=p.length, reorder_delay=v.reorder_delay,
                          **common)]
    if scr.keyframes is None:
        return [_reencode(scr, start, end, f"re-encoded: cut at {src_in:.3f} s but keyframe times are unknown",
                          src_in, p.length, common)]
    return _head_cut_spans(scr, p, fps, common, note)


def _head_cut_spans(scr: ScreenInput, p: PlacedScreen, fps: float, common: dict[str, Any],
                    note: str) -> list[VideoSpan]:
    """A copyable segment cut at ``src_in``: copied from a keyframe at the cut, else re-encoded up to the
    next keyframe and copied from there, else (no keyframe inside the span) re-encoded whole."""
    v = scr.video
    start, end, src_in, length = p.start, p.end, p.src_in, p.length
    kfs = [k - v.start_time for k in scr.keyframes or ()]
    half = 0.5 / fps
    on_kf = [k for k in kfs if abs(k - src_in) <= half]
    if on_kf:
        return [VideoSpan("recording", "copy", start, end,
                          f"cut at {src_in:.3f} s falls on a keyframe ({on_kf[0]:.3f} s)" + note,
                          src_in=on_kf[0], src_len=length, reorder_delay=v.reorder_delay, **common)]
    j = bisect.bisect_right(kfs, src_in)
    prev_kf = kfs[j - 1] if j else None
    before = f" (previous keyframe at {prev_kf:.3f} s)" if prev_kf is not None else ""
    nxt = kfs[j] if j < len(kfs) else None
    if nxt is None or nxt - src_in >= length - 1.0 / fps:
        return [_reencode(scr, start, end, f"re-encoded: cut at {src_in:.3f} s is not on a keyframe{before} and "
                          "no keyframe follows inside the span", src_in, length, common)]
    split = start + (nxt - src_in)
    return [
        _reencode(scr, start, split, f"re-encoded up to the next keyframe ({nxt:.3f} s): cut at {src_in:.3f} s "
                  f"is not on a keyframe{before}", src_in, split - start, common),
        VideoSpan("recording", "copy", split, end, f"copied from the keyframe at {nxt:.3f} s" + note,
                  src_in=nxt, src_len=end - split, reorder_delay=v.reorder_delay, **common),
    ]


def _frame_before(scr: ScreenInput, src_in: float) -> float:
    """How long before ``src_in`` (offset into the file) the frame shown at ``src_in`` started:
    0 when a frame starts there or the frame times are unknown."""
    if not scr.frame_times or src_in <= EPS:
        return 0.0
    rel = [t - scr.video.start_time for t in scr.frame_times]
    j = bisect.bisect_right(rel, src_in + EPS)
    return max(0.0, src_in - rel[j - 1]) if j else 0.0


def _reencode(scr: ScreenInput, start: float, end: float, reason: str, src_in: float, src_len: float,
              common: dict[str, Any]) -> VideoSpan:
    """A re-encoded span; a VFR source keeps its own frame times (``-fps_mode passthrough``) and
    starts from the frame on screen at the cut, not from the next frame the source happens to have."""
    back = _frame_before(scr, src_in) if scr.video.vfr else 0.0
    if scr.video.vfr:
        reason += " (variable frame rate: every frame kept at its own timestamp)"
    return VideoSpan("recording", "reencode", start, end, reason, src_in=src_in, src_len=src_len,
                     seek_back=back, **common)


def _hold(video: list[VideoSpan], until: float) -> None:
    """The last span keeps showing its last frame until ``until`` (a gap under one frame is not padded)."""
    video[-1] = replace(video[-1], end=until)


def _fill_gap(video: list[VideoSpan], cursor: float, p: PlacedScreen, slice_len: float, frame: float,
              notes: list[str]) -> PlacedScreen:
    """Tile the time between ``cursor`` and screen ``p``: padding, or a hold of the previous span for a
    sub-frame gap. A sub-frame gap at time 0 instead starts ``p`` at 0 (returned changed)."""
    gap = p.start - cursor
    if gap >= frame - EPS:
        video.extend(_pads(cursor, p.start, slice_len, frame))
    elif gap > 0:
        if video:
            _hold(video, p.start)
        else:
            notes.append(f"screen #{p.index} starts {gap * 1000:.0f} ms (< 1 frame) after the call: shown from 0")
            return replace(p, start=0.0)
    return p


def _tile_video(screens: list[ScreenInput], clipped: list[PlacedScreen], sig: VideoSignature, duration: float,
                slice_len: float, notes: list[str]) -> list[VideoSpan]:
    """The video timeline from 0 to ``duration``: padding, then each screen's spans, then the tail.

    The output frame duration decides what counts as a gap; it is the one constant rate used here.
    """
    fps = sig.fps_float or 25.0
    frame = 1.0 / fps
    video: list[VideoSpan] = []
    cursor = 0.0
    for p in clipped:
        p = _fill_gap(video, cursor, p, slice_len, frame, notes)
        video.extend(_recording_spans(screens[p.index], p, sig, fps))
        cursor = p.end
    if duration - cursor >= frame - EPS or not video:
        video.extend(_pads(cursor, duration, slice_len, min(frame, duration - cursor)))
    elif duration - cursor > 0:
        _hold(video, duration)
    return video


def plan_mux(
    audios: list[AudioInput],
    screens: list[ScreenInput],
    *,
    max_overlap_ms: int = 500,
    padding_slice_ms: int = 5000,
    drift: DriftBand = DEFAULT_DRIFT,
) -> MuxPlan:
    """Plan one call. Raises :class:`MediaError` for inputs that cannot make a call.

    The steps, in order: the drift check (screens re-timed to their metadata span), the audio
    timeline (which defines the output span), the screens placed by
    the overlap rules, cut to the call, the output signature, and the video timeline tiled with them.
    """
    _check_inputs(audios, screens, max_overlap_ms, padding_slice_ms)
    t0 = min(a.start for a in audios)
    duration = max(_seconds(a.start, t0) + a.duration for a in audios)
    notes: list[str] = []
    screens = correct_drift(audios, screens, drift, notes)
    audio_spans = _audio_timeline(audios, t0, duration, notes)
    placed = _place_screens(screens, t0, max_overlap_ms / 1000.0, notes)
    clipped = _cut_to_call(placed, duration, notes)
    sig, sig_reason = choose_signature(screens, _visible(clipped))
    video = _tile_video(screens, clipped, sig, duration, padding_slice_ms / 1000.0, notes)
    return MuxPlan(call_start=t0.isoformat(), duration=duration, signature=sig, signature_reason=sig_reason,
                   audio=tuple(audio_spans), video=tuple(video), notes=tuple(notes),
                   max_overlap_ms=max_overlap_ms, padding_slice_ms=padding_slice_ms,
                   retimed=tuple((i, s.time_scale) for i, s in enumerate(screens) if s.time_scale != 1.0))

