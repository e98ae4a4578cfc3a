"""Three-way merge of one record, field by field, against the last synced version. Pure functions.

All values are in *row space*: as stored in SQLite (booleans 0/1, lists as JSON text), so a value read
from the mirror, one captured in the pending log and one converted from the remote compare directly.
Which fields a local edit may change remotely is the caller's to say (`writable`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

Row = dict[str, Any]


class Policy(StrEnum):
    REMOTE = "remote"
    LOCAL = "local"


@dataclass(frozen=True)
class Conflict:
    record_id: int | str
    field: str
    base: Any
    local: Any
    remote: Any
    winner: Policy


# The pseudo-field recorded when one side deleted the record and the other edited it.
ROW = "(case)"


def any_field(name: str) -> bool:
    return True


def local_changes(
    base: Mapping[str, Any], local: Mapping[str, Any], writable: Callable[[str], bool] = any_field
) -> dict[str, Any]:
    """Writable fields the local side changed since the last sync."""
    return {
        name: value
        for name, value in local.items()
        if name != "id" and writable(name) and value != base.get(name)
    }


def merge_rows(
    key: int | str,
    base: Mapping[str, Any],
    local: Mapping[str, Any],
    remote: Mapping[str, Any],
    policy: Policy,
    *,
    writable: Callable[[str], bool] = any_field,
) -> tuple[Row, list[Conflict]]:
    """The merged row and the fields both sides changed differently, decided by `policy`."""
    merged = dict(remote)
    conflicts: list[Conflict] = []
    for name, mine in local_changes(base, local, writable).items():
        theirs = remote.get(name)
        if mine == theirs:
            continue
        if theirs == base.get(name):
            merged[name] = mine
            continue
        conflicts.append(Conflict(key, name, base.get(name), mine, theirs, policy))
        if policy is Policy.LOCAL:
            merged[name] = mine
    return merged, conflicts


def remote_changed(base: Mapping[str, Any], remote: Mapping[str, Any]) -> bool:
    """Whether the remote changed anything in the record since the last sync."""
    return any(value != base.get(name) for name, value in remote.items())
