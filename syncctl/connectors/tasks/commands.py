"""`syncctl tasks ingest [PATH ...]`, and `syncctl report tasks` (in `REPORTS`, mounted under `report`)."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from syncctl import render
from syncctl.cli.common import REDACTOR, StopSignals, fail, opened, options, reported_errors
from syncctl.connectors.tasks.connector import CONNECTOR
from syncctl.connectors.tasks.inbox import shown, spooled
from syncctl.connectors.tasks.report import TaskReports
from syncctl.core.engine import SyncOptions, SyncResult, run_source
from syncctl.core.errors import SyncctlError, UsageError
from syncctl.core.lock import hold_lock
from syncctl.ops import logs
from syncctl.ops.durations import parse_duration
from syncctl.reports.output import choose_format, write_group_files, write_report
from syncctl.reports.periods import Period

app = typer.Typer(help="Task events: ingest files of the to-do service's events.", no_args_is_help=True)
STDIN = "-"


def _targets(paths: list[str]) -> list[Path | None]:
    """The paths as given, checked before anything runs; None stands for standard input."""
    targets: list[Path | None] = []
    for text in paths:
        if text == STDIN:
            if None in targets:
                raise UsageError("standard input (-) can be read once")
            targets.append(None)
            continue
        path = Path(text).expanduser()
        if not path.exists():
            raise UsageError(f"{shown(path)} does not exist")
        targets.append(path)
    return targets


@app.command("ingest")
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files or folders of events (one event, a JSON array, or JSON Lines); - reads standard"
            " input. Default: the inbox (TASKS_INBOX_DIR).",
            metavar="PATH",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Leave the files where they are instead of moving them to processed/."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run's counts as one JSON object.")
    ] = False,
    wait_lock: Annotated[
        str | None,
        typer.Option(
            "--wait-lock", metavar="DURATION", help="Wait up to this long (30s, 5m) for a run in progress."
        ),
    ] = None,
) -> None:
    """Ingest task events now, as `syncctl sync tasks` does with the inbox; files then move to processed/
    (or rejected/) in the inbox. Exits 1 when an input was rejected."""
    opts = options(ctx)
    with reported_errors(opts.db_path):
        settings = opts.load(CONNECTOR)
        targets = _targets(paths or [])
        wait_s = parse_duration(wait_lock, option="--wait-lock") if wait_lock else 0.0
    stop = StopSignals()
    with reported_errors(opts.db_path), ExitStack() as stack:
        config = replace(settings, keep=keep)
        if targets:
            spool = None
            if None in targets:
                spool = stack.enter_context(spooled(typer.get_binary_stream("stdin"), settings.inbox))
            chosen = tuple(spool if target is None else target for target in targets)
            config = replace(config, targets=tuple(p for p in chosen if p is not None), stdin_spool=spool)
        stack.enter_context(stop.installed())
        stack.enter_context(hold_lock(opts.db_path, CONNECTOR.name, wait_s=wait_s))
        db = stack.enter_context(opened(ctx, read_only=False))
        logs.CONTEXT.source = CONNECTOR.name  # log lines name the source, as in `sync`
        try:
            result = run_source(
                db, CONNECTOR, config, SyncOptions(), check_stop=stop.check, scrub=REDACTOR.scrub
            )
        finally:
            logs.CONTEXT.source = None
    _show(result, as_json=as_json, quiet=opts.quiet)
    if result.error is not None:
        raise fail(result.error)
    rejected = result.extra.get("rejected_files", 0)
    if rejected:
        raise fail(
            SyncctlError(f"{rejected} input(s) rejected; see the lines above and `syncctl status tasks`")
        )


def _show(result: SyncResult, *, as_json: bool, quiet: bool) -> None:
    if as_json:
        render.print_json(result.to_json())
        return
    if quiet or result.run_id is None:
        return
    extra = result.extra
    outcomes = ", ".join(f"{name} {count}" for name, count in extra.get("outcomes", {}).items())
    typer.echo(
        f"ingest {result.status}: {result.fetched} event(s) from {extra.get('files', 0)} file(s)"
        f" ({outcomes}); tasks inserted {result.inserted}, updated {result.updated};"
        f" rejected files {extra.get('rejected_files', 0)} in {result.duration_s:.1f}s"
    )


def report_tasks(
    ctx: typer.Context,
    start: Annotated[
        str, typer.Option("--start", metavar="TIME", help="Start of the period (ISO 8601; no offset = UTC).")
    ],
    end: Annotated[str, typer.Option("--end", metavar="TIME", help="End of the period, not included.")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="table, json, jsonl, csv or html (default: table on a terminal, json otherwise)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file (atomically) instead of standard output.")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out-dir",
            help="One file per user here, each written atomically: task_report_{userId}_{start}_{end}.",
        ),
    ] = None,
) -> None:
    """Per user: tasks created in the period and still open, tasks completed in it, and older tasks still
    open (deleted tasks are never open). Periods are half-open: [start, end)."""
    opts = options(ctx)
    written: list[Path] = []
    with reported_errors(opts.db_path):
        period = Period.parse(start, end)
        if out is not None and out_dir is not None:
            raise UsageError("give --out or --out-dir, not both")
        chosen = choose_format(fmt, is_terminal=out is None and out_dir is None and sys.stdout.isatty())
        with opened(ctx, read_only=True) as db:
            reports = TaskReports(db, period)
            if out_dir is not None:
                written = write_group_files(
                    reports.per_user(), chosen, out_dir, lambda user: reports.file_name(user, chosen)
                )
            else:
                write_report(reports.combined(), chosen, out=out, stream=sys.stdout)
    if out_dir is not None and not opts.quiet:
        typer.echo(f"wrote {len(written)} report file(s) to {shown(out_dir)}", err=True)


REPORTS = [("tasks", report_tasks)]
