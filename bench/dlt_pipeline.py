"""The alternative to syncctl: dlt's `rest_api` source mirroring Intempus cases into SQLite.

Run as its own process by `bench/run.py` (so its time, CPU and memory can be measured), or by hand:

    python bench/dlt_pipeline.py --url http://127.0.0.1:8000/web/v1 --db /tmp/dlt/cases.db [--incremental]

It is set up the way a dlt user would for this job: cursor paging by following `meta.next`, primary key
`id` (created as the table's PRIMARY KEY), write disposition `merge` into the `cases` table of one SQLite
file (dataset `main`, so the table is in that file), lists kept as JSON (`max_table_nesting=0`, as syncctl
does), and an incremental cursor on `logical_timestamp` sent as `logical_timestamp__gt`. A full run (the
default) first resets that cursor so every case is listed again; `--incremental` lists only what changed
since the last run. dlt's merge never deletes rows that are gone remotely. Prints one JSON line with
what was loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# Before dlt is imported: no telemetry from a benchmark, no progress bars, no config from the caller's cwd.
os.environ.setdefault("RUNTIME__DLT_TELEMETRY_ENABLED", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

import dlt
from dlt.pipeline.helpers import pipeline_drop
from dlt.sources.rest_api import rest_api_source

PIPELINE_NAME = "intempus_cases"
RESOURCE = "cases"
INITIAL_TIMESTAMP = 0  # below every logical_timestamp: the first run lists everything


def build_source(url: str, user: str, key: str, page_size: int) -> Any:
    config: dict[str, Any] = {
        "client": {
            "base_url": url.rstrip("/") + "/",
            "auth": {
                "type": "api_key",
                "name": "Authorization",
                "api_key": f"ApiKey {user}:{key}",
                "location": "header",
            },
            # meta.next is a host-relative path; dlt joins it to the URL of the page it came from
            "paginator": {"type": "json_link", "next_url_path": "meta.next"},
        },
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge", "max_table_nesting": 0},
        "resources": [
            {
                "name": RESOURCE,
                "endpoint": {
                    "path": "case/",
                    "data_selector": "objects",
                    "params": {"limit": page_size, "pagination_type": "cursor"},
                    "incremental": {
                        "cursor_path": "logical_timestamp",
                        "start_param": "logical_timestamp__gt",
                        "initial_value": INITIAL_TIMESTAMP,
                    },
                },
            }
        ],
    }
    return rest_api_source(config, max_table_nesting=0)  # type: ignore[arg-type]


def make_pipeline(db: Path, work_dir: Path) -> Any:
    # A PRIMARY KEY on `id`, as a mirror wants: without it (dlt's default) the merge's
    # `DELETE ... WHERE EXISTS (SELECT ... FROM staging WHERE id = ...)` scans the staging table once per row,
    # and a full re-sync of 100,000 cases did not finish in 8 minutes.
    destination = dlt.destinations.sqlalchemy(credentials=f"sqlite:///{db}", create_primary_keys=True)
    return dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        pipelines_dir=str(work_dir),
        destination=destination,
        dataset_name="main",  # the `main` schema of SQLite: tables in the file itself, not an attached one
    )


def reset_cursor(pipeline: Any) -> bool:
    """Forget the incremental cursor, so this run lists every case; False on the very first run."""
    try:
        drop = pipeline_drop(pipeline, resources=[RESOURCE], state_only=True)
    except Exception as exc:  # PipelineNeverRan: nothing to forget
        if type(exc).__name__ == "PipelineNeverRan":
            return False
        raise
    drop()
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URI, e.g. http://127.0.0.1:8000/web/v1")
    parser.add_argument("--db", required=True, type=Path, help="the SQLite file to mirror into")
    parser.add_argument("--user", default=os.environ.get("INTEMPUS_API_USER", "demo"))
    parser.add_argument("--key", default=os.environ.get("INTEMPUS_API_KEY", "demo-key"))
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--work-dir", type=Path, help="dlt's pipeline folder (default: beside --db)")
    parser.add_argument("--incremental", action="store_true", help="only what changed since the last run")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    db = args.db.resolve()
    work_dir = (args.work_dir or db.parent / "dlt_pipelines").resolve()
    pipeline = make_pipeline(db, work_dir)
    reset = False if args.incremental else reset_cursor(pipeline)
    source = build_source(args.url, args.user, args.key, args.page_size)
    info = pipeline.run(source)
    info.raise_on_failed_jobs()
    counts = pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace else {}
    print(
        json.dumps(
            {
                "mode": "incremental" if args.incremental else "full",
                "cursor_reset": reset,
                "rows": int(counts.get(RESOURCE, 0)),
                "duration_s": round(time.perf_counter() - started, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
