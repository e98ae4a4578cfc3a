"""The remote side of a benchmark: the bundled fake Intempus as its own process, and what it holds.

`Snapshot` is the fake's whole state as fetched over HTTP with a plain paging loop, reduced per case to its
`logical_timestamp` and a hash of every field as the SQLite contract says it must be stored; mirrors are
compared against it (`bench/check.py`), never against what a tool says it did.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from bench import measure

USER = "demo"
KEY = "demo-key"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stored_value(value: Any) -> Any:
    """A remote value as the `cases` table must hold it: bools as 0/1, lists and objects as JSON."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return value


@dataclass
class Snapshot:
    counter: int  # the fake's change counter when fetched: a snapshot is valid while it is unchanged
    keys: list[str]  # every field, sorted
    json_keys: frozenset[str]  # fields whose values are lists or objects
    stamps: dict[int, int] = field(default_factory=dict)  # id -> logical_timestamp
    hashes: dict[int, int] = field(default_factory=dict)  # id -> hash of every field as stored


class FakeProcess:
    """`syncctl fake-intempus` on a free loopback port; `start` returns once it serves."""

    def __init__(
        self, syncctl: Sequence[str], cases: int, *, seed: int, work_dir: Path, env: Mapping[str, str]
    ):
        self.cases = cases
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/web/v1"
        self.root = f"http://127.0.0.1:{self.port}"
        self.log = work_dir / "fake.log"
        self._command = [*syncctl, "fake-intempus", "--port", str(self.port), "--cases", str(cases)]
        self._command += ["--seed", str(seed)]
        self._env = env
        self._work_dir = work_dir
        self.proc: Any = None
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"ApiKey {USER}:{KEY}"
        self._snapshot: Snapshot | None = None

    def start(self, timeout_s: float = 600.0) -> float:
        """Start the fake and wait until /_fake/stats answers; returns the seconds that took."""
        started = time.perf_counter()
        self.proc = measure.start(self._command, env=self._env, cwd=self._work_dir, log=self.log)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the fake Intempus exited with {self.proc.returncode}: see {self.log}")
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"the fake Intempus did not answer within {timeout_s:.0f} s")
            try:
                stats = self.stats(timeout=(1.0, 2.0))
            except requests.RequestException:
                time.sleep(0.2)
                continue
            if stats["cases"] != self.cases:
                raise RuntimeError(f"the fake holds {stats['cases']} cases, not {self.cases}")
            return time.perf_counter() - started

    def stop(self) -> None:
        self.session.close()
        if self.proc is not None:
            measure.stop(self.proc)

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def cpu_s(self) -> float:
        return measure.process_cpu_s(self.pid)

    def stats(self, timeout: tuple[float, float] = (5.0, 60.0)) -> dict[str, int]:
        response = self.session.get(f"{self.root}/_fake/stats", timeout=timeout)
        response.raise_for_status()
        data: dict[str, int] = response.json()
        return data

    def mutate(
        self, *, update: int = 0, delete: int = 0, create: int = 0, seed: int = 0
    ) -> dict[str, list[int]]:
        body = {"update": update, "delete": delete, "create": create, "seed": seed}
        response = self.session.post(f"{self.root}/_fake/mutate", json=body, timeout=(5.0, 600.0))
        response.raise_for_status()
        data: dict[str, list[int]] = response.json()
        return data

    def render(self) -> float:
        """Have the fake render every case's JSON now (POST /_fake/render), so no timed run pays for it.

        A fake without that endpoint gets one full listing instead, which fills the same cache. Returns
        the seconds it took.
        """
        started = time.perf_counter()
        response = self.session.post(f"{self.root}/_fake/render", timeout=(5.0, 900.0))
        if response.status_code == 404:
            self._snapshot = None
            self.snapshot(1000)
        else:
            response.raise_for_status()
        return time.perf_counter() - started

    def get_cases(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The named cases as Intempus has them now (`id__in` listings of 100)."""
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), 100):
            batch = ids[start : start + 100]
            params: dict[str, str | int] = {"id__in": ",".join(map(str, batch)), "limit": len(batch)}
            response = self.session.get(f"{self.url}/case/", params=params, timeout=(5.0, 60.0))
            response.raise_for_status()
            found.update((case["id"], case) for case in response.json()["objects"])
        return found

    def snapshot(self, page_size: int) -> Snapshot:
        """The fake's current state, fetched with a plain cursor-paging loop; cached until it changes."""
        counter = self.stats()["counter"]
        if self._snapshot is not None and self._snapshot.counter == counter:
            return self._snapshot
        snap: Snapshot | None = None
        params: dict[str, Any] | None = {"limit": page_size, "pagination_type": "cursor"}
        next_url: str | None = f"{self.url}/case/"
        while next_url:
            response = self.session.get(next_url, params=params, timeout=(5.0, 300.0))
            response.raise_for_status()
            params = None
            data = json.loads(response.content)
            objects = data["objects"]
            if snap is None:
                first = objects[0] if objects else {}
                keys = sorted(first)
                json_keys = frozenset(k for k, v in first.items() if isinstance(v, list | dict))
                snap = Snapshot(counter, keys, json_keys)
            stamps, hashes, keys = snap.stamps, snap.hashes, snap.keys
            for case in objects:
                case_id = case["id"]
                stamps[case_id] = case["logical_timestamp"]
                hashes[case_id] = hash(tuple([stored_value(case.get(k)) for k in keys]))
            next_path = data["meta"]["next"]
            next_url = urljoin(response.url, next_path) if next_path else None
        assert snap is not None
        if self.stats()["counter"] != counter:
            raise RuntimeError("the fake changed while its state was being fetched")
        self._snapshot = snap
        return snap
