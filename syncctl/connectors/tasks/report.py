"""`syncctl report tasks`: each user's tasks opened, completed and still open, for a period `[start, end)`.

The JSON of one user is exactly CONTRACT.md's (`rules.user_report`); the other formats get the same
entries as one flat table (`userId`, `list`, `id`, `content`, `createdOrCompletedAt`). Reports are built
lazily, one user at a time, so a run over thousands of users holds one user's tasks at once: a report is
computed when its file is written and only the latest one is kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from syncctl.connectors.tasks.rules import user_report
from syncctl.connectors.tasks.store import report_tasks, report_users
from syncctl.core.db import Database
from syncctl.reports.output import Report, Table, period_file_name
from syncctl.reports.periods import Period

PREFIX = "task_report"
LISTS = ("newIncompleteTasks", "completedTasks", "oldIncompleteTasks")
COLUMNS = ["userId", "list", "id", "content", "createdOrCompletedAt"]


class TaskReports:
    """The reports of one period, read from the file on demand."""

    def __init__(self, db: Database, period: Period) -> None:
        self.db = db
        self.period = period
        self._latest: tuple[str, dict[str, Any]] | None = None

    def users(self) -> list[str]:
        return report_users(self.db)

    def document(self, user_id: str) -> dict[str, Any]:
        """One user's report as CONTRACT.md shapes it (the latest one is kept: a writer reads it twice)."""
        if self._latest is not None and self._latest[0] == user_id:
            return self._latest[1]
        start, end = self.period.start, self.period.end
        document = user_report(user_id, start, end, report_tasks(self.db, user_id, start, end))
        self._latest = (user_id, document)
        return document

    def rows(self, user_id: str) -> Iterator[tuple[str, str, str, str, str]]:
        document = self.document(user_id)
        for name in LISTS:
            for entry in document[name]:
                yield user_id, name, entry["id"], entry["content"], entry["createdOrCompletedAt"]

    def per_user(self) -> list[tuple[str, Report]]:
        """One report per user, for one file each; nothing is computed until a file is written."""
        return [
            (
                user,
                Report(
                    title=f"Tasks of user {user}",
                    tables=[Table("tasks", COLUMNS, self.rows(user))],
                    meta={"userId": user, **self.period.iso()},
                    document=UserDocument(self, user),
                ),
            )
            for user in self.users()
        ]

    def combined(self) -> Report:
        """Every user in one report: JSON is an array of the per-user documents, other formats one table."""
        users = self.users()
        return Report(
            title="Tasks per user",
            tables=[Table("tasks", COLUMNS, (row for user in users for row in self.rows(user)))],
            meta={**self.period.iso(), "users": len(users)},
            document=(UserDocument(self, user) for user in users),
        )

    def file_name(self, user_id: str, fmt: str) -> str:
        """`task_report_{userId}_{start}_{end}.json` (another extension for another format)."""
        return period_file_name(PREFIX, user_id, self.period, fmt)


class UserDocument(Mapping[str, Any]):
    """A user's report document, computed when the JSON writer first looks inside it."""

    def __init__(self, reports: TaskReports, user_id: str) -> None:
        self.reports = reports
        self.user_id = user_id

    def __getitem__(self, key: str) -> Any:
        return self.reports.document(self.user_id)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.reports.document(self.user_id))

    def __len__(self) -> int:
        return len(self.reports.document(self.user_id))
