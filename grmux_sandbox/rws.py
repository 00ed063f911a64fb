"""The emulated RWS (Interaction Recording Web Services) and RCS (Recording Crypto Server).

Two Flask apps built on one :class:`~grmux_sandbox.store.Store`; they follow
``../shared/spec/gir-services.md``. Choices where the spec is silent (see README.md):

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
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import secrets
import threading
from bisect import bisect_left
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, jsonify, request
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


def error(status: int, message: str, **headers: str) -> Response:
    code = _STATUS_CODES.get(status, 5 if status >= 500 else 1)
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
        where = f"mediaFiles[{i}]"
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
        desc = media.get("mediaDescriptor")
        if not isinstance(desc, dict):
            return f"{where}.mediaDescriptor must be an object"
        if desc.get("storage") not in ("webDAV", "awsS3"):
            return f"{where}.mediaDescriptor.storage must be webDAV or awsS3"
        if not isinstance(desc.get("path"), str) or not desc["path"]:
            return f"{where}.mediaDescriptor.path must be a non-empty string"
        if "data" in desc and not isinstance(desc["data"], dict):
            return f"{where}.mediaDescriptor.data must be an object"
        if desc["storage"] == "awsS3" and not isinstance((desc.get("data") or {}).get("bucket"), str):
            return f"{where}.mediaDescriptor.data.bucket is required for awsS3"
    return None


# ------------------------------------------------------------------------------------ the apps


class RwsState:
    """Live, non-persistent RWS state: CSRF sessions and request counters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: dict[str, str] = {}
        self.counters: dict[str, int] = {}

    def count(self, key: str) -> None:
        with self.lock:
            self.counters[key] = self.counters.get(key, 0) + 1


def _json_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def crash(exc: Exception):  # pragma: no cover - a sandbox bug
        app.logger.exception("sandbox error")
        return error(500, f"sandbox internal error: {type(exc).__name__}: {exc}")


