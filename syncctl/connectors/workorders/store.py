"""The `workorders` table, how its `is_synced` flag stays right, and syncctl's record of the client's files.

`is_synced` is kept by SQLite itself, so it is right whether or not syncctl is running:
- a row syncctl stores from a client file is written with `is_synced = 1` (it is what the client has);
- a row a person inserts with any SQLite client gets the column's default, 0;
- a person's UPDATE of a data column fires `_syncctl_workorders_local_edit`, which sets `is_synced = 0`
  and, when the edit left `updated_at` as it was, stamps it with the time of the edit, so the file that
  goes out is newer than the one that came in (newer wins, on both sides);
- the outbound step sets `is_synced = 1` and `synced_at` once the file is on disk.
syncctl's own writes run in applying transactions, in which neither this trigger nor the core's outbox
triggers fire. The core's triggers still record each local edit in `_syncctl_pending` (with the row as it
was, so `syncctl discard --source workorders` undoes an edit not yet written out); those entries are
dropped when the row is written out, replaced by a newer client file, or found synced or gone.

Marking a row synced is bookkeeping (which of its versions the client has), so it is not recorded in
`_syncctl_history`; every change of a row's data goes through `MirrorTable.write_rows` and is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from syncctl.connectors.workorders.translate import Status
from syncctl.core.db import Database, now_iso
from syncctl.core.merge import Conflict
from syncctl.core.mirror import Key, MirrorTable, TableSpec

SOURCE = "workorders"
DATA_COLUMNS = (
    "number",
    "status",
    "title",
    "description",
    "created_at",
    "updated_at",
    "deleted",
    "deleted_at",
)
COLUMNS = (*DATA_COLUMNS, "is_synced", "synced_at")
NOW_SQL = "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')"  # the form translate.utc_text gives whole seconds
STATUSES = ", ".join(f"'{status.value}'" for status in Status)

DDL = f"""CREATE TABLE workorders (
    number INTEGER PRIMARY KEY,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ({STATUSES})),
    title TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL DEFAULT ({NOW_SQL}),
    updated_at TEXT NOT NULL DEFAULT ({NOW_SQL}),
    deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    deleted_at TEXT,
    is_synced INTEGER NOT NULL DEFAULT 0 CHECK (is_synced IN (0, 1)),
    synced_at TEXT
)"""

WORKORDERS = TableSpec(
    name="workorders",
    source=SOURCE,
    key="number",
    key_type="INTEGER",
    known={
        "number": "int",
        "status": "str",
        "title": "str",
        "description": "str",
        "created_at": "date",
        "updated_at": "date",
        "deleted": "bool",
        "deleted_at": "date",
        "is_synced": "bool",
        "synced_at": "date",
    },
    capture=True,
    dynamic=False,
    ddl=DDL,
)

LOCAL_EDIT_TRIGGER = "_syncctl_workorders_local_edit"
_changed = " OR ".join(f"OLD.{name} IS NOT NEW.{name}" for name in DATA_COLUMNS)
# The trigger raises the applying flag around its own UPDATE: the core's outbox triggers then record only
# the person's edit, with the row as it was before it as the base, whichever trigger SQLite fires first.
LOCAL_EDIT_SQL = f"""CREATE TRIGGER IF NOT EXISTS {LOCAL_EDIT_TRIGGER} AFTER UPDATE ON workorders
WHEN NOT EXISTS (SELECT 1 FROM _syncctl_applying) AND ({_changed})
BEGIN
    INSERT INTO _syncctl_applying (flag) VALUES (1);
    UPDATE workorders SET is_synced = 0,
        updated_at = CASE WHEN NEW.updated_at IS OLD.updated_at THEN {NOW_SQL} ELSE NEW.updated_at END
    WHERE number = NEW.number;
    DELETE FROM _syncctl_applying;
