"""The sync template: the one place where fetching (a connector's remote) and saving (the mirror) meet.

A run of a source is recorded in `_syncctl_runs`; for each REST resource it pushes local changes (the
outbox), then pulls: a full listing with delete detection under the guards, or an incremental one from a
cursor that only advances after a complete listing. Never prints: progress flows through a callback and
everything else comes back in a `SyncResult`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncctl.core.connector import Connector, DeletedListing, Resource, WritableRemote
from syncctl.core.db import Database, database_error
from syncctl.core.errors import (
    AuthError,
    InterruptedRun,
    RefusedError,
    RemoteError,
    RoleError,
    SyncctlError,
)
from syncctl.core.http import TransientError
from syncctl.core.merge import ROW, Conflict, Policy, merge_rows, remote_changed
from syncctl.core.mirror import Key, MirrorTable, PageCounts, PendingChange, Record
from syncctl.core.runs import RUN_COUNTS, RunLog, State

log = logging.getLogger("syncctl.engine")

Progress = Callable[[str, int, int | None], None]  # phase, done, total (None when unknown)
PUSH_BATCH = 100  # changes whose remote versions are read with one request, before and after


def no_progress(phase: str, done: int, total: int | None) -> None:
    return None


def never_stop() -> None:
    return None


def no_scrub(text: str) -> str:
    return text


@dataclass
class SyncOptions:
    full: bool = False
    push: bool = True
    policy: Policy = Policy.REMOTE
    allow_mass_delete: bool = False
    max_delete_fraction: float = 0.2
    keep_deleted: bool = False  # mark remotely deleted rows `_deleted_at` instead of removing them


@dataclass
class SyncResult:
    mode: str
    source: str = "intempus"
    status: str = "ok"
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    pushed: int = 0
    push_failed: int = 0
    conflicts: int = 0
    skipped: int = 0  # records or files that could not be taken (a count, with one line said about them)
    duration_s: float = 0.0
    cursor: Any = None
    run_id: int | None = None
    new_columns: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # a source's own counts (rejected files, ...)
    error: SyncctlError | None = field(default=None, repr=False)

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in RUN_COUNTS}

    def add(self, page: PageCounts) -> None:
        self.inserted += page.inserted
        self.updated += page.updated
        self.unchanged += page.unchanged
        self.skipped += page.skipped
        self.conflicts += len(page.conflicts)
        self.new_columns.extend(page.new_columns)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "mode": self.mode,
            "status": self.status,
            **self.counts(),
        }
        data["duration_s"] = round(self.duration_s, 3)
        data.update(cursor=self.cursor, run_id=self.run_id, error=str(self.error) if self.error else None)
        data["skipped"] = self.skipped
        if self.new_columns:
            data["new_columns"] = self.new_columns
        data.update(self.extra)
        return data


@dataclass
class RunContext:
    """What a connector's run gets: the file, its settings, the options, and where its counts go."""

    db: Database
    connector: Connector
    config: Any
    options: SyncOptions
    result: SyncResult
    progress: Progress = no_progress
    check_stop: Callable[[], None] = never_stop
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    scrub: Callable[[str], str] = no_scrub
    state: State = field(init=False)

    def __post_init__(self) -> None:
        self.state = State(self.db, self.connector.name)

    def table(self, name: str) -> MirrorTable:
        spec = next(s for s in self.connector.tables if s.name == name)
        return MirrorTable.open(self.db, spec)


def run_source(
    db: Database,
    connector: Connector,
    config: Any,
    options: SyncOptions,
    *,
    progress: Progress = no_progress,
    check_stop: Callable[[], None] = never_stop,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    scrub: Callable[[str], str] = no_scrub,
) -> SyncResult:
    """One run of one source, recorded; errors end up in `result.error`, never half-applied."""
    runs = RunLog(db, connector.name)
    result = SyncResult(mode="full" if options.full else "incremental", source=connector.name)
    ctx = RunContext(db, connector, config, options, result, progress, check_stop, clock, sleep, scrub)
    started = clock()
    result.run_id = runs.start(result.mode)
    try:
        connector.sync(ctx)
    except SyncctlError as exc:
        result.error = exc
    except (sqlite3.Error, OSError) as exc:
        result.error = (
            database_error(exc, db.path) if isinstance(exc, sqlite3.Error) else SyncctlError(str(exc))
        )
    except BaseException as exc:
        result.error = SyncctlError(f"internal error: {exc.__class__.__name__}")
        _record_run(runs, result, clock() - started, scrub)
        raise
    _record_run(runs, result, clock() - started, scrub)
    return result


