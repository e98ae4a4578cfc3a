"""`sync --wait-lock DURATION`: a scheduled run waits for a run in progress instead of giving up at once.

The lock's sleep and clock are injected through the CLI's `hold_lock`, so no test waits for real beyond a
tenth of a second.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import pytest

from syncctl.core import lock
from syncctl.core.errors import LockedError
from tests.e2e import World


class FakeTime:
    """A clock that moves only when slept on; `on_sleep` lets the test act during the wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[], None] = lambda: None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep()


@pytest.fixture
def world(build: Callable[..., World]) -> World:
    small: World = build(30)
    return small


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    """The CLI's lock with a fake sleep and clock (its defaults are bound when `hold_lock` is defined, so
    patching `syncctl.core.lock.time` would not reach them)."""
    fake = FakeTime()
    real = lock.hold_lock

    def hold_lock(db_path: Path, source: str, *, wait_s: float = 0.0) -> AbstractContextManager[None]:
        return real(db_path, source, wait_s=wait_s, sleep=fake.sleep, clock=fake.clock)

    monkeypatch.setattr("syncctl.cli.hold_lock", hold_lock)
    return fake


@pytest.fixture
def held(world: World) -> Iterator[ExitStack]:
    """The source's lock, held by this test process as another run would hold it; `close()` releases it."""
    with ExitStack() as stack:
        stack.enter_context(lock.hold_lock(world.db_path, "intempus"))
        yield stack


def locked_line(world: World) -> str:
    return (
        f"syncctl: error: another syncctl run (pid {os.getpid()}) is working on {world.db_path};"
        " this run exits without changes"
    )


def recorded_runs(world: World) -> list[str]:
    return [run["status"] for run in world.run("status", "--json").json()["runs"]]


@pytest.mark.usefixtures("held")
def test_wait_lock_gives_up_with_75_after_the_wait(world: World, fake_time: FakeTime) -> None:
    outcome = world.run("sync", "--wait-lock", "30s")

    assert outcome.exit_code == 75
    assert outcome.stderr.splitlines() == [locked_line(world)]
    assert sum(fake_time.sleeps) == pytest.approx(30) and max(fake_time.sleeps) <= 1.0
    assert recorded_runs(world) == []  # it changed nothing
    assert world.fake.requests == []


@pytest.mark.usefixtures("held")
def test_wait_lock_without_the_option_exits_75_at_once(world: World, fake_time: FakeTime) -> None:
    outcome = world.run("sync")

    assert outcome.exit_code == 75
    assert fake_time.sleeps == []


def test_wait_lock_runs_as_soon_as_the_other_run_ends(
    world: World, fake_time: FakeTime, held: ExitStack
) -> None:
    fake_time.on_sleep = lambda: held.close() if len(fake_time.sleeps) == 3 else None

    result = world.sync("--wait-lock", "5m")

    assert (result["status"], result["inserted"]) == ("ok", 30)
    assert fake_time.sleeps == [1.0, 1.0, 1.0]
    assert recorded_runs(world) == ["ok"]


@pytest.mark.usefixtures("held")
def test_wait_lock_really_waits_in_the_real_cli(world: World) -> None:
    started = time.monotonic()

    outcome = world.run("sync", "--wait-lock", "0.1s")

    assert outcome.exit_code == 75
    assert time.monotonic() - started >= 0.1


@pytest.mark.parametrize("bad", ["soon", "5 minutes", "-1m", "2y"])
def test_wait_lock_bad_duration_is_a_usage_error(world: World, bad: str) -> None:
    outcome = world.run("sync", "--wait-lock", bad)

    assert outcome.exit_code == 2
    assert outcome.stderr.startswith("syncctl: error: --wait-lock takes a duration like 30s, 5m, 2h or 1h30m")


def test_wait_lock_polls_at_most_every_second_until_the_deadline(tmp_path: Path) -> None:
    fake = FakeTime()
    db = tmp_path / "mirror.db"

    with (
        lock.hold_lock(db, "grid"),
        pytest.raises(LockedError),
        lock.hold_lock(db, "grid", wait_s=2.5, sleep=fake.sleep, clock=fake.clock),
    ):
        pass

    assert fake.sleeps == [1.0, 1.0, 0.5]
    with lock.hold_lock(db, "sierra", wait_s=2.5, sleep=fake.sleep, clock=fake.clock):
        pass  # another source's lock is free
    assert fake.sleeps == [1.0, 1.0, 0.5]
