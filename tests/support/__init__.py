"""Helpers shared by the test packages (and the scripts that reuse their campaigns).

* ``cleanup``: :class:`~tests.support.cleanup.Cleanup`, clean-up steps that never hide the first
  failure; subprocesses stopped with the bounded escalation of ``deployments/processes.py``.
* ``flows``: ``run_flow`` (the grmux flow in this process) and ``flow_cycle_argv`` (one cycle in
  a process of its own, as a worker's flow-run process runs it).
* ``deploy``: the deployments on a real server with only the runs a test asks for, process
  workers, and waiting until they have registered.
* ``builders``: the planner's inputs (audio legs, screen recordings, stream parameters).

The Prefect test server itself is a session fixture of ``tests/conftest.py`` (``prefect_api``).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
