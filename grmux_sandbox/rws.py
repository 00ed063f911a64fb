"""The emulated RWS (Interaction Recording Web Services) and RCS (Recording Crypto Server).

Two Flask apps built on one :class:`~grmux_sandbox.store.Store`; they answer the GIR wire contract
a grmux client relies on (``docs/gir-contract.md``). Choices where the contract is silent (see README.md):

* Error bodies are ``{"statusCode": N, "statusMessage": "..."}`` with N = 1 (400), 2 (401),
  3 (403), 4 (404), 5 (5xx), 6 (405).
* Paging: ``nextUri`` is the same URI with an extra ``after=<startMs>_<id>`` keyset cursor, so a page
  never repeats or skips a call even if calls are added while a client pages.
* ``limit`` defaults to 100; above 100 it is capped at 100; below 1 or not an integer is a 400.
* Filters: several filter parameters must all match. ``callerPhoneNumber``/``dialedPhoneNumber``:
  one pattern, whole-value match, ``*`` = any run of characters, case-sensitive. ``userName``: words
  separated by spaces, each a case-insensitive whole-value wildcard pattern against any
  ``eventHistory[].contact`` userName/firstName/lastName; words are alternatives, ``AND`` (upper
  case) joins its neighbours into one all-must-match group (``a b AND c`` = a OR (b AND c)).
  ``userData``: words, any of them matching (case-sensitive whole-value wildcard) a value of any
  ``eventHistory[].data`` map. Other parameters are ignored.
* ``irp-muxer`` settings: status 200/403/404 set by the test (default 404); 200 answers
  ``{"statusCode":0,"settings":{...}}``.
* Write-back: the call must exist (404 otherwise); the screen recording is created when absent; a media
  file whose ``mediaId`` is already there is replaced (an idempotent retry), others are appended.
* CSRF: a GET answers a ``JSESSIONID`` cookie (kept while it is valid) and the headers; sessions live
  in memory, so a restart invalidates them and POST/DELETE answer 403 until the client re-handshakes.

Two dialects (``site.json`` ``rws_dialect``; ``grmux sandbox up --rws-dialect``): ``strict`` answers
the project contract above; ``field`` answers like the RWS seen in the field (``docs/gir-contract.md``,
"Variants seen in the field"): list answers cut at ``limit`` with no next link (``after``/``offset``
ignored), errors as plain text, the write-back answered ``200`` with the text ``{status:0}``, and
records served with durations in seconds (``"6.192"``), ``audio/mpeg3`` for MP3, ``Z`` times (no
milliseconds when they are zero) and webDAV media as absolute URLs without ``storagePath``. The
stored state is the same in both: the dialect only changes how RWS answers.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import re
import secrets
import threading
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from grmux_sandbox.keys import BadEnvelope, KeyStore, NoMatchingKey
from grmux_sandbox.store import Store, substitute
from grmux_sandbox.timeutil import iso_ms, parse_iso, parse_query_time, to_ms

_STATUS_CODES = {400: 1, 401: 2, 403: 3, 404: 4, 405: 6}
FILTERS = ("userData", "userName", "callerPhoneNumber", "dialedPhoneNumber")
MAX_LIMIT = 100
MAX_BULK_IDS = 100
CSRF_HEADER = "X-CSRF-TOKEN"
MEDIA_TYPES = ("audio/mp3", "audio/wav", "video/mp4", "video/webm")
DIALECTS = ("strict", "field")
FIELD_MEDIA_TYPES = {"audio/mp3": "audio/mpeg3", "audio/wav": "audio/x-wav"}


def _field() -> bool:
    """Whether the request being answered is answered in the ``field`` dialect."""
    return g.get("grmux_dialect") == "field"


def error(status: int, message: str, **headers: str) -> Response:
    code = _STATUS_CODES.get(status, 5 if status >= 500 else 1)
    if _field():  # the field answers errors in plain text (404 especially)
        resp = Response(f"HTTP {status}: {message}", status=status, mimetype="text/plain")
    else:
        resp = jsonify({"statusCode": code, "statusMessage": message})
    resp.status_code = status
    for k, v in headers.items():
        resp.headers[k.replace("_", "-")] = v
    return resp


def ok(**body: Any) -> Response:
    return jsonify({"statusCode": 0, **body})


# ------------------------------------------------------------------------------------ filters


def wildcard(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """Whole-value match; ``*`` = any run of characters; nothing else is special."""
    regex = "".join(".*" if ch == "*" else re.escape(ch) for ch in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _user_name_groups(value: str) -> list[list[re.Pattern[str]]]:
    """``a b AND c`` → [[a], [b, c]] (OR of AND groups). Raises ValueError on a dangling AND."""
    tokens = value.split()
    groups: list[list[re.Pattern[str]]] = []
    join_next = False
    for token in tokens:
        if token == "AND":
            if not groups or join_next:
                raise ValueError("userName: AND must stand between two words")
            join_next = True
            continue
        pattern = wildcard(token, ignore_case=True)
        if join_next:
            groups[-1].append(pattern)
            join_next = False
        else:
            groups.append([pattern])
    if join_next:
        raise ValueError("userName: AND must stand between two words")
    if not groups:
        raise ValueError("userName: empty filter")
    return groups


def _contact_names(record: dict[str, Any]) -> list[str]:
    names = []
    for event in record.get("eventHistory") or []:
        contact = event.get("contact") or {}
        for key in ("userName", "firstName", "lastName"):
            if isinstance(contact.get(key), str):
                names.append(contact[key])
    return names


def _data_values(record: dict[str, Any]) -> list[str]:
    values = []
    for event in record.get("eventHistory") or []:
        for value in (event.get("data") or {}).values():
            values.append(value if isinstance(value, str) else str(value))
    return values


def build_filter(params: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    """A predicate for the filter parameters present in ``params`` (ValueError on a bad one)."""
    checks: list[Callable[[dict[str, Any]], bool]] = []
    for field in ("callerPhoneNumber", "dialedPhoneNumber"):
        if field in params:
            if not params[field].strip():
                raise ValueError(f"{field}: empty filter")
            pattern = wildcard(params[field].strip())
            checks.append(lambda r, f=field, p=pattern: isinstance(r.get(f), str) and bool(p.fullmatch(r[f])))
    if "userName" in params:
        groups = _user_name_groups(params["userName"])

        def by_name(record: dict[str, Any], groups=groups) -> bool:
            names = _contact_names(record)
            return any(all(any(p.fullmatch(n) for n in names) for p in group) for group in groups)

        checks.append(by_name)
    if "userData" in params:
        words = [wildcard(w) for w in params["userData"].split()]
        if not words:
            raise ValueError("userData: empty filter")

        def by_data(record: dict[str, Any], words=words) -> bool:
            values = _data_values(record)
            return any(p.fullmatch(v) for p in words for v in values)

        checks.append(by_data)
    return lambda record: all(check(record) for check in checks)


# ------------------------------------------------------------------------------------ write-back


def _check_time(where: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return f"{where} must be an ISO-8601 string"
    try:
        parse_iso(value)
    except ValueError:
        return f"{where} is not an ISO-8601 time with offset: {value!r}"
    return None


def validate_writeback(body: Any) -> str | None:
    """The first problem of a write-back body, or None."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if not isinstance(body.get("id"), str) or not body["id"]:
        return "id must be a non-empty string (the call id)"
    for key in ("startTime", "stopTime"):
        if key in body and (problem := _check_time(key, body[key])):
            return problem
    files = body.get("mediaFiles")
    if not isinstance(files, list) or not files:
        return "mediaFiles must be a non-empty list"
    for i, media in enumerate(files):
        if problem := _media_file_problem(f"mediaFiles[{i}]", media):
            return problem
    return None


