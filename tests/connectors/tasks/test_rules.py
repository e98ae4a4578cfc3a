from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from syncctl.connectors.tasks.rules import (
    Decision,
    Invalid,
    Outcome,
    ParsedEvent,
    TaskState,
    decide,
    duplicate_decision,
    event_key,
    order_events,
    parse_event,
    report_user_ids,
    user_report,
    utc_text,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "tasks"
EVENTS: dict[str, Any] = json.loads((FIXTURES / "webhook_events.json").read_text(encoding="utf-8"))
REPORT_EXAMPLE: dict[str, Any] = json.loads(
    (FIXTURES / "task_report_example.json").read_text(encoding="utf-8")
)

# The to-do service's HTTP answers in the fixture, as syncctl outcomes.
RESPONSE_OUTCOMES: dict[object, Outcome] = {
    202: Outcome.APPLIED,
    "202 no-op": Outcome.NO_OP,
    409: Outcome.CONFLICT,
    404: Outcome.NOT_FOUND,
    400: Outcome.INVALID,
    422: Outcome.INVALID,
}


def variant(name: str, timestamp: Any, **metadata: Any) -> dict[str, Any]:
    """A fixture event at another time (so it is a different event, not a retry), metadata overridden."""
    event: dict[str, Any] = copy.deepcopy(EVENTS[name])
    event["timestamp"] = timestamp
    event["metadata"].update(metadata)
    return event


def ingest(raws: list[Any], tasks: dict[str, TaskState], seen: set[str]) -> list[tuple[int, Decision]]:
    """What the store does, over a dict: order, skip retries, decide, keep the new state."""
    parsed = [parse_event(raw) for raw in raws]
    results = []
    for index in order_events(parsed):
        key = event_key(raws[index])
        event = parsed[index]
        if key in seen:
            decision = duplicate_decision()
        else:
            seen.add(key)
            current = tasks.get(event.task_id) if isinstance(event, ParsedEvent) else None
            decision = decide(event, current)
            if decision.new_state is not None:
                tasks[decision.new_state.id] = decision.new_state
        results.append((index, decision))
    return results


def test_rules_every_fixture_case_gets_its_outcome_in_one_shuffled_ingest() -> None:
    cases: dict[str, dict[str, Any]] = {
        "created_ok": EVENTS["created"],
        "created_duplicate": variant("created", "2025-04-01T14:30:00-04:00", content="again"),
        "updated_unknown_id": variant("updated_complete", "2025-04-01T14:40:00-04:00", id="99"),
        "updated_already_completed": variant("updated_complete", "2025-04-01T15:30:00-04:00"),
        "deleted_twice": variant("deleted", "2025-04-01T16:30:00-04:00"),
        "updated_after_delete": variant("updated_complete", "2025-04-01T17:00:00-04:00"),
        "deleted_unknown_id": variant("deleted", "2025-04-01T17:10:00-04:00", id="98"),
        "unknown_event": EVENTS["invalid"],
        "schema_violation": variant("created", "2025-04-01T17:20:00-04:00", id="2", isCompleted="yes"),
    }
    assert set(cases) == set(EVENTS["responses"]), "a response case of the fixture is not exercised"
    expected = {name: RESPONSE_OUTCOMES[EVENTS["responses"][name]] for name in cases}
    batch = [
        *cases.items(),
        ("updated_complete", EVENTS["updated_complete"]),
        ("deleted", EVENTS["deleted"]),
        ("retry", copy.deepcopy(EVENTS["created"])),
    ]
    expected |= {"updated_complete": Outcome.APPLIED, "deleted": Outcome.APPLIED, "retry": Outcome.DUPLICATE}
    random.Random(3).shuffle(batch)
    tasks: dict[str, TaskState] = {}

    results = ingest([raw for _, raw in batch], tasks, set())

    assert {batch[index][0]: decision.outcome for index, decision in results} == expected
    at = datetime(2025, 4, 1, 18, 23, 45, tzinfo=UTC)
    assert tasks == {
        "1": TaskState(
            id="1",
            user_id="1",
            content="Play games all day",
            is_completed=True,
            created_at=at,
            completed_at=datetime(2025, 4, 1, 19, tzinfo=UTC),
            deleted_at=datetime(2025, 4, 1, 20, tzinfo=UTC),
            updated_at=datetime(2025, 4, 1, 20, tzinfo=UTC),
        )
    }


def test_rules_decisions_carry_messages_that_name_the_task() -> None:
    created = parse_event(EVENTS["created"])
    assert isinstance(created, ParsedEvent)
    state = decide(created, None).new_state
    assert decide(created, state) == Decision(
        Outcome.CONFLICT, "task '1' already exists (created at 2025-04-01T18:23:45+00:00)"
    )
    missing = parse_event(variant("deleted", "2025-04-01T16:00:00-04:00", id="7"))
    assert isinstance(missing, ParsedEvent)
    assert decide(missing, None) == Decision(Outcome.NOT_FOUND, "task '7' does not exist")


def test_rules_the_very_same_event_is_a_duplicate_whatever_its_formatting() -> None:
    raw = EVENTS["created"]
    reordered = json.loads(
        json.dumps({"metadata": raw["metadata"], "timestamp": raw["timestamp"], "event": "created"})
    )
    tasks: dict[str, TaskState] = {}
    seen: set[str] = set()

    first = ingest([raw], tasks, seen)
    stored = dict(tasks)
    again = ingest([reordered, raw], tasks, seen)

    assert [d.outcome for _, d in first] == [Outcome.APPLIED]
    assert [d.outcome for _, d in again] == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert tasks == stored
    assert event_key(reordered) == event_key(raw)
    assert event_key(variant("created", "2025-04-01T18:23:45Z")) != event_key(raw)  # same instant, other text


def test_rules_out_of_order_events_are_applied_by_timestamp() -> None:
    batch = [EVENTS["deleted"], EVENTS["updated_complete"], EVENTS["created"]]
    tasks: dict[str, TaskState] = {}

    results = ingest(batch, tasks, set())

    assert [(index, d.outcome) for index, d in results] == [
        (2, Outcome.APPLIED),
        (1, Outcome.APPLIED),
        (0, Outcome.APPLIED),
    ]
    assert tasks["1"].is_completed and tasks["1"].deleted_at is not None


def test_rules_order_compares_instants_across_offsets_and_keeps_ties_in_file_order() -> None:
    events = [
        parse_event(variant("created", "2025-04-01T10:00:00+02:00", id="a")),  # 08:00Z
        parse_event(variant("created", "2025-04-01T09:00:00Z", id="b")),
        parse_event(variant("created", "2025-04-01T04:00:00-04:00", id="c")),  # 08:00Z, ties with a
        parse_event({"event": "created"}),  # no timestamp at all: after everything else
        parse_event(variant("created", "2025-04-01T07:59:59.999999Z", id="d")),
    ]
    assert order_events(events) == [4, 0, 2, 1, 3]


def test_rules_time_zones_are_the_same_instant_and_stored_as_utc_text() -> None:
    plus_two = parse_event(variant("created", "2025-04-01T12:00:00+02:00"))
    zulu = parse_event(variant("created", "2025-04-01T10:00:00Z"))
    fraction = parse_event(variant("created", "2025-04-01T10:00:00.250-04:00"))
    assert isinstance(plus_two, ParsedEvent) and isinstance(zulu, ParsedEvent)
    assert isinstance(fraction, ParsedEvent)
    assert plus_two.timestamp == zulu.timestamp
    assert plus_two.timestamp.tzinfo is UTC
    assert utc_text(plus_two.timestamp) == utc_text(zulu.timestamp) == "2025-04-01T10:00:00+00:00"
    assert utc_text(fraction.timestamp) == "2025-04-01T14:00:00.250000+00:00"
    state = decide(plus_two, None).new_state
    assert state is not None
    assert state.to_row()["created_at"] == "2025-04-01T10:00:00+00:00"
    with pytest.raises(ValueError, match="no UTC offset"):
        utc_text(datetime(2025, 4, 1))


def test_rules_stored_text_sorts_chronologically() -> None:
    times = [
        datetime(2025, 4, 1, 10, tzinfo=UTC) + timedelta(microseconds=m) for m in (0, 1, 500_000, 999_999)
    ]
    assert sorted(utc_text(t) for t in reversed(times)) == [utc_text(t) for t in times]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (["created"], 'an event must be a JSON object, got ["created"]'),
        (
            {"timestamp": "2025-04-01T10:00:00Z", "metadata": {"userId": "1", "id": "1"}},
            "event is missing",
        ),
        (
            variant("created", "2025-04-01T10:00:00Z", isCompleted="yes"),
            'metadata.isCompleted must be true or false, got "yes"',
        ),
        (
            variant("created", "2025-04-01T10:00:00Z", isCompleted=1),
            "metadata.isCompleted must be true or false, got 1",
        ),
        (
            variant("updated_complete", "2025-04-01T10:00:00Z", content=None),
            "metadata.content must be a string, got null",
        ),
        (variant("created", "2025-04-01T10:00:00Z", id=1), "metadata.id must be a non-empty string, got 1"),
        (
            variant("created", "2025-04-01T10:00:00Z", userId=""),
            'metadata.userId must be a non-empty string, got ""',
        ),
        (variant("created", "yesterday"), 'timestamp is not an ISO 8601 date-time: "yesterday"'),
        (variant("created", 1743500000), "timestamp must be an ISO 8601 string, got 1743500000"),
        (
            variant("created", "2025-04-01T10:00:00"),
            'timestamp must carry a UTC offset (Z or ±HH:MM), got "2025-04-01T10:00:00"',
        ),
        (
            variant("created", "2025-04-01"),
            'timestamp must carry a UTC offset (Z or ±HH:MM), got "2025-04-01"',
        ),
        ({"event": "created", "timestamp": "2025-04-01T10:00:00Z"}, "metadata is missing"),
        (variant("created", None), "timestamp must be an ISO 8601 string, got null"),
        (
            variant("created", "0001-01-01T00:00:00+01:00"),
            'timestamp is out of range: "0001-01-01T00:00:00+01:00"',
        ),
        (
            {"event": "deleted", "timestamp": "2025-04-01T10:00:00Z", "metadata": "1"},
            'metadata must be an object, got "1"',
        ),
        (EVENTS["invalid"], 'unknown event "archived" (expected created, updated or deleted)'),
        (
            {"event": "Created", "timestamp": "soon", "metadata": {"userId": "1"}},
            'unknown event "Created" (expected created, updated or deleted); '
            'timestamp is not an ISO 8601 date-time: "soon"; metadata.id is missing',
        ),
        (
            {"event": "updated", "timestamp": "2025-04-01T10:00:00Z", "metadata": {"userId": "1", "id": "1"}},
            "metadata.content is missing; metadata.isCompleted is missing",
        ),
    ],
)
def test_rules_invalid_payloads_say_what_is_wrong(raw: Any, message: str) -> None:
    parsed = parse_event(raw)
    assert isinstance(parsed, Invalid)
    assert parsed.message == message
    assert decide(parsed, None) == Decision(Outcome.INVALID, message)


