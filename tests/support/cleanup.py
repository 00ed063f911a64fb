"""Clean-up that never hides the first failure.

``try: ... finally: worker.terminate(); worker.wait(timeout=30)`` reports the clean-up's
``TimeoutExpired`` instead of the assertion that failed before it, and ``contextlib.ExitStack``
does the same when a callback raises. :class:`Cleanup` runs every step, last in first out, each
whatever the others did; when the block failed its exception is the one that propagates (the
clean-up failures are added to it as notes), and only a block that succeeded fails on its
clean-up. Processes are stopped with :func:`deployments.processes.stop_process` (SIGTERM, grace,
SIGKILL of the group), which never raises; one that had to be killed is reported as a
:class:`CleanupWarning`.
"""

from __future__ import annotations

import subprocess
import traceback
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Self, TypeVar

from deployments.processes import GRACE_S, stop_process

T = TypeVar("T")


class CleanupWarning(UserWarning):
    """A clean-up step had to force its way (a process killed after ignoring SIGTERM)."""


class Cleanup:
    """A stack of clean-up steps; use it as ``with Cleanup() as cleanup:`` or the ``cleanup`` fixture."""

    def __init__(self) -> None:
        self._steps: list[Callable[[BaseException | None], Any]] = []

    def callback(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        self._steps.append(lambda _exc: fn(*args, **kwargs))

    def enter_context(self, manager: AbstractContextManager[T]) -> T:
        value = type(manager).__enter__(manager)
        exit_ = type(manager).__exit__

        def leave(exc: BaseException | None) -> None:
            exit_(manager, type(exc) if exc else None, exc, exc.__traceback__ if exc else None)

        self._steps.append(leave)
        return value

    def process(self, proc: subprocess.Popen, *, grace: float = GRACE_S, exit_wait: float = 0.0) -> subprocess.Popen:
        """Stop ``proc`` (and its process group) at clean-up; see :func:`deployments.processes.stop_process`."""

        def stop(_exc: BaseException | None) -> None:
            stopped = stop_process(proc, grace=grace, exit_wait=exit_wait)
            if stopped.escalated:
                warnings.warn(f"{proc.args!r}: {stopped.how} after ignoring SIGTERM for {grace:.0f} s",
                              CleanupWarning, stacklevel=1)

        self._steps.append(stop)
        return proc

    def close(self, exc: BaseException | None = None) -> list[Exception]:
        """Run every step (newest first); return the errors they raised."""
        errors: list[Exception] = []
        while self._steps:
            step = self._steps.pop()
            try:
                step(exc)
            except Exception as error:  # noqa: BLE001 - collected, reported below
                errors.append(error)
        return errors

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        errors = self.close(exc)
        if not errors:
            return False
        notes = [f"clean-up also failed: {''.join(traceback.format_exception_only(e)).strip()}" for e in errors]
        if exc is not None:  # the block's own failure wins
            for note in notes:
                exc.add_note(note)
            return False
        first = errors[0]
        for note in notes[1:]:
            first.add_note(note)
        raise first
