"""Run one command as its own process and measure it: wall time, user+sys CPU and peak RSS of that process.

`os.wait4` returns the rusage of exactly the child it reaps (its own, plus that of any children it waited
for), unlike `getrusage(RUSAGE_CHILDREN)`, whose `ru_maxrss` is the maximum over every child so far. But
Linux starts a child's `ru_maxrss` at the peak RSS of the process that forked it (exec keeps the larger of
the old and new memory's peaks), so a measured tool started straight from this benchmark, which holds a
snapshot of the remote, would report at least the benchmark's own size. Each tool is therefore started by
`WRAPPER`, a bare Python of about 8 MB that spawns it, reaps it with `os.wait4`, and writes the figures to
a file. Every process started here is registered, so `stop_all` can end them on Ctrl-C or an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_live: set[subprocess.Popen[bytes]] = set()
# argv: the figures file, then the command. Run with `python -I -S`: no site, no imports beyond these.
WRAPPER = """
import os, sys, time
started = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as out:
    out.write(f"{wall} {usage.ru_utime} {usage.ru_stime} {usage.ru_maxrss} {code}")
"""
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_mb: float
    returncode: int
    timed_out: bool
    stdout: str
    stderr: str

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    def last_json(self) -> dict[str, Any] | None:
        """The last line of stdout that is a JSON object (what every measured tool prints), or None."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    data = json.loads(line)
                    if isinstance(data, dict):
                        return data
        return None

    def stderr_tail(self, lines: int = 5) -> str:
        return " | ".join(self.stderr.strip().splitlines()[-lines:])


def start(command: Sequence[str], *, env: Mapping[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start a background process (the fake server), registered for `stop_all`."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    _live.add(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], *, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace_s`; always reaps."""
    if proc.returncode is None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _live.discard(proc)


def stop_all() -> None:
    for proc in list(_live):
        with contextlib.suppress(OSError):
            stop(proc, grace_s=5.0)


def measure(command: Sequence[str], *, env: Mapping[str, str], cwd: Path, timeout_s: float) -> Measured:
    """Run `command` to completion (killed after `timeout_s`) and return what it cost."""
    out_path, err_path, figures = cwd / "stdout.txt", cwd / "stderr.txt", cwd / "rusage.txt"
    figures.unlink(missing_ok=True)
    wrapped = [sys.executable, "-I", "-S", "-c", WRAPPER, str(figures), *command]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            wrapped,
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # the wrapper and the tool in a group of their own: killed together
        )
    _live.add(proc)
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        _kill_group(proc)

    timer = threading.Timer(timeout_s, kill)
    timer.daemon = True
    timer.start()
    try:
        proc.wait()
    finally:
        timer.cancel()
        if proc.returncode is None:  # interrupted while waiting (Ctrl-C): end them and reap the wrapper
            _kill_group(proc)
            proc.wait()
        _live.discard(proc)
    try:
        wall, user, system, maxrss, code = figures.read_text().split()
    except (OSError, ValueError):  # the wrapper itself was killed (timeout): no figures
        wall, user, system, maxrss, code = str(timeout_s), "0", "0", "0", str(proc.returncode or -9)
    return Measured(
        wall_s=float(wall),
        user_s=float(user),
        sys_s=float(system),
        maxrss_mb=int(maxrss) / 1024.0,  # Linux reports KiB
        returncode=int(code),
        timed_out=fired.is_set(),
        stdout=out_path.read_text(encoding="utf-8", errors="replace"),
        stderr=err_path.read_text(encoding="utf-8", errors="replace"),
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)


def process_cpu_s(pid: int) -> float:
    """User+sys CPU seconds a running process has used so far (Linux /proc), 0.0 when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def process_rss_mb(pid: int) -> float:
    """Resident memory of a running process in MB (Linux /proc), 0.0 when unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0
