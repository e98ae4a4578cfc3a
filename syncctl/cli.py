"""The command line: parse, build settings/client/store, call one core function, render. No SQL, no HTTP."""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console

from syncctl import __version__, engine, render
from syncctl.connectors.intempus import fields
from syncctl.connectors.intempus.client import IntempusClient
from syncctl.core.errors import (
    EXIT_FAILURE,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_USAGE,
    DatabaseError,
    InterruptedRun,
    SyncctlError,
    UsageError,
)
from syncctl.core.lock import hold_lock
from syncctl.core.merge import Policy
from syncctl.core.settings import Settings, load_settings
from syncctl.store import Store

app = typer.Typer(
    name="syncctl",
    help="Mirror Intempus cases into one SQLite file and push local changes back. Made for cron.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)
case_app = typer.Typer(help="One-off reads and writes of single cases (Intempus first, then the mirror).")
app.add_typer(case_app, name="case")

log = logging.getLogger("syncctl")


# -- shared wiring -------------------------------------------------------------------------------------


class Redactor(logging.Filter):
    """Scrubs secrets from every log record, ours and those of requests/urllib3."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        return True


REDACTOR = Redactor()


@dataclass
class Context:
    env_file: Path | None
    verbosity: int
    quiet: bool

    def settings(self, *, need_remote: bool = True) -> Settings:
        settings = load_settings(self.env_file, need_remote=need_remote)
        if settings.api_key:
            REDACTOR.secrets.add(settings.api_key)
            REDACTOR.secrets.add(f"{settings.api_user}:{settings.api_key}")
        for warning in settings.warnings:
            log.warning(warning)
        return settings


def fail(exc: SyncctlError) -> typer.Exit:
    sys.stderr.write(f"syncctl: error: {REDACTOR.scrub(str(exc))}\n")
    return typer.Exit(exc.exit_code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Every known error becomes one line on stderr and its exit code."""
    try:
        yield
    except SyncctlError as exc:
        raise fail(exc) from None
    except sqlite3.Error as exc:
        raise fail(DatabaseError(f"the database is not a usable SQLite database: {exc}")) from None


def options(ctx: typer.Context) -> Context:
    obj = ctx.find_root().obj
    assert isinstance(obj, Context)
    return obj


@contextmanager
def open_store(settings: Settings, *, create: bool = True) -> Iterator[Store]:
    store = Store.open(settings.db_path, create=create)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def mirror_only(ctx: typer.Context) -> Iterator[Store]:
    """The existing mirror, for commands that only read it: no credentials needed, nothing created."""
    with open_store(options(ctx).settings(need_remote=False), create=False) as store:
        yield store


@contextmanager
def open_client(settings: Settings) -> Iterator[IntempusClient]:
    client = IntempusClient.from_settings(settings)
    try:
        yield client
    finally:
        client.close()


class StopSignals:
    """SIGINT/SIGTERM ask the engine to stop at its next safe point; a second signal stops at once."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        self.signum = signum
        if not first:
            self.check()

    def check(self) -> None:
        if self.signum is not None:
            name = signal.Signals(self.signum).name
            code = EXIT_SIGINT if self.signum == signal.SIGINT else EXIT_SIGTERM
            raise InterruptedRun(f"stopped by {name} at a safe point", exit_code=code)

    @contextmanager
    def installed(self) -> Iterator[StopSignals]:
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


# -- root ----------------------------------------------------------------------------------------------


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
) -> None:
    """syncctl: a batch synchronizer between Intempus and one SQLite file."""
    if verbose and quiet:
        raise fail(UsageError("-v/--verbose and -q/--quiet cannot be used together"))
    level = logging.ERROR if quiet else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(REDACTOR)
    handler.setFormatter(logging.Formatter("syncctl: %(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("syncctl").setLevel(level)
    if verbose >= 2:
        logging.getLogger().setLevel(logging.DEBUG)
    ctx.obj = Context(env_file=env_file, verbosity=verbose, quiet=quiet)


# -- sync and reports ----------------------------------------------------------------------------------


@app.command()
def sync(
    ctx: typer.Context,
    full: Annotated[
        bool, typer.Option("--full", help="List every case and delete those gone remotely.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the run's counts.")
    ] = False,
    pull_only: Annotated[bool, typer.Option("--pull-only", help="Do not push local changes.")] = False,
    on_conflict: Annotated[
        Policy, typer.Option("--on-conflict", help="Who wins a field changed on both sides.")
    ] = Policy.REMOTE,
    allow_mass_delete: Annotated[
        bool,
        typer.Option(
            "--allow-mass-delete",
            help="Override the mass-delete guards (cases gone from Intempus, cases deleted locally).",
        ),
    ] = False,
) -> None:
    """Push local changes, then pull changes from Intempus (incremental unless --full or first run)."""
    opts = options(ctx)
    console = Console(stderr=False)
    with reported_errors():
        settings = opts.settings()
        sync_options = engine.SyncOptions(
            full=full,
            push=not pull_only,
            policy=on_conflict,
            allow_mass_delete=allow_mass_delete,
            max_delete_fraction=settings.max_delete_fraction,
        )
        with ExitStack() as stack:
            stack.enter_context(hold_lock(settings.db_path))
            store = stack.enter_context(open_store(settings))
            client = stack.enter_context(open_client(settings))
            stop = stack.enter_context(StopSignals().installed())
            report = stack.enter_context(
                render.progress_reporter(console, enabled=not (as_json or opts.quiet))
            )
            result = engine.run_sync(client, store, sync_options, progress=report, check_stop=stop.check)
    if as_json:
        render.print_json(result.to_json())
    elif not opts.quiet:
        if console.is_terminal:
            console.print(render.sync_table(result))
        else:
            typer.echo(render.sync_summary(result))
    if result.push_failed:
        log.error(
            "%d local change(s) could not be pushed; they stay pending and are retried next run"
            " (see `syncctl status`)",
            result.push_failed,
        )
    if result.error is not None:
        raise fail(result.error)


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show the last runs, the cursor, the number of cases and the changes waiting to be pushed."""
    with reported_errors(), mirror_only(ctx) as store:
        report = engine.status_report(store)
    if as_json:
        render.print_json(report)
        return
    console = Console()
    if console.is_terminal:
        for line in render.status_summary_lines(report):
            console.print(line, highlight=False, markup=False)
        console.print(render.status_table(report))
    else:
        typer.echo("\n".join(render.status_lines(report)))


@app.command()
def conflicts(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the conflicts decided by policy, newest first."""
    with reported_errors(), mirror_only(ctx) as store:
        found = store.conflicts(limit)
    if as_json:
        render.print_json(found)
    else:
        typer.echo("\n".join(render.conflict_lines(found)))


@app.command()
def discard(
    ctx: typer.Context,
    case_ids: Annotated[
        list[int] | None, typer.Argument(help="Case ids whose local changes to undo.")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Undo every local change not yet pushed.")] = False,
) -> None:
    """Undo local edits not yet pushed: the rows go back to their last synced version."""
    with reported_errors():
        if every == bool(case_ids):
            raise UsageError("name the case ids whose local changes to undo, or give --all (not both)")
        settings = options(ctx).settings(need_remote=False)
        with hold_lock(settings.db_path), open_store(settings, create=False) as store:
            undone = store.discard_pending(None if every else case_ids)
    if not options(ctx).quiet:
        typer.echo(f"discarded {undone} local change(s); those rows hold their last synced version again")


# -- one-off case commands -----------------------------------------------------------------------------

FieldOption = Annotated[
    list[str] | None, typer.Option("--field", "-f", help="KEY=VALUE; repeat for more fields.")
]


def read_fields_file(path: Path | None) -> dict[str, Any]:
    """The JSON object of case fields in --from-file (empty without one)."""
    if path is None:
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"{path} must hold one JSON object of case fields")
    return loaded


def positive_id(case_id: int) -> int:
    if case_id <= 0:
        raise UsageError(f"a case id is a positive whole number, got {case_id}")
    return case_id


def show_case(case: dict[str, Any], as_json: bool) -> None:
    if as_json:
        render.print_json(case)
    else:
        typer.echo("\n".join(render.case_lines(case)))


def with_remote(ctx: typer.Context, action: Callable[[IntempusClient, Store], Any]) -> Any:
    with reported_errors():
        settings = options(ctx).settings()
        with open_store(settings) as store, open_client(settings) as client:
            return action(client, store)


@case_app.command("get")
def case_get(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(help="The Intempus case id.")],
    remote: Annotated[bool, typer.Option("--remote", help="Read Intempus instead of the mirror.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the case as one JSON object.")] = False,
) -> None:
    """Show one case (from the local mirror unless --remote)."""
    with reported_errors():
        positive_id(case_id)
        if remote:
            settings = options(ctx).settings()
            with open_client(settings) as client:
                case = client.get_case(case_id)
        else:
            with mirror_only(ctx) as store:
                row = store.get_row(case_id)
                if row is None:
                    raise SyncctlError(f"case {case_id} is not in the mirror {store.path}")
                case = {name: store.to_api(name, value) for name, value in row.items()}
    show_case(case, as_json)


@case_app.command("create")
def case_create(
    ctx: typer.Context,
    field: FieldOption = None,
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="A JSON object of fields (--field adds to it).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the created case as JSON.")] = False,
) -> None:
    """Create a case in Intempus, then store what Intempus accepted."""

    def create(client: IntempusClient, store: Store) -> Any:
        body = fields.request_body(read_fields_file(from_file), field or [], store.columns)
        if not body:
            raise UsageError("nothing to create: give --field KEY=VALUE or --from-file")
        return engine.create_case(client, store, body)

    show_case(with_remote(ctx, create), as_json)


@case_app.command("update")
def case_update(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(help="The Intempus case id.")],
    field: FieldOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the updated case as JSON.")] = False,
) -> None:
    """Change fields of a case in Intempus, then store the result."""

    def update(client: IntempusClient, store: Store) -> Any:
        positive_id(case_id)
        body = fields.request_body({}, field or [], store.columns)
        if not body:
            raise UsageError("nothing to update: give --field KEY=VALUE")
        return engine.update_case(client, store, case_id, body)

    show_case(with_remote(ctx, update), as_json)


@case_app.command("delete")
def case_delete(
    ctx: typer.Context,
    case_id: Annotated[int, typer.Argument(help="The Intempus case id.")],
) -> None:
    """Delete a case in Intempus, then from the mirror."""

    def delete(client: IntempusClient, store: Store) -> bool:
        positive_id(case_id)
        return engine.delete_case(client, store, case_id)

    existed = with_remote(ctx, delete)
    if not options(ctx).quiet:
        typer.echo(f"deleted case {case_id}" if existed else f"case {case_id} was already gone from Intempus")


# -- the bundled fake and the demo ---------------------------------------------------------------------


@app.command("fake-intempus")
def fake_intempus(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="0 picks a free port.")] = 8000,
    cases: Annotated[int, typer.Option("--cases", min=0, help="How many cases to start with.")] = 1000,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    seed: Annotated[int, typer.Option("--seed", help="Seed for the generated cases.")] = 0,
) -> None:
    """Serve a local, stateful imitation of the Intempus case API (user demo, key demo-key)."""
    from syncctl.connectors.intempus import fake

    def ready(url: str) -> None:
        typer.echo(
            f"fake Intempus with {cases} cases at {url} (user {fake.DEFAULT_USER}, key {fake.DEFAULT_KEY})"
        )

    try:
        fake.serve_forever(host, port, cases, seed=seed, on_ready=ready)
    except OSError as exc:
        raise fail(SyncctlError(f"cannot listen on {host}:{port}: {exc.strerror}")) from None


@app.command()
def demo(
    cases: Annotated[
        int, typer.Option("--cases", min=10, help="How many cases the fake starts with.")
    ] = 5000,
) -> None:
    """Show the whole flow against the bundled fake Intempus, in a temporary folder."""
    from syncctl.demo import run_demo

    with reported_errors():
        run_demo(Console(), cases=cases)


def _is_a(exc: BaseException, name: str) -> bool:
    """Click's exception classes by name: Typer may bring its own copy of click."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def main() -> None:
    """Entry point: every error is one line on stderr; anything unknown is a bug, shown without secrets."""
    try:
        code = app(standalone_mode=False, prog_name="syncctl")
    except KeyboardInterrupt:
        sys.stderr.write("syncctl: interrupted\n")
        sys.exit(EXIT_SIGINT)
    except Exception as exc:
        context = getattr(exc, "ctx", None)
        if _is_a(exc, "NoArgsIsHelpError") and context is not None:
            sys.stderr.write(context.get_help() + "\n")
            sys.exit(EXIT_USAGE)
        if _is_a(exc, "ClickException"):
            where = f" (see `{context.command_path} --help`)" if context is not None else ""
            sys.stderr.write(f"syncctl: error: {exc.format_message()}{where}\n")  # type: ignore[attr-defined]
            sys.exit(int(exc.exit_code))  # type: ignore[attr-defined]
        if _is_a(exc, "Abort"):
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
