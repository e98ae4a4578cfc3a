from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses
from responses import matchers

from syncctl.connectors.intempus.client import IntempusClient, Page, RateLimiter, describe_error_body
from syncctl.connectors.intempus.config import Settings
from syncctl.core.errors import AuthError, NotFoundError, RemoteError, ValidationError
from syncctl.core.settings import RetryPolicy, Secret

BASE = "https://intempus.test/web/v1"
LIST_URL = f"{BASE}/case/"
CASE_URL = f"{BASE}/case/9611850/"
CURSOR_URL = f"{LIST_URL}?limit=2&pagination_type=cursor"
OFFSET_URL = f"{LIST_URL}?limit=2&offset=0"
USER = "syncbot"
KEY = "k3y-s3cr3t-4242"


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it (or a test advances it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make_client(delays: list[float], **options: Any) -> IntempusClient:
    options.setdefault("page_size", 2)
    return IntempusClient(BASE, USER, KEY, sleep=delays.append, **options)


def query(call: responses.Call) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(str(call.request.url)).query))


def sent_body(call: responses.Call) -> Any:
    return json.loads(call.request.body or b"null")


def cursor_query(**extra: str) -> list[Any]:
    return [matchers.query_param_matcher({"limit": "2", "pagination_type": "cursor", **extra})]


def with_next(page: dict[str, Any], next_path: str | None) -> dict[str, Any]:
    changed = copy.deepcopy(page)
    changed["meta"]["next"] = next_path
    return changed


def case_with_id(case: dict[str, Any], case_id: int) -> dict[str, Any]:
    return {**case, "id": case_id, "resource_uri": f"/web/v1/case/{case_id}/"}


@pytest.fixture
def remote() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def delays() -> list[float]:
    return []


@pytest.fixture
def client(delays: list[float]) -> Iterator[IntempusClient]:
    made = make_client(delays)
    yield made
    made.close()


# -- authentication ------------------------------------------------------------------------------------


def test_client_sends_apikey_authorization_header(
    remote: responses.RequestsMock, client: IntempusClient, case_fixture: dict[str, Any]
) -> None:
    remote.get(CASE_URL, json=case_fixture)

    client.get_case(9611850)

    assert remote.calls[0].request.headers["Authorization"] == f"ApiKey {USER}:{KEY}"


def test_client_401_raises_auth_error_without_the_key(
    remote: responses.RequestsMock, client: IntempusClient, delays: list[float]
) -> None:
    remote.get(CASE_URL, status=401, body=b"")

    with pytest.raises(AuthError) as raised:
        client.get_case(9611850)

    assert "authentication failed" in str(raised.value)
    assert KEY not in str(raised.value)
    assert KEY not in repr(raised.value)
    assert raised.value.status == 401
    assert (len(remote.calls), delays) == (1, [])


# -- listing -------------------------------------------------------------------------------------------


def test_iter_pages_first_request_asks_for_cursor_paging_with_limit(
    remote: responses.RequestsMock, client: IntempusClient, list_page_fixture: dict[str, Any]
) -> None:
    remote.get(LIST_URL, json=list_page_fixture, match=cursor_query())

    list(client.iter_pages())

    assert [query(call) for call in remote.calls] == [{"limit": "2", "pagination_type": "cursor"}]


def test_iter_pages_follows_host_relative_next_until_null(
    remote: responses.RequestsMock,
    client: IntempusClient,
    list_page_fixture: dict[str, Any],
    case_fixture: dict[str, Any],
) -> None:
    next_path = "/web/v1/case/?pagination_type=cursor&limit=2&after=abc"
    last = {"meta": {"limit": 2, "next": None, "previous": None, "total_count": 3}, "objects": [case_fixture]}
    remote.get(LIST_URL, json=with_next(list_page_fixture, next_path), match=cursor_query())
    remote.get(LIST_URL, json=last, match=cursor_query(after="abc"))

    pages = list(client.iter_pages())

    second_url = "https://intempus.test/web/v1/case/?pagination_type=cursor&limit=2&after=abc"
    assert pages == [
        Page(list_page_fixture["objects"], CURSOR_URL, None, 2),
        Page([case_fixture], second_url, None, 3),
    ]
    assert [call.request.url for call in remote.calls] == [CURSOR_URL, second_url]
    assert client.cursor_paging is True


