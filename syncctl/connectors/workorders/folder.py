"""The client's folders: listing and reading inbound files, writing outbound ones. Knows nothing of SQLite.

Every failure of one file is a value (a one-line reason), never an exception, so one bad file cannot stop
the others; only a folder that cannot be listed at all raises.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncctl.core.errors import SyncctlError
from syncctl.reports.output import OutputError, atomic_write

MAX_FILE_BYTES = 1 << 20  # a work order is a few hundred bytes; anything this large is not one


@dataclass(frozen=True, slots=True)
class Listed:
    """A `*.json` entry of the inbound folder, with its stat at listing time (None: it could not be had)."""

    name: str  # the key syncctl records it under: the file name, undecodable bytes shown as \\xNN
    path: str  # not a Path: making 100,000 of them costs more than listing the folder
    size: int | None
    mtime_ns: int | None
    problem: str | None = None  # why it cannot be read at all (not a regular file, a broken link)


@dataclass(frozen=True, slots=True)
class Read:
    """One file's bytes and their hash, with the stat taken after reading; or why it could not be read."""

    data: bytes | None
    sha256: str | None
    size: int | None
    mtime_ns: int | None
    problem: str | None = None
    vanished: bool = False  # gone since the listing: not the client's mistake, nothing to report


def record_name(name: str) -> str:
    """A file name as text SQLite can store and a log line can show: undecodable bytes become \\xNN."""
    if name.isascii():
        return name
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def shown(name: str) -> str:
    """A name or path for a one-line message: undecodable bytes as \\xNN, control characters (a newline in
    a file name) escaped."""
    text = record_name(name)
    return text if text.isprintable() else json.dumps(text, ensure_ascii=False)[1:-1]


def _reason(error: OSError) -> str:
    return error.strerror or error.__class__.__name__


def list_inbound(folder: Path) -> list[Listed]:
    """The folder's `*.json` entries in name order; hidden files (a client's temporary files) and folders
    are not work orders. Raises SyncctlError when the folder itself cannot be listed."""
    found: list[Listed] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.name.endswith(".json") or entry.name.startswith("."):
                    continue
                listed = _listed(entry)
                if listed is not None:
                    found.append(listed)
    except OSError as error:
        raise SyncctlError(f"cannot read the inbound folder {folder}: {_reason(error)}") from None
    found.sort(key=lambda listed: listed.name)
    return found


def _listed(entry: os.DirEntry[str]) -> Listed | None:
    """None for what is not a file to consider: a folder, or a file gone since the folder was listed."""
    name, path = record_name(entry.name), entry.path
    try:
        info = entry.stat()
    except FileNotFoundError:
        if os.path.lexists(path):
            return Listed(name, path, None, None, "a link to a file that does not exist")
        return None
    except OSError as error:
        return Listed(name, path, None, None, f"cannot read it: {_reason(error)}")
    if stat.S_ISDIR(info.st_mode):
        return None
    if not stat.S_ISREG(info.st_mode):
        return Listed(name, path, None, None, "not a regular file")  # a FIFO would block the run
    return Listed(name, path, info.st_size, info.st_mtime_ns)


def read_inbound(path: str | Path) -> Read:
    """The file's bytes, at most MAX_FILE_BYTES, and their SHA-256."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return Read(None, None, None, None, "vanished", vanished=True)
    except OSError as error:
        return Read(None, None, None, None, f"cannot read it: {_reason(error)}")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return Read(None, None, None, None, "not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            return Read(None, None, info.st_size, info.st_mtime_ns, f"larger than {MAX_FILE_BYTES} bytes")
        # One read for the whole file: a regular file returns less than asked for only at its end.
        data = os.read(fd, info.st_size + 1)
        while len(data) > info.st_size and len(data) <= MAX_FILE_BYTES:  # it grew since fstat
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
        if len(data) > MAX_FILE_BYTES:
            return Read(None, None, None, None, f"larger than {MAX_FILE_BYTES} bytes")
        after = os.fstat(fd)  # what was read matches this stat, unless it changes within its time stamp
    except OSError as error:
        return Read(None, None, None, None, f"cannot read it: {_reason(error)}")
    finally:
        os.close(fd)
    return Read(data, hashlib.sha256(data).hexdigest(), after.st_size, after.st_mtime_ns)


def outbound_text(document: dict[str, Any]) -> str:
    """The client's own style (the inbound fixtures): one line, `", "` and `": "`, ASCII only."""
    return json.dumps(document)


def write_outbound(folder: Path, name: str, document: dict[str, Any]) -> str | None:
    """Write one file atomically (temporary file, fsync, rename, fsync of the folder); None or why not.

    The shared `atomic_write` gives a new file mode 0o600: work orders can name customers and sites, and
    the client's reader usually runs as the same service account (a replaced file keeps its mode).
    """
    text = outbound_text(document)
    try:
        atomic_write(folder / name, lambda stream: stream.write(text))
    except OutputError as error:
        return str(error)
    return None


def folder_problem(folder: Path) -> str | None:
    """Why no file at all can be written to `folder` (None: a test file could be made there)."""
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=".syncctl-probe.", suffix=".tmp")
    except OSError as error:
        if error.errno == errno.ENOENT:
            return "the folder does not exist"
        return _reason(error)
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None
