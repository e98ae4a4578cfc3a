"""The tasks source's settings: one folder, plus what a one-off `tasks ingest` adds for its run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from syncctl.connectors.tasks.sorting import RUN_SIZE
from syncctl.core.settings import Setting, number

INBOX = "TASKS_INBOX_DIR"
WORKERS = "TASKS_INGEST_WORKERS"
SETTINGS = (
    Setting(INBOX, "folder the to-do service's events are delivered to", required=True),
    Setting(WORKERS, "processes reading a large backlog of event files (default: one per CPU, at most 4)"),
)
# Events per transaction: large enough that a batch rewrites each touched page of the tables once for
# many events, small enough to keep a batch's memory (and the work a crash repeats as duplicates) modest.
BATCH_SIZE = 20_000


@dataclass(frozen=True)
class Settings:
    inbox: Path
    targets: tuple[Path, ...] | None = None  # files and folders to ingest; None: the inbox's files
    stdin_spool: Path | None = None  # the copy of standard input, when `-` was among the targets
    keep: bool = False  # leave ingested files where they are instead of moving them aside
    batch_size: int = BATCH_SIZE
    run_size: int = RUN_SIZE
    workers: int | None = None  # processes reading files; None: by the input's size and the CPUs


def settings_from(values: Mapping[str, str]) -> Settings:
    """The inbox is checked when a run uses it, so a missing folder fails that run, not every source's."""
    workers = int(number(values, WORKERS, 0, minimum=1, integer=True, maximum=64)) or None
    return Settings(inbox=Path(values.get(INBOX, "").strip()).expanduser().absolute(), workers=workers)
