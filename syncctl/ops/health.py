"""`syncctl health`: is each source syncing, recently and cleanly? One line per problem; Nagios exit codes.

Problems, by how bad they are:
- CRITICAL: the source never synced successfully; its last successful sync is older than twice
  `--max-age`; or its last `--failures` runs all failed.
- WARNING: the last successful sync is older than `--max-age`; local changes have waited longer than
  `--max-age` to be pushed; files were rejected and are still waiting to be fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncctl.core.connector import Connector
from syncctl.core.db import Database
from syncctl.core.runs import RunLog
from syncctl.core.status import source_status
from syncctl.ops.durations import format_duration

OK, WARNING, CRITICAL = 0, 1, 2
LEVELS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}


@dataclass(frozen=True)
class Problem:
    source: str
    level: int
    text: str

    def line(self) -> str:
        return f"{LEVELS[self.level]}: {self.source}: {self.text}"


def _age(text: str | None, now: datetime) -> float | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:  # a time without an offset is UTC (CONTRACT.md), never a TypeError
        when = when.replace(tzinfo=UTC)
    return (now - when).total_seconds()


def check_source(
    db: Database | None, connector: Connector, *, max_age_s: float, failures: int, now: datetime
) -> list[Problem]:
    name = connector.name
    if db is None or not db.bookkeeping_ready():
        return [Problem(name, CRITICAL, "has never synced (no database yet)")]
    runs = RunLog(db, name)
    problems: list[Problem] = []
    success = runs.last_success()
    age = _age(success["finished_at"] if success else None, now)
    if age is None:
        problems.append(Problem(name, CRITICAL, "has never synced successfully"))
    elif age > 2 * max_age_s:
        problems.append(Problem(name, CRITICAL, _stale(age, max_age_s)))
    elif age > max_age_s:
        problems.append(Problem(name, WARNING, _stale(age, max_age_s)))
    # One run of a source may be under way (the lock allows no more): look one further back past it.
    recent = [r for r in runs.runs(failures + 1) if r["status"] != "running"][:failures]
    if len(recent) >= failures and all(r["status"] == "failed" for r in recent):
        last_error = recent[0]["error"] or "no error recorded"
        problems.append(Problem(name, CRITICAL, f"the last {failures} runs failed: {last_error}"))
    report = source_status(db, connector, limit=1)
    oldest = min((c["changed_at"] for c in report["pending_changes"]), default=None)
    waited = _age(oldest, now)
    if waited is not None and waited > max_age_s:
        problems.append(
            Problem(
                name,
                WARNING,
                f"{report['pending']} local change(s) waiting, the oldest for"
                f" {format_duration(waited)}; see `syncctl status {name}`",
            )
        )
    details: dict[str, Any] = report.get("details") or {}
    rejected = details.get("rejected_files")
    if isinstance(rejected, int) and rejected:
        problems.append(Problem(name, WARNING, f"{rejected} rejected file(s); see `syncctl status {name}`"))
    return problems


def _stale(age: float, max_age_s: float) -> str:
    return f"last successful sync {format_duration(age)} ago (limit {format_duration(max_age_s)})"


def now_utc() -> datetime:
    return datetime.now(UTC)
