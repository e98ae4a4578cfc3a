"""`sync --every`: runs start to start, a failed run does not end the loop, SIGTERM ends the wait at once.

`run_every` takes its clock and waiter as arguments; the CLI's waiter is replaced by one that never
sleeps. Only the child-process test waits for real, for its first run, then signals the wait.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest

from syncctl.ops.schedule import Waiter, run_every
from tests.e2e import World, make_world, start_cli


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeWaiter(Waiter):
    """Waits by moving the fake clock; `stop_on_wait` plays the signal arriving during that wait."""

    def __init__(self, clock: FakeClock, *, stop_on_wait: int | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.stop_on_wait = stop_on_wait
        self.waits: list[float] = []

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        if self.stopped or len(self.waits) == self.stop_on_wait:
            self.stop()
            return True  # as the real one: a stopped waiter never waits
        self.clock.now += max(0.0, seconds)
        return False


class Runs:
    """A `run_once` that records when it started, takes `took` seconds of the fake clock, and returns the
    next of `codes` (the last one again when they run out)."""

    def __init__(self, clock: FakeClock, *, took: float, codes: tuple[int, ...] = (0,)) -> None:
        self.clock = clock
        self.took = took
        self.codes = codes
        self.started: list[float] = []
        self.during: Callable[[], None] = lambda: None

    def __call__(self) -> int:
        self.started.append(self.clock.now)
        self.clock.now += self.took
        self.during()
        return self.codes[min(len(self.started), len(self.codes)) - 1]


def test_schedule_runs_start_to_start_every_interval() -> None:
    clock = FakeClock()
    waiter = FakeWaiter(clock)
    runs = Runs(clock, took=10)

    code = run_every(300, runs, waiter=waiter, max_runs=3, clock=clock)

    assert code == 0
    assert runs.started == [1000, 1300, 1600]
    assert waiter.waits == [290, 290]  # no wait after the last run


def test_schedule_run_longer_than_the_interval_is_followed_at_once() -> None:
    clock = FakeClock()
    waiter = FakeWaiter(clock)
    runs = Runs(clock, took=400)

    run_every(300, runs, waiter=waiter, max_runs=3, clock=clock)

    assert runs.started == [1000, 1400, 1800]
    assert waiter.waits == [-100, -100]


def test_schedule_failed_runs_do_not_end_the_loop_and_the_last_code_is_returned() -> None:
    clock = FakeClock()
    runs = Runs(clock, took=1, codes=(1, 75, 0, 4))

    code = run_every(60, runs, waiter=FakeWaiter(clock), max_runs=4, clock=clock)

    assert (len(runs.started), code) == (4, 4)


def test_schedule_stop_during_a_wait_ends_the_loop_without_another_run() -> None:
    clock = FakeClock()
    waiter = FakeWaiter(clock, stop_on_wait=2)
    runs = Runs(clock, took=5, codes=(0, 1, 0))

    code = run_every(60, runs, waiter=waiter, clock=clock)

    assert (runs.started, code) == ([1000, 1060], 1)
    assert waiter.stopped


def test_schedule_stop_during_a_run_ends_the_loop_after_it() -> None:
    clock = FakeClock()
    waiter = FakeWaiter(clock)
    runs = Runs(clock, took=5, codes=(143,))
    runs.during = waiter.stop  # what the signal handler does

    code = run_every(60, runs, waiter=waiter, clock=clock)

    assert (len(runs.started), code) == (1, 143)


def test_schedule_stopped_before_the_first_run_runs_nothing() -> None:
    clock = FakeClock()
    waiter = FakeWaiter(clock)
    waiter.stop()
    runs = Runs(clock, took=5)

    assert run_every(60, runs, waiter=waiter, clock=clock) == 0
    assert runs.started == []


def test_schedule_waiter_stop_from_another_thread_ends_a_long_wait_at_once() -> None:
    waiter = Waiter()
    assert waiter.wait(-5) is False  # a late run: no wait at all
    stopper = threading.Timer(0.05, waiter.stop)
    started = time.monotonic()
    stopper.start()

    stopped = waiter.wait(60)

    assert stopped and time.monotonic() - started < 5
    assert waiter.wait(60) is True  # every later wait ends at once too
    stopper.join()


# -- sync --every through the CLI ----------------------------------------------------------------------


class NoSleep(Waiter):
    """The CLI's waiter, without the waiting."""

    waits: ClassVar[list[float]] = []  # one list per test, reset by the fixture

    def wait(self, seconds: float) -> bool:
        NoSleep.waits.append(seconds)
        return self.stopped


