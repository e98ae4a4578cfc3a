"""`report summary`: rows per value of one field of any data table, with counts and exact sums.

The data tables are those syncctl registered in `_syncctl_tables` (every source's, `cases` to `workorders`),
so a table another program keeps in the same file is never read. Field names given by a person are checked
against the table's real columns and only then quoted into SQL; values are always bound parameters.

Values in `--where` are compared as the column stores them. A bound parameter has no type affinity of its
own, so SQLite gives it the column's: `active=1` on an INTEGER column compares the number 1, and
`customer_id=6666940` on a TEXT column compares the text "6666940" — the value is bound as the text typed
and the column decides. A column without affinity (a field syncctl first saw as a number, or of unknown
kind) stores each value as the remote sent it, so there the text and the number it spells are both
matched. For a boolean field, `true`/`false` mean 1/0. One field given several times matches any of its
values; different fields must all match.

Sums are exact: every value of a group is added in Python as a `Decimal` (decimal strings such as
"155.50" as written, integers as integers, a REAL by its shortest repr), never as a float, because SQLite's
`sum()`/`total()` over `CAST(... AS REAL)` adds binary fractions: "0.10" + "0.20" is 0.30000000000000004
there, and over a million hour budgets such errors add up in the cents. Text that is not a finite number
(and NULL) adds nothing. The rows are read in group order, so one group is summed at a time: memory stays
flat however many groups there are.

Rows a source keeps after a remote delete (`_deleted_at` set) are not counted, as `MirrorTable.count`
does not count them, unless `_deleted_at` is the field grouped or filtered on.
"""

from __future__ import annotations

import decimal
import difflib
import logging
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from syncctl.core.db import Database, quote
from syncctl.core.errors import UsageError
from syncctl.core.mirror import DELETED_AT
from syncctl.core.sanitize import one_line
from syncctl.reports.output import Report, Table

log = logging.getLogger("syncctl.reports")

# Wide enough for any sum a mirror can hold exactly (a million values of 20 digits need 26); a value of
# absurd magnitude (a remote could send "1e999999") is rounded to this many digits and said so, rather
# than asking libmpdec for a number with a million digits.
SUM_DIGITS = 60
_TRUE, _FALSE = frozenset({"true", "yes", "on"}), frozenset({"false", "no", "off"})


# ------------------------------------------------------------------------------------------ fields


def data_tables(db: Database) -> dict[str, str]:
    """The data tables syncctl made, each with its source (empty before the first sync)."""
    if not db.has_table("_syncctl_tables"):
        return {}
    rows = db.conn.execute("SELECT name, source FROM _syncctl_tables ORDER BY name").fetchall()
    return {str(name): str(source) for name, source in rows if db.has_table(str(name))}


def check_table(db: Database, table: str) -> str:
    """`table` if it is one of syncctl's data tables, else exit 2 naming the ones there are."""
    tables = data_tables(db)
    if table in tables:
        return table
    if not tables:
        raise UsageError(
            f"unknown table {one_line(table, 60)!r}: {db.path} has no data tables yet (sync first)"
        )
    raise UsageError(
        f"unknown table {one_line(table, 60)!r}{_did_you_mean(table, tables)}; the data tables are"
        f" {', '.join(tables)}"
    )


def table_columns(db: Database, table: str) -> dict[str, str]:
    """The table's real columns, in order, each with its declared type ("" for none)."""
    rows = db.conn.execute(f"PRAGMA table_info({quote(table)})").fetchall()
    return {str(row[1]): str(row[2] or "") for row in rows}


def column_kinds(db: Database, table: str) -> dict[str, str]:
    """What syncctl knows of each column's kind (`bool`, `decimal`, ...), where it recorded one."""
    if not db.has_table("_syncctl_columns"):
        return {}
    rows = db.conn.execute("SELECT name, kind FROM _syncctl_columns WHERE table_name = ?", (table,))
    return {str(name): str(kind) for name, kind in rows}


