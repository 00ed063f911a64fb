"""List requests to list a window whose RWS cuts answers at the limit with no next link.

    .venv/bin/python benchmarks/listing_narrowing.py

Two ways to narrow an answer that may be truncated, on the same in-memory RWS
(``tests/support/fake_rws_list.py``), for a few call densities:

* **cursor** — what grmux does (:func:`grmux_core.rws.list_pages`): ask again from the last
  ``startTime`` of the full answer, de-duplicating the calls of that instant by id;
* **halving** — split the time range in two and list each half. ``endTime`` bounds when a call
  *ended*, so a half can only be bounded by start time the way split windows are: list
  ``[a, min(b + buffer, end)]`` and keep the calls that started in ``[a, b)`` — which also
  fetches (and throws away) the calls of the next ``buffer``, and misses calls longer than it.

Printed: requests per strategy and whether each listed every call exactly once (a halving stopped
after too many requests shows ``>N`` and lists calls short).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from grmux_core.rws import ListQuery, ListStats, list_pages
from tests.support.fake_rws_list import FakeList, record

HOUR = 3_600_000
BUFFER = 10 * 60_000  # the halving's buffer: the longest call it expects
GIVE_UP = 20_000  # requests after which the halving is stopped (it can need millions)


def cursor(fake: FakeList, end: int, limit: int) -> list[str]:
    query = ListQuery.parse(f"startTime=0&endTime={end}&limit={limit}")
    return [item["id"] for item in list_pages(fake, query, limit=limit, absolute=lambda u, _s: u, stats=ListStats())]


def halving(fake: FakeList, end: int, limit: int) -> list[str]:
    found: list[str] = []
    todo = [(0, end + 1)]
    while todo and fake.requests < GIVE_UP:
        a, b = todo.pop()
        answer = fake(f"?startTime={a}&endTime={min(b + BUFFER, end)}&limit={limit}")["recordings"]
        if len(answer) >= limit and b - a > 1:
            middle = (a + b) // 2
            todo += [(middle, b), (a, middle)]
            continue
        starts = {r["id"]: r for r in fake.records}
        found += [r["id"] for r in answer if a <= starts[r["id"]]["_start"] < b]
    return found


def window(kind: str, rng: random.Random) -> tuple[list[dict], int]:
    if kind == "250 calls in 2 h":
        return [record(f"c{i}", rng.randrange(2 * HOUR - BUFFER), rng.randrange(20_000, 300_000))
                for i in range(250)], 2 * HOUR
    if kind == "2000 calls in 12 h":
        return [record(f"c{i}", rng.randrange(12 * HOUR - BUFFER), rng.randrange(20_000, 300_000))
                for i in range(2000)], 12 * HOUR
    # a burst: 600 calls in one minute, 400 spread over the rest of 12 h
    burst = [record(f"b{i}", HOUR + rng.randrange(60_000), rng.randrange(20_000, 300_000)) for i in range(600)]
    spread = [record(f"s{i}", rng.randrange(12 * HOUR - BUFFER), rng.randrange(20_000, 300_000)) for i in range(400)]
    return burst + spread, 12 * HOUR


def main() -> int:
    rng = random.Random(12)
    print(f"{'window':<26} {'limit':>5} {'calls':>6} {'cursor':>7} {'halving':>8}  exact (cursor/halving)")
    for kind in ("250 calls in 2 h", "2000 calls in 12 h", "burst: 600 in 1 min + 400"):
        records, end = window(kind, rng)
        for limit in (100, 3):
            expected = sorted(r["id"] for r in FakeList(records).selected(0, end))
            row = []
            for strategy in (cursor, halving):
                fake = FakeList(records)
                ids = strategy(fake, end, limit)
                row.append((fake.requests, sorted(ids) == expected))
            halved = f">{GIVE_UP}" if row[1][0] >= GIVE_UP else str(row[1][0])
            print(f"{kind:<26} {limit:>5} {len(expected):>6} {row[0][0]:>7} {halved:>8}  {row[0][1]}/{row[1][1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
