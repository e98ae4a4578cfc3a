"""Durations as admins write them: `90s`, `5m`, `2h`, `1d`, `1h30m`, or plain seconds."""

from __future__ import annotations

import re

from syncctl.core.errors import UsageError

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, *, option: str) -> float:
    """Seconds in `text`; anything else is a usage error naming the option and the expected form."""
    raw = text.strip().lower()
    if raw.isascii() and re.fullmatch(r"\d+(\.\d+)?", raw):
        return float(raw)
    parts = _PART.findall(raw) if raw.isascii() else []
    if not parts or "".join(n + u for n, u in parts) != raw:
        raise UsageError(f"{option} takes a duration like 30s, 5m, 2h or 1h30m, got {text!r}")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds > 366 * 86400:
        raise UsageError(f"{option} must be at most a year, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A short, human age: 45s, 12m, 3h05m, 2d."""
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d"
