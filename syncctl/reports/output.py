"""How every report leaves syncctl: its formats, its renderers and its files.

A report is data (`Report`: tables of rows, optional chart series, optional exact JSON document); this
module turns it into `table` (rich, for a terminal), `json`, `jsonl`, `csv` or `html`, row by row, so a
report over millions of rows runs in constant memory. Files are written atomically.

The JSON rule, the same for every report:

* `Report.document` set: that value is the document. Mappings become objects; lists, tuples, iterators
  and generators become arrays (streamed); a `Table` inside it becomes an array of row objects.
* otherwise, exactly one table: an array of row objects `[{"column": value, ...}, ...]`; `meta` and
  `title` are not part of it (they echo what the person asked for).
* otherwise (zero or several tables): one object, `meta`'s keys first, then one key per table name
  holding its array of row objects. A table named like a meta key is a programming error.

Layout: arrays put one element per line; an object whose values are all scalars is written on one
line; other objects put one key per line. NaN and infinities become `null`, so the output is always
valid JSON; bytes become `"\\x<hex>"` text; times become ISO 8601 strings.

Rows are iterated exactly once: a `Table` may hold a one-pass generator, so render a report once.
"""

from __future__ import annotations

import contextlib
import csv
import html
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from syncctl.core.errors import UsageError
from syncctl.core.sanitize import one_line, strip_control
from syncctl.reports.periods import Period, safe_name_part

FORMATS = ("table", "json", "jsonl", "csv", "html")
FILE_EXTENSIONS = {"table": "txt", "json": "json", "jsonl": "jsonl", "csv": "csv", "html": "html"}
# A terminal is for looking, not for a million rows: beyond this the table says how many it left out.
MAX_TABLE_ROWS = 1000
# Rows rendered in a file with `--format table`: no terminal to size it, so wide enough for most reports.
FILE_TABLE_WIDTH = 200


class OutputError(UsageError):
    """An output file or folder cannot be written (exit 2): the message names the path and the reason."""


# --------------------------------------------------------------------------------------------- model


@dataclass
class Table:
    """Named rows under named columns. `rows` may be a one-pass generator over millions of rows."""

    name: str
    columns: list[str]
    rows: Iterable[Sequence[Any]]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for column in self.columns:
            if column in seen:
                raise ValueError(f"table {self.name!r}: column {column!r} appears twice")
            seen.add(column)

    def row_objects(self) -> Iterator[dict[str, Any]]:
        """The rows as `{column: value}` objects, one at a time (this reads the rows)."""
        for row in _checked_rows(self):
            yield dict(zip(self.columns, row, strict=True))


@dataclass
class Series:
    """A chart: one line per name in `points`, each a list of `(x label, y value)` pairs.

    The x axis is the sorted union of every line's labels, so labels must sort as text in the order
    they are meant to be read (ISO dates and times do). A line without a value at some x has a gap
    there; a NaN or infinite y is a gap too.
    """

    title: str
    x_label: str
    y_label: str
    points: dict[str, list[tuple[str, float]]]


@dataclass
class Report:
    """What a report produced. `tables` drive table/csv/jsonl/html; `document`, when set, is the JSON."""

    title: str
    tables: list[Table]
    meta: dict[str, Any] = field(default_factory=dict)
    series: list[Series] = field(default_factory=list)
    document: Any = None


def choose_format(requested: str | None, *, is_terminal: bool) -> str:
    """The output format: the one asked for, else `table` on a terminal and `json` otherwise."""
    if requested is None:
        return "table" if is_terminal else "json"
    name = requested.strip().lower()
    if name not in FORMATS:
        raise UsageError(
            f"unknown --format {one_line(requested, 40)!r}; expected one of {', '.join(FORMATS)}"
        )
    return name


