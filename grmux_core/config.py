"""muxer.cfg → typed, validated settings.

Every legacy option of the Recording Muxer keeps its name, default and meaning (the reference
is ``docs/configuration.md``, generated from this module); grmux additions are marked in
:data:`OPTIONS`. The option table below is the single source of truth: the loader,
``grmux config check``, the reference and the test that checks the shipped ``muxer.cfg`` all read it.

Loading collects *every* problem before raising one :class:`ConfigError`, so an operator fixes a
file in one pass. Unknown options produce one warning naming them. Passwords are
:class:`SecretStr`, which never shows its value in ``repr``, ``str``, logs or JSON.
"""

from __future__ import annotations

import configparser
import os
import re
import string
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from grmux_core.errors import ConfigError

# --------------------------------------------------------------------------------------------
# Secrets


class SecretStr:
    """A password that never shows its value.

    ``repr``/``str``/``format`` give ``'********'`` (or ``''`` when empty, so an operator can see
    that a password is missing); ``json.dumps`` refuses it (it is not a str subclass), and
    :func:`public_dict` masks it. Call :meth:`get` only at the point of use (an auth header).
    """

    __slots__ = ("_value",)
    MASK = "********"

    def __init__(self, value: str = ""):
        self._value = value

    def get(self) -> str:
        """The real value, for the one place that sends it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"SecretStr({self.MASK if self._value else ''!r})"

    def __str__(self) -> str:
        return self.MASK if self._value else ""

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("SecretStr", self._value))

    def __reduce__(self):  # pickling would carry the value into caches and databases
        raise TypeError("SecretStr cannot be pickled: pass the config path, not the settings")


# --------------------------------------------------------------------------------------------
# Value parsers: each takes the raw string and returns a value or raises ValueError(allowed).


class _Invalid(ValueError):
    """Raised by a parser; its text says what is allowed."""


def _int(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        allowed = "an integer"
        if minimum is not None and maximum is not None:
            allowed = f"an integer from {minimum} to {maximum}"
        elif minimum is not None:
            allowed = f"an integer ≥ {minimum}"
        elif maximum is not None:
            allowed = f"an integer ≤ {maximum}"
        try:
            value = int(raw.strip())
        except ValueError:
            raise _Invalid(allowed) from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise _Invalid(allowed)
        return value

    return parse


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _percent(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise _Invalid("a percentage from 0 to 100") from None
    if not 0 <= value <= 100:
        raise _Invalid("a percentage from 0 to 100")
    return value


def _flag(raw: str) -> bool:
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Invalid("0 or 1 (also true/false, yes/no, on/off)")


def _text(raw: str) -> str:
    return raw.strip()


def _secret(raw: str) -> SecretStr:
    return SecretStr(raw.strip())


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise _Invalid("one of " + ", ".join(choices))
        return value

    return parse


def _http_uri(raw: str) -> str:
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Invalid("an http:// or https:// URI with a host, e.g. https://rws.example:8090/")
    return value if value.endswith("/") else value + "/"


def _optional_http_uri(raw: str) -> str:
    return _http_uri(raw) if raw.strip() else ""


def _canary_location(raw: str) -> str:
    value = raw.strip()
    if not value:
        return ""
    if value.startswith("s3://"):
        if not value[5:].split("/", 1)[0]:
            raise _Invalid("s3://bucket/prefix/ (a bucket is needed)")
        return value if value.endswith("/") else value + "/"
    return _http_uri(value) if value.endswith("/") else _http_uri(value + "/")


def _positive_hours(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise _Invalid("a number of hours > 0") from None
    if not value > 0:
        raise _Invalid("a number of hours > 0")
    return value


def _hex_id(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[0-9a-fA-F][0-9a-fA-F-]*", value):
        raise _Invalid("a hexadecimal contact-centre id (digits 0-9, a-f, dashes)")
    return value


def _host_list(raw: str) -> tuple[str, ...]:
    hosts = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
    for host in hosts:
        if not re.fullmatch(r"(\[[0-9a-f:]+\]|[a-z0-9.-]+):\d{1,5}", host):
            raise _Invalid("a comma-separated list of host:port, e.g. dav1.example:8080,dav2.example:8080")
    return hosts


def _existing_file_or_empty(raw: str) -> str:
    value = raw.strip()
    if value and not Path(value).is_file():
        raise _Invalid("empty (system CAs) or the path of an existing CA bundle file")
    return value


def _existing_dir_or(default: Callable[[], str]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip() or default()
        if not Path(value).is_dir():
            raise _Invalid("the path of an existing directory")
        return value

    return parse


def _minutes_or_zero(raw: str) -> int:
    return _int(minimum=0)(raw) if raw.strip() else 0


def _muxer_id(raw: str) -> int:
    return _int(minimum=-1)(raw) if raw.strip() else -1


_OUTPUT_FIELDS = {"date", "call_id", "n"}


def _output_template(raw: str) -> str:
    value = raw.strip()
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError:
        raise _Invalid("a relative path template using {date}, {call_id} and {n}") from None
    if not value or value.startswith("/") or ".." in Path(value).parts or not names <= _OUTPUT_FIELDS:
        raise _Invalid("a relative path template using only {date}, {call_id} and {n}")
    if "call_id" not in names or "n" not in names:
        raise _Invalid("a template that contains {call_id} and {n}, so every muxed file has its own name")
    return value


def _extra_query(raw: str) -> str:
    return raw.strip().removeprefix("?")


# --------------------------------------------------------------------------------------------
# The option table


@dataclass(frozen=True)
class Option:
    """One muxer.cfg option: where it lives, how it parses, and what it means."""

    section: str
    name: str
    default: str | None  # None = required
    parse: Callable[[str], Any]
    doc: str
    grmux_addition: bool = False
    attr: str | None = None  # attribute name when it differs from the option name

    @property
    def key(self) -> str:
        return self.attr or self.name


def _tls(section: str) -> list[Option]:
    return [
        Option(section, "verify", "1", _flag, "verify the server's TLS certificate", True),
        Option(section, "ca_bundle", "", _existing_file_or_empty, "CA bundle file to trust (empty = system CAs)", True),
    ]


OPTIONS: tuple[Option, ...] = (
    Option("htcc", "base_uri", None, _http_uri, "RWS base URI, https://host:port/"),
    Option("htcc", "contact_center_id", None, _hex_id, "contact centre id (hex)"),
    Option("htcc", "username", "ops", _text, "RWS account"),
    Option("htcc", "password", "ops", _secret, "RWS password (env HTCC_PASSWORD wins)"),
    Option("htcc", "list_time_format", "epoch_ms", _choice("epoch_ms", "iso"),
           "how startTime/endTime travel in list queries: epoch_ms or iso (2026-11-27T16:58:22.000+0000)", True),
    *_tls("htcc"),
    Option("rcs", "base_uri", "", _optional_http_uri,
           "RCS base URI; empty = encrypted recordings fail with a clear reason"),
    Option("rcs", "username", "", _text, "RCS account with the media-decrypt permission"),
    Option("rcs", "password", "", _secret, "RCS password (env RCS_PASSWORD wins)"),
    *_tls("rcs"),
    Option("webdav", "username", "", _text, "storage account, the same for every WebDAV host of the region"),
    Option("webdav", "password", "", _secret, "storage password (env WEBDAV_PASSWORD wins)"),
    Option("webdav", "allowed_hosts", "", _host_list,
           "comma-separated host:port list; media elsewhere is refused (empty = any)", True),
    *_tls("webdav"),
    Option("s3", "endpoint_url", "", _optional_http_uri, "S3-compatible endpoint (empty = AWS)", True),
    Option("s3", "region", "", _text, "S3 region", True),
    Option("s3", "access_key_id", "", _text, "S3 access key id (empty = standard AWS chain)", True),
    Option("s3", "secret_access_key", "", _secret, "S3 secret key (empty = standard AWS chain)", True),
    *_tls("s3"),
    Option("processing", "ffmpeg", "ffmpeg", _text, "ffmpeg executable"),
    Option("processing", "ffprobe", "ffprobe", _text, "ffprobe executable"),
    Option("processing", "openssl", "", _text, "accepted for compatibility and ignored (decryption uses cryptography)"),
    Option("processing", "temp_dir", "", _existing_dir_or(tempfile.gettempdir),
           "scratch space; each instance needs its own (empty = system temp)"),
    Option("processing", "window_past", "720", _int(minimum=1), "minutes: the window starts now - window_past"),
    Option("processing", "window_past_older_than", "0", _minutes_or_zero,
           "minutes: the window ends now - window_past_older_than (empty = 0)"),
    Option("processing", "min_poll_interval", "5", _int(minimum=1), "minutes between the starts of two cycles"),
    Option("processing", "muxer_id", "-1", _muxer_id, "shard id; -1 or empty = no sharding"),
    Option("processing", "total_muxers", "1", _int(minimum=1), "number of primary instances = max(muxer_id)+1"),
    Option("processing", "muxer_type", "primary", _choice("primary", "backup"),
           "primary or backup (ignored without sharding)"),
    Option("processing", "split_window_enabled", "0", _flag, "1 = split the window into sub-intervals"),
    Option("processing", "max_interval_minutes", "720", _int(minimum=1),
           "sub-interval length; valid 720 ≤ x ≤ window/2"),
    Option("processing", "interval_buffer_minutes", "240", _int(minimum=1),
           "≥ 1 and < max_interval_minutes; the longest expected call"),
    Option("processing", "batch_read_screen_recording_metadata", "1", _int(),
           "1 = bulk read; any other integer = one request per call"),
    Option("processing", "query_slice_size", "100", _int(minimum=1, maximum=100), "ids per bulk request"),
    Option("processing", "delete_original", "0", _flag,
           "1 = delete original screen media after a verified, registered mux"),
    Option("processing", "encrypt_output", "auto", _choice("auto", "always", "never"),
           "auto = store the muxed file encrypted (<name>.mp4.bin) when RWS lists screen-recording certificates; "
           "always = fail the call when none is listed; never = plain MP4 (one warning per run when the site "
           "lists certificates)"),
    Option("processing", "output_path", "muxed/{date}/{call_id}_muxed_{n}.mp4", _output_template,
           "where the muxed file goes, relative to the first screen file's storage", True),
    Option("advanced", "worker_threads", "4", _int(minimum=1, maximum=64), "calls processed in parallel"),
    Option("advanced", "pagination", "100", _int(minimum=1, maximum=100), "limit of each list request"),
    Option("advanced", "max_overlap_allowed", "500", _int(minimum=0), "ms of screen overlap kept whole"),
    Option("advanced", "video_padding_slice_length_ms", "5000", _int(minimum=40), "ms per padding slice"),
    Option("advanced", "drift_correct_from_percent", "0.1", _percent,
           "% a file's length may differ from its metadata span before a screen is re-timed to it", True),
    Option("advanced", "drift_refuse_above_percent", "2", _percent,
           "% beyond which the call fails (clock drift or wrong metadata); audio is never re-timed", True),
    Option("advanced", "min_transfer_rate_kbps", "8", _int(minimum=0),
           "KiB/s: a media download slower than this on average (after 10 s) fails the call, retried "
           "later; 0 = no minimum. Also sets each call's deadline (media size / rate + 2 x call length "
           "+ 5 min)", True),
    Option("advanced", "cycle_deadline_polls", "3", _int(minimum=0),
           "calls not started within this many min_poll_interval of the cycle's start are left pending "
           "(deferred) for the next cycle; 0 = no cycle deadline", True),
    Option("advanced", "call_recording_extra_query_string", "", _extra_query,
           "extra list parameters; empty = userData=SRSScreenRecordingStateStarted on RWS ≥ 8.5.201.14; "
           "disable = none"),
    Option("advanced", "call_recording_query_string", "", _extra_query,
           "non-empty = backfill mode: list with exactly this query, process, exit"),
    Option("advanced", "canary_location", "", _canary_location,
           "where the sync canary writes its synthetic call: a WebDAV collection URL or s3://bucket/prefix/ "
           "(empty = the canary fails at 'configuration')", True),
    Option("advanced", "pending_alert_hours", "6", _positive_hours,
           "hours: a pending call older than this raises the pending-age alert", True),
    Option("logfile", "logfile_path", "", _existing_dir_or(os.getcwd),
           "existing folder for the log file (empty = working directory)"),
)

SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(o.section for o in OPTIONS))

# Environment variables that override passwords from the file (they win).
ENV_SECRETS: dict[str, tuple[str, str]] = {
    "HTCC_PASSWORD": ("htcc", "password"),
    "RCS_PASSWORD": ("rcs", "password"),
    "WEBDAV_PASSWORD": ("webdav", "password"),
}

# Command-line flags that override the file (legacy muxer_process.py flags).
CLI_OVERRIDES: dict[str, tuple[str, str]] = {
    "muxer_type": ("processing", "muxer_type"),
    "muxer_id": ("processing", "muxer_id"),
    "total_muxers": ("processing", "total_muxers"),
}

# --------------------------------------------------------------------------------------------
# Typed settings


@dataclass(frozen=True)
class TlsSettings:
    verify: bool = True
    ca_bundle: str = ""

    @property
    def requests_verify(self) -> bool | str:
        """The value for requests' ``verify=``: the CA file, True, or False."""
        if not self.verify:
            return False
        return self.ca_bundle or True


