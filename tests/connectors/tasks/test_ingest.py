"""Ingesting folders of events into a real SQLite file, through the connector's run (core `run_source`)."""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from syncctl.connectors.tasks import staging
from syncctl.connectors.tasks.connector import CONNECTOR
from syncctl.connectors.tasks.inbox import Inbox as Folder
from syncctl.connectors.tasks.rules import Outcome
from syncctl.connectors.tasks.store import TaskStore
from syncctl.core.db import Database
from syncctl.core.engine import SyncOptions, SyncResult, run_source
from syncctl.sources import registry
from tests.connectors.tasks.harness import EVENTS, Inbox, variant

# The to-do service's HTTP answers in the fixture, as syncctl outcomes.
RESPONSE_OUTCOMES: dict[object, str] = {
    202: "applied",
    "202 no-op": "no_op",
    409: "conflict",
    404: "not_found",
    400: "invalid",
    422: "invalid",
}
# One event per case of the fixture's `responses`, at times that make each case what it says.
CASES: dict[str, dict[str, Any]] = {
    "created_ok": EVENTS["created"],
    "created_duplicate": variant("created", "2025-04-01T14:30:00-04:00", content="again"),
    "updated_unknown_id": variant("updated_complete", "2025-04-01T14:40:00-04:00", id="99"),
    "updated_already_completed": variant("updated_complete", "2025-04-01T15:30:00-04:00"),
    "deleted_twice": variant("deleted", "2025-04-01T16:30:00-04:00"),
    "updated_after_delete": variant("updated_complete", "2025-04-01T17:00:00-04:00"),
    "deleted_unknown_id": variant("deleted", "2025-04-01T17:10:00-04:00", id="98"),
    "unknown_event": EVENTS["invalid"],
    "schema_violation": variant("created", "2025-04-01T17:20:00-04:00", id="2", isCompleted="yes"),
    "updated_complete": EVENTS["updated_complete"],
    "deleted": EVENTS["deleted"],
}
TASK_1 = {
    "id": "1",
    "user_id": "1",
    "content": "Play games all day",
    "is_completed": 1,
    "created_at": "2025-04-01T18:23:45+00:00",
    "completed_at": "2025-04-01T19:00:00+00:00",
    "deleted_at": "2025-04-01T20:00:00+00:00",
    "updated_at": "2025-04-01T20:00:00+00:00",
}


def ingest(inbox: Inbox, **settings: Any) -> SyncResult:
    """One run of the source, as `syncctl sync tasks` makes it (settings overridden for the test)."""
    db = Database.open(inbox.db_path, claims=registry().claimed_tables())
    try:
        config = replace(CONNECTOR.load({"TASKS_INBOX_DIR": str(inbox.folder)}), **settings)
        return run_source(db, CONNECTOR, config, SyncOptions())
    finally:
        db.close()


def put_cases(inbox: Inbox, seed: int) -> dict[str, str]:
    """The fixture's cases shuffled over three files (array, JSON Lines, one event); payload -> case name."""
    names = list(CASES)
    random.Random(seed).shuffle(names)
    inbox.put("a.json", [CASES[n] for n in names[:4]])
    inbox.put("b.jsonl", [CASES[n] for n in names[4:10]], lines=True)
    inbox.put("c.json", CASES[names[10]])
    return {json.dumps(CASES[n], sort_keys=True): n for n in names}


def outcome_by_case(inbox: Inbox, cases: dict[str, str]) -> dict[str, str]:
    rows = inbox.query("SELECT payload, outcome FROM task_events WHERE event_key IS NOT NULL")
    return {cases[json.dumps(json.loads(payload), sort_keys=True)]: outcome for payload, outcome in rows}


