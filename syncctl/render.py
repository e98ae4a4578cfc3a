"""Everything syncctl shows a person: summaries, tables, progress. Only the CLI layer calls it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from syncctl.core.engine import SyncResult
from syncctl.core.sanitize import strip_control

SUMMARY_KEYS = (
    "fetched",
    "inserted",
    "updated",
    "deleted",
    "unchanged",
    "pushed",
    "push_failed",
    "conflicts",
)
# Short column headers, so the tables fit an 80-column terminal.
HEADERS = {
    "fetched": "fetch",
    "inserted": "new",
    "updated": "upd",
    "deleted": "del",
    "unchanged": "same",
    "pushed": "push",
    "push_failed": "fail",
    "conflicts": "confl",
}


def finite(data: Any) -> Any:
    """JSON-safe: a float NaN or infinity (which SQLite can hold) becomes null, never bare `Infinity`."""
    if isinstance(data, float) and (data != data or data in (float("inf"), float("-inf"))):
        return None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data


def json_line(data: Any) -> str:
    try:
        return json.dumps(data, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(finite(data), ensure_ascii=False, default=str, allow_nan=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json_line(data) + "\n")
    sys.stdout.flush()


def sync_summary(result: SyncResult) -> str:
    counts = ", ".join(f"{name.replace('_', ' ')} {getattr(result, name)}" for name in SUMMARY_KEYS)
    skipped = f", skipped {result.skipped}" if result.skipped else ""
    return (
        f"sync {result.status} ({result.mode}): {counts}{skipped}"
        f" in {result.duration_s:.1f}s [{result.source}]"
    )


def sync_table(result: SyncResult) -> Table:
    table = Table(title=f"sync {result.source} {result.mode}: {result.status}", box=box.SIMPLE_HEAD)
    for name in SUMMARY_KEYS:
        table.add_column(HEADERS[name], justify="right")
    table.add_column("secs", justify="right")
    table.add_row(*(str(getattr(result, n)) for n in SUMMARY_KEYS), f"{result.duration_s:.2f}")
    return table


@contextmanager
def progress_reporter(console: Console, *, enabled: bool = True) -> Iterator[Any]:
    """A progress callback for the engine: a live bar on a terminal, nothing otherwise."""
    if not (enabled and console.is_terminal):
        yield lambda phase, done, total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def report(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                label = phase.replace("pull ", "pulling ").replace("push ", "pushing ")
                tasks[phase] = bar.add_task(label, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield report


def status_summary_lines(status: Mapping[str, Any]) -> list[str]:
    """The mirror's state and its pending changes; the runs follow as lines or as a table."""
    lines = [f"source: {status['source']}", f"database: {status['database']}"]
    lines += [f"{table}: {count}" for table, count in status["tables"].items()]
    if status.get("has_cursor", True):
        lines.append(
            f"cursor: {status['cursor'] if status['cursor'] is not None else '(none: next sync is full)'}"
        )
    lines.append(f"pending local changes: {status['pending']}")
    for change in status["pending_changes"]:
        error = f" - last error: {change['last_error']}" if change["last_error"] else ""
        lines.append(
            f"  {change['op']} {change['table']} {change['id']} ({change['attempts']} failed attempts){error}"
        )
    for name, value in status.get("details", {}).items():
        label = name.replace("_", " ")
        if isinstance(value, list):
            lines.append(f"{label}:" if value else f"{label}: none")
            lines += [f"  {_detail(item)}" for item in value]
        else:
            lines.append(f"{label}: {_detail(value)}")
    return [strip_control(line) for line in lines]


def _detail(value: Any) -> str:
    if isinstance(value, dict):
        return " - ".join(str(v) for v in value.values())
    return str(value)


def status_lines(status: Mapping[str, Any]) -> list[str]:
    lines = status_summary_lines(status)
    lines.append("last runs:" if status["runs"] else "last runs: none yet")
    for run in status["runs"]:
        counts = " ".join(f"{name}={run[name]}" for name in SUMMARY_KEYS)
        error = f" error: {run['error']}" if run["error"] else ""
        lines.append(f"  #{run['id']} {run['started_at']} {run['mode']} {run['status']} {counts}{error}")
    return lines


def status_table(status: Mapping[str, Any]) -> Table:
    table = Table(
        title=f"last runs of {status['database']}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        show_edge=False,
    )
    errors = any(run["error"] for run in status["runs"])
    for name in ("run", "started", "mode", "status"):
        table.add_column(name, no_wrap=True, min_width=len(name))
    for name in SUMMARY_KEYS:
        table.add_column(HEADERS[name], justify="right", no_wrap=True, min_width=len(HEADERS[name]))
    table.add_column("secs", justify="right", no_wrap=True, min_width=5)
    if errors:
        table.add_column("error", overflow="fold")
    for run in status["runs"]:
        table.add_row(
            str(run["id"]),
            run["started_at"][11:16],
            run["mode"][:4],
            run["status"],
            *(str(run[name]) for name in SUMMARY_KEYS),
            f"{run['duration_s'] or 0:.1f}",
            *([run["error"] or ""] if errors else []),
        )
    return table


def case_lines(case: Mapping[str, Any]) -> list[str]:
    """One line per field; a name or value with newlines or control characters cannot break the lines."""
    names = {name: strip_control(name) for name in case}
    width = max((len(name) for name in names.values()), default=0)
    return [f"{names[name].ljust(width)}  {strip_control(json_line(value))}" for name, value in case.items()]


def conflict_lines(conflicts: list[dict[str, Any]]) -> list[str]:
    if not conflicts:
        return ["no conflicts recorded"]
    return [
        strip_control(
            f"{c['decided_at']} {c['table']} {c['record_id']} {c['field']}:"
            f" local={json_line(c['local_value'])}"
            f" remote={json_line(c['remote_value'])} -> {c['winner']} won"
        )
        for c in conflicts
    ]
