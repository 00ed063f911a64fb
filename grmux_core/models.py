"""Typed records parsed from RWS JSON, and the pure rules that read them.

Everything here is a pure function of the JSON: no I/O, so the parsers are tested on captured
samples and fuzzed. The wire shapes are described in ``docs/gir-contract.md``; the shapes grmux
writes back live in :mod:`grmux_core.contract`.

Strict where it matters, lenient where the contract is soft: a record we cannot place on the clock
(no id, no start time, a media file without a location) cannot be muxed correctly, so it fails *by
itself* with a :class:`~grmux_core.errors.RecordError` naming the call id and the field, while every
other record of the same page stays usable (:func:`parse_records`). ``duration`` and ``size`` are
informative only (milliseconds or seconds with decimals, in the field), so an unreadable one is
``None``; a MIME type only needs the ``kind/subtype`` shape (ffprobe says what the bytes are).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

from grmux_core.errors import RecordError

WEBDAV = "webDAV"
AWS_S3 = "awsS3"
STORAGE_KINDS = (WEBDAV, AWS_S3)

# --------------------------------------------------------------------------------------------
# Locations


@dataclass(frozen=True)
class MediaLocation:
    """Where the bytes of one media file are.

    ``storage`` is ``"webDAV"`` or ``"awsS3"``. For webDAV, ``base`` is ``data.storagePath`` (may be
    empty) and ``path`` the descriptor's ``path``; :attr:`url` joins them (``path`` alone when it is
    absolute). For awsS3, ``path`` is the key, ``bucket`` is ``data.bucket`` and ``region`` /
    ``endpoint`` are optional.
    """

    storage: str
    path: str
    base: str = ""
    bucket: str = ""
    region: str = ""
    endpoint: str = ""

    @property
    def is_webdav(self) -> bool:
        return self.storage == WEBDAV

    @property
    def is_s3(self) -> bool:
        return self.storage == AWS_S3

    @property
    def url(self) -> str:
        """The absolute webDAV URL (``storagePath`` + ``path``, or ``path`` when absolute)."""
        if not self.is_webdav:
            raise ValueError(f"{self.storage} location has no URL; use bucket/key")
        if urlsplit(self.path).scheme in ("http", "https"):
            return self.path
        base = self.base if self.base.endswith("/") else self.base + "/"
        return urljoin(base, self.path.lstrip("/"))

    @property
    def key(self) -> str:
        """The S3 object key."""
        return self.path.lstrip("/")

    def describe(self) -> str:
        """A short human-readable form for logs and error messages (never carries credentials)."""
        if self.is_webdav:
            return self.url
        return f"s3://{self.bucket}/{self.key}"

    def sibling(self, relative_path: str) -> MediaLocation:
        """A location in the same storage (same storagePath / bucket) at ``relative_path``.

        Used for the muxed output, which goes "relative to the first screen file's storage".
        For webDAV with an absolute ``path`` and no ``storagePath`` the storage collection is not
        named, so the output goes relative to the *collection that holds this file* (its URL up to
        the last ``/``): always inside the tree where the site keeps its recordings, never at the
        server's root, where the storage account may not even be allowed to write.
        """
        rel = relative_path.lstrip("/")
        if self.is_webdav:
            base = self.base
            if not base or urlsplit(self.path).scheme in ("http", "https"):
                base = urljoin(self.url, ".")
            return MediaLocation(WEBDAV, rel, base=base)
        return MediaLocation(AWS_S3, rel, bucket=self.bucket, region=self.region, endpoint=self.endpoint)


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class MediaFile:
    """One media file of a call or screen recording.

    ``duration_ms`` and ``size`` are informative only (spec: never trust ``duration`` over
    start/stop or ffprobe), so an unreadable value is ``None``, never an error. ``parameters`` keeps the raw map (excluded from equality/hash).
    """

    media_id: str
    type: str
    start: datetime
    stop: datetime
    location: MediaLocation
    duration_ms: int | None = None
    size: int | None = None
    pkcs7: str | None = None
    user_name: str | None = None
    agent_id: str | None = None
    muxed_media_ids: tuple[str, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def is_audio(self) -> bool:
        return self.type.startswith("audio/")

    @property
    def is_video(self) -> bool:
        return self.type.startswith("video/")

    @property
    def encrypted(self) -> bool:
        return bool(self.pkcs7)

    @property
    def is_muxed(self) -> bool:
        """A muxed output (ours or the legacy muxer's), not a source."""
        return bool(self.muxed_media_ids) or "_muxed_" in self.media_id


@dataclass(frozen=True)
class Event:
    """One ``eventHistory`` entry: who joined, and the attached user data."""

    event: str = ""
    occurred_at: datetime | None = None
    user_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class CallRecording:
    """A call recording (its audio media files, times and metadata)."""

    id: str
    start: datetime
    stop: datetime
    media_files: tuple[MediaFile, ...] = ()
    caller_phone_number: str | None = None
    dialed_phone_number: str | None = None
    region: str | None = None
    call_type: str | None = None
    event_history: tuple[Event, ...] = ()

    @property
    def audio_files(self) -> tuple[MediaFile, ...]:
        return tuple(m for m in self.media_files if m.is_audio)

    @property
    def duration_ms(self) -> int:
        return round((self.stop - self.start).total_seconds() * 1000)

    @property
    def agent_user_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.user_name for e in self.event_history if e.user_name))


