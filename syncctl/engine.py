"""The sync engine: the one place where fetching (client) and saving (store) meet. Never prints."""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from syncctl.connectors.intempus import fields
from syncctl.connectors.intempus.client import Case, IntempusClient, TransientError
from syncctl.core.errors import (
    AuthError,
    DatabaseError,
    InterruptedRun,
    RefusedError,
    RemoteError,
    SyncctlError,
)
from syncctl.core.merge import ROW, Conflict, Policy, merge_case, remote_changed
from syncctl.store import RUN_COUNTS, PageCounts, PendingChange, Store

log = logging.getLogger("syncctl.engine")

Progress = Callable[[str, int, int | None], None]  # phase, done, total (None when unknown)


def no_progress(phase: str, done: int, total: int | None) -> None:
    return None


def never_stop() -> None:
    return None


@dataclass
class SyncOptions:
    full: bool = False
    push: bool = True
    policy: Policy = Policy.REMOTE
    allow_mass_delete: bool = False
    max_delete_fraction: float = 0.2


@dataclass
class SyncResult:
    mode: str
    status: str = "ok"
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    pushed: int = 0
    push_failed: int = 0
    conflicts: int = 0
    duration_s: float = 0.0
    cursor: int | None = None
    run_id: int | None = None
    error: SyncctlError | None = field(default=None, repr=False)

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in RUN_COUNTS}

    def add(self, page: PageCounts) -> None:
        self.inserted += page.inserted
        self.updated += page.updated
        self.unchanged += page.unchanged
        self.conflicts += len(page.conflicts)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"mode": self.mode, "status": self.status, **self.counts()}
        data["duration_s"] = round(self.duration_s, 3)
        data.update(cursor=self.cursor, run_id=self.run_id, error=str(self.error) if self.error else None)
        return data


def run_sync(
    client: IntempusClient,
    store: Store,
    options: SyncOptions,
    *,
    progress: Progress = no_progress,
    check_stop: Callable[[], None] = never_stop,
    clock: Callable[[], float] = time.monotonic,
) -> SyncResult:
    """Push local changes, then pull; record the run. Errors end up in `result.error`, never half-applied."""
    cursor = store.get_cursor()
    result = SyncResult(mode="full" if options.full or cursor is None else "incremental", cursor=cursor)
    started = clock()
    result.run_id = store.start_run(result.mode)
    try:
        if options.push:
            push_pending(client, store, options, result, check_stop=check_stop, progress=progress)
        pull(client, store, options, result, check_stop=check_stop, progress=progress)
    except SyncctlError as exc:
        result.error = exc
    except sqlite3.Error as exc:
        result.error = DatabaseError(f"{store.path} is not a usable SQLite database: {exc}")
    except BaseException as exc:
        result.error = SyncctlError(f"internal error: {exc.__class__.__name__}")
        _record_run(store, result, clock() - started)
        raise
    _record_run(store, result, clock() - started)
    return result


def _record_run(store: Store, result: SyncResult, duration_s: float) -> None:
    result.duration_s = duration_s
    if isinstance(result.error, InterruptedRun):
        result.status = "interrupted"
    elif isinstance(result.error, RefusedError):
        result.status = "refused"
    elif result.error is not None:
        result.status = "failed"
    assert result.run_id is not None
    try:
        store.finish_run(
            result.run_id,
            status=result.status,
            counts=result.counts(),
            duration_s=duration_s,
            error=str(result.error) if result.error else None,
        )
    except sqlite3.Error as exc:  # the file itself is broken: the run's own error says more
        log.error("could not record the run in %s: %s", store.path, exc)


# -- pulling -------------------------------------------------------------------------------------------


def pull(
    client: IntempusClient,
    store: Store,
    options: SyncOptions,
    result: SyncResult,
    *,
    check_stop: Callable[[], None],
    progress: Progress,
) -> None:
    full = result.mode == "full"
    since = None if full else result.cursor
    if full:
        store.begin_listing()
    committed: int | None = None  # the Logical-Timestamp header of the first page
    highest = since
    total: int | None = None
    shifted = False  # offset paging saw the result set change size: a case may have been skipped
    for number, page in enumerate(client.iter_pages(since=since)):
        if number == 0:
            committed = page.logical_timestamp
            total = page.total_count
        elif page.total_count != total and not client.cursor_paging:
            shifted = True
        counts = store.apply_page(page.objects, policy=options.policy, run_id=result.run_id, full=full)
        result.fetched += len(page.objects)
        result.add(counts)
        if counts.highest_stamp is not None:
            highest = max(highest or 0, counts.highest_stamp)
        progress("pull", result.fetched, total)
        check_stop()
    if full:
        delete_unseen(client, store, options, result)
    # Changes committed while we were listing have timestamps above the first page's header, so the next
    # incremental run sees them; without that header, the highest timestamp seen is the best we know.
    new_cursor = committed if committed is not None else highest
    if shifted:
        log.warning(
            "Intempus changed while it was listed with offset paging, so a case may have been skipped;"
            " the cursor stays where it was and the next run lists these changes again"
        )
    elif new_cursor is not None and (since is None or new_cursor >= since):
        store.set_cursor(new_cursor)
        result.cursor = new_cursor


