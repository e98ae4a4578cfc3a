"""Task events at scale: an inbox of N events, ingested, ingested again, and reported per user.

    python -m bench.tasks_bench --events 1000000 [--users 1000] [--files 100]

Makes the inbox in a temporary directory: N/10 tasks of 10 events each (created, content edits, a
completion for most, a delete for some), spread over 30 days, each task living up to two days; the events
written roughly in time order (as webhooks arrive) but shuffled a little within each file, files
alternating JSON Lines and JSON arrays, timestamps in several UTC offsets. The generator keeps only the
tasks still alive in memory, so this process stays small.

Then, each as its own process: `syncctl sync tasks --json` (the first ingest), the same files again (all
`duplicate`), and `syncctl report tasks --out-dir` for a day in the middle (one file per user) and for the
whole window. Wall time is measured around the process; CPU (user + sys) and peak RSS come from the
`resource.struct_rusage` that `os.wait4` returns for exactly that child. Prints one Markdown table row per
measurement. Standalone: it imports nothing from syncctl, so it measures the installed command as a user
runs it (while `report tasks` is not mounted in the CLI yet, a three-line harness mounts it).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TextIO

START = datetime(2025, 4, 1, tzinfo=UTC)
WINDOW_S = 30 * 86400.0
LIFETIME_S = 2 * 86400.0
ZONES = (
    UTC,
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-4)),
    timezone(timedelta(hours=5, minutes=30)),
)
SHUFFLE_BLOCK = 8  # events within a block of this many are written in random order

# While `syncctl report tasks` is not mounted in the CLI: the same command, mounted as the CLI will.
HARNESS = """
import sys, typer
from syncctl.cli import root
from syncctl.connectors.tasks.commands import REPORTS
app = typer.Typer(); app.callback()(root); group = typer.Typer(); app.add_typer(group, name="report")
for name, command in REPORTS: group.command(name)(command)
sys.exit(app(sys.argv[1:], prog_name="syncctl", standalone_mode=True))
"""


@dataclass
class Measured:
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    returncode: int
    stdout: str


def task_events(
    number: int, user: str, created: float, rng: random.Random
) -> list[tuple[float, dict[str, Any]]]:
    """One task's ten events: created, seven edits, then a completion (70%) and a delete (20%) or no-ops."""
    times = [created, *sorted(created + rng.uniform(1, LIFETIME_S) for _ in range(9))]
    completes = rng.random() < 0.7
    deletes = rng.random() < 0.2
    events: list[tuple[float, dict[str, Any]]] = []
    for step, at in enumerate(times):
        revision = min(step, 7)
        name = "created" if step == 0 else "deleted" if step == 9 and deletes else "updated"
        done = completes and step >= 8
        stamp = (START + timedelta(seconds=at)).astimezone(rng.choice(ZONES))
        text = stamp.isoformat(timespec="microseconds" if step % 4 == 3 else "seconds")
        metadata = {
            "userId": user,
            "id": str(number),
            "content": f"Task {number} rev {revision}",
            "isCompleted": done,
        }
        events.append((at, {"event": name, "timestamp": text, "metadata": metadata}))
    return events


