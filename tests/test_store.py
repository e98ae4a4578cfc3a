from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from syncctl.core.errors import DatabaseError, LockedError
from syncctl.core.lock import hold_lock
from syncctl.core.merge import Policy
from tests.cases_store import Store


def edit(db_path: Path, sql: str, *params: Any) -> None:
    """Change the mirror the way any other program would: a plain sqlite3 connection."""
    with sqlite3.connect(db_path) as db:
        db.execute(sql, params)
    db.close()


def pending(store: Store) -> list[tuple[int | str, str]]:
    return [(c.id, c.op) for c in store.pending_changes()]


def test_store_apply_page_stores_values_with_their_remote_types(
    store: Store, db_path: Path, case_fixture: dict[str, Any]
) -> None:
    counts = store.apply_page([case_fixture], policy=Policy.REMOTE, run_id=None, full=False)
    assert counts.inserted == 1
    with sqlite3.connect(db_path) as db:
        db.row_factory = sqlite3.Row
        row = dict(db.execute("SELECT * FROM cases WHERE id = 9611850").fetchone())
        types = dict(
            db.execute(
                "SELECT 'hour_budget', typeof(hour_budget) FROM cases UNION ALL "
                "SELECT 'customer_id', typeof(customer_id) FROM cases UNION ALL "
                "SELECT 'creation_date', typeof(creation_date) FROM cases UNION ALL "
                "SELECT 'active', typeof(active) FROM cases UNION ALL "
                "SELECT 'logical_timestamp', typeof(logical_timestamp) FROM cases UNION ALL "
                "SELECT 'end_date', typeof(end_date) FROM cases"
            ).fetchall()
        )
    db.close()
    expected = {
        name: (
            int(value) if isinstance(value, bool) else json.dumps(value) if isinstance(value, list) else value
        )
        for name, value in case_fixture.items()
    }
    assert row == expected
    assert types == {
        "hour_budget": "text",
        "customer_id": "text",
        "creation_date": "text",
        "active": "integer",
        "logical_timestamp": "integer",
        "end_date": "null",
    }


def test_store_apply_page_counts_inserted_unchanged_updated(
    store: Store, list_page_fixture: dict[str, Any]
) -> None:
    cases = list_page_fixture["objects"]
    first = store.apply_page(cases, policy=Policy.REMOTE, run_id=None, full=False)
    again = store.apply_page(cases, policy=Policy.REMOTE, run_id=None, full=False)
    changed = [dict(cases[0], name="Renamed", logical_timestamp=cases[0]["logical_timestamp"] + 1), cases[1]]
    third = store.apply_page(changed, policy=Policy.REMOTE, run_id=None, full=False)
    assert (first.inserted, first.updated, first.unchanged) == (2, 0, 0)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert (third.inserted, third.updated, third.unchanged) == (0, 1, 1)
    assert store.get_row(cases[0]["id"])["name"] == "Renamed"  # type: ignore[index]
    assert pending(store) == []  # what syncctl pulls is never taken for a local edit


def test_store_new_remote_field_becomes_a_column(store: Store, case_fixture: dict[str, Any]) -> None:
    store.apply_page(
        [dict(case_fixture, budget_tags=["a", "b"])], policy=Policy.REMOTE, run_id=None, full=False
    )
    reopened_row = store.get_row(case_fixture["id"])
    assert "budget_tags" in store.columns
    assert reopened_row is not None and reopened_row["budget_tags"] == '["a", "b"]'
    assert store.to_api("budget_tags", reopened_row["budget_tags"]) == ["a", "b"]


def test_store_local_update_is_recorded_with_its_base(
    store: Store, db_path: Path, case_fixture: dict[str, Any]
) -> None:
    store.apply_page([case_fixture], policy=Policy.REMOTE, run_id=None, full=False)
    edit(db_path, "UPDATE cases SET name = 'first' WHERE id = 9611850")
    edit(db_path, "UPDATE cases SET name = 'second' WHERE id = 9611850")
    [change] = store.pending_changes()
    assert (change.id, change.op) == (9611850, "update")
    assert change.base is not None and change.base["name"] == "Sample 3a"  # the synced version, not 'first'
    assert change.local is not None and change.local["name"] == "second"


