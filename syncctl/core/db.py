"""The SQLite file: opening it safely, syncctl's own tables, schema versions and who owns which table.

Every source shares one file. syncctl's bookkeeping lives in `_syncctl_*` tables keyed by source and
table; data tables (`cases`, `grid_measurements`, ...) are registered in `_syncctl_tables` when syncctl
creates them, and a data table syncctl did not create is never touched. Schema changes are numbered steps
under `PRAGMA user_version`, each run once in one transaction and recorded in `_syncctl_migrations`.
Read commands open the file read-only and never write, not even to set it up.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syncctl.core.errors import DatabaseError

BUSY_TIMEOUT_S = 30.0
SCHEMA_VERSION = 2


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def quote(name: str) -> str:
    """An SQL identifier, whatever characters a remote put in it."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """An SQL string literal, for the few places a name must appear as a value inside generated SQL."""
    return "'" + text.replace("'", "''") + "'"


BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS _syncctl_migrations (
    version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS _syncctl_tables (
    name TEXT PRIMARY KEY, source TEXT NOT NULL, key TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS _syncctl_columns (
    table_name TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, PRIMARY KEY (table_name, name)
);
CREATE TABLE IF NOT EXISTS _syncctl_state (
    source TEXT NOT NULL, key TEXT NOT NULL, value, PRIMARY KEY (source, key)
);
CREATE TABLE IF NOT EXISTS _syncctl_applying (flag INTEGER);
CREATE TABLE IF NOT EXISTS _syncctl_runs (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL DEFAULT 'intempus',
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
    skipped INTEGER NOT NULL DEFAULT 0,
    duration_s REAL,
    error TEXT,
    pid INTEGER,
    extra TEXT
);
CREATE INDEX IF NOT EXISTS _syncctl_runs_source ON _syncctl_runs (source, id);
CREATE TABLE IF NOT EXISTS _syncctl_pending (
    table_name TEXT NOT NULL,
    record_id NOT NULL,
    op TEXT NOT NULL,
    base TEXT,
    creation_id TEXT,
    changed_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_attempt_at TEXT,
    PRIMARY KEY (table_name, record_id)
);
CREATE TABLE IF NOT EXISTS _syncctl_conflicts (
    id INTEGER PRIMARY KEY,
    run_id INTEGER,
    table_name TEXT NOT NULL DEFAULT 'cases',
    record_id NOT NULL,
    field TEXT NOT NULL,
    base_value,
    local_value,
    remote_value,
    winner TEXT NOT NULL,
    decided_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS _syncctl_history (
    id INTEGER PRIMARY KEY,
    run_id INTEGER,
    at TEXT NOT NULL,
    source TEXT NOT NULL,
    table_name TEXT NOT NULL,
    record_id TEXT NOT NULL,
    op TEXT NOT NULL,
    origin TEXT NOT NULL,
    changes TEXT
);
CREATE INDEX IF NOT EXISTS _syncctl_history_at ON _syncctl_history (at);
CREATE INDEX IF NOT EXISTS _syncctl_history_record ON _syncctl_history (table_name, record_id);
"""


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run several statements inside the current transaction (executescript would commit it)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""


