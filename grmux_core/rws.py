"""The RWS (Interaction Recording Web Services) client.

Wire contract: ``docs/gir-contract.md``; every choice where it is soft (paths, paging shapes, the
time format of query parameters, reply shapes, the write-back body and its decision table) lives
in :mod:`grmux_core.contract`, which this client only uses.

Listing (:func:`list_pages`) follows a next link while there is one, and never takes an answer
that holds ``limit`` records without one as complete: RWS 8.5.0 returns "only the first 100" of a
larger result. It narrows with a ``startTime`` cursor instead — the answers are sorted by
``startTime``, so the next query starts at the last start time seen and the calls of that instant
are de-duplicated by id — and fails the cycle (:class:`~grmux_core.errors.ListingIncomplete`)
where it cannot narrow. Only one page is in memory at a time (plus the ids seen). Malformed
records are *yielded* as :class:`~grmux_core.errors.RecordError` values (not raised), so one bad
record never hides the rest of the page.

POST/DELETE carry the CSRF header and the ``JSESSIONID`` cookie from the handshake
(``GET /api/v2/diagnostics/version``); on a 403 the handshake is re-done once and the request
retried (the session or token may have expired).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any, Self
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit

import requests

from grmux_core import contract
from grmux_core.config import AdvancedSettings, HtccSettings, ProcessingSettings
from grmux_core.contract import Answer, Step
from grmux_core.encryption import settings_certificates
from grmux_core.errors import (
    GrmuxError,
    ListingIncomplete,
    ProtocolError,
    RecordError,
    TransientError,
    WriteBackRefused,
)
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
    CallRecording,
    ScreenRecording,
    epoch_ms,
    format_time,
    parse_call_recording,
    parse_screen_recording,
    parse_time,
    safe_parse,
)
from grmux_core.outcome import first_line

log = logging.getLogger("grmux.rws")

SERVICE = "RWS"


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
    if version and version_tuple(version) >= contract.USERDATA_FILTER_SINCE:
        return contract.USERDATA_FILTER
    return ""


def encode_query(query: str) -> str:
    """Normalise an operator-written query (raw spaces, ``*``, or already %-encoded) for a URL."""
    pairs = parse_qsl(query.strip().lstrip("?"), keep_blank_values=True)
    return urlencode(pairs, quote_via=quote, safe="*")


# ----------------------------------------------------------------------------- narrowing (pure)


@dataclass
class ListStats:
    """What listing cost: list requests sent, and how often a possibly truncated answer was narrowed."""

    requests: int = 0
    narrowings: int = 0


@dataclass(frozen=True)
class ListQuery:
    """One list query: its parameters (in order, as sent) and how to start it again later.

    ``cursor_ms`` is the query's ``startTime`` in epoch ms (``None`` = the query has none and
    cannot be narrowed); :meth:`from_start` is the same query from a later start time.
    """

    params: tuple[tuple[str, str], ...]
    cursor_ms: int | None
    time_format: str = "epoch_ms"
    origin: str = ""  # the query as first asked, when this one is a narrowing of it

    def describe(self) -> str:
        """The query as an operator reads it in a message (times as UTC ISO)."""
        shown = []
        for key, value in self.params:
            ms = contract.query_time_ms(value) if key in (contract.LIST_START, contract.LIST_END) else None
            shown.append(f"{key}={format_time(contract.ms_time(ms)) if ms is not None else value}")
        text = "&".join(shown)
        if self.origin and self.cursor_ms is not None:
            return f"{self.origin} (narrowed to startTime={format_time(contract.ms_time(self.cursor_ms))})"
        return text

    def encoded(self) -> str:
        return urlencode(self.params, quote_via=quote, safe="*")

    def from_start(self, ms: int) -> ListQuery:
        """The same query from ``ms`` on (the ``startTime`` cursor)."""
        value = contract.query_time(contract.ms_time(ms), self.time_format)
        params = tuple((k, value if k == contract.LIST_START else v) for k, v in self.params)
        return ListQuery(params, ms, self.time_format, self.origin or self.describe())

    @classmethod
    def parse(cls, encoded: str, time_format: str = "epoch_ms") -> ListQuery:
        params = tuple(parse_qsl(encoded, keep_blank_values=True))
        starts = [v for k, v in params if k == contract.LIST_START]
        cursor = contract.query_time_ms(starts[0]) if starts else None
        return cls(params, cursor, time_format)


def _start_ms(item: Any) -> int | None:
    if not isinstance(item, Mapping):
        return None
    try:
        return epoch_ms(parse_time(item.get("startTime")))
    except RecordError:
        return None


def _record_key(item: Any) -> str:
    """What de-duplicates a record across narrowed queries: its id, or (a malformed record without
    one) its whole JSON, so it is reported once too."""
    value = item.get("id") if isinstance(item, Mapping) else None
    if isinstance(value, str) and value:
        return value
    return "json:" + json.dumps(item, sort_keys=True, default=str)


def _cannot_narrow(query: ListQuery, limit: int, why: str, todo: str) -> ListingIncomplete:
    return ListingIncomplete(
        f"RWS answered {limit} call recordings and no link to more for the list query {query.describe()}: "
        f"the answer may be truncated, and grmux cannot narrow it because {why}; {todo}. The cycle stops "
        "here rather than process a first page as if it were all"
    )


def _next_cursor(query: ListQuery, items: list[Any], limit: int) -> int:
    """Where the narrowed query starts: the last start time of a full page (which must be sorted)."""
    if query.cursor_ms is None:
        raise _cannot_narrow(query, limit, "the query has no startTime",
                             "add startTime=<epoch ms>&endTime=<epoch ms> to the backfill query "
                             "([advanced] call_recording_query_string or the query parameter), or make it "
                             "select fewer calls than the page size")
    starts = [ms for ms in map(_start_ms, items) if ms is not None]
    if not starts:
        raise _cannot_narrow(query, limit, "no record of the answer has a readable startTime",
                             "check the RWS version and its answers")
    if any(b < a for a, b in pairwise(starts)) or starts[0] < query.cursor_ms:
        raise _cannot_narrow(query, limit, "the answer is not sorted by startTime (or ignores startTime), so a "
                             "startTime cursor could skip calls", "check the RWS version; the wire contract "
                             "says list answers are sorted by startTime")
    if starts[-1] <= query.cursor_ms:
        raise _cannot_narrow(query, limit, f"{limit} or more calls started at one instant "
                             f"({format_time(contract.ms_time(starts[-1]))})",
                             "raise [advanced] pagination (at most 100), or split the query with a filter "
                             "(callerPhoneNumber, userName)")
    return starts[-1]


def list_pages(fetch: Callable[[str], Mapping[str, Any]], query: ListQuery, *, limit: int,
               absolute: Callable[[Any, set[str]], str], stats: ListStats) -> Iterator[Any]:
    """Every raw record a list query selects, each once, across next links and narrowings.

    ``fetch(url_or_query)`` returns an answer body (a query string starts with ``?``);
    ``absolute(link, seen)`` turns a next link into a URL it is safe to follow. An answer with a
    next link is followed; one without holding fewer than ``limit`` records is the end; one holding
    ``limit`` (or more) records without a next link may be truncated, so the query is asked again
    from the last start time seen (:func:`_next_cursor`), which raises
    :class:`~grmux_core.errors.ListingIncomplete` where that cannot work.
    """
    seen_ids: set[str] = set()
    seen_urls: set[str] = set()
    target = "?" + query.encoded()
    while True:
        body = fetch(target)
        stats.requests += 1
        items = body.get(contract.PAGE_RECORDS, [])
        if not isinstance(items, list):
            raise ProtocolError(f"RWS answered the recording list without a {contract.PAGE_RECORDS!r} list")
        for item in items:
            key = _record_key(item)
            if key not in seen_ids:
                seen_ids.add(key)
                yield item
        seen_urls.add(target)
        link = contract.next_link(body)
        if link is not None:
            target = absolute(link, seen_urls)
            continue
        if len(items) < limit:
            return
        cursor = _next_cursor(query, items, limit)
        stats.narrowings += 1
        log.info("the list answer for %s holds %d calls and no next link: it may be truncated; listing again "
                 "from startTime %s (the calls of that instant are de-duplicated)",
                 query.describe(), len(items), format_time(contract.ms_time(cursor)))
        query = query.from_start(cursor)
        target = "?" + query.encoded()


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
        path = contract.PATHS[name].format(cc=quote(self.htcc.contact_center_id, safe=""),
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
        self, start: datetime, end: datetime, extra_query: str | None = None, *, stats: ListStats | None = None,
    ) -> Iterator[CallRecording | RecordError]:
        """Call recordings that started at/after ``start`` and ended at/before ``end``.

        ``extra_query`` ``None`` = the configured ``call_recording_extra_query_string`` with the
        version rule of :func:`default_extra_query`; a string (even empty) is used as it is.
        Yields records and RecordErrors page by page (a generator: nothing is fetched until
        iterated); ``stats`` counts the requests and narrowings.
        """
        if extra_query is None:
            configured = self.advanced.call_recording_extra_query_string
            needs_version = not configured.strip()
            extra_query = default_extra_query(configured, self.version() if needs_version else None)
        fmt = self.htcc.list_time_format
        params = urlencode({contract.LIST_START: contract.query_time(start, fmt),
                            contract.LIST_END: contract.query_time(end, fmt), contract.LIST_LIMIT: self._limit()})
        extra = encode_query(extra_query) if extra_query else ""
        query = ListQuery.parse(params + (f"&{extra}" if extra else ""), fmt)
        yield from self._follow(query, self._limit(), stats)

    def list_by_query(self, query_string: str | None = None, *, stats: ListStats | None = None,
                      ) -> Iterator[CallRecording | RecordError]:
        """Backfill mode: list with exactly ``query_string`` (default: the configured
        ``call_recording_query_string``); ``limit`` is added when the query has none. A query with
        ``startTime`` is narrowed like a window; one without fails when an answer may be truncated."""
        query = query_string if query_string is not None else self.advanced.call_recording_query_string
        encoded = encode_query(query)
        if not encoded:
            raise ProtocolError("backfill needs a query: set [advanced] call_recording_query_string, "
                                "e.g. userName=agent1 or startTime=...")
        limits = [v for k, v in parse_qsl(encoded) if k == contract.LIST_LIMIT]
        if not limits:
            encoded += f"&{contract.LIST_LIMIT}={self._limit()}"
        limit = self._limit()
        if limits:
            try:
                limit = max(1, min(contract.MAX_PAGE, int(limits[0])))
            except ValueError:
                pass  # RWS answers the 400 that names it
        yield from self._follow(ListQuery.parse(encoded, self.htcc.list_time_format), limit, stats)

    def _limit(self) -> int:
        return max(1, min(contract.MAX_PAGE, self.advanced.pagination))

    def _follow(self, query: ListQuery, limit: int, stats: ListStats | None) -> Iterator[CallRecording | RecordError]:
        """Parse the records of :func:`list_pages`, one page at a time."""
        base = self.url("recordings")
        counter = stats if stats is not None else ListStats()

        def fetch(target: str) -> Mapping[str, Any]:
            url = base + target if target.startswith("?") else target
            body = self._get(url, what=f"the call recording list (request {counter.requests + 1})")
            assert body is not None
            return body

        for item in list_pages(fetch, query, limit=limit, absolute=self._next, stats=counter):
            result = safe_parse(parse_call_recording, item)
            if isinstance(result, RecordError):
                log.warning("skipping a malformed call recording: %s", result)
            yield result

    def _next(self, next_uri: Any, seen: set[str]) -> str:
        if not isinstance(next_uri, str):
            raise ProtocolError("RWS answered a next link that is not a string")
        absolute = urljoin(self.base, next_uri)
        if host_port(absolute) != host_port(self.base) or urlsplit(absolute).scheme != urlsplit(self.base).scheme:
            raise ProtocolError(
                f"RWS answered a next link on another host ({host_port(absolute)}); refusing to send the "
                "RWS credentials there — check the RWS reverse-proxy / public URL settings"
            )
        if absolute in seen:
            raise ProtocolError("RWS answered a next link that was already read (a paging loop); stopping")
        return absolute

    # ----------------------------------------------------------------------------- screen recordings

    def screen_recording(self, call_id: str) -> ScreenRecording | None:
        """The screen recording of one call; ``None`` when it has not arrived yet (404)."""
        body = self._get(self.url("screen_recording", id=call_id), what=f"screen recording {call_id}",
                         not_found_ok=True)
        if body is None:
            return None
        return parse_screen_recording(body.get(contract.ONE_RECORD))

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
        size = max(1, min(contract.MAX_BULK_IDS, self.processing.query_slice_size))
        wanted = set(ids)
        for offset in range(0, len(ids), size):
            chunk = ids[offset:offset + size]
            body = self._get(self._bulk_screen_url(chunk), what=f"screen recordings ({len(chunk)} ids)")
            items = (body or {}).get(contract.BULK_RECORDS, [])
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

    def _bulk_screen_url(self, ids: list[str]) -> str:
        return self.url("screen_recordings") + contract.bulk_ids_query(ids)

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

        Returns when RWS holds it; raises :class:`~grmux_core.errors.WriteBackRefused` only when RWS
        refused it (4xx) *and* a read-back shows it absent — the one case where the caller may
        remove the published file — and :class:`TransientError` whenever the outcome is unknown
        (retrying is safe: the caller re-checks "already muxed" first). Any answer but a clean
        acceptance is resolved by reading the screen recording back
        (:func:`~grmux_core.contract.write_back_step`); a POST is repeated only after a read-back
        showed RWS lacks it, up to ``1 + body_retries`` times.
        """
        media_id = str(media_file.get("mediaId", ""))
        body = contract.write_back_body(call, media_file)
        what = f"the write-back of {media_id} for call {call.id}"
        attempts = 1 + max(0, self.policy.body_retries)
        for attempt in range(attempts):
            answer, detail = self._post_write_back(body, what)
            if answer is Answer.ACCEPTED:
                return
            registered = self._registered(call.id, media_id)
            step = contract.write_back_step(answer, registered, attempts_left=attempt + 1 < attempts)
            if step is Step.DONE:
                log.info("%s was answered %s, but a read-back shows RWS has it; done", what, detail)
                return
            if step is Step.REFUSED:
                raise WriteBackRefused(f"RWS refused {what}: {detail}; a read-back shows it does not hold "
                                       f"{media_id}")
            if step is Step.UNKNOWN:
                state = "a read-back could not tell whether RWS has it" if registered is None else \
                    f"a read-back shows RWS does not have it after {attempts} attempt(s)"
                raise TransientError(f"{what} was answered {detail} and {state}; the muxed file is kept and "
                                     "the call is tried again")
            log.info("%s was answered %s and RWS does not have it (attempt %d/%d): posting again",
                     what, detail, attempt + 1, attempts)
            time.sleep(min(self.policy.backoff_max, self.policy.backoff_factor * (2**attempt)))
        raise AssertionError("unreachable")

    def _post_write_back(self, body: dict[str, Any], what: str) -> tuple[Answer, str]:
        """POST the write-back once: the class of its answer and a few words on it for messages."""
        try:
            response = self._state_changing("POST", self.url("screen_recordings"), what=what, json=body)
        except TransientError as exc:
            return Answer.UNCLEAR, f"with no answer ({first_line(exc)})"
        answer = contract.classify_write_back_answer(response.status_code, response.content)
        if answer is Answer.ACCEPTED:
            return answer, f"HTTP {response.status_code}"
        try:
            check_status(response, service=SERVICE, what=what, account_hint=self._account)
        except GrmuxError as exc:
            return answer, f"HTTP {response.status_code} ({first_line(exc)})"
        text = response.content[:40].decode("utf-8", "replace")
        return answer, f"HTTP {response.status_code} with a body that is not a JSON statusCode 0 ({text!r})"

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
            try:
                json.loads(response.content)
            except (ValueError, UnicodeDecodeError):
                log.info("RWS answered %s with HTTP %d and a body that is not JSON; taken as done (a DELETE "
                         "is idempotent)", what, response.status_code)
                return
            json_body(response, service=SERVICE, what=what)
