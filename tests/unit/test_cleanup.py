"""The tests' clean-up helper: every step runs, and the first failure is the one reported."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys

import pytest

from deployments.processes import start_process
from tests.support.cleanup import Cleanup, CleanupWarning


def fail(exc: Exception) -> None:
    raise exc


def test_the_blocks_own_failure_wins_and_every_step_still_runs():
    ran = []

    def broken():
        ran.append("broken")
        raise TimeoutError("worker did not stop")

    with pytest.raises(AssertionError, match="the real assertion") as info, Cleanup() as cleanup:
        cleanup.callback(ran.append, "first registered")
        cleanup.callback(broken)
        cleanup.callback(ran.append, "last registered")
        raise AssertionError("the real assertion")
    assert ran == ["last registered", "broken", "first registered"]
    assert info.value.__notes__ == ["clean-up also failed: TimeoutError: worker did not stop"]


def test_a_clean_up_failure_fails_a_block_that_succeeded():
    ran = []
    with pytest.raises(RuntimeError, match="one") as info, Cleanup() as cleanup:
        cleanup.callback(ran.append, "after both")
        cleanup.callback(fail, ValueError("two"))
        cleanup.callback(fail, RuntimeError("one"))
    assert ran == ["after both"]
    assert info.value.__notes__ == ["clean-up also failed: ValueError: two"]


def test_context_managers_see_the_blocks_exception():
    seen = []

    @contextlib.contextmanager
    def manager():
        try:
            yield "value"
        except KeyError as exc:
            seen.append(exc)
            raise

    with pytest.raises(KeyError), Cleanup() as cleanup:
        assert cleanup.enter_context(manager()) == "value"
        raise KeyError("boom")
    assert [str(e) for e in seen] == ["'boom'"]


def test_a_process_that_ignores_sigterm_is_killed_and_reported():
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
            "time.sleep(600)")
    cleanup = Cleanup()
    proc = cleanup.process(start_process([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True), grace=0.5)
    assert proc.stdout.readline() == "up\n"
    with pytest.warns(CleanupWarning, match="killed"):
        errors = cleanup.close()
    assert errors == [] and proc.returncode == -signal.SIGKILL
