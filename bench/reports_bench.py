"""Core reports at scale: `summary` and `cases` over a million cases, `changes` over a million history rows.

    python -m bench.reports_bench                       # 1,000,000 cases and history rows
    python -m bench.reports_bench --cases 100000 --history 100000 --keep /tmp/reports.db

Builds the file the way a sync would: generated cases (the bundled fake's `make_case`, so names, dates,
budgets and people look like real Intempus data) go in through `MirrorTable.apply_page`, one transaction
per page, triggers and all. The history a year of syncing would leave is then written directly (going
through the sync engine a million times would measure the engine, not the reports): updates of names,
notes and budgets, cases closed and reopened, inserts and deletes with the row as it was, from every
origin, spread over 2024 in the exact form `MirrorTable` records them.

Each report then runs as its own process of the real CLI (`python -m syncctl report ...`), its output to
/dev/null, and prints one Markdown row: wall time, CPU (user + sys) and peak RSS. The process is started
by `bench.measure`'s small wrapper, which reaps it with `os.wait4`: that is the child's own rusage, as
`getrusage(RUSAGE_CHILDREN)` would give inside the wrapper, but not inflated by this benchmark's own size
(Linux starts a child's peak RSS at its parent's, see `bench/measure.py`). Nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.measure import WRAPPER
from syncctl.connectors.intempus.connector import CASES
from syncctl.connectors.intempus.fake import FIRST_CASE_ID, FIRST_COUNTER, make_case
from syncctl.core.db import Database, json_text
from syncctl.core.merge import Policy
from syncctl.core.mirror import MirrorTable

PAGE = 10_000
YEAR_START = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
YEAR_SECONDS = 366 * 24 * 3600
HISTORY_BATCH = 50_000
# What a year of history holds, by kind: (op, origin, weight).
HISTORY_KINDS = (
    ("update", "pull", 55),
    ("update", "push", 15),
    ("update", "cli", 5),
    ("insert", "pull", 15),
    ("insert", "cli", 2),
    ("delete", "pull", 6),
    ("delete", "push", 1),
    ("delete", "cli", 1),
)


def generated_cases(count: int, seed: int) -> Iterator[list[dict[str, Any]]]:
    """Pages of cases with the fake's ids and counters (gaps where other records were deleted)."""
    rng = random.Random(seed)
    case_id, stamp = FIRST_CASE_ID, FIRST_COUNTER
    page: list[dict[str, Any]] = []
    for _ in range(count):
        case_id += 1 if rng.random() < 0.8 else 2 + rng.randrange(5)
        stamp += 1 + rng.randrange(3)
        page.append(make_case(case_id, stamp, rng))
        if len(page) == PAGE:
            yield page
            page = []
    if page:
        yield page


def build_cases(path: Path, count: int, seed: int) -> list[int]:
    """The `cases` table through the one write path; returns the ids written."""
    db = Database.open(path)
    ids: list[int] = []
    try:
        table = MirrorTable.open(db, CASES)
        for page in generated_cases(count, seed):
            table.apply_page(page, policy=Policy.REMOTE, run_id=None, full=False)
            ids.extend(case["id"] for case in page)
        with db.transaction():
            # The inserts' own history is replaced by a year of it below.
            db.conn.execute("DELETE FROM _syncctl_history")
    finally:
        db.close()
    return ids


def history_rows(count: int, ids: list[int], seed: int) -> Iterator[tuple[Any, ...]]:
    """`count` history rows in `MirrorTable`'s form, oldest first, spread over 2024."""
    rng = random.Random(seed + 1)
    kinds = [(op, origin) for op, origin, weight in HISTORY_KINDS for _ in range(weight)]
    step = YEAR_SECONDS / max(count, 1)
    gone_id = ids[-1] + 1 if ids else FIRST_CASE_ID
    for number in range(count):
        at = (YEAR_START + datetime.timedelta(seconds=int(number * step))).isoformat()
        op, origin = kinds[rng.randrange(len(kinds))]
        run_id = None if origin == "cli" else 1 + number // 2000
        if op == "insert":
            yield (run_id, at, "intempus", "cases", str(ids[rng.randrange(len(ids))]), op, origin, None)
        elif op == "delete":
            gone_id += 1
            case = make_case(gone_id, FIRST_COUNTER + number, rng)
            row = {k: (int(v) if isinstance(v, bool) else v) for k, v in case.items()}
            row["responsibles"] = json.dumps(row["responsibles"])
            yield (run_id, at, "intempus", "cases", str(gone_id), op, origin, json_text(row))
        else:
            changes: dict[str, list[Any]] = {"logical_timestamp": [number, number + 1]}
            roll = rng.random()
            if roll < 0.1:
                changes["active"] = [1, False] if rng.random() < 0.7 else [0, True]
            elif roll < 0.4:
                changes["hour_budget"] = [f"{rng.randrange(4000) / 2:.2f}", f"{rng.randrange(4000) / 2:.2f}"]
            else:
                changes["notes"] = ["", f"Ændret #{number}"]
            record = str(ids[rng.randrange(len(ids))])
            yield (run_id, at, "intempus", "cases", record, op, origin, json_text(changes))


