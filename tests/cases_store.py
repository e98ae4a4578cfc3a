"""The Intempus cases mirror as the core's pieces make it (Database, MirrorTable, RunLog, State), under the
names the 0.1 tests were written against, so those tests keep their assertions unchanged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from syncctl.connectors.intempus.connector import CASES
from syncctl.core import status
from syncctl.core.db import Database
from syncctl.core.mirror import MirrorTable
from syncctl.core.runs import RunLog, State


class Store(MirrorTable):
    def __init__(self, db: Database) -> None:
        super().__init__(db, CASES)
        self.path = db.path
        self._runs = RunLog(db, "intempus")
        self._state = State(db, "intempus")

    @classmethod
    def open_at(cls, path: Path, *, create: bool = True) -> Store:
        db = Database.open(path, read_only=not create)
        store = cls(db)
        opened = MirrorTable.open(db, CASES)
        store.__dict__.update({k: v for k, v in opened.__dict__.items() if k not in ("db", "spec")})
        return store

    def close(self) -> None:
        self.db.close()

    def case_count(self) -> int:
        return self.count()

    def unseen_ids(self) -> list[Any]:
        return self.unseen_keys()

    def conflicts(self, limit: int = 50) -> list[dict[str, Any]]:
        return status.conflicts(self.db, limit)

    def start_run(self, mode: str) -> int:
        return self._runs.start(mode)

    def finish_run(
        self, run_id: int, *, status: str, counts: Mapping[str, int], duration_s: float, error: str | None
    ) -> None:
        self._runs.finish(
            run_id, status=status, mode="full", counts=counts, duration_s=duration_s, error=error
        )

    def runs(self, limit: int = 10) -> list[dict[str, Any]]:
        return self._runs.runs(limit)

    def get_cursor(self) -> Any:
        return self._state.get("cursor:cases")

    def set_cursor(self, cursor: int | None) -> None:
        self._state.set("cursor:cases", cursor)

    def apply_deletes(self, ids: Iterable[int]) -> None:
        raise NotImplementedError
