"""The sync template, driven through a minimal connector defined here, not Intempus.

`Shelf` is an in-memory remote with two resources: `notes` with an integer version cursor (like Intempus'
logical timestamps, with a committed mark on the first page) and `boxes` with a one-second, inclusive
timestamp cursor (like Sierra's updatedDate) listed by offset paging. Its declaration below is the whole
connector: a table spec and a Resource per REST resource.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from syncctl.core.connector import Connector, Page, Resource
from syncctl.core.db import Database
from syncctl.core.engine import SyncOptions, SyncResult, run_source, writable_body
from syncctl.core.errors import RefusedError
from syncctl.core.mirror import Key, MirrorTable, Record, TableSpec

PAGE = 100


class ShelfRemote:
    """One resource of the in-memory remote: records by key, listed in key order, `PAGE` at a time."""

    def __init__(self, cursor_field: str) -> None:
        self.records: dict[int, Record] = {}
        self.cursor_field = cursor_field
        self.requests = 0
        self.version = 0
        self.during_listing: Callable[[], None] | None = None  # a change made after the first page

    def put(self, key: int, **fields: Any) -> None:
        self.version += 1
        stamp = fields.pop("at", None)
        record = {**self.records.get(key, {"id": key}), **fields}
        record[self.cursor_field] = self.version if self.cursor_field == "version" else stamp
        self.records[key] = record

    def list_pages(self, since: Any) -> Iterator[Page]:
        committed = self.version
        if self.cursor_field == "version":
            chosen = [k for k in sorted(self.records) if since is None or self.records[k]["version"] > since]
        else:  # inclusive boundary, one-second resolution
            chosen = [k for k in sorted(self.records) if since is None or self.records[k]["updated"] >= since]
        for start in range(0, max(len(chosen), 1), PAGE):
            self.requests += 1
            page = [dict(self.records[k]) for k in chosen[start : start + PAGE] if k in self.records]
            yield Page(page, len(chosen), committed if start == 0 else None)
            if start == 0 and self.during_listing is not None:
                self.during_listing()
                self.during_listing = None

    def find(self, keys: Sequence[Key], *, canary: Key | None = None) -> list[Record]:
        self.requests += 1
        return [dict(self.records[int(k)]) for k in keys if int(k) in self.records]

    def check_write(self) -> None:
        return None

    def create(self, body: dict[str, Any], *, creation_id: str | None) -> Key:
        key = max(self.records, default=0) + 1
        self.put(key, **body)
        return key

    def update(self, key: Key, body: dict[str, Any]) -> None:
        self.put(int(key), **body)

    def delete(self, key: Key) -> bool:
        return self.records.pop(int(key), None) is not None

    def body(self, table: MirrorTable, row: Mapping[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
        return writable_body(table, row, names)


# -- the whole connector: two declarations ------------------------------------------------------------

NOTES = TableSpec(
    name="notes",
    source="shelf",
    known={"id": "int", "text": "str", "version": "int"},
    writable=lambda name: name == "text",
    cursor_field="version",
)
BOXES = TableSpec(
    name="boxes",
    source="shelf",
    known={"id": "int", "label": "str", "updated": "str"},
    cursor_field="updated",
)


class Shelf(Connector):
    name = "shelf"
    title = "Shelf"
    settings = ()
    tables = (NOTES, BOXES)

    def __init__(self) -> None:
        self.notes = ShelfRemote("version")
        self.boxes = ShelfRemote("updated")

    @contextmanager
    def resources(
        self, config: Any, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> Iterator[list[Resource]]:
        yield [
            Resource(NOTES, self.notes, cursor="version", push="two_way"),
            Resource(BOXES, self.boxes, cursor="timestamp"),
        ]


# -- helpers ------------------------------------------------------------------------------------------


@pytest.fixture
def shelf() -> Shelf:
    return Shelf()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    opened = Database.open(tmp_path / "shelf.db")
    yield opened
    opened.close()


def sync(db: Database, shelf: Shelf, **options: Any) -> SyncResult:
    result = run_source(db, shelf, None, SyncOptions(**options))
    assert result.error is None, result.error
    return result


def rows(db: Database, table: str) -> list[tuple[Any, ...]]:
    return db.conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


def history(db: Database) -> list[tuple[Any, ...]]:
    return db.conn.execute(
        "SELECT table_name, record_id, op, origin, changes FROM _syncctl_history ORDER BY id"
    ).fetchall()


def counts(result: SyncResult) -> tuple[int, int, int, int, int]:
    return (result.fetched, result.inserted, result.updated, result.deleted, result.unchanged)


# -- integer version cursor ---------------------------------------------------------------------------


def test_template_version_cursor_full_then_incremental(db: Database, shelf: Shelf) -> None:
    for key in range(1, 251):
        shelf.notes.put(key, text=f"note {key}")
    first = sync(db, shelf)
    assert first.mode == "full" and counts(first) == (250, 250, 0, 0, 0)
    assert db.conn.execute("SELECT count(*) FROM notes").fetchone() == (250,)

    shelf.notes.put(7, text="changed")
    shelf.notes.put(300, text="new")
    second = sync(db, shelf)
    assert second.mode == "incremental" and counts(second) == (2, 1, 1, 0, 0)
    assert db.conn.execute("SELECT text, version FROM notes WHERE id = 7").fetchone() == ("changed", 251)


def test_template_version_cursor_takes_the_first_pages_committed_mark(db: Database, shelf: Shelf) -> None:
    """A change committed during the listing has a version above the mark: the next run sees it."""
    for key in range(1, 251):
        shelf.notes.put(key, text="x")
    shelf.notes.during_listing = lambda: shelf.notes.put(1, text="changed while listing")
    sync(db, shelf)
    again = sync(db, shelf)
    assert again.updated == 1
    assert db.conn.execute("SELECT text FROM notes WHERE id = 1").fetchone() == ("changed while listing",)


def test_template_full_listing_deletes_what_is_gone_under_the_guard(db: Database, shelf: Shelf) -> None:
    for key in range(1, 21):
        shelf.notes.put(key, text="x")
    sync(db, shelf)
    shelf.notes.delete(3)
    assert sync(db, shelf).deleted == 0  # incremental listings do not see deletes
    assert sync(db, shelf, full=True).deleted == 1
    for key in range(4, 14):
        shelf.notes.delete(key)
    refused = run_source(db, shelf, None, SyncOptions(full=True))
    assert isinstance(refused.error, RefusedError) and refused.status == "refused"
    assert "4, 5, 6, 7, 8, ..." in str(refused.error)  # the refusal names the first ids
    assert db.conn.execute("SELECT count(*) FROM notes").fetchone() == (19,)  # nothing deleted
    assert sync(db, shelf, full=True, allow_mass_delete=True).deleted == 10


def test_template_local_edit_is_pushed_with_history_of_its_origin(
    db: Database, shelf: Shelf, tmp_path: Path
) -> None:
    shelf.notes.put(1, text="remote")
    sync(db, shelf)
    other = sqlite3.connect(tmp_path / "shelf.db")
    other.execute("UPDATE notes SET text = 'edited in sqlite3' WHERE id = 1")
    other.commit()
    other.close()
    result = sync(db, shelf)
    assert (result.pushed, result.push_failed) == (1, 0)
    assert shelf.notes.records[1]["text"] == "edited in sqlite3"
    assert history(db) == [
        ("notes", "1", "insert", "pull", None),
        # the pushed change as it happened: from the last synced row to what the remote now holds
        (
            "notes",
            "1",
            "update",
            "push",
            json.dumps({"text": ["remote", "edited in sqlite3"], "version": [1, 2]}, separators=(",", ":")),
        ),
    ]


def test_template_history_records_updates_and_deletes_in_the_same_transaction(
    db: Database, shelf: Shelf
) -> None:
    for key in range(1, 11):
        shelf.notes.put(key, text=f"t{key}")
    sync(db, shelf)
    shelf.notes.put(1, text="a2")
    shelf.notes.delete(2)
    sync(db, shelf, full=True)
    entries = history(db)
    assert entries[10] == ("notes", "1", "update", "pull", '{"text":["t1","a2"],"version":[1,11]}')
    table, key, op, origin, changes = entries[11]
    assert (table, key, op, origin) == ("notes", "2", "delete", "pull")
    assert json.loads(changes) == {"id": 2, "text": "t2", "version": 2}
    # an insert records no row copy: its row is in the table
    assert [e[4] for e in entries if e[2] == "insert"] == [None] * 10


# -- timestamp range cursor with an inclusive one-second boundary ------------------------------------


def test_template_timestamp_boundary_second_larger_than_a_page_loses_nothing(
    db: Database, shelf: Shelf
) -> None:
    second = "2025-10-01T12:00:00Z"
    for key in range(1, 251):  # 250 records in one second: two and a half pages
        shelf.boxes.put(key, label=f"box {key}", at=second)
    first = sync(db, shelf)
    assert counts(first)[:2] == (250, 250)
    assert db.conn.execute(
        "SELECT value FROM _syncctl_state WHERE source = 'shelf' AND key = 'cursor:boxes'"
    ).fetchone() == (second,)

    # More records updated in the same boundary second after the run: the next run must see them.
    shelf.boxes.put(251, label="late", at=second)
    shelf.boxes.put(5, label="box 5 again", at=second)
    again = sync(db, shelf)
    # The boundary second is read again: what did not change counts as unchanged, never twice as updated.
    assert counts(again) == (251, 1, 1, 0, 249)
    assert db.conn.execute("SELECT label FROM boxes WHERE id IN (5, 251) ORDER BY id").fetchall() == [
        ("box 5 again",),
        ("late",),
    ]

    shelf.boxes.put(9, label="later", at="2025-10-01T12:00:01Z")
    third = sync(db, shelf)
    assert counts(third) == (251, 0, 1, 0, 250)  # the old boundary second once more, and the new one
    fourth = sync(db, shelf)
    assert counts(fourth) == (1, 0, 0, 0, 1)  # past the boundary: only the newest second is listed


def test_template_listing_that_repeats_itself_stops(db: Database, shelf: Shelf) -> None:
    for key in range(1, 11):
        shelf.notes.put(key, text="x")

    def forever(since: Any) -> Iterator[Page]:
        page = [dict(r) for r in shelf.notes.records.values()]
        for _ in range(1000):
            yield Page(page, None, None)

    shelf.notes.list_pages = forever  # type: ignore[method-assign]
    result = run_source(db, shelf, None, SyncOptions())
    assert result.status == "failed" and "keeps sending records already listed" in str(result.error)
    assert db.conn.execute("SELECT count(*) FROM notes").fetchone() == (10,)


def test_template_dropped_table_resets_its_cursor(db: Database, shelf: Shelf, tmp_path: Path) -> None:
    for key in range(1, 201):
        shelf.notes.put(key, text="x")
    sync(db, shelf)
    db.conn.execute("DROP TABLE notes")
    result = sync(db, shelf)
    assert result.mode == "full" and result.inserted == 200


def test_template_hand_edited_cursor_means_a_full_listing(db: Database, shelf: Shelf) -> None:
    shelf.notes.put(1, text="x")
    sync(db, shelf)
    db.conn.execute("UPDATE _syncctl_state SET value = 'not a number' WHERE key = 'cursor:notes'")
    result = sync(db, shelf)
    assert (result.mode, result.fetched, result.unchanged) == ("full", 1, 1)


def test_template_core_does_not_import_any_connector() -> None:
    core = Path(__file__).parents[2] / "syncctl" / "core"
    offenders = [p.name for p in core.glob("*.py") if "syncctl.connectors" in p.read_text(encoding="utf-8")]
    assert offenders == []
