"""The alternative to syncctl for the grid: dlt's `rest_api` source mirroring components and measurements into
SQLite. Run as its own process (so its time, CPU and memory can be measured), or by hand:

    python bench/dlt_grid_pipeline.py --url http://127.0.0.1:8001/api --db /tmp/dlt/grid.db

Set up as a dlt user would for this API: an OAuth2 password-flow token fetched first (dlt's rest_api has no
password flow) and sent as a bearer token, cursor paging by `next` sent back as `after`, pages of 10,000,
primary key `id` (created as the table's PRIMARY KEY), write disposition `merge`, one SQLite file. Prints one
JSON line with what was loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RUNTIME__DLT_TELEMETRY_ENABLED", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

import dlt
import requests
from dlt.sources.rest_api import rest_api_source


def fetch_token(url: str, user: str, password: str) -> str:
    answer = requests.post(
        url.rstrip("/") + "/token",
        data={"grant_type": "password", "username": user, "password": password, "scope": "user"},
        timeout=30,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def build_source(url: str, token: str, page_size: int) -> Any:
    paginator = {"type": "cursor", "cursor_path": "next", "cursor_param": "after"}
    config: dict[str, Any] = {
        "client": {"base_url": url.rstrip("/") + "/", "auth": {"type": "bearer", "token": token}},
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge", "max_table_nesting": 0},
        "resources": [
            {
                "name": name,
                "endpoint": {
                    "path": name,
                    "data_selector": "data",
                    "params": {"limit": page_size},
                    "paginator": paginator,
                },
            }
            for name in ("components", "measurements")
        ],
    }
    return rest_api_source(config, max_table_nesting=0)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--db", required=True, type=Path)
    parser.add_argument("--user", default="user")
    parser.add_argument("--password", default="user")
    parser.add_argument("--page-size", type=int, default=10000)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    db = args.db.resolve()
    destination = dlt.destinations.sqlalchemy(credentials=f"sqlite:///{db}", create_primary_keys=True)
    pipeline = dlt.pipeline(
        pipeline_name="grid",
        pipelines_dir=str(db.parent / "dlt_pipelines"),
        destination=destination,
        dataset_name="main",
    )
    info = pipeline.run(
        build_source(args.url, fetch_token(args.url, args.user, args.password), args.page_size)
    )
    info.raise_on_failed_jobs()
    counts = pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace else {}
    print(json.dumps({"rows": dict(counts), "seconds": round(time.perf_counter() - started, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
