"""Hearing a cancel: a thread that watches the flow run's state and sets the run's stop token.

Why a watcher: Prefect delivers a cancel only by killing the flow-run *process*, and only one a
worker started (after a grace period). A run in the caller's process (``grmux run``,
``muxer_process.py``) never learns that it is Cancelling, and a worker's kill stops ffmpeg mid-file
with a misleading error. The watcher reads the run's state every :data:`POLL_SECONDS`; on
Cancelling (or Cancelled) it sets the token, so no call starts any more, ffmpeg and downloads
stop, and the flow ends Cancelled by itself, well before the worker's kill.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from grmux_core.cancel import StopToken

log = logging.getLogger("grmux.cancel")

POLL_SECONDS = 1.0
CANCEL_STATES = frozenset({"CANCELLING", "CANCELLED"})


def cancel_requested(flow_run_id: UUID) -> bool:
    """Whether the server says the flow run is being cancelled (an unreachable API: no)."""
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state
    except Exception as exc:  # noqa: BLE001 - the API being away is no cancel; the next poll retries
        log.debug("cannot read the state of flow run %s: %s", flow_run_id, exc)
        return False
    return state is not None and state.type.value in CANCEL_STATES


@contextmanager
def watch_for_cancel(flow_run_id: UUID | None, token: StopToken,
                     poll_seconds: float = POLL_SECONDS) -> Iterator[StopToken]:
    """Set ``token`` when the flow run is cancelled, for the duration of the block."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(poll_seconds):
            if token.is_set():
                return
            if cancel_requested(flow_run_id):
                token.set("the flow run was cancelled")
                return

    thread = None
    if flow_run_id is not None:
        thread = threading.Thread(target=watch, name="grmux-cancel-watch", daemon=True)
        thread.start()
    try:
        yield token
    finally:
        done.set()
        if thread is not None:
            thread.join(timeout=poll_seconds + 5)
