"""`syncctl report summary|changes|cases` end to end: the real CLI against the bundled fake Intempus.

The expected figures are computed here from the fake's own state, never from the mirror, so a report
that read the wrong rows, or a sync that mirrored them wrongly, cannot agree with them by accident.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from syncctl.reports.periods import Period, safe_name_part
from tests.e2e import World

START = "2023-01-01"
FIRST_DAY = "2023-01-01"


def report_json(world: World, *args: str) -> Any:
    outcome = world.run("report", *args)
    assert outcome.exit_code == 0, outcome.stderr
    return outcome.json()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tomorrow() -> str:
    return (datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=1)).isoformat()


def active_ids(world: World) -> list[int]:
    return sorted(i for i, case in world.fake.cases.items() if case["active"])


# -- changes ----------------------------------------------------------------------------------------------


def test_report_changes_lists_the_scripted_changes_with_their_origins(world: World) -> None:
    world.sync()
    first = sorted(world.fake.cases)
    ids = active_ids(world)
    remote_edit, remote_gone, local_edit, cli_edit, cli_gone = ids[:5]
    customer = world.fake.cases[remote_edit]["customer"]

    world.fake.update(remote_edit, {"notes": "changed in Intempus"})
    created = world.fake.create({"name": "Made in Intempus", "number": "R-1", "customer": customer})["id"]
    world.fake.delete(remote_gone)
    world.edit("UPDATE cases SET name = 'Renamed in sqlite' WHERE id = ?", local_edit)
    world.sync("--full")
    assert world.run("case", "update", str(cli_edit), "--field", "active=false").exit_code == 0
    assert world.run("case", "delete", str(cli_gone)).exit_code == 0

    rows = report_json(world, "changes")

    initial, scripted = rows[: len(first)], rows[len(first) :]
    assert [(r["record_id"], r["op"], r["origin"], r["changes"]) for r in initial] == [
        (str(i), "insert", "pull", None) for i in first
    ]
    assert [(r["record_id"], r["op"], r["origin"]) for r in scripted] == [
        (str(local_edit), "update", "push"),
        (str(remote_edit), "update", "pull"),
        (str(created), "insert", "pull"),
        (str(remote_gone), "delete", "pull"),
        (str(cli_edit), "update", "cli"),
        (str(cli_gone), "delete", "cli"),
    ]
    by_record = {r["record_id"]: r for r in scripted}
    assert by_record[str(remote_edit)]["changes"]["notes"][1] == "changed in Intempus"
    assert by_record[str(cli_edit)]["changes"]["active"] == [1, False]
    assert by_record[str(remote_gone)]["changes"]["id"] == remote_gone  # the row as it was
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert all(r["source"] == "intempus" and r["table_name"] == "cases" for r in rows)
    # One record, and nothing for another source.
    assert [r["op"] for r in report_json(world, "changes", "--id", str(cli_edit))] == ["insert", "update"]
    assert report_json(world, "changes", "--source", "grid") == []


def test_report_changes_lists_a_pushed_local_delete(world: World) -> None:
    world.sync()
    removed = active_ids(world)[0]
    world.edit("DELETE FROM cases WHERE id = ?", removed)
    world.sync()
    rows = report_json(world, "changes", "--id", str(removed))
    assert [(r["op"], r["origin"]) for r in rows] == [("insert", "pull"), ("delete", "push")]


def test_report_changes_since_until_is_half_open(world: World) -> None:
    world.sync()
    world.edit("UPDATE _syncctl_history SET at = '2025-04-01T00:00:00+00:00' WHERE id = 1")
    world.edit("UPDATE _syncctl_history SET at = '2025-05-01T00:00:00+00:00' WHERE id = 2")
    rows = report_json(world, "changes", "--since", "2025-04-01", "--until", "2025-05-01T02:00:00+02:00")
    assert [r["id"] for r in rows] == [1]


# -- summary ----------------------------------------------------------------------------------------------


def test_report_summary_matches_counts_and_exact_sums_from_the_fake(world: World) -> None:
    world.sync()
    counts: Counter[Any] = Counter()
    sums: dict[Any, Decimal] = defaultdict(Decimal)
    for case in world.fake.cases.values():
        if case["active"]:
            counts[case["responsible_name"]] += 1
            sums[case["responsible_name"]] += Decimal(case["hour_budget"] or 0)

    rows = report_json(
        world,
        "summary",
        "cases",
        "--group-by",
        "responsible_name",
        "--where",
        "active=1",
        "--sum",
        "hour_budget",
    )

    assert {r["responsible_name"]: r["count"] for r in rows} == dict(counts)
    assert {r["responsible_name"]: Decimal(str(r["sum_hour_budget"])) for r in rows} == dict(sums)
    assert [r["responsible_name"] for r in rows] == sorted(counts, key=lambda n: (n is not None, n or ""))


def test_report_summary_where_matches_text_and_integer_columns_as_stored(world: World) -> None:
    world.sync()
    cases = list(world.fake.cases.values())
    person = Counter(c["responsible_name"] for c in cases if c["responsible_name"]).most_common(1)[0][0]
    customer = Counter(c["customer_id"] for c in cases).most_common(1)[0][0]

    by_person = report_json(
        world, "summary", "cases", "--group-by", "active", "--where", f"responsible_name={person}"
    )
    where = ["--where", f"customer_id={customer}", "--where", "active=true"]
    by_customer = report_json(world, "summary", "cases", "--group-by", "customer_id", *where)

    expected = Counter(int(c["active"]) for c in cases if c["responsible_name"] == person)
    assert {r["active"]: r["count"] for r in by_person} == dict(expected)
    active_of_customer = sum(1 for c in cases if c["customer_id"] == customer and c["active"])
    assert by_customer == [{"customer_id": customer, "count": active_of_customer}]  # TEXT "6666940" kept


def test_report_html_page_holds_a_table(world: World, tmp_path: Path) -> None:
    world.sync()
    page = tmp_path / "summary.html"
    outcome = world.run(
        "report", "summary", "cases", "--group-by", "active", "--format", "html", "--out", str(page)
    )
    assert outcome.exit_code == 0, outcome.stderr
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<table" in text and "</html>" in text


# -- cases ------------------------------------------------------------------------------------------------


def expected_groups(world: World, closed: dict[int, dict[str, Any]]) -> dict[Any, dict[str, list[int]]]:
    """Per responsible_name, the ids of each list, computed from the fake's cases and what the test closed."""
    end_day = tomorrow()
    groups: dict[Any, dict[str, list[int]]] = defaultdict(
        lambda: {"new_active": [], "closed": [], "old_active": []}
    )
    for case_id, case in sorted(world.fake.cases.items()):
        if not case["active"] or case["creation_date"] >= end_day:
            continue
        listed = "new_active" if case["creation_date"] >= FIRST_DAY else "old_active"
        groups[case["responsible_name"]][listed].append(case_id)
    for case_id, case in sorted(closed.items()):
        groups[case["responsible_name"]]["closed"].append(case_id)
    return groups


