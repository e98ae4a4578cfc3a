from __future__ import annotations

import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from syncctl.connectors.grid.fake import FakeGrid
from tests.connectors.grid.world import ACCOUNTS, GridWorld, make_world

COMPONENTS = 10
PER_COMPONENT = 900  # 300 ticks of 15 minutes: a little over three days


def new_fake(**options: Any) -> FakeGrid:
    """The same data every time (a seeded fake): a mirror synced from one is a mirror of any other."""
    return FakeGrid(
        components=COMPONENTS, measurements_per_component=PER_COMPONENT, seed=7, accounts=ACCOUNTS, **options
    )


@pytest.fixture
def build_grid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., GridWorld]]:
    """Make a grid world around a given fake (or a fresh one); every server is stopped afterwards."""
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's folder
    made: list[Generator[GridWorld, None, None]] = []

    def make(fake: FakeGrid | None = None) -> GridWorld:
        worlds = make_world(tmp_path, fake or new_fake())
        made.append(worlds)
        return next(worlds)

    yield make
    for worlds in made:
        worlds.close()


@pytest.fixture
def grid(build_grid: Callable[..., GridWorld]) -> GridWorld:
    """Ten components (one of each type first) with 900 measurements each, an empty mirror, the CLI."""
    world: GridWorld = build_grid()
    return world


@pytest.fixture(scope="session")
def synced_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mirror after a first full sync of the seeded fake, made once per session and copied per test."""
    folder = tmp_path_factory.mktemp("grid-synced")
    worlds = make_world(folder, new_fake())
    world = next(worlds)
    try:
        world.sync()
    finally:
        worlds.close()
    return world.db_path


@pytest.fixture
def synced(build_grid: Callable[..., GridWorld], synced_file: Path, tmp_path: Path) -> GridWorld:
    """A world whose mirror has had its first full sync (a copy of `synced_file`, with a fresh fake)."""
    for file in synced_file.parent.glob(f"{synced_file.name}*"):
        shutil.copy(file, tmp_path / file.name.replace(synced_file.name, "mirror.db"))
    world: GridWorld = build_grid()
    assert world.db_path == tmp_path / "mirror.db"
    return world