@dataclass(frozen=True)
class ScreenRecording:
    """The screen recording of a call (keyed by the call id). Start/stop may be absent."""

    id: str
    media_files: tuple[MediaFile, ...] = ()
    start: datetime | None = None
    stop: datetime | None = None
    region: str | None = None

    @property
    def source_files(self) -> tuple[MediaFile, ...]:
        """The original screen media (muxed outputs excluded)."""
        return tuple(m for m in self.media_files if not m.is_muxed)

    @property
    def muxed_files(self) -> tuple[MediaFile, ...]:
        return tuple(m for m in self.media_files if m.is_muxed)


# --------------------------------------------------------------------------------------------
# Field parsers (each raises RecordError naming call id and field)

_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})$"
)


def parse_time(value: Any, *, call_id: str | None = None, field_name: str = "time") -> datetime:
    """ISO-8601 with a numeric offset (``+0000``, ``+00:00``) or ``Z`` → tz-aware UTC datetime."""
    if not isinstance(value, str):
        raise RecordError(call_id, field_name, f"must be an ISO-8601 time string, got {_kind(value)}")
    match = _TIME_RE.match(value.strip())
    if not match:
        raise RecordError(call_id, field_name, f"is not an ISO-8601 time with offset: {value[:40]!r}")
    year, month, day, hour, minute, second, frac, offset = match.groups()
    micro = int((frac or "0").ljust(6, "0")[:6])
    try:
        if offset == "Z":
            tz = UTC
        else:
            sign = -1 if offset[0] == "-" else 1
            digits = offset[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    except (ValueError, OverflowError) as exc:
        raise RecordError(call_id, field_name, f"is not a valid time: {value[:40]!r} ({exc})") from None
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """The RWS body form: ``2026-11-27T16:58:22.000+0000`` (UTC, milliseconds)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds (the form of time query parameters). Naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def parse_duration_ms(value: Any) -> int | None:
    """A ``duration`` as RWS writes it → milliseconds, or ``None`` when unreadable.

    Seen in the field: whole milliseconds (``"12523"``, or a JSON integer) and seconds with
    decimals (``"6.192"``). A decimal point means seconds. Informative only, so anything else
    (empty, negative, text) is ``None``: start/stop times and ffprobe decide.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            return None
        return round(value) if value.is_integer() else round(value * 1000)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if re.fullmatch(r"\d{1,15}", text):
        return int(text)
    if re.fullmatch(r"\d{1,12}\.\d{1,9}", text):
        return round(float(text) * 1000)
    return None


def parse_size(value: Any) -> int | None:
    """A ``size`` in bytes (a string of digits or a JSON integer), or ``None`` when unreadable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,18}\s*", value):
        return int(value)
    return None


def _opt_str(obj: Mapping[str, Any], key: str, *, call_id: str | None, field_name: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RecordError(call_id, field_name, f"must be a string, got {_kind(value)}")
    return value


def _req_str(obj: Mapping[str, Any], key: str, *, call_id: str | None, field_name: str) -> str:
    value = _opt_str(obj, key, call_id=call_id, field_name=field_name)
    if not value:
        raise RecordError(call_id, field_name, "is missing or empty")
    return value


def _mapping(value: Any, *, call_id: str | None, field_name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RecordError(call_id, field_name, f"must be an object, got {_kind(value)}")
    return value


def parse_location(descriptor: Any, *, call_id: str | None = None, field_name: str = "originalMediaDescriptor") -> MediaLocation:
    """An ``originalMediaDescriptor`` / ``mediaDescriptor`` object → :class:`MediaLocation`."""
    if not isinstance(descriptor, Mapping):
        raise RecordError(call_id, field_name, f"must be an object, got {_kind(descriptor)}")
    storage = _req_str(descriptor, "storage", call_id=call_id, field_name=f"{field_name}.storage")
    path = _req_str(descriptor, "path", call_id=call_id, field_name=f"{field_name}.path")
    data = _mapping(descriptor.get("data"), call_id=call_id, field_name=f"{field_name}.data")
    if storage.lower() == WEBDAV.lower():
        base = _opt_str(data, "storagePath", call_id=call_id, field_name=f"{field_name}.data.storagePath") or ""
        absolute = urlsplit(path).scheme in ("http", "https")
        if not absolute:
            parts = urlsplit(base)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise RecordError(
                    call_id, f"{field_name}.data.storagePath",
                    f"must be an http(s) URL when path is relative, got {base[:60]!r}",
                )
        elif not urlsplit(path).hostname:
            raise RecordError(call_id, f"{field_name}.path", f"is a URL without a host: {path[:60]!r}")
        return MediaLocation(WEBDAV, path, base=base)
    if storage.lower() == AWS_S3.lower():
        bucket = _req_str(data, "bucket", call_id=call_id, field_name=f"{field_name}.data.bucket")
        region = _opt_str(data, "region", call_id=call_id, field_name=f"{field_name}.data.region") or ""
        endpoint = _opt_str(data, "endpoint", call_id=call_id, field_name=f"{field_name}.data.endpoint") or ""
        return MediaLocation(AWS_S3, path, bucket=bucket, region=region, endpoint=endpoint)
    raise RecordError(call_id, f"{field_name}.storage", f"must be webDAV or awsS3, got {storage[:30]!r}")


def parse_media_file(obj: Any, *, call_id: str | None, index: int = 0) -> MediaFile:
    """One entry of ``mediaFiles``. Start/stop and a location are required: without them the file
    cannot be placed on the call's clock or fetched."""
    where = f"mediaFiles[{index}]"
    if not isinstance(obj, Mapping):
        raise RecordError(call_id, where, f"must be an object, got {_kind(obj)}")
    media_id = _req_str(obj, "mediaId", call_id=call_id, field_name=f"{where}.mediaId")
    mime = _req_str(obj, "type", call_id=call_id, field_name=f"{where}.type").lower()
    if "/" not in mime:
        raise RecordError(call_id, f"{where}.type", f"must be a MIME type like audio/mp3, got {mime[:30]!r}")
    start = parse_time(obj.get("startTime"), call_id=call_id, field_name=f"{where}.startTime")
    stop = parse_time(obj.get("stopTime"), call_id=call_id, field_name=f"{where}.stopTime")
    if stop < start:
        raise RecordError(call_id, f"{where}.stopTime", "is before startTime")
    descriptor = obj.get("originalMediaDescriptor", obj.get("mediaDescriptor"))
    if descriptor is None:
        raise RecordError(call_id, f"{where}.originalMediaDescriptor", "is missing: the file cannot be fetched")
    location = parse_location(descriptor, call_id=call_id, field_name=f"{where}.originalMediaDescriptor")
    params = _mapping(obj.get("parameters"), call_id=call_id, field_name=f"{where}.parameters")
    contact = _mapping(params.get("contact"), call_id=call_id, field_name=f"{where}.parameters.contact")
    muxed = params.get("muxed_mediaIds", ())
    if muxed is None:
        muxed = ()
    if not isinstance(muxed, (list, tuple)) or not all(isinstance(m, str) for m in muxed):
        raise RecordError(call_id, f"{where}.parameters.muxed_mediaIds", "must be a list of media id strings")
    pkcs7 = _opt_str(obj, "pkcs7", call_id=call_id, field_name=f"{where}.pkcs7") or None
    return MediaFile(
        media_id=media_id,
        type=mime,
        start=start,
        stop=stop,
        location=location,
        duration_ms=parse_duration_ms(obj.get("duration")),
        size=parse_size(obj.get("size")),
        pkcs7=pkcs7,
        user_name=_opt_str(contact, "userName", call_id=call_id, field_name=f"{where}.parameters.contact.userName"),
        agent_id=_opt_str(params, "agentId", call_id=call_id, field_name=f"{where}.parameters.agentId"),
        muxed_media_ids=tuple(muxed),
        parameters=dict(params),
    )


def _media_files(obj: Mapping[str, Any], call_id: str) -> tuple[MediaFile, ...]:
    files = obj.get("mediaFiles", [])
    if files is None:
        return ()
    if not isinstance(files, list):
        raise RecordError(call_id, "mediaFiles", f"must be a list, got {_kind(files)}")
    return tuple(parse_media_file(f, call_id=call_id, index=i) for i, f in enumerate(files))


def _events(obj: Mapping[str, Any], call_id: str) -> tuple[Event, ...]:
    history = obj.get("eventHistory", [])
    if history is None:
        return ()
    if not isinstance(history, list):
        raise RecordError(call_id, "eventHistory", f"must be a list, got {_kind(history)}")
    events = []
    for i, item in enumerate(history):
        where = f"eventHistory[{i}]"
        entry = _mapping(item, call_id=call_id, field_name=where)
        contact = _mapping(entry.get("contact"), call_id=call_id, field_name=f"{where}.contact")
        data = _mapping(entry.get("data"), call_id=call_id, field_name=f"{where}.data")
        occurred = entry.get("occurredAt")
        events.append(
            Event(
                event=_opt_str(entry, "event", call_id=call_id, field_name=f"{where}.event") or "",
                occurred_at=None if occurred in (None, "")
                else parse_time(occurred, call_id=call_id, field_name=f"{where}.occurredAt"),
                user_name=_opt_str(contact, "userName", call_id=call_id, field_name=f"{where}.contact.userName"),
                first_name=_opt_str(contact, "firstName", call_id=call_id, field_name=f"{where}.contact.firstName"),
                last_name=_opt_str(contact, "lastName", call_id=call_id, field_name=f"{where}.contact.lastName"),
                data=dict(data),
            )
        )
    return tuple(events)


def _record_id(obj: Any) -> str:
    if not isinstance(obj, Mapping):
        raise RecordError(None, "recording", f"must be an object, got {_kind(obj)}")
    value = obj.get("id")
    if not isinstance(value, str) or not value.strip():
        raise RecordError(None, "id", "is missing or not a non-empty string")
    return value


def parse_call_recording(obj: Any) -> CallRecording:
    """A call recording object → :class:`CallRecording`, or :class:`RecordError`."""
    call_id = _record_id(obj)
    start = parse_time(obj.get("startTime"), call_id=call_id, field_name="startTime")
    stop = parse_time(obj.get("stopTime"), call_id=call_id, field_name="stopTime")
    if stop < start:
        raise RecordError(call_id, "stopTime", "is before startTime")
    return CallRecording(
        id=call_id,
        start=start,
        stop=stop,
        media_files=_media_files(obj, call_id),
        caller_phone_number=_opt_str(obj, "callerPhoneNumber", call_id=call_id, field_name="callerPhoneNumber"),
        dialed_phone_number=_opt_str(obj, "dialedPhoneNumber", call_id=call_id, field_name="dialedPhoneNumber"),
        region=_opt_str(obj, "region", call_id=call_id, field_name="region"),
        call_type=_opt_str(obj, "callType", call_id=call_id, field_name="callType"),
        event_history=_events(obj, call_id),
    )


def parse_screen_recording(obj: Any) -> ScreenRecording:
    """A screen recording object → :class:`ScreenRecording`, or :class:`RecordError`.

    Its own start/stop are optional (a screen recording is only a container of media files, which
    carry their own times).
    """
    call_id = _record_id(obj)
    start = obj.get("startTime")
    stop = obj.get("stopTime")
    return ScreenRecording(
        id=call_id,
        media_files=_media_files(obj, call_id),
        start=None if start in (None, "") else parse_time(start, call_id=call_id, field_name="startTime"),
        stop=None if stop in (None, "") else parse_time(stop, call_id=call_id, field_name="stopTime"),
        region=_opt_str(obj, "region", call_id=call_id, field_name="region"),
    )


T = TypeVar("T")


def safe_parse(parser: Callable[[Any], T], obj: Any) -> T | RecordError:
    """Run one record parser; any failure becomes a :class:`RecordError` (never another exception).

    A parser bug on hostile input must not take down the page, so unexpected exceptions are
    wrapped too (with the id when it can be read).
    """
    try:
        return parser(obj)
    except RecordError as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - defensive: the fuzz test proves this stays unused
        call_id = obj.get("id") if isinstance(obj, Mapping) and isinstance(obj.get("id"), str) else None
        return RecordError(call_id, "recording", f"could not be parsed ({type(exc).__name__}: {exc})")


def parse_records(items: Iterable[Any], parser: Callable[[Any], T]) -> tuple[list[T], list[RecordError]]:
    """Parse a page of records: the good ones, and one RecordError per malformed one."""
    good: list[T] = []
    bad: list[RecordError] = []
    for item in items:
        result = safe_parse(parser, item)
        (bad if isinstance(result, RecordError) else good).append(result)  # type: ignore[arg-type]
    return good, bad


# --------------------------------------------------------------------------------------------
# The "already muxed" rule


def source_media_ids(call: CallRecording | None, screen: ScreenRecording) -> frozenset[str]:
    """Every current source media id: the call's audio and the screen's non-muxed media."""
    ids = {m.media_id for m in screen.source_files}
    if call is not None:
        ids.update(m.media_id for m in call.media_files if not m.is_muxed)
    return frozenset(ids)


def is_already_muxed(call: CallRecording | None, screen: ScreenRecording) -> bool:
    """True when one media file's ``muxed_mediaIds`` covers every current source media id.

    A screen recording with no source screen media is never "already muxed" (there is nothing to
    cover; the caller treats it as pending). New screen media arriving later (nightly upload)
    break the cover, so the call is muxed again.
    """
    if not screen.source_files:
        return False
    sources = source_media_ids(call, screen)
    return any(m.muxed_media_ids and sources <= set(m.muxed_media_ids) for m in screen.media_files)


_MUXED_N = re.compile(r"_muxed_(\d+)(?:\.[A-Za-z0-9]+)*$")  # .mp4, and .mp4.bin when encrypted


def muxed_number(media_id: str) -> int | None:
    """The ``n`` of ``<call id>_muxed_<n>.mp4`` (or ``.mp4.bin``); None for another media id."""
    match = _MUXED_N.search(media_id)
    return int(match.group(1)) if match else None


def next_muxed_number(screen: ScreenRecording | None) -> int:
    """The ``n`` of the next ``<call id>_muxed_<n>.mp4`` (or ``.mp4.bin``): one more than the highest
    present, plain or encrypted, from 1."""
    numbers = [muxed_number(media.media_id) for media in (screen.media_files if screen else ())]
    return max((n for n in numbers if n is not None), default=0) + 1


def muxed_media_id(call_id: str, n: int, extension: str = "mp4") -> str:
    return f"{call_id}_muxed_{n}.{extension}"
