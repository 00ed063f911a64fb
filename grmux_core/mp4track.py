"""The keyframes and SPS of an MP4's first H.264 video track, read in-process from the file's boxes.

Why in-process: the pre-register track check (:func:`grmux_core.mux.check_track`) needs only the
sample tables (``stss``/``stts``/``ctts``/``elst``) and the parameter sets (the ``avcC`` of the
sample entry, then the SPS NAL units at the head of each keyframe sample). An ffmpeg that reads the
same (``-discard nokey`` + ``trace_headers`` + ``framecrc``) costs a process start-up per call;
these tables are a few hundred kilobytes at the front of a faststart file and a few bytes per
keyframe. The tests check this reader against that ffmpeg on generated files.

Timestamps follow ffmpeg's mov demuxer: PTS = DTS (``stts``) + composition offset (``ctts``),
shifted by the edit list (empty edits delay the track; the first media edit's ``media_time``
is subtracted).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from grmux_core.probe import Sps, _sps_from_fields

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


class Mp4Error(ValueError):
    """The file is not an MP4 with an H.264 video track this reader understands."""


@dataclass(frozen=True)
class VideoTrack:
    """What the track check needs: keyframe PTS (seconds, in order) and every SPS, the sample
    description's first, then each in-band one in file order."""

    keyframes: list[float]
    sps: list[Sps]


def _boxes(data: bytes, start: int = 0, end: int | None = None):
    """(type, payload start, payload end) of each box in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            head = 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            raise Mp4Error(f"box {kind!r} at {pos} overruns its parent")
        yield kind, pos + head, pos + size
        pos += size


def _read_moov(f: BinaryIO) -> bytes:
    """The ``moov`` box's payload, wherever it is among the top-level boxes."""
    f.seek(0, os.SEEK_END)
    length = f.tell()
    pos = 0
    while pos + 8 <= length:
        f.seek(pos)
        head = f.read(16)
        size, kind = struct.unpack_from(">I4s", head)
        hl = 8
        if size == 1:
            size, hl = struct.unpack_from(">Q", head, 8)[0], 16
        elif size == 0:
            size = length - pos
        if size < hl:
            raise Mp4Error(f"top-level box {kind!r} at {pos} has size {size}")
        if kind == b"moov":
            f.seek(pos + hl)
            return f.read(size - hl)
        pos += size
    raise Mp4Error("no moov box")


def _find(data: bytes, start: int, end: int, path: list[bytes]) -> tuple[int, int] | None:
    for kind, s, e in _boxes(data, start, end):
        if kind == path[0]:
            return (s, e) if len(path) == 1 else _find(data, s, e, path[1:])
    return None


def _video_trak(moov: bytes) -> tuple[int, int]:
    for kind, s, e in _boxes(moov):
        if kind != b"trak":
            continue
        hdlr = _find(moov, s, e, [b"mdia", b"hdlr"])
        if hdlr and moov[hdlr[0] + 8:hdlr[0] + 12] == b"vide":
            return s, e
    raise Mp4Error("no video track")


def _table(data: bytes, box: tuple[int, int] | None, fmt: str) -> list[tuple[int, ...]]:
    """The entries of a full box holding ``entry_count`` then fixed-size entries."""
    if box is None:
        return []
    s, _ = box
    n = struct.unpack_from(">I", data, s + 4)[0]
    size = struct.calcsize(">" + fmt)
    return [struct.unpack_from(">" + fmt, data, s + 8 + k * size) for k in range(n)]


def _edit_shift(moov: bytes, trak: tuple[int, int], timescale: int, movie_timescale: int) -> float:
    """Seconds to add to every media PTS (ffmpeg's mov demuxer: empty edits delay, media_time advances)."""
    elst = _find(moov, *trak, [b"edts", b"elst"])
    if elst is None:
        return 0.0
    s, _ = elst
    version = moov[s]
    n = struct.unpack_from(">I", moov, s + 4)[0]
    fmt, size = (">Qq", 16) if version == 1 else (">Ii", 8)
    delay = 0.0
    for k in range(n):
        duration, media_time = struct.unpack_from(fmt, moov, s + 8 + k * (size + 4))
        if media_time == -1:
            delay += duration / movie_timescale
            continue
        return delay - media_time / timescale
    return delay


