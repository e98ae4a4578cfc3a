"""The inbox folder: which files to read, and where they go afterwards. Knows nothing of SQLite or events.

Only whole files are read: names starting with `.` or ending in `.tmp`/`.part` are files a writer is still
filling (a relay writes `.name.tmp` and renames it when complete), and folders are not entered. After its
events are committed a file moves to `processed/`, or to `rejected/` when it could not be read as events;
both live inside the inbox. A move never replaces a file (a clash gets `-1`, `-2`, ... before the
suffix), and a file already in `processed/` is never moved again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from syncctl.core.errors import ConfigError, SyncctlError

PROCESSED = "processed"
REJECTED = "rejected"
UNFINISHED_SUFFIXES = (".tmp", ".part", ".partial", ".swp", "~")
STDIN = "stdin"


def shown(path: Path | str) -> str:
    """A path as text SQLite can store and a log line can show: undecodable bytes as \\xNN, no newlines."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def is_finished_name(name: str) -> bool:
    return not name.startswith(".") and not name.endswith(UNFINISHED_SUFFIXES)


def list_files(folder: Path) -> list[Path]:
    """The finished regular files directly in `folder`, by name."""
    try:
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries if is_finished_name(e.name) and _is_file(e))
    except OSError as exc:
        raise SyncctlError(f"cannot list {shown(folder)}: {exc.strerror or exc}") from None
    return [folder / name for name in names]


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


@dataclass(frozen=True)
class InputFile:
    """One file to ingest. `origin` is what `task_events.origin` records: the path, or `stdin`."""

    path: Path
    origin: str
    is_stdin: bool = False


class Inbox:
    """The inbox folder and its `processed/` and `rejected/` subfolders."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processed = root / PROCESSED
        self.rejected = root / REJECTED

    def check(self) -> None:
        if not self.root.is_dir():
            raise ConfigError(
                f"the inbox {shown(self.root)} (TASKS_INBOX_DIR) "
                + ("is not a folder" if self.root.exists() else "does not exist")
            )

    def files(self) -> list[InputFile]:
        self.check()
        return [InputFile(path, shown(path.absolute())) for path in list_files(self.root)]

    def inputs(self, targets: list[Path], stdin_spool: Path | None) -> list[InputFile]:
        """The files named (folders give their finished files), in the order given, each once."""
        found: list[InputFile] = []
        seen: set[Path] = set()
        for target in targets:
            if target == stdin_spool:
                found.append(InputFile(target, STDIN, is_stdin=True))
                continue
            for path in list_files(target) if target.is_dir() else [target]:
                real = path.resolve()
                if real not in seen:
                    seen.add(real)
                    found.append(InputFile(path, shown(path.absolute())))
        return found

    def settle(self, item: InputFile, *, accepted: bool) -> Path | None:
        """Move a file whose events are committed (or that was rejected) aside; None when it stays.

        A file in `processed/` stays there; a rejected file already in `rejected/` stays there; standard
        input leaves a copy in `rejected/` only when it was rejected (its accepted events are in the
        table, so nothing is lost).
        """
        folder = self.processed if accepted else self.rejected
        if item.is_stdin:
            if accepted:
                return None
            return move_into(item.path, folder, name=f"{STDIN}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json")
        where = item.path.absolute().parent
        if _same(where, self.processed) or _same(where, folder):
            return None
        return move_into(item.path, folder)

    def rejected_count(self) -> int:
        """Files waiting in `rejected/` to be fixed (0 when the folder cannot be listed)."""
        try:
            return len(list_files(self.rejected))
        except SyncctlError:
            return 0


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _candidate(name: str, number: int) -> str:
    if number == 0:
        return name
    path = Path(name)
    return f"{path.stem}-{number}{path.suffix}"


def move_into(path: Path, folder: Path, *, name: str | None = None) -> Path:
    """Move `path` into `folder` (created when missing) under its name or `name`, never over another file."""
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise SyncctlError(f"cannot create {shown(folder)}: {exc.strerror or exc}") from None
    wanted = name or path.name
    number = 0
    while True:
        target = folder / _candidate(wanted, number)
        number += 1
        try:
            # A hard link fails when the target exists, so no other file is ever replaced.
            os.link(path, target, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EACCES):
                raise SyncctlError(f"cannot move {shown(path)} to {shown(folder)}: {exc.strerror}") from None
            if os.path.lexists(target):
                continue
            try:
                shutil.move(path, target)  # another file system, or one without hard links
            except OSError as err:
                raise SyncctlError(
                    f"cannot move {shown(path)} to {shown(folder)}: {err.strerror or err}"
                ) from None
            return target
        try:
            os.unlink(path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(target)
            raise SyncctlError(f"cannot move {shown(path)} to {shown(folder)}: {exc.strerror}") from None
        return target


@contextlib.contextmanager
def spooled(stream: BinaryIO, inbox: Path) -> Iterator[Path]:
    """Standard input copied to a file, removed afterwards; in the inbox when it can be (a hidden `.tmp`
    name that no listing takes), so a rejected copy is renamed into `rejected/` rather than copied."""
    folder = inbox if inbox.is_dir() and os.access(inbox, os.W_OK) else None
    handle, name = tempfile.mkstemp(prefix=".stdin-", suffix=".tmp", dir=folder)
    path = Path(name)
    try:
        with open(handle, "wb") as out:
            shutil.copyfileobj(stream, out, 1 << 20)
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
