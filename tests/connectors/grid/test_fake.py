"""The bundled fake grid API: auth, scopes, listing, versions, every write path, faults, the real server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from syncctl.connectors.grid.fake import (
    BASE_PATH,
    MAX_BATCH,
    FakeGrid,
    FakeGridServer,
    InvalidBody,
)
from syncctl.core.fakehttp import Response

NOT_AUTHENTICATED = {"detail": "Not authenticated"}
FORBIDDEN = {"detail": "Not enough permissions"}
NOT_FOUND = {"detail": "Not found"}
NOT_AN_INTEGER = "Input should be a valid integer, unable to parse string as an integer"
NOT_AN_OBJECT = "Input should be a valid dictionary or object to extract fields from"
AT_LEAST_1 = "Input should be greater than or equal to 1"
TRANSFORMER = {
    "name": "T-0900",
    "type": "transformer",
    "substation": "Ørestad",
    "voltage_kv": 10,
    "capacity_mva": 16.0,
}


class Clock:
    """An injected wall clock that tests move by hand: token expiry and rate limits without sleeping."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeGrid:
    """3 components (one of each type) with 4 measurements each: two ticks, the second with voltage only."""
    return FakeGrid(components=3, measurements_per_component=4, clock=clock)


def get_token(fake: FakeGrid, user: str = "manager", scope: str | None = "user manager") -> str:
    form = {"grant_type": "password", "username": user, "password": user}
    if scope is not None:
        form["scope"] = scope
    response = fake.handle("POST", f"{BASE_PATH}/token", {}, urlencode(form).encode())
    assert response.status == 200, response.body
    token: str = response.json()["access_token"]
    return token


def call(fake: FakeGrid, method: str, path: str, body: Any = None, *, token: str | None = None) -> Response:
    """One API request with a manager token (unless `token` is given); `body` is sent as JSON."""
    bearer = get_token(fake) if token is None else token
    raw = b"" if body is None else json.dumps(body).encode()
    return fake.handle(method, f"{BASE_PATH}{path}", {"Authorization": f"Bearer {bearer}"}, raw)


def list_all(fake: FakeGrid, resource: str, query: str = "", limit: int = 1000) -> list[dict[str, Any]]:
    """Follow `next` to the end; checks every page repeats the first page's max_version."""
    token = get_token(fake, "user", "user")
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    first_max: int | None = None
    while True:
        after = "" if cursor is None else f"&after={cursor}"
        response = call(fake, "GET", f"/{resource}?limit={limit}{query}{after}", token=token)
        assert response.status == 200, response.body
        page = response.json()
        first_max = page["max_version"] if first_max is None else first_max
        assert page["max_version"] == first_max
        rows.extend(page["data"])
        cursor = page["next"]
        if cursor is None:
            return rows
        assert len(page["data"]) == limit


def error(loc: list[str | int], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


# -- tokens and scopes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "scope", "granted"),
    [
        ("manager", "user manager", "user manager"),
        ("manager", "manager", "manager"),
        ("user", "user manager", "user"),
        ("user", "manager admin", ""),
        ("manager", None, ""),
    ],
)
def test_token_grants_the_requested_scopes_the_account_holds(
    fake: FakeGrid, user: str, scope: str | None, granted: str
) -> None:
    form = {"grant_type": "password", "username": user, "password": user}
    if scope is not None:
        form["scope"] = scope
    response = fake.handle("POST", "/api/token", {}, urlencode(form).encode())
    assert response.status == 200
    answer = response.json()
    assert len(answer.pop("access_token")) >= 32
    assert answer == {"token_type": "bearer", "expires_in": 1800, "scope": granted}


@pytest.mark.parametrize(("user", "password"), [("manager", "wrong"), ("nobody", "nobody"), ("user", "")])
def test_token_bad_user_or_password_is_401(fake: FakeGrid, user: str, password: str) -> None:
    body = urlencode({"grant_type": "password", "username": user, "password": password}).encode()
    response = fake.handle("POST", "/api/token", {}, body)
    assert (response.status, response.json()) == (401, {"detail": "Incorrect username or password"})


def test_token_form_without_credentials_is_422(fake: FakeGrid) -> None:
    response = fake.handle("POST", "/api/token", {}, b"grant_type=client_credentials")
    assert response.status == 422
    assert response.json() == {
        "detail": [
            error(
                ["body", "grant_type"], "String should match pattern '^password$'", "string_pattern_mismatch"
            ),
            error(["body", "username"], "Field required", "missing"),
            error(["body", "password"], "Field required", "missing"),
        ]
    }