@dataclass(frozen=True)
class HtccSettings(TlsSettings):
    base_uri: str = ""
    contact_center_id: str = ""
    username: str = "ops"
    password: SecretStr = field(default_factory=lambda: SecretStr("ops"))
    list_time_format: str = "epoch_ms"


@dataclass(frozen=True)
class RcsSettings(TlsSettings):
    base_uri: str = ""
    username: str = ""
    password: SecretStr = field(default_factory=SecretStr)


@dataclass(frozen=True)
class WebdavSettings(TlsSettings):
    username: str = ""
    password: SecretStr = field(default_factory=SecretStr)
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class S3Settings(TlsSettings):
    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: SecretStr = field(default_factory=SecretStr)


@dataclass(frozen=True)
class ProcessingSettings:
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    openssl: str = ""
    temp_dir: str = ""
    window_past: int = 720
    window_past_older_than: int = 0
    min_poll_interval: int = 5
    muxer_id: int = -1
    total_muxers: int = 1
    muxer_type: str = "primary"
    split_window_enabled: bool = False
    max_interval_minutes: int = 720
    interval_buffer_minutes: int = 240
    batch_read_screen_recording_metadata: int = 1
    query_slice_size: int = 100
    delete_original: bool = False
    encrypt_output: str = "auto"
    output_path: str = "muxed/{date}/{call_id}_muxed_{n}.mp4"

    @property
    def bulk_read(self) -> bool:
        return self.batch_read_screen_recording_metadata == 1

    @property
    def window_minutes(self) -> int:
        return self.window_past - self.window_past_older_than


