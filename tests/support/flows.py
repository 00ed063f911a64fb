"""The grmux flow as the tests run it: in this process, or as one cycle in a process of its own
(as a worker's flow-run process runs it).

    python -m tests.support.flows CONFIG   # run from the project folder, PREFECT_API_URL set

prints ``COUNTS {...}`` and exits 0 when the run completed, 1 when it failed (as a worker's
flow-run process would end).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from deployments.processes import start_process
from tests.support import ROOT
from tests.support.cleanup import Cleanup


def run_flow(config: Path, **parameters: Any) -> tuple[Any, dict[str, Any]]:
    """Run the flow in this process (against the Prefect API of the settings in force): the final
    state and the run's summary (also when the run failed because some calls did)."""
    from flows.grmux import grmux

    state = grmux(config_path=str(config), return_state=True, **parameters)
    summary = state.data if state.is_failed() else state.result()
    if hasattr(summary, "result"):  # a persisted result record
        summary = summary.result
    return state, summary


def flow_cycle_argv(config: Path) -> list[str]:
    """The command line of one cycle in a process of its own (cwd: the project folder)."""
    return [sys.executable, "-m", "tests.support.flows", str(config)]


def start_flow_cycle(cleanup: Cleanup, config: Path, env: dict[str, str], *,
                     stdout: Any = subprocess.PIPE) -> subprocess.Popen:
    """One cycle in a process group of its own (output and errors to ``stdout``), stopped by
    ``cleanup`` if it is still running then."""
    return cleanup.process(start_process(flow_cycle_argv(config), cwd=ROOT, env=env, stdout=stdout,
                                         stderr=subprocess.STDOUT))


def main(argv: list[str]) -> int:
    [config] = argv
    state, summary = run_flow(Path(config))
    print("COUNTS", summary["counts"] if isinstance(summary, dict) else summary, flush=True)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
