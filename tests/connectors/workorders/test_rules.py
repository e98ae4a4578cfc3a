"""The pure decision of what one valid client file does to its row (`sync.reconcile`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from syncctl.connectors.workorders.sync import Plan, reconcile
from syncctl.connectors.workorders.translate import Status, WorkOrder, to_row
from syncctl.core.merge import Policy

AT = "2025-06-01T00:00:00+00:00"
ORDER = WorkOrder(
    number=7,
    title="Pump check",
    status=Status.PENDING,
    created_at=datetime(2025, 5, 2, tzinfo=UTC),
    updated_at=datetime(2025, 5, 2, 1, tzinfo=UTC),
)
FROM_FILE = {**to_row(ORDER), "is_synced": 1, "synced_at": AT}


def stored(**changes: Any) -> dict[str, Any]:
    return {**FROM_FILE, "synced_at": "2025-05-30T00:00:00+00:00", **changes}


@pytest.mark.parametrize(
    ("current", "plan"),
    [
        (None, Plan("inserted", FROM_FILE)),
        (stored(), Plan("unchanged")),
        (stored(title="old", updated_at="2025-05-02T00:00:00+00:00"), Plan("updated", FROM_FILE)),
        (stored(title="corrected"), Plan("updated", FROM_FILE)),  # same time: the file is not older
        (stored(title="new", updated_at="2025-05-02T02:00:00+00:00"), Plan("older")),
        (stored(description="ours"), Plan("unchanged")),  # the client's format has no description
        (stored(description="ours", title="x"), Plan("updated", {**FROM_FILE, "description": "ours"})),
        (stored(is_synced=0), Plan("updated", FROM_FILE)),  # the local edit agrees: now synced, no conflict
        (
            stored(is_synced=0, title="local", updated_at="2025-05-02T00:30:00+00:00"),
            Plan("updated", FROM_FILE, Policy.REMOTE),
        ),
        (
            stored(is_synced=0, title="local", updated_at="2025-05-03T00:00:00+00:00"),
            Plan("older", None, Policy.LOCAL),
        ),
        (
            stored(title="x", updated_at="yesterday"),
            Plan("updated", FROM_FILE),
        ),  # not a time: cannot be newer
    ],
)
def test_rules_newer_wins_and_local_changes_are_conflicts(current: dict[str, Any] | None, plan: Plan) -> None:
    assert reconcile(current, ORDER, AT) == plan
