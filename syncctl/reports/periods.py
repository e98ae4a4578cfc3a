"""Times, periods and file-name parts, read and written the one way every report shares.

A time given without an offset is UTC; every time leaves here as an aware UTC `datetime`. Periods are
half-open, `[start, end)`, so consecutive periods tile time without counting a boundary twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from syncctl.core.errors import UsageError
from syncctl.core.sanitize import one_line

EXPECTED_TIME = (
    "ISO 8601 such as 2025-04-01, 2025-04-01T08:30:00 or 2025-04-01T08:30:00+02:00 (no offset = UTC)"
)

# ASCII only: names must survive zip files, shells, Windows and NFC/NFD-normalising file systems.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# A file name is at most 255 bytes; the group is one part of a longer name (prefix, two stamps, suffix).
MAX_NAME_PART = 120


def parse_time(text: str, *, name: str) -> datetime:
    """`text` as an aware UTC datetime; a date alone is its midnight, no offset means UTC.

    `name` is the option the text came from (`--start`), so the error tells the person what to fix.
    """
    cleaned = text.strip()
    try:
        # `fromisoformat` wants upper-case `T` and `Z`; RFC 3339 allows lower case too.
        parsed = datetime.fromisoformat(cleaned.upper())
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        shown = one_line(text, limit=80)
        raise UsageError(f"{name}: {shown!r} is not a time; expected {EXPECTED_TIME}") from None


def as_utc(t: datetime) -> datetime:
    """`t` in UTC; a naive datetime is taken to be UTC already (as a time without an offset is)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def iso_utc(t: datetime) -> str:
    """ISO 8601 with the offset spelled out: `2025-04-01T00:00:00+00:00` (microseconds only if any)."""
    return as_utc(t).isoformat()


def file_stamp(t: datetime) -> str:
    """The time as it appears in file names: UTC, `20250401T000000Z`. Sub-second parts are dropped."""
    return as_utc(t).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class Period:
    """A half-open span of time `[start, end)`, both ends aware and in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "end", as_utc(self.end))
        if self.end <= self.start:
            raise ValueError(f"period end {iso_utc(self.end)} is not after start {iso_utc(self.start)}")

    @classmethod
    def parse(
        cls, start_text: str, end_text: str, *, start_name: str = "--start", end_name: str = "--end"
    ) -> Period:
        start = parse_time(start_text, name=start_name)
        end = parse_time(end_text, name=end_name)
        if end <= start:
            raise UsageError(
                f"{end_name} {iso_utc(end)} must be after {start_name} {iso_utc(start)}"
                " (periods are half-open: [start, end))"
            )
        return cls(start, end)

    def contains(self, t: datetime) -> bool:
        """Whether `t` falls in `[start, end)`; a naive `t` is taken as UTC."""
        return self.start <= as_utc(t) < self.end

    def iso(self) -> dict[str, str]:
        """`{"start": ..., "end": ...}` in ISO 8601 with offset: the `period` object of report JSON."""
        return {"start": iso_utc(self.start), "end": iso_utc(self.end)}

    def file_stamps(self) -> tuple[str, str]:
        """`("20250401T000000Z", "20250501T000000Z")`: the `{start}` and `{end}` of report file names."""
        return file_stamp(self.start), file_stamp(self.end)


def safe_name_part(text: str) -> str:
    """`text` made safe to be part of a file name, as CONTRACT.md's `{group}`/`{userId}` are.

    ASCII letters, digits, `-`, `_` and `.` stay; every other character (space, `/`, `\\`, non-ASCII
    letters such as `ø`, controls) becomes `_`, one for one. An empty result becomes `_`, and a result
    of dots only (`.`, `..`) has every dot replaced, so the part can never name a directory. Longer
    than `MAX_NAME_PART` characters is cut there. Different texts can meet in the same part (`a b`,
    `a/b`); `write_group_files` refuses such a clash rather than let one group's file replace another's.
    """
    safe = _UNSAFE.sub("_", text)[:MAX_NAME_PART]
    if not safe:
        return "_"
    if safe.strip(".") == "":
        return "_" * len(safe)
    return safe