def test_iter_pages_takes_logical_timestamp_from_header(
    remote: responses.RequestsMock, client: IntempusClient, list_page_fixture: dict[str, Any]
) -> None:
    remote.get(LIST_URL, json=list_page_fixture, headers={"Logical-Timestamp": "9113344999"})

    pages = list(client.iter_pages())

    assert pages == [Page(list_page_fixture["objects"], CURSOR_URL, 9113344999, 2)]


def test_iter_pages_since_adds_logical_timestamp_filter(
    remote: responses.RequestsMock, client: IntempusClient, list_page_fixture: dict[str, Any]
) -> None:
    remote.get(LIST_URL, json=list_page_fixture)

    list(client.iter_pages(since=9083590000))

    assert [query(call) for call in remote.calls] == [
        {"limit": "2", "logical_timestamp__gt": "9083590000", "pagination_type": "cursor"}
    ]


def test_iter_pages_falls_back_to_offset_paging_when_cursor_refused(
    remote: responses.RequestsMock, client: IntempusClient, list_page_fixture: dict[str, Any]
) -> None:
    remote.get(LIST_URL, status=400, json={"error": "Invalid pagination_type"}, match=cursor_query())
    remote.get(
        LIST_URL,
        json=list_page_fixture,
        match=[matchers.query_param_matcher({"limit": "2", "offset": "0"})],
    )

    pages = list(client.iter_pages())

    assert pages == [Page(list_page_fixture["objects"], OFFSET_URL, None, 2)]
    assert [call.request.url for call in remote.calls] == [CURSOR_URL, OFFSET_URL]
    assert client.cursor_paging is False


def test_iter_pages_after_cursor_refusal_goes_straight_to_offset(
    remote: responses.RequestsMock, client: IntempusClient, list_page_fixture: dict[str, Any]
) -> None:
    remote.get(LIST_URL, status=400, json={"error": "Invalid pagination_type"}, match=cursor_query())
    remote.get(
        LIST_URL,
        json=list_page_fixture,
        match=[matchers.query_param_matcher({"limit": "2", "offset": "0"})],
    )
    list(client.iter_pages())

    pages = list(client.iter_pages())

    assert pages == [Page(list_page_fixture["objects"], OFFSET_URL, None, 2)]
    assert [call.request.url for call in remote.calls] == [CURSOR_URL, OFFSET_URL, OFFSET_URL]


def test_iter_pages_offset_fallback_keeps_since_filter(
    remote: responses.RequestsMock, client: IntempusClient, list_page_fixture: dict[str, Any]
) -> None:
    remote.get(
        LIST_URL,
        status=400,
        json={"error": "Invalid pagination_type"},
        match=cursor_query(logical_timestamp__gt="9083590000"),
    )
    remote.get(LIST_URL, json=list_page_fixture)

    list(client.iter_pages(since=9083590000))

    assert [query(call) for call in remote.calls] == [
        {"limit": "2", "logical_timestamp__gt": "9083590000", "pagination_type": "cursor"},
        {"limit": "2", "logical_timestamp__gt": "9083590000", "offset": "0"},
    ]


def test_iter_pages_follows_offset_next_after_fallback(
    remote: responses.RequestsMock,
    client: IntempusClient,
    list_page_fixture: dict[str, Any],
    case_fixture: dict[str, Any],
) -> None:
    last = {"meta": {"limit": 2, "next": None, "offset": 2, "total_count": 3}, "objects": [case_fixture]}
    remote.get(LIST_URL, status=400, json={"error": "Invalid pagination_type"}, match=cursor_query())
    remote.get(
        LIST_URL,
        json=with_next(list_page_fixture, "/web/v1/case/?limit=2&offset=2"),
        match=[matchers.query_param_matcher({"limit": "2", "offset": "0"})],
    )
    remote.get(LIST_URL, json=last, match=[matchers.query_param_matcher({"limit": "2", "offset": "2"})])

    pages = list(client.iter_pages())

    assert [page.objects for page in pages] == [list_page_fixture["objects"], [case_fixture]]
    assert [call.request.url for call in remote.calls] == [
        CURSOR_URL,
        OFFSET_URL,
        f"{LIST_URL}?limit=2&offset=2",
    ]


