"""Pure parsers of ffprobe JSON into small frozen dataclasses.

No I/O here: :mod:`grmux_core.ffmpeg` runs ffprobe, these functions only read its JSON, so they
are tested on captured samples (``tests/unit/data/``). The fields kept are the ones the planner
needs to decide copy-or-reencode (codec, size, pixel format, time base, profile/level, fps), the
concat join needs (B-frame reorder delay), and the input checks need (where the video packets
really end, against what the header says).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from grmux_core.errors import MediaError

#: H.264 profile names (ffprobe) → ``-profile:v`` values of libx264.
X264_PROFILES = {
    "Constrained Baseline": "baseline",
    "Baseline": "baseline",
    "Main": "main",
    "High": "high",
    "High 10": "high10",
    "High 4:2:2": "high422",
    "High 4:4:4 Predictive": "high444",
}


#: A base frame rate above this is a time base, not a rate (WebRTC recorders: 1000 "fps").
MAX_PLAUSIBLE_FPS = 120.0


@dataclass(frozen=True)
class VideoSignature:
    """What must be identical for two clips to be joined by the concat demuxer with stream copy."""

    codec: str
    width: int
    height: int
    pix_fmt: str
    timescale: int
    fps: str  # rational as text, e.g. "25/1"
    profile: str | None = None
    level: int | None = None
    rotation: int = 0  # display matrix, degrees as ffprobe reports it; carried on the output track

    def differences(self, other: VideoSignature) -> list[str]:
        """Human-readable list of what differs from ``other`` (empty = copy-compatible)."""
        out = []
        if self.codec != other.codec:
            out.append(f"codec {self.codec} ≠ {other.codec}")
        if (self.width, self.height) != (other.width, other.height):
            out.append(f"size {self.width}x{self.height} ≠ {other.width}x{other.height}")
        if self.pix_fmt != other.pix_fmt:
            out.append(f"pix_fmt {self.pix_fmt} ≠ {other.pix_fmt}")
        if self.timescale != other.timescale:
            out.append(f"time base 1/{self.timescale} ≠ 1/{other.timescale}")
        if self.profile != other.profile:
            out.append(f"profile {self.profile} ≠ {other.profile}")
        if self.rotation != other.rotation:
            out.append(f"rotation {self.rotation}° ≠ {other.rotation}°")
        return out

    @property
    def fps_float(self) -> float:
        return float(Fraction(self.fps))

    @property
    def x264_profile(self) -> str | None:
        return X264_PROFILES.get(self.profile or "")


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    pix_fmt: str
    time_base: str  # "1/12800"
    profile: str | None
    level: int | None
    has_b_frames: int
    r_frame_rate: str
    avg_frame_rate: str
    start_time: float
    reorder_delay: float  # first packet PTS − DTS, seconds (B-frames); 0 when unknown
    rotation: int = 0  # display matrix (side data) or ``rotate`` tag, degrees; 0 = none

    @property
    def timescale(self) -> int:
        return Fraction(self.time_base).denominator if self.time_base else 0

    @property
    def fps(self) -> float:
        """Nominal frame rate: avg_frame_rate when known, else r_frame_rate (25 as last resort)."""
        for rate in (self.avg_frame_rate, self.r_frame_rate):
            v = _rate(rate)
            if v:
                return v
        return 25.0

    @property
    def vfr(self) -> bool:
        """Variable frame rate suspected: average and base rates disagree by more than 1 %."""
        a, r = _rate(self.avg_frame_rate), _rate(self.r_frame_rate)
        return bool(a and r and abs(a - r) / r > 0.01)

    def signature(self) -> VideoSignature:
        """The stream's join signature. Its rate is the *base* rate (``r_frame_rate``: the finest grid
        every timestamp falls on, i.e. the maximum rate): a variable-rate screen emits frames only
        when the screen changes, so its average rate (0.6 fps for 18 frames in 30 s) says nothing
        about how short a frame can be — the grid decisions (gaps, cut tolerance) need the short one.
        An implausible base rate (a millisecond time base read as 1000 fps) falls back to the average.
        """
        rate = self.r_frame_rate if 0 < _rate(self.r_frame_rate) <= MAX_PLAUSIBLE_FPS else "25/1"
        if self.vfr and not 0 < _rate(self.r_frame_rate) <= MAX_PLAUSIBLE_FPS and _rate(self.avg_frame_rate):
            rate = str(Fraction(_rate(self.avg_frame_rate)).limit_denominator(1001))
        return VideoSignature(self.codec, self.width, self.height, self.pix_fmt, self.timescale,
                              rate, self.profile, self.level, self.rotation)


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int
    start_time: float


@dataclass(frozen=True)
class MediaInfo:
    """One probed file. ``duration`` is None when the container does not say (MediaRecorder WebM)."""

    path: str
    format_name: str
    duration: float | None
    video: VideoInfo | None
    audio: AudioInfo | None
    n_video: int
    n_audio: int
    #: From a probe that read every packet (``every_packet``), else None: keyframe PTS of the first
    #: video stream, and where its packets end (s after the first; 0.0 when none has a time).
    keyframes: tuple[float, ...] | None = None
    packets_end: float | None = None
    #: From the same probe: every video packet's PTS (seconds, sorted), for per-frame decisions.
    frame_times: tuple[float, ...] | None = None


def _rate(text: str | None) -> float:
    try:
        f = Fraction(text or "0/0")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(f)


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _reorder_delay(data: dict[str, Any], index: int) -> float:
    for pkt in data.get("packets") or []:
        if pkt.get("stream_index") == index:
            pts, dts = _float(pkt.get("pts_time")), _float(pkt.get("dts_time"))
            if pts is not None and dts is not None:
                return max(0.0, round(pts - dts, 6))
            return 0.0
    return 0.0


def _video_info(s: dict[str, Any], data: dict[str, Any]) -> VideoInfo:
    level = s.get("level")
    return VideoInfo(
        codec=s.get("codec_name", "?"), width=int(s.get("width") or 0), height=int(s.get("height") or 0),
        pix_fmt=s.get("pix_fmt") or "?", time_base=s.get("time_base") or "",
        profile=s.get("profile"), level=int(level) if isinstance(level, int) and level > 0 else None,
        has_b_frames=int(s.get("has_b_frames") or 0),
        r_frame_rate=s.get("r_frame_rate") or "0/0", avg_frame_rate=s.get("avg_frame_rate") or "0/0",
        start_time=_float(s.get("start_time")) or 0.0,
        reorder_delay=_reorder_delay(data, int(s.get("index", 0))),
        rotation=_rotation(s),
    )


def _rotation(s: dict[str, Any]) -> int:
    """The stream's display rotation in degrees (0 when it has none)."""
    for side in s.get("side_data_list") or []:
        if "rotation" in side:
            return round(_float(side["rotation"]) or 0) % 360
    return round(_float((s.get("tags") or {}).get("rotate")) or 0) % 360


