"""One cycle's steps as plain functions, shared by the Prefect flow and the command lines.

Per call: fetch → decrypt → probe → plan → mux → verify → upload (temporary name, then publish)
→ register in RWS → (optionally) delete the originals → clean the call's temp files, whatever
happened. Each call ends in one :class:`CallOutcome`: ``muxed``, ``skipped`` (already muxed),
``pending`` (no screen recording yet) or ``failed`` with a one-sentence reason.

Orchestration concerns stay outside: retries (only :class:`TransientError` propagates out of
:func:`process_call`, so a caller can retry it), locks, caching and concurrency limits are the
Prefect tasks' business. Concurrency limits reach the steps through ``guard``, a function that
returns a context manager per external service (``rws``, ``rcs``, ``storage``, ``ffmpeg``), so this
module never imports Prefect.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from grmux_core.config import Settings
from grmux_core.crypto import RcsClient, decrypt_to_temp
from grmux_core.errors import GrmuxError, RecordError, TransientError, VerificationError
from grmux_core.models import (
    CallRecording,
    MediaFile,
    ScreenRecording,
    format_time,
    is_already_muxed,
    muxed_media_id,
    next_muxed_number,
    source_media_ids,
)
from grmux_core.mux import MuxTools, mux_files
from grmux_core.plan import MuxPlan
from grmux_core.rws import RwsClient
from grmux_core.storage import StorageRouter, open_storage
from grmux_core.windows import Shard, SubInterval, Window

log = logging.getLogger("grmux.pipeline")

MUXED, SKIPPED, PENDING, FAILED = "muxed", "skipped", "pending", "failed"
STATUSES = (MUXED, SKIPPED, PENDING, FAILED)
WORK_PREFIX = "grmux-work-"

Guard = Callable[[str], AbstractContextManager[Any]]


def no_guard(_service: str) -> AbstractContextManager[Any]:
    return contextlib.nullcontext()


@dataclass(frozen=True)
class CallOutcome:
    """How one call ended. Plain data: it goes into artifacts, logs and the task result cache."""

    call_id: str
    status: str
    reason: str = ""
    media_id: str = ""
    output: str = ""
    duration_s: float = 0.0
    reencoded_spans: int = 0
    sources: tuple[str, ...] = ()

    def log_line(self) -> str:
        """The one line per call outcome of the log file."""
        text = f"call {self.call_id} {self.status}"
        if self.media_id:
            text += f" as {self.media_id} ({self.duration_s:.3f} s) at {self.output}"
        if self.reason:
            text += f": {self.reason}"
        return text


def first_line(error: BaseException) -> str:
    """An error's first line: the sentence an operator reads in the summary table."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


# ------------------------------------------------------------------------------------ services


@dataclass
class Services:
    """The clients one process shares between calls (each is thread-safe)."""

    settings: Settings
    rws: RwsClient
    rcs: RcsClient
    storage: StorageRouter
    tools: MuxTools = field(default_factory=MuxTools)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        pool = settings.advanced.worker_threads
        return cls(
            settings=settings,
            rws=RwsClient(settings.htcc, settings.advanced, settings.processing, pool_size=pool),
            rcs=RcsClient(settings.rcs, settings.htcc.contact_center_id, pool_size=pool),
            storage=open_storage(settings, pool_size=pool),
            tools=MuxTools(ffmpeg=settings.processing.ffmpeg, ffprobe=settings.processing.ffprobe),
        )

    def close(self) -> None:
        for client in (self.rws, self.rcs, self.storage):
            with contextlib.suppress(Exception):
                client.close()


# ------------------------------------------------------------------------------------ listing


@dataclass
class Listing:
    """The calls of one cycle after listing and shard filtering, plus what could not be parsed."""

    calls: list[CallRecording] = field(default_factory=list)
    bad_records: list[RecordError] = field(default_factory=list)
    other_shard: int = 0


def list_calls(
    rws: RwsClient,
    *,
    window: Window | None,
    pieces: Iterable[SubInterval] | None = None,
    query: str | None = None,
    shard: Shard | None = None,
) -> Listing:
    """List the cycle's calls: by backfill ``query``, by split ``pieces``, or by ``window``.

    With pieces, each keeps only the calls that started inside it, so a call is found once.
    Calls of other shards are counted, not kept. Malformed records are kept as RecordErrors.
    """
    listing = Listing()

    def take(records: Iterator[CallRecording | RecordError], keeps: Callable[[datetime], bool]) -> None:
        for record in records:
            if isinstance(record, RecordError):
                if shard is None or record.call_id is None or shard.owns(record.call_id):
                    listing.bad_records.append(record)
            elif not keeps(record.start):
                continue
            elif shard is not None and not shard.owns(record.id):
                listing.other_shard += 1
            else:
                listing.calls.append(record)

    if query is not None:
        take(rws.list_by_query(query), lambda _t: True)
    elif pieces:
        for piece in pieces:
            take(rws.list_recordings(piece.query_start, piece.query_end), piece.keeps)
    elif window is not None:
        take(rws.list_recordings(window.start, window.end), lambda _t: True)
    return listing


