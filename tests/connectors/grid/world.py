"""The grid's end-to-end world: a `FakeGrid` on a loopback port, one SQLite file, the real CLI in-process,
and an independent computation of the KPI report from the fake's own data."""

from __future__ import annotations

import datetime
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import typer
from typer.testing import CliRunner

from syncctl.cli import app, root
from syncctl.connectors.grid.commands import REPORTS
from syncctl.connectors.grid.fake import FakeGrid, FakeGridServer
from tests.e2e import Outcome

WRITES = ("POST", "PUT", "DELETE")
# Passwords unlike any word of a message: a password is scrubbed wherever it appears, and the fake's
# default accounts (user/user, manager/manager) would scrub the scope names out of the messages tested.
ACCOUNTS = {"ada": ("ada-reads-only", "user"), "max": ("max-may-write", "user manager")}
ROLES = {"user": "ada", "manager": "max"}


def cli() -> typer.Typer:
    """The real app once `syncctl report` is mounted there; until then the same root with the grid's reports
    mounted beside its commands (the lead mounts `REPORTS` as `syncctl report kpi`)."""
    if any(group.name == "report" for group in app.registered_groups):
        return app
    test_app = typer.Typer(pretty_exceptions_enable=False)
    test_app.callback()(root)
    test_app.registered_commands.extend(app.registered_commands)
    test_app.registered_groups.extend(app.registered_groups)
    reports = typer.Typer()
    for name, command in REPORTS:
        reports.command(name)(command)
    test_app.add_typer(reports, name="report")
    return test_app


CLI = cli()
# Typer's CliRunner builds the whole click command tree on every invoke (0.15 s for syncctl's 170 commands);
# the tree never changes, so it is built once and handed to the runner.
COMMAND = typer.main.get_command(CLI)


def invoke(args: list[str], env: dict[str, str]) -> Outcome:
    with mock.patch("typer.testing._get_command", lambda app: COMMAND):
        result = CliRunner().invoke(CLI, args, env=env, catch_exceptions=False)
    return Outcome(result.exit_code, result.stdout, result.stderr)


@dataclass
class GridWorld:
    fake: FakeGrid
    url: str
    db_path: Path
    env: dict[str, str]

    def run(self, *args: str, user: str = "manager", **env: str) -> Outcome:
        """The CLI as the account of a role (`user` or `manager`)."""
        name = ROLES[user]
        account = {"GRID_API_USER": name, "GRID_API_PASSWORD": ACCOUNTS[name][0]}
        return invoke(list(args), {**self.env, **account, **env})

    def sync(self, *args: str, user: str = "manager", **env: str) -> dict[str, Any]:
        outcome = self.run("sync", "grid", "--json", *args, user=user, **env)
        assert outcome.exit_code == 0, outcome.stderr
        data: dict[str, Any] = outcome.json()
        return data

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.db_path)) as db:
            return db.execute(sql, params).fetchall()

    def edit(self, sql: str, *params: Any) -> None:
        """Change the mirror as any other SQLite client would."""
        with closing(sqlite3.connect(self.db_path)) as db, db:
            db.execute(sql, params)

    def kpi(self, start: str, end: str, *args: str) -> dict[str, Any]:
        outcome = self.run("report", "kpi", "--start", start, "--end", end, "--format", "json", *args)
        assert outcome.exit_code == 0, outcome.stderr
        data: dict[str, Any] = outcome.json()
        return data

    def writes(self) -> list[tuple[str, str]]:
        """The API requests that could change the grid (a token request is not one)."""
        return [(m, p) for m, p in self.fake.requests if m in WRITES and not p.startswith("/api/token")]


