"""grmux_core is plain Python: importing any of its modules must not import Prefect (or GX)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib, pkgutil, sys
import grmux_core
names = [m.name for m in pkgutil.walk_packages(grmux_core.__path__, "grmux_core.")]
for name in names:
    importlib.import_module(name)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"prefect", "great_expectations"})
print(len(names), heavy)
"""


def test_importing_grmux_core_imports_no_prefect():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, check=True)
    count, heavy = out.stdout.strip().split(" ", 1)
    assert int(count) >= 4  # the probe really walked the package
    assert heavy == "[]", f"grmux_core imported {heavy}"
