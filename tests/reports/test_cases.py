"""`cases_report`: which case lands in which list of which group, for changes placed at known times."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from syncctl.connectors.intempus.connector import CASES
from syncctl.core.db import Database
from syncctl.core.errors import UsageError
from syncctl.core.merge import Policy
from syncctl.core.mirror import MirrorTable
from syncctl.reports.cases import CaseReport, cases_report, date_bound, reading
from syncctl.reports.output import Report, write_group_files, write_json
from syncctl.reports.periods import Period
from tests.conftest import load_fixture

CAPTURED: dict[str, Any] = load_fixture("case_9611850.json")
ANNE, JENS = "Anne Jørgensen", "Jens Hansen"
APRIL = Period.parse("2025-04-01", "2025-05-01")
PERIOD = {"start": "2025-04-01T00:00:00+00:00", "end": "2025-05-01T00:00:00+00:00"}


def case(case_id: int, who: str | None, created: str | None, *, active: bool = True) -> dict[str, Any]:
    made = dict(CAPTURED)
    made.update(
        id=case_id,
        resource_uri=f"/web/v1/case/{case_id}/",
        name=f"Case {case_id}",
        number=f"N-{case_id}",
        responsible_name=who,
        creation_date=created,
        active=active,
    )
    return made


class Mirror:
    """The `cases` table written through the one write path, each change's history moved to a given time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = Database.open(path)
        self.table = MirrorTable.open(self.db, CASES)
        self.cases: dict[int, dict[str, Any]] = {}

    def at(self, when: str, change: Callable[[], object]) -> None:
        before = self.db.scalar("SELECT coalesce(max(id), 0) FROM _syncctl_history")
        change()
        with self.db.transaction():
            self.db.conn.execute("UPDATE _syncctl_history SET at = ? WHERE id > ?", (when, before))

    def put(self, *cases: dict[str, Any]) -> None:
        self.cases.update({c["id"]: c for c in cases})
        self.table.apply_page(list(cases), policy=Policy.REMOTE, run_id=None, full=False)

    def set_active(self, when: str, case_id: int, active: bool) -> None:
        self.at(when, lambda: self.put({**self.cases[case_id], "active": active}))

    def delete(self, when: str, case_id: int) -> None:
        def remove() -> None:
            with self.db.transaction(applying=True):
                self.table.delete_rows([case_id], origin="pull", run_id=None)

        self.at(when, remove)

    def reader(self) -> Database:
        self.db.close()
        return Database.open(self.path, read_only=True)


@pytest.fixture
def april(tmp_path: Path) -> Iterator[Database]:
    """Cases created in, before and after April 2025, closed in every way around its edges."""
    m = Mirror(tmp_path / "mirror.db")
    m.at(
        "2024-01-01T00:00:00+00:00",
        lambda: m.put(
            case(1, ANNE, "2025-04-10"),  # new, active
            case(2, ANNE, "2025-03-31"),  # old, active
            case(3, ANNE, "2025-05-01"),  # created after the period: in no list
            case(4, JENS, "2025-04-01"),  # new: created on the first day
            case(5, JENS, None),  # no date: old
            case(6, JENS, "2025-04-05", active=False),  # new but inactive: in no list
            case(7, ANNE, "2024-01-01"),  # made inactive in the period
            case(8, JENS, "2024-02-02"),  # deleted in the period while active
            case(9, ANNE, "2024-03-03", active=False),  # deleted in the period, already inactive
            case(10, ANNE, "2024-04-04"),  # made inactive just before the period
            case(11, ANNE, "2024-04-04"),  # made inactive at its end (not in it)
            case(12, None, "2024-04-04"),  # made inactive at its very start
            case(13, ANNE, "2024-05-05"),  # closed, then reopened
            case(14, ANNE, "2024-06-06"),  # closed, reopened, closed again
        ),
    )
    m.set_active("2025-04-20T10:00:00+00:00", 7, False)
    m.delete("2025-04-21T11:00:00+00:00", 8)
    m.delete("2025-04-22T12:00:00+00:00", 9)
    m.set_active("2025-03-31T23:59:59+00:00", 10, False)
    m.set_active("2025-05-01T00:00:00+00:00", 11, False)
    m.set_active("2025-04-01T00:00:00+00:00", 12, False)
    m.set_active("2025-04-02T00:00:00+00:00", 13, False)
    m.set_active("2025-04-03T00:00:00+00:00", 13, True)
    m.set_active("2025-04-02T00:00:00+00:00", 14, False)
    m.set_active("2025-04-10T00:00:00+00:00", 14, True)
    m.set_active("2025-04-25T00:00:00+00:00", 14, False)
    reader = m.reader()
    yield reader
    reader.close()


def active(case_id: int, created: str | None) -> dict[str, Any]:
    return {"id": case_id, "name": f"Case {case_id}", "number": f"N-{case_id}", "creation_date": created}


def closed(case_id: int, at: str, *, deleted: bool = False) -> dict[str, Any]:
    return {
        "id": case_id,
        "name": f"Case {case_id}",
        "number": f"N-{case_id}",
        "closed_at": at,
        "deleted": deleted,
    }


def document(group: str | None, new: list[Any], gone: list[Any], old: list[Any]) -> dict[str, Any]:
    return {
        "by": "responsible_name",
        "group": group,
        "period": PERIOD,
        "new_active": new,
        "closed": gone,
        "old_active": old,
    }


