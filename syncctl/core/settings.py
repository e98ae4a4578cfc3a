"""Settings from the environment and a `.env` file; the environment wins over the file.

The core reads and checks values; each connector declares which settings it has (`Setting`) and builds its
own typed settings from them with the helpers here.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from syncctl.core.errors import ConfigError


class Secret(str):
    """A string that never shows itself in repr, logs or tracebacks' locals."""

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    max_seconds: float = 120.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    retry_after_cap: float = 60.0


def read_environment(env_file: Path | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The merged configuration: `.env` values overlaid by the process environment."""
    environ = os.environ if environ is None else environ
    path = env_file if env_file is not None else Path(".env")
    values: dict[str, str] = {}
    if env_file is not None and path.is_dir():
        raise ConfigError(f"env file {path} is a folder, not a file")
    if env_file is not None and not path.is_file():
        raise ConfigError(f"env file {path} does not exist")
    if path.is_file():
        try:
            loaded = dotenv_values(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read env file {path}: {exc.__class__.__name__}") from None
        values.update({k: v for k, v in loaded.items() if v is not None})
    values.update(environ)
    return values


def env_file_warnings(env_file: Path | None) -> tuple[str, ...]:
    path = env_file if env_file is not None else Path(".env")
    try:
        mode = path.stat().st_mode
    except OSError:
        return ()
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (f"{path} is readable by group or others; it holds the API key (chmod 600 {path})",)
    return ()


def number(
    values: Mapping[str, str],
    name: str,
    default: float,
    *,
    minimum: float,
    integer: bool,
    maximum: float | None = None,
) -> float:
    """A numeric setting in ASCII digits ("٣" is not 3), finite, within its bounds."""
    raw = values.get(name, "").strip()
    if not raw:
        return default
    try:
        if not raw.isascii():
            raise ValueError(raw)
        number = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}, got {raw!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name} must be at most {maximum:g}, got {raw!r}")
    return number


@dataclass(frozen=True)
class Setting:
    """One setting a connector declares: its variable, whether a run needs it, its default, and whether it
    is a secret (never printed, scrubbed from every message)."""

    name: str
    help: str
    required: bool = False
    default: str | None = None
    secret: bool = False


@dataclass(frozen=True)
class CommonSettings:
    """What every source shares: the file, paging, guards, timeouts and retries."""

    db_path: Path = Path("syncctl.db")
    page_size: int = 1000
    max_requests_per_minute: int = 450
    max_delete_fraction: float = 0.2
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


MAX_TIMEOUT_S = 3600.0

COMMON_SETTINGS = (
    Setting("SYNCCTL_DB", "path of the SQLite file", default="syncctl.db"),
    Setting("SYNCCTL_PAGE_SIZE", "records per list request (at most the remote's limit)", default="1000"),
    Setting("SYNCCTL_MAX_REQUESTS_PER_MINUTE", "client-side rate limit, 0 = off", default="450"),
    Setting("SYNCCTL_MAX_DELETE_FRACTION", "largest share of a table one run may delete", default="0.2"),
    Setting("SYNCCTL_RETRY_ATTEMPTS", "attempts per request for retryable failures", default="5"),
    Setting("SYNCCTL_RETRY_MAX_SECONDS", "total time one request may spend retrying", default="120"),
    Setting("SYNCCTL_RETRY_BACKOFF", "first backoff delay in seconds", default="1"),
    Setting("SYNCCTL_RETRY_AFTER_CAP", "longest Retry-After honoured, in seconds", default="60"),
    Setting("SYNCCTL_CONNECT_TIMEOUT", "connect timeout in seconds", default="10"),
    Setting(
        "SYNCCTL_READ_TIMEOUT", "read timeout and overall deadline per request, in seconds", default="60"
    ),
    Setting(
        "SYNCCTL_KEEP_DELETED", "sources whose remotely deleted rows stay, marked _deleted_at (a,b or all)"
    ),
    Setting("SYNCCTL_METRICS_FILE", "write Prometheus metrics here after each sync (like --metrics-file)"),
    Setting("SENTRY_DSN", "report failed runs to Sentry (needs the sentry extra)", secret=True),
)


def db_path(values: Mapping[str, str]) -> Path:
    return Path(values.get("SYNCCTL_DB", "").strip() or "syncctl.db")


def load_common(
    values: Mapping[str, str], *, max_page_size: int = 10000, remote: str = "the remote's"
) -> CommonSettings:
    fraction = number(values, "SYNCCTL_MAX_DELETE_FRACTION", 0.2, minimum=0, integer=False)
    if fraction > 1:
        raise ConfigError(f"SYNCCTL_MAX_DELETE_FRACTION must lie between 0 and 1, got {fraction:g}")
    page_size = int(number(values, "SYNCCTL_PAGE_SIZE", 1000, minimum=1, integer=True))
    if page_size > max_page_size:
        raise ConfigError(
            f"SYNCCTL_PAGE_SIZE must be at most {max_page_size} ({remote} limit), got {page_size}"
        )
    retry = RetryPolicy(
        attempts=int(number(values, "SYNCCTL_RETRY_ATTEMPTS", 5, minimum=1, integer=True, maximum=100)),
        max_seconds=number(
            values, "SYNCCTL_RETRY_MAX_SECONDS", 120.0, minimum=0, integer=False, maximum=86400
        ),
        retry_after_cap=number(
            values, "SYNCCTL_RETRY_AFTER_CAP", 60.0, minimum=0, integer=False, maximum=86400
        ),
        backoff_initial=number(values, "SYNCCTL_RETRY_BACKOFF", 1.0, minimum=0, integer=False, maximum=3600),
    )
    return CommonSettings(
        db_path=db_path(values),
        page_size=page_size,
        max_requests_per_minute=int(
            number(values, "SYNCCTL_MAX_REQUESTS_PER_MINUTE", 450, minimum=0, integer=True, maximum=10**6)
        ),
        max_delete_fraction=fraction,
        connect_timeout=number(
            values, "SYNCCTL_CONNECT_TIMEOUT", 10.0, minimum=0.001, integer=False, maximum=MAX_TIMEOUT_S
        ),
        read_timeout=number(
            values, "SYNCCTL_READ_TIMEOUT", 60.0, minimum=0.001, integer=False, maximum=MAX_TIMEOUT_S
        ),
        retry=retry,
    )


def keep_deleted_sources(values: Mapping[str, str], known: list[str]) -> set[str]:
    """The sources named in SYNCCTL_KEEP_DELETED ("all" for every one); an unknown name is an error."""
    raw = values.get("SYNCCTL_KEEP_DELETED", "").strip()
    if not raw:
        return set()
    names = {part.strip() for part in raw.split(",") if part.strip()}
    if "all" in names:
        return set(known)
    unknown = sorted(names - set(known))
    if unknown:
        raise ConfigError(f"SYNCCTL_KEEP_DELETED names unknown source(s) {', '.join(unknown)}")
    return names


def missing_settings(declared: tuple[Setting, ...], values: Mapping[str, str]) -> list[str]:
    """The required settings that are not set: a source is configured when this is empty."""
    return [s.name for s in declared if s.required and not values.get(s.name, "").strip()]
