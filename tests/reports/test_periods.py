"""Times, periods and file-name parts as every report reads and writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from syncctl.core.errors import UsageError
from syncctl.reports.periods import (
    MAX_NAME_PART,
    Period,
    file_stamp,
    iso_utc,
    parse_time,
    safe_name_part,
)

APRIL = datetime(2025, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-04-01", APRIL),
        ("2025-04-01T00:00:00", APRIL),
        ("2025-04-01 00:00", APRIL),
        ("2025-04-01T00:00:00Z", APRIL),
        ("2025-04-01t00:00:00z", APRIL),
        ("2025-04-01T00:00:00+00:00", APRIL),
        ("2025-04-01T02:00:00+02:00", APRIL),
        ("2025-03-31T19:00:00-05:00", APRIL),
        ("2025-04-01T05:30:00+05:30", APRIL),
        ("  2025-04-01T00:00:00Z\n", APRIL),
        ("2025-04-01T08:30:15.250000", datetime(2025, 4, 1, 8, 30, 15, 250000, tzinfo=UTC)),
    ],
)
def test_parse_time_reads_iso_8601_as_utc(text: str, expected: datetime) -> None:
    parsed = parse_time(text, name="--start")

    assert parsed == expected
    assert parsed.tzinfo is UTC


def test_parse_time_without_offset_is_utc_not_local_time() -> None:
    assert parse_time("2025-04-01T12:00", name="--start").isoformat() == "2025-04-01T12:00:00+00:00"


def test_parse_time_converts_an_offset_to_utc() -> None:
    parsed = parse_time("2025-04-01T00:30:00+02:00", name="--start")

    assert parsed.isoformat() == "2025-03-31T22:30:00+00:00"


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2025-13-01", "2025-02-30", "2025-04-01T25:00", "1743465600"]
)
def test_parse_time_refuses_bad_input_naming_option_value_and_form(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_time(text, name="--start")

    message = str(caught.value)
    assert message.startswith(f"--start: {text!r} is not a time; expected ISO 8601 such as 2025-04-01")
    assert "\n" not in message
    assert caught.value.exit_code == 2


def test_parse_time_error_does_not_echo_control_characters() -> None:
    with pytest.raises(UsageError) as caught:
        parse_time("\x1b[31mred\nline", name="--until")

    assert "\x1b" not in str(caught.value)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("--until: ")


def test_parse_time_refuses_a_time_that_cannot_be_expressed_in_utc() -> None:
    with pytest.raises(UsageError, match="--end"):
        parse_time("0001-01-01T00:00:00+01:00", name="--end")


def test_period_parse_gives_utc_ends() -> None:
    period = Period.parse("2025-04-01", "2025-05-01T02:00:00+02:00")

    assert period == Period(APRIL, datetime(2025, 5, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("start", "end"),
    [("2025-04-01", "2025-04-01"), ("2025-04-02", "2025-04-01"), ("2025-04-01T02:00+02:00", "2025-04-01")],
)
def test_period_parse_refuses_end_not_after_start(start: str, end: str) -> None:
    with pytest.raises(UsageError) as caught:
        Period.parse(start, end)

    assert str(caught.value).startswith("--end 2025-04-01T00:00:00+00:00 must be after --start ")


def test_period_parse_names_the_options_it_was_given() -> None:
    with pytest.raises(UsageError, match=r"^--since: 'soon' is not a time"):
        Period.parse("soon", "2025-04-01", start_name="--since", end_name="--until")


def test_period_parse_reports_a_bad_start_before_comparing() -> None:
    with pytest.raises(UsageError, match=r"^--start: "):
        Period.parse("nope", "also nope")


def test_period_refuses_to_be_built_backwards() -> None:
    with pytest.raises(ValueError, match="not after start"):
        Period(APRIL, APRIL)


def test_period_contains_is_half_open() -> None:
    period = Period.parse("2025-04-01", "2025-05-01")
    tick = timedelta(microseconds=1)

    assert period.contains(APRIL)
    assert not period.contains(APRIL - tick)
    assert period.contains(datetime(2025, 5, 1, tzinfo=UTC) - tick)
    assert not period.contains(datetime(2025, 5, 1, tzinfo=UTC))


def test_period_contains_compares_instants_not_wall_clocks() -> None:
    period = Period.parse("2025-04-01", "2025-05-01")
    copenhagen = timezone(timedelta(hours=2))

    assert not period.contains(datetime(2025, 4, 1, 1, 59, tzinfo=copenhagen))
    assert period.contains(datetime(2025, 4, 1, 2, 0, tzinfo=copenhagen))
    assert period.contains(datetime(2025, 4, 1))  # naive: UTC


def test_period_iso_and_file_stamps() -> None:
    period = Period.parse("2025-04-01T02:00:00+02:00", "2025-05-01T12:34:56Z")

    assert period.iso() == {"start": "2025-04-01T00:00:00+00:00", "end": "2025-05-01T12:34:56+00:00"}
    assert period.file_stamps() == ("20250401T000000Z", "20250501T123456Z")


def test_file_stamp_and_iso_utc_convert_to_utc() -> None:
    t = datetime(2025, 4, 1, 1, 2, 3, 456, tzinfo=timezone(timedelta(hours=-3)))

    assert file_stamp(t) == "20250401T040203Z"
    assert iso_utc(t) == "2025-04-01T04:02:03.000456+00:00"
    assert file_stamp(datetime(2025, 4, 1)) == "20250401T000000Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Jens Hansen", "Jens_Hansen"),
        ("user-42_a.b", "user-42_a.b"),
        ("../etc/passwd", ".._etc_passwd"),
        ("a/b\\c", "a_b_c"),
        ("Søren Ørsted", "S_ren__rsted"),
        ("日本", "__"),
        ("tab\there\nnew", "tab_here_new"),
        ("", "_"),
        (".", "_"),
        ("..", "__"),
        ("...", "___"),
        (".hidden", ".hidden"),
        ("\u202eevil", "_evil"),
    ],
)
def test_safe_name_part_keeps_ascii_letters_digits_dash_underscore_dot(text: str, expected: str) -> None:
    assert safe_name_part(text) == expected


def test_safe_name_part_never_yields_a_path_component_or_separator() -> None:
    for text in ["..", ".", "", "/", "../..", "a/../b", "\x00"]:
        part = safe_name_part(text)
        assert part not in ("", ".", "..")
        assert "/" not in part
        assert "\\" not in part
        assert "\x00" not in part


def test_safe_name_part_is_cut_to_a_bounded_length() -> None:
    assert safe_name_part("x" * 1000) == "x" * MAX_NAME_PART
