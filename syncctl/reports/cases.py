"""`report cases`: the Intempus period report, per person (or per value of any field of `cases`).

For a period `[start, end)` and each value of the field (default `responsible_name`), three lists:

* `new_active`: cases created in the period and active now;
* `closed`: cases that became inactive or were deleted in the period, whatever they are now;
* `old_active`: cases created before the period and active now.

**Created** is `creation_date`, a date without a time or zone. A date counts as its midnight UTC, the
very reading `--start 2025-04-01` gets: a case created on D is in the period when `start <= D 00:00Z <
end`. With whole-day bounds that is simply "created on one of the period's days"; with `--start
2025-04-01T12:00` a case created on 2025-04-01 is *before* the period (its day began before the start).
A case without a creation date counts as created before any period. Active means `active = 1` in the
mirror now, in a row that exists (not one a source keeps after a remote delete, `_deleted_at` set).

**Closed** comes from `_syncctl_history`, whatever the origin (pull, push, cli): an update of the case in
the period whose `changes` has `active` going from 1 (or true) to anything else, or a delete in the period
whose recorded row had `active` 1. A case closed twice is listed once, with its last closing:
`closed_at` is that change's `at` and `deleted` says whether it was a delete. A case closed and reopened in
the period is listed as closed *and*, being active now, in one of the active lists. The case's group,
name and number are those of its row now, or, when it is gone, of the row its last delete recorded.

The rows are read in one pass sorted by (group, list, id), and handed to each group's document or file
as that is written (`_Sections`), so a million cases never sit in memory. One read transaction
(`reading`) keeps every query of a report on the same snapshot while a sync may be writing.
"""

from __future__ import annotations

import contextlib
import datetime
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from syncctl.core.db import Database, literal, quote
from syncctl.core.errors import UsageError
from syncctl.core.mirror import DELETED_AT
from syncctl.reports.changes import time_bound
from syncctl.reports.output import Report, Table
from syncctl.reports.periods import Period, as_utc
from syncctl.reports.summary import data_tables, resolve_field, table_columns

TABLE = "cases"
DEFAULT_BY = "responsible_name"
FILE_PREFIX = "case_report"
LISTS = ("new_active", "closed", "old_active")
ACTIVE_COLUMNS = ["id", "name", "number", "creation_date"]
CLOSED_COLUMNS = ["id", "name", "number", "closed_at", "deleted"]
GROUP_COLUMNS = ["list", "id", "name", "number", "date", "deleted"]
FLAT_COLUMNS = ["group", *GROUP_COLUMNS]
NEEDED = ("id", "active", "creation_date", "name", "number")
NO_GROUP = "none"  # the file-name part of the group of cases without a value (JSON keeps null)
_AFTER_EVERY_DATE = "9999-12-32"  # sorts after every YYYY-MM-DD
SORTED = "SELECT * FROM report ORDER BY 1, 2, 3"

Row = tuple[Any, ...]  # grp, list (0, 1, 2), id, name, number, date, deleted (0/1)


def date_bound(moment: datetime.datetime) -> str:
    """The first date whose midnight UTC is at or after `moment`, as `YYYY-MM-DD`: a date D is at or after
    `moment` exactly when `D >= date_bound(moment)`, and before it when `D < date_bound(moment)`."""
    moment = as_utc(moment)
    day = moment.date()
    if moment.time() != datetime.time():
        if day == datetime.date.max:
            return _AFTER_EVERY_DATE
        day += datetime.timedelta(days=1)
    return day.isoformat()