def test_accounts_are_configurable(clock: Clock) -> None:
    fake = FakeGrid(clock=clock, accounts={"ops": ("s3cret", "user")})
    body = urlencode({"username": "ops", "password": "s3cret", "scope": "user manager"}).encode()
    assert fake.handle("POST", "/api/token", {}, body).json()["scope"] == "user"
    assert fake.handle("POST", "/api/token", {}, b"username=user&password=user").status == 401


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer not-a-token", "Basic dXNlcjp1c2Vy"])
def test_missing_or_garbage_token_is_401_with_bearer_challenge(
    fake: FakeGrid, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = fake.handle("GET", "/api/components", headers, b"")
    assert (response.status, response.json()) == (401, NOT_AUTHENTICATED)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_token_expires_after_1800_seconds_of_the_injected_clock(fake: FakeGrid, clock: Clock) -> None:
    token = get_token(fake)
    clock.now += 1799
    assert call(fake, "GET", "/components", token=token).status == 200
    clock.now += 1
    response = call(fake, "GET", "/components", token=token)
    assert (response.status, response.json()) == (401, NOT_AUTHENTICATED)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert call(fake, "GET", "/components").status == 200  # a new token works


def test_expire_tokens_invalidates_every_token_issued_so_far(fake: FakeGrid) -> None:
    first, second = get_token(fake), get_token(fake, "user", "user")
    assert fake.expire_tokens() == 2
    assert call(fake, "GET", "/components", token=first).status == 401
    assert call(fake, "GET", "/components", token=second).status == 401
    third = get_token(fake)
    assert fake.handle("POST", "/_fake/expire-tokens", {}, b"").json() == {"expired": 1}
    assert call(fake, "GET", "/components", token=third).status == 401


def test_writes_without_manager_scope_are_403_and_change_nothing(fake: FakeGrid) -> None:
    user = get_token(fake, "user")
    before = (list(fake.components()), list(fake.measurements()), fake.max_version)
    for method, path, body in [
        ("POST", "/components", TRANSFORMER),
        ("PUT", "/components/1", {"name": "x"}),
        ("DELETE", "/components/1", None),
        (
            "POST",
            "/measurements",
            [{"component_id": 1, "timestamp": "2025-01-01T00:00:00Z", "type": "power", "value": 1}],
        ),
        ("PUT", "/measurements/1", {"value": 2}),
        ("DELETE", "/measurements/1", None),
    ]:
        response = call(fake, method, path, body, token=user)
        assert (response.status, response.json()) == (403, FORBIDDEN), (method, path)
    assert (list(fake.components()), list(fake.measurements()), fake.max_version) == before


def test_reading_needs_user_scope_even_for_a_manager(fake: FakeGrid) -> None:
    manager_only = get_token(fake, "manager", "manager")
    assert call(fake, "GET", "/components", token=manager_only).json() == FORBIDDEN
    assert call(fake, "GET", "/measurements/1", token=manager_only).json() == FORBIDDEN
    assert call(fake, "POST", "/components", TRANSFORMER, token=manager_only).status == 201


def test_unknown_routes_and_methods(fake: FakeGrid) -> None:
    assert (call(fake, "GET", "/switches").status, call(fake, "GET", "/switches").json()) == (
        404,
        {"detail": "Not Found"},
    )
    response = call(fake, "PATCH", "/components/1", {"name": "x"})
    assert (response.status, response.headers["Allow"]) == (405, "GET, PUT, DELETE")
    assert call(fake, "DELETE", "/components").status == 405
    assert fake.handle("GET", "/api/token", {}, b"").status == 405
    response = call(fake, "GET", "/components/abc")
    problem = error(["path", "component_id"], NOT_AN_INTEGER, "int_parsing")
    assert (response.status, response.json()) == (422, {"detail": [problem]})


# -- generated data ----------------------------------------------------------------------------------------


def test_generated_data_is_realistic_and_deterministic(fake: FakeGrid) -> None:
    components = list(fake.components())
    assert [(c["id"], c["name"], c["type"], c["version"]) for c in components] == [
        (1, "T-0001", "transformer", 1),
        (2, "L-0001", "line", 2),
        (3, "S-0001", "switch", 3),
    ]
    transformer, line, switch = components
    assert transformer["length_km"] is None and transformer["status"] is None
    assert transformer["voltage_kv"] in (0.4, 10.0, 20.0, 60.0, 132.0, 400.0)
    assert isinstance(transformer["capacity_mva"], float)
    assert line["capacity_mva"] is None and line["status"] is None and line["length_km"] > 0
    assert (switch["voltage_kv"], switch["capacity_mva"], switch["length_km"]) == (None, None, None)
    assert switch["status"] in ("open", "closed")
    assert all(isinstance(c["substation"], str) and c["substation"] for c in components)

    measurements = list(fake.measurements())
    shape = [(m["id"], m["component_id"], m["timestamp"], m["type"], m["version"]) for m in measurements]
    first_tick = [(c, t) for c in (1, 2, 3) for t in ("voltage", "current", "power")]
    expected = [(c, "2025-01-01T00:00:00Z", t) for c, t in first_tick] + [
        (c, "2025-01-01T00:15:00Z", "voltage") for c in (1, 2, 3)
    ]
    assert shape == [(n + 1, c, ts, t, n + 4) for n, (c, ts, t) in enumerate(expected)]
    assert all(type(m["value"]) is float for m in measurements)
    voltage = measurements[0]["value"]
    assert 0.9 * transformer["voltage_kv"] < voltage < 1.1 * transformer["voltage_kv"]
    assert fake.max_version == 15

    again = FakeGrid(components=3, measurements_per_component=4)
    assert (list(again.components()), list(again.measurements())) == (components, measurements)
    other = FakeGrid(components=3, measurements_per_component=4, seed=1)
    assert list(other.measurements()) != measurements


# -- listing -----------------------------------------------------------------------------------------------


def test_listing_pages_by_id_until_next_is_null(clock: Clock) -> None:
    fake = FakeGrid(components=5, measurements_per_component=7, clock=clock)
    token = get_token(fake, "user", "user")
    sizes, cursor, rows = [], None, []
    while True:
        after = "" if cursor is None else f"&after={cursor}"
        page = call(fake, "GET", f"/measurements?limit=10{after}", token=token).json()
        assert set(page) == {"data", "next", "max_version"}
        sizes.append(len(page["data"]))
        rows.extend(page["data"])
        cursor = page["next"]
        if cursor is None:
            break
    assert sizes == [10, 10, 10, 5]
    assert rows == list(fake.measurements())
    assert [row["id"] for row in rows] == list(range(1, 36))
    assert list_all(fake, "components", limit=2) == list(fake.components())


def test_last_full_page_has_no_next(clock: Clock) -> None:
    fake = FakeGrid(components=2, measurements_per_component=5, clock=clock)
    pages = [call(fake, "GET", "/measurements?limit=5").json()]
    pages.append(call(fake, "GET", f"/measurements?limit=5&after={pages[0]['next']}").json())
    assert [len(p["data"]) for p in pages] == [5, 5]
    assert pages[1]["next"] is None


def test_listing_default_limit_is_1000(clock: Clock) -> None:
    fake = FakeGrid(components=1, measurements_per_component=1001, clock=clock)
    page = call(fake, "GET", "/measurements").json()
    assert (len(page["data"]), page["next"] is not None) == (1000, True)
    assert len(call(fake, "GET", "/measurements?limit=10000").json()["data"]) == 1001


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("limit=0", error(["query", "limit"], AT_LEAST_1, "greater_than_equal")),
        ("limit=-5", error(["query", "limit"], AT_LEAST_1, "greater_than_equal")),
        (
            "limit=10001",
            error(["query", "limit"], "Input should be less than or equal to 10000", "less_than_equal"),
        ),
        ("limit=ten", error(["query", "limit"], NOT_AN_INTEGER, "int_parsing")),
        ("version_gt=x", error(["query", "version_gt"], NOT_AN_INTEGER, "int_parsing")),
        ("after=%21%21", error(["query", "after"], "Value error, not a cursor from this API", "value_error")),
    ],
)
def test_bad_listing_parameters_are_422(fake: FakeGrid, query: str, problem: dict[str, Any]) -> None:
    for resource in ("components", "measurements"):
        response = call(fake, "GET", f"/{resource}?{query}")
        assert (response.status, response.json()) == (422, {"detail": [problem]})


