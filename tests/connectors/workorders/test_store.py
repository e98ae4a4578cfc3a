"""The `workorders` table keeps `is_synced` right by itself, for edits made by any SQLite client."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncctl.connectors.workorders.store import WorkOrderStore, read_workorder, status_details
from syncctl.core.db import Database
from syncctl.core.mirror import MirrorTable
from tests.connectors.workorders.conftest import Client

SYNCED = {
    "number": 7,
    "status": "pending",
    "title": "Pump check",
    "description": None,
    "created_at": "2025-05-02T00:00:00+00:00",
    "updated_at": "2025-05-02T01:00:00+00:00",
    "deleted": 0,
    "deleted_at": None,
    "is_synced": 1,
    "synced_at": "2025-05-02T02:00:00+00:00",
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[WorkOrderStore]:
    db = Database.open(tmp_path / "syncctl.db", claims=frozenset({"workorders"}))
    opened = WorkOrderStore.open(db)
    with opened.batch() as batch:
        batch.write({7: dict(SYNCED)}, {}, run_id=None)
    yield opened
    db.close()


def other_client(store: WorkOrderStore, sql: str, *params: Any) -> None:
    with sqlite3.connect(store.db.path) as other:
        other.execute(sql, params)
    other.close()


def row(store: WorkOrderStore) -> dict[str, Any]:
    found = store.table.get_row(7)
    assert found is not None
    return found


def pending(store: WorkOrderStore) -> list[tuple[Any, ...]]:
    return store.conn.execute("SELECT record_id, op, base FROM _syncctl_pending").fetchall()


def test_store_syncctl_writes_are_not_local_edits(store: WorkOrderStore) -> None:
    assert row(store) == SYNCED
    assert pending(store) == []


@pytest.mark.parametrize("core_triggers_newer", [False, True], ids=["ours-newer", "core-newer"])
def test_store_local_edit_marks_unsynced_stamps_the_time_and_keeps_the_synced_base(
    store: WorkOrderStore, core_triggers_newer: bool
) -> None:
    if core_triggers_newer:
        # The core rewrites its triggers (e.g. after an upgrade): SQLite then fires them in another order.
        with store.db.transaction():
            store.conn.execute("DELETE FROM _syncctl_state WHERE key = 'trigger_columns:workorders'")
        MirrorTable.open(store.db, store.table.spec)

    other_client(store, "UPDATE workorders SET title = 'Pump check, east' WHERE number = 7")

    edited = row(store)
    assert edited == {
        **SYNCED,
        "title": "Pump check, east",
        "updated_at": edited["updated_at"],
        "is_synced": 0,
    }
    assert edited["updated_at"] > SYNCED["updated_at"]
    [(key, op, base)] = pending(store)
    assert (key, op, json.loads(base)) == (7, "update", SYNCED)


def test_store_local_edit_that_sets_updated_at_keeps_it(store: WorkOrderStore) -> None:
    other_client(
        store, "UPDATE workorders SET status = 'completed', updated_at = '2025-05-03T00:00:00+00:00'"
    )
    assert row(store) == {
        **SYNCED,
        "status": "completed",
        "updated_at": "2025-05-03T00:00:00+00:00",
        "is_synced": 0,
    }


def test_store_edit_of_bookkeeping_columns_only_is_not_a_change_of_the_order(store: WorkOrderStore) -> None:
    other_client(store, "UPDATE workorders SET is_synced = 0")
    assert row(store) == {**SYNCED, "is_synced": 0}  # written out as it is, updated_at unchanged

    other_client(store, "UPDATE workorders SET is_synced = 1, synced_at = NULL")
    assert row(store) == {**SYNCED, "synced_at": None}


def test_store_local_insert_is_unsynced_with_times_filled_in(store: WorkOrderStore) -> None:
    other_client(store, "INSERT INTO workorders (number, title) VALUES (8, 'New')")
    found = store.table.get_row(8)
    assert found is not None
    assert found == {
        "number": 8,
        "status": "pending",
        "title": "New",
        "description": None,
        "created_at": found["created_at"],
        "updated_at": found["created_at"],
        "deleted": 0,
        "deleted_at": None,
        "is_synced": 0,
        "synced_at": None,
    }
    assert found["created_at"].endswith("+00:00")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE workorders SET status = 'done'",
        "UPDATE workorders SET deleted = 2",
        "INSERT INTO workorders (number) VALUES (9)",
    ],
)
def test_store_values_the_client_cannot_take_are_refused_at_once(store: WorkOrderStore, sql: str) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        other_client(store, sql)
    assert row(store) == SYNCED


def test_store_mark_synced_skips_a_row_edited_since_it_was_read(store: WorkOrderStore) -> None:
    other_client(store, "UPDATE workorders SET title = 'first'")
    [snapshot] = store.unsynced()
    other_client(store, "UPDATE workorders SET title = 'second'")

    assert store.mark_synced([snapshot], "2025-06-01T00:00:00+00:00") == []

    assert (row(store)["title"], row(store)["is_synced"]) == ("second", 0)
    [newer] = store.unsynced()
    assert store.mark_synced([newer], "2025-06-01T00:00:00+00:00") == [7]
    assert row(store) == {**newer, "is_synced": 1, "synced_at": "2025-06-01T00:00:00+00:00"}
    assert pending(store) == []


def test_store_settle_pending_drops_entries_of_synced_and_deleted_rows(store: WorkOrderStore) -> None:
    other_client(store, "INSERT INTO workorders (number, title) VALUES (8, 'kept')")
    other_client(store, "DELETE FROM workorders WHERE number = 7")
    assert sorted(key for key, _, _ in pending(store)) == [7, 8]

    assert store.settle_pending() == [7]

    assert [key for key, _, _ in pending(store)] == [8]  # still to be written out
    assert store.settle_pending() == []


def test_store_discard_restores_the_synced_row(client: Client) -> None:
    client.put(
        "7.json",
        {
            **json.loads((Path(__file__).parents[2] / "fixtures/tracos/inbound/1.json").read_bytes()),
            "orderNo": 7,
        },
    )
    client.sync()
    synced = client.rows()[7]
    client.edit("UPDATE workorders SET title = 'oops' WHERE number = 7")

    outcome = client.run("discard", "--source", "workorders", "--all")

    assert outcome.exit_code == 0, outcome.stderr
    assert client.rows()[7] == synced
    assert client.sync()["pushed"] == 0


def test_store_reads_on_a_read_only_file(store: WorkOrderStore) -> None:
    db = Database.open(store.db.path, read_only=True)
    try:
        assert read_workorder(db, 7) == {**SYNCED, "deleted": False, "is_synced": True}
        assert read_workorder(db, 8) is None
        assert status_details(db) == {"unsynced": 0, "rejected_files": 0, "rejected": []}
    finally:
        db.close()