def test_rules_invalid_event_keeps_what_could_be_read_for_the_audit_row() -> None:
    parsed = parse_event(EVENTS["invalid"])
    assert parsed == Invalid(
        'unknown event "archived" (expected created, updated or deleted)',
        event="archived",
        timestamp=datetime(2025, 4, 1, 20, tzinfo=UTC),
        task_id="1",
        user_id="1",
    )


def test_rules_deleted_needs_only_the_ids_but_checks_what_it_carries() -> None:
    minimal = {
        "event": "deleted",
        "timestamp": "2025-04-01T20:00:00Z",
        "metadata": {"userId": "1", "id": "1"},
    }
    assert parse_event(minimal) == ParsedEvent(
        "deleted", datetime(2025, 4, 1, 20, tzinfo=UTC), "1", "1", content=None, is_completed=None
    )
    full = parse_event(EVENTS["deleted"])
    assert isinstance(full, ParsedEvent) and full.is_completed is False
    wrong = parse_event(variant("deleted", "2025-04-01T20:00:00Z", isCompleted="no"))
    assert isinstance(wrong, Invalid)
    assert wrong.message == 'metadata.isCompleted must be true or false, got "no"'


def test_rules_unknown_keys_are_ignored() -> None:
    raw = variant("created", "2025-04-01T10:00:00Z", priority=3)
    raw["source"] = "app"
    assert isinstance(parse_event(raw), ParsedEvent)


