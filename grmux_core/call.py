"""One call, end to end, as plain functions shared by the Prefect task and the command lines.

:func:`process_call` runs four steps, each a function of its own:

1. :func:`prepare` — re-read the screen recording (after the caller took the call's lock), decide
   from metadata what needs no media (pending, already muxed, nothing to mux);
2. :func:`fetch_and_check` — download and decrypt the media, probe each file once, check the
   inputs (empty, unreadable, truncated) before any mux; the planner then compares each file's length
   with its metadata span (clock drift: corrected within ``[advanced]`` drift band, refused beyond);
3. :func:`render` — plan, mux and verify the output in the call's scratch folder;
4. :func:`publish_and_register` — when the site encrypts, encrypt the verified output for its
   certificates (the plain MP4 never leaves the 0600 scratch folder); upload (temporary name, then
   publish); for an encrypted file, check that RCS gives the key back and that the uploaded object
   decrypts to the verified plain file; register in RWS, and (optionally) delete the originals.

The call's scratch folder is removed whatever happened. Each call ends in one
:class:`~grmux_core.outcome.CallOutcome`. Orchestration concerns stay outside: retries (only
:class:`TransientError` propagates out of :func:`process_call`, so a caller can retry it), locks,
caching and concurrency limits (through the ``guard``) are the Prefect tasks' business.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from grmux_core import cancel
from grmux_core.contract import MEDIA_SUFFIXES, write_back_media_file
from grmux_core.crypto import decrypt_to_temp
from grmux_core.encryption import (
    CallEncryption,
    OutputEncryption,
    call_encryption,
    encrypt_file,
    encrypted_name,
    make_envelope,
    new_key,
    sha256_of_decrypted,
)
from grmux_core.errors import (
    AuthError,
    Cancelled,
    DecryptError,
    GrmuxError,
    KeyUnavailable,
    MediaError,
    ScratchError,
    StorageFull,
    TransferTooSlow,
    TransientError,
    VerificationError,
    WriteBackRefused,
)
from grmux_core.metrics import latency_seconds
from grmux_core.models import (
    CallRecording,
    MediaFile,
    MediaLocation,
    ScreenRecording,
    format_time,
    muxed_media_id,
    next_muxed_number,
    source_media_ids,
)
from grmux_core.mux import MuxTools, audio_input, mux_inputs, probe_media, screen_input
from grmux_core.outcome import CallOutcome, Status, first_line
from grmux_core.plan import AudioInput, DriftBand, MuxPlan, ScreenInput
from grmux_core.probe import MediaInfo
from grmux_core.scratch import CallScratch, padding_cache_dir
from grmux_core.services import Guard, Services, no_guard
from grmux_core.triage import classify

log = logging.getLogger("grmux.call")
Logger = logging.Logger | logging.LoggerAdapter

#: How much shorter than its header says a screen file's video may really be before it counts as
#: truncated (an upload cut short would otherwise be padded with a frozen frame).
TRUNCATION_TOLERANCE_S = 1.0
TRUNCATION_TOLERANCE_SHARE = 0.10
#: Free space kept beyond a call's estimate (ffmpeg's own temporary files, the padding cache).
FREE_SPACE_MARGIN = 16 * 1024 * 1024
#: Tries of the upload when storage answers 507 (the muxed file is kept between them), and the pause.
UPLOAD_ATTEMPTS = 3
UPLOAD_RETRY_DELAY_S = 5.0
#: A call's deadline beyond its transfers at the minimum rate: this many times the call's length
#: (probing, muxing, verifying) plus :data:`DEADLINE_BASE_S`.
DEADLINE_CALL_FACTOR = 2.0
DEADLINE_BASE_S = 300.0
MB = 1024 * 1024


# ------------------------------------------------------------------------------------ fetching


def _local_name(index: int, media: MediaFile) -> str:
    suffix = Path(urlsplit(media.location.path).path).suffix or MEDIA_SUFFIXES.get(media.type, "")
    return f"{index:02d}{suffix}"


def _fetch(media: MediaFile, index: int, workdir: Path, services: Services, guard: Guard) -> Path:
    """Download one media file and decrypt it if needed; returns the clear local file."""
    target = workdir / _local_name(index, media)
    try:
        with guard("storage"):
            services.storage.download(media.location, target)
    except TransientError as exc:
        raise TransientError(f"media {media.media_id}: {first_line(exc)}") from exc
    except TransferTooSlow as exc:
        raise TransferTooSlow(f"media {media.media_id}: {first_line(exc)}") from exc
    except OSError as exc:
        raise scratch_error(exc, target, workdir.parent, f"downloading media {media.media_id}") from exc
    if not media.encrypted:
        return target
    with guard("rcs"):
        key, iv = services.rcs.decrypt_key(media.pkcs7 or "")
    try:
        clear = decrypt_to_temp(target, key, iv, temp_dir=workdir, suffix=target.suffix)
    except OSError as exc:
        raise scratch_error(exc, target, workdir.parent, f"decrypting media {media.media_id}") from exc
    target.unlink(missing_ok=True)  # keep only the clear copy; the original stays in storage
    return clear


def scratch_error(error: OSError, path: Path | str | None, temp_dir: Path, doing: str) -> ScratchError:
    """An OSError of the scratch space as the operator needs it: what, where (relative to temp_dir), why."""
    where = Path(error.filename) if error.filename else (Path(path) if path else None)
    shown = "temp_dir"
    if where is not None:
        with contextlib.suppress(ValueError):
            shown = f"temp_dir/{where.relative_to(temp_dir)}"
    why = error.strerror or str(error)
    return ScratchError(f"{doing}: {why} at {shown} (temp_dir is {temp_dir})")


# ------------------------------------------------------------------------------------ budgets (pure)


def space_needed(media_files: list[MediaFile]) -> int:
    """Bytes a call needs in temp_dir at its peak: the inputs, a decrypted copy of the largest
    encrypted one (both exist for a moment), an output as large as the inputs, and a margin.
    Sizes missing from the metadata count as 0 (the check is a fast path, not a promise)."""
    sizes = [m.size or 0 for m in media_files]
    encrypted = [m.size or 0 for m in media_files if m.encrypted]
    return 2 * sum(sizes) + max(encrypted, default=0) + FREE_SPACE_MARGIN


def free_space_problem(free: int, need: int) -> str:
    """The reason a call cannot start for lack of space, else ""."""
    if free >= need:
        return ""
    return (f"temp_dir has {free // MB} MB free, this call needs ~{need // MB} MB "
            "(No space left for its media): free space in [processing] temp_dir")


def call_deadline_s(media_files: list[MediaFile], min_rate: float) -> float | None:
    """How long a call may take: its transfers at the minimum rate (down, and the output up), plus
    a multiple of its length for the rest. None without a minimum rate (no deadline)."""
    if min_rate <= 0:
        return None
    transfer = 2 * sum(m.size or 0 for m in media_files) / min_rate
    length = max(((m.stop - m.start).total_seconds() for m in media_files), default=0.0)
    return transfer + DEADLINE_CALL_FACTOR * length + DEADLINE_BASE_S


@dataclass
class FetchedMedia:
    """The call's media as clear local files, with where each came from (for readable errors)."""

    audios: list[tuple[str, datetime]] = field(default_factory=list)
    screens: list[tuple[str, datetime]] = field(default_factory=list)
    spans: dict[str, float] = field(default_factory=dict)  # local path -> metadata stop - start (s)
    media_ids: dict[str, str] = field(default_factory=dict)  # local path -> mediaId
    sizes: dict[str, int] = field(default_factory=dict)  # local path -> bytes

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
        fetched.sizes[path] = os.path.getsize(path)
        fetched.spans[path] = (media.stop - media.start).total_seconds()
        (fetched.audios if index < len(audio_files) else fetched.screens).append((path, media.start))
    return fetched


