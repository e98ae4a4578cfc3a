"""The `inbox` fixture: an empty inbox folder and SQLite file, and the CLI wired to both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.connectors.tasks.harness import Inbox


@pytest.fixture
def inbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's folder
    folder = tmp_path / "inbox"
    folder.mkdir()
    yield Inbox(
        folder,
        tmp_path / "syncctl.db",
        {"TASKS_INBOX_DIR": str(folder), "SYNCCTL_DB": str(tmp_path / "syncctl.db")},
    )
    if folder.exists():
        folder.chmod(0o700)  # a test may have taken permissions away; let pytest clean up
