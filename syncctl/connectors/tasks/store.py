"""The source's two tables, and the one place their rows are written and read.

`tasks` holds each task as the events left it; `task_events` is the append-only audit log of every event
ingested, accepted or not. A batch of events is one transaction: its `task_events` rows, the changed
`tasks` rows (through `MirrorTable.write_rows`, so `_syncctl_history` records them with origin `ingest`)
and nothing else, so a crash leaves either the whole batch or none of it. Whether an event was seen before
is answered by `task_events` itself: its rows are the memory of every event key ever ingested.

`task_events` has two columns beyond CONTRACT.md's list: `event_key` (the fingerprint of `rules.event_key`,
how a retried webhook is recognised) and `run_id` (the run that ingested it). Its index is on
`(timestamp, event_key)` rather than on the key alone: events are applied in timestamp order, so the index
grows at its end; an index on a hash grows everywhere at once and makes every batch rewrite most of it.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syncctl.connectors.tasks.rules import (
    Decision,
    Invalid,
    Outcome,
    ParsedEvent,
    TaskState,
    decide,
    duplicate_decision,
    parse_utc_text,
    sort_ids,
    utc_text,
)
from syncctl.core.db import Database, now_iso
from syncctl.core.errors import DatabaseError
from syncctl.core.mirror import Key, MirrorTable, TableSpec, storable
from syncctl.core.runs import State

SOURCE = "tasks"

TASKS = TableSpec(
    name="tasks",
    source=SOURCE,
    key="id",
    key_type="TEXT",
    known={
        "id": "str",
        "user_id": "str",
        "content": "str",
        "is_completed": "bool",
        "created_at": "str",
        "completed_at": "str",
        "deleted_at": "str",
        "updated_at": "str",
    },
    capture=False,  # one-way in: nothing here is ever pushed, so local edits are not collected
    dynamic=False,
    indexes=(("user_id",),),
    ddl="""CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    content TEXT NOT NULL,
    is_completed INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    completed_at TEXT,
    deleted_at TEXT,
    updated_at TEXT NOT NULL
)""",
)

TASK_EVENTS = TableSpec(
    name="task_events",
    source=SOURCE,
    key="seq",
    key_type="INTEGER",
    capture=False,
    dynamic=False,
    indexes=(("timestamp", "event_key"),),
    ddl="""CREATE TABLE task_events (
    seq INTEGER PRIMARY KEY,
    event TEXT,
    timestamp TEXT,
    task_id TEXT,
    user_id TEXT,
    payload TEXT,
    outcome TEXT NOT NULL,
    message TEXT NOT NULL,
    origin TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    event_key TEXT,
    run_id INTEGER
)""",
)

_INSERT_EVENT = (
    "INSERT INTO task_events (event, timestamp, task_id, user_id, payload, outcome, message, origin,"
    " ingested_at, event_key, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SEEN = (
    "SELECT j.key FROM json_each(?) AS j WHERE EXISTS (SELECT 1 FROM task_events AS e"
    " WHERE e.timestamp IS j.value ->> 0 AND e.event_key = j.value ->> 1)"
)
TASK_COLUMNS = [
    "id",
    "user_id",
    "content",
    "is_completed",
    "created_at",
    "completed_at",
    "deleted_at",
    "updated_at",
]
_TASK_COLUMNS = ", ".join(TASK_COLUMNS)

# One event as the store takes it: the event (valid or not), its timestamp as stored (None when it has
# none), its key, its text as received, and where it came from.
Incoming = tuple[ParsedEvent | Invalid, str | None, str, str, str]


@dataclass
class BatchResult:
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    inserted: int = 0  # `created` events that made a task
    updated: int = 0  # `updated`/`deleted` events that changed one


class TaskStore:
    """Writes batches of events; opens (and on first use creates) both tables."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.conn = db.conn
        self.tasks = MirrorTable.open(db, TASKS)
        self.events = MirrorTable.open(db, TASK_EVENTS)
        if self.tasks.columns != TASK_COLUMNS:
            raise DatabaseError(
                f"table tasks in {db.path} no longer has the columns syncctl made"
                f" ({', '.join(TASK_COLUMNS)}); nothing was ingested"
            )

    def apply(self, batch: Sequence[Incoming], *, run_id: int | None) -> BatchResult:
        """Decide and store a batch of events, given in the order to apply them, in one transaction."""
        result = BatchResult()
        if not batch:
            return result
        ingested_at = now_iso()
        with self.db.transaction(applying=True):
            seen = self._seen([(ts, key) for _, ts, key, _, _ in batch])
            wanted = {
                e.task_id for e, _, key, _, _ in batch if isinstance(e, ParsedEvent) and key not in seen
            }
            before = self._rows(wanted)
            # Each stored time is parsed once, and its text kept for writing the row back.
            texts = Rows()
            states = {task_id: texts.state(row) for task_id, row in before.items()}
            changed: dict[str, None] = {}
            rows = []
            duplicate = duplicate_decision()
            outcomes = result.outcomes
            for event, ts, key, payload, origin in batch:
                decision: Decision
                if key in seen:
                    decision = duplicate
                else:
                    seen.add(key)
                    current = states.get(event.task_id) if isinstance(event, ParsedEvent) else None
                    decision = decide(event, current)
                    state = decision.new_state
                    if state is not None:
                        states[state.id] = state
                        changed[state.id] = None
                        assert isinstance(event, ParsedEvent) and ts is not None  # only those change a task
                        texts.known[event.timestamp] = ts
                        if event.event == "created":
                            result.inserted += 1
                        else:
                            result.updated += 1
                outcomes[decision.outcome] += 1
                # The outcome is a StrEnum: SQLite stores it as its text.
                rows.append(
                    (
                        event.event,
                        ts,
                        event.task_id,
                        event.user_id,
                        payload,
                        decision.outcome,
                        decision.message,
                        origin,
                        ingested_at,
                        key,
                        run_id,
                    )
                )
            self._insert_events(rows)
            # Several events of one task in a batch become one row change (and one history entry): the
            # events themselves are each in task_events.
            written = [texts.row(states[task_id]) for task_id in changed]
            self.tasks.write_rows(written, before, origin="ingest", run_id=run_id)
        return result

    def record_rejected(self, origin: str, reason: str, *, run_id: int | None) -> None:
        """The audit row of a file that could not be read as events, committed before the file is moved."""
        at = now_iso()
        with self.db.transaction():
            self._insert_events(
                [(None, None, None, None, None, Outcome.INVALID.value, reason, origin, at, None, run_id)]
            )
            State(self.db, SOURCE).set("last_rejected", f"{at} {origin}: {reason}")

    def _seen(self, pairs: list[tuple[str | None, str]]) -> set[str]:
        """The keys among the batch's that task_events already holds.

        An event later than every stored one cannot be among them (its row would carry its time), so in a
        backlog applied in time order almost nothing needs looking up; a re-ingest looks up everything.
        """
        newest = self.conn.execute("SELECT max(timestamp) FROM task_events").fetchone()[0]
        maybe = [pair for pair in pairs if pair[0] is None or (newest is not None and pair[0] <= newest)]
        if not maybe:
            return set()
        found = self.conn.execute(_SEEN, (json.dumps(maybe),)).fetchall()
        return {maybe[index][1] for (index,) in found}

    def _rows(self, task_ids: set[str]) -> dict[Key, tuple[Any, ...]]:
        if not task_ids:
            return {}
        found = self.conn.execute(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(task_ids)),),
        )
        return {row[0]: row for row in found}

    def _insert_events(self, rows: Sequence[tuple[object, ...]]) -> None:
        self.conn.execute("SAVEPOINT task_events")
        try:
            self.conn.executemany(_INSERT_EVENT, rows)
        except (UnicodeEncodeError, OverflowError, sqlite3.InterfaceError, sqlite3.ProgrammingError):
            # A value SQLite cannot bind (a lone surrogate from a JSON escape): stored as near as can be.
            self.conn.execute("ROLLBACK TO task_events")
            self.conn.executemany(_INSERT_EVENT, [tuple(map(storable, row)) for row in rows])
        finally:
            self.conn.execute("RELEASE task_events")