def _migrate_release_0_1(conn: sqlite3.Connection) -> None:
    """From syncctl 0.1 (Intempus only): bookkeeping keyed by source and table, nothing lost.

    0.1 kept one cursor under key 'cursor', pending changes keyed by case id, conflicts by case id,
    column kinds by name, and a run log without a source: all of it belonged to `cases` and Intempus.
    """
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in ("_syncctl_state", "_syncctl_columns", "_syncctl_pending", "_syncctl_conflicts"):
        if table in names:
            conn.execute(f"ALTER TABLE {table} RENAME TO {table}_0_1")
    if "_syncctl_runs" in names:  # before the bookkeeping script, whose index needs `source`
        have = {row[1] for row in conn.execute("PRAGMA table_info(_syncctl_runs)")}
        for column, definition in (
            ("source", "TEXT NOT NULL DEFAULT 'intempus'"),
            ("skipped", "INTEGER NOT NULL DEFAULT 0"),
            ("extra", "TEXT"),
        ):
            if column not in have:
                conn.execute(f"ALTER TABLE _syncctl_runs ADD COLUMN {column} {definition}")
    run_script(conn, BOOKKEEPING)
    if "_syncctl_state" in names:
        conn.execute(
            "INSERT INTO _syncctl_state (source, key, value)"
            " SELECT 'intempus', 'cursor:cases', value FROM _syncctl_state_0_1 WHERE key = 'cursor'"
        )
    if "_syncctl_columns" in names:
        conn.execute(
            "INSERT INTO _syncctl_columns (table_name, name, kind)"
            " SELECT 'cases', name, kind FROM _syncctl_columns_0_1"
        )
    if "_syncctl_pending" in names:
        conn.execute(
            "INSERT INTO _syncctl_pending (table_name, record_id, op, base, creation_id, changed_at,"
            " attempts, last_error, last_attempt_at) SELECT 'cases', id, op, base, creation_id, changed_at,"
            " attempts, last_error, last_attempt_at FROM _syncctl_pending_0_1"
        )
    if "_syncctl_conflicts" in names:
        conn.execute(
            "INSERT INTO _syncctl_conflicts (id, run_id, table_name, record_id, field, base_value,"
            " local_value, remote_value, winner, decided_at) SELECT id, run_id, 'cases', case_id, field,"
            " base_value, local_value, remote_value, winner, decided_at FROM _syncctl_conflicts_0_1"
        )
    for table in ("_syncctl_state", "_syncctl_columns", "_syncctl_pending", "_syncctl_conflicts"):
        conn.execute(f"DROP TABLE IF EXISTS {table}_0_1")
    if "cases" in names:
        # 0.1 created `cases` only together with its bookkeeping: it is ours. Its triggers name the old
        # pending table and are rewritten by the mirror on first use.
        conn.execute(
            "INSERT OR IGNORE INTO _syncctl_tables (name, source, key, created_at) VALUES (?, ?, ?, ?)",
            ("cases", "intempus", "id", now_iso()),
        )
        for trigger in ("insert", "update", "rekey", "delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS _syncctl_cases_{trigger}")


def _create_bookkeeping(conn: sqlite3.Connection) -> None:
    run_script(conn, BOOKKEEPING)


# (version, description, step): a file at version N runs every step above N, in order.
MIGRATIONS: tuple[tuple[int, str, Callable[[sqlite3.Connection], None]], ...] = (
    (1, "bookkeeping keyed by source and table (from syncctl 0.1)", _migrate_release_0_1),
    (2, "change history and run counts for skipped records", _create_bookkeeping),
)


