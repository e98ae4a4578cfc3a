"""The grid's settings: the three `GRID_API_*` variables plus the settings every source shares.

One difference from the shared defaults: a grid listing asks for 10,000 records a page unless
`SYNCCTL_PAGE_SIZE` says otherwise. A measurement is about 120 bytes of JSON, so 10,000 of them weigh what
1,000 Intempus cases do, and 3 million measurements take 300 requests instead of 3,000 (which the default
rate limit of 450 a minute would stretch to over six minutes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from syncctl.core.errors import ConfigError
from syncctl.core.settings import COMMON_SETTINGS, RetryPolicy, Secret, Setting, load_common

MAX_PAGE_SIZE = 10_000  # the API's own limit: a larger `limit` is a 422
DEFAULT_PAGE_SIZE = 10_000

SETTINGS = (
    Setting("GRID_API_URI", "base URI of the grid data API, e.g. https://grid.example/api", required=True),
    Setting("GRID_API_USER", "user name of the grid account", required=True),
    Setting("GRID_API_PASSWORD", "password of the grid account", required=True, secret=True),
    *(
        replace(s, help="records per list request for the grid (at most 10000)", default="10000")
        if s.name == "SYNCCTL_PAGE_SIZE"
        else s
        for s in COMMON_SETTINGS
    ),
)


@dataclass(frozen=True)
class Settings:
    api_uri: str
    api_user: str
    api_password: Secret = field(repr=False)
    db_path: Path = Path("syncctl.db")
    page_size: int = DEFAULT_PAGE_SIZE
    max_requests_per_minute: int = 450
    max_delete_fraction: float = 0.2
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def settings_from(values: Mapping[str, str]) -> Settings:
    """Typed settings; a missing or malformed one is a ConfigError (exit 3) that names it."""
    api_uri = values.get("GRID_API_URI", "").strip().rstrip("/")
    api_user = values.get("GRID_API_USER", "").strip()
    password = values.get("GRID_API_PASSWORD", "").strip()
    for name, value in (
        ("GRID_API_URI", api_uri),
        ("GRID_API_USER", api_user),
        ("GRID_API_PASSWORD", password),
    ):
        if not value:
            raise ConfigError(f"{name} is not set (environment or .env file)")
    if not api_uri.startswith(("http://", "https://")):
        raise ConfigError(f"GRID_API_URI must start with http:// or https://, got {api_uri!r}")
    page_size_given = bool(values.get("SYNCCTL_PAGE_SIZE", "").strip())
    common = load_common(values, max_page_size=MAX_PAGE_SIZE, remote="the grid API's")
    return Settings(
        api_uri=api_uri,
        api_user=api_user,
        api_password=Secret(password),
        db_path=common.db_path,
        page_size=common.page_size if page_size_given else DEFAULT_PAGE_SIZE,
        max_requests_per_minute=common.max_requests_per_minute,
        max_delete_fraction=common.max_delete_fraction,
        connect_timeout=common.connect_timeout,
        read_timeout=common.read_timeout,
        retry=common.retry,
    )
