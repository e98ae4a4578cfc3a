"""Putting one ingest's events in timestamp order without holding them all: an external merge sort.

Events are collected in runs of `run_size`; each run is sorted and written to a file of its own (marshal,
in length-prefixed chunks) in a folder the caller owns, and the runs are merged lazily at the end. Memory is
one run while staging and one chunk per run while merging, whatever the number of events. Run files are
plain paths so that a worker process can write runs that the ingest merges.

Items are tuples whose leading fields are a unique sort key (the caller's), and hold only values marshal
can write (None, bool, int, float, str, tuples).
"""

from __future__ import annotations

import contextlib
import heapq
import marshal
import os
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO, Any

RUN_SIZE = 50_000
CHUNK = 200  # items per marshal chunk: what a run holds in memory while the runs are merged
MAX_FAN_IN = 200  # runs merged at once; more are first merged into fewer, longer runs

Item = tuple[Any, ...]


class ExternalSorter:
    """Add items in any order; `finish` writes the last run and hands over every run file."""

    def __init__(self, folder: Path, run_size: int = RUN_SIZE) -> None:
        self.folder = folder
        self.run_size = run_size
        self.current: list[Item] = []
        self.runs: list[Path] = []
        self.count = 0

    def add(self, item: Item) -> None:
        self.current.append(item)
        self.count += 1
        if len(self.current) >= self.run_size:
            self._spill()

    def _spill(self) -> None:
        self.current.sort()
        self.runs.append(write_run(self.folder, self.current))
        self.current = []

    def finish(self) -> list[Path]:
        if self.current:
            self._spill()
        runs, self.runs = self.runs, []
        return runs


def write_run(folder: Path, items: Iterator[Item] | list[Item]) -> Path:
    """Sorted items as a run file in `folder`."""
    handle, name = tempfile.mkstemp(dir=folder, prefix="run-")
    with open(handle, "wb") as out:
        chunk: list[Item] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= CHUNK:
                _write_chunk(out, chunk)
                chunk = []
        if chunk:
            _write_chunk(out, chunk)
    return Path(name)


def _write_chunk(out: IO[bytes], chunk: list[Item]) -> None:
    # Length-prefixed bytes: marshal.load on a file reads in tiny pieces, marshal.loads on bytes does not.
    data = marshal.dumps(chunk)
    out.write(len(data).to_bytes(8, "little"))
    out.write(data)


def _read_run(run: IO[bytes]) -> Iterator[Item]:
    while size := int.from_bytes(run.read(8), "little"):
        chunk: list[Item] = marshal.loads(run.read(size))
        yield from chunk


def merge_runs(runs: list[Path], folder: Path) -> Generator[Item, None, None]:
    """Every item of the runs, in order; each run file is removed once it is open (or the merge ends)."""
    while len(runs) > MAX_FAN_IN:  # too many files to hold open: merge them in groups first
        runs = [
            write_run(folder, merge_runs(runs[i : i + MAX_FAN_IN], folder))
            for i in range(0, len(runs), MAX_FAN_IN)
        ]
    with contextlib.ExitStack() as stack:
        streams = []
        for run in runs:
            streams.append(stack.enter_context(open(run, "rb", buffering=1 << 16)))
            os.unlink(run)  # the open file stays readable; nothing is left behind however the merge ends
        if len(streams) == 1:
            yield from _read_run(streams[0])
        else:
            yield from heapq.merge(*(_read_run(stream) for stream in streams))