@dataclass(frozen=True)
class AdvancedSettings:
    worker_threads: int = 4
    pagination: int = 100
    max_overlap_allowed: int = 500
    video_padding_slice_length_ms: int = 5000
    drift_correct_from_percent: float = 0.1
    drift_refuse_above_percent: float = 2.0
    min_transfer_rate_kbps: int = 8
    cycle_deadline_polls: int = 3
    call_recording_extra_query_string: str = ""
    call_recording_query_string: str = ""
    canary_location: str = ""
    pending_alert_hours: float = 6.0

    @property
    def backfill(self) -> bool:
        return bool(self.call_recording_query_string)


@dataclass(frozen=True)
class LogfileSettings:
    logfile_path: str = ""


@dataclass(frozen=True)
class Settings:
    """The whole effective configuration. ``warnings`` are non-fatal findings for the log."""

    htcc: HtccSettings
    rcs: RcsSettings
    webdav: WebdavSettings
    s3: S3Settings
    processing: ProcessingSettings
    advanced: AdvancedSettings
    logfile: LogfileSettings
    source: str = ""
    warnings: tuple[str, ...] = ()


_SECTION_TYPES: dict[str, type] = {
    "htcc": HtccSettings,
    "rcs": RcsSettings,
    "webdav": WebdavSettings,
    "s3": S3Settings,
    "processing": ProcessingSettings,
    "advanced": AdvancedSettings,
    "logfile": LogfileSettings,
}