# ------------------------------------------------------------------------------------ checks (pure)


def screen_outside_call(audio_files: list[MediaFile], video_files: list[MediaFile]) -> str:
    """A failure reason when no screen file overlaps the call's audio span (nothing to show), else ""."""
    start, stop = min(m.start for m in audio_files), max(m.stop for m in audio_files)
    if any(m.start < stop and m.stop > start for m in video_files):
        return ""
    first, last = min(m.start for m in video_files), max(m.stop for m in video_files)
    return (f"the screen recording ({format_time(first)} to {format_time(last)}) lies entirely outside the "
            f"call ({format_time(start)} to {format_time(stop)}): there is nothing to mux; check the screen "
            "recording's metadata times")


def check_inputs(fetched: FetchedMedia, media_files: list[MediaFile],
                 probes: Mapping[str, MediaInfo | MediaError]) -> None:
    """Fail clearly, before muxing, on an empty, unreadable or truncated input. Reads the probes
    made for the mux: no file is probed twice. (Length against metadata is the planner's drift
    check: :func:`grmux_core.plan.correct_drift`.)"""
    by_id = {m.media_id: m for m in media_files}
    for path, media_id in fetched.media_ids.items():
        _check_one(by_id[media_id], fetched.sizes[path], probes[path], fetched.readable)


