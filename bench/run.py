"""Benchmark syncctl against dlt on the bundled fake Intempus and write `bench/RESULTS.md`.

    python -m bench.run [--sizes 100000,1000000] [--repeat 3] [--repeat-large 1] [--skip-dlt] [--out PATH]

Per N: one fake Intempus process, started once; the fake's own serving time and the floor (download +
json.loads); then cases 1-5 for syncctl and dlt, each tool in its own temp folder, every run its own
measured process, and after every run the mirror checked against the fake's state fetched over HTTP.
Progress goes to stderr. Every process started here is ended on exit, Ctrl-C or error.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from bench import check, measure, report
from bench.remote import KEY, USER, FakeProcess
from bench.report import LARGE, Run, SizeInfo

BENCH_DIR = Path(__file__).resolve().parent
EDITS = 1000  # local edits pushed in case 5
SEED = 20250101

METHOD = [
    "- Every tool runs as its own process; wall time is measured around it, user+sys CPU time and peak RSS "
    "(`ru_maxrss`) come from `os.wait4` on that process, so they are its own (children it waited for "
    "included), not the benchmark's.",
    "- The fake Intempus (`syncctl fake-intempus`) is a separate process on loopback, started once per N and "
    "never restarted between cases. It serves list pages by joining cached per-case JSON bytes. "
    "*fake: serve one full listing* is a plain `requests` loop (`bench/floor.py --no-parse`) that downloads "
    "every page without decoding it: the fake's own time for one listing. Every case's JSON is rendered "
    "before the first timed run (`POST /_fake/render`) and again after each mutation, so no timed run "
    "pays for rendering. *fake CPU s* is the CPU time the fake "
    "process used during each run (from `/proc`): when it is well below the run's wall time, the fake was "
    "not the bottleneck.",
    "- The floor (`bench/floor.py`) downloads every page and `json.loads` it, nothing else: the least CPU "
    "any mirror must spend.",
    "- syncctl: `syncctl sync --full --json` (cases 1, 2, 4) or `syncctl sync --json` (cases 3, 5), with "
    "`INTEMPUS_API_URI/USER/KEY`, `SYNCCTL_DB`, `SYNCCTL_PAGE_SIZE` and `SYNCCTL_MAX_REQUESTS_PER_MINUTE=0` "
    "in the environment, run in its temp folder.",
    "- dlt: `bench/dlt_pipeline.py`, its `rest_api` source with a `json_link` paginator on `meta.next` "
    "(cursor paging, as syncctl), primary key `id`, write disposition `merge` (dlt's `delete-insert` "
    "strategy, the one its `sqlalchemy` destination supports), into the `cases` table of one SQLite file via "
    "`dlt[sqlalchemy]`, `max_table_nesting=0` (lists stay JSON, as in syncctl), telemetry off. It has an "
    "incremental cursor on `logical_timestamp` (sent as `logical_timestamp__gt`): case 3 uses it; the full "
    "runs (cases 2, 4) first reset that cursor (`pipeline_drop(..., state_only=True)`), so every case is "
    "listed again, and that reset is part of the measured run.",
    "- Case 1 starts from an empty folder each run; the last run's file is then used by cases 2-5. Cases 3 "
    "and 4 change the fake (`POST /_fake/mutate`) before every run, and both tools then sync the same "
    "changes. Case 5 edits 1,000 rows of syncctl's `cases` with plain sqlite3 (`UPDATE ... SET notes`) "
    "before every run.",
    "- Correct means checked, not reported: after every run the fake's whole current state is fetched over "
    "HTTP with a plain paging loop and compared with the SQLite file: for syncctl every field of every case "
    "(as the storage contract says it is stored: booleans 0/1, lists as JSON), for dlt the set of ids and "
    "each case's `logical_timestamp`. Case 5 also checks that every edit arrived in the fake.",
    "- cases/s is N divided by the median wall time of a run that lists every case.",
]


def log(message: str) -> None:
    sys.stderr.write(f"bench: {message}\n")
    sys.stderr.flush()


@dataclass
class Tools:
    syncctl: list[str]
    dlt_python: str | None  # None: dlt is not measured
    page_size: int
    timeout_s: float
    dlt_cases_large: set[str] = field(default_factory=lambda: {"1", "2", "3", "4"})
    base_env: dict[str, str] = field(default_factory=dict)

    def syncctl_env(self, fake: FakeProcess, db: Path) -> dict[str, str]:
        return {
            **self.base_env,
            "INTEMPUS_API_URI": fake.url,
            "INTEMPUS_API_USER": USER,
            "INTEMPUS_API_KEY": KEY,
            "SYNCCTL_DB": str(db),
            "SYNCCTL_PAGE_SIZE": str(self.page_size),
            "SYNCCTL_MAX_REQUESTS_PER_MINUTE": "0",
        }

    def command(self, tool: str, fake: FakeProcess, db: Path, *, full: bool) -> list[str]:
        if tool == "syncctl":
            return [*self.syncctl, "sync", *(["--full"] if full else []), "--json"]
        assert self.dlt_python is not None
        script = str(BENCH_DIR / "dlt_pipeline.py")
        command = [
            self.dlt_python,
            script,
            "--url",
            fake.url,
            "--db",
            str(db),
            "--page-size",
            str(self.page_size),
        ]
        return command if full else [*command, "--incremental"]


class SizeBench:
    """Cases 1-5 at one N, against one fake process."""

    def __init__(self, n: int, repeat: int, tools: Tools, work: Path, runs: list[Run], info: SizeInfo):
        self.n = n
        self.repeat = repeat
        self.tools = tools
        self.work = work
        self.runs = runs
        self.info = info
        self.names = ["syncctl"] + (["dlt"] if tools.dlt_python else [])
        self.dlt_cases = tools.dlt_cases_large if n >= LARGE else {"1", "2", "3", "4"}
        self.folders: dict[str, Path] = {}
        self.broken: set[str] = set()  # tools that timed out: not run again at this N
        self.fake = FakeProcess(tools.syncctl, n, seed=SEED, work_dir=work, env=tools.base_env)

    def run_all(self) -> None:
        log(f"[{self.n:,}] starting the fake Intempus with {self.n:,} cases")
        self.info.fake_startup_s = self.fake.start()
        log(f"[{self.n:,}] fake ready at {self.fake.url} after {self.info.fake_startup_s:.1f} s")
        self.info.fake_render_s = self.fake.render()
        log(f"[{self.n:,}] fake pre-rendered every case's JSON in {self.info.fake_render_s:.1f} s")
        self.bench_serving()
        for rep in range(1, self.repeat + 1):
            for tool in self.names:
                self.case_initial(tool, rep)
        for rep in range(1, self.repeat + 1):
            for tool in self.names:
                self.sync("2", tool, rep, full=True)
        for rep in range(1, self.repeat + 1):
            changes = max(1, self.n // 1000)
            self.fake.mutate(update=changes, seed=SEED + 300 + rep)
            self.fake.render()
            for tool in self.names:
                self.sync("3", tool, rep, full=False, changes=changes)
        for rep in range(1, self.repeat + 1):
            share = max(1, self.n // 100)
            self.fake.mutate(update=share, delete=share, create=share, seed=SEED + 400 + rep)
            self.fake.render()
            for tool in self.names:
                self.sync("4", tool, rep, full=True, changes=3 * share)
        for rep in range(1, self.repeat + 1):
            self.case_push(rep)

    def stop(self) -> None:
        self.fake.stop()

    # -- one measured process ------------------------------------------------------------------------------

    def measured(self, case: str, tool: str, rep: int, command: list[str], env: dict[str, str], cwd: Path,
                 changes: int = 0) -> tuple[Run, measure.Measured]:  # fmt: skip
        before = self.fake.cpu_s()
        result = measure.measure(command, env=env, cwd=cwd, timeout_s=self.tools.timeout_s)
        run = Run(
            n=self.n,
            case=case,
            tool=tool,
            rep=rep,
            changes=changes,
            wall_s=result.wall_s,
            user_s=result.user_s,
            sys_s=result.sys_s,
            maxrss_mb=result.maxrss_mb,
            fake_cpu_s=self.fake.cpu_s() - before,
            output=result.last_json(),
        )
        if result.timed_out:
            run.error = f"killed after {self.tools.timeout_s:.0f} s"
            self.broken.add(tool)
        elif result.returncode != 0:
            run.error = f"exit {result.returncode}: {result.stderr_tail(3)}"
        self.runs.append(run)
        return run, result

    def progress(self, run: Run) -> None:
        if run.error is not None:
            verdict = f"; FAILED: {run.error}"
        elif run.ok is None:
            verdict = ""
        else:
            verdict = "; correct" if run.ok else f"; WRONG: {run.check}"
        log(
            f"[{self.n:,}] case {run.case} {run.tool} run {run.rep}: {run.wall_s:.2f} s wall, "
            f"{run.cpu_s:.2f} s CPU, {run.maxrss_mb:.0f} MB, fake {run.fake_cpu_s:.2f} s CPU{verdict}"
        )

    def verify(self, run: Run, tool: str) -> None:
        if run.error is not None:
            return
        snap = self.fake.snapshot(self.tools.page_size)
        verdict = check.compare(self.folders[tool] / "cases.db", snap, fields=tool == "syncctl")
        run.ok, run.check = verdict.ok, verdict.summary
        if tool == "syncctl" and run.output is not None and run.output.get("status") != "ok":
            run.ok, run.check = False, f"syncctl reported status {run.output.get('status')}: {run.check}"

    # -- the cases ---------------------------------------------------------------------------------------

    def bench_serving(self) -> None:
        folder = self.work / "floor"
        folder.mkdir()
        command = [sys.executable, str(BENCH_DIR / "floor.py"), "--url", self.fake.url]
        command += ["--page-size", str(self.tools.page_size)]
        env = self.tools.base_env
        for rep in range(1, self.repeat + 1):
            run, _ = self.measured("serve", "fake", rep, [*command, "--no-parse"], env, folder)
            self.progress(run)
        for rep in range(1, self.repeat + 1):
            run, _ = self.measured("floor", "floor", rep, command, env, folder)
            self.progress(run)
        self.info.fake_rss_mb = measure.process_rss_mb(self.fake.pid)

    def case_initial(self, tool: str, rep: int) -> None:
        if tool in self.broken or (tool == "dlt" and "1" not in self.dlt_cases):
            return
        folder = self.work / tool / f"case1-run{rep}"
        folder.mkdir(parents=True)
        previous = self.folders.get(tool)
        self.folders[tool] = folder
        if previous is not None:
            shutil.rmtree(previous)  # one mirror per tool at a time: 1M-case files are large
        self.sync("1", tool, rep, full=True)

    def sync(self, case: str, tool: str, rep: int, *, full: bool, changes: int = 0) -> Run | None:
        if tool == "dlt" and case not in self.dlt_cases:
            return None
        if tool in self.broken:
            log(f"[{self.n:,}] case {case} {tool} run {rep}: skipped, an earlier {tool} run timed out")
            return None
        folder = self.folders[tool]
        db = folder / "cases.db"
        env = self.tools.syncctl_env(self.fake, db) if tool == "syncctl" else self.tools.base_env
        command = self.tools.command(tool, self.fake, db, full=full)
        run, _ = self.measured(case, tool, rep, command, env, folder, changes)
        self.verify(run, tool)
        self.progress(run)
        return run

    def case_push(self, rep: int) -> None:
        if "syncctl" in self.broken:
            return
        db = self.folders["syncctl"] / "cases.db"
        conn = sqlite3.connect(db, timeout=60)
        try:
            ids = [row[0] for row in conn.execute("SELECT id FROM cases ORDER BY id")]
            chosen = sorted(random.Random(SEED + 500 + rep).sample(ids, min(EDITS, len(ids) // 10 or 1)))
            edits = {case_id: f"bench edit {rep} of case {case_id}" for case_id in chosen}
            with conn:
                conn.executemany(
                    "UPDATE cases SET notes = ? WHERE id = ?", [(v, k) for k, v in edits.items()]
                )
        finally:
            conn.close()
        run = self.sync("5", "syncctl", rep, full=False, changes=len(edits))
        if run is None or run.error is not None:
            return
        remote = self.fake.get_cases(chosen)
        lost = [case_id for case_id, notes in edits.items() if remote.get(case_id, {}).get("notes") != notes]
        pushed = (run.output or {}).get("pushed")
        if lost or pushed != len(edits):
            run.ok = False
            run.check = f"{len(lost)} of {len(edits)} edits not in Intempus (pushed={pushed}); {run.check}"
            log(f"[{self.n:,}] case 5 run {rep}: WRONG: {run.check}")


# -- the command ---------------------------------------------------------------------------------------


def default_syncctl() -> list[str]:
    script = Path(sys.executable).parent / "syncctl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "syncctl"]


def version_of(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "unknown"


_SOURCES = (
    "import hashlib, pathlib, syncctl; root = pathlib.Path(syncctl.__file__).parent; "
    "code = b''.join(p.read_bytes() for p in sorted(root.glob('*.py'))); "
    "print(hashlib.sha256(code).hexdigest()[:12], 'in', root)"
)


def syncctl_sources(syncctl: list[str]) -> str:
    """Which syncctl code ran: a digest of its sources and where they are (others may be editing them)."""
    python = syncctl[0] if syncctl[0].endswith(("python", "python3")) or len(syncctl) > 1 else None
    if python is None:
        first = Path(syncctl[0]).read_text(errors="replace").splitlines()[:1]
        python = first[0][2:].strip() if first and first[0].startswith("#!") else sys.executable
    found = version_of([python, "-I", "-c", _SOURCES])
    return f"sources sha256 {found}" if found != "unknown" else "sources unknown"


def git_state() -> str:
    head = version_of(["git", "-C", str(BENCH_DIR.parent), "rev-parse", "--short", "HEAD"])
    try:
        dirty = subprocess.run(
            ["git", "-C", str(BENCH_DIR.parent), "status", "--porcelain", "syncctl"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"commit {head}"
    return f"commit {head}" + (" with uncommitted changes in syncctl/" if dirty else "")


def machine_meta(tools: Tools, args: argparse.Namespace) -> dict[str, Any]:
    cpu = "unknown CPU"
    memory = "unknown memory"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024**2:.0f} GiB RAM"
                break
    except OSError:
        pass
    syncctl_version = version_of([*tools.syncctl, "--version"])
    sources = syncctl_sources(tools.syncctl)
    repo = str(BENCH_DIR.parent / "syncctl")
    where = git_state() if sources.endswith(repo) else "a copy outside this work tree"
    syncctl_version += f" ({where}; {sources})"
    software = [f"Python {platform.python_version()}", f"SQLite {sqlite3.sqlite_version}", syncctl_version]
    if tools.dlt_python is not None:
        software.append(f"dlt {version_of([tools.dlt_python, '-c', 'import dlt; print(dlt.__version__)'])}")
    large = (
        f"; {args.repeat_large} at N ≥ {LARGE:,} (a 1M-case run takes minutes)" if args.repeat_large else ""
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "software": ", ".join(software),
        "page_size": tools.page_size,
        "repeats": f"{args.repeat} (medians){large}",
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="case counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (medians are reported)")
    parser.add_argument("--repeat-large", type=int, default=1, help=f"runs per case at N ≥ {LARGE:,}")
    parser.add_argument("--skip-dlt", action="store_true", help="measure syncctl and the floor only")
    parser.add_argument(
        "--dlt-cases-large", default="1,2,3,4", help=f"the cases dlt runs at N ≥ {LARGE:,} (it is slow there)"
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "RESULTS.md", help="the results table")
    parser.add_argument("--page-size", type=int, default=1000, help="cases per request, for every tool")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds one measured run may take")
    parser.add_argument("--syncctl", help="the syncctl command (default: the one beside this Python)")
    parser.add_argument("--dlt-python", help="the Python that has dlt (default: this one)")
    parser.add_argument("--work-dir", type=Path, help="where the temp folders go (default: the system's)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folders (mirrors, logs)")
    parser.add_argument(
        "--note",
        action="append",
        default=[],
        help="a line for the notes under each size's table (repeatable)",
    )
    parser.add_argument(
        "--render", action="store_true", help="measure nothing: write --out again from its .json file"
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep sizes measured by an earlier run that this run does not measure",
    )
    args = parser.parse_args(argv)
    args.size_list = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: the processes started are ended


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    raw_path = args.out.with_suffix(".json")
    if args.render:
        data = json.loads(raw_path.read_text())
        write(args.out, raw_path, *report.from_json(data), data["meta"])
        return 0
    signal.signal(signal.SIGTERM, _terminate)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("INTEMPUS_", "SYNCCTL_"))}
    base_env["RUNTIME__DLT_TELEMETRY_ENABLED"] = "false"
    tools = Tools(
        syncctl=args.syncctl.split() if args.syncctl else default_syncctl(),
        dlt_python=None if args.skip_dlt else (args.dlt_python or sys.executable),
        page_size=args.page_size,
        timeout_s=args.timeout,
        dlt_cases_large={c.strip() for c in args.dlt_cases_large.split(",") if c.strip()},
        base_env=base_env,
    )
    if tools.dlt_python is not None:
        probe = subprocess.run([tools.dlt_python, "-c", "import dlt"], capture_output=True, text=True)
        if probe.returncode != 0:
            log(f"dlt cannot be imported by {tools.dlt_python}: pip install -e '.[bench]', or use --skip-dlt")
            return 2
    meta = machine_meta(tools, args)
    runs: list[Run] = []
    infos: list[SizeInfo] = []
    if args.merge and raw_path.exists():
        old_runs, old_infos = report.from_json(json.loads(raw_path.read_text()))
        infos = [i for i in old_infos if i.n not in args.size_list]
        runs = [r for r in old_runs if r.n not in args.size_list]
    sizes = ", ".join(f"{n:,}" for n in args.size_list)
    log(f"{meta['cores']} cores; sizes {sizes}; syncctl: {' '.join(tools.syncctl)}")
    status = 0
    try:
        for n in args.size_list:
            repeat = args.repeat_large if n >= LARGE else args.repeat
            info = SizeInfo(n=n, repeat=repeat, date=meta["date"], notes=[f"- {note}" for note in args.note])
            infos.append(info)
            work = Path(tempfile.mkdtemp(prefix=f"syncctl-bench-{n}-", dir=args.work_dir))
            bench = SizeBench(n, repeat, tools, work, runs, info)
            try:
                bench.run_all()
            finally:
                bench.stop()
                if args.keep:
                    log(f"[{n:,}] kept {work}")
                else:
                    shutil.rmtree(work, ignore_errors=True)
                write(args.out, raw_path, runs, sorted(infos, key=lambda i: i.n), meta)
    except KeyboardInterrupt:
        log("interrupted: every process started is ended; the results so far are written")
        status = 130
    finally:
        measure.stop_all()
    return status


def write(out: Path, raw_path: Path, runs: list[Run], infos: list[SizeInfo], meta: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(runs, key=lambda r: (r.n, list(report.CASES).index(r.case), r.tool != "syncctl", r.rep))
    out.write_text(report.render(ordered, infos, meta, METHOD), encoding="utf-8")
    raw_path.write_text(json.dumps(report.to_json(ordered, infos, meta), indent=1) + "\n", encoding="utf-8")
    log(f"wrote {out} and {raw_path}")


if __name__ == "__main__":
    sys.exit(main())
