"""Prometheus text-format metrics for node_exporter's textfile collector, written atomically after each run.

The file describes every source's last run (not only the one that just ran), since the collector replaces
all of a file's series at each scrape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syncctl.core.connector import Connector
from syncctl.core.db import Database
from syncctl.core.errors import UsageError
from syncctl.core.runs import RunLog
from syncctl.core.status import source_status
from syncctl.reports.output import atomic_write

COUNTS = (
    "fetched",
    "inserted",
    "updated",
    "deleted",
    "unchanged",
    "pushed",
    "push_failed",
    "conflicts",
    "skipped",
)
STATUSES = ("ok", "failed", "interrupted", "refused")

HELP = {
    "syncctl_last_run_timestamp_seconds": ("gauge", "When the last run of the source finished (Unix time)."),
    "syncctl_last_success_timestamp_seconds": ("gauge", "When the last successful run finished (Unix time)."),
    "syncctl_last_run_status": ("gauge", "1 for the status of the source's last run, 0 for the others."),
    "syncctl_last_run_duration_seconds": ("gauge", "How long the last run took."),
    "syncctl_last_run_rows": ("gauge", "Rows of the last run, by kind (fetched, inserted, ...)."),
    "syncctl_pending_changes": ("gauge", "Local changes waiting to be pushed."),
    "syncctl_rejected_files": ("gauge", "Input files rejected and not yet fixed."),
    "syncctl_cursor": ("gauge", "The source's cursor, when it is a number."),
}


LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:  # without an offset a time is UTC, not the host's local time
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def collect(db: Database, connectors: Iterable[Connector]) -> list[dict[str, Any]]:
    """Each source's status report plus its last successful run, as `render` wants them."""
    reports = []
    for connector in connectors:
        report = source_status(db, connector, limit=1)
        report["last_success"] = RunLog(db, connector.name).last_success()
        reports.append(report)
    return reports


def _last_success(report: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if "last_success" in report:
        found: Mapping[str, Any] | None = report["last_success"]
        return found
    # A plain status report: only its own runs can tell (enough when the last run was a success).
    return next((run for run in report.get("runs") or [] if run.get("status") == "ok"), None)


def render(sources: Iterable[Mapping[str, Any]], *, labels: Mapping[str, str] | None = None) -> str:
    """The exposition text for each source's status report (`collect`, or `core.status.source_status`).

    `labels` are added to every series, e.g. `{"tenant": "acme"}`: node_exporter refuses the same series
    from two files, so each tenant's file needs a label of its own.
    """
    fixed = dict(labels or {})
    for name in fixed:
        if not LABEL_NAME.fullmatch(name) or name.startswith("__") or name in ("source", "status", "kind"):
            raise UsageError(f"{name!r} cannot be a metrics label name")
    samples: dict[str, list[str]] = {name: [] for name in HELP}

    def add(metric: str, value: object, **extra: str) -> None:
        pairs = {**fixed, **extra}
        text = ",".join(f'{key}="{_label(str(val))}"' for key, val in pairs.items())
        samples[metric].append(f"{{{text}}} {value}")

    for report in sources:
        source = str(report["source"])
        last = report.get("last_run") or {}
        finished = _epoch(last.get("finished_at"))
        if finished is not None:
            add("syncctl_last_run_timestamp_seconds", f"{finished:.0f}", source=source)
        success = _epoch((_last_success(report) or {}).get("finished_at"))
        if success is not None:
            add("syncctl_last_success_timestamp_seconds", f"{success:.0f}", source=source)
        if last:
            for status in STATUSES:
                add(
                    "syncctl_last_run_status", int(last.get("status") == status), source=source, status=status
                )
            add("syncctl_last_run_duration_seconds", f"{float(last.get('duration_s') or 0):g}", source=source)
            for kind in COUNTS:
                if kind in last:
                    add("syncctl_last_run_rows", int(last.get(kind) or 0), source=source, kind=kind)
        add("syncctl_pending_changes", int(report.get("pending") or 0), source=source)
        rejected = (report.get("details") or {}).get("rejected_files")
        if isinstance(rejected, int):
            add("syncctl_rejected_files", rejected, source=source)
        cursor = report.get("cursor")
        if isinstance(cursor, int | float) and not isinstance(cursor, bool):
            add("syncctl_cursor", cursor, source=source)
    lines: list[str] = []
    for name, (kind, text) in HELP.items():
        if not samples[name]:
            continue
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{sample}" for sample in samples[name]]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    """Atomically: the collector must never read half a file. World-readable (0o644): node_exporter runs as
    another user, and the file holds no secret."""
    atomic_write(path, lambda out: out.write(text), newline=None, mode=0o644, label="the metrics file")


def parse_labels(options: list[str], setting: str) -> dict[str, str]:
    """Labels for every series, from `--metrics-label NAME=VALUE` and SYNCCTL_METRICS_LABELS=a=b,c=d."""
    pairs = [*[p for p in setting.split(",") if p.strip()], *options]
    labels: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name) or name.startswith("__"):
            raise UsageError(f"a metrics label is NAME=VALUE with NAME like tenant, got {pair!r}")
        if name in ("source", "status", "kind"):
            raise UsageError(f"the metrics label {name!r} is syncctl's own")
        labels[name] = value.strip()
    return labels