def delete_unseen(client: IntempusClient, store: Store, options: SyncOptions, result: SyncResult) -> None:
    """Delete local cases a complete listing did not return, once Intempus confirms each one is gone."""
    unseen = store.unseen_ids()
    if not unseen:
        return
    local_total = store.case_count()
    if result.fetched == 0 and not options.allow_mass_delete:
        raise RefusedError(
            f"Intempus listed no cases while the mirror holds {local_total}; nothing was deleted "
            "(check Intempus; --allow-mass-delete overrides)"
        )
    # Offset paging can skip a case that moved during the listing: confirm before deleting anything.
    still_there = client.find_cases(unseen, canary=store.seen_id())
    if still_there:
        log.info("%d cases missed by the listing still exist; storing them", len(still_there))
        counts = store.apply_page(still_there, policy=options.policy, run_id=result.run_id, full=True)
        result.add(counts)
    gone = sorted(set(unseen) - {case["id"] for case in still_there})
    limit = options.max_delete_fraction * local_total
    if len(gone) > limit and not options.allow_mass_delete:
        raise RefusedError(
            f"this full sync would delete {len(gone)} of {local_total} cases, more than "
            f"SYNCCTL_MAX_DELETE_FRACTION={options.max_delete_fraction:g} allows; nothing was deleted "
            "(check Intempus; --allow-mass-delete overrides)"
        )
    deleted, conflicts = store.apply_remote_deletes(gone, policy=options.policy, run_id=result.run_id)
    result.deleted += deleted
    result.conflicts += len(conflicts)


# -- pushing -------------------------------------------------------------------------------------------

PUSH_BATCH = 100  # changes whose remote versions are read with one `id__in` request, before and after


@dataclass
class PushOutcome:
    """What pushing one change did, and how to learn what Intempus holds afterwards."""

    sent: bool
    conflicts: list[Conflict]
    reread: int | None = None  # the id to read back from Intempus after a write
    remote: Case | None = None  # what Intempus holds, when known without reading it back


def push_pending(
    client: IntempusClient,
    store: Store,
    options: SyncOptions,
    result: SyncResult,
    *,
    check_stop: Callable[[], None] = never_stop,
    progress: Progress = no_progress,
) -> None:
    """Send every local change to Intempus; one bad change never blocks the others.

    Changes go in batches: one `id__in` read of their current remote versions (for the three-way
    merge), the writes, then one read-back of what was written (write responses are not trusted).
    """
    changes = store.pending_changes()
    guard_local_deletes(store, changes, options)
    done = 0
    for start in range(0, len(changes), PUSH_BATCH):
        batch = changes[start : start + PUSH_BATCH]
        known = client.find_cases(change.id for change in batch if change.op != "insert")
        remote_now = {case["id"]: case for case in known}
        outcomes: list[tuple[PendingChange, PushOutcome]] = []
        for change in batch:
            try:
                outcome = push_change(client, store, change, remote_now.get(change.id), options.policy)
            except (AuthError, TransientError) as exc:
                # Intempus is unreachable or refuses us: every other change would fail the same way.
                store.record_push_failure(change.id, str(exc))
                result.push_failed += 1
                _settle(client, store, outcomes, result)
                raise
            except RemoteError as exc:
                log.warning("push of case %s failed: %s", change.id, exc)
                store.record_push_failure(change.id, str(exc))
                result.push_failed += 1
            else:
                outcomes.append((change, outcome))
            done += 1
            progress("push", done, len(changes))
        _settle(client, store, outcomes, result)
        check_stop()


def guard_local_deletes(store: Store, changes: list[PendingChange], options: SyncOptions) -> None:
    """Refuse to push a mass delete: `DELETE FROM cases` typed by mistake must not empty Intempus."""
    deletes = sum(1 for change in changes if change.op == "delete")
    before = store.case_count() + deletes
    if deletes > options.max_delete_fraction * before and not options.allow_mass_delete:
        raise RefusedError(
            f"{deletes} of {before} cases were deleted in the local file, more than"
            f" SYNCCTL_MAX_DELETE_FRACTION={options.max_delete_fraction:g} allows; nothing was sent to"
            " Intempus (`syncctl discard --all` restores them; --allow-mass-delete pushes the deletes)"
        )


def _settle(
    client: IntempusClient,
    store: Store,
    outcomes: list[tuple[PendingChange, PushOutcome]],
    result: SyncResult,
) -> None:
    """Read back what was written and store it; each change is closed in its own transaction."""
    written = client.find_cases(o.reread for _, o in outcomes if o.reread is not None)
    read_back = {case["id"]: case for case in written}
    for change, outcome in outcomes:
        remote = read_back.get(outcome.reread) if outcome.reread is not None else outcome.remote
        store.settle_push(
            change.id, remote, snapshot=change.local, conflicts=outcome.conflicts, run_id=result.run_id
        )
        result.pushed += int(outcome.sent)
        result.conflicts += len(outcome.conflicts)


