"""The exit codes of every grmux command (``grmux ...`` and ``muxer_process.py``).

Scripts and monitors that run grmux every few minutes decide what to do from the code alone:
``CALLS_FAILED`` means look at the failed calls, ``USAGE`` means fix the file or the command line,
``UNAVAILABLE`` means nothing was tried because a service is down: try again later, ``CANCELLED``
means someone stopped the run.
"""

from __future__ import annotations

import textwrap
from enum import IntEnum
from typing import Self

from grmux_core.errors import ConfigError, TransientError


class ExitCode(IntEnum):
    """What a command ended with; every command returns one of these, never a bare int.

    Each member carries its one-line ``meaning``, the text ``--help`` prints.
    """

    meaning: str

    def __new__(cls, value: int, meaning: str) -> Self:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    OK = 0, "every call muxed, skipped or pending"
    CALLS_FAILED = 1, ("some calls failed, each with its reason (mux/plan: the media failed), or the cycle "
                       "stopped on an error that is neither the configuration nor an unreachable service")
    USAGE = 2, "configuration or usage error: nothing ran"
    UNAVAILABLE = 3, "a service it needs (Prefect API, RWS) is unreachable: nothing ran, try again later"
    CANCELLED = 4, ("the run was cancelled (prefect flow-run cancel, SIGTERM/SIGINT): interrupted calls "
                    "registered nothing, the next run does them")


def exit_codes_help() -> str:
    """The ``--help`` epilog listing the codes, generated from :class:`ExitCode`."""
    lines = ["exit codes:"]
    for code in ExitCode:
        lines += textwrap.wrap(f"{code.value}  {code.name}: {code.meaning}", width=96, initial_indent="  ",
                               subsequent_indent="     ")
    return "\n".join(lines)


def unreachable(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, says a service could not be reached.

    grmux's own clients raise :class:`TransientError` once their retries are spent; the Prefect
    client wraps httpx's connection errors in a ``RuntimeError`` ("Failed to reach API"), so the
    chain is walked.
    """
    import httpx

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, TransientError | ConnectionError | TimeoutError | httpx.TransportError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def exit_code_for(error: BaseException) -> ExitCode:
    """The code of a command stopped by ``error`` (the one mapping from exceptions to codes)."""
    if isinstance(error, ConfigError):
        return ExitCode.USAGE
    if unreachable(error):
        return ExitCode.UNAVAILABLE
    return ExitCode.CALLS_FAILED
