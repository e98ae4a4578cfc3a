"""`syncctl intempus case get|create|update|delete` (also `syncctl case`): Intempus first, then the mirror."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from syncctl import render
from syncctl.cli.common import fail, opened, options, reported_errors
from syncctl.connectors.intempus import fields
from syncctl.connectors.intempus.connector import CASES, IntempusConnector, IntempusRemote
from syncctl.core import engine
from syncctl.core.errors import SyncctlError, UsageError
from syncctl.core.mirror import MirrorTable

app = typer.Typer(help="Intempus: one-off reads and writes.", no_args_is_help=True)
case_app = typer.Typer(
    help="One-off reads and writes of single cases (Intempus first, then the mirror).", no_args_is_help=True
)
app.add_typer(case_app, name="case")

CONNECTOR = IntempusConnector()  # the commands' own instance: settings loading and the remote
MAX_ID = 2**63 - 1

FieldOption = Annotated[
    list[str] | None, typer.Option("--field", "-f", help="KEY=VALUE; repeat for more fields.")
]
CaseId = Annotated[str, typer.Argument(help="The Intempus case id.", metavar="ID")]


def read_fields_file(path: Path | None) -> dict[str, Any]:
    """The JSON object of case fields in --from-file (empty without one); a UTF-8 BOM is fine."""
    if path is None:
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8-sig"))
    except IsADirectoryError:
        raise UsageError(f"cannot read {path}: it is a folder") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise UsageError(f"{path} is not valid JSON: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"{path} must hold one JSON object of case fields")
    return loaded


def case_id_of(text: str) -> int:
    """A positive whole number that fits Intempus' ids; anything else is a usage error, not a crash."""
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit()) or not 0 < int(stripped) <= MAX_ID:
        raise UsageError(f"a case id is a positive whole number below 2^63, got {text!r}")
    return int(stripped)


def show_case(case: dict[str, Any], as_json: bool) -> None:
    if as_json:
        render.print_json(case)
    else:
        typer.echo("\n".join(render.case_lines(case)))


def with_remote(ctx: typer.Context, action: Callable[[IntempusRemote, MirrorTable], Any]) -> Any:
    opts = options(ctx)
    with reported_errors(opts.db_path):
        settings = opts.load(CONNECTOR)
        with opened(ctx, read_only=False) as db, CONNECTOR.open_remote(settings) as remote:
            return action(remote, MirrorTable.open(db, CASES))


@case_app.command("get")
def case_get(
    ctx: typer.Context,
    case_id: CaseId,
    remote: Annotated[bool, typer.Option("--remote", help="Read Intempus instead of the mirror.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the case as one JSON object.")] = False,
) -> None:
    """Show one case (from the local mirror unless --remote)."""
    opts = options(ctx)
    with reported_errors(opts.db_path):
        wanted = case_id_of(case_id)
        if remote:
            with CONNECTOR.open_remote(opts.load(CONNECTOR)) as intempus:
                case = intempus.client.get_case(wanted)
        else:
            with opened(ctx, read_only=True) as db:
                table = MirrorTable.open(db, CASES)
                row = table.get_row(wanted)
                if row is None:
                    raise SyncctlError(f"case {wanted} is not in the mirror {db.path}")
                case = {name: table.to_api(name, value) for name, value in row.items()}
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
    with reported_errors():
        loaded = read_fields_file(from_file)

    def create(remote: IntempusRemote, table: MirrorTable) -> Any:
        body = fields.request_body(loaded, field or [], table.remote_columns)
        if not body:
            raise UsageError("nothing to create: give --field KEY=VALUE or --from-file")
        return engine.create_record(remote, table, body)

    show_case(with_remote(ctx, create), as_json)


@case_app.command("update")
def case_update(
    ctx: typer.Context,
    case_id: CaseId,
    field: FieldOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the updated case as JSON.")] = False,
) -> None:
    """Change fields of a case in Intempus, then store the result."""
    with reported_errors():
        wanted = case_id_of(case_id)

    def update(remote: IntempusRemote, table: MirrorTable) -> Any:
        body = fields.request_body({}, field or [], table.remote_columns)
        if not body:
            raise UsageError("nothing to update: give --field KEY=VALUE")
        return engine.update_record(remote, table, wanted, body)

    show_case(with_remote(ctx, update), as_json)


@case_app.command("delete")
def case_delete(ctx: typer.Context, case_id: CaseId) -> None:
    """Delete a case in Intempus, then from the mirror."""
    with reported_errors():
        wanted = case_id_of(case_id)

    def delete(remote: IntempusRemote, table: MirrorTable) -> bool:
        return engine.delete_record(remote, table, wanted)

    existed = with_remote(ctx, delete)
    if not options(ctx).quiet:
        typer.echo(f"deleted case {wanted}" if existed else f"case {wanted} was already gone from Intempus")


@app.command("fake")
def fake_intempus(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="0 picks a free port.")] = 8000,
    cases: Annotated[
        int, typer.Option("--cases", min=0, max=5_000_000, help="How many cases to start with.")
    ] = 1000,
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


ALIASES = {"case": case_app}
TOP_COMMANDS = [("fake-intempus", fake_intempus)]
