# grmux — the two commands a newcomer needs are `make demo` and `make test`.
# Each sets itself up (system packages, ./.venv with pinned dependencies) and does nothing twice:
# the venv is rebuilt only when pyproject.toml or constraints.txt change.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup system-deps test test-fast demo ui-check lint clean

setup: system-deps $(STAMP)

# Under CI the playback check (tests/integration/test_chromium_playback.py) must run: install chromium too.
system-deps:
	@scripts/ensure-system-deps.sh $(if $(CI),chromium)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

demo: setup
	$(PY) -m deployments.demo $(DEMO_ARGS)

# Runs the demo, then opens the flow-run page in headless Chromium and saves screenshots.
ui-check: setup
	@scripts/ensure-system-deps.sh chromium
	$(PY) -m deployments.demo --state var/ui-check --fresh --keep-running no --screenshot docs/ui/flow-run.png

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
