"""Every choice grmux makes where the RWS wire contract is soft or silent — in one module.

A site whose RWS answers differently changes this module (and ``docs/gir-contract.md``), nothing
else: the client (:mod:`grmux_core.rws`) and the listing only *use* what is here.

* **Paths** of every RWS call (:data:`PATHS`), the bulk-read query (:func:`bulk_ids_query`).
* **Listing**: the query parameter names, the time format of ``startTime``/``endTime``
  (:func:`query_time`, ``[htcc] list_time_format``), the page-size cap, where the records of an
  answer are and the shapes of a *next link* (:func:`next_link`).
* **Reply shapes**: the keys that hold one record, a page of records and a bulk read.
* **Write-back**: the body grmux POSTs (:func:`write_back_media_file`, :func:`media_descriptor`),
  how its answer is classified (:func:`classify_write_back_answer`) and the decision table that
  says what happens next (:func:`write_back_step`) — the one place that decides when a published
  file may be removed again.
* **Media types** grmux knows by name (:data:`KNOWN_MEDIA_TYPES`); an unknown one is only a warning,
  ffprobe says what the bytes are.

Record *field names* (``startTime``, ``mediaFiles``, ``originalMediaDescriptor``...) are the
documented Genesys shapes and are read in :mod:`grmux_core.models`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from grmux_core.errors import RecordError
from grmux_core.models import (
    AWS_S3,
    WEBDAV,
    CallRecording,
    MediaLocation,
    ScreenRecording,
    epoch_ms,
    format_time,
    parse_time,
    source_media_ids,
)

# ------------------------------------------------------------------------------------ paths

#: The RWS paths (relative to ``[htcc] base_uri``); ``{cc}`` is the contact-centre id.
PATHS = {
    "version": "api/v2/diagnostics/version",
    "recordings": "api/v2/ops/contact-centers/{cc}/recordings",
    "screen_recordings": "internal-api/contact-centers/{cc}/screen-recordings",
    "screen_recording": "internal-api/contact-centers/{cc}/screen-recordings/{id}",
    "screen_content": "internal-api/contact-centers/{cc}/screen-recordings/{id}/content/{media}",
    "encryption_settings": "api/v2/ops/contact-centers/{cc}/settings/screen-recording-encryption",
}
#: The RWS version from which calls with screen recording carry the userData marker.
USERDATA_FILTER_SINCE = (8, 5, 201, 14)
USERDATA_FILTER = "userData=SRSScreenRecordingStateStarted"
MAX_BULK_IDS = 100


def bulk_ids_query(ids: Sequence[str]) -> str:
    """The bulk screen-recording read (project contract): ``?ids=a,b,c``."""
    return "?ids=" + ",".join(quote(i, safe="") for i in ids)


# ------------------------------------------------------------------------------------ listing

LIST_START = "startTime"
LIST_END = "endTime"
LIST_LIMIT = "limit"
#: RWS caps a list answer at 100 records.
MAX_PAGE = 100
#: ``[htcc] list_time_format``: how ``startTime``/``endTime`` travel in a list query. Public
#: material does not say; ``epoch_ms`` is the project contract, ``iso`` the body form.
TIME_FORMATS = ("epoch_ms", "iso")


def query_time(moment: datetime, time_format: str = "epoch_ms") -> str:
    """A list query's time parameter in ``time_format``."""
    if time_format == "iso":
        return format_time(moment)
    if time_format != "epoch_ms":
        raise ValueError(f"unknown list time format {time_format!r}: allowed is {', '.join(TIME_FORMATS)}")
    return str(epoch_ms(moment))


def query_time_ms(value: str) -> int | None:
    """A time parameter as written in a query (epoch ms or ISO-8601) → epoch ms; ``None`` if neither."""
    text = value.strip()
    if re.fullmatch(r"\d{1,15}", text):
        return int(text)
    try:
        return epoch_ms(parse_time(text))
    except RecordError:
        return None


