"""Intempus' settings: the three `INTEMPUS_API_*` variables plus the settings every source shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from syncctl.core.errors import ConfigError
from syncctl.core.settings import (
    COMMON_SETTINGS,
    RetryPolicy,
    Secret,
    Setting,
    env_file_warnings,
    load_common,
    read_environment,
)

SETTINGS = (
    Setting("INTEMPUS_API_URI", "base URI of the API, e.g. https://intempus.dk/web/v1", required=True),
    Setting("INTEMPUS_API_USER", "API user name (case-sensitive)", required=True),
    Setting("INTEMPUS_API_KEY", "API key", required=True, secret=True),
    *COMMON_SETTINGS,
)


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


def settings_from(
    values: Mapping[str, str], *, need_remote: bool = True, warnings: tuple[str, ...] = ()
) -> Settings:
    """Build settings; with `need_remote`, missing credentials are a configuration error."""
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
    common = load_common(values, max_page_size=10000, remote="Intempus'")
    return Settings(
        api_uri=api_uri,
        api_user=api_user,
        api_key=Secret(api_key),
        db_path=common.db_path,
        page_size=common.page_size,
        max_requests_per_minute=common.max_requests_per_minute,
        max_delete_fraction=common.max_delete_fraction,
        connect_timeout=common.connect_timeout,
        read_timeout=common.read_timeout,
        retry=common.retry,
        warnings=warnings,
    )


def load_settings(
    env_file: Path | None = None, environ: Mapping[str, str] | None = None, *, need_remote: bool = True
) -> Settings:
    values = read_environment(env_file, environ)
    return settings_from(values, need_remote=need_remote, warnings=env_file_warnings(env_file))
