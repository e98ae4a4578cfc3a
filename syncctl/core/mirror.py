"""A mirrored data table: its columns, the outbox that catches local edits, and the one write path into it.

Every change syncctl makes to a data table goes through `MirrorTable.write_rows` / `delete_rows`, which
also record `_syncctl_history` in the same transaction and keep the outbox silent while syncctl writes.
Local edits made by any SQLite client are caught by triggers into `_syncctl_pending`, together with the
row as it was last synced (the *base* of a three-way merge). The `_syncctl_applying` row that silences the
triggers exists only inside syncctl's own uncommitted transaction, so no other connection ever sees it.

Remote data is untrusted: field names become quoted identifiers or escaped literals only, names that cannot
be columns (case-insensitive twins, control characters, too many fields) are kept in `_syncctl_extra` as
JSON, and values SQLite cannot bind (objects where a number was, integers over 64 bits, lone surrogates)
are stored as text rather than stopping the sync.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from syncctl.core.db import Database, json_text, literal, now_iso, quote, run_script
from syncctl.core.errors import DatabaseError
from syncctl.core.merge import ROW, Conflict, Policy, Row, merge_rows, remote_changed
from syncctl.core.sanitize import has_control_chars

log = logging.getLogger("syncctl.mirror")

Record = dict[str, Any]
Key = int | str
JSON_OBJECT_ARGS = 50  # columns per json_object() call: old SQLite builds allow 127 arguments a function
MAX_COLUMNS = 400  # remote fields beyond this many become part of _syncctl_extra
EXTRA = "_syncctl_extra"
DELETED_AT = "_deleted_at"  # when a kept row was deleted remotely (keep_deleted); NULL while it exists

# SQLite column types by kind. Strings never get a numeric affinity: "155.50" and "6666940" stay TEXT.
COLUMN_TYPES = {"bool": "INTEGER", "int": "INTEGER", "float": "REAL", "str": "TEXT", "decimal": "TEXT",
                "date": "TEXT", "uri": "TEXT", "uri_list": "TEXT", "json": "TEXT", "any": ""}  # fmt: skip
JSON_KINDS = frozenset({"json", "uri_list"})


def kind_of_value(value: Any) -> str:
    """The kind of a field first seen in remote data, for a field the connector does not declare."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list | dict):
        return "json"
    return "any"


def never_writable(name: str) -> bool:
    return False


@dataclass(frozen=True)
class TableSpec:
    """What a connector declares about one mirrored table."""

    name: str
    source: str
    key: str = "id"
    key_type: str = "INTEGER"  # or "TEXT"
    known: Mapping[str, str] = field(default_factory=dict)  # column -> kind, created up front
    writable: Callable[[str], bool] = never_writable  # may a local edit of this field be pushed?
    capture: bool = True  # local edits of the table become pending changes
    dynamic: bool = True  # a remote field seen for the first time becomes a column
    cursor_field: str | None = None  # the field whose highest value in a page the engine wants to know
    indexes: tuple[tuple[str, ...], ...] = ()
    ddl: str | None = None  # a fixed schema (CREATE TABLE ...) instead of one built from `known`


_encode = json.JSONEncoder(ensure_ascii=False).encode


def to_json_text(value: Any) -> str:
    """A list or object as JSON text, the way it is stored; most records carry an empty list."""
    return "[]" if value == [] else _encode(value)


def storable(value: Any) -> Any:
    """A value SQLite can bind and give back unchanged: the slow path for odd remote values."""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return str(value)  # beyond SQLite's INTEGER: kept exactly, as text
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a JSON "\ud800": not valid text anywhere
            return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


@dataclass
class PageCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    new_keys: int = 0  # keys this listing had not returned before (a listing that repeats itself has none)
    highest: Any = None  # the highest value of the spec's cursor_field in the page
    conflicts: list[Conflict] = field(default_factory=list)
    new_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PendingChange:
    key: Key
    op: str  # insert | update | delete
    base: Row | None  # the row as last synced; None for a local insert
    local: Row | None  # the row as it is now; None for a delete
    creation_id: str | None
    attempts: int
    last_error: str | None
    changed_at: str = ""

    @property
    def id(self) -> Key:
        return self.key