def _record_run(runs: RunLog, result: SyncResult, duration_s: float, scrub: Callable[[str], str]) -> None:
    result.duration_s = duration_s
    if isinstance(result.error, InterruptedRun):
        result.status = "interrupted"
    elif isinstance(result.error, RefusedError | RoleError):
        result.status = "refused"
    elif result.error is not None:
        result.status = "failed"
    if result.error is not None:
        result.error.message = scrub(result.error.message)
    assert result.run_id is not None
    try:
        runs.finish(
            result.run_id,
            status=result.status,
            mode=result.mode,
            counts={**result.counts(), "skipped": result.skipped},
            duration_s=duration_s,
            error=str(result.error) if result.error else None,
            extra=result.extra or None,
        )
    except sqlite3.Error as exc:  # the file itself is broken: the run's own error says more
        log.error("could not record the run in %s: %s", runs.db.path, exc)


# -- the REST template --------------------------------------------------------------------------------


def cursor_key(resource: Resource) -> str:
    return f"cursor:{resource.spec.name}"


def valid_cursor(resource: Resource, value: Any) -> Any:
    """The stored cursor if it is what syncctl writes for this kind; a hand-edited one is dropped with a
    warning, and a full listing follows."""
    if value is None:
        return None
    ok = (
        resource.cursor == "version" and isinstance(value, int) and not isinstance(value, bool) and value >= 0
    ) or (
        resource.cursor == "timestamp" and isinstance(value, str) and value.isascii() and 0 < len(value) < 64
    )
    if not ok:
        log.warning(
            "the stored cursor of %s (%r) is not one syncctl writes; listing everything instead",
            resource.spec.name,
            str(value)[:40],
        )
        return None
    return value


def sync_resources(ctx: RunContext, resources: Sequence[Resource]) -> None:
    """Push each resource's local changes, then pull each; a role refusal still lets the pull run."""
    tables = [MirrorTable.open(ctx.db, r.spec) for r in resources]
    if ctx.options.keep_deleted:
        for table in tables:
            table.keep_deleted_rows()
    cursors = []
    for resource, table in zip(resources, tables, strict=True):
        stored = valid_cursor(resource, ctx.state.get(cursor_key(resource)))
        if stored is not None and not table.count() and ctx.state.get(f"rows_seen:{resource.spec.name}"):
            log.warning("%s is empty although it was synced before; listing everything", table.name)
            stored = None
        cursors.append(stored)
    # A resource without a cursor is listed whole; the run is called full when no resource had one.
    full = ctx.options.full or all(c is None for c in cursors)
    ctx.result.mode = "full" if full else "incremental"
    refused: RoleError | None = None
    if ctx.options.push:
        for resource, table in zip(resources, tables, strict=True):
            if resource.push == "none" or not table.pending_count():
                continue
            try:
                push_pending(ctx, resource, table)
            except RoleError as exc:
                refused = refused or exc
    for resource, table, since in zip(resources, tables, cursors, strict=True):
        pull(ctx, resource, table, None if ctx.options.full or resource.cursor == "none" else since)
    known = [ctx.state.get(cursor_key(r)) for r in resources if r.cursor != "none"]
    ctx.result.cursor = lowest(known)
    if refused is not None:
        raise refused


