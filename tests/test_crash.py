"""Crashes and concurrency: the real CLI as a child process, killed or signalled at known points of a run.

A `delay` fault holds one request of the child in the fake (through the fake's injectable sleep, a
`Gate`), so the test knows exactly where the run is when it kills or signals it: no test sleeps, and no
test depends on timing. Afterwards the SQLite file must be intact, hold whole pages only, and the next
run must converge with nothing lost and nothing pushed twice.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
from collections import Counter
from collections.abc import Callable

import pytest

from syncctl.connectors.intempus.fake import LIST_PATH, Fault
from tests.e2e import Gate, World, cursor, rows, start_cli

LIST = f"GET {LIST_PATH}?"
PAGE = 50
NEW_NAME = "Made in sqlite"


def statuses(world: World) -> list[str]:
    """The status of every recorded run, newest first."""
    return [run["status"] for run in world.run("status", "--json").json()["runs"]]


def writes(world: World) -> Counter[str]:
    return Counter(
        method for method, _ in world.fake.requests if method in ("POST", "PUT", "PATCH", "DELETE")
    )


def kill_when_held(child: subprocess.Popen[str], gate: Gate) -> None:
    """SIGKILL the child while the fake holds its request, then let the held request finish."""
    try:
        gate.wait_held()
        child.kill()
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        gate.finish()
    assert child.returncode == -signal.SIGKILL


def assert_intact(world: World) -> None:
    assert world.query("PRAGMA integrity_check") == [("ok",)]


# -- kill -9 -------------------------------------------------------------------------------------------


def kill_first_sync_at_page(build: Callable[..., World], page: int, cases: int, page_size: int) -> None:
    gate = Gate()
    world = build(cases, sleep=gate)
    world.env["SYNCCTL_PAGE_SIZE"] = str(page_size)
    world.fake.add_fault(Fault(match=LIST, after=page - 1, kind="delay"))

    kill_when_held(start_cli(world, "sync", "--json"), gate)

    assert_intact(world)
    ids = sorted(world.fake.cases)
    served = ids[: (page - 1) * page_size]  # the pages answered before the held one: whole, and only those
    assert sorted(rows(world)) == served
    assert world.differences() == [f"missing locally: {i}" for i in ids[len(served) :]]
    assert cursor(world) is None  # no complete listing yet
    assert statuses(world) == ["running"]  # what the dead process left: taken over by the next run

    world.fake.requests.clear()
    result = world.sync()
    assert (result["mode"], result["status"]) == ("full", "ok")
    assert (result["inserted"], result["unchanged"]) == (cases - len(served), len(served))
    assert world.differences() == []
    assert statuses(world) == ["ok", "interrupted"]
    assert writes(world) == Counter()  # nothing pulled is pushed back


def test_crash_kill_9_while_paging_leaves_whole_pages_and_the_next_run_converges(
    build: Callable[..., World],
) -> None:
    kill_first_sync_at_page(build, page=3, cases=300, page_size=PAGE)


@pytest.mark.slow
@pytest.mark.parametrize("page", [1, 2, 4, 5, 6])
def test_crash_kill_9_at_every_page_of_a_first_sync(build: Callable[..., World], page: int) -> None:
    kill_first_sync_at_page(build, page=page, cases=300, page_size=PAGE)


@pytest.mark.slow
def test_crash_kill_9_in_a_big_first_sync(build: Callable[..., World]) -> None:
    kill_first_sync_at_page(build, page=7, cases=20000, page_size=1000)


@pytest.mark.parametrize(
    "held",
    [
        pytest.param(Fault(match=LIST, after=2, kind="delay"), id="paging"),
        pytest.param(Fault(match="id__in", kind="delay"), id="confirming-deletes", marks=pytest.mark.slow),
    ],
)
def test_crash_kill_9_during_a_full_sync_with_remote_changes_deletes_nothing_wrongly(
    build: Callable[..., World], held: Fault
) -> None:
    gate = Gate()
    world = build(sleep=gate)
    world.env["SYNCCTL_PAGE_SIZE"] = str(PAGE)
    world.sync()
    changed = world.fake.mutate(update=40, delete=10, create=10, seed=11)
    before, cursor_before = rows(world), cursor(world)
    world.fake.add_fault(Fault(match=held.match, after=held.after, kind="delay"))

    kill_when_held(start_cli(world, "sync", "--full", "--json"), gate)

    assert_intact(world)
    assert cursor(world) == cursor_before
    after = rows(world)
    assert set(changed["deleted"]) <= after.keys()  # no delete without a complete listing and confirmation
    served = set(sorted(world.fake.cases)[: 2 * PAGE]) if held.match == LIST else set(world.fake.cases)
    untouched = before.keys() - served
    assert {i: after.get(i) for i in untouched} == {i: before[i] for i in untouched}  # no half page
    assert not [p for p in world.differences() if any(str(i) in p for i in served)]

    result = world.sync("--full")
    assert (result["status"], result["deleted"]) == ("ok", 10)
    assert world.differences() == []
    assert statuses(world)[:2] == ["ok", "interrupted"]


KILL_POINTS = {  # the request held when the child is killed, and the writes Intempus has seen by then
    "reading-before-push": (Fault(match="id__in", kind="delay"), {}),
    "put": (Fault(match="PUT ", kind="delay"), {"PUT": 1}),
    "delete": (Fault(match="DELETE ", kind="delay"), {"PUT": 1, "DELETE": 1}),
    "post": (Fault(match="POST ", kind="delay"), {"PUT": 1, "DELETE": 1, "POST": 1}),
    "reading-back": (Fault(match="id__in", after=1, kind="delay"), {"PUT": 1, "DELETE": 1, "POST": 1}),
}


@pytest.mark.parametrize(
    "point",
    [pytest.param(p, marks=[] if p == "post" else [pytest.mark.slow]) for p in KILL_POINTS],
)
def test_crash_kill_9_while_pushing_pushes_each_change_once(build: Callable[..., World], point: str) -> None:
    gate = Gate()
    world = build(sleep=gate)
    world.sync()
    edited, removed = sorted(world.fake.cases)[:2]
    customer = world.fake.cases[edited]["customer"]
    world.edit("UPDATE cases SET name = 'Renamed in sqlite' WHERE id = ?", edited)
    world.edit("DELETE FROM cases WHERE id = ?", removed)
    world.edit("INSERT INTO cases (name, number, customer) VALUES (?, 'L-1', ?)", NEW_NAME, customer)
    world.fake.requests.clear()
    held, seen = KILL_POINTS[point]
    world.fake.add_fault(Fault(match=held.match, after=held.after, kind="delay"))

    kill_when_held(start_cli(world, "sync", "--json"), gate)  # the held request is answered afterwards

    assert writes(world) == Counter(seen)
    assert_intact(world)
    result = world.sync()
    assert (result["status"], result["push_failed"]) == ("ok", 0)
    sent = writes(world)
    assert (sent["PUT"], sent["DELETE"]) == (1, 1)  # one write each across both runs
    assert 1 <= sent["POST"] <= 2  # a repeated create carries the same creation_id ...
    created = [case for case in world.fake.cases.values() if case["name"] == NEW_NAME]
    assert len(created) == 1  # ... so Intempus holds one new case
    assert len(world.fake.cases) == 300
    assert world.fake.cases[edited]["name"] == "Renamed in sqlite" and removed not in world.fake.cases
    assert world.query("SELECT id FROM cases WHERE name = ?", NEW_NAME) == [(created[0]["id"],)]
    assert world.differences() == []
    assert world.run("status", "--json").json()["pending"] == 0
    assert statuses(world)[:2] == ["ok", "interrupted"]


# -- SIGTERM and SIGINT --------------------------------------------------------------------------------


def signal_when_held(world: World, gate: Gate, signum: signal.Signals, *args: str) -> tuple[int, str, str]:
    """Run `syncctl sync *args` in a child; send `signum` while the fake holds its request, then answer it."""
    child = start_cli(world, "sync", *args)
    try:
        gate.wait_held()
        child.send_signal(signum)  # arrives while the held request is awaited ...
        gate.open()  # ... which then gets its answer: the run goes on to its next safe point and stops
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
        gate.finish()
    return child.returncode, stdout, stderr


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_crash_sigterm_and_sigint_stop_at_a_safe_point_recorded_as_interrupted(
    build: Callable[..., World], signum: signal.Signals, code: int
) -> None:
    gate = Gate()
    world = build(sleep=gate)
    world.env["SYNCCTL_PAGE_SIZE"] = str(PAGE)
    world.fake.add_fault(Fault(match=LIST, after=1, kind="delay"))  # page 2

    returncode, stdout, stderr = signal_when_held(world, gate, signum)

    assert returncode == code, stderr
    assert stderr.splitlines() == [f"syncctl: error: stopped by {signum.name} at a safe point"]
    assert stdout.startswith(f"sync interrupted (full): fetched {2 * PAGE}, inserted {2 * PAGE},")
    assert_intact(world)
    assert sorted(rows(world)) == sorted(world.fake.cases)[: 2 * PAGE]  # page 2 applied whole, no page 3
    assert cursor(world) is None
    [run] = world.run("status", "--json").json()["runs"]
    assert (run["status"], run["fetched"]) == ("interrupted", 2 * PAGE)
    assert signum.name in run["error"]

    assert world.sync()["status"] == "ok"
    assert world.differences() == []


def test_crash_interrupted_sync_json_reports_status_interrupted(build: Callable[..., World]) -> None:
    gate = Gate()
    world = build(sleep=gate)
    world.env["SYNCCTL_PAGE_SIZE"] = str(PAGE)
    world.fake.add_fault(Fault(match=LIST, after=1, kind="delay"))

    returncode, stdout, stderr = signal_when_held(world, gate, signal.SIGTERM, "--json")

    assert returncode == 143, stderr
    assert stderr.splitlines() == ["syncctl: error: stopped by SIGTERM at a safe point"]
    result = json.loads(stdout)
    assert (result["status"], result["fetched"], result["cursor"]) == ("interrupted", 2 * PAGE, None)
    assert result["error"] == "stopped by SIGTERM at a safe point"


def test_crash_sigterm_while_pushing_finishes_the_change_under_way_and_pushes_it_once(
    build: Callable[..., World],
) -> None:
    gate = Gate()
    world = build(sleep=gate)
    world.sync()
    customer = world.fake.cases[min(world.fake.cases)]["customer"]
    world.edit("INSERT INTO cases (name, number, customer) VALUES (?, 'L-1', ?)", NEW_NAME, customer)
    world.fake.mutate(update=5, seed=9)  # something to pull, which the stopped run must leave for later
    cursor_before = cursor(world)
    world.fake.requests.clear()
    world.fake.add_fault(Fault(match="POST ", kind="delay"))

    returncode, stdout, stderr = signal_when_held(world, gate, signal.SIGTERM)

    assert returncode == 143, stderr
    assert stdout.startswith("sync interrupted (incremental): fetched 0, inserted 0, updated 0,")
    [run, _] = world.run("status", "--json").json()["runs"]
    assert (run["status"], run["pushed"], run["fetched"]) == ("interrupted", 1, 0)
    assert cursor(world) == cursor_before
    [created] = [case for case in world.fake.cases.values() if case["name"] == NEW_NAME]
    assert world.query("SELECT id FROM cases WHERE name = ?", NEW_NAME) == [(created["id"],)]
    assert world.run("status", "--json").json()["pending"] == 0

    again = world.sync()
    assert (again["pushed"], again["updated"]) == (0, 5)
    assert writes(world) == Counter({"POST": 1})
    assert world.differences() == []


# -- readers, writers and a second run -----------------------------------------------------------------


def test_crash_a_reader_with_an_open_read_transaction_does_not_block_a_sync(
    build: Callable[..., World],
) -> None:
    world = build()
    world.sync()
    world.fake.mutate(update=30, create=10, seed=2)
    reader = sqlite3.connect(world.db_path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        before = reader.execute("SELECT count(*), max(logical_timestamp) FROM cases").fetchone()

        result = world.sync()

        assert (result["status"], result["inserted"], result["updated"]) == ("ok", 10, 30)
        # the reader still sees its snapshot, whole, until it ends its transaction
        assert reader.execute("SELECT count(*), max(logical_timestamp) FROM cases").fetchone() == before
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM cases").fetchone() == (310,)
    finally:
        reader.close()
    assert world.differences() == []


def test_crash_another_writer_holding_the_write_lock_briefly_only_delays_the_sync(
    build: Callable[..., World],
) -> None:
    locked = threading.Event()
    release = threading.Event()
    writers: list[threading.Thread] = []

    def write_briefly(case_id: int) -> None:
        writer = sqlite3.connect(world.db_path, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("UPDATE cases SET notes = 'edited by another program' WHERE id = ?", (case_id,))
            locked.set()
            release.wait(0.3)  # a short write, far below the 30 s busy timeout; nobody sets `release`
            writer.execute("COMMIT")
        finally:
            writer.close()

    def take_the_lock(seconds: float) -> None:  # the fake's sleep, while page 2 is held
        thread = threading.Thread(target=write_briefly, args=(min(world.fake.cases),))
        writers.append(thread)
        thread.start()
        assert locked.wait(30)  # page 2 is answered only once the other writer holds the lock

    world = build(sleep=take_the_lock)
    world.env["SYNCCTL_PAGE_SIZE"] = str(PAGE)
    world.fake.add_fault(Fault(match=LIST, after=1, kind="delay"))

    outcome = world.run("sync", "--json")
    for thread in writers:
        thread.join(30)

    assert outcome.exit_code == 0, outcome.stderr
    assert (outcome.json()["status"], outcome.json()["fetched"]) == ("ok", 300)
    assert outcome.json()["duration_s"] >= 0.25  # it did wait for the other writer, and did not fail
    case_id = min(world.fake.cases)
    assert world.query("SELECT notes FROM cases WHERE id = ?", case_id) == [("edited by another program",)]
    assert world.differences() == [f"case {case_id} differs in ['notes']"]  # the other program's edit ...
    assert world.sync()["pushed"] == 1  # ... is kept, and pushed by the next run
    assert world.fake.cases[case_id]["notes"] == "edited by another program"
    assert world.differences() == []


def test_crash_a_second_run_while_one_holds_the_lock_exits_75_and_changes_nothing(
    build: Callable[..., World],
) -> None:
    gate = Gate()
    world = build(sleep=gate)
    world.fake.add_fault(Fault(match=LIST, kind="delay"))
    child = start_cli(world, "sync", "--json")
    try:
        gate.wait_held()
        requests = len(world.fake.requests)

        second = world.run("sync", "--json")

        assert second.exit_code == 75
        # Scripts reading --json get an object for this source too (issue 15), saying it changed nothing.
        refused = second.json()
        assert (refused["source"], refused["status"], refused["run_id"]) == ("intempus", "failed", None)
        assert second.stderr.splitlines() == [
            f"syncctl: error: another syncctl run (pid {child.pid}) is working on {world.db_path};"
            " this run exits without changes"
        ]
        assert len(world.fake.requests) == requests
        gate.open()
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
        gate.finish()

    assert child.returncode == 0, stderr
    assert json.loads(stdout)["fetched"] == 300
    assert statuses(world) == ["ok"]  # the refused run left no trace in the run log
    assert world.differences() == []