def run(*raws: dict[str, Any]) -> tuple[list[Decision], dict[str, TaskState]]:
    tasks: dict[str, TaskState] = {}
    decisions = []
    for raw in raws:
        event = parse_event(raw)
        assert isinstance(event, ParsedEvent), event
        decision = decide(event, tasks.get(event.task_id))
        if decision.new_state is not None:
            tasks[event.task_id] = decision.new_state
        decisions.append(decision)
    return decisions, tasks


def test_rules_completion_reopening_and_content_changes() -> None:
    decisions, tasks = run(
        EVENTS["created"],
        variant("updated_complete", "2025-04-01T19:00:00Z"),  # completes
        variant("updated_complete", "2025-04-01T19:30:00Z", content="Play one game"),  # still completed
        variant("updated_complete", "2025-04-01T20:00:00Z", content="Play one game"),  # true again
    )
    assert [(d.outcome, d.message) for d in decisions] == [
        (Outcome.APPLIED, "task '1' created at 2025-04-01T18:23:45+00:00"),
        (Outcome.APPLIED, "task '1' updated: completed at 2025-04-01T19:00:00+00:00"),
        (Outcome.APPLIED, "task '1' updated: content changed"),
        (Outcome.NO_OP, "task '1' is already completed"),
    ]
    assert tasks["1"].content == "Play one game"
    assert tasks["1"].completed_at == datetime(2025, 4, 1, 19, tzinfo=UTC)
    assert tasks["1"].updated_at == datetime(2025, 4, 1, 19, 30, tzinfo=UTC)

    decisions, tasks = run(
        EVENTS["created"],
        EVENTS["updated_complete"],
        variant("updated_complete", "2025-04-01T21:00:00Z", isCompleted=False),
        variant("updated_complete", "2025-04-01T22:00:00Z", isCompleted=False),
    )
    assert [d.outcome for d in decisions] == [
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.APPLIED,
        Outcome.NO_OP,
    ]
    assert decisions[2].message == "task '1' updated: reopened"
    assert decisions[3].message == "task '1' is unchanged"
    assert (tasks["1"].is_completed, tasks["1"].completed_at) == (False, None)