def pull(ctx: RunContext, resource: Resource, table: MirrorTable, since: Any) -> None:
    options, result = ctx.options, ctx.result
    full = since is None
    table.begin_listing()
    committed: Any = None
    highest = since
    total: int | None = None
    unstable = False
    for number, page in enumerate(resource.remote.list_pages(since)):
        if number == 0:
            committed, total = page.committed, page.total
        unstable = unstable or page.unstable
        counts = table.apply_page(page.records, policy=options.policy, run_id=result.run_id, full=True)
        if page.records and counts.new_keys == 0:
            raise RemoteError(
                ctx.scrub(
                    f"{ctx.connector.title} keeps sending records already listed ({table.name}, page"
                    f" {number + 1}); stopped so the listing cannot loop forever"
                )
            )
        result.fetched += len(page.records)
        result.add(counts)
        if counts.highest is not None and (highest is None or _later(counts.highest, highest)):
            highest = counts.highest
        ctx.progress(f"pull {table.name}", result.fetched, total)
        ctx.check_stop()
    if full:
        delete_unseen(ctx, resource, table)
    elif resource.deletes_incremental and isinstance(resource.remote, DeletedListing):
        pull_deletes(ctx, resource, table, resource.remote)
    if result.fetched:
        ctx.state.set(f"rows_seen:{table.name}", 1)
    if resource.cursor == "none":
        return
    # Changes committed while we were listing have versions above the first page's committed mark, so the
    # next incremental run sees them; without that mark, the highest version seen is the best we know.
    new_cursor = committed if resource.cursor == "version" and committed is not None else highest
    if unstable:
        log.warning(
            "%s changed while it was listed with offset paging, so a record may have been skipped;"
            " the cursor stays where it was and the next run lists these changes again",
            ctx.connector.title,
        )
    elif new_cursor is not None and (since is None or not _later(since, new_cursor)):
        ctx.state.set(cursor_key(resource), new_cursor)


def lowest(cursors: list[Any]) -> Any:
    """The cursor a source reports: the point every resource is complete up to (None until all have one);
    cursors of different kinds are not comparable, and the first resource's stands for the source."""
    if not cursors or any(c is None for c in cursors):
        return None
    if len({type(c) for c in cursors}) > 1:
        return cursors[0]
    return min(cursors)


def sort_keys(keys: set[Key]) -> list[Key]:
    return sorted(keys, key=lambda k: (str(type(k)), k if isinstance(k, int) else 0, str(k)))


def _later(a: Any, b: Any) -> bool:
    try:
        return bool(a > b)
    except TypeError:
        return False


def delete_unseen(ctx: RunContext, resource: Resource, table: MirrorTable) -> None:
    """Delete local records a complete listing did not return, once the remote confirms each one is gone."""
    options, result = ctx.options, ctx.result
    unseen = table.unseen_keys()
    if not unseen:
        return
    local_total = table.count()
    noun = ctx.connector.mass_delete_noun
    if result.fetched == 0 and not options.allow_mass_delete:
        raise RefusedError(
            f"{ctx.connector.title} listed no {noun} while the mirror holds {local_total};"
            " nothing was deleted "
            f"(check {ctx.connector.title}; --allow-mass-delete overrides)"
        )
    # Offset paging can skip a record that moved during the listing: confirm before deleting anything.
    still_there = resource.remote.find(unseen, canary=table.seen_key())
    if still_there:
        log.info("%d %s missed by the listing still exist; storing them", len(still_there), noun)
        counts = table.apply_page(still_there, policy=options.policy, run_id=result.run_id, full=False)
        result.add(counts)
    key = resource.spec.key
    gone = sort_keys(set(unseen) - {record[key] for record in still_there})
    limit = options.max_delete_fraction * local_total
    if len(gone) > limit and not options.allow_mass_delete:
        shown = ", ".join(map(str, gone[:5])) + (
            ", ...: `sync --full --dry-run --json` lists all" if len(gone) > 5 else ""
        )
        raise RefusedError(
            f"this full sync would delete {len(gone)} of {local_total} {noun} ({shown}), more than "
            f"SYNCCTL_MAX_DELETE_FRACTION={options.max_delete_fraction:g} allows; nothing was deleted "
            f"(check {ctx.connector.title}; --allow-mass-delete overrides)"
        )
    deleted, conflicts = table.apply_remote_deletes(gone, policy=options.policy, run_id=result.run_id)
    result.deleted += deleted
    result.conflicts += len(conflicts)


def pull_deletes(ctx: RunContext, resource: Resource, table: MirrorTable, remote: DeletedListing) -> None:
    """Apply the deletes a remote lists incrementally, each confirmed gone before it is applied."""
    since = ctx.state.get(f"deleted_cursor:{table.name}")
    newest = since
    for keys in remote.list_deleted(since):
        present = [k for k in keys if table.get_row(k) is not None]
        if not present:
            continue
        still_there = {r[resource.spec.key] for r in resource.remote.find(present)}
        gone = [k for k in present if k not in still_there]
        deleted, conflicts = table.apply_remote_deletes(
            gone, policy=ctx.options.policy, run_id=ctx.result.run_id
        )
        ctx.result.deleted += deleted
        ctx.result.conflicts += len(conflicts)
    marker = getattr(remote, "deleted_marker", None)
    if callable(marker):
        newest = marker()
    if newest is not None:
        ctx.state.set(f"deleted_cursor:{table.name}", newest)


