"""A file written by syncctl 0.1 opens with this release and syncs without losing a row, a pending local edit
or a recorded conflict; the upgrade happens once, in one transaction, and is recorded."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from syncctl.connectors.intempus.fake import FakeIntempus
from syncctl.core.db import SCHEMA_VERSION, Database
from tests.e2e import World

RELEASE_0_1 = Path(__file__).parent.parent / "fixtures" / "upgrade" / "release-0.1.db"


def old_state(path: Path) -> dict[str, object]:
    with sqlite3.connect(path) as db:
        state = {
            "cases": db.execute("SELECT * FROM cases ORDER BY id").fetchall(),
            "pending": db.execute("SELECT id, op, base FROM _syncctl_pending ORDER BY id").fetchall(),
            "conflicts": db.execute(
                "SELECT case_id, field, local_value, remote_value, winner FROM _syncctl_conflicts"
            ).fetchall(),
            "runs": db.execute("SELECT id, mode, status, fetched FROM _syncctl_runs ORDER BY id").fetchall(),
            "cursor": db.execute("SELECT value FROM _syncctl_state WHERE key = 'cursor'").fetchone()[0],
        }
    db.close()
    return state


def copy_fixture(tmp_path: Path) -> Path:
    path = tmp_path / "mirror.db"
    shutil.copy(RELEASE_0_1, path)
    return path


def test_upgrade_keeps_rows_pending_edits_conflicts_runs_and_cursor(tmp_path: Path) -> None:
    path = copy_fixture(tmp_path)
    before = old_state(path)
    assert len(before["pending"]) == 3 and len(before["conflicts"]) == 1  # type: ignore[arg-type]

    db = Database.open(path)
    try:
        conn = db.conn
        assert db.user_version() == SCHEMA_VERSION
        assert conn.execute("SELECT * FROM cases ORDER BY id").fetchall() == before["cases"]
        assert (
            conn.execute(
                "SELECT record_id, op, base FROM _syncctl_pending"
                " WHERE table_name = 'cases' ORDER BY record_id"
            ).fetchall()
            == before["pending"]
        )
        assert (
            conn.execute(
                "SELECT record_id, field, local_value, remote_value, winner FROM _syncctl_conflicts"
            ).fetchall()
            == before["conflicts"]
        )
        assert (
            conn.execute(
                "SELECT id, mode, status, fetched FROM _syncctl_runs WHERE source = 'intempus' ORDER BY id"
            ).fetchall()
            == before["runs"]
        )
        assert conn.execute(
            "SELECT value FROM _syncctl_state WHERE source = 'intempus' AND key = 'cursor:cases'"
        ).fetchone() == (before["cursor"],)
        assert conn.execute("SELECT name, source FROM _syncctl_tables").fetchall() == [("cases", "intempus")]
        versions = conn.execute("SELECT version FROM _syncctl_migrations ORDER BY version").fetchall()
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    finally:
        db.close()


def test_upgrade_runs_once_and_writes_nothing_when_reopened(tmp_path: Path) -> None:
    path = copy_fixture(tmp_path)
    Database.open(path).close()
    again = Database.open(path)
    try:
        assert again.conn.total_changes == 0
        assert again.conn.execute("SELECT count(*) FROM _syncctl_migrations").fetchone()[0] == SCHEMA_VERSION
    finally:
        again.close()


def test_upgrade_fails_whole_when_a_step_fails(tmp_path: Path) -> None:
    """A step that breaks leaves the file exactly as 0.1 wrote it (one transaction)."""
    path = copy_fixture(tmp_path)
    with sqlite3.connect(path) as db:  # make step 1 fail midway: a table name it needs is taken
        db.execute("CREATE TABLE _syncctl_state_0_1 (x)")
    db.close()
    before = path.read_bytes()
    try:
        Database.open(path).close()
    except Exception as exc:  # the error is reported as a database error
        assert "_syncctl_state_0_1" in str(exc) or "already exists" in str(exc)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM _syncctl_pending").fetchone()[0] == 3
    db.close()
    assert len(path.read_bytes()) >= len(before) - 4096  # nothing was dropped


def test_upgrade_then_sync_pushes_the_pending_edits_of_0_1(
    build: Callable[..., World], tmp_path: Path
) -> None:
    world = build(cases=0)
    # The remote as it was when 0.1 wrote the file: the same seed, the same remote edit.
    world.fake.__dict__.update(FakeIntempus(cases=12, seed=3).__dict__ | {"_lock": world.fake._lock})
    first = min(world.fake.cases)
    world.fake.update(first, {"name": "remote name"})
    shutil.copy(RELEASE_0_1, world.db_path)

    result = world.sync()

    assert (result["status"], result["pushed"], result["push_failed"]) == ("ok", 3, 0)
    second, third = sorted(world.fake.cases)[1], 9600008
    assert world.fake.cases[second]["notes"] == "pending local note"
    assert third not in world.fake.cases
    assert any(case["name"] == "Pending local case" for case in world.fake.cases.values())
    assert world.differences() == []
    [conflict] = world.run("conflicts", "--json").json()
    assert (conflict["case_id"], conflict["field"], conflict["winner"]) == (first, "name", "remote")
