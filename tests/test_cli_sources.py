"""The multi-source interface of CONTRACT.md: sources, sync SOURCE..., JSON Lines, status per source,
`intempus case` beside `case`, and the origin of every change in `_syncctl_history`."""

from __future__ import annotations

import json

from tests.e2e import World

OTHER_SOURCES = ("grid", "sierra", "tasks", "workorders")


def test_sources_json_lists_every_source_with_what_it_misses(world: World) -> None:
    world.sync()
    listing = world.run("sources", "--json").json()
    intempus = listing[0]
    assert (intempus["name"], intempus["configured"], intempus["missing"]) == ("intempus", True, [])
    assert intempus["tables"] == ["cases"]
    assert intempus["last_run"]["status"] == "ok" and intempus["last_run"]["finished_at"]
    for item in listing[1:]:
        assert item["configured"] is False and item["missing"] and item["last_run"] is None


def test_sources_without_a_database_writes_nothing(world: World) -> None:
    outcome = world.run("sources")
    assert outcome.exit_code == 0 and "intempus: configured" in outcome.stdout
    assert not world.db_path.exists()


def test_sync_named_source_json_is_one_object_with_source(world: World) -> None:
    outcome = world.run("sync", "intempus", "--json")
    assert outcome.exit_code == 0
    [line] = outcome.stdout.splitlines()
    result = json.loads(line)
    assert (result["source"], result["status"], result["inserted"]) == ("intempus", "ok", 300)


def test_sync_unknown_source_is_exit_2_and_touches_nothing(world: World) -> None:
    outcome = world.run("sync", "nosuch")
    assert outcome.exit_code == 2 and "unknown source 'nosuch'" in outcome.stderr
    assert world.fake.requests == [] and not world.db_path.exists()


def test_sync_named_source_not_configured_is_exit_3_naming_the_settings(world: World) -> None:
    outcome = world.run("sync", "intempus", INTEMPUS_API_USER="")
    assert outcome.exit_code == 3 and "INTEMPUS_API_USER" in outcome.stderr


def test_sync_with_no_source_configured_is_exit_3(world: World) -> None:
    outcome = world.run("sync", INTEMPUS_API_URI="", INTEMPUS_API_USER="", INTEMPUS_API_KEY="")
    assert outcome.exit_code == 3 and "no source is configured" in outcome.stderr


def test_status_json_keeps_todays_keys_and_adds_the_source(world: World) -> None:
    world.sync()
    status = world.run("status", "--json").json()
    assert status["cases"] == 300 and status["pending"] == 0 and status["source"] == "intempus"
    assert status["intempus"]["cases"] == 300  # keyed by source name as well
    assert world.run("status", "intempus", "--json").json()["intempus"]["tables"] == {"cases": 300}


def test_intempus_case_get_is_the_same_command_as_case_get(world: World) -> None:
    world.sync()
    case_id = str(min(world.fake.cases))
    assert world.run("intempus", "case", "get", case_id, "--json").json() == (
        world.run("case", "get", case_id, "--json").json()
    )


def test_history_records_each_change_with_its_origin(world: World) -> None:
    world.sync()
    first, second = sorted(world.fake.cases)[:2]
    world.fake.update(first, {"notes": "remote"})
    world.edit("UPDATE cases SET name = 'local' WHERE id = ?", second)
    created = world.run(
        "case", "create", "--field", "name=Cli", "--field", "number=C-1",
        "--field", "customer=/web/v1/customer/6666940/", "--json",
    ).json()  # fmt: skip
    world.sync()

    def entries(record: int) -> list[tuple[str, str]]:
        return [
            (op, origin)
            for op, origin in world.query(
                "SELECT op, origin FROM _syncctl_history WHERE source = 'intempus' AND table_name = 'cases'"
                " AND record_id = ? ORDER BY id",
                str(record),
            )
        ]

    assert entries(first) == [("insert", "pull"), ("update", "pull")]
    assert entries(second) == [("insert", "pull"), ("update", "push")]
    assert entries(created["id"]) == [("insert", "cli")]
    [(changes,)] = world.query(
        "SELECT changes FROM _syncctl_history WHERE record_id = ? AND origin = 'pull' AND op = 'update'",
        str(first),
    )
    assert json.loads(changes)["notes"][1] == "remote"


def test_cursor_shown_moved_and_reset_on_purpose_with_the_run_log_recording_it(world: World) -> None:
    first = world.sync()
    shown = world.run("cursor", "intempus")
    assert shown.stdout.strip() == f"intempus cases: {first['cursor']}"
    world.fake.update(min(world.fake.cases), {"notes": "x"})
    moved = world.run("cursor", "intempus", "--set", "0")
    assert moved.exit_code == 0
    again = world.sync()
    assert (again["mode"], again["fetched"]) == ("incremental", 300)  # everything above 0 is listed again
    assert world.run("cursor", "intempus", "--reset").exit_code == 0
    assert world.sync()["mode"] == "full"
    runs = world.query("SELECT mode, extra FROM _syncctl_runs WHERE mode = 'cursor' ORDER BY id")
    assert [json.loads(extra)["to"] for _, extra in runs] == [0, None]
    assert json.loads(runs[0][1])["from"] == first["cursor"]
    assert world.run("cursor", "intempus", "--set", "soon!").exit_code == 2
