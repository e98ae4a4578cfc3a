"""Three-way merge of one case, field by field, against the last synced version. Pure functions.

All values are in *row space*: as stored in SQLite (booleans 0/1, lists as JSON text), so a value read
from the mirror, one captured in the pending log and one converted from Intempus compare directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from syncctl.connectors.intempus.fields import is_writable

Row = dict[str, Any]


class Policy(StrEnum):
    REMOTE = "remote"
    LOCAL = "local"


@dataclass(frozen=True)
class Conflict:
    case_id: int
    field: str
    base: Any
    local: Any
    remote: Any
    winner: Policy


# The pseudo-field recorded when one side deleted the case and the other edited it.
ROW = "(case)"


def local_changes(base: Mapping[str, Any], local: Mapping[str, Any]) -> dict[str, Any]:
    """Writable fields the local side changed since the last sync."""
    return {
        name: value
        for name, value in local.items()
        if name != "id" and is_writable(name) and value != base.get(name)
    }


def merge_case(
    case_id: int, base: Mapping[str, Any], local: Mapping[str, Any], remote: Mapping[str, Any], policy: Policy
) -> tuple[Row, list[Conflict]]:
    """The merged row and the fields both sides changed differently, decided by `policy`."""
    merged = dict(remote)
    conflicts: list[Conflict] = []
    for name, mine in local_changes(base, local).items():
        theirs = remote.get(name)
        if mine == theirs:
            continue
        if theirs == base.get(name):
            merged[name] = mine
            continue
        conflicts.append(Conflict(case_id, name, base.get(name), mine, theirs, policy))
        if policy is Policy.LOCAL:
            merged[name] = mine
    return merged, conflicts


def remote_changed(base: Mapping[str, Any], remote: Mapping[str, Any]) -> bool:
    """Whether Intempus changed anything in the case since the last sync."""
    return any(value != base.get(name) for name, value in remote.items())
