"""The grid's tables in the SQLite file, and the daily sums that make the KPI report fast.

`grid_components` and `grid_measurements` have fixed schemas (one column per field of the API, numbers as
numbers, `timestamp` as the API's UTC text, `component_id` declared as a link to `grid_components` so
Datasette shows it as one; SQLite's foreign key checks stay off, as everywhere in syncctl).

`_syncctl_grid_daily` holds, per UTC day, component and measurement type, the sum and count of the
measurement values. Triggers on `grid_measurements` keep it: they fire for every writer (syncctl's pulls,
one-off commands, and any other SQLite client's edits), in the writer's own transaction, and stay right
for updates and deletes. The KPI report reads whole days from it (about 30,000 rows for 3 million
measurements) and only the two days a period cuts from the measurements themselves. If the triggers are
ever missing (dropped by hand, or a file from before them), `ensure_daily_sums` rebuilds the sums from the
measurements and puts the triggers back. Rows a sync keeps after a remote delete (SYNCCTL_KEEP_DELETED,
`_deleted_at` set) are not counted.
"""

from __future__ import annotations

import logging

from syncctl.connectors.grid import fields
from syncctl.core.db import Database, run_script
from syncctl.core.mirror import DELETED_AT, MirrorTable, TableSpec

log = logging.getLogger("syncctl.grid")

SOURCE = "grid"
COMPONENT_KINDS = {"id": "int", "name": "str", "type": "str", "substation": "str",
                   "voltage_kv": "float", "capacity_mva": "float", "length_km": "float", "status": "str",
                   "version": "int"}  # fmt: skip
MEASUREMENT_KINDS = {"id": "int", "component_id": "int", "timestamp": "str", "type": "str",
                     "value": "float", "version": "int"}  # fmt: skip


def component_writable(name: str) -> bool:
    return name in fields.COMPONENT_FIELDS


def measurement_writable(name: str) -> bool:
    return name in fields.MEASUREMENT_FIELDS


COMPONENTS = TableSpec(
    name="grid_components",
    source=SOURCE,
    known=COMPONENT_KINDS,
    writable=component_writable,
    cursor_field="version",
    ddl="""CREATE TABLE grid_components (
    id INTEGER PRIMARY KEY,
    name TEXT,
    type TEXT,
    substation TEXT,
    voltage_kv REAL,
    capacity_mva REAL,
    length_km REAL,
    status TEXT,
    version INTEGER
)""",
)

MEASUREMENTS = TableSpec(
    name="grid_measurements",
    source=SOURCE,
    known=MEASUREMENT_KINDS,
    writable=measurement_writable,
    cursor_field="version",
    indexes=(("timestamp",),),  # the two days a KPI period cuts are read through it
    ddl="""CREATE TABLE grid_measurements (
    id INTEGER PRIMARY KEY,
    component_id INTEGER REFERENCES grid_components(id),
    timestamp TEXT,
    type TEXT,
    value REAL,
    version INTEGER
)""",
)

TABLES = (COMPONENTS, MEASUREMENTS)

DAILY = "_syncctl_grid_daily"
DAILY_VERSION = "1"  # bump when the sums' definition changes: the next sync rebuilds them
DAILY_TRIGGERS = ("_syncctl_grid_daily_insert", "_syncctl_grid_daily_update", "_syncctl_grid_daily_delete")


def has_kept_rows(db: Database, table: str = "grid_measurements") -> bool:
    """Whether a table keeps rows deleted remotely, marked in `_deleted_at` (SYNCCTL_KEEP_DELETED)."""
    return DELETED_AT in {row[1] for row in db.conn.execute(f"PRAGMA table_info({table})")}


def counted(row: str, *, kept: bool) -> str:
    """Whether a measurement row (NEW or OLD in a trigger, or a table alias) counts in the averages: it has a
    component, a type, a time and a numeric value, and (`kept`: the table keeps remotely deleted rows) it
    is not one of those. The report's raw-row path uses the same test."""
    live = f" AND {row}.{DELETED_AT} IS NULL" if kept else ""
    return (
        f"{row}.component_id IS NOT NULL AND {row}.type IS NOT NULL AND {row}.timestamp IS NOT NULL"
        f" AND typeof({row}.value) IN ('integer', 'real'){live}"
    )


def _match(row: str) -> str:
    return f"day = substr({row}.timestamp, 1, 10) AND component_id = {row}.component_id AND type = {row}.type"