class Rows:
    """Tasks to and from `tasks` rows (`TASK_COLUMNS` order), as `TaskState.from_row`/`to_row` do, with
    each time parsed or formatted once: a batch touches thousands of tasks, each with four times.

    A time keeps the text it was read with (or its event was staged with), so a stored text that is not
    in `utc_text` form is written back as it was: the same instant, no change to record.
    """

    def __init__(self) -> None:
        self.known: dict[datetime, str] = {}

    def state(self, row: tuple[Any, ...]) -> TaskState:
        task_id, user_id, content, completed, *texts = row
        try:
            moments = [None if text is None else parse_utc_text(text) for text in texts]
        except (TypeError, ValueError):
            raise DatabaseError(
                f"task {task_id!r} in table tasks has a time that is not ISO 8601"
                f" ({', '.join(map(repr, texts))}); correct or delete the row"
            ) from None
        for moment, text in zip(moments, texts, strict=True):
            if moment is not None:
                self.known[moment] = text
        created, completed_at, deleted, updated = moments
        assert created is not None and updated is not None  # NOT NULL columns
        return TaskState(
            str(task_id), str(user_id), str(content), bool(completed), created, completed_at, deleted, updated
        )

    def text(self, moment: datetime | None) -> str | None:
        if moment is None:
            return None
        found = self.known.get(moment)
        if found is None:
            found = self.known[moment] = utc_text(moment)
        return found

    def row(self, state: TaskState) -> tuple[Any, ...]:
        text = self.text
        return (
            state.id,
            state.user_id,
            state.content,
            int(state.is_completed),
            text(state.created_at),
            text(state.completed_at),
            text(state.deleted_at),
            text(state.updated_at),
        )


# -- reading, for reports (works on a read-only file) --------------------------------------------------


def report_users(db: Database) -> list[str]:
    """Every user that owns a task, in the rules' id order."""
    if not MirrorTable.open(db, TASKS).exists:
        return []
    return sort_ids(row[0] for row in db.conn.execute("SELECT DISTINCT user_id FROM tasks"))


def report_tasks(db: Database, user_id: str, start: datetime, end: datetime) -> list[TaskState]:
    """A user's tasks a report over `[start, end)` can list: the open ones and those completed in it.

    Stored times are `utc_text`, which sorts as time does, so the period is compared as text here; the
    rules decide the lists exactly.
    """
    found = db.conn.execute(
        f"SELECT {_TASK_COLUMNS} FROM tasks WHERE user_id = ? AND ((is_completed = 0 AND deleted_at IS NULL)"
        " OR (completed_at >= ? AND completed_at < ?))",
        (user_id, utc_text(start), utc_text(end)),
    )
    rows = Rows()
    return [rows.state(row) for row in found]