def test_iter_pages_paging_loop_raises_remote_error(
    remote: responses.RequestsMock,
    client: IntempusClient,
    list_page_fixture: dict[str, Any],
    case_fixture: dict[str, Any],
) -> None:
    remote.get(
        LIST_URL,
        json=with_next(list_page_fixture, "/web/v1/case/?limit=2&pagination_type=cursor&after=abc"),
        match=cursor_query(),
    )
    back_to_first = {
        "meta": {"limit": 2, "next": "/web/v1/case/?limit=2&pagination_type=cursor", "total_count": 3},
        "objects": [case_fixture],
    }
    remote.get(LIST_URL, json=back_to_first, match=cursor_query(after="abc"))
    pages: list[Page] = []

    with pytest.raises(RemoteError) as raised:
        pages.extend(client.iter_pages())

    assert str(raised.value) == f"Intempus paging loops back to {CURSOR_URL}"
    assert [page.objects for page in pages] == [list_page_fixture["objects"], [case_fixture]]
    assert len(remote.calls) == 2


# -- retries -------------------------------------------------------------------------------------------


def test_request_retries_503_then_succeeds_after_one_backoff(
    remote: responses.RequestsMock, client: IntempusClient, delays: list[float], case_fixture: dict[str, Any]
) -> None:
    remote.get(CASE_URL, status=503)
    remote.get(CASE_URL, json=case_fixture)

    assert client.get_case(9611850) == case_fixture
    assert len(remote.calls) == 2
    assert len(delays) == 1
    assert 1.0 <= delays[0] <= 2.0  # backoff_initial plus at most backoff_initial of jitter


def test_request_429_waits_exactly_retry_after(
    remote: responses.RequestsMock, client: IntempusClient, delays: list[float], case_fixture: dict[str, Any]
) -> None:
    remote.get(CASE_URL, status=429, headers={"Retry-After": "7"})
    remote.get(CASE_URL, json=case_fixture)

    assert client.get_case(9611850) == case_fixture
    assert delays == [7.0]


def test_request_503_honours_retry_after(
    remote: responses.RequestsMock, client: IntempusClient, delays: list[float], case_fixture: dict[str, Any]
) -> None:
    remote.get(CASE_URL, status=503, headers={"Retry-After": "3"})
    remote.get(CASE_URL, json=case_fixture)

    assert client.get_case(9611850) == case_fixture
    assert delays == [3.0]


def test_request_caps_huge_retry_after(
    remote: responses.RequestsMock, delays: list[float], case_fixture: dict[str, Any]
) -> None:
    client = make_client(delays, retry=RetryPolicy(retry_after_cap=45.0))
    remote.get(CASE_URL, status=429, headers={"Retry-After": "86400"})
    remote.get(CASE_URL, json=case_fixture)

    assert client.get_case(9611850) == case_fixture
    assert delays == [45.0]


@pytest.mark.parametrize("status", [500, 502, 504])
def test_request_retries_server_errors(
    remote: responses.RequestsMock,
    client: IntempusClient,
    delays: list[float],
    case_fixture: dict[str, Any],
    status: int,
) -> None:
    remote.get(CASE_URL, status=status, body="<html><body>Bad Gateway</body></html>")
    remote.get(CASE_URL, json=case_fixture)

    assert client.get_case(9611850) == case_fixture
    assert (len(remote.calls), len(delays)) == (2, 1)


def test_request_retries_connection_error(
    remote: responses.RequestsMock, client: IntempusClient, delays: list[float], case_fixture: dict[str, Any]
) -> None:
    remote.get(CASE_URL, body=requests.ConnectionError("Connection refused"))
    remote.get(CASE_URL, json=case_fixture)

    assert client.get_case(9611850) == case_fixture
    assert (len(remote.calls), len(delays)) == (2, 1)


def test_request_gives_up_after_attempts_with_last_error_naming_host(
    remote: responses.RequestsMock, delays: list[float]
) -> None:
    client = make_client(delays, retry=RetryPolicy(attempts=3))
    remote.get(CASE_URL, status=503)
    remote.get(CASE_URL, status=503)
    remote.get(CASE_URL, status=502, json={"error_message": "upstream down"})

    with pytest.raises(RemoteError) as raised:
        client.get_case(9611850)

    assert str(raised.value) == f"intempus.test answered 502 to GET {CASE_URL}: upstream down"
    assert (raised.value.status, raised.value.url) == (502, CASE_URL)
    assert (len(remote.calls), len(delays)) == (3, 2)


def test_request_connection_error_after_attempts_names_host(
    remote: responses.RequestsMock, delays: list[float]
) -> None:
    client = make_client(delays, retry=RetryPolicy(attempts=2))
    remote.get(CASE_URL, body=requests.ConnectionError("Connection refused"))

    with pytest.raises(RemoteError) as raised:
        client.get_case(9611850)

    assert str(raised.value) == f"intempus.test cannot be reached (GET {CASE_URL})"
    assert (len(remote.calls), len(delays)) == (2, 1)