# -- pushing -------------------------------------------------------------------------------------------


@dataclass
class PushOutcome:
    """What pushing one change did, and how to learn what the remote holds afterwards."""

    sent: bool
    conflicts: list[Conflict]
    reread: Key | None = None  # the key to read back from the remote after a write
    remote: Record | None = None  # what the remote holds, when known without reading it back


def push_pending(ctx: RunContext, resource: Resource, table: MirrorTable) -> None:
    """Send local changes to the remote; one bad change never blocks the others.

    Changes go in batches: one read of their current remote versions (for the three-way merge), the
    writes, then one read-back of what was written (write responses are not trusted).
    """
    remote = resource.remote
    if not isinstance(remote, WritableRemote):
        raise TypeError(f"{resource.spec.name}: a pushing resource needs a remote that can write")
    writer = remote
    queued = resource.push == "queued"
    changes = table.pending_changes(limit=resource.push_limit if queued else None)
    if not changes:
        return
    writer.check_write()
    if not queued:
        guard_local_deletes(ctx, table, changes)
    options, result = ctx.options, ctx.result
    done = 0
    for start in range(0, len(changes), PUSH_BATCH):
        batch = changes[start : start + PUSH_BATCH]
        known = remote.find([c.key for c in batch if c.op != "insert"])
        remote_now = {record[resource.spec.key]: record for record in known}
        outcomes: list[tuple[PendingChange, PushOutcome]] = []
        for change in batch:
            try:
                if queued and change.op != "update":
                    raise RemoteError(
                        f"{ctx.connector.title} {table.name} cannot be {change.op}d from syncctl,"
                        " only changed"
                        " (`syncctl discard` undoes it)"
                    )
                outcome = push_change(writer, table, change, remote_now.get(change.key), options.policy)
            except (AuthError, TransientError, RoleError) as exc:
                # The remote is unreachable or refuses us: every other change would fail the same way.
                table.record_push_failure(change.key, ctx.scrub(str(exc)))
                result.push_failed += 1
                _settle(remote, table, outcomes, result, resource.spec.key)
                raise
            except RemoteError as exc:
                log.warning("push of %s %s failed: %s", table.name, change.key, exc)
                table.record_push_failure(change.key, ctx.scrub(str(exc)))
                result.push_failed += 1
            else:
                outcomes.append((change, outcome))
            done += 1
            ctx.progress(f"push {table.name}", done, len(changes))
        _settle(remote, table, outcomes, result, resource.spec.key)
        ctx.check_stop()


def guard_local_deletes(ctx: RunContext, table: MirrorTable, changes: list[PendingChange]) -> None:
    """Refuse to push a mass delete: `DELETE FROM t` typed by mistake must not empty the remote."""
    options = ctx.options
    deletes = sum(1 for change in changes if change.op == "delete")
    before = table.count() + deletes
    if deletes > options.max_delete_fraction * before and not options.allow_mass_delete:
        noun = ctx.connector.mass_delete_noun
        raise RefusedError(
            f"{deletes} of {before} {noun} were deleted in the local file, more than"
            f" SYNCCTL_MAX_DELETE_FRACTION={options.max_delete_fraction:g} allows; nothing was sent to"
            f" {ctx.connector.title} (`syncctl discard --all` restores them; --allow-mass-delete pushes the"
            " deletes)"
        )


def _settle(
    remote: Any,
    table: MirrorTable,
    outcomes: list[tuple[PendingChange, PushOutcome]],
    result: SyncResult,
    key: str,
) -> None:
    """Read back what was written and store it; each change is closed in its own transaction."""
    written = remote.find([o.reread for _, o in outcomes if o.reread is not None])
    read_back = {record[key]: record for record in written}
    for change, outcome in outcomes:
        record = read_back.get(outcome.reread) if outcome.reread is not None else outcome.remote
        table.settle_push(
            change.key,
            record,
            snapshot=change.local,
            conflicts=outcome.conflicts,
            run_id=result.run_id,
            base=change.base,
        )
        result.pushed += int(outcome.sent)
        result.conflicts += len(outcome.conflicts)


