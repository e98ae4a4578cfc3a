"""Benchmark the grid source on the bundled fake grid API and print Markdown table rows.

    python -m bench.grid_bench --measurements 300000,3000000 [--components 100] [--pandas-python PATH]

Per N: one `syncctl fake-grid` process (N / components measurements per component, generated before it
serves), then, each as its own measured process (`bench.measure`: wall time, and user+sys CPU and peak RSS
from `os.wait4`):

- the initial pull, `syncctl sync grid --json` into an empty file, checked: every measurement arrived;
- an incremental sync with nothing new, three times (the median; `in-run` is the run's own duration, the
  rest is starting Python and the CLI, whose floor `syncctl --version` is measured too);
- `syncctl report kpi --format json` over the whole period and over a period that cuts a day at each end,
  three times each, checked: the daily counts add up to the measurements in the period; plus the report's
  own computation timed in this process (`kpi_report` on a read-only open, no process start);
- with `--pandas-python`, the obvious alternative a data person would write, in that interpreter (a
  throwaway venv with pandas: never a dependency of syncctl): `pandas.read_sql` of the period's
  measurements joined to their components, then `groupby(day, component type, measurement type)` mean and
  count, checked against syncctl's report.

The fake's CPU during the pull (from /proc) shows how much of the pull's wall time was the fake. Nothing
here asserts timings; the tests never run it. Every process started here is ended on exit or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import measure

WHOLE = ("2024-12-01T00:00:00Z", "2026-01-01T00:00:00Z")
CUT = ("2025-01-03T06:00:00Z", "2025-02-20T18:00:00Z")  # cuts a day at each end
PANDAS_SCRIPT = r"""
import json, sqlite3, sys, time
import pandas as pd
started = time.perf_counter()
db, start, end = sys.argv[1:4]
query = (
    "SELECT m.timestamp, c.type AS component_type, m.type AS measurement_type, m.value"
    " FROM grid_measurements m JOIN grid_components c ON c.id = m.component_id"
    " WHERE m.timestamp >= ? AND m.timestamp < ?"
)
with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
    frame = pd.read_sql(query, conn, params=(start, end))
frame["day"] = frame["timestamp"].str[:10]
keys = ["day", "component_type", "measurement_type"]
daily = frame.groupby(keys)["value"].agg(["mean", "count"]).reset_index()
rows = [[r["day"], r["component_type"], r["measurement_type"], float(r["mean"]), int(r["count"])]
        for _, r in daily.iterrows()]
