"""The bundled fake Sierra: tokens, listing and paging, updatedDate boundaries, deletes, the barcode query,
PUT semantics, refusals, faults, and the real loopback server."""

from __future__ import annotations

import base64
import calendar
import collections
import datetime
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from syncctl.connectors.sierra.fake import (
    BASE_PATH,
    DEFAULT_FIELDS,
    DEFAULT_INVENTORY_FIELD,
    DEFAULT_KEY,
    DEFAULT_SECRET,
    ITEM_KEYS,
    FakeSierra,
    FakeSierraServer,
    SierraError,
)
from syncctl.core.fakehttp import Response

FIXTURES = Path(__file__).parents[2] / "fixtures" / "sierra"
NOW = calendar.timegm((2025, 10, 6, 12, 0, 0))
NOW_TEXT = "2025-10-06T12:00:00Z"
ALL_FIELDS = ",".join(ITEM_KEYS)
INV = DEFAULT_INVENTORY_FIELD
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
BARCODE = re.compile(r"\d{14,16}[A-Z0-9]?")


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def basic(key: str = DEFAULT_KEY, secret: str = DEFAULT_SECRET) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


def fetch_token(fake: FakeSierra) -> str:
    response = fake.handle("POST", f"{BASE_PATH}/token", basic(), b"grant_type=client_credentials")
    assert response.status == 200, response.body
    token: str = response.json()["access_token"]
    return token


class Api:
    """Calls into one fake with a bearer token, as a client would."""

    def __init__(self, fake: FakeSierra) -> None:
        self.fake = fake
        self.token = fetch_token(fake)

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return self.fake.handle(method, f"{BASE_PATH}{path}", sent, raw)

    def page(self, query: str) -> dict[str, Any]:
        response = self.call("GET", f"/items/?{query}")
        assert response.status == 200, response.body
        data: dict[str, Any] = response.json()
        return data

    def ids(self, query: str, limit: int = 2000) -> list[str]:
        """Every id of a listing, paging by offset until a short page."""
        found: list[str] = []
        while True:
            page = self.page(f"{query}&limit={limit}&offset={len(found)}")
            found.extend(entry["id"] for entry in page["entries"])
            if len(page["entries"]) < limit:
                return found

    def put(self, item_id: str, body: Any) -> Response:
        return self.call("PUT", f"/items/{item_id}", body)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> FakeSierra:
    return FakeSierra(items=300, seed=7, clock=clock)


@pytest.fixture
def api(fake: FakeSierra) -> Api:
    return Api(fake)


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys in order and value types, lists by their elements."""
    if isinstance(value, dict):
        return {key: shape(entry) for key, entry in value.items()}
    if isinstance(value, list):
        return [shape(entry) for entry in value]
    return type(value).__name__


def with_note(fake: FakeSierra) -> dict[str, Any]:
    """The first item whose varFields are b, c, n: the fixture's layout."""
    return next(
        item for item in fake.items() if [v["fieldTag"] for v in item["varFields"]] == ["b", "c", "n"]
    )


# -- tokens ------------------------------------------------------------------------------------------------


def test_token_has_the_fixture_shape(fake: FakeSierra) -> None:
    response = fake.handle("POST", f"{BASE_PATH}/token", basic(), b"grant_type=client_credentials")

    assert response.status == 200
    answer = response.json()
    assert shape(answer) == shape(load_fixture("token.json"))
    assert answer["token_type"] == "bearer" and answer["expires_in"] == 3600
    assert re.fullmatch(r"[A-Za-z0-9]{16,}", answer["access_token"])
    assert fake.tokens_issued == 1


@pytest.mark.parametrize(
    "headers",
    [
        basic(secret="wrong"),
        basic(key="other"),
        {},
        {"Authorization": "Bearer demo-key"},
        {"Authorization": "Basic %%"},
    ],
    ids=["wrong-secret", "wrong-key", "none", "bearer", "not-base64"],
)
def test_token_with_bad_credentials_is_401(fake: FakeSierra, headers: dict[str, str]) -> None:
    response = fake.handle("POST", f"{BASE_PATH}/token", headers, b"grant_type=client_credentials")

    assert response.status == 401
    assert response.json() == {
        "code": 123,
        "specificCode": 0,
        "httpStatus": 401,
        "name": "Unauthorized",
        "description": "invalid_client",
    }
    assert fake.tokens_issued == 0


def test_token_needs_the_client_credentials_grant(fake: FakeSierra) -> None:
    response = fake.handle("POST", f"{BASE_PATH}/token", basic(), b"grant_type=password")

    assert response.status == 400
    assert set(response.json()) == set(load_fixture("error_400.json"))


