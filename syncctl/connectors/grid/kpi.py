"""The grid KPI report (`grid-api.md`, "The KPI report"), computed from the mirror alone.

Four sections: components per type, transformer capacity per voltage, line length per voltage (all
components present now), and per UTC day, component type and measurement type, the average measurement
value over the period `[start, end)` with the count behind it.

The averages come from sums, never from averages of averages: whole days of the period are read from the
daily sums the triggers keep (`tables.py`), and the at most two days the period cuts are summed from the
measurements themselves, found through the timestamp index. At 3 million measurements that is about
30,000 sum rows plus two days of rows, instead of 3 million rows. When the sums are missing (a file
opened read-only before the first sync built them) every measurement in the period is read instead.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from syncctl.connectors.grid.fields import api_timestamp
from syncctl.connectors.grid.tables import (
    COMPONENTS,
    DAILY,
    MEASUREMENTS,
    counted,
    daily_sums_current,
    has_kept_rows,
)
from syncctl.core.db import Database
from syncctl.core.errors import SyncctlError
from syncctl.core.mirror import DELETED_AT
from syncctl.reports.output import Report, Series, Table
from syncctl.reports.periods import Period

log = logging.getLogger("syncctl.grid")

SECTIONS = (
    "components_by_type",
    "transformer_capacity_by_voltage",
    "line_length_by_voltage",
    "daily_averages",
)
DAILY_COLUMNS = ["day", "component_type", "measurement_type", "average", "count"]
_DAY = datetime.timedelta(days=1)

DailyKey = tuple[str, Any, Any]  # day, component type, measurement type


# Per component first, joined to the (few) components after: a join per measurement row costs more than
# the sums. `cut_sums` reads a range within one day (the day is known, so it is not computed per row);
# `raw_sums` any range, for a file without the daily sums.
def cut_sums(*, kept: bool) -> str:
    return f"""
SELECT c.type, s.type, sum(s.total), sum(s.n) FROM (
    SELECT m.component_id, m.type, sum(m.value) AS total, count(*) AS n FROM grid_measurements AS m
    WHERE m.timestamp >= ? AND m.timestamp < ? AND {counted("m", kept=kept)}
    GROUP BY 1, 2
) AS s JOIN grid_components AS c ON c.id = s.component_id
GROUP BY 1, 2
"""


def raw_sums(*, kept: bool) -> str:
    return f"""
