"""A stateful, fast, local imitation of the Sierra LMS items API (v6), for end-to-end tests and benchmarks.

`FakeSierra` holds the remote state and answers requests without sockets (`handle`); `FakeSierraServer` puts
it on a loopback port; `serve_forever` runs it as its own process. It follows `sierra-api.md` and the
captured shapes in `fixtures/sierra/`: OAuth2 client-credentials tokens that expire by the injected clock,
id-ordered offset paging over a *live* ordering (pages shift when items change mid-listing), `updatedDate`
ranges inclusive at one-second resolution with many items sharing one second, deletes listed by day, the
barcode query, and partial PUTs with plural write names (`barcodes`) against singular read names.

Every item's JSON is cached as bytes per requested field set and dropped when the item changes, so a page
of 2000 is a join of cached bytes.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime
import gc
import json
import logging
import random
import re
import secrets
import string
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from syncctl.core.fakehttp import LoopbackServer, Response, json_response, serve_until_stopped

log = logging.getLogger("syncctl.fake")

BASE_PATH = "/iii/sierra-api/v6"
DEFAULT_KEY = "demo-key"
DEFAULT_SECRET = "demo-secret"
DEFAULT_ORIGIN = "https://catalog.example.org"  # for query links when a request carries no Host header
TOKEN_LIFETIME_SECONDS = 3600
DEFAULT_LIMIT = 50
MAX_LIMIT = 2000
FIRST_ITEM_ID = 1_000_001
FIRST_BIB_ID = 2_000_001
IUSE3_FIELD = "74"
# The fixed-field number of INVDA is not in public material (sierra-api.md: a guess, make it a setting).
DEFAULT_INVENTORY_FIELD = "265"

ITEM_KEYS: tuple[str, ...] = (
    "id", "updatedDate", "createdDate", "deleted", "bibIds", "location", "status", "volumes", "barcode",
    "callNumber", "itemType", "fixedFields", "varFields",
)  # fmt: skip
# What Sierra answers without `fields=`: a basic set (sierra-api.md does not list it; this is a guess).
DEFAULT_FIELDS: tuple[str, ...] = (
    "id", "updatedDate", "createdDate", "deleted", "bibIds", "location", "status", "volumes", "barcode",
    "callNumber",
)  # fmt: skip
WRITABLE_FIELDS = frozenset({"itemType", "location", "status", "barcodes", "callNumbers", "fixedFields",
                             "varFields"})  # fmt: skip
DELETED_KEYS: tuple[str, ...] = ("id", "deletedDate", "deleted")

LOCATIONS: dict[str, str] = {
    "h01ak": "Main library adult fiction",
    "h01an": "Main library adult non-fiction",
    "h01la": "Main library children",
    "h01nu": "Main library young adults",
    "h01mu": "Main library music",
    "h01le": "Main library magazines",
    "h01va": "Main library closed stacks",
    "h02ak": "Kallio branch adult fiction",
    "h02la": "Kallio branch children",
    "h03ak": "Itäkeskus branch adult fiction",
    "h03mu": "Itäkeskus branch music",
    "h09va": "Repository storage",
}
STATUSES: dict[str, str] = {
    "-": "AVAILABLE",
    "m": "MISSING",
    "o": "LIB USE ONLY",
    "t": "IN TRANSIT",
    "!": "ON HOLDSHELF",
    "p": "IN PROCESSING",
    "d": "DAMAGED",
    "w": "WITHDRAWN",
    "$": "BILLED PAID",
    "n": "BILLED NOTPAID",
    "z": "CL RETURNED",
}
ITEM_TYPES: dict[int, str] = {
    1: "Book",
    2: "Large print",
    3: "Magazine",
    5: "Children's book",
    10: "Sheet music",
    22: "CD",
    24: "DVD",
    25: "Blu-ray",
    30: "Audiobook",
    40: "Board game",
}
# Item fixed fields the fake knows; a PUT may set any of them except the server-owned ones.
FIXED_FIELD_LABELS: dict[str, str] = {
    "57": "BIB HOLD", "58": "COPY #", "59": "ICODE1", "60": "ICODE2", "61": "I TYPE", "62": "PRICE",
    "64": "OUT LOC", "68": "LCHKIN", "70": "IN LOC", "74": "IUSE3", "76": "TOT RENEW", "77": "TOT CHKOUT",
    "79": "LOCATION", "80": "REC TYPE", "81": "RECORD #", "83": "CREATED", "84": "UPDATED", "88": "STATUS",
    "97": "IMESSAGE", "108": "OPACMSG",
}  # fmt: skip
SERVER_OWNED_FIXED_FIELDS = frozenset({"80", "81", "83", "84"})
# Fixed fields that repeat a top-level field: a write through either keeps both in step.
MIRRORED_FIXED_FIELDS = {"61": "itemType", "79": "location", "88": "status"}

FAULT_KINDS = frozenset({"status", "reset"})

# Sierra's error bodies: {"code", "specificCode", "httpStatus", "name", "description"}. Codes 107 and 123
# are seen in public code, 130 is the fixture; the others are guesses.
_NOT_FOUND = (107, "Record not found")
_INVALID_PARAMETER = (108, "Invalid parameter")
_UNAUTHORIZED = (123, "Unauthorized")
_BAD_JSON = (130, "Bad JSON/XML Syntax")
_INVALID_DATA = (132, "Invalid data")
_METHOD_NOT_ALLOWED = (105, "Method not allowed")
_SERVER_ERRORS = {429: (140, "Too many requests"), 503: (141, "Service unavailable")}
_SERVER_ERROR = (109, "Internal server error")
BAD_JSON_DESCRIPTION = "Please check that the JSON fields/values are of the expected JSON data types"

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_ITEM_PATH = re.compile(re.escape(BASE_PATH) + r"/items/(\d+)")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_TOKEN_ALPHABET = string.ascii_letters + string.digits

# -- realistic generated data ------------------------------------------------------------------------------

GENERATED_FROM = calendar.timegm((2008, 1, 7, 9, 0, 0))  # the first record's createdDate
GENERATED_CREATED_UNTIL = calendar.timegm((2025, 6, 30, 15, 0, 0))
GENERATED_UNTIL = calendar.timegm((2025, 9, 30, 23, 59, 59))  # no generated date is later: set clocks after
_RECENT_SECONDS = 45 * 86400
BATCH_START_PROBABILITY = 0.003  # per item: about 60 % of generated items belong to a batch-job second
BATCH_SIZES = (100, 900)

_FICTION_CLASSES = ("84.2", "84.2", "84.2", "84.21", "84.31", "85.2", "84.2 KAN")
_NONFICTION_CLASSES = ("1.42", "38.1", "46.4", "48.1", "59.5", "69.1", "92.7", "99.1", "17.3", "30.1")
_MUSIC_CLASSES = ("78.891", "78.891", "78.3", "78.52", "78.65", "78.8911")
_CHILDREN_CLASSES = ("85.2", "85.2", "85.3", "N85.2", "84.2")
_AUTHORS = ("KIV", "SIB", "BEE", "LIN", "WAL", "TOL", "JAN", "KAL", "HAA", "MÄK", "SAL", "VIR", "PAA",
            "NIE", "OKS", "WAS", "ROW", "KIN", "SÖD", "TUO", "LAN", "ÅBE", "HOT", "RIM")  # fmt: skip
_NOTES = ("Donated 2019", "Lahjoitus", "Replaced copy", "Spine label faded", "Signed by the author",
          "Check the CD case", "Kirjastoauto", "Lost and paid 2021, replaced", "Korjattu 2023",
          "Floating collection")  # fmt: skip
_LOCATION_CODES = tuple(LOCATIONS)
_GENERAL_LOCATIONS = ("h01ak", "h01ak", "h01an", "h01va", "h02ak", "h03ak", "h09va", "h01nu")
_STATUS_WEIGHTS = (("-", 0.86), ("o", 0.04), ("t", 0.025), ("!", 0.02), ("m", 0.02), ("p", 0.01),
                   ("d", 0.01), ("w", 0.005), ("$", 0.004), ("n", 0.003), ("z", 0.003))  # fmt: skip

_LOCATION_OBJECTS = {code: {"code": code, "name": name} for code, name in LOCATIONS.items()}
_STATUS_OBJECTS = {code: {"code": code, "display": display} for code, display in STATUSES.items()}
_NO_VOLUMES: list[str] = []  # shared: no code path mutates an item's lists in place


def _fixed(label: str, value: str, display: str | None = None) -> dict[str, str]:
    if display is None:
        return {"label": label, "value": value}
    return {"label": label, "value": value, "display": display}


# Fixed-field entries are shared between items (never mutated in place): 100k items stay small and fast.
_FIXED_CONSTANT = {
    "57": _fixed("BIB HOLD", "false"),
    "59": _fixed("ICODE1", "0"),
    "64": _fixed("OUT LOC", "0"),
    "80": _fixed("REC TYPE", "i"),
}
_FIXED_COPY = tuple(_fixed("COPY #", str(n)) for n in range(10))
_FIXED_IUSE3 = tuple(_fixed("IUSE3", str(n)) for n in range(64))
_FIXED_ITYPE = {code: _fixed("I TYPE", str(code), name) for code, name in ITEM_TYPES.items()}
_FIXED_LOCATION = {code: _fixed("LOCATION", code, name) for code, name in LOCATIONS.items()}
_GENERATED_FIXED = ("57", "58", "59", "61", "64", "74", "79", "80", "81", "83", "84", "88")
_BARCODE_SUFFIXES = "ABXK0123456789"
_FIXED_STATUS = {code: _fixed("STATUS", code, display) for code, display in STATUSES.items()}


def format_timestamp(second: int) -> str:
    """Sierra's timestamp format, one-second resolution, UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


