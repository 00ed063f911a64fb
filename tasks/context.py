"""Per-process state the tasks share: settings and clients, built once per run configuration.

Flow and task parameters carry only the config path and JSON overrides (never passwords); each
process turns them into one :class:`Services` (connection pools sized to ``worker_threads``) and
reuses it for every call, instead of re-reading muxer.cfg and reconnecting per task.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from grmux_core.config import Settings, load_settings
from grmux_core.services import Services

_lock = threading.Lock()
_services: dict[str, Services] = {}


@dataclass(frozen=True)
class RunConfig:
    """What a task needs to find its settings: JSON-able, no secrets."""

    config_path: str
    overrides: dict[str, Any] = field(default_factory=dict)  # "section.option" -> value

    @property
    def key(self) -> str:
        return json.dumps([self.config_path, self.overrides], sort_keys=True)

    def settings(self) -> Settings:
        """The validated settings: the file, the environment's passwords, then the overrides."""
        return load_settings(self.config_path, overrides=self.overrides)


def services_for(run: RunConfig) -> Services:
    with _lock:
        found = _services.get(run.key)
        if found is None:
            found = _services[run.key] = Services.from_settings(run.settings())
        return found


def forget_services() -> None:
    """Close every cached client (tests, and the end of a long-lived process)."""
    with _lock:
        for services in _services.values():
            services.close()
        _services.clear()
