"""`report changes`: the rows of `_syncctl_history`, oldest first, straight from a cursor.

Every change syncctl applies to a data table is recorded there in the same transaction (`MirrorTable`), with
its origin: `pull` (from the remote), `push` (a local edit sent and read back), `cli` (a one-off command),
`ingest`, `file`. `at` is whole seconds, UTC, written as `2025-04-01T08:30:00+00:00`; every stored time
has that one form, so a period bound written the same way compares as text and the `(at)` index finds
the period. Rows come in `at` order, ties in the order they were written (`id`): the `(at)` index holds
exactly that order, so even a million rows are read without a sort and without being held.

`changes` is parsed for JSON and JSON Lines, which hold it as an object (`{field: [old, new]}` for an
update, the row as it was for a delete, null for an insert); text that is not JSON (a hand-edited row) is
kept as text. The other formats show a cell as text anyway, so they get the stored compact JSON as it is:
parsing a million objects only to print them again would double the time of a CSV export.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator, Sequence
from typing import Any

from syncctl.core.db import Database
from syncctl.reports.output import Report, Table
from syncctl.reports.periods import as_utc, iso_utc

COLUMNS = ["id", "run_id", "at", "source", "table_name", "record_id", "op", "origin", "changes"]
_AFTER_EVERY_TIME = "9999-12-31T23:59:59+00:00~"  # "~" sorts after every character a stored time has


def time_bound(moment: datetime.datetime) -> str:
    """A period bound as text to compare with `_syncctl_history.at`. Stored times are whole seconds, so a
    bound with a fraction moves up to the next second: `at >= 10:00:00.5` is `at >= 10:00:01`, and
    `at < 10:00:00.5` is `at < 10:00:01` (the change at 10:00:00 happened before 10:00:00.5)."""
    moment = as_utc(moment)
    if moment.microsecond:
        try:
            moment = moment.replace(microsecond=0) + datetime.timedelta(seconds=1)
        except OverflowError:
            return _AFTER_EVERY_TIME
    return moment.isoformat(timespec="seconds")  # as `db.now_iso` writes `at`


def changes_report(
    db: Database,
    *,
    source: str | None = None,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    record_id: str | None = None,
    parse_changes: bool = True,
) -> Report:
    """The history rows matching every filter given: `since <= at < until`, one source, one record id
    (in any of the data tables; with `source`, in that source's)."""
    clauses: list[str] = []
    params: list[Any] = []
    meta: dict[str, Any] = {}
    if source is not None:
        clauses.append("source = ?")
        params.append(source)
        meta["source"] = source
    if since is not None:
        clauses.append("at >= ?")
        params.append(time_bound(since))
        meta["since"] = iso_utc(since)
    if until is not None:
        clauses.append("at < ?")
        params.append(time_bound(until))
        meta["until"] = iso_utc(until)
    if record_id is not None:
        # The index is on (table_name, record_id): naming the tables lets SQLite search it per table
        # instead of reading every row for one id.
        tables = _history_tables(db)
        clauses.append(f"table_name IN ({', '.join('?' * len(tables))}) AND record_id = ?")
        params.extend([*tables, record_id])
        meta["id"] = record_id
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT {', '.join(COLUMNS)} FROM _syncctl_history{where} ORDER BY at, id"
    if not db.has_table("_syncctl_history"):
        rows: Iterator[Sequence[Any]] = iter(())
    elif parse_changes:
        rows = _parsed_rows(db, sql, tuple(params))
    else:
        rows = _stored_rows(db, sql, tuple(params))
    return Report(title="Changes", tables=[Table("changes", COLUMNS, rows)], meta=meta)


def _history_tables(db: Database) -> list[str]:
    """Every table name the history may hold: the registered data tables (each has history only once
    registered, in the same transaction that created it)."""
    if not db.has_table("_syncctl_tables"):
        return []
    return [str(row[0]) for row in db.conn.execute("SELECT name FROM _syncctl_tables")]


def _stored_rows(db: Database, sql: str, params: tuple[Any, ...]) -> Iterator[Sequence[Any]]:
    yield from db.conn.execute(sql, params)


def _parsed_rows(db: Database, sql: str, params: tuple[Any, ...]) -> Iterator[Sequence[Any]]:
    decode = json.JSONDecoder().decode
    for row in db.conn.execute(sql, params):
        text = row[8]
        if text is None:
            yield row
            continue
        try:
            changes = decode(text)
        except ValueError:
            changes = text
        yield (*row[:8], changes)