def _audio_info(s: dict[str, Any]) -> AudioInfo:
    return AudioInfo(codec=s.get("codec_name", "?"), sample_rate=int(s.get("sample_rate") or 0),
                     channels=int(s.get("channels") or 0), start_time=_float(s.get("start_time")) or 0.0)


def parse_probe(data: dict[str, Any], path: str = "", *, every_packet: bool = False) -> MediaInfo:
    """ffprobe ``-show_format -show_streams [-show_packets]`` JSON → :class:`MediaInfo`.

    Uses the first video and the first audio stream; attached pictures (cover art) are ignored.
    ``every_packet``: the JSON holds every packet (``ffmpeg.probe(every_packet=True)``), so the
    keyframes and the end of the video packets are filled in, and the end of the packets is the
    duration when the container has none (MediaRecorder WebM).
    """
    streams = [s for s in data.get("streams") or []
               if not (s.get("disposition") or {}).get("attached_pic")]
    videos = [s for s in streams if s.get("codec_type") == "video"]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    fmt = data.get("format") or {}
    video = _video_info(videos[0], data) if videos else None
    audio = _audio_info(audios[0]) if audios else None
    duration = _float(fmt.get("duration"))
    if duration is None:
        durations = [d for d in (_float(s.get("duration")) for s in videos + audios) if d is not None]
        duration = max(durations) if durations else None
    keyframes = end = frames = None
    if every_packet and videos:
        packets = stream_packets(data, int(videos[0].get("index", 0)))
        keyframes, end = _keyframes(packets), packets_end(packets)
        frames = tuple(sorted(t for p in packets if (t := _float(p.get("pts_time"))) is not None))
        if duration is None:
            duration = end
        end = end or 0.0
    return MediaInfo(path=path or fmt.get("filename", ""), format_name=fmt.get("format_name", "?"),
                     duration=duration, video=video, audio=audio, n_video=len(videos), n_audio=len(audios),
                     keyframes=keyframes, packets_end=end, frame_times=frames)


