from __future__ import annotations

import random
from pathlib import Path

import pytest

from syncctl.connectors.tasks import sorting
from syncctl.connectors.tasks.sorting import ExternalSorter, merge_runs


def items(count: int, seed: int) -> list[tuple[int, str, int, str | None]]:
    rng = random.Random(seed)
    return [
        (rng.randrange(2), f"2025-04-{rng.randrange(1, 4):02d}", n, rng.choice([None, "x", "ø"]))
        for n in range(count)
    ]


def test_sorting_runs_merge_to_the_same_order_as_one_sort(tmp_path: Path) -> None:
    given = items(1000, 3)
    sorter = ExternalSorter(tmp_path, run_size=64)
    for item in given:
        sorter.add(item)

    runs = sorter.finish()

    assert len(runs) == -(-1000 // 64) and all(run.parent == tmp_path for run in runs)
    assert list(merge_runs(runs, tmp_path)) == sorted(given)
    assert list(tmp_path.iterdir()) == []  # each run is removed once it is open


def test_sorting_many_runs_are_merged_in_rounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sorting, "MAX_FAN_IN", 3)
    given = items(200, 4)
    sorter = ExternalSorter(tmp_path, run_size=7)
    for item in given:
        sorter.add(item)
    assert list(merge_runs(sorter.finish(), tmp_path)) == sorted(given)
    assert list(tmp_path.iterdir()) == []


def test_sorting_an_abandoned_merge_leaves_no_file(tmp_path: Path) -> None:
    sorter = ExternalSorter(tmp_path, run_size=4)
    for item in items(20, 5):
        sorter.add(item)
    merged = merge_runs(sorter.finish(), tmp_path)
    next(merged)
    merged.close()
    assert list(tmp_path.iterdir()) == []


def test_sorting_nothing_added_is_no_run(tmp_path: Path) -> None:
    assert ExternalSorter(tmp_path).finish() == []
    assert list(merge_runs([], tmp_path)) == []
