"""SierraClient over real HTTP: listings that move while read, token lifetime, and answers a real server
might give that the bundled fake does not (a server ignoring the offset, links to another origin, 403)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from syncctl.connectors.sierra.client import SierraClient
from syncctl.connectors.sierra.fake import BASE_PATH, DEFAULT_KEY, DEFAULT_SECRET, FakeSierraServer
from syncctl.core.errors import AuthError, RemoteError, RoleError, ValidationError
from syncctl.core.fakehttp import LoopbackServer, Response, json_response
from syncctl.core.settings import RetryPolicy
from tests.connectors.sierra.world import FakeClock, HookedSierra

NO_RETRY = RetryPolicy(attempts=1, backoff_initial=0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[HookedSierra]:
    yield HookedSierra(items=120, seed=3, clock=clock)


def client_for(url: str, *, page_size: int = 10, clock: Callable[[], float] | None = None) -> SierraClient:
    return SierraClient(url, DEFAULT_KEY, DEFAULT_SECRET, page_size=page_size, retry=NO_RETRY,
                        clock=clock or FakeClock())  # fmt: skip


def listed_ids(client: SierraClient, **kwargs: Any) -> list[int]:
    return [int(entry["id"]) for page in client.iter_items(**kwargs) for entry in page.entries]


def test_listing_pages_overlap_by_one_item_and_return_each_once(fake: HookedSierra) -> None:
    with FakeSierraServer(fake) as server:
        client = client_for(server.url)
        assert listed_ids(client) == [int(item["id"]) for item in fake.items(("id",))]
    offsets = [path.split("&offset=")[1].split("&")[0] for _, path in fake.requests if "/items/?" in path]
    assert offsets == ["0", "9", "18", "27", "36", "45", "54", "63", "72", "81", "90", "99", "108", "117"]


def test_listing_steps_back_when_many_items_before_the_offset_go(fake: HookedSierra) -> None:
    """Thirty items of the first two pages are deleted after the second page: offset paging alone would
    skip up to thirty items."""
    before = [int(item["id"]) for item in fake.items(("id",))]
    doomed = before[:30]

    def delete() -> None:
        for item_id in doomed:
            fake.delete_item(item_id)

    fake.after(lambda method, path: "&offset=9&" in path, delete)
    with FakeSierraServer(fake) as server:
        ids = listed_ids(client_for(server.url))
    assert ids == before[:19] + before[30:]  # every item still there once; the deleted ones as listed before
    offsets = [path.split("&offset=")[1].split("&")[0] for _, path in fake.requests if "/items/?" in path]
    assert offsets[:4] == ["0", "9", "18", "17"]  # moved: stepped back a tenth of a page at a time...
    assert "0" in offsets[4:]  # ...until the answer started at or before the last item listed


def test_listing_of_a_server_that_ignores_the_offset_is_stopped() -> None:
    page = {"total": 20, "start": 0, "entries": [{"id": str(1000 + n)} for n in range(10)]}
    app = Scripted({"/items/": lambda query: json_response(200, page)})
    with (
        LoopbackServer(app, base_path=BASE_PATH) as server,
        pytest.raises(RemoteError, match="keeps answering items already listed"),
    ):
        listed_ids(client_for(server.url))


def test_listing_answered_404_is_empty(clock: FakeClock) -> None:
    fake = HookedSierra(items=5, seed=1, clock=clock, empty_listing_404=True)
    with FakeSierraServer(fake) as server:
        client = client_for(server.url)
        assert listed_ids(client, updated=("2030-01-01T00:00:00Z", None)) == []
        assert len(listed_ids(client)) == 5


def test_token_is_replaced_shortly_before_it_expires(fake: HookedSierra) -> None:
    ours = FakeClock(0.0)
    first = int(next(fake.items(("id",)))["id"])
    with FakeSierraServer(fake) as server:
        client = client_for(server.url, clock=ours)
        client.get_item(first)
        ours.now = 3600 - 61
        client.get_item(first)
        assert fake.tokens_issued == 1
        ours.now += 2  # within a minute of the expiry: a new token before the request is sent, no 401
        client.get_item(first)
        assert fake.tokens_issued == 2
    assert [path for _, path in fake.requests].count(f"{BASE_PATH}/token") == 2


def test_wrong_credentials_are_an_authentication_failure_without_the_secret(fake: HookedSierra) -> None:
    with FakeSierraServer(fake) as server:
        client = SierraClient(server.url, DEFAULT_KEY, "wrong-secret", retry=NO_RETRY)
        with pytest.raises(AuthError, match="authentication failed") as caught:
            client.get_item(1000001)
    assert "wrong-secret" not in str(caught.value)


def test_barcode_query_follows_links_only_on_the_configured_origin() -> None:
    answer = {
        "total": 1,
        "start": 0,
        "entries": [{"link": "https://elsewhere.example/iii/sierra-api/v6/items/7"}],
    }
    app = Scripted({"/items/query": lambda query: json_response(200, answer)})
    with (
        LoopbackServer(app, base_path=BASE_PATH) as server,
        pytest.raises(RemoteError, match="another origin"),
    ):
        client_for(server.url).query_barcode("31234000123456")


def test_refused_put_carries_sierras_message_and_403_is_a_role_error() -> None:
    error = json.loads('{"code": 132, "specificCode": 0, "httpStatus": 400, "name": "Invalid data",'
                       ' "description": "Invalid location code"}')  # fmt: skip
    answers = {
        "/items/1": lambda query: json_response(400, error),
        "/items/2": lambda query: json_response(403, {}),
    }
    with LoopbackServer(Scripted(answers), base_path=BASE_PATH) as server:
        client = client_for(server.url)
        with pytest.raises(ValidationError, match="Invalid data - Invalid location code"):
            client.update_item(1, {"location": "nowhere"})
        with pytest.raises(RoleError, match="does not let this API client update items"):
            client.update_item(2, {"location": "h01an"})


class Scripted:
    """A stand-in server: a token for anyone, then the scripted answer for each API path."""

    def __init__(self, answers: Mapping[str, Callable[[str], Response]]) -> None:
        self.answers = answers

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        route, _, query = path.removeprefix(BASE_PATH).partition("?")
        if route == "/token":
            return json_response(
                200, {"access_token": "scripted-token", "token_type": "bearer", "expires_in": 3600}
            )
        answer = self.answers.get(route)
        return (
            answer(query)
            if answer
            else json_response(404, {"code": 107, "httpStatus": 404, "name": "Record not found"})
        )