END"""

FILES = "_syncctl_workorders_files"
# One row per file in the inbound folder. size/mtime_ns NULL: read it again next run (it was unreadable,
# or changed too recently for its time stamp to prove a later change).
FILES_SQL = f"""CREATE TABLE IF NOT EXISTS {FILES} (
    name TEXT PRIMARY KEY,
    size INTEGER,
    mtime_ns INTEGER,
    sha256 TEXT,
    number INTEGER,
    outcome TEXT NOT NULL,
    reason TEXT,
    seen_at TEXT NOT NULL
)"""

Row = dict[str, Any]
FileStat = tuple[int | None, int | None, bool]  # size, mtime_ns (None: read again), rejected


@dataclass(frozen=True, slots=True)
class FileRecord:
    """What syncctl knows of one inbound file: its stat and content hash when last read, and the outcome.

    `outcome` is `applied` (its order was stored), `unchanged` (the table already held it), `older` (the
    table holds a newer version of that order) or `rejected` (`reason` says why).
    """

    name: str
    size: int | None
    mtime_ns: int | None
    sha256: str | None
    number: int | None
    outcome: str
    reason: str | None = None

    @property
    def rejected(self) -> bool:
        return self.outcome == "rejected"


class WorkOrderStore:
    """The `workorders` table and the file record, in the shared file; knows nothing of folders."""

    def __init__(self, db: Database, table: MirrorTable) -> None:
        self.db = db
        self.conn = db.conn
        self.table = table

    @classmethod
    def open(cls, db: Database) -> WorkOrderStore:
        """The table (created when missing), its local-edit trigger and the file record (a writable file)."""
        table = MirrorTable.open(db, WORKORDERS)
        have = {
            row[0]
            for row in db.conn.execute(
                "SELECT name FROM sqlite_master WHERE name IN (?, ?)", (LOCAL_EDIT_TRIGGER, FILES)
            )
        }
        if have != {LOCAL_EDIT_TRIGGER, FILES}:
            with db.transaction():
                db.conn.execute(FILES_SQL)
                db.conn.execute(LOCAL_EDIT_SQL)
        return cls(db, table)

    # -- inbound -----------------------------------------------------------------------------------------

    def file_stats(self) -> dict[str, FileStat]:
        """Every recorded file's stat and whether it was rejected: all an unchanged file needs, kept small
        (a run holds one per file in memory)."""
        return {
            name: (size, mtime_ns, outcome == "rejected")
            for name, size, mtime_ns, outcome in self.conn.execute(
                f"SELECT name, size, mtime_ns, outcome FROM {FILES}"
            )
        }

    def file_records(self, names: Sequence[str]) -> dict[str, FileRecord]:
        return {
            row[0]: FileRecord(*row)
            for row in self.conn.execute(
                f"SELECT name, size, mtime_ns, sha256, number, outcome, reason FROM {FILES}"
                " WHERE name IN (SELECT value FROM json_each(?))",
                (json.dumps(list(names)),),
            )
        }

    def rejection(self, name: str) -> str | None:
        reason = self.db.scalar(f"SELECT reason FROM {FILES} WHERE name = ?", (name,))
        return None if reason is None else str(reason)

    def forget_files(self, names: Iterable[str] | None) -> None:
        """Drop the record of files no longer in the folder (every file with None: the folder changed)."""
        with self.db.transaction():
            if names is None:
                self.conn.execute(f"DELETE FROM {FILES}")
            else:
                self.conn.execute(
                    f"DELETE FROM {FILES} WHERE name IN (SELECT value FROM json_each(?))",
                    (json.dumps(sorted(names)),),
                )

    @contextmanager
    def batch(self) -> Iterator[Batch]:
        """One applying transaction: rows read in it cannot change under a decision made on them."""
        with self.db.transaction(applying=True):
            yield Batch(self)

    # -- outbound ----------------------------------------------------------------------------------------

    def unsynced(self) -> list[Row]:
        """Rows the client does not have yet, lowest number first."""
        return self.db.dicts(
            f"SELECT {', '.join(COLUMNS)} FROM workorders WHERE is_synced = 0 ORDER BY number"
        )

    def mark_synced(self, written: Sequence[Row], at: str) -> list[int]:
        """Mark the rows whose files were written as synced, in one transaction.

        A row edited since it was read for writing keeps `is_synced = 0` (its newer version goes out next
        run); the numbers actually marked are returned.
        """
        marked: list[int] = []
        if not written:
            return marked
        with self.db.transaction(applying=True):
            now = {row["number"]: row for row in self._rows([row["number"] for row in written])}
            for row in written:
                if now.get(row["number"]) == row:
                    marked.append(row["number"])
            self.conn.execute(
                "UPDATE workorders SET is_synced = 1, synced_at = ?"
                " WHERE number IN (SELECT value FROM json_each(?))",
                (at, json.dumps(marked)),
            )
            self._drop_pending(marked)
        return marked

    def settle_pending(self) -> list[int]:
        """Drop outbox entries whose rows are synced or gone; the numbers of rows deleted locally.

        The client's format has no way to delete a file's order (it has `isDeleted`), so a row deleted with
        SQL is not sent; its entry would otherwise stay pending forever.
        """
        settled = (
            "FROM _syncctl_pending WHERE table_name = 'workorders'"
            " AND record_id NOT IN (SELECT number FROM workorders WHERE is_synced = 0)"
        )
        if not self.db.scalar(f"SELECT EXISTS (SELECT 1 {settled})"):
            return []  # nothing to do: no write transaction on a quiet run
        with self.db.transaction(applying=True):
            gone = [
                int(row[0])
                for row in self.conn.execute(
                    f"SELECT record_id {settled} AND record_id NOT IN (SELECT number FROM workorders)"
                    " ORDER BY record_id"
                )
            ]
            self.conn.execute(f"DELETE {settled}")
        return gone

    def record_failure(self, number: int, reason: str) -> None:
        self.table.record_push_failure(number, reason)

    # -- shared ------------------------------------------------------------------------------------------

    def _rows(self, numbers: Sequence[int]) -> list[Row]:
        return self.db.dicts(
            f"SELECT {', '.join(COLUMNS)} FROM workorders WHERE number IN (SELECT value FROM json_each(?))",
            (json.dumps(list(numbers)),),
        )

    def _drop_pending(self, numbers: Sequence[int]) -> None:
        self.conn.execute(
            "DELETE FROM _syncctl_pending WHERE table_name = 'workorders'"
            " AND record_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(numbers)),),
        )


class Batch:
    """What one applying transaction of the inbound step may do."""

    def __init__(self, store: WorkOrderStore) -> None:
        self.store = store

    def rows(self, numbers: Iterable[int]) -> dict[int, Row]:
        return {row["number"]: row for row in self.store._rows(sorted(set(numbers)))}

    def write(self, rows: Mapping[int, Row], before: Mapping[int, Row], *, run_id: int | None) -> None:
        """Store rows from client files (history with origin `file`); their local edits are superseded."""
        if not rows:
            return
        table = self.store.table
        tuples = [tuple(row[name] for name in table.columns) for row in rows.values()]
        current: dict[Key, tuple[Any, ...]] = {
            number: tuple(row[name] for name in table.columns)
            for number, row in before.items()
            if number in rows
        }
        table.write_rows(tuples, current, origin="file", run_id=run_id)
        self.store._drop_pending(list(rows))

    def record_files(self, records: Iterable[FileRecord]) -> None:
        at = now_iso()
        self.store.conn.executemany(
            f"INSERT OR REPLACE INTO {FILES} (name, size, mtime_ns, sha256, number, outcome, reason, seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.name, r.size, r.mtime_ns, r.sha256, r.number, r.outcome, r.reason, at) for r in records],
        )

    def record_conflicts(self, conflicts: list[Conflict], run_id: int | None) -> None:
        self.store.table.record_conflicts(conflicts, run_id)


# -- reading without writing (status, `workorders get`) ---------------------------------------------------


def read_workorder(db: Database, number: int) -> Row | None:
    """One row as `workorders get` shows it (booleans as booleans), or None; works on a read-only file."""
    table = MirrorTable.open(db, WORKORDERS)
    row = table.get_row(number)
    return None if row is None else {name: table.to_api(name, value) for name, value in row.items()}


def status_details(db: Database, *, shown: int = 10) -> dict[str, Any]:
    """For `syncctl status`: rows not yet written out, and the inbound files rejected (the first few)."""
    details: dict[str, Any] = {}
    if db.has_table("workorders"):
        details["unsynced"] = db.scalar("SELECT count(*) FROM workorders WHERE is_synced = 0")
    if not db.has_table(FILES):
        return details
    details["rejected_files"] = db.scalar(f"SELECT count(*) FROM {FILES} WHERE outcome = 'rejected'")
    details["rejected"] = db.dicts(
        f"SELECT name AS file, reason FROM {FILES} WHERE outcome = 'rejected' ORDER BY name LIMIT ?", (shown,)
    )
    return details