def test_version_gt_lists_creates_and_updates_but_not_deletes(fake: FakeGrid) -> None:
    since = fake.max_version
    fake.update_measurement(5, value=99.5)
    created = fake.create_measurement(2, "2025-02-01T00:00:00Z", "power", 1.25)
    fake.update_measurement(2, type="current")
    fake.delete_measurement(5)
    renamed = fake.update_component(3, status="open")
    changed = list_all(fake, "measurements", f"&version_gt={since}")
    second = next(m for m in fake.measurements() if m["id"] == 2)
    assert changed == [second, created]
    assert [m["version"] for m in changed] == [since + 3, since + 2]
    assert list_all(fake, "components", f"&version_gt={since}") == [renamed]
    assert list_all(fake, "measurements", f"&version_gt={fake.max_version}") == []


@pytest.mark.parametrize("since", [0, 2500, 9000, 10_010, 12_000])
def test_version_gt_pages_match_an_independent_filter(clock: Clock, since: int) -> None:
    # 10,000 rows and 3,000 scattered updates: small `since` values take the scan, large ones the change log.
    fake = FakeGrid(components=10, measurements_per_component=1000, clock=clock)
    for measurement_id in range(7, 10_000, 3):
        fake.update_measurement(measurement_id, value=float(measurement_id))
    for measurement_id in range(11, 10_000, 1000):
        fake.delete_measurement(measurement_id)
    expected = [m for m in fake.measurements() if m["version"] > since]
    assert list_all(fake, "measurements", f"&version_gt={since}", limit=997) == expected


