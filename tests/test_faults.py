"""Fault injection end to end: the real CLI against the bundled fake Intempus misbehaving on purpose.

Remote faults (retries, broken bodies, rate limits), deletes under partial listings and the mass-delete
guard, malformed input from people, and the API key kept out of every output. Each test asserts what the
mirror and the fake hold afterwards (nothing lost, nothing duplicated, nothing deleted wrongly), plus the
exit code and the one-line message. Nothing sleeps: SYNCCTL_RETRY_BACKOFF=0 comes from the world's env.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from syncctl.connectors.intempus.fake import LIST_PATH, FakeIntempus, Fault
from syncctl.core.fakehttp import Response
from tests.e2e import Gate, Outcome, World, cursor, rows, run_cli

LIST = f"GET {LIST_PATH}?"  # what a fault matches to hit list pages only
KEY = "KEY-s3cr3t-1234"
NEW_NAME = "Made in sqlite"


def integrity(world: World) -> list[tuple[Any, ...]]:
    return world.query("PRAGMA integrity_check")


def runs(world: World) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = world.run("status", "--json").json()["runs"]
    return found


def sent(world: World, method: str, part: str = "") -> list[str]:
    """Paths of the requests the fake received with this method (and containing `part`)."""
    return [path for m, path in world.fake.requests if m == method and part in path]


def list_pages(world: World) -> list[str]:
    return [path for path in sent(world, "GET") if path.startswith(f"{LIST_PATH}?") and "id__in" not in path]


def one_error_line(outcome: Outcome) -> str:
    """The single `syncctl: error:` line of a failed command; no traceback anywhere."""
    assert "Traceback" not in outcome.stderr, outcome.stderr
    errors = [line for line in outcome.stderr.splitlines() if line.startswith("syncctl: error: ")]
    assert len(errors) == 1, outcome.stderr
    assert outcome.stderr.splitlines()[-1] == errors[0], outcome.stderr
    return errors[0].removeprefix("syncctl: error: ")


def host(world: World) -> str:
    return urlsplit(world.url).netloc


def dump(world: World) -> list[str]:
    db = sqlite3.connect(world.db_path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def make_local_edits(world: World) -> tuple[int, int, str]:
    """One local update, one local delete and one local insert, as any sqlite3 user would make them."""
    edited, removed = sorted(world.fake.cases)[:2]
    customer = world.fake.cases[edited]["customer"]
    world.edit("UPDATE cases SET name = 'Renamed in sqlite' WHERE id = ?", edited)
    world.edit("DELETE FROM cases WHERE id = ?", removed)
    world.edit("INSERT INTO cases (name, number, customer) VALUES (?, 'L-1', ?)", NEW_NAME, customer)
    return edited, removed, customer


def created_cases(world: World) -> list[dict[str, Any]]:
    return [case for case in world.fake.cases.values() if case["name"] == NEW_NAME]


class SteppingClock:
    """A clock for the fake's rate limit: every reading is `step` seconds after the last one."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


# -- retries -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"status": 429, "retry_after": "5"}, id="429-retry-after"),
        pytest.param({"status": 500}, id="500"),
        pytest.param({"status": 502}, id="502"),
        pytest.param({"status": 503, "retry_after": "5"}, id="503-retry-after"),
        pytest.param({"status": 504}, id="504"),
        pytest.param({"kind": "reset"}, id="connection-reset"),
        pytest.param({"kind": "truncated"}, id="truncated"),
    ],
)
def test_faults_transient_list_failures_are_retried_and_the_sync_converges(
    build: Callable[..., World], fault: dict[str, Any]
) -> None:
    world = build()
    world.env.update(SYNCCTL_PAGE_SIZE="50", SYNCCTL_RETRY_AFTER_CAP="0")
    world.fake.add_fault(Fault(match=LIST, after=1, times=2, **fault))  # page 2 fails twice, then answers

    result = world.sync()

    assert (result["status"], result["fetched"], result["inserted"]) == ("ok", 300, 300)
    assert result["duration_s"] < 4  # Retry-After: 5 was capped to SYNCCTL_RETRY_AFTER_CAP=0
    pages = list_pages(world)
    assert len(pages) == 6 + 2 and pages[1] == pages[2] == pages[3]
    assert world.differences() == []
    assert result["cursor"] == world.fake.counter


