"""`syncctl workorders get NUMBER`: one work order as the local table holds it (never writes)."""

from __future__ import annotations

from typing import Annotated

import typer

from syncctl import render
from syncctl.cli.common import opened, options, reported_errors
from syncctl.connectors.workorders.store import read_workorder
from syncctl.core.errors import SyncctlError, UsageError

app = typer.Typer(help="Work orders: a client's JSON files in and out.", no_args_is_help=True)

NumberArgument = Annotated[str, typer.Argument(help="The work order's number (orderNo).", metavar="NUMBER")]


def number_of(text: str) -> int:
    """A whole number that fits the table's INTEGER key; anything else is a usage error, not a crash."""
    stripped = text.strip()
    digits = stripped.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()) or not -(2**63) <= int(stripped) < 2**63:
        raise UsageError(f"a work order number is a whole number below 2^63, got {text!r}")
    return int(stripped)


@app.command("get")
def workorder_get(
    ctx: typer.Context,
    number: NumberArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the work order as one JSON object.")] = False,
) -> None:
    """Show one work order as the local table holds it (is_synced: whether the client has it)."""
    opts = options(ctx)
    with reported_errors(opts.db_path):
        wanted = number_of(number)
        with opened(ctx, read_only=True) as db:
            row = read_workorder(db, wanted)
        if row is None:
            raise SyncctlError(f"work order {wanted} is not in {opts.db_path}")
    if as_json:
        render.print_json(row)
    else:
        typer.echo("\n".join(render.case_lines(row)))
