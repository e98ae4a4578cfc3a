"""`syncctl sierra item get|update` and `syncctl fake-sierra`.

`item update` queues a change as an edit of the mirror would (the next `sync` sends it within the batch
limit); `--now` also sends that one item at once. Reads come from the mirror unless `--remote`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from syncctl import render
from syncctl.cli.common import fail, opened, options, reported_errors
from syncctl.connectors.sierra import items, queue
from syncctl.connectors.sierra.connector import ITEMS, SierraConnector
from syncctl.core import engine
from syncctl.core.errors import RemoteError, RoleError, SyncctlError, UsageError
from syncctl.core.lock import hold_lock
from syncctl.core.mirror import MirrorTable, Record

log = logging.getLogger("syncctl.sierra")

app = typer.Typer(help="Sierra: library items and their update queue.", no_args_is_help=True)
item_app = typer.Typer(
    help="Read items (mirror or Sierra) and queue changes to them (sent by `sync`, or at once with --now).",
    no_args_is_help=True,
)
app.add_typer(item_app, name="item")

CONNECTOR = SierraConnector()  # the commands' own instance: settings loading and the remote

ItemId = Annotated[str, typer.Argument(help="The item record number, e.g. 1000011.", metavar="ID")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the item as one JSON object.")]
FieldOption = Annotated[
    list[str] | None,
    typer.Option(
        "--field",
        "-f",
        help="KEY=VALUE; repeat for more. Keys: itemType (number), location (code), status (code), barcode,"
        " callNumber, fixedFields.N, fixedFields or varFields (JSON).",
    ),
]


def show_item(item: Record, as_json: bool) -> None:
    if as_json:
        render.print_json(item)
    else:
        typer.echo("\n".join(render.case_lines(item)))


@item_app.command("get")
def item_get(
    ctx: typer.Context,
    item_id: Annotated[
        str | None, typer.Argument(help="The item record number (or use --barcode).", metavar="[ID]")
    ] = None,
    barcode: Annotated[
        str | None, typer.Option("--barcode", help="Find the item by barcode instead of by id.")
    ] = None,
    remote: Annotated[bool, typer.Option("--remote", help="Read Sierra instead of the mirror.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show one item, by id or barcode, from the mirror (or from Sierra with --remote)."""
    opts = options(ctx)
    with reported_errors(opts.db_path):
        if (item_id is None) == (barcode is None):
            raise UsageError("give an item ID or --barcode B (one of them)")
        key = items.check_item_id(item_id) if item_id is not None else None
        code = items.check_barcode(barcode) if barcode is not None else None
        if remote:
            with CONNECTOR.open_remote(opts.load(CONNECTOR)) as sierra:
                keys = [key] if key is not None else sierra.client.query_barcode(str(code))
                found = sierra.find(keys)
            where = "Sierra"
        else:
            with opened(ctx, read_only=True) as db:
                table = MirrorTable.open(db, ITEMS)
                if key is not None:
                    row = table.get_row(key)
                    found = [queue.api_record(table, row)] if row is not None else []
                else:
                    found = queue.rows_by_barcode(table, str(code))
            where = f"the mirror {opts.db_path} (try --remote)"
        wanted = f"item {key}" if key is not None else f"item with barcode {code}"
        if not found:
            raise SyncctlError(f"there is no {wanted} in {where}")
    if len(found) > 1:
        log.warning(
            "%d items have barcode %s (%s); showing the first",
            len(found),
            code,
            ", ".join(str(item["id"]) for item in found),
        )
    show_item(found[0], as_json)