@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-a-token", "Basic " + "ZGVtby1rZXk6ZGVtby1zZWNyZXQ="]
)
def test_api_without_a_valid_bearer_token_is_401(fake: FakeSierra, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = fake.handle("GET", f"{BASE_PATH}/items/?limit=1", headers, b"")

    assert response.status == 401
    assert response.json() == {
        "code": 123,
        "specificCode": 0,
        "httpStatus": 401,
        "name": "Unauthorized",
        "description": "invalid_grant",
    }


def test_token_expires_after_an_hour_on_the_injected_clock(fake: FakeSierra, clock: FakeClock) -> None:
    api = Api(fake)
    clock.now = NOW + 3599
    assert api.call("GET", "/items/?limit=1").status == 200

    clock.now = NOW + 3600
    assert api.call("GET", "/items/?limit=1").status == 401

    api.token = fetch_token(fake)
    assert api.call("GET", "/items/?limit=1").status == 200


def test_expire_tokens_forces_a_401_mid_run(fake: FakeSierra, api: Api) -> None:
    assert api.call("GET", "/items/?limit=1").status == 200

    assert fake.expire_tokens() == 1
    assert api.call("GET", "/items/?limit=1").status == 401

    api.token = fetch_token(fake)
    control = fake.handle("POST", "/_fake/expire-tokens", {}, b"")
    assert (control.status, control.json()) == (200, {"expired": 1})
    assert api.call("GET", "/items/?limit=1").status == 401


# -- generated items and listing ---------------------------------------------------------------------------


def test_listed_items_have_the_fixture_structure(api: Api) -> None:
    fixture_entry = load_fixture("items_page.json")["entries"][0]
    page = api.page(f"limit=300&fields={ALL_FIELDS}")

    assert list(page) == ["total", "start", "entries"] and page["total"] == 300 and page["start"] == 0
    for item in page["entries"]:
        assert list(item) == list(fixture_entry)
        for name in ("id", "updatedDate", "createdDate", "deleted", "bibIds", "location", "status", "volumes",
                     "barcode", "callNumber", "itemType"):  # fmt: skip
            assert shape(item[name]) == shape(fixture_entry[name]) or (name in ("bibIds", "volumes")), name
        assert all(isinstance(bib, str) and bib.isdigit() for bib in item["bibIds"])
        assert item["volumes"] == []
        fixed = item["fixedFields"]
        assert set(fixture_entry["fixedFields"]) <= set(fixed) <= {*fixture_entry["fixedFields"], INV}
        for number, entry in fixture_entry["fixedFields"].items():
            assert shape(fixed[number]) == shape(entry), number
            assert fixed[number]["label"] == entry["label"]
        assert fixed.get(INV, {"label": "INVDA"})["label"] == "INVDA"
        assert [int(number) for number in fixed] == sorted(int(number) for number in fixed)
        assert all(shape(var) == {"fieldTag": "str", "content": "str"} for var in item["varFields"])
        assert {var["fieldTag"] for var in item["varFields"]} <= {"b", "c", "n"}


def test_generated_values_are_consistent_and_realistic(fake: FakeSierra) -> None:
    items = list(fake.items())

    for item in items:
        fixed = item["fixedFields"]
        assert item["id"].isdigit() and fixed["81"]["value"] == item["id"]
        assert TIMESTAMP.fullmatch(item["createdDate"]) and TIMESTAMP.fullmatch(item["updatedDate"])
        assert item["createdDate"] <= item["updatedDate"] < NOW_TEXT
        assert fixed["83"]["value"] == item["createdDate"] and fixed["84"]["value"] == item["updatedDate"]
        assert item["deleted"] is False
        assert BARCODE.fullmatch(item["barcode"]), item["barcode"]
        tags = [var["fieldTag"] for var in item["varFields"]]
        assert item["barcode"] == item["varFields"][tags.index("b")]["content"]
        assert item["callNumber"] == item["varFields"][tags.index("c")]["content"]
        assert fixed["79"]["value"] == item["location"]["code"]
        assert fixed["79"]["display"] == item["location"]["name"]
        assert fixed["88"]["value"] == item["status"]["code"]
        assert fixed["61"]["display"] == item["itemType"]
        assert fixed["74"]["value"].isdigit()
        if INV in fixed:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fixed[INV]["value"])
    assert [int(item["id"]) for item in items] == sorted(int(item["id"]) for item in items)
    assert items[0]["id"] == "1000001"
    assert len({item["barcode"] for item in items}) == len(items)
    assert len({item["location"]["code"] for item in items}) > 5
    assert len({item["callNumber"] for item in items}) > 100
    assert {"Book", "CD"} <= {item["itemType"] for item in items}
    assert any(int(item["fixedFields"]["74"]["value"]) > 0 for item in items)
    assert any(INV in item["fixedFields"] for item in items)
    assert any(len(item["barcode"]) > 14 for item in items)


def test_generation_is_deterministic_per_seed() -> None:
    assert list(FakeSierra(items=40, seed=3).items()) == list(FakeSierra(items=40, seed=3).items())
    assert list(FakeSierra(items=40, seed=3).items()) != list(FakeSierra(items=40, seed=4).items())