def _report_sql(by: str, live: bool) -> str:
    """The `report` CTE: one row per listed case, `(grp, list, id, name, number, date, deleted)`."""
    group = quote(by)
    alive = f" AND {quote(DELETED_AT)} IS NULL" if live else ""
    table = literal(TABLE)
    # `+table_name`: the period's rows are found through the (at) index; without statistics SQLite would
    # take the (table_name, record_id) index for the equality and read every change the table ever had.
    # `instr` spares the JSON parser the changes that cannot concern `active`; json_valid keeps a
    # hand-edited history row that is not JSON from stopping the report.
    return f"""
WITH closing AS (
    SELECT record_id, max(id) AS hid, at, op
    FROM _syncctl_history
    WHERE +table_name = {table} AND at >= :start_at AND at < :end_at AND CASE
        WHEN op NOT IN ('update', 'delete') OR instr(changes, '"active"') = 0 THEN 0
        WHEN NOT json_valid(changes) THEN 0
        WHEN op = 'update' THEN json_extract(changes, '$.active[0]') = 1
            AND coalesce(json_extract(changes, '$.active[1]'), 0) != 1
        ELSE json_extract(changes, '$.active') = 1 END
    GROUP BY record_id
),
closed AS (
    SELECT cl.record_id, cl.at, cl.op, c.id AS cid, c.{group} AS grp, c.name AS name, c.number AS number,
        CASE WHEN c.id IS NULL THEN (
            SELECT h.changes FROM _syncctl_history AS h
            WHERE h.table_name = {table} AND h.record_id = cl.record_id AND h.op = 'delete'
            ORDER BY h.id DESC LIMIT 1
        ) END AS snap
    FROM closing AS cl LEFT JOIN {quote(TABLE)} AS c ON c.id = cl.record_id
),
report (grp, list, id, name, number, date, deleted) AS (
    SELECT {group}, CASE WHEN creation_date >= :first_day THEN 0 ELSE 2 END, id, name, number,
        creation_date, 0
    FROM {quote(TABLE)}
    WHERE active = 1{alive} AND (creation_date < :end_day OR creation_date IS NULL)
    UNION ALL
    SELECT
        CASE WHEN cid IS NOT NULL THEN grp WHEN json_valid(snap) THEN
            (SELECT value FROM json_each(snap) WHERE key = :by) END,
        1,
        coalesce(cid, CAST(record_id AS INTEGER)),
        CASE WHEN cid IS NOT NULL THEN name WHEN json_valid(snap) THEN json_extract(snap, '$.name') END,
        CASE WHEN cid IS NOT NULL THEN number WHEN json_valid(snap) THEN json_extract(snap, '$.number') END,
        at,
        op = 'delete'
    FROM closed
)
"""


@dataclass
class CaseReport:
    """The report over every group (`report`), and one report per group for `--out-dir` (`groups`)."""

    db: Database
    period: Period
    by: str
    sql: str
    params: dict[str, Any]

    @property
    def meta(self) -> dict[str, Any]:
        return {"period": self.period.iso(), "by": self.by}

    @property
    def report(self) -> Report:
        """JSON: an array of the per-group documents; table, csv, jsonl, html: one row per listed case."""
        sections = _Sections(self.db, self.sql, self.params, None)
        document = (self.document(sections, group) for group in sections.groups())
        flat = Table("cases", FLAT_COLUMNS, self._flat_rows())
        return Report(title=f"Cases by {self.by}", tables=[flat], meta=self.meta, document=document)

    def groups(self) -> list[tuple[str, Report]]:
        """One report per group, keyed by the group as a file-name part: its document (JSON) and its rows
        (`list, id, name, number, date, deleted`). The groups are listed now; their rows are read as the
        files are written, in this order, in one pass."""
        distinct = f"{self.sql} SELECT DISTINCT grp FROM report ORDER BY 1"
        listed = [row[0] for row in self.db.conn.execute(distinct, self.params)]
        sections = _Sections(self.db, self.sql, self.params, listed)
        made = []
        for group in listed:
            rows = map(_listed, _group_rows(sections, group))
            report = Report(
                title=f"Cases of {self.by} {group_name(group)}",
                tables=[Table("cases", GROUP_COLUMNS, rows)],
                meta={**self.meta, "group": group},
                document=self.document(sections, group),
            )
            made.append((group_name(group), report))
        return made

    def document(self, sections: _Sections, group: Any) -> dict[str, Any]:
        """One group's JSON document: `by`, `group`, `period`, then the three lists in order."""
        return {
            "by": self.by,
            "group": group,
            "period": self.period.iso(),
            "new_active": Table("new_active", ACTIVE_COLUMNS, map(_active, sections.section(group, 0))),
            "closed": Table("closed", CLOSED_COLUMNS, map(_closed, sections.section(group, 1))),
            "old_active": Table("old_active", ACTIVE_COLUMNS, map(_active, sections.section(group, 2))),
        }

    def _flat_rows(self) -> Iterator[Row]:
        for row in self.db.conn.execute(f"{self.sql} {SORTED}", self.params):
            yield (row[0], *_listed(row))


def _active(row: Row) -> Row:
    return row[2:6]


def _closed(row: Row) -> Row:
    return (*row[2:6], bool(row[6]))


def _group_rows(sections: _Sections, group: Any) -> Iterator[Row]:
    """One group's three lists, one after the other."""
    for rank in range(len(LISTS)):
        yield from sections.section(group, rank)


def _listed(row: Row) -> Row:
    return (LISTS[row[1]], *row[2:6], bool(row[6]))


