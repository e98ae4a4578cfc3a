"""`syncctl grid component|measurement get|create|update|delete`, `syncctl fake-grid` and
`syncctl report kpi`: the grid API first, then the mirror."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from syncctl import render
from syncctl.cli.common import fail, opened, options, reported_errors
from syncctl.connectors.grid import fields, kpi, writes
from syncctl.connectors.grid.client import GridClient
from syncctl.connectors.grid.connector import GridConnector, GridRemote
from syncctl.connectors.grid.tables import COMPONENTS, MEASUREMENTS, open_tables
from syncctl.core import engine
from syncctl.core.db import Database
from syncctl.core.errors import SyncctlError, UsageError
from syncctl.core.mirror import MirrorTable
from syncctl.reports import output
from syncctl.reports.periods import Period

app = typer.Typer(help="The grid data API: one-off reads and writes.", no_args_is_help=True)
component_app = typer.Typer(
    help="One-off reads and writes of grid components (the grid API first, then the mirror).",
    no_args_is_help=True,
)
measurement_app = typer.Typer(
    help="One-off reads and writes of grid measurements (the grid API first, then the mirror).",
    no_args_is_help=True,
)
app.add_typer(component_app, name="component")
app.add_typer(measurement_app, name="measurement")

CONNECTOR = GridConnector()  # the commands' own instance: settings loading and the client
SPECS = {"components": COMPONENTS, "measurements": MEASUREMENTS}

FieldOption = Annotated[
    list[str] | None, typer.Option("--field", "-f", help="KEY=VALUE; repeat for more fields.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
IdArgument = Annotated[str, typer.Argument(help="The component or measurement id.", metavar="ID")]


def object_id(text: str, resource: str) -> int:
    """A positive whole number that fits an id; anything else is a usage error, not a crash."""
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit()) or not 0 < int(stripped) <= fields.MAX_ID:
        raise UsageError(f"a {fields.NOUN[resource]} id is a positive whole number below 2^63, got {text!r}")
    return int(stripped)


def show(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        render.print_json(record)
    else:
        typer.echo("\n".join(render.case_lines(record)))


@dataclass
class Wired:
    """What a one-off write needs: the client, both tables, and the remote of the resource at hand."""

    db: Database
    client: GridClient
    components: MirrorTable
    measurements: MirrorTable

    def remote(self, resource: str) -> GridRemote:
        return GridRemote(self.client, resource)

    def table(self, resource: str) -> MirrorTable:
        return self.components if resource == "components" else self.measurements


@contextmanager
def wired(ctx: typer.Context) -> Iterator[Wired]:
    opts = options(ctx)
    settings = opts.load(CONNECTOR)
    with opened(ctx, read_only=False) as db, CONNECTOR.open_client(settings) as client:
        components, measurements = open_tables(db)
        yield Wired(db, client, components, measurements)


def run_write(ctx: typer.Context, action: Callable[[Wired], Any]) -> Any:
    with reported_errors(options(ctx).db_path), wired(ctx) as wires:
        return action(wires)


def get_record(ctx: typer.Context, resource: str, wanted: int, remote: bool) -> dict[str, Any]:
    opts = options(ctx)
    if remote:
        with CONNECTOR.open_client(opts.load(CONNECTOR)) as client:
            return client.get(resource, wanted)
    with opened(ctx, read_only=True) as db:
        table = MirrorTable.open(db, SPECS[resource])
        row = table.get_row(wanted)
        if row is None:
            raise SyncctlError(f"{fields.NOUN[resource]} {wanted} is not in the mirror {db.path}")
        return {name: table.to_api(name, value) for name, value in row.items()}


def register(group: typer.Typer, resource: str) -> None:
    """get, create, update and delete for one resource: the same shape for components and measurements."""
    noun = fields.NOUN[resource]

    @group.command("get", help=f"Show one {noun} (from the local mirror unless --remote).")
    def get(
        ctx: typer.Context,
        record_id: IdArgument,
        remote: Annotated[bool, typer.Option("--remote", help="Read the grid API, not the mirror.")] = False,
        as_json: JsonOption = False,
    ) -> None:
        with reported_errors(options(ctx).db_path):
            record = get_record(ctx, resource, object_id(record_id, resource), remote)
        show(record, as_json)

    @group.command("update", help=f"Change fields of a {noun} in the grid API, then store the result.")
    def update(
        ctx: typer.Context,
        record_id: IdArgument,
        field: FieldOption = None,
        from_file: Annotated[
            Path | None, typer.Option("--from-file", help="A JSON object of fields (--field adds to it).")
        ] = None,
        as_json: JsonOption = False,
    ) -> None:
        with reported_errors():
            wanted = object_id(record_id, resource)
            loaded = {**(fields.read_object_file(from_file) if from_file else {})}
            loaded.update(fields.parse_specs(resource, field or []))
            body = fields.check_body(resource, loaded, creating=False, where="update")
            if not body:
                raise UsageError("nothing to update: give --field KEY=VALUE or --from-file")
        record = run_write(
            ctx, lambda w: engine.update_record(w.remote(resource), w.table(resource), wanted, body)
        )
        show(record, as_json)

    @group.command("delete", help=f"Delete a {noun} in the grid API, then from the mirror.")
    def delete(ctx: typer.Context, record_id: IdArgument) -> None:
        with reported_errors():
            wanted = object_id(record_id, resource)

        def action(w: Wired) -> bool:
            if resource == "components":
                return writes.delete_component(w.remote(resource), w.components, w.measurements, wanted)
            return engine.delete_record(w.remote(resource), w.measurements, wanted)

        existed = run_write(ctx, action)
        if not options(ctx).quiet:
            extra = " and its measurements" if resource == "components" else ""
            typer.echo(f"deleted {noun} {wanted}{extra}" if existed else f"{noun} {wanted} was already gone")


register(component_app, "components")
register(measurement_app, "measurements")


@component_app.command("create")
def component_create(
    ctx: typer.Context,
    field: FieldOption = None,
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="A JSON object of fields (--field adds to it).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a component in the grid API, then store what it accepted."""
    with reported_errors():
        loaded = {**(fields.read_object_file(from_file) if from_file else {})}
        loaded.update(fields.parse_specs("components", field or []))
        if not loaded:
            raise UsageError("nothing to create: give --field KEY=VALUE or --from-file")
        body = fields.check_body("components", loaded, creating=True, where="component")
    record = run_write(ctx, lambda w: engine.create_record(w.remote("components"), w.components, body))
    show(record, as_json)