def stream_packets(data: dict[str, Any], index: int) -> list[dict[str, Any]]:
    """The packets of stream ``index`` (every packet when the JSON names no stream, as with
    ``-select_streams v:0``)."""
    return [p for p in data.get("packets") or [] if p.get("stream_index", index) == index]


def _keyframes(packets: list[dict[str, Any]]) -> tuple[float, ...]:
    return tuple(sorted({round(t, 6) for p in packets
                         if "K" in (p.get("flags") or "") and (t := _float(p.get("pts_time"))) is not None}))


def parse_keyframes(packets: dict[str, Any]) -> tuple[float, ...]:
    """Keyframe PTS (seconds, sorted) from ``-show_entries packet=pts_time,flags`` JSON."""
    return _keyframes(list(packets.get("packets") or []))


def packets_end(packets: list[dict[str, Any]]) -> float | None:
    """Where the packets really in a file end, in seconds after the first one starts
    (max PTS + duration − min PTS); None when no packet has a time.

    A header that promises much more than this is a truncated upload: the missing part would be
    padded or frozen in the muxed call.
    """
    ends, starts = [], []
    for p in packets:
        t = _float(p.get("pts_time"))
        if t is None:
            continue
        starts.append(t)
        ends.append(t + (_float(p.get("duration_time")) or 0.0))
    if not ends:
        return None
    return max(ends) - min(starts)


def duration_from_packets(packets: dict[str, Any]) -> float:
    """End of the last packet (max PTS + duration) − first PTS: the duration when the container has none."""
    end = packets_end(list(packets.get("packets") or []))
    if end is None:
        raise MediaError("the file has no timed video packets")
    return end


# ---------------------------------------------------------------- H.264 sequence parameter sets

#: chroma_format_idc → ffmpeg pix_fmt family (8-bit)
CHROMA_FORMATS = {0: "gray", 1: "yuv420p", 2: "yuv422p", 3: "yuv444p"}
_SPS_FIELDS = ("profile_idc", "chroma_format_idc", "pic_width_in_mbs_minus1", "pic_height_in_map_units_minus1",
               "frame_mbs_only_flag", "frame_crop_left_offset", "frame_crop_right_offset",
               "frame_crop_top_offset", "frame_crop_bottom_offset", "seq_parameter_set_id")


@dataclass(frozen=True)
class Sps:
    """What one H.264 SPS says about the pictures it governs."""

    profile_idc: int
    width: int
    height: int
    chroma: str  # pix_fmt family, e.g. "yuv420p"


def _sps_from_fields(f: dict[str, int]) -> Sps:
    chroma = f.get("chroma_format_idc", 1)  # absent below High: 4:2:0
    frame_mbs_only = f.get("frame_mbs_only_flag", 1)
    cx = 1 if chroma in (0, 3) else 2
    cy = (2 - frame_mbs_only) * (2 if chroma == 1 else 1)
    width = (f.get("pic_width_in_mbs_minus1", 0) + 1) * 16 - cx * (
        f.get("frame_crop_left_offset", 0) + f.get("frame_crop_right_offset", 0))
    height = (2 - frame_mbs_only) * (f.get("pic_height_in_map_units_minus1", 0) + 1) * 16 - cy * (
        f.get("frame_crop_top_offset", 0) + f.get("frame_crop_bottom_offset", 0))
    return Sps(f.get("profile_idc", 0), width, height, CHROMA_FORMATS.get(chroma, "?"))


def parse_sps_trace(text: str) -> list[Sps]:
    """PURE: every SPS in ffmpeg ``trace_headers`` output (``-bsf:v filter_units=pass_types=7,trace_headers``),
    in order — the sample description's first (it is read before any packet), then each in-band one.

    ffmpeg prints one line per syntax element, ``<bit position> <name> <bits> = <value>``; an SPS
    starts at ``profile_idc``. Only the fields that fix the picture size and chroma format are read.
    """
    out: list[Sps] = []
    fields: dict[str, int] | None = None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[-2] != "=" or not parts[-1].lstrip("-").isdigit():
            continue
        name = next((p for p in parts if p in _SPS_FIELDS), None)
        if name is None:
            continue
        if name == "profile_idc":
            if fields is not None:
                out.append(_sps_from_fields(fields))
            fields = {}
        if fields is not None and name not in fields:
            fields[name] = int(parts[-1])
    if fields is not None:
        out.append(_sps_from_fields(fields))
    return out


