"""Reading files of events into sorted runs, in this process or in worker processes.

Reading is most of an ingest's work per event (decode, check against the rules, fingerprint), and each file
can be read on its own, so a large ingest reads groups of consecutive files in worker processes while a
small one reads them here; both go through `stage_group`. A group's events are written to sorted run files
(`sorting`), which the ingest merges into one timestamp order. Nothing here touches SQLite: a worker
reports per file how many events it staged or why the file cannot be taken, and the ingest records that.

This module imports only the rules, the reader and the sorter, so a worker process starts quickly.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Generator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from syncctl.connectors.tasks.reader import FormatError, read_values
from syncctl.connectors.tasks.rules import Invalid, ParsedEvent, event_key, parse_event, utc_text
from syncctl.connectors.tasks.sorting import ExternalSorter, Item
from syncctl.core.errors import SyncctlError

GROUP_BYTES = 8 << 20  # consecutive files are read together until a group holds this much
PARALLEL_BYTES = 32 << 20  # below this much input, starting workers costs more than it saves
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class FileResult:
    """What reading one file gave: its events staged, or why it cannot be taken (`problem`, a predicate:
    "is not valid JSON at line 3, column 5: ...")."""

    number: int
    count: int = 0
    problem: str | None = None
    vanished: bool = False  # gone before it could be read: nobody's mistake, nothing to record


Group = list[tuple[int, str]]  # (file number, path) of consecutive files


def stage_group(group: Group, folder: str, run_size: int) -> tuple[list[FileResult], list[str]]:
    """Read a group of files into sorted run files in `folder`: per file a result, and the runs' paths.

    The runs hold the events of rejected files too (a file can fail after events were staged); the
    caller leaves those file numbers out when it merges.
    """
    sorter = ExternalSorter(Path(folder), run_size)
    results = [stage_file(Path(path), number, sorter) for number, path in group]
    return results, [str(run) for run in sorter.finish()]


def stage_file(path: Path, number: int, sorter: ExternalSorter) -> FileResult:
    count = 0
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            for value, text in read_values(stream):
                try:
                    key = event_key(value)
                except RecursionError:
                    raise FormatError("holds an event nested too deeply") from None
                sorter.add(staged(parse_event(value), key, text, number, count))
                count += 1
    except FileNotFoundError:
        return FileResult(number, vanished=True)
    except FormatError as exc:
        return FileResult(number, problem=str(exc))
    except OSError as exc:
        return FileResult(number, problem=f"cannot be read: {exc.strerror or exc}")
    return FileResult(number, count)


def _clean(text: str | None) -> str | None:
    """Text SQLite can store: a lone surrogate from a JSON escape becomes U+FFFD (ASCII is the fast path)."""
    if text is None or text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


def staged(event: ParsedEvent | Invalid, key: str, text: str, number: int, position: int) -> Item:
    """An event as a run keeps it. The first four fields are the order to apply events in: events without
    a time last, then by UTC time, then by file and place in the file (the order they arrived in).

    (no time?, UTC time, file, position, event, task id, user id, content, completed, invalid message
    or None, key, text as received)
    """
    when = "" if event.timestamp is None else utc_text(event.timestamp)
    fields: tuple[str | bool | None, ...]
    if isinstance(event, ParsedEvent):
        content = _clean(event.content)
        fields = (
            event.event,
            _clean(event.task_id),
            _clean(event.user_id),
            content,
            event.is_completed,
            None,
        )
    else:
        fields = (
            _clean(event.event),
            _clean(event.task_id),
            _clean(event.user_id),
            None,
            None,
            event.message,
        )
    return (0 if when else 1, when, number, position, *fields, key, text)


def groups(paths: list[Path]) -> list[Group]:
    """Consecutive files in groups of about `GROUP_BYTES` (a large file is a group of its own)."""
    found: list[Group] = []
    current: Group = []
    size = 0
    for number, path in enumerate(paths):
        current.append((number, str(path)))
        size += _size(path)
        if size >= GROUP_BYTES:
            found.append(current)
            current, size = [], 0
    if current:
        found.append(current)
    return found


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def worker_count(paths: list[Path], setting: int | None) -> int:
    """Workers for this ingest: the setting, else one per CPU this process may use (at most 4), and
    none at all for a small ingest."""
    if setting is not None:
        return setting
    if sum(_size(path) for path in paths) < PARALLEL_BYTES:
        return 1
    return max(1, min(4, len(os.sched_getaffinity(0))))


def _ignore_stops() -> None:
    # Ctrl-C (and a service manager's SIGTERM) reach the whole process group: the ingest decides when to
    # stop, at a safe point, and then ends its workers; they must not die under it mid-group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def stage_all(
    todo: list[Group], folder: Path, run_size: int, workers: int
) -> Generator[tuple[list[FileResult], list[str]], None, None]:
    """Each group's results in order; in worker processes when `workers` > 1, with a few groups in flight.

    Stopping early (the caller closes the iterator) cancels what has not started and waits for the rest.
    """
    if workers <= 1 or len(todo) <= 1:
        for group in todo:
            yield stage_group(group, str(folder), run_size)
        return
    # spawn: a fresh interpreter, not a copy of this one with its open SQLite file and locks.
    context = get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_stops) as pool:
        pending: list[Future[tuple[list[FileResult], list[str]]]] = []
        try:
            for group in todo:
                pending.append(pool.submit(stage_group, group, str(folder), run_size))
                if len(pending) >= 2 * workers:  # results are small: the events are in the runs
                    yield pending.pop(0).result()
            while pending:
                yield pending.pop(0).result()
        except BrokenProcessPool as exc:
            raise SyncctlError(
                f"a process reading the event files ended unexpectedly ({exc}); nothing was applied and the"
                " files stay where they are"
            ) from None
        finally:
            for future in pending:
                future.cancel()
