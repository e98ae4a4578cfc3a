from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from syncctl.connectors.workorders.translate import (
    FLAGS,
    InvalidRow,
    Rejected,
    Status,
    WorkOrder,
    outbound_file_name,
    parse_inbound,
    should_replace,
    to_outbound,
    to_row,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "tracos"
INBOUND = sorted((FIXTURES / "inbound").glob("*.json"), key=lambda path: int(path.stem))
LOCAL: list[dict[str, Any]] = json.loads((FIXTURES / "workorders.json").read_text(encoding="utf-8"))

BASE: dict[str, Any] = json.loads((FIXTURES / "inbound" / "1.json").read_bytes())


def client_file(**changes: Any) -> bytes:
    document = dict(BASE, **changes)
    return json.dumps({key: value for key, value in document.items() if value is not ...}).encode()


def parsed(data: bytes) -> WorkOrder:
    order = parse_inbound(data)
    assert isinstance(order, WorkOrder), order
    return order


def rejected(data: bytes) -> str:
    result = parse_inbound(data)
    assert isinstance(result, Rejected), result
    assert "\n" not in result.reason
    return result.reason


@pytest.mark.parametrize("path", INBOUND, ids=lambda path: path.name)
def test_translate_fixture_round_trips_byte_for_byte(path: Path) -> None:
    original = path.read_bytes()
    order = parsed(original)

    outbound = to_outbound(to_row(order))

    assert json.dumps(outbound).encode() == original
    assert outbound == json.loads(original)  # every field, in the client's key order
    assert list(outbound) == list(json.loads(original))
    assert parsed(json.dumps(outbound).encode()) == order
    assert outbound_file_name(order.number) == path.name


def test_translate_fixture_statuses() -> None:
    orders = {order.number: order for order in (parsed(path.read_bytes()) for path in INBOUND)}
    assert {number: (order.status, order.deleted) for number, order in orders.items()} == {
        1: (Status.PENDING, False),
        2: (Status.IN_PROGRESS, False),
        3: (Status.COMPLETED, False),
        4: (Status.ON_HOLD, False),
        5: (Status.CANCELLED, False),
        6: (Status.IN_PROGRESS, True),
    }
    assert to_row(orders[6]) == {
        "number": 6,
        "status": "in_progress",
        "title": "Example workorder #6",
        "description": None,
        "created_at": "2025-05-07T00:00:00+00:00",
        "updated_at": "2025-05-07T01:00:00+00:00",
        "deleted": 1,
        "deleted_at": "2025-05-07T01:00:00+00:00",
    }


def test_translate_agrees_with_the_local_fixture_except_description() -> None:
    orders = {order.number: to_row(order) for order in (parsed(path.read_bytes()) for path in INBOUND)}
    for local in LOCAL:
        row = orders[local["number"]]
        assert row == {
            "number": local["number"],
            "status": local["status"],
            "title": local["title"],
            # The client's files carry no description: the local fixture's cannot come from them.
            "description": None,
            "created_at": local["createdAt"],
            "updated_at": local["updatedAt"],
            "deleted": int(local["deleted"]),
            "deleted_at": local["deletedAt"],
        }
        assert local["description"] == f"{local['title']} description"
    assert sorted(orders) == [1, 2, 3, 4, 5, 6] and 6 not in {local["number"] for local in LOCAL}


def test_translate_accepts_a_utf8_bom() -> None:
    original = (FIXTURES / "inbound" / "3.json").read_bytes()
    assert parsed(b"\xef\xbb\xbf" + original) == parsed(original)


def test_translate_dates_are_normalised_to_utc() -> None:
    order = parsed(
        client_file(creationDate="2025-05-02T02:00:00+02:00", lastUpdateDate="2025-05-01T22:30:00.5-04:00")
    )
    row = to_row(order)
    assert (row["created_at"], row["updated_at"]) == (
        "2025-05-02T00:00:00+00:00",
        "2025-05-02T02:30:00.500000+00:00",
    )
    assert order.created_at.tzinfo is UTC
    assert parsed(client_file(creationDate="2025-05-02T00:00:00Z")).created_at == datetime(
        2025, 5, 2, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"orderNo": 1, "summary": ', "corrupt JSON: Expecting value: line 1 column 27 (char 26)"),
        (b"", "empty file"),
        (b"  \n", "empty file"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'"text"', "expected a JSON object, got str"),
        (b'{"orderNo": 1, "summary": "caf\xe9"}', "not UTF-8 text (byte 30)"),
        (b'{"orderNo": 1, "orderNo": 2}', 'ambiguous JSON: key "orderNo" appears twice'),
        (client_file(summary=...), "missing summary"),
        (client_file(isPending=..., lastUpdateDate=...), "missing lastUpdateDate, isPending"),
        (client_file(orderNo="1"), 'orderNo must be an integer, got "1"'),
        (client_file(orderNo=1.0), "orderNo must be an integer, got 1.0"),
        (client_file(orderNo=True), "orderNo must be an integer, got true"),
        (client_file(orderNo=2**63), f"orderNo must be an integer, got {2**63}"),
        (client_file(summary=None), "summary must be a string, got null"),
        (client_file(isDone="true"), 'isDone must be true or false, got "true"'),
        (client_file(isDeleted=0), "isDeleted must be true or false, got 0"),
        (client_file(isOnHold=None), "isOnHold must be true or false, got null"),
        (client_file(creationDate="02/05/2025"), 'creationDate is not an ISO 8601 date-time: "02/05/2025"'),
        (client_file(lastUpdateDate=""), 'lastUpdateDate is not an ISO 8601 date-time: ""'),
        (
            client_file(creationDate=1746144000),
            "creationDate must be an ISO 8601 date-time string, got 1746144000",
        ),
        (
            client_file(creationDate="2025-05-02T00:00:00"),
            'creationDate has no UTC offset: "2025-05-02T00:00:00"',
        ),
        (client_file(creationDate="2025-05-02"), 'creationDate has no UTC offset: "2025-05-02"'),
        (
            client_file(creationDate="0001-01-01T00:00:00+01:00"),
            'creationDate is out of range: "0001-01-01T00:00:00+01:00"',
        ),
        (
            client_file(isDeleted=True, deletedDate="soon"),
            'deletedDate is not an ISO 8601 date-time: "soon"',
        ),
        (
            client_file(isPending=False, isDone=True, isCanceled=True),
            "contradictory status flags: isCanceled and isDone (at most one may be true)",
        ),
        (
            client_file(deletedDate="2025-05-02T01:00:00+00:00"),
            "deletedDate is set but isDeleted is false",
        ),
        (
            client_file(orderNo="x", isDone="no", creationDate="never"),
            'orderNo must be an integer, got "x"; isDone must be true or false, got "no"; '
            'creationDate is not an ISO 8601 date-time: "never"',
        ),
    ],
)
def test_translate_bad_files_are_rejected_with_one_line(data: bytes, reason: str) -> None:
    assert rejected(data) == reason