def test_report_cases_matches_the_fake_per_person_in_files(world: World, tmp_path: Path) -> None:
    world.sync()
    ids = active_ids(world)
    made_inactive, deleted = ids[:3], ids[3:5]
    closed = {i: dict(world.fake.cases[i]) for i in [*made_inactive, *deleted]}
    for case_id in made_inactive:
        world.fake.update(case_id, {"active": False})
    for case_id in deleted:
        world.fake.delete(case_id)
    world.sync("--full")
    before = file_digest(world.db_path)
    out_dir = tmp_path / "out"
    period = Period.parse(START, tomorrow())

    outcome = world.run("report", "cases", "--start", START, "--end", tomorrow(), "--out-dir", str(out_dir))

    assert outcome.exit_code == 0, outcome.stderr
    expected = expected_groups(world, closed)
    start, end = period.file_stamps()
    names = {
        f"case_report_{safe_name_part('none' if g is None else g)}_{start}_{end}.json": g for g in expected
    }
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(names)
    for name, group in names.items():
        document = json.loads((out_dir / name).read_text(encoding="utf-8"))
        assert list(document) == ["by", "group", "period", "new_active", "closed", "old_active"]
        assert (document["by"], document["group"], document["period"]) == (
            "responsible_name",
            group,
            period.iso(),
        )
        assert {
            k: [c["id"] for c in document[k]] for k in ("new_active", "closed", "old_active")
        } == expected[group]
        for case in document["new_active"] + document["old_active"]:
            fake_case = world.fake.cases[case["id"]]
            assert case == {k: fake_case[k] for k in ("id", "name", "number", "creation_date")}
        for case in document["closed"]:
            assert case["deleted"] is (case["id"] in deleted)
            assert (case["name"], case["number"]) == (
                closed[case["id"]]["name"],
                closed[case["id"]]["number"],
            )
    # The same documents on standard output, groups in SQLite's order (no value first); the file only read.
    printed = report_json(world, "cases", "--start", START, "--end", tomorrow())
    assert [d["group"] for d in printed] == sorted(expected, key=lambda g: (g is not None, g or ""))
    files = {group: json.loads((out_dir / name).read_text(encoding="utf-8")) for name, group in names.items()}
    assert printed == [files[d["group"]] for d in printed]
    assert file_digest(world.db_path) == before


