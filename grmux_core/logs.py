"""The rotating log file in ``[logfile] logfile_path``: one line per call outcome, with its id.

The Prefect run logs show the same lines; the file is what operators grep on the host, and what
the legacy muxer wrote. Attaching is idempotent, so a long-lived worker process that runs many
flows keeps one handler per folder.
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

LOG_FILE_NAME = "grmux.log"
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_handlers: dict[Path, logging.Handler] = {}


def attach_log_file(folder: str | Path, *, max_bytes: int = 20 * 1024 * 1024, backups: int = 10) -> Path:
    """Send the ``grmux`` loggers to ``folder/grmux.log`` (rotated at ``max_bytes``)."""
    path = (Path(folder) / LOG_FILE_NAME).resolve()
    if path not in _handlers:
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                                       encoding="utf-8")
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.setLevel(logging.INFO)
        root = logging.getLogger("grmux")
        root.addHandler(handler)
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)
        _handlers[path] = handler
    return path


def outcome_logger() -> logging.Logger:
    return logging.getLogger("grmux.outcomes")
