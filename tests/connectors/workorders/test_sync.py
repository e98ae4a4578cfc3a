"""`syncctl sync workorders` end to end: real folders, a real SQLite file, the CLI in-process."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from syncctl.connectors.workorders import sync as sync_module
from syncctl.connectors.workorders.folder import Read, read_inbound
from syncctl.connectors.workorders.store import WorkOrderStore
from syncctl.connectors.workorders.translate import WorkOrder, parse_inbound, to_row
from tests.connectors.workorders.conftest import FIXTURE_FILES, Client

ROOT = os.geteuid() == 0  # root reads and writes through any permission bits


def stored_row(path: Path, synced_at: str) -> dict[str, Any]:
    order = parse_inbound(path.read_bytes())
    assert isinstance(order, WorkOrder)
    return {**to_row(order), "is_synced": 1, "synced_at": synced_at}


def client_file(number: int, **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURE_FILES[0]).read_bytes())
    document.update({"orderNo": number, "summary": f"Order {number}", **changes})
    return document


def lines(text: str, word: str) -> list[str]:
    return [line for line in text.splitlines() if word in line]


# -- both ways ---------------------------------------------------------------------------------------------


def test_sync_every_fixture_in_and_out_keeps_every_field(client: Client) -> None:
    client.put_fixtures()

    first = client.sync()

    assert (first["inserted"], first["fetched"], first["pushed"], first["rejected_files"]) == (6, 6, 0, 0)
    rows = client.rows()
    synced_at = rows[1]["synced_at"]
    assert datetime.fromisoformat(synced_at).tzinfo is not None
    assert rows == {int(path.stem): stored_row(path, synced_at) for path in FIXTURE_FILES}
    assert rows[6] == {
        "number": 6,
        "status": "in_progress",
        "title": "Example workorder #6",
        "description": None,
        "created_at": "2025-05-07T00:00:00+00:00",
        "updated_at": "2025-05-07T01:00:00+00:00",
        "deleted": 1,
        "deleted_at": "2025-05-07T01:00:00+00:00",
        "is_synced": 1,
        "synced_at": synced_at,
    }
    assert client.written() == {}  # what came from the client is not echoed back

    client.edit("UPDATE workorders SET is_synced = 0")  # ask for every row to be written out
    second = client.sync()

    assert (second["pushed"], second["inserted"], second["updated"]) == (6, 0, 0)
    assert client.written() == {path.name: path.read_bytes() for path in FIXTURE_FILES}  # byte for byte
    assert {number: row["is_synced"] for number, row in client.rows().items()} == dict.fromkeys(
        range(1, 7), 1
    )
    history = client.query("SELECT source, table_name, record_id, op, origin, changes FROM _syncctl_history")
    assert history == [("workorders", "workorders", str(n), "insert", "file", None) for n in range(1, 7)]


def test_sync_unchanged_rerun_reads_no_file_and_writes_nothing(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.put_fixtures()
    client.put("bad.json", b"{")
    client.sync()
    before = client.dump()
    read: list[str] = []

    def counting(path: str) -> Read:
        read.append(path)
        return read_inbound(path)

    monkeypatch.setattr(sync_module, "read_inbound", counting)
    again = client.sync()

    assert read == []
    assert (again["fetched"], again["unchanged"], again["skipped"], again["rejected_files"]) == (7, 6, 1, 1)
    assert (again["inserted"], again["updated"], again["pushed"], again["mode"]) == (0, 0, 0, "incremental")
    assert client.dump() == before


def test_sync_touched_file_with_the_same_content_is_hashed_not_applied(client: Client) -> None:
    path = client.put("1.json", FIXTURE_FILES[0].read_bytes())
    client.sync()
    history = client.query("SELECT count(*) FROM _syncctl_history")
    stamp = path.stat().st_mtime_ns + 10**9
    os.utime(path, ns=(stamp, stamp))

    again = client.sync()

    assert (again["unchanged"], again["updated"]) == (1, 0)
    assert client.query("SELECT count(*) FROM _syncctl_history") == history
    assert client.query("SELECT mtime_ns FROM _syncctl_workorders_files") == [(stamp,)]


def test_sync_a_change_within_the_files_time_stamp_is_still_seen(client: Client) -> None:
    path = client.put("1.json", client_file(1, summary="AAAA"), age_ns=None)  # written just now
    stamp = path.stat().st_mtime_ns
    client.sync()

    client.put("1.json", client_file(1, summary="BBBB"), age_ns=None)  # same size, same time stamp
    os.utime(path, ns=(stamp, stamp))
    again = client.sync()

    assert again["updated"] == 1 and client.rows()[1]["title"] == "BBBB"


def test_sync_full_rereads_every_file_and_restores_a_row_deleted_locally(client: Client) -> None:
    client.put_fixtures()
    client.sync()
    client.edit("DELETE FROM workorders WHERE number = 2")

    quiet = client.run("sync", "workorders", "--json")
    assert 2 not in client.rows()  # the client's unchanged file says nothing new
    assert "deleted from the table (2)" in quiet.stderr
    full = client.sync("--full")

    assert (full["mode"], full["inserted"], full["unchanged"]) == ("full", 1, 5)
    assert client.rows()[2]["title"] == "Example workorder #2"
    assert client.query("SELECT count(*) FROM _syncctl_pending") == [(0,)]


# -- newer wins ----------------------------------------------------------------------------------------


def test_sync_older_file_does_not_overwrite_the_newer_row(client: Client) -> None:
    client.put("7.json", client_file(7, summary="new", lastUpdateDate="2025-06-02T00:00:00+00:00"))
    client.sync()
    client.put("7.json", client_file(7, summary="stale", lastUpdateDate="2025-06-01T23:59:59+00:00"))

    older = client.sync()

    assert (older["updated"], older["unchanged"]) == (0, 1)
    assert client.rows()[7]["title"] == "new"
    assert client.query("SELECT outcome FROM _syncctl_workorders_files") == [("older",)]

    client.put("7.json", client_file(7, summary="newer", lastUpdateDate="2025-06-03T00:00:00+02:00"))
    newer = client.sync()

    assert newer["updated"] == 1
    row = client.rows()[7]
    assert (row["title"], row["updated_at"], row["is_synced"]) == ("newer", "2025-06-02T22:00:00+00:00", 1)
    [(changes,)] = client.query(
        "SELECT changes FROM _syncctl_history WHERE op = 'update' AND origin = 'file'"
    )
    assert json.loads(changes)["title"] == ["new", "newer"]
    assert client.written() == {}


def test_sync_two_files_for_one_order_the_newer_wins(client: Client) -> None:
    client.put("a.json", client_file(8, summary="later", lastUpdateDate="2025-06-02T00:00:00+00:00"))
    client.put("b.json", client_file(8, summary="earlier", lastUpdateDate="2025-06-01T00:00:00+00:00"))

    result = client.sync()

    assert client.rows()[8]["title"] == "later"
    assert (result["inserted"], result["unchanged"]) == (1, 1)


def test_sync_newer_client_file_replaces_a_local_change_as_a_conflict(client: Client) -> None:
    client.put("7.json", client_file(7, lastUpdateDate="2025-06-01T00:00:00+00:00"))
    client.sync()
    client.edit("UPDATE workorders SET title = 'local', updated_at = '2025-06-02T00:00:00+00:00'")
    client.put("7.json", client_file(7, summary="client", lastUpdateDate="2025-06-03T00:00:00+00:00"))

    outcome = client.run("sync", "workorders", "--json")

    assert outcome.exit_code == 0 and outcome.json()["conflicts"] == 1
    assert lines(outcome.stderr, "work order 7: the client's newer version")
    row = client.rows()[7]
    assert (row["title"], row["is_synced"]) == ("client", 1)
    assert client.written() == {}  # the client's own version is not echoed
    assert client.query("SELECT count(*) FROM _syncctl_pending") == [(0,)]
    conflicts = client.run("conflicts", "--json").json()
    assert [(c["record_id"], c["field"], c["winner"]) for c in conflicts] == [(7, "updated_at", "remote")]


def test_sync_newer_local_change_wins_over_an_older_client_file(client: Client) -> None:
    client.put("7.json", client_file(7, lastUpdateDate="2025-06-01T00:00:00+00:00"))
    client.sync()
    client.edit("UPDATE workorders SET title = 'local'")  # stamped with the time of the edit
    client.put("7.json", client_file(7, summary="client", lastUpdateDate="2025-06-01T12:00:00+00:00"))

    result = client.sync()

    assert (result["conflicts"], result["pushed"]) == (1, 1)
    assert json.loads(client.written()["7.json"])["summary"] == "local"


# -- local changes out ---------------------------------------------------------------------------------


def test_sync_local_edit_is_written_out_once_and_marked_synced(client: Client) -> None:
    client.put_fixtures()
    client.sync()
    client.edit("UPDATE workorders SET status = 'completed', description = 'checked' WHERE number = 2")
    edited = client.rows()[2]
    assert edited["is_synced"] == 0 and edited["updated_at"] != "2025-05-03T01:00:00+00:00"
    history = client.query("SELECT count(*) FROM _syncctl_history")

    result = client.sync()

    assert (result["pushed"], result["updated"], result["unchanged"]) == (1, 0, 6)
    document = json.loads(client.written()["2.json"])
    assert document == {
        "orderNo": 2,
        "isCanceled": False,
        "isDeleted": False,
        "isDone": True,
        "isOnHold": False,
        "isPending": False,
        "summary": "Example workorder #2",
        "creationDate": "2025-05-03T00:00:00+00:00",
        "lastUpdateDate": edited["updated_at"],
        "deletedDate": None,
    }
    row = client.rows()[2]
    assert row == {**edited, "is_synced": 1, "synced_at": row["synced_at"]}
    assert row["synced_at"] is not None
    assert client.query("SELECT count(*) FROM _syncctl_history") == history  # marking is bookkeeping
    assert client.query("SELECT count(*) FROM _syncctl_pending") == [(0,)]
    assert (client.outbound / "2.json").stat().st_mode & 0o777 == 0o600

    assert client.sync()["pushed"] == 0  # written once


def test_sync_local_insert_with_defaults_is_written_out(client: Client) -> None:
    client.sync()
    client.edit("INSERT INTO workorders (number, title) VALUES (42, 'Pump check')")

    result = client.sync()

    assert result["pushed"] == 1
    document = json.loads(client.written()["42.json"])
    assert (document["summary"], document["isPending"], document["isDeleted"]) == ("Pump check", True, False)
    assert document["creationDate"] == document["lastUpdateDate"]
    assert parse_inbound(client.written()["42.json"]) == parse_inbound(json.dumps(document).encode())


def test_sync_row_the_client_cannot_take_stays_unsynced_and_is_named(client: Client) -> None:
    client.sync()
    client.edit("INSERT INTO workorders (number, title, created_at) VALUES (1, 'ok', '2025-05-02T00:00:00Z')")
    client.edit("INSERT INTO workorders (number, title, created_at) VALUES (2, 'bad', 'yesterday')")

    outcome = client.run("sync", "workorders", "--json")

    assert outcome.exit_code == 0
    result = outcome.json()
    assert (result["pushed"], result["push_failed"]) == (1, 1)
    [line] = lines(outcome.stderr, "work order 2 not written")
    assert "created_at is not a time: 'yesterday'" in line
    assert list(client.written()) == ["1.json"]
    assert client.query("SELECT number, is_synced FROM workorders ORDER BY number") == [(1, 1), (2, 0)]
    status = client.run("status", "workorders", "--json").json()
    [pending] = status["pending_changes"]
    assert (pending["id"], pending["attempts"]) == (2, 1) and "yesterday" in pending["last_error"]
    assert status["details"]["unsynced"] == 1


def test_sync_pull_only_writes_no_file(client: Client) -> None:
    client.sync()
    client.edit("INSERT INTO workorders (number, title) VALUES (5, 't')")

    assert client.sync("--pull-only")["pushed"] == 0

    assert client.written() == {} and client.rows()[5]["is_synced"] == 0


def test_sync_crash_between_writing_and_marking_rewrites_the_same_file(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.put_fixtures()
    client.sync()
    client.edit("UPDATE workorders SET title = 'changed' WHERE number IN (3, 4)")

    def crash(self: WorkOrderStore, written: Any, at: str) -> list[int]:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patched:
        patched.setattr(WorkOrderStore, "mark_synced", crash)
        failed = client.run("sync", "workorders", "--json")
    assert failed.exit_code != 0 and failed.json()["status"] == "failed"
    first = client.written()
    assert sorted(first) == ["3.json", "4.json"]
    assert client.query("SELECT number FROM workorders WHERE is_synced = 0") == [(3,), (4,)]

    again = client.sync()

    assert again["pushed"] == 2
    assert client.written() == first  # the same files, nothing duplicated, no temporary file left
    assert client.query("SELECT number FROM workorders WHERE is_synced = 0") == []


# -- bad files -------------------------------------------------------------------------------------------


BAD_FILES: dict[str, bytes] = {
    "corrupt.json": b'{"orderNo": 1, "summary": ',
    "missing.json": json.dumps({k: v for k, v in client_file(11).items() if k != "summary"}).encode(),
    "mistyped.json": json.dumps(client_file(12, isDone="yes")).encode(),
    "baddate.json": json.dumps(client_file(13, lastUpdateDate="02/05/2025")).encode(),
    "empty.json": b"",
    "list.json": b"[1, 2]",
}
REASONS = {
    "corrupt.json": "corrupt JSON: Expecting value: line 1 column 27 (char 26)",
    "missing.json": "missing summary",
    "mistyped.json": 'isDone must be true or false, got "yes"',
    "baddate.json": 'lastUpdateDate is not an ISO 8601 date-time: "02/05/2025"',
    "empty.json": "empty file",
    "list.json": "expected a JSON object, got list",
}


def test_sync_bad_files_are_named_skipped_counted_and_listed(client: Client) -> None:
    client.put_fixtures()
    for name, data in BAD_FILES.items():
        client.put(name, data)

    outcome = client.run("sync", "workorders", "--json")

    assert outcome.exit_code == 0
    result = outcome.json()
    assert (result["inserted"], result["skipped"], result["rejected_files"], result["fetched"]) == (
        6,
        6,
        6,
        12,
    )
    warned = lines(outcome.stderr, "WARNING")
    assert len(warned) == len(BAD_FILES)
    for name, reason in REASONS.items():
        [line] = [line for line in warned if f"{client.inbound / name}" in line]
        assert line.endswith(reason)
    assert "(orderNo 12)" in next(line for line in warned if "mistyped.json" in line)
    assert lines(outcome.stderr, "ERROR") == [lines(outcome.stderr, "ERROR")[0]]
    assert "workorders: 6 file(s) were rejected" in outcome.stderr
    status = client.run("status", "workorders", "--json").json()["details"]
    assert status["rejected_files"] == 6
    assert status["rejected"] == [{"file": name, "reason": REASONS[name]} for name in sorted(REASONS)]

    again = client.run("sync", "workorders", "--json")  # still there: counted, not named again
    assert again.json()["rejected_files"] == 6 and lines(again.stderr, "WARNING") == []
    assert "6 file(s) were rejected" in again.stderr

    client.put("corrupt.json", client_file(20))  # fixed by the client
    (client.inbound / "empty.json").unlink()  # or taken away
    fixed = client.sync()
    assert (fixed["inserted"], fixed["rejected_files"]) == (1, 4)
    assert client.run("status", "workorders", "--json").json()["details"]["rejected_files"] == 4


def test_sync_files_that_are_not_work_orders_are_rejected_or_passed_over(client: Client) -> None:
    client.put("1.json", client_file(1))
    os.mkfifo(client.inbound / "pipe.json")  # would block a naive read forever
    (client.inbound / "dangling.json").symlink_to(client.inbound / "nowhere")
    (client.inbound / "folder.json").mkdir()
    client.put(".1.json.tmp", b"{")  # a client's file being written
    client.put("notes.txt", b"not a work order")
    client.put("huge.json", b" " * (1 << 20 + 1))

    result = client.sync()

    assert (result["inserted"], result["rejected_files"]) == (1, 3)
    details = client.run("status", "workorders", "--json").json()["details"]
    assert details["rejected"] == [
        {"file": "dangling.json", "reason": "a link to a file that does not exist"},
        {"file": "huge.json", "reason": "larger than 1048576 bytes"},
        {"file": "pipe.json", "reason": "not a regular file"},
    ]


def test_sync_unreadable_inbound_file_is_named_and_the_rest_processed(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.put_fixtures()
    locked = client.put("7.json", client_file(7))
    if ROOT:  # permission bits do not stop root: make the open fail as it would for anyone else
        real_open = os.open

        def refuse(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if Path(path) == locked:
                raise PermissionError(13, "Permission denied")
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
    locked.chmod(0)

    outcome = client.run("sync", "workorders", "--json")

    assert outcome.exit_code == 0
    assert (outcome.json()["inserted"], outcome.json()["rejected_files"]) == (6, 1)
    [line] = lines(outcome.stderr, "WARNING")
    assert line.endswith(f"rejected {locked}: cannot read it: Permission denied")
    assert 7 not in client.rows()

    monkeypatch.undo()
    locked.chmod(0o644)  # permissions fixed: the file is read again, although its content did not change
    fixed = client.sync()
    assert (fixed["inserted"], fixed["rejected_files"]) == (1, 0)


def test_sync_folder_changing_during_the_run(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    client.put_fixtures()

    def meddling(path: str) -> Read:
        got = read_inbound(path)
        if Path(path).name == "2.json":  # the client works while syncctl reads
            (client.inbound / "5.json").unlink()  # not read yet: gone
            client.put("1.json", client_file(1, summary="rewritten", lastUpdateDate="2025-06-01T00:00:00Z"))
            client.put("9.json", client_file(9))  # after the listing
        return got

    monkeypatch.setattr(sync_module, "read_inbound", meddling)
    during = client.sync()
    monkeypatch.undo()

    assert (during["inserted"], during["fetched"], during["rejected_files"]) == (5, 5, 0)
    assert sorted(client.rows()) == [1, 2, 3, 4, 6]
    assert client.rows()[1]["title"] == "Example workorder #1"  # as it was read

    after = client.sync()

    assert (after["inserted"], after["updated"], after["unchanged"]) == (1, 1, 4)
    assert client.rows()[1]["title"] == "rewritten" and 9 in client.rows()
    names = [row[0] for row in client.query("SELECT name FROM _syncctl_workorders_files ORDER BY name")]
    assert names == ["1.json", "2.json", "3.json", "4.json", "6.json", "9.json"]


# -- the outbound folder -----------------------------------------------------------------------------------


def test_sync_unwritable_outbound_folder_is_one_line_and_loses_nothing(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.sync()
    client.edit("INSERT INTO workorders (number, title) VALUES (1, 'a'), (2, 'b')")
    if ROOT:
        import tempfile

        real_mkstemp = tempfile.mkstemp

        def refuse(
            suffix: str | None = None, prefix: str | None = None, dir: str | None = None
        ) -> tuple[int, str]:
            if dir is not None and Path(dir) == client.outbound:
                raise PermissionError(13, "Permission denied")
            return real_mkstemp(suffix, prefix, dir)

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    client.outbound.chmod(0o500)

    outcome = client.run("sync", "workorders", "--json")

    assert outcome.exit_code == 1
    result = outcome.json()
    assert (result["status"], result["pushed"], result["push_failed"]) == ("failed", 0, 2)
    [line] = lines(outcome.stderr, "syncctl: error:")
    assert line.endswith(
        f"cannot write to the outbound folder {client.outbound}: Permission denied;"
        " 2 work order(s) stay unsynced and are written by the next run"
    )
    assert client.query("SELECT number FROM workorders WHERE is_synced = 0") == [(1,), (2,)]

    monkeypatch.undo()
    client.outbound.chmod(0o700)
    assert client.sync()["pushed"] == 2
    assert sorted(client.written()) == ["1.json", "2.json"]


# -- settings ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORKORDERS_OUTBOUND_DIR": ""}, "workorders is not configured: WORKORDERS_OUTBOUND_DIR not set"),
        (
            {"WORKORDERS_INBOUND_DIR": "/nonexistent/in"},
            "WORKORDERS_INBOUND_DIR /nonexistent/in does not exist",
        ),
        ({"WORKORDERS_OUTBOUND_DIR": "{db}"}, "is not a folder"),
        ({"WORKORDERS_OUTBOUND_DIR": "{in}"}, "must be different folders"),
    ],
)
def test_sync_unusable_settings_are_exit_3_in_one_line(
    client: Client, env: dict[str, str], message: str
) -> None:
    client.db_path.write_bytes(b"")
    values = {k: v.format(db=client.db_path, **{"in": client.inbound}) for k, v in env.items()}

    outcome = client.run("sync", "workorders", **values)

    assert outcome.exit_code == 3
    [line] = outcome.stderr.splitlines()
    assert message in line


def test_sync_inbound_folder_that_cannot_be_listed_fails_the_run_in_one_line(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.sync()
    client.edit("INSERT INTO workorders (number, title) VALUES (1, 'a')")

    def refuse(path: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "scandir", refuse)
    outcome = client.run("sync", "workorders", "--json")

    assert outcome.exit_code == 1 and outcome.json()["status"] == "failed"
    [line] = lines(outcome.stderr, "syncctl: error:")
    assert line.endswith(f"cannot read the inbound folder {client.inbound}: Permission denied")
    assert client.written() == {}  # a failed inbound step stops the run before anything goes out
