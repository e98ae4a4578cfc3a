"""The floor: the least work any mirror must do, list every page and decode its JSON, and nothing else.

Run as its own process by `bench/run.py`, or by hand:

    python bench/floor.py --url http://127.0.0.1:8000/web/v1 [--page-size 1000] [--no-parse]

Pages the case list with cursor paging (`pagination_type=cursor`, following `meta.next`), as syncctl and the
dlt pipeline do, with one `requests` session. Default: `json.loads` every page. With `--no-parse` it only
downloads: `meta.next` is read from the head of the body (the fake puts `meta` first) without decoding the
rest, which times the fake server itself. Prints one JSON line: pages, cases, bytes, seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from urllib.parse import urljoin

import requests

_NEXT = re.compile(rb'"next":(null|"((?:[^"\\]|\\.)*)")')
_TOTAL = re.compile(rb'"total_count":(\d+)')
HEAD = 1024  # bytes of a body that hold its whole `meta` object


def list_pages(session: requests.Session, url: str, page_size: int, *, parse: bool) -> dict[str, float]:
    params: dict[str, str | int] | None = {"limit": page_size, "pagination_type": "cursor"}
    next_url: str | None = url.rstrip("/") + "/case/"
    pages = cases = size = 0
    started = time.perf_counter()
    while next_url:
        response = session.get(next_url, params=params, timeout=(10, 300))
        response.raise_for_status()
        body = response.content
        pages += 1
        size += len(body)
        params = None  # meta.next carries every parameter
        if parse:
            data = json.loads(body)
            cases += len(data["objects"])
            next_path = data["meta"]["next"]
        else:
            head = body[:HEAD]
            found = _NEXT.search(head)
            if found is None:
                raise SystemExit(f"no meta.next in the first {HEAD} bytes of {response.url}")
            next_path = None if found.group(1) == b"null" else json.loads(found.group(1))
            if pages == 1 and (total := _TOTAL.search(head)) is not None:
                cases = int(total.group(1))
        next_url = urljoin(response.url, next_path) if next_path else None
    return {
        "pages": pages,
        "cases": cases,
        "bytes": size,
        "duration_s": round(time.perf_counter() - started, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URI, e.g. http://127.0.0.1:8000/web/v1")
    parser.add_argument("--user", default=os.environ.get("INTEMPUS_API_USER", "demo"))
    parser.add_argument("--key", default=os.environ.get("INTEMPUS_API_KEY", "demo-key"))
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--no-parse", action="store_true", help="download only; do not decode the JSON")
    args = parser.parse_args(argv)
    with requests.Session() as session:
        session.headers["Authorization"] = f"ApiKey {args.user}:{args.key}"
        session.headers["Accept"] = "application/json"
        result = list_pages(session, args.url, args.page_size, parse=not args.no_parse)
    print(json.dumps({"parse": not args.no_parse, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
