"""Exactly-once across processes with the Redis lock manager (``GRMUX_REDIS_URL``): what several
hosts use instead of the one-host file locks."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from deployments.local_server import prefect_server
from grmux_sandbox.site import Sandbox
from tests.conftest import require_service
from tests.scale.harness import ROOT
from tests.support.flows import start_flow_cycle

pytestmark = [pytest.mark.slow, pytest.mark.needs_redis]
REDIS_URL = "redis://127.0.0.1:6379/0"


def test_lock_manager_is_redis_when_grmux_redis_url_is_set():
    require_service("Redis", "127.0.0.1", 6379)
    code = ("from prefect_redis.locking import RedisLockManager; from tasks.locking import call_cache_policy; "
            "p = call_cache_policy(); "
            "print('RedisLockManager' if isinstance(p.lock_manager, RedisLockManager) else type(p.lock_manager), "
            "p.isolation_level)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
                          env={**_env(), "GRMUX_REDIS_URL": REDIS_URL})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == ["RedisLockManager", "SERIALIZABLE"]


def test_two_processes_with_redis_locks_mux_every_call_exactly_once(tmp_path, cleanup):
    require_service("Redis", "127.0.0.1", 6379)
    sandbox = cleanup.enter_context(Sandbox.start(tmp_path / "site"))
    # a random start: fresh call ids, so no lock or record of an earlier test run applies
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2, seconds=uuid.uuid4().int % 3600)
    calls = sandbox.seed(4, seed=uuid.uuid4().int % 10_000, scenarios=["normal"], start=start,
                         size=(320, 240), duration=(8.0, 10.0), spacing=(60.0, 70.0))
    config = sandbox.write_config(tmp_path / "muxer.cfg", worker_threads=2)
    home = tmp_path / "prefect-home"
    env = cleanup.enter_context(prefect_server(home)) | {"GRMUX_REDIS_URL": REDIS_URL}
    # stopped (bounded) before the server, also when communicate() times out
    runs = [start_flow_cycle(cleanup, config, env) for _ in range(2)]
    outputs = [r.communicate(timeout=500)[0].decode() for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    assert Counter(wb["id"] for wb in sandbox.write_backs()) == Counter(c.call_id for c in calls), outputs
    # the locks were Redis's, not the one-host file locks
    assert not (home / "grmux-locks").exists()


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "GRMUX_REDIS_URL"}
