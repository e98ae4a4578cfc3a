"""`syncctl sync grid` end to end against the fake on a loopback port: pulls, deletes, pushes, roles and
tokens."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from syncctl.connectors.grid.fake import FakeGrid
from syncctl.core.fakehttp import Response
from tests.connectors.grid.world import ACCOUNTS, GridWorld, daily_sums_are_exact

COMPONENT_COLUMNS = "id, name, type, substation, voltage_kv, capacity_mva, length_km, status, version"
MEASUREMENT_COLUMNS = "id, component_id, timestamp, type, value, version"


def mirror_equals_fake(world: GridWorld) -> None:
    """Whole rows of both tables against the fake's own objects."""
    components = [tuple(c.values()) for c in world.fake.components()]
    assert world.query(f"SELECT {COMPONENT_COLUMNS} FROM grid_components ORDER BY id") == components
    measurements = [tuple(m.values()) for m in world.fake.measurements()]
    assert world.query(f"SELECT {MEASUREMENT_COLUMNS} FROM grid_measurements ORDER BY id") == measurements


def test_sync_first_run_mirrors_both_tables_with_numbers_as_numbers(grid: GridWorld) -> None:
    result = grid.sync()
    assert (result["mode"], result["status"], result["fetched"], result["inserted"]) == (
        "full",
        "ok",
        9010,
        9010,
    )
    assert result["cursor"] == grid.fake.max_version
    mirror_equals_fake(grid)
    assert grid.query("SELECT DISTINCT typeof(value), typeof(component_id) FROM grid_measurements") == [
        ("real", "integer")
    ]
    daily_sums_are_exact(grid)
    # 10 components and 9 pages of 1000 measurements after one token; nothing written
    assert [m for m, _ in grid.fake.requests].count("POST") == 1
    assert grid.writes() == []


def test_sync_again_without_changes_lists_nothing_and_changes_nothing(synced: GridWorld) -> None:
    result = synced.sync()
    assert (result["mode"], result["fetched"], result["inserted"], result["updated"]) == (
        "incremental",
        0,
        0,
        0,
    )
    version = synced.fake.max_version
    assert [p for _, p in synced.fake.requests] == [
        "/api/token",
        f"/api/components?limit=1000&version_gt={version}",
        f"/api/measurements?limit=1000&version_gt={version}",
    ]


def test_sync_incremental_takes_creates_and_updates_of_both_resources(synced: GridWorld) -> None:
    fake = synced.fake
    fake.update_component(2, name="L-renamed", length_km=12.5)
    fake.update_measurement(5, value=999.5)
    fake.create_measurement(3, "2025-01-02T10:00:00+01:00", "power", 1.25)
    result = synced.sync()
    assert (result["fetched"], result["inserted"], result["updated"]) == (3, 1, 2)
    assert result["cursor"] == fake.max_version
    mirror_equals_fake(synced)
    daily_sums_are_exact(synced)


def test_sync_full_sees_a_deleted_component_and_its_measurements_with_few_requests(synced: GridWorld) -> None:
    fake = synced.fake
    fake.delete_component(4)  # and its 900 measurements, remotely
    fake.delete_measurement(1)
    assert synced.sync()["deleted"] == 0  # deletes do not show in a version_gt listing
    synced.fake.requests.clear()
    result = synced.sync("--full")
    assert (result["mode"], result["deleted"]) == ("full", 1 + 901)
    mirror_equals_fake(synced)
    daily_sums_are_exact(synced)
    assert synced.query("SELECT count(*) FROM grid_measurements WHERE component_id = 4") == [(0,)]
    reads = [p for m, p in fake.requests if m == "GET" and "?" not in p]
    assert len(reads) <= 1 + 8  # the component, and a spot check of the 901 measurements
    history = synced.query(
        "SELECT table_name, count(*) FROM _syncctl_history WHERE op = 'delete' AND origin = 'pull' GROUP BY 1"
    )
    assert sorted(history) == [("grid_components", 1), ("grid_measurements", 901)]


def test_sync_full_reads_each_missing_record_when_the_spot_check_finds_one(synced: GridWorld) -> None:
    """A listing that left out records that still exist cannot prove the others gone."""
    fake = synced.fake
    hidden = {10, 20, 30}

    original = fake._render_measurements

    def render(positions: list[int]) -> str:  # the listing leaves out three live measurements
        kept = [p for p in positions if fake._m_id[p] not in hidden]
        return original(kept if len(positions) > 1 else positions)

    fake._render_measurements = render  # type: ignore[method-assign]
    for number in range(100, 1000, 100):
        fake.delete_measurement(number)
    result = synced.sync("--full")
    assert result["deleted"] == 9
    assert synced.query("SELECT count(*) FROM grid_measurements WHERE id IN (10, 20, 30)") == [(3,)]


def test_sync_full_mass_delete_is_refused_and_deletes_nothing(synced: GridWorld) -> None:
    for component in range(1, 4):
        synced.fake.delete_component(component)
    outcome = synced.run("sync", "grid", "--full", "--json")
    assert outcome.exit_code == 4
    assert "nothing was deleted" in outcome.json()["error"]
    assert synced.query("SELECT count(*) FROM grid_components") == [(10,)]


class ExpiringFake(FakeGrid):
    """Expires every token after the third measurements page: a key rotation in the middle of a run."""

    pages = 0

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        response = super().handle(method, path, headers, body)
        if path.startswith("/api/measurements?"):
            self.pages += 1
            if self.pages == 3:
                self.expire_tokens()
        return response


