"""`syncctl sync sierra` end to end: the real CLI in-process against the bundled fake Sierra on a loopback
port, its clock injected. Pulling (the boundary second, listings that move while read, deletes), the update
queue (batch limit, refusals, the PUT body), tokens, and the quirks real servers are reported to have."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.connectors.sierra.world import SierraWorld

BOUNDARY = "2025-10-06T11:00:00Z"


def counts(result: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return (result["fetched"], result["inserted"], result["updated"], result["deleted"], result["unchanged"])


def listing_request(offset: int) -> Callable[[str, str], bool]:
    """A request of the item listing (not the catch-up, not the deleted listing) at `offset`."""

    def matches(method: str, path: str) -> bool:
        return (
            method == "GET" and "/items/?" in path and f"&offset={offset}&" in path and "deleted=" not in path
        )

    return matches


def put_ids(world: SierraWorld, since: int = 0) -> list[int]:
    return [int(item_id) for item_id, _ in world.fake.puts[since:]]


# -- pulling -----------------------------------------------------------------------------------------------


def test_sync_full_then_incremental_mirrors_every_item(world: SierraWorld) -> None:
    first = world.sync()

    assert (first["mode"], *counts(first)) == ("full", 300, 300, 0, 0, 0)
    assert first["cursor"] == max(item["updatedDate"] for item in world.fake.items(("updatedDate",)))
    assert world.differences() == []
    assert world.query(
        "SELECT typeof(id), typeof(fixedFields), typeof(deleted) FROM sierra_items LIMIT 1"
    ) == [("integer", "text", "integer")]
    again = world.sync()
    assert again["mode"] == "incremental"
    assert again["fetched"] == again["unchanged"] > 0 and counts(again)[1:4] == (0, 0, 0)


def test_sync_boundary_second_larger_than_a_page_loses_nothing(world: SierraWorld) -> None:
    boundary = world.ids(250)
    for item_id in boundary:  # 250 items in one second: two and a half pages
        world.fake.update_item(item_id, at=BOUNDARY)
    first = world.sync()
    assert first["cursor"] == BOUNDARY

    # More items updated in the same second after the run: the next run must see them.
    late = world.ids(1, start=260)[0]
    world.fake.update_item(late, at=BOUNDARY)
    world.fake.update_item(boundary[5], at=BOUNDARY, status="m")
    again = world.sync()

    # The boundary second is read again: what did not change counts as unchanged, never twice.
    assert counts(again) == (251, 0, 2, 0, 249)
    assert world.differences() == []
    assert counts(world.sync()) == (251, 0, 0, 0, 251)


def test_sync_item_updated_during_a_listing_is_not_lost(world: SierraWorld) -> None:
    """An item on a page already read is updated, then one further on: the cursor passes the first
    update's second, so without the catch-up its new version would never be listed again."""
    early, later = world.ids(1, start=10)[0], world.ids(1, start=250)[0]

    def staff_edits() -> None:
        world.fake.update_item(early, at="2025-10-06T11:00:00Z", status="m")
        world.fake.update_item(later, at="2025-10-06T11:00:01Z", status="o")

    world.fake.after(listing_request(0), staff_edits)
    result = world.sync()

    assert result["cursor"] == "2025-10-06T11:00:01Z"
    assert counts(result) == (301, 300, 1, 0, 0)  # the early item twice: as listed, then its new version
    assert world.differences() == []
    assert counts(world.sync())[1:4] == (0, 0, 0)


def test_sync_listing_that_shifts_left_while_read_skips_nothing(world: SierraWorld) -> None:
    """Three items of the first page are deleted after it was read: offset paging would skip two."""
    doomed = world.ids(3, start=20)
    world.fake.after(listing_request(0), lambda: world.delete(doomed))
    result = world.sync()

    assert result["fetched"] == 300 and result["cursor"] is not None
    assert world.differences() == [f"extra locally: {i}" for i in doomed]  # listed before they went
    follow_up = world.sync()
    assert follow_up["deleted"] == 3 and world.differences() == []


