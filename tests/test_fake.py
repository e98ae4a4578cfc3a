"""The bundled fake Intempus: state, HTTP semantics, faults, control endpoints, the real loopback server."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from syncctl.connectors.intempus.fake import (
    DEFAULT_KEY,
    DEFAULT_USER,
    FakeIntempus,
    FakeServer,
    Fault,
    InvalidCase,
    make_case,
)
from syncctl.core.fakehttp import Response

AUTH = {"Authorization": f"ApiKey {DEFAULT_USER}:{DEFAULT_KEY}"}
NEW_CASE = {"name": "Ny sag på Ærø", "number": "N-1", "customer": "/web/v1/customer/6666940/"}
DECIMAL = re.compile(r"-?\d+\.\d+")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Types of the fields that are null in the fixture, when they are not null; the rest are strings.
NULLABLE_TYPES = {"priority": int, "remarks_required": bool}
EMPTY_PAGE = {
    "meta": {"limit": 10, "next": None, "offset": 0, "previous": None, "total_count": 0},
    "objects": [],
}
LINKS = {"case_group": "case_group", "case_group_full": "case_group", "case_state": "case_state",
         "co_responsible": "employee", "customer": "customer", "department": "department",
         "responsible": "employee", "resource_uri": "case"}  # fmt: skip


def call(
    fake: FakeIntempus, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> Response:
    raw = b"" if body is None else json.dumps(body).encode()
    return fake.handle(method, path, AUTH if headers is None else headers, raw)


def list_all(fake: FakeIntempus, first: str) -> tuple[list[int], list[str]]:
    """Follow meta.next from `first`; the ids seen in order and every `next` path."""
    ids: list[int] = []
    nexts: list[str] = []
    path: str | None = first
    while path is not None:
        response = call(fake, "GET", path)
        assert response.status == 200, response.body
        page = response.json()
        ids.extend(case["id"] for case in page["objects"])
        path = page["meta"]["next"]
        if path is not None:
            nexts.append(path)
    return ids, nexts


def is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> FakeIntempus:
    return FakeIntempus(cases=30, seed=3)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeIntempus(cases=30, seed=3)) as running:
        yield running


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        opened.headers.update(AUTH)
        yield opened


# -- make_case ---------------------------------------------------------------------------------------------


def test_make_case_has_the_fixture_keys_types_and_formats(case_fixture: dict[str, Any]) -> None:
    rng = random.Random(5)
    for case_id in range(9_700_000, 9_700_300):
        case = make_case(case_id, 9_100_000_123, rng)
        assert list(case) == list(case_fixture)
        for name, value in case.items():
            expected = (
                type(case_fixture[name]) if case_fixture[name] is not None else NULLABLE_TYPES.get(name, str)
            )
            assert value is None or type(value) is expected, (name, value)
        for name, resource in LINKS.items():
            assert case[name] is None or re.fullmatch(rf"/web/v1/{resource}/\d+/", case[name]), (
                name,
                case[name],
            )
        assert case["resource_uri"] == f"/web/v1/case/{case_id}/"
        assert case["customer_id"] == case["customer"].split("/")[-2]
        assert case["case_group_full"] == case["case_group"]
        assert all(re.fullmatch(r"/web/v1/employee/\d+/", uri) for uri in case["responsibles"])
        for name in ("hour_budget", "latitude", "longitude", "customer_latitude", "customer_longitude"):
            assert case[name] is None or DECIMAL.fullmatch(case[name]), (name, case[name])
        for name in ("creation_date", "start_date", "end_date"):
            assert case[name] is None or DATE.fullmatch(case[name]), (name, case[name])
        assert case["end_date"] is None or (
            case["start_date"] is not None and case["start_date"] <= case["end_date"]
        )
        assert case["creation_id"] is None and case["uuid"] is None
        assert case["id"] == case_id and case["logical_timestamp"] == 9_100_000_123


def test_make_case_varies_and_speaks_danish() -> None:
    rng = random.Random(1)
    cases = [make_case(9_700_000 + n, n, rng) for n in range(300)]
    assert len({case["name"] for case in cases}) > 250
    assert len({case["notes"] for case in cases}) > 5
    assert len({case["customer"] for case in cases}) > 50
    assert any(re.search("[æøåÆØÅ]", case["name"] + case["notes"]) for case in cases)
    assert {True, False} <= {case["active"] for case in cases}
    assert any(case["hour_budget"] for case in cases) and any(case["hour_budget"] is None for case in cases)


def test_make_case_is_deterministic_for_a_seed() -> None:
    assert make_case(1, 2, random.Random(9)) == make_case(1, 2, random.Random(9))


# -- state -------------------------------------------------------------------------------------------------


def test_fake_intempus_starts_with_realistic_ids_and_timestamps(fake: FakeIntempus) -> None:
    assert len(fake.cases) == 30
    stamps = [case["logical_timestamp"] for case in fake.cases.values()]
    assert 9_000_000_000 < min(stamps) <= max(stamps) == fake.counter
    assert all(case["id"] == case_id for case_id, case in fake.cases.items())
    assert FakeIntempus(cases=30, seed=3).cases == fake.cases


def test_fake_intempus_every_change_bumps_the_counter(fake: FakeIntempus) -> None:
    start = fake.counter
    created = fake.create(NEW_CASE)
    updated = fake.update(created["id"], {"notes": "x"})
    fake.delete(min(fake.cases))
    assert (created["logical_timestamp"], updated["logical_timestamp"], fake.counter) == (
        start + 1,
        start + 2,
        start + 3,
    )


def test_fake_intempus_mutate_reports_what_it_changed(fake: FakeIntempus) -> None:
    before = {case_id: dict(case) for case_id, case in fake.cases.items()}
    changed = fake.mutate(update=4, delete=3, create=2, seed=11)
    assert (len(changed["updated"]), len(changed["deleted"]), len(changed["created"])) == (4, 3, 2)
    assert not set(changed["updated"]) & set(changed["deleted"])
    assert set(fake.cases) == (set(before) - set(changed["deleted"])) | set(changed["created"])
    assert min(changed["created"]) > max(before)
    for case_id in changed["updated"]:
        assert (
            fake.cases[case_id]["name"] != before[case_id]["name"]
            or fake.cases[case_id]["notes"] != (before[case_id]["notes"])
        )
    untouched = set(before) - set(changed["updated"]) - set(changed["deleted"])
    assert all(fake.cases[case_id] == before[case_id] for case_id in untouched)


# -- auth, headers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "ApiKey demo:wrong"}, {"Authorization": "ApiKey Demo:demo-key"},
     {"Authorization": "Bearer demo:demo-key"}, {"Authorization": "ApiKey demo-key"}],
)  # fmt: skip
def test_handle_refuses_bad_credentials_with_an_empty_401(
    fake: FakeIntempus, headers: dict[str, str]
) -> None:
    response = call(fake, "GET", "/web/v1/case/", headers=headers)
    assert (response.status, response.body) == (401, b"")


def test_handle_accepts_the_scheme_word_in_any_case(fake: FakeIntempus) -> None:
    response = call(fake, "GET", "/web/v1/case/", headers={"authorization": "APIKEY demo:demo-key"})
    assert response.status == 200


def test_handle_sends_the_logical_timestamp_header_on_every_answer(fake: FakeIntempus) -> None:
    case_id = min(fake.cases)
    responses = [
        call(fake, "GET", "/web/v1/case/"),
        call(fake, "GET", f"/web/v1/case/{case_id}/"),
        call(fake, "GET", "/web/v1/case/1/"),
        call(fake, "DELETE", f"/web/v1/case/{case_id}/"),
        call(fake, "GET", "/web/v1/case/", headers={}),
    ]
    assert [r.headers["Logical-Timestamp"] for r in responses] == [str(fake.counter - 1)] * 3 + [
        str(fake.counter)
    ] * 2


def test_handle_logs_api_requests_but_not_control_ones(fake: FakeIntempus) -> None:
    call(fake, "GET", "/web/v1/case/?limit=5")
    call(fake, "GET", "/_fake/stats")
    call(fake, "PUT", f"/web/v1/case/{min(fake.cases)}/", {"notes": "n"})
    assert fake.requests == [("GET", "/web/v1/case/?limit=5"), ("PUT", f"/web/v1/case/{min(fake.cases)}/")]


# -- listing -----------------------------------------------------------------------------------------------


def test_list_offset_paging_returns_every_case_once(fake: FakeIntempus) -> None:
    ids, nexts = list_all(fake, "/web/v1/case/?limit=7")
    assert ids == sorted(fake.cases)
    assert nexts == [f"/web/v1/case/?limit=7&offset={n}" for n in (7, 14, 21, 28)]


def test_list_cursor_paging_returns_every_case_once(fake: FakeIntempus) -> None:
    ids, nexts = list_all(fake, "/web/v1/case/?pagination_type=cursor&limit=7")
    assert ids == sorted(fake.cases)
    assert len(nexts) == 4
    assert all(re.fullmatch(r"/web/v1/case/\?pagination_type=cursor&limit=7&after=[\w-]+", n) for n in nexts)


def test_list_cursor_paging_is_stable_under_deletes(fake: FakeIntempus) -> None:
    first = call(fake, "GET", "/web/v1/case/?pagination_type=cursor&limit=10").json()
    fake.delete(first["objects"][0]["id"])
    ids, _ = list_all(fake, first["meta"]["next"])
    assert ids == sorted(fake.cases)[9:]


def test_list_offset_paging_shifts_under_deletes_like_the_real_server(fake: FakeIntempus) -> None:
    first = call(fake, "GET", "/web/v1/case/?limit=10").json()
    fake.delete(first["objects"][0]["id"])
    second = call(fake, "GET", first["meta"]["next"]).json()
    skipped = sorted(fake.cases)[9]
    assert second["objects"][0]["id"] == sorted(fake.cases)[10]
    assert skipped not in [case["id"] for case in first["objects"] + second["objects"]]


def test_list_meta_has_the_real_envelope(fake: FakeIntempus) -> None:
    page = call(fake, "GET", "/web/v1/case/?limit=10&offset=10").json()
    assert page["meta"] == {
        "limit": 10,
        "next": "/web/v1/case/?limit=10&offset=20",
        "offset": 10,
        "previous": "/web/v1/case/?limit=10&offset=0",
        "total_count": 30,
    }
    assert [case["id"] for case in page["objects"]] == sorted(fake.cases)[10:20]
    assert page["objects"][0] == fake.cases[page["objects"][0]["id"]]


def test_list_defaults_to_1000_and_caps_the_limit_at_10000(fake: FakeIntempus) -> None:
    assert call(fake, "GET", "/web/v1/case/").json()["meta"]["limit"] == 1000
    assert call(fake, "GET", "/web/v1/case/?limit=50000").json()["meta"]["limit"] == 10000


def test_list_refuses_cursor_paging_when_switched_off(fake: FakeIntempus) -> None:
    fake.cursor_paging = False
    response = call(fake, "GET", "/web/v1/case/?pagination_type=cursor&limit=5")
    assert (response.status, response.json()) == (400, {"error": "Invalid pagination type"})
    assert call(fake, "GET", "/web/v1/case/?limit=5").status == 200


@pytest.mark.parametrize("query", ["limit=x", "offset=-1", "pagination_type=cursor&after=%21%21", "id__in=a"])
def test_list_refuses_malformed_parameters(fake: FakeIntempus, query: str) -> None:
    response = call(fake, "GET", f"/web/v1/case/?{query}")
    assert response.status == 400
    assert "error" in response.json()


def test_list_logical_timestamp_gt_returns_only_changed_cases(fake: FakeIntempus) -> None:
    since = fake.counter
    first, second, gone = sorted(fake.cases)[3:6]
    fake.update(second, {"notes": "a"})
    fake.update(first, {"notes": "b"})
    fake.update(second, {"notes": "c"})
    fake.delete(gone)
    created = fake.create(NEW_CASE)["id"]
    ids, _ = list_all(fake, f"/web/v1/case/?logical_timestamp__gt={since}&limit=2")
    assert ids == [first, second, created]
    latest = call(fake, "GET", f"/web/v1/case/?logical_timestamp__gt={fake.counter}").json()
    assert (latest["objects"], latest["meta"]["total_count"]) == ([], 0)


def test_list_next_carries_the_filters_along(fake: FakeIntempus) -> None:
    since = min(case["logical_timestamp"] for case in fake.cases.values())
    page = call(
        fake, "GET", f"/web/v1/case/?logical_timestamp__gt={since}&pagination_type=cursor&limit=5"
    ).json()
    query = parse_qs(urlsplit(page["meta"]["next"]).query)
    assert query["logical_timestamp__gt"] == [str(since)] and query["pagination_type"] == ["cursor"]
    ids, _ = list_all(fake, page["meta"]["next"])
    assert [case["id"] for case in page["objects"]] + ids == sorted(fake.cases)[1:]
    assert page["meta"]["total_count"] == 29


def test_list_id_in_and_equality_filters(fake: FakeIntempus) -> None:
    wanted = sorted(fake.cases)[:3]
    page = call(fake, "GET", f"/web/v1/case/?id__in={wanted[2]},{wanted[0]},1").json()
    assert [case["id"] for case in page["objects"]] == [wanted[0], wanted[2]]
    active = call(fake, "GET", "/web/v1/case/?active=false").json()["objects"]
    assert [case["id"] for case in active] == sorted(
        i for i, case in fake.cases.items() if not case["active"]
    )


def test_list_reflects_updates_in_the_cached_json(fake: FakeIntempus) -> None:
    case_id = min(fake.cases)
    call(fake, "GET", "/web/v1/case/")
    fake.update(case_id, {"name": "Omdøbt sag"})
    listed = call(fake, "GET", "/web/v1/case/?limit=1").json()["objects"][0]
    assert listed == fake.cases[case_id] and listed["name"] == "Omdøbt sag"


# -- one case: get, create, update, delete -----------------------------------------------------------------


def test_get_case_answers_the_case_or_404(fake: FakeIntempus) -> None:
    case_id = min(fake.cases)
    assert call(fake, "GET", f"/web/v1/case/{case_id}/").json() == fake.cases[case_id]
    missing = call(fake, "GET", "/web/v1/case/1/")
    assert (missing.status, missing.json()) == (404, {"error": "Not found"})


def test_create_answers_201_with_the_42_quirk_and_get_shows_the_real_timestamp(
    fake: FakeIntempus, case_fixture: dict[str, Any]
) -> None:
    response = call(fake, "POST", "/web/v1/case/", NEW_CASE)
    created = response.json()
    assert response.status == 201 and created["logical_timestamp"] == 42
    assert created["id"] > max(set(fake.cases) - {created["id"]})
    assert list(created) == list(case_fixture)
    stored = call(fake, "GET", f"/web/v1/case/{created['id']}/").json()
    assert stored == {**created, "logical_timestamp": fake.counter}
    assert {k: stored[k] for k in ("name", "number", "customer_id", "customer_name", "resource_uri")} == {
        "name": "Ny sag på Ærø",
        "number": "N-1",
        "customer_id": "6666940",
        "customer_name": "Eksempelkunde",
        "resource_uri": f"/web/v1/case/{created['id']}/",
    }
    assert (stored["active"], stored["notes"], stored["responsibles"], stored["hour_budget"]) == (
        True,
        "",
        [],
        None,
    )


def test_create_with_a_known_creation_id_returns_the_same_case(fake: FakeIntempus) -> None:
    first = call(fake, "POST", "/web/v1/case/", {**NEW_CASE, "creation_id": "abc-1"})
    counter = fake.counter
    again = call(fake, "POST", "/web/v1/case/", {**NEW_CASE, "name": "other", "creation_id": "abc-1"})
    assert (again.status, again.json()) == (201, first.json())
    assert (len(fake.cases), fake.counter) == (31, counter)
    assert (
        call(fake, "POST", "/web/v1/case/", {**NEW_CASE, "creation_id": "abc-2"}).json()["id"]
        != (first.json()["id"])
    )


def test_create_fills_link_copies(fake: FakeIntempus) -> None:
    created = fake.create(
        {**NEW_CASE, "department": "/web/v1/department/149058/", "responsible": "/web/v1/employee/480001/",
         "case_group": "/web/v1/case_group/16695/", "hour_budget": 12.5, "latitude": "55.5"}
    )  # fmt: skip
    assert {
        k: created[k] for k in ("department_id", "department_name", "responsible_id", "case_group_full")
    } == {
        "department_id": "149058",
        "department_name": "Værksted",
        "responsible_id": "480001",
        "case_group_full": "/web/v1/case_group/16695/",
    }
    assert (created["hour_budget"], created["latitude"]) == ("12.50", "55.500000")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"number": "1", "customer": NEW_CASE["customer"]}, {"case": {"name": ["This field is required."]}}),
        ({"name": "x"}, {"case": {"customer": ["This field is required."]}}),
        ({**NEW_CASE, "end_date": "2025-01-02"}, {"error": ["Slutdato kræver en startdato"]}),
        ({**NEW_CASE, "latitude": "91.0"}, {"error": "latitude must be between -90 and 90"}),
        ({**NEW_CASE, "colour": "red"}, {"error": "Unknown field(s): colour"}),
        ({**NEW_CASE, "active": "yes"}, {"case": {"active": ["Must be true or false."]}}),
        ({**NEW_CASE, "customer": "/web/v1/employee/1/"}, None),
    ],
)
def test_create_refuses_invalid_bodies(fake: FakeIntempus, body: dict[str, Any], error: Any) -> None:
    response = call(fake, "POST", "/web/v1/case/", body)
    assert response.status == 400
    if error is not None:
        assert response.json() == error
    assert len(fake.cases) == 30


def test_create_refuses_a_body_that_is_not_a_json_object(fake: FakeIntempus) -> None:
    assert fake.handle("POST", "/web/v1/case/", AUTH, b"[1]").status == 400
    assert fake.handle("POST", "/web/v1/case/", AUTH, b"{nope").status == 400


def test_create_direct_call_raises_invalid_case(fake: FakeIntempus) -> None:
    with pytest.raises(InvalidCase) as raised:
        fake.create({"name": "x"})
    assert raised.value.body == {"case": {"customer": ["This field is required."]}}


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_is_partial_and_ignores_read_only_fields(fake: FakeIntempus, method: str) -> None:
    case_id = min(fake.cases)
    before = dict(fake.cases[case_id])
    body = {
        "notes": "ny note",
        "id": 1,
        "customer_name": "Hacker",
        "logical_timestamp": 5,
        "creation_id": "z",
    }
    response = call(fake, method, f"/web/v1/case/{case_id}/", body)
    assert response.status == 200
    assert response.json() == {**before, "notes": "ny note", "logical_timestamp": fake.counter}
    assert fake.cases[case_id] == response.json()


def test_update_validates_against_the_stored_case(fake: FakeIntempus) -> None:
    case_id = min(fake.cases)
    fake.update(case_id, {"start_date": None, "end_date": None})
    response = call(fake, "PUT", f"/web/v1/case/{case_id}/", {"end_date": "2025-03-01"})
    assert (response.status, response.json()) == (400, {"error": ["Slutdato kræver en startdato"]})
    both = {"start_date": "2025-01-01", "end_date": "2025-03-01"}
    assert call(fake, "PUT", f"/web/v1/case/{case_id}/", both).status == 200
    assert call(fake, "PUT", f"/web/v1/case/{case_id}/", {"latitude": -90.5}).status == 400


def test_update_and_delete_answer_404_for_unknown_cases(fake: FakeIntempus) -> None:
    assert call(fake, "PUT", "/web/v1/case/1/", {"notes": "x"}).status == 404
    assert call(fake, "DELETE", "/web/v1/case/1/").status == 404
    with pytest.raises(KeyError):
        fake.update(1, {"notes": "x"})


def test_delete_answers_204_then_404(fake: FakeIntempus) -> None:
    case_id = min(fake.cases)
    deleted = call(fake, "DELETE", f"/web/v1/case/{case_id}/")
    assert (deleted.status, deleted.body) == (204, b"")
    assert case_id not in fake.cases
    assert call(fake, "GET", f"/web/v1/case/{case_id}/").status == 404
    assert case_id not in [c["id"] for c in call(fake, "GET", "/web/v1/case/").json()["objects"]]


# -- rate limit --------------------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_in_a_sliding_window() -> None:
    clock = FakeClock()
    fake = FakeIntempus(cases=3, rate_limit_per_minute=3, clock=clock)
    statuses = []
    for step in (0.0, 10.0, 20.0, 5.0):
        clock.now += step
        statuses.append(call(fake, "GET", "/web/v1/case/").status)
    assert statuses == [200, 200, 200, 429]
    refused = call(fake, "GET", "/web/v1/case/")
    assert (refused.headers["Retry-After"], refused.json()) == ("25", {"error": "rate limited"})
    clock.now += 25.0
    assert call(fake, "GET", "/web/v1/case/").status == 200


# -- faults, without sockets -------------------------------------------------------------------------------


def test_fault_after_and_times_pick_the_requests_to_fail(fake: FakeIntempus) -> None:
    fake.add_fault(Fault(match="GET /web/v1/case/?", after=1, times=2, status=503, retry_after="7"))
    statuses = [call(fake, "GET", "/web/v1/case/?limit=5").status for _ in range(4)]
    assert statuses == [200, 503, 503, 200]
    assert call(fake, "GET", f"/web/v1/case/{min(fake.cases)}/").status == 200
    assert fake.faults == []


def test_fault_forever_and_429_body(fake: FakeIntempus) -> None:
    fake.add_fault(Fault(match="PUT ", times=-1, status=429, retry_after="3"))
    for _ in range(3):
        response = call(fake, "PUT", f"/web/v1/case/{min(fake.cases)}/", {"notes": "x"})
        assert (response.status, response.headers["Retry-After"], response.json()) == (
            429,
            "3",
            {"error": "rate limited"},
        )
    assert fake.cases[min(fake.cases)]["notes"] != "x"


def test_fault_status_without_apply_after_changes_nothing(fake: FakeIntempus) -> None:
    fake.add_fault(Fault(match="POST"))
    response = call(fake, "POST", "/web/v1/case/", NEW_CASE)
    assert (response.status, response.json()) == (500, {"error_message": "Simulated server failure (500)"})
    assert len(fake.cases) == 30


def test_fault_status_with_apply_after_commits_then_fails(fake: FakeIntempus) -> None:
    case_id = min(fake.cases)
    fake.add_fault(Fault(match=f"PUT /web/v1/case/{case_id}/", status=502, apply_after=True))
    assert call(fake, "PUT", f"/web/v1/case/{case_id}/", {"notes": "committed"}).status == 502
    assert fake.cases[case_id]["notes"] == "committed"


def test_fault_delay_sleeps_through_the_injected_sleep() -> None:
    slept: list[float] = []
    fake = FakeIntempus(cases=2, sleep=slept.append)
    fake.add_fault(Fault(kind="delay", delay_s=12.5))
    assert call(fake, "GET", "/web/v1/case/").status == 200
    assert slept == [12.5]


def test_fault_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault(kind="explode")


# -- the real server on loopback ---------------------------------------------------------------------------


def test_server_serves_the_api_with_content_length_and_keep_alive(
    server: FakeServer, session: requests.Session
) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/web/v1", server.url)
    first_five = sorted(server.fake.cases)[:5]
    listed = session.get(f"{server.url}/case/", params={"limit": 5})
    deleted = session.delete(f"{server.url}/case/{min(server.fake.cases)}/")
    refused = requests.get(f"{server.url}/case/")
    assert (listed.status_code, deleted.status_code, refused.status_code) == (200, 204, 401)
    assert listed.headers["Content-Length"] == str(len(listed.content))
    assert (deleted.headers["Content-Length"], refused.headers["Content-Length"]) == ("0", "0")
    assert [case["id"] for case in listed.json()["objects"]] == first_five
    assert listed.raw.version == 11 and listed.headers.get("Connection", "keep-alive") == "keep-alive"


@pytest.mark.parametrize(
    ("kind", "status", "check"),
    [
        ("html", 500, lambda r: r.text.startswith("<!DOCTYPE html>")),
        ("not_json", 200, lambda r: not is_json(r.content)),
        ("no_objects", 200, lambda r: "objects" not in r.json() and "meta" in r.json()),
        ("missing_id", 200, lambda r: sum("id" not in case for case in r.json()["objects"]) == 1),
        ("empty_listing", 200, lambda r: r.json() == EMPTY_PAGE),
    ],
)
def test_server_fault_kinds_spoil_the_answer(
    server: FakeServer, session: requests.Session, kind: str, status: int, check: Any
) -> None:
    server.fake.add_fault(Fault(kind=kind))
    spoiled = session.get(f"{server.url}/case/", params={"limit": 10})
    assert spoiled.status_code == status
    assert check(spoiled)
    assert len(session.get(f"{server.url}/case/", params={"limit": 10}).json()["objects"]) == 10


def test_server_fault_truncated_breaks_off_the_body(server: FakeServer, session: requests.Session) -> None:
    server.fake.add_fault(Fault(kind="truncated"))
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        session.get(f"{server.url}/case/")
    assert session.get(f"{server.url}/case/").status_code == 200


def test_server_fault_reset_drops_the_connection(server: FakeServer, session: requests.Session) -> None:
    server.fake.add_fault(Fault(kind="reset", match="GET"))
    with pytest.raises(requests.exceptions.ConnectionError, match="reset by peer"):
        session.get(f"{server.url}/case/")
    assert session.get(f"{server.url}/case/").status_code == 200


def test_server_fault_reset_after_commit_loses_only_the_answer(
    server: FakeServer, session: requests.Session
) -> None:
    server.fake.add_fault(Fault(kind="reset", match="POST", apply_after=True))
    with pytest.raises(requests.exceptions.ConnectionError):
        session.post(f"{server.url}/case/", json={**NEW_CASE, "creation_id": "retry-me"})
    assert len(server.fake.cases) == 31
    again = session.post(f"{server.url}/case/", json={**NEW_CASE, "creation_id": "retry-me"})
    assert again.status_code == 201 and len(server.fake.cases) == 31


def test_server_control_endpoints_drive_the_fake_without_auth(server: FakeServer) -> None:
    host = server.url.removesuffix("/web/v1")
    changed = requests.post(
        f"{host}/_fake/mutate", json={"update": 2, "delete": 1, "create": 3, "seed": 4}
    ).json()
    assert [len(changed[k]) for k in ("updated", "deleted", "created")] == [2, 1, 3]
    added = requests.post(f"{host}/_fake/faults", json=[{"match": "GET /web/v1/case/", "status": 503}])
    assert (added.status_code, server.fake.faults[0].status) == (200, 503)
    assert requests.delete(f"{host}/_fake/faults").status_code == 200 and server.fake.faults == []
    assert requests.post(f"{host}/_fake/faults", json=[{"kind": "nope"}]).status_code == 400
    assert requests.post(f"{host}/_fake/faults", json=[{"times": "twice"}]).status_code == 400
    assert requests.post(f"{host}/_fake/mutate", json={"update": -1}).status_code == 400
    assert requests.post(f"{host}/_fake/render").json()["rendered"] == len(server.fake.cases)
    assert requests.post(f"{host}/_fake/render").json()["rendered"] == 0
    stats = requests.get(f"{host}/_fake/stats").json()
    assert stats == {"cases": 32, "counter": server.fake.counter, "requests": 0, "faults": 0}


def test_server_stop_closes_idle_keep_alive_connections() -> None:
    server = FakeServer(FakeIntempus(cases=2)).start()
    with requests.Session() as idle:
        idle.headers.update(AUTH)
        assert idle.get(f"{server.url}/case/").status_code == 200
        server.stop()  # would hang on the idle connection's handler thread if not closed
        with pytest.raises(requests.exceptions.ConnectionError):
            idle.get(f"{server.url}/case/", timeout=5)


def test_serve_forever_stops_cleanly_on_sigterm() -> None:
    script = (
        "from syncctl.connectors.intempus.fake import serve_forever\n"
        "serve_forever('127.0.0.1', 0, 12, on_ready=lambda url: print(url, flush=True))\n"
        "print('stopped', flush=True)\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert requests.get(f"{url}/case/", headers=AUTH, timeout=5).json()["meta"]["total_count"] == 12
        process.terminate()
        assert process.wait(timeout=10) == 0
        assert process.stdout.read() == "stopped\n"