@item_app.command("update")
def item_update(
    ctx: typer.Context,
    item_id: ItemId,
    field: FieldOption = None,
    now: Annotated[bool, typer.Option("--now", help="Also send this item to Sierra at once.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Queue a change to an item (as an edit of the mirror would); --now also sends it at once."""
    opts = options(ctx)
    with reported_errors(opts.db_path):
        key = items.check_item_id(item_id)
        if not field:
            raise UsageError("nothing to update: give --field KEY=VALUE")
        items.edited_values({}, field)  # a malformed --field is exit 2 before anything is read or written
        if now:
            with hold_lock(opts.db_path, CONNECTOR.name):
                item, conflicts = _update_now(ctx, key, field)
        else:
            item = _queue(ctx, key, field)
            conflicts = []
    show_item(item, as_json)
    if conflicts:
        names = ", ".join(sorted({c.field for c in conflicts}))
        raise fail(
            SyncctlError(
                f"Sierra changed {names} of item {key} since it was mirrored, so that change was not sent;"
                " the mirror holds Sierra's values (see `syncctl conflicts`)"
            )
        )
    if not now and not opts.quiet:
        typer.echo(f"item {key} is queued; the next `syncctl sync sierra` sends it (or use --now)", err=True)


def _queue(ctx: typer.Context, key: int, assignments: list[str]) -> Record:
    """The edit, in the mirror and the queue; an item not mirrored yet is read from Sierra first."""
    opts = options(ctx)
    with opened(ctx, read_only=False) as db:
        table = MirrorTable.open(db, ITEMS)
        if table.get_row(key) is None:
            with CONNECTOR.open_remote(opts.load(CONNECTOR)) as sierra:
                _mirror_from_sierra(sierra, table, key)
        return _edit(table, key, assignments)


def _update_now(ctx: typer.Context, key: int, assignments: list[str]) -> tuple[Record, list[Any]]:
    """Queue the edit against Sierra's current version, then push that one item as `sync` would."""
    opts = options(ctx)
    settings = opts.load(CONNECTOR)
    with opened(ctx, read_only=False) as db, CONNECTOR.open_remote(settings) as sierra:
        table = MirrorTable.open(db, ITEMS)
        if not queue.is_queued(table, key):
            # Nothing else waits for this item: start from what Sierra holds now, so the merge sees only
            # this edit (a stale mirror would make every changed fixed field a conflict).
            _mirror_from_sierra(sierra, table, key)
        elif table.get_row(key) is None:
            raise SyncctlError(f"item {key} is queued but no longer in the mirror; run `syncctl sync sierra`")
        _edit(table, key, assignments)
        try:
            report = queue.push_one(sierra, table, key)
        except (RemoteError, RoleError) as exc:
            exc.message = f"{exc.message} (item {key} stays queued; the next sync retries it)"
            raise
        if report.item is None:
            raise SyncctlError(f"Sierra no longer has item {key}; it was removed from the mirror")
        return report.item, report.conflicts


def _mirror_from_sierra(sierra: Any, table: MirrorTable, key: int) -> None:
    try:
        engine.store_remote_record(sierra, table, key, origin="cli")
    except RemoteError as exc:
        if "cannot be read back" in str(exc):
            raise SyncctlError(f"there is no item {key} in Sierra") from None
        raise


def _edit(table: MirrorTable, key: int, assignments: list[str]) -> Record:
    row = table.get_row(key)
    assert row is not None
    return queue.queue_edit(table, key, items.edited_values(queue.api_record(table, row), assignments))


def fake_sierra_command(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="0 picks a free port.")] = 8002,
    item_count: Annotated[
        int, typer.Option("--items", min=0, max=5_000_000, help="How many items to start with.")
    ] = 1000,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    seed: Annotated[int, typer.Option("--seed", help="Seed for the generated items.")] = 0,
) -> None:
    """Serve a local, stateful imitation of the Sierra items API (key demo-key, secret demo-secret)."""
    from syncctl.connectors.sierra import fake

    def ready(url: str) -> None:
        typer.echo(
            f"fake Sierra with {item_count} items at {url}"
            f" (SIERRA_API_CLIENT_KEY={fake.DEFAULT_KEY}, SIERRA_API_CLIENT_SECRET={fake.DEFAULT_SECRET})"
        )

    try:
        fake.serve_forever(host, port, item_count, seed=seed, on_ready=ready)
    except OSError as exc:
        raise fail(SyncctlError(f"cannot listen on {host}:{port}: {exc.strerror}")) from None


TOP_COMMANDS = [("fake-sierra", fake_sierra_command)]
