"""Fault campaign: every service answers 20% 5xx, cuts connections and adds latency; the window still
ends with every call muxed exactly once, originals untouched, no orphan in storage, temp dir empty.

The test runs a 12-call window (2 cores: about two minutes); ``scripts/fault_campaign.py`` runs the
same campaign at 50 calls and prints the figures (docs/guarantees.md).
"""

from __future__ import annotations

import pytest

from tests.reliability.campaign import env_int, run_campaign

pytestmark = pytest.mark.slow


def test_a_window_under_faults_ends_muxed_exactly_once(prefect_api, tmp_path):
    calls = env_int("GRMUX_CAMPAIGN_CALLS", 12)
    result = run_campaign(tmp_path, calls=calls, fault_seed=3, worker_threads=2)
    print(result.table())
    audit = result.audit
    assert result.faults_injected > 0 and all(s["errors"] for s in result.faults_by_service.values()), \
        result.faults_by_service
    assert audit.missing == [], (audit.missing, result.retry_reasons)
    assert result.muxed == calls
    assert result.duplicates == 0
    assert audit.originals_changed == []
    assert audit.orphans == []
    assert audit.bad_outputs == []
    assert audit.scratch_left == []
