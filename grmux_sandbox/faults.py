"""Fault injection: a WSGI middleware wrapped around each sandbox service (rws, rcs, webdav, s3).

A :class:`FaultSpec` says, per service, what share of requests to break and how:

* ``error_rate`` — answer a 5xx (picked from ``error_statuses``) without calling the service;
* ``garbage_rate`` — answer ``200 OK`` with an HTML page (what a login proxy in front of a service
  sends) instead of the service's answer: "an answer that is not JSON";
* ``latency_ms`` (+ uniform ``jitter_ms``) — sleep before handling every matching request;
* ``trickle_bytes`` / ``trickle_every_s`` — send every eligible answer's body ``trickle_bytes`` at
  a time, one piece every ``trickle_every_s`` seconds (a storage server that never goes idle long
  enough for a read timeout, yet would take hours for a screen recording);
* ``error_statuses`` may hold 507 (with ``methods=("PUT",)``: a WebDAV server whose disk is full);
* ``cut_rate`` — cut the connection: for a request with a body (PUT/POST) the server reads part of
  the body and drops the connection; otherwise the answer's headers and ``cut_fraction`` of its body
  are sent, then the connection is dropped (the client sees a short read / reset, never a clean
  answer). A body-less answer is dropped before any byte.

Decisions come from ``random.Random(seed)`` under a lock, so a single-threaded client sees the same
sequence of faults for the same seed. ``methods`` / ``path_regex`` restrict which requests are
eligible. Admin paths (``/_sandbox/...``) are never broken. Counters (:meth:`FaultInjector.stats`)
say how many requests were seen, failed, delayed and cut.
"""

from __future__ import annotations

import dataclasses
import errno
import random
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SERVICES = ("rws", "rcs", "webdav", "s3")
_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
            507: "Insufficient Storage"}


@dataclass(frozen=True)
class FaultSpec:
    """What to break on one service. All rates are shares in [0, 1]."""

    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503)
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    cut_rate: float = 0.0
    cut_fraction: float = 0.5
    seed: int = 0
    methods: tuple[str, ...] | None = None  # e.g. ("GET",); None = every method
    path_regex: str | None = None  # re.search on PATH_INFO; None = every path
    garbage_rate: float = 0.0
    trickle_bytes: int = 0  # > 0: answers' bodies sent this many bytes at a time
    trickle_every_s: float = 1.0

    def __post_init__(self) -> None:
        for name in ("error_rate", "cut_rate", "cut_fraction", "garbage_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultSpec.{name} must be in [0, 1], not {value!r}")
        if self.error_rate + self.cut_rate + self.garbage_rate > 1.0:
            raise ValueError("FaultSpec.error_rate + cut_rate + garbage_rate must be at most 1")
        if any(not 500 <= s <= 599 for s in self.error_statuses):
            raise ValueError("FaultSpec.error_statuses must be 5xx codes")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["error_statuses"] = list(self.error_statuses)
        if self.methods is not None:
            out["methods"] = list(self.methods)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FaultSpec | None:
        if not data:
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown FaultSpec fields: {', '.join(sorted(unknown))}")
        kwargs = dict(data)
        if "error_statuses" in kwargs:
            kwargs["error_statuses"] = tuple(int(s) for s in kwargs["error_statuses"])
        if kwargs.get("methods") is not None:
            kwargs["methods"] = tuple(str(m).upper() for m in kwargs["methods"])
        return cls(**kwargs)


@dataclass
class FaultStats:
    requests: int = 0
    eligible: int = 0
    errors: int = 0
    delayed: int = 0
    cuts: int = 0
    garbage: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _reset() -> ConnectionResetError:
    # cheroot and werkzeug both drop the connection silently on ECONNRESET from the app.
    return ConnectionResetError(errno.ECONNRESET, "sandbox fault injection: connection cut")