def test_sync_listing_that_shifts_right_while_read_repeats_nothing(world: SierraWorld) -> None:
    world.sync()
    ranged = world.ids(250, start=50)
    for item_id in ranged:
        world.fake.update_item(item_id, at=BOUNDARY)
    world.sync()
    joining = world.ids(5)  # lower ids than the whole range: they move every later item one place on

    def join() -> None:
        for item_id in joining:
            world.fake.update_item(item_id, at="2025-10-06T11:00:05Z", status="t")

    world.fake.after(listing_request(0), join)
    during = world.sync()
    assert counts(during) == (250, 0, 0, 0, 250)  # nothing listed twice
    after = world.sync()
    assert counts(after) == (255, 0, 5, 0, 250)  # the boundary second again, and the joined items
    assert world.differences() == []


def test_sync_picks_up_deletes_incrementally_from_the_deleted_listing(world: SierraWorld) -> None:
    world.sync()
    gone = world.ids(1, start=7)[0]
    world.fake.delete_item(gone)  # deletedDate: the fake clock's day, 2025-10-06

    result = world.sync()

    assert (result["mode"], result["deleted"]) == ("incremental", 1)
    assert world.differences() == []
    assert world.query(
        "SELECT op, origin FROM _syncctl_history WHERE table_name = 'sierra_items' AND record_id = ?"
        " ORDER BY id DESC LIMIT 1",
        gone,
    ) == [("delete", "pull")]
    # The next deleted listing starts a day before Sierra's latest known time (time zones).
    newest = result["cursor"]
    expected = datetime.date.fromisoformat(newest[:10]) - datetime.timedelta(days=1)
    assert world.state("deleted_cursor:sierra_items") == expected.isoformat()
    other = world.ids(1, start=8)[0]
    world.fake.delete_item(other)
    assert world.sync()["deleted"] == 1
    deleted_listings = [path for _, path in world.fake.requests if "deleted=true" in path]
    assert f"deletedDate=%5B{expected.isoformat()}%2C%5D" in deleted_listings[-1]


def test_sync_full_sweeps_deletes_under_the_guard(world: SierraWorld) -> None:
    world.sync()
    gone = world.ids(2, start=3)
    for item_id in gone:
        world.fake.delete_item(item_id)
    assert world.sync("--full")["deleted"] == 2
    assert world.differences() == []


# -- the update queue ------------------------------------------------------------------------------------


def age_queue(world: SierraWorld, oldest_first: list[int]) -> None:
    """Give queued items distinct ages (the triggers stamp whole seconds: a fast test would tie)."""
    for n, item_id in enumerate(oldest_first):
        world.edit(
            "UPDATE _syncctl_pending SET changed_at = ? WHERE table_name = 'sierra_items' AND record_id = ?",
            f"2025-01-01T00:00:{n:02d}+00:00",
            item_id,
        )


def test_sync_pushes_at_most_the_batch_limit_oldest_first_across_runs(world: SierraWorld) -> None:
    world.sync()
    ids = [int(i) for i in world.ids(7, start=20)]
    for n, item_id in enumerate(ids):
        world.edit("UPDATE sierra_items SET callNumber = ? WHERE id = ?", f"99.{n} NEW", item_id)
    oldest_first = ids[::-1]
    age_queue(world, oldest_first)

    batches = []
    for expected in (3, 3, 1, 0):
        before = len(world.fake.puts)
        result = world.sync(SIERRA_UPDATE_BATCH_SIZE_LIMIT="3")
        assert (result["pushed"], result["push_failed"]) == (expected, 0)
        batches.append(put_ids(world, before))

    assert batches == [oldest_first[:3], oldest_first[3:6], oldest_first[6:], []]
    assert world.queued() == [] and world.differences() == []
    assert world.fake.item(ids[2])["callNumber"] == "99.2 NEW"