@pytest.fixture
def world(build: Callable[..., World]) -> World:
    small: World = build(30)
    return small


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    NoSleep.waits = []
    monkeypatch.setattr("syncctl.cli.Waiter", NoSleep)
    return NoSleep.waits


def runs_of(world: World) -> list[tuple[str, str]]:
    """(mode, status) of every recorded run, oldest first."""
    return [(r["mode"], r["status"]) for r in reversed(world.run("status", "--json").json()["runs"])]


def test_schedule_every_with_max_runs_runs_that_many_times(world: World, no_sleep: list[float]) -> None:
    outcome = world.run("sync", "--json", "--every", "5m", "--max-runs", "3")

    assert outcome.exit_code == 0, outcome.stderr
    assert [json.loads(line)["status"] for line in outcome.stdout.splitlines()] == ["ok"] * 3
    assert runs_of(world) == [("full", "ok"), ("incremental", "ok"), ("incremental", "ok")]
    assert len(no_sleep) == 2 and all(290 < wait <= 300 for wait in no_sleep)


def test_schedule_every_goes_on_after_a_failed_run(world: World, no_sleep: list[float]) -> None:
    outcome = world.run("sync", "--every", "1m", "--max-runs", "2", INTEMPUS_API_KEY="wrong-key-3Ux")

    assert outcome.exit_code == 1
    assert runs_of(world) == [("full", "failed"), ("full", "failed")]
    assert len(outcome.stderr.splitlines()) == 2  # one line per failed run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--max-runs", "2"), "syncctl: error: --max-runs goes with --every"),
        (("--every", "0.5s"), "syncctl: error: --every must be at least 1s"),
        (("--every", "hourly"), "syncctl: error: --every takes a duration like 30s, 5m, 2h or 1h30m"),
    ],
)
def test_schedule_every_refuses_bad_options(world: World, args: tuple[str, ...], message: str) -> None:
    outcome = world.run("sync", *args)

    assert outcome.exit_code == 2
    assert outcome.stderr.startswith(message)
    assert not world.db_path.exists()


@dataclass
class Stopped:
    world: World
    result: subprocess.CompletedProcess[str]
    took: float  # from the signal to the exit


@pytest.fixture(scope="module")
def stopped_in_the_wait(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stopped]:
    """`syncctl sync --every 1h` in a child: after its first run (its JSON line), SIGTERM during the wait.
    Run once for the tests below."""
    worlds = make_world(tmp_path_factory.mktemp("every"), 30)
    world = next(worlds)
    child = start_cli(world, "sync", "--every", "1h", "--json")
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        assert '"status": "ok"' in first, first
        signalled = time.monotonic()
        child.send_signal(signal.SIGTERM)
        stdout, stderr = child.communicate(timeout=30)
        took = time.monotonic() - signalled
        yield Stopped(
            world, subprocess.CompletedProcess(child.args, child.returncode, first + stdout, stderr), took
        )
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        worlds.close()


def test_schedule_sigterm_during_the_wait_exits_143_at_once_with_the_runs_intact(
    stopped_in_the_wait: Stopped,
) -> None:
    world, result = stopped_in_the_wait.world, stopped_in_the_wait.result

    assert result.returncode == 143, result.stderr
    assert stopped_in_the_wait.took < 5  # not an hour
    assert len(result.stdout.splitlines()) == 1  # no run after the signal
    assert world.query("SELECT mode, status FROM _syncctl_runs") == [("full", "ok")]
    assert world.query("PRAGMA integrity_check") == [("ok",)]
    assert world.differences() == []


def test_schedule_sigterm_during_the_wait_says_so(stopped_in_the_wait: Stopped) -> None:
    assert "SIGTERM" in stopped_in_the_wait.result.stderr
