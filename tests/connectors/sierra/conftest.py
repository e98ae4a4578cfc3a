from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.connectors.sierra.world import SierraWorld, sierra_world


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., SierraWorld]]:
    """Make a Sierra world with its own fake options (items=, total_counts_page=, ...); all are stopped."""
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's folder
    with ExitStack() as stack:

        def make(items: int = 300, **options: Any) -> SierraWorld:
            return stack.enter_context(sierra_world(tmp_path, items, **options))

        yield make


@pytest.fixture
def world(build: Callable[..., SierraWorld]) -> SierraWorld:
    """The fake Sierra with 300 items, an empty mirror, pages of 100, and the CLI wired to both."""
    return build()
