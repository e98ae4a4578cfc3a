"""The command line: the root, the commands every source shares, and each source's own command group.

Commands parse options, build settings/remote/database with `cli.common`, call one core or connector
function, and render. No SQL, no HTTP.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from syncctl import __version__, render
from syncctl.cli import help_text
from syncctl.cli.common import (
    REDACTOR,
    Context,
    StopSignals,
    as_syncctl_error,
    fail,
    opened,
    options,
    reported_errors,
)
from syncctl.cli.report import core_reports
from syncctl.core import preview
from syncctl.core import status as core_status
from syncctl.core.engine import SyncOptions, SyncResult, run_source
from syncctl.core.errors import EXIT_FAILURE, EXIT_SIGINT, EXIT_USAGE, SyncctlError, UsageError
from syncctl.core.lock import hold_lock
from syncctl.core.merge import Policy
from syncctl.core.mirror import MirrorTable
from syncctl.core.settings import keep_deleted_sources
from syncctl.ops import health as ops_health
from syncctl.ops import logs, metrics, sentry
from syncctl.ops.durations import parse_duration
from syncctl.ops.schedule import Waiter, run_every
from syncctl.sources import command_groups, report_commands, top_commands

app = typer.Typer(
    name="syncctl",
    help="Mirror remote systems (Intempus, grid, Sierra, task events, work orders) into one SQLite file"
    " and push local changes back. Made for cron.",
    epilog=help_text.exit_codes(),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
for name, group, aliases in command_groups():
    app.add_typer(group, name=name)
    for alias, sub_group in aliases.items():
        app.add_typer(sub_group, name=alias)
for name, command in top_commands():
    app.command(name)(command)
report_app = typer.Typer(
    help="Reports from the mirror: tables, JSON, CSV, HTML and per-group files.", no_args_is_help=True
)
for name, command in [*core_reports(), *report_commands()]:
    report_app.command(name)(command)
app.add_typer(report_app, name="report")
help_text.plain_help(app)

log = logging.getLogger("syncctl")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"syncctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    env_file: Annotated[
        Path | None, typer.Option("--env-file", help="Read settings from this file instead of ./.env.")
    ] = None,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More detail on stderr.")] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors on stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    log_format: Annotated[
        str, typer.Option("--log-format", help="text, or json: one JSON object per line.")
    ] = "text",
    log_file: Annotated[
        Path | None, typer.Option("--log-file", help="Append log lines to this file instead of stderr.")
    ] = None,
) -> None:
    """syncctl: a batch synchronizer between remote systems and one SQLite file."""
    if verbose and quiet:
        raise fail(UsageError("-v/--verbose and -q/--quiet cannot be used together"))
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    try:
        logs.configure(level=level, fmt=log_format, log_file=log_file, redactor=REDACTOR)
    except SyncctlError as exc:
        raise fail(exc) from None
    if verbose >= 2:
        logging.getLogger().setLevel(logging.DEBUG)
    ctx.obj = Context(env_file=env_file, verbosity=verbose, quiet=quiet)


# -- sync ----------------------------------------------------------------------------------------------


@app.command(epilog=help_text.settings_epilog())
def sync(
    ctx: typer.Context,
    sources: Annotated[
        list[str] | None, typer.Argument(help="Sources to sync (default: every configured one).")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="List everything and delete what is gone remotely.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per source (JSON Lines).")
    ] = False,
    pull_only: Annotated[bool, typer.Option("--pull-only", help="Do not push local changes.")] = False,
    on_conflict: Annotated[
        Policy, typer.Option("--on-conflict", help="Who wins a field changed on both sides.")
    ] = Policy.REMOTE,
    allow_mass_delete: Annotated[
        bool,
        typer.Option(
            "--allow-mass-delete",
            help="Override the mass-delete guards (records gone remotely, records deleted locally).",
        ),
    ] = False,
    wait_lock: Annotated[
        str | None,
        typer.Option(
            "--wait-lock", metavar="DURATION", help="Wait up to this long (30s, 5m) for a run in progress."
        ),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(
            "--every", metavar="DURATION", help="Keep running: a sync every DURATION until SIGTERM."
        ),
    ] = None,
    max_runs: Annotated[
        int | None, typer.Option("--max-runs", min=1, help="With --every: stop after this many runs.")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show what a run would pull and push (ids with -v or --json); change nothing."
        ),
    ] = False,
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics-file",
            envvar="SYNCCTL_METRICS_FILE",
            help="Write Prometheus metrics here after each run (node_exporter textfile collector).",
        ),
    ] = None,
    metrics_label: Annotated[
        list[str] | None,
        typer.Option(
            "--metrics-label",
            metavar="NAME=VALUE",
            help="A label on every metric, e.g. tenant=acme (repeatable; or SYNCCTL_METRICS_LABELS=a=b,c=d).",
        ),
    ] = None,
) -> None:
    """Push local changes, then pull remote ones, per source (incremental unless --full or a first run)."""
    opts = options(ctx)
    with reported_errors(), _json_errors(as_json):
        chosen = opts.chosen(sources)
        configs = [(connector, opts.load(connector)) for connector in chosen]
        keep = keep_deleted_sources(opts.values, opts.sources.names())
        wait_s = parse_duration(wait_lock, option="--wait-lock") if wait_lock else 0.0
        interval = parse_duration(every, option="--every") if every else None
        if interval is not None and interval < 1:
            raise UsageError("--every must be at least 1s")
        if max_runs is not None and interval is None:
            raise UsageError("--max-runs goes with --every")
        if dry_run and interval is not None:
            raise UsageError("--dry-run and --every cannot be used together")
    sync_options = SyncOptions(
        full=full,
        push=not pull_only,
        policy=on_conflict,
        allow_mass_delete=allow_mass_delete,
        max_delete_fraction=_delete_fraction(configs),
    )
    if dry_run:
        raise typer.Exit(_dry_run(ctx, configs, sync_options, as_json=as_json))
    waiter = Waiter()
    stop = StopSignals(waiter)
    reporter = sentry.setup(opts.values, REDACTOR.scrub)  # once: an --every loop reuses it

    def once() -> int:
        code = _sync_once(
            ctx,
            configs,
            sync_options,
            stop=stop,
            as_json=as_json,
            wait_s=wait_s,
            keep=keep,
            reporter=reporter,
        )
        if metrics_file is not None:
            # Every configured source's series, not only this run's: the collector replaces the whole file.
            with reported_errors(opts.db_path), opened(ctx, read_only=True) as db:
                reports = metrics.collect(db, opts.configured())
                metrics.write(metrics_file, metrics.render(reports, labels=labels))
        return code

    with reported_errors():
        labels = metrics.parse_labels(metrics_label or [], opts.values.get("SYNCCTL_METRICS_LABELS", ""))
    with stop.installed():
        code = once() if interval is None else run_every(interval, once, waiter=waiter, max_runs=max_runs)
    if stop.signum is not None and interval is not None:
        if code != stop.exit_code():  # no run was cut short (and said so): the signal ended the waiting
            sys.stderr.write(f"syncctl: stopped by {stop.signal_name()} while waiting for the next run\n")
        code = stop.exit_code()
    if code:
        raise typer.Exit(code)


def _dry_run(
    ctx: typer.Context, configs: list[tuple[Any, Any]], sync_options: SyncOptions, *, as_json: bool
) -> int:
    """Preview each source on a copy of the file; the exit code is the first non-zero one."""
    opts = options(ctx)
    code = 0
    with reported_errors(opts.db_path):
        db = opts.open_db(read_only=True) if opts.db_path.exists() else None
        try:
            for connector, config in configs:
                report = preview.preview_source(
                    db,
                    connector,
                    config,
                    sync_options,
                    details=as_json or opts.verbosity > 0,
                    scrub=REDACTOR.scrub,
                )
                if as_json:
                    render.print_json(report)
                else:
                    typer.echo(REDACTOR.scrub(preview.summary_line(report)))
                    if opts.verbosity > 0:
                        typer.echo(render.json_line({k: report.get(k) for k in ("pull", "push")}))
                if report.get("status") == "failed":
                    code = code or EXIT_FAILURE
        finally:
            if db is not None:
                db.close()
    return code


@contextmanager
def _json_errors(as_json: bool) -> Iterator[None]:
    """Under --json a refused start (exit 2 or 3) still prints one object, so scripts always get JSON."""
    try:
        yield
    except SyncctlError as exc:
        if as_json:
            render.print_json(
                {
                    "status": "failed",
                    "error": REDACTOR.scrub(str(exc)),
                    "exit_code": exc.exit_code,
                    "run_id": None,
                }
            )
        raise


def _sync_once(
    ctx: typer.Context,
    configs: list[tuple[Any, Any]],
    sync_options: SyncOptions,
    *,
    stop: StopSignals,
    as_json: bool,
    wait_s: float,
    keep: set[str],
    reporter: sentry.Reporter | None,
) -> int:
    """One sync of each chosen source; the exit code is the first non-zero one in source order."""
    opts = options(ctx)
    console = Console(stderr=False)
    exit_code = 0
    with reported_errors(opts.db_path), opened(ctx, read_only=False) as db:
        for connector, config in configs:
            source_options = replace(sync_options, keep_deleted=connector.name in keep)
            result = SyncResult(mode="full" if sync_options.full else "incremental", source=connector.name)
            logs.CONTEXT.source = connector.name
            try:
                with (
                    hold_lock(opts.db_path, connector.name, wait_s=wait_s),
                    render.progress_reporter(console, enabled=not (as_json or opts.quiet)) as report,
                ):
                    result = run_source(
                        db,
                        connector,
                        config,
                        source_options,
                        progress=report,
                        check_stop=stop.check,
                        scrub=REDACTOR.scrub,
                    )
            except SyncctlError as exc:  # the lock is held, or the file is unusable: this run changed nothing
                result.status = "failed"
                result.error = exc
            finally:
                logs.CONTEXT.source = None
            code = _report_result(result, as_json=as_json, quiet=opts.quiet, console=console)
            if result.error is not None and reporter is not None:
                reporter.report(
                    str(result.error), source=result.source, run_id=result.run_id, status=result.status
                )
            exit_code = exit_code or code
            if result.status == "interrupted":
                break
    return exit_code


def _delete_fraction(configs: list[tuple[Any, Any]]) -> float:
    fractions = [getattr(config, "max_delete_fraction", None) for _, config in configs]
    known = [f for f in fractions if isinstance(f, float | int)]
    return float(known[0]) if known else 0.2


def _report_result(result: SyncResult, *, as_json: bool, quiet: bool, console: Console) -> int:
    if as_json:
        data = result.to_json()
        if result.error is not None:
            data["exit_code"] = result.error.exit_code
        render.print_json(data)
    elif not quiet and result.run_id is not None:
        if console.is_terminal:
            console.print(render.sync_table(result))
        else:
            typer.echo(render.sync_summary(result))
    if result.push_failed:
        log.error(
            "%s: %d local change(s) could not be pushed; they stay pending and are retried next run"
            " (see `syncctl status`)",
            result.source,
            result.push_failed,
        )
    rejected = result.extra.get("rejected_files")
    if rejected:
        log.error("%s: %d file(s) were rejected (see `syncctl status`)", result.source, rejected)
    if result.new_columns:
        log.info("%s: new remote field(s) became columns: %s", result.source, ", ".join(result.new_columns))
    log.info(
        "%s: sync %s (%s)",
        result.source,
        result.status,
        result.mode,
        extra={
            "event": "run_finished",
            "source": result.source,
            "run_id": result.run_id,
            "counts": result.counts(),
        },
    )
    if result.error is None:
        return 0
    # The one-line error a person reads stays on stderr; a log file or JSON log gets the record as well.
    sys.stderr.write(f"syncctl: error: {REDACTOR.scrub(str(result.error))}\n")
    if logs.STATE.separate:
        log.error(
            "%s",
            result.error,
            extra={"event": "run_failed", "source": result.source, "run_id": result.run_id},
        )
    return result.error.exit_code


# -- reading the file ------------------------------------------------------------------------------------


@app.command()
def sources(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the sources: configured or not (and what is missing), their tables, and their last run."""
    opts = options(ctx)
    with reported_errors(opts.db_path):
        db = opts.open_db(read_only=True) if opts.db_path.exists() else None
        try:
            listing = core_status.sources_report(db, opts.sources, opts.missing)
        finally:
            if db is not None:
                db.close()
    if as_json:
        render.print_json(listing)
        return
    for item in listing:
        state = (
            "configured" if item["configured"] else f"not configured (missing {', '.join(item['missing'])})"
        )
        last = item["last_run"]
        ran = f"last run {last['status']} at {last['finished_at']}" if last else "never run"
        typer.echo(f"{item['name']}: {state}; tables {', '.join(item['tables'])}; {ran}")