def test_rules_created_already_completed_is_completed_at_creation() -> None:
    _, tasks = run(variant("created", "2025-04-01T10:00:00Z", isCompleted=True))
    assert tasks["1"].completed_at == tasks["1"].created_at == datetime(2025, 4, 1, 10, tzinfo=UTC)


def test_rules_a_task_keeps_its_owner() -> None:
    for name in ("updated_complete", "deleted"):
        decisions, tasks = run(EVENTS["created"], variant(name, "2025-04-01T20:00:00Z", userId="2"))
        assert decisions[1] == Decision(
            Outcome.INVALID, "task '1' belongs to user '1', not '2': a task keeps its owner"
        )
        assert tasks["1"].user_id == "1" and tasks["1"].deleted_at is None and not tasks["1"].is_completed


def test_rules_deleted_is_soft_and_terminal() -> None:
    decisions, tasks = run(
        EVENTS["created"],
        EVENTS["deleted"],
        variant("deleted", "2025-04-01T21:00:00Z"),
        variant("updated_complete", "2025-04-01T22:00:00Z"),
        variant("created", "2025-04-01T23:00:00Z"),
    )
    assert [(d.outcome, d.message) for d in decisions[1:]] == [
        (Outcome.APPLIED, "task '1' deleted at 2025-04-01T20:00:00+00:00"),
        (Outcome.NO_OP, "task '1' was already deleted at 2025-04-01T20:00:00+00:00"),
        (Outcome.INVALID, "task '1' was deleted at 2025-04-01T20:00:00+00:00 and cannot be updated"),
        (Outcome.CONFLICT, "task '1' already exists (created at 2025-04-01T18:23:45+00:00)"),
    ]
    assert tasks["1"].content == "Play games all day" and not tasks["1"].is_completed


def test_rules_task_state_row_round_trip() -> None:
    _, tasks = run(EVENTS["created"], EVENTS["updated_complete"], EVENTS["deleted"])
    row = tasks["1"].to_row()
    assert row == {
        "id": "1",
        "user_id": "1",
        "content": "Play games all day",
        "is_completed": 1,
        "created_at": "2025-04-01T18:23:45+00:00",
        "completed_at": "2025-04-01T19:00:00+00:00",
        "deleted_at": "2025-04-01T20:00:00+00:00",
        "updated_at": "2025-04-01T20:00:00+00:00",
    }
    assert TaskState.from_row(row) == tasks["1"]


# --- reports ---------------------------------------------------------------------------------------------


def test_rules_report_has_the_example_shape_with_times_in_utc() -> None:
    created = datetime.fromisoformat("2025-04-01 14:23:45-04:00")
    tasks = [
        TaskState(str(n), "1", "Play games all day", False, created, None, None, created)
        for n in (7, 3, 1, 5, 2, 6, 4)
    ]
    start = datetime.fromisoformat(REPORT_EXAMPLE["period"]["start"])
    end = datetime.fromisoformat(REPORT_EXAMPLE["period"]["end"])

    report = user_report("1", start, end, tasks)

    expected = copy.deepcopy(REPORT_EXAMPLE)
    for entry in expected["oldIncompleteTasks"]:
        entry["createdOrCompletedAt"] = "2025-04-01 18:23:45+00:00"  # the example's form, in UTC
    assert report == expected
    assert list(report) == list(REPORT_EXAMPLE)
    assert json.dumps(report["period"]) == json.dumps(REPORT_EXAMPLE["period"])