# --------------------------------------------------------------------------------------------
# Loading


def _problem(option: Option, raw: str, allowed: str) -> str:
    shown = "<hidden>" if option.parse is _secret else repr(raw)
    return f"[{option.section}] {option.name} = {shown} is not valid: allowed is {allowed}"


def _cross_checks(values: dict[str, dict[str, Any]]) -> list[str]:
    """Rules that involve more than one option. Only run on values that parsed."""
    problems: list[str] = []
    proc = values["processing"]
    past, older = proc.get("window_past"), proc.get("window_past_older_than")
    if isinstance(past, int) and isinstance(older, int) and older >= past:
        problems.append(
            f"[processing] window_past_older_than = {older} is not valid: allowed is a value below "
            f"window_past ({past}), so the window [now - window_past, now - window_past_older_than] is not empty"
        )
    mid, total = proc.get("muxer_id"), proc.get("total_muxers")
    if isinstance(mid, int) and isinstance(total, int) and mid >= 0 and mid >= total:
        problems.append(
            f"[processing] muxer_id = {mid} is not valid: allowed is -1 (no sharding) or 0 to "
            f"total_muxers - 1 = {total - 1} (total_muxers = max(muxer_id) + 1)"
        )
    if proc.get("split_window_enabled") is True and isinstance(past, int) and isinstance(older, int) and older < past:
        from grmux_core.windows import split_problems  # local: windows imports nothing from here

        problems.extend(
            split_problems(past - older, proc.get("max_interval_minutes"), proc.get("interval_buffer_minutes"))
        )
    return problems