def _check_one(media: MediaFile, size: int, probe: MediaInfo | MediaError, readable: Callable[[str], str]) -> None:
    kind, stream = ("audio", "audio") if media.is_audio else ("screen", "video")
    if size == 0:
        raise MediaError(f"{kind} media {media.media_id} is empty (0 bytes) in storage")
    if isinstance(probe, MediaError):
        raise MediaError(f"{kind} media {media.media_id} cannot be read: it is corrupt or truncated "
                         f"({readable(first_line(probe))})") from probe
    if (probe.n_audio if media.is_audio else probe.n_video) == 0:
        raise MediaError(f"{kind} media {media.media_id} holds no readable {stream} stream: it is corrupt or truncated")
    end, header = probe.packets_end, probe.duration
    if media.is_video and header and end is not None and \
            header - end > max(TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE_SHARE * header):
        raise MediaError(f"screen media {media.media_id} is truncated: its video ends at {end:.1f} s but its "
                         f"header says {header:.1f} s")


# ------------------------------------------------------------------------------------ the steps


@dataclass
class CallWork:
    """One call in progress: what each step leaves for the next."""

    call: CallRecording
    screen: ScreenRecording
    audio_files: list[MediaFile]
    video_files: list[MediaFile]
    workdir: Path
    fetched: FetchedMedia | None = None

    def readable(self, message: str) -> str:
        """``message`` with scratch paths replaced by media ids (or "scratch")."""
        if self.fetched is not None:
            message = self.fetched.readable(message)
        return message.replace(f"{self.workdir}{os.sep}", "").replace(str(self.workdir), "scratch")


def prepare(call: CallRecording, services: Services, workdir: Path, guard: Guard = no_guard) -> CallWork | CallOutcome:
    """Re-read the screen recording and decide what needs no media; else the work to do.

    Read again here, *after* the caller took the call's lock, so a call another instance muxed
    meanwhile is skipped rather than muxed twice.
    """
    with guard("rws"):
        screen = services.rws.screen_recording(call.id)
    decided = classify(call, screen)
    if decided is not None:
        return decided
    assert isinstance(screen, ScreenRecording)
    audio_files = sorted(call.audio_files, key=lambda m: m.start)
    video_files = sorted((m for m in screen.source_files if m.is_video), key=lambda m: m.start)
    if not audio_files:
        return CallOutcome(call.id, Status.FAILED, "the call has no audio media file")
    outside = screen_outside_call(audio_files, video_files)
    if outside:
        return CallOutcome(call.id, Status.FAILED, outside)
    return CallWork(call, screen, audio_files, video_files, workdir)


def fetch_and_check(work: CallWork, services: Services, guard: Guard = no_guard,
                    logger: Logger | None = None) -> tuple[list[AudioInput], list[ScreenInput]]:
    """Fetch the media into the call's private folder, probe each file once, check them, and
    return the planner's inputs built from those same probes."""
    work.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    problem = free_space_problem(shutil.disk_usage(work.workdir).free,
                                 space_needed([*work.audio_files, *work.video_files]))
    if problem:
        raise ScratchError(problem)
    fetched = work.fetched = fetch_media(work.call, work.screen, services, work.workdir, guard)
    paths = list(fetched.media_ids)
    with guard("ffmpeg"):
        probes = dict(zip(paths, probe_media(paths, services.tools, logger,
                                             every_packet={p for p, _ in fetched.screens})))
        check_inputs(fetched, [*work.audio_files, *work.video_files], probes)
        return _planner_inputs(fetched, cast(dict[str, MediaInfo], probes), services.tools, logger)