def test_listing_stays_right_after_mass_deletes_compact_the_columns(clock: Clock) -> None:
    # 80,000 deleted rows outnumber the live ones: the columns and the change log are compacted.
    fake = FakeGrid(components=5, measurements_per_component=20_000, clock=clock)
    since = fake.max_version
    fake.update_measurement(13, value=1.0)  # component 5's first voltage reading: rows 13-15 of each tick
    fake.update_measurement(4, value=1.0)  # component 2's: deleted below, so no longer a change to list
    for component_id in (1, 2, 3, 4):
        fake.delete_component(component_id)
    updated = fake.update_measurement(14, value=2.0)
    created = fake.create_measurement(5, "2025-01-01T00:00:00Z", "power", 3.0)
    assert len(fake._m_id) == fake.state()["measurements"] == 20_001
    survivors = list(fake.measurements())
    assert {m["component_id"] for m in survivors} == {5}
    assert list_all(fake, "measurements", limit=7000) == survivors
    changed = list_all(fake, "measurements", f"&version_gt={since}")
    assert [m["id"] for m in changed] == [13, 14, created["id"]]
    assert updated in changed


def test_max_version_is_the_counter_when_the_listing_began(fake: FakeGrid) -> None:
    began = fake.max_version
    first = call(fake, "GET", "/measurements?limit=5").json()
    assert first["max_version"] == began
    behind = fake.update_measurement(2, value=7.0)  # behind the cursor: this listing never sees it
    ahead = fake.update_measurement(9, value=8.0)
    rest = call(fake, "GET", f"/measurements?limit=100&after={first['next']}").json()
    assert rest["max_version"] == began  # not the counter now: that would vouch for the update behind
    assert ahead in rest["data"] and behind not in first["data"] + rest["data"]
    assert call(fake, "GET", "/measurements?limit=5").json()["max_version"] == began + 2
    # The promise: a completed listing plus the changes after its max_version is the whole state.
    assert behind in list_all(fake, "measurements", f"&version_gt={first['max_version']}")


def test_versions_come_from_one_counter_across_resources(fake: FakeGrid) -> None:
    start = fake.max_version
    component = call(fake, "POST", "/components", TRANSFORMER).json()
    body = {"component_id": component["id"], "type": "power", "timestamp": "2025-01-01T00:00:00Z", "value": 1}
    measurement = call(fake, "POST", "/measurements", body).json()
    updated = call(fake, "PUT", f"/components/{component['id']}", {}).json()
    assert [component["version"], measurement["version"], updated["version"]] == [
        start + 1,
        start + 2,
        start + 3,
    ]
    assert (component["id"], measurement["id"]) == (4, 13)  # each resource numbers its own ids


# -- components --------------------------------------------------------------------------------------------