def _media_file_problem(where: str, media: Any) -> str | None:
    if not isinstance(media, dict):
        return f"{where} must be an object"
    if not isinstance(media.get("mediaId"), str) or not media["mediaId"]:
        return f"{where}.mediaId must be a non-empty string"
    if media.get("type") not in MEDIA_TYPES:
        return f"{where}.type must be one of {', '.join(MEDIA_TYPES)}"
    for key in ("startTime", "stopTime"):
        if problem := _check_time(f"{where}.{key}", media.get(key)):
            return problem
    if parse_iso(media["stopTime"]) < parse_iso(media["startTime"]):
        return f"{where}.stopTime is before startTime"
    for key in ("duration", "size"):
        if not isinstance(media.get(key), str) or not media[key].isdigit():
            return f"{where}.{key} must be a string of digits (milliseconds / bytes)"
    params = media.get("parameters")
    if not isinstance(params, dict):
        return f"{where}.parameters must be an object"
    ids = params.get("muxed_mediaIds")
    if not isinstance(ids, list) or not ids or not all(isinstance(x, str) and x for x in ids):
        return f"{where}.parameters.muxed_mediaIds must be a non-empty list of media ids"
    if "contact" in params and not isinstance(params["contact"], dict):
        return f"{where}.parameters.contact must be an object"
    return _descriptor_problem(f"{where}.mediaDescriptor", media.get("mediaDescriptor"))