def make_world(tmp_path: Path, fake: FakeGrid) -> Generator[GridWorld, None, None]:
    with FakeGridServer(fake) as server:
        db_path = tmp_path / "mirror.db"
        env = {
            "GRID_API_URI": server.url,
            "SYNCCTL_DB": str(db_path),
            "SYNCCTL_MAX_REQUESTS_PER_MINUTE": "0",
            "SYNCCTL_RETRY_BACKOFF": "0",
            "SYNCCTL_RETRY_ATTEMPTS": "3",
            "SYNCCTL_PAGE_SIZE": "1000",
        }
        yield GridWorld(fake=fake, url=server.url, db_path=db_path, env=env)


# -- the KPI report computed without syncctl ---------------------------------------------------------------


def parse(text: str) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def expected_kpi(fake: FakeGrid, start: str, end: str) -> dict[str, Any]:
    """The four sections straight from the fake's components and measurements, in plain Python."""
    low, high = parse(start), parse(end)
    components = {c["id"]: c for c in fake.components()}
    kinds = Counter(c["type"] for c in components.values())
    capacity: dict[float, list[float]] = defaultdict(list)
    length: dict[float, list[float]] = defaultdict(list)
    for c in components.values():
        if c["type"] == "transformer":
            capacity[c["voltage_kv"]].append(c["capacity_mva"])
        elif c["type"] == "line":
            length[c["voltage_kv"]].append(c["length_km"])
    sums: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    for m in fake.measurements():
        moment = datetime.datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00"))
        component = components.get(m["component_id"])
        if component is not None and low <= moment < high:
            entry = sums[(moment.date().isoformat(), component["type"], m["type"])]
            entry[0] += m["value"]
            entry[1] += 1
    return {
        "components_by_type": [{"component_type": k, "count": n} for k, n in sorted(kinds.items())],
        "transformer_capacity_by_voltage": [
            {"voltage_kv": kv, "total_capacity_mva": sum(v), "count": len(v)}
            for kv, v in sorted(capacity.items())
        ],
        "line_length_by_voltage": [
            {"voltage_kv": kv, "total_length_km": sum(v), "count": len(v)} for kv, v in sorted(length.items())
        ],
        "daily_averages": [
            {
                "day": d,
                "component_type": c,
                "measurement_type": t,
                "average": total / count,
                "count": int(count),
            }
            for (d, c, t), (total, count) in sorted(sums.items())
        ],
    }


def assert_kpi_matches(report: dict[str, Any], fake: FakeGrid, start: str, end: str) -> None:
    """Every row equal; sums of floats compared to a relative 1e-9 (they are added in another order)."""
    expected = expected_kpi(fake, start, end)
    assert list(report) == ["period", *expected]
    assert report["period"] == {"start": parse(start).astimezone(datetime.UTC).isoformat(),
                                "end": parse(end).astimezone(datetime.UTC).isoformat()}  # fmt: skip
    for section, rows in expected.items():
        assert len(report[section]) == len(rows), section
        for got, want in zip(report[section], rows, strict=True):
            assert got == {
                k: pytest.approx(v, rel=1e-9) if isinstance(v, float) else v for k, v in want.items()
            }


def daily_sums_are_exact(world: GridWorld) -> None:
    """The trigger-kept sums equal a fresh GROUP BY over the measurements that have a number (and that were
    not deleted remotely, when the table keeps such rows)."""
    kept = world.query(
        "SELECT day, component_id, type, total, count FROM _syncctl_grid_daily ORDER BY 1, 2, 3"
    )
    columns = {row[1] for row in world.query("PRAGMA table_info(grid_measurements)")}
    live = " AND _deleted_at IS NULL" if "_deleted_at" in columns else ""
    fresh = world.query(
        "SELECT substr(timestamp, 1, 10), component_id, type, sum(value), count(*) FROM grid_measurements"
        f" WHERE typeof(value) IN ('integer', 'real'){live} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
    assert [(*row[:3], row[4]) for row in kept] == [(*row[:3], row[4]) for row in fresh]
    for a, b in zip(kept, fresh, strict=True):
        assert abs(a[3] - b[3]) <= 1e-9 * max(1.0, abs(b[3])), (a, b)