def _sample_entry_sps(moov: bytes, stbl: tuple[int, int]) -> tuple[list[bytes], int]:
    """The SPS NAL units of the ``avcC`` of the first sample entry, and its NAL length size."""
    stsd = _find(moov, *stbl, [b"stsd"])
    if stsd is None:
        raise Mp4Error("no sample description")
    s, e = stsd
    entries = list(_boxes(moov, s + 8, e))
    if not entries or entries[0][0] not in (b"avc1", b"avc3"):
        raise Mp4Error(f"video sample entry {entries[0][0] if entries else None!r} is not H.264")
    _, es, ee = entries[0]
    avcc = _find(moov, es + 78, ee, [b"avcC"])  # 78: the visual sample entry's fixed fields
    if avcc is None:
        raise Mp4Error("H.264 sample entry without avcC")
    a = avcc[0]
    length_size = (moov[a + 4] & 3) + 1
    count, pos, out = moov[a + 5] & 31, a + 6, []
    for _ in range(count):
        n = struct.unpack_from(">H", moov, pos)[0]
        out.append(moov[pos + 2:pos + 2 + n])
        pos += 2 + n
    return out, length_size


def _sample_offsets(moov: bytes, stbl: tuple[int, int], n_samples: int) -> list[int]:
    chunks = [c[0] for c in _table(moov, _find(moov, *stbl, [b"stco"]), "I")] or \
             [c[0] for c in _table(moov, _find(moov, *stbl, [b"co64"]), "Q")]
    stsz = _find(moov, *stbl, [b"stsz"])
    if stsz is None:
        raise Mp4Error("no sample sizes")
    uniform, count = struct.unpack_from(">II", moov, stsz[0] + 4)
    sizes = [uniform] * count if uniform else list(struct.unpack_from(f">{count}I", moov, stsz[0] + 12))
    stsc = _table(moov, _find(moov, *stbl, [b"stsc"]), "III")
    offsets: list[int] = []
    sample = 0
    for k, (first, per_chunk, _) in enumerate(stsc):
        last = stsc[k + 1][0] - 1 if k + 1 < len(stsc) else len(chunks)
        for chunk in range(first - 1, last):
            pos = chunks[chunk]
            for _ in range(per_chunk):
                if sample >= n_samples:
                    return offsets
                offsets.append(pos)
                pos += sizes[sample]
                sample += 1
    return offsets


def _inband_sps(f: BinaryIO, offset: int, size: int, length_size: int) -> list[bytes]:
    """The SPS NAL units at the head of one sample (parameter sets precede its first slice)."""
    out, pos, end = [], offset, offset + size
    while pos + length_size < end:
        f.seek(pos)
        head = f.read(length_size + 1)
        n = int.from_bytes(head[:length_size], "big")
        kind = head[length_size] & 31
        if 1 <= kind <= 5:  # a slice: no parameter set after it belongs to this access unit's head
            break
        if kind == 7:
            f.seek(pos + length_size)
            out.append(f.read(n))
        pos += length_size + n
    return out


def read_video_track(path: str | os.PathLike[str]) -> VideoTrack:
    """The first video track's keyframe PTS and SPS list (see the module docstring).

    Raises :class:`Mp4Error` for anything it cannot read (a truncated or foreign file included)."""
    try:
        return _read_video_track(path)
    except (struct.error, IndexError) as exc:
        raise Mp4Error(f"truncated or malformed MP4 ({exc})") from exc