_TIMESTAMPS: dict[int, str] = {}  # generated items share seconds (imports, batch jobs): format each once


def _cached_timestamp(second: int) -> str:
    text = _TIMESTAMPS.get(second)
    if text is None:
        if len(_TIMESTAMPS) > 200_000:
            _TIMESTAMPS.clear()
        text = _TIMESTAMPS[second] = format_timestamp(second)
    return text


def _numeric_order(fixed: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Fixed fields in numeric order of their numbers, as Sierra lists them."""
    return dict(sorted(fixed.items(), key=lambda entry: int(entry[0])))


def format_day(second: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(second))


def make_barcode(item_id: int, rng: random.Random) -> str:
    """14-16 digits, unique per id, sometimes with one trailing letter or digit, as seen in the wild."""
    r = rng.random()
    digits = (
        f"31234{item_id:09d}" if r < 0.8 else f"312345{item_id:09d}" if r < 0.93 else f"3123456{item_id:09d}"
    )
    return digits + _BARCODE_SUFFIXES[int(rng.random() * 14)] if rng.random() < 0.06 else digits


def _call_number(location: str, item_type: int, rng: random.Random) -> str:
    classes: tuple[str, ...]
    if item_type in (10, 22) or location.endswith("mu"):
        classes = _MUSIC_CLASSES
    elif location.endswith("la"):
        classes = _CHILDREN_CLASSES
    elif location in ("h01an", "h01va", "h09va") or item_type == 3:
        classes = _NONFICTION_CLASSES
    else:
        classes = _FICTION_CLASSES
    r = rng.random
    return f"{classes[int(r() * len(classes))]} {_AUTHORS[int(r() * len(_AUTHORS))]}"


def _item_type_for(location: str, r: Callable[[], float]) -> int:
    x = r()
    if location.endswith("mu"):
        return 22 if x < 0.6 else 10 if x < 0.8 else 24 if x < 0.9 else 1
    if location.endswith("la"):
        return 5 if x < 0.75 else 40 if x < 0.8 else 24 if x < 0.9 else 1
    if location == "h01le":
        return 3
    return 1 if x < 0.8 else 24 if x < 0.87 else 2 if x < 0.92 else 30 if x < 0.97 else 25


def _status_for(r: Callable[[], float]) -> str:
    x = r()
    for code, weight in _STATUS_WEIGHTS:
        x -= weight
        if x < 0:
            return code
    return "-"


# -- public value types ------------------------------------------------------------------------------------


@dataclass
class Fault:
    """A scripted failure for the API requests whose "METHOD /path?query" contains `match` ("" = all).

    It lets `after` matching requests through, then affects `times` of them (-1: forever). Kinds: "status"
    (`status` with a Sierra error body, `Retry-After` when given) and "reset" (close with an RST, no answer).
    The request does not reach the fake's state: a faulted PUT changes nothing.
    """

    match: str = ""
    status: int = 500
    times: int = 1
    retry_after: str | None = None
    kind: str = "status"
    after: int = 0
    passed: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Faults also arrive as JSON through /_fake/faults: refuse wrong types now, not mid-request.
        for name, kinds in _FAULT_TYPES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise TypeError(f"fault field {name} cannot be {value!r}")
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")


_FAULT_TYPES: dict[str, tuple[type, ...]] = {
    "match": (str,),
    "status": (int,),
    "times": (int,),
    "retry_after": (str, type(None)),
    "kind": (str,),
    "after": (int,),
}


class SierraError(Exception):
    """An answer in Sierra's error shape; raised inside the fake, and by `update_item` for a bad change."""

    def __init__(self, status: int, code: tuple[int, str], description: str | None = None) -> None:
        self.status = status
        self.body: dict[str, Any] = {
            "code": code[0],
            "specificCode": 0,
            "httpStatus": status,
            "name": code[1],
        }
        if description is not None:
            self.body["description"] = description
        super().__init__(f"{status} {code[1]}: {description}")


def _invalid(description: str) -> SierraError:
    return SierraError(400, _INVALID_DATA, description)


def _bad_type(description: str | None = None) -> SierraError:
    """The fixture's 400, with a description naming the field when there is one to name."""
    return SierraError(400, _BAD_JSON, description or BAD_JSON_DESCRIPTION)


# -- the state and the API ---------------------------------------------------------------------------------


class FakeSierra:
    """The remote item state plus request handling, without sockets. Thread-safe: one lock guards all.

    Quirks reported by third parties but not in sierra-api.md are off by default and switchable:
    `total_counts_page` (`total` is the number of entries in this answer, not of all matches) and
    `empty_listing_404` (a non-deleted listing without entries answers 404 "Record not found").
    """

    def __init__(
        self,
        items: int = 0,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        *,
        key: str = DEFAULT_KEY,
        secret: str = DEFAULT_SECRET,
        inventory_field: str = DEFAULT_INVENTORY_FIELD,
        total_counts_page: bool = False,
        empty_listing_404: bool = False,
    ) -> None:
        self.key = key
        self.secret = secret
        self.inventory_field = inventory_field
        self.total_counts_page = total_counts_page
        self.empty_listing_404 = empty_listing_404
        self.requests: list[tuple[str, str]] = []
        self.puts: list[tuple[str, dict[str, Any]]] = []
        self.faults: list[Fault] = []
        self.tokens_issued = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[int, dict[str, Any]] = {}
        self._ids: list[int] = []  # live ids ascending: offset paging is by position in this live ordering
        self._updated: dict[int, int] = {}  # id -> updatedDate as epoch second
        self._created: dict[int, int] = {}
        self._deleted: dict[int, str] = {}  # id -> deletedDate (YYYY-MM-DD)
        self._by_barcode: dict[str, set[int]] = {}
        self._rendered: dict[tuple[str, ...], dict[int, bytes]] = {}  # field set -> id -> JSON
        self._tokens: dict[str, float] = {}  # token -> expiry on the injected clock
        self._refused: dict[int, str] = {}
        self._version = 0  # bumped on every change; keys the cache of selections
        self._selections: dict[tuple[Any, ...], list[int]] = {}
        self._selections_version = 0
        self._labels = {**FIXED_FIELD_LABELS, inventory_field: "INVDA"}
        self._inventory_sorts_early = int(inventory_field) < max(int(number) for number in _GENERATED_FIXED)
        self._populate(items, seed)

    def _populate(self, count: int, seed: int) -> None:
        """Generate `count` live items (and a few deleted records in the id gaps), deterministic per seed."""
        if count <= 0:
            return
        rng = random.Random(seed)
        r = rng.random
        collecting = gc.isenabled()
        gc.disable()  # 100k items are ~2M objects: repeated full collections would double the build time
        try:
            with self._lock:
                start = max([*self._items, *self._deleted], default=FIRST_ITEM_ID - 1) + 1
                ids: list[int] = []
                created: list[int] = []
                item_id = start - 1
                span = GENERATED_CREATED_UNTIL - GENERATED_FROM
                previous = GENERATED_FROM
                while len(ids) < count:
                    item_id += 1
                    if r() < 0.06:  # a gap: records deleted long ago, some still listed as deleted
                        for gap_id in range(item_id, item_id + 1 + int(r() * 4)):
                            if r() < 0.5:
                                when = previous + int(r() * (GENERATED_UNTIL - previous))
                                self._deleted[gap_id] = format_day(when)
                            item_id = gap_id + 1
                    if r() >= 0.6:  # else: the same import job, the same second
                        previous = max(previous, GENERATED_FROM + span * len(ids) // count + int(r() * 7200))
                    ids.append(item_id)
                    created.append(previous)
                updated = _updated_seconds(created, rng)
                bib = FIRST_BIB_ID - 1 + (start - FIRST_ITEM_ID)
                copy = 1
                for position, item_id in enumerate(ids):
                    if position and r() < 0.35 and copy < 9:
                        copy += 1  # another copy of the previous title
                    else:
                        bib += 1 + int(r() * r() * 3)
                        copy = 1
                    self._store_new(item_id, bib, copy, created[position], updated[position], rng)
                self._ids = sorted([*self._ids, *ids])
                self._version += 1
        finally:
            if collecting:
                gc.enable()
        if collecting and count >= 20_000:
            # The new objects would trigger one full collection (~0.5 s at 100k items) at some allocation
            # soon after: pay it here, in the build, rather than inside the first timed request.
            gc.collect()

    def _store_new(
        self, item_id: int, bib: int, copy: int, created: int, updated: int, rng: random.Random
    ) -> None:
        r = rng.random
        location = (
            _GENERAL_LOCATIONS[int(r() * 8)] if r() < 0.6 else _LOCATION_CODES[int(r() * len(LOCATIONS))]
        )
        item_type = _item_type_for(location, r)
        status = _status_for(r)
        barcode = make_barcode(item_id, rng)
        call_number = _call_number(location, item_type, rng)
        created_text = _cached_timestamp(created)
        updated_text = _cached_timestamp(updated)
        fixed: dict[str, dict[str, str]] = {
            "57": _FIXED_CONSTANT["57"],
            "58": _FIXED_COPY[copy],
            "59": _FIXED_CONSTANT["59"],
            "61": _FIXED_ITYPE[item_type],
            "64": _FIXED_CONSTANT["64"],
            "74": _FIXED_IUSE3[int(r() ** 4 * 40)],
            "79": _FIXED_LOCATION[location],
            "80": _FIXED_CONSTANT["80"],
            "81": _fixed("RECORD #", str(item_id)),
            "83": _fixed("CREATED", created_text),
            "84": _fixed("UPDATED", updated_text),
            "88": _FIXED_STATUS[status],
        }
        if r() < 0.4:  # inventoried at some point: INVDA present (numeric order kept when rendered)
            fixed[self.inventory_field] = _fixed(
                "INVDA", format_day(created + int(r() * (updated - created)))
            )
            if self._inventory_sorts_early:
                fixed = _numeric_order(fixed)
        var_fields = [{"fieldTag": "b", "content": barcode}, {"fieldTag": "c", "content": call_number}]
        if r() < 0.7:
            var_fields.append({"fieldTag": "n", "content": _NOTES[int(r() * len(_NOTES))]})
        bib_ids = [str(bib)] if r() < 0.98 else [str(bib), str(bib + 1)]  # a bound-with item
        self._items[item_id] = {
            "id": str(item_id),
            "updatedDate": updated_text,
            "createdDate": created_text,
            "deleted": False,
            "bibIds": bib_ids,
            "location": _LOCATION_OBJECTS[location],
            "status": _STATUS_OBJECTS[status],
            "volumes": _NO_VOLUMES,
            "barcode": barcode,
            "callNumber": call_number,
            "itemType": ITEM_TYPES[item_type],
            "fixedFields": fixed,
            "varFields": var_fields,
        }
        self._updated[item_id] = updated
        self._created[item_id] = created
        self._by_barcode.setdefault(barcode, set()).add(item_id)

    # -- direct state changes: "the library staff changed Sierra" ------------------------------------------

    def update_item(
        self, item_id: int | str, *, at: float | str | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Change an item remotely, as a PUT with body `changes` would (write names and formats), and set
        its updatedDate to `at` (epoch seconds or "YYYY-MM-DDTHH:MM:SSZ"; default: the clock's second).

        No changes just touches updatedDate, as a batch job does. Raises KeyError for an unknown or deleted
        id and SierraError for a change the API would refuse. Returns the item as the API would.
        """
        with self._lock:
            number = self._live_id(item_id)
            self._apply(number, changes)
            self._touch(number, self._second(at))
            return self._decoded(number)

    def delete_item(self, item_id: int | str, on: datetime.date | str | None = None) -> None:
        """Delete an item remotely; it is listed by `deleted=true` with deletedDate `on` (default: today)."""
        with self._lock:
            number = self._live_id(item_id)
            if isinstance(on, datetime.date):
                day = on.isoformat()
            elif on is None:
                day = format_day(int(self._clock()))
            elif _DAY.fullmatch(on):
                day = on
            else:
                raise ValueError(f"deletedDate must be YYYY-MM-DD, not {on!r}")
            item = self._items.pop(number)
            del self._ids[bisect_left(self._ids, number)]
            del self._updated[number], self._created[number]
            self._index_barcodes(number, item, None)
            self._forget_rendered(number)
            self._deleted[number] = day
            self._version += 1

    def items(self, fields: tuple[str, ...] = ITEM_KEYS) -> Iterator[dict[str, Any]]:
        """The live items in id order as the API returns them with `fields=` (default: every field).

        A snapshot of the ids is taken first; each item is read under the lock when it is reached.
        """
        selected = _selected_keys(fields)
        with self._lock:
            ids = list(self._ids)
        for item_id in ids:
            with self._lock:
                if item_id not in self._items:
                    continue
                rendered = self._render(item_id, selected)
            yield json.loads(rendered)

    def item(self, item_id: int | str) -> dict[str, Any]:
        """One live item with every field, as `GET items/{id}?fields=...` returns it; KeyError if unknown."""
        with self._lock:
            return self._decoded(self._live_id(item_id))

    def deleted_items(self) -> dict[str, str]:
        """Deleted item ids (strings) and their deletedDate."""
        with self._lock:
            return {str(item_id): day for item_id, day in sorted(self._deleted.items())}

    def expire_tokens(self) -> int:
        """Make every issued token invalid now: the next API request answers 401. Returns how many."""
        with self._lock:
            expired = len(self._tokens)
            self._tokens.clear()
            return expired

    def add_fault(
        self,
        match: str = "",
        status: int = 500,
        times: int = 1,
        retry_after: str | None = None,
        kind: str = "status",
        *,
        after: int = 0,
    ) -> Fault:
        fault = Fault(
            match=match, status=status, times=times, retry_after=retry_after, kind=kind, after=after
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def refuse_item(
        self, item_id: int | str, description: str = "The item record is locked by another user"
    ) -> None:
        """Every PUT of this item answers 400 (Sierra's error shape, `description`) and changes nothing."""
        with self._lock:
            self._refused[int(item_id)] = description

    def accept_item(self, item_id: int | str) -> None:
        with self._lock:
            self._refused.pop(int(item_id), None)

    def render_all(self, fields: tuple[str, ...] = ITEM_KEYS) -> int:
        """Fill the JSON cache for one field set, a chunk per lock hold; returns how many were rendered."""
        selected = _selected_keys(fields)
        rendered = position = 0
        while True:
            with self._lock:
                chunk = self._ids[position : position + 1000]
                cache = self._rendered.setdefault(selected, {})
                for item_id in chunk:
                    if item_id not in cache:
                        self._render(item_id, selected)
                        rendered += 1
            if not chunk:
                return rendered
            position += len(chunk)

    # -- changes, with the lock held -----------------------------------------------------------------------

    def _live_id(self, item_id: int | str) -> int:
        number = int(item_id)
        if number not in self._items:
            raise KeyError(f"no live item {item_id}")
        return number

    def _second(self, at: float | str | None) -> int:
        if at is None:
            return int(self._clock())
        if isinstance(at, str):
            return _parse_timestamp(at, end=False)
        return int(at)

    def _touch(self, item_id: int, second: int) -> None:
        item = self._items[item_id]
        stamp = format_timestamp(second)
        item["updatedDate"] = stamp
        item["fixedFields"] = {**item["fixedFields"], "84": _fixed("UPDATED", stamp)}
        self._updated[item_id] = second
        self._forget_rendered(item_id)
        self._version += 1

    def _forget_rendered(self, item_id: int) -> None:
        for cache in self._rendered.values():
            cache.pop(item_id, None)

    def _index_barcodes(self, item_id: int, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        for var in old["varFields"] if old else ():
            if var["fieldTag"] == "b":
                holders = self._by_barcode.get(var["content"])
                if holders is not None:
                    holders.discard(item_id)
                    if not holders:
                        del self._by_barcode[var["content"]]
        for var in new["varFields"] if new else ():
            if var["fieldTag"] == "b":
                self._by_barcode.setdefault(var["content"], set()).add(item_id)

    def _apply(self, item_id: int, body: Mapping[str, Any]) -> None:
        """Validate a partial write and apply it, all or nothing; SierraError says what was refused."""
        unknown = sorted(name for name in body if name not in WRITABLE_FIELDS)
        if unknown:
            raise _bad_type(
                f"Unknown or read-only field(s) {', '.join(map(repr, unknown))} in an item update; writable "
                f"fields are {', '.join(sorted(WRITABLE_FIELDS))}"
            )
        old = self._items[item_id]
        values = dict(old)
        fixed: dict[str, dict[str, str]] = dict(old["fixedFields"])
        var_fields: list[dict[str, str]] = list(old["varFields"])
        if "varFields" in body:
            var_fields = _clean_var_fields(body["varFields"])
        if "barcodes" in body:
            var_fields = _replace_tag(var_fields, "b", _string_list("barcodes", body["barcodes"]))
        if "callNumbers" in body:
            var_fields = _replace_tag(var_fields, "c", _string_list("callNumbers", body["callNumbers"]))
        mirrored: dict[str, Any] = {}
        if "fixedFields" in body:
            mirrored = self._merge_fixed_fields(fixed, body["fixedFields"])
        for name in ("itemType", "location", "status"):
            if name in body:
                mirrored[name] = body[name]
        if "itemType" in mirrored:
            code = mirrored["itemType"]
            if isinstance(code, bool) or not isinstance(code, int):
                raise _bad_type(f"itemType must be an integer item type code, not {code!r}")
            if code not in ITEM_TYPES:
                raise _invalid(f"Unknown item type {code}; known: {', '.join(map(str, ITEM_TYPES))}")
            values["itemType"] = ITEM_TYPES[code]
            fixed["61"] = _FIXED_ITYPE[code]
        if "location" in mirrored:
            code = mirrored["location"]
            if not isinstance(code, str):
                raise _bad_type(f"location must be a location code string, not {code!r}")
            if code not in LOCATIONS:
                raise _invalid(f"Invalid location code {code!r}")
            values["location"] = _LOCATION_OBJECTS[code]
            fixed["79"] = _FIXED_LOCATION[code]
        if "status" in mirrored:
            code = mirrored["status"]
            if not isinstance(code, str):
                raise _bad_type(f"status must be a status code string, not {code!r}")
            if code not in STATUSES:
                raise _invalid(f"Invalid item status code {code!r}")
            values["status"] = _STATUS_OBJECTS[code]
            fixed["88"] = _FIXED_STATUS[code]
        values["fixedFields"] = _numeric_order(fixed)
        values["varFields"] = var_fields
        values.pop("barcode", None)
        values.pop("callNumber", None)
        for tag, name in (("b", "barcode"), ("c", "callNumber")):
            first = next((var["content"] for var in var_fields if var["fieldTag"] == tag), None)
            if first is not None:
                values[name] = first
        new = {key: values[key] for key in ITEM_KEYS if key in values}  # read order, whatever was written
        self._index_barcodes(item_id, old, new)
        self._items[item_id] = new
        self._forget_rendered(item_id)
        self._version += 1

    def _merge_fixed_fields(self, fixed: dict[str, dict[str, str]], changes: Any) -> dict[str, Any]:
        """Merge `{"74": {"value": 4}}`-style changes into `fixed`; the mirrored ones are returned instead."""
        if not isinstance(changes, dict):
            raise _bad_type("fixedFields must be an object keyed by fixed-field number")
        mirrored: dict[str, Any] = {}
        for number, entry in changes.items():
            if not isinstance(entry, dict) or set(entry) != {"value"}:
                raise _bad_type(f'fixedFields.{number} must be {{"value": ...}}, not {entry!r}')
            value = entry["value"]
            if number not in self._labels:
                raise _invalid(f"Unknown item fixed field {number!r}")
            if number in SERVER_OWNED_FIXED_FIELDS:
                raise _invalid(f"Fixed field {number} ({self._labels[number]}) cannot be written")
            if number in MIRRORED_FIXED_FIELDS:
                name = MIRRORED_FIXED_FIELDS[number]
                if name == "itemType" and isinstance(value, str) and value.isdigit():
                    value = int(value)
                mirrored[name] = value
                continue
            if number == IUSE3_FIELD:
                if isinstance(value, str) and value.isdigit():
                    value = int(value)
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise _bad_type(f"fixedFields.74 (IUSE3) must be a non-negative integer, not {value!r}")
            if isinstance(value, bool):
                value = "true" if value else "false"
            if not isinstance(value, str | int):
                raise _bad_type(f"fixedFields.{number} value must be a string or an integer, not {value!r}")
            fixed[number] = _fixed(self._labels[number], str(value))
        return mirrored

    # -- HTTP ----------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one HTTP request: the items API, the token endpoint, and the /_fake/ control endpoints."""
        method = method.upper()
        url = urlsplit(path)
        if url.path.startswith("/_fake/"):
            return self._handle_control(method, url.path, body)
        with self._lock:
            self.requests.append((method, path))
            fault = self._take_fault(f"{method} {path}")
            if fault is not None:
                return _fault_response(fault)
            try:
                return self._handle_api(method, url.path, url.query, headers, body)
            except SierraError as exc:
                return json_response(exc.status, exc.body)

    def _take_fault(self, request_line: str) -> Fault | None:
        for fault in self.faults:
            if fault.times == 0 or fault.match not in request_line:
                continue
            if fault.passed < fault.after:
                fault.passed += 1
                continue
            if fault.times > 0:
                fault.times -= 1
            self.faults = [f for f in self.faults if f.times != 0]
            return fault
        return None

    def _handle_api(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        if path == f"{BASE_PATH}/token":
            _allow(method, "POST")
            return self._issue_token(headers, body)
        if not path.startswith(f"{BASE_PATH}/"):
            raise SierraError(404, _NOT_FOUND, f"No such endpoint: {path}")
        self._check_bearer(headers)
        if path in (f"{BASE_PATH}/items", f"{BASE_PATH}/items/"):
            _allow(method, "GET")
            return Response(200, self._list_page(query), dict(_JSON_HEADERS))
        if path == f"{BASE_PATH}/items/query":
            _allow(method, "POST")
            return json_response(200, self._query(query, headers, body))
        matched = _ITEM_PATH.fullmatch(path)
        if matched is None:
            raise SierraError(404, _NOT_FOUND, f"No such endpoint: {path}")
        _allow(method, "GET", "PUT")
        item_id = int(matched.group(1))
        if item_id not in self._items:
            raise SierraError(404, _NOT_FOUND)
        if method == "GET":
            params = dict(parse_qsl(query, keep_blank_values=True))
            return Response(200, self._render(item_id, _fields_param(params)), dict(_JSON_HEADERS))
        changes = _json_object(body)
        self.puts.append((str(item_id), changes))
        if item_id in self._refused:
            raise _invalid(self._refused[item_id])
        self._apply(item_id, changes)
        self._touch(item_id, int(self._clock()))
        return Response(204, b"", {})

    def _issue_token(self, headers: Mapping[str, str], body: bytes) -> Response:
        scheme, _, encoded = _header(headers, "authorization").strip().partition(" ")
        try:
            key, _, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            key = secret = ""
        if scheme.lower() != "basic" or not secrets.compare_digest(
            f"{key}:{secret}", f"{self.key}:{self.secret}"
        ):
            raise SierraError(401, _UNAUTHORIZED, "invalid_client")
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            raise SierraError(400, _INVALID_PARAMETER, "grant_type must be client_credentials")
        now = self._clock()
        if len(self._tokens) > 1000:
            self._tokens = {token: expiry for token, expiry in self._tokens.items() if expiry > now}
        token = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(32))
        self._tokens[token] = now + TOKEN_LIFETIME_SECONDS
        self.tokens_issued += 1
        answer = {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_LIFETIME_SECONDS}
        return json_response(200, answer)

    def _check_bearer(self, headers: Mapping[str, str]) -> None:
        scheme, _, token = _header(headers, "authorization").strip().partition(" ")
        expiry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expiry is None or self._clock() >= expiry:
            raise SierraError(401, _UNAUTHORIZED, "invalid_grant")

    def _render(self, item_id: int, selected: tuple[str, ...]) -> bytes:
        cache = self._rendered.get(selected)
        if cache is None:
            cache = self._rendered[selected] = {}
        rendered = cache.get(item_id)
        if rendered is None:
            item = self._items[item_id]
            data = item if selected == ITEM_KEYS else {key: item[key] for key in selected if key in item}
            rendered = cache[item_id] = _ENCODER.encode(data).encode()
        return rendered

    def _decoded(self, item_id: int) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self._render(item_id, ITEM_KEYS))
        return data

    def _list_page(self, query: str) -> bytes:
        params = dict(parse_qsl(query, keep_blank_values=True))
        limit = _int_param(params, "limit", DEFAULT_LIMIT)
        if not 1 <= limit <= MAX_LIMIT:
            raise SierraError(
                400, _INVALID_PARAMETER, f"limit must be between 1 and {MAX_LIMIT}, not {limit}"
            )
        offset = _int_param(params, "offset", 0)
        if offset < 0:
            raise SierraError(400, _INVALID_PARAMETER, f"offset must not be negative, not {offset}")
        deleted = params.get("deleted", "")
        if deleted not in ("", "true", "false"):
            raise SierraError(400, _INVALID_PARAMETER, f"deleted must be true or false, not {deleted!r}")
        ids = _id_filter(params.get("id", ""))
        listing_deleted = deleted == "true" or (deleted == "" and "deletedDate" in params)
        if listing_deleted:
            days = _range(params.get("deletedDate", ""), "deletedDate", _parse_day, "YYYY-MM-DD")
            selected = self._select(("deleted", days, ids))
            page = selected[offset : offset + limit]
            deleted_days = self._deleted
            entries = [
                _ENCODER.encode({"id": str(i), "deletedDate": deleted_days[i], "deleted": True}).encode()
                for i in page
            ]
        else:
            updated = _range(params.get("updatedDate", ""), "updatedDate", _parse_timestamp)
            created = _range(params.get("createdDate", ""), "createdDate", _parse_timestamp)
            selected = self._select(("live", updated, created, ids))
            page = selected[offset : offset + limit]
            keys = _fields_param(params)
            entries = [self._render(i, keys) for i in page]
            if not entries and self.empty_listing_404:
                raise SierraError(404, _NOT_FOUND)
        total = len(entries) if self.total_counts_page else len(selected)
        return b'{"total":%d,"start":%d,"entries":[%b]}' % (total, offset, b",".join(entries))

    def _select(self, key: tuple[Any, ...]) -> list[int]:
        """The ascending ids matching a listing's filters, from the live state; cached until it changes."""
        if self._selections_version != self._version:
            self._selections.clear()
            self._selections_version = self._version
        cached = self._selections.get(key)
        if cached is not None:
            return cached
        if key[0] == "deleted":
            _, (first_day, last_day), ids = key
            selected = [
                i
                for i in sorted(self._deleted)
                if (first_day is None or self._deleted[i] >= first_day)
                and (last_day is None or self._deleted[i] <= last_day)
                and _id_matches(i, ids)
            ]
        else:
            _, (low, high), (created_low, created_high), ids = key
            pool = self._ids
            if ids is not None:
                pool = [i for i in pool if _id_matches(i, ids)]
            if low is not None or high is not None:
                updated = self._updated
                low_s = -1 if low is None else low
                high_s = 1 << 62 if high is None else high
                pool = [i for i in pool if low_s <= updated[i] <= high_s]
            if created_low is not None or created_high is not None:
                made = self._created
                low_c = -1 if created_low is None else created_low
                high_c = 1 << 62 if created_high is None else created_high
                pool = [i for i in pool if low_c <= made[i] <= high_c]
            selected = pool
        if len(self._selections) > 32:
            self._selections.clear()
        self._selections[key] = selected
        return selected

    def _query(self, query: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        params = dict(parse_qsl(query, keep_blank_values=True))
        offset = _int_param(params, "offset", 0)
        limit = _int_param(params, "limit", DEFAULT_LIMIT)
        if offset < 0 or not 1 <= limit <= MAX_LIMIT:
            raise SierraError(400, _INVALID_PARAMETER, "offset must be >= 0 and limit between 1 and 2000")
        barcode = _barcode_operand(_json_object(body))
        host = _header(headers, "host")
        origin = f"http://{host}" if host else DEFAULT_ORIGIN
        found = sorted(self._by_barcode.get(barcode, ()))
        links = [{"link": f"{origin}{BASE_PATH}/items/{i}"} for i in found[offset : offset + limit]]
        return {
            "total": len(links) if self.total_counts_page else len(found),
            "start": offset,
            "entries": links,
        }

    def _handle_control(self, method: str, path: str, body: bytes) -> Response:
        try:
            if path == "/_fake/expire-tokens" and method == "POST":
                return json_response(200, {"expired": self.expire_tokens()})
            if path == "/_fake/faults" and method == "POST":
                data = json.loads(body)
                added = [Fault(**entry) for entry in (data if isinstance(data, list) else [data])]
                with self._lock:
                    self.faults.extend(added)
                    return json_response(200, {"faults": len(self.faults)})
            if path == "/_fake/faults" and method == "DELETE":
                self.clear_faults()
                return json_response(200, {"faults": 0})
            if path == "/_fake/refuse" and method == "POST":
                data = _json_object(body)
                if not isinstance(data.get("id"), str | int) or not isinstance(data.get("description"), str):
                    raise TypeError('expected {"id": ..., "description": "..."}')
                self.refuse_item(data["id"], data["description"])
                return json_response(200, {"refused": str(data["id"])})
            if path == "/_fake/stats" and method == "GET":
                with self._lock:
                    stats = {"items": len(self._items), "deleted": len(self._deleted),
                             "requests": len(self.requests), "puts": len(self.puts),
                             "tokens_issued": self.tokens_issued, "faults": len(self.faults)}  # fmt: skip
                return json_response(200, stats)
        except SierraError as exc:
            return json_response(exc.status, exc.body)
        except (ValueError, TypeError) as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(404, {"error": "Not found"})


# -- helpers -----------------------------------------------------------------------------------------------

_JSON_HEADERS = {"Content-Type": "application/json;charset=UTF-8"}


def _updated_seconds(created: list[int], rng: random.Random) -> list[int]:
    """Each item's updatedDate second: batch jobs stamp runs of hundreds of items with one second."""
    r = rng.random
    updated: list[int] = []
    count = len(created)
    position = 0
    while position < count:
        if r() < BATCH_START_PROBABILITY:
            size = min(count - position, rng.randint(*BATCH_SIZES))
            newest = created[position + size - 1]  # created ascends with id: the block's latest
            low = max(newest, GENERATED_UNTIL - _RECENT_SECONDS) if r() < 0.5 else newest
            second = low + int(r() * (GENERATED_UNTIL - low))
            updated.extend([second] * size)
            position += size
        else:
            made = created[position]
            updated.append(made if r() < 0.2 else made + int(r() ** 0.5 * (GENERATED_UNTIL - made)))
            position += 1
    return updated


def _selected_keys(fields: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    wanted = set(fields)
    return tuple(key for key in ITEM_KEYS if key == "id" or key in wanted)


def _fields_param(params: Mapping[str, str]) -> tuple[str, ...]:
    """`fields=` as the ordered keys to render; unknown names are ignored, "default" is the basic set."""
    raw = params.get("fields", "")
    if not raw:
        return DEFAULT_FIELDS
    names = {name.strip() for name in raw.split(",")}
    if "default" in names:
        names |= set(DEFAULT_FIELDS)
    return _selected_keys(tuple(names))


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((value for key, value in headers.items() if key.lower() == name), "")


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise SierraError(405, _METHOD_NOT_ALLOWED, f"{method} is not allowed here; use {', '.join(allowed)}")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise _bad_type() from None
    if not isinstance(data, dict):
        raise _bad_type()
    return data


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SierraError(400, _INVALID_PARAMETER, f"{name} must be an integer, not {raw!r}") from None


def _parse_timestamp(text: str, *, end: bool) -> int:
    """A second from "YYYY-MM-DDTHH:MM:SSZ", or a day ("YYYY-MM-DD": its first or, as an end, last second)."""
    if _TIMESTAMP.fullmatch(text):
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    if _DAY.fullmatch(text):
        return calendar.timegm(time.strptime(text, "%Y-%m-%d")) + (86399 if end else 0)
    raise ValueError(text)


def _parse_day(text: str, *, end: bool) -> str:
    if _DAY.fullmatch(text[:10]) and (len(text) == 10 or _TIMESTAMP.fullmatch(text)):
        datetime.date.fromisoformat(text[:10])
        return text[:10]
    raise ValueError(text)


def _range(
    raw: str, name: str, parse: Callable[..., Any], expected: str = "YYYY-MM-DDTHH:MM:SSZ"
) -> tuple[Any, Any]:
    """`[FROM,TO]` (either end may be empty; both inclusive) or one exact value; (None, None) when absent."""
    if raw == "":
        return None, None
    try:
        if raw.startswith("[") and raw.endswith("]"):
            low, comma, high = raw[1:-1].partition(",")
            if not comma:
                raise ValueError(raw)
            return (parse(low.strip(), end=False) if low.strip() else None,
                    parse(high.strip(), end=True) if high.strip() else None)  # fmt: skip
        return parse(raw, end=False), parse(raw, end=True)
    except ValueError:
        raise SierraError(
            400,
            _INVALID_PARAMETER,
            f"{name} must be [FROM,TO] or one value, with {expected} ends, not {raw!r}",
        ) from None


def _id_filter(raw: str) -> tuple[Any, ...] | None:
    """`id=[A,B]` (either end may be empty), `id=A,B,C`, or `id=A`: a hashable matcher, None when absent."""
    if raw == "":
        return None
    if raw.startswith("["):
        low, high = _range(raw, "id", lambda text, end: int(text), "record number")
        return ("range", low, high)
    try:
        return ("in", frozenset(int(part) for part in raw.split(",") if part.strip()))
    except ValueError:
        raise SierraError(
            400, _INVALID_PARAMETER, f"id must be a number, a list or a range, not {raw!r}"
        ) from None


def _id_matches(item_id: int, matcher: tuple[Any, ...] | None) -> bool:
    if matcher is None:
        return True
    if matcher[0] == "in":
        return item_id in matcher[1]
    _, low, high = matcher
    return (low is None or item_id >= low) and (high is None or item_id <= high)


def _string_list(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise _bad_type(f"{name} must be a list of strings, not {value!r}")
    return list(value)


def _clean_var_fields(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise _bad_type(f"varFields must be a list of {{fieldTag, content}} objects, not {value!r}")
    cleaned = []
    for entry in value:
        if (
            not isinstance(entry, dict)
            or set(entry) != {"fieldTag", "content"}
            or not isinstance(entry["fieldTag"], str)
            or len(entry["fieldTag"]) != 1
            or not isinstance(entry["content"], str)
        ):
            raise _bad_type(
                f"each varField must be {{fieldTag: one character, content: string}}, not {entry!r}"
            )
        cleaned.append({"fieldTag": entry["fieldTag"], "content": entry["content"]})
    return cleaned


def _replace_tag(var_fields: list[dict[str, str]], tag: str, contents: list[str]) -> list[dict[str, str]]:
    """The varFields with every `tag` field replaced by `contents`, placed where the first one was."""
    new = [{"fieldTag": tag, "content": content} for content in contents]
    position = next((n for n, var in enumerate(var_fields) if var["fieldTag"] == tag), None)
    if position is None:  # none yet: barcodes first, call numbers after the barcodes
        position = 0 if tag == "b" else sum(1 for var in var_fields if var["fieldTag"] == "b")
    kept = [var for var in var_fields if var["fieldTag"] != tag]
    before = sum(1 for var in var_fields[:position] if var["fieldTag"] != tag)
    return [*kept[:before], *new, *kept[before:]]


def _barcode_operand(query: dict[str, Any]) -> str:
    """The barcode of the one query shape sierra-api.md documents; anything else is refused."""
    target = query.get("target")
    expr = query.get("expr")
    if (
        set(query) != {"target", "expr"}
        or not isinstance(target, dict)
        or target.get("record") != {"type": "item"}
        or target.get("field") != {"tag": "b"}
        or not isinstance(expr, dict)
        or expr.get("op") != "equals"
        or not isinstance(expr.get("operands"), list)
        or len(expr["operands"]) != 1
        or not isinstance(expr["operands"][0], str)
    ):
        raise _bad_type(
            'the fake answers only {"target": {"record": {"type": "item"}, "field": {"tag": "b"}}, '
            '"expr": {"op": "equals", "operands": ["<barcode>"]}}'
        )
    operand: str = expr["operands"][0]
    return operand


def _fault_response(fault: Fault) -> Response:
    if fault.kind == "reset":
        return Response(0, b"", {}, action="reset")
    code = _SERVER_ERRORS.get(fault.status, _SERVER_ERROR)
    headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
    body = SierraError(fault.status, code, f"Simulated failure ({fault.status})").body
    return json_response(fault.status, body, **headers)


# -- real HTTP ---------------------------------------------------------------------------------------------


class FakeSierraServer(LoopbackServer):
    """FakeSierra on a loopback port, served by a background thread. Binds at construction."""

    def __init__(self, fake: FakeSierra, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(fake, host, port, base_path=BASE_PATH, name="fake-sierra")
        self.fake = fake


def serve_forever(
    host: str, port: int, items: int, seed: int = 0, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve until SIGTERM or Ctrl-C, then stop cleanly. Binds before generating: a busy port fails fast."""
    fake = FakeSierra(seed=seed)
    serve_until_stopped(FakeSierraServer(fake, host, port), lambda: fake._populate(items, seed), on_ready)
