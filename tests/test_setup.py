"""The set-up is idempotent: once `make setup` has run, nothing is left to install."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_second_setup_installs_nothing():
    # `make -q` exits 0 only when the target is up to date, i.e. a second run would do nothing.
    stamp = subprocess.run(["make", "-q", ".venv/.installed"], cwd=ROOT, check=False)
    assert stamp.returncode == 0, "the venv stamp is out of date: `make test` would reinstall"
    dry = subprocess.run(["make", "-n", "setup"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "pip install" not in dry.stdout
    system = subprocess.run([str(ROOT / "scripts/ensure-system-deps.sh")], capture_output=True, text=True,
                            check=False)
    assert system.returncode == 0 and system.stdout == ""  # nothing installed, nothing printed


def test_ci_runs_only_make_test():
    script = (ROOT / ".ci/run").read_text()
    commands = [line for line in script.splitlines() if line.strip() and not line.startswith("#")]
    assert commands[-1].strip() == "make test"