@pytest.mark.parametrize(
    ("batch_size", "run_size", "workers"), [(1000, 1000, 1), (2, 3, 1), (1, 1, 1), (3, 2, 2)]
)
def test_ingest_every_fixture_outcome_whatever_the_files_batches_and_workers(
    inbox: Inbox, batch_size: int, run_size: int, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert set(CASES) - {"updated_complete", "deleted"} == set(EVENTS["responses"])
    cases = put_cases(inbox, seed=batch_size)
    monkeypatch.setattr(staging, "GROUP_BYTES", 1)  # each file a group of its own: read by the workers

    result = ingest(inbox, batch_size=batch_size, run_size=run_size, workers=workers)

    expected = {name: RESPONSE_OUTCOMES[EVENTS["responses"][name]] for name in EVENTS["responses"]}
    assert outcome_by_case(inbox, cases) == {**expected, "updated_complete": "applied", "deleted": "applied"}
    assert inbox.tasks() == {"1": TASK_1}
    assert inbox.names() == [] and inbox.names("processed") == ["a.json", "b.jsonl", "c.json"]
    assert result.error is None and result.status == "ok" and result.mode == "ingest"
    assert (result.fetched, result.inserted, result.updated, result.unchanged, result.skipped) == (
        11,
        1,
        2,
        2,
        6,
    )
    assert result.extra == {
        "files": 3,
        "rejected_files": 0,
        "outcomes": {"applied": 3, "no_op": 2, "duplicate": 0, "conflict": 1, "not_found": 2, "invalid": 3},
    }
    origins = {origin for (origin,) in inbox.query("SELECT DISTINCT origin FROM task_events")}
    assert origins == {str(inbox.folder / name) for name in ("a.json", "b.jsonl", "c.json")}


def test_ingest_records_every_event_in_time_order_with_its_audit_columns(inbox: Inbox) -> None:
    inbox.put("events.jsonl", [EVENTS["deleted"], EVENTS["updated_complete"], EVENTS["created"]], lines=True)

    result = ingest(inbox)

    rows = inbox.query(
        "SELECT seq, event, timestamp, task_id, user_id, payload, outcome, message, origin, event_key, run_id"
        " FROM task_events"
    )
    origin = str(inbox.folder / "events.jsonl")
    messages = [
        "task '1' created at 2025-04-01T18:23:45+00:00",
        "task '1' updated: completed at 2025-04-01T19:00:00+00:00",
        "task '1' deleted at 2025-04-01T20:00:00+00:00",
    ]
    assert [row[:5] + row[6:9] + row[10:] for row in rows] == [
        (1, "created", "2025-04-01T18:23:45+00:00", "1", "1", "applied", messages[0], origin, result.run_id),
        (2, "updated", "2025-04-01T19:00:00+00:00", "1", "1", "applied", messages[1], origin, result.run_id),
        (3, "deleted", "2025-04-01T20:00:00+00:00", "1", "1", "applied", messages[2], origin, result.run_id),
    ]
    assert [json.loads(row[5]) for row in rows] == [
        EVENTS["created"],
        EVENTS["updated_complete"],
        EVENTS["deleted"],
    ]
    assert all(len(row[9]) == 64 for row in rows)
    assert inbox.tasks() == {"1": TASK_1}
    # One transaction: the three events are one change of the row, recorded with its origin.
    history = inbox.query(
        "SELECT run_id, source, table_name, record_id, op, origin, changes FROM _syncctl_history"
    )
    assert history == [(result.run_id, "tasks", "tasks", "1", "insert", "ingest", None)]


def test_ingest_orders_events_across_files_and_time_zones(inbox: Inbox) -> None:
    # Named so that the update's file is read first; 10:00-04:00 is 14:00Z, after 15:00+02:00 (13:00Z).
    inbox.put("1-update.json", variant("updated_complete", "2025-04-01T10:00:00-04:00"))
    inbox.put("2-create.json", variant("created", "2025-04-01T15:00:00+02:00"))
    inbox.put(
        "3-edit.json", variant("updated_complete", "2025-04-01T19:45:00+05:30", content="Sleep")
    )  # 14:15Z

    ingest(inbox)

    assert inbox.outcomes() == [
        ("created", "1", "applied"),
        ("updated", "1", "applied"),
        ("updated", "1", "applied"),
    ]
    assert inbox.tasks()["1"] == {
        **TASK_1,
        "content": "Sleep",
        "created_at": "2025-04-01T13:00:00+00:00",
        "completed_at": "2025-04-01T14:00:00+00:00",
        "deleted_at": None,
        "updated_at": "2025-04-01T14:15:00+00:00",
    }
    stamps = [stamp for (stamp,) in inbox.query("SELECT timestamp FROM task_events ORDER BY seq")]
    assert stamps == ["2025-04-01T13:00:00+00:00", "2025-04-01T14:00:00+00:00", "2025-04-01T14:15:00+00:00"]


def test_ingest_the_same_file_twice_changes_nothing_the_second_time(inbox: Inbox) -> None:
    put_cases(inbox, seed=1)
    first = ingest(inbox)
    tasks, history = inbox.tasks(), inbox.query("SELECT * FROM _syncctl_history")
    for name in inbox.names("processed"):
        shutil.copy(inbox.folder / "processed" / name, inbox.folder / name)

    again = ingest(inbox)

    assert (again.fetched, again.unchanged, again.inserted, again.updated, again.skipped) == (11, 11, 0, 0, 0)
    assert again.extra["outcomes"]["duplicate"] == 11
    assert inbox.tasks() == tasks
    assert inbox.query("SELECT * FROM _syncctl_history") == history
    duplicates = inbox.query("SELECT message FROM task_events WHERE run_id = ?", again.run_id)
    assert {message for (message,) in duplicates} == {
        "the very same event was ingested before; nothing changed"
    }
    # The second copies did not replace the first ones in processed/.
    assert inbox.names("processed") == ["a-1.json", "a.json", "b-1.jsonl", "b.jsonl", "c-1.json", "c.json"]
    assert first.fetched == 11


def test_ingest_a_retry_inside_one_ingest_is_a_duplicate(inbox: Inbox) -> None:
    reordered = {
        "metadata": EVENTS["created"]["metadata"],
        "event": "created",
        "timestamp": "2025-04-01T14:23:45-04:00",
    }
    inbox.put("a.json", [EVENTS["created"], reordered])

    ingest(inbox)

    assert inbox.outcomes() == [("created", "1", "applied"), ("created", "1", "duplicate")]


def test_ingest_a_file_cut_in_half_is_rejected_whole_and_taken_once_repaired(inbox: Inbox) -> None:
    whole = "".join(
        json.dumps(e) + "\n" for e in (EVENTS["created"], EVENTS["updated_complete"], EVENTS["deleted"])
    )
    inbox.put("cut.jsonl", whole[: len(whole) // 2])
    inbox.put("other.json", variant("created", "2025-04-01T10:00:00Z", id="2"))

    result = ingest(inbox)

    assert inbox.outcomes() == [(None, None, "invalid"), ("created", "2", "applied")]
    (message,) = inbox.query("SELECT message FROM task_events WHERE event IS NULL")[0]
    assert message.startswith("the file is not valid JSON at line 2, column ")
    assert message.endswith("; nothing from it was applied")
    assert list(inbox.tasks()) == ["2"]
    assert inbox.names("rejected") == ["cut.jsonl"] and inbox.names("processed") == ["other.json"]
    assert result.extra["rejected_files"] == 1 and result.fetched == 1 and result.status == "ok"

    (inbox.folder / "rejected" / "cut.jsonl").unlink()
    inbox.put("cut.jsonl", whole)
    ingest(inbox)

    assert inbox.outcomes()[2:] == [
        ("created", "1", "applied"),
        ("updated", "1", "applied"),
        ("deleted", "1", "applied"),
    ]
    assert inbox.tasks()["1"] == TASK_1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file holds no JSON (it is empty)"),
        (
            b'{"event": "created", "x": "\xff"}',
            "the file is not UTF-8 text (invalid start byte near byte 27)",
        ),
        (
            b'[{"event": "created"}',
            "the file is not valid JSON at line 1, column 22: the file ends inside the array",
        ),
    ],
)
def test_ingest_an_unreadable_file_is_rejected_with_a_row_and_a_log_line(
    inbox: Inbox, content: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    inbox.put("bad.json", content)

    ingest(inbox)

    origin = str(inbox.folder / "bad.json")
    assert inbox.query("SELECT event, payload, outcome, message, origin, event_key FROM task_events") == [
        (None, None, "invalid", f"{reason}; nothing from it was applied", origin, None)
    ]
    assert inbox.names("rejected") == ["bad.json"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    moved = inbox.folder / "rejected" / "bad.json"
    assert errors == [f"rejected {origin}: {reason}; nothing from it was applied; moved to {moved}"]


def test_ingest_a_crash_between_batches_loses_nothing_and_repeats_nothing(
    inbox: Inbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_cases(inbox, seed=2)
    apply = TaskStore.apply
    calls = 0

    def crash_on_third_batch(self: TaskStore, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        return apply(self, *args, **kwargs)

    monkeypatch.setattr(TaskStore, "apply", crash_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        ingest(inbox, batch_size=3)
    monkeypatch.setattr(TaskStore, "apply", apply)
    assert len(inbox.outcomes()) == 6 and inbox.names("processed") == []  # two batches in, nothing moved

    again = ingest(inbox, batch_size=3)

    outcomes = [o for _, _, o in inbox.outcomes()]
    assert outcomes[6:12] == ["duplicate"] * 6  # the committed ones, recognised
    assert len(outcomes) == 6 + 11 and "duplicate" not in outcomes[12:]
    assert again.extra["outcomes"]["duplicate"] == 6
    # The same end state as one clean ingest of the same files.
    clean = Inbox(tmp_path / "clean", tmp_path / "clean.db", {})
    clean.folder.mkdir()
    put_cases(clean, seed=2)
    ingest(clean)
    assert inbox.tasks() == clean.tasks()
    applied = (
        "SELECT event, timestamp, task_id, outcome FROM task_events WHERE outcome != 'duplicate' ORDER BY seq"
    )
    assert inbox.query(applied) == clean.query(applied)
    assert inbox.names("processed") == ["a.json", "b.jsonl", "c.json"]


def test_ingest_a_crash_between_commit_and_move_gives_only_duplicates(
    inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_cases(inbox, seed=3)
    settle = Folder.settle

    def crash(self: Folder, *args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(Folder, "settle", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest(inbox)
    monkeypatch.setattr(Folder, "settle", settle)
    tasks = inbox.tasks()
    assert inbox.names() == ["a.json", "b.jsonl", "c.json"]

    again = ingest(inbox)

    assert again.extra["outcomes"]["duplicate"] == 11 and again.fetched == 11
    assert inbox.tasks() == tasks
    assert inbox.names() == [] and inbox.names("processed") == ["a.json", "b.jsonl", "c.json"]


def test_ingest_reads_finished_files_only(inbox: Inbox) -> None:
    inbox.put(".relay-123.json.tmp", EVENTS["created"])
    inbox.put("half.json.part", EVENTS["created"])
    inbox.put(".hidden.json", EVENTS["created"])
    (inbox.folder / "sub").mkdir()
    (inbox.folder / "sub" / "inner.json").write_text(json.dumps(EVENTS["created"]))

    result = ingest(inbox)

    assert result.fetched == 0 and result.extra["files"] == 0
    assert inbox.names() == [".hidden.json", ".relay-123.json.tmp", "half.json.part"]


def test_ingest_keeps_text_sqlite_cannot_store_as_near_as_it_can(inbox: Inbox) -> None:
    metadata = '{"userId": "1", "id": "1", "content": "x \\ud800 y", "isCompleted": false}'
    inbox.put(
        "a.json", f'{{"event": "created", "timestamp": "2025-04-01T10:00:00Z", "metadata": {metadata}}}'
    )
    inbox.put("b.json", '{"event": "\\udfff", "timestamp": "2025-04-01T11:00:00Z", "metadata": {}}')

    ingest(inbox)

    assert inbox.tasks()["1"]["content"] == "x \ufffd y"
    assert [o for _, _, o in inbox.outcomes()] == ["applied", "invalid"]


def test_ingest_the_inbox_must_exist(inbox: Inbox) -> None:
    shutil.rmtree(inbox.folder)

    result = ingest(inbox)

    assert result.status == "failed" and result.error is not None and result.error.exit_code == 3
    assert str(result.error) == f"the inbox {inbox.folder} (TASKS_INBOX_DIR) does not exist"


def test_ingest_counts_add_up(inbox: Inbox) -> None:
    put_cases(inbox, seed=4)
    result = ingest(inbox)
    assert result.fetched == result.inserted + result.updated + result.unchanged + result.skipped
    assert sum(result.extra["outcomes"].values()) == result.fetched
    assert set(result.extra["outcomes"]) == {o.value for o in Outcome}