def classify(call: CallRecording, screen: ScreenRecording | RecordError | None) -> CallOutcome | None:
    """The outcome decided from metadata alone, or ``None`` when the call needs muxing."""
    if isinstance(screen, RecordError):
        return CallOutcome(call.id, FAILED, f"its screen recording metadata is malformed: {screen}")
    if screen is None or not [m for m in screen.source_files if m.is_video]:
        return CallOutcome(call.id, PENDING, "no screen recording yet")
    if is_already_muxed(call, screen):
        return CallOutcome(call.id, SKIPPED, "already muxed", sources=tuple(sorted(source_media_ids(call, screen))))
    return None


def work_key(call: CallRecording, screen: ScreenRecording) -> str:
    """Identity of one unit of work: the call and its current sources (new late media → new key)."""
    digest = hashlib.sha256("\n".join(sorted(source_media_ids(call, screen))).encode()).hexdigest()[:16]
    return f"grmux-{call.id}-{digest}"


# ------------------------------------------------------------------------------------ one call


def _local_name(index: int, media: MediaFile) -> str:
    suffix = Path(media.location.path).suffix or {"audio/mp3": ".mp3", "audio/wav": ".wav",
                                                  "video/mp4": ".mp4", "video/webm": ".webm"}.get(media.type, "")
    return f"{index:02d}{suffix}"


def _fetch(media: MediaFile, index: int, workdir: Path, services: Services, guard: Guard) -> Path:
    """Download one media file and decrypt it if needed; returns the clear local file."""
    target = workdir / _local_name(index, media)
    with guard("storage"):
        services.storage.download(media.location, target)
    if not media.encrypted:
        return target
    with guard("rcs"):
        key, iv = services.rcs.decrypt_key(media.pkcs7 or "")
    clear = decrypt_to_temp(target, key, iv, temp_dir=workdir, suffix=target.suffix)
    target.unlink(missing_ok=True)  # keep only the clear copy; the original stays in storage
    return clear


@dataclass
class FetchedMedia:
    """The call's media as clear local files, with where each came from (for readable errors)."""

    audios: list[tuple[str, datetime]] = field(default_factory=list)
    screens: list[tuple[str, datetime]] = field(default_factory=list)
    media_ids: dict[str, str] = field(default_factory=dict)  # local path -> mediaId

    def readable(self, message: str) -> str:
        """``message`` with local scratch paths replaced by the media ids operators know."""
        for path, media_id in self.media_ids.items():
            message = message.replace(path, f"media {media_id}")
        return message


def fetch_media(call: CallRecording, screen: ScreenRecording, services: Services, workdir: Path,
                guard: Guard = no_guard) -> FetchedMedia:
    """Download (and decrypt) every audio file of the call and every screen file, in start order."""
    fetched = FetchedMedia()
    audio_files = sorted(call.audio_files, key=lambda m: m.start)
    video_files = sorted((m for m in screen.source_files if m.is_video), key=lambda m: m.start)
    for index, media in enumerate([*audio_files, *video_files]):
        path = str(_fetch(media, index, workdir, services, guard))
        fetched.media_ids[path] = media.media_id
        (fetched.audios if index < len(audio_files) else fetched.screens).append((path, media.start))
    return fetched


def output_location(call: CallRecording, screen: ScreenRecording, n: int, template: str):
    """Where the muxed file goes: ``output_path`` relative to the first screen file's storage."""
    first = min((m for m in screen.source_files if m.is_video), key=lambda m: m.start)
    relative = template.format(date=call.start.date().isoformat(), call_id=call.id, n=n)
    return first.location.sibling(relative)


