"""An in-memory RWS list endpoint for listing tests and the narrowing benchmark.

``FakeList(records)`` answers ``?startTime=&endTime=&limit=`` queries like RWS: the calls that
started at/after ``startTime`` and ended at/before ``endTime``, sorted by start time then id, at
most ``limit`` of them. ``links(n)`` says whether answer ``n`` carries a ``nextUri`` (an offset
link, as the strict contract pages) or is cut at the limit without one (RWS 8.5.0, the field).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(ms: int) -> str:
    moment = EPOCH + timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0000"


def record(call_id: str, start_ms: int, length_ms: int) -> dict[str, Any]:
    return {"id": call_id, "startTime": iso(start_ms), "stopTime": iso(start_ms + length_ms), "_start": start_ms,
            "_stop": start_ms + length_ms}


@dataclass
class FakeList:
    records: list[dict[str, Any]]
    links: Callable[[int], bool] = lambda _n: False
    requests: int = 0
    queries: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.records = sorted(self.records, key=lambda r: (r["_start"], r["id"]))

    def selected(self, start: int | None, end: int | None) -> list[dict[str, Any]]:
        return [r for r in self.records if (start is None or r["_start"] >= start) and (end is None or r["_stop"] <= end)]

    def __call__(self, target: str) -> dict[str, Any]:
        self.requests += 1
        params = dict(parse_qsl(urlsplit(target).query))
        self.queries.append(params)
        start = int(params["startTime"]) if "startTime" in params else None
        end = int(params["endTime"]) if "endTime" in params else None
        limit, offset = int(params.get("limit", 100)), int(params.get("offset", 0))
        chosen = self.selected(start, end)
        page = chosen[offset:offset + limit]
        body: dict[str, Any] = {"statusCode": 0, "recordings": [
            {k: v for k, v in r.items() if not k.startswith("_")} for r in page]}
        if offset + limit < len(chosen) and self.links(self.requests):
            body["nextUri"] = "http://rws.test/list?" + urlencode({**params, "offset": offset + limit})
        return body