def resolve_field(table: str, columns: Sequence[str], name: str, *, option: str) -> str:
    """The column `name` means: the exact name, else the one column equal to it ignoring case (as SQLite
    itself reads names); an unknown name is exit 2 with the closest real names."""
    if name in columns:
        return name
    folded = [c for c in columns if c.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    shown = one_line(name, 60)
    raise UsageError(f"{option}: table {table} has no field {shown!r}{_did_you_mean(name, columns)}")


def _did_you_mean(name: str, choices: Sequence[str] | dict[str, str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def affinity(declared: str) -> str:
    """SQLite's type affinity of a declared column type (the rules of "Datatypes In SQLite", 3.1)."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if "CHAR" in upper or "CLOB" in upper or "TEXT" in upper:
        return "TEXT"
    if "BLOB" in upper or not upper:
        return "BLOB"
    if "REAL" in upper or "FLOA" in upper or "DOUB" in upper:
        return "REAL"
    return "NUMERIC"


def parse_where(specs: Sequence[str]) -> list[tuple[str, str]]:
    """`FIELD=VALUE` pairs, split at the first `=` (a value may hold more); exit 2 when one has none."""
    pairs = []
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--where takes FIELD=VALUE, got {one_line(spec, 60)!r}")
        pairs.append((name.strip(), value))
    return pairs


def bound_values(text: str, declared: str, kind: str | None) -> list[Any]:
    """The values to bind for `--where FIELD=text`, so they compare as the column stores its values."""
    if kind == "bool" and text.strip().lower() in _TRUE | _FALSE:
        return [1 if text.strip().lower() in _TRUE else 0]
    if affinity(declared) != "BLOB":
        return [text]  # SQLite applies the column's affinity to the bound text
    values: list[Any] = [text]
    number = _spelled_number(text)
    if number is not None:
        values.append(number)
    return values


def _spelled_number(text: str) -> int | float | None:
    """The number `text` spells exactly as SQLite would store it (an integer or a REAL), else None."""
    cleaned = text.strip()
    if "_" in cleaned:  # Python reads 1_000 as a number; SQLite does not
        return None
    try:
        return int(cleaned)
    except ValueError:
        pass
    try:
        number = float(cleaned)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


# ------------------------------------------------------------------------------------------ sums


def exact_number(value: Any, context: decimal.Context) -> Decimal | None:
    """A stored value as an exact decimal to add (a REAL by its shortest repr, text as written, spaces
    around it allowed), or None when it is not a finite number."""
    if value is None or isinstance(value, bytes):
        return None
    try:
        if isinstance(value, str):
            number = context.create_decimal(value.strip())
        else:
            number = context.create_decimal(repr(value) if isinstance(value, float) else value)
    except (decimal.InvalidOperation, TypeError, ValueError):
        return None
    return number if number.is_finite() else None


def sum_context() -> decimal.Context:
    """Decimal arithmetic for sums: `SUM_DIGITS` digits, text that is no number an error (not NaN)."""
    return decimal.Context(prec=SUM_DIGITS, traps=[decimal.InvalidOperation])


def plain_total(total: Decimal) -> int | Decimal:
    """An integral total of integers as an int (`12`, not `12.0` in JSON); decimals keep their places."""
    exponent = total.as_tuple().exponent
    return int(total) if isinstance(exponent, int) and exponent >= 0 else total


# ------------------------------------------------------------------------------------------ the report


def summary_report(
    db: Database,
    table: str,
    group_by: str,
    *,
    where: Sequence[tuple[str, str]] = (),
    sums: Sequence[str] = (),
) -> Report:
    """Rows of `[group value, count, sum_<field>...]`, one per value of `group_by`, in SQLite's order of
    the values (NULL first). Everything a person typed is checked here, before any row is read."""
    name = check_table(db, table)
    columns = table_columns(db, name)
    kinds = column_kinds(db, name)
    group = resolve_field(name, list(columns), group_by, option="--group-by")
    conditions: dict[str, list[Any]] = {}
    for field_name, text in where:
        column = resolve_field(name, list(columns), field_name, option="--where")
        values = conditions.setdefault(column, [])
        values.extend(v for v in bound_values(text, columns[column], kinds.get(column)) if v not in values)
    summed = list(dict.fromkeys(resolve_field(name, list(columns), s, option="--sum") for s in sums))
    out_columns = [group, "count", *(f"sum_{s}" for s in summed)]
    if len(set(out_columns)) < len(out_columns):
        raise UsageError(
            f"--group-by {group}: the summary has its own {', '.join(out_columns[1:])} column(s);"
            " group by another field"
        )
    clauses = [f"{quote(c)} IN ({', '.join('?' * len(v))})" for c, v in conditions.items()]
    if DELETED_AT in columns and group != DELETED_AT and DELETED_AT not in conditions:
        clauses.append(f"{quote(DELETED_AT)} IS NULL")
    params = tuple(v for values in conditions.values() for v in values)
    where_sql = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    if summed:
        select = ", ".join(quote(c) for c in [group, *summed])
        sql = f"SELECT {select} FROM {quote(name)}{where_sql} ORDER BY 1"
        rows: Iterator[Sequence[Any]] = _summed_rows(db, sql, params, len(summed), summed)
    else:
        sql = f"SELECT {quote(group)}, count(*) FROM {quote(name)}{where_sql} GROUP BY 1 ORDER BY 1"
        rows = _plain_rows(db, sql, params)
    meta: dict[str, Any] = {"table": name, "group_by": group}
    if where:
        meta["where"] = [f"{c}={t}" for c, t in where]
    if summed:
        meta["sum"] = summed
    return Report(title=f"{name} by {group}", tables=[Table(name, out_columns, rows)], meta=meta)


def _plain_rows(db: Database, sql: str, params: tuple[Any, ...]) -> Iterator[Sequence[Any]]:
    yield from db.conn.execute(sql, params)


def _summed_rows(
    db: Database, sql: str, params: tuple[Any, ...], width: int, names: Sequence[str]
) -> Iterator[Sequence[Any]]:
    """One row per group from rows sorted by group: a group is finished when the next value differs.

    Python's `==` groups as SQLite's GROUP BY does for the values SQLite returns (1 and 1.0 together,
    text by its bytes, NULLs as one group), so the groups are exactly those of the count-only query.
    """
    context = sum_context()
    current: Any = None
    count = 0
    totals: list[Decimal] = []
    zero = Decimal(0)
    add = context.add
    for row in db.conn.execute(sql, params):
        value = row[0]
        if count == 0 or value != current:
            if count:
                yield [current, count, *map(plain_total, totals)]
            current, count, totals = value, 0, [zero] * width
        count += 1
        for i in range(width):
            item = row[i + 1]
            if item is not None:
                number = exact_number(item, context)
                if number is not None:
                    totals[i] = add(totals[i], number)
    if count:
        yield [current, count, *map(plain_total, totals)]
    if context.flags[decimal.Inexact]:
        log.warning(
            "a sum of %s was rounded to %d significant digits: some values are of extreme magnitude",
            ", ".join(names),
            SUM_DIGITS,
        )
