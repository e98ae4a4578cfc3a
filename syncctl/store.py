"""The SQLite side: the `cases` mirror, the pending-change log, conflicts, the run log and the cursor.

Knows nothing of HTTP. Local edits made by any SQLite client are caught by triggers on `cases` into
`_syncctl_pending`, together with the row as it was last synced (the *base* of a three-way merge).
While syncctl itself writes remote state into `cases`, a row in `_syncctl_applying` silences the
triggers; that row exists only inside syncctl's own uncommitted transaction, so no other connection
ever sees it, and a crash rolls it back with everything else.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

from syncctl.connectors.intempus import fields
from syncctl.core.errors import DatabaseError
from syncctl.core.merge import ROW, Conflict, Policy, Row, merge_case, remote_changed

Case = dict[str, Any]
BUSY_TIMEOUT_S = 30.0
JSON_OBJECT_ARGS = 50  # columns per json_object() call: old SQLite builds allow 127 arguments a function

SCHEMA = """
CREATE TABLE IF NOT EXISTS _syncctl_state (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS _syncctl_columns (name TEXT PRIMARY KEY, kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS _syncctl_applying (flag INTEGER);
CREATE TABLE IF NOT EXISTS _syncctl_runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    fetched INTEGER NOT NULL DEFAULT 0,
    inserted INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    pushed INTEGER NOT NULL DEFAULT 0,
    push_failed INTEGER NOT NULL DEFAULT 0,
    conflicts INTEGER NOT NULL DEFAULT 0,
    duration_s REAL,
    error TEXT,
    pid INTEGER
);
CREATE TABLE IF NOT EXISTS _syncctl_pending (
    id INTEGER PRIMARY KEY,
    op TEXT NOT NULL,
    base TEXT,
    creation_id TEXT,
    changed_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_attempt_at TEXT
);
CREATE TABLE IF NOT EXISTS _syncctl_conflicts (
    id INTEGER PRIMARY KEY,
    run_id INTEGER,
    case_id INTEGER NOT NULL,
    field TEXT NOT NULL,
    base_value,
    local_value,
    remote_value,
    winner TEXT NOT NULL,
    decided_at TEXT NOT NULL
);
"""

TRIGGERS = ("_syncctl_cases_insert", "_syncctl_cases_update", "_syncctl_cases_rekey", "_syncctl_cases_delete")
RUN_COUNTS = ("fetched", "inserted", "updated", "deleted", "unchanged", "pushed", "push_failed", "conflicts")


_encode = json.JSONEncoder(ensure_ascii=False).encode


def to_json_text(value: Any) -> str:
    """A list or object as JSON text, the way it is stored; most cases carry an empty list."""
    return "[]" if value == [] else _encode(value)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class PageCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    highest_stamp: int | None = None  # the highest logical_timestamp in the page
    conflicts: list[Conflict] = field(default_factory=list)


@dataclass(frozen=True)
class PendingChange:
    id: int
    op: str  # insert | update | delete
    base: Row | None  # the row as last synced; None for a local insert
    local: Row | None  # the row as it is now; None for a delete
    creation_id: str | None
    attempts: int
    last_error: str | None


class Store:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.columns: list[str] = []
        self.kinds: dict[str, str] = {}
        self._json_positions: list[int] = []
        self._upsert_sql = ""
        self._select_sql = ""

    # -- opening -----------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Store:
        """Open (and with `create`, make) the mirror; any unusable file is a DatabaseError."""
        if not create and not path.exists():
            raise DatabaseError(f"no database at {path} yet: run `syncctl sync` first")
        try:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open database {path}: {exc}") from None
        store = cls(conn, path)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            store.ensure_schema()
        except sqlite3.Error as exc:
            conn.close()
            raise DatabaseError(f"{path} is not a usable SQLite database: {exc}") from None
        return store

    def close(self) -> None:
        self.conn.close()

    def ensure_schema(self) -> None:
        """Create what is missing; a file that is already set up is only read, never rewritten."""
        if self._schema_is_current():
            self._load_columns()
            return
        with self.transaction():
            self._run_script(SCHEMA)
            exists = self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'cases'").fetchone()
            if not exists:
                known = sorted(name for name in fields.KNOWN if name != "id")
                columns = ", ".join(f"{quote(n)} {fields.column_type(n)}".rstrip() for n in known)
                self.conn.execute(f"CREATE TABLE cases (id INTEGER PRIMARY KEY, {columns})")
            self._load_columns()
            self._write_triggers()

    def _schema_is_current(self) -> bool:
        names = {row[0] for row in self.conn.execute("SELECT name FROM sqlite_master")}
        tables = {line.split()[5] for line in SCHEMA.splitlines() if line.startswith("CREATE TABLE")}
        if not (tables | {"cases", *TRIGGERS}) <= names:
            return False
        # The triggers name every column: they must have been written for the columns there are now.
        found = self.conn.execute("SELECT value FROM _syncctl_state WHERE key = 'trigger_columns'").fetchone()
        columns = [row[1] for row in self.conn.execute("PRAGMA table_info(cases)")]
        return bool(found) and found[0] == json.dumps(columns)

    def _run_script(self, script: str) -> None:
        """Run several statements inside the current transaction (executescript would commit it)."""
        statement = ""
        for line in script.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                self.conn.execute(statement)
                statement = ""

    def _load_columns(self) -> None:
        self.columns = [row[1] for row in self.conn.execute("PRAGMA table_info(cases)")]
        stored = dict(self.conn.execute("SELECT name, kind FROM _syncctl_columns").fetchall())
        self.kinds = {name: stored.get(name) or fields.kind_of(name) for name in self.columns}
        self._json_positions = [
            i for i, name in enumerate(self.columns) if self.kinds[name] in ("json", "uri_list")
        ]
        self._getter = itemgetter(*self.columns)
        self._stamp_index = (
            self.columns.index("logical_timestamp") if "logical_timestamp" in self.columns else -1
        )
        names = ", ".join(map(quote, self.columns))
        marks = ", ".join("?" * len(self.columns))
        updates = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in self.columns if n != "id")
        self._upsert_sql = (
            f"INSERT INTO cases ({names}) VALUES ({marks}) ON CONFLICT(id) DO UPDATE SET {updates}"
        )
        self._select_sql = f"SELECT {names} FROM cases WHERE id IN (SELECT value FROM json_each(?))"

    def _json_of(self, alias: str) -> str:
        """SQL for a JSON object of a whole `cases` row (OLD or NEW inside a trigger)."""
        parts = []
        for start in range(0, len(self.columns), JSON_OBJECT_ARGS):
            chunk = self.columns[start : start + JSON_OBJECT_ARGS]
            parts.append("json_object(" + ", ".join(f"'{n}', {alias}.{quote(n)}" for n in chunk) + ")")
        expression = parts[0]
        for part in parts[1:]:
            expression = f"json_patch({expression}, {part})"
        return expression

    def _write_triggers(self) -> None:
        quiet = "NOT EXISTS (SELECT 1 FROM _syncctl_applying)"
        stamp = "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')"
        old = self._json_of("OLD")
        record_insert = f"""
            INSERT INTO _syncctl_pending (id, op, base, changed_at) VALUES (NEW.id, 'insert', NULL, {stamp})
            ON CONFLICT(id) DO UPDATE SET changed_at = excluded.changed_at,
                op = CASE WHEN _syncctl_pending.op = 'delete' THEN 'update' ELSE _syncctl_pending.op END;"""
        record_delete = f"""
            INSERT INTO _syncctl_pending (id, op, base, changed_at) VALUES (OLD.id, 'delete', {old}, {stamp})
            ON CONFLICT(id) DO UPDATE SET changed_at = excluded.changed_at,
                op = CASE WHEN _syncctl_pending.op = 'insert' THEN 'drop' ELSE 'delete' END;
            DELETE FROM _syncctl_pending WHERE id = OLD.id AND op = 'drop';"""
        script = f"""
            DROP TRIGGER IF EXISTS _syncctl_cases_insert;
            DROP TRIGGER IF EXISTS _syncctl_cases_update;
            DROP TRIGGER IF EXISTS _syncctl_cases_rekey;
            DROP TRIGGER IF EXISTS _syncctl_cases_delete;
            CREATE TRIGGER _syncctl_cases_insert AFTER INSERT ON cases WHEN {quiet}
            BEGIN {record_insert} END;
            CREATE TRIGGER _syncctl_cases_update AFTER UPDATE ON cases WHEN {quiet} AND OLD.id = NEW.id
            BEGIN
                INSERT INTO _syncctl_pending (id, op, base, changed_at)
                VALUES (NEW.id, 'update', {old}, {stamp})
                ON CONFLICT(id) DO UPDATE SET changed_at = excluded.changed_at;
            END;
            CREATE TRIGGER _syncctl_cases_rekey AFTER UPDATE ON cases WHEN {quiet} AND OLD.id IS NOT NEW.id
            BEGIN {record_delete} {record_insert} END;
            CREATE TRIGGER _syncctl_cases_delete AFTER DELETE ON cases WHEN {quiet}
            BEGIN {record_delete} END;
        """
        self._run_script(script)
        self.conn.execute(
            "INSERT OR REPLACE INTO _syncctl_state (key, value) VALUES ('trigger_columns', ?)",
            (json.dumps(self.columns),),
        )

    def _add_columns(self, cases: Iterable[Case]) -> None:
        """Make a column for every remote field seen for the first time (inside the caller's transaction)."""
        known = set(self.columns)
        added: dict[str, Any] = {}
        for case in cases:
            for name, value in case.items():
                if name not in known and (name not in added or added[name] is None):
                    added[name] = value
        for name, value in added.items():
            kind = fields.kind_of(name, value)
            column = f"{quote(name)} {fields.column_type(name, value)}".rstrip()
            self.conn.execute(f"ALTER TABLE cases ADD COLUMN {column}")
            self.conn.execute(
                "INSERT OR REPLACE INTO _syncctl_columns (name, kind) VALUES (?, ?)", (name, kind)
            )
        self._load_columns()
        self._write_triggers()

    # -- transactions ------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, applying: bool = False) -> Iterator[None]:
        """One write transaction; with `applying`, changes made in it are not taken for local edits."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if applying:
                self.conn.execute("INSERT INTO _syncctl_applying (flag) VALUES (1)")
            yield
            if applying:
                self.conn.execute("DELETE FROM _syncctl_applying")
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    # -- rows --------------------------------------------------------------------------------------------

    def row_tuples(self, cases: list[Case]) -> tuple[list[tuple[Any, ...]], bool]:
        """Remote cases as row tuples in column order (the one place remote values become row values),
        and whether every case had exactly the known columns (if not, a field may be new)."""
        getter, width, positions = self._getter, len(self.columns), self._json_positions
        rows = []
        exact = True
        for case in cases:
            try:
                values = list(getter(case))  # every column present: the common case, done in C
                exact = exact and len(case) == width
            except KeyError:
                values = list(map(case.get, self.columns))
                exact = False
            for i in positions:
                value = values[i]
                if value is not None and not isinstance(value, str):
                    values[i] = to_json_text(value)
            rows.append(tuple(values))
        return rows, exact

    def _safe_row_values(self, case: Mapping[str, Any]) -> tuple[Any, ...]:
        """Like row_tuples, for a case whose fields changed shape: any list or object becomes JSON text."""
        return tuple(
            to_json_text(v) if isinstance(v, list | dict) else v for v in map(case.get, self.columns)
        )

    def to_row(self, case: Mapping[str, Any]) -> Row:
        return dict(zip(self.columns, self._safe_row_values(case), strict=True))

    def to_api(self, name: str, value: Any) -> Any:
        """A row value as Intempus expects it in a request body."""
        kind = self.kinds.get(name) or fields.kind_of(name)
        if value is None:
            return None
        if kind == "bool" and isinstance(value, int):
            return bool(value)
        if kind in ("json", "uri_list") and isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value  # let Intempus say what is wrong with it
        return value

    def get_row(self, case_id: int) -> Row | None:
        names = ", ".join(map(quote, self.columns))
        found = self.conn.execute(f"SELECT {names} FROM cases WHERE id = ?", (case_id,)).fetchone()
        return dict(zip(self.columns, found, strict=True)) if found else None

    def case_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM cases").fetchone()[0])

    # -- pulling -----------------------------------------------------------------------------------------

    def begin_listing(self) -> None:
        """Start collecting the ids a full listing returns (a temp table: not in the file, not in RAM)."""
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen (id INTEGER PRIMARY KEY)")
        self.conn.execute("DELETE FROM temp.seen")

    def apply_page(self, cases: list[Case], *, policy: Policy, run_id: int | None, full: bool) -> PageCounts:
        """Write one page of remote cases in one transaction; local pending edits are merged, not lost."""
        counts = PageCounts()
        if not cases:
            return counts
        with self.transaction(applying=True):
            rows, exact = self.row_tuples(cases)
            if not exact and any(not case.keys() <= set(self.columns) for case in cases):
                self._add_columns(cases)
                rows, _ = self.row_tuples(cases)
            if self._stamp_index >= 0:
                stamps = [s for s in map(itemgetter(self._stamp_index), rows) if type(s) is int]
                counts.highest_stamp = max(stamps, default=None)
            ids = json.dumps([row[0] for row in rows])
            existing = {row[0]: row for row in self.conn.execute(self._select_sql, (ids,))}
            pending = {
                row[0]: (row[1], row[2])
                for row in self.conn.execute(
                    "SELECT id, op, base FROM _syncctl_pending WHERE id IN (SELECT value FROM json_each(?))",
                    (ids,),
                )
            }
            writes: list[tuple[Any, ...]] = []
            for remote_row in rows:
                case_id = remote_row[0]
                row = remote_row
                if case_id in pending:
                    merged = self._merge_pending(remote_row, pending[case_id], existing, counts, policy)
                    if merged is None:
                        continue
                    row = merged
                current = existing.get(case_id)
                if current is None:
                    counts.inserted += 1
                elif current == row:
                    counts.unchanged += 1
                    continue
                else:
                    counts.updated += 1
                writes.append(row)
            try:
                self.conn.executemany(self._upsert_sql, writes)
            except sqlite3.InterfaceError:  # a value of a shape the column kinds did not foresee
                self.conn.executemany(self._upsert_sql, [self._safe_tuple(row) for row in writes])
            if full:
                self.conn.execute(
                    "INSERT OR IGNORE INTO temp.seen (id) SELECT value FROM json_each(?)", (ids,)
                )
            self._record_conflicts(counts.conflicts, run_id)
        return counts

    def _safe_tuple(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(to_json_text(v) if isinstance(v, list | dict) else v for v in row)

    def _merge_pending(
        self,
        row: tuple[Any, ...],
        change: tuple[str, str | None],
        existing: dict[int, tuple[Any, ...]],
        counts: PageCounts,
        policy: Policy,
    ) -> tuple[Any, ...] | None:
        """Merge a remote row into a case with a local change not yet pushed; None when nothing to write."""
        case_id = row[0]
        op, base_json = change
        remote = dict(zip(self.columns, row, strict=True))
        if op == "insert":
            # A local insert took an id Intempus has now given to another case: move the local row aside.
            self._move_local_insert(case_id)
            existing.pop(case_id, None)
            return row
        base = json.loads(base_json) if base_json else {}
        if op == "delete":
            if not remote_changed(base, remote):
                return None  # the delete is still to be pushed
            counts.conflicts.append(Conflict(case_id, ROW, "synced", "deleted", "edited", policy))
            if policy is Policy.LOCAL:
                self._set_base(case_id, remote)
                return None
            self.conn.execute("DELETE FROM _syncctl_pending WHERE id = ?", (case_id,))
            return row
        local = dict(zip(self.columns, existing[case_id], strict=True))
        merged, conflicts = merge_case(case_id, base, local, remote, policy)
        counts.conflicts.extend(conflicts)
        if merged == remote:
            self.conn.execute("DELETE FROM _syncctl_pending WHERE id = ?", (case_id,))
        else:
            self._set_base(case_id, remote)
        return tuple(merged[name] for name in self.columns)

    def _set_base(self, case_id: int, base: Row) -> None:
        self.conn.execute(
            "UPDATE _syncctl_pending SET base = ? WHERE id = ?",
            (json.dumps(base, ensure_ascii=False), case_id),
        )

    def _move_local_insert(self, case_id: int) -> None:
        lowest = self.conn.execute("SELECT min(id) FROM cases").fetchone()[0] or 0
        new_id = min(lowest, 0) - 1
        self.conn.execute("UPDATE cases SET id = ? WHERE id = ?", (new_id, case_id))
        self.conn.execute("UPDATE _syncctl_pending SET id = ? WHERE id = ?", (new_id, case_id))

    def seen_id(self) -> int | None:
        """Any one id the current full listing returned: a case known to exist in Intempus."""
        found = self.conn.execute("SELECT id FROM temp.seen LIMIT 1").fetchone()
        return int(found[0]) if found else None

    def unseen_ids(self) -> list[int]:
        """Local cases a completed full listing did not return, leaving out local inserts not yet pushed."""
        return [
            row[0]
            for row in self.conn.execute(
                "SELECT id FROM cases WHERE id NOT IN (SELECT id FROM temp.seen)"
                " AND id NOT IN (SELECT id FROM _syncctl_pending WHERE op = 'insert') ORDER BY id"
            )
        ]

    def apply_remote_deletes(
        self, case_ids: Iterable[int], *, policy: Policy, run_id: int | None
    ) -> tuple[int, list[Conflict]]:
        """Delete cases Intempus confirmed gone; a local edit against it is a conflict decided by policy."""
        deleted = 0
        conflicts: list[Conflict] = []
        with self.transaction(applying=True):
            for case_id in case_ids:
                found = self.conn.execute(
                    "SELECT op FROM _syncctl_pending WHERE id = ?", (case_id,)
                ).fetchone()
                if found and found[0] == "update":
                    conflicts.append(Conflict(case_id, ROW, "synced", "edited", "deleted", policy))
                    if policy is Policy.LOCAL:
                        # Keep the local version: it is created again in Intempus by the next push.
                        self.conn.execute(
                            "UPDATE _syncctl_pending SET op = 'insert', base = NULL, creation_id = NULL"
                            " WHERE id = ?",
                            (case_id,),
                        )
                        continue
                self.conn.execute("DELETE FROM _syncctl_pending WHERE id = ?", (case_id,))
                deleted += self.conn.execute("DELETE FROM cases WHERE id = ?", (case_id,)).rowcount
            self._record_conflicts(conflicts, run_id)
        return deleted, conflicts

    # -- pushing -----------------------------------------------------------------------------------------

    def pending_changes(self) -> list[PendingChange]:
        changes = []
        query = (
            "SELECT id, op, base, creation_id, attempts, last_error FROM _syncctl_pending"
            " ORDER BY changed_at, id"
        )
        for case_id, op, base, creation_id, attempts, last_error in self.conn.execute(query).fetchall():
            local = self.get_row(case_id)
            changes.append(
                PendingChange(
                    id=case_id,
                    op=op,
                    base=json.loads(base) if base else None,
                    local=local,
                    creation_id=creation_id,
                    attempts=attempts,
                    last_error=last_error,
                )
            )
        return changes

    def pending_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM _syncctl_pending").fetchone()[0])

    def discard_pending(self, case_ids: Iterable[int] | None) -> int:
        """Undo local changes not yet pushed (all with None): rows go back to their last synced version."""
        query = "SELECT id, op, base FROM _syncctl_pending"
        chosen = None if case_ids is None else json.dumps(sorted(set(case_ids)))
        if chosen is not None:
            query += " WHERE id IN (SELECT value FROM json_each(?))"
        with self.transaction(applying=True):
            found = self.conn.execute(query, () if chosen is None else (chosen,)).fetchall()
            for case_id, op, base in found:
                self.conn.execute("DELETE FROM _syncctl_pending WHERE id = ?", (case_id,))
                if op == "insert" or not base:
                    self.conn.execute("DELETE FROM cases WHERE id = ?", (case_id,))
                    continue
                synced = json.loads(base)
                self.conn.execute(self._upsert_sql, self._safe_tuple(tuple(map(synced.get, self.columns))))
        return len(found)

    def set_creation_id(self, case_id: int, creation_id: str) -> None:
        """Remember a create's idempotency key before the POST, so a retry after a crash reuses it."""
        with self.transaction():
            self.conn.execute(
                "UPDATE _syncctl_pending SET creation_id = ? WHERE id = ?", (creation_id, case_id)
            )

    def record_push_failure(self, case_id: int, error: str) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE _syncctl_pending SET attempts = attempts + 1, last_error = ?, last_attempt_at = ?"
                " WHERE id = ?",
                (error, now_iso(), case_id),
            )

    def settle_push(
        self,
        case_id: int,
        remote: Case | None,
        *,
        snapshot: Row | None,
        conflicts: Sequence[Conflict] = (),
        run_id: int | None = None,
    ) -> None:
        """Store what Intempus holds after a push of the change to `case_id` and close that change.

        `remote` is the re-read case (None when it is gone); `snapshot` is the local row the push was
        computed from. Edits someone made locally while the push was under way stay pending.
        """
        with self.transaction(applying=True):
            current = self.get_row(case_id)
            self.conn.execute("DELETE FROM _syncctl_pending WHERE id = ?", (case_id,))
            if remote is None:
                self.conn.execute("DELETE FROM cases WHERE id = ?", (case_id,))
            else:
                row = self.to_row(remote)
                if remote["id"] != case_id:
                    self.conn.execute("DELETE FROM cases WHERE id = ?", (case_id,))
                self.conn.execute(self._upsert_sql, self._safe_tuple(tuple(row.values())))
                if current is not None and snapshot is not None and current != snapshot:
                    edited = {n: v for n, v in current.items() if n != "id" and v != snapshot.get(n)}
                    self.conn.execute(
                        f"UPDATE cases SET {', '.join(f'{quote(n)} = ?' for n in edited)} WHERE id = ?",
                        (*edited.values(), remote["id"]),
                    )
                    self.conn.execute(
                        "INSERT OR REPLACE INTO _syncctl_pending (id, op, base, changed_at)"
                        " VALUES (?, 'update', ?, ?)",
                        (remote["id"], json.dumps(row, ensure_ascii=False), now_iso()),
                    )
            self._record_conflicts(list(conflicts), run_id)

    # -- conflicts ---------------------------------------------------------------------------------------

    def _record_conflicts(self, conflicts: list[Conflict], run_id: int | None) -> None:
        if not conflicts:
            return
        stamp = now_iso()
        self.conn.executemany(
            "INSERT INTO _syncctl_conflicts"
            " (run_id, case_id, field, base_value, local_value, remote_value, winner, decided_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (run_id, c.case_id, c.field, c.base, c.local, c.remote, c.winner.value, stamp)
                for c in conflicts
            ],
        )

    def _dicts(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def conflicts(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT id, run_id, case_id, field, base_value, local_value, remote_value, winner, decided_at"
            " FROM _syncctl_conflicts ORDER BY id DESC LIMIT ?",
            (limit,),
        )

    # -- cursor and run log ------------------------------------------------------------------------------

    def get_cursor(self) -> int | None:
        found = self.conn.execute("SELECT value FROM _syncctl_state WHERE key = 'cursor'").fetchone()
        return int(found[0]) if found and found[0] is not None else None

    def set_cursor(self, cursor: int | None) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO _syncctl_state (key, value) VALUES ('cursor', ?)", (cursor,)
            )

    def start_run(self, mode: str) -> int:
        with self.transaction():
            # Only the lock holder starts runs, so any run still marked running belongs to a dead process.
            self.conn.execute(
                "UPDATE _syncctl_runs SET status = 'interrupted', finished_at = ?,"
                " error = 'the process ended before the run finished' WHERE status = 'running'",
                (now_iso(),),
            )
            cursor = self.conn.execute(
                "INSERT INTO _syncctl_runs (started_at, mode, status, pid) VALUES (?, ?, 'running', ?)",
                (now_iso(), mode, os.getpid()),
            )
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, *, status: str, counts: Mapping[str, int], duration_s: float,
                   error: str | None) -> None:  # fmt: skip
        assignments = ", ".join(f"{name} = ?" for name in RUN_COUNTS)
        with self.transaction():
            self.conn.execute(
                "UPDATE _syncctl_runs SET finished_at = ?, status = ?, duration_s = ?, error = ?,"
                f" {assignments} WHERE id = ?",
                (now_iso(), status, round(duration_s, 3), error, *(counts[n] for n in RUN_COUNTS), run_id),
            )

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        columns = ", ".join(("id", "started_at", "finished_at", "mode", "status", *RUN_COUNTS))
        return self._dicts(
            f"SELECT {columns}, duration_s, error FROM _syncctl_runs ORDER BY id DESC LIMIT ?", (limit,)
        )

    def pending_summary(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._dicts(
            "SELECT id, op, changed_at, attempts, last_error FROM _syncctl_pending"
            " ORDER BY changed_at, id LIMIT ?",
            (limit,),
        )
