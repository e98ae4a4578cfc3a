"""The CLI end to end: `sync tasks`, `tasks ingest`, `report tasks`, on real folders and a real file."""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from syncctl.core.lock import hold_lock
from tests.connectors.tasks.harness import EVENTS, Inbox, variant

START = datetime(2025, 4, 2, tzinfo=UTC)
END = START + timedelta(days=1)
ZONES = [
    UTC,
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-4)),
    timezone(timedelta(hours=5, minutes=30)),
]


# -- ingest ---------------------------------------------------------------------------------------------


def test_commands_sync_tasks_ingests_the_inbox_and_says_what_happened(inbox: Inbox) -> None:
    inbox.put("a.jsonl", [EVENTS["created"], EVENTS["updated_complete"], EVENTS["invalid"]], lines=True)
    inbox.put("b.json", "[{")

    outcome = inbox.run("sync", "tasks", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    data = outcome.json()
    assert {
        k: data[k] for k in ("source", "mode", "status", "fetched", "inserted", "updated", "skipped")
    } == {
        "source": "tasks",
        "mode": "ingest",
        "status": "ok",
        "fetched": 3,
        "inserted": 1,
        "updated": 1,
        "skipped": 1,
    }
    assert data["rejected_files"] == 1 and data["files"] == 1
    assert "rejected" in outcome.stderr and "1 file(s) were rejected" in outcome.stderr
    status = inbox.run("status", "tasks", "--json").json()
    assert status["tables"] == {"tasks": 1, "task_events": 4}
    assert status["details"]["rejected_files"] == 1
    assert status["details"]["rejected_folder"] == str(inbox.folder / "rejected")
    assert "b.json: the file is not valid JSON" in status["details"]["last_rejected"]
    sources = {s["name"]: s for s in inbox.run("sources", "--json").json()}
    assert sources["tasks"]["configured"] and sources["tasks"]["tables"] == ["tasks", "task_events"]


def test_commands_ingest_takes_files_folders_and_standard_input(inbox: Inbox, tmp_path: Path) -> None:
    elsewhere = tmp_path / "relay"
    elsewhere.mkdir()
    (elsewhere / "1.json").write_text(json.dumps(EVENTS["created"]))
    (elsewhere / "2.json").write_text(json.dumps(EVENTS["updated_complete"]))
    single = tmp_path / "single.json"
    single.write_text(json.dumps(variant("created", "2025-04-01T10:00:00Z", id="2")))

    outcome = inbox.run(
        "tasks", "ingest", str(elsewhere), str(single), "-", input=json.dumps(EVENTS["deleted"])
    )

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.startswith("ingest ok: 4 event(s) from 4 file(s) (applied 4, no_op 0, duplicate 0")
    origins = [origin for (origin,) in inbox.query("SELECT origin FROM task_events ORDER BY seq")]
    assert origins == [str(single), str(elsewhere / "1.json"), str(elsewhere / "2.json"), "stdin"]
    assert inbox.names("processed") == ["1.json", "2.json", "single.json"]
    assert list(elsewhere.iterdir()) == [] and not single.exists()


def test_commands_ingest_without_paths_is_the_inbox_and_keep_leaves_files(inbox: Inbox) -> None:
    inbox.put("a.json", EVENTS["created"])

    outcome = inbox.run("tasks", "ingest", "--keep", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json()["inserted"] == 1
    assert inbox.names() == ["a.json"] and inbox.names("processed") == []
    assert inbox.run("tasks", "ingest", "--json").json()["unchanged"] == 1
    assert inbox.names() == [] and inbox.names("processed") == ["a.json"]
    runs = inbox.run("status", "tasks", "--json").json()["runs"]
    assert [(run["mode"], run["status"]) for run in runs] == [("ingest", "ok"), ("ingest", "ok")]


def test_commands_ingest_a_rejected_standard_input_is_kept_and_exits_1(inbox: Inbox) -> None:
    outcome = inbox.run("tasks", "ingest", "-", input='{"event": "created", "timest')

    assert outcome.exit_code == 1
    assert "rejected stdin: standard input is not valid JSON at line 1" in outcome.stderr
    assert outcome.stderr.endswith(
        "syncctl: error: 1 input(s) rejected; see the lines above and `syncctl status tasks`\n"
    )
    (kept,) = inbox.names("rejected")
    assert kept.startswith("stdin-") and kept.endswith(".json")
    assert (inbox.folder / "rejected" / kept).read_text() == '{"event": "created", "timest'
    assert [name for name in (inbox.folder).iterdir() if name.name.startswith(".")] == []  # no spool left


def test_commands_ingest_a_file_in_processed_is_never_moved_again(inbox: Inbox) -> None:
    inbox.put("a.json", EVENTS["created"])
    inbox.sync()

    outcome = inbox.run("tasks", "ingest", str(inbox.folder / "processed" / "a.json"), "--json")

    assert outcome.json()["unchanged"] == 1
    assert inbox.names("processed") == ["a.json"]


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["nowhere.json"], {}, 2, "syncctl: error: nowhere.json does not exist\n"),
        (["-", "-"], {}, 2, "syncctl: error: standard input (-) can be read once\n"),
        (
            ["--wait-lock", "soon"],
            {},
            2,
            "syncctl: error: --wait-lock takes a duration like 30s, 5m, 2h or 1h30m, got 'soon'\n",
        ),
        (
            [],
            {"TASKS_INBOX_DIR": ""},
            3,
            "syncctl: error: tasks is not configured: TASKS_INBOX_DIR not set (environment or .env file)\n",
        ),
        (
            [],
            {"TASKS_INGEST_WORKERS": "many"},
            3,
            "syncctl: error: TASKS_INGEST_WORKERS must be a whole number, got 'many'\n",
        ),
    ],
)
def test_commands_ingest_refuses_bad_input_before_anything_runs(
    inbox: Inbox, args: list[str], env: dict[str, str], code: int, message: str
) -> None:
    outcome = inbox.run("tasks", "ingest", *args, **env)
    assert (outcome.exit_code, outcome.stderr) == (code, message)
    assert not inbox.db_path.exists()