def test_create_component_returns_the_stored_object(fake: FakeGrid) -> None:
    response = call(fake, "POST", "/components", {**TRANSFORMER, "id": 77, "version": 1, "extra": True})
    stored = {
        "id": 4,
        "name": "T-0900",
        "type": "transformer",
        "substation": "Ørestad",
        "voltage_kv": 10.0,
        "capacity_mva": 16.0,
        "length_km": None,
        "status": None,
        "version": 16,
    }
    assert (response.status, response.json()) == (201, stored)
    assert call(fake, "GET", "/components/4").json() == stored
    body = {"name": "S", "type": "switch", "substation": "V", "status": "open", "voltage_kv": None}
    switch = call(fake, "POST", "/components", body).json()
    assert (switch["status"], switch["voltage_kv"]) == ("open", None)


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        ({}, [error(["body", n], "Field required", "missing") for n in ("name", "type", "substation")]),
        ([TRANSFORMER], [error(["body"], NOT_AN_OBJECT, "model_attributes_type")]),
        (
            {**TRANSFORMER, "type": "busbar", "name": 5},
            [
                error(["body", "name"], "Input should be a valid string", "string_type"),
                error(["body", "type"], "Input should be 'transformer', 'line' or 'switch'", "literal_error"),
            ],
        ),
        (
            {**TRANSFORMER, "voltage_kv": True, "capacity_mva": "16"},
            [
                error(["body", "voltage_kv"], "Input should be a valid number", "float_type"),
                error(["body", "capacity_mva"], "Input should be a valid number", "float_type"),
            ],
        ),
        (
            {**TRANSFORMER, "length_km": 3.5, "status": "closed"},
            [
                error(
                    ["body", "length_km"],
                    "Value error, length_km is only for line components, it must be null for a transformer",
                    "value_error",
                ),
                error(
                    ["body", "status"],
                    "Value error, status is only for switch components, it must be null for a transformer",
                    "value_error",
                ),
            ],
        ),
        (
            {"name": "S", "type": "switch", "substation": "V", "status": "half"},
            [error(["body", "status"], "Input should be 'open' or 'closed'", "literal_error")],
        ),
    ],
)
def test_create_component_invalid_is_422(fake: FakeGrid, body: Any, problems: list[dict[str, Any]]) -> None:
    before = fake.max_version
    response = call(fake, "POST", "/components", body)
    assert (response.status, response.json()) == (422, {"detail": problems})
    assert fake.max_version == before and len(list(fake.components())) == 3


def test_update_component_changes_only_the_fields_sent(fake: FakeGrid) -> None:
    line = next(c for c in fake.components() if c["type"] == "line")
    response = call(
        fake, "PUT", f"/components/{line['id']}", {"length_km": 12, "name": "L-9", "type": "line"}
    )
    expected = {**line, "length_km": 12.0, "name": "L-9", "version": fake.max_version}
    assert (response.status, response.json()) == (200, expected)
    assert call(fake, "GET", f"/components/{line['id']}").json() == expected


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            {"type": "switch"},
            error(
                ["body", "type"],
                "Value error, the type of a component cannot be changed (it is a line)",
                "value_error",
            ),
        ),
        (
            {"capacity_mva": 40},
            error(
                ["body", "capacity_mva"],
                "Value error, capacity_mva is only for transformer components, it must be null for a line",
                "value_error",
            ),
        ),
        ({"name": None}, error(["body", "name"], "Input should be a valid string", "string_type")),
        (
            {"voltage_kv": float("inf")},
            error(["body", "voltage_kv"], "Input should be a finite number", "finite_number"),
        ),
    ],
)
def test_update_component_invalid_is_422(
    fake: FakeGrid, body: dict[str, Any], problem: dict[str, Any]
) -> None:
    before = list(fake.components())
    response = call(fake, "PUT", "/components/2", body)
    assert (response.status, response.json()) == (422, {"detail": [problem]})
    assert list(fake.components()) == before


def test_unknown_component_is_404(fake: FakeGrid) -> None:
    for method, body in (("GET", None), ("PUT", {"name": "x"}), ("DELETE", None)):
        response = call(fake, method, "/components/99", body)
        assert (response.status, response.json()) == (404, NOT_FOUND)


def test_delete_component_deletes_its_measurements(fake: FakeGrid) -> None:
    kept = [m for m in fake.measurements() if m["component_id"] != 2]
    response = call(fake, "DELETE", "/components/2")
    assert (response.status, response.body) == (204, b"")
    assert [c["id"] for c in list_all(fake, "components")] == [1, 3]
    assert list_all(fake, "measurements") == kept
    assert call(fake, "GET", "/measurements/4").status == 404  # rows 4-6 and 11 were component 2's
    assert (
        call(
            fake,
            "POST",
            "/measurements",
            {"component_id": 2, "timestamp": "2025-01-01T00:00:00Z", "type": "power", "value": 1},
        ).status
        == 422
    )


# -- measurements ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2025-03-01T12:30:00+02:00", "2025-03-01T10:30:00Z"),
        ("2025-03-01T12:30:00Z", "2025-03-01T12:30:00Z"),
        ("2025-03-01T00:30:00.999-01:30", "2025-03-01T02:00:00Z"),
        ("2024-12-31T23:30:00-05:00", "2025-01-01T04:30:00Z"),
    ],
)
def test_timestamps_are_stored_and_returned_in_utc(fake: FakeGrid, sent: str, stored: str) -> None:
    response = call(
        fake, "POST", "/measurements", {"component_id": 1, "timestamp": sent, "type": "voltage", "value": 10}
    )
    expected = {
        "id": 13,
        "component_id": 1,
        "timestamp": stored,
        "type": "voltage",
        "value": 10.0,
        "version": 16,
    }
    assert (response.status, response.json()) == (201, expected)
    assert call(fake, "GET", "/measurements/13").json() == expected


