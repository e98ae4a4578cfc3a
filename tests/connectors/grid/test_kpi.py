"""`syncctl report kpi`: its numbers against an independent computation over the fake's own data, for
periods that cut days, after remote and local changes, in every format."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from syncctl.connectors.grid.fake import FakeGrid
from syncctl.connectors.grid.kpi import split_period
from syncctl.reports.periods import Period
from tests.connectors.grid.world import (
    ACCOUNTS,
    GridWorld,
    assert_kpi_matches,
    daily_sums_are_exact,
    expected_kpi,
)

# The fake's measurements run from 2025-01-01T00:00:00Z every 15 minutes for 75 hours.
PERIODS = [
    ("2025-01-01", "2025-01-05"),  # everything: whole days only
    ("2025-01-02", "2025-01-03"),  # exactly one day
    ("2025-01-01T06:30:00Z", "2025-01-03T12:00:00+02:00"),  # cuts a day at each end
    ("2025-01-02T01:00:00", "2025-01-02T05:00:00"),  # inside one day (no offset: UTC)
    ("2025-01-01T23:00:00Z", "2025-01-02T01:00:00Z"),  # two cut days, no whole one
    ("2025-01-02T00:00:00.5Z", "2025-01-02T10:00:00.25Z"),  # fractions of a second at both ends
    ("2024-12-01", "2025-01-01"),  # before any measurement
]


@pytest.mark.parametrize(("start", "end"), PERIODS)
def test_kpi_equals_an_independent_computation(synced: GridWorld, start: str, end: str) -> None:
    assert_kpi_matches(synced.kpi(start, end), synced.fake, start, end)


def test_kpi_has_rows_for_every_type_in_the_whole_period(synced: GridWorld) -> None:
    report = synced.kpi("2025-01-01", "2025-01-05")
    assert {row["component_type"] for row in report["components_by_type"]} == {
        "transformer",
        "line",
        "switch",
    }
    days = {row["day"] for row in report["daily_averages"]}
    assert days == {"2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04"}
    assert sum(row["count"] for row in report["daily_averages"]) == 9000


def test_kpi_follows_remote_updates_deletes_and_a_deleted_component(synced: GridWorld) -> None:
    fake = synced.fake
    fake.update_measurement(10, value=10_000.0)
    fake.update_measurement(11, timestamp="2025-01-03T08:00:00Z")  # moves to another day
    fake.update_measurement(12, type="power", component_id=3)  # another component and type
    fake.delete_measurement(13)
    fake.delete_component(5)  # with its measurements
    fake.create_measurement(2, "2025-01-02T12:00:00Z", "voltage", 7.5)
    fake.update_component(1, capacity_mva=999.0)
    synced.sync("--full")
    daily_sums_are_exact(synced)
    for start, end in PERIODS[:3]:
        assert_kpi_matches(synced.kpi(start, end), fake, start, end)


def test_kpi_sums_follow_edits_by_any_sqlite_client(synced: GridWorld) -> None:
    synced.edit("UPDATE grid_measurements SET value = value * 2 WHERE id % 97 = 0")
    synced.edit(
        "UPDATE grid_measurements SET timestamp = '2025-01-04T01:00:00Z' WHERE id BETWEEN 100 AND 120"
    )
    synced.edit("DELETE FROM grid_measurements WHERE component_id = 2 AND id < 100")
    synced.edit(
        "INSERT INTO grid_measurements (component_id, timestamp, type, value) VALUES"
        " (1, '2025-01-02T03:00:00Z', 'current', 5.0), (1, '2025-01-02T03:00:00Z', 'current', NULL)"
    )
    daily_sums_are_exact(synced)
    assert synced.query("SELECT sum(count) FROM _syncctl_grid_daily WHERE component_id = 2") == [(888,)]
    synced.sync("--allow-mass-delete")  # push them all, then the report matches the grid again
    daily_sums_are_exact(synced)
    assert_kpi_matches(synced.kpi("2025-01-01", "2025-01-05"), synced.fake, "2025-01-01", "2025-01-05")


def test_kpi_leaves_out_rows_kept_after_a_remote_delete(synced: GridWorld) -> None:
    """SYNCCTL_KEEP_DELETED turned on after the first sync: the rows stay, marked, and count no more."""
    synced.fake.delete_component(4)  # with its 900 measurements
    synced.fake.delete_measurement(1)
    result = synced.sync("--full", SYNCCTL_KEEP_DELETED="grid")
    assert result["deleted"] == 902
    kept = synced.query("SELECT count(*) FROM grid_measurements WHERE _deleted_at IS NOT NULL")
    assert kept == [(901,)]
    daily_sums_are_exact(synced)
    assert_kpi_matches(synced.kpi("2025-01-01", "2025-01-05"), synced.fake, "2025-01-01", "2025-01-05")
    synced.fake.update_measurement(2, value=1.0)  # a kept-aware update trigger still adds a live row
    synced.sync(SYNCCTL_KEEP_DELETED="grid")
    daily_sums_are_exact(synced)


def test_kpi_sums_are_rebuilt_when_their_triggers_were_dropped(synced: GridWorld) -> None:
    synced.edit("DROP TRIGGER _syncctl_grid_daily_insert")
    synced.edit("DELETE FROM _syncctl_grid_daily WHERE day = '2025-01-02'")
    synced.fake.create_measurement(4, "2025-01-02T07:00:00Z", "power", 1.0)
    synced.sync()
    daily_sums_are_exact(synced)
    assert_kpi_matches(synced.kpi("2025-01-01", "2025-01-05"), synced.fake, "2025-01-01", "2025-01-05")


def test_kpi_without_the_sums_reads_every_measurement_and_says_so(synced: GridWorld) -> None:
    synced.edit("DROP TABLE _syncctl_grid_daily")
    outcome = synced.run("report", "kpi", "--start", "2025-01-01T05:00:00Z", "--end", "2025-01-03T05:00:00Z")
    assert outcome.exit_code == 0
    assert "daily sums are not built yet" in outcome.stderr
    assert_kpi_matches(outcome.json(), synced.fake, "2025-01-01T05:00:00Z", "2025-01-03T05:00:00Z")


# -- formats and files ----------------------------------------------------------------------------------


def test_kpi_csv_needs_out_dir_and_writes_one_file_per_section(synced: GridWorld, tmp_path: Path) -> None:
    refused = synced.run("report", "kpi", "--start", "2025-01-01", "--end", "2025-01-05", "--format", "csv")
    assert refused.exit_code == 2
    assert "use --out-dir DIR for one file per table" in refused.stderr
    assert refused.stdout == ""
    out_dir = tmp_path / "kpi"
    outcome = synced.run(
        "report",
        "kpi",
        "--start",
        "2025-01-01",
        "--end",
        "2025-01-05",
        "--format",
        "csv",
        "--out-dir",
        str(out_dir),
    )
    assert outcome.exit_code == 0, outcome.stderr
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == [
        f"kpi_report_{section}_20250101T000000Z_20250105T000000Z.csv"
        for section in sorted(
            [
                "components_by_type",
                "transformer_capacity_by_voltage",
                "line_length_by_voltage",
                "daily_averages",
            ]
        )
    ]
    with (out_dir / names[1]).open(newline="") as stream:
        rows = list(csv.reader(stream))
    expected = expected_kpi(synced.fake, "2025-01-01", "2025-01-05")["daily_averages"]
    assert rows[0] == ["day", "component_type", "measurement_type", "average", "count"]
    assert [[*row[:3], row[4]] for row in rows[1:]] == [
        [r["day"], r["component_type"], r["measurement_type"], str(r["count"])] for r in expected
    ]


def test_kpi_html_charts_daily_averages_per_measurement_type(synced: GridWorld, tmp_path: Path) -> None:
    page = tmp_path / "kpi.html"
    outcome = synced.run(
        "report",
        "kpi",
        "--start",
        "2025-01-01",
        "--end",
        "2025-01-05",
        "--format",
        "html",
        "--out",
        str(page),
    )
    assert outcome.exit_code == 0, outcome.stderr
    text = page.read_text(encoding="utf-8")
    assert text.count("<svg viewBox") == 3
    for measurement_type in ("voltage", "current", "power"):
        assert f"Daily average {measurement_type} per component type" in text
    assert "<script" not in text


def test_kpi_table_and_out_dir_json(synced: GridWorld, tmp_path: Path) -> None:
    table = synced.run("report", "kpi", "--start", "2025-01-02", "--end", "2025-01-03", "--format", "table")
    assert table.exit_code == 0
    for section in ("components_by_type", "transformer_capacity_by_voltage", "daily_averages"):
        assert section in table.stdout
    outcome = synced.run(
        "report",
        "kpi",
        "--start",
        "2025-01-02",
        "--end",
        "2025-01-03",
        "--format",
        "json",
        "--out-dir",
        str(tmp_path),
    )
    assert outcome.exit_code == 0
    written = tmp_path / "kpi_report_20250102T000000Z_20250103T000000Z.json"
    assert written.read_text(encoding="utf-8").startswith(
        '{\n  "period": {"start": "2025-01-02T00:00:00+00:00"'
    )


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("yesterday", "2025-01-02", "--start: 'yesterday' is not a time"),
        ("2025-01-02", "2025-01-02", "--end 2025-01-02T00:00:00+00:00 must be after --start"),
        ("2025-01-03", "2025-01-02", "--end 2025-01-02T00:00:00+00:00 must be after --start"),
    ],
)
def test_kpi_bad_period_is_exit_2_and_writes_nothing(
    synced: GridWorld, tmp_path: Path, start: str, end: str, message: str
) -> None:
    out = tmp_path / "kpi.json"
    outcome = synced.run("report", "kpi", "--start", start, "--end", end, "--out", str(out))
    assert outcome.exit_code == 2
    [line] = outcome.stderr.strip().splitlines()
    assert line.startswith(f"syncctl: error: {message}")
    assert not out.exists()


def test_kpi_before_any_grid_sync_says_what_to_do(grid: GridWorld) -> None:
    grid.edit("CREATE TABLE unrelated (x)")
    outcome = grid.run("report", "kpi", "--start", "2025-01-01", "--end", "2025-01-02")
    assert outcome.exit_code == 1
    assert "has no grid_components table yet: run `syncctl sync grid` first" in outcome.stderr


# -- the period's days, as a unit -----------------------------------------------------------------------


def cut(*pairs: str) -> list[tuple[str, str]]:
    return [(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2)]


@pytest.mark.parametrize(
    ("start", "end", "days", "cuts"),
    [
        ("2025-01-01", "2025-01-03", ("2025-01-01", "2025-01-03"), []),
        (
            "2025-01-01T06:00:00",
            "2025-01-03T06:00:00",
            ("2025-01-02", "2025-01-03"),
            cut(
                "2025-01-01T06:00:00Z", "2025-01-02T00:00:00Z", "2025-01-03T00:00:00Z", "2025-01-03T06:00:00Z"
            ),
        ),
        (
            "2025-01-01T06:00:00",
            "2025-01-01T07:00:00",
            None,
            cut("2025-01-01T06:00:00Z", "2025-01-01T07:00:00Z"),
        ),
        (
            "2025-01-01T23:00:00",
            "2025-01-02T01:00:00",
            None,
            cut(
                "2025-01-01T23:00:00Z", "2025-01-02T00:00:00Z", "2025-01-02T00:00:00Z", "2025-01-02T01:00:00Z"
            ),
        ),
        (
            "2025-01-01T00:00:00.1",
            "2025-01-02T00:00:00.1",
            None,
            cut(
                "2025-01-01T00:00:01Z", "2025-01-02T00:00:00Z", "2025-01-02T00:00:00Z", "2025-01-02T00:00:01Z"
            ),
        ),
        (
            "9999-12-31T12:00:00",
            "9999-12-31T23:59:59.5",
            None,
            cut("9999-12-31T12:00:00Z", "9999-12-31T23:59:59Z~"),
        ),
    ],
)
def test_split_period_into_whole_days_and_cut_days(
    start: str, end: str, days: tuple[str, str] | None, cuts: list[tuple[str, str]]
) -> None:
    assert split_period(Period.parse(start, end)) == (days, cuts)


@pytest.mark.slow
def test_kpi_at_300k_measurements_equals_an_independent_computation(build_grid: Any) -> None:
    """The spec's shape at a tenth of its scale: 100 components, 3000 measurements each (31 days)."""
    world: GridWorld = build_grid(
        FakeGrid(components=100, measurements_per_component=3000, seed=3, accounts=ACCOUNTS)
    )
    result = world.sync(SYNCCTL_PAGE_SIZE="10000")
    assert result["fetched"] == 300_100
    daily_sums_are_exact(world)
    for start, end in [("2025-01-01", "2025-03-01"), ("2025-01-05T13:00:00+01:00", "2025-01-27T04:30:00Z")]:
        assert_kpi_matches(world.kpi(start, end), world.fake, start, end)
