"""Retry policy shared by every grmux task: only :class:`TransientError` is worth retrying."""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

from grmux_core.errors import TransientError

RETRIES = 3
RETRY_DELAYS = exponential_backoff(backoff_factor=2)  # 2, 4, 8 s
RETRY_JITTER = 0.5


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn``: retry 5xx/429/timeouts/cut connections, never a bad password or file."""
    try:
        state.result()
    except TransientError:
        return True
    except BaseException:  # noqa: BLE001 - any other failure is final: not retried
        return False
    return False


RETRY_OPTIONS: dict[str, Any] = {
    "retries": RETRIES,
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_jitter_factor": RETRY_JITTER,
    "retry_condition_fn": retry_transient,
}