@pytest.mark.parametrize(
    ("status", "error"), [(400, ValidationError), (403, RemoteError), (404, NotFoundError)]
)
def test_request_does_not_retry_client_errors(
    remote: responses.RequestsMock,
    client: IntempusClient,
    delays: list[float],
    status: int,
    error: type[RemoteError],
) -> None:
    remote.get(CASE_URL, status=status, json={"error": "nope"})

    with pytest.raises(error) as raised:
        client.get_case(9611850)

    assert raised.value.status == status
    assert (len(remote.calls), delays) == (1, [])


def test_request_backoff_grows_exponentially_within_bounds(
    remote: responses.RequestsMock, delays: list[float]
) -> None:
    client = make_client(delays, retry=RetryPolicy(attempts=7, backoff_initial=1.0, backoff_max=10.0))
    remote.get(CASE_URL, status=503)

    with pytest.raises(RemoteError):
        client.get_case(9611850)

    assert len(delays) == 6
    # Attempt n waits initial * 2**(n-1) plus up to `initial` of jitter, never more than backoff_max.
    bounds = [(min(2.0**n, 10.0), min(2.0**n + 1.0, 10.0)) for n in range(6)]
    assert all(low <= delay <= high for delay, (low, high) in zip(delays, bounds, strict=True)), delays
    assert delays == sorted(delays)


def test_from_settings_throttles_through_rate_limiter(
    remote: responses.RequestsMock, case_fixture: dict[str, Any]
) -> None:
    settings = Settings(api_uri=BASE, api_user=USER, api_key=Secret(KEY), max_requests_per_minute=1)
    clock = FakeClock()
    client = IntempusClient.from_settings(settings, sleep=clock.sleep, clock=clock)
    remote.get(CASE_URL, json=case_fixture)

    client.get_case(9611850)
    client.get_case(9611850)

    assert clock.slept == [60.0]
    assert client.requests_sent == 2


# -- creating ------------------------------------------------------------------------------------------


def test_create_case_with_creation_id_sends_it_and_retries_503(
    remote: responses.RequestsMock, client: IntempusClient, delays: list[float], case_fixture: dict[str, Any]
) -> None:
    fields = {"customer": "/web/v1/customer/6666940/", "name": "Sample 3a", "number": "3a"}
    remote.post(LIST_URL, status=503)
    remote.post(LIST_URL, status=201, json=case_fixture)

    created = client.create_case(fields, creation_id="syncctl-7f3a")

    assert created == case_fixture
    assert [sent_body(call) for call in remote.calls] == [{**fields, "creation_id": "syncctl-7f3a"}] * 2
    assert len(delays) == 1


def test_create_case_without_creation_id_is_not_retried(
    remote: responses.RequestsMock, client: IntempusClient, delays: list[float]
) -> None:
    fields = {"customer": "/web/v1/customer/6666940/", "name": "Sample 3a", "number": "3a"}
    remote.post(LIST_URL, status=503)

    with pytest.raises(RemoteError) as raised:
        client.create_case(fields, creation_id=None)

    assert raised.value.status == 503
    assert [sent_body(call) for call in remote.calls] == [fields]
    assert delays == []


# -- broken bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "what"),
    [
        (
            "<!DOCTYPE html><html><body>Login</body></html>",
            "text/html",
            "answered an HTML error page instead of JSON",
        ),
        (
            "Service temporarily unavailable\nTry later",
            "text/plain",
            "answered Service temporarily unavailable instead of JSON",
        ),
        ("", "application/json", "answered an empty body instead of JSON"),
        ('{"meta": {"next": null}}', "application/json", "answered a list without 'objects'"),
        (
            '{"meta": {"next": null}, "objects": [{"name": "no id"}]}',
            "application/json",
            "answered a case without an integer id",
        ),
        (
            '{"meta": {"next": null}, "objects": [{"id": "9611850"}]}',
            "application/json",
            "answered a case without an integer id",
        ),
    ],
)
def test_iter_pages_broken_body_raises_remote_error_naming_url(
    remote: responses.RequestsMock, client: IntempusClient, body: str, content_type: str, what: str
) -> None:
    remote.get(LIST_URL, body=body, content_type=content_type)

    with pytest.raises(RemoteError) as raised:
        list(client.iter_pages())

    assert str(raised.value) == f"Intempus {what} at {CURSOR_URL}"
    assert len(remote.calls) == 1