def test_many_generated_items_share_one_updated_second() -> None:
    fake = FakeSierra(items=5000, seed=1, clock=FakeClock())

    per_second = collections.Counter(item["updatedDate"] for item in fake.items())

    assert per_second.most_common(1)[0][1] >= 100
    assert sum(count for count in per_second.values() if count >= 100) > 1000


def test_listing_pages_by_offset_in_id_order(fake: FakeSierra, api: Api) -> None:
    ids = api.ids("fields=id", limit=70)

    assert ids == [item["id"] for item in fake.items()]
    assert len(ids) == 300


def test_listing_without_fields_returns_the_default_set_and_fields_selects(api: Api) -> None:
    default = api.page("limit=2")["entries"][0]
    chosen = api.page("limit=2&fields=barcode,updatedDate,noSuchField")["entries"][0]

    assert list(default) == list(DEFAULT_FIELDS)
    assert list(chosen) == ["id", "updatedDate", "barcode"]


@pytest.mark.parametrize(
    "query",
    ["limit=2001", "limit=0", "limit=ten", "offset=-1", "deleted=maybe", "updatedDate=yesterday",
     "updatedDate=[2025-10-01T00:00:00Z]", "deletedDate=[2025-10-01T00:00,]", "id=[abc,]"],
)  # fmt: skip
def test_bad_listing_parameters_are_400_in_sierras_shape(api: Api, query: str) -> None:
    response = api.call("GET", f"/items/?{query}")

    assert response.status == 400
    body = response.json()
    assert set(body) == set(load_fixture("error_400.json")) and body["httpStatus"] == 400


def test_limit_2000_is_allowed(api: Api) -> None:
    assert len(api.page("limit=2000")["entries"]) == 300


def test_id_filter_ranges_and_lists(api: Api, fake: FakeSierra) -> None:
    ids = [item["id"] for item in fake.items()]

    assert api.ids(f"id=[{ids[10]},{ids[19]}]") == ids[10:20]
    assert api.ids(f"id=[{ids[290]},]") == ids[290:]
    assert api.ids(f"id={ids[3]},{ids[1]},999") == [ids[1], ids[3]]


def test_offset_paging_shifts_when_an_item_before_the_offset_is_deleted(api: Api, fake: FakeSierra) -> None:
    ids = [item["id"] for item in fake.items()]
    first = api.page("limit=10&offset=0")

    fake.delete_item(first["entries"][0]["id"], on="2025-10-06")
    second = api.page("limit=10&offset=10")

    assert [entry["id"] for entry in second["entries"]] == ids[11:21]  # ids[10] is never listed
    assert second["total"] == 299


def test_offset_paging_repeats_an_item_that_moves_into_an_open_range(api: Api, fake: FakeSierra) -> None:
    since = "updatedDate=[2025-09-01T00:00:00Z,]"
    matching = api.ids(f"{since}&fields=id")
    outside = next(item["id"] for item in fake.items() if item["id"] not in matching)
    assert outside < matching[5]
    first = api.page(f"{since}&limit=5&offset=0&fields=id")

    fake.update_item(outside)  # now updated today: inside the range, before the offset
    second = api.page(f"{since}&limit=5&offset=5&fields=id")

    assert second["entries"][0]["id"] == first["entries"][-1]["id"]  # read twice: the listing is live


def test_single_item_and_404_for_unknown_or_deleted(api: Api, fake: FakeSierra) -> None:
    item = next(fake.items())

    full = api.call("GET", f"/items/{item['id']}?fields={ALL_FIELDS}")
    held = fake.item(item["id"])
    basic_set = api.call("GET", f"/items/{item['id']}")
    fake.delete_item(item["id"])
    gone = api.call("GET", f"/items/{item['id']}")
    unknown = api.call("GET", "/items/9999999")

    assert full.status == 200 and full.json() == item == held
    assert list(basic_set.json()) == list(DEFAULT_FIELDS)
    for response in (gone, unknown):
        assert response.status == 404
        assert response.json() == {
            "code": 107,
            "specificCode": 0,
            "httpStatus": 404,
            "name": "Record not found",
        }


# -- updatedDate boundaries --------------------------------------------------------------------------------


def test_updated_date_range_is_inclusive_at_one_second(api: Api, fake: FakeSierra) -> None:
    ids = [item["id"] for item in fake.items()]
    for item_id in ids[:150]:
        fake.update_item(item_id, at=NOW)
    for item_id in ids[150:160]:
        fake.update_item(item_id, at="2025-10-06T11:59:59Z")
    for item_id in ids[160:170]:
        fake.update_item(item_id, at=NOW + 1)

    assert api.ids(f"updatedDate=[{NOW_TEXT},{NOW_TEXT}]") == ids[:150]
    assert api.ids(f"updatedDate={NOW_TEXT}") == ids[:150]
    assert api.ids("updatedDate=[2025-10-06T11:59:59Z,2025-10-06T12:00:00Z]") == ids[:160]
    assert api.ids(f"updatedDate=[{NOW_TEXT},]") == ids[:150] + ids[160:170]
    assert api.ids("updatedDate=[2025-10-06T12:00:01Z,]") == ids[160:170]
    assert api.ids("updatedDate=[,2025-10-06T11:59:59Z]") == ids[150:160] + ids[170:]
    assert api.ids("updatedDate=[2025-10-06,2025-10-06]") == ids[:170]
    assert api.ids(quote(f"updatedDate=[{NOW_TEXT},{NOW_TEXT}]", safe="=")) == ids[:150]


