"""Sierra's settings: the `SIERRA_*` variables of the original update-queue service, plus the settings every
source shares.

Two of the original names overlap shared ones: `SIERRA_API_CLIENT_TIMEOUT_SECONDS` and
`SIERRA_API_CLIENT_RETRIES`, when set, win over `SYNCCTL_READ_TIMEOUT` and `SYNCCTL_RETRY_ATTEMPTS` for this
source only, so an existing `.env` of the original service keeps its meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from syncctl.core.errors import ConfigError
from syncctl.core.settings import COMMON_SETTINGS, RetryPolicy, Secret, Setting, load_common, number

MAX_PAGE_SIZE = 2000  # items per listing request: the largest `limit` Sierra is reported to accept
DEFAULT_BATCH_LIMIT = 100
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})

SETTINGS = (
    Setting(
        "SIERRA_API_ENDPOINT",
        "base URI of the Sierra REST API, e.g. https://catalog.example.org/iii/sierra-api/v6",
        required=True,
    ),
    Setting("SIERRA_API_CLIENT_KEY", "API client key (client credentials)", required=True),
    Setting("SIERRA_API_CLIENT_SECRET", "API client secret", required=True, secret=True),
    Setting(
        "SIERRA_API_CLIENT_TIMEOUT_SECONDS",
        "read timeout and overall deadline per Sierra request (default SYNCCTL_READ_TIMEOUT)",
    ),
    Setting(
        "SIERRA_API_CLIENT_RETRIES",
        "retries after a failed Sierra request (default SYNCCTL_RETRY_ATTEMPTS - 1)",
    ),
    Setting(
        "SIERRA_UPDATE_BATCH_SIZE_LIMIT",
        "queued item updates sent per run, oldest first",
        default=str(DEFAULT_BATCH_LIMIT),
    ),
    Setting(
        "SIERRA_UPDATE_SET_INVDA", "set the inventory date (INVDA) to today on every update", default="false"
    ),
    Setting(
        "SIERRA_UPDATE_SET_IUSE3",
        "raise the internal-use count (IUSE3) by one on every update",
        default="false",
    ),
    Setting(
        "SIERRA_INVDA_FIXED_FIELD",
        "fixed-field number of INVDA (not in public material; default: the field labelled INVDA)",
    ),
    *(
        replace(s, help="items per list request for Sierra (at most 2000)")
        if s.name == "SYNCCTL_PAGE_SIZE"
        else s
        for s in COMMON_SETTINGS
    ),
)


@dataclass(frozen=True)
class Settings:
    endpoint: str
    client_key: str
    client_secret: Secret = field(repr=False)
    batch_limit: int = DEFAULT_BATCH_LIMIT
    set_invda: bool = False
    set_iuse3: bool = False
    invda_field: str | None = None  # None: the fixed field Sierra labels INVDA in the item itself
    db_path: Path = Path("syncctl.db")
    page_size: int = 1000
    max_requests_per_minute: int = 450
    max_delete_fraction: float = 0.2
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def switch(values: Mapping[str, str], name: str) -> bool:
    """An on/off setting; anything but the usual words is refused rather than guessed."""
    raw = values.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {values.get(name)!r}")


def fixed_field_number(values: Mapping[str, str], name: str) -> str | None:
    """A fixed-field number as Sierra keys it ("265"), or None when not set."""
    raw = values.get(name, "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 100000:
        raise ConfigError(f"{name} must be a fixed-field number such as 265, got {raw!r}")
    return str(int(raw))


def settings_from(values: Mapping[str, str]) -> Settings:
    """Typed settings; a missing or malformed one is a ConfigError (exit 3) that names it."""
    endpoint = values.get("SIERRA_API_ENDPOINT", "").strip().rstrip("/")
    key = values.get("SIERRA_API_CLIENT_KEY", "").strip()
    secret = values.get("SIERRA_API_CLIENT_SECRET", "").strip()
    for name, value in (
        ("SIERRA_API_ENDPOINT", endpoint),
        ("SIERRA_API_CLIENT_KEY", key),
        ("SIERRA_API_CLIENT_SECRET", secret),
    ):
        if not value:
            raise ConfigError(f"{name} is not set (environment or .env file)")
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"SIERRA_API_ENDPOINT must start with http:// or https://, got {endpoint!r}")
    common = load_common(values, max_page_size=MAX_PAGE_SIZE, remote="Sierra's")
    read_timeout = number(
        values,
        "SIERRA_API_CLIENT_TIMEOUT_SECONDS",
        common.read_timeout,
        minimum=0.001,
        integer=False,
        maximum=3600,
    )
    retry = common.retry
    if values.get("SIERRA_API_CLIENT_RETRIES", "").strip():
        retries = int(number(values, "SIERRA_API_CLIENT_RETRIES", 0, minimum=0, integer=True, maximum=99))
        retry = replace(retry, attempts=retries + 1)
    return Settings(
        endpoint=endpoint,
        client_key=key,
        client_secret=Secret(secret),
        batch_limit=int(
            number(
                values,
                "SIERRA_UPDATE_BATCH_SIZE_LIMIT",
                DEFAULT_BATCH_LIMIT,
                minimum=1,
                integer=True,
                maximum=100_000,
            )
        ),
        set_invda=switch(values, "SIERRA_UPDATE_SET_INVDA"),
        set_iuse3=switch(values, "SIERRA_UPDATE_SET_IUSE3"),
        invda_field=fixed_field_number(values, "SIERRA_INVDA_FIXED_FIELD"),
        db_path=common.db_path,
        page_size=common.page_size,
        max_requests_per_minute=common.max_requests_per_minute,
        max_delete_fraction=common.max_delete_fraction,
        connect_timeout=min(common.connect_timeout, read_timeout),
        read_timeout=read_timeout,
        retry=retry,
    )
