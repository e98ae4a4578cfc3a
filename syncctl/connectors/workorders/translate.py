"""Translation between the client's work-order files and the `workorders` table (system 5), as pure functions.

The client's format (one JSON object per file, see the `tracos/inbound` fixtures)::

    {"orderNo": 1, "isCanceled": false, "isDeleted": false, "isDone": false, "isOnHold": false,
     "isPending": true, "summary": "...", "creationDate": "2025-05-02T00:00:00+00:00",
     "lastUpdateDate": "2025-05-02T01:00:00+00:00", "deletedDate": null}

Decisions, each because a bad file is never guessed at:
- Required: `orderNo` (an integer, not a boolean or `1.0`), `summary` (a string), `creationDate` and
  `lastUpdateDate` (ISO 8601 date-times with a UTC offset), and all five flags as JSON booleans.
  `deletedDate` is optional (absent or null). Unknown keys are ignored. A key given twice is rejected.
- Status: at most one of `isDone`, `isOnHold`, `isCanceled`, `isPending` may be true (→ `completed`,
  `on_hold`, `cancelled`, `pending`; none → `in_progress`). Two or more is contradictory and the file is
  rejected rather than resolved by a precedence that would be a guess (and could not round-trip).
- `isDeleted` is not a status: it combines with any of the above, sets `deleted`, and `deleted_at` is the
  file's `deletedDate`, or its `lastUpdateDate` when that is null. A `deletedDate` on an order whose
  `isDeleted` is false is contradictory and rejected.
- The client's format has no description: inbound orders carry `description=None`, and outbound files
  carry none.
- Dates are normalised to UTC, written `2025-05-02T00:00:00+00:00` both in the table and outbound (the
  client's own style), so the fixtures round-trip byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from syncctl.core.errors import SyncctlError

SQLITE_INTEGERS = range(-(2**63), 2**63)  # what an INTEGER PRIMARY KEY can hold


class Status(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# The client's status flags, in the order its files list them; isDeleted is kept apart (not a status).
STATUS_FLAGS: dict[str, Status] = {
    "isCanceled": Status.CANCELLED,
    "isDone": Status.COMPLETED,
    "isOnHold": Status.ON_HOLD,
    "isPending": Status.PENDING,
}
FLAGS = ("isCanceled", "isDeleted", "isDone", "isOnHold", "isPending")


@dataclass(frozen=True)
class WorkOrder:
    number: int
    title: str
    status: Status
    created_at: datetime  # aware, UTC
    updated_at: datetime  # aware, UTC
    deleted: bool = False
    deleted_at: datetime | None = None
    description: str | None = None


@dataclass(frozen=True)
class Rejected:
    """A file that is not a usable work order; `reason` is one line naming what is wrong."""

    reason: str
    number: int | None = None  # the file's orderNo when it could be read, for the log line


class InvalidRow(SyncctlError):
    """A stored row that cannot be written in the client's format (e.g. a hand-edited unknown status)."""


def utc_text(dt: datetime) -> str:
    """Stored and outbound form of a time: `2025-05-02T00:00:00+00:00` (`.ffffff` only when non-zero)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()} has no UTC offset")
    return dt.astimezone(UTC).isoformat()


def _stored_time(value: str | datetime) -> datetime:
    # Stored text is UTC by contract, so text without an offset is read as UTC here (and only here).
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _shown(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- inbound -------------------------------------------------------------------------------------------


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(f"key {_shown(key)} appears twice")
        seen[key] = value
    return seen


def _client_time(data: Mapping[str, Any], name: str, errors: list[str]) -> datetime | None:
    value = data[name]
    if not isinstance(value, str):
        errors.append(f"{name} must be an ISO 8601 date-time string, got {_shown(value)}")
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        errors.append(f"{name} is not an ISO 8601 date-time: {_shown(value)}")
        return None
    if dt.tzinfo is None or dt.utcoffset() is None:
        errors.append(f"{name} has no UTC offset: {_shown(value)}")
        return None
    try:
        return dt.astimezone(UTC)
    except OverflowError:
        errors.append(f"{name} is out of range: {_shown(value)}")
        return None


def parse_inbound(data: bytes) -> WorkOrder | Rejected:
    """Read one client file (UTF-8, a BOM allowed). Never raises for bad content: it returns `Rejected`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return Rejected(f"not UTF-8 text (byte {error.start})")
    if not text.strip():
        return Rejected("empty file")
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as error:
        return Rejected(f"ambiguous JSON: {error}")
    except json.JSONDecodeError as error:
        return Rejected(f"corrupt JSON: {error}")
    if not isinstance(document, dict):
        return Rejected(f"expected a JSON object, got {type(document).__name__}")
    return _translate(document)