def _descriptor_problem(where: str, desc: Any) -> str | None:
    if not isinstance(desc, dict):
        return f"{where} must be an object"
    if desc.get("storage") not in ("webDAV", "awsS3"):
        return f"{where}.storage must be webDAV or awsS3"
    if not isinstance(desc.get("path"), str) or not desc["path"]:
        return f"{where}.path must be a non-empty string"
    if "data" in desc and not isinstance(desc["data"], dict):
        return f"{where}.data must be an object"
    if desc["storage"] == "awsS3" and not isinstance((desc.get("data") or {}).get("bucket"), str):
        return f"{where}.data.bucket is required for awsS3"
    return None


# ------------------------------------------------------------------------------------ the field dialect


def field_time(text: Any) -> Any:
    """``2026-11-27T16:58:22.000+0000`` → ``2026-11-27T16:58:22Z``; ``...22.512+0000`` → ``...22.512Z``."""
    if not isinstance(text, str) or not text.endswith("+0000"):
        return text
    body = text[:-5]
    return (body.removesuffix(".000")) + "Z"


def _field_media(media: dict[str, Any]) -> None:
    for key in ("startTime", "stopTime"):
        media[key] = field_time(media.get(key))
    duration = media.get("duration")
    if isinstance(duration, str) and duration.isdigit():
        media["duration"] = f"{int(duration) / 1000:.3f}"
    media["type"] = FIELD_MEDIA_TYPES.get(media.get("type"), media.get("type"))
    for key in ("originalMediaDescriptor", "mediaDescriptor"):
        desc = media.get(key)
        if isinstance(desc, dict) and desc.get("storage") == "webDAV":
            data = dict(desc.get("data") or {})
            base = data.pop("storagePath", "")
            path = desc.get("path", "")
            if base and "://" not in path:
                desc["path"] = (base if base.endswith("/") else base + "/") + path.lstrip("/")
            desc["data"] = data


def field_record(record: dict[str, Any]) -> dict[str, Any]:
    """A served record rewritten the way field RWS write them (see the module docstring)."""
    for key in ("startTime", "stopTime"):
        if key in record:
            record[key] = field_time(record[key])
    for event in record.get("eventHistory") or []:
        if isinstance(event, dict) and "occurredAt" in event:
            event["occurredAt"] = field_time(event["occurredAt"])
    for media in record.get("mediaFiles") or []:
        if isinstance(media, dict):
            _field_media(media)
    return record


# ------------------------------------------------------------------------------------ shared state


