"""Scale-out on Prefect's own machinery: a PostgreSQL-backed server, two process workers on the
``grmux`` pool, the two shards of one window as two deployment runs at the same time."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import require_service
from tests.scale.harness import ROOT, postgres_prefect_server, run_shards, seed_template

pytestmark = [pytest.mark.slow, pytest.mark.needs_postgres]
CALLS = 8


def test_two_workers_two_shards_mux_every_call_exactly_once(tmp_path):
    require_service("PostgreSQL", "127.0.0.1", 5432)
    template = ROOT / "var" / "bench" / f"scale-{CALLS}"
    seed_template(template, CALLS)
    with postgres_prefect_server(tmp_path / "prefect-home") as env:
        result = run_shards(env, template, tmp_path, workers=2, threads=2)
    print(f"2 workers: {result.seconds:.1f} s, runs per worker {result.runs_by_worker}, "
          f"shard runs overlapped {result.overlap_s:.1f} s")
    assert result.states == ["COMPLETED", "COMPLETED"]
    assert Counter(result.write_backs) == Counter(result.call_ids)  # every call once, none twice
    assert len(result.call_ids) == CALLS
    # both workers of the pool served the window: each took one shard run (--limit 1 each)
    assert sorted(result.runs_by_worker.values()) == [1, 1], result.runs_by_worker