def test_sync_refused_item_stays_queued_and_never_blocks_the_others(world: SierraWorld) -> None:
    world.sync()
    bad, *good = [int(i) for i in world.ids(4, start=30)]
    world.fake.refuse_item(bad, "The item record is locked by another user")
    for item_id in (bad, *good):
        world.edit("UPDATE sierra_items SET callNumber = 'X 1' WHERE id = ?", item_id)
    age_queue(world, [bad, *good])

    outcome = world.run("sync", "sierra", "--json")
    result = outcome.json()
    assert (outcome.exit_code, result["pushed"], result["push_failed"]) == (0, 3, 1)
    assert "could not be pushed" in outcome.stderr
    [(queued_id, attempts, error)] = world.queued()
    assert (queued_id, attempts) == (bad, 1)
    assert error is not None and "The item record is locked by another user" in error
    status = world.run("status", "sierra", "--json").json()
    assert status["details"]["queued"] == 1 and status["details"]["queued_with_errors"] == 1

    before = len(world.fake.puts)
    assert world.sync()["push_failed"] == 1  # retried on the next run
    assert put_ids(world, before) == [bad]
    world.fake.accept_item(bad)
    assert world.sync()["pushed"] == 1
    assert world.queued() == [] and world.differences() == []


def test_sync_items_refused_again_and_again_do_not_starve_the_queue(world: SierraWorld) -> None:
    """As many refused items as the batch limit, queued first: the items behind them still go out."""
    world.sync()
    refused, good = [int(i) for i in world.ids(2, start=40)], [int(i) for i in world.ids(2, start=50)]
    for item_id in refused:
        world.fake.refuse_item(item_id)
    for item_id in (*refused, *good):
        world.edit("UPDATE sierra_items SET callNumber = 'Y 2' WHERE id = ?", item_id)
    age_queue(world, [*refused, *good])

    first = world.sync(SIERRA_UPDATE_BATCH_SIZE_LIMIT="2")
    second = world.sync(SIERRA_UPDATE_BATCH_SIZE_LIMIT="2")

    assert (first["pushed"], first["push_failed"]) == (0, 2)
    assert (second["pushed"], second["push_failed"]) == (2, 0)
    assert sorted(i for i, _, _ in world.queued()) == refused


def test_sync_renews_an_expired_token_once_mid_listing_and_mid_push(world: SierraWorld) -> None:
    world.fake.after(listing_request(99), world.fake.expire_tokens)  # after the second page
    assert world.sync()["fetched"] == 300
    assert world.fake.tokens_issued == 2

    ids = [int(i) for i in world.ids(2, start=60)]
    for item_id in ids:
        world.edit("UPDATE sierra_items SET callNumber = 'Z 3' WHERE id = ?", item_id)
    world.fake.after(lambda method, path: method == "PUT", world.fake.expire_tokens)
    result = world.sync()
    assert (result["pushed"], result["push_failed"]) == (2, 0)
    assert world.fake.tokens_issued == 4  # this run's first token, and one renewal after the first PUT
    assert world.differences() == []


def test_sync_with_a_wrong_secret_says_authentication_failed_and_shows_no_secret(world: SierraWorld) -> None:
    outcome = world.run("-vv", "sync", "sierra", SIERRA_API_CLIENT_SECRET="not-the-secret-42")

    assert outcome.exit_code == 1
    assert "authentication failed" in outcome.stderr
    assert "not-the-secret-42" not in outcome.stdout + outcome.stderr
    assert world.fake.tokens_issued == 0


# -- the PUT body, checked against what the fake then holds ----------------------------------------------


def mirrored(world: SierraWorld, item_id: int, column: str) -> Any:
    return json.loads(world.query(f"SELECT {column} FROM sierra_items WHERE id = ?", item_id)[0][0])