class MirrorTable:
    """One data table of one source in the shared file."""

    def __init__(self, db: Database, spec: TableSpec) -> None:
        self.db = db
        self.conn = db.conn
        self.spec = spec
        self.name = spec.name
        self.key = spec.key
        self.table = quote(spec.name)
        self.columns: list[str] = []
        self.kinds: dict[str, str] = {}
        self.remote_columns: set[str] = set()  # columns syncctl made for remote fields: the pushable ones
        self.analyst_columns: list[str] = []  # columns someone else added: never written by syncctl
        self._json_positions: list[int] = []
        self._upsert_sql = ""
        self._select_sql = ""
        self._getter: Callable[[Record], Any] = itemgetter(spec.key)
        self._cursor_index = -1
        self.exists = False

    # -- opening -----------------------------------------------------------------------------------------

    @classmethod
    def open(cls, db: Database, spec: TableSpec) -> MirrorTable:
        """The table, created when missing (not on a read-only file), its triggers made current."""
        table = cls(db, spec)
        table.exists = db.check_owned(spec.name, spec.source)
        if db.read_only:
            if table.exists:
                table._load_columns()
            return table
        if table.exists:
            table._load_columns()
            if table._triggers_current() and table._view_current():
                return table
        with db.transaction():
            if not db.check_owned(spec.name, spec.source):
                table._create()
            elif spec.capture and not table._trigger_names_present():
                # Dropped with the table by a rebuild (`sqlite-utils transform`, a hand-made copy): edits
                # made since then were not captured, so say so before restoring them.
                log.warning(
                    "the change-capture triggers of %s were missing (was the table rebuilt?) and are"
                    " restored; local edits made since the last sync may not be pushed",
                    spec.name,
                )
            table.exists = True
            table._load_columns()
            table._write_view()
            if spec.capture:
                table._write_triggers()
        return table

    def _create(self) -> None:
        spec = self.spec
        if spec.ddl is not None:
            self.conn.execute(spec.ddl)
        else:
            key_type = "INTEGER" if spec.key_type == "INTEGER" else "TEXT"
            known = [
                f"{quote(n)} {self.column_type(n, None)}".rstrip()
                for n in sorted(spec.known)
                if n != spec.key
            ]
            columns = ", ".join([f"{quote(spec.key)} {key_type} PRIMARY KEY", *known])
            self.conn.execute(f"CREATE TABLE {self.table} ({columns})")
        for index in spec.indexes:
            name = quote(f"{spec.name}_{'_'.join(index)}")
            self.conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {self.table} ({', '.join(map(quote, index))})"
            )
        self.conn.executemany(
            "INSERT OR REPLACE INTO _syncctl_columns (table_name, name, kind) VALUES (?, ?, ?)",
            [(spec.name, name, kind) for name, kind in spec.known.items()],
        )
        self.db.register_table(spec.name, spec.source, spec.key)

    def column_type(self, name: str, value: Any) -> str:
        kind = self.spec.known.get(name) or kind_of_value(value)
        # An undeclared field first seen as a number gets no affinity, so a later string stays as given.
        if name not in self.spec.known and kind in ("int", "float", "bool"):
            return ""
        return COLUMN_TYPES.get(kind, "")

    def _trigger_names(self) -> list[str]:
        return [f"_syncctl_{self.name}_{op}" for op in ("insert", "update", "rekey", "delete")]

    def _trigger_names_present(self) -> bool:
        names = {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        return set(self._trigger_names()) <= names

    def _triggers_current(self) -> bool:
        if not self.spec.capture:
            return True
        if not self._trigger_names_present():
            return False
        # The triggers name every column: they must have been written for the columns there are now.
        found = self.db.scalar(
            "SELECT value FROM _syncctl_state WHERE source = ? AND key = ?",
            (self.spec.source, f"trigger_columns:{self.name}"),
        )
        return bool(found == json.dumps(self.columns))

    def _table_columns(self) -> list[str]:
        """The table's real columns (generated ones, like the numeric shadows, are not listed here)."""
        return [row[1] for row in self.conn.execute(f"PRAGMA table_info({self.table})")]

    @property
    def view_name(self) -> str:
        return f"{self.name}_typed"

    def _view_sql(self) -> str | None:
        """A view with the table's columns, decimal strings as numbers (same names): what analysts sort and
        filter on. The table keeps the exact text; the view is never written or pushed."""
        decimals = [n for n in self.columns if self.kinds.get(n) == "decimal"]
        if not decimals:
            return None
        select = ", ".join(
            f"CAST({quote(n)} AS REAL) AS {quote(n)}" if n in decimals else quote(n)
            for n in [*self.columns, *self.analyst_columns]
        )
        return f"CREATE VIEW {quote(self.view_name)} AS SELECT {select} FROM {self.table}"

    def _view_current(self) -> bool:
        found = self.db.scalar(
            "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?", (self.view_name,)
        )
        return bool(found == self._view_sql())

    def _write_view(self) -> None:
        wanted = self._view_sql()
        existing = self.db.scalar("SELECT type FROM sqlite_master WHERE name = ?", (self.view_name,))
        if existing not in (None, "view"):
            return  # a table of that name is someone else's: leave it alone
        self.conn.execute(f"DROP VIEW IF EXISTS {quote(self.view_name)}")
        if wanted is not None:
            self.conn.execute(wanted)

    def _load_columns(self) -> None:
        """The columns syncctl writes: those it made for remote fields (or the fixed schema's). Columns an
        analyst added (`sqlite-utils add-column`) are theirs: never written, compared or pushed."""
        every = self._table_columns()
        if self.key not in every:
            raise DatabaseError(f"table {self.name!r} in {self.db.path} has lost its key column {self.key!r}")
        stored = dict(
            self.conn.execute(
                "SELECT name, kind FROM _syncctl_columns WHERE table_name = ?", (self.name,)
            ).fetchall()
        )
        if self.spec.ddl is not None:
            self.columns = every
        else:
            self.columns = [n for n in every if n == self.key or n in stored or n in self.spec.known]
        self.analyst_columns = [n for n in every if n not in self.columns]
        self.kinds = {name: stored.get(name) or self.spec.known.get(name) or "any" for name in self.columns}
        self.remote_columns = set(self.columns)
        self._json_positions = [i for i, name in enumerate(self.columns) if self.kinds[name] in JSON_KINDS]
        self._getter = itemgetter(*self.columns) if len(self.columns) > 1 else _one(self.columns[0])
        cursor_field = self.spec.cursor_field
        self._cursor_index = self.columns.index(cursor_field) if cursor_field in self.columns else -1
        names = ", ".join(map(quote, self.columns))
        marks = ", ".join("?" * len(self.columns))
        key = quote(self.key)
        updates = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in self.columns if n != self.key)
        conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        self._upsert_sql = (
            f"INSERT INTO {self.table} ({names}) VALUES ({marks}) ON CONFLICT({key}) {conflict}"
        )
        self._select_sql = f"SELECT {names} FROM {self.table} WHERE {key} IN (SELECT value FROM json_each(?))"

    def _json_of(self, alias: str) -> str:
        """SQL for a JSON object of a whole row (OLD or NEW inside a trigger); names are escaped literals."""
        parts = []
        for start in range(0, len(self.columns), JSON_OBJECT_ARGS):
            chunk = self.columns[start : start + JSON_OBJECT_ARGS]
            parts.append("json_object(" + ", ".join(f"{literal(n)}, {alias}.{quote(n)}" for n in chunk) + ")")
        expression = parts[0]
        for part in parts[1:]:
            expression = f"json_patch({expression}, {part})"
        return expression

    def _write_triggers(self) -> None:
        quiet = "NOT EXISTS (SELECT 1 FROM _syncctl_applying)"
        stamp = "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')"
        old = self._json_of("OLD")
        table = literal(self.name)
        key = quote(self.key)
        insert_, update_, rekey_, delete_ = map(quote, self._trigger_names())
        # Not an analyst's own columns: editing those is no change to push.
        watched = ", ".join(quote(n) for n in self.columns if n != self.key) or key
        record_insert = f"""
            INSERT INTO _syncctl_pending (table_name, record_id, op, base, changed_at)
            VALUES ({table}, NEW.{key}, 'insert', NULL, {stamp})
            ON CONFLICT(table_name, record_id) DO UPDATE SET changed_at = excluded.changed_at,
                op = CASE WHEN _syncctl_pending.op = 'delete' THEN 'update' ELSE _syncctl_pending.op END;"""
        record_delete = f"""
            INSERT INTO _syncctl_pending (table_name, record_id, op, base, changed_at)
            VALUES ({table}, OLD.{key}, 'delete', {old}, {stamp})
            ON CONFLICT(table_name, record_id) DO UPDATE SET changed_at = excluded.changed_at,
                op = CASE WHEN _syncctl_pending.op = 'insert' THEN 'drop' ELSE 'delete' END;
            DELETE FROM _syncctl_pending
            WHERE table_name = {table} AND record_id = OLD.{key} AND op = 'drop';"""
        script = f"""
            DROP TRIGGER IF EXISTS {insert_};
            DROP TRIGGER IF EXISTS {update_};
            DROP TRIGGER IF EXISTS {rekey_};
            DROP TRIGGER IF EXISTS {delete_};
            CREATE TRIGGER {insert_} AFTER INSERT ON {self.table} WHEN {quiet}
            BEGIN {record_insert} END;
            CREATE TRIGGER {update_} AFTER UPDATE OF {watched} ON {self.table}
            WHEN {quiet} AND OLD.{key} = NEW.{key}
            BEGIN
                INSERT INTO _syncctl_pending (table_name, record_id, op, base, changed_at)
                VALUES ({table}, NEW.{key}, 'update', {old}, {stamp})
                ON CONFLICT(table_name, record_id) DO UPDATE SET changed_at = excluded.changed_at;
            END;
            CREATE TRIGGER {rekey_} AFTER UPDATE ON {self.table} WHEN {quiet} AND OLD.{key} IS NOT NEW.{key}
            BEGIN {record_delete} {record_insert} END;
            CREATE TRIGGER {delete_} AFTER DELETE ON {self.table} WHEN {quiet}
            BEGIN {record_delete} END;
        """
        run_script(self.conn, script)
        self.conn.execute(
            "INSERT OR REPLACE INTO _syncctl_state (source, key, value) VALUES (?, ?, ?)",
            (self.spec.source, f"trigger_columns:{self.name}", json.dumps(self.columns)),
        )

    def _column_name_problem(self, name: str, known_lower: set[str]) -> str | None:
        """Why a remote field cannot become a column of its own, or None when it can."""
        if not isinstance(name, str) or not name or has_control_chars(name) or "\x00" in name:
            return "a name with control characters"
        if name.lower().startswith("_syncctl"):
            return "a name syncctl reserves"
        if name.lower() in known_lower:
            return "a name that differs from another field only in case"
        if len(self.columns) >= MAX_COLUMNS:
            return f"more than {MAX_COLUMNS} fields"
        return None

    def _add_columns(self, records: Iterable[Record]) -> list[str]:
        """Make a column for every remote field seen for the first time (inside the caller's transaction)."""
        known = set(self.columns)
        added: dict[str, Any] = {}
        for record in records:
            for name, value in record.items():
                if name not in known and (name not in added or added[name] is None):
                    added[name] = value
        made: list[str] = []
        refused: dict[str, str] = {}
        for name, value in added.items():
            lower = {c.lower() for c in self.columns}
            problem = self._column_name_problem(name, lower) if self.spec.dynamic else "a fixed schema"
            if problem is not None:
                refused[name] = problem
                continue
            kind = self.spec.known.get(name) or kind_of_value(value)
            column = f"{quote(name)} {self.column_type(name, value)}".rstrip()
            self.conn.execute(f"ALTER TABLE {self.table} ADD COLUMN {column}")
            self.conn.execute(
                "INSERT OR REPLACE INTO _syncctl_columns (table_name, name, kind) VALUES (?, ?, ?)",
                (self.name, name, kind),
            )
            self.columns.append(name)
            made.append(name)
        if made:
            self._load_columns()
            self._write_view()
        if refused and EXTRA not in self.columns:
            self.conn.execute(f"ALTER TABLE {self.table} ADD COLUMN {quote(EXTRA)} TEXT")
            self.conn.execute(
                "INSERT OR REPLACE INTO _syncctl_columns (table_name, name, kind) VALUES (?, ?, 'extra')",
                (self.name, EXTRA),
            )
        if refused:
            shown = ", ".join(f"{json.dumps(n)[:60]} ({why})" for n, why in list(refused.items())[:5])
            log.warning(
                "%d field(s) of %s cannot be columns and are kept as JSON in %s: %s",
                len(refused),
                self.name,
                EXTRA,
                shown,
            )
        self._load_columns()
        if self.spec.capture:
            self._write_triggers()
        return made

    # -- rows --------------------------------------------------------------------------------------------

    def row_tuples(self, records: list[Record]) -> tuple[list[tuple[Any, ...]], bool]:
        """Remote records as row tuples in column order (the one place remote values become row values),
        and whether every record had exactly the known columns (if not, a field may be new)."""
        getter, width, positions = self._getter, len(self.columns), self._json_positions
        extra = self.columns.index(EXTRA) if EXTRA in self.columns else -1
        known = set(self.columns)
        rows = []
        exact = True
        for record in records:
            try:
                values = list(getter(record))  # every column present: the common case, done in C
                exact = exact and len(record) == width
            except KeyError:
                values = list(map(record.get, self.columns))
                exact = False
            for i in positions:
                value = values[i]
                if value is not None and not isinstance(value, str):
                    values[i] = to_json_text(value)
            if extra >= 0:
                values[extra] = self._extra_of(record, known)
            rows.append(tuple(values))
        return rows, exact

    def _extra_of(self, record: Record, known: set[str]) -> str | None:
        leftover = {k: v for k, v in record.items() if k not in known}
        return json.dumps(leftover, ensure_ascii=False, default=str) if leftover else None

    def to_row(self, record: Mapping[str, Any]) -> Row:
        rows, _ = self.row_tuples([dict(record)])
        return dict(zip(self.columns, map(storable, rows[0]), strict=True))

    def to_api(self, name: str, value: Any) -> Any:
        """A row value as the remote expects it in a request body."""
        kind = self.kinds.get(name) or "any"
        if value is None:
            return None
        if kind == "bool" and isinstance(value, int):
            return bool(value)
        if kind in JSON_KINDS and isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value  # let the remote say what is wrong with it
        return value

    def pushable(self, name: str) -> bool:
        """A field a local edit may change remotely: one syncctl mirrors from the remote and may write."""
        if name in (self.key, EXTRA, DELETED_AT):
            return False
        return name in self.remote_columns and self.spec.writable(name)

    def get_row(self, key: Key) -> Row | None:
        if not self.exists:
            return None
        names = ", ".join(map(quote, self.columns))
        try:
            found = self.conn.execute(
                f"SELECT {names} FROM {self.table} WHERE {quote(self.key)} = ?", (key,)
            ).fetchone()
        except OverflowError:
            return None
        return dict(zip(self.columns, found, strict=True)) if found else None

    def count(self) -> int:
        """Rows that exist remotely as far as the mirror knows (kept deleted rows are not counted)."""
        if not self.exists:
            return 0
        live = f" WHERE {quote(DELETED_AT)} IS NULL" if DELETED_AT in self.columns else ""
        return int(self.conn.execute(f"SELECT count(*) FROM {self.table}{live}").fetchone()[0])

    def keep_deleted_rows(self) -> None:
        """From now on a remote delete marks the row with `_deleted_at` instead of removing it; the mark is
        cleared when the record comes back. Inside the caller's transaction or its own."""
        if DELETED_AT in self.columns:
            return
        with self.db.transaction():
            self.conn.execute(f"ALTER TABLE {self.table} ADD COLUMN {quote(DELETED_AT)} TEXT")
            self.conn.execute(
                "INSERT OR REPLACE INTO _syncctl_columns (table_name, name, kind) VALUES (?, ?, 'marker')",
                (self.name, DELETED_AT),
            )
            self._load_columns()
            self._write_view()
            if self.spec.capture:
                self._write_triggers()

    # -- the one write path --------------------------------------------------------------------------------

    def write_rows(
        self,
        rows: Sequence[tuple[Any, ...]],
        current: Mapping[Key, tuple[Any, ...]],
        *,
        origin: str,
        run_id: int | None,
    ) -> None:
        """Upsert rows (column order) and record each change in the history; inside an applying transaction.

        `current` holds the rows as they are now, for those that exist: an update records `{field: [old,
        new]}`, an insert records nothing but its key (its row is in the table).
        """
        if not rows:
            return
        try:
            self.conn.executemany(self._upsert_sql, rows)
        except (sqlite3.InterfaceError, sqlite3.ProgrammingError, OverflowError, UnicodeEncodeError):
            # A value SQLite cannot bind stops executemany at its row; the rows before it are written.
            # Upserting every row again, odd values as text, ends in the same state (the others convert to
            # themselves). No savepoint around the fast path: it would journal every page the rows touch.
            stored = [tuple(map(storable, row)) for row in rows]
            self._warn_converted(rows, stored)
            self.conn.executemany(self._upsert_sql, stored)
        self._record_history(rows, current, origin=origin, run_id=run_id)

    def _warn_converted(self, rows: Sequence[tuple[Any, ...]], stored: Sequence[tuple[Any, ...]]) -> None:
        """One line on the values SQLite could not take as they came (an object where a number was, an
        integer beyond 64 bits, a lone surrogate): the record is stored all the same, those as text."""
        key_index = self.columns.index(self.key)
        converted = [
            f"{name} of {row[key_index]}"
            for row, kept in zip(rows, stored, strict=True)
            for name, value, written in zip(self.columns, row, kept, strict=True)
            if written is not value and not isinstance(value, bool)
        ]
        if converted:
            log.warning(
                "%d value(s) of %s that SQLite cannot hold as they came were stored as text: %s%s",
                len(converted),
                self.name,
                ", ".join(converted[:5]),
                ", ..." if len(converted) > 5 else "",
            )

    def _record_history(
        self,
        rows: Sequence[tuple[Any, ...]],
        current: Mapping[Key, tuple[Any, ...]],
        *,
        origin: str,
        run_id: int | None,
    ) -> None:
        at = now_iso()
        source, table, columns = self.spec.source, self.name, self.columns
        key_index = columns.index(self.key)
        entries: list[tuple[Any, ...]] = []
        for row in rows:
            key = row[key_index]
            before = current.get(key)
            if before is None:
                entries.append((run_id, at, source, table, str(key), "insert", origin, None))
                continue
            changes = {
                name: [old, new]
                for name, old, new in zip(columns, before, row, strict=True)
                if old != new and not (old is None and new is None)
            }
            entries.append((run_id, at, source, table, str(key), "update", origin, json_text(changes)))
        self.conn.executemany(
            "INSERT INTO _syncctl_history"
            " (run_id, at, source, table_name, record_id, op, origin, changes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            entries,
        )

    def delete_rows(self, keys: Iterable[Key], *, origin: str, run_id: int | None, keep: bool = False) -> int:
        """Delete rows (with `keep`, mark them `_deleted_at`) and record each as it was; inside an applying
        transaction."""
        at = now_iso()
        deleted = 0
        names = ", ".join(map(quote, self.columns))
        for key in keys:
            found = self.conn.execute(
                f"SELECT {names} FROM {self.table} WHERE {quote(self.key)} = ?", (key,)
            ).fetchone()
            if found is None:
                continue
            if keep and DELETED_AT in self.columns:
                self.conn.execute(
                    f"UPDATE {self.table} SET {quote(DELETED_AT)} = ? WHERE {quote(self.key)} = ?", (at, key)
                )
            else:
                self.conn.execute(f"DELETE FROM {self.table} WHERE {quote(self.key)} = ?", (key,))
            self._record_delete(
                key, dict(zip(self.columns, found, strict=True)), origin=origin, run_id=run_id, at=at
            )
            deleted += 1
        return deleted

    def _record_delete(
        self, key: Key, row: Mapping[str, Any], *, origin: str, run_id: int | None, at: str | None = None
    ) -> None:
        self.conn.execute(
            "INSERT INTO _syncctl_history (run_id, at, source, table_name, record_id, op, origin, changes)"
            " VALUES (?, ?, ?, ?, ?, 'delete', ?, ?)",
            (run_id, at or now_iso(), self.spec.source, self.name, str(key), origin, json_text(dict(row))),
        )

    # -- pulling -----------------------------------------------------------------------------------------

    def begin_listing(self) -> None:
        """Start collecting the keys a full listing returns (a temp table: not in the file, not in RAM)."""
        seen = quote(f"seen_{self.name}")
        self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {seen} (key PRIMARY KEY)")
        self.conn.execute(f"DELETE FROM temp.{seen}")

    def apply_page(
        self,
        records: list[Record],
        *,
        policy: Policy,
        run_id: int | None,
        full: bool,
        origin: str = "pull",
    ) -> PageCounts:
        """Write one page of remote records in one transaction; local pending edits are merged, not lost."""
        counts = PageCounts()
        if not records:
            return counts
        with self.db.transaction(applying=True):
            rows, exact = self.row_tuples(records)
            if not exact and any(not record.keys() <= set(self.columns) for record in records):
                counts.new_columns = self._add_columns(records)
                rows, _ = self.row_tuples(records)
            key_index = self.columns.index(self.key)
            unique: dict[Any, tuple[Any, ...]] = {}
            for row in rows:
                unique[row[key_index]] = row  # one key twice in a page: the later one is the remote's
            rows = list(unique.values())
            if self._cursor_index >= 0:
                values = [row[self._cursor_index] for row in rows]
                comparable = [v for v in values if isinstance(v, str) or _fits_integer(v)]
                kinds = {type(v) for v in comparable}
                counts.highest = max(comparable) if comparable and len(kinds) == 1 else None
            keys = json.dumps(list(unique), default=str)
            existing = {row[key_index]: row for row in self.conn.execute(self._select_sql, (keys,))}
            pending = {
                row[0]: (row[1], row[2])
                for row in self.conn.execute(
                    "SELECT record_id, op, base FROM _syncctl_pending WHERE table_name = ?"
                    " AND record_id IN (SELECT value FROM json_each(?))",
                    (self.name, keys),
                )
            }
            writes: list[tuple[Any, ...]] = []
            for remote_row in rows:
                key = remote_row[key_index]
                row = remote_row
                if key in pending:
                    merged = self._merge_pending(remote_row, pending[key], existing, counts, policy)
                    if merged is None:
                        continue
                    row = merged
                current = existing.get(key)
                if current is None:
                    counts.inserted += 1
                elif current == row or current == tuple(map(storable, row)):
                    counts.unchanged += 1
                    continue
                else:
                    counts.updated += 1
                writes.append(row)
            self.write_rows(writes, existing, origin=origin, run_id=run_id)
            if full:
                before = self.conn.total_changes
                self.conn.execute(
                    f"INSERT OR IGNORE INTO temp.{quote(f'seen_{self.name}')} (key)"
                    " SELECT value FROM json_each(?)",
                    (keys,),
                )
                counts.new_keys = self.conn.total_changes - before
            self.record_conflicts(counts.conflicts, run_id)
        return counts

    def _merge_pending(
        self,
        row: tuple[Any, ...],
        change: tuple[str, str | None],
        existing: dict[Key, tuple[Any, ...]],
        counts: PageCounts,
        policy: Policy,
    ) -> tuple[Any, ...] | None:
        """Merge a remote row into a record with a local change not yet pushed; None when nothing to write."""
        key = row[self.columns.index(self.key)]
        op, base_json = change
        remote = dict(zip(self.columns, row, strict=True))
        if op == "insert":
            if self.spec.key_type == "INTEGER":
                # A local insert took an id the remote has now given to another record: move it aside.
                self._move_local_insert(key)
                existing.pop(key, None)
                return row
            # A text key names the same record on both sides: the remote's version is the base now.
            self._set_base(key, remote)
            op = "update"
            base_json = json.dumps(remote)
        base = self._load_base(key, base_json)
        if op == "delete":
            if not remote_changed(base, remote):
                return None  # the delete is still to be pushed
            counts.conflicts.append(Conflict(key, ROW, "synced", "deleted", "edited", policy))
            if policy is Policy.LOCAL:
                self._set_base(key, remote)
                return None
            self.drop_pending(key)
            return row
        if key not in existing:
            return row
        local = dict(zip(self.columns, existing[key], strict=True))
        merged, conflicts = merge_rows(key, base, local, remote, policy, writable=self.pushable)
        counts.conflicts.extend(conflicts)
        if merged == remote:
            self.drop_pending(key)
        else:
            self._set_base(key, remote)
        return tuple(merged[name] for name in self.columns)

    def _load_base(self, key: Key, base_json: str | None) -> Row:
        """The synced row a pending change was made against; a hand-edited base that is not a JSON object
        counts as unknown (every local field then looks changed, and the policy decides)."""
        if not base_json:
            return {}
        try:
            base = json.loads(base_json)
        except (ValueError, RecursionError):
            base = None
        if not isinstance(base, dict):
            log.warning(
                "the pending change to %s %s has a base that is not the JSON object syncctl wrote"
                " (edited by hand?); every local field counts as changed and --on-conflict decides",
                self.name,
                key,
            )
            return {}
        return base

    def _set_base(self, key: Key, base: Row) -> None:
        self.conn.execute(
            "UPDATE _syncctl_pending SET base = ? WHERE table_name = ? AND record_id = ?",
            (json.dumps(base, ensure_ascii=False, default=str), self.name, key),
        )

    def drop_pending(self, key: Key) -> None:
        self.conn.execute(
            "DELETE FROM _syncctl_pending WHERE table_name = ? AND record_id = ?", (self.name, key)
        )

    def _move_local_insert(self, key: Key) -> None:
        lowest = self.conn.execute(f"SELECT min({quote(self.key)}) FROM {self.table}").fetchone()[0] or 0
        new_key = min(lowest, 0) - 1
        self.conn.execute(
            f"UPDATE {self.table} SET {quote(self.key)} = ? WHERE {quote(self.key)} = ?", (new_key, key)
        )
        self.conn.execute(
            "UPDATE _syncctl_pending SET record_id = ? WHERE table_name = ? AND record_id = ?",
            (new_key, self.name, key),
        )

    def seen_key(self) -> Key | None:
        """Any one key the current full listing returned: a record known to exist remotely."""
        found = self.conn.execute(f"SELECT key FROM temp.{quote(f'seen_{self.name}')} LIMIT 1").fetchone()
        return found[0] if found else None

    def unseen_keys(self) -> list[Key]:
        """Local records a completed full listing did not return, leaving out local inserts not yet pushed
        (and rows already marked deleted)."""
        key = quote(self.key)
        kept = f" AND {quote(DELETED_AT)} IS NULL" if DELETED_AT in self.columns else ""
        return [
            row[0]
            for row in self.conn.execute(
                f"SELECT {key} FROM {self.table} WHERE {key} NOT IN"
                f" (SELECT key FROM temp.{quote(f'seen_{self.name}')}){kept} AND {key} NOT IN"
                " (SELECT record_id FROM _syncctl_pending WHERE table_name = ? AND op = 'insert')"
                f" ORDER BY {key}",
                (self.name,),
            )
        ]

    def apply_remote_deletes(
        self, keys: Iterable[Key], *, policy: Policy, run_id: int | None
    ) -> tuple[int, list[Conflict]]:
        """Delete records the remote confirmed gone; a local edit against one is a conflict for the policy."""
        deleted = 0
        conflicts: list[Conflict] = []
        with self.db.transaction(applying=True):
            for key in keys:
                found = self.conn.execute(
                    "SELECT op FROM _syncctl_pending WHERE table_name = ? AND record_id = ?", (self.name, key)
                ).fetchone()
                if found and found[0] == "update":
                    conflicts.append(Conflict(key, ROW, "synced", "edited", "deleted", policy))
                    if policy is Policy.LOCAL:
                        # Keep the local version: it is created again remotely by the next push.
                        self.conn.execute(
                            "UPDATE _syncctl_pending SET op = 'insert', base = NULL, creation_id = NULL"
                            " WHERE table_name = ? AND record_id = ?",
                            (self.name, key),
                        )
                        continue
                self.drop_pending(key)
                deleted += self.delete_rows(
                    [key], origin="pull", run_id=run_id, keep=DELETED_AT in self.columns
                )
            self.record_conflicts(conflicts, run_id)
        return deleted, conflicts

    # -- the outbox --------------------------------------------------------------------------------------

    def pending_changes(self, limit: int | None = None) -> list[PendingChange]:
        """Oldest first; a change that failed counts from its last attempt, so with a `limit` (a queued
        push's batch) changes the remote keeps refusing go to the back and never starve the others."""
        changes = []
        query = (
            "SELECT record_id, op, base, creation_id, attempts, last_error, changed_at FROM _syncctl_pending"
            " WHERE table_name = ? ORDER BY max(changed_at, coalesce(last_attempt_at, '')), record_id"
        )
        params: tuple[Any, ...] = (self.name,)
        if limit is not None:
            query += " LIMIT ?"
            params = (self.name, limit)
        for key, op, base, creation_id, attempts, last_error, changed_at in self.conn.execute(
            query, params
        ).fetchall():
            changes.append(
                PendingChange(
                    key=key,
                    op=op,
                    base=self._load_base(key, base) if base else None,
                    local=self.get_row(key),
                    creation_id=creation_id,
                    attempts=attempts,
                    last_error=last_error,
                    changed_at=changed_at,
                )
            )
        return changes

    def pending_count(self) -> int:
        if not self.db.has_table("_syncctl_pending"):
            return 0
        return int(
            self.conn.execute(
                "SELECT count(*) FROM _syncctl_pending WHERE table_name = ?", (self.name,)
            ).fetchone()[0]
        )

    def discard_pending(self, keys: Iterable[Key] | None) -> int:
        """Undo local changes not yet pushed (all with None): rows go back to their last synced version."""
        query = "SELECT record_id, op, base FROM _syncctl_pending WHERE table_name = ?"
        params: tuple[Any, ...] = (self.name,)
        if keys is not None:
            query += " AND record_id IN (SELECT value FROM json_each(?))"
            params = (self.name, json.dumps(sorted(set(keys), key=str)))
        with self.db.transaction(applying=True):
            found = self.conn.execute(query, params).fetchall()
            for key, op, base in found:
                self.drop_pending(key)
                if op == "insert" or not base:
                    self.delete_rows([key], origin="cli", run_id=None)
                    continue
                synced = self._load_base(key, base)
                row = tuple(map(storable, map(synced.get, self.columns)))
                now = self.get_row(key)
                self.write_rows([row], {key: tuple(now.values())} if now else {}, origin="cli", run_id=None)
        return len(found)

    def set_creation_id(self, key: Key, creation_id: str) -> None:
        """Remember a create's idempotency key before the POST, so a retry after a crash reuses it."""
        with self.db.transaction():
            self.conn.execute(
                "UPDATE _syncctl_pending SET creation_id = ? WHERE table_name = ? AND record_id = ?",
                (creation_id, self.name, key),
            )

    def record_push_failure(self, key: Key, error: str) -> None:
        with self.db.transaction():
            self.conn.execute(
                "UPDATE _syncctl_pending SET attempts = attempts + 1, last_error = ?, last_attempt_at = ?"
                " WHERE table_name = ? AND record_id = ?",
                (error, now_iso(), self.name, key),
            )

    def settle_push(
        self,
        key: Key,
        remote: Record | None,
        *,
        snapshot: Row | None,
        conflicts: Sequence[Conflict] = (),
        run_id: int | None = None,
        origin: str = "push",
        base: Row | None = None,
    ) -> None:
        """Store what the remote holds after a push of the change to `key` and close that change.

        `remote` is the re-read record (None when it is gone); `snapshot` is the local row the push was
        computed from; `base` the row as last synced, which the history compares against, so a pushed
        local edit is recorded as the change it made (and a pushed local delete as a delete).
        Edits someone made locally while the push was under way stay pending.
        """
        with self.db.transaction(applying=True):
            current = self.get_row(key)
            self.drop_pending(key)
            if remote is None:
                if current is not None:
                    self.delete_rows([key], origin=origin, run_id=run_id)
                elif base:
                    self._record_delete(key, base, origin=origin, run_id=run_id)
            else:
                row = self.to_row(remote)
                new_key = row[self.key]
                known = base if base else current
                before = {key: tuple(known.get(c) for c in self.columns)} if known is not None else {}
                if new_key != key:
                    # A local insert now carries the key the remote gave it.
                    self.conn.execute(f"DELETE FROM {self.table} WHERE {quote(self.key)} = ?", (key,))
                    before = {}
                self.write_rows([tuple(row.values())], before, origin=origin, run_id=run_id)
                if current is not None and snapshot is not None and current != snapshot:
                    edited = {n: v for n, v in current.items() if n != self.key and v != snapshot.get(n)}
                    assignments = ", ".join(f"{quote(n)} = ?" for n in edited)
                    self.conn.execute(
                        f"UPDATE {self.table} SET {assignments} WHERE {quote(self.key)} = ?",
                        (*edited.values(), new_key),
                    )
                    self.conn.execute(
                        "INSERT OR REPLACE INTO _syncctl_pending"
                        " (table_name, record_id, op, base, changed_at)"
                        " VALUES (?, ?, 'update', ?, ?)",
                        (self.name, new_key, json.dumps(row, ensure_ascii=False, default=str), now_iso()),
                    )
            self.record_conflicts(list(conflicts), run_id)

    # -- conflicts ---------------------------------------------------------------------------------------

    def record_conflicts(self, conflicts: list[Conflict], run_id: int | None) -> None:
        if not conflicts:
            return
        stamp = now_iso()
        self.conn.executemany(
            "INSERT INTO _syncctl_conflicts (run_id, table_name, record_id, field, base_value, local_value,"
            " remote_value, winner, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    self.name,
                    c.record_id,
                    c.field,
                    *map(storable, (c.base, c.local, c.remote)),
                    c.winner.value,
                    stamp,
                )
                for c in conflicts
            ],
        )


def _fits_integer(value: Any) -> bool:
    """An integer SQLite can hold: one beyond 64 bits is stored as text, and is no cursor either."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _one(name: str) -> Callable[[Record], tuple[Any]]:
    def get(record: Record) -> tuple[Any]:
        return (record[name],)

    return get
