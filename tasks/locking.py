"""Exactly-once per call across instances: Prefect transactions with SERIALIZABLE isolation.

The per-call task's cache key is the call id plus its sorted source media ids
(:func:`grmux_core.pipeline.work_key`). With SERIALIZABLE isolation Prefect takes a lock on that
key before the task body runs and commits the result record before releasing it, so a second
instance working on an overlapping window or shard waits, then finds the record and does nothing.
The task body also re-reads the screen recording after the lock is taken.

Where the locks live:

* one host (default): file locks in ``$PREFECT_HOME/grmux-locks``
  (``FileSystemLockManager``), shared by every worker process on the host;
* several hosts: set ``GRMUX_REDIS_URL=redis://host:6379/0`` and Prefect-redis's
  ``RedisLockManager`` is used. The cache *records* must then be shared too: point
  ``PREFECT_RESULTS_LOCAL_STORAGE_PATH`` at a shared folder or set a default result storage block.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.locking.filesystem import FileSystemLockManager
from prefect.settings import PREFECT_HOME

#: How long a finished call's record keeps a rerun from doing it again (covers the nightly run's
#: two days, with margin); after that the RWS "already muxed" check alone decides.
CACHE_EXPIRATION = timedelta(days=7)


class CallWorkPolicy(CachePolicy):
    """Cache key = the ``work_key`` parameter of the per-call task (call id + its sources)."""

    def compute_key(self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> str | None:
        return inputs.get("work_key")


def lock_manager() -> Any:
    url = os.environ.get("GRMUX_REDIS_URL", "").strip()
    if url:
        from prefect_redis.locking import RedisLockManager

        return RedisLockManager(connection_url=url)
    return FileSystemLockManager(lock_files_directory=Path(PREFECT_HOME.value()) / "grmux-locks")


def call_cache_policy() -> CachePolicy:
    return CallWorkPolicy().configure(isolation_level="SERIALIZABLE", lock_manager=lock_manager())
