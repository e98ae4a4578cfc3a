"""`syncctl health`: never synced, fresh, stale, failing, stuck local changes; plain and Nagios output."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from syncctl.ops.health import CRITICAL, OK, WARNING
from tests.e2e import World

WRONG_KEY = "not-the-key-7Hq"


@pytest.fixture
def world(build: Callable[..., World]) -> World:
    """A small fake (30 cases): health needs a few runs, not many rows."""
    small: World = build(30)
    return small


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).isoformat(timespec="seconds")


def last_success_was(world: World, when: str) -> None:
    world.edit("UPDATE _syncctl_runs SET finished_at = ? WHERE status = 'ok'", when)


def nagios(world: World, *args: str) -> tuple[int, list[str]]:
    outcome = world.run("health", "--nagios", *args)
    return outcome.exit_code, outcome.stdout.splitlines()


def test_health_fresh_database_is_critical_never_synced(world: World) -> None:
    outcome = world.run("health")

    assert (outcome.exit_code, outcome.stdout) == (
        1,
        "CRITICAL: intempus: has never synced (no database yet)\n",
    )
    assert nagios(world) == (CRITICAL, ["SYNCCTL CRITICAL - intempus: has never synced (no database yet)"])
    assert not world.db_path.exists()  # a health check never creates the file


def test_health_after_a_good_sync_is_ok(world: World) -> None:
    world.sync()

    outcome = world.run("health")

    assert (outcome.exit_code, outcome.stdout, outcome.stderr) == (0, "OK: intempus healthy\n", "")
    assert nagios(world) == (OK, ["SYNCCTL OK - intempus healthy"])
    assert world.run("-q", "health").stdout == ""  # -q: silent when all is well, for cron mail


@pytest.mark.parametrize(
    ("age", "level", "text"),
    [
        ({"minutes": 90}, OK, None),
        ({"hours": 3}, WARNING, "WARNING: intempus: last successful sync 3h00m ago (limit 2h00m)"),
        ({"hours": 5}, CRITICAL, "CRITICAL: intempus: last successful sync 5h00m ago (limit 2h00m)"),
        ({"days": 3}, CRITICAL, "CRITICAL: intempus: last successful sync 3d ago (limit 2h00m)"),
    ],
    ids=["90m", "3h", "5h", "3d"],
)
def test_health_stale_last_success_is_warning_then_critical_by_age(
    world: World, age: dict[str, float], level: int, text: str | None
) -> None:
    world.sync()
    last_success_was(world, ago(**age))

    outcome = world.run("health", "--max-age", "2h")
    code, lines = nagios(world, "--max-age", "2h")

    assert outcome.stdout.splitlines() == ([text] if text else ["OK: intempus healthy"])
    assert outcome.exit_code == (1 if text else 0)
    assert code == level and len(lines) == 1


def test_health_time_without_offset_counts_as_utc(world: World) -> None:
    world.sync()
    naive = (datetime.now(UTC) - timedelta(hours=3)).replace(tzinfo=None).isoformat(sep=" ")
    last_success_was(world, naive[:19])  # as another program might write it

    assert nagios(world, "--max-age", "2h") == (
        WARNING,
        ["SYNCCTL WARNING - intempus: last successful sync 3h00m ago (limit 2h00m)"],
    )


def test_health_three_failed_runs_in_a_row_are_critical(world: World) -> None:
    world.sync()
    for _ in range(2):
        assert world.run("sync", INTEMPUS_API_KEY=WRONG_KEY).exit_code == 1
    assert nagios(world) == (OK, ["SYNCCTL OK - intempus healthy"])  # two are not yet a pattern

    assert world.run("sync", INTEMPUS_API_KEY=WRONG_KEY).exit_code == 1
    outcome = world.run("health")
    code, lines = nagios(world)

    assert outcome.exit_code == 1
    [line] = outcome.stdout.splitlines()
    assert line.startswith("CRITICAL: intempus: the last 3 runs failed: authentication failed")
    assert code == CRITICAL and lines == [f"SYNCCTL {line.replace('CRITICAL: ', 'CRITICAL - ', 1)}"]
    assert WRONG_KEY not in outcome.stdout
    assert world.run("health", "--failures", "4").exit_code == 0
    assert world.sync()["status"] == "ok"
    assert world.run("health").exit_code == 0  # one good run clears it


def test_health_a_run_under_way_does_not_hide_the_failures_before_it(world: World) -> None:
    world.sync()
    for _ in range(3):
        world.run("sync", INTEMPUS_API_KEY=WRONG_KEY)
    world.edit(
        "INSERT INTO _syncctl_runs (source, started_at, mode, status, pid)"
        " VALUES ('intempus', ?, 'incremental', 'running', 1)",
        ago(seconds=5),
    )

    code, [line] = nagios(world)

    assert code == CRITICAL and "the last 3 runs failed" in line


def test_health_never_synced_successfully_after_failures_is_critical(world: World) -> None:
    world.run("sync", INTEMPUS_API_KEY=WRONG_KEY)

    code, [line] = nagios(world)

    assert (code, line) == (CRITICAL, "SYNCCTL CRITICAL - intempus: has never synced successfully")


def test_health_local_changes_waiting_longer_than_max_age_are_a_warning(world: World) -> None:
    world.sync()
    case_id = min(world.fake.cases)
    world.edit("UPDATE cases SET name = 'edited locally' WHERE id = ?", case_id)
    assert nagios(world, "--max-age", "1h") == (OK, ["SYNCCTL OK - intempus healthy"])  # just edited

    world.edit("UPDATE _syncctl_pending SET changed_at = ?", ago(minutes=95))
    outcome = world.run("health", "--max-age", "1h")

    assert (outcome.exit_code, outcome.stdout.splitlines()) == (
        1,
        ["WARNING: intempus: 1 local change(s) waiting, the oldest for 95m; see `syncctl status intempus`"],
    )
    assert nagios(world, "--max-age", "1h")[0] == WARNING


def test_health_nagios_prints_one_line_for_several_problems_and_exits_with_the_worst(world: World) -> None:
    world.sync()
    world.edit("UPDATE cases SET name = 'edited locally' WHERE id = ?", min(world.fake.cases))
    world.edit("UPDATE _syncctl_pending SET changed_at = ?", ago(hours=3))
    last_success_was(world, ago(hours=5))

    code, lines = nagios(world, "--max-age", "2h")

    assert code == CRITICAL
    assert lines == [
        "SYNCCTL CRITICAL - intempus: last successful sync 5h00m ago (limit 2h00m);"
        " intempus: 1 local change(s) waiting, the oldest for 3h00m; see `syncctl status intempus`"
    ]


@pytest.mark.parametrize("bad", ["soon", "-5m", "2 hours"])
def test_health_bad_max_age_is_a_usage_error(world: World, bad: str) -> None:
    outcome = world.run("health", "--max-age", bad)

    assert outcome.exit_code == 2
    assert outcome.stderr.startswith("syncctl: error: --max-age takes a duration like 30s, 5m, 2h or 1h30m")


def test_health_without_any_settings_checks_the_sources_that_ran(world: World) -> None:
    world.sync()
    outcome = world.run(
        "health",
        INTEMPUS_API_URI="",
        INTEMPUS_API_USER="",
        INTEMPUS_API_KEY="",
        SYNCCTL_DB=str(world.db_path),
    )
    assert (outcome.exit_code, outcome.stdout.strip()) == (0, "OK: intempus healthy")
