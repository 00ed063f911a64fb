"""The one error hierarchy of grmux.

Every error grmux raises on purpose is a :class:`GrmuxError`. Each subclass says *who* has to act,
so a caller decides what to do from the class alone, and each message tells the operator what to
do next::

    GrmuxError                      anything grmux raises on purpose
    ├── ConfigError                 muxer.cfg / command line is wrong: fix the file, nothing ran
    ├── TransientError              worth retrying as it is (5xx, 429, timeouts, cut connections)
    ├── ServiceError                a GIR service answered, and retrying will not help
    │   ├── AuthError               401/403: wrong password or missing permission
    │   ├── NotFoundError           404 where the resource must exist
    │   ├── ProtocolError           an answer that breaks the wire contract (not JSON, statusCode≠0)
    │   │   └── ListingIncomplete   a list answer may be truncated and cannot be narrowed: the cycle fails
    │   ├── WriteBackRefused        RWS refused a write-back (4xx) and a read-back shows it lacks the media
    │   ├── StorageHostRefused      a media URL on a host that is not an allowed storage host
    │   ├── CertificateError        a screen-recording certificate in RWS is unreadable/expired: the cycle stops
    │   ├── StorageFull             507 Insufficient Storage: retried by the upload step only
    │   └── TransferTooSlow         a download below [advanced] min_transfer_rate_kbps: next cycle
    ├── RecordError                 one RWS record is malformed (names the call id and field)
    ├── CryptoError                 decryption failed
    │   ├── KeyUnavailable          RCS has no key for the envelope / not configured
    │   └── DecryptError            wrong key, bad padding, corrupt ciphertext
    ├── MediaError                  a media file cannot be probed, planned, muxed or verified
    │   └── VerificationError       the muxed output failed verification: never registered
    ├── ScratchError                temp_dir cannot hold the call (full, unwritable): names path and media
    └── Cancelled                   the run was cancelled (or the call outlived its deadline): not the media

Only :class:`TransientError` is retried by the Prefect tasks (``retry_condition_fn``); everything
else fails the call at once with its message recorded. Low-level exceptions (requests, boto3,
subprocess) are translated at the boundary with ``raise ... from`` so the original stays in the
traceback while the message stays readable.
"""

from __future__ import annotations


class GrmuxError(Exception):
    """Base of every error grmux raises on purpose."""


class ConfigError(GrmuxError):
    """The configuration is wrong. Carries every problem found, so one run shows them all.

    ``problems`` is a list of one-line messages, each naming section, option, value and what is
    allowed.
    """

    def __init__(self, problems: list[str] | str):
        self.problems: list[str] = [problems] if isinstance(problems, str) else list(problems)
        count = len(self.problems)
        head = "muxer.cfg has 1 problem" if count == 1 else f"muxer.cfg has {count} problems"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))


class TransientError(GrmuxError):
    """A failure that may go away if the same request is made again later (retried)."""


class ServiceError(GrmuxError):
    """A GIR service (RWS, RCS, storage) answered with something retrying will not change."""

    def __init__(self, message: str, *, status: int | None = None):
        self.status = status
        super().__init__(message)


class AuthError(ServiceError):
    """401/403: wrong credentials or a missing permission. Fix the account, then rerun."""


class NotFoundError(ServiceError):
    """404 for a resource that must exist (a media file, a call)."""


class ProtocolError(ServiceError):
    """An answer that breaks the wire contract: not JSON, missing fields, non-zero statusCode."""


class ListingIncomplete(ProtocolError):
    """A list answer holds ``limit`` records and no link to more, and grmux cannot narrow the query
    (no ``startTime`` to move, more than ``limit`` calls at one instant, answers not sorted). The
    cycle fails rather than process a first page as if it were all: calls would be lost silently."""


class WriteBackRefused(ServiceError):
    """RWS clearly refused a write-back (a 4xx) *and* a read-back shows the media is not registered.

    The only write-back failure after which the published muxed file may be removed: any other
    (an unclear answer, a read-back that cannot tell) keeps it, because RWS may have registered it.
    """


class StorageHostRefused(ServiceError):
    """A media URL points to a host outside ``[webdav] allowed_hosts``: no credentials sent."""


class StorageFull(ServiceError):
    """WebDAV answered 507 Insufficient Storage: the server must get space, the media is fine.

    Not a :class:`TransientError`: re-running the call would download and mux it again for
    nothing; the upload step alone retries it a few times with the muxed file kept.
    """


class TransferTooSlow(ServiceError):
    """A download slower than ``[advanced] min_transfer_rate_kbps`` on average (a trickle).

    Not a :class:`TransientError`: an immediate retry would hold a worker as long again on the
    same slow server; the call fails now and the next cycle tries it again.
    """


class CertificateError(ServiceError):
    """The site's screen-recording certificates (RWS settings) cannot be used: unreadable, not RSA,
    expired. The cycle stops: the site admin replaces the certificate; nothing is stored plain."""


class RecordError(GrmuxError):
    """One RWS record is malformed. The rest of the page stays usable."""

    def __init__(self, call_id: str | None, field: str, problem: str):
        self.call_id = call_id
        self.field = field
        super().__init__(f"recording {call_id or '<no id>'}: field {field!r} {problem}")


class CryptoError(GrmuxError):
    """Decrypting a media file failed."""


class KeyUnavailable(CryptoError):
    """RCS cannot give the key (no matching private key, not configured, no permission)."""


class DecryptError(CryptoError):
    """The key does not decrypt the file: wrong key, bad padding or corrupt ciphertext."""


class MediaError(GrmuxError):
    """A media file cannot be probed, planned, muxed or verified.

    ``stderr_tail`` keeps the last lines ffmpeg/ffprobe printed, for the operator.
    """

    def __init__(self, message: str, *, stderr_tail: str = "", command: list[str] | None = None):
        self.stderr_tail = stderr_tail
        self.command = command or []
        text = message
        if stderr_tail:
            text += "\n--- ffmpeg said (last lines) ---\n" + stderr_tail
        super().__init__(text)


class VerificationError(MediaError):
    """The muxed output failed verification; it is never uploaded or registered."""



class ScratchError(GrmuxError):
    """The call's scratch space under ``temp_dir`` failed (no space left, unwritable).

    Not the media's fault and not retried at once (the disk stays full): the message names the
    path relative to temp_dir and the media id, so the operator frees space rather than hunting
    for corrupt media. The next cycle tries the call again.
    """


class Cancelled(GrmuxError):
    """The work was stopped on request (a cancel, SIGTERM) or by a deadline; ``reason`` says which.

    Never a media failure: the call ends ``cancelled`` (or failed with the deadline reason), its
    lock released and its scratch removed, and the next run does it.
    """

    def __init__(self, reason: str):
        self.reason = reason or "cancelled"
        super().__init__(self.reason)
