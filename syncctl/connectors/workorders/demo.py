"""The work-order round trip for `syncctl demo`: client files in, a local SQL edit, a file out."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rich.console import Console

from syncctl.connectors.workorders.config import Settings
from syncctl.connectors.workorders.connector import CONNECTOR
from syncctl.connectors.workorders.folder import outbound_text
from syncctl.connectors.workorders.translate import to_outbound
from syncctl.core.db import Database
from syncctl.core.engine import SyncOptions, SyncResult, run_source

SAMPLES = [
    (1, "pending", "Replace pump seal", False),
    (2, "in_progress", "Inspect transformer T-7", False),
    (3, "on_hold", "Repaint substation fence", True),
]
EDIT = "UPDATE workorders SET status = 'completed' WHERE number = 2"


def write_samples(inbound: Path) -> int:
    """Three client files as the client writes them, and one it botched."""
    for number, status, title, deleted in SAMPLES:
        row = {
            "number": number,
            "status": status,
            "title": title,
            "created_at": f"2025-05-0{number}T08:00:00+00:00",
            "updated_at": f"2025-05-0{number}T09:30:00+00:00",
            "deleted": int(deleted),
            "deleted_at": None,
        }
        (inbound / f"{number}.json").write_text(outbound_text(to_outbound(row)), encoding="utf-8")
    (inbound / "4.json").write_text('{"orderNo": 4, "summary": "Half a file', encoding="utf-8")
    return len(SAMPLES) + 1


def demo_round_trip(console: Console, folder: Path) -> Path:
    """Run the round trip in `folder` (its own SQLite file and two sub-folders); the file written out."""
    inbound, outbound = folder / "workorders-in", folder / "workorders-out"
    inbound.mkdir(parents=True, exist_ok=True)
    outbound.mkdir(parents=True, exist_ok=True)
    files = write_samples(inbound)
    db_path = folder / "workorders-demo.db"
    db = Database.open(db_path, claims=frozenset({"workorders"}))
    settings = Settings(inbound_dir=inbound, outbound_dir=outbound)

    def sync() -> SyncResult:
        result = run_source(db, CONNECTOR, settings, SyncOptions())
        if result.error is not None:
            raise result.error
        return result

    try:
        console.rule("[bold]work orders: the client's files in and out")
        first = sync()
        console.print(
            f"1. {files} client files in {inbound.name}/: {first.inserted} work orders stored,"
            f" {first.extra['rejected_files']} file rejected (named on stderr, listed by `syncctl status`),"
            f" {first.pushed} files written back (nothing changed locally)",
            highlight=False,
        )
        with sqlite3.connect(db_path) as other:  # any SQLite client may edit the table
            other.execute(EDIT)
            synced = other.execute("SELECT is_synced FROM workorders WHERE number = 2").fetchone()[0]
        other.close()
        console.print(f"2. another program runs `{EDIT}`: is_synced is now {synced}", highlight=False)
        second = sync()
        written = outbound / "2.json"
        console.print(
            f"3. the next sync wrote {second.pushed} file, {outbound.name}/{written.name}:", highlight=False
        )
        console.print(
            "   " + written.read_text(encoding="utf-8"), markup=False, highlight=False, soft_wrap=True
        )
    finally:
        db.close()
    return written