def _read_ini(path: str | os.PathLike[str] | None, text: str | None) -> tuple[configparser.ConfigParser, str]:
    """The parsed INI and the name to show for it; a missing, unreadable or malformed file is a ConfigError."""
    parser = configparser.ConfigParser(interpolation=None, strict=False, default_section="__no_defaults__")
    parser.optionxform = str.lower  # type: ignore[assignment,method-assign]
    source = str(path) if text is None and path is not None else "<text>"
    try:
        if text is not None:
            parser.read_string(text, source="<text>")
        elif path is not None:
            _read_file(parser, path, source)
    except configparser.Error as exc:
        raise ConfigError(f"{source} is not a valid INI file: {exc}".replace("\n", " ")) from None
    return parser, source


def _read_file(parser: configparser.ConfigParser, path: str | os.PathLike[str], source: str) -> None:
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        raise ConfigError(f"the configuration file {source} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"the configuration file {source} cannot be read: {exc.strerror}") from None


def _file_values(parser: configparser.ConfigParser) -> dict[tuple[str, str], str]:
    """Every option of the file as ``(section, name) → raw text``, section names case-folded."""
    return {(section.lower(), name): value for section in parser.sections() for name, value in parser.items(section)}


def _env_values(environ: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """The passwords set (non-empty) in the environment, which win over the file."""
    return {key: environ[env_name] for env_name, key in ENV_SECRETS.items() if environ.get(env_name)}


def _override_key(flag: str) -> tuple[str, str]:
    """A CLI flag name or ``section.option`` → the option it sets."""
    if flag in CLI_OVERRIDES:
        return CLI_OVERRIDES[flag]
    if "." in flag:
        section, _, name = flag.partition(".")
        return (section, name)
    raise ConfigError(f"unknown override {flag!r}: use a command-line flag name or 'section.option'")


def _override_values(overrides: Mapping[str, Any] | None) -> dict[tuple[str, str], str]:
    """Overrides as raw text, so they go through the same parsers as the file (booleans as 1/0)."""
    return {_override_key(flag): str(int(value)) if isinstance(value, bool) else str(value)
            for flag, value in (overrides or {}).items() if value is not None}


def _warnings(raw: Mapping[tuple[str, str], str]) -> list[str]:
    """Non-fatal findings: options grmux does not know (typos), legacy options it ignores."""
    known = {(o.section, o.name) for o in OPTIONS}
    unknown = sorted(k for k in raw if k not in known)
    warnings: list[str] = []
    if unknown:
        warnings.append(
            "unknown options ignored (check the spelling): "
            + ", ".join(f"[{section}] {name}" for section, name in unknown)
        )
    if raw.get(("processing", "openssl"), "").strip():
        warnings.append("[processing] openssl is ignored: grmux decrypts with the cryptography package")
    return warnings


def _parse_options(raw: Mapping[tuple[str, str], str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each option's typed value (its default when absent), and every problem: missing ones first."""
    problems: list[str] = []
    missing: list[str] = []
    values: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for option in OPTIONS:
        value = raw.get((option.section, option.name))
        if value is None or (option.default is None and not value.strip()):
            if option.default is None:
                missing.append(f"[{option.section}] {option.name}")
                continue
            value = option.default
        try:
            values[option.section][option.key] = option.parse(value)
        except _Invalid as exc:
            problems.append(_problem(option, value, str(exc)))
    if missing:
        problems.insert(0, "missing required options: " + ", ".join(missing))
    return values, problems


def _build(values: dict[str, dict[str, Any]], source: str, warnings: list[str]) -> Settings:
    sections = {name: _SECTION_TYPES[name](**values[name]) for name in SECTIONS}
    return Settings(**sections, source=source, warnings=tuple(warnings))


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    text: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read muxer.cfg (from ``path`` or ``text``) into :class:`Settings`.

    ``environ`` (default ``os.environ``) supplies ``HTCC_PASSWORD``/``RCS_PASSWORD``/
    ``WEBDAV_PASSWORD``, which win over the file. ``overrides`` maps keys of
    :data:`CLI_OVERRIDES` (``muxer_type``, ``muxer_id``, ``total_muxers``) or ``"section.option"``
    (flow parameters) to values that win over the file and go through the same validation;
    ``None`` values are ignored. Raises :class:`ConfigError` listing every problem found.
    """
    parser, source = _read_ini(path, text)
    raw = _file_values(parser)
    raw.update(_env_values(os.environ if environ is None else environ))
    raw.update(_override_values(overrides))
    values, problems = _parse_options(raw)
    problems.extend(_cross_checks(values))
    if problems:
        raise ConfigError(problems)
    return _build(values, source, _warnings(raw))


def public_dict(settings: Settings) -> dict[str, dict[str, Any]]:
    """The effective configuration as plain data with every secret masked (for printing/artifacts).

    Options come in the order of :data:`OPTIONS`, which is the order of the shipped muxer.cfg.
    """
    out: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for option in OPTIONS:
        value = getattr(getattr(settings, option.section), option.key)
        if isinstance(value, SecretStr):
            value = str(value)
        elif isinstance(value, tuple):
            value = ",".join(value)
        out[option.section][option.name] = value
    return out


def reference_markdown() -> str:
    """The option table of the docs, generated from :data:`OPTIONS` (``grmux config reference``)."""
    lines = ["| section | option | default | meaning |", "|---|---|---|---|"]
    for option in OPTIONS:
        default = "(required)" if option.default is None else (f"`{option.default}`" if option.default else "empty")
        doc = option.doc + (" *(grmux addition)*" if option.grmux_addition else "")
        lines.append(f"| {option.section} | {option.name} | {default} | {doc} |")
    return "\n".join(lines)
