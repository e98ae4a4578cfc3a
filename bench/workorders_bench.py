"""Work orders at scale: an inbound folder of N client files, a first run, then an unchanged re-run.

    python -m bench.workorders_bench --files 100000

Makes the folder in a temporary directory (files like the `tracos` fixtures, statuses varied, aged an hour
as files a cron run finds usually are), runs `syncctl sync workorders --json` twice, each as its own
process, and prints Markdown table rows. Wall time is measured around the process; CPU (user + sys) and
peak RSS come from the `resource.struct_rusage` that `os.wait4` returns for exactly that child
(`resource.getrusage(RUSAGE_CHILDREN)` would report the largest child so far for every later run).
Standalone: it imports nothing from syncctl, so it measures the installed command as a user runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FLAGS = ("isCanceled", "isDone", "isOnHold", "isPending")  # one of them, or none (in progress)
AGE_NS = 3600 * 10**9


@dataclass
class Measured:
    wall_s: float
    cpu_s: float
    maxrss_mb: float
    returncode: int
    result: dict[str, Any]


def client_file(number: int) -> bytes:
    chosen = FLAGS[number % 5] if number % 5 < len(FLAGS) else None
    document = {
        "orderNo": number,
        "isCanceled": chosen == "isCanceled",
        "isDeleted": number % 97 == 0,
        "isDone": chosen == "isDone",
        "isOnHold": chosen == "isOnHold",
        "isPending": chosen == "isPending",
        "summary": f"Example workorder #{number}",
        "creationDate": "2025-05-02T00:00:00+00:00",
        "lastUpdateDate": f"2025-05-{2 + number % 27:02d}T01:00:00+00:00",
        "deletedDate": None,
    }
    return json.dumps(document).encode()


def make_folder(folder: Path, files: int, bad: int) -> None:
    stamp = time.time_ns() - AGE_NS
    for number in range(1, files + 1):
        path = folder / f"{number}.json"
        path.write_bytes(client_file(number) if number > bad else b'{"orderNo": ')
        os.utime(path, ns=(stamp, stamp))


def measure(command: list[str], env: dict[str, str], cwd: Path) -> Measured:
    out = cwd / "stdout.json"
    started = time.perf_counter()
    with open(out, "wb") as stdout, open(os.devnull, "wb") as devnull:
        pid = os.posix_spawn(
            command[0],
            command,
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, stdout.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, devnull.fileno(), 2),
            ],
        )
        _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    lines = out.read_text(encoding="utf-8").splitlines()
    return Measured(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        maxrss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        returncode=os.waitstatus_to_exitcode(status),
        result=json.loads(lines[-1]) if lines else {},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workorders_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--files", type=int, default=100_000, help="client files in the inbound folder")
    parser.add_argument("--bad", type=int, default=0, help="how many of them are corrupt")
    parser.add_argument(
        "--syncctl", default=str(Path(sys.executable).with_name("syncctl")), help="the command"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="where to make the folders (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the folders and the SQLite file")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="syncctl-workorders-", dir=args.work_dir))
    try:
        inbound, outbound = work / "in", work / "out"
        inbound.mkdir()
        outbound.mkdir()
        made = time.perf_counter()
        make_folder(inbound, args.files, args.bad)
        print(f"<!-- {args.files} files made in {time.perf_counter() - made:.1f} s under {work} -->")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", str(work)),
            "WORKORDERS_INBOUND_DIR": str(inbound),
            "WORKORDERS_OUTBOUND_DIR": str(outbound),
            "SYNCCTL_DB": str(work / "syncctl.db"),
        }
        command = [args.syncctl, "sync", "workorders", "--json"]
        print("| run | files | wall s | CPU s | peak RSS MB | inserted | unchanged | rejected | exit |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for run in ("first run", "unchanged re-run"):
            measured = measure(command, env, work)
            result = measured.result
            print(
                f"| {run} | {args.files} | {measured.wall_s:.2f} | {measured.cpu_s:.2f}"
                f" | {measured.maxrss_mb:.0f} | {result.get('inserted', '?')}"
                f" | {result.get('unchanged', '?')} | {result.get('rejected_files', '?')}"
                f" | {measured.returncode} |",
                flush=True,
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
