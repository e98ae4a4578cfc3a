"""Prometheus text-format metrics for node_exporter's textfile collector, written atomically after each run.

The file describes every source's last run (not only the one that just ran), since the collector replaces
all of a file's series at each scrape.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from syncctl.core.errors import UsageError

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


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def render(sources: Iterable[dict[str, Any]]) -> str:
    """The exposition text for each source's status report (`core.status.source_status`)."""
    samples: dict[str, list[str]] = {name: [] for name in HELP}
    for report in sources:
        source = _label(str(report["source"]))
        last = report.get("last_run") or {}
        finished = _epoch(last.get("finished_at"))
        if finished is not None:
            samples["syncctl_last_run_timestamp_seconds"].append(f'{{source="{source}"}} {finished:.0f}')
        success = _epoch((report.get("last_success") or {}).get("finished_at"))
        if success is not None:
            samples["syncctl_last_success_timestamp_seconds"].append(f'{{source="{source}"}} {success:.0f}')
        if last:
            for status in STATUSES:
                flag = int(last.get("status") == status)
                samples["syncctl_last_run_status"].append(f'{{source="{source}",status="{status}"}} {flag}')
            samples["syncctl_last_run_duration_seconds"].append(
                f'{{source="{source}"}} {float(last.get("duration_s") or 0):g}'
            )
            for kind in COUNTS:
                if kind in last:
                    samples["syncctl_last_run_rows"].append(
                        f'{{source="{source}",kind="{kind}"}} {int(last.get(kind) or 0)}'
                    )
        samples["syncctl_pending_changes"].append(f'{{source="{source}"}} {int(report.get("pending") or 0)}')
        rejected = (report.get("details") or {}).get("rejected_files")
        if isinstance(rejected, int):
            samples["syncctl_rejected_files"].append(f'{{source="{source}"}} {rejected}')
        cursor = report.get("cursor")
        if isinstance(cursor, int | float) and not isinstance(cursor, bool):
            samples["syncctl_cursor"].append(f'{{source="{source}"}} {cursor}')
    lines: list[str] = []
    for name, (kind, text) in HELP.items():
        if not samples[name]:
            continue
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{sample}" for sample in samples[name]]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    """Atomically: the collector must never read half a file (temp file in the same folder, then rename)."""
    folder = path.parent
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot write the metrics file {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)  # node_exporter runs as another user; the file holds no secret
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