@app.command()
def status(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Argument(help="One source (default: every configured one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many runs to show.")] = 10,
) -> None:
    """Show each source's tables, cursor, pending local changes and last runs (never writes)."""
    opts = options(ctx)
    with reported_errors(opts.db_path):
        chosen = [opts.connector(source)] if source else (opts.configured() or opts.sources.connectors[:1])
        with opened(ctx, read_only=True) as db:
            reports = {c.name: core_status.source_status(db, c, limit=limit) for c in chosen}
    if as_json:
        data: dict[str, Any] = dict(reports)
        if len(reports) == 1:
            data = {**next(iter(reports.values())), **reports}
        render.print_json(data)
        return
    console = Console()
    for report in reports.values():
        if console.is_terminal:
            for line in render.status_summary_lines(report):
                console.print(line, highlight=False, markup=False)
            console.print(render.status_table(report))
        else:
            typer.echo("\n".join(render.status_lines(report)))


@app.command()
def conflicts(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100000, help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the conflicts decided by policy, newest first (never writes)."""
    with reported_errors(options(ctx).db_path), opened(ctx, read_only=True) as db:
        found = core_status.conflicts(db, limit)
    if as_json:
        render.print_json(found)
    else:
        typer.echo("\n".join(render.conflict_lines(found)))


@app.command()
def discard(
    ctx: typer.Context,
    record_ids: Annotated[list[str] | None, typer.Argument(help="Ids whose local changes to undo.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Undo every local change not yet pushed.")] = False,
    source: Annotated[str, typer.Option("--source", help="The source whose changes to undo.")] = "intempus",
) -> None:
    """Undo local edits not yet pushed: the rows go back to their last synced version."""
    opts = options(ctx)
    with reported_errors(opts.db_path):
        if every == bool(record_ids):
            raise UsageError("name the ids whose local changes to undo, or give --all (not both)")
        connector = opts.connector(source)
        undone = 0
        with hold_lock(opts.db_path, connector.name), opened(ctx, read_only=False) as db:
            for spec in connector.tables:
                if not spec.capture:
                    continue
                table = MirrorTable.open(db, spec)
                keys = None if every else [_key(spec.key_type, raw) for raw in record_ids or []]
                undone += table.discard_pending(keys)
    if not opts.quiet:
        typer.echo(f"discarded {undone} local change(s); those rows hold their last synced version again")


def _key(key_type: str, raw: str) -> int | str:
    if key_type != "INTEGER":
        return raw
    if not raw.lstrip("-").isascii() or not raw.lstrip("-").isdigit() or abs(int(raw)) >= 2**63:
        raise UsageError(f"an id is a whole number, got {raw!r}")
    return int(raw)


@app.command()
def health(
    ctx: typer.Context,
    sources: Annotated[
        list[str] | None, typer.Argument(help="Sources to check (default: every configured one).")
    ] = None,
    max_age: Annotated[
        str, typer.Option("--max-age", metavar="DURATION", help="Oldest acceptable last successful sync.")
    ] = "2h",
    failures: Annotated[
        int, typer.Option("--failures", min=1, help="This many failed runs in a row are critical.")
    ] = 3,
    nagios: Annotated[
        bool, typer.Option("--nagios", help="Exit 0/1/2 for OK/WARNING/CRITICAL, with a status line.")
    ] = False,
) -> None:
    """Exit 0 when every source synced recently and nothing is stuck; otherwise one line per problem."""
    opts = options(ctx)
    with reported_errors(opts.db_path):
        max_age_s = parse_duration(max_age, option="--max-age")
        db = opts.open_db(read_only=True) if opts.db_path.exists() else None
        try:
            # A monitoring agent may not read the sources' secrets: without settings, check the sources
            # that have runs in the file.
            ran = core_status.sources_with_runs(db) if db is not None else []
            if sources or opts.configured() or not ran:
                chosen = opts.chosen(sources)
            else:
                chosen = [c for c in opts.sources.connectors if c.name in ran]
            now = ops_health.now_utc()
            problems = [
                p
                for c in chosen
                for p in ops_health.check_source(db, c, max_age_s=max_age_s, failures=failures, now=now)
            ]
        finally:
            if db is not None:
                db.close()
    worst = max((p.level for p in problems), default=ops_health.OK)
    names = ", ".join(c.name for c in chosen)
    if nagios:
        summary = f"SYNCCTL {ops_health.LEVELS[worst]} - " + (
            "; ".join(f"{p.source}: {p.text}" for p in problems) if problems else f"{names} healthy"
        )
        typer.echo(summary)
        raise typer.Exit(worst)
    for problem in problems:
        typer.echo(problem.line())
    if not problems and not opts.quiet:
        typer.echo(f"OK: {names} healthy")
    if problems:
        raise typer.Exit(1)


@app.command()
def cursor(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="The source whose cursor to show or move.")],
    table: Annotated[
        str | None, typer.Option("--table", help="The table (default: each of the source's).")
    ] = None,
    set_to: Annotated[
        str | None, typer.Option("--set", metavar="VALUE", help="Move the cursor here (a version or a time).")
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Forget the cursor: the next sync lists everything.")
    ] = False,
) -> None:
    """Show the cursors of a source, or move one on purpose (recorded in the run log)."""
    opts = options(ctx)
    with reported_errors(opts.db_path):
        connector = opts.connector(source)
        tables = [s.name for s in connector.tables if s.cursor_field and (table is None or s.name == table)]
        if table is not None and not tables:
            raise UsageError(f"{source} has no table {table!r} with a cursor")
        if set_to is not None and reset:
            raise UsageError("give --set VALUE or --reset, not both")
        if set_to is None and not reset:
            with opened(ctx, read_only=True) as db:
                for name, current in core_status.cursors(db, connector.name, tables).items():
                    typer.echo(f"{connector.name} {name}: {current if current is not None else '(none)'}")
            return
        if len(tables) != 1:
            raise UsageError(f"name the table to move with --table ({', '.join(tables)})")
        spec = next(s for s in connector.tables if s.name == tables[0])
        kind = spec.known.get(spec.cursor_field or "", "int")
        value: int | str | None = None if reset else _cursor_value(set_to or "", kind)
        with hold_lock(opts.db_path, connector.name), opened(ctx, read_only=False) as db:
            before = core_status.move_cursor(db, connector.name, tables[0], value)
    if not opts.quiet:
        typer.echo(
            f"{connector.name} {tables[0]}: cursor {before} -> {value if value is not None else '(none)'}"
        )


def _cursor_value(text: str, kind: str) -> int | str:
    """A cursor of the table's kind: a whole number for versions, an ISO 8601 time for timestamps."""
    stripped = text.strip()
    if kind == "int":
        if stripped.isascii() and stripped.isdigit() and int(stripped) < 2**63:
            return int(stripped)
        raise UsageError(f"--set takes a version number for this table, got {text!r}")
    try:
        datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--set takes an ISO 8601 time for this table, got {text!r}") from None
    return stripped


@app.command("datasette-metadata")
def datasette_metadata(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Print Datasette metadata for the file: syncctl's own tables hidden (`datasette DB -m FILE`)."""
    with reported_errors(options(ctx).db_path), opened(ctx, read_only=True) as db:
        text = render.json_line(core_status.datasette_metadata(db))
    if out is None:
        typer.echo(text)
        return
    try:
        out.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise fail(UsageError(f"cannot write {out}: {exc.strerror}")) from None


# -- the demo --------------------------------------------------------------------------------------------


@app.command()
def demo(
    cases: Annotated[
        int, typer.Option("--cases", min=10, max=1_000_000, help="How many cases the fake starts with.")
    ] = 5000,
) -> None:
    """Show the whole flow against the bundled fakes, in a temporary folder."""
    from syncctl.demo import run_demo

    with reported_errors():
        run_demo(Console(), cases=cases)


def main() -> None:
    """Entry point: every error is one line on stderr; anything unknown is a bug, shown without secrets."""
    StopSignals.exit_after_run = True
    try:
        code = app(standalone_mode=False, prog_name="syncctl")
    except KeyboardInterrupt:
        sys.stderr.write("syncctl: interrupted\n")
        sys.exit(EXIT_SIGINT)
    except Exception as exc:
        known = as_syncctl_error(exc)
        if known is not None:
            sys.stderr.write(f"syncctl: error: {REDACTOR.scrub(str(known))}\n")
            sys.exit(known.exit_code)
        context = getattr(exc, "ctx", None)
        if isinstance(exc, help_text.NoArgsIsHelpError) and context is not None:
            sys.stderr.write(context.get_help() + "\n")
            sys.exit(EXIT_USAGE)
        if isinstance(exc, help_text.ClickException):
            where = f" (see `{context.command_path} --help`)" if context is not None else ""
            message = REDACTOR.scrub(exc.format_message())  # type: ignore[attr-defined]
            sys.stderr.write(f"syncctl: error: {message}{where}\n")
            sys.exit(int(exc.exit_code))  # type: ignore[attr-defined]
        if isinstance(exc, help_text.Abort):
            sys.stderr.write("syncctl: interrupted\n")
            sys.exit(EXIT_SIGINT)
        sys.stderr.write(
            f"syncctl: internal error: {REDACTOR.scrub(f'{exc.__class__.__name__}: {exc}')}"
            " (run with -vv for details; please report it)\n"
        )
        if logging.getLogger("syncctl").isEnabledFor(logging.DEBUG):
            sys.stderr.write(REDACTOR.scrub(traceback.format_exc()))
        sys.exit(EXIT_FAILURE)
    sys.exit(code if isinstance(code, int) else 0)
