"""One ingest of task events: read every file, apply all their events in timestamp order, then move the files.

The one code path behind `syncctl sync tasks` (the inbox) and `syncctl tasks ingest` (files, folders,
standard input):

1. Read each file whole and stage its events, decoded and checked by the rules, in sorted run files
   (`staging`; in worker processes for a large ingest). A file that is not well-formed is rejected: its
   audit row is committed, it moves to `rejected/`, and whatever of it was staged is left out.
2. Apply the staged events of all accepted files in timestamp order (ties in file, then event order),
   in batches of `batch_size`, each one transaction (`TaskStore.apply`).
3. Move each accepted file to `processed/`.

A crash or a stop anywhere leaves the files in the inbox; reading them again finds the events already
committed and records them as `duplicate`, so no event is lost or applied twice.

Counts, per event of the accepted files (`fetched` is their number):
`inserted` = `created` events that made a task; `updated` = `updated`/`deleted` events that changed one;
`unchanged` = `no_op` and `duplicate`; `skipped` = `conflict`, `not_found` and `invalid`. So
`fetched = inserted + updated + unchanged + skipped`. `extra` has `files` (accepted files),
`rejected_files` and `outcomes` (events per outcome).
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from syncctl.connectors.tasks.config import Settings
from syncctl.connectors.tasks.inbox import Inbox, InputFile, shown
from syncctl.connectors.tasks.rules import Invalid, Outcome, ParsedEvent
from syncctl.connectors.tasks.sorting import Item, merge_runs
from syncctl.connectors.tasks.staging import groups, stage_all, worker_count
from syncctl.connectors.tasks.store import Incoming, TaskStore
from syncctl.core.engine import RunContext
from syncctl.core.errors import SyncctlError

log = logging.getLogger("syncctl.tasks")

UNCHANGED = (Outcome.NO_OP, Outcome.DUPLICATE)
SKIPPED = (Outcome.CONFLICT, Outcome.NOT_FOUND, Outcome.INVALID)


def run_ingest(ctx: RunContext, settings: Settings) -> None:
    """Ingest the inbox, or the targets a one-off `tasks ingest` named; counts go to `ctx.result`."""
    result = ctx.result
    result.mode = "ingest"
    inbox = Inbox(settings.inbox)
    inbox.check()
    ctx.state.set("inbox", shown(inbox.root))
    if settings.targets is None:
        files = inbox.files()
    else:
        files = inbox.inputs(list(settings.targets), settings.stdin_spool)
    store = TaskStore(ctx.db)
    outcomes: Counter[Outcome] = Counter()
    left_out: set[int] = set()
    accepted: list[InputFile] = []
    paths = [item.path for item in files]
    workers = worker_count(paths, settings.workers)
    try:
        with tempfile.TemporaryDirectory(prefix="syncctl-tasks-") as spill:
            folder = Path(spill)
            runs: list[Path] = []
            staging = stage_all(groups(paths), folder, settings.run_size, workers)
            try:
                for results, written in staging:
                    runs.extend(map(Path, written))
                    for found in results:
                        item = files[found.number]
                        if found.vanished:
                            left_out.add(found.number)
                            log.warning("%s disappeared before it could be read; skipped", item.origin)
                        elif found.problem is not None:
                            left_out.add(found.number)
                            subject = "standard input" if item.is_stdin else "the file"
                            reject(ctx, store, inbox, item, f"{subject} {found.problem}", keep=settings.keep)
                        else:
                            accepted.append(item)
                            result.fetched += found.count
                    ctx.progress("read tasks events", result.fetched, None)
                    ctx.check_stop()
            finally:
                staging.close()
            done = 0
            origins = [item.origin for item in files]
            for batch in batches(merge_runs(runs, folder), left_out, origins, settings.batch_size):
                applied = store.apply(batch, run_id=result.run_id)
                outcomes.update(applied.outcomes)
                result.inserted += applied.inserted
                result.updated += applied.updated
                done += len(batch)
                ctx.progress("apply tasks events", done, result.fetched)
                ctx.check_stop()
    finally:
        # Also when stopped: the counts say what was committed.
        result.unchanged = sum(outcomes[o] for o in UNCHANGED)
        result.skipped = sum(outcomes[o] for o in SKIPPED)
        result.extra["files"] = len(accepted)
        result.extra["rejected_files"] = result.extra.get("rejected_files", 0)
        result.extra["outcomes"] = {o.value: outcomes[o] for o in Outcome}
    if not settings.keep:
        for item in accepted:
            _settle(inbox, item, accepted=True)
    log.info(
        "%d event(s) from %d file(s) (%d worker process(es)): %s",
        result.fetched,
        len(accepted),
        workers if workers > 1 else 0,
        ", ".join(f"{o.value} {outcomes[o]}" for o in Outcome),
    )


def reject(
    ctx: RunContext, store: TaskStore, inbox: Inbox, item: InputFile, reason: str, *, keep: bool
) -> None:
    """Record why a file was not taken, then move it to `rejected/`: the row first, so a crash between the
    two leaves the file in the inbox to be rejected (and recorded) again, never a moved file without a row.
    Standard input is always kept in `rejected/`: there is no other copy of it."""
    extra = ctx.result.extra
    extra["rejected_files"] = extra.get("rejected_files", 0) + 1
    store.record_rejected(item.origin, f"{reason}; nothing from it was applied", run_id=ctx.result.run_id)
    moved = None if keep and not item.is_stdin else _settle(inbox, item, accepted=False)
    where = f"; moved to {shown(moved)}" if moved is not None else ""
    log.error("rejected %s: %s; nothing from it was applied%s", item.origin, reason, where)


def _settle(inbox: Inbox, item: InputFile, *, accepted: bool) -> Path | None:
    try:
        return inbox.settle(item, accepted=accepted)
    except SyncctlError as exc:
        log.error("%s; it stays where it is and is read again next time", exc)
        return None


def batches(
    items: Iterator[Item], left_out: set[int], origins: list[str], size: int
) -> Iterator[list[Incoming]]:
    """The staged events of the files not left out, in order, as the store takes them, `size` at a time."""
    batch: list[Incoming] = []
    for _, when, number, _, name, task_id, user_id, content, completed, invalid, key, text in items:
        if number in left_out:
            continue
        timestamp = datetime.fromisoformat(when) if when else None
        event: ParsedEvent | Invalid
        if invalid is None:
            assert timestamp is not None
            event = ParsedEvent(name, timestamp, task_id, user_id, content, completed)
        else:
            event = Invalid(invalid, name, timestamp, task_id, user_id)
        batch.append((event, when or None, key, text, origins[number]))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
