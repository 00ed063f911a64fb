"""The composition root: the clients one process shares between calls, and the per-service guard.

Orchestration concerns stay outside grmux_core: concurrency limits reach the per-call steps
through a :data:`Guard`, a function that returns a context manager per external service
(``rws``, ``rcs``, ``storage``, ``ffmpeg``), so no step ever imports Prefect.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from grmux_core.config import Settings
from grmux_core.crypto import RcsClient
from grmux_core.encryption import OutputEncryption, output_encryption
from grmux_core.mux import MuxTools
from grmux_core.rws import RwsClient
from grmux_core.storage import StorageRouter, open_storage

Guard = Callable[[str], AbstractContextManager[Any]]


def no_guard(_service: str) -> AbstractContextManager[Any]:
    """The guard of callers without concurrency limits (the command line, benchmarks)."""
    return contextlib.nullcontext()


@dataclass
class Services:
    """The clients one process shares between calls (each is thread-safe)."""

    settings: Settings
    rws: RwsClient
    rcs: RcsClient
    storage: StorageRouter
    tools: MuxTools = field(default_factory=MuxTools)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        pool = settings.advanced.worker_threads
        return cls(
            settings=settings,
            rws=RwsClient(settings.htcc, settings.advanced, settings.processing, pool_size=pool),
            rcs=RcsClient(settings.rcs, settings.htcc.contact_center_id, pool_size=pool),
            storage=open_storage(settings, pool_size=pool),
            tools=MuxTools(ffmpeg=settings.processing.ffmpeg, ffprobe=settings.processing.ffprobe),
        )

    def output_encryption(self) -> OutputEncryption:
        """The site's screen-recording certificates under ``[processing] encrypt_output``, validated
        (read from RWS: the flow does it once per cycle)."""
        return output_encryption(self.settings.processing.encrypt_output, self.rws.screen_recording_certificates())

    def close(self) -> None:
        for client in (self.rws, self.rcs, self.storage):
            with contextlib.suppress(Exception):
                client.close()
