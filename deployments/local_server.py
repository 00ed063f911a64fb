"""A real ``prefect server start`` on this machine, for the demo, the end-to-end tests and the
benchmarks (one implementation, so they all start and stop it the same way)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when nothing listens there, else a free loopback port."""
    if preferred:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", preferred)) != 0:
                return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prefect_env(home: Path, port: int, database_url: str | None = None, *,
                log_level: str = "WARNING") -> dict[str, str]:
    """The environment of every process that talks to (or is) the server: no inherited PREFECT_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": log_level,
            "GX_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PYTHONPATH": str(ROOT)}
    if database_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    return env


@contextlib.contextmanager
def prefect_server(home: Path, database_url: str | None = None, log_path: Path | None = None, *,
                   port: int | None = None, ui: bool = False, log_level: str = "WARNING",
                   timeout: float = 240) -> Iterator[dict[str, str]]:
    """Start the server (SQLite in ``home``, or ``database_url``), wait until healthy, yield the
    environment its clients need, and stop it on exit."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = prefect_env(home, port, database_url, log_level=log_level)
    log = open(log_path or home / "server.log", "a")  # noqa: SIM115 - closed in finally
    argv = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(argv if ui else [*argv, "--no-ui"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except OSError:  # not up yet
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    raise RuntimeError("prefect server did not start:\n"
                                       + Path(log.name).read_text()[-3000:]) from None
                time.sleep(0.5)
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
