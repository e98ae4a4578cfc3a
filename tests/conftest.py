from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cases_store import Store
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
    opened = Store.open_at(db_path)
    yield opened
    opened.close()


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., World]]:
    """Make a world with its own fake options (sleep=, key=, clock=...); every one is stopped afterwards."""
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's folder
    made: list[Generator[World, None, None]] = []

    def make(cases: int = 300, **fake_options: Any) -> World:
        worlds = make_world(tmp_path, cases, **fake_options)
        made.append(worlds)
        world: World = next(worlds)
        return world

    yield make
    for worlds in made:
        worlds.close()


@pytest.fixture
def world(build: Callable[..., World]) -> World:
    """The bundled fake with 300 cases on a free loopback port, an empty mirror, and the CLI wired to both."""
    world: World = build()
    return world
