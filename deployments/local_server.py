"""A real ``prefect server start`` on this machine, and the ``prefect`` commands run against it, for
the demo, the end-to-end and scale tests and the benchmarks (one implementation, so they all start,
drive and stop it the same way)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deployments.processes import run_process, start_process, stop_process

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


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
    proc = start_process(argv if ui else [*argv, "--no-ui"], cwd=ROOT, env=env, stdout=log,
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
        stop_process(proc)  # bounded, never raises: the caller's own error stays the one reported
        log.close()


class PrefectCommandError(RuntimeError):
    """A ``prefect`` command exited non-zero; the message holds its output."""


def prefect_cli(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """``python -m prefect ARGS`` against the server of ``env``: its output (stdout, then stderr)."""
    done = _prefect(env, args, timeout)
    return done.stdout + done.stderr


def prefect_json(env: dict[str, str], *args: str, timeout: float = 300) -> Any:
    """What a ``prefect ... --output json`` command prints on stdout, as JSON (lines around it ignored)."""
    out = _prefect(env, args, timeout).stdout
    for start, char in enumerate(out):
        if char in "{[":
            try:
                return json.JSONDecoder().raw_decode(out, start)[0]
            except json.JSONDecodeError:
                continue
    raise PrefectCommandError(f"prefect {' '.join(args)} printed no JSON:\n{out}")


def _prefect(env: dict[str, str], args: tuple[str, ...], timeout: float) -> subprocess.CompletedProcess:
    done = run_process([sys.executable, "-m", "prefect", *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=timeout)
    if done.returncode != 0:
        raise PrefectCommandError(f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def run_deployment(env: dict[str, str], name: str, **parameters: Any) -> str:
    """``prefect deployment run NAME --param k=v ...``: the id of the flow run it created."""
    params = [arg for key, value in parameters.items() for arg in ("--param", f"{key}={value}")]
    out = prefect_cli(env, "deployment", "run", name, *params)
    return next(line.split()[-1] for line in out.splitlines() if "UUID" in line)


def wait_for_flow_runs(env: dict[str, str], run_ids: list[str], timeout: float, *,
                       poll: float = 2.0) -> list[dict[str, Any]]:
    """The flow runs (``prefect flow-run inspect`` JSON) once all are in a terminal state, or as they
    are when ``timeout`` seconds have passed (the caller checks their states)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = [prefect_json(env, "flow-run", "inspect", run_id, "--output", "json") for run_id in run_ids]
        if all(run["state"]["type"] in TERMINAL for run in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(poll)
