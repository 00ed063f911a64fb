"""The sync canary: a synthetic call through the real storage, RCS and the production mux.

Why: an ffmpeg upgrade that shifts audio, an RCS user that lost its media-decrypt permission or a
full storage volume otherwise shows only when an agent's supervisor plays a call out of sync. The
canary finds it first, within the hour, with the failing step named.

What one run does (each step timed, the first failing step named in :attr:`CanaryReport.failed_step`):

1. ``configuration`` — ``[advanced] canary_location`` names a collection on the real storage;
2. ``generate`` — in the scratch folder, a call of :data:`LAYOUT`: one audio file with beeps and
   three screen files with white flashes on the same marker clock (:mod:`grmux_core.synthetic`),
   the second overlapping the first, a padding gap before the third; the third is encrypted to the
   site's screen-recording certificates when it lists any (:func:`site_certificates`, the RWS
   settings the cycles read) or to the certificates its caller gives;
3. ``storage write`` — upload each file to a fresh folder under ``canary_location``;
4. ``storage read``, ``rcs``, ``ffmpeg`` — the production steps of :mod:`grmux_core.call`
   (:func:`~grmux_core.call.fetch_and_check`, :func:`~grmux_core.call.render`) with the site's
   settings: download, RCS ``decrypt-key`` and decryption, probe and checks, plan, mux, verify;
5. ``storage write`` — upload the muxed file as production publishes it (temporary name, size check);
6. ``alignment`` — decode the output: every beep, flash and the padding gap within one frame
   (:data:`FRAME_TOLERANCE_S`) of where the spec's rules put it, offsets in ms;
7. ``cleanup`` — delete every object it wrote (and check they are gone), and its scratch folder.

It never reads or writes an RWS record: it builds its call and screen records itself.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from grmux_core import synthetic
from grmux_core.call import CallWork, fetch_and_check, render
from grmux_core.encryption import SiteCertificate, encrypt_file, make_envelope, new_key, validate_certificates
from grmux_core.errors import DecryptError, GrmuxError, KeyUnavailable
from grmux_core.models import AWS_S3, WEBDAV, CallRecording, MediaFile, MediaLocation, ScreenRecording
from grmux_core.outcome import first_line
from grmux_core.scratch import call_workdir
from grmux_core.services import Guard, Services, no_guard

log = logging.getLogger("grmux.canary")

#: The steps a canary run reports, in order (a failure names one of them).
STEPS: tuple[str, ...] = ("configuration", "generate", "storage write", "storage read", "rcs", "ffmpeg",
                          "alignment", "cleanup")
#: One frame at 25 fps: how far a marker may be from where it belongs.
FRAME_TOLERANCE_S = 0.040
PERIOD_S = 2.0
PHASE_S = 1.0
FPS = 25
#: The canary's "call id" prefix: its scratch folder is a call folder like any other (stale ones are
#: removed by :func:`grmux_core.scratch.clean_stale_workdirs`).
CALL_ID_PREFIX = "grmux-canary"


@dataclass(frozen=True)
class Segment:
    """One synthetic media file: seconds from the call's start on the marker clock."""

    name: str
    kind: str  # "audio" or "screen"
    start: float
    stop: float
    encrypt: bool = False


#: The synthetic call: 16 s of audio; screen 0-6.2 s, 6.0-10.0 s (200 ms overlap), a gap to 12 s
#: (padding), 12-16 s (the encrypted one). Markers every 2 s from 1 s: none on a file boundary.
LAYOUT: tuple[Segment, ...] = (
    Segment("voice.mp3", "audio", 0.0, 16.0),
    Segment("screen1.mp4", "screen", 0.0, 6.2),
    Segment("screen2.mp4", "screen", 6.0, 10.0),
    Segment("screen3.mp4", "screen", 12.0, 16.0, encrypt=True),
)


class CanaryFailed(Exception):
    """A step failed; the report already names it."""


@dataclass
class MarkerCheck:
    """One expected marker (or padding edge) and where the output has it."""

    kind: str  # "beep", "flash", "padding start", "padding end"
    expected_s: float
    found_s: float | None

    @property
    def offset_ms(self) -> float | None:
        return None if self.found_s is None else round((self.found_s - self.expected_s) * 1000, 1)

    @property
    def ok(self) -> bool:
        return self.found_s is not None and abs(self.found_s - self.expected_s) <= FRAME_TOLERANCE_S + 1e-3


