"""Is the mirror equal to the remote? Checked from the SQLite file itself, against a fetched `Snapshot`.

syncctl's `cases` is compared field by field (every remote field, as the storage contract says it is
stored); dlt's table by ids and `logical_timestamp` only, since dlt stores values in its own way (and leaves
out columns that were null in every row).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.remote import Snapshot


@dataclass
class Verdict:
    ok: bool
    summary: str  # one line: what was compared, or how it differs


def _stored_json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.dumps(json.loads(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        return value


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _examples(ids: set[int], limit: int = 3) -> str:
    shown = ", ".join(str(i) for i in sorted(ids)[:limit])
    return f"{shown}, ..." if len(ids) > limit else shown


def compare(db: Path, snap: Snapshot, *, table: str = "cases", fields: bool = True) -> Verdict:
    """Compare ids, logical_timestamps and (with `fields`) every field of `table` with the snapshot."""
    if not db.exists():
        return Verdict(False, f"no database at {db}")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({_quote(table)})")}
        if not columns:
            return Verdict(False, f"no table {table} in {db.name}")
        missing_columns = [k for k in snap.keys if k not in columns] if fields else []
        if missing_columns:
            return Verdict(False, f"columns missing from {table}: {', '.join(missing_columns)}")
        local_stamps: dict[int, int] = {}
        local_hashes: dict[int, int] = {}
        if fields:
            names = ", ".join(map(_quote, snap.keys))
            id_at, stamp_at = snap.keys.index("id"), snap.keys.index("logical_timestamp")
            json_at = [i for i, k in enumerate(snap.keys) if k in snap.json_keys]
            for row in conn.execute(f"SELECT {names} FROM {_quote(table)}"):
                values = list(row)
                for i in json_at:
                    values[i] = _stored_json(values[i])
                local_stamps[row[id_at]] = row[stamp_at]
                local_hashes[row[id_at]] = hash(tuple(values))
        else:
            query = f"SELECT id, logical_timestamp FROM {_quote(table)}"
            local_stamps = dict(conn.execute(query).fetchall())
            count = conn.execute(f"SELECT count(*) FROM {_quote(table)}").fetchone()[0]
            if count != len(local_stamps):
                return Verdict(False, f"{count - len(local_stamps)} duplicate ids in {table}")
    finally:
        conn.close()
    remote_ids, local_ids = snap.stamps.keys(), local_stamps.keys()
    missing = set(remote_ids - local_ids)
    extra = set(local_ids - remote_ids)
    common = remote_ids & local_ids
    stale = {i for i in common if local_stamps[i] != snap.stamps[i]}
    differ = {i for i in common if i not in stale and local_hashes[i] != snap.hashes[i]} if fields else set()
    problems = []
    if missing:
        problems.append(f"{len(missing):,} missing ({_examples(missing)})")
    if extra:
        problems.append(f"{len(extra):,} extra, gone remotely ({_examples(extra)})")
    if stale:
        problems.append(f"{len(stale):,} with an old logical_timestamp ({_examples(stale)})")
    if differ:
        problems.append(f"{len(differ):,} with other field values ({_examples(differ)})")
    if problems:
        return Verdict(False, "; ".join(problems))
    what = (
        f"ids, logical_timestamp and all {len(snap.keys)} fields" if fields else "ids and logical_timestamp"
    )
    return Verdict(True, f"{len(snap.stamps):,} cases equal: {what}")