def test_a_cursor_that_rereads_its_boundary_second_loses_nothing(api: Api, fake: FakeSierra) -> None:
    """Pages end inside one busy second: re-reading from that second (not after it) finds every item."""
    ids = [item["id"] for item in fake.items()]
    for item_id in ids[:250]:
        fake.update_item(item_id, at=NOW)
    page = api.page(f"updatedDate=[{NOW_TEXT},]&limit=100&offset=0&fields=id,updatedDate")

    last_second = page["entries"][-1]["updatedDate"]
    after_it = api.ids("updatedDate=[2025-10-06T12:00:01Z,]")
    from_it = api.ids(f"updatedDate=[{last_second},]")

    assert after_it == []  # a cursor strictly after the last second would lose 150 items
    assert from_it == ids[:250]


def test_generated_batch_seconds_are_inclusive_boundaries() -> None:
    fake = FakeSierra(items=3000, seed=2, clock=FakeClock())
    api = Api(fake)
    items = list(fake.items())
    busiest, count = collections.Counter(item["updatedDate"] for item in items).most_common(1)[0]
    second = calendar.timegm(datetime.datetime.strptime(busiest, "%Y-%m-%dT%H:%M:%SZ").timetuple())
    after = datetime.datetime.fromtimestamp(second + 1, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    exactly = api.ids(f"updatedDate=[{busiest},{busiest}]")
    from_next = api.ids(f"updatedDate=[{after},]")

    assert count >= 100 and len(exactly) == count
    assert exactly == [item["id"] for item in items if item["updatedDate"] == busiest]
    assert not set(exactly) & set(from_next)
    assert len(from_next) == sum(1 for item in items if item["updatedDate"] > busiest)


# -- deletes -----------------------------------------------------------------------------------------------


def test_deleted_listing_by_day_range(api: Api, fake: FakeSierra) -> None:
    ids = [item["id"] for item in fake.items()]
    fake.delete_item(ids[5], on=datetime.date(2025, 10, 2))
    fake.delete_item(ids[1], on="2025-10-03")
    fake.delete_item(ids[9])  # today on the clock: 2025-10-06

    page = api.page("deleted=true&deletedDate=[2025-10-02,2025-10-03]&limit=50")
    open_ended = api.ids("deleted=true&deletedDate=[2025-10-03,]")

    assert page == {
        "total": 2,
        "start": 0,
        "entries": [
            {"id": ids[1], "deletedDate": "2025-10-03", "deleted": True},
            {"id": ids[5], "deletedDate": "2025-10-02", "deleted": True},
        ],
    }
    assert open_ended == [ids[1], ids[9]]
    assert api.ids("deletedDate=[2025-10-06,2025-10-06]") == [ids[9]]
    assert not {ids[1], ids[5], ids[9]} & set(api.ids("fields=id"))
    assert api.ids("deleted=false&fields=id") == api.ids("fields=id")


def test_generation_leaves_old_deleted_records_in_the_id_gaps(api: Api, fake: FakeSierra) -> None:
    deleted = fake.deleted_items()
    live = {item["id"] for item in fake.items()}

    assert deleted and not set(deleted) & live
    assert all(day <= "2025-09-30" for day in deleted.values())
    assert api.ids("deleted=true") == sorted(deleted, key=int)


def test_delete_item_refuses_unknown_ids(fake: FakeSierra) -> None:
    with pytest.raises(KeyError):
        fake.delete_item("9999999")


# -- barcode query -----------------------------------------------------------------------------------------


def barcode_query(barcode: str) -> dict[str, Any]:
    return {
        "target": {"record": {"type": "item"}, "field": {"tag": "b"}},
        "expr": {"op": "equals", "operands": [barcode]},
    }


def test_barcode_query_answers_the_fixture_shape(api: Api, fake: FakeSierra) -> None:
    item = list(fake.items())[11]

    found = api.call("POST", "/items/query?offset=0&limit=10", barcode_query(item["barcode"]))
    via_host = api.call(
        "POST", "/items/query?offset=0&limit=10", barcode_query(item["barcode"]), {"Host": "127.0.0.1:8765"}
    )
    missing = api.call("POST", "/items/query?offset=0&limit=10", barcode_query("00000000000000"))

    assert found.status == 200
    assert shape(found.json()) == shape(load_fixture("items_query_barcode.json"))
    assert found.json() == {
        "total": 1,
        "start": 0,
        "entries": [{"link": f"https://catalog.example.org/iii/sierra-api/v6/items/{item['id']}"}],
    }
    assert via_host.json()["entries"] == [{"link": f"http://127.0.0.1:8765{BASE_PATH}/items/{item['id']}"}]
    assert missing.json() == {"total": 0, "start": 0, "entries": []}


def test_barcode_query_follows_writes_and_deletes(api: Api, fake: FakeSierra) -> None:
    first, second = list(fake.items())[:2]
    query = "/items/query?offset=0&limit=10"

    assert api.put(first["id"], {"barcodes": ["31234999000001"]}).status == 204
    fake.delete_item(second["id"])

    assert api.call("POST", query, barcode_query(first["barcode"])).json()["total"] == 0
    assert (
        api.call("POST", query, barcode_query("31234999000001"))
        .json()["entries"][0]["link"]
        .endswith(f"/items/{first['id']}")
    )
    assert api.call("POST", query, barcode_query(second["barcode"])).json()["total"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {
            "target": {"record": {"type": "bib"}, "field": {"tag": "b"}},
            "expr": {"op": "equals", "operands": ["1"]},
        },
        {
            "target": {"record": {"type": "item"}, "field": {"tag": "b"}},
            "expr": {"op": "has", "operands": ["1"]},
        },
        {
            "target": {"record": {"type": "item"}, "field": {"tag": "b"}},
            "expr": {"op": "equals", "operands": [1]},
        },
        ["not", "an", "object"],
    ],
    ids=["bib", "op", "operand-type", "list"],
)
def test_other_queries_are_400(api: Api, body: Any) -> None:
    response = api.call("POST", "/items/query?offset=0&limit=10", body)

    assert response.status == 400
    assert set(response.json()) == set(load_fixture("error_400.json"))


