"""The update queue on the mirror: queueing an edit as any SQLite client would, pushing one queued item at
once, looking items up by barcode, and what `syncctl status` says about the queue.

The queue is the core's outbox (`_syncctl_pending`) for `sierra_items`: a local edit of a row, by any
program, is caught by the table's triggers; `sync` pushes the oldest `SIERRA_UPDATE_BATCH_SIZE_LIMIT` of
them (engine.push_pending). Nothing here talks HTTP except through a `SierraRemote`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from syncctl.connectors.sierra.connector import ITEMS, SierraRemote
from syncctl.core import engine
from syncctl.core.db import Database, quote
from syncctl.core.errors import RemoteError, RoleError, SyncctlError, UsageError
from syncctl.core.merge import Conflict, Policy
from syncctl.core.mirror import MirrorTable, Record

log = logging.getLogger("syncctl.sierra")


def api_record(table: MirrorTable, row: dict[str, Any]) -> Record:
    """A mirrored row with JSON columns as JSON values: the item as Sierra sent it."""
    return {name: table.to_api(name, value) for name, value in row.items()}


def rows_by_barcode(table: MirrorTable, barcode: str) -> list[Record]:
    """Mirrored items with barcode `barcode`, lowest id first: by the indexed `barcode` column (the first
    `b` varField), else by any further `b` varField an item carries (a scan, only when the index finds
    none)."""
    if not table.exists:
        return []
    names = ", ".join(map(quote, table.columns))
    order = f"ORDER BY {quote(table.key)}"
    found = table.conn.execute(
        f"SELECT {names} FROM {table.table} WHERE barcode = ? {order}", (barcode,)
    ).fetchall()
    if not found and "varFields" in table.columns:
        found = table.conn.execute(
            f"SELECT {names} FROM {table.table} WHERE CASE WHEN json_valid(varFields) THEN EXISTS ("
            " SELECT 1 FROM json_each(varFields) WHERE json_extract(value, '$.fieldTag') = 'b'"
            f" AND json_extract(value, '$.content') = ?) END {order}",
            (barcode,),
        ).fetchall()
    return [api_record(table, dict(zip(table.columns, row, strict=True))) for row in found]


def store_item(table: MirrorTable, item: Record) -> None:
    """Mirror an item read from Sierra (a one-off read by `item update` of an item not mirrored yet)."""
    table.apply_page([item], policy=Policy.REMOTE, run_id=None, full=False, origin="cli")


def queue_edit(table: MirrorTable, key: int, changes: dict[str, Any]) -> Record:
    """Change mirrored fields of one item and queue it, exactly as an edit by any SQLite client would be
    queued (the table's triggers record it, with the last synced row as the merge base); the change is
    also in `_syncctl_history` with origin `cli`. Returns the row as now mirrored."""
    row = table.get_row(key)
    if row is None:
        raise SyncctlError(f"item {key} is not in the mirror {table.db.path}")
    converted = table.to_row({**api_record(table, row), **changes})
    edited = {**row, **{name: converted[name] for name in changes}}
    with table.db.transaction():  # not `applying`: the triggers must see this edit
        table.write_rows(
            [tuple(edited[name] for name in table.columns)],
            {key: tuple(row[name] for name in table.columns)},
            origin="cli",
            run_id=None,
        )
    return api_record(table, edited)


@dataclass
class PushReport:
    sent: bool
    item: Record | None
    conflicts: list[Conflict] = field(default_factory=list)


def push_one(
    remote: SierraRemote, table: MirrorTable, key: int, *, policy: Policy = Policy.REMOTE
) -> PushReport:
    """Push the queued change of one item now, the way `sync` pushes each one: read Sierra's version,
    merge three ways, PUT, read back and store. A refusal leaves it queued with its error, and is raised."""
    change = next((c for c in table.pending_changes() if c.key == key), None)
    if change is None:
        raise UsageError(f"item {key} has no queued change to push")
    try:
        current = remote.find([key])
        outcome = engine.push_change(remote, table, change, current[0] if current else None, policy)
        if outcome.reread is not None:
            found = remote.find([outcome.reread])
            record = found[0] if found else None
        else:
            record = outcome.remote
    except (RemoteError, RoleError) as exc:
        table.record_push_failure(key, str(exc))
        raise
    table.settle_push(
        key, record, snapshot=change.local, conflicts=outcome.conflicts, run_id=None, origin="cli"
    )
    return PushReport(outcome.sent, record, outcome.conflicts)


def queue_status(db: Database) -> dict[str, Any]:
    """The queue for `syncctl status`: how many items wait, since when, and how many were refused."""
    if not db.has_table("_syncctl_pending"):
        return {}
    found = db.conn.execute(
        "SELECT count(*), min(changed_at), sum(last_error IS NOT NULL) FROM _syncctl_pending"
        " WHERE table_name = ?",
        (ITEMS.name,),
    ).fetchone()
    queued, oldest, refused = found[0], found[1], found[2] or 0
    details: dict[str, Any] = {"queued": queued, "queued_oldest_at": oldest, "queued_oldest_age_s": None}
    if oldest:
        try:
            since = datetime.fromisoformat(oldest)
        except ValueError:
            since = None
        if since is not None:
            since = since if since.tzinfo else since.replace(tzinfo=UTC)
            details["queued_oldest_age_s"] = max(0, round((datetime.now(UTC) - since).total_seconds()))
    details["queued_with_errors"] = refused
    return details


def is_queued(table: MirrorTable, key: int) -> bool:
    found = table.db.scalar(
        "SELECT 1 FROM _syncctl_pending WHERE table_name = ? AND record_id = ?", (table.name, key)
    )
    return found is not None