def _planner_inputs(fetched: FetchedMedia, probes: dict[str, MediaInfo], tools: MuxTools,
                    logger: Logger | None) -> tuple[list[AudioInput], list[ScreenInput]]:
    audios = [audio_input(path, start, probes[path], tools, logger, fetched.spans.get(path))
              for path, start in fetched.audios]
    return audios, [screen_input(path, start, probes[path], fetched.spans.get(path)) for path, start in fetched.screens]


def render(work: CallWork, inputs: tuple[list[AudioInput], list[ScreenInput]], services: Services,
           guard: Guard = no_guard, logger: Logger | None = None,
           on_plan: Callable[[MuxPlan], None] | None = None) -> tuple[MuxPlan, Path]:
    """Plan, mux and verify the call into ``muxed.mp4`` of its folder (padding from the worker's cache)."""
    settings = services.settings
    output = work.workdir / "muxed.mp4"
    with guard("ffmpeg"):
        plan, _info = mux_inputs(
            *inputs, output,
            max_overlap_ms=settings.advanced.max_overlap_allowed,
            padding_slice_ms=settings.advanced.video_padding_slice_length_ms,
            drift=DriftBand(settings.advanced.drift_correct_from_percent / 100,
                            settings.advanced.drift_refuse_above_percent / 100),
            tools=services.tools, workdir=work.workdir, logger=logger, on_plan=on_plan,
            pad_cache_dir=padding_cache_dir(settings.processing.temp_dir),
        )
    return plan, output


@dataclass(frozen=True)
class StoredFile:
    """What is uploaded for a call: the local file, its name in storage and its envelope (if encrypted)."""

    path: Path
    location: MediaLocation
    media_id: str
    size: int
    pkcs7: str | None = None
    plain_sha256: str = ""
    key_iv: tuple[bytes, bytes] | None = field(default=None, repr=False)


def seal_output(work: CallWork, output: Path, n: int, template: str, encryption: OutputEncryption) -> StoredFile:
    """Encrypt the verified ``output`` for the site's certificates (a fresh key and IV) into the
    scratch folder and remove the plain file: from here on only ciphertext exists."""
    key, iv = new_key()
    envelope = make_envelope(key, iv, encryption.certificates)
    sealed = encrypt_file(output, output.with_name(output.name + ".bin"), key, iv)
    output.unlink()
    location = output_location(work.call, work.screen, n, template)
    location = replace(location, path=encrypted_name(location.path))
    return StoredFile(sealed.path, location, muxed_media_id(work.call.id, n, "mp4.bin"), sealed.size,
                      envelope, sealed.plain_sha256, (key, iv))


def plain_output(work: CallWork, output: Path, n: int, template: str) -> StoredFile:
    location = output_location(work.call, work.screen, n, template)
    return StoredFile(output, location, muxed_media_id(work.call.id, n), output.stat().st_size)


def verify_sealed(stored: StoredFile, work: CallWork, services: Services, guard: Guard) -> None:
    """Before registering an encrypted file: RCS must give its key back for the envelope just
    written, and the object *in storage* must decrypt (whole, streaming) to the verified plain
    file. A file RCS cannot open would be a registered recording nobody can play."""
    assert stored.pkcs7 and stored.key_iv
    try:
        with guard("rcs"):
            key, iv = services.rcs.decrypt_key(stored.pkcs7)
    except (KeyUnavailable, AuthError) as exc:
        raise VerificationError(f"RCS cannot open the envelope of the encrypted muxed file, so nobody could "
                                f"play it; not registered ({first_line(exc)})") from exc
    if (key, iv) != stored.key_iv:
        raise VerificationError("RCS answered another key for the envelope of the encrypted muxed file; "
                                "not registered")
    check = work.workdir / "stored-check.bin"
    try:
        with guard("storage"):
            services.storage.download(stored.location, check)
        digest = sha256_of_decrypted(check, key, iv)
    except DecryptError as exc:
        raise VerificationError(f"the uploaded encrypted file {stored.location.describe()} does not decrypt "
                                f"({first_line(exc)}); not registered") from exc
    finally:
        check.unlink(missing_ok=True)
    if digest != stored.plain_sha256:
        raise VerificationError(f"the uploaded encrypted file {stored.location.describe()} does not decrypt to "
                                "the verified muxed file; not registered")