def write_back_body(call: CallRecording, screen: ScreenRecording, media_id: str, location, *,
                    start: datetime, duration_s: float, size: int) -> dict[str, Any]:
    """The ``mediaFiles[0]`` of the write-back POST (spec: gir-services.md, "Writing back")."""
    from datetime import timedelta

    users = [m.user_name for m in sorted(screen.source_files, key=lambda m: m.start) if m.user_name]
    parameters: dict[str, Any] = {"muxed_mediaIds": sorted(source_media_ids(call, screen))}
    if users:
        parameters["contact"] = {"userName": users[0]}
    if call.region or screen.region:
        parameters["region"] = call.region or screen.region
    stop = start + timedelta(seconds=duration_s)
    return {
        "mediaId": media_id,
        "type": "video/mp4",
        "startTime": format_time(start),
        "stopTime": format_time(stop),
        "duration": str(round(duration_s * 1000)),
        "size": str(size),
        "parameters": parameters,
        "mediaDescriptor": location.to_descriptor(),
    }


#: How far a media file's probed duration may stray from its metadata (stop - start) before the call
#: fails: generous for container rounding and late starts, but minutes apart means wrong metadata
#: or a wrong file, and muxing it would misalign or pad the whole call.
DURATION_TOLERANCE_S = 30.0
DURATION_TOLERANCE_SHARE = 0.10


def screen_outside_call(audio_files: list[MediaFile], video_files: list[MediaFile]) -> str:
    """A failure reason when no screen file overlaps the call's audio span (nothing to show), else ""."""
    start, stop = min(m.start for m in audio_files), max(m.stop for m in audio_files)
    if any(m.start < stop and m.stop > start for m in video_files):
        return ""
    first, last = min(m.start for m in video_files), max(m.stop for m in video_files)
    return (f"the screen recording ({format_time(first)} to {format_time(last)}) lies entirely outside the "
            f"call ({format_time(start)} to {format_time(stop)}): there is nothing to mux; check the screen "
            "recording's metadata times")


def check_inputs(fetched: FetchedMedia, media_files: list[MediaFile], tools: MuxTools,
                 logger: logging.Logger | logging.LoggerAdapter | None = None) -> None:
    """Fail clearly, before muxing, on an empty or unreadable input or a duration minutes off its metadata."""
    from grmux_core.errors import MediaError
    from grmux_core.mux import probe_file

    by_id = {m.media_id: m for m in media_files}
    for path, media_id in fetched.media_ids.items():
        media = by_id[media_id]
        kind = "audio" if media.is_audio else "screen"
        if os.path.getsize(path) == 0:
            raise MediaError(f"{kind} media {media_id} is empty (0 bytes) in storage")
        try:
            info = probe_file(path, tools, logger=logger)
        except MediaError as exc:
            raise MediaError(f"{kind} media {media_id} cannot be read: it is corrupt or truncated "
                             f"({fetched.readable(first_line(exc))})") from exc
        if (info.n_audio if media.is_audio else info.n_video) == 0:
            raise MediaError(f"{kind} media {media_id} holds no readable {'audio' if media.is_audio else 'video'} "
                             "stream: it is corrupt or truncated")
        if media.is_video and info.duration:
            end = _packets_end(path, tools, logger)
            if end is not None and info.duration - end > max(1.0, 0.1 * info.duration):
                raise MediaError(f"screen media {media_id} is truncated: its video ends at {end:.1f} s but its "
                                 f"header says {info.duration:.1f} s")
        expected = (media.stop - media.start).total_seconds()
        if info.duration is not None and expected > 0:
            tolerance = max(DURATION_TOLERANCE_S, DURATION_TOLERANCE_SHARE * expected)
            if abs(info.duration - expected) > tolerance:
                raise MediaError(f"{kind} media {media_id} lasts {info.duration:.1f} s (ffprobe) but its metadata "
                                 f"says {expected:.1f} s (start to stop): the metadata or the file is wrong")


def _packets_end(path: str, tools: MuxTools, logger: Any) -> float | None:
    """Where the video packets that are really in the file end (s from the first), or None if unknown."""
    from grmux_core import ffmpeg as ff
    from grmux_core.errors import MediaError

    try:
        packets = ff.probe_video_packets(path, ffprobe=tools.ffprobe, timeout=tools.probe_timeout, logger=logger)
    except MediaError:
        return None
    times = []
    for packet in packets.get("packets", []):
        try:
            times.append((float(packet["pts_time"]), float(packet.get("duration_time") or 0.0)))
        except (KeyError, TypeError, ValueError):
            continue
    if not times:
        return 0.0
    first = min(t for t, _ in times)
    return max(t + d for t, d in times) - first


def call_workdir(temp_dir: str | os.PathLike[str], call_id: str) -> Path:
    """The call's private scratch folder (one per process, so two instances never share one)."""
    return Path(temp_dir) / f"{WORK_PREFIX}{os.getpid()}-{call_id}"