def _writable_body(store: Store, row: dict[str, Any], names: Iterable[str] | None = None) -> dict[str, Any]:
    chosen = row if names is None else {name: row[name] for name in names}
    return {
        name: store.to_api(name, value)
        for name, value in chosen.items()
        if name != "id" and fields.is_writable(name) and (names is not None or value is not None)
    }


def push_change(
    client: IntempusClient, store: Store, change: PendingChange, remote: Case | None, policy: Policy
) -> PushOutcome:
    """Push one change, given the case as Intempus holds it now (None: not there)."""
    if change.op == "insert":
        return _push_insert(client, store, change, [])
    if change.op == "delete":
        return _push_delete(client, store, change, remote, policy)
    return _push_update(client, store, change, remote, policy)


def _push_insert(
    client: IntempusClient, store: Store, change: PendingChange, conflicts: list[Conflict]
) -> PushOutcome:
    if change.local is None:
        return PushOutcome(sent=False, conflicts=conflicts)
    creation_id = change.creation_id
    if creation_id is None:
        # Stored before the POST: a run that dies after Intempus created the case repeats the same key.
        creation_id = uuid.uuid4().hex
        store.set_creation_id(change.id, creation_id)
    created = client.create_case(_writable_body(store, change.local), creation_id=creation_id)
    return PushOutcome(sent=True, conflicts=conflicts, reread=created["id"])


def _push_update(
    client: IntempusClient, store: Store, change: PendingChange, remote: Case | None, policy: Policy
) -> PushOutcome:
    local, base = change.local, change.base or {}
    if local is None:
        return PushOutcome(sent=False, conflicts=[])
    if remote is None:
        conflict = Conflict(change.id, ROW, "synced", "edited", "deleted", policy)
        if policy is Policy.REMOTE:
            return PushOutcome(sent=False, conflicts=[conflict])
        recreate = PendingChange(change.id, "insert", None, local, None, change.attempts, None)
        return _push_insert(client, store, recreate, [conflict])
    remote_row = store.to_row(remote)
    merged, conflicts = merge_case(change.id, base, local, remote_row, policy)
    to_send = [
        name
        for name, value in merged.items()
        if name != "id" and fields.is_writable(name) and value != remote_row.get(name)
    ]
    if not to_send:
        return PushOutcome(sent=False, conflicts=conflicts, remote=remote)
    client.update_case(change.id, _writable_body(store, merged, to_send))
    return PushOutcome(sent=True, conflicts=conflicts, reread=change.id)


def _push_delete(
    client: IntempusClient, store: Store, change: PendingChange, remote: Case | None, policy: Policy
) -> PushOutcome:
    conflicts: list[Conflict] = []
    if remote is not None and change.base is not None and remote_changed(change.base, store.to_row(remote)):
        conflicts.append(Conflict(change.id, ROW, "synced", "deleted", "edited", policy))
        if policy is Policy.REMOTE:
            return PushOutcome(sent=False, conflicts=conflicts, remote=remote)
    if remote is not None:
        client.delete_case(change.id)  # a 404 here means someone else deleted it first: done all the same
    return PushOutcome(sent=True, conflicts=conflicts)


# -- one-off writes: Intempus first, then the mirror -------------------------------------------------


def create_case(client: IntempusClient, store: Store, body: dict[str, Any]) -> Case:
    created = client.create_case(body, creation_id=uuid.uuid4().hex)
    return store_remote_case(client, store, created["id"])


def update_case(client: IntempusClient, store: Store, case_id: int, body: dict[str, Any]) -> Case:
    client.update_case(case_id, body)
    return store_remote_case(client, store, case_id)


def store_remote_case(client: IntempusClient, store: Store, case_id: int) -> Case:
    """Re-read a case Intempus accepted (its write response is not trustworthy) and mirror it."""
    remote = client.get_case(case_id)
    store.apply_page([remote], policy=Policy.REMOTE, run_id=None, full=False)
    return remote


def delete_case(client: IntempusClient, store: Store, case_id: int) -> bool:
    """Delete in Intempus, then locally; False when Intempus did not have it."""
    existed = client.delete_case(case_id)
    store.settle_push(case_id, None, snapshot=None)
    return existed


def status_report(store: Store) -> dict[str, Any]:
    """What `syncctl status` shows: cases, cursor, changes waiting to be pushed, the last runs."""
    runs = store.runs(limit=10)
    return {
        "database": str(store.path),
        "cases": store.case_count(),
        "cursor": store.get_cursor(),
        "pending": store.pending_count(),
        "pending_changes": store.pending_summary(),
        "last_run": runs[0] if runs else None,
        "runs": runs,
    }