def publish_and_register(work: CallWork, plan: MuxPlan, output: Path, services: Services,
                         guard: Guard = no_guard, logger: Logger | None = None,
                         encryption: OutputEncryption | None = None) -> CallOutcome:
    """Encrypt (when the site does) and upload the verified output, check it, register it in RWS,
    then (optionally) delete the originals.

    The published file is removed again only when it fails its check before registering, or when
    RWS clearly refused it and a read-back shows it absent
    (:class:`~grmux_core.errors.WriteBackRefused`): after any other failure RWS may hold the
    media id, and removing the file would leave a registered recording without bytes. A file left
    unregistered is overwritten by the next attempt (same ``_muxed_<n>`` name).
    """
    call, screen, settings = work.call, work.screen, services.settings
    logger = logger or log
    decision = decide_encryption(work, encryption or OutputEncryption("never"))
    n = next_muxed_number(screen)
    template = settings.processing.output_path
    stored = seal_output(work, output, n, template, encryption) if decision.encrypt and encryption \
        else plain_output(work, output, n, template)
    upload_with_retry(stored.path, stored.location, services, guard, logger)
    with guard("storage"):
        size = services.storage.size(stored.location)
    try:
        if size != stored.size:
            raise VerificationError(f"the uploaded file {stored.location.describe()} has {size} bytes, not {stored.size}")
        if stored.pkcs7:
            verify_sealed(stored, work, services, guard)
    except VerificationError:
        _unpublish(stored.location, services, guard, logger)
        raise
    body = write_back_media_file(call, screen, stored.media_id, stored.location, start=work.audio_files[0].start,
                                 duration_s=plan.duration, size=stored.size, pkcs7=stored.pkcs7)
    try:
        with guard("rws"):
            services.rws.write_back(call, body)
    except WriteBackRefused:
        _unpublish(stored.location, services, guard, logger)  # refused and absent: leave no unregistered file
        raise
    # Any other error (TransientError included) keeps the file: RWS may have registered it. A retry
    # re-checks "already muxed" first, then overwrites the same name.
    registered = datetime.now(UTC)
    notes = [decision.warning] if decision.warning else []
    if decision.warning:
        logger.warning("call %s: %s", call.id, decision.warning)
    if settings.processing.delete_original:
        notes.append(_delete_originals(call, work.video_files, services, guard))
    reencoded = sum(1 for span in plan.video if span.action == "reencode")
    return CallOutcome(call.id, Status.MUXED, "; ".join(notes), media_id=stored.media_id,
                       output=stored.location.describe(), duration_s=round(plan.duration, 3),
                       reencoded_spans=reencoded, sources=tuple(sorted(source_media_ids(call, screen))),
                       latency_s=latency_seconds(call.stop, registered))


def decide_encryption(work: CallWork, encryption: OutputEncryption) -> CallEncryption:
    """The ``encrypt_output`` rule for this call (its sources encrypted or not)."""
    sources = [*work.audio_files, *work.video_files]
    return call_encryption(encryption, any(m.encrypted for m in sources))


def upload_with_retry(output: Path, location: MediaLocation, services: Services, guard: Guard,
                      logger: Any) -> None:
    """Upload, retrying only a full storage (507) a few times: the muxed file is kept, so the call
    is neither downloaded nor muxed again; a task retry would redo all of it."""
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        try:
            with guard("storage"):
                services.storage.upload(output, location)
            return
        except StorageFull as exc:
            if attempt == UPLOAD_ATTEMPTS:
                raise StorageFull(f"{first_line(exc)} (upload tried {attempt} times)", status=exc.status) from exc
            logger.warning("storage full for %s (attempt %d/%d); the upload is retried in %g s",
                           location.describe(), attempt, UPLOAD_ATTEMPTS, UPLOAD_RETRY_DELAY_S)
            cancel.current().wait(UPLOAD_RETRY_DELAY_S)


