"""`changes_report`: `_syncctl_history` rows as the mirror records them, filtered, oldest first, streamed."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from syncctl.connectors.intempus.connector import CASES
from syncctl.core.db import Database
from syncctl.core.merge import Policy
from syncctl.core.mirror import MirrorTable
from syncctl.reports.changes import COLUMNS, changes_report, time_bound
from syncctl.reports.output import write_csv, write_json
from tests.conftest import load_fixture

CAPTURED: dict[str, Any] = load_fixture("case_9611850.json")


def case(case_id: int, **fields: Any) -> dict[str, Any]:
    made = dict(CAPTURED)
    made.update(id=case_id, resource_uri=f"/web/v1/case/{case_id}/", **fields)
    return made


@pytest.fixture
def history(tmp_path: Path) -> Iterator[Database]:
    """A mirror with one insert, one update and one delete of cases, each moved to a known time, and one
    hand-written row of another source; opened read-only, as reports open it."""
    path = tmp_path / "mirror.db"
    db = Database.open(path)
    table = MirrorTable.open(db, CASES)
    table.apply_page([case(1), case(2)], policy=Policy.REMOTE, run_id=7, full=False)
    table.apply_page([case(1, name="Renamed")], policy=Policy.REMOTE, run_id=8, full=False)
    with db.transaction(applying=True):
        table.delete_rows([2], origin="cli", run_id=None)
        db.conn.execute(
            "INSERT INTO _syncctl_history (run_id, at, source, table_name, record_id, op, origin, changes)"
            " VALUES (9, '2025-04-01T00:00:00+00:00', 'tasks', 'tasks', 'abc', 'update', 'ingest',"
            " 'not json')"
        )
        for row_id, at in [
            (1, "2025-03-31T23:59:59+00:00"),
            (2, "2025-04-01T00:00:00+00:00"),
            (3, "2025-04-15T12:00:00+00:00"),
            (4, "2025-05-01T00:00:00+00:00"),
        ]:
            db.conn.execute("UPDATE _syncctl_history SET at = ? WHERE id = ?", (at, row_id))
    db.close()
    reader = Database.open(path, read_only=True)
    yield reader
    reader.close()


def ids(report: Any) -> list[int]:
    return [row[0] for row in report.tables[0].rows]


def test_changes_lists_every_row_oldest_first_with_changes_parsed(history: Database) -> None:
    report = changes_report(history)
    assert report.tables[0].columns == COLUMNS
    found = [list(row) for row in report.tables[0].rows]
    assert found[0] == [1, 7, "2025-03-31T23:59:59+00:00", "intempus", "cases", "1", "insert", "pull", None]
    assert found[3] == [3, 8, "2025-04-15T12:00:00+00:00", "intempus", "cases", "1", "update", "pull",
                        {"name": ["Sample 3a", "Renamed"]}]  # fmt: skip
    assert found[4][:8] == [4, None, "2025-05-01T00:00:00+00:00", "intempus", "cases", "2", "delete", "cli"]
    was = found[4][8]  # the row as it was: every column, values as stored
    assert set(was) == set(CAPTURED) and (was["id"], was["active"], was["hour_budget"]) == (2, 1, "155.50")
    # Same time: in the order written.
    assert [row[0] for row in found] == [1, 2, 5, 3, 4]
    assert found[2][8] == "not json"  # a hand-edited row stays readable


def test_changes_period_is_half_open_and_filters_combine(history: Database) -> None:
    start = datetime(2025, 4, 1, tzinfo=UTC)
    end = datetime(2025, 5, 1, tzinfo=UTC)
    assert ids(changes_report(history, since=start, until=end)) == [2, 5, 3]
    assert ids(changes_report(history, since=start)) == [2, 5, 3, 4]
    assert ids(changes_report(history, until=start)) == [1]
    assert ids(changes_report(history, source="tasks")) == [5]
    assert ids(changes_report(history, source="intempus", since=start, until=end)) == [2, 3]
    assert ids(changes_report(history, record_id="1")) == [1, 3]
    assert ids(changes_report(history, record_id="abc")) == []  # `tasks` is no table syncctl made here
    assert ids(changes_report(history, record_id="2", source="grid")) == []
    report = changes_report(history, source="intempus", since=start, record_id="1")
    assert report.meta == {"source": "intempus", "since": "2025-04-01T00:00:00+00:00", "id": "1"}


def test_changes_time_bounds_match_stored_times() -> None:
    assert time_bound(datetime(2025, 4, 1, 8, 30, tzinfo=UTC)) == "2025-04-01T08:30:00+00:00"
    assert time_bound(datetime(2025, 4, 1, 10, 30, tzinfo=timezone(timedelta(hours=2)))) == (
        "2025-04-01T08:30:00+00:00"
    )
    assert time_bound(datetime(2025, 4, 1, 8, 30)) == "2025-04-01T08:30:00+00:00"  # naive is UTC
    # Stored times are whole seconds: a fraction moves the bound to the next one.
    assert time_bound(datetime(2025, 4, 1, 8, 30, 0, 500_000, tzinfo=UTC)) == "2025-04-01T08:30:01+00:00"
    assert time_bound(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00+00:00"
    assert time_bound(datetime(9999, 12, 31, 23, 59, 59, 1, tzinfo=UTC)) > "9999-12-31T23:59:59+00:00"


def test_changes_json_holds_changes_as_objects_csv_as_stored_text(history: Database) -> None:
    out = io.StringIO()
    write_json(changes_report(history, record_id="1"), out)
    assert [row["changes"] for row in json.loads(out.getvalue())] == [
        None,
        {"name": ["Sample 3a", "Renamed"]},
    ]
    # CSV shows a cell as text: the stored compact JSON as it is, not parsed and printed again.
    out = io.StringIO(newline="")
    write_csv(changes_report(history, record_id="1", parse_changes=False), out)
    assert out.getvalue().splitlines()[-1].endswith(',update,pull,"{""name"":[""Sample 3a"",""Renamed""]}"')


def test_changes_streams_without_holding_rows(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "mirror.db")
    with db.transaction():
        db.conn.executemany(
            "INSERT INTO _syncctl_history (run_id, at, source, table_name, record_id, op, origin, changes)"
            " VALUES (1, ?, 'intempus', 'cases', ?, 'update', 'pull', ?)",
            (
                (
                    f"2025-04-01T00:{n // 60 % 60:02d}:{n % 60:02d}+00:00",
                    str(n),
                    json.dumps({"notes": ["", "x" * 50]}),
                )
                for n in range(20_000)
            ),
        )
    report = changes_report(db)
    tracemalloc.start()
    try:
        seen = sum(1 for _ in report.tables[0].rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        db.close()
    assert seen == 20_000
    assert peak < 500_000, peak
