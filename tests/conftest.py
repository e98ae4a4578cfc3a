from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncctl.store import Store
from tests.e2e import World, make_world

FIXTURES = Path(__file__).parent / "fixtures" / "intempus"


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def case_fixture() -> dict[str, Any]:
    data: dict[str, Any] = load_fixture("case_9611850.json")
    return data


@pytest.fixture
def list_page_fixture() -> dict[str, Any]:
    data: dict[str, Any] = load_fixture("case_list_page.json")
    return data


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "mirror.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    opened = Store.open(db_path)
    yield opened
    opened.close()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The bundled fake with 300 cases on a free loopback port, an empty mirror, and the CLI wired to both."""
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's folder
    yield from make_world(tmp_path, cases=300)