print(json.dumps({"seconds": time.perf_counter() - started, "rows": rows}))
"""


def log(message: str) -> None:
    sys.stderr.write(f"grid bench: {message}\n")
    sys.stderr.flush()


@dataclass
class Figures:
    measurements: int
    pull: measure.Measured
    fake_cpu_s: float
    noop_wall_s: float
    start_s: float  # `syncctl --version`: starting Python and the CLI, the floor of every command
    noop_in_run_s: float
    kpi_whole_s: float
    kpi_cut_s: float
    kpi_rss_mb: float
    kpi_compute_whole_ms: float
    kpi_compute_cut_ms: float
    pandas: measure.Measured | None
    pandas_in_run_s: float | None
    db_mb: float


def start_fake(syncctl: Sequence[str], components: int, per_component: int, work: Path) -> tuple[Any, str]:
    """The fake as its own process on a free port; returns once it serves, with its API URI."""
    out = work / "fake.log"
    proc = measure.start(
        [*syncctl, "fake-grid", "--port", "0", "--components", str(components),
         "--measurements-per-component", str(per_component)],
        env=os.environ, cwd=work, log=out,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        text = out.read_text(encoding="utf-8", errors="replace") if out.exists() else ""
        if " at http" in text:
            url = text.split(" at ", 1)[1].split()[0]
            return proc, url
        if proc.poll() is not None:
            raise SystemExit(f"the fake stopped: {text.strip()[-500:]}")
        time.sleep(0.2)
    raise SystemExit("the fake did not start within 10 minutes")


def run_json(measured: measure.Measured, what: str) -> dict[str, Any]:
    data = measured.last_json()
    if measured.returncode != 0 or data is None:
        raise SystemExit(f"{what} failed ({measured.returncode}): {measured.stderr_tail()}")
    return data


def median_of(runs: list[measure.Measured]) -> float:
    return statistics.median(r.wall_s for r in runs)


def kpi_runs(syncctl: Sequence[str], env: dict[str, str], work: Path, period: tuple[str, str], expected: int,
             timeout_s: float) -> tuple[list[measure.Measured], list[list[Any]]]:  # fmt: skip
    runs = []
    report: dict[str, Any] = {}
    for _ in range(3):
        out = work / "kpi.json"
        done = measure.measure(
            [*syncctl, "report", "kpi", "--start", period[0], "--end", period[1], "--format", "json",
             "--out", str(out)],
            env=env, cwd=work, timeout_s=timeout_s,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"report kpi failed: {done.stderr_tail()}")
        report = json.loads(out.read_text(encoding="utf-8"))
        runs.append(done)
    counted = sum(row["count"] for row in report["daily_averages"])
    if counted != expected:
        raise SystemExit(
            f"report kpi counted {counted} measurements in {period}, the mirror holds {expected}"
        )
    rows = [list(row.values()) for row in report["daily_averages"]]
    return runs, rows


def in_period(db: Path, period: tuple[str, str]) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        found = conn.execute(
            "SELECT count(*) FROM grid_measurements WHERE timestamp >= ? AND timestamp < ?", period
        ).fetchone()
    return int(found[0])


def compute_ms(db: Path, period: tuple[str, str]) -> float:
    """The report's own computation in this process: a read-only open, then `kpi_report`, best of three."""
    from syncctl.connectors.grid.kpi import kpi_report
    from syncctl.core.db import Database
    from syncctl.reports.periods import Period

    best = float("inf")
    for _ in range(3):
        opened = Database.open(db, read_only=True)
        try:
            started = time.perf_counter()
            kpi_report(opened, Period.parse(*period))
            best = min(best, time.perf_counter() - started)
        finally:
            opened.close()
    return best * 1000


def same_rows(ours: list[list[Any]], theirs: list[list[Any]]) -> bool:
    if len(ours) != len(theirs):
        return False
    return all(
        a[:3] == b[:3] and a[4] == b[4] and abs(a[3] - b[3]) <= 1e-9 * max(1.0, abs(b[3]))
        for a, b in zip(ours, theirs, strict=True)
    )