EXPECTED = [
    document(None, [], [closed(12, "2025-04-01T00:00:00+00:00")], []),
    document(
        ANNE,
        [active(1, "2025-04-10")],
        [
            closed(7, "2025-04-20T10:00:00+00:00"),
            closed(13, "2025-04-02T00:00:00+00:00"),
            closed(14, "2025-04-25T00:00:00+00:00"),
        ],
        [active(2, "2025-03-31"), active(13, "2024-05-05")],
    ),
    document(
        JENS,
        [active(4, "2025-04-01")],
        [closed(8, "2025-04-21T11:00:00+00:00", deleted=True)],  # gone: its group from the row it had
        [active(5, None)],
    ),
]


def as_json(report: Report) -> Any:
    out = io.StringIO()
    write_json(report, out)
    return json.loads(out.getvalue())


def test_cases_lists_new_closed_and_old_per_person(april: Database) -> None:
    with reading(april):
        assert as_json(cases_report(april, APRIL).report) == EXPECTED


def test_cases_per_group_reports_in_any_order_are_complete(april: Database) -> None:
    report = cases_report(april, APRIL)
    groups = report.groups()
    assert [name for name, _ in groups] == ["none", ANNE, JENS]
    # Written backwards, and one group twice: every section falls back to a query of its own.
    backwards = [as_json(group) for _, group in reversed(groups)]
    assert backwards == EXPECTED[::-1]
    assert as_json(report.groups()[1][1]) == EXPECTED[1]


def test_cases_sections_read_alternately_are_complete(april: Database) -> None:
    groups = dict(cases_report(april, APRIL).groups())
    anne = iter(groups[ANNE].tables[0].rows)
    jens = iter(groups[JENS].tables[0].rows)
    rows = [next(anne), next(jens), *anne, *jens]
    assert [(r[0], r[1]) for r in rows] == [
        ("new_active", 1),
        ("new_active", 4),
        ("closed", 7),
        ("closed", 13),
        ("closed", 14),
        ("old_active", 2),
        ("old_active", 13),
        ("closed", 8),
        ("old_active", 5),
    ]


def test_cases_flat_rows_for_table_csv_and_html(april: Database) -> None:
    report = cases_report(april, APRIL).report
    assert report.tables[0].columns == ["group", "list", "id", "name", "number", "date", "deleted"]
    rows = [tuple(r) for r in report.tables[0].rows]
    assert rows[:2] == [
        (None, "closed", 12, "Case 12", "N-12", "2025-04-01T00:00:00+00:00", False),
        (ANNE, "new_active", 1, "Case 1", "N-1", "2025-04-10", False),
    ]
    assert len(rows) == sum(len(d[k]) for d in EXPECTED for k in ("new_active", "closed", "old_active"))
    assert report.meta == {"period": PERIOD, "by": "responsible_name"}


def test_cases_group_files_are_named_by_group_and_period(april: Database, tmp_path: Path) -> None:
    report = cases_report(april, APRIL)
    written = write_group_files(
        report.groups(), "json", tmp_path / "out", lambda g: f"case_report_{g}.json".replace(" ", "_")
    )
    assert [p.name for p in written] == [
        "case_report_none.json",
        "case_report_Anne_Jørgensen.json",
        "case_report_Jens_Hansen.json",
    ]
    assert [json.loads(p.read_text(encoding="utf-8")) for p in written] == EXPECTED


def test_cases_by_another_field(april: Database) -> None:
    report = cases_report(april, APRIL, by="NUMBER")
    found = as_json(report.report)
    assert [d["group"] for d in found] == ["N-1", "N-12", "N-13", "N-14", "N-2", "N-4", "N-5", "N-7", "N-8"]
    assert found[0] == {**document("N-1", [active(1, "2025-04-10")], [], []), "by": "number"}


def test_cases_period_inside_a_day_counts_a_date_as_its_midnight(april: Database) -> None:
    # 2025-04-10 began before 12:00 that day: case 1 is then created before the period.
    period = Period.parse("2025-04-10T12:00:00", "2025-04-30")
    found = {d["group"]: d for d in as_json(cases_report(april, period).report)}
    assert found[ANNE]["new_active"] == []
    assert [c["id"] for c in found[ANNE]["old_active"]] == [1, 2, 13]


def test_cases_refuses_an_unknown_field_and_a_file_without_cases(april: Database, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--by: table cases has no field 'responsible' "):
        cases_report(april, APRIL, by="responsible ")
    empty = Database.open(tmp_path / "empty.db")
    try:
        with pytest.raises(UsageError, match="has no cases table yet"):
            cases_report(empty, APRIL)
    finally:
        empty.close()


def test_cases_kept_rows_of_remote_deletes_are_not_active(tmp_path: Path) -> None:
    m = Mirror(tmp_path / "mirror.db")
    m.put(case(1, ANNE, "2025-04-10"), case(2, ANNE, "2025-04-11"))
    m.table.keep_deleted_rows()

    def keep() -> None:
        with m.db.transaction(applying=True):
            m.table.delete_rows([2], origin="pull", run_id=None, keep=True)

    m.at("2025-04-12T00:00:00+00:00", keep)
    db = m.reader()
    try:
        [found] = as_json(cases_report(db, APRIL).report)
    finally:
        db.close()
    assert found == document(
        ANNE, [active(1, "2025-04-10")], [closed(2, "2025-04-12T00:00:00+00:00", deleted=True)], []
    )


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        (datetime(2025, 4, 1, tzinfo=UTC), "2025-04-01"),
        (datetime(2025, 4, 1, 0, 0, 0, 1, tzinfo=UTC), "2025-04-02"),
        (datetime(2025, 4, 1, 23, 59, tzinfo=UTC), "2025-04-02"),
        (datetime(9999, 12, 31, 1, tzinfo=UTC), "9999-12-32"),
    ],
)
def test_cases_date_bound(moment: datetime, day: str) -> None:
    assert date_bound(moment) == day


def test_cases_report_is_a_case_report(april: Database) -> None:
    assert isinstance(cases_report(april, APRIL), CaseReport)
