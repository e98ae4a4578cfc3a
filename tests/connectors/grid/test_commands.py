"""`syncctl grid component|measurement get|create|update|delete` and `syncctl fake-grid`, end to end."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from syncctl.connectors.grid.fake import FakeGrid
from syncctl.core.fakehttp import Response, json_response
from tests.connectors.grid.world import ACCOUNTS, CLI, GridWorld, daily_sums_are_exact

VALID = {"component_id": 2, "timestamp": "2025-03-01T10:00:00+01:00", "type": "power", "value": 12.5}


def measurement_file(path: Path, count: int, kind: str, *, start_value: float = 0.0) -> Path:
    items = [
        {
            "component_id": 1 + i % 3,
            "timestamp": f"2025-03-{1 + i // 1440:02d}T{i // 60 % 24:02d}:{i % 60:02d}:00Z",
            "type": ("voltage", "current", "power")[i % 3],
            "value": start_value + i / 4,
        }
        for i in range(count)
    ]
    if kind == "json":
        path.write_text(json.dumps(items, indent=1), encoding="utf-8")
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    else:
        with path.open("w", newline="", encoding="utf-8-sig") as out:  # with a BOM, as Excel writes it
            writer = csv.DictWriter(out, fieldnames=list(items[0]))
            writer.writeheader()
            writer.writerows(items)
    return path


def new_measurements(world: GridWorld, first_new_id: int) -> list[dict[str, Any]]:
    return [m for m in world.fake.measurements() if m["id"] >= first_new_id]


# -- components -----------------------------------------------------------------------------------------


def test_component_create_get_update_delete(synced: GridWorld) -> None:
    fields = ["name=T-9000", "type=transformer", "substation=Valby", "voltage_kv=20", "capacity_mva=40"]
    created = synced.run("grid", "component", "create", *[f"--field={f}" for f in fields], "--json")
    assert created.exit_code == 0, created.stderr
    component = created.json()
    assert component == {"id": 11, "name": "T-9000", "type": "transformer", "substation": "Valby",
                         "voltage_kv": 20.0, "capacity_mva": 40.0, "length_km": None, "status": None,
                         "version": synced.fake.max_version}  # fmt: skip
    local = synced.run("grid", "component", "get", "11", "--json")
    remote = synced.run("grid", "component", "get", "11", "--remote", "--json")
    assert local.json() == remote.json() == component
    updated = synced.run("grid", "component", "update", "11", "--field", "capacity_mva=63", "--json")
    assert updated.json()["capacity_mva"] == 63.0
    assert synced.query("SELECT capacity_mva FROM grid_components WHERE id = 11") == [(63.0,)]
    deleted = synced.run("grid", "component", "delete", "11")
    assert (deleted.exit_code, deleted.stdout.strip()) == (0, "deleted component 11 and its measurements")
    assert synced.query("SELECT count(*) FROM grid_components WHERE id = 11") == [(0,)]
    again = synced.run("grid", "component", "delete", "11")
    assert (again.exit_code, again.stdout.strip()) == (0, "component 11 was already gone")


def test_component_delete_takes_its_measurements_locally_too(synced: GridWorld) -> None:
    outcome = synced.run("grid", "component", "delete", "3")
    assert outcome.exit_code == 0, outcome.stderr
    assert synced.query("SELECT count(*) FROM grid_measurements WHERE component_id = 3") == [(0,)]
    assert not [m for m in synced.fake.measurements() if m["component_id"] == 3]
    daily_sums_are_exact(synced)
    assert synced.sync("--full")["deleted"] == 0  # nothing left for a full sync to find


def test_component_create_from_file_with_field_overrides(synced: GridWorld, tmp_path: Path) -> None:
    source = tmp_path / "line.json"
    source.write_text(json.dumps({"name": "L-77", "type": "line", "substation": "Ishøj", "length_km": 3}))
    outcome = synced.run(
        "grid", "component", "create", "--from-file", str(source), "-f", "voltage_kv=10", "--json"
    )
    assert outcome.exit_code == 0, outcome.stderr
    assert {k: outcome.json()[k] for k in ("name", "voltage_kv", "length_km")} == {
        "name": "L-77", "voltage_kv": 10.0, "length_km": 3.0}  # fmt: skip


# -- measurements ---------------------------------------------------------------------------------------


def test_measurement_create_one_with_fields_then_update_and_delete(synced: GridWorld) -> None:
    fields = [f"--field={k}={v}" for k, v in VALID.items()]
    created = synced.run("grid", "measurement", "create", *fields, "--json")
    assert created.exit_code == 0, created.stderr
    measurement = created.json()
    assert {k: v for k, v in measurement.items() if k not in ("id", "version")} == {
        "component_id": 2, "timestamp": "2025-03-01T09:00:00Z", "type": "power", "value": 12.5}  # fmt: skip
    key = str(measurement["id"])
    assert (
        synced.run("grid", "measurement", "update", key, "-f", "value=13", "--json").json()["value"] == 13.0
    )
    assert synced.run("grid", "measurement", "get", key, "--json").json()["value"] == 13.0
    assert synced.run("grid", "measurement", "delete", key).stdout.strip() == f"deleted measurement {key}"
    daily_sums_are_exact(synced)
    assert synced.run("grid", "measurement", "get", key).exit_code == 1


@pytest.mark.parametrize("kind", ["json", "jsonl", "csv"])
def test_measurement_create_from_file_sends_batches_of_1000(
    synced: GridWorld, tmp_path: Path, kind: str
) -> None:
    source = measurement_file(tmp_path / f"m.{kind}", 2500, kind)
    first_new = max(m["id"] for m in synced.fake.measurements()) + 1
    outcome = synced.run("grid", "measurement", "create", "--from-file", str(source), "--json")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json() == {
        "created": 2500,
        "batches": 3,
        "first_id": first_new,
        "last_id": first_new + 2499,
    }
    posts = [p for m, p in synced.fake.requests if m == "POST" and p == "/api/measurements"]
    assert len(posts) == 3
    created = new_measurements(synced, first_new)
    assert [m["value"] for m in created] == [i / 4 for i in range(2500)]
    local = synced.query("SELECT id, component_id, timestamp, type, value, version FROM grid_measurements"
                         " WHERE id >= ? ORDER BY id", first_new)  # fmt: skip
    assert local == [tuple(m.values()) for m in created]
    daily_sums_are_exact(synced)
    assert synced.query(
        "SELECT DISTINCT origin FROM _syncctl_history WHERE record_id = ?", str(first_new)
    ) == [("cli",)]


def test_measurement_file_field_applies_to_every_row(synced: GridWorld, tmp_path: Path) -> None:
    source = tmp_path / "m.csv"
    source.write_text(
        "timestamp,type,value\n2025-03-01T00:00:00Z,voltage,1\n2025-03-01T00:15:00Z,voltage,2\n"
    )
    outcome = synced.run("grid", "measurement", "create", "--from-file", str(source), "-f", "component_id=5")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.startswith("created 2 measurements in 1 batch(es)")
    assert [
        m["component_id"] for m in synced.fake.measurements() if m["timestamp"].startswith("2025-03")
    ] == [5, 5]


def test_measurement_batch_whose_answer_is_lost_is_checked_not_sent_twice(
    synced: GridWorld, tmp_path: Path
) -> None:
    source = measurement_file(tmp_path / "m.jsonl", 2500, "jsonl")
    first_new = max(m["id"] for m in synced.fake.measurements()) + 1
    synced.fake.add_fault("POST /api/measurements", kind="lose_answer")  # the first batch lands, unanswered
    outcome = synced.run("grid", "measurement", "create", "--from-file", str(source), "--json")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json()["created"] == 2500
    created = new_measurements(synced, first_new)
    assert [m["value"] for m in created] == [i / 4 for i in range(2500)]  # each once, in order
    posts = [p for m, p in synced.fake.requests if m == "POST" and p == "/api/measurements"]
    assert len(posts) == 3
    assert any("version_gt=" in p for m, p in synced.fake.requests if m == "GET")  # what landed was checked
    assert synced.query("SELECT count(*) FROM grid_measurements WHERE id >= ?", first_new) == [(2500,)]


def test_measurement_batch_refused_before_it_landed_is_sent_again(synced: GridWorld, tmp_path: Path) -> None:
    source = measurement_file(tmp_path / "m.json", 1500, "json")
    first_new = max(m["id"] for m in synced.fake.measurements()) + 1
    synced.fake.add_fault("POST /api/measurements", status=503, times=1)
    outcome = synced.run("grid", "measurement", "create", "--from-file", str(source), "--json")
    assert outcome.exit_code == 0, outcome.stderr
    assert len(new_measurements(synced, first_new)) == 1500
    assert len([p for m, p in synced.fake.requests if (m, p) == ("POST", "/api/measurements")]) == 3


class FailsAfterOneBatch(FakeGrid):
    """Takes one batch of measurements, then answers 500 to every further one."""

    posts = 0

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        if (method, path) == ("POST", "/api/measurements"):
            self.posts += 1
            if self.posts > 1:
                return json_response(500, {"detail": "disk full"})
        return super().handle(method, path, headers, body)


def test_measurement_file_failing_midway_says_what_was_created(build_grid: Any, tmp_path: Path) -> None:
    world: GridWorld = build_grid(
        FailsAfterOneBatch(components=3, measurements_per_component=3, accounts=ACCOUNTS)
    )
    source = measurement_file(tmp_path / "m.json", 2500, "json")
    outcome = world.run("grid", "measurement", "create", "--from-file", str(source))
    assert outcome.exit_code == 1
    *warnings, line = outcome.stderr.strip().splitlines()
    assert len(warnings) == 2  # one per attempt that failed and was checked (SYNCCTL_RETRY_ATTEMPTS=3)
    assert line.endswith(
        f"answered 500 to POST {world.url}/measurements: disk full (1000 of 2500 measurements of {source},"
        " the first 1 batch(es), were created before this and are in the mirror)"
    )
    assert world.query("SELECT count(*) FROM grid_measurements") == [(1000,)]
    assert len([m for m in world.fake.measurements()]) == 9 + 1000


# -- roles and bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["grid", "component", "create", "-f", "name=x", "-f", "type=switch", "-f", "substation=y"],
        ["grid", "component", "update", "1", "-f", "name=x"],
        ["grid", "component", "delete", "1"],
        ["grid", "measurement", "create", *[f"-f{k}={v}" for k, v in VALID.items()]],
        ["grid", "measurement", "update", "1", "-f", "value=2"],
        ["grid", "measurement", "delete", "1"],
        ["grid", "measurement", "create", "--from-file", "FILE"],
    ],
    ids=lambda a: " ".join(a[1:3]) + (" file" if "FILE" in a else ""),
)
def test_writes_as_user_are_refused_with_77_before_any_write(
    synced: GridWorld, tmp_path: Path, args: list[str]
) -> None:
    source = measurement_file(tmp_path / "m.json", 3, "json")
    outcome = synced.run(*[str(source) if a == "FILE" else a for a in args], user="user")
    assert outcome.exit_code == 77, outcome.stderr
    assert outcome.stderr.strip().splitlines() == [
        "syncctl: error: the grid account 'ada' was not granted the manager scope (granted: user), so it may"
        " read but not write; nothing was sent"
    ]
    assert synced.writes() == []
    assert [p for _, p in synced.fake.requests] == ["/api/token"]


def test_reads_as_user_work(synced: GridWorld) -> None:
    assert synced.run("grid", "measurement", "get", "1", "--remote", user="user").exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["component", "get", "abc"], "a component id is a positive whole number below 2^63, got 'abc'"),
        (
            ["measurement", "delete", "1.5"],
            "a measurement id is a positive whole number below 2^63, got '1.5'",
        ),
        (["measurement", "create", "-f", "value=abc"], "--field value: 'abc' is not a number"),
        (["measurement", "create", "-f", "value"], "--field takes KEY=VALUE, got 'value'"),
        (
            ["measurement", "create", "-f", "colour=red"],
            "unknown measurement field 'colour' (the fields are component_id, timestamp, type, value)",
        ),
        (
            ["measurement", "update", "4", "-f", "id=5"],
            "field 'id' is set by the grid API and cannot be written",
        ),
        (
            ["measurement", "create", "-f", "timestamp=2025-01-01T10:00:00"],
            "--field timestamp: '2025-01-01T10:00:00' has no offset; add Z or +01:00 (the API refuses local"
            " times)",
        ),
        (
            ["measurement", "create", "-f", "type=temperature"],
            "--field type: 'temperature' is not one of voltage, current, power",
        ),
        (
            ["measurement", "create", "-f", "value=1", "-f", "type=power"],
            "measurement: component_id, timestamp are required",
        ),
        (
            [
                "component",
                "create",
                "-f",
                "name=x",
                "-f",
                "type=switch",
                "-f",
                "substation=y",
                "-f",
                "length_km=3",
            ],
            "component: length_km is only for line components, not a switch",
        ),
        (["component", "update", "2"], "nothing to update: give --field KEY=VALUE or --from-file"),
        (["measurement", "create"], "nothing to create: give --field KEY=VALUE or --from-file"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_is_sent(
    synced: GridWorld, args: list[str], message: str
) -> None:
    outcome = synced.run("grid", *args)
    assert (outcome.exit_code, outcome.stderr.strip().splitlines()) == (2, [f"syncctl: error: {message}"])
    assert synced.fake.requests == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"component_id": 1, "timestamp": "2025-01-01T00:00:00Z", "type": "power", "value": 1},\n'
         ' {"component_id": 1, "timestamp": "2025-01-01T00:00:00Z", "type": "power"}]',
         "FILE item 2: value is required"),
        ('{"component_id": 1, "timestamp": "2025-01-01T00:00:00Z", "type": "power", "value": 1}\n{"x": 1\n',
         "FILE line 2 is not valid JSON: Expecting ',' delimiter at column 8"),
        ("component_id,timestamp,type,value\n1,2025-01-01T00:00:00Z,power,1\n1,yesterday,power,2\n",
         "FILE line 3: timestamp 'yesterday' is not an ISO 8601 time such as 2025-01-01T12:00:00Z"),
        ("component_id,timestamp,type,value,unit\n", "unknown measurement field 'unit' (the fields are"
         " component_id, timestamp, type, value)"),
        ("component_id,timestamp,type,value\n99,2025-01-01T00:00:00Z,power,1\n",
         "FILE line 2: component 99 does not exist in the grid API; nothing was sent"),
        ("", "FILE holds no measurements"),
        ("[1, 2]", "FILE item 1: expected a JSON object of measurement fields"),
    ],
)  # fmt: skip
def test_bad_measurement_file_is_refused_whole(
    synced: GridWorld, tmp_path: Path, content: str, message: str
) -> None:
    source = tmp_path / "bad.txt"
    source.write_text(content, encoding="utf-8")
    outcome = synced.run("grid", "measurement", "create", "--from-file", str(source))
    assert (outcome.exit_code, outcome.stderr.strip().splitlines()) == (
        2,
        [f"syncctl: error: {message.replace('FILE', str(source))}"],
    )
    assert synced.writes() == []


def test_remote_validation_error_is_reported_with_the_remote_message(synced: GridWorld) -> None:
    outcome = synced.run("grid", "component", "update", "1", "-f", "type=line")
    assert outcome.exit_code == 1
    assert outcome.stderr.strip() == (
        "syncctl: error: the grid API refused PUT "
        f"{synced.url}/components/1: type: Value error, the type of a component cannot be changed (it is a"
        " transformer)"
    )


def test_get_from_the_mirror_of_a_missing_record_says_so(synced: GridWorld) -> None:
    outcome = synced.run("grid", "component", "get", "999")
    assert outcome.exit_code == 1
    assert "component 999 is not in the mirror" in outcome.stderr


COMMANDS = [["grid"], ["grid", "component"], ["grid", "measurement"], ["fake-grid"], ["report", "kpi"]] + [
    ["grid", resource, verb]
    for resource in ("component", "measurement")
    for verb in ("get", "create", "update", "delete")
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_grid_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(CLI, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert len(result.output.strip().splitlines()) > 3


def test_fake_grid_serves_the_api_as_its_own_process() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "syncctl", "fake-grid", "--port", "0", "--components", "2",
         "--measurements-per-component", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("fake grid API with 2 components and 6 measurements at http://127.0.0.1:")
        assert line.rstrip().endswith("/api (accounts user/user and manager/manager)")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode == 0
