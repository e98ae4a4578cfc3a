"""Report formats, renderers and atomic files: exact outputs, streaming, failure without half files."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import stat
import subprocess
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO, cast

import pytest
from rich.console import Console

from syncctl.core.errors import UsageError
from syncctl.reports.output import (
    OutputError,
    Report,
    Series,
    Table,
    atomic_write,
    choose_format,
    period_file_name,
    print_table,
    split_tables,
    write_csv,
    write_group_files,
    write_html,
    write_json,
    write_jsonl,
    write_report,
)
from syncctl.reports.periods import Period

AWKWARD = 'Søren "S", Ø'


def cases_table() -> Table:
    return Table(
        "cases",
        ["id", "name", "hours", "closed"],
        [(1, "Jens", 1.5, None), (2, AWKWARD, float("nan"), True)],
    )


def render(writer: Callable[[Report, TextIO], None], report: Report) -> str:
    stream = io.StringIO(newline="")
    writer(report, stream)
    return stream.getvalue()


class NullStream(io.TextIOBase):
    """Counts what is written and keeps none of it."""

    def __init__(self) -> None:
        self.chars = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)


def temp_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("requested", "is_terminal", "expected"),
    [
        (None, True, "table"),
        (None, False, "json"),
        ("json", True, "json"),
        ("table", False, "table"),
        ("CSV", False, "csv"),
        (" jsonl ", False, "jsonl"),
        ("html", True, "html"),
    ],
)
def test_choose_format_defaults_to_table_on_a_terminal_and_json_otherwise(
    requested: str | None, is_terminal: bool, expected: str
) -> None:
    assert choose_format(requested, is_terminal=is_terminal) == expected


def test_choose_format_refuses_an_unknown_format_listing_the_known_ones() -> None:
    with pytest.raises(UsageError) as caught:
        choose_format("xml", is_terminal=False)

    assert str(caught.value) == "unknown --format 'xml'; expected one of table, json, jsonl, csv, html"
    assert caught.value.exit_code == 2


# ---------------------------------------------------------------------------------------------- json


def test_write_json_single_table_is_an_array_of_row_objects_one_per_line() -> None:
    output = render(write_json, Report("Cases", [cases_table()], meta={"by": "name"}))

    assert output == (
        "[\n"
        '  {"id": 1, "name": "Jens", "hours": 1.5, "closed": null},\n'
        '  {"id": 2, "name": "Søren \\"S\\", Ø", "hours": null, "closed": true}\n'
        "]\n"
    )


def test_write_json_several_tables_is_an_object_of_meta_then_tables() -> None:
    report = Report(
        "KPI",
        [cases_table(), Table("empty", ["a"], [])],
        meta={"period": {"start": "2025-04-01T00:00:00+00:00", "end": "2025-05-01T00:00:00+00:00"}},
    )

    assert render(write_json, report) == (
        "{\n"
        '  "period": {"start": "2025-04-01T00:00:00+00:00", "end": "2025-05-01T00:00:00+00:00"},\n'
        '  "cases": [\n'
        '    {"id": 1, "name": "Jens", "hours": 1.5, "closed": null},\n'
        '    {"id": 2, "name": "Søren \\"S\\", Ø", "hours": null, "closed": true}\n'
        "  ],\n"
        '  "empty": []\n'
        "}\n"
    )


def test_write_json_empty_single_table_is_an_empty_array() -> None:
    assert render(write_json, Report("none", [Table("t", ["a"], iter([]))])) == "[]\n"


def test_write_json_document_defines_the_shape_and_streams_generators_and_tables() -> None:
    tasks = (task for task in [{"id": "t1", "content": "Call <Jens>", "createdOrCompletedAt": None}])
    document = [
        {
            "userId": "u1",
            "period": {"start": "s", "end": "e"},
            "newIncompleteTasks": tasks,
            "completedTasks": [],
            "rows": Table("rows", ["n"], [(1,), (2,)]),
        }
    ]

    output = render(write_json, Report("Tasks", [], document=document))

    assert output == (
        "[\n"
        "  {\n"
        '    "userId": "u1",\n'
        '    "period": {"start": "s", "end": "e"},\n'
        '    "newIncompleteTasks": [\n'
        '      {"id": "t1", "content": "Call <Jens>", "createdOrCompletedAt": null}\n'
        "    ],\n"
        '    "completedTasks": [],\n'
        '    "rows": [\n'
        '      {"n": 1},\n'
        '      {"n": 2}\n'
        "    ]\n"
        "  }\n"
        "]\n"
    )
    assert json.loads(output)[0]["rows"] == [{"n": 1}, {"n": 2}]


def reject_constant(name: str) -> None:
    raise AssertionError(f"invalid JSON constant {name}")


def test_write_json_never_emits_nan_or_infinity() -> None:
    nan, inf = float("nan"), float("inf")
    report = Report(
        "odd numbers",
        [Table("t", ["a", "b", "c", "d"], [(nan, inf, -inf, [1.0, nan, {"x": inf}])])],
        meta={"worst": nan},
    )
    document = Report("doc", [], document={"x": nan, "y": [inf], "z": iter([-inf])})

    rows = json.loads(render(write_json, report), parse_constant=reject_constant)
    doc = json.loads(render(write_json, document), parse_constant=reject_constant)
    lines = render(write_jsonl, report).splitlines()

    assert rows == [{"a": None, "b": None, "c": None, "d": [1.0, None, {"x": None}]}]
    assert doc == {"x": None, "y": [None], "z": [None]}
    assert [json.loads(line, parse_constant=reject_constant) for line in lines] == rows


def test_write_json_writes_times_bytes_and_decimals_as_json_values() -> None:
    table = Table(
        "t",
        ["at", "day", "blob", "amount", "bad"],
        [
            (
                datetime(2025, 4, 1, 8, 0, tzinfo=UTC),
                date(2025, 4, 1),
                b"\x00\xff",
                Decimal("1.5"),
                Decimal("NaN"),
            )
        ],
    )

    output = render(write_json, Report("t", [table]))

    assert json.loads(output, parse_constant=reject_constant) == [
        {
            "at": "2025-04-01T08:00:00+00:00",
            "day": "2025-04-01",
            "blob": "\\x00ff",
            "amount": 1.5,
            "bad": None,
        }
    ]


def test_write_jsonl_is_one_compact_object_per_row() -> None:
    assert render(write_jsonl, Report("Cases", [cases_table()])) == (
        '{"id": 1, "name": "Jens", "hours": 1.5, "closed": null}\n'
        '{"id": 2, "name": "Søren \\"S\\", Ø", "hours": null, "closed": true}\n'
    )


def test_table_refuses_duplicate_columns_and_rows_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="column 'a' appears twice"):
        Table("t", ["a", "a"], [])
    with pytest.raises(ValueError, match="a row has 1 values for 2 columns"):
        render(write_json, Report("t", [Table("t", ["a", "b"], [(1, 2), (1,)])]))


# ----------------------------------------------------------------------------------------------- csv


def test_write_csv_is_rfc_4180_with_crlf_and_minimal_quoting() -> None:
    assert render(write_csv, Report("Cases", [cases_table()])) == (
        'id,name,hours,closed\r\n1,Jens,1.5,\r\n2,"Søren ""S"", Ø",,true\r\n'
    )


def test_write_csv_round_trips_commas_quotes_newlines_and_unicode() -> None:
    values: list[Sequence[Any]] = [
        ("a,b", 'say "hi"', "line one\nline two", "crlf\r\ninside"),
        ("日本語 ✓", "emoji 🙂", " padded ", ""),
        ("=1+2", "-5", "'quoted'", "tab\there"),
    ]
    table = Table("t", ["w", "x", "y", "z"], values)

    text = render(write_csv, Report("t", [table]))

    assert list(csv.reader(io.StringIO(text, newline=""))) == [["w", "x", "y", "z"], *map(list, values)]


def test_write_csv_writes_none_and_non_finite_numbers_as_empty_and_containers_as_json() -> None:
    table = Table("t", ["n", "f", "b", "obj", "big"], [(None, float("inf"), False, {"k": [1, None]}, 10**20)])

    assert render(write_csv, Report("t", [table])) == (
        'n,f,b,obj,big\r\n,,false,"{""k"": [1, null]}",100000000000000000000\r\n'
    )


@pytest.mark.parametrize("writer", [write_csv, write_jsonl])
def test_row_formats_refuse_a_report_of_several_tables(writer: Callable[[Report, TextIO], None]) -> None:
    report = Report("KPI", [Table("one", ["a"], []), Table("two", ["b"], [])])

    with pytest.raises(UsageError, match=r"report 'KPI' has 2 \(one, two\): use --out-dir DIR"):
        render(writer, report)


def test_split_tables_gives_one_single_table_report_per_table() -> None:
    one, two = Table("one", ["a"], [(1,)]), Table("two", ["b"], [(2,)])

    split = split_tables(Report("KPI", [one, two], meta={"m": 1}))

    assert [(name, r.title, r.tables, r.meta) for name, r in split] == [
        ("one", "KPI: one", [one], {"m": 1}),
        ("two", "KPI: two", [two], {"m": 1}),
    ]


# ---------------------------------------------------------------------------------------------- html

SMALL_HTML_BODY = """<body>
<header>
<h1>Cases &lt;all&gt;</h1>
<dl class="meta">
<dt>period</dt><dd>start: 2025-04-01T00:00:00+00:00, end: 2025-05-01T00:00:00+00:00</dd>
</dl>
</header>
<main>
<section aria-labelledby="table1">
<h2 id="table1">cases</h2>
<div class="scroll" role="region" aria-labelledby="table1" tabindex="0">
<table>
<thead><tr><th scope="col" class="num">id</th><th scope="col">name</th><th scope="col" class="num">hours</th>\
<th scope="col">closed</th></tr></thead>
<tbody>
<tr><td class="num">1</td><td>Jens</td><td class="num">1.5</td><td></td></tr>
<tr><td class="num">2</td><td>Søren &quot;S&quot;, Ø</td><td class="num"></td><td>true</td></tr>
</tbody>
</table>
</div>
<p class="rows">2 rows</p>
</section>
</main>
<footer>Made by syncctl.</footer>
</body>
</html>
"""


def test_write_html_small_table_exact_body_and_self_contained_head() -> None:
    period = Period.parse("2025-04-01", "2025-05-01")

    page = render(write_html, Report("Cases <all>", [cases_table()], meta={"period": period.iso()}))

    head, body = page.split("<body>\n", 1)
    assert "<body>\n" + body == SMALL_HTML_BODY
    assert head.startswith('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n')
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in head
    assert "<title>Cases &lt;all&gt;</title>" in head
    assert "Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline';" in head
    assert "@media print" in head
    assert "@media (max-width: 40rem)" in head


def test_write_html_escapes_every_value_and_loads_nothing() -> None:
    evil = "<script>alert('x')</script>"
    report = Report(
        evil,
        [Table(evil, [evil], [(evil,), ('"><img src=x onerror=alert(1)>',)])],
        meta={evil: evil},
        series=[Series(evil, evil, evil, {evil: [(evil, 1.0)]})],
    )

    page = render(write_html, report)

    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    for outside in ("http:", "https:", "//", "url(", "@import", " src=", " href="):
        assert outside not in page.replace("&lt;img src=x", ""), outside


def test_write_html_marks_long_text_to_wrap_and_an_empty_table() -> None:
    long_text = "word " * 20
    page = render(write_html, Report("t", [Table("t", ["a"], [(long_text,)]), Table("e", ["x", "y"], [])]))

    assert f'<td class="long">{long_text}</td>' in page
    assert '<tr><td class="empty" colspan="2">No rows</td></tr>\n</tbody>' in page
    assert '<p class="rows">1 row</p>' in page
    assert '<p class="rows">0 rows</p>' in page


def chart_of(series: Series) -> str:
    page = render(write_html, Report("chart", [], series=[series]))
    return page[page.index('<figure class="chart">') : page.index("</figure>")]


def test_chart_is_an_accessible_inline_svg_with_axes_labels_and_legend() -> None:
    chart = chart_of(
        Series(
            "Daily averages",
            "day",
            "kV",
            {"voltage": [("2025-04-01", 1.0), ("2025-04-02", 3.0)], "current": [("2025-04-02", 2.0)]},
        )
    )

    assert '<figcaption id="chart1">Daily averages</figcaption>' in chart
    assert 'role="img" aria-labelledby="chart1-t chart1-d" aria-label="Daily averages"' in chart
    assert '<title id="chart1-t">Daily averages</title>' in chart
    assert "2 lines over 2 points, from 2025-04-01 to 2025-04-02; values from 1 to 3" in chart
    assert ">day</text>" in chart
    assert ">kV</text>" in chart
    assert ">2025-04-01</text>" in chart
    assert ">2025-04-02</text>" in chart
    assert chart.count("<path ") == 1  # current has one point: a dot, no line
    assert chart.count("<circle ") == 3
    assert '<ul class="legend">' in chart
    assert "</svg>voltage</li>" in chart
    assert "</svg>current</li>" in chart


def test_chart_of_one_point_draws_a_dot_in_the_middle() -> None:
    chart = chart_of(Series("One", "day", "n", {"cases": [("2025-04-01", 42.0)]}))

    assert "<path " not in chart
    assert chart.count("<circle ") == 1
    assert ">42</text>" in chart  # the range is widened around the single value
    assert "values from 42 to 42" in chart


def test_chart_of_thousands_of_points_is_one_path_without_dots_and_few_labels() -> None:
    days = [f"day {i:05d}" for i in range(5000)]
    chart = chart_of(
        Series("Many", "day", "MW", {"load": [(d, math.sin(i / 50)) for i, d in enumerate(days)]})
    )

    assert chart.count("<path ") == 1
    assert "<circle " not in chart
    assert chart.count(">day 0") <= 5
    assert ">day 00000</text>" in chart
    assert ">day 04999</text>" in chart


def test_chart_handles_negative_values_with_a_zero_line_and_gaps() -> None:
    chart = chart_of(
        Series(
            "Net",
            "day",
            "MWh",
            {"net": [("1", -5.0), ("2", float("nan")), ("3", 3.0), ("4", 4.0), ("5", -2.0)]},
        )
    )

    ticks = [">-6</text>", ">-4</text>", ">-2</text>", ">0</text>", ">2</text>", ">4</text>"]
    assert all(tick in chart for tick in ticks)
    assert 'stroke="#57606a" stroke-width="1.2"' in chart  # the zero line stands out
    path = chart[chart.index('<path d="') + 9 :]
    assert path[: path.index('"')].count("M") == 1  # 1 is alone before the NaN gap: a dot, then 3..5
    assert chart.count("<circle ") == 4


def test_chart_with_no_values_still_renders() -> None:
    chart = chart_of(Series("Nothing", "day", "n", {"empty": []}))

    assert "no values" in chart
    assert "<path " not in chart


# --------------------------------------------------------------------------------------------- table


def test_print_table_shows_plain_text_and_says_how_many_rows_were_left_out() -> None:
    out = io.StringIO()
    table = Table("t", ["a", "b"], ((i, f"[red]v{i}\x1b[2J") for i in range(5)))

    print_table(Report("Cases [bold]x[/bold]", [table]), Console(file=out, width=80), max_rows=2)

    lines = [line.rstrip() for line in out.getvalue().splitlines()]
    assert lines[0] == "Cases [bold]x[/bold]"
    assert "  0   [red]v0?[2J" in lines
    assert "  1   [red]v1?[2J" in lines
    assert "v2" not in out.getvalue()
    assert lines[-1] == "2 of 5 rows shown, 3 left out: use --format csv, json or html for all of them"
    assert "\x1b" not in out.getvalue()


def test_print_table_says_no_rows_for_an_empty_table() -> None:
    out = io.StringIO()

    print_table(Report("Empty", [Table("t", ["a"], [])], meta={"by": "x"}), Console(file=out, width=80))

    lines = [line.rstrip() for line in out.getvalue().splitlines()]
    assert lines[:2] == ["Empty", "by: x"]
    assert lines[-1] == "no rows"


# ----------------------------------------------------------------------------------------- streaming


def many_rows(count: int) -> Iterator[tuple[int, str, float, None]]:
    for i in range(count):
        yield (i, f"name {i}", i * 0.5, None)


def peak_bytes(writer: Callable[[Report, TextIO], None], rows: int) -> int:
    report = Report("big", [Table("big", ["id", "name", "value", "none"], many_rows(rows))])
    stream = NullStream()
    tracemalloc.start()
    try:
        writer(report, cast(TextIO, stream))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stream.chars > rows * 20
    return peak


@pytest.mark.parametrize("writer", [write_json, write_jsonl, write_csv, write_html])
def test_renderers_stream_rows_in_constant_memory(writer: Callable[[Report, TextIO], None]) -> None:
    # 20,000 rows held at once would take several MB; streamed, the peak stays far below that.
    assert peak_bytes(writer, 20_000) < 512 * 1024


@pytest.mark.slow
@pytest.mark.parametrize("writer", [write_json, write_jsonl, write_csv, write_html])
def test_renderers_write_a_million_rows_in_a_few_mb(writer: Callable[[Report, TextIO], None]) -> None:
    assert peak_bytes(writer, 1_000_000) < 2 * 1024 * 1024


# --------------------------------------------------------------------------------------------- files


def test_atomic_write_creates_a_private_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"

    atomic_write(target, lambda s: s.write("new\r\n"))

    assert target.read_bytes() == b"new\r\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert temp_leftovers(tmp_path) == []


def test_atomic_write_keeps_the_mode_of_a_file_it_replaces(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    target.chmod(0o644)

    atomic_write(target, lambda s: s.write("new"))

    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


@pytest.mark.parametrize("error", [RuntimeError("query failed"), KeyboardInterrupt()])
def test_atomic_write_failing_midway_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, error: BaseException
) -> None:
    target = tmp_path / "report.json"
    target.write_text("old report")

    def half_then_fail(stream: TextIO) -> None:
        stream.write("half of the new")
        stream.flush()
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, half_then_fail)

    assert target.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_atomic_write_failing_on_a_new_file_leaves_nothing(tmp_path: Path) -> None:
    def fail(stream: TextIO) -> None:
        stream.write("partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "new.csv", fail)

    assert list(tmp_path.iterdir()) == []


def test_atomic_write_into_a_missing_folder_is_one_clear_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "report.json"

    with pytest.raises(OutputError) as caught:
        atomic_write(target, lambda s: s.write("x"))

    assert str(caught.value) == f"cannot write {target}: No such file or directory"
    assert caught.value.exit_code == 2


def test_atomic_write_onto_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="it is a directory"):
        atomic_write(tmp_path, lambda s: s.write("x"))


def test_write_report_to_a_stream_or_a_file(tmp_path: Path) -> None:
    stream = io.StringIO()
    out = tmp_path / "cases.csv"

    write_report(Report("Cases", [cases_table()]), "jsonl", out=None, stream=stream)
    write_report(Report("Cases", [cases_table()]), "csv", out=out, stream=stream)

    assert stream.getvalue().count("\n") == 2
    assert out.read_bytes() == 'id,name,hours,closed\r\n1,Jens,1.5,\r\n2,"Søren ""S"", Ø",,true\r\n'.encode()


def test_write_report_as_table_into_a_file_is_plain_text(tmp_path: Path) -> None:
    out = tmp_path / "cases.txt"

    write_report(Report("Cases", [cases_table()]), "table", out=out, stream=io.StringIO())

    text = out.read_text()
    assert text.startswith("Cases\n")
    assert "Søren" in text
    assert "\x1b" not in text


def test_write_report_refuses_csv_of_several_tables_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "kpi.csv"

    with pytest.raises(UsageError, match="use --out-dir"):
        write_report(Report("KPI", [cases_table(), cases_table()]), "csv", out=out, stream=io.StringIO())

    assert list(tmp_path.iterdir()) == []


def per_user_reports() -> list[tuple[str, Report]]:
    return [
        ("Jens Hansen", Report("Jens", [Table("t", ["n"], [(1,)])])),
        ("../etc", Report("etc", [Table("t", ["n"], [(2,)])])),
    ]


def test_write_group_files_writes_one_file_per_group_into_a_created_folder(tmp_path: Path) -> None:
    out_dir = tmp_path / "reports" / "april"
    period = Period.parse("2025-04-01", "2025-05-01")

    written = write_group_files(
        per_user_reports(), "json", out_dir, lambda g: period_file_name("task_report", g, period, "json")
    )

    names = [
        "task_report_Jens_Hansen_20250401T000000Z_20250501T000000Z.json",
        "task_report_.._etc_20250401T000000Z_20250501T000000Z.json",
    ]
    assert written == [out_dir / name for name in names]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(names)
    assert json.loads(written[1].read_text()) == [{"n": 2}]
    assert stat.S_IMODE(written[0].stat().st_mode) == 0o600


def test_write_group_files_csv_of_a_multi_table_report_via_split_tables(tmp_path: Path) -> None:
    report = Report("KPI", [Table("by type", ["t", "n"], [("a", 1)]), Table("by day", ["d"], [("x",)])])

    written = write_group_files(split_tables(report), "csv", tmp_path, lambda name: f"kpi_{name}.csv")

    assert [p.read_bytes() for p in written] == [b"t,n\r\na,1\r\n", b"d\r\nx\r\n"]


@pytest.mark.parametrize("make_bad", ["file", "under_a_file"])
def test_write_group_files_refuses_an_out_dir_it_cannot_use_and_writes_nothing(
    tmp_path: Path, make_bad: str
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("I am a file")
    out_dir = blocker if make_bad == "file" else blocker / "sub"

    with pytest.raises(OutputError) as caught:
        write_group_files(per_user_reports(), "json", out_dir, lambda g: f"{g.replace('/', '_')}.json")

    message = str(caught.value)
    assert message.startswith(f"cannot write to --out-dir {out_dir}: ")
    assert "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
    assert blocker.read_text() == "I am a file"


def test_write_group_files_refuses_a_read_only_out_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder the OS will not let us write (root writes anywhere, so the OS's refusal is simulated)."""
    out_dir = tmp_path / "ro"
    out_dir.mkdir()
    real_mkstemp = tempfile.mkstemp

    def refused(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if Path(kwargs.get("dir") or "") == out_dir:
            raise PermissionError(13, "Permission denied")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(OutputError, match="Permission denied"):
        write_group_files(per_user_reports(), "json", out_dir, lambda g: f"{len(g)}.json")
    assert list(out_dir.iterdir()) == []


def test_write_group_files_refuses_two_groups_on_one_file_name_before_writing(tmp_path: Path) -> None:
    groups = [
        ("Søren", Report("a", [Table("t", ["n"], [(1,)])])),
        ("Sören", Report("b", [Table("t", ["n"], [(2,)])])),
    ]
    period = Period.parse("2025-04-01", "2025-05-01")

    with pytest.raises(UsageError) as caught:
        write_group_files(
            groups, "json", tmp_path, lambda g: period_file_name("case_report", g, period, "json")
        )

    assert str(caught.value) == (
        "groups 'Søren' and 'Sören' would both be written to"
        " case_report_S_ren_20250401T000000Z_20250501T000000Z.json;"
        " their names differ only in characters a file name cannot keep"
    )
    assert list(tmp_path.iterdir()) == []


def test_write_group_files_failing_midway_keeps_complete_files_and_no_partial_one(tmp_path: Path) -> None:
    def broken() -> Iterator[tuple[int]]:
        yield (1,)
        raise RuntimeError("database went away")

    groups = [
        ("a", Report("a", [Table("t", ["n"], [(1,)])])),
        ("b", Report("b", [Table("t", ["n"], broken())])),
        ("c", Report("c", [Table("t", ["n"], [(3,)])])),
    ]

    with pytest.raises(RuntimeError, match="database went away"):
        write_group_files(groups, "jsonl", tmp_path, lambda g: f"{g}.jsonl")

    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]
    assert (tmp_path / "a.jsonl").read_text() == '{"n": 1}\n'


