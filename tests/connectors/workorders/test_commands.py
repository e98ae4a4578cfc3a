"""`syncctl workorders get`, `status` for work orders, `--help`, and the demo's round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from syncctl.connectors.workorders.demo import demo_round_trip
from syncctl.connectors.workorders.translate import parse_inbound
from tests.connectors.workorders.conftest import FIXTURE_FILES, Client


def test_workorders_get_shows_the_stored_row(client: Client) -> None:
    client.put_fixtures()
    client.sync()
    synced_at = client.rows()[6]["synced_at"]

    as_json = client.run("workorders", "get", "6", "--json")
    as_text = client.run("workorders", "get", "6")

    assert as_json.exit_code == 0 and as_text.exit_code == 0
    assert as_json.json() == {
        "number": 6,
        "status": "in_progress",
        "title": "Example workorder #6",
        "description": None,
        "created_at": "2025-05-07T00:00:00+00:00",
        "updated_at": "2025-05-07T01:00:00+00:00",
        "deleted": True,
        "deleted_at": "2025-05-07T01:00:00+00:00",
        "is_synced": True,
        "synced_at": synced_at,
    }
    assert as_text.stdout.splitlines()[:3] == [
        "number       6",
        'status       "in_progress"',
        'title        "Example workorder #6"',
    ]


@pytest.mark.parametrize(
    ("number", "code", "message"),
    [
        ("99", 1, "work order 99 is not in "),
        ("abc", 2, "a work order number is a whole number below 2^63, got 'abc'"),
        (str(2**63), 2, "a work order number is a whole number below 2^63"),
    ],
)
def test_workorders_get_refuses_in_one_line(client: Client, number: str, code: int, message: str) -> None:
    client.sync()
    outcome = client.run("workorders", "get", number)
    assert outcome.exit_code == code
    [line] = outcome.stderr.splitlines()
    assert message in line


def test_workorders_get_before_any_sync_writes_nothing(client: Client) -> None:
    outcome = client.run("workorders", "get", "1")
    assert outcome.exit_code == 5 and "run `syncctl sync` first" in outcome.stderr
    assert not client.db_path.exists()


def test_workorders_commands_have_help(client: Client) -> None:
    for args in (["workorders", "--help"], ["workorders", "get", "--help"]):
        outcome = client.run(*args)
        assert outcome.exit_code == 0 and "Usage:" in outcome.stdout


def test_status_lists_rejected_files_and_unsynced_rows(client: Client) -> None:
    client.put("1.json", FIXTURE_FILES[0].read_bytes())
    client.put("bad.json", b"{")
    client.run("sync", "workorders")
    client.edit("UPDATE workorders SET title = 'x'")

    status = client.run("status", "workorders", "--json").json()
    text = client.run("status", "workorders").stdout

    assert status["details"] == {
        "unsynced": 1,
        "rejected_files": 1,
        "rejected": [
            {
                "file": "bad.json",
                "reason": "corrupt JSON: Expecting property name enclosed in double quotes:"
                " line 1 column 2 (char 1)",
            }
        ],
    }
    assert status["workorders"]["tables"] == {"workorders": 1}
    assert "rejected files: 1" in text and "bad.json" in text


def test_demo_round_trip_goes_in_and_out(tmp_path: Path) -> None:
    console = Console(record=True, width=200)

    written = demo_round_trip(console, tmp_path)

    document = json.loads(written.read_bytes())
    assert (written.name, document["isDone"], document["summary"]) == (
        "2.json",
        True,
        "Inspect transformer T-7",
    )
    assert parse_inbound(written.read_bytes()) is not None
    shown = console.export_text()
    assert "3 work orders stored, 1 file rejected" in shown
    assert "is_synced is now 0" in shown and "the next sync wrote 1 file" in shown