def test_translate_rejection_names_the_order_when_it_can() -> None:
    assert parse_inbound(client_file(orderNo=7, isDone="yes")) == Rejected(
        'isDone must be true or false, got "yes"', number=7
    )


def test_translate_rejects_an_unparseable_date_rather_than_using_now() -> None:
    result = parse_inbound(client_file(lastUpdateDate="not a date"))
    assert isinstance(result, Rejected)


def test_translate_deleted_combines_with_a_status_and_dates_the_deletion() -> None:
    order = parsed(client_file(isPending=False, isDone=True, isDeleted=True, deletedDate=None))
    assert (order.status, order.deleted) == (Status.COMPLETED, True)
    assert order.deleted_at == order.updated_at  # no deletedDate: the file's lastUpdateDate, never "now"
    outbound = to_outbound(to_row(order))
    assert (outbound["isDone"], outbound["isDeleted"], outbound["deletedDate"]) == (
        True,
        True,
        "2025-05-02T01:00:00+00:00",
    )
    assert parsed(json.dumps(outbound).encode()) == order

    dated = parsed(client_file(isDeleted=True, deletedDate="2025-05-02T00:30:00+00:00"))
    assert dated.deleted_at == datetime(2025, 5, 2, 0, 30, tzinfo=UTC)


def test_translate_every_flag_combination_is_either_exact_or_rejected() -> None:
    status_flags = [flag for flag in FLAGS if flag != "isDeleted"]
    for values in itertools.product([False, True], repeat=len(FLAGS)):
        flags = dict(zip(FLAGS, values, strict=True))
        data = client_file(**flags, deletedDate=None)
        if sum(flags[flag] for flag in status_flags) > 1:
            assert rejected(data).startswith("contradictory status flags: ")
            continue
        order = parsed(data)
        outbound = to_outbound(to_row(order))
        assert {flag: outbound[flag] for flag in FLAGS} == flags
        assert parsed(json.dumps(outbound).encode()) == order


