from __future__ import annotations

from functools import partial

from syncctl.connectors.intempus.fields import is_writable
from syncctl.core import merge
from syncctl.core.merge import Conflict, Policy, remote_changed

# The case merge: the core's merge with Intempus' writable fields.
merge_case = partial(merge.merge_rows, writable=is_writable)
local_changes = partial(merge.local_changes, writable=is_writable)

BASE = {"id": 1, "name": "base", "notes": "n", "number": "1", "customer_name": "C", "logical_timestamp": 10}


def test_merge_takes_each_side_where_only_it_changed() -> None:
    local = dict(BASE, name="mine")
    remote = dict(BASE, notes="theirs", logical_timestamp=11)
    merged, conflicts = merge_case(1, BASE, local, remote, Policy.REMOTE)
    assert merged == dict(BASE, name="mine", notes="theirs", logical_timestamp=11)
    assert conflicts == []


def test_merge_both_sides_same_value_is_no_conflict() -> None:
    merged, conflicts = merge_case(1, BASE, dict(BASE, name="x"), dict(BASE, name="x"), Policy.REMOTE)
    assert (merged["name"], conflicts) == ("x", [])


def test_merge_conflict_follows_policy() -> None:
    local, remote = dict(BASE, name="mine"), dict(BASE, name="theirs")
    for policy, winner in ((Policy.REMOTE, "theirs"), (Policy.LOCAL, "mine")):
        merged, conflicts = merge_case(1, BASE, local, remote, policy)
        assert merged["name"] == winner
        assert conflicts == [Conflict(1, "name", "base", "mine", "theirs", policy)]


def test_merge_ignores_local_edits_of_fields_intempus_owns() -> None:
    local = dict(BASE, customer_name="edited", logical_timestamp=99)
    assert local_changes(BASE, local) == {}
    merged, _ = merge_case(1, BASE, local, BASE, Policy.LOCAL)
    assert merged == BASE


def test_merge_remote_changed_detects_any_field() -> None:
    assert not remote_changed(BASE, dict(BASE))
    assert remote_changed(BASE, dict(BASE, logical_timestamp=11))