def test_push_maps_every_writable_field_to_the_put_body(world: SierraWorld) -> None:
    world.sync()
    key = next(
        int(i["id"])
        for i in world.fake.items(("location", "status"))
        if i["location"]["code"] != "h01an" and i["status"]["code"] != "m"
    )
    fixed = mirrored(world, key, "fixedFields")
    fixed["97"] = {"label": "IMESSAGE", "value": "f"}
    fixed["84"]["value"] = "2000-01-01T00:00:00Z"  # kept by Sierra itself: never sent
    world.edit(
        "UPDATE sierra_items SET itemType = 24, location = ?, status = 'm', barcode = ?, callNumber = ?,"
        " fixedFields = ? WHERE id = ?",
        json.dumps({"code": "h01an", "name": "Main library adult non-fiction"}),
        "31234999999999X",
        "78.891 BEE",
        json.dumps(fixed),
        key,
    )

    result = world.sync()

    assert (result["pushed"], result["push_failed"]) == (1, 0)
    assert world.fake.puts[-1] == (
        str(key),
        {
            "itemType": 24,
            "location": "h01an",
            "status": "m",
            "barcodes": ["31234999999999X"],
            "callNumbers": ["78.891 BEE"],
            "fixedFields": {"97": {"value": "f"}},
        },
    )
    stored = world.fake.item(key)
    assert (stored["itemType"], stored["location"]["code"], stored["status"]["code"]) == ("DVD", "h01an", "m")
    assert (stored["barcode"], stored["callNumber"]) == ("31234999999999X", "78.891 BEE")
    assert stored["fixedFields"]["97"]["value"] == "f" and stored["fixedFields"]["61"]["value"] == "24"
    assert world.differences() == []  # re-read after the PUT: the mirror holds what Sierra holds


def test_push_sends_var_fields_as_a_list(world: SierraWorld) -> None:
    world.sync()
    key = int(world.ids(1, start=41)[0])
    var_fields = [v for v in mirrored(world, key, "varFields") if v["fieldTag"] != "n"]
    var_fields.append({"fieldTag": "n", "content": "Checked 2025"})
    world.edit("UPDATE sierra_items SET varFields = ? WHERE id = ?", json.dumps(var_fields), key)

    world.sync()

    assert world.fake.puts[-1] == (str(key), {"varFields": var_fields})
    assert world.fake.item(key)["varFields"] == var_fields
    assert world.differences() == []


@pytest.mark.parametrize("policy", ["remote", "local"])
def test_push_of_fixed_fields_sierra_also_changed_follows_the_policy_and_keeps_sierras_own(
    world: SierraWorld, policy: str
) -> None:
    """fixedFields is one column: Sierra changing any fixed field (a checkout count) makes a local fixed-field
    edit a conflict. The policy decides; when the local side wins, only the edited field is sent."""
    world.sync()
    key = int(world.ids(1, start=45)[0])
    fixed = mirrored(world, key, "fixedFields")
    fixed["97"] = {"label": "IMESSAGE", "value": "f"}
    world.edit("UPDATE sierra_items SET fixedFields = ? WHERE id = ?", json.dumps(fixed), key)
    world.fake.update_item(key, at=BOUNDARY, fixedFields={"77": {"value": "12"}})  # checked out meanwhile
    puts_before = len(world.fake.puts)

    result = world.sync("--on-conflict", policy)

    assert result["conflicts"] == 1 and world.queued() == []
    stored = world.fake.item(key)["fixedFields"]
    assert stored["77"]["value"] == "12"  # Sierra's own change is never reverted
    if policy == "local":
        assert world.fake.puts[puts_before:] == [(str(key), {"fixedFields": {"97": {"value": "f"}}})]
        assert stored["97"]["value"] == "f"
    else:
        assert world.fake.puts[puts_before:] == []
    assert world.differences() == []


