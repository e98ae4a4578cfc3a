"""A run of the work-order source: the client's files in, then the rows changed locally out.

The one place where the folders (`folder`) and the table (`store`) meet. Decisions are pure functions
(`reconcile`, and `translate` for the format); the store applies them.

Inbound, a file is read only when its size or modification time differs from when it was last read, and
its order is looked at only when its content hash differs: a run over a folder that did not change reads
no file and writes nothing. A file changed within `RACY_NS` of being read is read again next run, since a
second change within the file system's time-stamp granularity would not show in its stat.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from syncctl.connectors.workorders.config import Settings
from syncctl.connectors.workorders.folder import (
    Listed,
    Read,
    folder_problem,
    list_inbound,
    read_inbound,
    shown,
    write_outbound,
)
from syncctl.connectors.workorders.store import DATA_COLUMNS, FileRecord, Row, WorkOrderStore
from syncctl.connectors.workorders.translate import (
    InvalidRow,
    Rejected,
    WorkOrder,
    outbound_file_name,
    parse_inbound,
    should_replace,
    to_outbound,
    to_row,
)
from syncctl.core.db import now_iso
from syncctl.core.engine import RunContext, SyncResult
from syncctl.core.errors import SyncctlError
from syncctl.core.merge import Conflict, Policy

log = logging.getLogger("syncctl.workorders")

READ_BATCH = 500  # files per transaction inbound
WRITE_BATCH = 200  # files written before they are marked synced in one transaction
RACY_NS = 2_000_000_000  # coarser than any file system's time stamps syncctl is likely to meet (FAT: 2 s)

Reader = Callable[[str], Read]
Writer = Callable[[Path, str, dict[str, Any]], str | None]


def sync_workorders(ctx: RunContext, settings: Settings) -> None:
    """Inbound, then outbound (unless --pull-only): a file the client sent wins over an older local row
    before that row could be written out."""
    store = WorkOrderStore.open(ctx.db)
    ingest_folder(ctx, store, settings.inbound_dir)
    if ctx.options.push:
        write_unsynced(ctx, store, settings.outbound_dir)


# -- inbound -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What one valid client file does to its row."""

    outcome: str  # inserted | updated | unchanged | older
    row: Row | None = None  # the row to store, for inserted and updated
    conflict: Policy | None = None  # set when a local change not yet written out met the file: who won


def reconcile(current: Row | None, order: WorkOrder, synced_at: str) -> Plan:
    """Newer wins (`lastUpdateDate` against `updated_at`; equal times take the file). A row stored from a
    file is synced: the client has it. The client's format has no description, so the stored one stays."""
    incoming: Row = {**to_row(order), "is_synced": 1, "synced_at": synced_at}
    if current is None:
        return Plan("inserted", incoming)
    local_change = current["is_synced"] == 0
    try:
        newer = should_replace(current["updated_at"], order.updated_at)
    except (TypeError, ValueError):
        newer = True  # a stored updated_at that is not a time cannot be newer than a valid file
    if not newer:
        return Plan("older", None, Policy.LOCAL if local_change else None)
    incoming["description"] = current["description"]
    same = all(current[name] == incoming[name] for name in DATA_COLUMNS)
    if same and not local_change:
        return Plan("unchanged")
    return Plan("updated", incoming, Policy.REMOTE if local_change and not same else None)


def ingest_folder(
    ctx: RunContext, store: WorkOrderStore, folder: Path, *, read: Reader | None = None
) -> None:
    """Every `*.json` file of the inbound folder, validated, translated and upserted by number."""
    read = read or read_inbound
    result = ctx.result
    listed = list_inbound(folder)
    known = store.file_stats()
    if ctx.state.get("inbound_dir") != str(folder):
        if known:
            log.info("the inbound folder is now %s: every file in it is read again", folder)
            store.forget_files(None)
            known = {}
        ctx.state.set("inbound_dir", str(folder))
    full = ctx.options.full or not known
    result.mode = "full" if full else "incremental"
    present = {item.name for item in listed}
    gone = [name for name in known if name not in present]
    if gone:
        store.forget_files(gone)  # their rows stay: a client deletes an order with isDeleted, not by removal
    rejected = 0
    todo: list[Listed] = []
    for item in listed:
        stat = known.get(item.name)
        if full or stat is None or stat[1] is None or stat[:2] != (item.size, item.mtime_ns):
            todo.append(item)
            continue
        result.fetched += 1
        if stat[2]:
            rejected += 1
            if log.isEnabledFor(logging.INFO):
                log.info("still rejected: %s: %s", shown(item.path), store.rejection(item.name))
        else:
            result.unchanged += 1
    done = len(listed) - len(todo)
    for start in range(0, len(todo), READ_BATCH):
        batch = todo[start : start + READ_BATCH]
        rejected += _ingest_batch(ctx, store, batch, read, full=full)
        done += len(batch)
        ctx.progress("pull workorders", done, len(listed))
        ctx.check_stop()
    result.skipped += rejected
    result.extra["rejected_files"] = rejected