class FaultInjector:
    """WSGI middleware. ``FaultInjector(app, "rws", spec)``; change it live with :meth:`set`."""

    def __init__(self, app: Any, service: str, spec: FaultSpec | None = None):
        self.app = app
        self.service = service
        self._lock = threading.Lock()
        self._stats = FaultStats()
        self._spec: FaultSpec | None = None
        self._rng = random.Random(0)
        self._regex: re.Pattern[str] | None = None
        self.set(spec)

    @property
    def spec(self) -> FaultSpec | None:
        return self._spec

    def set(self, spec: FaultSpec | None) -> None:
        """Replace the fault spec (None = no faults) and restart its random sequence."""
        with self._lock:
            self._spec = spec
            self._rng = random.Random(spec.seed if spec else 0)
            self._regex = re.compile(spec.path_regex) if spec and spec.path_regex else None

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self._stats.to_dict()

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = FaultStats()

    def _decide(self, environ: dict[str, Any]) -> tuple[str, float, int]:
        """(action, delay_s, status) with action in ok/error/cut/garbage/trickle."""
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET").upper()
        with self._lock:
            self._stats.requests += 1
            spec = self._spec
            if spec is None or path.startswith("/_sandbox"):
                return "ok", 0.0, 0
            if spec.methods is not None and method not in spec.methods:
                return "ok", 0.0, 0
            if self._regex is not None and not self._regex.search(path):
                return "ok", 0.0, 0
            self._stats.eligible += 1
            delay = 0.0
            if spec.latency_ms or spec.jitter_ms:
                delay = (spec.latency_ms + self._rng.uniform(0, spec.jitter_ms)) / 1000.0
                self._stats.delayed += 1
            roll = self._rng.random()
            status = self._rng.choice(spec.error_statuses) if spec.error_statuses else 500
            if roll < spec.error_rate:
                self._stats.errors += 1
                self._stats.statuses[status] = self._stats.statuses.get(status, 0) + 1
                return "error", delay, status
            if roll < spec.error_rate + spec.cut_rate:
                self._stats.cuts += 1
                return "cut", delay, 0
            if roll < spec.error_rate + spec.cut_rate + spec.garbage_rate:
                self._stats.garbage += 1
                return "garbage", delay, 0
            if spec.trickle_bytes > 0:
                return "trickle", delay, 0
            return "ok", delay, 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        action, delay, status = self._decide(environ)
        if delay:
            time.sleep(delay)
        if action == "ok":
            return self.app(environ, start_response)
        if action == "trickle":
            spec = self._spec or FaultSpec()
            return _trickle(self.app(environ, start_response), max(1, spec.trickle_bytes), spec.trickle_every_s)
        if action == "error":
            body = (
                '{"statusCode": 5, "statusMessage": "sandbox fault injection: '
                f'{status} {_REASONS.get(status, "Server Error")}"}}'
            ).encode()
            start_response(
                f"{status} {_REASONS.get(status, 'Server Error')}",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                 ("Connection", "close")],
            )
            return [body]
        if action == "garbage":
            body = b"<html><head><title>Sign in</title></head><body>sandbox fault injection</body></html>"
            start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))])
            return [body]
        return self._cut(environ, start_response)

    def _cut(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        spec = self._spec or FaultSpec()
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > 0:
            # cut the upload: read part of the request body, then drop the connection
            stream = environ["wsgi.input"]
            todo = max(1, int(length * spec.cut_fraction))
            while todo > 0:
                chunk = stream.read(min(65536, todo))
                if not chunk:
                    break
                todo -= len(chunk)
            raise _reset()
        return _cut_response(self.app, environ, start_response, spec.cut_fraction)


def _cut_response(app: Any, environ: dict[str, Any], start_response: Any, fraction: float) -> Iterable[bytes]:
    """Run the app, then send its headers and part of its body and drop the connection.

    The first chunk is pulled here, so apps that call ``start_response`` lazily have called it; an
    answer without a body is dropped before any byte (the exception leaves the server's gateway
    before it sends anything).
    """
    captured: dict[str, Any] = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    result = app(environ, capture)
    iterator = iter(result)
    first = b""
    try:
        for chunk in iterator:
            if chunk:
                first = chunk
                break
    except Exception:
        _close(result)
        raise
    headers = captured.get("headers", [])
    declared = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
    if not first or environ.get("REQUEST_METHOD") == "HEAD":
        _close(result)
        raise _reset()
    budget = max(1, int((declared or len(first) * 2) * fraction))
    start_response(captured["status"], headers)

    def body() -> Iterable[bytes]:
        nonlocal budget
        try:
            for chunk in _chain(first, iterator):
                if not chunk:
                    continue
                if len(chunk) >= budget:
                    yield chunk[:budget]
                    raise _reset()
                budget -= len(chunk)
                yield chunk
            raise _reset()
        finally:
            _close(result)

    return body()


def _trickle(result: Any, size: int, every_s: float) -> Iterable[bytes]:
    """The answer's body in pieces of ``size`` bytes, one every ``every_s`` seconds."""
    try:
        for chunk in result:
            for start in range(0, len(chunk), size):
                yield chunk[start:start + size]
                time.sleep(every_s)
    finally:
        _close(result)


def _chain(first: bytes, rest: Any) -> Iterable[bytes]:
    yield first
    yield from rest


def _close(result: Any) -> None:
    close = getattr(result, "close", None)
    if close:
        close()
