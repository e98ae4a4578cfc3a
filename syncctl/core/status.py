"""What `status`, `sources` and `conflicts` report, read from the file without writing to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from syncctl.core.connector import Connector, Registry
from syncctl.core.db import Database
from syncctl.core.engine import lowest
from syncctl.core.mirror import MirrorTable
from syncctl.core.runs import RunLog, State


def source_status(db: Database, connector: Connector, *, limit: int = 10) -> dict[str, Any]:
    """A source's tables, cursor, changes waiting to be pushed, and last runs."""
    runs = RunLog(db, connector.name).runs(limit)
    state = State(db, connector.name)
    tables = {spec.name: MirrorTable.open(db, spec) for spec in connector.tables}
    counts = {name: table.count() for name, table in tables.items()}
    cursors = [state.get(f"cursor:{spec.name}") for spec in connector.tables if spec.cursor_field]
    pending = sum(t.pending_count() for t in tables.values() if t.spec.capture)
    report: dict[str, Any] = {"source": connector.name, "database": str(db.path), **counts}
    report.update(
        tables=counts,
        cursor=lowest(cursors),
        has_cursor=bool(cursors),
        pending=pending,
        pending_changes=pending_summary(db, [n for n, t in tables.items() if t.spec.capture]),
        last_run=runs[0] if runs else None,
        runs=runs,
        details=connector.status(db) if db.bookkeeping_ready() else {},
    )
    return report


def pending_summary(db: Database, tables: list[str], limit: int = 20) -> list[dict[str, Any]]:
    if not tables or not db.bookkeeping_ready():
        return []
    marks = ", ".join("?" * len(tables))
    return db.dicts(
        "SELECT table_name AS 'table', record_id AS id, op, changed_at, attempts, last_error"
        f" FROM _syncctl_pending WHERE table_name IN ({marks}) ORDER BY changed_at, record_id LIMIT ?",
        (*tables, limit),
    )


def sources_report(
    db: Database | None, registry: Registry, missing: Callable[[Connector], list[str]]
) -> list[dict[str, Any]]:
    listing = []
    for connector in registry.connectors:
        needed = missing(connector)
        last = RunLog(db, connector.name).last() if db is not None else None
        listing.append(
            {
                "name": connector.name,
                "configured": not needed,
                "missing": needed,
                "tables": [spec.name for spec in connector.tables],
                "last_run": {"status": last["status"], "finished_at": last["finished_at"]} if last else None,
            }
        )
    return listing


def conflicts(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    if not db.bookkeeping_ready():
        return []
    found = db.dicts(
        "SELECT c.id, c.run_id, t.source, c.table_name AS 'table', c.record_id, c.field, c.base_value,"
        " c.local_value, c.remote_value, c.winner, c.decided_at FROM _syncctl_conflicts c"
        " LEFT JOIN _syncctl_tables t ON t.name = c.table_name ORDER BY c.id DESC LIMIT ?",
        (limit,),
    )
    for conflict in found:
        if conflict["table"] == "cases":
            conflict["case_id"] = conflict["record_id"]
    return found


def datasette_metadata(db: Database) -> dict[str, Any]:
    """Datasette metadata for the file: syncctl's own `_syncctl_*` tables hidden, each mirrored table
    described by its source."""
    name = db.path.stem
    hidden = [
        row[0]
        for row in db.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '\\_syncctl\\_%' ESCAPE '\\'"
        )
    ]
    tables: dict[str, Any] = {table: {"hidden": True} for table in sorted(hidden)}
    if db.has_table("_syncctl_tables"):
        for table, source in db.conn.execute("SELECT name, source FROM _syncctl_tables ORDER BY name"):
            tables[table] = {"description": f"mirrored from {source} by syncctl"}
            view = f"{table}_typed"
            if db.scalar("SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = ?", (view,)):
                tables[view] = {
                    "description": f"{table} with decimal strings as numbers, for sorting and filters"
                }
    return {"databases": {name: {"tables": tables}}}


def cursors(db: Database, source: str, tables: list[str]) -> dict[str, Any]:
    state = State(db, source)
    return {table: state.get(f"cursor:{table}") for table in tables}


def move_cursor(db: Database, source: str, table: str, value: Any) -> Any:
    """Set (or with None, forget) a table's cursor on purpose, recorded as a run of its own."""
    state = State(db, source)
    runs = RunLog(db, source)
    before = state.get(f"cursor:{table}")
    run_id = runs.start("cursor")
    if value is None:
        state.delete(f"cursor:{table}")
    else:
        state.set(f"cursor:{table}", value)
    runs.finish(
        run_id,
        status="ok",
        mode="cursor",
        counts={},
        duration_s=0.0,
        error=None,
        extra={"table": table, "from": before, "to": value},
    )
    return before


def sources_with_runs(db: Database) -> list[str]:
    if not db.bookkeeping_ready():
        return []
    return [
        row[0] for row in db.conn.execute("SELECT DISTINCT source FROM _syncctl_runs WHERE mode != 'cursor'")
    ]
