"""End to end: the real CLI against the bundled fake Intempus on a loopback port, and a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncctl.core.lock import hold_lock
from tests.e2e import World, make_world

RESULT_KEYS = {
    "mode",
    "status",
    "fetched",
    "inserted",
    "updated",
    "deleted",
    "unchanged",
    "duration_s",
    "pushed",
    "push_failed",
    "conflicts",
}


def test_e2e_full_sync_of_5000_cases_equals_the_remote_and_converges_after_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for big in make_world(tmp_path, cases=5000):
        first = big.sync()
        assert first.keys() >= RESULT_KEYS
        assert (first["mode"], first["status"], first["fetched"], first["inserted"]) == (
            "full",
            "ok",
            5000,
            5000,
        )
        assert big.differences() == []

        changed = big.fake.mutate(update=40, delete=15, create=25, seed=3)
        incremental = big.sync()
        assert incremental["mode"] == "incremental"
        assert (incremental["fetched"], incremental["inserted"], incremental["updated"]) == (65, 25, 40)
        assert incremental["deleted"] == 0  # deletes are invisible to an incremental listing
        assert sorted(big.differences()) == sorted(f"extra locally: {i}" for i in changed["deleted"])

        full = big.sync("--full")
        assert (full["mode"], full["deleted"], full["inserted"], full["updated"]) == ("full", 15, 0, 0)
        assert full["unchanged"] == full["fetched"] == 5010
        assert big.differences() == []

        runs = big.run("status", "--json").json()
        assert runs["cases"] == 5010 and runs["pending"] == 0
        assert runs["last_run"]["mode"] == "full" and runs["last_run"]["deleted"] == 15
        assert [r["inserted"] for r in runs["runs"]] == [0, 25, 5000]


def test_e2e_rerun_without_changes_fetches_only_what_is_new(world: World) -> None:
    world.sync()
    again = world.sync()
    assert (again["mode"], again["fetched"], again["inserted"], again["updated"]) == ("incremental", 0, 0, 0)
    full = world.sync("--full")
    assert full["fetched"] == full["unchanged"] == 300


def test_e2e_status_json_reports_cursor_and_last_run(world: World) -> None:
    world.sync()
    status = world.run("status", "--json").json()
    assert status["cursor"] == world.fake.counter
    assert status["cases"] == 300
    assert status["last_run"]["status"] == "ok"
    assert status["last_run"]["started_at"] <= status["last_run"]["finished_at"]


def test_e2e_status_plain_text_names_cases_and_runs(world: World) -> None:
    world.sync()
    out = world.run("status").stdout
    assert "cases: 300" in out and "full ok" in out


def test_e2e_second_run_while_the_lock_is_held_exits_75(world: World) -> None:
    world.sync()
    with hold_lock(world.db_path, "intempus"):
        outcome = world.run("sync")
    assert outcome.exit_code == 75
    assert "another syncctl run" in outcome.stderr
    assert len(world.run("status", "--json").json()["runs"]) == 1  # the refused run changed nothing


def test_e2e_missing_credentials_exit_3_naming_the_variable(world: World) -> None:
    outcome = world.run("sync", INTEMPUS_API_KEY="")
    assert outcome.exit_code == 3
    assert "INTEMPUS_API_KEY" in outcome.stderr
    assert not world.db_path.exists()


def test_e2e_wrong_credentials_exit_1_and_write_no_case(world: World) -> None:
    outcome = world.run("sync", "--json", INTEMPUS_API_KEY="wrong-secret-123")
    assert outcome.exit_code == 1
    assert "authentication failed" in outcome.stderr
    assert outcome.json()["status"] == "failed"
    assert "wrong-secret-123" not in outcome.stdout + outcome.stderr
    assert world.query("SELECT count(*) FROM cases") == [(0,)]


def test_e2e_unreachable_uri_exit_1_naming_the_host(world: World) -> None:
    outcome = world.run("sync", INTEMPUS_API_URI="http://127.0.0.1:9/web/v1")
    assert outcome.exit_code == 1
    assert "127.0.0.1:9" in outcome.stderr
    assert "Traceback" not in outcome.stderr


def test_e2e_plain_output_is_one_short_line_under_cron(world: World) -> None:
    outcome = world.run("sync")
    assert outcome.exit_code == 0
    assert outcome.stdout.count("\n") == 1 and outcome.stdout.startswith("sync ok (full)")
    assert "\x1b[" not in outcome.stdout  # no colours when stdout is not a terminal


def test_e2e_quiet_prints_nothing_on_success(world: World) -> None:
    outcome = world.run("-q", "sync")
    assert (outcome.exit_code, outcome.stdout, outcome.stderr) == (0, "", "")