def test_create_measurements_in_a_batch_returns_them_in_order(fake: FakeGrid) -> None:
    batch = [
        {"component_id": c, "timestamp": "2025-05-01T00:00:00Z", "type": t, "value": v}
        for c, t, v in ((3, "current", 120.5), (1, "power", 2), (2, "voltage", 10.25))
    ]
    response = call(fake, "POST", "/measurements", batch)
    expected = [
        {**item, "id": 13 + n, "value": float(item["value"]), "version": 16 + n}
        for n, item in enumerate(batch)
    ]
    assert (response.status, response.json()) == (201, expected)
    assert list(fake.measurements())[-3:] == expected
    assert call(fake, "POST", "/measurements", []).json() == []


def test_a_batch_is_all_or_nothing(fake: FakeGrid) -> None:
    good = {"component_id": 1, "timestamp": "2025-05-01T00:00:00Z", "type": "power", "value": 1.0}
    batch = [
        good,
        {**good, "value": False},
        good,
        {**good, "component_id": 42},
        {**good, "timestamp": "2025-05-01"},
    ]
    before = (list(fake.measurements()), fake.max_version)
    response = call(fake, "POST", "/measurements", batch)
    assert (response.status, response.json()) == (
        422,
        {
            "detail": [
                error(["body", 1, "value"], "Input should be a valid number", "float_type"),
                error(["body", 3, "component_id"], "Value error, component 42 does not exist", "value_error"),
                error(["body", 4, "timestamp"], "Input should have timezone info", "timezone_aware"),
            ]
        },
    )
    assert (list(fake.measurements()), fake.max_version) == before


