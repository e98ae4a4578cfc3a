"""An inbox folder, one SQLite file, and the real CLI wired to them (in-process); fixture events."""

from __future__ import annotations

import copy
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from syncctl import cli
from syncctl.connectors.tasks.commands import REPORTS

FIXTURES = Path(__file__).parents[2] / "fixtures" / "tasks"
EVENTS: dict[str, Any] = json.loads((FIXTURES / "webhook_events.json").read_text(encoding="utf-8"))


def variant(name: str, timestamp: str, **metadata: Any) -> dict[str, Any]:
    """A fixture event at another time (so a different event, not a retry), metadata overridden."""
    event: dict[str, Any] = copy.deepcopy(EVENTS[name])
    event["timestamp"] = timestamp
    event["metadata"].update(metadata)
    return event


def _report_app() -> typer.Typer:
    """The CLI, with `report tasks` mounted the way the lead mounts `REPORTS` if it is not there yet."""
    if any(group.name == "report" for group in cli.app.registered_groups):
        return cli.app
    harness = typer.Typer(pretty_exceptions_enable=False)
    harness.callback()(cli.root)
    group = typer.Typer()
    for name, command in REPORTS:
        group.command(name)(command)
    harness.add_typer(group, name="report")
    return harness


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Inbox:
    """The to-do service's inbox and syncctl's file."""

    folder: Path
    db_path: Path
    env: dict[str, str]

    def run(self, *args: str, input: bytes | str | None = None, **env: str) -> Outcome:
        app = _report_app() if args[:1] == ("report",) else cli.app
        result = CliRunner().invoke(
            app, list(args), input=input, env={**self.env, **env}, catch_exceptions=False
        )
        return Outcome(result.exit_code, result.stdout, result.stderr)

    def sync(self) -> dict[str, Any]:
        outcome = self.run("sync", "tasks", "--json")
        assert outcome.exit_code == 0, outcome.stderr
        data: dict[str, Any] = outcome.json()
        return data

    def put(
        self, name: str, content: bytes | str | list[Any] | dict[str, Any], *, lines: bool = False
    ) -> Path:
        """A file in the inbox: bytes or text as given, a list as a JSON array (or JSON Lines)."""
        path = self.folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        elif lines:
            assert isinstance(content, list)
            path.write_text("".join(json.dumps(event) + "\n" for event in content), encoding="utf-8")
        else:
            path.write_text(json.dumps(content, indent=2), encoding="utf-8")
        return path

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as db:
            rows = db.execute(sql, params).fetchall()
        db.close()
        return rows

    def tasks(self) -> dict[str, dict[str, Any]]:
        with sqlite3.connect(self.db_path) as db:
            db.row_factory = sqlite3.Row
            found = {row["id"]: dict(row) for row in db.execute("SELECT * FROM tasks")}
        db.close()
        return found

    def outcomes(self) -> list[tuple[str | None, str | None, str]]:
        """(event, task id, outcome) of every task_events row, in the order they were recorded."""
        return [
            (e, t, o)
            for e, t, o in self.query("SELECT event, task_id, outcome FROM task_events ORDER BY seq")
        ]

    def names(self, folder: str = "") -> list[str]:
        where = self.folder / folder if folder else self.folder
        return sorted(path.name for path in where.iterdir() if path.is_file()) if where.is_dir() else []