def _add(row: str, *, kept: bool, checked: bool) -> str:
    """Add a row to its day's sum. An UPDATE, then an INSERT when it found nothing: measured faster than an
    upsert (the failed insert of an upsert costs more than the update), and `changes()` inside a trigger
    counts the trigger's own last statement. `checked`: the trigger's WHEN has tested the row already."""
    condition = "" if checked else f" AND {counted(row, kept=kept)}"
    return (
        f"UPDATE {DAILY} SET total = total + {row}.value, count = count + 1 WHERE {_match(row)}{condition};"
        f" INSERT INTO {DAILY} (day, component_id, type, total, count)"
        f" SELECT substr({row}.timestamp, 1, 10), {row}.component_id, {row}.type, {row}.value, 1"
        f" WHERE changes() = 0{condition};"
    )


def _remove(row: str, *, kept: bool) -> str:
    return (
        f"UPDATE {DAILY} SET total = total - {row}.value, count = count - 1 WHERE {_match(row)}"
        f" AND {counted(row, kept=kept)}; DELETE FROM {DAILY} WHERE {_match(row)} AND count <= 0;"
    )


def daily_script(*, kept: bool) -> str:
    """The sums table, filled from the measurements there are, and the triggers that keep it."""
    watched = "component_id, timestamp, type, value" + (f", {DELETED_AT}" if kept else "")
    return f"""
DROP TRIGGER IF EXISTS {DAILY_TRIGGERS[0]};
DROP TRIGGER IF EXISTS {DAILY_TRIGGERS[1]};
DROP TRIGGER IF EXISTS {DAILY_TRIGGERS[2]};
DROP TABLE IF EXISTS {DAILY};
CREATE TABLE {DAILY} (
    day TEXT NOT NULL,
    component_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    total REAL NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (day, component_id, type)
) WITHOUT ROWID;
INSERT INTO {DAILY} (day, component_id, type, total, count)
    SELECT substr(m.timestamp, 1, 10), m.component_id, m.type, sum(m.value), count(*)
    FROM grid_measurements AS m WHERE {counted("m", kept=kept)}
    GROUP BY substr(m.timestamp, 1, 10), m.component_id, m.type;
CREATE TRIGGER {DAILY_TRIGGERS[0]} AFTER INSERT ON grid_measurements WHEN {counted("NEW", kept=kept)}
BEGIN {_add("NEW", kept=kept, checked=True)} END;
CREATE TRIGGER {DAILY_TRIGGERS[1]} AFTER UPDATE OF {watched} ON grid_measurements
BEGIN {_remove("OLD", kept=kept)} {_add("NEW", kept=kept, checked=False)} END;
CREATE TRIGGER {DAILY_TRIGGERS[2]} AFTER DELETE ON grid_measurements
BEGIN {_remove("OLD", kept=kept)} END;
"""


def _marker(kept: bool) -> str:
    return DAILY_VERSION + ("+kept" if kept else "")


def daily_sums_current(db: Database) -> bool:
    """Whether the sums table and its three triggers are there, made by this version of the definition for
    the columns the measurements have now (`_deleted_at` appears when SYNCCTL_KEEP_DELETED is turned on)."""
    names = {
        row[0]
        for row in db.conn.execute(
            "SELECT name FROM sqlite_master WHERE (type = 'trigger' AND tbl_name = 'grid_measurements')"
            " OR (type = 'table' AND name = ?)",
            (DAILY,),
        )
    }
    if not {DAILY, *DAILY_TRIGGERS} <= names or not db.has_table("_syncctl_state"):
        return False
    marker = db.scalar("SELECT value FROM _syncctl_state WHERE source = ? AND key = 'daily_sums'", (SOURCE,))
    return str(marker) == _marker(has_kept_rows(db))


def ensure_daily_sums(db: Database) -> None:
    """Create (or rebuild) the daily sums and their triggers when they are missing or out of date."""
    if daily_sums_current(db):
        return
    with db.transaction():
        if daily_sums_current(db):  # another process did it while we waited for the lock
            return
        kept = has_kept_rows(db)
        log.info("building the grid's daily sums for the KPI report")
        run_script(db.conn, daily_script(kept=kept))
        db.conn.execute(
            "INSERT OR REPLACE INTO _syncctl_state (source, key, value) VALUES (?, 'daily_sums', ?)",
            (SOURCE, _marker(kept)),
        )


def open_tables(db: Database, *, keep_deleted: bool = False) -> tuple[MirrorTable, MirrorTable]:
    """Both mirrored tables, created when missing, with the daily sums in place (not on a read-only file).

    With `keep_deleted` the tables get their `_deleted_at` column first (the core would add it later in
    the run), so the triggers are written for it before the first row is marked."""
    components = MirrorTable.open(db, COMPONENTS)
    measurements = MirrorTable.open(db, MEASUREMENTS)
    if not db.read_only:
        if keep_deleted:
            components.keep_deleted_rows()
            measurements.keep_deleted_rows()
        ensure_daily_sums(db)
    return components, measurements
