"""The RWS (Interaction Recording Web Services) client, and the JSON shapes grmux writes to RWS.

Wire contract: ``docs/gir-contract.md``. Every path and parameter that is a *project contract*
(not documented by Genesys) is a constant or a small function here, so a deployment against a real
RWS adapts it in one place: :data:`PATHS`, :func:`default_extra_query`, :meth:`RwsClient.
_bulk_screen_url`, the epoch-ms time parameters in :meth:`RwsClient.list_recordings`, and the
write-back entry (:func:`write_back_media_file`, :func:`media_descriptor`).

Listing is a generator that follows ``nextUri``: only one page (≤ 100 records) is in memory at a
time, and the page count is never assumed. Malformed records are *yielded* as
:class:`~grmux_core.errors.RecordError` values (not raised), so one bad record never hides the
rest of the page; the caller records the error for that call and goes on.

POST/DELETE carry the CSRF header and the ``JSESSIONID`` cookie from the handshake
(``GET /api/v2/diagnostics/version``); on a 403 the handshake is re-done once and the request
retried (the session or token may have expired).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Self
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit

import requests

from grmux_core.config import AdvancedSettings, HtccSettings, ProcessingSettings
from grmux_core.encryption import settings_certificates
from grmux_core.errors import ProtocolError, RecordError, TransientError
from grmux_core.http import (
    DEFAULT_POLICY,
    HttpPolicy,
    build_session,
    check_status,
    host_port,
    json_body,
    send,
)
from grmux_core.models import (
    AWS_S3,
    WEBDAV,
    CallRecording,
    MediaLocation,
    ScreenRecording,
    epoch_ms,
    format_time,
    parse_call_recording,
    parse_records,
    parse_screen_recording,
    safe_parse,
    source_media_ids,
)

log = logging.getLogger("grmux.rws")

SERVICE = "RWS"
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
MAX_PAGE = 100
MAX_BULK_IDS = 100


def version_tuple(version: str) -> tuple[int, ...]:
    """``"8.5.201.14"`` → ``(8, 5, 201, 14)``; non-numeric parts are read up to their first non-digit."""
    parts = []
    for piece in str(version).strip().split("."):
        match = re.match(r"\d+", piece)
        parts.append(int(match.group()) if match else 0)
    return tuple(parts)


def default_extra_query(configured: str, version: str | None) -> str:
    """The extra list parameters (legacy rule of ``call_recording_extra_query_string``).

    Non-empty configured value → passed through (``disable`` → none). Empty → the userData filter
    when the RWS version is ≥ 8.5.201.14, else none (older RWS lacks the marker, so filtering
    would hide every call). An unknown version counts as old.
    """
    value = (configured or "").strip().lstrip("?")
    if value.lower() == "disable":
        return ""
    if value:
        return value
    if version and version_tuple(version) >= USERDATA_FILTER_SINCE:
        return USERDATA_FILTER
    return ""


def encode_query(query: str) -> str:
    """Normalise an operator-written query (raw spaces, ``*``, or already %-encoded) for a URL."""
    pairs = parse_qsl(query.strip().lstrip("?"), keep_blank_values=True)
    return urlencode(pairs, quote_via=quote, safe="*")


class RwsClient:
    """One RWS connection pool (thread-safe for the calls below; share one per process).

    ``pool_size`` defaults to ``advanced.worker_threads``.
    """

    def __init__(
        self,
        htcc: HtccSettings,
        advanced: AdvancedSettings | None = None,
        processing: ProcessingSettings | None = None,
        *,
        pool_size: int | None = None,
        policy: HttpPolicy = DEFAULT_POLICY,
        session: requests.Session | None = None,
    ):
        self.htcc = htcc
        self.advanced = advanced or AdvancedSettings()
        self.processing = processing or ProcessingSettings()
        self.policy = policy
        self.base = htcc.base_uri if htcc.base_uri.endswith("/") else htcc.base_uri + "/"
        self.session = session or build_session(
            username=htcc.username,
            password=htcc.password,
            verify=htcc.requests_verify,
            pool_size=pool_size or self.advanced.worker_threads,
            policy=policy,
        )
        self._lock = threading.Lock()
        self._csrf: tuple[str, str] | None = None
        self._handshake_done = False
        self._version: str | None = None
        self._account = "[htcc] username/password (or HTCC_PASSWORD)"

    # ----------------------------------------------------------------------------- plumbing

    def url(self, name: str, **fields: str) -> str:
        path = PATHS[name].format(cc=quote(self.htcc.contact_center_id, safe=""),
                                  **{k: quote(v, safe="") for k, v in fields.items()})
        return urljoin(self.base, path)

    def _get(self, url: str, *, what: str, not_found_ok: bool = False) -> dict[str, Any] | None:
        response = send(self.session, "GET", url, service=SERVICE, what=what, policy=self.policy,
                        headers={"Accept": "application/json"})
        if check_status(response, service=SERVICE, what=what, account_hint=self._account,
                        not_found_ok=not_found_ok) is None:
            return None
        return json_body(response, service=SERVICE, what=what)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------- version + CSRF

    def handshake(self) -> str:
        """GET the version; remember the CSRF header/token (the JSESSIONID cookie stays in the
        session's cookie jar). Returns the version string."""
        response = send(self.session, "GET", self.url("version"), service=SERVICE, what="the RWS version",
                        policy=self.policy, headers={"Accept": "application/json"})
        check_status(response, service=SERVICE, what="the RWS version", account_hint=self._account)
        body = json_body(response, service=SERVICE, what="the RWS version")
        header, token = response.headers.get("X-CSRF-HEADER"), response.headers.get("X-CSRF-TOKEN")
        with self._lock:
            self._csrf = (header, token) if header and token else None
            self._handshake_done = True
            self._version = str(body.get("version") or "")
        log.debug("RWS version %s, CSRF %s", self._version, "on" if self._csrf else "off")
        return self._version

    def version(self) -> str:
        """The RWS version (cached after the first handshake)."""
        if not self._handshake_done:
            self.handshake()
        return self._version or ""

    def _csrf_headers(self) -> dict[str, str]:
        if not self._handshake_done:
            self.handshake()
        return {self._csrf[0]: self._csrf[1]} if self._csrf else {}

    def _state_changing(self, method: str, url: str, *, what: str, **kwargs: Any) -> requests.Response:
        """POST/DELETE with the CSRF header; on 403 re-do the handshake once and try again."""
        for attempt in (1, 2):
            headers = {"Accept": "application/json", **self._csrf_headers(), **kwargs.pop("headers", {})}
            response = send(self.session, method, url, service=SERVICE, what=what, policy=self.policy,
                            headers=headers, **kwargs)
            if response.status_code == 403 and attempt == 1:
                log.info("RWS refused %s with 403; renewing the CSRF token and retrying once", what)
                self.handshake()
                continue
            return response
        raise AssertionError("unreachable")

    # ----------------------------------------------------------------------------- listing

    def list_recordings(
        self, start: datetime, end: datetime, extra_query: str | None = None
    ) -> Iterator[CallRecording | RecordError]:
        """Call recordings that started at/after ``start`` and ended at/before ``end``.

        ``extra_query`` ``None`` = the configured ``call_recording_extra_query_string`` with the
        version rule of :func:`default_extra_query`; a string (even empty) is used as it is.
        Yields records and RecordErrors page by page (a generator: nothing is fetched until
        iterated).
        """
        if extra_query is None:
            configured = self.advanced.call_recording_extra_query_string
            needs_version = not configured.strip()
            extra_query = default_extra_query(configured, self.version() if needs_version else None)
        params = urlencode({"startTime": epoch_ms(start), "endTime": epoch_ms(end), "limit": self._limit()})
        extra = encode_query(extra_query) if extra_query else ""
        yield from self._follow(self.url("recordings") + "?" + params + (f"&{extra}" if extra else ""))

    def list_by_query(self, query_string: str | None = None) -> Iterator[CallRecording | RecordError]:
        """Backfill mode: list with exactly ``query_string`` (default: the configured
        ``call_recording_query_string``); ``limit`` is added when the query has none."""
        query = query_string if query_string is not None else self.advanced.call_recording_query_string
        encoded = encode_query(query)
        if not encoded:
            raise ProtocolError("backfill needs a query: set [advanced] call_recording_query_string, "
                                "e.g. userName=agent1 or startTime=...")
        if not any(k == "limit" for k, _ in parse_qsl(encoded)):
            encoded += f"&limit={self._limit()}"
        yield from self._follow(self.url("recordings") + "?" + encoded)

    def _limit(self) -> int:
        return max(1, min(MAX_PAGE, self.advanced.pagination))

    def _follow(self, url: str) -> Iterator[CallRecording | RecordError]:
        """Fetch pages following ``nextUri`` until it is absent."""
        seen: set[str] = set()
        page = 0
        while url:
            page += 1
            body = self._get(url, what=f"the call recording list (page {page})")
            assert body is not None
            items = body.get("recordings", [])
            if not isinstance(items, list):
                raise ProtocolError("RWS answered the recording list without a 'recordings' list")
            records, errors = parse_records(items, parse_call_recording)
            for error in errors:
                log.warning("skipping a malformed call recording: %s", error)
            yield from records
            yield from errors
            seen.add(url)
            url = self._next(body.get("nextUri"), seen)

    def _next(self, next_uri: Any, seen: set[str]) -> str:
        if next_uri in (None, ""):
            return ""
        if not isinstance(next_uri, str):
            raise ProtocolError("RWS answered a nextUri that is not a string")
        absolute = urljoin(self.base, next_uri)
        if host_port(absolute) != host_port(self.base) or urlsplit(absolute).scheme != urlsplit(self.base).scheme:
            raise ProtocolError(
                f"RWS answered a nextUri on another host ({host_port(absolute)}); refusing to send the "
                "RWS credentials there — check the RWS reverse-proxy / public URL settings"
            )
        if absolute in seen:
            raise ProtocolError("RWS answered a nextUri that was already read (a paging loop); stopping")
        return absolute

    # ----------------------------------------------------------------------------- screen recordings

    def screen_recording(self, call_id: str) -> ScreenRecording | None:
        """The screen recording of one call; ``None`` when it has not arrived yet (404)."""
        body = self._get(self.url("screen_recording", id=call_id), what=f"screen recording {call_id}",
                         not_found_ok=True)
        if body is None:
            return None
        return parse_screen_recording(body.get("recording"))

    def screen_recordings(
        self, call_ids: Iterable[str], *, bulk: bool | None = None
    ) -> dict[str, ScreenRecording | RecordError]:
        """The screen recordings of ``call_ids``: id → record, or → RecordError when malformed.

        Ids without a screen recording (not arrived yet) are simply absent. ``bulk`` defaults to
        ``[processing] batch_read_screen_recording_metadata == 1``: bulk requests of
        ``query_slice_size`` ids (≤ 100), else one request per call.
        """
        ids = list(dict.fromkeys(call_ids))
        use_bulk = self.processing.bulk_read if bulk is None else bulk
        out: dict[str, ScreenRecording | RecordError] = {}
        if not use_bulk:
            for call_id in ids:
                try:
                    found = self.screen_recording(call_id)
                except RecordError as exc:
                    out[call_id] = exc
                    continue
                if found is not None:
                    out[call_id] = found
            return out
        size = max(1, min(MAX_BULK_IDS, self.processing.query_slice_size))
        wanted = set(ids)
        for offset in range(0, len(ids), size):
            chunk = ids[offset:offset + size]
            body = self._get(self._bulk_screen_url(chunk), what=f"screen recordings ({len(chunk)} ids)")
            items = (body or {}).get("recordings", [])
            if not isinstance(items, list):
                raise ProtocolError("RWS answered the screen recording bulk read without a 'recordings' list")
            for item in items:
                result = safe_parse(parse_screen_recording, item)
                key = result.call_id if isinstance(result, RecordError) else result.id
                if key in wanted:
                    out[key] = result
                elif isinstance(result, RecordError) and result.call_id is None:
                    log.warning("RWS bulk read returned a screen recording without id: %s", result)
        return out

    def _bulk_screen_url(self, ids: Sequence[str]) -> str:
        """Project contract: ``?ids=a,b,c``."""
        return self.url("screen_recordings") + "?ids=" + ",".join(quote(i, safe="") for i in ids)

    # ----------------------------------------------------------------------------- settings

    def screen_recording_certificates(self) -> list[tuple[str, str]]:
        """``(alias, PEM)`` of the site's screen-recording certificates, unvalidated (read once per
        cycle; :func:`grmux_core.encryption.validate_certificates` checks them).

        404, 403 or an empty list = the site does not encrypt screen recordings: ``[]``. 403 counts
        as "not encrypting" because an RWS without the settings API (or an account that may not
        read settings) answers it; a site that does encrypt also encrypts its sources, and the
        ``auto`` rule warns for every such call stored plain.
        """
        what = "the screen-recording encryption settings"
        response = send(self.session, "GET", self.url("encryption_settings"), service=SERVICE, what=what,
                        policy=self.policy, headers={"Accept": "application/json"})
        if response.status_code in (403, 404):
            log.info("RWS answered %d for %s: the site does not encrypt screen recordings",
                     response.status_code, what)
            return []
        check_status(response, service=SERVICE, what=what, account_hint=self._account)
        body = json_body(response, service=SERVICE, what=what)
        entries = body.get("settings") or []
        if not isinstance(entries, list):
            raise ProtocolError(f"RWS answered {what} without a 'settings' list")
        return settings_certificates(entries)

    # ----------------------------------------------------------------------------- writes

    def write_back(self, call: CallRecording, media_file: dict[str, Any]) -> None:
        """Register a muxed media file in the call's screen recording (POST, CSRF).

        POST is not retried blindly (not idempotent). When the outcome is unknown (5xx, timeout,
        connection cut), the screen recording is read back: if the media id is there the POST did
        land and this returns normally; otherwise it is posted again, up to ``1 + body_retries``
        times, then :class:`TransientError` is raised and retrying is safe (the caller re-checks
        "already muxed" first anyway).
        """
        media_id = str(media_file.get("mediaId", ""))
        body = {
            "id": call.id,
            "startTime": format_time(call.start),
            "stopTime": format_time(call.stop),
            "mediaFiles": [media_file],
        }
        what = f"the write-back of {media_id} for call {call.id}"
        attempts = 1 + max(0, self.policy.body_retries)
        for attempt in range(attempts):
            try:
                response = self._state_changing("POST", self.url("screen_recordings"), what=what, json=body)
                check_status(response, service=SERVICE, what=what, account_hint=self._account)
                json_body(response, service=SERVICE, what=what)
                return
            except TransientError as exc:
                # The outcome is unknown: read back before posting again, so a POST that landed is
                # never repeated. Retrying here (not only in the task) spares a whole re-mux.
                registered = self._registered(call.id, media_id)
                if registered:
                    log.info("the write-back of %s failed in transit but RWS has it; done", media_id)
                    return
                if registered is None or attempt + 1 >= attempts:
                    raise  # unknown outcome: the task retry re-checks "already muxed" first
                log.info("the write-back of %s failed (%s), attempt %d/%d; RWS does not have it, posting again",
                         media_id, type(exc).__name__, attempt + 1, attempts)
                time.sleep(min(self.policy.backoff_max, self.policy.backoff_factor * (2**attempt)))

    def _registered(self, call_id: str, media_id: str) -> bool | None:
        """Whether the call's screen recording holds ``media_id``; ``None`` when RWS cannot tell."""
        try:
            screen = self.screen_recording(call_id)
        except (TransientError, RecordError, ProtocolError):
            return None
        return screen is not None and any(m.media_id == media_id for m in screen.media_files)

    def delete_original(self, call_id: str, media_id: str) -> None:
        """DELETE one original screen media file (after a verified, registered mux). A 404 means it
        is already gone, which is the desired state."""
        what = f"the deletion of {media_id} of call {call_id}"
        response = self._state_changing("DELETE", self.url("screen_content", id=call_id, media=media_id), what=what)
        if check_status(response, service=SERVICE, what=what, account_hint=self._account, not_found_ok=True) is None:
            return
        if response.content:
            json_body(response, service=SERVICE, what=what)


# --------------------------------------------------------------------------------- write-back shape


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
