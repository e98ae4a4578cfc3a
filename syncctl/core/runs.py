"""The run log and the per-source state (cursors and other marks), in the shared file."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from syncctl.core.db import Database, now_iso

RUN_COUNTS = ("fetched", "inserted", "updated", "deleted", "unchanged", "pushed", "push_failed", "conflicts")
RUN_COLUMNS = ("id", "source", "started_at", "finished_at", "mode", "status", *RUN_COUNTS, "skipped")


class RunLog:
    def __init__(self, db: Database, source: str) -> None:
        self.db = db
        self.source = source

    def start(self, mode: str) -> int:
        with self.db.transaction():
            # Only the lock holder starts runs of a source, so a run of it still marked running is dead.
            self.db.conn.execute(
                "UPDATE _syncctl_runs SET status = 'interrupted', finished_at = ?,"
                " error = 'the process ended before the run finished'"
                " WHERE status = 'running' AND source = ?",
                (now_iso(), self.source),
            )
            cursor = self.db.conn.execute(
                "INSERT INTO _syncctl_runs (source, started_at, mode, status, pid)"
                " VALUES (?, ?, ?, 'running', ?)",
                (self.source, now_iso(), mode, os.getpid()),
            )
        return int(cursor.lastrowid or 0)

    def finish(
        self,
        run_id: int,
        *,
        status: str,
        mode: str,
        counts: Mapping[str, int],
        duration_s: float,
        error: str | None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        names = [*RUN_COUNTS, "skipped"]
        assignments = ", ".join(f"{name} = ?" for name in names)
        with self.db.transaction():
            self.db.conn.execute(
                "UPDATE _syncctl_runs SET finished_at = ?, status = ?, mode = ?, duration_s = ?, error = ?,"
                f" extra = ?, {assignments} WHERE id = ?",
                (
                    now_iso(),
                    status,
                    mode,
                    round(duration_s, 3),
                    error,
                    json.dumps(extra) if extra else None,
                    *(counts.get(n, 0) for n in names),
                    run_id,
                ),
            )

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        if not self.db.bookkeeping_ready():
            return []
        columns = ", ".join(c for c in RUN_COLUMNS if c not in ("source", "skipped"))
        return self.db.dicts(
            f"SELECT {columns}, duration_s, error FROM _syncctl_runs WHERE source = ?"
            " ORDER BY id DESC LIMIT ?",
            (self.source, limit),
        )

    def last(self) -> dict[str, Any] | None:
        found = self.runs(1)
        return found[0] if found else None

    def last_success(self) -> dict[str, Any] | None:
        if not self.db.bookkeeping_ready():
            return None
        found = self.db.dicts(
            "SELECT id, finished_at, mode FROM _syncctl_runs WHERE source = ? AND status = 'ok'"
            " ORDER BY id DESC LIMIT 1",
            (self.source,),
        )
        return found[0] if found else None


class State:
    """Small values a source keeps between runs: cursors, marks. Each `set` is its own transaction unless
    the caller holds one."""

    def __init__(self, db: Database, source: str) -> None:
        self.db = db
        self.source = source

    def get(self, key: str) -> Any:
        if not self.db.bookkeeping_ready():
            return None
        return self.db.scalar(
            "SELECT value FROM _syncctl_state WHERE source = ? AND key = ?", (self.source, key)
        )

    def set(self, key: str, value: Any) -> None:
        sql = "INSERT OR REPLACE INTO _syncctl_state (source, key, value) VALUES (?, ?, ?)"
        if self.db.conn.in_transaction:
            self.db.conn.execute(sql, (self.source, key, value))
            return
        with self.db.transaction():
            self.db.conn.execute(sql, (self.source, key, value))

    def delete(self, key: str) -> None:
        with self.db.transaction():
            self.db.conn.execute(
                "DELETE FROM _syncctl_state WHERE source = ? AND key = ?", (self.source, key)
            )