class Files:
    """Writes events into `count` files of about equal size, alternating JSON Lines and JSON arrays."""

    def __init__(self, folder: Path, total: int, count: int, rng: random.Random) -> None:
        self.folder = folder
        self.per_file = max(1, -(-total // count))
        self.rng = rng
        self.number = 0
        self.written = 0
        self.block: list[dict[str, Any]] = []
        self.stream: TextIO | None = None
        self.array = False

    def add(self, event: dict[str, Any]) -> None:
        self.block.append(event)
        if len(self.block) >= SHUFFLE_BLOCK:
            self._flush()

    def _flush(self) -> None:
        self.rng.shuffle(self.block)
        for event in self.block:
            if self.stream is None or self.written >= self.per_file:
                self._next_file()
            assert self.stream is not None
            text = json.dumps(event)
            if self.array:
                self.stream.write(("\n" if self.written == 0 else ",\n") + text)
            else:
                self.stream.write(text + "\n")
            self.written += 1
        self.block = []

    def _next_file(self) -> None:
        self._close_file()
        self.number += 1
        self.array = self.number % 2 == 0
        path = self.folder / f"events-{self.number:06d}.{'json' if self.array else 'jsonl'}"
        self.stream = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by _close_file
        self.written = 0
        if self.array:
            self.stream.write("[")

    def _close_file(self) -> None:
        if self.stream is not None:
            if self.array:
                self.stream.write("\n]\n")
            self.stream.close()
            self.stream = None

    def close(self) -> None:
        self._flush()
        self._close_file()


def make_inbox(inbox: Path, events: int, users: int, files: int, seed: int) -> int:
    """Write the events in (nearly) time order with only live tasks in memory; the number of files."""
    rng = random.Random(seed)
    tasks = max(1, events // 10)
    out = Files(inbox, tasks * 10, files, rng)
    pending: list[tuple[float, int, dict[str, Any]]] = []
    order = 0
    for number in range(1, tasks + 1):
        created = (number - 0.5) * WINDOW_S / tasks
        while pending and pending[0][0] <= created:
            out.add(heapq.heappop(pending)[2])
        for at, event in task_events(number, str(rng.randrange(users) + 1), created, rng):
            heapq.heappush(pending, (at, order, event))
            order += 1
    while pending:
        out.add(heapq.heappop(pending)[2])
    out.close()
    return out.number


def measure(command: list[str], env: dict[str, str], cwd: Path) -> Measured:
    out = cwd / "stdout.txt"
    started = time.perf_counter()
    with open(out, "wb") as stdout, open(cwd / "stderr.txt", "wb") as stderr:
        pid = os.posix_spawn(
            command[0],
            command,
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, stdout.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, stderr.fileno(), 2),
            ],
        )
        _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    return Measured(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        maxrss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        returncode=os.waitstatus_to_exitcode(status),
        stdout=out.read_text(encoding="utf-8", errors="replace"),
    )


def row(name: str, size: str, measured: Measured, rate: str, result: str) -> None:
    print(
        f"| {name} | {size} | {measured.wall_s:.2f} | {measured.cpu_s:.2f} | {measured.maxrss_mb:.0f}"
        f" | {rate} | {result} | {measured.returncode} |",
        flush=True,
    )


def ingest_row(name: str, measured: Measured) -> None:
    lines = [line for line in measured.stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    events = int(result.get("fetched", 0))
    outcomes = result.get("outcomes", {})
    shown = ", ".join(f"{k} {v}" for k, v in outcomes.items() if v) or result.get("error") or "?"
    row(name, f"{events} events", measured, f"{events / measured.wall_s:,.0f} events/s", str(shown))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tasks_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the inbox (10 per task)")
    parser.add_argument("--users", type=int, default=1000, help="users owning the tasks")
    parser.add_argument("--files", type=int, default=100, help="files the events are spread over")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--syncctl", default=str(Path(sys.executable).with_name("syncctl")), help="the command"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="where to make the inbox (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the inbox, the reports and the SQLite file")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="syncctl-tasks-", dir=args.work_dir))
    try:
        inbox = work / "inbox"
        inbox.mkdir()
        made = time.perf_counter()
        files = make_inbox(inbox, args.events, args.users, args.files, args.seed)
        print(
            f"<!-- {args.events} events in {files} files made in {time.perf_counter() - made:.1f} s"
            f" under {work} -->"
        )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", str(work)),
            "TASKS_INBOX_DIR": str(inbox),
            "SYNCCTL_DB": str(work / "syncctl.db"),
        }
        print("| measurement | size | wall s | CPU s | peak RSS MB | rate | result | exit |")
        print("|---|---:|---:|---:|---:|---:|---|---:|")
        sync = [args.syncctl, "sync", "tasks", "--json"]
        ingest_row("ingest (first)", measure(sync, env, work))
        for path in sorted((inbox / "processed").iterdir()):
            path.rename(inbox / path.name)
        ingest_row("ingest again (all duplicates)", measure(sync, env, work))
        report = [args.syncctl, "report", "tasks"]
        probe = measure([*report, "--help"], env, work)
        if probe.returncode != 0:
            report = [sys.executable, "-c", HARNESS, "report", "tasks"]
        middle = START + timedelta(days=15)
        periods = {
            "report per user (one day)": (middle, middle + timedelta(days=1)),
            "report per user (30 days)": (START, START + timedelta(seconds=WINDOW_S)),
        }
        for name, (start, end) in periods.items():
            out_dir = work / name.split("(")[1].rstrip(")").replace(" ", "-")
            command = [
                *report,
                "--start",
                start.isoformat(),
                "--end",
                end.isoformat(),
                "--out-dir",
                str(out_dir),
            ]
            measured = measure(command, env, work)
            written = len(list(out_dir.glob("task_report_*.json"))) if out_dir.is_dir() else 0
            listed = sum(
                len(doc[key])
                for path in (out_dir.glob("task_report_*.json") if out_dir.is_dir() else [])
                for doc in [json.loads(path.read_text(encoding="utf-8"))]
                for key in ("newIncompleteTasks", "completedTasks", "oldIncompleteTasks")
            )
            row(
                name,
                f"{args.users} users",
                measured,
                f"{written / measured.wall_s:,.0f} files/s",
                f"{written} files, {listed} tasks listed",
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
