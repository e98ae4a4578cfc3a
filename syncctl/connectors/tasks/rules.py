"""The domain rules of the to-do service's task events (system 3 in SYSTEMS.md), as pure functions.

Nothing here touches SQLite, files or the clock: the store feeds in what it read and applies what comes out.
An ingest goes: `parse_event` every raw event, apply them in `order_events` order, skip any whose
`event_key` was seen before (outcome `duplicate`), otherwise `decide` against the stored `TaskState`
and store `Decision.new_state` when it is not None.

Schema (`{event, timestamp, metadata: {userId, id, content, isCompleted}}`):
- `event` is one of `created`, `updated`, `deleted` (case-sensitive); anything else is invalid.
- `timestamp` is an ISO 8601 date-time *with* a UTC offset (`Z`, `+02:00`, ...). A timestamp without one is
  invalid: the service always sends offsets, and guessing a zone would silently shift times by hours.
- `metadata.userId` and `metadata.id` are required non-empty strings for every event.
- `metadata.content` (string, may be empty) and `metadata.isCompleted` (true/false) are required for
  `created` and `updated`, which carry the whole task. `deleted` needs only the ids; if it carries the
  other two they must still be well-typed, and are otherwise ignored.
- Unknown keys are ignored (the payload is kept whole in `task_events` anyway).

Stored times are ISO 8601 UTC text in one form, `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00` (`utc_text`); text in
that form sorts chronologically, so range queries on the TEXT columns are correct.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

EventName = Literal["created", "updated", "deleted"]
EVENT_NAMES: tuple[EventName, ...] = ("created", "updated", "deleted")

T = TypeVar("T")


class Outcome(StrEnum):
    """What ingesting one event did; the values are the `task_events.outcome` column."""

    APPLIED = "applied"
    NO_OP = "no_op"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    NOT_FOUND = "not_found"
    INVALID = "invalid"


@dataclass(frozen=True)
class ParsedEvent:
    """A schema-valid event. `content`/`is_completed` are None only for a `deleted` that omitted them."""

    event: EventName
    timestamp: datetime  # aware, UTC
    task_id: str
    user_id: str
    content: str | None
    is_completed: bool | None


@dataclass(frozen=True)
class Invalid:
    """An event that breaks the schema. The other fields are what could be read, for the audit columns."""

    message: str
    event: str | None = None
    timestamp: datetime | None = None
    task_id: str | None = None
    user_id: str | None = None


@dataclass(frozen=True)
class TaskState:
    """A stored task (a row of `tasks`). All times are aware UTC datetimes; `updated_at` is the timestamp
    of the last event that changed the task (event time, not ingest time: rules never read the clock)."""

    id: str
    user_id: str
    content: str
    is_completed: bool
    created_at: datetime
    completed_at: datetime | None
    deleted_at: datetime | None
    updated_at: datetime

    @property
    def is_open(self) -> bool:
        return not self.is_completed and self.deleted_at is None

    def to_row(self) -> dict[str, Any]:
        """The `tasks` columns: booleans as 0/1, times as `utc_text`."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "content": self.content,
            "is_completed": int(self.is_completed),
            "created_at": utc_text(self.created_at),
            "completed_at": _utc_text_or_none(self.completed_at),
            "deleted_at": _utc_text_or_none(self.deleted_at),
            "updated_at": utc_text(self.updated_at),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TaskState:
        """The inverse of `to_row`. Stored text without an offset is read as UTC (the contract's form)."""
        return cls(
            id=str(row["id"]),
            user_id=str(row["user_id"]),
            content=str(row["content"]),
            is_completed=bool(row["is_completed"]),
            created_at=parse_utc_text(row["created_at"]),
            completed_at=_parse_utc_text_or_none(row["completed_at"]),
            deleted_at=_parse_utc_text_or_none(row["deleted_at"]),
            updated_at=parse_utc_text(row["updated_at"]),
        )


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    message: str
    new_state: TaskState | None = None  # None: nothing to store


# --- times ---------------------------------------------------------------------------------------------


