"""Helpers for end-to-end tests: the bundled fake on a free loopback port and the real CLI in-process."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from syncctl.cli import app
from syncctl.fake import DEFAULT_KEY, DEFAULT_USER, FakeIntempus, FakeServer
from syncctl.store import Store


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
        store = Store.open(self.db_path)
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


def make_world(tmp_path: Path, cases: int, **fake_options: Any) -> Iterator[World]:
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
