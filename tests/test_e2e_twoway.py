"""End to end, both directions: local edits made with plain sqlite3 reach the fake Intempus exactly once."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e import World


def writes(world: World) -> list[tuple[str, str]]:
    return [
        (method, path) for method, path in world.fake.requests if method in ("POST", "PUT", "PATCH", "DELETE")
    ]


def test_twoway_local_update_insert_delete_reach_intempus_exactly_once(world: World) -> None:
    world.sync()
    ids = sorted(world.fake.cases)
    edited, removed = ids[0], ids[1]
    customer = world.fake.cases[edited]["customer"]
    world.edit("UPDATE cases SET name = 'Renamed in sqlite', hour_budget = '12.50' WHERE id = ?", edited)
    world.edit("INSERT INTO cases (name, number, customer) VALUES ('Made in sqlite', 'L-1', ?)", customer)
    world.edit("DELETE FROM cases WHERE id = ?", removed)
    world.fake.requests.clear()

    result = world.sync()

    assert (result["pushed"], result["push_failed"], result["conflicts"]) == (3, 0, 0)
    assert world.fake.cases[edited]["name"] == "Renamed in sqlite"
    assert world.fake.cases[edited]["hour_budget"] == "12.50"
    assert removed not in world.fake.cases
    [created] = [c for c in world.fake.cases.values() if c["name"] == "Made in sqlite"]
    assert created["number"] == "L-1" and created["customer"] == customer
    assert sorted(m for m, _ in writes(world)) == ["DELETE", "POST", "PUT"]
    # the local row now carries the id Intempus gave it
    assert world.query("SELECT id FROM cases WHERE name = 'Made in sqlite'") == [(created["id"],)]
    assert world.differences() == []

    world.fake.requests.clear()
    again = world.sync()
    assert again["pushed"] == 0 and writes(world) == []  # nothing pulled is ever pushed back
    assert world.run("status", "--json").json()["pending"] == 0


def test_twoway_remote_changes_arrive_while_local_ones_leave(world: World) -> None:
    world.sync()
    ids = sorted(world.fake.cases)
    world.edit("UPDATE cases SET notes = 'local' WHERE id = ?", ids[0])
    world.fake.update(ids[1], {"notes": "remote"})
    result = world.sync()
    assert (result["pushed"], result["updated"]) == (1, 1)
    assert world.fake.cases[ids[0]]["notes"] == "local"
    assert world.query("SELECT notes FROM cases WHERE id = ?", ids[1]) == [("remote",)]
    assert world.differences() == []


def test_twoway_different_fields_on_both_sides_merge_without_conflict(world: World) -> None:
    world.sync()
    case_id = min(world.fake.cases)
    world.edit("UPDATE cases SET name = 'local name' WHERE id = ?", case_id)
    world.fake.update(case_id, {"notes": "remote notes"})
    result = world.sync()
    assert result["conflicts"] == 0
    assert (world.fake.cases[case_id]["name"], world.fake.cases[case_id]["notes"]) == (
        "local name",
        "remote notes",
    )
    assert world.differences() == []


def test_twoway_same_field_on_both_sides_remote_wins_by_default_and_is_recorded(world: World) -> None:
    world.sync()
    case_id = min(world.fake.cases)
    world.edit("UPDATE cases SET name = 'local name' WHERE id = ?", case_id)
    world.fake.update(case_id, {"name": "remote name"})
    result = world.sync()
    assert result["conflicts"] == 1
    assert world.fake.cases[case_id]["name"] == "remote name"
    assert world.differences() == []
    [conflict] = world.run("conflicts", "--json").json()
    assert (conflict["case_id"], conflict["field"], conflict["winner"]) == (case_id, "name", "remote")
    assert (conflict["local_value"], conflict["remote_value"]) == ("local name", "remote name")
    assert "remote won" in world.run("conflicts").stdout


def test_twoway_same_field_local_policy_pushes_the_local_value(world: World) -> None:
    world.sync()
    case_id = min(world.fake.cases)
    world.edit("UPDATE cases SET name = 'local name' WHERE id = ?", case_id)
    world.fake.update(case_id, {"name": "remote name"})
    result = world.sync("--on-conflict", "local")
    assert (result["conflicts"], result["pushed"]) == (1, 1)
    assert world.fake.cases[case_id]["name"] == "local name"
    assert world.differences() == []


def test_twoway_remote_delete_against_local_edit_remote_wins(world: World) -> None:
    world.sync()
    case_id = min(world.fake.cases)
    world.edit("UPDATE cases SET name = 'edited' WHERE id = ?", case_id)
    world.fake.delete(case_id)
    result = world.sync()
    assert result["conflicts"] == 1
    assert world.query("SELECT count(*) FROM cases WHERE id = ?", case_id) == [(0,)]
    assert world.differences() == []


def test_twoway_local_delete_against_remote_edit_remote_wins(world: World) -> None:
    world.sync()
    case_id = min(world.fake.cases)
    world.edit("DELETE FROM cases WHERE id = ?", case_id)
    world.fake.update(case_id, {"name": "edited remotely"})
    result = world.sync()
    assert result["conflicts"] == 1
    assert case_id in world.fake.cases
    assert world.query("SELECT name FROM cases WHERE id = ?", case_id) == [("edited remotely",)]
    assert world.differences() == []


def test_twoway_failed_push_stays_pending_and_does_not_block_others(world: World) -> None:
    world.sync()
    bad, good = sorted(world.fake.cases)[:2]
    world.edit("UPDATE cases SET latitude = '123.0' WHERE id = ?", bad)  # Intempus refuses |latitude| > 90
    world.edit("UPDATE cases SET notes = 'fine' WHERE id = ?", good)
    outcome = world.run("sync", "--json")
    result = outcome.json()
    assert (result["pushed"], result["push_failed"], result["status"]) == (1, 1, "ok")
    assert world.fake.cases[good]["notes"] == "fine"
    assert "could not be pushed" in outcome.stderr
    status = world.run("status", "--json").json()
    assert status["pending"] == 1
    [change] = status["pending_changes"]
    assert change["id"] == bad and "latitude" in change["last_error"]
    assert world.query("SELECT latitude FROM cases WHERE id = ?", bad) == [("123.0",)]  # the edit is kept

    world.edit("UPDATE cases SET latitude = '45.5' WHERE id = ?", bad)  # the admin fixes it
    fixed = world.sync()
    assert (fixed["pushed"], fixed["push_failed"]) == (1, 0)
    assert world.fake.cases[bad]["latitude"] == "45.500000"  # Intempus keeps six decimals


def test_twoway_pull_only_pushes_nothing(world: World) -> None:
    world.sync()
    case_id = min(world.fake.cases)
    world.edit("UPDATE cases SET notes = 'later' WHERE id = ?", case_id)
    result = world.sync("--pull-only")
    assert result["pushed"] == 0 and world.fake.cases[case_id]["notes"] != "later"
    assert world.run("status", "--json").json()["pending"] == 1


def test_case_create_get_update_delete_go_through_intempus_first(world: World, tmp_path: Path) -> None:
    world.sync()
    customer = next(iter(world.fake.cases.values()))["customer"]
    created = world.run(
        "case",
        "create",
        "--field",
        "name=Via CLI",
        "--field",
        "number=C-9",
        "--field",
        f"customer={customer}",
        "--json",
    )
    assert created.exit_code == 0, created.stderr
    case = created.json()
    assert case["name"] == "Via CLI" and case["id"] in world.fake.cases
    assert case["logical_timestamp"] == world.fake.cases[case["id"]]["logical_timestamp"] != 42
    local = world.run("case", "get", str(case["id"]), "--json").json()
    assert local == world.fake.cases[case["id"]]

    updated = world.run("case", "update", str(case["id"]), "--field", "active=false", "--json").json()
    assert updated["active"] is False and world.fake.cases[case["id"]]["active"] is False
    assert world.query("SELECT active FROM cases WHERE id = ?", case["id"]) == [(0,)]

    remote = world.run("case", "get", str(case["id"]), "--remote", "--json").json()
    assert remote == world.fake.cases[case["id"]]

    deleted = world.run("case", "delete", str(case["id"]))
    assert deleted.exit_code == 0 and case["id"] not in world.fake.cases
    assert world.query("SELECT count(*) FROM cases WHERE id = ?", case["id"]) == [(0,)]
    assert world.run("status", "--json").json()["pending"] == 0
    assert world.differences() == []


def test_case_create_from_file_with_field_override(world: World, tmp_path: Path) -> None:
    customer = next(iter(world.fake.cases.values()))["customer"]
    source = tmp_path / "case.json"
    source.write_text(json.dumps({"name": "From file", "number": "F-1", "customer": customer}))
    outcome = world.run("case", "create", "--from-file", str(source), "--field", "number=F-2", "--json")
    assert outcome.exit_code == 0, outcome.stderr
    assert (outcome.json()["name"], outcome.json()["number"]) == ("From file", "F-2")


def test_case_create_remote_validation_error_shows_its_message_and_stores_nothing(world: World) -> None:
    customer = next(iter(world.fake.cases.values()))["customer"]
    outcome = world.run(
        "case", "create", "--field", "name=X", "--field", f"customer={customer}", "--field", "latitude=95"
    )
    assert outcome.exit_code == 1
    assert "latitude" in outcome.stderr and "Traceback" not in outcome.stderr
    assert world.query("SELECT count(*) FROM cases") == [(0,)]


def test_case_commands_refuse_bad_input_before_any_request(world: World, tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    attempts = [
        (["case", "create", "--field", "colour=red"], "unknown field"),
        (["case", "create", "--field", "id=5"], "set by Intempus"),
        (["case", "create", "--field", "logical_timestamp=5"], "set by Intempus"),
        (["case", "create", "--field", "nameonly"], "KEY=VALUE"),
        (["case", "create", "--field", "active=maybe"], "true or false"),
        (["case", "create", "--field", "start_date=31-12-2025"], "YYYY-MM-DD"),
        (["case", "create", "--field", "hour_budget=lots"], "decimal"),
        (["case", "create", "--field", "customer=6666940"], "link"),
        (["case", "create", "--from-file", str(bad_json)], "not valid JSON"),
        (["case", "create", "--from-file", str(tmp_path / "absent.json")], "cannot read"),
        (["case", "create"], "nothing to create"),
        (["case", "update", "0", "--field", "name=x"], "positive"),
        (["case", "update", "12"], "nothing to update"),
    ]
    before = len(world.fake.requests)
    for args, message in attempts:
        outcome = world.run(*args)
        assert outcome.exit_code == 2, (args, outcome.stderr)
        assert message in outcome.stderr, (args, outcome.stderr)
    assert world.run("case", "delete", "abc").exit_code == 2
    assert len(world.fake.requests) == before


def test_case_delete_of_unknown_case_says_so(world: World) -> None:
    outcome = world.run("case", "delete", "123")
    assert outcome.exit_code == 0 and "already gone" in outcome.stdout