def test_store_local_insert_then_delete_leaves_nothing_to_push(store: Store, db_path: Path) -> None:
    edit(db_path, "INSERT INTO cases (name, number, customer) VALUES ('n', '1', '/web/v1/customer/1/')")
    assert [op for _, op in pending(store)] == ["insert"]
    edit(db_path, "DELETE FROM cases WHERE name = 'n'")
    assert pending(store) == []


def test_store_local_delete_is_recorded_with_its_base(
    store: Store, db_path: Path, case_fixture: dict[str, Any]
) -> None:
    store.apply_page([case_fixture], policy=Policy.REMOTE, run_id=None, full=False)
    edit(db_path, "DELETE FROM cases WHERE id = 9611850")
    [change] = store.pending_changes()
    assert (change.op, change.local) == ("delete", None)
    assert change.base is not None and change.base["number"] == "3a"


def test_store_pull_merges_into_a_pending_local_edit(
    store: Store, db_path: Path, case_fixture: dict[str, Any]
) -> None:
    store.apply_page([case_fixture], policy=Policy.REMOTE, run_id=None, full=False)
    edit(db_path, "UPDATE cases SET name = 'local name' WHERE id = 9611850")
    remote = dict(case_fixture, notes="remote notes", logical_timestamp=case_fixture["logical_timestamp"] + 5)
    counts = store.apply_page([remote], policy=Policy.REMOTE, run_id=None, full=False)
    row = store.get_row(9611850)
    assert row is not None and (row["name"], row["notes"]) == ("local name", "remote notes")
    assert counts.conflicts == []
    [change] = store.pending_changes()  # the local edit is still to be pushed, against the new base
    assert change.base is not None and change.base["notes"] == "remote notes"


@pytest.mark.parametrize(("policy", "winner"), [(Policy.REMOTE, "remote name"), (Policy.LOCAL, "local name")])
def test_store_pull_conflict_is_decided_by_policy_and_recorded(
    store: Store, db_path: Path, case_fixture: dict[str, Any], policy: Policy, winner: str
) -> None:
    store.apply_page([case_fixture], policy=policy, run_id=None, full=False)
    edit(db_path, "UPDATE cases SET name = 'local name' WHERE id = 9611850")
    remote = dict(case_fixture, name="remote name", logical_timestamp=case_fixture["logical_timestamp"] + 5)
    counts = store.apply_page([remote], policy=policy, run_id=7, full=False)
    row = store.get_row(9611850)
    assert row is not None and row["name"] == winner
    assert [(c.field, c.local, c.remote, c.winner) for c in counts.conflicts] == [
        ("name", "local name", "remote name", policy)
    ]
    [recorded] = store.conflicts()
    assert (recorded["run_id"], recorded["case_id"], recorded["field"], recorded["winner"]) == (
        7,
        9611850,
        "name",
        policy.value,
    )
    assert store.pending_count() == (1 if policy is Policy.LOCAL else 0)


def test_store_pull_moves_a_local_insert_off_an_id_intempus_assigns(
    store: Store, db_path: Path, case_fixture: dict[str, Any]
) -> None:
    edit(db_path, "INSERT INTO cases (id, name) VALUES (9611850, 'mine')")
    store.apply_page([case_fixture], policy=Policy.REMOTE, run_id=None, full=False)
    assert store.get_row(9611850)["name"] == "Sample 3a"  # type: ignore[index]
    [change] = store.pending_changes()
    assert change.op == "insert" and isinstance(change.id, int) and change.id < 0
    assert change.local is not None and change.local["name"] == "mine"


def test_store_unseen_ids_leave_out_local_inserts(
    store: Store, db_path: Path, list_page_fixture: dict[str, Any]
) -> None:
    first, second = list_page_fixture["objects"]
    store.apply_page([first, second], policy=Policy.REMOTE, run_id=None, full=False)
    edit(db_path, "INSERT INTO cases (name) VALUES ('local only')")
    store.begin_listing()
    store.apply_page([first], policy=Policy.REMOTE, run_id=None, full=True)
    assert store.unseen_ids() == [second["id"]]


