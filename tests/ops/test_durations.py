"""Durations as admins write them, and ages as people read them."""

from __future__ import annotations

import pytest

from syncctl.core.errors import UsageError
from syncctl.ops.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("2.5", 2.5),
        ("90s", 90),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("0.1s", 0.1),
        (" 15M ", 900),
        ("366d", 366 * 86400),
    ],
)
def test_durations_parse_accepts_the_usual_forms(text: str, seconds: float) -> None:
    assert parse_duration(text, option="--every") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "-1m", "1w", "m", "5m30", "٣m", "1h 30m"])
def test_durations_parse_refuses_anything_else_naming_the_option(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--wait-lock takes a duration like 30s, 5m, 2h or 1h30m, got "):
        parse_duration(text, option="--wait-lock")


def test_durations_parse_refuses_more_than_a_year() -> None:
    with pytest.raises(UsageError, match="--max-age must be at most a year, got '367d'"):
        parse_duration("367d", option="--max-age")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45, "45s"),
        (119.4, "119s"),
        (120, "2m"),
        (5399, "89m"),
        (7200, "2h00m"),
        (11100, "3h05m"),
        (172799, "47h59m"),
        (172800, "2d"),
        (10 * 86400, "10d"),
    ],
)
def test_durations_format_is_short_and_human(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
