"""Shared HTTP plumbing for the GIR clients: sessions, retries, timeouts, error translation.

Why one module: every client (RWS, RCS, WebDAV) must behave the same way on the wire — pooled
connections sized to the worker count, explicit (connect, read) timeouts, urllib3 ``Retry`` with
backoff for 429/5xx/connection errors on idempotent methods only, and low-level exceptions
translated *at this boundary* into the :mod:`grmux_core.errors` hierarchy with ``raise ... from``.

Two retry layers, on purpose:

* urllib3 ``Retry`` (in the adapter) retries connection failures, and 429/5xx answers of idempotent
  methods, honouring ``Retry-After``. It cannot see a body cut *after* the headers arrived,
  because requests reads the body outside urllib3's retry loop.
* :func:`send` therefore retries an idempotent request a few more times when reading the body
  fails (``ChunkedEncodingError``, a reset mid-body). Streaming downloads handle this themselves
  (see :mod:`grmux_core.storage`, which resumes with ``Range``).

Never logged: passwords, the ``Authorization`` header, cookies or CSRF tokens. URLs are logged
without user-info.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util.retry import Retry

from grmux_core.config import SecretStr
from grmux_core.errors import (
    AuthError,
    NotFoundError,
    ProtocolError,
    ServiceError,
    StorageFull,
    TransientError,
)

log = logging.getLogger("grmux.http")

#: Methods retried automatically (RFC 9110 idempotent ones plus the idempotent WebDAV reads/writes).
#: POST and MOVE are *not*: a repeated POST may register twice, a repeated MOVE fails on a
#: source that the first attempt already moved. Callers of those decide themselves.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PROPFIND", "MKCOL", "TRACE"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts and retry budget of one client. Defaults suit a LAN-local GIR site."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    body_retries: int = 3  # extra attempts when a body is cut after the headers arrived

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


DEFAULT_POLICY = HttpPolicy()


class _Retry(Retry):
    """urllib3 ``Retry`` that gives up at once on a TLS failure: a certificate that does not verify
    will not verify on the next attempt, and retrying only hides the cause behind minutes of backoff."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if isinstance(error, Urllib3SSLError):
            raise MaxRetryError(_pool, url, error) from error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def make_retry(policy: HttpPolicy = DEFAULT_POLICY, *, methods: Iterable[str] = IDEMPOTENT_METHODS) -> Retry:
    """The urllib3 retry rule: backoff, 429/5xx on ``methods`` only, honour ``Retry-After``.

    ``raise_on_status=False`` hands the last 5xx back to us so :func:`check_status` can turn it into a
    :class:`TransientError` with a useful message instead of an opaque ``MaxRetryError``.
    ``redirect=0``: no client follows redirects implicitly (credentials must not travel).
    """
    return _Retry(
        total=policy.retries,
        connect=policy.retries,
        read=policy.retries,
        status=policy.retries,
        other=policy.retries,
        redirect=0,
        backoff_factor=policy.backoff_factor,
        backoff_max=policy.backoff_max,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset(m.upper() for m in methods),
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )


