"""The per-call Prefect task: one task run per call that needs muxing.

One task per call (not per step) keeps a 10,000-call window at 10,000 task runs. Inside, each
external service is entered through a global concurrency limit (``grmux-rws``, ``grmux-rcs``,
``grmux-storage``, ``grmux-ffmpeg``; created by ``python -m deployments.setup``) held only for
that step, so a slow storage does not hold ffmpeg slots.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

from prefect import get_run_logger, task

from grmux_core.models import CallRecording
from grmux_core.pipeline import FAILED, CallOutcome, process_call
from tasks.context import RunConfig, services_for
from tasks.locking import CACHE_EXPIRATION, call_cache_policy
from tasks.retry import RETRY_OPTIONS

SERVICES = ("rws", "rcs", "storage", "ffmpeg")
_known_limits: dict[str, bool] = {}
_limits_lock = threading.Lock()


class CallFailed(Exception):
    """Raised so a failed call's task run is Failed (red, and never cached as done)."""

    def __init__(self, outcome: CallOutcome):
        self.outcome = outcome
        super().__init__(outcome.reason)


def limit_name(service: str) -> str:
    return f"grmux-{service}"


def _limit_exists(name: str) -> bool:
    with _limits_lock:
        if name not in _known_limits:
            from prefect.client.orchestration import get_client

            try:
                with get_client(sync_client=True) as client:
                    client.read_global_concurrency_limit_by_name(name)
                _known_limits[name] = True
            except Exception:
                _known_limits[name] = False
        return _known_limits[name]


@contextlib.contextmanager
def service_guard(service: str) -> Iterator[None]:
    """Hold one slot of the service's global concurrency limit, when the limit exists."""
    name = limit_name(service)
    if not _limit_exists(name):
        yield
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(name, occupy=1, strict=False):
        yield


@task(
    name="mux-call",
    task_run_name="mux-{call.id}",
    cache_policy=call_cache_policy(),
    cache_expiration=CACHE_EXPIRATION,
    tags=["grmux-call"],
    **RETRY_OPTIONS,
)
def mux_call(call: CallRecording, work_key: str, run: RunConfig) -> dict[str, Any]:
    """Mux one call. Returns its outcome as a dict; a failed call raises :class:`CallFailed`."""
    outcome = process_call(call, services_for(run), guard=service_guard, logger=get_run_logger())
    if outcome.status == FAILED:
        raise CallFailed(outcome)
    return dataclasses.asdict(outcome)
