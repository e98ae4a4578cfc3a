"""A client's two folders, one SQLite file, and the real CLI wired to them (in-process)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from syncctl.cli import app

FIXTURES = Path(__file__).parents[2] / "fixtures" / "tracos"
FIXTURE_FILES = sorted((FIXTURES / "inbound").glob("*.json"), key=lambda path: int(path.stem))
HOUR_NS = 3600 * 10**9


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Client:
    """The client's inbound and outbound folders and syncctl's file."""

    inbound: Path
    outbound: Path
    db_path: Path
    env: dict[str, str]

    def run(self, *args: str, **env: str) -> Outcome:
        result = CliRunner().invoke(app, list(args), env={**self.env, **env}, catch_exceptions=False)
        return Outcome(result.exit_code, result.stdout, result.stderr)

    def sync(self, *args: str) -> dict[str, Any]:
        outcome = self.run("sync", "workorders", "--json", *args)
        assert outcome.exit_code == 0, outcome.stderr
        data: dict[str, Any] = outcome.json()
        return data

    def put(self, name: str, content: bytes | dict[str, Any], *, age_ns: int | None = HOUR_NS) -> Path:
        """A client file; by default it arrived an hour ago, as files a cron run finds usually did."""
        path = self.inbound / name
        path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
        if age_ns is not None:
            stamp = time.time_ns() - age_ns
            os.utime(path, ns=(stamp, stamp))
        return path

    def put_fixtures(self) -> None:
        for path in FIXTURE_FILES:
            self.put(path.name, path.read_bytes())

    def edit(self, sql: str, *params: Any) -> None:
        """Change the table as any other program would."""
        with sqlite3.connect(self.db_path) as db:
            db.execute(sql, params)
        db.close()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as db:
            rows = db.execute(sql, params).fetchall()
        db.close()
        return rows

    def rows(self) -> dict[int, dict[str, Any]]:
        with sqlite3.connect(self.db_path) as db:
            db.row_factory = sqlite3.Row
            found = {row["number"]: dict(row) for row in db.execute("SELECT * FROM workorders")}
        db.close()
        return found

    def dump(self) -> list[str]:
        """Everything in the file except the run log (every run records itself)."""
        with sqlite3.connect(self.db_path) as db:
            lines = [line for line in db.iterdump() if '"_syncctl_runs"' not in line]
        db.close()
        return lines

    def written(self) -> dict[str, bytes]:
        return {path.name: path.read_bytes() for path in sorted(self.outbound.iterdir())}


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's folder
    inbound, outbound = tmp_path / "in", tmp_path / "out"
    inbound.mkdir()
    outbound.mkdir()
    env = {
        "WORKORDERS_INBOUND_DIR": str(inbound),
        "WORKORDERS_OUTBOUND_DIR": str(outbound),
        "SYNCCTL_DB": str(tmp_path / "syncctl.db"),
    }
    made = Client(inbound, outbound, tmp_path / "syncctl.db", env)
    yield made
    for folder in (inbound, outbound):  # a test may have taken permissions away; let pytest clean up
        folder.chmod(0o700)