def build_session(
    *,
    username: str = "",
    password: SecretStr | None = None,
    verify: bool | str = True,
    pool_size: int = 4,
    policy: HttpPolicy = DEFAULT_POLICY,
    retry_methods: Iterable[str] = IDEMPOTENT_METHODS,
    session_auth: bool = True,
) -> requests.Session:
    """A ``requests.Session`` with pooled, retrying adapters and (optionally) Basic auth.

    ``pool_size`` should be the worker count, so parallel calls never wait for a connection nor
    open throw-away ones. ``session_auth=False`` leaves auth to the caller (WebDAV sends
    credentials per request, only to allowed hosts).
    """
    session = requests.Session()
    adapter = HTTPAdapter(
        pool_connections=max(1, pool_size),
        pool_maxsize=max(1, pool_size),
        max_retries=make_retry(policy, methods=retry_methods),
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.verify = verify
    session.headers["User-Agent"] = "grmux/0.1"
    if session_auth and username:
        session.auth = (username, password.get() if password is not None else "")
    return session


def safe_url(url: str) -> str:
    """The URL without user-info (and without a query, which may be long), for logs and messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def host_port(url: str) -> str:
    """``host:port`` of a URL, with the scheme's default port filled in (lower-case host)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{host}:{port}"


def _status_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        text = (response.text or "").strip().replace("\n", " ")
        return text[:200]
    if isinstance(body, Mapping):
        msg = body.get("statusMessage") or body.get("message") or ""
        return str(msg)[:200]
    return ""


def check_status(
    response: requests.Response,
    *,
    service: str,
    what: str,
    account_hint: str,
    not_found_ok: bool = False,
) -> requests.Response | None:
    """Translate an HTTP status into the error hierarchy; return the response when it is 2xx.

    ``service`` names the system ("RWS", "RCS", "WebDAV"), ``what`` the operation, and
    ``account_hint`` the config options the operator should check on 401/403. With
    ``not_found_ok`` a 404 returns ``None`` instead of raising.
    """
    status = response.status_code
    if 200 <= status < 300:
        return response
    detail = _status_message(response)
    suffix = f" ({detail})" if detail else ""
    where = f"{response.request.method} {safe_url(response.url or '')}" if response.request else what
    if status == 404:
        if not_found_ok:
            return None
        raise NotFoundError(f"{service}: {what} not found: {where} answered 404{suffix}", status=status)
    if status == 401:
        raise AuthError(
            f"{service} refused the credentials for {what} (401){suffix}: check {account_hint}",
            status=status,
        )
    if status == 403:
        raise AuthError(
            f"{service} denied {what} (403){suffix}: the account lacks a permission, or the password "
            f"is wrong; check {account_hint}",
            status=status,
        )
    if status == 507:
        raise StorageFull(f"{service}: storage full (507 Insufficient Storage) for {what}{suffix}: the {service} "
                          "server has no space left; free space there, the call is tried again next cycle",
                          status=status)
    if status in RETRY_STATUSES or status >= 500:
        raise TransientError(
            f"{service} answered {status} to {where} for {what} after retries{suffix}; "
            f"it will be retried later — if it persists, check the {service} server's health and logs"
        )
    raise ProtocolError(
        f"{service} answered {status} to {where} for {what}{suffix}: this breaks the wire contract; "
        "check the grmux and server versions",
        status=status,
    )


def json_body(response: requests.Response, *, service: str, what: str) -> dict[str, Any]:
    """The JSON object of an RWS/RCS answer, with ``statusCode == 0`` checked."""
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        ctype = response.headers.get("Content-Type", "?")
        raise ProtocolError(
            f"{service} answered {what} with something that is not JSON (Content-Type {ctype}, "
            f"{len(response.content)} bytes): check that [..] base_uri points at {service} itself, "
            "not a proxy or login page",
            status=response.status_code,
        ) from exc
    if not isinstance(body, dict):
        raise ProtocolError(f"{service} answered {what} with JSON that is not an object", status=response.status_code)
    code = body.get("statusCode", 0)
    if code not in (0, "0"):
        raise ProtocolError(
            f"{service} answered {what} with statusCode {code!r}: {str(body.get('statusMessage', ''))[:200]}",
            status=response.status_code,
        )
    return body


_BODY_ERRORS = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
)


def _retries_exhausted(exc: Exception) -> bool:
    return any(isinstance(arg, MaxRetryError) for arg in getattr(exc, "args", ()))


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    service: str,
    what: str,
    policy: HttpPolicy = DEFAULT_POLICY,
    **kwargs: Any,
) -> requests.Response:
    """One request with timeouts, redirects off, and transport errors translated.

    For idempotent methods a failure while reading the body (a connection cut mid-body) is
    retried ``policy.body_retries`` more times; urllib3 already retried connection errors and
    5xx. The result is returned whatever its status (see :func:`check_status`).
    """
    kwargs.setdefault("timeout", policy.timeout)
    kwargs.setdefault("allow_redirects", False)
    # Per request, or requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment replace a
    # configured ca_bundle (and turn verify=0 back on): the section's verify/ca_bundle must rule.
    kwargs.setdefault("verify", session.verify)
    attempts = 1 + (policy.body_retries if method.upper() in IDEMPOTENT_METHODS else 0)
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            started = time.monotonic()
            response = session.request(method, url, **kwargs)
            log.debug("%s %s -> %s in %.3fs", method, safe_url(url), response.status_code, time.monotonic() - started)
            return response
        except requests.exceptions.SSLError as exc:
            raise ServiceError(
                f"{service}: TLS failed for {safe_url(url)} ({what}): {exc.__class__.__name__}; check the "
                "server certificate, or set verify/ca_bundle in the section of this service"
            ) from exc
        except requests.exceptions.InvalidURL as exc:
            raise ProtocolError(f"{service}: invalid URL for {what}: {safe_url(url)}") from exc
        except _BODY_ERRORS as exc:
            last = exc
            if _retries_exhausted(exc):
                break  # urllib3 already spent the retry budget on this one
            log.debug("%s %s failed (%s), attempt %d/%d", method, safe_url(url), type(exc).__name__, attempt + 1, attempts)
            if attempt + 1 < attempts:
                time.sleep(min(policy.backoff_max, policy.backoff_factor * (2**attempt)))
        except requests.exceptions.RequestException as exc:
            raise ProtocolError(f"{service}: {what} failed: {type(exc).__name__}: {exc}") from exc
    raise TransientError(
        f"{service} could not be reached for {what} ({method} {safe_url(url)}): {type(last).__name__}; "
        f"check that the server is up and reachable from this host"
    ) from last