def make_rws_app(
    store: Store,
    urls: Callable[[], dict[str, str]],
    delete_media: Callable[[dict[str, Any]], None],
    live: RwsState | None = None,
) -> Flask:
    """The RWS WSGI app. ``urls()`` gives the token → URL mapping; ``delete_media(descriptor)``
    removes stored bytes (raw descriptor with tokens)."""
    app = Flask("grmux_sandbox.rws")
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    live = live or RwsState()
    app.extensions["grmux_live"] = live
    cc_prefix = "/api/v2/ops/contact-centers/<cc>"
    internal = "/internal-api/contact-centers/<cc>"
    _json_errors(app)

    def served(record: dict[str, Any]) -> dict[str, Any]:
        return substitute(copy.deepcopy(record), urls())

    @app.before_request
    def guard():
        if request.path.startswith("/_sandbox"):
            return None
        live.count(f"{request.method} {request.url_rule.rule if request.url_rule else request.path}")
        auth = request.authorization
        if auth is None or auth.type != "basic" or store.check_user("htcc", auth.username, auth.password) is None:
            return error(401, "authentication required: wrong or missing user name or password",
                         WWW_Authenticate='Basic realm="RWS"')
        if request.view_args and "cc" in request.view_args and request.view_args["cc"] != store.contact_center_id:
            return error(404, f"no contact center {request.view_args['cc']}")
        if request.method in ("POST", "DELETE", "PUT", "PATCH") and store.site.get("csrf", True):
            sid = request.cookies.get("JSESSIONID")
            with live.lock:
                token = live.sessions.get(sid or "")
            if token is None or request.headers.get(CSRF_HEADER) != token:
                return error(403, "CSRF token missing or invalid: GET /api/v2/diagnostics/version first and "
                                  "send the X-CSRF-TOKEN header and the JSESSIONID cookie")
        return None

    @app.after_request
    def handshake(resp: Response) -> Response:
        if request.method == "GET" and not request.path.startswith("/_sandbox") and resp.status_code != 401 \
                and store.site.get("csrf", True):
            sid = request.cookies.get("JSESSIONID")
            with live.lock:
                if not sid or sid not in live.sessions:
                    sid = secrets.token_hex(16)
                    live.sessions[sid] = secrets.token_urlsafe(24)
                token = live.sessions[sid]
            resp.headers["X-CSRF-HEADER"] = CSRF_HEADER
            resp.headers["X-CSRF-TOKEN"] = token
            resp.set_cookie("JSESSIONID", sid, path="/", httponly=True)
        return resp

    @app.get("/api/v2/diagnostics/version")
    def version():
        return ok(version=store.site.get("rws_version", "8.5.201.14"))

    @app.get("/api/v2/settings/irp-muxer")
    def irp_muxer():
        conf = store.site.get("irp_muxer") or {"status": 404}
        status = int(conf.get("status", 404))
        if status == 200:
            return ok(settings=conf.get("settings") or {})
        if status == 403:
            return error(403, "the user may not read the irp-muxer settings")
        return error(status, "no irp-muxer settings")

    @app.get(f"{cc_prefix}/recordings")
    def list_recordings(cc: str):
        params = {k: v for k, v in request.args.items()}
        has_filter = any(f in params for f in FILTERS)
        if "startTime" not in params and not has_filter:
            return error(400, "a list of recordings needs startTime or a query filter "
                              f"({', '.join(FILTERS)})")
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
        limit = min(limit, MAX_LIMIT)
        try:
            keep = build_filter(params)
        except ValueError as exc:
            return error(400, str(exc))
        after: tuple[int, str] | None = None
        if "after" in params:
            raw_ms, _, raw_id = params["after"].partition("_")
            try:
                after = (int(raw_ms), raw_id)
            except ValueError:
                return error(400, f"bad paging cursor after={params['after']!r}")
        ordered = store.sorted_call_ids()
        pos = 0
        if after is not None:
            pos = bisect_left(ordered, after)
            if pos < len(ordered) and ordered[pos] == after:
                pos += 1
        if start is not None:
            pos = max(pos, bisect_left(ordered, (start, "")))
        page: list[dict[str, Any]] = []
        more = False
        last: tuple[int, str] | None = None
        for key in ordered[pos:]:
            record = store.calls.get(key[1])
            if record is None:
                continue
            if end is not None and to_ms(parse_iso(record["stopTime"])) > end:
                continue
            if not keep(record):
                continue
            if len(page) == limit:
                more = True
                break
            page.append(served(record))
            last = key
        body: dict[str, Any] = {"recordings": page}
        if more and last is not None:
            params["after"] = f"{last[0]}_{last[1]}"
            params["limit"] = str(limit)
            body["nextUri"] = request.base_url + "?" + urlencode(params)
        return ok(**body)

    @app.get(f"{cc_prefix}/recordings/<call_id>")
    def one_recording(cc: str, call_id: str):
        record = store.calls.get(call_id)
        if record is None:
            return error(404, f"no recording {call_id}")
        return ok(recording=served(record))

    @app.get(f"{internal}/screen-recordings/<call_id>")
    def one_screen(cc: str, call_id: str):
        record = store.screens.get(call_id)
        if record is None:
            return error(404, f"no screen recording for call {call_id} (yet)")
        return ok(recording=served(record))

    @app.get(f"{internal}/screen-recordings")
    def bulk_screens(cc: str):
        raw = request.args.get("ids")
        if raw is None:
            return error(400, "ids is required: ?ids=a,b,c (at most 100)")
        ids = list(dict.fromkeys(i.strip() for i in raw.split(",") if i.strip()))
        if not ids:
            return error(400, "ids is empty")
        if len(ids) > MAX_BULK_IDS:
            return error(400, f"at most {MAX_BULK_IDS} ids a request, got {len(ids)}")
        found = [served(store.screens[i]) for i in ids if i in store.screens]
        return ok(recordings=found)

    @app.post(f"{internal}/screen-recordings")
    def write_back(cc: str):
        body = request.get_json(silent=True)
        if body is None:
            return error(400, "the body must be JSON (Content-Type: application/json)")
        problem = validate_writeback(body)
        if problem:
            return error(400, problem)
        call_id = body["id"]
        with store.lock:
            call = store.calls.get(call_id)
            if call is None:
                return error(404, f"no call recording {call_id}: nothing to attach the screen media to")
            reverse = {v: k for k, v in urls().items() if v}
            files = [substitute(m, reverse) for m in body["mediaFiles"]]
            screen = copy.deepcopy(store.screens.get(call_id)) or {
                "id": call_id, "startTime": call["startTime"], "stopTime": call["stopTime"],
                "region": call.get("region", ""), "callType": call.get("callType", ""),
                "eventHistory": call.get("eventHistory", []), "mediaFiles": []}
            for media in files:
                media = dict(media)
                media["startTime"] = iso_ms(parse_iso(media["startTime"]))
                media["stopTime"] = iso_ms(parse_iso(media["stopTime"]))
                current = [i for i, m in enumerate(screen["mediaFiles"]) if m.get("mediaId") == media["mediaId"]]
                if current:
                    screen["mediaFiles"][current[0]] = media
                else:
                    screen["mediaFiles"].append(media)
            store.put_screen(screen)
            store.append_writeback({"receivedAt": iso_ms(dt.datetime.now(dt.UTC)), "id": call_id,
                                    "body": body})
        return ok()

    @app.delete(f"{internal}/screen-recordings/<call_id>/content/<path:media_id>")
    def delete_content(cc: str, call_id: str, media_id: str):
        with store.lock:
            screen = store.screens.get(call_id)
            if screen is None:
                return error(404, f"no screen recording for call {call_id}")
            index = [i for i, m in enumerate(screen["mediaFiles"]) if m.get("mediaId") == media_id]
            if not index:
                return error(404, f"call {call_id} has no screen media {media_id}")
            screen = copy.deepcopy(screen)
            media = screen["mediaFiles"].pop(index[0])
            store.put_screen(screen)
        desc = media.get("originalMediaDescriptor") or media.get("mediaDescriptor")
        if desc:
            delete_media(desc)
        return ok()

    return app