def utc_text(dt: datetime) -> str:
    """The one stored form of a time: `2025-04-01T18:23:45+00:00` (`.ffffff` only when non-zero)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()} has no UTC offset")
    return dt.astimezone(UTC).isoformat()


def parse_utc_text(text: str) -> datetime:
    """Read a stored time back; text without an offset is UTC (stored times always are)."""
    dt = datetime.fromisoformat(text)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def report_time_text(dt: datetime) -> str:
    """The report's time form, as in `task_report_example.json`: `2025-04-01 18:23:45+00:00`, in UTC."""
    return str(dt.astimezone(UTC))


def _utc_text_or_none(dt: datetime | None) -> str | None:
    return None if dt is None else utc_text(dt)


def _parse_utc_text_or_none(text: str | None) -> datetime | None:
    return None if text is None else parse_utc_text(text)


# --- parsing -------------------------------------------------------------------------------------------


def _shown(value: Any, limit: int = 60) -> str:
    """A value as JSON, shortened, for messages: `"yes"`, `1`, `null`."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse_timestamp(raw: Mapping[str, Any], errors: list[str]) -> datetime | None:
    if "timestamp" not in raw:
        errors.append("timestamp is missing")
        return None
    value = raw["timestamp"]
    if not isinstance(value, str):
        errors.append(f"timestamp must be an ISO 8601 string, got {_shown(value)}")
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        errors.append(f"timestamp is not an ISO 8601 date-time: {_shown(value)}")
        return None
    if dt.tzinfo is None or dt.utcoffset() is None:
        errors.append(f"timestamp must carry a UTC offset (Z or ±HH:MM), got {_shown(value)}")
        return None
    try:
        return dt.astimezone(UTC)
    except OverflowError:
        errors.append(f"timestamp is out of range: {_shown(value)}")
        return None


def _id_field(metadata: Mapping[str, Any], name: str, errors: list[str]) -> str | None:
    if name not in metadata:
        errors.append(f"metadata.{name} is missing")
        return None
    value = metadata[name]
    if not isinstance(value, str) or not value.strip():
        errors.append(f"metadata.{name} must be a non-empty string, got {_shown(value)}")
        return None
    return value


def _typed(value: Any, kind: type[T], problem: str, errors: list[str]) -> T | None:
    if isinstance(value, kind):
        return value
    errors.append(f"{problem}, got {_shown(value)}")
    return None


def parse_event(raw: Any) -> ParsedEvent | Invalid:
    """Validate one event as received (decoded JSON). Every schema error is named, joined by `; `."""
    if not isinstance(raw, Mapping):
        return Invalid(f"an event must be a JSON object, got {_shown(raw)}")
    errors: list[str] = []

    name = raw.get("event")
    event: EventName | None = None
    if "event" not in raw:
        errors.append("event is missing")
    elif name in EVENT_NAMES:
        event = name
    else:
        errors.append(f"unknown event {_shown(name)} (expected created, updated or deleted)")

    timestamp = _parse_timestamp(raw, errors)

    metadata = raw.get("metadata")
    task_id = user_id = content = None
    is_completed: bool | None = None
    if metadata is None:
        errors.append("metadata is missing")
    elif not isinstance(metadata, Mapping):
        errors.append(f"metadata must be an object, got {_shown(metadata)}")
    else:
        user_id = _id_field(metadata, "userId", errors)
        task_id = _id_field(metadata, "id", errors)
        whole_task = event in ("created", "updated")
        if "content" in metadata:
            content = _typed(metadata["content"], str, "metadata.content must be a string", errors)
        elif whole_task:
            errors.append("metadata.content is missing")
        if "isCompleted" in metadata:
            is_completed = _typed(
                metadata["isCompleted"], bool, "metadata.isCompleted must be true or false", errors
            )
        elif whole_task:
            errors.append("metadata.isCompleted is missing")

    if errors or event is None or timestamp is None or task_id is None or user_id is None:
        return Invalid(
            "; ".join(errors),
            event=name if isinstance(name, str) else None,
            timestamp=timestamp,
            task_id=task_id,
            user_id=user_id,
        )
    return ParsedEvent(event, timestamp, task_id, user_id, content, is_completed)


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(raw: Any) -> str:
    """The event as canonical JSON text: sorted keys, no spaces, so formatting never matters."""
    return _CANONICAL.encode(raw)  # one encoder for every event: json.dumps would build one per call


def event_key(raw: Any) -> str:
    """A fingerprint of the very same event (a webhook retry): sha256 of its canonical JSON, in hex.

    Taken over the event as received, valid or not, so that key order and whitespace do not matter but any
    difference in a value (even the same instant written in another offset) makes a different event.
    """
    # surrogatepass: a lone surrogate from a JSON escape ("\\ud800") is still one exact text to hash.
    return hashlib.sha256(canonical_json(raw).encode("utf-8", "surrogatepass")).hexdigest()


# --- ordering ------------------------------------------------------------------------------------------

_NO_TIME = datetime.min.replace(tzinfo=UTC)


def event_order_key(event: ParsedEvent | Invalid) -> tuple[int, datetime]:
    """Sort key for applying one ingest: by instant; events without a readable timestamp after all others.

    Use with a stable sort (`sorted`, `list.sort`), so ties keep their file order.
    """
    return (0, event.timestamp) if event.timestamp is not None else (1, _NO_TIME)


def order_events(events: Sequence[ParsedEvent | Invalid]) -> list[int]:
    """Indices of `events` in the order to apply them (timestamp order, ties in input order).

    Indices rather than events, so a caller can reorder its own parallel data (raw payloads, origins).
    """
    return sorted(range(len(events)), key=lambda index: event_order_key(events[index]))


# --- decisions -----------------------------------------------------------------------------------------


def duplicate_decision() -> Decision:
    """What to record for an event whose `event_key` was seen before: nothing changes."""
    return Decision(Outcome.DUPLICATE, "the very same event was ingested before; nothing changed")


def decide(event: ParsedEvent | Invalid, current: TaskState | None) -> Decision:
    """The outcome of one event against the stored task (`None`: no task with that id)."""
    if isinstance(event, Invalid):
        return Decision(Outcome.INVALID, event.message)
    if event.event == "created":
        return _decide_created(event, current)
    if current is None:
        return Decision(Outcome.NOT_FOUND, f"task {event.task_id!r} does not exist")
    if event.user_id != current.user_id:
        return Decision(
            Outcome.INVALID,
            f"task {event.task_id!r} belongs to user {current.user_id!r}, not {event.user_id!r}: "
            "a task keeps its owner",
        )
    if event.event == "deleted":
        if current.deleted_at is not None:
            return Decision(
                Outcome.NO_OP, f"task {event.task_id!r} was already deleted at {utc_text(current.deleted_at)}"
            )
        return Decision(
            Outcome.APPLIED,
            f"task {event.task_id!r} deleted at {utc_text(event.timestamp)}",
            _changed(current, deleted_at=event.timestamp, updated_at=event.timestamp),
        )
    return _decide_updated(event, current)


def _changed(task: TaskState, **changes: Any) -> TaskState:
    """`dataclasses.replace` for this plain frozen dataclass (no __post_init__, no slots), without its
    per-call introspection and per-field `object.__setattr__`: this runs for nearly every event."""
    state: TaskState = object.__new__(TaskState)
    state.__dict__.update(task.__dict__, **changes)
    return state


def _decide_created(event: ParsedEvent, current: TaskState | None) -> Decision:
    if current is not None:
        return Decision(
            Outcome.CONFLICT,
            f"task {event.task_id!r} already exists (created at {utc_text(current.created_at)})",
        )
    completed = bool(event.is_completed)
    state = TaskState(
        id=event.task_id,
        user_id=event.user_id,
        content=event.content or "",
        is_completed=completed,
        created_at=event.timestamp,
        completed_at=event.timestamp if completed else None,
        deleted_at=None,
        updated_at=event.timestamp,
    )
    return Decision(Outcome.APPLIED, f"task {event.task_id!r} created at {utc_text(event.timestamp)}", state)


def _decide_updated(event: ParsedEvent, current: TaskState) -> Decision:
    if current.deleted_at is not None:
        return Decision(
            Outcome.INVALID,
            f"task {event.task_id!r} was deleted at {utc_text(current.deleted_at)} and cannot be updated",
        )
    # parse_event guarantees both for `updated`; the fallbacks only keep the types honest.
    content = current.content if event.content is None else event.content
    completed = current.is_completed if event.is_completed is None else event.is_completed
    if content == current.content and completed == current.is_completed:
        already = "already completed" if completed else "unchanged"
        return Decision(Outcome.NO_OP, f"task {event.task_id!r} is {already}")
    changes = []
    if content != current.content:
        changes.append("content changed")
    if completed != current.is_completed:
        changes.append(f"completed at {utc_text(event.timestamp)}" if completed else "reopened")
    if completed and not current.is_completed:
        completed_at: datetime | None = event.timestamp
    elif completed:
        completed_at = current.completed_at  # still completed: the first completion stands
    else:
        completed_at = None
    state = _changed(
        current,
        content=content,
        is_completed=completed,
        completed_at=completed_at,
        updated_at=event.timestamp,
    )
    return Decision(Outcome.APPLIED, f"task {event.task_id!r} updated: {', '.join(changes)}", state)


# --- reports -------------------------------------------------------------------------------------------


def _as_utc(dt: datetime) -> datetime:
    # The contract's rule for report times: without an offset they are UTC.
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _id_order(task_id: str) -> tuple[int, int, str]:
    # Numeric ids in numeric order ("2" before "10"), then any others in text order.
    return (0, int(task_id), task_id) if task_id.isascii() and task_id.isdigit() else (1, 0, task_id)


def _created(task: TaskState) -> datetime:
    return task.created_at


def _completed(task: TaskState) -> datetime:
    return task.completed_at or task.created_at  # only called for completed tasks


def _entries(tasks: Iterable[TaskState], moment: Callable[[TaskState], datetime]) -> list[dict[str, str]]:
    ordered = sorted(tasks, key=lambda task: (moment(task), _id_order(task.id)))
    return [
        {"id": task.id, "content": task.content, "createdOrCompletedAt": report_time_text(moment(task))}
        for task in ordered
    ]


def user_report(
    user_id: str, period_start: datetime, period_end: datetime, tasks: Iterable[TaskState]
) -> dict[str, Any]:
    """One user's task report for the half-open period `[period_start, period_end)`.

    "Still open" is the task's state now (as stored: not completed and not deleted), not as of the period's
    end. `completedTasks` holds tasks whose (latest) completion lies in the period, deleted later or not; a
    reopened task has no completion. Tasks of other users are ignored. Each list is ordered by its time,
    then by id.
    """
    start, end = _as_utc(period_start), _as_utc(period_end)
    if end <= start:
        raise ValueError(f"the period's end {utc_text(end)} is not after its start {utc_text(start)}")
    own = [task for task in tasks if task.user_id == user_id]
    new_open = [task for task in own if task.is_open and start <= task.created_at < end]
    completed = [task for task in own if task.completed_at is not None and start <= task.completed_at < end]
    old_open = [task for task in own if task.is_open and task.created_at < start]
    return {
        "userId": user_id,
        "period": {"start": report_time_text(start), "end": report_time_text(end)},
        "newIncompleteTasks": _entries(new_open, _created),
        "completedTasks": _entries(completed, _completed),
        "oldIncompleteTasks": _entries(old_open, _created),
    }


def sort_ids(ids: Iterable[str]) -> list[str]:
    """Ids once each, in report order: numeric ids numerically ("2" before "10"), then the others as text."""
    return sorted(set(ids), key=_id_order)


def report_user_ids(tasks: Iterable[TaskState]) -> list[str]:
    """Every user that owns a task, in id order: the users a report run covers."""
    return sort_ids(task.user_id for task in tasks)