class RwsState:
    """Live, non-persistent RWS state: CSRF sessions and request counters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: dict[str, str] = {}
        self.counters: dict[str, int] = {}

    def count(self, key: str) -> None:
        with self.lock:
            self.counters[key] = self.counters.get(key, 0) + 1


@dataclass(frozen=True)
class RwsService:
    """What every RWS route works with. ``urls()`` gives the token → URL mapping of the running
    storage servers; ``delete_media(descriptor)`` removes stored bytes (raw descriptor with tokens)."""

    store: Store
    urls: Callable[[], dict[str, str]]
    delete_media: Callable[[dict[str, Any]], None]
    live: RwsState

    @property
    def dialect(self) -> str:
        return self.store.site.get("rws_dialect", "strict")

    def served(self, record: dict[str, Any]) -> dict[str, Any]:
        """A stored record as RWS answers it: a copy with the storage tokens replaced by URLs (and
        written the field's way in the ``field`` dialect)."""
        served = substitute(copy.deepcopy(record), self.urls())
        return field_record(served) if self.dialect == "field" else served


@dataclass(frozen=True)
class RcsService:
    store: Store
    keys: KeyStore
    live: RwsState


def _http_error(exc: HTTPException) -> Response:
    return error(exc.code or 500, exc.description or exc.name)


def _crash(exc: Exception) -> Response:  # pragma: no cover - a sandbox bug
    current_app.logger.exception("sandbox error")
    return error(500, f"sandbox internal error: {type(exc).__name__}: {exc}")


def _new_app(name: str, service: Any, routes: tuple[tuple[str, str, Callable[..., Response]], ...]) -> Flask:
    """A Flask app answering JSON errors, with ``routes`` (method, rule, view) bound to ``service``."""
    app = Flask(name)
    app.extensions["grmux_live"] = service.live
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _crash)
    for method, rule, view in routes:
        app.add_url_rule(rule, view.__name__, functools.partial(view, service), methods=[method])
    return app


# ------------------------------------------------------------------------------------ guards


def _basic_auth_failure(store: Store, service: str, realm: str) -> Response | None:
    """401 unless the request carries the Basic credentials of a ``service`` account (htcc, rcs)."""
    auth = request.authorization
    if auth is None or auth.type != "basic" or store.check_user(service, auth.username, auth.password) is None:
        return error(401, "authentication required: wrong or missing user name or password",
                     WWW_Authenticate=f'Basic realm="{realm}"')
    return None


def _csrf_failure(rws: RwsService) -> Response | None:
    """403 for a state-changing request without the token of a live session (when CSRF is on)."""
    if request.method not in ("POST", "DELETE", "PUT", "PATCH") or not rws.store.site.get("csrf", True):
        return None
    sid = request.cookies.get("JSESSIONID")
    with rws.live.lock:
        token = rws.live.sessions.get(sid or "")
    if token is None or request.headers.get(CSRF_HEADER) != token:
        return error(403, "CSRF token missing or invalid: GET /api/v2/diagnostics/version first and "
                          "send the X-CSRF-TOKEN header and the JSESSIONID cookie")
    return None


def _rws_guard(rws: RwsService) -> Response | None:
    """Every RWS request but the sandbox's own: counted, then authentication, contact centre, CSRF."""
    if request.path.startswith("/_sandbox"):
        return None
    g.grmux_dialect = rws.dialect
    rws.live.count(f"{request.method} {request.url_rule.rule if request.url_rule else request.path}")
    failure = _basic_auth_failure(rws.store, "htcc", "RWS")
    if failure is not None:
        return failure
    cc = (request.view_args or {}).get("cc")
    if cc is not None and cc != rws.store.contact_center_id:
        return error(404, f"no contact center {cc}")
    return _csrf_failure(rws)


def _csrf_handshake(rws: RwsService, resp: Response) -> Response:
    """An authenticated GET answers the session cookie and the CSRF headers (kept while the session lives)."""
    if request.method == "GET" and not request.path.startswith("/_sandbox") and resp.status_code != 401 \
            and rws.store.site.get("csrf", True):
        sid = request.cookies.get("JSESSIONID")
        with rws.live.lock:
            if not sid or sid not in rws.live.sessions:
                sid = secrets.token_hex(16)
                rws.live.sessions[sid] = secrets.token_urlsafe(24)
            token = rws.live.sessions[sid]
        resp.headers["X-CSRF-HEADER"] = CSRF_HEADER
        resp.headers["X-CSRF-TOKEN"] = token
        resp.set_cookie("JSESSIONID", sid, path="/", httponly=True)
    return resp