def test_sync_renews_the_token_once_after_a_401_and_carries_on(build_grid: Any) -> None:
    world: GridWorld = build_grid(
        ExpiringFake(components=10, measurements_per_component=900, seed=7, accounts=ACCOUNTS)
    )
    result = world.sync()
    assert (result["status"], result["fetched"]) == ("ok", 9010)
    paths = [p for _, p in world.fake.requests]
    assert paths.count("/api/token") == 2
    fourth = paths.index("/api/token", 1)
    assert paths[fourth - 1] == paths[fourth + 1]  # the refused page is asked for again with the new token
    mirror_equals_fake(world)


class TokenLog(FakeGrid):
    """Remembers every token it issues."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.issued: list[str] = []
        super().__init__(*args, **kwargs)

    def _issue_token(self, body: bytes) -> Response:
        response = super()._issue_token(body)
        if response.status == 200:
            self.issued.append(json.loads(response.body)["access_token"])
        return response


def test_sync_token_is_never_stored_or_printed(build_grid: Any) -> None:
    fake = TokenLog(components=3, measurements_per_component=30, seed=1, accounts=ACCOUNTS)
    world: GridWorld = build_grid(fake)
    outcome = world.run("-vv", "sync", "grid", "--json")
    world.fake.expire_tokens()
    world.fake.add_fault("GET /api/components", status=401, times=2)
    failed = world.run("-vv", "sync", "grid", "--json")
    assert failed.exit_code == 1
    assert "authentication failed" in failed.json()["error"]
    files = b"".join(p.read_bytes() for p in world.db_path.parent.glob("mirror.db*"))
    assert len(fake.issued) == 3  # one for the first run, two for the second (renewed once after a 401)
    for token in fake.issued:
        for text in (outcome.stdout, outcome.stderr, failed.stdout, failed.stderr):
            assert token not in text
        assert token.encode() not in files


def test_sync_with_a_wrong_password_says_authentication_failed_once(grid: GridWorld) -> None:
    outcome = grid.run("sync", "grid", "--json", GRID_API_PASSWORD="not-the-password")
    assert outcome.exit_code == 1
    error = outcome.json()["error"]
    assert error.startswith("authentication failed: the grid API refused GRID_API_USER/GRID_API_PASSWORD")
    assert "not-the-password" not in outcome.stdout + outcome.stderr
    assert grid.fake.requests == [("POST", "/api/token")]


def test_sync_as_user_refuses_to_push_with_77_and_still_pulls(synced: GridWorld) -> None:
    synced.edit("UPDATE grid_measurements SET value = 1.5 WHERE id = 7")
    synced.edit("DELETE FROM grid_measurements WHERE id = 8")
    synced.edit("UPDATE grid_components SET name = 'mine' WHERE id = 1")
    synced.fake.update_measurement(9, value=4.25)
    outcome = synced.run("sync", "grid", "--json", user="user")
    assert outcome.exit_code == 77
    result = outcome.json()
    assert (result["status"], result["pushed"], result["fetched"]) == ("refused", 0, 1)
    assert "was not granted the manager scope" in result["error"]
    assert synced.writes() == []
    assert synced.query("SELECT value FROM grid_measurements WHERE id = 9") == [(4.25,)]
    pending = synced.query("SELECT table_name, record_id, op FROM _syncctl_pending ORDER BY 1, 2")
    assert pending == [("grid_components", 1, "update"), ("grid_measurements", 7, "update"),
                       ("grid_measurements", 8, "delete")]  # fmt: skip


def test_sync_as_manager_pushes_local_edits_of_both_tables(synced: GridWorld) -> None:
    synced.edit("UPDATE grid_measurements SET value = 1.5 WHERE id = 7")
    synced.edit("DELETE FROM grid_measurements WHERE id = 8")
    synced.edit(
        "INSERT INTO grid_measurements (component_id, timestamp, type, value) VALUES"
        " (2, '2025-01-01T05:00:00Z', 'current', 77.0)"
    )
    synced.edit("UPDATE grid_components SET name = 'T-renamed' WHERE id = 1")
    result = synced.sync()
    assert (result["status"], result["pushed"], result["push_failed"]) == ("ok", 4, 0)
    assert synced.query("SELECT count(*) FROM _syncctl_pending") == [(0,)]
    mirror_equals_fake(synced)
    daily_sums_are_exact(synced)
    created = [m for m in synced.fake.measurements() if m["value"] == 77.0]
    assert [(m["component_id"], m["timestamp"], m["type"]) for m in created] == [
        (2, "2025-01-01T05:00:00Z", "current")
    ]


def test_sync_push_of_an_insert_whose_answer_is_lost_creates_it_once(synced: GridWorld) -> None:
    synced.edit(
        "INSERT INTO grid_measurements (component_id, timestamp, type, value) VALUES"
        " (2, '2025-01-01T05:00:00+02:00', 'current', 77.0)"
    )
    synced.fake.add_fault("POST /api/measurements", kind="lose_answer")
    result = synced.sync()
    assert (result["pushed"], result["push_failed"]) == (1, 0)
    assert [m["timestamp"] for m in synced.fake.measurements() if m["value"] == 77.0] == [
        "2025-01-01T03:00:00Z"
    ]
    assert [m for m, p in synced.fake.requests if p == "/api/measurements"] == ["POST"]
    mirror_equals_fake(synced)