def make_rcs_app(store: Store, keys: KeyStore, live: RwsState | None = None) -> Flask:
    """The RCS WSGI app: ``POST /rcs/api/v1/contact-centers/{cc}/decrypt-key``."""
    app = Flask("grmux_sandbox.rcs")
    live = live or RwsState()
    app.extensions["grmux_live"] = live
    _json_errors(app)

    @app.before_request
    def guard():
        if request.path.startswith("/_sandbox"):
            return None
        live.count(f"{request.method} {request.path}")
        auth = request.authorization
        if auth is None or auth.type != "basic" or store.check_user("rcs", auth.username, auth.password) is None:
            return error(401, "authentication required: wrong or missing user name or password",
                         WWW_Authenticate='Basic realm="RCS"')
        return None

    @app.post("/rcs/api/v1/contact-centers/<cc>/decrypt-key")
    def decrypt_key(cc: str):
        auth = request.authorization
        account = store.check_user("rcs", auth.username, auth.password) or {}
        if not account.get("decrypt"):
            return error(403, f"user {auth.username} lacks the media-decrypt permission")
        if cc != store.contact_center_id:
            return error(404, f"no contact center {cc}")
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("pkcs7"), str):
            return error(400, 'the body must be {"pkcs7": "<PEM envelope>"}')
        try:
            key, iv = keys.open(body["pkcs7"])
        except BadEnvelope as exc:
            return error(400, str(exc))
        except NoMatchingKey as exc:
            return error(404, str(exc))
        return ok(algorithm="aes-256-cbc", key=key.hex(), iv=iv.hex())

    return app