@measurement_app.command("create")
def measurement_create(
    ctx: typer.Context,
    field: FieldOption = None,
    from_file: Annotated[
        Path | None,
        typer.Option(
            "--from-file",
            help="Measurements as a JSON array, JSON Lines or CSV with a header row (component_id,"
            "timestamp,type,value); sent in all-or-nothing batches of up to 1000. --field values apply"
            " to every one.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create one measurement (--field ...) or a file of them in the grid API, then store what it accepted."""
    with reported_errors():
        overrides = fields.parse_specs("measurements", field or [])
        if from_file is None:
            if not overrides:
                raise UsageError("nothing to create: give --field KEY=VALUE or --from-file")
            body = fields.check_body("measurements", overrides, creating=True, where="measurement")
        else:
            checked = writes.check_file(from_file, overrides)
    if from_file is None:
        record = run_write(
            ctx, lambda w: engine.create_record(w.remote("measurements"), w.measurements, body)
        )
        show(record, as_json)
        return
    result = run_write(
        ctx, lambda w: writes.upload_measurements(w.client, w.measurements, checked, overrides)
    )
    if as_json:
        render.print_json(result.to_json())
    elif not options(ctx).quiet:
        ids = f" (ids {result.first_id} to {result.last_id})" if result.created else ""
        typer.echo(f"created {result.created} measurements in {result.batches} batch(es){ids}")


# -- the bundled fake and the KPI report ---------------------------------------------------------------


def fake_grid_command(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="0 picks a free port.")] = 8001,
    components: Annotated[
        int, typer.Option("--components", min=0, max=100_000, help="How many components to start with.")
    ] = 100,
    measurements_per_component: Annotated[
        int,
        typer.Option(
            "--measurements-per-component", min=0, max=1_000_000, help="Measurements generated per component."
        ),
    ] = 3000,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    seed: Annotated[int, typer.Option("--seed", help="Seed for the generated data.")] = 0,
) -> None:
    """Serve a local, stateful imitation of the grid data API (accounts user/user and manager/manager)."""
    from syncctl.connectors.grid import fake

    def ready(url: str) -> None:
        total = components * measurements_per_component
        typer.echo(
            f"fake grid API with {components} components and {total} measurements at {url}"
            " (accounts user/user and manager/manager)"
        )
        sys.stdout.flush()

    try:
        fake.serve_forever(host, port, components, measurements_per_component, seed=seed, on_ready=ready)
    except OSError as exc:
        raise fail(SyncctlError(f"cannot listen on {host}:{port}: {exc.strerror}")) from None


def report_kpi_command(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--start", help="Start of the period (ISO 8601; no offset = UTC).")],
    end: Annotated[str, typer.Option("--end", help="End of the period, not included.")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="table, json, jsonl, csv or html (default: table on a terminal, else json)."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file (atomically).")] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", help="Write into this folder: one file per section for csv."),
    ] = None,
) -> None:
    """Grid KPIs over [start, end): components per type, transformer capacity and line length per voltage,
    and the daily average of each measurement type per component type."""
    opts = options(ctx)
    with reported_errors(opts.db_path):
        period = Period.parse(start, end)
        # A file is no terminal: --out and --out-dir default to json, as every report does.
        to_file = out is not None or out_dir is not None
        chosen = output.choose_format(fmt, is_terminal=not to_file and sys.stdout.isatty())
        if out is not None and out_dir is not None:
            raise UsageError("give --out or --out-dir, not both")
        with opened(ctx, read_only=True) as db:
            report = kpi.kpi_report(db, period)
            write_kpi(report, chosen, period, out=out, out_dir=out_dir)


def write_kpi(
    report: output.Report, fmt: str, period: Period, *, out: Path | None, out_dir: Path | None
) -> None:
    """To stdout or `--out`; with `--out-dir`, one file per section for csv and jsonl, else one file."""
    if out_dir is None:
        output.write_report(report, fmt, out=out, stream=sys.stdout)
        return
    if fmt in ("csv", "jsonl"):
        output.write_group_files(
            output.split_tables(report),
            fmt,
            out_dir,
            lambda section: output.period_file_name("kpi_report", section, period, fmt),
        )
        return
    output.prepare_out_dir(out_dir)
    start, end = period.file_stamps()
    name = f"kpi_report_{start}_{end}.{output.FILE_EXTENSIONS[fmt]}"
    output.write_report(report, fmt, out=out_dir / name, stream=sys.stdout)


TOP_COMMANDS = [("fake-grid", fake_grid_command)]
REPORTS = [("kpi", report_kpi_command)]