def test_rules_report_orders_by_time_then_numeric_id() -> None:
    t0 = datetime(2025, 4, 1, tzinfo=UTC)
    tasks = [
        TaskState(task_id, "u", task_id, False, t0 + timedelta(hours=hours), None, None, t0)
        for task_id, hours in (("10", 1), ("9", 1), ("b", 1), ("a", 1), ("1", 2), ("2", 0))
    ]
    report = user_report("u", t0, t0 + timedelta(days=1), tasks)
    assert [entry["id"] for entry in report["newIncompleteTasks"]] == ["2", "9", "10", "a", "b", "1"]


def test_rules_report_period_checks() -> None:
    start = datetime(2025, 4, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="not after its start"):
        user_report("1", start, start, [])
    naive = user_report("1", datetime(2025, 4, 1), datetime(2025, 4, 2), [])
    aware = user_report("1", start, datetime(2025, 4, 2, 2, tzinfo=timezone(timedelta(hours=2))), [])
    assert naive == aware
    assert naive["period"] == {"start": "2025-04-01 00:00:00+00:00", "end": "2025-04-02 00:00:00+00:00"}


START = datetime(2025, 4, 1, tzinfo=UTC)
DAY_US = 86_400_000_000
# Offsets from START in microseconds: every boundary of the half-open period and its neighbours.
MOMENTS = [-DAY_US, -1, 0, 1, DAY_US // 2, DAY_US - 1, DAY_US, DAY_US + 1, 2 * DAY_US]
ZONES = [
    UTC,
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-4)),
    timezone(timedelta(hours=5, minutes=30)),
]


def generate_tasks(rng: random.Random, count: int) -> list[tuple[TaskState, int, int | None, int | None]]:
    """Tasks with their times also as plain microsecond offsets, for the independent computation."""

    def at(offset: int) -> datetime:
        return (START + timedelta(microseconds=offset)).astimezone(rng.choice(ZONES))

    generated = []
    for n in range(count):
        created = rng.choice(MOMENTS)
        later = [m for m in MOMENTS if m >= created]
        completed = rng.choice(later) if rng.random() < 0.5 else None
        deleted = (
            rng.choice([m for m in later if m >= (completed or created)]) if rng.random() < 0.3 else None
        )
        user = rng.choice(["u1", "u1", "u2"])
        last = max(m for m in (created, completed, deleted) if m is not None)
        state = TaskState(
            id=str(n),
            user_id=user,
            content=f"task {n}",
            is_completed=completed is not None,
            created_at=at(created),
            completed_at=None if completed is None else at(completed),
            deleted_at=None if deleted is None else at(deleted),
            updated_at=at(last),
        )
        generated.append((state, created, completed, deleted))
    return generated


def test_rules_report_matches_an_independent_computation_at_the_boundaries() -> None:
    generated = generate_tasks(random.Random(11), 400)
    end = START + timedelta(microseconds=DAY_US)

    report = user_report("u1", START, end, [state for state, *_ in generated])

    def listed(rows: list[tuple[int, int, str]]) -> list[str]:
        return [task_id for _, _, task_id in sorted(rows)]

    new, completed, old = [], [], []
    for state, created, done, deleted in generated:
        if state.user_id != "u1":
            continue
        is_open = done is None and deleted is None
        if is_open and 0 <= created < DAY_US:
            new.append((created, int(state.id), state.id))
        if done is not None and 0 <= done < DAY_US:
            completed.append((done, int(state.id), state.id))
        if is_open and created < 0:
            old.append((created, int(state.id), state.id))
    assert [e["id"] for e in report["newIncompleteTasks"]] == listed(new)
    assert [e["id"] for e in report["completedTasks"]] == listed(completed)
    assert [e["id"] for e in report["oldIncompleteTasks"]] == listed(old)
    # The boundaries were really exercised: created exactly at start and end, completed exactly at both.
    created_at = {c for state, c, _, _ in generated if state.user_id == "u1"}
    completed_at = {d for state, _, d, _ in generated if state.user_id == "u1"}
    assert {0, DAY_US} <= created_at and {0, DAY_US} <= completed_at
    by_id = {state.id: state for state, *_ in generated}
    for entry in report["completedTasks"]:
        done_at = by_id[entry["id"]].completed_at
        assert done_at is not None
        assert datetime.fromisoformat(entry["createdOrCompletedAt"]) == done_at
        assert entry["createdOrCompletedAt"].endswith("+00:00")


def test_rules_report_user_ids_lists_every_owner() -> None:
    generated = generate_tasks(random.Random(5), 30)
    assert report_user_ids(state for state, *_ in generated) == ["u1", "u2"]