def test_a_batch_holds_at_most_1000(fake: FakeGrid) -> None:
    item = {"component_id": 1, "timestamp": "2025-05-01T00:00:00Z", "type": "power", "value": 1.0}
    response = call(fake, "POST", "/measurements", [item] * (MAX_BATCH + 1))
    too_long = error(["body"], "List should have at most 1000 items after validation, not 1001", "too_long")
    assert (response.status, response.json()) == (422, {"detail": [too_long]})
    assert len(call(fake, "POST", "/measurements", [item] * MAX_BATCH).json()) == MAX_BATCH


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        (
            {},
            [
                error(["body", n], "Field required", "missing")
                for n in ("component_id", "timestamp", "type", "value")
            ],
        ),
        (
            {"component_id": "1", "timestamp": 1735689600, "type": "frequency", "value": "1.5"},
            [
                error(["body", "component_id"], "Input should be a valid integer", "int_type"),
                error(["body", "timestamp"], "Input should be a valid datetime", "datetime_type"),
                error(["body", "type"], "Input should be 'voltage', 'current' or 'power'", "literal_error"),
                error(["body", "value"], "Input should be a valid number", "float_type"),
            ],
        ),
        (
            {"component_id": 1, "timestamp": "2025-01-01T00:00:00", "type": "power", "value": 1},
            [error(["body", "timestamp"], "Input should have timezone info", "timezone_aware")],
        ),
        (
            {"component_id": 1, "timestamp": "yesterday", "type": "power", "value": 1},
            [
                error(
                    ["body", "timestamp"],
                    "Input should be a valid datetime in ISO 8601 format",
                    "datetime_parsing",
                )
            ],
        ),
        (
            {"component_id": 9, "timestamp": "2025-01-01T00:00:00Z", "type": "power", "value": 1},
            [error(["body", "component_id"], "Value error, component 9 does not exist", "value_error")],
        ),
    ],
)
def test_create_measurement_invalid_is_422(fake: FakeGrid, body: Any, problems: list[dict[str, Any]]) -> None:
    response = call(fake, "POST", "/measurements", body)
    assert (response.status, response.json()) == (422, {"detail": problems})
    assert fake.max_version == 15


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"", error(["body"], "Field required", "missing")),
        (b'{"value": ', error(["body", 10], "JSON decode error", "json_invalid")),
        (
            b'{"component_id": 1, "timestamp": "2025-01-01T00:00:00Z", "type": "power", "value": NaN}',
            error(["body", "value"], "Input should be a finite number", "finite_number"),
        ),
    ],
)
def test_unreadable_bodies_are_422(fake: FakeGrid, raw: bytes, problem: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {get_token(fake)}"}
    response = fake.handle("POST", "/api/measurements", headers, raw)
    assert (response.status, response.json()) == (422, {"detail": [problem]})


def test_update_measurement_changes_only_the_fields_sent(fake: FakeGrid) -> None:
    original = next(m for m in fake.measurements() if m["id"] == 4)
    response = call(fake, "PUT", "/measurements/4", {"value": -3, "timestamp": "2025-06-01T02:00:00+02:00"})
    expected = {**original, "value": -3.0, "timestamp": "2025-06-01T00:00:00Z", "version": 16}
    assert (response.status, response.json()) == (200, expected)
    moved = call(fake, "PUT", "/measurements/4", {"component_id": 3, "type": "power"}).json()
    assert moved == {**expected, "component_id": 3, "type": "power", "version": 17}


def test_update_measurement_invalid_or_unknown(fake: FakeGrid) -> None:
    response = call(fake, "PUT", "/measurements/4", {"component_id": 99, "value": None})
    assert (response.status, response.json()) == (
        422,
        {"detail": [error(["body", "value"], "Input should be a valid number", "float_type")]},
    )
    response = call(fake, "PUT", "/measurements/4", {"component_id": 99})
    unknown = error(["body", "component_id"], "Value error, component 99 does not exist", "value_error")
    assert (response.status, response.json()) == (422, {"detail": [unknown]})
    for method, body in (("GET", None), ("PUT", {"value": 1}), ("DELETE", None)):
        response = call(fake, method, "/measurements/999", body)
        assert (response.status, response.json()) == (404, NOT_FOUND)
    assert fake.max_version == 15


def test_delete_measurement(fake: FakeGrid) -> None:
    response = call(fake, "DELETE", "/measurements/4")
    assert (response.status, response.body) == (204, b"")
    assert call(fake, "GET", "/measurements/4").json() == NOT_FOUND
    assert call(fake, "DELETE", "/measurements/4").status == 404
    assert [m["id"] for m in list_all(fake, "measurements")] == [n for n in range(1, 13) if n != 4]


def test_python_helpers_validate_like_the_api(fake: FakeGrid) -> None:
    fake.create_measurement(1, "2025-01-01T00:00:00Z", "power", 1)
    assert fake.requests == []  # helpers are not API requests
    created = fake.create_component("L-0100", "line", "Valby", voltage_kv=20, length_km=4.2)
    assert call(fake, "GET", f"/components/{created['id']}").json() == created
    with pytest.raises(InvalidBody) as raised:
        fake.create_component("X", "switch", "Valby", capacity_mva=5)
    assert raised.value.errors[0]["loc"] == ["body", "capacity_mva"]
    with pytest.raises(KeyError):
        fake.update_component(999, name="x")
    with pytest.raises(KeyError):
        fake.delete_measurement(999)
    measurement = fake.create_measurement(created["id"], "2025-01-01T01:00:00+01:00", "current", 5)
    assert measurement["timestamp"] == "2025-01-01T00:00:00Z"
    assert fake.update_measurement(measurement["id"], value=6)["value"] == 6.0
    fake.delete_component(created["id"])
    assert measurement["id"] not in {m["id"] for m in fake.measurements()}


# -- faults, rate limit, request log -----------------------------------------------------------------------


def test_status_fault_answers_without_doing_anything(fake: FakeGrid) -> None:
    fake.add_fault("POST /api/measurements", status=503, times=2, retry_after="7")
    body = {"component_id": 1, "timestamp": "2025-01-01T00:00:00Z", "type": "power", "value": 1}
    for _ in range(2):
        response = call(fake, "POST", "/measurements", body)
        assert (response.status, response.json()) == (503, {"detail": "Simulated server failure (503)"})
        assert response.headers["Retry-After"] == "7"
    assert fake.max_version == 15
    assert call(fake, "POST", "/measurements", body).status == 201
    assert fake.faults == []


def test_reset_fault_drops_the_request(fake: FakeGrid) -> None:
    fake.add_fault("DELETE", kind="reset")
    assert call(fake, "DELETE", "/measurements/1").action == "reset"
    assert call(fake, "GET", "/measurements/1").status == 200


def test_lose_answer_applies_the_write_then_resets(fake: FakeGrid) -> None:
    fake.add_fault("POST /api/measurements", kind="lose_answer")
    batch = [{"component_id": 1, "timestamp": "2025-01-01T00:00:00Z", "type": "power", "value": 1}] * 3
    response = call(fake, "POST", "/measurements", batch)
    assert (response.status, response.body, response.action) == (0, b"", "reset")
    assert [m["id"] for m in fake.measurements()][-3:] == [13, 14, 15]
    assert fake.max_version == 18


def test_fault_and_state_control_endpoints(fake: FakeGrid) -> None:
    added = fake.handle(
        "POST",
        "/_fake/faults",
        {},
        json.dumps([{"match": "GET", "status": 429, "retry_after": "3"}]).encode(),
    )
    assert added.json() == {"faults": 1}
    response = call(fake, "GET", "/components")
    assert (response.status, response.json(), response.headers["Retry-After"]) == (
        429,
        {"detail": "Too Many Requests"},
        "3",
    )
    assert fake.handle("POST", "/_fake/faults", {}, b'{"kind": "melt"}').status == 400
    assert fake.handle("POST", "/_fake/faults", {}, b'{"times": "2"}').status == 400
    state = fake.handle("GET", "/_fake/state", {}, b"").json()
    assert state == {"components": 3, "measurements": 12, "max_version": 15, "requests": 2, "faults": 0}


def test_rate_limit_answers_429_with_retry_after(clock: Clock) -> None:
    fake = FakeGrid(components=1, clock=clock, rate_limit_per_minute=2)
    token = get_token(fake)
    clock.now += 20
    assert call(fake, "GET", "/components", token=token).status == 200
    response = call(fake, "GET", "/components", token=token)
    assert (response.status, response.json(), response.headers["Retry-After"]) == (
        429,
        {"detail": "Too Many Requests"},
        "40",
    )
    clock.now += 40
    assert call(fake, "GET", "/components", token=token).status == 200


def test_requests_logs_every_api_request_with_its_query(fake: FakeGrid) -> None:
    token = get_token(fake, "user", "user")
    call(fake, "GET", "/measurements?limit=2&version_gt=3", token=token)
    call(fake, "PUT", "/components/1", {"name": "x"}, token=token)
    fake.handle("GET", "/_fake/state", {}, b"")
    assert fake.requests == [
        ("POST", "/api/token"),
        ("GET", "/api/measurements?limit=2&version_gt=3"),
        ("PUT", "/api/components/1"),
    ]


# -- scale and the real server -----------------------------------------------------------------------------


def test_300k_measurements_build_and_page_quickly() -> None:
    started = time.perf_counter()
    fake = FakeGrid(components=10, measurements_per_component=30_000)
    built = time.perf_counter() - started
    token = get_token(fake, "user", "user")
    started = time.perf_counter()
    page = call(fake, "GET", "/measurements?limit=10000", token=token)
    rendered = time.perf_counter() - started
    assert len(page.json()["data"]) == 10_000
    assert built < 2.0 and rendered < 0.25, (built, rendered)  # ~0.2 s and ~10 ms: generous for slow CI
    last = list_all(fake, "measurements", limit=10_000)[-1]
    assert (last["id"], last["component_id"], last["timestamp"]) == (300_000, 10, "2025-04-15T03:45:00Z")


@pytest.fixture
def server(fake: FakeGrid) -> Iterator[FakeGridServer]:
    with FakeGridServer(fake) as running:
        yield running


def test_real_server_serves_the_api(server: FakeGridServer, fake: FakeGrid) -> None:
    assert server.url.endswith("/api")
    with requests.Session() as session:
        form = {"username": "manager", "password": "manager", "scope": "user manager"}
        token = session.post(f"{server.url}/token", data=form).json()["access_token"]
        session.headers["Authorization"] = f"Bearer {token}"
        page = session.get(f"{server.url}/measurements", params={"limit": 5}).json()
        assert page["data"] == list(fake.measurements())[:5]
        batch = [{"component_id": 1, "timestamp": "2025-01-01T00:00:00+01:00", "type": "power", "value": 2.5}]
        created = session.post(f"{server.url}/measurements", json=batch)
        assert (created.status_code, created.json()[0]["timestamp"]) == (201, "2024-12-31T23:00:00Z")
        fake.add_fault("PUT", kind="lose_answer")
        with pytest.raises(requests.ConnectionError):
            session.put(f"{server.url}/measurements/13", json={"value": 3})
        assert session.get(f"{server.url}/measurements/13").json()["value"] == 3.0
        assert session.get(f"{server.origin}/_fake/state").json()["max_version"] == 17
    assert fake.requests == [
        ("POST", "/api/token"),
        ("GET", "/api/measurements?limit=5"),
        ("POST", "/api/measurements"),
        ("PUT", "/api/measurements/13"),
        ("GET", "/api/measurements/13"),
    ]
