"""Helpers for end-to-end tests: the bundled fake on a free loopback port and the real CLI in-process."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from syncctl.cli import app
from syncctl.connectors.intempus.fake import DEFAULT_KEY, DEFAULT_USER, FakeIntempus, FakeServer
from tests.cases_store import Store


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class World:
    """One fake Intempus, one SQLite file, and the CLI wired to both."""

    fake: FakeIntempus
    url: str
    db_path: Path
    env: dict[str, str]

    def run(self, *args: str, **env: str) -> Outcome:
        result = CliRunner().invoke(app, list(args), env={**self.env, **env}, catch_exceptions=False)
        return Outcome(result.exit_code, result.stdout, result.stderr)

    def sync(self, *args: str, **env: str) -> dict[str, Any]:
        outcome = self.run("sync", "--json", *args, **env)
        assert outcome.exit_code == 0, outcome.stderr
        data: dict[str, Any] = outcome.json()
        return data

    def edit(self, sql: str, *params: Any) -> None:
        """Change the mirror as any other program would."""
        with sqlite3.connect(self.db_path) as db:
            db.execute(sql, params)
        db.close()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as db:
            rows = db.execute(sql, params).fetchall()
        db.close()
        return rows

    def differences(self) -> list[str]:
        """Every way the mirror differs from the fake's state, field by field (empty when equal)."""
        store = Store.open_at(self.db_path)
        try:
            local_ids = {row[0] for row in store.conn.execute("SELECT id FROM cases")}
            remote_ids = set(self.fake.cases)
            problems = [f"missing locally: {i}" for i in sorted(remote_ids - local_ids)]
            problems += [f"extra locally: {i}" for i in sorted(local_ids - remote_ids)]
            for case_id in sorted(remote_ids & local_ids):
                expected = store.to_row(self.fake.cases[case_id])
                actual = store.get_row(case_id)
                if actual != expected:
                    assert actual is not None
                    fields = [n for n in expected if expected[n] != actual.get(n)]
                    problems.append(f"case {case_id} differs in {fields}")
            return problems
        finally:
            store.close()


def make_world(tmp_path: Path, cases: int, **fake_options: Any) -> Generator[World, None, None]:
    fake = FakeIntempus(cases=cases, seed=42, **fake_options)
    with FakeServer(fake) as server:
        db_path = tmp_path / "mirror.db"
        env = {
            "INTEMPUS_API_URI": server.url,
            "INTEMPUS_API_USER": DEFAULT_USER,
            "INTEMPUS_API_KEY": DEFAULT_KEY,
            "SYNCCTL_DB": str(db_path),
            "SYNCCTL_MAX_REQUESTS_PER_MINUTE": "0",
            "SYNCCTL_RETRY_BACKOFF": "0",
            "SYNCCTL_RETRY_ATTEMPTS": "3",
        }
        yield World(fake=fake, url=server.url, db_path=db_path, env=env)


class Gate:
    """The fake's injectable sleep for `delay` faults: the held request tells the test, then waits for it.

    The test acts at a known point of a run (kill the process, send a signal, take a lock) without ever
    sleeping: `wait_held()` returns once a request is held, `finish()` lets it through and waits until
    the fake has answered it (so its effect, e.g. a committed create, is in the fake's state).
    """

    def __init__(self) -> None:
        self.held = threading.Event()
        self._opened = threading.Event()
        self._threads: list[threading.Thread] = []

    def __call__(self, seconds: float) -> None:
        self._threads.append(threading.current_thread())
        self.held.set()
        if not self._opened.wait(timeout=60):
            raise RuntimeError("the test never opened the gate")

    def wait_held(self, timeout: float = 60) -> None:
        assert self.held.wait(timeout), "no request reached the delay fault"

    def open(self) -> None:
        self._opened.set()

    def finish(self, timeout: float = 30) -> None:
        self.open()
        for thread in self._threads:
            thread.join(timeout)


def start_cli(world: World, *args: str, **env: str) -> subprocess.Popen[str]:
    """The real CLI (`python -m syncctl`) in its own process, wired to the world's fake and file."""
    return subprocess.Popen(
        [sys.executable, "-m", "syncctl", *args],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **world.env, **env},
        cwd=world.db_path.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_cli(world: World, *args: str, **env: str) -> Outcome:
    """Like `World.run`, through the real entry point in a child process: errors show as users see them."""
    process = start_cli(world, *args, **env)
    stdout, stderr = process.communicate(timeout=60)
    return Outcome(process.returncode, stdout, stderr)


def rows(world: World) -> dict[int, tuple[Any, ...]]:
    """Every row of `cases`, by id."""
    return {row[0]: row for row in world.query("SELECT * FROM cases")}


def cursor(world: World) -> Any:
    """The stored cursor, read with plain SQL."""
    found = world.query("SELECT value FROM _syncctl_state WHERE key = 'cursor'")
    return found[0][0] if found else None