def _rcs_guard(rcs: RcsService) -> Response | None:
    if request.path.startswith("/_sandbox"):
        return None
    rcs.live.count(f"{request.method} {request.path}")
    return _basic_auth_failure(rcs.store, "rcs", "RCS")


# ------------------------------------------------------------------------------------ RWS routes


def version(rws: RwsService) -> Response:
    return ok(version=rws.store.site.get("rws_version", "8.5.201.14"))


def irp_muxer(rws: RwsService) -> Response:
    conf = rws.store.site.get("irp_muxer") or {"status": 404}
    status = int(conf.get("status", 404))
    if status == 200:
        return ok(settings=conf.get("settings") or {})
    if status == 403:
        return error(403, "the user may not read the irp-muxer settings")
    return error(status, "no irp-muxer settings")


@dataclass(frozen=True)
class ListQuery:
    """A validated ``GET .../recordings`` request (times in epoch ms)."""

    start: int | None
    end: int | None
    limit: int
    keep: Callable[[dict[str, Any]], bool]
    after: tuple[int, str] | None


def list_query(params: dict[str, str]) -> ListQuery | Response:
    """The list request, or the 400 for its first problem."""
    if "startTime" not in params and not any(f in params for f in FILTERS):
        return error(400, f"a list of recordings needs startTime or a query filter ({', '.join(FILTERS)})")
    try:
        start = parse_query_time(params["startTime"]) if "startTime" in params else None
        end = parse_query_time(params["endTime"]) if "endTime" in params else None
    except ValueError as exc:
        return error(400, f"startTime/endTime must be epoch milliseconds or ISO-8601: {exc}")
    try:
        limit = int(params.get("limit", MAX_LIMIT))
    except ValueError:
        return error(400, f"limit must be an integer, not {params.get('limit')!r}")
    if limit < 1:
        return error(400, "limit must be at least 1")
    try:
        keep = build_filter(params)
    except ValueError as exc:
        return error(400, str(exc))
    after: tuple[int, str] | None = None
    if "after" in params and not _field():  # the field ignores paging parameters
        raw_ms, _, raw_id = params["after"].partition("_")
        try:
            after = (int(raw_ms), raw_id)
        except ValueError:
            return error(400, f"bad paging cursor after={params['after']!r}")
    return ListQuery(start, end, min(limit, MAX_LIMIT), keep, after)


def _first_position(ordered: list[tuple[int, str]], query: ListQuery) -> int:
    """Where the page starts in the (start ms, id) order: after the cursor and not before startTime."""
    pos = 0
    if query.after is not None:
        pos = bisect_left(ordered, query.after)
        if pos < len(ordered) and ordered[pos] == query.after:
            pos += 1
    if query.start is not None:
        pos = max(pos, bisect_left(ordered, (query.start, "")))
    return pos


def select_page(store: Store, query: ListQuery) -> tuple[list[dict[str, Any]], tuple[int, str] | None, bool]:
    """The matching records of one page, the key of its last one, and whether more follow."""
    ordered = store.sorted_call_ids()
    page: list[dict[str, Any]] = []
    last: tuple[int, str] | None = None
    for key in ordered[_first_position(ordered, query):]:
        record = store.calls.get(key[1])
        if record is None:
            continue
        if query.end is not None and to_ms(parse_iso(record["stopTime"])) > query.end:
            continue
        if not query.keep(record):
            continue
        if len(page) == query.limit:
            return page, last, True
        page.append(record)
        last = key
    return page, last, False