def build_history(path: Path, count: int, ids: list[int], seed: int) -> None:
    db = Database.open(path)
    try:
        rows = history_rows(count, ids, seed)
        while True:
            batch = [row for _, row in zip(range(HISTORY_BATCH), rows, strict=False)]
            if not batch:
                break
            with db.transaction():
                db.conn.executemany(
                    "INSERT INTO _syncctl_history (run_id, at, source, table_name, record_id, op, origin,"
                    " changes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    batch,
                )
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no ANALYZE: a synced file has no statistics
    finally:
        db.close()


def measure(args: list[str], db_path: Path, work: Path) -> tuple[float, float, float, int]:
    """Run `python -m syncctl ARGS` with stdout to /dev/null: (wall s, CPU s, peak RSS MB, exit code)."""
    figures = work / "rusage.txt"
    command = [sys.executable, "-I", "-S", "-c", WRAPPER, str(figures), sys.executable, "-m", "syncctl"]
    env = {**os.environ, "SYNCCTL_DB": str(db_path), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with open(os.devnull, "wb") as devnull, open(work / "stderr.txt", "wb") as err:
        pid = os.posix_spawn(
            command[0],
            [*command, *args],
            env,
            file_actions=[(os.POSIX_SPAWN_DUP2, devnull.fileno(), 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)],
        )
        os.waitpid(pid, 0)
    wall, user, system, maxrss, code = figures.read_text().split()
    if int(code) != 0:
        sys.stderr.write((work / "stderr.txt").read_text(errors="replace"))
    return float(wall), float(user) + float(system), int(maxrss) / 1024.0, int(code)


# (title, arguments after `syncctl report`); {id} is a record with history, {dir} a fresh folder.
REPORTS: tuple[tuple[str, list[str]], ...] = (
    ("summary by responsible_name", ["summary", "cases", "--group-by", "responsible_name"]),
    (
        "summary, --where active=1 --sum hour_budget",
        ["summary", "cases", "--group-by", "responsible_name", "--where", "active=1", "--sum", "hour_budget"],
    ),
    (
        "summary by id --sum hour_budget (a group per case)",
        ["summary", "cases", "--group-by", "id", "--sum", "hour_budget"],
    ),
    ("changes (every row)", ["changes"]),
    ("changes (every row), csv", ["changes", "--format", "csv"]),
    ("changes --since/--until (one month)", ["changes", "--since", "2024-06-01", "--until", "2024-07-01"]),
    ("changes --id", ["changes", "--id", "{id}"]),
    ("cases, one month", ["cases", "--start", "2024-06-01", "--end", "2024-07-01"]),
    (
        "cases, one month, --out-dir",
        ["cases", "--start", "2024-06-01", "--end", "2024-07-01", "--out-dir", "{dir}"],
    ),
    ("cases, a year", ["cases", "--start", "2024-01-01", "--end", "2025-01-01"]),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", default="json", help="the format every report is written in")
    parser.add_argument("--keep", type=Path, help="build (or reuse) the file here instead of a temporary one")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="syncctl-reports-bench.") as temp:
        work = Path(temp)
        db_path = options.keep or work / "reports.db"
        if not db_path.exists():
            gc.disable()  # a million case dicts: no point in collecting them over and over
            started = time.perf_counter()
            ids = build_cases(db_path, options.cases, options.seed)
            build_history(db_path, options.history, ids, options.seed)
            gc.enable()
            sys.stderr.write(f"built {db_path} in {time.perf_counter() - started:.0f} s\n")
        some_id = Database.open(db_path, read_only=True)
        try:
            record = some_id.scalar("SELECT record_id FROM _syncctl_history ORDER BY id LIMIT 1 OFFSET 1000")
            size_mb = db_path.stat().st_size / 1e6
        finally:
            some_id.close()
        print(
            f"{options.cases:,} cases, {options.history:,} history rows, file {size_mb:,.0f} MB,"
            f" format {options.format}, {os.cpu_count()} CPUs\n"
        )
        print("| report | wall s | CPU s | peak RSS MB |")
        print("|---|---:|---:|---:|")
        for title, args in REPORTS:
            filled = [a.replace("{id}", str(record)).replace("{dir}", str(work / "out")) for a in args]
            if "--format" not in filled:
                filled += ["--format", options.format]
            wall, cpu, rss, code = measure(["report", *filled], db_path, work)
            failed = "" if code == 0 else f" (exit {code})"
            print(f"| `{title}`{failed} | {wall:.2f} | {cpu:.2f} | {rss:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