def test_store_remote_delete_against_local_edit_follows_policy(
    store: Store, db_path: Path, case_fixture: dict[str, Any]
) -> None:
    store.apply_page([case_fixture], policy=Policy.REMOTE, run_id=None, full=False)
    edit(db_path, "UPDATE cases SET name = 'kept?' WHERE id = 9611850")
    deleted, conflicts = store.apply_remote_deletes([9611850], policy=Policy.LOCAL, run_id=None)
    assert (deleted, [c.field for c in conflicts]) == (0, ["(case)"])
    assert [(c.op, c.local["name"] if c.local else None) for c in store.pending_changes()] == [
        ("insert", "kept?")
    ]
    deleted, _ = store.apply_remote_deletes([9611850], policy=Policy.REMOTE, run_id=None)
    assert (deleted, store.case_count(), store.pending_count()) == (1, 0, 0)


def test_store_run_log_marks_runs_of_dead_processes_interrupted(store: Store) -> None:
    abandoned = store.start_run("full")
    current = store.start_run("incremental")
    counts = dict.fromkeys(
        ("fetched", "inserted", "updated", "deleted", "unchanged", "pushed", "push_failed", "conflicts"), 3
    )
    store.finish_run(current, status="ok", counts=counts, duration_s=1.23456, error=None)
    runs = {run["id"]: run for run in store.runs()}
    assert runs[abandoned]["status"] == "interrupted"
    assert runs[current]["status"] == "ok" and runs[current]["fetched"] == 3
    assert runs[current]["duration_s"] == 1.235 and runs[current]["finished_at"].endswith("+00:00")


def test_store_cursor_round_trip(store: Store) -> None:
    assert store.get_cursor() is None
    store.set_cursor(9113344546)
    assert store.get_cursor() == 9113344546


def test_store_open_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError, match="not a usable SQLite database"):
        Store.open_at(path)


def test_store_open_without_create_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="run `syncctl sync` first"):
        Store.open_at(tmp_path / "missing.db", create=False)


def test_store_file_is_in_wal_mode(store: Store, db_path: Path) -> None:
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_lock_second_holder_is_refused_until_the_first_lets_go(db_path: Path) -> None:
    with (
        hold_lock(db_path, "intempus"),
        pytest.raises(LockedError, match="another syncctl run"),
        hold_lock(db_path, "intempus"),
    ):
        pass
    with hold_lock(db_path, "intempus"):
        pass


def test_store_reopening_a_set_up_file_writes_nothing(store: Store, db_path: Path) -> None:
    again = Store.open_at(db_path)
    try:
        assert again.conn.total_changes == 0
        assert again.columns == store.columns
    finally:
        again.close()


def test_store_new_column_rewrites_the_triggers_so_edits_of_it_are_caught(
    store: Store, db_path: Path, case_fixture: dict[str, Any]
) -> None:
    store.apply_page([dict(case_fixture, colour="red")], policy=Policy.REMOTE, run_id=None, full=False)
    edit(db_path, "UPDATE cases SET colour = 'blue' WHERE id = 9611850")
    [change] = store.pending_changes()
    assert change.base is not None and change.base["colour"] == "red"


def test_store_mirror_reads_naturally_with_sqlite_utils(
    store: Store, db_path: Path, case_fixture: dict[str, Any]
) -> None:
    store.apply_page([case_fixture], policy=Policy.REMOTE, run_id=None, full=False)
    db = sqlite_utils.Database(db_path)
    try:
        columns = db["cases"].columns_dict
        assert (columns["id"], columns["hour_budget"], columns["active"]) == (int, str, int)
        assert db["cases"].get(9611850)["hour_budget"] == "155.50"  # type: ignore[union-attr]
        # TEXT affinity: a number typed by a person still matches the string Intempus sends
        assert [row["name"] for row in db.query("SELECT name FROM cases WHERE customer_id = 6666940")] == [
            "Sample 3a"
        ]
        assert sorted(t for t in db.table_names() if not t.startswith("_syncctl_")) == ["cases"]
    finally:
        db.close()


def test_store_new_field_is_kept_even_when_another_field_went_missing(
    store: Store, case_fixture: dict[str, Any]
) -> None:
    swapped = {k: v for k, v in case_fixture.items() if k != "notes"} | {"colour": "red"}
    assert len(swapped) == len(case_fixture)  # same width: only the key set tells the difference
    store.apply_page([swapped], policy=Policy.REMOTE, run_id=None, full=False)
    row = store.get_row(case_fixture["id"])
    assert row is not None and (row["colour"], row["notes"]) == ("red", None)