def _translate(data: Mapping[str, Any]) -> WorkOrder | Rejected:
    errors: list[str] = []
    required = ("orderNo", "summary", "creationDate", "lastUpdateDate", *FLAGS)
    missing = [name for name in required if name not in data]
    if missing:
        errors.append(f"missing {', '.join(missing)}")

    number = data.get("orderNo")
    if "orderNo" in data and (type(number) is not int or number not in SQLITE_INTEGERS):
        errors.append(f"orderNo must be an integer, got {_shown(number)}")
        number = None
    if "summary" in data and not isinstance(data["summary"], str):
        errors.append(f"summary must be a string, got {_shown(data['summary'])}")
    flags: dict[str, bool] = {}
    for name in FLAGS:
        if name in data:
            if isinstance(data[name], bool):
                flags[name] = data[name]
            else:
                errors.append(f"{name} must be true or false, got {_shown(data[name])}")
    created_at = _client_time(data, "creationDate", errors) if "creationDate" in data else None
    updated_at = _client_time(data, "lastUpdateDate", errors) if "lastUpdateDate" in data else None
    deleted_date = None
    if data.get("deletedDate") is not None:
        deleted_date = _client_time(data, "deletedDate", errors)

    statuses = [status for name, status in STATUS_FLAGS.items() if flags.get(name)]
    if len(statuses) > 1:
        set_flags = [name for name in STATUS_FLAGS if flags.get(name)]
        errors.append(f"contradictory status flags: {' and '.join(set_flags)} (at most one may be true)")
    if flags.get("isDeleted") is False and data.get("deletedDate") is not None:
        errors.append("deletedDate is set but isDeleted is false")

    known_number = number if type(number) is int else None
    if errors or created_at is None or updated_at is None or known_number is None:
        return Rejected("; ".join(errors), known_number)
    deleted = flags["isDeleted"]
    return WorkOrder(
        number=known_number,
        title=data["summary"],
        status=statuses[0] if statuses else Status.IN_PROGRESS,
        created_at=created_at,
        updated_at=updated_at,
        deleted=deleted,
        deleted_at=(deleted_date or updated_at) if deleted else None,
    )


def to_row(order: WorkOrder) -> dict[str, Any]:
    """The `workorders` columns except `is_synced`/`synced_at` (the store's bookkeeping)."""
    return {
        "number": order.number,
        "status": order.status.value,
        "title": order.title,
        "description": order.description,
        "created_at": utc_text(order.created_at),
        "updated_at": utc_text(order.updated_at),
        "deleted": int(order.deleted),
        "deleted_at": None if order.deleted_at is None else utc_text(order.deleted_at),
    }


def should_replace(stored_updated_at: str | datetime | None, incoming_updated_at: str | datetime) -> bool:
    """Whether an inbound order may overwrite the stored row: unless it is older (`lastUpdateDate`).

    Equal times replace: the file is not older, and a correction sent without a new date still lands; the
    store compares values to tell an unchanged re-read. No stored row (None) always replaces.
    """
    if stored_updated_at is None:
        return True
    return _stored_time(incoming_updated_at) >= _stored_time(stored_updated_at)


# --- outbound ------------------------------------------------------------------------------------------


def outbound_file_name(number: int) -> str:
    return f"{number}.json"


def _row_time(row: Mapping[str, Any], column: str) -> datetime | None:
    value = row.get(column)
    if value is None:
        return None
    try:
        return _stored_time(value)
    except (TypeError, ValueError):
        raise InvalidRow(f"work order {row.get('number')}: {column} is not a time: {value!r}") from None


def to_outbound(row: Mapping[str, Any]) -> dict[str, Any]:
    """A `workorders` row in the client's format, keys in the client's order.

    Raises `InvalidRow` for a row the client could not take back (unknown status, missing title or dates),
    so syncctl never writes a file it would itself reject. `deleted_at` is written only for a deleted row.
    """
    number = row.get("number")
    if type(number) is not int:
        raise InvalidRow(f"work order number must be an integer, got {number!r}")
    raw_status = row.get("status")
    if not isinstance(raw_status, str) or raw_status not in {status.value for status in Status}:
        known = ", ".join(Status)
        raise InvalidRow(f"work order {number}: unknown status {raw_status!r} (expected {known})")
    status = Status(raw_status)
    title = row.get("title")
    if not isinstance(title, str):
        raise InvalidRow(f"work order {number}: title must be text, got {title!r}")
    created_at, updated_at = _row_time(row, "created_at"), _row_time(row, "updated_at")
    if created_at is None or updated_at is None:
        raise InvalidRow(f"work order {number}: created_at and updated_at are required")
    deleted = bool(row.get("deleted"))
    deleted_at = _row_time(row, "deleted_at") if deleted else None
    return {
        "orderNo": number,
        "isCanceled": status is Status.CANCELLED,
        "isDeleted": deleted,
        "isDone": status is Status.COMPLETED,
        "isOnHold": status is Status.ON_HOLD,
        "isPending": status is Status.PENDING,
        "summary": title,
        "creationDate": utc_text(created_at),
        "lastUpdateDate": utc_text(updated_at),
        "deletedDate": None if deleted_at is None else utc_text(deleted_at),
    }