def test_faults_read_timeout_is_retried(build: Callable[..., World]) -> None:
    gate = Gate()
    world = build(sleep=gate)
    world.env.update(SYNCCTL_PAGE_SIZE="100", SYNCCTL_READ_TIMEOUT="0.2")
    world.fake.add_fault(Fault(match=LIST, after=1, kind="delay"))  # holds page 2 until the test is done
    try:
        outcome = world.run("sync", "--json")
    finally:
        gate.finish()
    assert outcome.exit_code == 0, outcome.stderr
    assert f"{host(world)} did not answer in time" in outcome.stderr  # the retry's warning
    assert outcome.json()["fetched"] == 300
    pages = list_pages(world)
    assert len(pages) == 3 + 1 and pages[1] == pages[2]
    assert world.differences() == []


def test_faults_retries_spent_exit_1_with_the_last_error_in_one_line_and_nothing_changed(
    build: Callable[..., World],
) -> None:
    world = build()
    world.sync()
    world.fake.mutate(update=20, delete=5, create=5, seed=7)
    before, cursor_before = rows(world), cursor(world)
    world.fake.add_fault(Fault(match=LIST, status=502))
    world.fake.add_fault(Fault(match=LIST, times=-1, status=500))
    world.fake.requests.clear()

    outcome = world.run("sync", "--json")

    assert outcome.exit_code == 1
    message = one_error_line(outcome)
    assert message.startswith(f"{host(world)} answered 500 to GET ")  # the last error, naming the host
    assert outcome.json()["status"] == "failed" and outcome.json()["error"] == message
    assert len(list_pages(world)) == 3  # SYNCCTL_RETRY_ATTEMPTS=3
    assert rows(world) == before and cursor(world) == cursor_before
    assert (runs(world)[0]["status"], runs(world)[0]["error"]) == ("failed", message)

    quiet = world.run("-q", "sync")  # what cron mails: the one line, nothing else
    assert quiet.exit_code == 1 and quiet.stdout == ""
    assert quiet.stderr.splitlines() == [f"syncctl: error: {message}"]
    assert rows(world) == before and cursor(world) == cursor_before


@pytest.mark.parametrize("status", [403, 404, 409])
def test_faults_client_error_on_a_list_page_fails_at_once(build: Callable[..., World], status: int) -> None:
    world = build()
    world.sync()
    world.fake.mutate(update=5, seed=1)
    before, cursor_before = rows(world), cursor(world)
    world.fake.add_fault(Fault(match=LIST, times=-1, status=status))
    world.fake.requests.clear()

    outcome = world.run("sync")

    assert outcome.exit_code == 1
    message = one_error_line(outcome)
    assert (f"answered {status}" if status != 404 else "not found: GET") in message, message
    assert host(world) in message
    assert len(list_pages(world)) == 1  # not retried
    assert rows(world) == before and cursor(world) == cursor_before