def test_commands_ingest_takes_the_source_lock(inbox: Inbox) -> None:
    inbox.put("a.json", EVENTS["created"])
    inbox.sync()  # the file exists
    inbox.put("b.json", EVENTS["updated_complete"])

    with hold_lock(inbox.db_path, "tasks"):
        ingest = inbox.run("tasks", "ingest")
        sync = inbox.run("sync", "tasks")

    assert ingest.exit_code == sync.exit_code == 75
    assert "another syncctl run" in ingest.stderr
    assert inbox.names() == ["b.json"]


# -- reports: generated tasks and an independent computation --------------------------------------------


@dataclass
class Task:
    """A generated task, its times as plain UTC datetimes: what the test computes the report from."""

    id: str
    user: str
    content: str
    created: datetime
    completed: datetime | None
    deleted: datetime | None


def stamp(moment: datetime, rng: random.Random) -> str:
    return moment.astimezone(rng.choice(ZONES)).isoformat()


def generate(rng: random.Random, count: int) -> tuple[list[Task], list[dict[str, Any]]]:
    """Tasks around the period, many exactly on its boundaries, and their events (in any offset)."""
    boundaries = [START, END]
    tasks, events = [], []
    for number in range(1, count + 1):
        created = (
            rng.choice(boundaries) if rng.random() < 0.3 else START + timedelta(hours=rng.randrange(-30, 40))
        )
        completed = deleted = None
        if rng.random() < 0.5:
            later = [b for b in boundaries if b > created]
            completed = (
                rng.choice(later)
                if later and rng.random() < 0.4
                else created + timedelta(hours=rng.randrange(1, 30))
            )
        if rng.random() < 0.25:
            deleted = (completed or created) + timedelta(minutes=rng.randrange(1, 3000))
        task = Task(
            str(number), rng.choice(["7", "42", "ada", "b/ø"]), f"task {number}", created, completed, deleted
        )
        tasks.append(task)
        meta = {"userId": task.user, "id": task.id, "content": task.content}
        events.append(
            {"event": "created", "timestamp": stamp(created, rng), "metadata": {**meta, "isCompleted": False}}
        )
        if completed is not None:
            events.append(
                {
                    "event": "updated",
                    "timestamp": stamp(completed, rng),
                    "metadata": {**meta, "isCompleted": True},
                }
            )
        if deleted is not None:
            events.append({"event": "deleted", "timestamp": stamp(deleted, rng), "metadata": meta})
    rng.shuffle(events)
    return tasks, events


