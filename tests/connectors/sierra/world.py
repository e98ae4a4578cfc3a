"""Helpers for the Sierra end-to-end tests: the bundled fake on a free loopback port, its clock injected,
an SQLite file, and the real CLI in-process wired to both."""

from __future__ import annotations

import calendar
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from syncctl.cli import app
from syncctl.connectors.sierra.client import ITEM_FIELDS
from syncctl.connectors.sierra.connector import ITEMS
from syncctl.connectors.sierra.fake import DEFAULT_KEY, DEFAULT_SECRET, FakeSierra, FakeSierraServer
from syncctl.core.db import Database
from syncctl.core.fakehttp import Response
from syncctl.core.mirror import MirrorTable

NOW = calendar.timegm((2025, 10, 6, 12, 0, 0))
NOW_TEXT = "2025-10-06T12:00:00Z"


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class HookedSierra(FakeSierra):
    """The fake, with actions a test runs right after a matching request was answered: "the library
    staff changed Sierra while syncctl was listing"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hooks: list[tuple[Callable[[str, str], bool], Callable[[], object]]] = []

    def after(self, matches: Callable[[str, str], bool], action: Callable[[], object]) -> None:
        self.hooks.append((matches, action))

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> Response:
        response = super().handle(method, path, headers, body)
        for hook in list(self.hooks):
            if hook[0](method.upper(), path):
                self.hooks.remove(hook)
                hook[1]()
        return response


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class SierraWorld:
    fake: HookedSierra
    clock: FakeClock
    url: str
    db_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, **env: str) -> Outcome:
        result = CliRunner().invoke(app, list(args), env={**self.env, **env}, catch_exceptions=False)
        return Outcome(result.exit_code, result.stdout, result.stderr)

    def sync(self, *args: str, **env: str) -> dict[str, Any]:
        outcome = self.run("sync", "sierra", "--json", *args, **env)
        assert outcome.exit_code == 0, outcome.stderr
        data: dict[str, Any] = outcome.json()
        assert data["status"] == "ok", data
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

    def state(self, key: str) -> Any:
        found = self.query("SELECT value FROM _syncctl_state WHERE source = 'sierra' AND key = ?", key)
        return found[0][0] if found else None

    def queued(self) -> list[tuple[int, int, str | None]]:
        """(id, attempts, last_error) of every queued item, oldest first."""
        return [
            (row[0], row[1], row[2])
            for row in self.query(
                "SELECT record_id, attempts, last_error FROM _syncctl_pending"
                " WHERE table_name = 'sierra_items' ORDER BY changed_at, record_id"
            )
        ]

    def delete(self, ids: list[str]) -> None:
        for item_id in ids:
            self.fake.delete_item(item_id)

    def ids(self, count: int, *, start: int = 0) -> list[str]:
        """Ids of live items, in id order."""
        return [item["id"] for item in self.fake.items(("id",))][start : start + count]

    def differences(self) -> list[str]:
        """Every way the mirror differs from the fake's live items, field by field (empty when equal)."""
        db = Database.open(self.db_path)
        try:
            table = MirrorTable.open(db, ITEMS)
            local = {row[0] for row in db.conn.execute("SELECT id FROM sierra_items")}
            remote = {int(item["id"]): item for item in self.fake.items(ITEM_FIELDS)}
            problems = [f"missing locally: {i}" for i in sorted(remote.keys() - local)]
            problems += [f"extra locally: {i}" for i in sorted(local - remote.keys())]
            for number in sorted(local & remote.keys()):
                expected = table.to_row({**remote[number], "id": number})
                actual = table.get_row(number)
                assert actual is not None
                fields = [name for name in expected if expected[name] != actual.get(name)]
                if fields:
                    problems.append(f"item {number} differs in {fields}")
            return problems
        finally:
            db.close()


@contextmanager
def sierra_world(tmp_path: Path, items: int = 300, **options: Any) -> Iterator[SierraWorld]:
    clock = FakeClock()
    fake = HookedSierra(items=items, seed=11, clock=clock, **options)
    with FakeSierraServer(fake) as server:
        db_path = tmp_path / "mirror.db"
        env = {
            "SIERRA_API_ENDPOINT": server.url,
            "SIERRA_API_CLIENT_KEY": DEFAULT_KEY,
            "SIERRA_API_CLIENT_SECRET": DEFAULT_SECRET,
            "SYNCCTL_DB": str(db_path),
            "SYNCCTL_PAGE_SIZE": "100",
            "SYNCCTL_MAX_REQUESTS_PER_MINUTE": "0",
            "SYNCCTL_RETRY_BACKOFF": "0",
            "SYNCCTL_RETRY_ATTEMPTS": "2",
        }
        yield SierraWorld(fake=fake, clock=clock, url=server.url, db_path=db_path, env=env)