def test_get_case_html_body_raises_remote_error_naming_url(
    remote: responses.RequestsMock, client: IntempusClient
) -> None:
    remote.get(CASE_URL, body="<html><body>Maintenance</body></html>", content_type="text/html")

    with pytest.raises(RemoteError) as raised:
        client.get_case(9611850)

    assert str(raised.value) == f"Intempus answered an HTML error page instead of JSON at {CASE_URL}"


# -- error bodies --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"error": "The field \'color\' does not allow filtering."}',
            "The field 'color' does not allow filtering.",
        ),
        ('{"error": ["Slutdato kræver startdato"]}'.encode(), "Slutdato kræver startdato"),
        (b'{"error_message": "Internal error"}', "Internal error"),
        (b'{"case": {"name": ["This field is required."]}}', "name: This field is required."),
        (b"<!DOCTYPE html>\n<html><body><h1>Server Error (500)</h1></body></html>", "an HTML error page"),
        (b"", ""),
        (b"  \n", ""),
    ],
)
def test_describe_error_body_gives_remote_message(body: bytes, message: str) -> None:
    assert describe_error_body(body) == message


def test_update_case_validation_error_carries_remote_message(
    remote: responses.RequestsMock, client: IntempusClient, delays: list[float]
) -> None:
    remote.put(CASE_URL, status=400, json={"error": ["Slutdato kræver startdato"]})

    with pytest.raises(ValidationError) as raised:
        client.update_case(9611850, {"end_date": "2026-01-31"})

    assert str(raised.value) == f"Intempus refused PUT {CASE_URL}: Slutdato kræver startdato"
    assert (len(remote.calls), delays) == (1, [])


# -- find_cases ----------------------------------------------------------------------------------------


def test_find_cases_asks_id_in_batches_of_100(
    remote: responses.RequestsMock, client: IntempusClient, case_fixture: dict[str, Any]
) -> None:
    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        asked = [int(part) for part in dict(parse_qsl(urlsplit(str(request.url)).query))["id__in"].split(",")]
        objects = [case_with_id(case_fixture, case_id) for case_id in asked if case_id % 3 == 0]
        page = {"meta": {"limit": len(asked), "next": None, "total_count": len(objects)}, "objects": objects}
        return 200, {}, json.dumps(page)

    remote.add_callback(responses.GET, LIST_URL, callback=answer)

    found = client.find_cases(reversed(range(1, 151)), canary=3)

    assert [query(call) for call in remote.calls] == [
        {"id__in": ",".join(map(str, range(1, 101))), "limit": "100"},
        {"id__in": ",".join(map(str, [3, *range(101, 151)])), "limit": "51"},
    ]
    assert found == [case_with_id(case_fixture, case_id) for case_id in range(3, 151, 3)]


def test_find_cases_returns_only_existing_cases(
    remote: responses.RequestsMock, client: IntempusClient, list_page_fixture: dict[str, Any]
) -> None:
    remote.get(LIST_URL, json=list_page_fixture)
    remote.get(f"{BASE}/case/111/", status=404)

    found = client.find_cases([9584678, 9584677, 111])

    assert found == list_page_fixture["objects"]
    # Without a canary, an id missing from the answer is only taken as gone after its own GET says 404.
    assert [query(call) for call in remote.calls[:1]] == [{"id__in": "111,9584677,9584678", "limit": "3"}]
    assert [call.request.url for call in remote.calls[1:]] == [f"{BASE}/case/111/"]


def test_find_cases_distrusts_an_answer_without_the_canary(
    remote: responses.RequestsMock, client: IntempusClient, case_fixture: dict[str, Any]
) -> None:
    remote.get(LIST_URL, json={"meta": {"next": None}, "objects": []})
    remote.get(f"{BASE}/case/5/", json=case_with_id(case_fixture, 5))
    remote.get(f"{BASE}/case/6/", status=404)

    found = client.find_cases([5, 6], canary=7)

    assert found == [case_with_id(case_fixture, 5)]
    assert query(remote.calls[0]) == {"id__in": "5,6,7", "limit": "3"}


