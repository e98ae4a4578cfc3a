"""`sync --dry-run`: what a run would pull and push, per table, with nothing written and no lock held longer
than a snapshot takes.

The real sync template runs against a private copy of the file (SQLite's backup API, taken under the
source's lock) with pushing switched off and the mass-delete guard lifted, so it reads the remote exactly
as a run would; the copy's `_syncctl_history` then says what would change, and the real file's outbox what
would be pushed. The copy is deleted afterwards. Sources whose runs touch anything outside the file
(moving or writing files) are not previewed.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from syncctl.core.connector import Connector
from syncctl.core.db import Database
from syncctl.core.engine import SyncOptions, run_source
from syncctl.core.lock import hold_lock
from syncctl.core.mirror import MirrorTable

DETAIL_LIMIT = 1000  # ids listed per table and kind in the details


def previewable(connector: Connector) -> bool:
    """Runs of the core's template only read the remote and write the file: safe to run on a copy."""
    return type(connector).sync is Connector.sync


def snapshot(db: Database | None, source: str, folder: Path) -> Path:
    """A consistent copy of the file, taken under the source's lock (so no run of it is half-way); an
    empty file when there is none yet."""
    copy = folder / "preview.db"
    if db is None:
        return copy
    with hold_lock(db.path, source):
        target = sqlite3.connect(copy)
        try:
            db.conn.backup(target)
        finally:
            target.close()
    return copy


def preview_source(
    db: Database | None,
    connector: Connector,
    config: Any,
    options: SyncOptions,
    *,
    details: bool,
    scrub: Callable[[str], str],
) -> dict[str, Any]:
    """The dry run's report for one source (a JSON-ready dict)."""
    report: dict[str, Any] = {"source": connector.name, "dry_run": True}
    if not previewable(connector):
        report.update(
            status="skipped", error=f"{connector.name} cannot be previewed: its runs move or write files"
        )
        return report
    report["push"] = (
        pending_preview(db, connector, details=details) if options.push and db is not None else {}
    )
    with tempfile.TemporaryDirectory(prefix="syncctl-dry-run-") as folder:
        copy_path = snapshot(db, connector.name, Path(folder))
        copy = Database.open(copy_path)
        try:
            counts = {spec.name: MirrorTable.open(copy, spec).count() for spec in connector.tables}
            lifted = replace(options, push=False, allow_mass_delete=True)
            result = run_source(copy, connector, config, lifted, scrub=scrub)
            report.update(mode=result.mode, status=result.status, fetched=result.fetched)
            report["error"] = str(result.error) if result.error else None
            report["pull"] = history_preview(copy, result.run_id, details=details)
        finally:
            copy.close()
    refusals = []
    for table, changes in report["pull"].items():
        deleted = changes["delete"]
        if deleted > options.max_delete_fraction * counts.get(table, 0) and not options.allow_mass_delete:
            refusals.append(f"{table}: {deleted} of {counts.get(table, 0)} rows would be deleted")
    if refusals:
        report["would_be_refused"] = "; ".join(refusals) + " (more than SYNCCTL_MAX_DELETE_FRACTION allows)"
    return report


def history_preview(db: Database, run_id: int | None, *, details: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rows = db.conn.execute(
        "SELECT table_name, record_id, op, changes FROM _syncctl_history WHERE run_id = ? ORDER BY id",
        (run_id,),
    )
    listed: dict[str, dict[str, list[Any]]] = {}
    for table, record_id, op, changes in rows:
        entry = out.setdefault(table, {"insert": 0, "update": 0, "delete": 0})
        entry[op] += 1
        if details:
            items = listed.setdefault(table, {"insert": [], "update": [], "delete": []})[op]
            if len(items) < DETAIL_LIMIT:
                fields = sorted(json.loads(changes)) if op == "update" and changes else None
                items.append({"id": record_id, "fields": fields} if fields is not None else record_id)
    if details:
        for table, by_op in listed.items():
            out[table]["ids"] = by_op
    return out


def pending_preview(db: Database, connector: Connector, *, details: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in connector.tables:
        if not spec.capture or not db.has_table(spec.name):
            continue
        table = MirrorTable.open(db, spec)
        changes = table.pending_changes()
        if not changes:
            continue
        ops = Counter(change.op for change in changes)
        entry: dict[str, Any] = {op: ops.get(op, 0) for op in ("insert", "update", "delete")}
        if details:
            entry["changes"] = [
                {
                    "id": change.key,
                    "op": change.op,
                    "fields": sorted(
                        n
                        for n, v in (change.local or {}).items()
                        if table.pushable(n) and (change.base or {}).get(n) != v
                    )
                    if change.op == "update"
                    else None,
                }
                for change in changes[:DETAIL_LIMIT]
            ]
        out[spec.name] = entry
    return out


def summary_line(report: dict[str, Any]) -> str:
    """One line a person reads: what the run would do."""
    if report.get("status") == "skipped":
        return f"dry run {report['source']}: {report['error']}"

    def describe(changes: dict[str, Any]) -> str:
        parts = [
            f"{table} {c['insert']} new, {c['update']} changed, {c['delete']} deleted"
            for table, c in changes.items()
        ]
        return "; ".join(parts) or "nothing"

    line = (
        f"dry run {report['source']} ({report.get('mode')}): would pull {describe(report.get('pull', {}))};"
        f" would push {describe(report.get('push', {}))}"
    )
    if report.get("would_be_refused"):
        line += f"; a real run would be refused: {report['would_be_refused']}"
    if report.get("error"):
        line += f"; error: {report['error']}"
    return line