def process_call(
    call: CallRecording,
    services: Services,
    *,
    guard: Guard = no_guard,
    logger: logging.Logger | logging.LoggerAdapter | None = None,
    on_plan: Callable[[MuxPlan], None] | None = None,
) -> CallOutcome:
    """Mux one call end to end. Returns its outcome; raises only :class:`TransientError`.

    The screen recording is read again here, *after* the caller took the call's lock, so a call
    another instance muxed meanwhile is skipped rather than muxed twice. ``on_plan`` receives the
    alignment plan as soon as it exists (the tasks draw it for failed and re-encoded calls).
    """
    logger = logger or log
    settings = services.settings
    workdir = call_workdir(settings.processing.temp_dir, call.id)
    fetched: FetchedMedia | None = None
    try:
        with guard("rws"):
            screen = services.rws.screen_recording(call.id)
        decided = classify(call, screen)
        if decided is not None:
            return decided
        assert isinstance(screen, ScreenRecording)
        workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        audio_files = sorted(call.audio_files, key=lambda m: m.start)
        video_files = sorted((m for m in screen.source_files if m.is_video), key=lambda m: m.start)
        if not audio_files:
            return CallOutcome(call.id, FAILED, "the call has no audio media file")
        outside = screen_outside_call(audio_files, video_files)
        if outside:
            return CallOutcome(call.id, FAILED, outside)
        fetched = fetch_media(call, screen, services, workdir, guard)
        with guard("ffmpeg"):
            check_inputs(fetched, [*audio_files, *video_files], services.tools, logger)
        audios, screens = fetched.audios, fetched.screens
        output = workdir / "muxed.mp4"
        with guard("ffmpeg"):
            plan, _info = mux_files(
                audios, screens, output,
                max_overlap_ms=settings.advanced.max_overlap_allowed,
                padding_slice_ms=settings.advanced.video_padding_slice_length_ms,
                tools=services.tools, workdir=workdir, logger=logger, on_plan=on_plan,
            )
        n = next_muxed_number(screen)
        media_id = muxed_media_id(call.id, n)
        location = output_location(call, screen, n, settings.processing.output_path)
        size = output.stat().st_size
        with guard("storage"):
            services.storage.upload(output, location)
            stored = services.storage.size(location)
        if stored != size:
            raise VerificationError(f"the uploaded file {location.describe()} has {stored} bytes, not {size}")
        body = write_back_body(call, screen, media_id, location, start=audio_files[0].start,
                               duration_s=plan.duration, size=size)
        try:
            with guard("rws"):
                services.rws.write_back(call, body)
        except TransientError:
            raise  # outcome unknown: the retry re-checks "already muxed", then overwrites the same name
        except GrmuxError:
            _unpublish(location, services, guard, logger)  # RWS refused it: leave no unregistered file
            raise
        reason = ""
        if settings.processing.delete_original:
            reason = _delete_originals(call, video_files, services, guard)
        reencoded = sum(1 for span in plan.video if span.action == "reencode")
        return CallOutcome(call.id, MUXED, reason, media_id=media_id, output=location.describe(),
                           duration_s=round(plan.duration, 3), reencoded_spans=reencoded,
                           sources=tuple(sorted(source_media_ids(call, screen))))
    except TransientError:
        raise
    except GrmuxError as error:
        reason = fetched.readable(first_line(error)) if fetched else first_line(error)
        return CallOutcome(call.id, FAILED, reason.replace(f"{workdir}{os.sep}", "").replace(str(workdir), "scratch"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _unpublish(location, services: Services, guard: Guard, logger: Any) -> None:
    """Remove a published muxed file whose registration RWS refused (best effort)."""
    try:
        with guard("storage"):
            services.storage.delete(location)
    except GrmuxError as exc:
        logger.warning("could not remove the unregistered muxed file %s: %s", location.describe(), first_line(exc))


def _delete_originals(call: CallRecording, originals: list[MediaFile], services: Services, guard: Guard) -> str:
    """Delete the original screen media (operator opted in; the mux is verified and registered)."""
    for media in originals:
        with guard("rws"):
            services.rws.delete_original(call.id, media.media_id)
    return f"deleted {len(originals)} original screen media file(s)"


def clean_stale_workdirs(temp_dir: str | os.PathLike[str], logger: logging.Logger | None = None) -> int:
    """Remove scratch folders left by dead processes (kill -9, power loss). Returns how many."""
    removed = 0
    for path in Path(temp_dir).glob(f"{WORK_PREFIX}*"):
        pid_text = path.name[len(WORK_PREFIX):].split("-", 1)[0]
        if pid_text.isdigit() and pid_alive(int(pid_text)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    if removed:
        (logger or log).info("removed %d stale scratch folder(s) of dead runs from %s", removed, temp_dir)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]
