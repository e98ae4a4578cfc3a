"""`syncctl sierra item get|update`, `status` for the queue, and `syncctl fake-sierra`, by the real CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from syncctl.connectors.sierra import fake
from syncctl.connectors.sierra.fake import BASE_PATH
from tests.connectors.sierra.world import SierraWorld, sierra_world


@pytest.fixture
def synced(world: SierraWorld) -> SierraWorld:
    world.sync()
    return world


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SierraWorld]:
    """One synced world for the tests that change nothing in it (reads, refused input)."""
    path = tmp_path_factory.mktemp("shared")
    with pytest.MonkeyPatch.context() as patch, sierra_world(path) as world:
        patch.chdir(path)
        world.sync()
        yield world


def test_item_get_reads_the_mirror_by_id_and_by_barcode(shared: SierraWorld) -> None:
    item = shared.fake.item(shared.ids(1, start=12)[0])

    by_id = shared.run("sierra", "item", "get", item["id"], "--json")
    by_barcode = shared.run("sierra", "item", "get", "--barcode", item["barcode"], "--json")
    as_text = shared.run("sierra", "item", "get", item["id"])

    assert by_id.exit_code == by_barcode.exit_code == as_text.exit_code == 0
    expected = {**{k: v for k, v in item.items() if k != "volumes"}, "id": int(item["id"])}
    assert by_id.json() == by_barcode.json() == expected
    assert f'callNumber   "{item["callNumber"]}"' in as_text.stdout
    requests_before = len(shared.fake.requests)
    shared.run("sierra", "item", "get", "--barcode", item["barcode"])
    assert len(shared.fake.requests) == requests_before  # the mirror answers: no request to Sierra


def test_item_get_remote_uses_the_barcode_query_for_a_barcode_the_mirror_does_not_know(
    synced: SierraWorld,
) -> None:
    item_id = synced.ids(1, start=13)[0]
    synced.fake.update_item(item_id, barcodes=["31234777777777", "31234888888888"])

    local = synced.run("sierra", "item", "get", "--barcode", "31234777777777")
    remote = synced.run("sierra", "item", "get", "--barcode", "31234777777777", "--remote", "--json")
    by_id = synced.run("sierra", "item", "get", item_id, "--remote", "--json")

    assert local.exit_code == 1
    assert "there is no item with barcode 31234777777777 in the mirror" in local.stderr
    assert remote.exit_code == 0 and remote.json()["id"] == int(item_id)
    assert remote.json()["barcode"] == by_id.json()["barcode"] == "31234777777777"
    assert any(method == "POST" and "/items/query" in path for method, path in synced.fake.requests)
    synced.sync()
    second = synced.run("sierra", "item", "get", "--barcode", "31234888888888", "--json")
    assert second.exit_code == 0 and second.json()["id"] == int(item_id)  # a further `b` varField


@pytest.mark.parametrize("barcode", ["123", "31234000123456XY", "3123400012345!"])
def test_item_get_with_a_malformed_barcode_is_exit_2_with_the_expected_form(
    shared: SierraWorld, barcode: str
) -> None:
    requests_before = len(shared.fake.requests)

    outcome = shared.run("sierra", "item", "get", "--barcode", barcode, "--remote")

    assert outcome.exit_code == 2
    assert "14 to 16 digits, optionally followed by one letter or digit" in outcome.stderr
    assert len(shared.fake.requests) == requests_before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["sierra", "item", "get"], 2, "give an item ID or --barcode"),
        (["sierra", "item", "get", "1000001", "--barcode", "31234000123456"], 2, "one of them"),
        (["sierra", "item", "get", "abc"], 2, "record number"),
        (["sierra", "item", "get", "999"], 1, "there is no item 999 in the mirror"),
        (["sierra", "item", "get", "999", "--remote"], 1, "there is no item 999 in Sierra"),
        (["sierra", "item", "update", "1000001"], 2, "give --field KEY=VALUE"),
        (["sierra", "item", "update", "1000001", "--field", "id=3"], 2, "cannot be changed"),
        (["sierra", "item", "update", "1000001", "--field", "itemType=DVD"], 2, "item type number"),
        (["sierra", "item", "update", "999", "--field", "status=m"], 1, "no item 999 in Sierra"),
    ],
)
def test_item_commands_refuse_bad_input(
    shared: SierraWorld, args: list[str], code: int, message: str
) -> None:
    outcome = shared.run(*args)

    assert outcome.exit_code == code, outcome.stderr
    assert message in outcome.stderr


def test_item_update_queues_the_change_as_an_edit_of_the_mirror_would(synced: SierraWorld) -> None:
    item_id = synced.ids(1, start=14)[0]
    puts_before = len(synced.fake.puts)

    outcome = synced.run(
        "sierra", "item", "update", item_id, "--field", "status=m", "--field", "fixedFields.97=f"
    )

    assert outcome.exit_code == 0, outcome.stderr
    assert "queued" in outcome.stderr
    assert len(synced.fake.puts) == puts_before  # nothing sent yet
    assert [row[0] for row in synced.queued()] == [int(item_id)]
    [(origin, changes)] = synced.query(
        "SELECT origin, changes FROM _syncctl_history WHERE record_id = ? AND op = 'update'", item_id
    )
    assert origin == "cli" and set(json.loads(changes)) == {"status", "fixedFields"}
    status = synced.run("status", "sierra", "--json").json()
    assert status["details"]["queued"] == 1 and status["details"]["queued_oldest_age_s"] is not None

    result = synced.sync()
    assert result["pushed"] == 1
    assert synced.fake.puts[-1] == (item_id, {"status": "m", "fixedFields": {"97": {"value": "f"}}})
    assert synced.queued() == [] and synced.differences() == []


def test_item_update_now_sends_that_item_at_once(synced: SierraWorld) -> None:
    first, second = synced.ids(2, start=15)
    synced.edit("UPDATE sierra_items SET callNumber = 'OTHER 1' WHERE id = ?", int(second))  # also queued

    outcome = synced.run("sierra", "item", "update", first, "--field", "location=h01va", "--now", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json()["location"] == {"code": "h01va", "name": "Main library closed stacks"}
    assert synced.fake.puts[-1] == (first, {"location": "h01va"})
    assert [row[0] for row in synced.queued()] == [int(second)]  # the other one waits for the next sync
    assert synced.query("SELECT location FROM sierra_items WHERE id = ?", first) == [
        (json.dumps({"code": "h01va", "name": "Main library closed stacks"}, ensure_ascii=False),)
    ]


def test_item_update_now_refused_stays_queued_with_sierras_message(synced: SierraWorld) -> None:
    item_id = synced.ids(1, start=17)[0]
    synced.fake.refuse_item(item_id, "The item record is locked by another user")

    outcome = synced.run("sierra", "item", "update", item_id, "--field", "status=m", "--now")

    assert outcome.exit_code == 1
    assert "The item record is locked by another user" in outcome.stderr and "stays queued" in outcome.stderr
    [(queued_id, attempts, error)] = synced.queued()
    assert (queued_id, attempts) == (int(item_id), 1) and error is not None and "locked" in error


def test_item_update_of_an_item_not_mirrored_yet_reads_it_from_sierra_first(world: SierraWorld) -> None:
    item_id = world.ids(1, start=18)[0]

    outcome = world.run("sierra", "item", "update", item_id, "--field", "callNumber=84.2 NEW", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json()["callNumber"] == "84.2 NEW"
    assert [row[0] for row in world.queued()] == [int(item_id)]


def test_every_sierra_command_has_help(shared: SierraWorld) -> None:
    world = shared
    for args in (["sierra"], ["sierra", "item"], ["sierra", "item", "get"], ["sierra", "item", "update"],
                 ["fake-sierra"]):  # fmt: skip
        outcome = world.run(*args, "--help")
        assert outcome.exit_code == 0 and "Usage" in outcome.stdout, args


def test_fake_sierra_command_serves_the_fake_with_the_options_given(
    shared: SierraWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[tuple[Any, ...]] = []

    def serve(host: str, port: int, items: int, seed: int = 0, on_ready: Any = None) -> None:
        served.append((host, port, items, seed))
        on_ready(f"http://{host}:{port}{BASE_PATH}")

    monkeypatch.setattr(fake, "serve_forever", serve)
    outcome = shared.run("fake-sierra", "--port", "8123", "--items", "50", "--seed", "3")

    assert outcome.exit_code == 0, outcome.stderr
    assert served == [("127.0.0.1", 8123, 50, 3)]
    assert f"fake Sierra with 50 items at http://127.0.0.1:8123{BASE_PATH}" in outcome.stdout
    assert "SIERRA_API_CLIENT_KEY=demo-key" in outcome.stdout