def expected_report(tasks: list[Task], user: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The report, computed here from the generated tasks rather than by the rules."""

    def shown(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")

    def entries(chosen: list[tuple[datetime, Task]]) -> list[dict[str, str]]:
        chosen.sort(key=lambda pair: (pair[0], (0, int(pair[1].id))))
        return [{"id": t.id, "content": t.content, "createdOrCompletedAt": shown(at)} for at, t in chosen]

    own = [t for t in tasks if t.user == user]
    still_open = [t for t in own if t.completed is None and t.deleted is None]
    return {
        "userId": user,
        "period": {"start": shown(start), "end": shown(end)},
        "newIncompleteTasks": entries([(t.created, t) for t in still_open if start <= t.created < end]),
        "completedTasks": entries(
            [(t.completed, t) for t in own if t.completed and start <= t.completed < end]
        ),
        "oldIncompleteTasks": entries([(t.created, t) for t in still_open if t.created < start]),
    }


@pytest.fixture
def generated(inbox: Inbox) -> list[Task]:
    rng = random.Random(20250402)
    tasks, events = generate(rng, 300)
    for number in range(4):  # spread over files of every kind; the ingest orders them by time
        part = events[number::4]
        if number == 0:
            inbox.put("0.jsonl", part, lines=True)
        else:
            inbox.put(f"{number}.json", part)
    assert inbox.sync()["skipped"] == 0
    return tasks


def test_commands_report_files_match_an_independent_computation(
    inbox: Inbox, generated: list[Task], tmp_path: Path
) -> None:
    out_dir = tmp_path / "reports"

    # The period given in another offset: the same instants as START and END.
    outcome = inbox.run(
        "report",
        "tasks",
        "--start",
        "2025-04-02T02:00:00+02:00",
        "--end",
        "2025-04-02T20:00:00-04:00",
        "--out-dir",
        str(out_dir),
    )

    assert outcome.exit_code == 0, outcome.stderr
    users = {"7": "7", "42": "42", "ada": "ada", "b/ø": "b__"}
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        f"task_report_{safe}_20250402T000000Z_20250403T000000Z.json" for safe in users.values()
    )
    for user, safe in users.items():
        path = out_dir / f"task_report_{safe}_20250402T000000Z_20250403T000000Z.json"
        report = json.loads(path.read_text(encoding="utf-8"))
        assert report == expected_report(generated, user, START, END), user
        assert list(report) == [
            "userId",
            "period",
            "newIncompleteTasks",
            "completedTasks",
            "oldIncompleteTasks",
        ]
    # The boundaries were really exercised: tasks created and completed exactly at START and at END.
    assert any(t.created == START and t.completed is None and t.deleted is None for t in generated)
    assert any(t.created == END for t in generated) and any(t.completed == START for t in generated)
    assert any(t.completed == END for t in generated)
    assert outcome.stderr == f"wrote 4 report file(s) to {out_dir}\n"


def test_commands_report_boundary_on_an_event_timestamp_is_half_open(inbox: Inbox) -> None:
    inbox.put("a.jsonl", [
        variant("created", "2025-04-02T02:00:00+02:00", id="1"),  # exactly START
        variant("created", "2025-04-02T20:00:00-04:00", id="2"),  # exactly END
        variant("created", "2025-04-01T10:00:00Z", id="3"),
        variant("updated_complete", "2025-04-02T00:00:00Z", id="3"),  # completed exactly at START
        variant("created", "2025-04-01T11:00:00Z", id="4"),
        variant("updated_complete", "2025-04-03T05:30:00+05:30", id="4"),  # completed exactly at END
    ], lines=True)  # fmt: skip
    inbox.sync()

    report = inbox.run(
        "report", "tasks", "--start", "2025-04-02", "--end", "2025-04-03", "--format", "json"
    ).json()

    (user,) = report
    assert [e["id"] for e in user["newIncompleteTasks"]] == ["1"]
    assert [(e["id"], e["createdOrCompletedAt"]) for e in user["completedTasks"]] == [
        ("3", "2025-04-02 00:00:00+00:00")
    ]
    assert user["oldIncompleteTasks"] == []  # 4 is completed now, so not open; 2 was created at END: neither


def test_commands_report_every_format_to_stdout_and_to_a_file(
    inbox: Inbox, generated: list[Task], tmp_path: Path
) -> None:
    args = ["report", "tasks", "--start", "2025-04-02", "--end", "2025-04-03"]
    expected = [expected_report(generated, user, START, END) for user in ("7", "42", "ada", "b/ø")]
    flat = [
        {"userId": r["userId"], "list": name, **entry}
        for r in expected
        for name in ("newIncompleteTasks", "completedTasks", "oldIncompleteTasks")
        for entry in r[name]
    ]

    assert inbox.run(*args).json() == expected  # json when not on a terminal
    lines = inbox.run(*args, "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line) for line in lines] == flat
    rows = list(csv.DictReader(io.StringIO(inbox.run(*args, "--format", "csv").stdout)))
    assert rows == flat
    table = inbox.run(*args, "--format", "table")
    assert table.exit_code == 0 and "createdOrCompletedAt" in table.stdout
    page = tmp_path / "tasks.html"
    assert inbox.run(*args, "--format", "html", "--out", str(page)).exit_code == 0
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>") and "task 1" in page.read_text()
    out_dir = tmp_path / "csv"
    assert inbox.run(*args, "--format", "csv", "--out-dir", str(out_dir)).exit_code == 0
    assert len(list(out_dir.glob("task_report_*_20250402T000000Z_20250403T000000Z.csv"))) == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start", "soon", "--end", "2025-04-03"], "--start: 'soon' is not a time"),
        (
            ["--start", "2025-04-03", "--end", "2025-04-03"],
            "--end 2025-04-03T00:00:00+00:00 must be after --start",
        ),
        (["--start", "2025-04-02", "--end", "2025-04-03", "--format", "pdf"], "unknown --format 'pdf'"),
        (
            ["--start", "2025-04-02", "--end", "2025-04-03", "--out", "x.json", "--out-dir", "d"],
            "--out or --out-dir",
        ),
        (["--start", "2025-04-02", "--end", "2025-04-03", "--out", "missing/x.json"], "cannot write"),
    ],
)
def test_commands_report_bad_input_is_exit_2_and_writes_nothing(
    inbox: Inbox, generated: list[Task], tmp_path: Path, extra: list[str], message: str
) -> None:
    def written() -> list[str]:  # SQLite's own -wal and -shm files aside
        return sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("syncctl.db"))

    before = written()
    outcome = inbox.run("report", "tasks", *extra)
    assert outcome.exit_code == 2
    assert message in outcome.stderr and outcome.stderr.count("\n") == 1
    assert written() == before


def test_commands_report_reads_the_file_without_writing_it(
    inbox: Inbox, generated: list[Task], tmp_path: Path
) -> None:
    before = inbox.db_path.read_bytes()
    assert inbox.run("report", "tasks", "--start", "2025-04-02", "--end", "2025-04-03").exit_code == 0
    assert inbox.db_path.read_bytes() == before


def test_commands_report_with_no_tasks_yet(inbox: Inbox, tmp_path: Path) -> None:
    inbox.sync()
    assert inbox.run("report", "tasks", "--start", "2025-04-02", "--end", "2025-04-03").json() == []
    outcome = inbox.run(
        "report", "tasks", "--start", "2025-04-02", "--end", "2025-04-03", "--out-dir", str(tmp_path / "r")
    )
    assert outcome.exit_code == 0 and list((tmp_path / "r").iterdir()) == []


@pytest.mark.parametrize("command", [["tasks"], ["tasks", "ingest"], ["report", "tasks"]])
def test_commands_have_help(inbox: Inbox, command: list[str]) -> None:
    outcome = inbox.run(*command, "--help")
    assert outcome.exit_code == 0 and "Usage" in outcome.stdout
