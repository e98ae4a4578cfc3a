"""The mirror as analysts use it (issue 15): numbers that sort and compare as numbers, in sqlite3 and in
Datasette; columns analysts add stay theirs; a rebuilt table keeps change capture; syncctl's own tables are
hidden from Datasette."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlite_utils
from datasette.app import Datasette

from tests.e2e import World


def budgets(world: World) -> list[Decimal]:
    return sorted(
        Decimal(case["hour_budget"]) for case in world.fake.cases.values() if case["hour_budget"] is not None
    )


def test_analyst_typed_view_sorts_and_compares_decimals_as_numbers(world: World) -> None:
    world.sync()
    expected_over_100 = sum(1 for b in budgets(world) if b > 100)
    [(typed,)] = world.query("SELECT count(*) FROM cases_typed WHERE hour_budget > 100")
    assert typed == expected_over_100
    [(as_text,)] = world.query("SELECT count(*) FROM cases WHERE hour_budget > 100")
    assert as_text != expected_over_100  # why the view exists: TEXT compares as text
    top = world.query(
        "SELECT hour_budget FROM cases_typed WHERE hour_budget IS NOT NULL ORDER BY 1 DESC LIMIT 3"
    )
    assert [Decimal(str(v)) for (v,) in top] == budgets(world)[::-1][:3]
    # the table keeps the exact text, the view adds nothing to it
    [(kind,)] = world.query("SELECT typeof(hour_budget) FROM cases WHERE hour_budget IS NOT NULL LIMIT 1")
    assert kind == "text"


def datasette_json(db_path: Path, path: str, metadata: dict[str, Any] | None = None) -> Any:
    async def get() -> Any:
        ds = Datasette([str(db_path)], metadata=metadata)
        response = await ds.client.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    return asyncio.run(get())


def test_analyst_datasette_filters_and_sorts_the_typed_view(world: World) -> None:
    world.sync()
    name = world.db_path.stem
    data = datasette_json(
        world.db_path,
        f"/{name}/cases_typed.json?hour_budget__gt=100&_sort_desc=hour_budget&_shape=array&_size=max",
    )
    values = [Decimal(str(row["hour_budget"])) for row in data]
    expected = [b for b in budgets(world)[::-1] if b > 100]
    assert values == expected  # every one over 100, none missing, largest first


def test_analyst_datasette_metadata_hides_syncctl_tables(world: World) -> None:
    world.sync()
    outcome = world.run("datasette-metadata")
    assert outcome.exit_code == 0
    metadata = json.loads(outcome.stdout)
    tables = datasette_json(world.db_path, f"/{world.db_path.stem}.json", metadata)["tables"]
    visible = sorted(t["name"] for t in tables if not t["hidden"])
    assert visible == ["cases"]
    assert all(t["hidden"] for t in tables if t["name"].startswith("_syncctl_"))


def test_analyst_added_column_is_never_pushed_and_survives_pulls(world: World) -> None:
    world.sync()
    case_id = min(world.fake.cases)
    db = sqlite_utils.Database(world.db_path)
    db.table("cases").add_column("my_tag", str)
    db.close()
    world.edit("UPDATE cases SET my_tag = 'look at this' WHERE id = ?", case_id)
    world.fake.update(case_id, {"notes": "changed remotely"})

    result = world.sync()

    assert (result["pushed"], result["push_failed"]) == (0, 0)
    assert "my_tag" not in world.fake.cases[case_id]
    assert world.query("SELECT my_tag, notes FROM cases WHERE id = ?", case_id) == [
        ("look at this", "changed remotely")
    ]
    assert world.run("status", "--json").json()["pending"] == 0


def test_analyst_rebuilt_table_gets_its_change_capture_back(world: World) -> None:
    world.sync()
    db = sqlite_utils.Database(world.db_path)
    db.table("cases").transform(types={"notes": str})  # a rebuild: a new table copied in, the old one dropped
    db.close()
    triggers = world.query("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'cases'")
    assert triggers == []  # this is what a rebuild does to them

    outcome = world.run("sync", "--json")
    assert outcome.exit_code == 0 and "change-capture triggers of cases were missing" in outcome.stderr
    case_id = min(world.fake.cases)
    world.edit("UPDATE cases SET name = 'after the rebuild' WHERE id = ?", case_id)
    assert world.sync()["pushed"] == 1
    assert world.fake.cases[case_id]["name"] == "after the rebuild"


def test_analyst_reading_commands_never_write(world: World) -> None:
    world.sync()
    before = world.db_path.read_bytes()
    world.db_path.chmod(0o400)  # a file the reader may not write: reading must still work
    try:
        for args in (("status", "--json"), ("conflicts",), ("case", "get", str(min(world.fake.cases))),
                     ("sources",), ("datasette-metadata",)):  # fmt: skip
            outcome = world.run(*args)
            assert outcome.exit_code == 0, (args, outcome.stderr)
    finally:
        world.db_path.chmod(0o600)
    assert world.db_path.read_bytes() == before
    with sqlite3.connect(world.db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_analyst_keep_deleted_marks_rows_instead_of_removing_them(world: World) -> None:
    world.sync(SYNCCTL_KEEP_DELETED="intempus")
    gone, back = sorted(world.fake.cases)[:2]
    name = world.fake.cases[gone]["name"]
    world.fake.delete(gone)
    result = world.sync("--full", SYNCCTL_KEEP_DELETED="intempus")
    assert result["deleted"] == 1
    [(kept_name, deleted_at)] = world.query("SELECT name, _deleted_at FROM cases WHERE id = ?", gone)
    assert kept_name == name and deleted_at is not None
    assert world.query("SELECT _deleted_at FROM cases WHERE id = ?", back) == [(None,)]
    again = world.sync("--full", SYNCCTL_KEEP_DELETED="intempus")
    assert (again["deleted"], again["unchanged"]) == (0, 299)  # a kept row is not deleted twice
    assert world.query("SELECT count(*) FROM cases") == [(300,)]
    assert world.run("status", "--json").json()["cases"] == 299  # the rows that exist remotely
    refused = world.run("sync", SYNCCTL_KEEP_DELETED="nosuch")
    assert refused.exit_code == 3 and "SYNCCTL_KEEP_DELETED" in refused.stderr


def test_analyst_keep_deleted_is_off_by_default(world: World) -> None:
    world.sync()
    world.fake.delete(min(world.fake.cases))
    world.sync("--full")
    assert "_deleted_at" not in [row[1] for row in world.query("PRAGMA table_info(cases)")]
    assert world.query("SELECT count(*) FROM cases") == [(299,)]