def process_call(
    call: CallRecording,
    services: Services,
    *,
    guard: Guard = no_guard,
    logger: Logger | None = None,
    on_plan: Callable[[MuxPlan], None] | None = None,
    encryption: OutputEncryption | None = None,
) -> CallOutcome:
    """Mux one call end to end. Returns its outcome; raises only :class:`TransientError`.

    ``on_plan`` receives the alignment plan as soon as it exists (the tasks draw it for failed
    and re-encoded calls). ``encryption`` is the cycle's certificates and ``encrypt_output``
    mode (read once per cycle by the flow); ``None`` reads them now (callers outside a cycle).
    """
    logger = logger or log
    stop = cancel.current()
    temp_dir = Path(services.settings.processing.temp_dir)
    work: CallWork | None = None
    try:
        stop.raise_if_stopped()
        with CallScratch(temp_dir, call.id) as scratch:
            prepared = prepare(call, services, scratch.path, guard)
            if isinstance(prepared, CallOutcome):
                return prepared
            work = prepared
            if encryption is None:
                with guard("rws"):
                    encryption = services.output_encryption()
            refused = decide_encryption(work, encryption).failure
            if refused:
                return CallOutcome(call.id, Status.FAILED, refused)
            return _mux_within_deadline(work, services, guard, logger, on_plan, encryption)
    except TransientError:
        raise
    except Cancelled as error:
        if stop.is_set():  # the run was cancelled: not the call's fault, the next run does it
            return CallOutcome(call.id, Status.CANCELLED, f"{stop.reason} while it ran; nothing registered")
        return CallOutcome(call.id, Status.FAILED, error.reason)  # the call's own deadline
    except GrmuxError as error:
        reason = work.readable(first_line(error)) if work else first_line(error)
        if isinstance(error, ScratchError) and work is not None:
            reason += f" (call media {', '.join(m.media_id for m in [*work.audio_files, *work.video_files])})"
        return CallOutcome(call.id, Status.FAILED, reason)
    except OSError as error:  # the scratch space (the folder itself, ffmpeg's inputs): name where
        reason = first_line(scratch_error(error, None, temp_dir, f"call {call.id}"))
        return CallOutcome(call.id, Status.FAILED, reason)


def _mux_within_deadline(work: CallWork, services: Services, guard: Guard, logger: Logger,
                         on_plan: Callable[[MuxPlan], None] | None, encryption: OutputEncryption) -> CallOutcome:
    """Fetch, render and publish under the call's deadline (a child of the run's stop token).

    Publishing is not interrupted: once the verified output goes up, stopping between upload
    and registration would leave a file nobody registered.
    """
    media = [*work.audio_files, *work.video_files]
    seconds = call_deadline_s(media, services.settings.advanced.min_transfer_rate_kbps * 1024.0)
    with cancel.deadline(cancel.current(), seconds, f"call {work.call.id}") as stop:
        inputs = fetch_and_check(work, services, guard, logger)
        stop.raise_if_stopped()
        plan, output = render(work, inputs, services, guard, logger, on_plan)
        stop.raise_if_stopped()
    return publish_and_register(work, plan, output, services, guard, logger, encryption)


# ------------------------------------------------------------------------------------ helpers


def output_location(call: CallRecording, screen: ScreenRecording, n: int, template: str) -> MediaLocation:
    """Where the muxed file goes: ``output_path`` relative to the first screen file's storage."""
    first = min((m for m in screen.source_files if m.is_video), key=lambda m: m.start)
    relative = template.format(date=call.start.date().isoformat(), call_id=call.id, n=n)
    return first.location.sibling(relative)


def _unpublish(location: MediaLocation, services: Services, guard: Guard, logger: Any) -> None:
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