def list_answer(rws: RwsService, params: dict[str, str], query: ListQuery, page: list[dict[str, Any]],
                last: tuple[int, str] | None, more: bool) -> Response:
    """A page of recordings; ``nextUri`` is this request's URI with a keyset cursor after ``last``."""
    body: dict[str, Any] = {"recordings": [rws.served(record) for record in page]}
    if more and last is not None and rws.dialect != "field":  # the field cuts at limit, no next link
        following = {**params, "after": f"{last[0]}_{last[1]}", "limit": str(query.limit)}
        body["nextUri"] = request.base_url + "?" + urlencode(following)
    return ok(**body)


def list_recordings(rws: RwsService, cc: str) -> Response:
    params = dict(request.args.items())
    query = list_query(params)
    if isinstance(query, Response):
        return query
    page, last, more = select_page(rws.store, query)
    return list_answer(rws, params, query, page, last, more)


def one_recording(rws: RwsService, cc: str, call_id: str) -> Response:
    record = rws.store.calls.get(call_id)
    if record is None:
        return error(404, f"no recording {call_id}")
    return ok(recording=rws.served(record))


def one_screen(rws: RwsService, cc: str, call_id: str) -> Response:
    record = rws.store.screens.get(call_id)
    if record is None:
        return error(404, f"no screen recording for call {call_id} (yet)")
    return ok(recording=rws.served(record))


def bulk_screens(rws: RwsService, cc: str) -> Response:
    raw = request.args.get("ids")
    if raw is None:
        return error(400, "ids is required: ?ids=a,b,c (at most 100)")
    ids = list(dict.fromkeys(i.strip() for i in raw.split(",") if i.strip()))
    if not ids:
        return error(400, "ids is empty")
    if len(ids) > MAX_BULK_IDS:
        return error(400, f"at most {MAX_BULK_IDS} ids a request, got {len(ids)}")
    return ok(recordings=[rws.served(rws.store.screens[i]) for i in ids if i in rws.store.screens])


