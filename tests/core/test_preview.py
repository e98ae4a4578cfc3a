"""`sync --dry-run` (issue 15): what a run would pull and push, per table, and nothing written."""

from __future__ import annotations

import json

from tests.e2e import World


def test_preview_first_run_lists_what_would_be_inserted_and_creates_nothing(world: World) -> None:
    outcome = world.run("sync", "--dry-run", "--json")
    assert outcome.exit_code == 0, outcome.stderr
    report = json.loads(outcome.stdout)
    assert (report["dry_run"], report["mode"], report["status"]) == (True, "full", "ok")
    assert report["pull"]["cases"]["insert"] == 300
    assert len(report["pull"]["cases"]["ids"]["insert"]) == 300
    assert not world.db_path.exists()


def test_preview_names_changed_fields_pending_pushes_and_writes_nothing(world: World) -> None:
    world.sync()
    first, second, third = sorted(world.fake.cases)[:3]
    world.fake.update(first, {"notes": "remote edit"})
    world.fake.delete(second)
    world.edit("UPDATE cases SET name = 'local edit' WHERE id = ?", third)
    before = world.db_path.read_bytes()
    requests_before = len(world.fake.requests)

    report = world.run("sync", "--full", "--dry-run", "--json").json()

    assert report["pull"]["cases"]["update"] == 1 and report["pull"]["cases"]["delete"] == 1
    assert {"id": str(first), "fields": ["logical_timestamp", "notes"]} in report["pull"]["cases"]["ids"][
        "update"
    ]
    assert report["pull"]["cases"]["ids"]["delete"] == [str(second)]
    assert report["push"]["cases"]["update"] == 1
    assert report["push"]["cases"]["changes"] == [{"id": third, "op": "update", "fields": ["name"]}]
    assert world.db_path.read_bytes() == before  # nothing written
    writes = [r for r in world.fake.requests[requests_before:] if r[0] != "GET"]
    assert writes == []  # nothing sent
    assert world.fake.cases[third]["name"] != "local edit"


def test_preview_says_a_mass_delete_would_be_refused_and_lists_every_id(world: World) -> None:
    world.sync()
    gone = sorted(world.fake.cases)[:100]
    for case_id in gone:
        world.fake.delete(case_id)
    report = world.run("sync", "--full", "--dry-run", "--json").json()
    assert "100 of 300 rows would be deleted" in report["would_be_refused"]
    assert report["pull"]["cases"]["ids"]["delete"] == [str(i) for i in gone]


def test_preview_plain_output_is_one_line_per_source(world: World) -> None:
    world.sync()
    outcome = world.run("sync", "--dry-run")
    assert outcome.exit_code == 0
    assert outcome.stdout.splitlines() == [
        "dry run intempus (incremental): would pull nothing; would push nothing"
    ]
