"""The per-call Prefect task: one task run per call that needs muxing.

One task per call (not per step) keeps a 10,000-call window at 10,000 task runs. Inside, each
external service step holds one slot of a per-process semaphore only for that step, so a slow
storage does not hold ffmpeg slots: ffmpeg gets this host's CPU count; RWS, RCS and storage get
the size of the global concurrency limits ``grmux-rws``, ``grmux-rcs``, ``grmux-storage``
(created by ``python -m deployments.setup``), read once per process.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from prefect import get_run_logger, task

from grmux_core.call import process_call
from grmux_core.encryption import OutputEncryption
from grmux_core.models import CallRecording
from grmux_core.outcome import CallOutcome, Status
from tasks.context import RunConfig, services_for
from tasks.locking import CACHE_EXPIRATION, call_cache_policy
from tasks.report import publish_timeline
from tasks.retry import RETRY_OPTIONS

SERVICES = ("rws", "rcs", "storage", "ffmpeg")
_slots: dict[str, threading.BoundedSemaphore | None] = {}
_slots_lock = threading.Lock()


class CallFailed(Exception):
    """Raised so a failed call's task run is Failed (red, and never cached as done)."""

    def __init__(self, outcome: CallOutcome):
        self.outcome = outcome
        super().__init__(outcome.reason)


class CallCancelled(CallFailed):
    """Raised for a call stopped by a cancel: a returned result would be committed to the call's
    cache record and the rerun would skip a call nobody muxed (the transaction rolls back only
    when the task raises; ``tests/unit/test_prefect_contract.py`` holds Prefect to it)."""


def limit_name(service: str) -> str:
    return f"grmux-{service}"


def _read_limit(name: str) -> int | None:
    """The size of the global concurrency limit ``name`` (None: absent, inactive or unreadable)."""
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            found = client.read_global_concurrency_limit_by_name(name)
    except Exception:  # noqa: BLE001 - absent or unreachable: no bound, as before
        return None
    return int(found.limit) if found.active else None


def service_slots(service: str) -> threading.BoundedSemaphore | None:
    """This process's slots for ``service``, sized once per process (None = unbounded).

    ffmpeg is bound by this host's CPUs. RWS, RCS and storage take the size of their concurrency
    limit ``grmux-<service>`` on the server (created by ``deployments.setup``), read once.
    """
    with _slots_lock:
        if service not in _slots:
            if service == "ffmpeg":
                size: int | None = max(1, os.cpu_count() or 1)
            else:
                size = _read_limit(limit_name(service))
            _slots[service] = threading.BoundedSemaphore(size) if size and size > 0 else None
        return _slots[service]


@contextlib.contextmanager
def service_guard(service: str) -> Iterator[None]:
    """Hold one of the process's slots for ``service`` during one step.

    The slots are local semaphores, not server-side acquisitions: entering a Prefect global
    concurrency limit costs HTTP round trips, a lease and events per step, and a busy limit
    answers 423 with a Retry-After that grows with the limit's average occupancy — several times
    per call, more than the work it guards (``benchmarks/pipeline_overhead.py`` measures it).
    """
    slots = service_slots(service)
    if slots is None:
        yield
        return
    with slots:
        yield


@task(
    name="mux-call",
    task_run_name="mux-{call.id}",
    cache_policy=call_cache_policy(),
    cache_expiration=CACHE_EXPIRATION,
    tags=["grmux-call"],
    **RETRY_OPTIONS,
)
def mux_call(call: CallRecording, work_key: str, run: RunConfig,
             encryption: OutputEncryption | None = None) -> dict[str, Any]:
    """Mux one call. Returns its outcome as a dict; a failed call raises :class:`CallFailed`.

    ``encryption`` (public certificates only) is what the flow read once for the cycle.

    A call that failed after its plan was made, or needed re-encoding, gets its timeline picture as
    an artifact: that is where an operator looks when a call "plays out of sync".
    """
    plans: list[Any] = []
    outcome = process_call(call, services_for(run), guard=service_guard, logger=get_run_logger(),
                           on_plan=plans.append, encryption=encryption)
    if plans and (outcome.status == Status.FAILED or outcome.reencoded_spans):
        headline = (f"failed: {outcome.reason}" if outcome.status == Status.FAILED
                    else f"muxed with {outcome.reencoded_spans} re-encoded span(s)")
        publish_timeline(call.id, plans[0], headline)
    if outcome.status == Status.FAILED:
        raise CallFailed(outcome)
    if outcome.status == Status.CANCELLED:
        raise CallCancelled(outcome)
    return outcome.to_data()