def test_report_cases_counts_a_case_closed_in_the_local_file(world: World) -> None:
    world.sync()
    closed = active_ids(world)[0]
    world.edit("UPDATE cases SET active = 0 WHERE id = ?", closed)
    world.sync()
    assert world.fake.cases[closed]["active"] is False  # pushed
    groups = report_json(world, "cases", "--start", START, "--end", tomorrow())
    assert [c["id"] for g in groups for c in g["closed"]] == [closed]


def test_report_cases_csv_per_group_and_flat(world: World, tmp_path: Path) -> None:
    world.sync()
    outcome = world.run(
        "report", "cases", "--start", START, "--end", tomorrow(), "--by", "department_name", "--format", "csv"
    )
    assert outcome.exit_code == 0, outcome.stderr
    lines = outcome.stdout.splitlines()
    assert lines[0] == "group,list,id,name,number,date,deleted"
    assert len(lines) - 1 == sum(1 for c in world.fake.cases.values() if c["active"])

    out_dir = tmp_path / "csv"
    outcome = world.run(
        "report", "cases", "--start", START, "--end", tomorrow(), "--by", "department_name",
        "--format", "csv", "--out-dir", str(out_dir),
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.stderr
    expected: dict[str, list[str]] = defaultdict(list)
    for case_id, case in sorted(world.fake.cases.items()):
        if case["active"]:
            department = case["department_name"]
            expected[f"case_report_{safe_name_part('none' if department is None else department)}"].append(
                str(case_id)
            )
    files = {p.name.split("_2023")[0]: p for p in out_dir.iterdir()}
    assert sorted(files) == sorted(expected)
    for name, path in files.items():
        with path.open(newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
        assert sorted((r["id"] for r in rows), key=int) == expected[name]
        assert {r["list"] for r in rows} <= {"new_active", "old_active"}


# -- refusals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cases", "--start", "2025-13-01", "--end", "2026-01-01"], "--start: '2025-13-01' is not a time"),
        (["cases", "--start", "2025-05-01", "--end", "2025-04-01"], "must be after --start"),
        (
            ["cases", "--start", "2025-04-01", "--end", "2025-05-01", "--by", "nobody"],
            "has no field 'nobody'",
        ),
        (["summary", "casez", "--group-by", "active"], "unknown table 'casez' (did you mean cases?)"),
        (["summary", "cases", "--group-by", "activ"], "has no field 'activ' (did you mean active?)"),
        (["summary", "cases", "--group-by", "active", "--where", "activ=1"], "--where: table cases has no"),
        (["summary", "cases", "--group-by", "active", "--sum", "budget"], "--sum: table cases has no field"),
        (["summary", "cases", "--group-by", "active", "--format", "xml"], "unknown --format 'xml'"),
        (["changes", "--since", "yesterday"], "--since: 'yesterday' is not a time"),
        (["changes", "--since", "2025-04-01", "--until", "2025-04-01"], "must be after --since"),
        (["changes", "--source", "nowhere"], "unknown source 'nowhere'"),
    ],
)
def test_report_bad_input_is_exit_2_one_line_nothing_written(
    world: World, tmp_path: Path, args: list[str], message: str
) -> None:
    world.sync()
    target = tmp_path / "reports" / "out.json"
    target.parent.mkdir()
    out = ["--out-dir", str(tmp_path / "reports" / "dir")] if args[0] == "cases" else ["--out", str(target)]

    outcome = world.run("report", *args, *out)

    assert outcome.exit_code == 2
    assert outcome.stderr.count("\n") == 1 and message in outcome.stderr, outcome.stderr
    assert list((tmp_path / "reports").iterdir()) == []


def test_report_out_dir_that_cannot_be_written_is_exit_2(world: World, tmp_path: Path) -> None:
    world.sync()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    outcome = world.run(
        "report", "cases", "--start", START, "--end", tomorrow(), "--out-dir", str(blocker / "x")
    )
    assert outcome.exit_code == 2
    assert (
        outcome.stderr.startswith("syncctl: error: cannot write to --out-dir")
        and outcome.stderr.count("\n") == 1
    )
    assert blocker.read_text() == "not a folder"


def test_report_before_any_sync_says_to_sync_first_and_creates_no_file(world: World) -> None:
    outcome = world.run("report", "summary", "cases", "--group-by", "active")
    assert outcome.exit_code == 5 and "run `syncctl sync` first" in outcome.stderr
    assert not world.db_path.exists()