def test_find_cases_falls_back_to_one_get_per_id_when_filter_refused(
    remote: responses.RequestsMock, client: IntempusClient, case_fixture: dict[str, Any]
) -> None:
    remote.get(LIST_URL, status=400, json={"error": "The 'id' field does not allow filtering."})
    remote.get(f"{BASE}/case/111/", status=404)
    remote.get(CASE_URL, json=case_fixture)

    found = client.find_cases([9611850, 111])

    assert found == [case_fixture]
    assert [urlsplit(str(call.request.url)).path for call in remote.calls] == [
        "/web/v1/case/",
        "/web/v1/case/111/",
        "/web/v1/case/9611850/",
    ]


def test_find_cases_falls_back_to_one_get_per_id_when_filter_ignored(
    remote: responses.RequestsMock,
    client: IntempusClient,
    list_page_fixture: dict[str, Any],
    case_fixture: dict[str, Any],
) -> None:
    remote.get(LIST_URL, json=list_page_fixture)  # ids 9584677 and 9584678: not what was asked for
    remote.get(f"{BASE}/case/111/", status=404)
    remote.get(CASE_URL, json=case_fixture)

    found = client.find_cases([9611850, 111])

    assert found == [case_fixture]
    assert [urlsplit(str(call.request.url)).path for call in remote.calls] == [
        "/web/v1/case/",
        "/web/v1/case/111/",
        "/web/v1/case/9611850/",
    ]


def test_find_cases_of_no_ids_sends_nothing(remote: responses.RequestsMock, client: IntempusClient) -> None:
    assert client.find_cases([]) == []
    assert len(remote.calls) == 0


# -- one case ------------------------------------------------------------------------------------------


def test_get_case_returns_the_case(
    remote: responses.RequestsMock, client: IntempusClient, case_fixture: dict[str, Any]
) -> None:
    remote.get(CASE_URL, json=case_fixture)

    assert client.get_case(9611850) == case_fixture
    assert [call.request.url for call in remote.calls] == [CASE_URL]


def test_find_case_404_returns_none(
    remote: responses.RequestsMock, client: IntempusClient, delays: list[float]
) -> None:
    remote.get(CASE_URL, status=404)

    assert client.find_case(9611850) is None
    assert (len(remote.calls), delays) == (1, [])


def test_update_case_puts_fields_as_body(
    remote: responses.RequestsMock, client: IntempusClient, case_fixture: dict[str, Any]
) -> None:
    remote.put(CASE_URL, json={**case_fixture, "name": "Sample 3b"})

    updated = client.update_case(9611850, {"name": "Sample 3b"})

    assert updated == {**case_fixture, "name": "Sample 3b"}
    assert [(call.request.method, sent_body(call)) for call in remote.calls] == [
        ("PUT", {"name": "Sample 3b"})
    ]


def test_delete_case_204_returns_true(remote: responses.RequestsMock, client: IntempusClient) -> None:
    remote.delete(CASE_URL, status=204)

    assert client.delete_case(9611850) is True
    assert [(call.request.method, call.request.url) for call in remote.calls] == [("DELETE", CASE_URL)]


def test_delete_case_404_returns_false(remote: responses.RequestsMock, client: IntempusClient) -> None:
    remote.delete(CASE_URL, status=404)

    assert client.delete_case(9611850) is False


# -- rate limiter --------------------------------------------------------------------------------------


def test_rate_limiter_allows_burst_of_budget_then_sleeps_one_interval() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)

    for _ in range(60):
        limiter.acquire()
    burst_sleeps = list(clock.slept)
    limiter.acquire()

    assert burst_sleeps == []
    assert clock.slept == [pytest.approx(1.0)]


def test_rate_limiter_throttles_steadily_after_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)

    for _ in range(63):
        limiter.acquire()

    assert clock.slept == [pytest.approx(1.0)] * 3


def test_rate_limiter_zero_never_sleeps() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0, clock=clock, sleep=clock.sleep)

    for _ in range(10_000):
        limiter.acquire()

    assert clock.slept == []


def test_rate_limiter_refills_tokens_with_clock() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    for _ in range(60):
        limiter.acquire()

    clock.now += 30.0
    for _ in range(30):
        limiter.acquire()
    refilled_sleeps = list(clock.slept)
    limiter.acquire()

    assert refilled_sleeps == []
    assert clock.slept == [pytest.approx(1.0)]


def test_rate_limiter_refill_never_exceeds_budget() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)

    clock.now += 3600.0
    for _ in range(61):
        limiter.acquire()

    assert clock.slept == [pytest.approx(1.0)]