SELECT s.day, c.type, s.type, sum(s.total), sum(s.n) FROM (
    SELECT substr(m.timestamp, 1, 10) AS day, m.component_id, m.type, sum(m.value) AS total, count(*) AS n
    FROM grid_measurements AS m
    WHERE m.timestamp >= ? AND m.timestamp < ? AND {counted("m", kept=kept)}
    GROUP BY 1, 2, 3
) AS s JOIN grid_components AS c ON c.id = s.component_id
GROUP BY 1, 2, 3
"""


_DAY_SUMS = f"""
SELECT d.day, c.type, d.type, sum(d.total), sum(d.count)
FROM {DAILY} AS d JOIN grid_components AS c ON c.id = d.component_id
WHERE d.day >= ? AND d.day < ?
GROUP BY 1, 2, 3
"""


def time_bound(moment: datetime.datetime) -> str:
    """A period bound as a timestamp text to compare with stored ones. Stored times are whole seconds, so a
    bound with a fraction is moved up to the next second: `ts >= 10:00:00.5` is `ts >= 10:00:01`, and
    `ts < 10:00:00.5` is `ts < 10:00:01`."""
    if moment.microsecond:
        try:
            moment = moment.replace(microsecond=0) + datetime.timedelta(seconds=1)
        except OverflowError:
            return "9999-12-31T23:59:59Z~"  # after every stored time ("~" sorts after "Z")
    return api_timestamp(moment)


def split_period(period: Period) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
    """The whole UTC days of the period as a `[first, last)` range of day texts (None when there are none),
    and the time ranges `[from, to)` of the days it cuts (at most two; one when start and end share a day)."""
    start, end = period.start, period.end
    start_midnight = datetime.datetime.combine(start.date(), datetime.time(), datetime.UTC)
    end_midnight = datetime.datetime.combine(end.date(), datetime.time(), datetime.UTC)
    if start == start_midnight:
        first_full: datetime.datetime | None = start_midnight
    elif start.date() < datetime.date.max:
        first_full = start_midnight + _DAY
    else:
        first_full = None  # the period starts on the last day there is: no whole day follows
    days = None
    if first_full is not None and first_full < end_midnight:
        days = (first_full.date().isoformat(), end.date().isoformat())
    cut: list[tuple[str, str]] = []
    head_end = end if first_full is None else min(end, first_full)
    if start < head_end:
        cut.append((time_bound(start), time_bound(head_end)))
    tail_start = max(head_end, end_midnight)
    if tail_start < end:
        cut.append((time_bound(tail_start), time_bound(end)))
    return days, cut


def daily_sums(db: Database, period: Period) -> dict[DailyKey, tuple[float, int]]:
    """(total, count) per day, component type and measurement type, over the measurements in the period."""
    sums: dict[DailyKey, tuple[float, int]] = {}
    kept = has_kept_rows(db)
    if not daily_sums_current(db):
        log.warning(
            "the grid's daily sums are not built yet (run `syncctl sync grid`); reading every measurement"
        )
        bounds = (time_bound(period.start), time_bound(period.end))
        _collect(sums, db.conn.execute(raw_sums(kept=kept), bounds))
        return sums
    days, cut = split_period(period)
    if days is not None:
        _collect(sums, db.conn.execute(_DAY_SUMS, days))
    for low, high in cut:
        day = low[:10]  # a cut range lies within one day
        _collect(sums, ((day, *row) for row in db.conn.execute(cut_sums(kept=kept), (low, high))))
    return sums


def _collect(sums: dict[DailyKey, tuple[float, int]], rows: Iterable[tuple[Any, ...]]) -> None:
    for day, component_type, measurement_type, total, count in rows:
        key = (day, component_type, measurement_type)
        before_total, before_count = sums.get(key, (0.0, 0))
        sums[key] = (before_total + total, before_count + count)


def _sort_key(key: DailyKey) -> tuple[str, str, str]:
    return key[0], "" if key[1] is None else str(key[1]), "" if key[2] is None else str(key[2])


def daily_average_rows(db: Database, period: Period) -> list[list[Any]]:
    sums = daily_sums(db, period)
    return [
        [day, component_type, measurement_type, total / count, count]
        for (day, component_type, measurement_type), (total, count) in sorted(
            sums.items(), key=lambda i: _sort_key(i[0])
        )
        if count
    ]


def component_rows(db: Database) -> dict[str, list[list[Any]]]:
    """The three component sections: over the components present (not those kept after a remote delete)."""
    live = f"{DELETED_AT} IS NULL" if has_kept_rows(db, "grid_components") else "1"
    conn = db.conn
    return {
        "components_by_type": [
            list(row)
            for row in conn.execute(
                f"SELECT type, count(*) FROM grid_components WHERE {live} GROUP BY type ORDER BY type"
            )
        ],
        "transformer_capacity_by_voltage": [
            list(row)
            for row in conn.execute(
                "SELECT voltage_kv, sum(capacity_mva), count(*) FROM grid_components"
                f" WHERE type = 'transformer' AND {live} GROUP BY voltage_kv ORDER BY voltage_kv"
            )
        ],
        "line_length_by_voltage": [
            list(row)
            for row in conn.execute(
                "SELECT voltage_kv, sum(length_km), count(*) FROM grid_components"
                f" WHERE type = 'line' AND {live} GROUP BY voltage_kv ORDER BY voltage_kv"
            )
        ],
    }


def kpi_report(db: Database, period: Period) -> Report:
    """The report as data: four tables, the period as meta, and one chart per measurement type."""
    for spec in (COMPONENTS, MEASUREMENTS):
        if not db.has_table(spec.name):
            raise SyncctlError(f"{db.path} has no {spec.name} table yet: run `syncctl sync grid` first")
    with snapshot(db):
        components = component_rows(db)
        daily = daily_average_rows(db, period)
    tables = [
        Table("components_by_type", ["component_type", "count"], components["components_by_type"]),
        Table(
            "transformer_capacity_by_voltage",
            ["voltage_kv", "total_capacity_mva", "count"],
            components["transformer_capacity_by_voltage"],
        ),
        Table(
            "line_length_by_voltage",
            ["voltage_kv", "total_length_km", "count"],
            components["line_length_by_voltage"],
        ),
        Table("daily_averages", DAILY_COLUMNS, daily),
    ]
    start, end = period.iso()["start"], period.iso()["end"]
    return Report(
        title=f"Grid KPIs from {start} to {end}",
        tables=tables,
        meta={"period": period.iso()},
        series=charts(daily),
    )


@contextmanager
def snapshot(db: Database) -> Iterator[None]:
    """One read transaction, so every section sees the same state while a sync may be committing pages."""
    if db.conn.in_transaction:
        yield
        return
    db.conn.execute("BEGIN")
    try:
        yield
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.conn.execute("COMMIT")


def charts(daily: list[list[Any]]) -> list[Series]:
    """One chart per measurement type: a line per component type, the daily average over the days."""
    by_type: dict[str, dict[str, list[tuple[str, float]]]] = {}
    for day, component_type, measurement_type, average, _ in daily:
        lines = by_type.setdefault(str(measurement_type), {})
        lines.setdefault(str(component_type), []).append((day, average))
    return [
        Series(
            title=f"Daily average {measurement_type} per component type",
            x_label="day (UTC)",
            y_label=f"average {measurement_type}",
            points=lines,
        )
        for measurement_type, lines in sorted(by_type.items())
    ]