def push_change(
    remote: WritableRemote, table: MirrorTable, change: PendingChange, current: Record | None, policy: Policy
) -> PushOutcome:
    """Push one change, given the record as the remote holds it now (None: not there)."""
    if change.op == "insert":
        return _push_insert(remote, table, change, [])
    if change.op == "delete":
        return _push_delete(remote, table, change, current, policy)
    return _push_update(remote, table, change, current, policy)


def _push_insert(
    remote: WritableRemote, table: MirrorTable, change: PendingChange, conflicts: list[Conflict]
) -> PushOutcome:
    if change.local is None:
        return PushOutcome(sent=False, conflicts=conflicts)
    creation_id = change.creation_id
    if creation_id is None:
        # Stored before the POST: a run that dies after the remote created the record repeats the same key.
        creation_id = uuid.uuid4().hex
        table.set_creation_id(change.key, creation_id)
    created = remote.create(remote.body(table, change.local, None), creation_id=creation_id)
    return PushOutcome(sent=True, conflicts=conflicts, reread=created)


def _push_update(
    remote: WritableRemote, table: MirrorTable, change: PendingChange, current: Record | None, policy: Policy
) -> PushOutcome:
    local, base = change.local, change.base or {}
    if local is None:
        return PushOutcome(sent=False, conflicts=[])
    if current is None:
        conflict = Conflict(change.key, ROW, "synced", "edited", "deleted", policy)
        if policy is Policy.REMOTE:
            return PushOutcome(sent=False, conflicts=[conflict])
        recreate = PendingChange(change.key, "insert", None, local, None, change.attempts, None)
        return _push_insert(remote, table, recreate, [conflict])
    remote_row = table.to_row(current)
    merged, conflicts = merge_rows(change.key, base, local, remote_row, policy, writable=table.pushable)
    to_send = [
        name for name, value in merged.items() if table.pushable(name) and value != remote_row.get(name)
    ]
    if not to_send:
        return PushOutcome(sent=False, conflicts=conflicts, remote=current)
    remote.update(change.key, remote.body(table, merged, to_send))
    return PushOutcome(sent=True, conflicts=conflicts, reread=change.key)


def _push_delete(
    remote: WritableRemote, table: MirrorTable, change: PendingChange, current: Record | None, policy: Policy
) -> PushOutcome:
    conflicts: list[Conflict] = []
    if current is not None and change.base is not None and remote_changed(change.base, table.to_row(current)):
        conflicts.append(Conflict(change.key, ROW, "synced", "deleted", "edited", policy))
        if policy is Policy.REMOTE:
            return PushOutcome(sent=False, conflicts=conflicts, remote=current)
    if current is not None:
        remote.delete(change.key)  # a 404 here means someone else deleted it first: done all the same
    return PushOutcome(sent=True, conflicts=conflicts)


def writable_body(table: MirrorTable, row: Mapping[str, Any], names: Sequence[str] | None) -> dict[str, Any]:
    """The generic request body: pushable fields as the remote expects them (None values left out of a
    whole-row body)."""
    chosen = row if names is None else {name: row[name] for name in names}
    return {
        name: table.to_api(name, value)
        for name, value in chosen.items()
        if table.pushable(name) and (names is not None or value is not None)
    }


# -- one-off writes: the remote first, then the mirror -------------------------------------------------


def store_remote_record(remote: Any, table: MirrorTable, key: Key, *, origin: str = "cli") -> Record:
    """Re-read a record the remote accepted (its write response is not trustworthy) and mirror it."""
    found = remote.find([key])
    if not found:
        raise RemoteError(f"the remote accepted the write but {table.name} {key} cannot be read back")
    table.apply_page(found, policy=Policy.REMOTE, run_id=None, full=False, origin=origin)
    record: Record = found[0]
    return record


def create_record(remote: WritableRemote, table: MirrorTable, body: dict[str, Any]) -> Record:
    remote.check_write()
    key = remote.create(body, creation_id=uuid.uuid4().hex)
    return store_remote_record(remote, table, key)


def update_record(remote: WritableRemote, table: MirrorTable, key: Key, body: dict[str, Any]) -> Record:
    remote.check_write()
    remote.update(key, body)
    return store_remote_record(remote, table, key)


def delete_record(remote: WritableRemote, table: MirrorTable, key: Key) -> bool:
    """Delete remotely, then locally; False when the remote did not have it."""
    remote.check_write()
    existed = remote.delete(key)
    table.settle_push(key, None, snapshot=None, origin="cli")
    return existed