@pytest.mark.parametrize("status", [400, 403, 409])
def test_faults_client_error_on_put_is_not_retried_and_the_change_stays_pending(
    build: Callable[..., World], status: int
) -> None:
    world = build()
    world.sync()
    case_id = min(world.fake.cases)
    remote_name = world.fake.cases[case_id]["name"]
    world.edit("UPDATE cases SET name = 'Renamed in sqlite' WHERE id = ?", case_id)
    world.fake.add_fault(Fault(match="PUT ", times=-1, status=status))
    world.fake.requests.clear()

    outcome = world.run("sync", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    assert (outcome.json()["pushed"], outcome.json()["push_failed"]) == (0, 1)
    assert len(sent(world, "PUT")) == 1
    assert world.fake.cases[case_id]["name"] == remote_name
    [change] = world.run("status", "--json").json()["pending_changes"]
    assert change["id"] == case_id and f"Simulated server failure ({status})" in change["last_error"]
    assert world.query("SELECT name FROM cases WHERE id = ?", case_id) == [("Renamed in sqlite",)]

    world.fake.clear_faults()
    assert world.sync()["pushed"] == 1
    assert world.differences() == []


def test_faults_push_retries_put_and_delete_and_each_change_lands_once(build: Callable[..., World]) -> None:
    world = build()
    world.sync()
    edited, removed, _ = make_local_edits(world)
    world.fake.add_fault(Fault(match="PUT ", status=502))
    world.fake.add_fault(Fault(match="PUT ", kind="reset"))
    world.fake.add_fault(Fault(match="DELETE ", status=504))
    world.fake.add_fault(Fault(match="DELETE ", status=503, apply_after=True))  # deleted, answer lost
    world.fake.add_fault(Fault(match="POST ", status=500))
    world.fake.requests.clear()

    result = world.sync()

    assert (result["status"], result["pushed"], result["push_failed"]) == ("ok", 3, 0)
    assert (len(sent(world, "PUT")), len(sent(world, "DELETE")), len(sent(world, "POST"))) == (3, 3, 2)
    assert world.fake.cases[edited]["name"] == "Renamed in sqlite"
    assert removed not in world.fake.cases
    [created] = created_cases(world)
    assert world.query("SELECT id FROM cases WHERE name = ?", NEW_NAME) == [(created["id"],)]
    assert world.differences() == []
    assert world.run("status", "--json").json()["pending"] == 0


@pytest.mark.parametrize(
    "lost", [{"kind": "reset"}, {"status": 503}, {"status": 502}], ids=["reset", "503", "502"]
)
def test_faults_create_whose_answer_is_lost_after_commit_makes_exactly_one_case(
    build: Callable[..., World], lost: dict[str, Any]
) -> None:
    world = build()
    world.sync()
    customer = world.fake.cases[min(world.fake.cases)]["customer"]
    world.edit("INSERT INTO cases (name, number, customer) VALUES (?, 'L-1', ?)", NEW_NAME, customer)
    [(local_id,)] = world.query("SELECT id FROM cases WHERE name = ?", NEW_NAME)
    world.fake.add_fault(Fault(match="POST ", apply_after=True, **lost))
    world.fake.requests.clear()

    result = world.sync()

    assert (result["pushed"], result["push_failed"]) == (1, 0)
    assert len(sent(world, "POST")) == 2  # the retry carried the same creation_id ...
    [created] = created_cases(world)  # ... so Intempus made one case, not two
    assert created["creation_id"] is not None
    assert len(world.fake.cases) == 301
    assert world.query("SELECT id FROM cases WHERE name = ?", NEW_NAME) == [(created["id"],)]
    assert created["id"] == local_id or world.query("SELECT 1 FROM cases WHERE id = ?", local_id) == []
    assert world.differences() == []


def test_faults_case_create_whose_answer_is_lost_makes_exactly_one_case(build: Callable[..., World]) -> None:
    world = build()
    customer = world.fake.cases[min(world.fake.cases)]["customer"]
    world.fake.add_fault(Fault(match="POST ", kind="reset", apply_after=True))

    outcome = world.run(
        "case", "create", "--field", f"name={NEW_NAME}", "--field", f"customer={customer}", "--json"
    )

    assert outcome.exit_code == 0, outcome.stderr
    [created] = created_cases(world)
    assert outcome.json() == created
    assert len(sent(world, "POST")) == 2
    assert world.query("SELECT id, name FROM cases") == [(created["id"], NEW_NAME)]


def test_faults_rate_limited_by_intempus_the_429_retry_after_path_converges(
    build: Callable[..., World],
) -> None:
    # 10 requests a minute; every request is 4 s after the last: the 11th waits five refusals for a slot.
    world = build(rate_limit_per_minute=10, clock=SteppingClock(4.0))
    world.env.update(
        SYNCCTL_PAGE_SIZE="25",
        SYNCCTL_RETRY_AFTER_CAP="0",
        SYNCCTL_RETRY_ATTEMPTS="8",
        SYNCCTL_MAX_REQUESTS_PER_MINUTE="100000",  # the client's own bucket is on, and never empty here
    )
    outcome = world.run("sync", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json()["fetched"] == 300
    assert "answered 429" in outcome.stderr  # the retry warnings
    assert len(list_pages(world)) > 300 // 25  # some pages were refused, then served
    assert world.differences() == []


# -- broken bodies -------------------------------------------------------------------------------------

BROKEN = {
    "not_json": "instead of JSON",
    "html": "an HTML error page",
    "no_objects": "a list without 'objects'",
    "missing_id": "a case without an integer id",
    "truncated": "broken response",
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_faults_broken_third_page_fails_clearly_and_applies_only_whole_pages(
    build: Callable[..., World], kind: str
) -> None:
    world = build()
    world.env["SYNCCTL_PAGE_SIZE"] = "50"
    world.sync()
    changed = world.fake.mutate(update=40, delete=10, create=10, seed=5)
    before, cursor_before = rows(world), cursor(world)
    world.fake.add_fault(Fault(match=LIST, after=2, times=-1, kind=kind))
    world.fake.requests.clear()

    outcome = world.run("sync", "--full", "--json")

    assert outcome.exit_code == 1
    message = one_error_line(outcome)
    third = list_pages(world)[2]
    assert BROKEN[kind] in message and f"{host(world)}{LIST_PATH}?" in message, message
    assert third.split("?")[1].split("&")[-1] in message  # the page's own URL, not only the host
    assert outcome.json()["status"] == "failed"
    if kind == "truncated":
        assert list_pages(world)[2:] == [third] * 3  # a transient error: retried, then given up
    assert integrity(world) == [("ok",)]
    assert cursor(world) == cursor_before
    # Pages 1 and 2 (whole, correct pages) may be applied; nothing of page 3 on; nothing deleted.
    served = set(sorted(world.fake.cases)[:100])
    after = rows(world)
    assert {i: after.get(i) for i in before.keys() - served} == {i: before[i] for i in before.keys() - served}
    assert after.keys() == before.keys() | served
    assert set(changed["deleted"]) <= after.keys()
    assert not [p for p in world.differences() if any(str(i) in p for i in served)]
    assert runs(world)[0]["status"] == "failed"

    world.fake.clear_faults()
    full = world.sync("--full")
    assert full["deleted"] == 10
    assert world.differences() == []


def test_faults_broken_read_back_after_a_create_never_duplicates_it(build: Callable[..., World]) -> None:
    world = build()
    world.sync()
    customer = world.fake.cases[min(world.fake.cases)]["customer"]
    world.edit("INSERT INTO cases (name, number, customer) VALUES (?, 'L-1', ?)", NEW_NAME, customer)
    world.fake.add_fault(Fault(match="id__in", kind="missing_id"))  # the read-back after the POST
    world.fake.requests.clear()

    outcome = world.run("sync", "--json")

    assert [m for m, _ in world.fake.requests[:2]] == ["POST", "GET"]
    assert outcome.exit_code in (0, 1) and "a case without an integer id" in outcome.stderr, outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert outcome.json()["pushed"] == 0
    assert len(created_cases(world)) == 1
    assert integrity(world) == [("ok",)]

    again = world.sync()
    assert again["pushed"] == 1
    [created] = created_cases(world)  # the repeated create came back with the same case
    assert world.query("SELECT id FROM cases WHERE name = ?", NEW_NAME) == [(created["id"],)]
    assert world.differences() == []


@pytest.mark.parametrize("op", ["update", "delete"])
def test_faults_empty_answer_to_the_read_before_pushing_loses_no_local_change(
    build: Callable[..., World], op: str
) -> None:
    world = build()
    world.sync()
    case_id = min(world.fake.cases)
    if op == "update":
        world.edit("UPDATE cases SET notes = 'kept locally' WHERE id = ?", case_id)
    else:
        world.edit("DELETE FROM cases WHERE id = ?", case_id)
    world.fake.add_fault(Fault(match="id__in", kind="empty_listing"))  # "none of these cases exist"

    outcome = world.run("sync", "--json")

    assert outcome.exit_code in (0, 1), outcome.stderr
    # A listing that leaves a case out is no proof that the case is gone: the local change reaches
    # Intempus, or it stays pending; it is never closed as if Intempus had deleted the case.
    pending = [c["id"] for c in world.run("status", "--json").json()["pending_changes"]]
    if op == "update":
        assert world.fake.cases[case_id]["notes"] == "kept locally" or (
            case_id in pending
            and world.query("SELECT notes FROM cases WHERE id = ?", case_id) == [("kept locally",)]
        ), (outcome.stdout, outcome.stderr, pending)
    else:
        assert case_id not in world.fake.cases or case_id in pending, (outcome.stdout, outcome.stderr)
    world.fake.clear_faults()
    world.sync()
    assert world.differences() == []
    if op == "update":
        assert world.fake.cases[case_id]["notes"] == "kept locally"
    else:
        assert case_id not in world.fake.cases


# -- deletes -------------------------------------------------------------------------------------------


def test_faults_case_skipped_by_offset_paging_is_never_deleted(build: Callable[..., World]) -> None:
    victims: list[int] = []
    world: World
    world = build(sleep=lambda seconds: world.fake.delete(victims.pop()))
    world.env["SYNCCTL_PAGE_SIZE"] = "50"
    world.fake.cursor_paging = False
    world.sync()
    ids = sorted(world.fake.cases)
    deleted, skipped = ids[10], ids[50]  # page 2 starts one case later: ids[50] is listed by no page
    victims.append(deleted)
    world.fake.add_fault(Fault(match="&offset=50", kind="delay"))
    world.fake.requests.clear()

    result = world.sync("--full")

    assert not victims and deleted not in world.fake.cases
    assert result["fetched"] == 299 and result["deleted"] == 0
    assert world.query("SELECT count(*) FROM cases WHERE id = ?", skipped) == [(1,)]
    assert any(str(skipped) in path for path in sent(world, "GET", "id__in"))  # confirmed with Intempus
    assert world.differences() == [f"extra locally: {deleted}"]  # read before it went: goes next full sync

    assert world.sync("--full")["deleted"] == 1
    assert world.differences() == []


def test_faults_case_skipped_by_offset_paging_on_a_first_sync_is_not_lost(
    build: Callable[..., World],
) -> None:
    victims: list[int] = []
    world: World
    world = build(sleep=lambda seconds: world.fake.delete(victims.pop()))
    world.env["SYNCCTL_PAGE_SIZE"] = "50"
    world.fake.cursor_paging = False
    ids = sorted(world.fake.cases)
    deleted, skipped = ids[10], ids[50]
    victims.append(deleted)
    world.fake.add_fault(Fault(match="&offset=50", kind="delay"))

    first = world.sync()
    assert first["status"] == "ok"
    # The listing skipped ids[50], whose logical_timestamp lies below the cursor this run stored: unless
    # the run notices, no incremental run ever lists it again, and the mirror is not complete up to the
    # cursor as the contract says.
    world.sync()
    assert world.query("SELECT count(*) FROM cases WHERE id = ?", skipped) == [(1,)], (
        f"case {skipped}, skipped by offset paging, is missing after two syncs (cursor {cursor(world)}, "
        f"its logical_timestamp {world.fake.cases[skipped]['logical_timestamp']})"
    )


@pytest.mark.parametrize("override", ["--allow-mass-delete", "SYNCCTL_MAX_DELETE_FRACTION=0.25"])
def test_faults_mass_delete_is_refused_with_exit_4_until_overridden(
    build: Callable[..., World], override: str
) -> None:
    world = build()
    world.sync()
    gone = world.fake.mutate(delete=70, seed=3)["deleted"]  # 70 of 300: more than the default 0.2
    before, cursor_before = rows(world), cursor(world)

    outcome = world.run("sync", "--full", "--json")

    assert outcome.exit_code == 4
    message = one_error_line(outcome)
    assert "70 of 300" in message and "SYNCCTL_MAX_DELETE_FRACTION=0.2" in message, message
    assert "nothing was deleted" in message and "--allow-mass-delete" in message
    assert (outcome.json()["status"], outcome.json()["deleted"]) == ("refused", 0)
    assert rows(world) == before and cursor(world) == cursor_before
    assert (runs(world)[0]["status"], runs(world)[0]["error"]) == ("refused", message)

    if override.startswith("--"):
        allowed = world.sync("--full", override)
    else:
        name, value = override.split("=")
        allowed = world.sync("--full", **{name: value})
    assert (allowed["status"], allowed["deleted"]) == ("ok", 70)
    assert not rows(world).keys() & set(gone)
    assert world.differences() == []


@pytest.mark.parametrize("fraction", [None, "1"])
def test_faults_empty_listing_against_a_non_empty_mirror_is_always_refused(
    build: Callable[..., World], fraction: str | None
) -> None:
    world = build()
    world.sync()
    before = rows(world)
    if fraction is not None:
        world.env["SYNCCTL_MAX_DELETE_FRACTION"] = fraction
    world.fake.add_fault(Fault(match=LIST, kind="empty_listing"))
    world.fake.requests.clear()

    outcome = world.run("sync", "--full", "--json")

    assert outcome.exit_code == 4
    message = one_error_line(outcome)
    assert "listed no cases" in message and "300" in message and "nothing was deleted" in message
    assert outcome.json()["status"] == "refused"
    assert rows(world) == before
    assert world.differences() == []


def test_faults_allow_mass_delete_still_deletes_only_cases_confirmed_gone(
    build: Callable[..., World],
) -> None:
    world = build()
    world.sync()
    gone = world.fake.mutate(delete=3, seed=4)["deleted"]
    world.fake.add_fault(Fault(match=LIST, kind="empty_listing"))  # a listing that lies: nothing there

    result = world.sync("--full", "--allow-mass-delete")

    assert (result["status"], result["fetched"], result["deleted"]) == ("ok", 0, 3)
    assert not rows(world).keys() & set(gone)
    assert world.differences() == []


def test_faults_deletes_wait_for_intempus_to_confirm_them(build: Callable[..., World]) -> None:
    world = build()
    world.sync()
    world.fake.mutate(delete=5, seed=6)
    before, cursor_before = rows(world), cursor(world)
    world.fake.add_fault(Fault(match="id__in", times=-1, status=500))

    outcome = world.run("sync", "--full")

    assert outcome.exit_code == 1
    assert host(world) in one_error_line(outcome)
    assert rows(world) == before and cursor(world) == cursor_before


def test_faults_local_mass_delete_is_refused_until_allowed(build: Callable[..., World]) -> None:
    world = build()
    world.sync()
    remote_before = dict(world.fake.cases)
    world.edit("DELETE FROM cases")  # typed by mistake in the sqlite3 shell
    requests = len(world.fake.requests)

    outcome = world.run("sync", "--json")

    assert outcome.exit_code == 4
    assert outcome.json()["status"] == "refused"
    assert "300 of 300 cases were deleted in the local file" in one_error_line(outcome)
    assert world.fake.cases == remote_before and len(world.fake.requests) == requests  # nothing sent
    assert world.run("status", "--json").json()["pending"] == 300  # still there to decide about

    allowed = world.sync("--allow-mass-delete")
    assert allowed["pushed"] == 300 and world.fake.cases == {}


def test_faults_discard_restores_the_last_synced_rows(build: Callable[..., World]) -> None:
    world = build()
    world.sync()
    before = rows(world)
    ids = sorted(before)
    world.edit("DELETE FROM cases")
    world.edit("INSERT INTO cases (name) VALUES ('stray')")

    assert world.run("discard").exit_code == 2  # ids or --all
    assert world.run("discard", "--all", str(ids[0])).exit_code == 2
    outcome = world.run("discard", "--all")

    assert outcome.exit_code == 0 and "discarded 301" in outcome.stdout
    assert rows(world) == before
    assert world.run("status", "--json").json()["pending"] == 0
    world.edit("UPDATE cases SET name = 'x' WHERE id IN (?, ?)", ids[0], ids[1])
    assert world.run("discard", str(ids[0])).exit_code == 0
    assert [change["id"] for change in world.run("status", "--json").json()["pending_changes"]] == [ids[1]]
    assert rows(world)[ids[0]] == before[ids[0]]


# -- bad input from people -----------------------------------------------------------------------------


def test_faults_malformed_input_is_refused_in_one_line_before_anything_changes(
    build: Callable[..., World], tmp_path: Path
) -> None:
    world = build()
    world.sync()
    customer = world.fake.cases[min(world.fake.cases)]["customer"]
    files = {
        "list.json": json.dumps([{"name": "x", "customer": customer}]).encode(),
        "unknown.json": json.dumps({"name": "x", "customer": customer, "colour": "red"}).encode(),
        "owned.json": json.dumps({"name": "x", "customer": customer, "id": 5}).encode(),
        "typed.json": json.dumps({"name": "x", "customer": customer, "active": "maybe"}).encode(),
        "latin1.json": '{"name": "Æblehaven"}'.encode("latin-1"),
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    attempts = [
        (["case", "get", "0"], "positive"),
        (["case", "get", "0", "--remote"], "positive"),
        (["case", "delete", "0"], "positive"),
        (["case", "update", "12", "--field", "colour=red"], "unknown field"),
        (["case", "update", "12", "--field", "resource_uri=/web/v1/case/12/"], "set by Intempus"),
        (["case", "update", "12", "--field", "customer_name=Someone"], "set by Intempus"),
        (["case", "update", "12", "--field", "=x"], "KEY=VALUE"),
        (["case", "update", "12", "--field", "end_date=2025-02-30x"], "YYYY-MM-DD"),
        (["case", "update", "12", "--field", "responsibles=/web/v1/employee/1/,bob"], "links"),
        (["case", "create", "--from-file", "list.json"], "one JSON object"),
        (["case", "create", "--from-file", "unknown.json"], "unknown field"),
        (["case", "create", "--from-file", "owned.json"], "set by Intempus"),
        (["case", "create", "--from-file", "typed.json"], "must be bool"),
        (["case", "create", "--from-file", "latin1.json"], "not valid JSON"),
        (["case", "create", "--from-file", str(tmp_path)], "cannot read"),
        (["-v", "-q", "sync"], "cannot be used together"),
        (["-vv", "--quiet", "status"], "cannot be used together"),
    ]
    before, requests = dump(world), len(world.fake.requests)
    for args, expected in attempts:
        outcome = world.run(*args)
        assert outcome.exit_code == 2, (args, outcome.stderr)
        assert expected in one_error_line(outcome), (args, outcome.stderr)
        assert outcome.stderr.count("\n") == 1 and outcome.stdout == "", (args, outcome.stderr)
    assert len(world.fake.requests) == requests
    assert dump(world) == before


@pytest.mark.parametrize(
    "args",
    [
        ["case", "get", "abc"],
        ["case", "delete", "1x"],
        ["sync", "--on-conflict", "sideways"],
        ["conflicts", "--limit", "0"],
        ["sync", "--fulll"],
        ["synk"],
    ],
    ids=["id-not-a-number", "id-with-letters", "bad-choice", "limit-0", "unknown-option", "unknown-command"],
)
def test_faults_parser_errors_are_one_line_with_exit_2(build: Callable[..., World], args: list[str]) -> None:
    world = build()
    outcome = run_cli(world, *args)  # the real entry point: what a user sees
    assert outcome.exit_code == 2
    assert len(outcome.stderr.strip().splitlines()) == 1, outcome.stderr
    assert world.fake.requests == [] and not world.db_path.exists()


GARBAGE = b"SQLite format 2\x00 -- this is a text file, not a database\n" * 64

EVERY_DB_COMMAND = [
    ["sync"],
    ["sync", "--full"],
    ["status"],
    ["status", "--json"],
    ["conflicts"],
    ["case", "get", "9600001"],
    ["case", "update", "9600001", "--field", "name=x"],
    ["case", "delete", "9600001"],
    ["case", "create", "--field", "name=x"],
]


def test_faults_a_file_that_is_not_a_database_exits_5_and_stays_untouched(
    build: Callable[..., World],
) -> None:
    world = build()
    world.db_path.write_bytes(GARBAGE)
    for args in EVERY_DB_COMMAND:
        outcome = world.run(*args)
        assert outcome.exit_code == 5, (args, outcome.stderr)
        message = one_error_line(outcome)
        assert f"{world.db_path} is not a usable SQLite database" in message, (args, message)
        assert outcome.stderr.count("\n") == 1, outcome.stderr
    assert world.db_path.read_bytes() == GARBAGE
    assert world.fake.requests == []


def test_faults_a_directory_as_the_database_exits_5(build: Callable[..., World], tmp_path: Path) -> None:
    world = build()
    folder = tmp_path / "folder.db"
    folder.mkdir()
    for args in EVERY_DB_COMMAND:
        outcome = world.run(*args, SYNCCTL_DB=str(folder))
        assert outcome.exit_code == 5, (args, outcome.stderr)
        assert str(folder) in one_error_line(outcome)
    assert list(folder.iterdir()) == []
    assert world.fake.requests == []


@pytest.mark.parametrize(
    "args", [["status"], ["status", "--json"], ["conflicts"], ["case", "get", "9600001"]]
)
def test_faults_reading_commands_on_a_missing_database_exit_5_and_create_nothing(
    build: Callable[..., World], args: list[str]
) -> None:
    world = build()
    outcome = world.run(*args)
    assert outcome.exit_code == 5
    assert f"no database at {world.db_path}" in one_error_line(outcome)
    assert not world.db_path.exists()


def test_faults_a_database_in_a_missing_folder_exits_5(build: Callable[..., World]) -> None:
    # (An unreadable file cannot be tested here: CI runs as root, who reads a file whatever its mode.)
    world = build()
    missing = world.db_path.parent / "no-such-folder" / "mirror.db"
    outcome = world.run("sync", SYNCCTL_DB=str(missing))
    assert outcome.exit_code == 5, outcome.stderr
    assert str(missing) in one_error_line(outcome)
    assert world.fake.requests == [] and not missing.parent.exists()


def test_faults_a_database_with_corrupt_pages_exits_5_not_an_internal_error(
    build: Callable[..., World],
) -> None:
    world = build()
    world.sync()
    assert not world.db_path.with_name(world.db_path.name + "-wal").exists()
    image = bytearray(world.db_path.read_bytes())
    middle = len(image) // 2
    image[middle : middle + 8192] = b"\x5a" * 8192  # two pages of `cases` overwritten; the header is fine
    world.db_path.write_bytes(bytes(image))

    for args in (["sync", "--full"], ["status"]):
        outcome = run_cli(world, *args)  # in a child process: an unexpected error shows as users see it
        assert outcome.exit_code == 5, (args, outcome.stderr)
        assert "not a usable SQLite database" in one_error_line(outcome), (args, outcome.stderr)


# -- secrets -------------------------------------------------------------------------------------------


def echo_authorization(fake: FakeIntempus, status: int, match: str) -> None:
    """Make `fake` answer `status` with a body quoting the request's Authorization header (a debug page)."""
    original = fake.handle

    def handle(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        if match in f"{method} {path}":
            auth = next(v for k, v in headers.items() if k.lower() == "authorization")
            text = json.dumps({"error_message": f"request failed (headers: Authorization: {auth})"})
            return Response(status, text.encode(), {"Content-Type": "application/json"})
        return original(method, path, headers, body)

    fake.handle = handle  # type: ignore[method-assign]


@pytest.mark.parametrize(
    "scenario", ["ok", "auth-failure", "unreachable", "500-echoing-key", "400-echoing-key"]
)
def test_faults_api_key_appears_nowhere_even_with_debug_logging(
    build: Callable[..., World], scenario: str
) -> None:
    world = build(key=KEY)
    world.env["INTEMPUS_API_KEY"] = KEY
    world.sync()
    world.edit("UPDATE cases SET notes = 'local' WHERE id = ?", min(world.fake.cases))
    env: dict[str, str] = {}
    if scenario == "auth-failure":
        env["INTEMPUS_API_USER"] = "someone-else"
    elif scenario == "unreachable":
        env["INTEMPUS_API_URI"] = "http://127.0.0.1:9/web/v1"
    elif scenario == "500-echoing-key":
        echo_authorization(world.fake, 500, LIST)
    elif scenario == "400-echoing-key":
        echo_authorization(world.fake, 400, "PUT ")

    outcomes = [world.run("-vv", "sync", "--json", **env), world.run("-vv", "sync", **env)]
    outcomes += [world.run("status", "--json"), world.run("status"), world.run("-vv", "conflicts")]

    expected = 0 if scenario in ("ok", "400-echoing-key") else 1
    assert [o.exit_code for o in outcomes[:2]] == [expected, expected], outcomes
    assert "DEBUG" in outcomes[0].stderr  # requests/urllib3 were logging too
    for outcome in outcomes:
        assert KEY not in outcome.stdout + outcome.stderr, (scenario, outcome)
    assert not [line for line in dump(world) if KEY in line], scenario  # run log, pending errors, all


@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o640, True), (0o600, False)])
def test_faults_env_file_readable_by_others_is_warned_about(
    build: Callable[..., World], tmp_path: Path, mode: int, warned: bool
) -> None:
    world = build(key=KEY)
    env_file = tmp_path / ".env"
    env_file.write_text(f"INTEMPUS_API_USER={world.env['INTEMPUS_API_USER']}\nINTEMPUS_API_KEY={KEY}\n")
    env_file.chmod(mode)
    del world.env["INTEMPUS_API_KEY"]  # from the file only

    outcome = world.run("sync")

    assert outcome.exit_code == 0, outcome.stderr
    assert ("chmod 600" in outcome.stderr) is warned, outcome.stderr
    assert outcome.stderr == "" or outcome.stderr.count("\n") == 1
    assert KEY not in outcome.stdout + outcome.stderr
    assert world.differences() == []
