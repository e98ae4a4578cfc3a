"""`summary_report`: groups, counts and exact sums over a real mirrored table; names checked, values bound."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from syncctl.connectors.intempus.connector import CASES
from syncctl.core.db import Database
from syncctl.core.errors import UsageError
from syncctl.core.merge import Policy
from syncctl.core.mirror import MirrorTable, TableSpec
from syncctl.reports.output import write_json
from syncctl.reports.summary import affinity, bound_values, parse_where, summary_report
from tests.conftest import load_fixture

CAPTURED: dict[str, Any] = load_fixture("case_9611850.json")


def case(case_id: int, **fields: Any) -> dict[str, Any]:
    """The captured case with another id and the given fields."""
    made = dict(CAPTURED)
    made.update(id=case_id, resource_uri=f"/web/v1/case/{case_id}/", **fields)
    return made


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Any]:
    """Write cases through the one write path, then hand out the file opened read-only, as reports open it."""
    path = tmp_path / "mirror.db"
    opened: list[Database] = []

    def make(*cases: dict[str, Any]) -> Database:
        db = Database.open(path)
        MirrorTable.open(db, CASES).apply_page(list(cases), policy=Policy.REMOTE, run_id=None, full=False)
        db.close()
        reader = Database.open(path, read_only=True)
        opened.append(reader)
        return reader

    yield make
    for db in opened:
        db.close()


def rows(db: Database, table: str, group_by: str, **options: Any) -> list[list[Any]]:
    report = summary_report(db, table, group_by, **options)
    return [list(row) for row in report.tables[0].rows]


ANNE, JENS = "Anne Jørgensen", "Jens Hansen"


def test_summary_counts_rows_per_value_no_value_first(mirror: Any) -> None:
    db = mirror(
        case(1, responsible_name=ANNE),
        case(2, responsible_name=JENS),
        case(3, responsible_name=ANNE),
        case(4, responsible_name=None),
    )
    report = summary_report(db, "cases", "responsible_name")
    assert report.tables[0].columns == ["responsible_name", "count"]
    assert [list(r) for r in report.tables[0].rows] == [[None, 1], [ANNE, 2], [JENS, 1]]
    assert report.meta == {"table": "cases", "group_by": "responsible_name"}


def test_summary_sums_decimal_strings_exactly(mirror: Any) -> None:
    db = mirror(
        *(case(i, responsible_name=ANNE, hour_budget="0.10") for i in range(1, 4)),
        case(9, hour_budget="0.20"),
    )
    assert 0.1 + 0.1 + 0.1 != 0.3  # what a float sum would give
    report = summary_report(db, "cases", "responsible_name", sums=["hour_budget"])
    assert [list(r) for r in report.tables[0].rows] == [
        [None, 1, Decimal("0.20")],
        [ANNE, 3, Decimal("0.30")],
    ]
    out = io.StringIO()
    write_json(summary_report(db, "cases", "responsible_name", sums=["hour_budget"]), out)
    assert json.loads(out.getvalue()) == [
        {"responsible_name": None, "count": 1, "sum_hour_budget": 0.2},
        {"responsible_name": ANNE, "count": 3, "sum_hour_budget": 0.3},
    ]


def test_summary_sums_integers_as_integers_and_skip_what_is_no_number(mirror: Any) -> None:
    db = mirror(
        case(1, hour_budget="155.50", number_of_children=2, latitude=" 1.5 "),
        case(2, hour_budget=None, number_of_children=3, latitude="NaN"),
        case(3, hour_budget="lots", number_of_children=0, latitude="1e2"),
    )
    found = rows(db, "cases", "active", sums=["hour_budget", "number_of_children", "latitude"])
    assert found == [[1, 3, Decimal("155.50"), 5, Decimal("101.5")]]
    assert isinstance(found[0][3], int)


def test_summary_sum_of_a_million_hour_budgets_would_drift_as_floats(mirror: Any) -> None:
    # A total a float sum gets wrong in its last digits: 3 x 1234567.89 + 0.01.
    db = mirror(*(case(i, hour_budget="1234567.89") for i in range(1, 4)), case(4, hour_budget="0.01"))
    assert sum([1234567.89] * 3 + [0.01]) != 3703703.68
    assert rows(db, "cases", "active", sums=["hour_budget"]) == [[1, 4, Decimal("3703703.68")]]


def test_summary_where_compares_values_as_the_column_stores_them(mirror: Any) -> None:
    db = mirror(
        case(1, active=True, responsible_name=ANNE, customer_id="6666940"),
        case(2, active=False, responsible_name=ANNE, customer_id="6666947"),
        case(3, active=True, responsible_name=JENS, customer_id="6666940"),
    )
    # INTEGER column: the text "1" compares as the number 1; a boolean field also takes true/false.
    assert rows(db, "cases", "id", where=[("active", "1")]) == [[1, 1], [3, 1]]
    assert rows(db, "cases", "id", where=[("active", "false")]) == [[2, 1]]
    # TEXT column holding digits: bound as text, it matches the stored text "6666940" (and never 6666940.0).
    assert rows(db, "cases", "id", where=[("customer_id", "6666940")]) == [[1, 1], [3, 1]]
    assert rows(db, "cases", "id", where=[("customer_id", "6666940.0")]) == []
    assert rows(db, "cases", "id", where=[("responsible_name", ANNE), ("active", "1")]) == [[1, 1]]
    # One field twice: either value; different fields: both.
    assert rows(db, "cases", "id", where=[("customer_id", "6666947"), ("customer_id", "6666940")]) == [
        [1, 1],
        [2, 1],
        [3, 1],
    ]


def test_summary_where_on_a_column_without_affinity_matches_number_and_text(mirror: Any) -> None:
    # A field syncctl first saw as a number gets no type, so a later "7" stays text next to 7.
    db = mirror(case(1, grade=7), case(2, grade="7"), case(3, grade=8), case(4, grade="7.0"))
    assert rows(db, "cases", "id", where=[("grade", "7")]) == [[1, 1], [2, 1]]
    assert rows(db, "cases", "grade", where=[("grade", "7.0")]) == [[7, 1], ["7.0", 1]]


def test_summary_bound_values_follow_sqlite_affinity_rules() -> None:
    assert [affinity(t) for t in ("INTEGER", "TEXT", "", "REAL", "DECIMAL(10,2)", "VARCHAR", "BLOB")] == [
        "INTEGER",
        "TEXT",
        "BLOB",
        "REAL",
        "NUMERIC",
        "TEXT",
        "BLOB",
    ]
    assert bound_values("6666940", "TEXT", "str") == ["6666940"]
    assert bound_values("true", "INTEGER", "bool") == [1]
    assert bound_values("5", "", None) == ["5", 5]
    assert bound_values("2.5", "", None) == ["2.5", 2.5]
    assert bound_values("nan", "", None) == ["nan"]


def test_summary_field_names_are_checked_then_quoted(mirror: Any) -> None:
    odd = 'x"); DROP TABLE cases; --'
    db = mirror(case(1, **{odd: "a"}), case(2, **{odd: "a"}))
    assert rows(db, "cases", odd, where=[(odd, "a")]) == [["a", 2]]
    assert rows(db, "cases", "Responsible_Name") == [[None, 2]]  # SQLite's own names ignore case
    assert summary_report(db, "cases", "RESPONSIBLE_NAME").tables[0].columns == ["responsible_name", "count"]


@pytest.mark.parametrize(
    ("table", "group_by", "options", "message"),
    [
        ("casez", "active", {}, "unknown table 'casez' (did you mean cases?); the data tables are cases"),
        ("sqlite_master", "name", {}, "unknown table 'sqlite_master'"),
        ("_syncctl_history", "op", {}, "unknown table '_syncctl_history'"),
        ("cases", "activ", {}, "--group-by: table cases has no field 'activ' (did you mean active?)"),
        ("cases", "active", {"where": [("nobody", "1")]}, "--where: table cases has no field 'nobody'"),
        ("cases", "active", {"sums": ["budget"]}, "--sum: table cases has no field 'budget'"),
        ("cases", "count", {}, "has no field 'count'"),
    ],
)
def test_summary_refuses_unknown_tables_and_fields(
    mirror: Any, table: str, group_by: str, options: dict[str, Any], message: str
) -> None:
    db = mirror(case(1))
    with pytest.raises(UsageError) as raised:
        summary_report(db, table, group_by, **options)
    assert message in str(raised.value)


def test_summary_refuses_a_group_column_named_like_its_own(mirror: Any) -> None:
    db = mirror(case(1, count=3))
    with pytest.raises(UsageError, match="has its own count"):
        summary_report(db, "cases", "count")


def test_summary_ignores_tables_syncctl_did_not_make(mirror: Any, tmp_path: Path) -> None:
    db = mirror(case(1))
    db.close()
    writer = Database.open(tmp_path / "mirror.db")
    writer.conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, who TEXT)")
    writer.close()
    reader = Database.open(tmp_path / "mirror.db", read_only=True)
    try:
        with pytest.raises(UsageError, match="unknown table 'notes'"):
            summary_report(reader, "notes", "who")
    finally:
        reader.close()


def test_summary_leaves_out_rows_kept_after_a_remote_delete(mirror: Any, tmp_path: Path) -> None:
    mirror(case(1), case(2), case(3)).close()
    db = Database.open(tmp_path / "mirror.db")
    table = MirrorTable.open(db, CASES)
    table.keep_deleted_rows()
    with db.transaction(applying=True):
        table.delete_rows([2], origin="pull", run_id=None, keep=True)
    db.close()
    reader = Database.open(tmp_path / "mirror.db", read_only=True)
    try:
        assert rows(reader, "cases", "active") == [[1, 2]]
        grouped = rows(reader, "cases", "_deleted_at")
        assert [count for _, count in grouped] == [2, 1] and grouped[0][0] is None
    finally:
        reader.close()


def test_summary_where_parsing() -> None:
    assert parse_where(["a=1", " b = x=y", "c="]) == [("a", "1"), ("b", " x=y"), ("c", "")]
    for bad in ("a", "=1"):
        with pytest.raises(UsageError, match="--where takes FIELD=VALUE"):
            parse_where([bad])


def test_summary_with_sums_streams_a_group_at_a_time(mirror: Any) -> None:
    db = mirror(*(case(i, hour_budget=f"{i % 100}.25") for i in range(1, 10_001)))
    report = summary_report(db, "cases", "id", sums=["hour_budget"])
    tracemalloc.start()
    try:
        seen = 0
        for row in report.tables[0].rows:
            seen += 1
            assert row[1] == 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == 10_000
    assert peak < 500_000, peak  # one group at a time, not 10,000 held


def test_summary_works_on_any_sources_table(tmp_path: Path) -> None:
    # A table with a fixed schema and a text key, as the task and work-order sources declare theirs.
    spec = TableSpec(
        name="jobs",
        source="tasks",
        key="id",
        key_type="TEXT",
        ddl="CREATE TABLE jobs (id TEXT PRIMARY KEY, user_id TEXT, hours REAL, done INTEGER)",
        capture=False,
    )
    db = Database.open(tmp_path / "mirror.db")
    jobs: list[dict[str, Any]] = [
        {"id": "a", "user_id": "u1", "hours": 0.1, "done": 1},
        {"id": "b", "user_id": "u1", "hours": 0.2, "done": 1},
        {"id": "c", "user_id": "u2", "hours": 1.5, "done": 0},
        {"id": "d", "user_id": "u2", "hours": None, "done": 1},
    ]
    MirrorTable.open(db, spec).apply_page(jobs, policy=Policy.REMOTE, run_id=None, full=False)
    db.close()
    reader = Database.open(tmp_path / "mirror.db", read_only=True)
    try:
        found = rows(reader, "jobs", "user_id", where=[("done", "1")], sums=["hours"])
    finally:
        reader.close()
    assert found == [["u1", 2, Decimal("0.3")], ["u2", 1, 0]]  # 0.1 + 0.2 as written, not 0.30000000000000004
