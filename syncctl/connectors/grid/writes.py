"""One-off writes the core's `create_record`/`update_record`/`delete_record` do not cover: a file of
measurements sent in batches, and a component delete that takes its measurements with it.

Both write to the grid API first and store only what it accepted, through the mirror's one write path
(history with origin `cli`; the daily-sum triggers follow).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from syncctl.connectors.grid import fields
from syncctl.connectors.grid.client import MAX_BATCH, GridClient
from syncctl.connectors.grid.connector import GridRemote
from syncctl.core import engine
from syncctl.core.errors import SyncctlError, UsageError
from syncctl.core.merge import Policy
from syncctl.core.mirror import MirrorTable

log = logging.getLogger("syncctl.grid")


@dataclass
class CheckedFile:
    """What a first pass over a measurement file found: how many, and where each component is first named."""

    path: Path
    count: int = 0
    components: dict[int, str] = field(default_factory=dict)


@dataclass
class UploadResult:
    created: int = 0
    batches: int = 0
    first_id: int | None = None
    last_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "batches": self.batches,
            "first_id": self.first_id,
            "last_id": self.last_id,
        }


def measurement_bodies(path: Path, overrides: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each measurement of the file as a checked create body (`--field` values win), with where it is."""
    for where, item in fields.read_measurement_items(path):
        loaded = {**item, **overrides} if isinstance(item, dict) else item
        yield where, fields.check_body("measurements", loaded, creating=True, where=where)


def check_file(path: Path, overrides: dict[str, Any]) -> CheckedFile:
    """Read the whole file once; its first bad measurement refuses it (exit 2) before anything is sent."""
    checked = CheckedFile(path)
    for where, body in measurement_bodies(path, overrides):
        checked.count += 1
        checked.components.setdefault(body["component_id"], where)
    if not checked.count:
        raise UsageError(f"{path} holds no measurements")
    return checked


def check_components_exist(client: GridClient, checked: CheckedFile) -> None:
    """Refuse a file naming a component the API does not have, before its first batch (batches are
    all-or-nothing, the file is not: this keeps the common mistake from leaving half a file behind)."""
    known = {record["id"] for page in client.iter_pages("components") for record in page.records}
    unknown = sorted(set(checked.components) - known)
    if unknown:
        first = unknown[0]
        more = f" (and {len(unknown) - 1} other unknown component(s))" if len(unknown) > 1 else ""
        raise UsageError(
            f"{checked.components[first]}: component {first} does not exist in the grid API{more};"
            " nothing was sent"
        )


def batches(bodies: Iterable[dict[str, Any]], size: int = MAX_BATCH) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(bodies)
    while batch := list(islice(iterator, size)):
        yield batch


def upload_measurements(
    client: GridClient,
    table: MirrorTable,
    checked: CheckedFile,
    overrides: dict[str, Any],
) -> UploadResult:
    """Send the file's measurements in all-or-nothing batches of up to 1000 and store each accepted batch.

    A batch whose answer was lost is checked against a listing from the version before it (the highest
    version of the previous batch) and only what did not land is sent again (see `GridClient.create`).
    If a batch fails for good, the batches before it stay created and stored, and the error says so.
    """
    client.check_write()
    check_components_exist(client, checked)
    result = UploadResult()
    since: int | None = None
    try:
        for batch in batches(body for _, body in measurement_bodies(checked.path, overrides)):
            stored = client.create("measurements", batch, since=since)
            table.apply_page(stored, policy=Policy.REMOTE, run_id=None, full=False, origin="cli")
            versions = [r["version"] for r in stored if isinstance(r.get("version"), int)]
            since = max(versions) if len(versions) == len(stored) else None
            result.created += len(stored)
            result.batches += 1
            result.first_id = stored[0]["id"] if result.first_id is None else result.first_id
            result.last_id = stored[-1]["id"]
            log.info("created %d of %d measurements", result.created, checked.count)
    except SyncctlError as exc:
        if result.created:
            exc.message += (
                f" ({result.created} of {checked.count} measurements of {checked.path}, the first"
                f" {result.batches} batch(es), were created before this and are in the mirror)"
            )
        else:
            exc.message += " (no measurement of the file was created)"
        raise
    return result


def delete_component(
    remote: GridRemote, components: MirrorTable, measurements: MirrorTable, component_id: int
) -> bool:
    """Delete a component remotely, then it and its measurements locally (the API deletes them with it)."""
    existed = engine.delete_record(remote, components, component_id)
    db = measurements.db
    with db.transaction(applying=True):
        keys = [
            row[0]
            for row in db.conn.execute(
                "SELECT id FROM grid_measurements WHERE component_id = ?", (component_id,)
            )
        ]
        for key in keys:
            measurements.drop_pending(key)
        measurements.delete_rows(keys, origin="cli", run_id=None)
    log.info("deleted component %d and its %d measurement(s) from the mirror", component_id, len(keys))
    return existed