def ms_time(ms: int) -> datetime:
    """Epoch ms → aware UTC datetime (for messages and cursors)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


# ------------------------------------------------------------------------------------ reply shapes

STATUS_CODE = "statusCode"
ONE_RECORD = "recording"  # GET .../recordings/{id}, GET .../screen-recordings/{id}
PAGE_RECORDS = "recordings"  # GET .../recordings
BULK_RECORDS = "recordings"  # GET .../screen-recordings?ids=


def next_link(body: Mapping[str, Any]) -> Any:
    """The link to the next page of a list answer, or ``None``.

    ``nextUri`` is the project contract. RWS documents "navigation links" without naming the
    field, so the common shapes are accepted too: ``next``, ``links.next`` and ``_links.next``
    (a string, or an object with ``href``/``uri``). No link at all is handled by narrowing.
    """
    for key in ("nextUri", "next"):
        if body.get(key) not in (None, ""):
            return body[key]
    for key in ("links", "_links"):
        links = body.get(key)
        if isinstance(links, Mapping) and links.get("next") not in (None, ""):
            link = links["next"]
            if isinstance(link, Mapping):
                return link.get("href") or link.get("uri")
            return link
    return None


# ------------------------------------------------------------------------------------ write-back body


def media_descriptor(location: MediaLocation) -> dict[str, Any]:
    """The ``mediaDescriptor`` JSON of a location (the inverse of :func:`~grmux_core.models.parse_location`)."""
    if location.is_webdav:
        data: dict[str, Any] = {"storagePath": location.base} if location.base else {}
        return {"storage": WEBDAV, "path": location.path, "data": data}
    data = {"bucket": location.bucket}
    if location.region:
        data["region"] = location.region
    if location.endpoint:
        data["endpoint"] = location.endpoint
    return {"storage": AWS_S3, "path": location.path, "data": data}


def write_back_media_file(call: CallRecording, screen: ScreenRecording, media_id: str, location: MediaLocation,
                          *, start: datetime, duration_s: float, size: int,
                          pkcs7: str | None = None) -> dict[str, Any]:
    """The ``mediaFiles[0]`` entry of the write-back POST that registers a muxed file.

    ``parameters.muxed_mediaIds`` names every source, which is how a later cycle knows the call is
    already muxed (and muxes it again when new media arrive); the agent's user name and the region
    are carried over so the muxed file is found and stored like its sources.
    """
    users = [m.user_name for m in sorted(screen.source_files, key=lambda m: m.start) if m.user_name]
    parameters: dict[str, Any] = {"muxed_mediaIds": sorted(source_media_ids(call, screen))}
    if users:
        parameters["contact"] = {"userName": users[0]}
    if call.region or screen.region:
        parameters["region"] = call.region or screen.region
    stop = start + timedelta(seconds=duration_s)
    entry: dict[str, Any] = {
        "mediaId": media_id,
        "type": "video/mp4",
        "startTime": format_time(start),
        "stopTime": format_time(stop),
        "duration": str(round(duration_s * 1000)),
        "size": str(size),
        "parameters": parameters,
        "mediaDescriptor": media_descriptor(location),
    }
    if pkcs7:
        entry["pkcs7"] = pkcs7  # the stored file is encrypted: RCS opens this envelope for its key
    return entry


def write_back_body(call: CallRecording, media_file: dict[str, Any]) -> dict[str, Any]:
    """The whole write-back POST body: the call's id and times, and the one new media file."""
    return {"id": call.id, "startTime": format_time(call.start), "stopTime": format_time(call.stop),
            "mediaFiles": [media_file]}


# ------------------------------------------------------------------------------------ write-back answers


class Answer(StrEnum):
    """What the HTTP answer to a write-back POST says, before any read-back."""

    ACCEPTED = "accepted"  # 2xx with a JSON object whose statusCode is 0
    UNCLEAR = "unclear"  # 2xx not JSON (``{status:0}``), 5xx, timeout, cut connection, 1xx/3xx
    REFUSED = "refused"  # 4xx: RWS says no (it may still have kept it: read back)


class Step(StrEnum):
    """What the client does next."""

    DONE = "done"  # registered: the write-back succeeded
    POST_AGAIN = "post again"  # RWS does not have it and the answer was not a refusal
    UNKNOWN = "unknown"  # nobody can tell: a TransientError, the published file is kept
    REFUSED = "refused"  # refused and absent: WriteBackRefused, the published file may be removed


def classify_write_back_answer(status: int | None, content: bytes = b"") -> Answer:
    """The class of a write-back answer; ``status`` ``None`` = no answer (timeout, cut connection)."""
    if status is None or status >= 500 or status < 200 or 300 <= status < 400:
        return Answer.UNCLEAR
    if status >= 400:
        return Answer.REFUSED
    try:
        body = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return Answer.UNCLEAR
    if isinstance(body, dict) and body.get(STATUS_CODE, 0) in (0, "0"):
        return Answer.ACCEPTED
    return Answer.UNCLEAR


def write_back_step(answer: Answer, registered: bool | None, *, attempts_left: bool) -> Step:
    """The write-back decision table (``registered`` is the read-back: ``None`` = could not tell).

    ====================  ==========  ============  =================
    answer                registered  absent        read-back failed
    ====================  ==========  ============  =================
    accepted              done (no read-back needed)
    unclear               done        post again¹   unknown
    refused (4xx)         done        refused       unknown
    ====================  ==========  ============  =================

    ¹ or unknown when no attempt is left. Only *refused* lets the caller remove the published
    file: every other outcome may have left the media registered in RWS.
    """
    if answer is Answer.ACCEPTED or registered:
        return Step.DONE
    if registered is None:
        return Step.UNKNOWN
    if answer is Answer.REFUSED:
        return Step.REFUSED
    return Step.POST_AGAIN if attempts_left else Step.UNKNOWN


# ------------------------------------------------------------------------------------ media types

#: MIME types seen in the field. Another type is reported as a warning, never a rejection:
#: ffprobe says what the bytes are; ``audio/*`` and ``video/*`` say which side of the call they are.
KNOWN_MEDIA_TYPES = frozenset({
    "audio/mp3", "audio/mpeg", "audio/mpeg3", "audio/x-mpeg-3", "audio/x-mp3", "audio/wav", "audio/x-wav",
    "audio/wave", "audio/vnd.wave", "video/mp4", "video/webm",
})
#: The file suffix of a download when the storage path has none.
MEDIA_SUFFIXES = {
    "audio/mp3": ".mp3", "audio/mpeg": ".mp3", "audio/mpeg3": ".mp3", "audio/x-mpeg-3": ".mp3",
    "audio/x-mp3": ".mp3", "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav",
    "audio/vnd.wave": ".wav", "video/mp4": ".mp4", "video/webm": ".webm",
}