def _ingest_batch(
    ctx: RunContext,
    store: WorkOrderStore,
    batch: Sequence[Listed],
    read: Reader,
    *,
    full: bool,
) -> int:
    """Read a batch of files, then decide and store them in one transaction; the number rejected."""
    result = ctx.result
    reads = [(item, read(item.path) if item.problem is None else _unreadable(item)) for item in batch]
    known = store.file_records([item.name for item in batch])
    steady_before = time.time_ns() - RACY_NS
    records: list[FileRecord] = []
    valid: list[tuple[tuple[str, int | None, int | None, str | None], WorkOrder, bool]] = []
    rejected = 0
    for item, got in reads:
        if got.vanished:
            log.info("%s was removed while syncctl ran; it is read again if it comes back", shown(item.path))
            continue
        result.fetched += 1
        steady = got.mtime_ns is not None and got.mtime_ns < steady_before
        size, mtime_ns = (got.size, got.mtime_ns) if steady else (None, None)
        previous = known.get(item.name)
        content_seen = previous is not None and got.sha256 is not None and previous.sha256 == got.sha256
        if previous is not None and content_seen and not full:
            # The same bytes as when last read (a touched or copied file): their outcome stands.
            records.append(replace(previous, size=size, mtime_ns=mtime_ns))
            if previous.rejected:
                rejected += 1
            else:
                result.unchanged += 1
            continue
        parsed = parse_inbound(got.data) if got.data is not None else Rejected(got.problem or "unreadable")
        if isinstance(parsed, Rejected):
            rejected += 1
            records.append(
                FileRecord(item.name, size, mtime_ns, got.sha256, parsed.number, "rejected", parsed.reason)
            )
            again = previous is not None and previous.rejected and previous.reason == parsed.reason
            number = f" (orderNo {parsed.number})" if parsed.number is not None else ""
            log.log(
                logging.INFO if again else logging.WARNING,
                "rejected %s%s: %s",
                shown(item.path),
                number,
                parsed.reason,
            )
            continue
        valid.append(((item.name, size, mtime_ns, got.sha256), parsed, content_seen))
    if not records and not valid:
        return rejected
    with store.batch() as stored:
        current = stored.rows(order.number for _, order, _ in valid)
        before = dict(current)
        writes: dict[int, Row] = {}
        conflicts: list[Conflict] = []
        synced_at = now_iso()
        for seen, order, content_seen in valid:
            plan = reconcile(current.get(order.number), order, synced_at)
            if plan.row is not None:
                writes[order.number] = current[order.number] = plan.row
            if plan.outcome == "inserted":
                result.inserted += 1
            elif plan.outcome == "updated":
                result.updated += 1
            else:
                result.unchanged += 1
            if plan.outcome == "older":
                log.info(
                    "%s is older than work order %d as stored; not applied", shown(seen[0]), order.number
                )
            if plan.conflict is not None and not content_seen:
                conflicts.append(_conflict(before[order.number], order, plan.conflict))
            outcome = "applied" if plan.row is not None else plan.outcome
            records.append(FileRecord(*seen, order.number, outcome))
        stored.write(writes, before, run_id=result.run_id)
        stored.record_conflicts(conflicts, result.run_id)
        stored.record_files(records)
    result.conflicts += len(conflicts)
    return rejected


def _unreadable(item: Listed) -> Read:
    return Read(None, None, None, None, item.problem)


def _conflict(local: Row, order: WorkOrder, winner: Policy) -> Conflict:
    """A local change not yet written out met a new client file; `updated_at` decided it."""
    incoming = to_row(order)["updated_at"]
    if winner is Policy.REMOTE:
        log.warning(
            "work order %d: the client's newer version (%s) replaces a local change not yet written out"
            " (see `syncctl conflicts`)",
            order.number,
            incoming,
        )
    return Conflict(order.number, "updated_at", None, local["updated_at"], incoming, winner)


# -- outbound ----------------------------------------------------------------------------------------------


def write_unsynced(
    ctx: RunContext, store: WorkOrderStore, folder: Path, *, write: Writer | None = None
) -> None:
    """Write every row with `is_synced = 0` as `{number}.json`, then mark it synced.

    A row the client's format cannot express is reported and stays unsynced; a folder that takes no file
    at all stops the step with one error, every row not yet written staying unsynced.
    """
    write = write or write_outbound
    result = ctx.result
    deleted = store.settle_pending()
    if deleted:
        log.warning(
            "%d work order(s) were deleted from the table (%s); a client file cannot delete an order, so"
            " nothing was written for them (set deleted = 1 to tell the client)",
            len(deleted),
            ", ".join(map(str, deleted[:10])) + (", ..." if len(deleted) > 10 else ""),
        )
    rows = store.unsynced()
    for start in range(0, len(rows), WRITE_BATCH):
        written: list[Row] = []
        for position, row in enumerate(rows[start : start + WRITE_BATCH], start):
            number = row["number"]
            try:
                document = to_outbound(row)
            except InvalidRow as error:
                _not_written(store, result, number, f"{error}; fix the row (it stays unsynced)")
                continue
            problem = write(folder, outbound_file_name(number), document)
            if problem is None:
                written.append(row)
                continue
            blocked = folder_problem(folder)
            if blocked is not None:
                result.pushed += len(store.mark_synced(written, now_iso()))
                left = len(rows) - position
                result.push_failed += left
                raise SyncctlError(
                    f"cannot write to the outbound folder {folder}: {blocked};"
                    f" {left} work order(s) stay unsynced and are written by the next run"
                )
            _not_written(store, result, number, f"{problem} (it stays unsynced)")
        result.pushed += len(store.mark_synced(written, now_iso()))
        ctx.progress("push workorders", min(start + WRITE_BATCH, len(rows)), len(rows))
        ctx.check_stop()


def _not_written(store: WorkOrderStore, result: SyncResult, number: int, reason: str) -> None:
    log.warning("work order %d not written: %s", number, reason)
    store.record_failure(number, reason)
    result.push_failed += 1