def test_translate_unknown_client_fields_are_ignored() -> None:
    assert parsed(client_file(priority="high")) == parsed(client_file())


@pytest.mark.parametrize(
    ("stored", "incoming", "replace"),
    [
        (None, "2025-05-02T01:00:00+00:00", True),
        ("2025-05-02T01:00:00+00:00", "2025-05-02T02:00:00+00:00", True),
        ("2025-05-02T01:00:00+00:00", "2025-05-02T00:59:59.999999+00:00", False),
        ("2025-05-02T01:00:00+00:00", "2025-05-02T01:00:00+00:00", True),
        ("2025-05-02T01:00:00+00:00", "2025-05-02T02:30:00+02:00", False),  # 00:30 UTC: older
        ("2025-05-02T01:00:00+00:00", datetime(2025, 5, 2, 1, 0, 1, tzinfo=UTC), True),
        (datetime(2025, 5, 3, tzinfo=UTC), "2025-05-02T23:00:00Z", False),
        ("2025-05-02T01:00:00", "2025-05-02T01:30:00+00:00", True),  # stored text is UTC
    ],
)
def test_translate_newer_wins(stored: str | datetime | None, incoming: str | datetime, replace: bool) -> None:
    assert should_replace(stored, incoming) is replace


def test_translate_older_file_does_not_replace_the_stored_row() -> None:
    stored = to_row(parsed(client_file(lastUpdateDate="2025-05-03T00:00:00+00:00")))
    older = parsed(client_file(summary="stale", lastUpdateDate="2025-05-02T23:59:59+00:00"))
    assert not should_replace(stored["updated_at"], older.updated_at)


def test_translate_outbound_from_a_stored_row() -> None:
    row = {
        "number": 42,
        "status": "on_hold",
        "title": "Pump check",
        "description": "local only",
        "created_at": "2025-05-02T00:00:00+00:00",
        "updated_at": "2025-05-02T03:00:00+00:00",
        "deleted": 0,
        "deleted_at": None,
        "is_synced": 0,
        "synced_at": None,
    }
    assert to_outbound(row) == {
        "orderNo": 42,
        "isCanceled": False,
        "isDeleted": False,
        "isDone": False,
        "isOnHold": True,
        "isPending": False,
        "summary": "Pump check",
        "creationDate": "2025-05-02T00:00:00+00:00",
        "lastUpdateDate": "2025-05-02T03:00:00+00:00",
        "deletedDate": None,
    }
    assert outbound_file_name(42) == "42.json"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "done"}, "work order 42: unknown status 'done' (expected pending, in_progress"),
        ({"status": None}, "work order 42: unknown status None"),
        ({"title": None}, "work order 42: title must be text, got None"),
        ({"number": "42"}, "work order number must be an integer, got '42'"),
        ({"created_at": None}, "work order 42: created_at and updated_at are required"),
        ({"updated_at": "yesterday"}, "work order 42: updated_at is not a time: 'yesterday'"),
    ],
)
def test_translate_outbound_refuses_rows_the_client_could_not_take(
    changes: dict[str, Any], message: str
) -> None:
    row = {
        "number": 42,
        "status": "pending",
        "title": "t",
        "created_at": "2025-05-02T00:00:00+00:00",
        "updated_at": "2025-05-02T00:00:00+00:00",
        "deleted": 0,
        "deleted_at": None,
    }
    with pytest.raises(InvalidRow) as raised:
        to_outbound(row | changes)
    assert str(raised.value).startswith(message)
