"""`syncctl report summary|changes|cases`: the reports every source shares. Source reports (`kpi`,
`tasks`) come from their connectors' command modules; all use `syncctl.reports` to render and write.

Each command checks what was typed (times, table, fields, format, where to write) before anything is
written, opens the file read-only, and hands a `Report` to the output module: to standard output, to
`--out FILE`, or (`cases`) one file per group into `--out-dir DIR`, every file written atomically.
The format is `--format`, else `table` when standard output is a terminal, else `json`; a file is no
terminal, so `--out` and `--out-dir` default to `json`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from syncctl.cli.common import opened, options, reported_errors
from syncctl.core.errors import UsageError
from syncctl.reports import output
from syncctl.reports.cases import DEFAULT_BY, FILE_PREFIX, cases_report, reading
from syncctl.reports.changes import changes_report
from syncctl.reports.periods import Period, parse_time
from syncctl.reports.summary import parse_where, summary_report

log = logging.getLogger("syncctl.reports")

Format = Annotated[
    str | None,
    typer.Option(
        "--format",
        metavar="FORMAT",
        help="table, json, jsonl, csv or html (default: table on a terminal, else json).",
    ),
]
Out = Annotated[
    Path | None, typer.Option("--out", metavar="FILE", help="Write to this file (atomically) instead.")
]


def _format(requested: str | None, *, to_file: bool) -> str:
    return output.choose_format(requested, is_terminal=not to_file and sys.stdout.isatty())


def summary_cmd(
    ctx: typer.Context,
    table: Annotated[
        str, typer.Argument(metavar="TABLE", help="A data table: cases, grid_components, sierra_items, ...")
    ],
    group_by: Annotated[
        str, typer.Option("--group-by", metavar="FIELD", help="The field whose values make the rows.")
    ],
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            metavar="FIELD=VALUE",
            help="Only rows whose FIELD has VALUE, as stored (repeat: one field matches any of its values,"
            " different fields all).",
        ),
    ] = None,
    sums: Annotated[
        list[str] | None, typer.Option("--sum", metavar="FIELD", help="Add a sum_FIELD column (exact).")
    ] = None,
    fmt: Format = None,
    out: Out = None,
) -> None:
    """Count the rows of a table per value of one field, with exact sums of others."""
    opts = options(ctx)
    with reported_errors(opts.db_path):
        chosen = _format(fmt, to_file=out is not None)
        conditions = parse_where(where or [])
        with opened(ctx, read_only=True) as db:
            report = summary_report(db, table, group_by, where=conditions, sums=sums or [])
            output.write_report(report, chosen, out=out, stream=sys.stdout)


def changes_cmd(
    ctx: typer.Context,
    source: Annotated[
        str | None, typer.Option("--source", metavar="SOURCE", help="Only this source's changes.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TIME", help="From this time on (ISO 8601; no offset = UTC)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="TIME", help="Before this time (not included).")
    ] = None,
    record_id: Annotated[
        str | None, typer.Option("--id", metavar="ID", help="Only the changes of the record with this key.")
    ] = None,
    fmt: Format = None,
    out: Out = None,
) -> None:
    """Every change syncctl applied, oldest first: when, which record, pull/push/cli, and what changed."""
    opts = options(ctx)
    with reported_errors(opts.db_path):
        chosen = _format(fmt, to_file=out is not None)
        if source is not None:
            source = opts.connector(source).name
        start = parse_time(since, name="--since") if since is not None else None
        end = parse_time(until, name="--until") if until is not None else None
        if since is not None and until is not None:
            Period.parse(since, until, start_name="--since", end_name="--until")  # until after since
        with opened(ctx, read_only=True) as db:
            report = changes_report(
                db,
                source=source,
                since=start,
                until=end,
                record_id=record_id,
                parse_changes=chosen in ("json", "jsonl"),
            )
            output.write_report(report, chosen, out=out, stream=sys.stdout)


def cases_cmd(
    ctx: typer.Context,
    start: Annotated[
        str, typer.Option("--start", metavar="TIME", help="Start of the period (ISO 8601; no offset = UTC).")
    ],
    end: Annotated[str, typer.Option("--end", metavar="TIME", help="End of the period, not included.")],
    by: Annotated[
        str, typer.Option("--by", metavar="FIELD", help="The field that makes the groups.")
    ] = DEFAULT_BY,
    fmt: Format = None,
    out: Out = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out-dir",
            metavar="DIR",
            help=f"Write one file per group here: {FILE_PREFIX}_GROUP_START_END.json (or .csv, ...).",
        ),
    ] = None,
) -> None:
    """Intempus cases per person over [start, end): new and still active, closed, old and still active."""
    opts = options(ctx)
    with reported_errors(opts.db_path):
        period = Period.parse(start, end)
        chosen = _format(fmt, to_file=out is not None or out_dir is not None)
        if out is not None and out_dir is not None:
            raise UsageError("give --out or --out-dir, not both")
        with opened(ctx, read_only=True) as db, reading(db):
            report = cases_report(db, period, by=by)
            if out_dir is None:
                output.write_report(report.report, chosen, out=out, stream=sys.stdout)
                return
            output.prepare_out_dir(out_dir)  # before the groups are listed: a bad folder fails at once
            written = output.write_group_files(
                report.groups(),
                chosen,
                out_dir,
                lambda group: output.period_file_name(FILE_PREFIX, group, period, chosen),
            )
            log.info("wrote %d case report file(s) to %s", len(written), out_dir)


def core_reports() -> list[tuple[str, Callable[..., None]]]:
    """The reports mounted under `syncctl report`, before those the sources bring."""
    return [("summary", summary_cmd), ("changes", changes_cmd), ("cases", cases_cmd)]
