"""One run at a time per source and database: an exclusive `flock` on `<db>.<source>.lock`.

The database path is resolved first, so two symlinks to one file share one lock. The kernel drops the
lock when its process dies, however it dies, so a lock left by a dead process is simply taken over by the
next run; no stale-lock clean-up is needed, and no external `flock` either. With `wait_s`, a run waits
that long for the lock (polling with the injected sleep) before giving up with exit 75.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from syncctl.core.errors import DatabaseError, LockedError


def lock_path(db_path: Path, source: str) -> Path:
    real = db_path.resolve()
    return real.with_name(f"{real.name}.{source}.lock")


@contextmanager
def hold_lock(
    db_path: Path,
    source: str,
    *,
    wait_s: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[None]:
    path = lock_path(db_path, source)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise DatabaseError(f"cannot create lock file {path}: {exc.strerror}") from None
    try:
        deadline = clock() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if clock() < deadline:
                    sleep(min(1.0, max(0.05, deadline - clock())))
                    continue
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                raise LockedError(
                    f"another syncctl run (pid {holder}) is working on {db_path};"
                    " this run exits without changes"
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
