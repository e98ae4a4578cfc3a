"""`sync --every`: the same runs in a loop, for places without cron; stops cleanly between or inside runs.

The wait between runs is an `Event` that the CLI's signal handler sets, so SIGTERM ends the sleep at once.
Sleep and clock are arguments, so tests never wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Waiter:
    """An interruptible wait: `stop()` (from a signal handler) ends the current and every later wait."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def stop(self) -> None:
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`; True when stopped meanwhile."""
        return self._event.wait(max(0.0, seconds))


def run_every(
    interval_s: float,
    run_once: Callable[[], int],
    *,
    waiter: Waiter,
    max_runs: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Call `run_once` every `interval_s` seconds (measured start to start) until stopped; returns the last
    run's exit code. A run that takes longer than the interval is followed by the next one at once."""
    done = 0
    code = 0
    while not waiter.stopped:
        started = clock()
        code = run_once()
        done += 1
        if max_runs is not None and done >= max_runs:
            break
        if waiter.wait(interval_s - (clock() - started)):
            break
    return code