def test_write_group_files_refuses_a_name_that_is_not_a_plain_file_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a plain file name"):
        write_group_files(per_user_reports(), "json", tmp_path, lambda g: g)

    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------- browser


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def browser_report() -> Report:
    days = [f"2025-04-{d:02d}" for d in range(1, 31)]
    return Report(
        "Cases by responsible, April 2025",
        [
            Table(
                "cases by responsible_name",
                ["responsible_name", "new_active", "closed", "old_active", "note"],
                [
                    ("Jens Hansen", 12, 3, 40, "ordinary"),
                    ("Søren Ørsted", 7, 0, 12, "a long note " * 8),
                    ("<script>alert(1)</script>", 1, 1, 0, "escaped"),
                ],
            )
        ],
        meta={"period": Period.parse("2025-04-01", "2025-05-01").iso()},
        series=[
            Series(
                "New cases per day",
                "day",
                "cases",
                {
                    "new": [(d, float(i % 7 - 2)) for i, d in enumerate(days)],
                    "closed": [(d, float(i % 5)) for i, d in enumerate(days)],
                },
            )
        ],
    )


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_html_report_renders_in_headless_chromium_on_a_phone_and_in_print(tmp_path: Path) -> None:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no headless Chromium installed (apt-get install chromium)")
    page = tmp_path / "report.html"
    write_report(browser_report(), "html", out=page, stream=io.StringIO())
    url = page.as_uri()
    phone, pdf = tmp_path / "phone.png", tmp_path / "report.pdf"

    shot = run_chromium(
        binary, tmp_path / "p1", "--hide-scrollbars", f"--screenshot={phone}", "--window-size=390,844", url
    )
    printed = run_chromium(binary, tmp_path / "p2", "--no-pdf-header-footer", f"--print-to-pdf={pdf}", url)
    dom = run_chromium(binary, tmp_path / "p3", "--dump-dom", url)

    assert shot.returncode == 0, shot.stderr[-2000:]
    assert printed.returncode == 0, printed.stderr[-2000:]
    assert dom.returncode == 0, dom.stderr[-2000:]
    # A blank or single-colour 390x844 PNG is about 3 kB; text, a table and a chart are far more.
    assert phone.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert phone.stat().st_size > 20_000
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 10_000
    rendered = dom.stdout
    assert "<svg" in rendered
    assert "New cases per day" in rendered
    assert "<td>Søren Ørsted</td>" in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert "<script>" not in rendered
