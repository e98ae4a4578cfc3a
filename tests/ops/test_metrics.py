"""`sync --metrics-file`: Prometheus text for node_exporter's textfile collector, per source, atomically."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from syncctl.core.db import Database
from syncctl.core.errors import UsageError
from syncctl.ops import metrics
from syncctl.sources import registry
from tests.e2e import World

CASES = 30
ROWS = ("fetched", "inserted", "updated", "deleted", "unchanged", "pushed", "push_failed", "conflicts")


@pytest.fixture
def world(build: Callable[..., World]) -> World:
    small: World = build(CASES)
    return small


Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parse(text: str) -> Samples:
    """{metric: {labels: value}}, through the Prometheus client's own parser (which refuses bad text)."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge" and family.documentation, family.name
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def per_source(samples: Samples, name: str, source: str = "intempus", **labels: str) -> float:
    return samples[name][tuple(sorted({"source": source, **labels}.items()))]


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(key)[label]: value for key, value in samples[name].items()}


def leftovers(folder: Path, target: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{target.name}."))


def test_metrics_sync_writes_last_run_status_duration_rows_pending_and_cursor(
    world: World, tmp_path: Path
) -> None:
    target = tmp_path / "textfile" / "syncctl.prom"
    target.parent.mkdir()

    outcome = world.run("sync", "--json", "--metrics-file", str(target))

    assert outcome.exit_code == 0, outcome.stderr
    result = outcome.json()
    samples = parse(target.read_text(encoding="utf-8"))
    assert abs(per_source(samples, "syncctl_last_run_timestamp_seconds") - time.time()) < 120
    assert per_source(samples, "syncctl_last_success_timestamp_seconds") == per_source(
        samples, "syncctl_last_run_timestamp_seconds"
    )
    assert by_label(samples, "syncctl_last_run_status", "status") == {
        "ok": 1,
        "failed": 0,
        "interrupted": 0,
        "refused": 0,
    }
    assert per_source(samples, "syncctl_last_run_duration_seconds") == pytest.approx(result["duration_s"])
    assert by_label(samples, "syncctl_last_run_rows", "kind") == {kind: result[kind] for kind in ROWS}
    assert result["fetched"] == result["inserted"] == CASES
    assert per_source(samples, "syncctl_pending_changes") == 0
    assert per_source(samples, "syncctl_cursor") == result["cursor"]
    assert {dict(k)["source"] for series in samples.values() for k in series} == {"intempus"}
    assert sorted(p.name for p in target.parent.iterdir()) == ["syncctl.prom"]  # no temp file left
    assert target.stat().st_mode & 0o777 == 0o644  # node_exporter runs as another user


def test_metrics_file_from_the_environment_is_replaced_whole_after_each_run(
    world: World, tmp_path: Path
) -> None:
    target = tmp_path / "syncctl.prom"
    world.env["SYNCCTL_METRICS_FILE"] = str(target)
    world.sync()
    first = target.stat().st_ino
    world.edit("UPDATE cases SET name = 'edited locally' WHERE id = ?", min(world.fake.cases))

    world.sync("--pull-only")

    samples = parse(target.read_text(encoding="utf-8"))
    assert target.stat().st_ino != first  # renamed into place, never rewritten where a scrape could read it
    assert per_source(samples, "syncctl_pending_changes") == 1
    assert by_label(samples, "syncctl_last_run_rows", "kind")["fetched"] == 0
    assert leftovers(tmp_path, target) == []


def test_metrics_failed_run_is_reported_failed(world: World, tmp_path: Path) -> None:
    target = tmp_path / "syncctl.prom"
    world.sync()

    outcome = world.run("sync", "--metrics-file", str(target), INTEMPUS_API_KEY="wrong-key-4Zt")

    assert outcome.exit_code == 1
    samples = parse(target.read_text(encoding="utf-8"))
    assert by_label(samples, "syncctl_last_run_status", "status")["failed"] == 1
    assert "wrong-key-4Zt" not in target.read_text(encoding="utf-8")


def test_metrics_last_success_survives_a_failed_run(world: World, tmp_path: Path) -> None:
    target = tmp_path / "syncctl.prom"
    world.sync()
    world.run("sync", "--metrics-file", str(target), INTEMPUS_API_KEY="wrong-key-4Zt")

    samples = parse(target.read_text(encoding="utf-8"))

    assert "syncctl_last_success_timestamp_seconds" in samples


def test_metrics_collect_carries_the_last_success_past_a_failed_run(world: World) -> None:
    world.sync()
    world.run("sync", INTEMPUS_API_KEY="wrong-key-4Zt")
    intempus = registry().get("intempus")
    assert intempus is not None
    db = Database.open(world.db_path, read_only=True)
    try:
        reports = metrics.collect(db, [intempus])
    finally:
        db.close()

    samples = parse(metrics.render(reports))

    assert by_label(samples, "syncctl_last_run_status", "status")["failed"] == 1
    success = per_source(samples, "syncctl_last_success_timestamp_seconds")
    assert 0 < success <= per_source(samples, "syncctl_last_run_timestamp_seconds")


@pytest.mark.parametrize("where", ["missing-folder/syncctl.prom", "a-folder"])
def test_metrics_unwritable_file_is_one_line_and_exit_2(world: World, tmp_path: Path, where: str) -> None:
    (tmp_path / "a-folder").mkdir()
    target = tmp_path / where

    outcome = world.run("sync", "--metrics-file", str(target))

    assert outcome.exit_code == 2
    [line] = outcome.stderr.splitlines()
    assert line.startswith(f"syncctl: error: cannot write the metrics file {target}: ")
    assert leftovers(tmp_path, target) == []


# -- render, without a database --------------------------------------------------------------------------


def report(**fields: Any) -> dict[str, Any]:
    last = {"status": "ok", "finished_at": "2026-01-02T03:04:05+00:00", "duration_s": 1.5, "fetched": 7}
    return {"source": "intempus", "last_run": last, "runs": [last], "pending": 2, "cursor": 42, **fields}


def test_metrics_render_adds_fixed_labels_to_every_series() -> None:
    samples = parse(metrics.render([report()], labels={"tenant": "acme"}))

    keys = [dict(key) for series in samples.values() for key in series]
    assert keys and all(key["tenant"] == "acme" and key["source"] == "intempus" for key in keys)


@pytest.mark.parametrize("name", ["1tenant", "ten-ant", "__name__", "source"])
def test_metrics_render_refuses_a_bad_label_name(name: str) -> None:
    with pytest.raises(UsageError, match="cannot be a metrics label name"):
        metrics.render([report()], labels={name: "x"})


def test_metrics_render_escapes_label_values() -> None:
    odd = 'ac"me\\ one\ntwo'

    samples = parse(metrics.render([report()], labels={"tenant": odd}))

    assert {dict(key)["tenant"] for key in samples["syncctl_pending_changes"]} == {odd}


def test_metrics_render_reads_a_time_without_offset_as_utc() -> None:
    naive = report(last_run={"status": "ok", "finished_at": "2026-01-02T03:04:05", "duration_s": 1})

    samples = parse(metrics.render([naive]))

    assert per_source(samples, "syncctl_last_run_timestamp_seconds") == 1767323045  # 2026-01-02T03:04:05Z


def test_metrics_render_of_a_source_that_never_ran_has_only_pending_changes() -> None:
    samples = parse(metrics.render([{"source": "grid", "last_run": None, "runs": [], "pending": 0}]))

    assert samples == {"syncctl_pending_changes": {(("source", "grid"),): 0}}


def test_metrics_write_leaves_no_temp_file_when_it_fails(tmp_path: Path) -> None:
    target = tmp_path / "a-folder"
    target.mkdir()

    with pytest.raises(UsageError, match="cannot write the metrics file"):
        metrics.write(target, "x 1\n")

    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-folder"]