# -- PUT ---------------------------------------------------------------------------------------------------


def stamped(item: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """`item` after a write at NOW: updatedDate and fixed field 84 follow the clock."""
    fixed = {**item["fixedFields"], "84": {"label": "UPDATED", "value": NOW_TEXT}, **changes.pop("fixed", {})}
    return {**item, "updatedDate": NOW_TEXT, **changes, "fixedFields": fixed}


def test_put_item_type(api: Api, fake: FakeSierra) -> None:
    before = with_note(fake)

    response = api.put(before["id"], {"itemType": 22})

    assert (response.status, response.body) == (204, b"")
    assert fake.item(before["id"]) == stamped(
        before, itemType="CD", fixed={"61": {"label": "I TYPE", "value": "22", "display": "CD"}}
    )


def test_put_location_stores_an_object_with_its_name(api: Api, fake: FakeSierra) -> None:
    before = with_note(fake)

    assert api.put(before["id"], {"location": "h01mu"}).status == 204

    assert fake.item(before["id"]) == stamped(
        before,
        location={"code": "h01mu", "name": "Main library music"},
        fixed={"79": {"label": "LOCATION", "value": "h01mu", "display": "Main library music"}},
    )


def test_put_status_stores_an_object_with_its_display(api: Api, fake: FakeSierra) -> None:
    before = with_note(fake)

    assert api.put(before["id"], {"status": "m"}).status == 204

    assert fake.item(before["id"]) == stamped(
        before,
        status={"code": "m", "display": "MISSING"},
        fixed={"88": {"label": "STATUS", "value": "m", "display": "MISSING"}},
    )


def test_put_barcodes_sets_barcode_and_the_b_var_field(api: Api, fake: FakeSierra) -> None:
    before = with_note(fake)
    c, n = before["varFields"][1:]

    assert api.put(before["id"], {"barcodes": ["31234999000001X", "31234999000002"]}).status == 204

    assert fake.item(before["id"]) == stamped(
        before,
        barcode="31234999000001X",
        varFields=[
            {"fieldTag": "b", "content": "31234999000001X"},
            {"fieldTag": "b", "content": "31234999000002"},
            c,
            n,
        ],
    )


def test_put_call_numbers_sets_call_number_and_the_c_var_field(api: Api, fake: FakeSierra) -> None:
    before = with_note(fake)
    b, _, n = before["varFields"]

    assert api.put(before["id"], {"callNumbers": ["78.891 SIB"]}).status == 204

    assert fake.item(before["id"]) == stamped(
        before, callNumber="78.891 SIB", varFields=[b, {"fieldTag": "c", "content": "78.891 SIB"}, n]
    )


def test_put_fixed_fields_merges_values(api: Api, fake: FakeSierra) -> None:
    before = with_note(fake)
    body = {"fixedFields": {"74": {"value": int(before["fixedFields"]["74"]["value"]) + 1},
                            INV: {"value": "2025-10-06"}, "97": {"value": "f"}}}  # fmt: skip

    assert api.put(before["id"], body).status == 204

    after = fake.item(before["id"])
    iuse3 = str(int(before["fixedFields"]["74"]["value"]) + 1)
    assert after == stamped(
        before,
        fixed={
            "74": {"label": "IUSE3", "value": iuse3},
            INV: {"label": "INVDA", "value": "2025-10-06"},
            "97": {"label": "IMESSAGE", "value": "f"},
        },
    )
    assert [int(number) for number in after["fixedFields"]] == sorted(int(n) for n in after["fixedFields"])


def test_put_fixed_fields_that_mirror_item_fields_keeps_both_in_step(api: Api, fake: FakeSierra) -> None:
    before = with_note(fake)

    assert (
        api.put(before["id"], {"fixedFields": {"79": {"value": "h02la"}, "61": {"value": "5"}}}).status == 204
    )

    assert fake.item(before["id"]) == stamped(
        before,
        location={"code": "h02la", "name": "Kallio branch children"},
        itemType="Children's book",
        fixed={
            "79": {"label": "LOCATION", "value": "h02la", "display": "Kallio branch children"},
            "61": {"label": "I TYPE", "value": "5", "display": "Children's book"},
        },
    )


def test_put_var_fields_replaces_them_and_the_repeated_read_fields(api: Api, fake: FakeSierra) -> None:
    before = with_note(fake)
    only_note = [{"fieldTag": "n", "content": "Poistettu viivakoodi"}]
    new_fields = [{"fieldTag": "c", "content": "84.2 NEW"}, {"fieldTag": "b", "content": "31234999000009"}]

    assert api.put(before["id"], {"varFields": only_note}).status == 204
    without = fake.item(before["id"])
    assert api.put(before["id"], {"varFields": new_fields}).status == 204

    expected = stamped(before, varFields=only_note)
    del expected["barcode"], expected["callNumber"]
    assert without == expected
    assert list(fake.item(before["id"])) == list(before)  # the read order, whatever was written
    assert fake.item(before["id"]) == stamped(
        before, barcode="31234999000009", callNumber="84.2 NEW", varFields=new_fields
    )


def test_put_everything_at_once_as_a_reclassification(api: Api, fake: FakeSierra) -> None:
    before = with_note(fake)
    body = {"itemType": 1, "location": "h01an", "status": "-", "callNumbers": ["99.1 SIB"],
            "fixedFields": {"74": {"value": "7"}, INV: {"value": "2025-10-06"}}}  # fmt: skip

    assert api.put(before["id"], body).status == 204

    b, _, n = before["varFields"]
    assert fake.item(before["id"]) == stamped(
        before,
        itemType="Book",
        location={"code": "h01an", "name": "Main library adult non-fiction"},
        status={"code": "-", "display": "AVAILABLE"},
        callNumber="99.1 SIB",
        varFields=[b, {"fieldTag": "c", "content": "99.1 SIB"}, n],
        fixed={
            "61": {"label": "I TYPE", "value": "1", "display": "Book"},
            "74": {"label": "IUSE3", "value": "7"},
            "79": {"label": "LOCATION", "value": "h01an", "display": "Main library adult non-fiction"},
            "88": {"label": "STATUS", "value": "-", "display": "AVAILABLE"},
            INV: {"label": "INVDA", "value": "2025-10-06"},
        },
    )
    assert fake.puts == [(before["id"], body)]


def test_put_moves_the_item_into_a_later_updated_range(api: Api, fake: FakeSierra, clock: FakeClock) -> None:
    before = with_note(fake)
    clock.now = NOW + 61

    assert api.put(before["id"], {}).status == 204

    assert api.ids("updatedDate=[2025-10-06T12:01:01Z,2025-10-06T12:01:01Z]") == [before["id"]]


def test_put_unknown_key_is_400_naming_it(api: Api, fake: FakeSierra) -> None:
    before = with_note(fake)

    response = api.put(before["id"], {"barcode": "31234999000001", "itemType": 22})

    assert response.status == 400
    body = response.json()
    assert set(body) == set(load_fixture("error_400.json"))
    assert (
        body["httpStatus"] == 400 and "'barcode'" in body["description"] and "barcodes" in body["description"]
    )
    assert fake.item(before["id"]) == before


def test_put_unknown_location_code_is_400(api: Api, fake: FakeSierra) -> None:
    before = with_note(fake)

    response = api.put(before["id"], {"location": "zz99x", "status": "m"})

    assert response.status == 400
    assert response.json()["description"] == "Invalid location code 'zz99x'"
    assert set(response.json()) == set(load_fixture("error_400.json"))
    assert fake.item(before["id"]) == before


@pytest.mark.parametrize(
    "body",
    [
        {"itemType": "22"},
        {"itemType": True},
        {"itemType": 999},
        {"location": 5},
        {"status": "?"},
        {"status": ["m"]},
        {"barcodes": "31234000123456"},
        {"barcodes": [31234000123456]},
        {"callNumbers": "84.2 KIV"},
        {"fixedFields": []},
        {"fixedFields": {"74": 3}},
        {"fixedFields": {"74": {"value": -1}}},
        {"fixedFields": {"74": {"value": "many"}}},
        {"fixedFields": {"74": {"value": 3, "label": "IUSE3"}}},
        {"fixedFields": {"81": {"value": "1"}}},
        {"fixedFields": {"9999": {"value": "1"}}},
        {"fixedFields": {"97": {"value": None}}},
        {"varFields": {"fieldTag": "b", "content": "1"}},
        {"varFields": [{"fieldTag": "b"}]},
        {"varFields": [{"fieldTag": "bb", "content": "1"}]},
    ],
)
def test_put_with_invalid_values_is_400_and_changes_nothing(api: Api, fake: FakeSierra, body: Any) -> None:
    before = with_note(fake)

    response = api.put(before["id"], body)

    assert response.status == 400
    error = response.json()
    assert set(error) == set(load_fixture("error_400.json")) and error["httpStatus"] == 400
    assert fake.item(before["id"]) == before


@pytest.mark.parametrize("raw", [b"{not json", b'["a", "list"]', b""])
def test_put_with_a_body_that_is_not_an_object_is_the_fixture_error(
    api: Api, fake: FakeSierra, raw: bytes
) -> None:
    before = with_note(fake)

    response = api.put(before["id"], raw)

    assert (response.status, response.json()) == (400, load_fixture("error_400.json"))
    assert fake.item(before["id"]) == before


def test_put_of_an_unknown_or_deleted_item_is_404(api: Api, fake: FakeSierra) -> None:
    gone = next(fake.items())["id"]
    fake.delete_item(gone)

    assert api.put(gone, {"status": "m"}).status == 404
    assert api.put("9999999", {"status": "m"}).status == 404
    assert fake.puts == []


def test_other_methods_are_405(api: Api, fake: FakeSierra) -> None:
    item_id = next(fake.items())["id"]

    assert api.call("DELETE", f"/items/{item_id}").status == 405
    assert api.call("POST", "/items/").status == 405
    assert api.call("GET", "/items/query").status == 405
    assert api.call("GET", "/bibs/").status == 404


def test_refuse_item_fails_one_put_among_good_ones(api: Api, fake: FakeSierra) -> None:
    first, refused, third = (item for _, item in zip(range(3), fake.items(), strict=False))
    fake.refuse_item(refused["id"], "Item is checked out: location cannot change")

    answers = [api.put(item["id"], {"location": "h09va"}).status for item in (first, refused, third)]
    error = api.put(refused["id"], {"location": "h09va"}).json()

    assert answers == [204, 400, 204]
    assert set(error) == set(load_fixture("error_400.json"))
    assert error["description"] == "Item is checked out: location cannot change"
    assert fake.item(refused["id"]) == refused
    assert fake.item(first["id"])["location"]["code"] == fake.item(third["id"])["location"]["code"] == "h09va"
    assert [item_id for item_id, _ in fake.puts] == [first["id"], refused["id"], third["id"], refused["id"]]

    fake.accept_item(refused["id"])
    assert api.put(refused["id"], {"location": "h09va"}).status == 204


def test_refuse_through_the_control_endpoint(api: Api, fake: FakeSierra) -> None:
    item_id = next(fake.items())["id"]
    control = fake.handle(
        "POST", "/_fake/refuse", {}, json.dumps({"id": item_id, "description": "Nope"}).encode()
    )

    assert control.status == 200
    assert api.put(item_id, {"status": "m"}).json()["description"] == "Nope"


# -- helpers for tests -------------------------------------------------------------------------------------


def test_update_item_changes_and_stamps_an_item(fake: FakeSierra) -> None:
    before = with_note(fake)

    returned = fake.update_item(before["id"], at="2025-10-06T08:30:00Z", status="t", itemType=24)

    after = fake.item(before["id"])
    assert returned == after
    assert after["updatedDate"] == after["fixedFields"]["84"]["value"] == "2025-10-06T08:30:00Z"
    assert after["status"] == {"code": "t", "display": "IN TRANSIT"} and after["itemType"] == "DVD"
    assert fake.update_item(before["id"])["updatedDate"] == NOW_TEXT
    with pytest.raises(SierraError, match="Invalid location code"):
        fake.update_item(before["id"], location="nowhere")
    with pytest.raises(KeyError):
        fake.update_item("9999999", status="m")
    assert fake.puts == [] and fake.requests == []


def test_items_are_copies(fake: FakeSierra) -> None:
    item = fake.item("1000001")
    item["location"]["code"] = "changed"
    item["varFields"].clear()

    assert fake.item("1000001")["location"]["code"] != "changed"
    assert fake.item("1000001")["varFields"]


def test_requests_log_api_calls_but_not_control_calls(fake: FakeSierra) -> None:
    api = Api(fake)
    api.call("GET", "/items/?limit=1&fields=id")
    api.put("1000001", {"status": "m"})
    fake.handle("GET", "/_fake/stats", {}, b"")

    assert fake.requests == [
        ("POST", f"{BASE_PATH}/token"),
        ("GET", f"{BASE_PATH}/items/?limit=1&fields=id"),
        ("PUT", f"{BASE_PATH}/items/1000001"),
    ]
    assert fake.puts == [("1000001", {"status": "m"})]


# -- faults and quirks -------------------------------------------------------------------------------------


def test_status_fault_with_retry_after_does_not_reach_the_state(api: Api, fake: FakeSierra) -> None:
    before = with_note(fake)
    fake.add_fault("PUT", status=503, retry_after="7", times=2)

    answers = [api.put(before["id"], {"status": "m"}) for _ in range(3)]

    assert [answer.status for answer in answers] == [503, 503, 204]
    assert answers[0].headers["Retry-After"] == "7"
    assert answers[0].json()["httpStatus"] == 503 and set(answers[0].json()) == set(
        load_fixture("error_400.json")
    )
    assert fake.puts == [(before["id"], {"status": "m"})]
    assert fake.faults == []


def test_fault_after_lets_requests_through_first(api: Api, fake: FakeSierra) -> None:
    fake.add_fault("/items/?", status=500, after=2)

    assert [api.call("GET", "/items/?limit=1").status for _ in range(4)] == [200, 200, 500, 200]


def test_reset_fault_and_faults_through_the_control_endpoint(api: Api, fake: FakeSierra) -> None:
    added = fake.handle(
        "POST", "/_fake/faults", {}, json.dumps([{"match": "GET", "kind": "reset"}, {"status": 429}]).encode()
    )

    assert (added.status, added.json()) == (200, {"faults": 2})
    assert api.call("GET", "/items/?limit=1").action == "reset"
    assert api.call("GET", "/items/?limit=1").status == 429
    assert fake.handle("POST", "/_fake/faults", {}, b'{"kind": "garbled"}').status == 400
    assert fake.handle("POST", "/_fake/faults", {}, b'{"times": "2"}').status == 400
    fake.add_fault(times=-1)
    assert fake.handle("DELETE", "/_fake/faults", {}, b"").json() == {"faults": 0}
    assert api.call("GET", "/items/?limit=1").status == 200


def test_a_matching_fault_also_hits_the_token_endpoint(fake: FakeSierra) -> None:
    fake.add_fault("/token", status=500)

    assert fake.handle("POST", f"{BASE_PATH}/token", basic(), b"grant_type=client_credentials").status == 500
    assert fetch_token(fake)


def test_reported_quirks_can_be_switched_on(clock: FakeClock) -> None:
    fake = FakeSierra(items=30, seed=1, clock=clock, total_counts_page=True, empty_listing_404=True)
    api = Api(fake)

    assert api.page("limit=10&offset=25")["total"] == 5
    empty = api.call("GET", "/items/?updatedDate=[2030-01-01T00:00:00Z,]")
    assert (empty.status, empty.json()["code"]) == (404, 107)
    assert api.page("deleted=true&deletedDate=[2030-01-01,]") == {"total": 0, "start": 0, "entries": []}


# -- the real loopback server ------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeSierraServer]:
    with FakeSierraServer(FakeSierra(items=120, seed=5)) as running:
        yield running


def test_real_server_round_trip_with_requests(server: FakeSierraServer) -> None:
    assert server.url.endswith(BASE_PATH)
    with requests.Session() as session:
        token = session.post(
            f"{server.url}/token",
            auth=(DEFAULT_KEY, DEFAULT_SECRET),
            data={"grant_type": "client_credentials"},
            timeout=5,
        )
        assert token.status_code == 200
        session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

        page = session.get(
            f"{server.url}/items/", params={"limit": "50", "offset": "100", "fields": ALL_FIELDS}, timeout=5
        )
        first = page.json()["entries"][0]
        put = session.put(f"{server.url}/items/{first['id']}", json={"status": "m"}, timeout=5)
        query = barcode_query(first["barcode"])
        found = session.post(f"{server.url}/items/query?offset=0&limit=10", json=query, timeout=5)
        server.fake.add_fault("GET", kind="reset")
        with pytest.raises(requests.ConnectionError):
            session.get(f"{server.url}/items/", params={"limit": 1}, timeout=5)

    assert page.status_code == 200 and page.json()["total"] == 120 and len(page.json()["entries"]) == 20
    assert put.status_code == 204 and put.content == b""
    assert server.fake.item(first["id"])["status"] == {"code": "m", "display": "MISSING"}
    assert found.json()["entries"] == [{"link": f"{server.url}/items/{first['id']}"}]


# -- scale (make test-all) ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_hundred_thousand_items_build_and_page_fast() -> None:
    import time

    started = time.perf_counter()
    fake = FakeSierra(items=100_000, seed=1, clock=FakeClock())
    built = time.perf_counter() - started
    api = Api(fake)
    started = time.perf_counter()
    page = api.page(f"limit=2000&offset=50000&fields={ALL_FIELDS}")
    rendered = time.perf_counter() - started

    assert len(page["entries"]) == 2000
    assert built < 10 and rendered < 0.5, (built, rendered)