def _read_video_track(path: str | os.PathLike[str]) -> VideoTrack:
    with open(path, "rb") as f:
        moov = _read_moov(f)
        mvhd = _find(moov, 0, len(moov), [b"mvhd"])
        if mvhd is None:
            raise Mp4Error("no movie header")
        movie_timescale = struct.unpack_from(">I", moov, mvhd[0] + (20 if moov[mvhd[0]] == 1 else 12))[0]
        trak = _video_trak(moov)
        mdhd = _find(moov, *trak, [b"mdia", b"mdhd"])
        stbl = _find(moov, *trak, [b"mdia", b"minf", b"stbl"])
        if mdhd is None or stbl is None:
            raise Mp4Error("video track without media header or sample table")
        timescale = struct.unpack_from(">I", moov, mdhd[0] + (20 if moov[mdhd[0]] == 1 else 12))[0]
        sps, length_size = _sample_entry_sps(moov, stbl)
        dts: list[int] = []
        t = 0
        for count, delta in _table(moov, _find(moov, *stbl, [b"stts"]), "II"):
            for _ in range(count):
                dts.append(t)
                t += delta
        ctts_box = _find(moov, *stbl, [b"ctts"])
        cts: list[int] = []
        if ctts_box is not None:
            signed = moov[ctts_box[0]] == 1
            for count, off in _table(moov, ctts_box, "Ii" if signed else "II"):
                cts.extend([off] * count)
        stss_box = _find(moov, *stbl, [b"stss"])
        keys = [k[0] - 1 for k in _table(moov, stss_box, "I")] if stss_box else list(range(len(dts)))
        shift = _edit_shift(moov, trak, timescale, movie_timescale)
        offsets = _sample_offsets(moov, stbl, len(dts))
        stsz = _find(moov, *stbl, [b"stsz"])
        assert stsz is not None
        uniform, count = struct.unpack_from(">II", moov, stsz[0] + 4)
        keyframes = []
        for k in keys:
            if k >= len(dts) or k >= len(offsets):
                raise Mp4Error(f"sync sample {k + 1} beyond the {len(dts)} samples")
            keyframes.append((dts[k] + (cts[k] if k < len(cts) else 0)) / timescale + shift)
            size = uniform or struct.unpack_from(">I", moov, stsz[0] + 12 + 4 * k)[0]
            sps += _inband_sps(f, offsets[k], size, length_size)
    return VideoTrack(sorted(keyframes), [parse_sps(n) for n in sps])


class _Bits:
    """An RBSP bit reader (emulation-prevention bytes removed)."""

    def __init__(self, nal: bytes):
        self.data = nal.replace(b"\x00\x00\x03", b"\x00\x00")
        self.pos = 0

    def u(self, n: int) -> int:
        v = 0
        for _ in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise Mp4Error("SPS ends early")
            v = (v << 1) | ((self.data[byte] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return v

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise Mp4Error("bad Exp-Golomb code in SPS")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def parse_sps(nal: bytes) -> Sps:
    """PURE: size, chroma format and profile of one H.264 SPS NAL unit (header byte included)."""
    b = _Bits(nal[1:])
    f: dict[str, int] = {"profile_idc": b.u(8)}
    b.u(16)  # constraint flags, level_idc
    f["seq_parameter_set_id"] = b.ue()
    if f["profile_idc"] in _HIGH_PROFILES:
        f["chroma_format_idc"] = b.ue()
        if f["chroma_format_idc"] == 3:
            b.u(1)  # separate_colour_plane_flag
        b.ue()
        b.ue()  # bit depths
        b.u(1)  # qpprime_y_zero_transform_bypass_flag
        if b.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if f["chroma_format_idc"] != 3 else 12):
                if b.u(1):
                    last = nxt = 8
                    for _ in range(16 if i < 6 else 64):
                        if nxt:
                            nxt = (last + b.se() + 256) % 256
                        last = nxt or last
    b.ue()  # log2_max_frame_num_minus4
    poc_type = b.ue()
    if poc_type == 0:
        b.ue()
    elif poc_type == 1:
        b.u(1)
        b.se()
        b.se()
        for _ in range(b.ue()):
            b.se()
    b.ue()  # max_num_ref_frames
    b.u(1)  # gaps_in_frame_num_value_allowed_flag
    f["pic_width_in_mbs_minus1"] = b.ue()
    f["pic_height_in_map_units_minus1"] = b.ue()
    f["frame_mbs_only_flag"] = b.u(1)
    if not f["frame_mbs_only_flag"]:
        b.u(1)
    b.u(1)  # direct_8x8_inference_flag
    if b.u(1):
        for side in ("left", "right", "top", "bottom"):
            f[f"frame_crop_{side}_offset"] = b.ue()
    return _sps_from_fields(f)