def _screen_record(call_id: str, call: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    """The screen recording to write into: a copy of the existing one, or a new one from the call."""
    return copy.deepcopy(existing) or {
        "id": call_id, "startTime": call["startTime"], "stopTime": call["stopTime"],
        "region": call.get("region", ""), "callType": call.get("callType", ""),
        "eventHistory": call.get("eventHistory", []), "mediaFiles": []}


def _merge_media(screen: dict[str, Any], files: list[dict[str, Any]]) -> None:
    """Times stored as RWS writes them; a media id already there is replaced (an idempotent retry)."""
    for media in files:
        media = dict(media)
        media["startTime"] = iso_ms(parse_iso(media["startTime"]))
        media["stopTime"] = iso_ms(parse_iso(media["stopTime"]))
        current = [i for i, m in enumerate(screen["mediaFiles"]) if m.get("mediaId") == media["mediaId"]]
        if current:
            screen["mediaFiles"][current[0]] = media
        else:
            screen["mediaFiles"].append(media)


def write_back(rws: RwsService, cc: str) -> Response:
    body = request.get_json(silent=True)
    if body is None:
        return error(400, "the body must be JSON (Content-Type: application/json)")
    problem = validate_writeback(body)
    if problem:
        return error(400, problem)
    call_id = body["id"]
    store = rws.store
    with store.lock:
        call = store.calls.get(call_id)
        if call is None:
            return error(404, f"no call recording {call_id}: nothing to attach the screen media to")
        reverse = {v: k for k, v in rws.urls().items() if v}
        screen = _screen_record(call_id, call, store.screens.get(call_id))
        _merge_media(screen, [substitute(m, reverse) for m in body["mediaFiles"]])
        store.put_screen(screen)
        store.append_writeback({"receivedAt": iso_ms(dt.datetime.now(dt.UTC)), "id": call_id, "body": body})
    if rws.dialect == "field":  # the field answers the write-back with this text (not JSON)
        return Response("{status:0}", status=200, mimetype="text/plain")
    return ok()


def delete_content(rws: RwsService, cc: str, call_id: str, media_id: str) -> Response:
    with rws.store.lock:
        screen = rws.store.screens.get(call_id)
        if screen is None:
            return error(404, f"no screen recording for call {call_id}")
        index = [i for i, m in enumerate(screen["mediaFiles"]) if m.get("mediaId") == media_id]
        if not index:
            return error(404, f"call {call_id} has no screen media {media_id}")
        screen = copy.deepcopy(screen)
        media = screen["mediaFiles"].pop(index[0])
        rws.store.put_screen(screen)
    desc = media.get("originalMediaDescriptor") or media.get("mediaDescriptor")
    if desc:
        rws.delete_media(desc)
    return ok()


def encryption_settings(rws: RwsService, cc: str) -> Response:
    """``settings/screen-recording-encryption``: 404 when the site does not encrypt (the default)."""
    if cc != rws.store.contact_center_id:
        return error(404, f"no contact center {cc}")
    entries = rws.store.site.get("screen_encryption")
    if entries is None:
        return error(404, "screen-recording encryption is not configured")
    return ok(key="name", settings=entries)


_CC = "/api/v2/ops/contact-centers/<cc>"
_INTERNAL = "/internal-api/contact-centers/<cc>"
RWS_ROUTES: tuple[tuple[str, str, Callable[..., Response]], ...] = (
    ("GET", "/api/v2/diagnostics/version", version),
    ("GET", "/api/v2/settings/irp-muxer", irp_muxer),
    ("GET", f"{_CC}/recordings", list_recordings),
    ("GET", f"{_CC}/recordings/<call_id>", one_recording),
    ("GET", f"{_CC}/settings/screen-recording-encryption", encryption_settings),
    ("GET", f"{_INTERNAL}/screen-recordings/<call_id>", one_screen),
    ("GET", f"{_INTERNAL}/screen-recordings", bulk_screens),
    ("POST", f"{_INTERNAL}/screen-recordings", write_back),
    ("DELETE", f"{_INTERNAL}/screen-recordings/<call_id>/content/<path:media_id>", delete_content),
)


def make_rws_app(
    store: Store,
    urls: Callable[[], dict[str, str]],
    delete_media: Callable[[dict[str, Any]], None],
    live: RwsState | None = None,
) -> Flask:
    """The RWS WSGI app: :data:`RWS_ROUTES` behind the guard (see :class:`RwsService` for the callbacks)."""
    rws = RwsService(store, urls, delete_media, live or RwsState())
    app = _new_app("grmux_sandbox.rws", rws, RWS_ROUTES)
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.before_request(functools.partial(_rws_guard, rws))
    app.after_request(functools.partial(_csrf_handshake, rws))
    return app


# ------------------------------------------------------------------------------------ RCS


def decrypt_key(rcs: RcsService, cc: str) -> Response:
    auth = request.authorization
    account = rcs.store.check_user("rcs", auth.username, auth.password) or {}
    if not account.get("decrypt"):
        return error(403, f"user {auth.username} lacks the media-decrypt permission")
    if cc != rcs.store.contact_center_id:
        return error(404, f"no contact center {cc}")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("pkcs7"), str):
        return error(400, 'the body must be {"pkcs7": "<PEM envelope>"}')
    try:
        key, iv = rcs.keys.open(body["pkcs7"])
    except BadEnvelope as exc:
        return error(400, str(exc))
    except NoMatchingKey as exc:
        return error(404, str(exc))
    return ok(algorithm="aes-256-cbc", key=key.hex(), iv=iv.hex())


RCS_ROUTES: tuple[tuple[str, str, Callable[..., Response]], ...] = (
    ("POST", "/rcs/api/v1/contact-centers/<cc>/decrypt-key", decrypt_key),
)


def make_rcs_app(store: Store, keys: KeyStore, live: RwsState | None = None) -> Flask:
    """The RCS WSGI app: ``POST /rcs/api/v1/contact-centers/{cc}/decrypt-key``."""
    rcs = RcsService(store, keys, live or RwsState())
    app = _new_app("grmux_sandbox.rcs", rcs, RCS_ROUTES)
    app.before_request(functools.partial(_rcs_guard, rcs))
    return app