class Database:
    """One SQLite file shared by every source. Knows nothing of HTTP or of any source."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, read_only: bool) -> None:
        self.conn = conn
        self.path = path
        self.read_only = read_only

    # -- opening -----------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, read_only: bool = False, claims: frozenset[str] = frozenset()) -> Database:
        """Open the file; read-only opens need it to exist and never write (not even its set-up).

        `claims` are the data tables the sources may create: if the file holds one that syncctl did not
        create, the open is refused before anything is written.
        """
        if path.is_dir():
            raise DatabaseError(f"{path} is a folder, not an SQLite file (check SYNCCTL_DB)")
        if read_only and not path.exists():
            raise DatabaseError(f"no database at {path} yet: run `syncctl sync` first")
        if not read_only and not path.exists():
            _create_private(path)
        try:
            if read_only:
                conn = sqlite3.connect(
                    f"{path.resolve().as_uri()}?mode=ro",
                    uri=True,
                    timeout=BUSY_TIMEOUT_S,
                    isolation_level=None,
                )
            else:
                conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise database_error(exc, path) from None
        db = cls(conn, path, read_only=read_only)
        try:
            conn.execute("PRAGMA foreign_keys=OFF")
            if not read_only:
                db.refuse_foreign_tables(claims)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                db.migrate()
            else:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            raise database_error(exc, path) from None
        except DatabaseError:
            conn.close()
            raise
        return db

    def close(self) -> None:
        self.conn.close()

    # -- schema versions ---------------------------------------------------------------------------------

    def user_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        """Bring the file to SCHEMA_VERSION: each step once, all pending steps in one transaction."""
        version = self.user_version()
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f"{self.path} was written by a newer syncctl (schema {version}, this one knows"
                f" {SCHEMA_VERSION}); upgrade syncctl"
            )
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            version = self.user_version()  # another process may have migrated while we waited
            if version == SCHEMA_VERSION:
                return
            for number, description, step in MIGRATIONS:
                if number <= version:
                    continue
                step(self.conn)
                self.conn.execute(
                    "INSERT OR REPLACE INTO _syncctl_migrations (version, description, applied_at)"
                    " VALUES (?, ?, ?)",
                    (number, description, now_iso()),
                )
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _has_release_0_1(self) -> bool:
        found = self.conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN"
            " ('_syncctl_state', '_syncctl_pending', '_syncctl_runs')"
        ).fetchone()
        return bool(found[0] == 3)

    def refuse_foreign_tables(self, claims: frozenset[str]) -> None:
        """Other applications' tables may share the file, but never under a name a source uses."""
        if self.user_version() == 0 and self._has_release_0_1():
            return  # 0.1 made `cases` together with its bookkeeping: the migration registers it
        for table in sorted(claims):
            self.check_owned(table, self.owner_of(table) or "")

    # -- transactions ------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, applying: bool = False) -> Iterator[None]:
        """One write transaction; with `applying`, changes made in it are not taken for local edits."""
        if self.read_only:
            raise DatabaseError(f"{self.path} was opened read-only")  # a bug: reads never write
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if applying:
                self.conn.execute("INSERT INTO _syncctl_applying (flag) VALUES (1)")
            yield
            if applying:
                self.conn.execute("DELETE FROM _syncctl_applying")
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            raise

    # -- ownership of data tables ------------------------------------------------------------------------

    def has_table(self, name: str) -> bool:
        found = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return found is not None

    def owner_of(self, table: str) -> str | None:
        if not self.has_table("_syncctl_tables"):
            return None
        found = self.conn.execute("SELECT source FROM _syncctl_tables WHERE name = ?", (table,)).fetchone()
        return str(found[0]) if found else None

    def check_owned(self, table: str, source: str) -> bool:
        """Whether `table` exists and is syncctl's; a same-named table another program made is refused."""
        if not self.has_table(table):
            return False
        owner = self.owner_of(table)
        if owner is None:
            raise DatabaseError(
                f"{self.path} already has a table {table!r} that syncctl did not create; syncctl will not"
                " touch another application's data (point SYNCCTL_DB at a file of its own)"
            )
        if owner != source:
            raise DatabaseError(f"table {table!r} in {self.path} belongs to source {owner!r}, not {source!r}")
        return True

    def register_table(self, table: str, source: str, key: str) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO _syncctl_tables (name, source, key, created_at) VALUES (?, ?, ?, ?)",
            (table, source, key, now_iso()),
        )

    # -- small helpers ---------------------------------------------------------------------------------

    def dicts(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        found = self.conn.execute(sql, params).fetchone()
        return found[0] if found else None

    def bookkeeping_ready(self) -> bool:
        """Whether syncctl's tables exist (a read-only open of a file never synced finds none)."""
        return self.user_version() == SCHEMA_VERSION


def _create_private(path: Path) -> None:
    """Create the file readable by its owner only; SQLite gives its -wal and -shm files the same mode."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise DatabaseError(f"cannot create database {path}: {exc.strerror}") from None
    os.close(fd)


def database_error(exc: sqlite3.Error | OSError, path: Path) -> DatabaseError:
    """One line naming the real cause: busy, full disk, read-only, not a database, or corrupt."""
    text = str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return DatabaseError(
            f"{path} is busy: another program held a lock on it for over {BUSY_TIMEOUT_S:g} s ({text})"
        )
    if "full" in lowered or code == 13 or getattr(exc, "errno", None) == errno.ENOSPC:
        return DatabaseError(f"the disk holding {path} is full; nothing was written ({text})")
    if "readonly" in lowered or "read-only" in lowered:
        return DatabaseError(f"{path} cannot be written: {text}")
    if "unable to open" in lowered:
        return DatabaseError(f"cannot open database {path}: {text} (does its folder exist?)")
    return DatabaseError(f"{path} is not a usable SQLite database: {text}")


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