def bench_size(args: argparse.Namespace, total: int, syncctl: list[str]) -> Figures:
    per_component = total // args.components
    work = Path(tempfile.mkdtemp(prefix=f"grid-bench-{total}-", dir=args.work_dir))
    log(f"N = {total:,}: starting the fake in {work}")
    fake, url = start_fake(syncctl, args.components, per_component, work)
    try:
        db = work / "grid.db"
        env = {**os.environ, "GRID_API_URI": url, "GRID_API_USER": "manager", "GRID_API_PASSWORD": "manager",
               "SYNCCTL_DB": str(db), "SYNCCTL_MAX_REQUESTS_PER_MINUTE": "0"}  # fmt: skip
        env.pop("SYNCCTL_PAGE_SIZE", None)  # the grid's default: 10,000 a page
        log("initial pull")
        fake_cpu = measure.process_cpu_s(fake.pid)
        pull = measure.measure(
            [*syncctl, "sync", "grid", "--json"], env=env, cwd=work, timeout_s=args.timeout
        )
        fake_cpu = measure.process_cpu_s(fake.pid) - fake_cpu
        result = run_json(pull, "the initial pull")
        if result["fetched"] != total + args.components or result["status"] != "ok":
            raise SystemExit(
                f"the initial pull fetched {result['fetched']}, expected {total + args.components}"
            )
        log(f"pulled in {pull.wall_s:.1f} s; incremental syncs with nothing new")
        noops = [measure.measure([*syncctl, "sync", "grid", "--json"], env=env, cwd=work, timeout_s=120)
                 for _ in range(3)]  # fmt: skip
        starts = [measure.measure([*syncctl, "--version"], env=env, cwd=work, timeout_s=60) for _ in range(3)]
        in_run = statistics.median(run_json(r, "an incremental sync")["duration_s"] for r in noops)
        if any(run_json(r, "an incremental sync")["fetched"] for r in noops):
            raise SystemExit("an incremental sync with nothing new fetched something")
        log("report kpi")
        whole_runs, ours = kpi_runs(syncctl, env, work, WHOLE, total, args.timeout)
        cut_runs, _ = kpi_runs(syncctl, env, work, CUT, in_period(db, CUT), args.timeout)
        pandas_run, pandas_s = None, None
        if args.pandas_python:
            log("pandas read_sql + groupby")
            pandas_run = measure.measure(
                [args.pandas_python, "-c", PANDAS_SCRIPT, str(db), *WHOLE], env=env, cwd=work,
                timeout_s=args.timeout,
            )  # fmt: skip
            answer = run_json(pandas_run, "the pandas script")
            pandas_s = float(answer["seconds"])
            if not same_rows(ours, answer["rows"]):
                raise SystemExit("pandas and syncctl disagree on the daily averages")
        return Figures(
            measurements=total,
            pull=pull,
            fake_cpu_s=fake_cpu,
            noop_wall_s=median_of(noops),
            start_s=median_of(starts),
            noop_in_run_s=in_run,
            kpi_whole_s=median_of(whole_runs),
            kpi_cut_s=median_of(cut_runs),
            kpi_rss_mb=max(r.maxrss_mb for r in whole_runs + cut_runs),
            kpi_compute_whole_ms=compute_ms(db, WHOLE),
            kpi_compute_cut_ms=compute_ms(db, CUT),
            pandas=pandas_run,
            pandas_in_run_s=pandas_s,
            db_mb=sum(p.stat().st_size for p in work.glob("grid.db*")) / 2**20,
        )
    finally:
        measure.stop(fake)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


HEADER = (
    "| measurements | initial pull: wall s | CPU s | peak RSS MB | fake CPU s | file MB | `--version` s "
    "| no-op sync: wall s (in-run s) | report kpi whole: wall s (compute ms) | cut days: wall s (compute ms) "
    "| kpi peak RSS MB | pandas read_sql+groupby: wall s (in-script s), peak RSS MB |\n"
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def row(f: Figures) -> str:
    pandas = (
        f"{f.pandas.wall_s:.2f} ({f.pandas_in_run_s:.2f}), {f.pandas.maxrss_mb:.0f}"
        if f.pandas is not None and f.pandas_in_run_s is not None
        else "not run"
    )
    return (
        f"| {f.measurements:,} | {f.pull.wall_s:.1f} | {f.pull.cpu_s:.1f} | {f.pull.maxrss_mb:.0f} "
        f"| {f.fake_cpu_s:.1f} | {f.db_mb:.0f} | {f.start_s:.2f} "
        f"| {f.noop_wall_s:.2f} ({f.noop_in_run_s:.3f}) "
        f"| {f.kpi_whole_s:.2f} ({f.kpi_compute_whole_ms:.0f}) "
        f"| {f.kpi_cut_s:.2f} ({f.kpi_compute_cut_ms:.0f}) "
        f"| {f.kpi_rss_mb:.0f} | {pandas} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measurements", default="300000,3000000", help="comma-separated sizes N")
    parser.add_argument("--components", type=int, default=100)
    parser.add_argument("--pandas-python", help="a Python with pandas (a throwaway venv) for the comparison")
    parser.add_argument("--syncctl", default=f"{sys.executable} -m syncctl", help="how to run syncctl")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per measured run")
    parser.add_argument("--work-dir", type=Path, help="where the temp folders go (default: the system's)")
    parser.add_argument("--keep", action="store_true", help="keep each size's folder (fake log, SQLite file)")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.measurements.split(",") if s.strip()]
    syncctl = args.syncctl.split()
    print(HEADER, flush=True)
    try:
        for total in sizes:
            print(row(bench_size(args, total, syncctl)), flush=True)
    finally:
        measure.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