# --------------------------------------------------------------------------------------------- values


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinity (SQLite can hold them) replaced by None, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    """What the JSON encoder cannot write itself."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=_json_default)


def _dumps(value: Any) -> str:
    """Compact JSON for one value; NaN and infinities become null (rarely present, so tried second)."""
    try:
        return _ENCODER.encode(value)
    except ValueError:
        return _ENCODER.encode(_finite(value))


# The common cell types are spelled out by type, not through the encoder: a million rows is several
# million cells, and this keeps a report's rows at about a microsecond each.
_FAST_JSON: dict[type, Callable[[Any], str]] = {
    str: _ENCODER.encode,
    int: int.__repr__,
    type(None): lambda _: "null",
    bool: lambda value: "true" if value else "false",
    float: lambda value: float.__repr__(value) if math.isfinite(value) else "null",
}


def _scalar_json(value: Any) -> str:
    fast = _FAST_JSON.get(type(value))
    return fast(value) if fast is not None else _dumps(value)


def _row_json(prefixes: list[str], row: Sequence[Any]) -> str:
    """One row as a compact JSON object; `prefixes` hold each column's `"name": ` with its separator."""
    cells = [prefix + _scalar_json(value) for prefix, value in zip(prefixes, row, strict=True)]
    return "{" + "".join(cells) + "}"


def _row_prefixes(table: Table) -> list[str]:
    return [("" if i == 0 else ", ") + _ENCODER.encode(c) + ": " for i, c in enumerate(table.columns)]


def _checked_rows(table: Table) -> Iterator[Sequence[Any]]:
    """The table's rows, refusing one whose length does not match the columns (a report's bug)."""
    width = len(table.columns)
    for row in table.rows:
        if len(row) != width:
            raise ValueError(f"table {table.name!r}: a row has {len(row)} values for {width} columns")
        yield row


def _text(value: Any) -> str:
    """A cell as text for CSV: None and non-finite floats are empty, containers compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value) if math.isfinite(value) else ""
    if isinstance(value, Mapping | list | tuple):
        return _dumps(value)
    converted = _json_default(value)
    return _text(converted) if not isinstance(converted, str) else converted


def _csv_cell(value: Any) -> Any:
    """What `csv.writer` gets: str, int and finite floats as they are (it writes those right)."""
    kind = type(value)
    if kind is str or kind is int or (kind is float and math.isfinite(value)):
        return value
    return _text(value)


def _display(value: Any) -> str:
    """A cell as a person reads it (table, html): floats to at most 6 decimals, the rest as in CSV."""
    if type(value) is str:
        return value
    if isinstance(value, float) and value == 0:
        return "0"
    if isinstance(value, float) and math.isfinite(value) and 1e-6 <= abs(value) < 1e15:
        shown = f"{value:.6f}".rstrip("0").rstrip(".")
        return "0" if shown in ("-0", "") else shown
    return _text(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple | Iterator | Table)


# ------------------------------------------------------------------------------------------ renderers


def write_json(report: Report, stream: TextIO) -> None:
    """One JSON document (see the module docstring for its shape), streamed, ending in a newline."""
    if report.document is not None:
        document: Any = report.document
    elif len(report.tables) == 1:
        document = report.tables[0]
    else:
        clashes = [t.name for t in report.tables if t.name in report.meta]
        if clashes:
            raise ValueError(f"report {report.title!r}: table {clashes[0]!r} has the name of a meta key")
        document = {**report.meta, **{t.name: t for t in report.tables}}
    _write_json_value(document, stream, 0)
    stream.write("\n")


def _write_json_value(value: Any, out: TextIO, level: int) -> None:
    if isinstance(value, Table):
        _write_json_table(value, out, level)
    elif isinstance(value, Mapping):
        if not any(_is_container(v) for v in value.values()):
            out.write(_dumps(dict(value)))
            return
        inner = "  " * (level + 1)
        out.write("{")
        for i, (key, item) in enumerate(value.items()):
            out.write(f"{',' if i else ''}\n{inner}{_dumps(_json_key(key))}: ")
            _write_json_value(item, out, level + 1)
        out.write(f"\n{'  ' * level}}}")
    elif isinstance(value, list | tuple | Iterator):
        _write_json_array(iter(value), out, level)
    else:
        out.write(_dumps(value))


def _write_json_array(items: Iterator[Any], out: TextIO, level: int) -> None:
    inner = "  " * (level + 1)
    out.write("[")
    empty = True
    for item in items:
        out.write(f"\n{inner}" if empty else f",\n{inner}")
        empty = False
        _write_json_value(item, out, level + 1)
    out.write("]" if empty else f"\n{'  ' * level}]")


def _write_json_table(table: Table, out: TextIO, level: int) -> None:
    """A table as an array of row objects, one row a line (whatever its cells hold)."""
    prefixes = _row_prefixes(table)
    separator = ",\n" + "  " * (level + 1)
    out.write("[")
    empty = True
    for row in _checked_rows(table):
        out.write((separator[1:] if empty else separator) + _row_json(prefixes, row))
        empty = False
    out.write("]" if empty else f"\n{'  ' * level}]")


def _json_key(key: Any) -> str:
    """Object keys as `json.dumps` spells non-string keys."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return _dumps(key)
    return str(key)


