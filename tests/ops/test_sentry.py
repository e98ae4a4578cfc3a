"""Optional Sentry reporting: a failed run is sent with its source and run id, never with a secret."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from syncctl.ops import sentry
from tests.e2e import World


class Captured(Transport):
    events: ClassVar[list[dict[str, Any]]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        for item in envelope.items:
            if item.type == "event" and item.payload.json is not None:
                Captured.events.append(item.payload.json)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    Captured.events = []
    real_setup = sentry.setup
    monkeypatch.setattr(sentry, "setup", lambda values, scrub: real_setup(values, scrub, transport=Captured))
    return Captured.events


def test_sentry_failed_run_is_reported_with_source_and_run_id_and_no_secret(
    world: World, captured: list[dict[str, Any]]
) -> None:
    outcome = world.run(
        "sync", SENTRY_DSN="https://public@sentry.example/1", INTEMPUS_API_KEY="wrong-secret-9"
    )
    assert outcome.exit_code == 1
    [event] = captured
    assert event["tags"]["source"] == "intempus" and event["tags"]["run_id"].isdigit()
    assert "authentication failed" in event["message"] or "authentication failed" in str(event)
    assert "wrong-secret-9" not in str(event)


def test_sentry_successful_run_sends_nothing(world: World, captured: list[dict[str, Any]]) -> None:
    assert world.run("sync", SENTRY_DSN="https://public@sentry.example/1").exit_code == 0
    assert captured == []


def test_sentry_off_without_dsn() -> None:
    assert sentry.setup({}, str) is None
