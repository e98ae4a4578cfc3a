"""Optional error reporting to Sentry: when `SENTRY_DSN` is set and the `sentry` extra is installed, a failed
run is sent with its run id and source as tags. Every event passes the same secret scrubber as the logs,
and no request data, local variables or personal data are attached."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("syncctl.sentry")


class Reporter:
    def __init__(self, sdk: Any) -> None:
        self.sdk = sdk

    def report(self, message: str, *, source: str, run_id: int | None, status: str) -> None:
        with self.sdk.new_scope() as scope:
            scope.set_tag("source", source)
            scope.set_tag("run_id", str(run_id))
            scope.set_tag("status", status)
            self.sdk.capture_message(message, level="error")
        self.sdk.flush(timeout=5)


def _scrub_event(scrub: Callable[[str], str]) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]:
    def scrub_all(value: Any) -> Any:
        if isinstance(value, str):
            return scrub(value)
        if isinstance(value, dict):
            return {k: scrub_all(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub_all(v) for v in value]
        return value

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        scrubbed: dict[str, Any] = scrub_all(event)
        return scrubbed

    return before_send


def setup(
    values: Mapping[str, str], scrub: Callable[[str], str], *, transport: Any = None
) -> Reporter | None:
    """A reporter when SENTRY_DSN is set, else None; without the extra, one warning says how to add it."""
    dsn = values.get("SENTRY_DSN", "").strip()
    if not dsn:
        return None
    if importlib.util.find_spec("sentry_sdk") is None:
        log.warning("SENTRY_DSN is set but sentry-sdk is not installed (pip install 'syncctl[sentry]')")
        return None
    sdk = importlib.import_module("sentry_sdk")
    options: dict[str, Any] = {
        "dsn": dsn,
        "send_default_pii": False,
        "include_local_variables": False,
        "default_integrations": False,
        "before_send": _scrub_event(scrub),
    }
    if transport is not None:
        options["transport"] = transport
    try:
        sdk.init(**options)
    except Exception as exc:  # a malformed DSN: say so, keep syncing
        log.warning("SENTRY_DSN is not usable: %s", scrub(str(exc)))
        return None
    return Reporter(sdk)
