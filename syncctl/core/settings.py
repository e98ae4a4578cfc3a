"""Settings from the environment and a `.env` file; the environment wins over the file."""

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


@dataclass(frozen=True)
class Settings:
    api_uri: str
    api_user: str
    api_key: Secret = field(repr=False)
    db_path: Path = Path("syncctl.db")
    page_size: int = 1000
    max_requests_per_minute: int = 450
    max_delete_fraction: float = 0.2
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    warnings: tuple[str, ...] = ()


def read_environment(env_file: Path | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The merged configuration: `.env` values overlaid by the process environment."""
    environ = os.environ if environ is None else environ
    path = env_file if env_file is not None else Path(".env")
    values: dict[str, str] = {}
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


def _number(values: Mapping[str, str], name: str, default: float, *, minimum: float, integer: bool) -> float:
    raw = values.get(name, "").strip()
    if not raw:
        return default
    try:
        number = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}, got {raw!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be a finite number, got {raw!r}")
    if number < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return number


def load_settings(
    env_file: Path | None = None, environ: Mapping[str, str] | None = None, *, need_remote: bool = True
) -> Settings:
    """Build settings; with `need_remote`, missing credentials are a configuration error."""
    values = read_environment(env_file, environ)
    api_uri = values.get("INTEMPUS_API_URI", "").strip().rstrip("/")
    api_user = values.get("INTEMPUS_API_USER", "").strip()
    api_key = values.get("INTEMPUS_API_KEY", "").strip()
    if need_remote:
        for name, value in (
            ("INTEMPUS_API_URI", api_uri),
            ("INTEMPUS_API_USER", api_user),
            ("INTEMPUS_API_KEY", api_key),
        ):
            if not value:
                raise ConfigError(f"{name} is not set (environment or .env file)")
        if not api_uri.startswith(("http://", "https://")):
            raise ConfigError(f"INTEMPUS_API_URI must start with http:// or https://, got {api_uri!r}")
    fraction = _number(values, "SYNCCTL_MAX_DELETE_FRACTION", 0.2, minimum=0, integer=False)
    if fraction > 1:
        raise ConfigError(f"SYNCCTL_MAX_DELETE_FRACTION must lie between 0 and 1, got {fraction:g}")
    page_size = int(_number(values, "SYNCCTL_PAGE_SIZE", 1000, minimum=1, integer=True))
    if page_size > 10000:
        raise ConfigError(f"SYNCCTL_PAGE_SIZE must be at most 10000 (Intempus' limit), got {page_size}")
    retry = RetryPolicy(
        attempts=int(_number(values, "SYNCCTL_RETRY_ATTEMPTS", 5, minimum=1, integer=True)),
        max_seconds=_number(values, "SYNCCTL_RETRY_MAX_SECONDS", 120.0, minimum=0, integer=False),
        retry_after_cap=_number(values, "SYNCCTL_RETRY_AFTER_CAP", 60.0, minimum=0, integer=False),
        backoff_initial=_number(values, "SYNCCTL_RETRY_BACKOFF", 1.0, minimum=0, integer=False),
    )
    return Settings(
        api_uri=api_uri,
        api_user=api_user,
        api_key=Secret(api_key),
        db_path=Path(values.get("SYNCCTL_DB", "").strip() or "syncctl.db"),
        page_size=page_size,
        max_requests_per_minute=int(
            _number(values, "SYNCCTL_MAX_REQUESTS_PER_MINUTE", 450, minimum=0, integer=True)
        ),
        max_delete_fraction=fraction,
        connect_timeout=_number(values, "SYNCCTL_CONNECT_TIMEOUT", 10.0, minimum=0.001, integer=False),
        read_timeout=_number(values, "SYNCCTL_READ_TIMEOUT", 60.0, minimum=0.001, integer=False),
        retry=retry,
        warnings=env_file_warnings(env_file),
    )
