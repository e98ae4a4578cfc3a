from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncctl.connectors.tasks.rules import TaskState, parse_event
from syncctl.connectors.tasks.store import TASK_COLUMNS, Rows, TaskStore, report_tasks, report_users
from syncctl.core.db import Database
from syncctl.core.errors import DatabaseError
from tests.connectors.tasks.harness import EVENTS, variant


def random_state(rng: random.Random, number: int) -> TaskState:
    base = datetime(2025, 4, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(10**12))

    def maybe() -> datetime | None:
        return None if rng.random() < 0.5 else base + timedelta(seconds=rng.randrange(10**5))

    completed = maybe()
    return TaskState(str(number), "u", "ø content", completed is not None, base, completed, maybe(), base)


def test_store_rows_read_and_write_tasks_as_the_rules_do() -> None:
    rng = random.Random(1)
    for number in range(200):
        state = random_state(rng, number)
        row = tuple(state.to_row().values())
        assert Rows().row(state) == row
        assert Rows().state(row) == TaskState.from_row(dict(zip(TASK_COLUMNS, row, strict=True))) == state


def test_store_rows_write_back_a_stored_time_in_the_form_it_was_read() -> None:
    rows = Rows()
    stored = ("1", "u", "c", 0, "2025-04-01T18:23:45Z", None, None, "2025-04-01T21:00:00+02:00")
    assert rows.row(rows.state(stored)) == stored
    with pytest.raises(DatabaseError, match="task '2' in table tasks has a time that is not ISO 8601"):
        rows.state(("2", "u", "c", 0, "yesterday", None, None, "2025-04-01T21:00:00+02:00"))


def test_store_batch_is_one_transaction_with_its_history(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "t.db")
    store = TaskStore(db)
    created = parse_event(EVENTS["created"])
    edited = parse_event(
        variant("updated_complete", "2025-04-01T15:30:00-04:00", content="Sleep", isCompleted=False)
    )
    batch = [
        (created, "2025-04-01T18:23:45+00:00", "k1", "{}", "f"),
        (edited, "2025-04-01T19:30:00+00:00", "k2", "{}", "f"),
        (created, "2025-04-01T18:23:45+00:00", "k1", "{}", "f"),
    ]

    result = store.apply(batch, run_id=7)

    assert (dict(result.outcomes), result.inserted, result.updated) == ({"applied": 2, "duplicate": 1}, 1, 1)
    assert db.conn.execute("SELECT content, updated_at FROM tasks").fetchall() == [
        ("Sleep", "2025-04-01T19:30:00+00:00")
    ]
    history = db.conn.execute("SELECT run_id, record_id, op, origin FROM _syncctl_history").fetchall()
    assert history == [(7, "1", "insert", "ingest")]
    store.apply(batch[1:2], run_id=8)
    assert db.conn.execute("SELECT outcome FROM task_events ORDER BY seq").fetchall() == [
        ("applied",),
        ("applied",),
        ("duplicate",),
        ("duplicate",),
    ]
    db.close()


def test_store_refuses_a_tasks_table_someone_changed(tmp_path: Path) -> None:
    TaskStore(Database.open(tmp_path / "t.db")).db.close()
    with sqlite3.connect(tmp_path / "t.db") as conn:
        conn.execute("ALTER TABLE tasks ADD COLUMN priority INTEGER")
    conn.close()
    with pytest.raises(DatabaseError, match="no longer has the columns syncctl made"):
        TaskStore(Database.open(tmp_path / "t.db"))


def test_store_report_reads_open_tasks_and_those_completed_in_the_period(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "t.db")
    TaskStore(db)
    db.conn.executemany(
        f"INSERT INTO tasks ({', '.join(TASK_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("open", "10", "c", 0, "2025-04-01T00:00:00+00:00", None, None, "2025-04-01T00:00:00+00:00"),
            (
                "deleted",
                "10",
                "c",
                0,
                "2025-04-01T00:00:00+00:00",
                None,
                "2025-04-01T01:00:00+00:00",
                "2025-04-01T01:00:00+00:00",
            ),
            (
                "done-in",
                "10",
                "c",
                1,
                "2025-04-01T00:00:00+00:00",
                "2025-04-02T00:00:00+00:00",
                None,
                "2025-04-02T00:00:00+00:00",
            ),
            (
                "done-end",
                "10",
                "c",
                1,
                "2025-04-01T00:00:00+00:00",
                "2025-04-03T00:00:00+00:00",
                None,
                "2025-04-03T00:00:00+00:00",
            ),
            (
                "done-late",
                "10",
                "c",
                1,
                "2025-04-01T00:00:00+00:00",
                "2025-04-02T23:59:59.999999+00:00",
                None,
                "2025-04-03T00:00:00+00:00",
            ),
            ("other", "9", "c", 0, "2025-04-01T00:00:00+00:00", None, None, "2025-04-01T00:00:00+00:00"),
        ],
    )
    start, end = datetime(2025, 4, 2, tzinfo=UTC), datetime(2025, 4, 3, tzinfo=UTC)
    found = report_tasks(db, "10", start, end)
    assert sorted(task.id for task in found) == ["done-in", "done-late", "open"]
    assert report_users(db) == ["9", "10"]
    db.close()