def group_name(group: Any) -> str:
    """The group as text for its file name (`safe_name_part` makes it safe); no value is `none`."""
    return NO_GROUP if group is None else str(group)


def cases_report(db: Database, period: Period, *, by: str = DEFAULT_BY) -> CaseReport:
    """Check the table and the field now (exit 2 when unknown); the rows are read when rendered."""
    if TABLE not in data_tables(db):
        raise UsageError(f"{db.path} has no {TABLE} table yet: run `syncctl sync intempus` first")
    columns = list(table_columns(db, TABLE))
    missing = [name for name in NEEDED if name not in columns]
    if missing:
        raise UsageError(f"the {TABLE} table has no {', '.join(missing)} column(s) for this report")
    column = resolve_field(TABLE, columns, by, option="--by")
    params = {
        "start_at": time_bound(period.start),
        "end_at": time_bound(period.end),
        "first_day": date_bound(period.start),
        "end_day": date_bound(period.end),
        "by": column,
    }
    return CaseReport(db, period, column, _report_sql(column, DELETED_AT in columns), params)


@contextlib.contextmanager
def reading(db: Database) -> Iterator[None]:
    """One read transaction: every query of the report sees the same snapshot (WAL readers never block
    the writer). Reads only: nothing is written, so ending it is the same as committing."""
    if db.conn.in_transaction:
        yield
        return
    db.conn.execute("BEGIN")
    try:
        yield
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.conn.execute("COMMIT")


class _Sections:
    """The report's rows, read once in (group, list, id) order and handed out one section at a time.

    A section is one list of one group. Writers ask for them in that order (a group's three lists in
    document order, the groups as listed or as the pass reaches them), so one sorted pass serves every
    document and file. A section asked for out of that order — a second time, after a later one, or
    while the pass is serving another — is read by a query of its own, so each is complete in any order.
    """

    def __init__(self, db: Database, sql: str, params: dict[str, Any], groups: Sequence[Any] | None) -> None:
        self._db = db
        self._sql = sql
        self._params = params
        self._order: dict[Any, int] = {group: i for i, group in enumerate(groups or ())}
        self._rows: Iterator[Row] | None = None
        self._head: Row | None = None
        self._moves = 0
        self._done: set[tuple[int, int]] = set()

    def _peek(self) -> Row | None:
        if self._rows is None:
            self._rows = iter(self._db.conn.execute(f"{self._sql} {SORTED}", self._params))
            self._head = next(self._rows, None)
        return self._head

    def _advance(self) -> None:
        assert self._rows is not None
        self._head = next(self._rows, None)
        self._moves += 1

    def _position(self, row: Row) -> tuple[int, int]:
        index = self._order.get(row[0])
        if index is None:  # a group the pass reaches for the first time
            index = self._order[row[0]] = len(self._order)
        return index, row[1]

    def groups(self) -> Iterator[Any]:
        """Each group as the pass reaches it; what of it its reader left unread is passed over."""
        while (head := self._peek()) is not None:
            index, _ = self._position(head)
            yield head[0]
            while (head := self._peek()) is not None and self._position(head)[0] == index:
                self._done.add(self._position(head))
                self._advance()

    def section(self, group: Any, rank: int) -> Iterator[Row]:
        """The rows of one list of one group, ordered by id."""
        index = self._order.get(group)
        key = (index if index is not None else -1, rank)
        if index is None or key in self._done:
            yield from self._query(group, rank, after=None)
            return
        while (head := self._peek()) is not None and self._position(head) < key:
            self._done.add(self._position(head))
            self._advance()
        self._done.add(key)
        head = self._peek()
        if head is None or self._position(head) != key:
            return  # an empty section
        rows = self._rows
        assert rows is not None
        while True:  # the hot loop: once per row of the report
            row = head
            head = self._head = next(rows, None)
            self._moves += 1
            moves = self._moves
            yield row
            if self._moves != moves:  # another reader moved the pass on while this one was paused
                yield from self._query(group, rank, after=row[2])
                return
            if head is None or head[1] != rank or head[0] != row[0]:
                return

    def _query(self, group: Any, rank: int, *, after: Any) -> Iterator[Row]:
        sql = f"{self._sql} SELECT * FROM report WHERE grp IS :grp AND list = :rank"
        params = {**self._params, "grp": group, "rank": rank}
        if after is not None:
            sql += " AND id > :after"
            params["after"] = after
        yield from self._db.conn.execute(sql + " ORDER BY id", params)
