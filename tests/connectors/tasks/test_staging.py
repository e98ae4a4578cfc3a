from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from syncctl.connectors.tasks import staging
from syncctl.connectors.tasks.sorting import merge_runs
from syncctl.connectors.tasks.staging import FileResult, groups, stage_all, stage_group, worker_count
from tests.connectors.tasks.harness import EVENTS, variant


def write(folder: Path, name: str, events: Sequence[object]) -> Path:
    path = folder / name
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def test_staging_a_group_reports_each_file_and_stages_every_event_in_order(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    late = write(tmp_path, "late.jsonl", [EVENTS["deleted"], EVENTS["invalid"], {"event": "created"}])
    early = write(tmp_path, "early.jsonl", [EVENTS["created"], EVENTS["updated_complete"]])
    broken = tmp_path / "broken.json"
    broken.write_text('[{"event": "created"}')

    results, written = stage_group(
        [(0, str(late)), (1, str(early)), (2, str(broken)), (3, str(tmp_path / "gone.json"))], str(runs), 2
    )

    assert results == [
        FileResult(0, 3),
        FileResult(1, 2),
        FileResult(2, problem="is not valid JSON at line 1, column 22: the file ends inside the array"),
        FileResult(3, vanished=True),
    ]
    merged = list(merge_runs([Path(p) for p in written], runs))
    # (no time?, time, file, position, event, ...): by time, ties by file then position; no time last.
    assert [item[:5] for item in merged] == [
        (0, "2025-04-01T18:23:45+00:00", 1, 0, "created"),
        (0, "2025-04-01T19:00:00+00:00", 1, 1, "updated"),
        (0, "2025-04-01T20:00:00+00:00", 0, 0, "deleted"),
        (0, "2025-04-01T20:00:00+00:00", 0, 1, "archived"),
        (1, "", 0, 2, "created"),
        (1, "", 2, 0, "created"),  # what the broken file staged before its error: the ingest drops it
    ]
    assert merged[3][9] == 'unknown event "archived" (expected created, updated or deleted)'
    assert json.loads(merged[0][11]) == EVENTS["created"] and len(merged[0][10]) == 64


def test_staging_groups_are_consecutive_files_of_about_a_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging, "GROUP_BYTES", 100)
    paths = []
    for number, size in enumerate([10, 60, 50, 300, 5, 5]):
        path = tmp_path / f"{number}.json"
        path.write_bytes(b" " * size)
        paths.append(path)
    assert [[n for n, _ in group] for group in groups(paths)] == [[0, 1, 2], [3], [4, 5]]


def test_staging_worker_count_follows_the_setting_and_the_input_size(tmp_path: Path) -> None:
    small = tmp_path / "small.json"
    small.write_text("[]")
    assert worker_count([small], None) == 1
    assert worker_count([small], 3) == 3


def test_staging_in_worker_processes_gives_what_one_process_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(9)
    paths = []
    for number in range(6):
        events = [
            variant(
                "created", f"2025-04-0{rng.randrange(1, 4)}T{rng.randrange(24):02d}:00:00+02:00", id=str(n)
            )
            for n in range(40)
        ]
        paths.append(write(tmp_path, f"{number}.jsonl", events))
    monkeypatch.setattr(staging, "GROUP_BYTES", 1)  # one group per file

    def staged(workers: int) -> tuple[list[FileResult], list[tuple[object, ...]]]:
        folder = tmp_path / f"runs-{workers}"
        folder.mkdir(exist_ok=True)
        results: list[FileResult] = []
        runs: list[Path] = []
        for found, written in stage_all(groups(paths), folder, 25, workers):
            results.extend(found)
            runs.extend(Path(p) for p in written)
        return results, list(merge_runs(runs, folder))

    assert staged(2) == staged(1)
    assert len(staged(1)[1]) == 240