@dataclass
class CanaryReport:
    """What one canary run found: green or the failing step, each step's time, every marker's offset."""

    run_id: str
    started: datetime
    failed_step: str = ""
    reason: str = ""
    step_seconds: dict[str, float] = field(default_factory=dict)
    markers: list[MarkerCheck] = field(default_factory=list)
    encrypted_segments: int = 0
    notes: list[str] = field(default_factory=list)
    left_behind: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed_step

    def headline(self) -> str:
        if self.ok:
            worst = max((abs(m.offset_ms or 0.0) for m in self.markers), default=0.0)
            return f"canary green: {len(self.markers)} markers, the farthest {worst:.1f} ms from its place"
        return f"canary red at {self.failed_step}: {self.reason}"

    def add_time(self, step: str, seconds: float) -> None:
        self.step_seconds[step] = round(self.step_seconds.get(step, 0.0) + seconds, 3)

    def fail(self, step: str, reason: str) -> None:
        if not self.failed_step:  # the first failure is the cause; cleanup trouble comes after it
            self.failed_step, self.reason = step, reason

    @contextlib.contextmanager
    def step(self, name: str, clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
        """Time a step; an error in it fails the run at that step (re-raised as :class:`CanaryFailed`)."""
        began = clock()
        try:
            yield
        except CanaryFailed:
            raise
        except (GrmuxError, OSError, ValueError) as error:
            self.fail(name, first_line(error))
            raise CanaryFailed(name) from error
        finally:
            self.add_time(name, clock() - began)

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data["started"] = self.started.isoformat()
        data["ok"] = self.ok
        data["markers"] = [m | {"offset_ms": c.offset_ms, "ok": c.ok} for m, c in
                           zip(data["markers"], self.markers, strict=True)]
        return data

    def marker_rows(self) -> list[dict[str, Any]]:
        """One row per marker, for the artifact table."""
        return [{"marker": m.kind, "expected s": round(m.expected_s, 3),
                 "found s": "-" if m.found_s is None else round(m.found_s, 3),
                 "offset ms": "-" if m.offset_ms is None else m.offset_ms, "ok": "yes" if m.ok else "NO"}
                for m in self.markers]

    def step_rows(self) -> list[dict[str, Any]]:
        return [{"step": s, "seconds": self.step_seconds[s],
                 "result": ("FAILED" if s == self.failed_step else "ok")}
                for s in STEPS if s in self.step_seconds]


# ------------------------------------------------------------------------------------ pure rules


def screen_spans(layout: tuple[Segment, ...], max_overlap_ms: int) -> list[tuple[float, float, float]]:
    """Where each screen file shows in the output: ``(out_start, out_end, shift)`` (seconds).

    The spec's overlap rule, written independently of the planner: an overlap of at most
    ``max_overlap_allowed`` keeps both files whole and shifts the later one by the overlap; a larger
    one truncates the earlier file where the later one starts.
    """
    spans: list[list[float]] = []
    for seg in sorted((s for s in layout if s.kind == "screen"), key=lambda s: s.start):
        start, stop, shift = seg.start, seg.stop, 0.0
        if spans and start < spans[-1][1]:
            overlap = spans[-1][1] - start
            if overlap * 1000 <= max_overlap_ms:
                shift = overlap
                start, stop = start + shift, stop + shift
            else:
                spans[-1][1] = start
        spans.append([start, stop, shift])
    return [(a, b, c) for a, b, c in spans]


def expected_markers(layout: tuple[Segment, ...], max_overlap_ms: int) -> dict[str, list[float]]:
    """Output times of every beep, every flash, and the padding edges, from the layout alone."""
    audio = [s for s in layout if s.kind == "audio"]
    call_end = max(s.stop for s in audio)
    beeps = sorted(t for s in audio for t in synthetic.marker_times(s.start, s.stop, period=PERIOD_S, phase=PHASE_S))
    flashes: list[float] = []
    screens = sorted((s for s in layout if s.kind == "screen"), key=lambda s: s.start)
    for seg, (start, stop, shift) in zip(screens, screen_spans(layout, max_overlap_ms), strict=True):
        flashes += [t + shift for t in synthetic.marker_times(seg.start, seg.stop, period=PERIOD_S, phase=PHASE_S)
                    if start <= t + shift < stop]
    padding: list[float] = []
    cursor = 0.0
    for start, stop, _ in sorted(screen_spans(layout, max_overlap_ms)):
        if start - cursor > 0.5:
            padding += [cursor, start]
        cursor = max(cursor, stop)
    if call_end - cursor > 0.5:
        padding += [cursor, call_end]
    return {"beep": beeps, "flash": sorted(flashes), "padding": padding}


def match_markers(kind: str, expected: list[float], found: list[float]) -> list[MarkerCheck]:
    """Pair each expected marker with the nearest found one; a found marker nobody expected is
    reported too (expected = its nearest expected instant), so content in the wrong place fails."""
    checks = []
    for t in expected:
        nearest = min(found, key=lambda f: abs(f - t), default=None)
        if nearest is not None and abs(nearest - t) > PERIOD_S / 2:
            nearest = None
        checks.append(MarkerCheck(kind, t, nearest))
    claimed = {c.found_s for c in checks}
    for f in found:
        if f not in claimed:
            nearest_t = min(expected, key=lambda t: abs(f - t), default=f)
            checks.append(MarkerCheck(f"unexpected {kind}", nearest_t, f))
    return checks


def alignment_problem(checks: list[MarkerCheck]) -> str:
    """The red reason of the worst marker (empty when all are within one frame)."""
    bad = [c for c in checks if not c.ok]
    if not bad:
        return ""
    missing = [c for c in bad if c.found_s is None]
    if missing:
        first = missing[0]
        return f"{len(bad)} marker(s) off; {first.kind} expected at {first.expected_s:.3f} s not found"
    worst = max(bad, key=lambda c: abs(c.offset_ms or 0.0))
    return (f"alignment offset {worst.offset_ms:+.0f} ms: {worst.kind} expected at {worst.expected_s:.3f} s "
            f"found at {worst.found_s:.3f} s (limit ±{FRAME_TOLERANCE_S * 1000:.0f} ms; {len(bad)} marker(s) off)")


def canary_root(location: str) -> MediaLocation:
    """``[advanced] canary_location`` as a storage location of the collection (empty path)."""
    if not location:
        raise ValueError("[advanced] canary_location is empty: set it to a WebDAV collection URL or "
                         "s3://bucket/prefix/ on the recording storage")
    if location.startswith("s3://"):
        bucket, _, prefix = location[5:].partition("/")
        return MediaLocation(AWS_S3, prefix, bucket=bucket)
    return MediaLocation(WEBDAV, "", base=location)


def object_location(root: MediaLocation, run_id: str, name: str, s3: Any = None) -> MediaLocation:
    """Where one canary object goes: ``<canary_location>/<run id>/<name>``."""
    if root.is_s3:
        return MediaLocation(AWS_S3, f"{root.path}{run_id}/{name}", bucket=root.bucket,
                             region=getattr(s3, "region", "") or "", endpoint=getattr(s3, "endpoint_url", "") or "")
    return MediaLocation(WEBDAV, f"{run_id}/{name}", base=root.base)


# ------------------------------------------------------------------------------------ hooks


def site_certificates(services: Services) -> list[SiteCertificate]:
    """The site's screen-recording certificates (RWS ``settings/screen-recording-encryption``, read
    and checked as the cycles do): a settings read, never a call or screen record."""
    return list(validate_certificates(services.rws.screen_recording_certificates()))


def load_certificates(paths: list[str]) -> list[SiteCertificate]:
    """PEM certificate files given by hand (``grmux canary --certificate``), checked like the site's."""
    return list(validate_certificates([(Path(path).name, Path(path).read_text()) for path in paths]))


# ------------------------------------------------------------------------------------ the run


#: The step a production guard's service counts as (storage in the production path only reads).
SERVICE_STEPS = {"storage": "storage read", "rcs": "rcs", "ffmpeg": "ffmpeg", "rws": "rws"}


class StepGuard:
    """The production steps' guard, wrapped: it times each service and remembers which one failed.

    The outer guard (the Prefect tasks' per-service slots) is still entered, so the canary holds the
    same limits as real work.
    """

    def __init__(self, outer: Guard, report: CanaryReport, clock: Callable[[], float] = time.monotonic):
        self.outer, self.report, self.clock = outer, report, clock
        self.failed = ""

    @contextlib.contextmanager
    def __call__(self, service: str) -> Iterator[None]:
        name = SERVICE_STEPS.get(service, service)
        began = self.clock()
        try:
            with self.outer(service):
                yield
        except BaseException:
            self.failed = self.failed or name
            raise
        finally:
            self.report.add_time(name, self.clock() - began)


def _generate(layout: tuple[Segment, ...], folder: Path, ffmpeg: str,
              certificates: list[SiteCertificate]) -> dict[str, tuple[Path, str | None]]:
    """Make every file of the layout; returns name → (file to upload, pkcs7 envelope or None)."""
    out: dict[str, tuple[Path, str | None]] = {}
    for seg in layout:
        plain = folder / seg.name
        if seg.kind == "audio":
            synthetic.make_audio(plain, seg.start, seg.stop - seg.start, period=PERIOD_S, phase=PHASE_S, ffmpeg=ffmpeg)
        else:
            synthetic.make_screen(plain, seg.start, seg.stop - seg.start, fps=FPS, period=PERIOD_S, phase=PHASE_S,
                                  faststart=True, ffmpeg=ffmpeg)
        if seg.encrypt and certificates:
            encrypted = folder / f"{seg.name}.bin"
            key, iv = new_key()
            encrypt_file(plain, encrypted, key, iv)
            plain.unlink()
            out[seg.name] = (encrypted, make_envelope(key, iv, certificates))
        else:
            out[seg.name] = (plain, None)
    return out


def _records(run_id: str, start: datetime, layout: tuple[Segment, ...],
             stored: dict[str, tuple[MediaLocation, str | None]]) -> tuple[CallRecording, ScreenRecording]:
    """The call and screen records of the synthetic call (built here: RWS is never asked)."""
    def media(seg: Segment) -> MediaFile:
        location, pem = stored[seg.name]
        mime = "audio/mp3" if seg.kind == "audio" else "video/mp4"
        return MediaFile(f"{run_id}-{seg.name}", mime, start + timedelta(seconds=seg.start),
                         start + timedelta(seconds=seg.stop), location, pkcs7=pem)

    audio = tuple(media(s) for s in layout if s.kind == "audio")
    screens = tuple(media(s) for s in layout if s.kind == "screen")
    end = start + timedelta(seconds=max(s.stop for s in layout))
    return CallRecording(run_id, start, end, audio), ScreenRecording(run_id, screens, start, end)


def _production_step(guard: StepGuard, error: Exception) -> str:
    """The step an error of the production path belongs to."""
    if isinstance(error, DecryptError | KeyUnavailable):
        return "rcs"
    return guard.failed or "ffmpeg"


def run_canary(services: Services, *, certificates: list[SiteCertificate] | None = None,
               guard: Guard = no_guard, logger: logging.Logger | logging.LoggerAdapter | None = None,
               layout: tuple[Segment, ...] = LAYOUT) -> CanaryReport:
    """One canary run; never raises for a red result (the report says what failed)."""
    logger = logger or log
    settings = services.settings
    run_id = f"{CALL_ID_PREFIX}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    report = CanaryReport(run_id, datetime.now(UTC))
    scratch = call_workdir(settings.processing.temp_dir, run_id)
    written: list[MediaLocation] = []
    try:
        _run_steps(services, report, scratch, written, certificates, guard, logger, layout)
    except CanaryFailed:
        logger.error("%s", report.headline())
    finally:
        _cleanup(services, report, written, guard, logger)
        shutil.rmtree(scratch, ignore_errors=True)
    if report.ok:
        logger.info("%s", report.headline())
    return report


def _run_steps(services: Services, report: CanaryReport, scratch: Path, written: list[MediaLocation],
               certificates: list[SiteCertificate] | None, guard: Guard, logger: Any,
               layout: tuple[Segment, ...]) -> None:
    settings = services.settings
    with report.step("configuration"):
        root = canary_root(settings.advanced.canary_location)
        certs = site_certificates(services) if certificates is None else certificates
    if not certs:
        report.notes.append("no screen-recording certificate: nothing encrypted, RCS not exercised")
    with report.step("generate"):
        (scratch / "made").mkdir(mode=0o700, parents=True)
        files = _generate(layout, scratch / "made", services.tools.ffmpeg, certs)
    report.encrypted_segments = sum(1 for _, pem in files.values() if pem)
    stored: dict[str, tuple[MediaLocation, str | None]] = {}
    with report.step("storage write"):
        for name, (path, pem) in files.items():
            location = object_location(root, report.run_id, path.name, settings.s3)
            written.append(location)  # before the upload: a half-done upload is cleaned up too
            with guard("storage"):
                services.storage.upload(path, location)
            stored[name] = (location, pem)
    shutil.rmtree(scratch / "made", ignore_errors=True)
    call, screen = _records(report.run_id, report.started - timedelta(minutes=1), layout, stored)
    work = CallWork(call, screen, sorted(call.audio_files, key=lambda m: m.start),
                    sorted(screen.source_files, key=lambda m: m.start), scratch / "call")
    steps = StepGuard(guard, report)
    try:
        inputs = fetch_and_check(work, services, steps, logger)
        plan, output = render(work, inputs, services, steps, logger)
    except GrmuxError as error:
        step = _production_step(steps, error)
        report.fail(step, work.readable(first_line(error)))
        raise CanaryFailed(step) from error
    with report.step("storage write"):
        location = object_location(root, report.run_id, "muxed.mp4", settings.s3)
        written.append(location)
        with guard("storage"):
            services.storage.upload(output, location)
            stored_size = services.storage.size(location)
        if stored_size != output.stat().st_size:
            raise ValueError(f"the uploaded muxed file has {stored_size} bytes, not {output.stat().st_size}")
    with report.step("alignment"), guard("ffmpeg"):
        report.markers = measure(output, layout, settings.advanced.max_overlap_allowed, services.tools.ffmpeg)
        problem = alignment_problem(report.markers)
        if problem:
            raise ValueError(problem)
    logger.info("canary muxed %.1f s, %d markers checked", plan.duration, len(report.markers))


def measure(output: Path, layout: tuple[Segment, ...], max_overlap_ms: int, ffmpeg: str = "ffmpeg") -> list[MarkerCheck]:
    """Decode ``output`` and compare every marker and padding edge with where it belongs."""
    expected = expected_markers(layout, max_overlap_ms)
    checks = match_markers("beep", expected["beep"], synthetic.detect_beeps(output, ffmpeg=ffmpeg))
    checks += match_markers("flash", expected["flash"], synthetic.detect_flashes(output, ffmpeg=ffmpeg))
    black = synthetic.detect_black(output, min_duration=0.5, ffmpeg=ffmpeg)
    edges = expected["padding"]
    starts, ends = edges[0::2], edges[1::2]
    checks += match_markers("padding start", starts, [a for a, _ in black])
    call_end = max(s.stop for s in layout if s.kind == "audio")
    # a padding run that reaches the end of the file ends at its last frame's start
    checks += match_markers("padding end", [e if e < call_end - 0.1 else e - 1 / FPS for e in ends],
                            [b for _, b in black])
    errors = synthetic.decode_errors(output, ffmpeg=ffmpeg)
    if errors:
        raise ValueError(f"decoding the muxed file reports errors: {first_line(errors)}")
    return checks


def _cleanup(services: Services, report: CanaryReport, written: list[MediaLocation], guard: Guard,
             logger: Any) -> None:
    """Delete every object this run wrote and check each is gone; then its WebDAV folder."""
    began = time.monotonic()
    for location in written:
        try:
            with guard("storage"):
                services.storage.delete(location)
                if services.storage.exists(location):
                    report.left_behind.append(location.describe())
        except GrmuxError as error:
            report.left_behind.append(location.describe())
            logger.warning("canary: could not delete %s: %s", location.describe(), first_line(error))
    if written and written[0].is_webdav:
        folder = MediaLocation(WEBDAV, f"{report.run_id}/", base=written[0].base)
        with contextlib.suppress(GrmuxError), guard("storage"):
            services.storage.delete(folder)
    if report.left_behind:
        report.fail("cleanup", f"{len(report.left_behind)} canary object(s) left behind: "
                    + ", ".join(report.left_behind))
    report.add_time("cleanup", time.monotonic() - began)


__all__ = ["LAYOUT", "STEPS", "CanaryReport", "MarkerCheck", "Segment", "expected_markers", "load_certificates",
           "match_markers", "measure", "run_canary", "site_certificates"]