def _single_table(report: Report, fmt: str) -> Table:
    if len(report.tables) != 1:
        raise UsageError(
            f"{fmt} holds one table and report {report.title!r} has {len(report.tables)}"
            f" ({', '.join(t.name for t in report.tables) or 'none'}):"
            " use --out-dir DIR for one file per table"
        )
    return report.tables[0]


def write_jsonl(report: Report, stream: TextIO) -> None:
    """JSON Lines: one compact row object per line. Row-shaped, so one table only (like CSV)."""
    table = _single_table(report, "jsonl")
    prefixes = _row_prefixes(table)
    for row in _checked_rows(table):
        stream.write(_row_json(prefixes, row) + "\n")


def write_csv(report: Report, stream: TextIO) -> None:
    """RFC 4180: a header row, CRLF line ends, fields quoted only when needed; one table only.

    Open files with `newline=""` (`atomic_write` does), or the CRLF doubles on Windows. Values are
    written as they are: None and NaN/infinity as an empty field, booleans `true`/`false`, lists and
    objects as compact JSON text. No byte-order mark and no formula escaping, so a round trip through
    any CSV reader gives back the exact text.
    """
    table = _single_table(report, "csv")
    writer = csv.writer(stream, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(table.columns)
    writer.writerows([_csv_cell(v) for v in row] for row in _checked_rows(table))


def print_table(report: Report, console: Console, *, max_rows: int = MAX_TABLE_ROWS) -> None:
    """The report as rich tables: at most `max_rows` rows each, then a line saying how many were left out.

    The rest of a long table is still read (to count it) but never held. Every value is shown as plain
    text: rich markup in the data is not interpreted and control characters are replaced.
    """
    console.print(Text(strip_control(report.title), style="bold"))
    for key, value in report.meta.items():
        console.print(Text(f"{strip_control(str(key))}: {strip_control(_meta_text(value))}"))
    for table in report.tables:
        rich_table = RichTable(title=strip_control(table.name), box=box.SIMPLE_HEAD, title_justify="left")
        numeric, rows = _peek_numeric(table)
        for column, is_numeric in zip(table.columns, numeric, strict=True):
            rich_table.add_column(
                Text(strip_control(column)), justify="right" if is_numeric else "left", overflow="fold"
            )
        shown = 0
        left_out = 0
        for row in rows:
            if shown < max_rows:
                rich_table.add_row(*(Text(strip_control(_display(v))) for v in row))
                shown += 1
            else:
                left_out += 1
        console.print(rich_table)
        if left_out:
            console.print(
                Text(
                    f"{shown:,} of {shown + left_out:,} rows shown, {left_out:,} left out:"
                    " use --format csv, json or html for all of them",
                    style="dim",
                )
            )
        elif shown == 0:
            console.print(Text("no rows", style="dim"))


def _peek_numeric(table: Table) -> tuple[list[bool], Iterator[Sequence[Any]]]:
    """Which columns hold numbers, judged by the first row (to right-align them), and all the rows."""
    rows = _checked_rows(table)
    first = next(rows, None)
    if first is None:
        return [False] * len(table.columns), rows
    return [_is_number(value) for value in first], chain([first], rows)


def _meta_text(value: Any) -> str:
    """A meta value as one short line: `start: …, end: …` for objects, comma-joined lists."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_display(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_display(v) for v in value)
    return _display(value)


# -------------------------------------------------------------------------------------------------- html

_STYLE = """
:root { color-scheme: light; --ink: #1b1f24; --muted: #57606a; --line: #d0d7de; --stripe: #f6f8fa; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 72rem; padding: 1rem; color: var(--ink); background: #fff;
  font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 1.5rem; line-height: 1.2; margin: 0 0 .5rem; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 1.75rem 0 .5rem; overflow-wrap: anywhere; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: 0 0 1rem;
  color: var(--muted); font-size: .9rem; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; border: 1px solid var(--line);
  border-radius: 6px; }
.scroll:focus { outline: 2px solid #0969da; outline-offset: 2px; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; font-variant-numeric: tabular-nums; }
th, td { padding: .4rem .6rem; text-align: left; vertical-align: top; border-bottom: 1px solid var(--line);
  white-space: nowrap; }
th { background: var(--stripe); font-weight: 600; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
tbody tr:last-child td { border-bottom: 0; }
.num { text-align: right; }
td.long { white-space: normal; min-width: 16rem; max-width: 32rem; overflow-wrap: anywhere; }
td.empty { color: var(--muted); font-style: italic; text-align: center; }
p.rows { color: var(--muted); font-size: .85rem; margin: .35rem 0 0; }
figure.chart { margin: 1rem 0 1.5rem; }
figure.chart figcaption { font-weight: 600; margin-bottom: .25rem; overflow-wrap: anywhere; }
figure.chart > svg { display: block; width: 100%; max-width: 36rem; height: auto; }
ul.legend { list-style: none; display: flex; flex-wrap: wrap; gap: .25rem 1rem; margin: .35rem 0 0;
  padding: 0; font-size: .85rem; }
ul.legend li { display: flex; align-items: center; gap: .35rem; overflow-wrap: anywhere; }
ul.legend svg { flex: none; width: 28px; height: 10px; }
footer { margin-top: 2rem; color: var(--muted); font-size: .8rem; }
@media (max-width: 40rem) {
  body { padding: .75rem; }
  h1 { font-size: 1.3rem; }
  table { font-size: .85rem; }
  th, td { padding: .35rem .5rem; }
  td.long { min-width: 12rem; }
}
@media print {
  @page { margin: 14mm; }
  body { max-width: none; padding: 0; font-size: 10pt; }
  .scroll { overflow: visible; border: 0; }
  table { font-size: 8.5pt; }
  th, td { white-space: normal; padding: .2rem .35rem; }
  th.num, td.num { white-space: nowrap; }
  td.long { min-width: 0; max-width: none; overflow-wrap: break-word; }
  thead { display: table-header-group; }
  tr, figure.chart { break-inside: avoid; }
  h2 { break-after: avoid; }
  tbody tr:nth-child(even) td { background: none; }
  th { background: none; border-bottom: 1.5px solid #000; }
}
""".strip()

# Content-Security-Policy: even if something slipped through escaping, the page can load and run nothing.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

# Okabe-Ito colours (told apart with colour-blindness; yellow left out: unreadable on white),
# then dash patterns, so lines stay distinct beyond the palette and in black-and-white print.
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
_DASHES = ("", "7 4", "2 3", "9 3 2 3")
# Text longer than this wraps in its cell; shorter values (times, names, ids) stay on one line.
_LONG_TEXT = 40


def write_html(report: Report, stream: TextIO) -> None:
    """One self-contained page: inline CSS, no scripts, nothing loaded from anywhere; every value escaped.

    Charts (one per `Series`) come first, then each table in a horizontally scrolling box, so a phone
    shows the page at a readable size; a print stylesheet lets the tables use the whole page.
    """
    esc = html.escape
    stream.write(
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{esc(report.title)}</title>\n<style>\n{_STYLE}\n</style>\n</head>\n<body>\n"
        f"<header>\n<h1>{esc(report.title)}</h1>\n"
    )
    if report.meta:
        stream.write('<dl class="meta">\n')
        for key, value in report.meta.items():
            stream.write(f"<dt>{esc(str(key))}</dt><dd>{esc(_meta_text(value))}</dd>\n")
        stream.write("</dl>\n")
    stream.write("</header>\n<main>\n")
    for number, series in enumerate(report.series, start=1):
        _write_chart(series, stream, f"chart{number}")
    for number, table in enumerate(report.tables, start=1):
        _write_html_table(table, stream, f"table{number}")
    stream.write("</main>\n<footer>Made by syncctl.</footer>\n</body>\n</html>\n")


def _write_html_table(table: Table, out: TextIO, ident: str) -> None:
    esc = html.escape
    numeric, rows = _peek_numeric(table)
    out.write(
        f'<section aria-labelledby="{ident}">\n<h2 id="{ident}">{esc(table.name)}</h2>\n'
        f'<div class="scroll" role="region" aria-labelledby="{ident}" tabindex="0">\n<table>\n<thead><tr>'
    )
    out.write(
        "".join(
            ('<th scope="col" class="num">' if n else '<th scope="col">') + f"{esc(c)}</th>"
            for c, n in zip(table.columns, numeric, strict=True)
        )
    )
    out.write("</tr></thead>\n<tbody>\n")
    count = 0
    width = len(table.columns)
    for row in rows:
        out.write("<tr>" + "".join([_html_cell(value) for value in row]) + "</tr>\n")
        count += 1
    if count == 0:
        out.write(f'<tr><td class="empty" colspan="{max(width, 1)}">No rows</td></tr>\n')
    out.write(
        f'</tbody>\n</table>\n</div>\n<p class="rows">{count:,} {"row" if count == 1 else "rows"}</p>\n'
    )
    out.write("</section>\n")


def _html_cell(value: Any) -> str:
    if _is_number(value):
        return f'<td class="num">{html.escape(_display(value))}</td>'
    text = html.escape(_display(value))
    return f'<td class="long">{text}</td>' if len(text) > _LONG_TEXT else f"<td>{text}</td>"


# ------------------------------------------------------------------------------------------------ charts

# Chart geometry in SVG user units; the SVG scales to the page width (at most 36rem). Text is sized so
# that a phone (about 360 CSS pixels for the chart, a scale of about 0.7) still shows it at 9 pixels.
_W, _H = 520.0, 300.0
_RIGHT, _TOP, _BOTTOM = 14.0, 14.0, 56.0
_Y_TITLE = 30.0  # room left of the tick labels for the rotated y axis title
_FONT = 14
_MAX_X_TICKS = 5
_MAX_MARKERS = 60


def _nice_step(span: float, target: int) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about `target` intervals over `span`."""
    raw = span / max(target, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _y_ticks(low: float, high: float) -> tuple[float, float, list[float]]:
    """The y range, widened to round ticks, and the ticks themselves."""
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    step = _nice_step(high - low, 5)
    first = math.floor(low / step) * step
    last = math.ceil(high / step) * step
    count = round((last - first) / step)
    return first, last, [first + i * step for i in range(count + 1)]


def _tick_text(value: float, step: float) -> str:
    """A tick label with as many decimals as the step needs (0.25 needs two, 0.5 one, 50 none)."""
    power = math.floor(math.log10(step))
    halves = 1 if math.isclose(step / 10.0**power, 2.5) else 0
    text = f"{value:,.{max(0, halves - power)}f}"
    return "0" if text.strip("-0.,") == "" else text


def _write_chart(series: Series, out: TextIO, ident: str) -> None:
    esc = html.escape
    labels = sorted({x for points in series.points.values() for x, _ in points})
    position = {label: i for i, label in enumerate(labels)}
    values = [y for points in series.points.values() for _, y in points if math.isfinite(y)]
    low, high, ticks = _y_ticks(min(values), max(values)) if values else (0.0, 1.0, [0.0, 0.5, 1.0])
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    tick_texts = [_tick_text(tick, step) for tick in ticks]
    left = _Y_TITLE + 0.6 * _FONT * max(len(text) for text in tick_texts) + 10
    plot_w = _W - left - _RIGHT
    plot_h = _H - _TOP - _BOTTOM

    def x_at(i: int) -> float:
        return left + (plot_w / 2 if len(labels) == 1 else plot_w * i / (len(labels) - 1))

    def y_at(v: float) -> float:
        return _TOP + plot_h * (high - v) / (high - low)

    description = (
        f"{len(series.points)} {'line' if len(series.points) == 1 else 'lines'} over {len(labels)} points"
        + (f", from {labels[0]} to {labels[-1]}" if labels else "")
        + (f"; values from {_display(min(values))} to {_display(max(values))}" if values else "; no values")
    )
    out.write(
        f'<figure class="chart">\n<figcaption id="{ident}">{esc(series.title)}</figcaption>\n'
        f'<svg viewBox="0 0 {_W:g} {_H:g}" role="img" aria-labelledby="{ident}-t {ident}-d"'
        f' aria-label="{esc(series.title)}" font-family="system-ui, sans-serif" font-size="{_FONT}">\n'
        f'<title id="{ident}-t">{esc(series.title)}</title>\n<desc id="{ident}-d">{esc(description)}</desc>\n'
    )
    # Grid and y axis labels.
    for tick, tick_text in zip(ticks, tick_texts, strict=True):
        y = y_at(tick)
        strong = abs(tick) < step * 1e-9 and low < 0 < high
        out.write(
            f'<line x1="{left:g}" x2="{_W - _RIGHT:g}" y1="{y:.1f}" y2="{y:.1f}"'
            f' stroke="{"#57606a" if strong else "#d0d7de"}" stroke-width="{1.2 if strong else 1}"/>'
            f'<text x="{left - 6:g}" y="{y:.1f}" text-anchor="end" dominant-baseline="middle"'
            f' fill="#57606a">{tick_text}</text>\n'
        )
    # X axis line, ticks and labels: a few labels spread evenly, first and last included.
    bottom = _TOP + plot_h
    out.write(
        f'<line x1="{left:g}" x2="{_W - _RIGHT:g}" y1="{bottom:g}" y2="{bottom:g}" stroke="#57606a"/>\n'
    )
    if labels:
        # Room for each label: the first is anchored at its start and the last at its end, so a
        # neighbour of either needs one and a half label widths (a character is about 0.6 em wide).
        label_width = 0.6 * _FONT * max(len(label) for label in labels)
        room = max(1, int(plot_w // (1.5 * label_width + 10)))
        count = min(len(labels), _MAX_X_TICKS, room + 1)
        picks = sorted({round(i * (len(labels) - 1) / max(count - 1, 1)) for i in range(count)})
        for n, i in enumerate(picks):
            x = x_at(i)
            anchor = (
                "middle"
                if len(picks) == 1
                else "start"
                if n == 0
                else "end"
                if n == len(picks) - 1
                else "middle"
            )
            out.write(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom:g}" y2="{bottom + 5:g}" stroke="#57606a"/>'
                f'<text x="{x:.1f}" y="{bottom + 19:g}" text-anchor="{anchor}" fill="#57606a">'
                f"{esc(labels[i])}</text>\n"
            )
    # Axis titles.
    out.write(
        f'<text x="{left + plot_w / 2:g}" y="{_H - 8:g}" text-anchor="middle" fill="#1b1f24">'
        f"{esc(series.x_label)}</text>\n"
        f'<text transform="translate({_Y_TITLE / 2:g} {_TOP + plot_h / 2:g}) rotate(-90)"'
        f' text-anchor="middle" dominant-baseline="middle" fill="#1b1f24">{esc(series.y_label)}</text>\n'
    )
    # One path per line: a gap (missing x or a non-finite y) starts a new segment.
    for number, (name, points) in enumerate(series.points.items()):
        colour, dash = _line_style(number)
        by_x = {position[x]: y for x, y in points}
        commands: list[str] = []
        lonely: list[tuple[float, float]] = []
        run: list[tuple[float, float]] = []
        for i in range(len(labels)):
            value = by_x.get(i)
            if value is not None and math.isfinite(value):
                run.append((x_at(i), y_at(value)))
                continue
            _flush_run(run, commands, lonely)
            run = []
        _flush_run(run, commands, lonely)
        markers = [(x_at(i), y_at(y)) for i, y in sorted(by_x.items()) if math.isfinite(y)]
        out.write(f'<g aria-label="{esc(name)}">')
        if commands:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            out.write(
                f'<path d="{" ".join(commands)}" fill="none" stroke="{colour}" stroke-width="2"'
                f' stroke-linejoin="round" stroke-linecap="round"{dash_attr}/>'
            )
        dots = markers if len(markers) <= _MAX_MARKERS else lonely
        for x, y in dots:
            out.write(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
        out.write("</g>\n")
    out.write('</svg>\n<ul class="legend">\n')
    for number, name in enumerate(series.points):
        colour, dash = _line_style(number)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.write(
            f'<li><svg width="28" height="10" viewBox="0 0 28 10" aria-hidden="true">'
            f'<line x1="1" y1="5" x2="27" y2="5" stroke="{colour}" stroke-width="2.5"{dash_attr}/></svg>'
            f"{esc(name)}</li>\n"
        )
    out.write("</ul>\n</figure>\n")


def _flush_run(
    run: list[tuple[float, float]], commands: list[str], lonely: list[tuple[float, float]]
) -> None:
    """Add a run of neighbouring points to the path; a run of one point is kept to be drawn as a dot."""
    if len(run) == 1:
        lonely.append(run[0])
    elif run:
        commands.append("M" + " L".join(f"{x:.1f} {y:.1f}" for x, y in run))


def _line_style(number: int) -> tuple[str, str]:
    return _COLOURS[number % len(_COLOURS)], _DASHES[(number // len(_COLOURS)) % len(_DASHES)]


# ------------------------------------------------------------------------------------------------- files


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def atomic_write(
    path: Path,
    write: Callable[[TextIO], object],
    *,
    newline: str | None = "",
    mode: int | None = None,
    label: str = "",
) -> None:
    """Write `path` so a reader only ever sees the old file or the whole new one.

    `write` fills a temporary file in the same folder (UTF-8; `newline=""` by default, so renderers
    choose their own line ends); it is flushed, fsynced and renamed over `path`, then the folder is
    fsynced. On any exception, `KeyboardInterrupt` included, the temporary file is removed and `path`
    is untouched. A new file gets mode 0o600 (reports may hold personal data); a replaced one keeps
    its mode, unless `mode` says otherwise. A symlink at `path` is replaced, not followed. An OS error
    becomes `OutputError`, naming the file as `label` (e.g. "the metrics file") and its path.
    """
    shown = f"{label} {path}" if label else str(path)
    if path.is_dir():
        raise OutputError(f"cannot write {shown}: it is a directory")
    folder = path.parent
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o600
        except OSError as error:
            raise OutputError(f"cannot write {shown}: {_reason(error)}") from None
    try:
        handle, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name[:60]}.", suffix=".tmp")
    except OSError as error:
        raise OutputError(f"cannot write {shown}: {_reason(error)}") from None
    try:
        # errors="replace": a lone surrogate in the data becomes '?' rather than failing the whole file.
        with open(handle, "w", encoding="utf-8", newline=newline, errors="replace") as stream:
            write(stream)
            stream.flush()
            if mode != 0o600:  # mkstemp made it 0o600; a replaced file keeps its own mode
                os.chmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except OSError as error:
        _remove(temp_name)
        raise OutputError(f"cannot write {shown}: {_reason(error)}") from None
    except BaseException:
        _remove(temp_name)
        raise
    _fsync_folder(folder)


def _remove(name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable. Best effort: some systems cannot open or fsync a folder."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _renderer(fmt: str, console_for: Callable[[TextIO], Console]) -> Callable[[Report, TextIO], None]:
    if fmt == "table":
        return lambda report, stream: print_table(report, console_for(stream))
    renderers: dict[str, Callable[[Report, TextIO], None]] = {
        "json": write_json,
        "jsonl": write_jsonl,
        "csv": write_csv,
        "html": write_html,
    }
    try:
        return renderers[fmt]
    except KeyError:
        raise UsageError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}") from None


def _file_console(stream: TextIO) -> Console:
    return Console(
        file=stream, width=FILE_TABLE_WIDTH, color_system=None, force_terminal=False, highlight=False
    )


def _check_shape(report: Report, fmt: str) -> None:
    """Refuse a report the format cannot hold before any file is opened."""
    if fmt in ("csv", "jsonl"):
        _single_table(report, fmt)


def write_report(
    report: Report, fmt: str, *, out: Path | None, stream: TextIO, console: Console | None = None
) -> None:
    """Render `report` as `fmt` to the file `out` (atomically) or, without `out`, to `stream`.

    `table` goes to `console` (or a console on `stream`); into a file it is plain text, no colour.
    """
    _check_shape(report, fmt)
    if out is None:
        render = _renderer(fmt, lambda s: console if console is not None else Console(file=s))
        render(report, stream)
        return
    render = _renderer(fmt, _file_console)
    atomic_write(out, lambda s: render(report, s))


def split_tables(report: Report) -> list[tuple[str, Report]]:
    """One single-table report per table, keyed by table name: for `--out-dir` with csv or jsonl."""
    return [
        (table.name, Report(title=f"{report.title}: {table.name}", tables=[table], meta=report.meta))
        for table in report.tables
    ]


def period_file_name(prefix: str, group: str, period: Period, fmt: str) -> str:
    """`{prefix}_{group}_{start}_{end}.{ext}`, e.g. `case_report_Jens_Hansen_20250401T000000Z_...json`."""
    start, end = period.file_stamps()
    return f"{prefix}_{safe_name_part(group)}_{start}_{end}.{FILE_EXTENSIONS[fmt]}"


def prepare_out_dir(out_dir: Path) -> None:
    """Make sure `out_dir` is a folder we can write, creating it (and its parents) when missing.

    A new folder gets mode 0o700. Writability is tested by creating and removing a temporary file,
    the only test that holds for read-only mounts and for root alike.
    """
    try:
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"cannot write to --out-dir {out_dir}: it exists and is not a directory") from None
    except OSError as error:
        raise OutputError(f"cannot write to --out-dir {out_dir}: {_reason(error)}") from None
    try:
        handle, probe = tempfile.mkstemp(dir=out_dir, prefix=".syncctl-probe.", suffix=".tmp")
    except OSError as error:
        raise OutputError(f"cannot write to --out-dir {out_dir}: {_reason(error)}") from None
    os.close(handle)
    _remove(probe)


def write_group_files(
    groups: Iterable[tuple[str, Report]], fmt: str, out_dir: Path, name_for: Callable[[str], str]
) -> list[Path]:
    """Write one file per group into `out_dir` (created if missing), each atomically; return the paths.

    Everything that can be checked is checked before the first file is written: the format, each
    report's shape for it, the folder (exists or can be made, and is writable), and the file names
    (plain names, and no two groups on the same name: `safe_name_part` can map different groups to
    one name, and one group's file must never replace another's). The groups are listed first for
    that, so they should be few; their rows may still be lazy, but each group's rows must not depend
    on another's being read first. If a write fails midway (disk full, a query error), the files
    already written stay, each complete; the failing one leaves nothing behind.
    """
    listed = list(groups)
    renderer = _renderer(fmt, _file_console)
    names: dict[str, str] = {}
    for group, report in listed:
        _check_shape(report, fmt)
        name = name_for(group)
        if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise ValueError(f"name_for({group!r}) gave {name!r}, which is not a plain file name")
        if name in names:
            raise UsageError(
                f"groups {one_line(names[name], 60)!r} and {one_line(group, 60)!r} would both be written to"
                f" {name}; their names differ only in characters a file name cannot keep"
            )
        names[name] = group
    prepare_out_dir(out_dir)
    written: list[Path] = []
    for (_, report), name in zip(listed, names, strict=True):
        path = out_dir / name
        atomic_write(path, partial(renderer, report))
        written.append(path)
    return written