@pytest.mark.parametrize("switched_on", [True, False], ids=["on", "off"])
def test_push_sets_invda_and_iuse3_only_when_switched_on(world: SierraWorld, switched_on: bool) -> None:
    world.sync()
    key = int(world.ids(1, start=42)[0])
    uses = int(world.fake.item(key)["fixedFields"]["74"]["value"])
    world.edit("UPDATE sierra_items SET callNumber = '1.42 NEW' WHERE id = ?", key)
    switches = {"SIERRA_UPDATE_SET_INVDA": "true", "SIERRA_UPDATE_SET_IUSE3": "yes"} if switched_on else {}

    world.sync(SIERRA_INVDA_FIXED_FIELD="265", **switches)

    body = world.fake.puts[-1][1]
    fixed = world.fake.item(key)["fixedFields"]
    if switched_on:
        today = datetime.date.today().isoformat()
        assert body == {
            "callNumbers": ["1.42 NEW"],
            "fixedFields": {"265": {"value": today}, "74": {"value": str(uses + 1)}},
        }
        assert (fixed["265"]["value"], fixed["74"]["value"]) == (today, str(uses + 1))
    else:
        assert body == {"callNumbers": ["1.42 NEW"]}
        assert fixed["74"]["value"] == str(uses)
    assert world.differences() == []


def test_push_raises_iuse3_once_however_often_the_item_was_refused(world: SierraWorld) -> None:
    world.sync()
    key = int(world.ids(1, start=43)[0])
    uses = int(world.fake.item(key)["fixedFields"]["74"]["value"])
    world.fake.refuse_item(key)
    world.edit("UPDATE sierra_items SET callNumber = '1.42 AGAIN' WHERE id = ?", key)
    for _ in range(2):
        assert world.sync(SIERRA_UPDATE_SET_IUSE3="true")["push_failed"] == 1
    world.fake.accept_item(key)
    assert world.sync(SIERRA_UPDATE_SET_IUSE3="true")["pushed"] == 1
    assert world.fake.item(key)["fixedFields"]["74"]["value"] == str(uses + 1)


def test_push_finds_invda_by_its_label_or_asks_for_its_number(world: SierraWorld) -> None:
    world.sync()
    fixed_of = {int(item["id"]): item["fixedFields"] for item in world.fake.items(("fixedFields",))}
    with_invda = next(i for i, fixed in fixed_of.items() if "265" in fixed)
    without = next(i for i, fixed in fixed_of.items() if "265" not in fixed)
    for key in (with_invda, without):
        world.edit("UPDATE sierra_items SET callNumber = '2.0 INV' WHERE id = ?", key)

    result = world.sync(SIERRA_UPDATE_SET_INVDA="on")

    assert (result["pushed"], result["push_failed"]) == (1, 1)
    assert world.fake.item(with_invda)["fixedFields"]["265"]["value"] == datetime.date.today().isoformat()
    [(queued_id, _, error)] = world.queued()
    assert queued_id == without and error is not None and "SIERRA_INVDA_FIXED_FIELD" in error


def test_local_insert_or_delete_of_an_item_stays_queued_with_a_reason(world: SierraWorld) -> None:
    world.sync()
    key = int(world.ids(1, start=44)[0])
    world.edit("DELETE FROM sierra_items WHERE id = ?", key)

    result = world.sync()

    assert result["push_failed"] == 1
    [(queued_id, _, error)] = world.queued()
    assert queued_id == key and error is not None and "only changed" in error
    assert str(key) not in {
        item["id"] for item in world.fake.items(("id",)) if False
    }  # nothing deleted remotely
    assert key in {int(item["id"]) for item in world.fake.items(("id",))}


# -- quirks reported of real servers ---------------------------------------------------------------------


def test_sync_tolerates_total_counting_the_page_and_404_for_an_empty_listing(
    build: Callable[..., SierraWorld],
) -> None:
    world = build(items=250, total_counts_page=True, empty_listing_404=True)
    first = world.sync()
    assert counts(first) == (250, 250, 0, 0, 0)

    # Every item of the boundary second is deleted: the incremental listing is empty and answers 404.
    newest = first["cursor"]
    boundary = [item["id"] for item in world.fake.items(("updatedDate",)) if item["updatedDate"] == newest]
    for item_id in boundary:
        world.fake.delete_item(item_id)
    before = len(world.fake.requests)
    result = world.sync()

    assert (result["fetched"], result["deleted"]) == (0, len(boundary))
    assert world.differences() == []
    listings = [path for _, path in world.fake.requests[before:] if "&updatedDate=" in path]
    assert len(listings) == 1  # answered 404, taken as empty: no catch-up, no second page