def parse_framecrc(text: str, stream: int = 0) -> list[float]:
    """PURE: the PTS (seconds) of each packet of ``stream`` in ffmpeg ``-f framecrc`` output
    (``#tb N: num/den`` header lines, then ``stream, dts, pts, duration, size, crc`` per packet)."""
    tb: dict[int, Fraction] = {}
    out: list[float] = []
    for line in text.splitlines():
        if line.startswith("#tb "):
            idx, _, rate = line[4:].partition(":")
            try:
                tb[int(idx)] = Fraction(rate.strip())
            except (ValueError, ZeroDivisionError):
                continue
        elif line and not line.startswith("#"):
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 3 and parts[0] == str(stream) and stream in tb:
                try:
                    out.append(float(int(parts[2]) * tb[stream]))
                except ValueError:
                    continue
    return out


# ---------------------------------------------------------------- MP3 gapless header (Xing/Info + LAME)

_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class Mp3Gapless:
    """The Xing/Info frame count and LAME encoder delay/padding of an MP3 (what ffmpeg trims)."""

    sample_rate: int
    samples_per_frame: int
    frames: int
    enc_delay: int
    enc_padding: int
    channels: int = 1
    stream_bytes: int | None = None  # the Xing "bytes" field: size of the MP3 stream, this frame included

    @property
    def container_duration(self) -> float:
        """What ffprobe reports as the stream duration: every frame, delay and padding included."""
        return self.frames * self.samples_per_frame / self.sample_rate

    @property
    def duration(self) -> float:
        """Decoded duration: ffmpeg drops the delay at the start and the padding at the end."""
        return (self.frames * self.samples_per_frame - self.enc_delay - self.enc_padding) / self.sample_rate


def id3v2_size(head: bytes) -> int:
    """Bytes taken by an ID3v2 tag at the start of ``head`` (0 when there is none)."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
    return 10 + size + (10 if head[5] & 0x10 else 0)


def parse_mp3_gapless(data: bytes) -> Mp3Gapless | None:
    """PURE: the gapless info of the first MP3 frame in ``data`` (the file's bytes after any ID3v2 tag).

    Returns None unless the first frame is a Layer III frame carrying a Xing/Info tag with a frame
    count *and* a LAME/Lavc/Lavf tag with delay and padding — the case where ffmpeg (mp3dec.c)
    trims ``delay`` samples at the start and ``padding`` at the end, so the decoded length is exact
    without decoding. Anything else (no tag, VBRI, free format) → None: the caller decodes.
    """
    o = 0
    while o + 4 <= min(len(data), 4096):  # a few junk bytes before the first frame are tolerated
        if data[o] == 0xFF and (data[o + 1] & 0xE0) == 0xE0:
            break
        o += 1
    else:
        return None
    b1, b2, b3 = data[o + 1], data[o + 2], data[o + 3]
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    rate_idx, bitrate_idx = (b2 >> 2) & 3, b2 >> 4
    if version == 1 or layer != 1 or rate_idx == 3 or bitrate_idx in (0, 15):
        return None  # reserved version, not Layer III, bad rate, free format or bad bitrate
    sample_rate = _MP3_RATES[version][rate_idx]
    mono = (b3 >> 6) == 3
    spf = 1152 if version == 3 else 576
    side = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    x = o + 4 + side
    if data[x:x + 4] not in (b"Xing", b"Info") or len(data) < x + 8:
        return None
    flags = int.from_bytes(data[x + 4:x + 8], "big")
    if not flags & 1:
        return None  # no frame count
    p = x + 8
    frames = int.from_bytes(data[p:p + 4], "big")
    stream_bytes = int.from_bytes(data[p + 4:p + 8], "big") if flags & 2 else None
    p += 4 + (4 if flags & 2 else 0) + (100 if flags & 4 else 0) + (4 if flags & 8 else 0)
    lame = data[p:p + 24]
    if len(lame) < 24 or lame[:4] not in (b"LAME", b"Lavf", b"Lavc") or frames <= 0:
        return None
    v = int.from_bytes(lame[21:24], "big")
    delay, padding = v >> 12, v & 0xFFF
    if frames * spf <= delay + padding:
        return None
    return Mp3Gapless(sample_rate, spf, frames, delay, padding, 1 if mono else 2, stream_bytes)
