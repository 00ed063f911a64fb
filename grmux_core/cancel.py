"""Stopping work on request: the :class:`StopToken` every long step watches.

Why a token and not exceptions from outside: a cancel (Prefect's Cancelling state, SIGTERM of the
legacy process) arrives on another thread, while the work it must stop is an ffmpeg process, a
download loop or a queue of calls not yet started. Each of those registers a callback on (or polls)
the run's token, so a cancel kills ffmpeg at once, ends a transfer at its next chunk and starts no
further call; each interrupted call then ends ``cancelled`` with its scratch removed.

The token of the current run travels in a :class:`~contextvars.ContextVar`: Prefect copies the
context into its task threads, and :func:`current` returns a token that is never set when no run
installed one (the command-line media tools, the benchmarks).

A per-call deadline is a child token that a timer sets: the same machinery stops a call that
outlived its deadline, with a reason that says so.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from grmux_core.errors import Cancelled


class StopToken:
    """A one-way switch with a reason; callbacks run (once) when it is set."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[str], None]] = {}
        self._next = 0
        self.reason = ""

    def set(self, reason: str) -> bool:
        """Stop, for ``reason``. Returns False when the token was already set (first reason kept)."""
        with self._lock:
            if self._event.is_set():
                return False
            self.reason = reason
            self._event.set()
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            callback(reason)
        return True

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep up to ``timeout`` s, waking early (True) when the token is set."""
        return self._event.wait(timeout)

    def raise_if_stopped(self) -> None:
        """Raise :class:`Cancelled` with the token's reason when it is set."""
        if self._event.is_set():
            raise Cancelled(self.reason)

    def on_stop(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(reason)`` when the token is set (at once if it already is).

        Returns the function that unregisters it (call it when the watched work ended).
        """
        with self._lock:
            if not self._event.is_set():
                key = self._next
                self._next += 1
                self._callbacks[key] = callback
                return lambda: self._callbacks.pop(key, None)
        callback(self.reason)
        return lambda: None

    def child(self) -> StopToken:
        """A token set whenever this one is (and also settable alone: a call's deadline)."""
        token = StopToken()
        unregister = self.on_stop(token.set)
        token.on_stop(lambda _reason: unregister())
        return token


_NEVER = StopToken()
_PROCESS = StopToken()


def process_token() -> StopToken:
    """The token of the whole process, set by SIGTERM/SIGINT (``grmux_cli.signals``): every run
    of the process stops, and the legacy loop starts no further cycle."""
    return _PROCESS
_current: ContextVar[StopToken] = ContextVar("grmux_stop_token", default=_NEVER)


def current() -> StopToken:
    """The token of the run (or call) this thread works for; a never-set one outside a run."""
    return _current.get()


@contextlib.contextmanager
def stopping(token: StopToken) -> Iterator[StopToken]:
    """Make ``token`` the :func:`current` one inside the block (and in tasks submitted from it)."""
    reset = _current.set(token)
    try:
        yield token
    finally:
        _current.reset(reset)


@contextlib.contextmanager
def deadline(token: StopToken, seconds: float | None, what: str) -> Iterator[StopToken]:
    """A child of ``token`` that is also set after ``seconds`` (None: never), with a reason naming
    ``what``; it is the :func:`current` token inside the block."""
    child = token.child()
    timer = None
    if seconds is not None:
        timer = threading.Timer(seconds, child.set, args=(f"{what} exceeded its deadline of {seconds:.0f} s",))
        timer.daemon = True
        timer.start()
    try:
        with stopping(child):
            yield child
    finally:
        if timer is not None:
            timer.cancel()
        child.set("")  # unhooks it from its parent (nobody watches it any more)


class TransferRate:
    """The minimum-rate rule of one transfer: after ``grace_s``, fewer than ``min_bytes_per_s`` on
    average fails it (a trickling server never trips a read timeout: each byte resets it).

    Pure: :meth:`check` gets the counts and the clock, so the rule is unit-tested without a server.
    """

    def __init__(self, min_bytes_per_s: float, *, grace_s: float = 10.0, started: float = 0.0):
        self.min_bytes_per_s = min_bytes_per_s
        self.grace_s = grace_s
        self.started = started

    def too_slow(self, received: int, expected: int | None, now: float) -> str:
        """A reason when the transfer is too slow at ``now``, else ""."""
        elapsed = now - self.started
        if self.min_bytes_per_s <= 0 or elapsed < self.grace_s:
            return ""
        rate = received / elapsed
        if rate >= self.min_bytes_per_s:
            return ""
        of = f" of {expected}" if expected is not None else ""
        return (f"the transfer is too slow: {received}{of} bytes received in {elapsed:.0f} s "
                f"({rate / 1024:.2f} KiB/s, below the minimum {self.min_bytes_per_s / 1024:g} KiB/s "
                "of [advanced] min_transfer_rate_kbps); the next cycle tries the call again")


@contextlib.contextmanager
def stop_on_signals(token: StopToken | None = None) -> Iterator[StopToken]:
    """SIGTERM/SIGINT set ``token`` (default: :func:`process_token`) inside the block; a second
    signal gets the handler that was there before (Python's KeyboardInterrupt, Prefect's SIGTERM
    bridge, or the default: the process ends). A no-op outside the main thread.

    Installed by the commands *and* inside the flow: Prefect's engine installs its own SIGTERM
    handler for the flow run (it would end the run Crashed, ffmpeg killed mid-file).
    """
    import signal

    token = token or process_token()
    if threading.current_thread() is not threading.main_thread():
        yield token
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, _frame: object) -> None:
        signal.signal(signum, previous[signum])  # the second one does what it did before
        token.set(f"stopped by {signal.Signals(signum).name}")

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield token
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
