"""A stateful, fast, local imitation of the Intempus case API, for the demo, end-to-end tests and benchmarks.

`FakeIntempus` holds the remote state and answers requests without sockets (`handle`); `FakeServer` puts it
on a loopback port; `serve_forever` runs it as its own process. It mirrors `intempus-api.md`, quirks included
(offset paging that shifts under deletes, the `"logical_timestamp": 42` create answer, `creation_id`
idempotency), and can inject faults at the HTTP and the socket level.

Speed matters more than elegance here: every case's JSON is cached as bytes and a list page is the join of
those bytes, so the fake is never the bottleneck of a benchmark with a million cases.
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime
import gc
import json
import logging
import math
import random
import re
import threading
import time
from array import array
from bisect import bisect_right, insort
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from syncctl.core.fakehttp import LoopbackServer, Response, serve_until_stopped

log = logging.getLogger("syncctl.fake")

DEFAULT_USER = "demo"
DEFAULT_KEY = "demo-key"

BASE_PATH = "/web/v1"
LIST_PATH = f"{BASE_PATH}/case/"
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
CREATE_QUIRK_TIMESTAMP = 42  # what the real server puts in a create answer's logical_timestamp
FIRST_COUNTER = 9_100_000_000
FIRST_CASE_ID = 9_600_000
RATE_WINDOW_SECONDS = 60.0
RENDER_CHUNK = 1000  # cases rendered per lock hold by render_all: ~15 ms

CASE_KEYS: tuple[str, ...] = (
    "active", "all_employees_may_add_work_reports", "all_worktypes_may_used_in_work_reports", "case_group",
    "case_group_full", "case_state", "case_state_id", "case_state_name", "city", "co_responsible",
    "co_responsible_id", "co_responsible_name", "country", "creation_date", "creation_id", "customer",
    "customer_city", "customer_country", "customer_id", "customer_latitude", "customer_longitude",
    "customer_name", "customer_street_address", "customer_zip_code", "department", "department_id",
    "department_name", "end_date", "file_upload_required", "geofence", "hour_budget", "id", "latitude",
    "logical_timestamp", "longitude", "name", "notes", "number", "number_of_children", "parent",
    "parent_name", "permit_new_workreports", "priority", "remarks_required", "resource_uri", "responsible",
    "responsible_id", "responsible_name", "responsibles", "root_parent", "start_date", "street_address",
    "uuid", "zip_code",
)  # fmt: skip

# Writable fields by kind. Everything else in CASE_KEYS is owned by the server and ignored in a request body.
BOOL_FIELDS = frozenset({"active", "all_employees_may_add_work_reports",
                         "all_worktypes_may_used_in_work_reports", "file_upload_required", "geofence",
                         "permit_new_workreports"})  # fmt: skip
TEXT_FIELDS = frozenset({"city", "country", "name", "notes", "number", "street_address", "zip_code"})
DATE_FIELDS = frozenset({"start_date", "end_date"})
DECIMAL_PLACES = {"hour_budget": 2, "latitude": 6, "longitude": 6}
LINK_FIELDS = {"customer": "customer", "case_group": "case_group", "case_state": "case_state",
               "department": "department", "responsible": "employee", "co_responsible": "employee",
               "parent": "case"}  # fmt: skip
WRITABLE_FIELDS = frozenset(
    BOOL_FIELDS
    | TEXT_FIELDS
    | DATE_FIELDS
    | set(DECIMAL_PLACES)
    | set(LINK_FIELDS)
    | {"remarks_required", "priority", "responsibles"}
)
INT_FIELDS = frozenset({"id", "logical_timestamp", "number_of_children"})
ORDERED_FIELDS = INT_FIELDS | DATE_FIELDS | set(DECIMAL_PLACES) | {"creation_date"}
LIST_PARAMS = frozenset({"limit", "offset", "pagination_type", "after", "format", "order_by"})

_REPLACING_FAULTS = frozenset({"status", "html", "not_json", "reset", "empty_listing"})  # the rest spoil
FAULT_KINDS = frozenset({"status", "html", "not_json", "no_objects", "missing_id", "truncated", "reset",
                         "empty_listing", "delay"})  # fmt: skip

# UTF-8 as Tastypie sends it (ensure_ascii=False); one shared encoder saves building one per case.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_CASE_PATH = re.compile(re.escape(LIST_PATH) + r"(\d+)/")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LINK = re.compile(re.escape(BASE_PATH) + r"/([a-z_]+)/(\d+)/")
_HTML_ERROR = (b"<!DOCTYPE html>\n<html><head><title>Server Error (500)</title></head>"
               b"<body><h1>Server Error (500)</h1><p>Der opstod en fejl.</p></body></html>\n")  # fmt: skip
_NOT_JSON = b"Service midlertidigt utilg\xc3\xa6ngelig -- please try again later\n"

# -- realistic generated data ------------------------------------------------------------------------------

_KINDS = ("Renovering", "Nybyg", "Service", "Tagudskiftning", "Køkkenmontage", "Vinduesudskiftning",
          "Badeværelse", "Tilbygning", "Fugning", "Maling", "Gulvlægning", "Elinstallation", "VVS-arbejde",
          "Vedligehold", "Garantisag", "Ombygning", "Sample", "Eksempelprojekt")  # fmt: skip
_STREETS = ("Åboulevarden", "Æblehaven", "Østergade", "Søndergade", "Nørrebrogade", "Vestergade", "Bøgevej",
            "Kløvervænget", "Strandvejen", "Hovedgaden", "Skovbrynet", "Møllevej", "Kirkestræde", "Havnegade",
            "Fælledvej", "Engtoften", "Lærkevej", "Birkealle", "Gåsebæksvej", "Ved Søen")  # fmt: skip
_CITIES = (("København K", "1050"), ("Aarhus C", "8000"), ("Odense C", "5000"), ("Aalborg", "9000"),
           ("Køge", "4600"), ("Næstved", "4700"), ("Hørsholm", "2970"), ("Ærøskøbing", "5970"),
           ("Rønne", "3700"), ("Sønderborg", "6400"), ("Græsted", "3230"), ("Ølstykke", "3650"),
           ("Brøndby", "2605"), ("Vejle", "7100"), ("Esbjerg", "6700"), ("Slagelse", "4200"))  # fmt: skip
_NOTES = ("", "", "", "", "Kunden ønsker opstart efter påske.", "Nøgle hentes hos naboen.",
          "Husk afdækning af gulve.", "Adgang via gården; ring på 2. sal.", "Materialer leveres fredag.",
          "Aftalt fast pris.", "Tilbud sendt, afventer svar.", "Stillads står til og med uge 12.",
          "Hund på adressen - luk lågen!", "Faktureres månedligt.", "Obs: asbest i gammelt tag.",
          "Parkering i gården er ikke tilladt.\nBrug p-pladsen ved Brugsen.",
          "these are my notes")  # fmt: skip
_FIRST_NAMES = ("Søren", "Mette", "Jørgen", "Anne", "Lars", "Birgitte", "Mads", "Åse", "Ole", "Helle",
                "Niels", "Karen", "Bjørn", "Signe", "Rasmus", "Maja")  # fmt: skip
_LAST_NAMES = ("Jensen", "Nielsen", "Hansen", "Pedersen", "Jørgensen", "Sørensen", "Møller", "Kjær",
               "Lauritsen", "Østergaard", "Bæk", "Thomsen")  # fmt: skip
_COMPANY_SUFFIXES = ("ApS", "A/S", "Tømrer & Snedker ApS", "Boligforening", "I/S", "Ejendomme A/S", "")
_DEPARTMENTS = ((149056, "Department 1"), (149057, "Tømrerafdelingen"), (149058, "Værksted"),
                (149059, "Service Øst"), (149060, "Service Vest"), (149061, "Administration"))  # fmt: skip
_CASE_STATES = ((4131, "Project State 1"), (4132, "Tilbud"), (4133, "Planlagt"), (4134, "Igangværende"),
                (4135, "Afventer materialer"), (4136, "Afsluttet"))  # fmt: skip
_CASE_GROUPS = (16694, 16695, 16696, 16697)
_DATES = tuple((datetime.date(2019, 1, 1) + datetime.timedelta(days=n)).isoformat() for n in range(2600))


@dataclass(frozen=True, slots=True)
class _Customer:
    id: int
    id_text: str
    uri: str
    name: str
    street_address: str
    city: str
    zip_code: str
    country: str
    latitude: str | None
    longitude: str | None


def _build_customers(count: int) -> tuple[_Customer, ...]:
    rng = random.Random(6666940)
    made = [
        _Customer(
            6666940,
            "6666940",
            "/web/v1/customer/6666940/",
            "Eksempelkunde",
            "Eksempelvej",
            "",
            "",
            "DK",
            None,
            None,
        )
    ]
    for n in range(1, count):
        customer_id = 6666940 + 7 * n
        last = rng.choice(_LAST_NAMES)
        suffix = rng.choice(_COMPANY_SUFFIXES)
        name = f"{last} {suffix}" if suffix else f"{rng.choice(_FIRST_NAMES)} {last}"
        city, zip_code = rng.choice(_CITIES)
        located = rng.random() < 0.5
        made.append(
            _Customer(
                customer_id,
                str(customer_id),
                f"/web/v1/customer/{customer_id}/",
                name,
                f"{rng.choice(_STREETS)} {rng.randint(1, 120)}",
                city,
                zip_code,
                "DK",
                f"{54.6 + rng.random() * 3:.6f}" if located else None,
                f"{8.1 + rng.random() * 4.5:.6f}" if located else None,
            )
        )
    return tuple(made)


_CUSTOMERS = _build_customers(400)
_CUSTOMERS_BY_ID = {customer.id: customer for customer in _CUSTOMERS}
_EMPLOYEES = tuple(
    (f"/web/v1/employee/{480_000 + n}/", str(480_000 + n), f"{first} {last}")
    for n, (first, last) in enumerate((f, la) for la in _LAST_NAMES for f in _FIRST_NAMES)
)
_EMPLOYEE_NAMES = {int(employee_id): name for _, employee_id, name in _EMPLOYEES}
_DEPARTMENT_NAMES = dict(_DEPARTMENTS)
_CASE_STATE_NAMES = dict(_CASE_STATES)
# Pre-built (uri, id, name) triples and value pools: a million cases must generate in seconds, and the
# shared strings keep their memory down.
_NO_LINK: tuple[None, None, None] = (None, None, None)
_DEPARTMENT_LINKS = tuple((f"/web/v1/department/{n}/", str(n), name) for n, name in _DEPARTMENTS)
_CASE_STATE_LINKS = tuple((f"/web/v1/case_state/{n}/", str(n), name) for n, name in _CASE_STATES)
_CASE_GROUP_LINKS = tuple(f"/web/v1/case_group/{n}/" for n in _CASE_GROUPS)
_BUDGETS = tuple(f"{n / 2:.2f}" for n in range(4000))
_LATITUDES = tuple(f"{54.6 + n * 3 / 4096:.6f}" for n in range(4096))
_LONGITUDES = tuple(f"{8.1 + n * 4.5 / 4096:.6f}" for n in range(4096))


def make_case(case_id: int, logical_timestamp: int, rng: random.Random) -> dict[str, Any]:
    """A realistic case: the fixture's keys in its order, its value types and URI formats, varied values."""
    r = rng.random
    customer = _CUSTOMERS[int(r() * len(_CUSTOMERS))]
    department = _DEPARTMENT_LINKS[int(r() * len(_DEPARTMENT_LINKS))] if r() < 0.7 else _NO_LINK
    state = _CASE_STATE_LINKS[int(r() * len(_CASE_STATE_LINKS))] if r() < 0.8 else _NO_LINK
    group = _CASE_GROUP_LINKS[int(r() * len(_CASE_GROUP_LINKS))] if r() < 0.5 else None
    responsible = _EMPLOYEES[int(r() * len(_EMPLOYEES))] if r() < 0.6 else _NO_LINK
    co_responsible = _EMPLOYEES[int(r() * len(_EMPLOYEES))] if r() < 0.2 else _NO_LINK
    responsibles = [_EMPLOYEES[int(r() * len(_EMPLOYEES))][0] for _ in range(int(r() * r() * 4))]
    city, zip_code = _CITIES[int(r() * len(_CITIES))]
    street = _STREETS[int(r() * len(_STREETS))]
    house = int(r() * 150) + 1
    created = int(r() * (len(_DATES) - 400))
    start = created + int(r() * 200) if r() < 0.6 else None
    end = start + int(r() * 180) if start is not None and r() < 0.5 else None
    located = r() < 0.5
    remarks = r()
    return {
        "active": r() < 0.9,
        "all_employees_may_add_work_reports": r() < 0.7,
        "all_worktypes_may_used_in_work_reports": r() < 0.7,
        "case_group": group,
        "case_group_full": group,
        "case_state": state[0],
        "case_state_id": state[1],
        "case_state_name": state[2],
        "city": city,
        "co_responsible": co_responsible[0],
        "co_responsible_id": co_responsible[1],
        "co_responsible_name": co_responsible[2],
        "country": "DK" if r() < 0.8 else "",
        "creation_date": _DATES[created],
        "creation_id": None,
        "customer": customer.uri,
        "customer_city": customer.city,
        "customer_country": customer.country,
        "customer_id": customer.id_text,
        "customer_latitude": customer.latitude,
        "customer_longitude": customer.longitude,
        "customer_name": customer.name,
        "customer_street_address": customer.street_address,
        "customer_zip_code": customer.zip_code,
        "department": department[0],
        "department_id": department[1],
        "department_name": department[2],
        "end_date": _DATES[end] if end is not None else None,
        "file_upload_required": r() < 0.3,
        "geofence": r() < 0.1,
        "hour_budget": _BUDGETS[int(r() * len(_BUDGETS))] if r() < 0.6 else None,
        "id": case_id,
        "latitude": _LATITUDES[int(r() * len(_LATITUDES))] if located else None,
        "logical_timestamp": logical_timestamp,
        "longitude": _LONGITUDES[int(r() * len(_LONGITUDES))] if located else None,
        "name": f"{_KINDS[int(r() * len(_KINDS))]} {street} {house}",
        "notes": _NOTES[int(r() * len(_NOTES))],
        "number": f"{19 + created // 365}-{case_id % 100000:05d}",
        "number_of_children": 0,
        "parent": None,
        "parent_name": None,
        "permit_new_workreports": r() < 0.8,
        "priority": None,
        "remarks_required": None if remarks < 0.1 else remarks < 0.4,
        "resource_uri": f"/web/v1/case/{case_id}/",
        "responsible": responsible[0],
        "responsible_id": responsible[1],
        "responsible_name": responsible[2],
        "responsibles": responsibles,
        "root_parent": None,
        "start_date": _DATES[start] if start is not None else None,
        "street_address": f"{street} {house}",
        "uuid": None,
        "zip_code": zip_code,
    }


def _default_case() -> dict[str, Any]:
    """What the server fills in for a created case before applying the request body."""
    case: dict[str, Any] = dict.fromkeys(CASE_KEYS)
    case.update(
        active=True,
        all_employees_may_add_work_reports=True,
        all_worktypes_may_used_in_work_reports=True,
        city="",
        country="",
        file_upload_required=False,
        geofence=False,
        name="",
        notes="",
        number="",
        number_of_children=0,
        permit_new_workreports=True,
        remarks_required=False,
        responsibles=[],
        street_address="",
        zip_code="",
    )
    return case


# -- public value types ------------------------------------------------------------------------------------


@dataclass
class Fault:
    """A scripted failure for the API requests whose "METHOD /path?query" contains `match` ("" = all).

    It lets `after` matching requests through, then affects `times` of them (-1: forever). Kinds:
    "status" (`status` with an error body), "html" (500 with an HTML page), "not_json" (200, garbage),
    "no_objects" / "missing_id" (200, the real page without "objects" / with one case without "id"),
    "empty_listing" (200, zero objects), "truncated" (body shorter than its Content-Length, then close),
    "reset" (close with an RST, no answer), "delay" (`delay_s` through the fake's sleep, then answer).
    With `apply_after`, a replacing kind (status, html, not_json, reset, empty_listing) lets the request
    take effect first: the answer to a committed write is lost.
    """

    match: str = ""
    times: int = 1
    after: int = 0
    status: int = 500
    retry_after: str | None = None
    kind: str = "status"
    delay_s: float = 0.0
    apply_after: bool = False
    passed: int = field(default=0, init=False, repr=False, compare=False)  # matching requests let through

    def __post_init__(self) -> None:
        # Faults also arrive as JSON through /_fake/faults: refuse wrong types now, not mid-request.
        for name, kinds in _FAULT_TYPES.items():
            value = getattr(self, name)
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                raise TypeError(f"fault field {name} cannot be {value!r}")
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")


_FAULT_TYPES: dict[str, tuple[type, ...]] = {
    "match": (str,),
    "times": (int,),
    "after": (int,),
    "status": (int,),
    "retry_after": (str, type(None)),
    "kind": (str,),
    "delay_s": (int, float),
    "apply_after": (bool,),
}


class InvalidCase(ValueError):
    """A create or update the server refuses; `body` is the 400 answer's JSON."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(json.dumps(body, ensure_ascii=False))
        self.body = body


class _BadRequest(Exception):
    def __init__(self, body: dict[str, Any], status: int = 400) -> None:
        super().__init__(body)
        self.body = body
        self.status = status


# -- the state and the API ---------------------------------------------------------------------------------


class FakeIntempus:
    """The remote state plus request handling, without sockets. Thread-safe: one lock guards everything."""

    def __init__(
        self,
        cases: int = 0,
        *,
        seed: int = 0,
        user: str = DEFAULT_USER,
        key: str = DEFAULT_KEY,
        rate_limit_per_minute: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.user = user
        self.key = key
        self.rate_limit_per_minute = rate_limit_per_minute
        self.cursor_paging = True  # False: refuse pagination_type=cursor, like a server without it
        self.cases: dict[int, dict[str, Any]] = {}
        self.counter = FIRST_COUNTER
        self.requests: list[tuple[str, str]] = []
        self.faults: list[Fault] = []
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._ids: list[int] = []  # sorted ascending: offset paging is by position in it
        self._rendered: dict[int, bytes] = {}  # id -> the case's JSON, dropped whenever the case changes
        self._changes_ts = array("q")  # append-only change log, ascending by timestamp ...
        self._changes_id = array("q")  # ... with the changed case's id; stale entries are skipped on read
        self._by_creation_id: dict[str, int] = {}
        self._next_id = FIRST_CASE_ID
        self._version = 0  # bumped on every change; keys the cache of filtered id lists
        self._selections: dict[tuple[Any, ...], list[int]] = {}
        self._selections_version = 0
        self._window: collections.deque[float] = collections.deque()
        self._populate(cases, seed)

    def _populate(self, count: int, seed: int) -> None:
        rng = random.Random(seed)
        r = rng.random
        collecting = gc.isenabled()
        gc.disable()  # a million new dicts would trigger full collections over and over: 2x slower
        try:
            with self._lock:
                case_id, stamp = self._next_id, self.counter
                cases, ids = self.cases, self._ids
                changes_ts, changes_id = self._changes_ts, self._changes_id
                for _ in range(count):
                    case_id += 1 if r() < 0.8 else 2 + int(r() * 5)  # gaps: other records were deleted
                    stamp += 1 + int(r() * 3)  # the counter is shared with every other kind of object
                    cases[case_id] = make_case(case_id, stamp, rng)
                    ids.append(case_id)
                    changes_ts.append(stamp)
                    changes_id.append(case_id)
                self._next_id, self.counter = case_id, stamp
                self._version += 1
        finally:
            if collecting:
                gc.enable()

    # -- direct state changes: "someone else edited Intempus" --------------------------------------------

    def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Create a case as the server would; raises InvalidCase. A known `creation_id` returns that case."""
        with self._lock:
            case, _ = self._create(fields)
            return _copy_case(case)

    def update(self, case_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Partial update as the server would; raises KeyError for an unknown id and InvalidCase."""
        with self._lock:
            return _copy_case(self._update(case_id, fields))

    def delete(self, case_id: int) -> None:
        """Delete a case; raises KeyError for an unknown id."""
        with self._lock:
            self._delete(case_id)

    def mutate(
        self, *, update: int = 0, delete: int = 0, create: int = 0, seed: int = 0
    ) -> dict[str, list[int]]:
        """Random remote changes, as other Intempus users would make them."""
        rng = random.Random(seed)
        with self._lock:
            chosen = rng.sample(self._ids, min(len(self._ids), update + delete))
            to_update, to_delete = sorted(chosen[:update]), sorted(chosen[update:])
            for case_id in to_update:
                case = self.cases[case_id]
                changes: dict[str, Any] = {
                    "name": f"{_KINDS[rng.randrange(len(_KINDS))]} {case['street_address'] or 'Ændret'}",
                    "notes": f"{_NOTES[rng.randrange(len(_NOTES))]} (ændret #{self.counter + 1})".lstrip(),
                }
                if rng.random() < 0.3:
                    changes["hour_budget"] = f"{rng.randrange(4000) / 2:.2f}"
                if rng.random() < 0.1:
                    changes["active"] = not case["active"]
                self._update(case_id, changes)
            for case_id in to_delete:
                self._delete(case_id)
            created = []
            for _ in range(create):
                template = make_case(self._next_id + 1, 0, rng)
                created.append(
                    self._create({k: v for k, v in template.items() if k in WRITABLE_FIELDS})[0]["id"]
                )
        return {"updated": to_update, "deleted": to_delete, "created": created}

    def render_all(self) -> int:
        """Fill the JSON cache before a timed run; a chunk per lock hold, so requests are served meanwhile.

        Without it the first listing renders lazily, ~15 us a case: at a million cases that is as slow as
        the client's own parsing, so a benchmark should warm the fake first (`POST /_fake/render`).
        """
        rendered = position = 0
        while True:
            with self._lock:
                chunk = self._ids[position : position + RENDER_CHUNK]
                for case_id in chunk:
                    if case_id not in self._rendered:
                        self._rendered[case_id] = _dumps(self.cases[case_id])
                        rendered += 1
            if not chunk:
                return rendered
            position += RENDER_CHUNK

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    # -- changes, with the lock held ---------------------------------------------------------------------

    def _stamp(self, case: dict[str, Any]) -> None:
        self.counter += 1
        self._version += 1
        case["logical_timestamp"] = self.counter
        self._rendered.pop(case["id"], None)
        self._changes_ts.append(self.counter)
        self._changes_id.append(case["id"])
        if len(self._changes_ts) > 2 * len(self.cases) + 4096:
            self._compact_changes()

    def _compact_changes(self) -> None:
        live = sorted((case["logical_timestamp"], case_id) for case_id, case in self.cases.items())
        self._changes_ts = array("q", (stamp for stamp, _ in live))
        self._changes_id = array("q", (case_id for _, case_id in live))

    def _create(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The new (or, for a repeated creation_id, the existing) case, and whether it was created now."""
        creation_id = body.get("creation_id")
        if creation_id is not None and not isinstance(creation_id, str):
            raise InvalidCase({"case": {"creation_id": ["Not a valid string."]}})
        if creation_id is not None and creation_id in self._by_creation_id:
            return self.cases[self._by_creation_id[creation_id]], False
        case = _default_case()
        self._apply(case, body, creating=True)
        self._next_id += 1
        case_id = self._next_id
        case["id"] = case_id
        case["resource_uri"] = f"{LIST_PATH}{case_id}/"
        case["creation_id"] = creation_id
        case["creation_date"] = datetime.date.today().isoformat()
        self.cases[case_id] = case
        if self._ids and case_id < self._ids[-1]:
            insort(self._ids, case_id)
        else:
            self._ids.append(case_id)
        if creation_id is not None:
            self._by_creation_id[creation_id] = case_id
        self._stamp(case)
        return case, True

    def _update(self, case_id: int, body: dict[str, Any]) -> dict[str, Any]:
        case = self.cases[case_id]
        self._apply(case, body, creating=False)
        self._stamp(case)
        return case

    def _delete(self, case_id: int) -> None:
        case = self.cases.pop(case_id)
        del self._ids[bisect_right(self._ids, case_id) - 1]
        self._rendered.pop(case_id, None)
        if case["creation_id"] is not None:
            self._by_creation_id.pop(case["creation_id"], None)
        self.counter += 1
        self._version += 1

    def _apply(self, case: dict[str, Any], body: dict[str, Any], *, creating: bool) -> None:
        """Validate `body` against `case` and apply it (all or nothing), with the server-side copies."""
        unknown = sorted(name for name in body if name not in CASE_KEYS)
        if unknown:
            raise InvalidCase({"error": f"Unknown field(s): {', '.join(unknown)}"})
        changes = {name: value for name, value in body.items() if name in WRITABLE_FIELDS}
        errors: dict[str, list[str]] = {}
        if creating:
            for name in ("name", "customer"):
                if changes.get(name) in (None, ""):
                    errors[name] = ["This field is required."]
        cleaned: dict[str, Any] = {}
        for name, value in changes.items():
            if name in errors:
                continue
            try:
                cleaned[name] = self._clean(name, value, case)
            except ValueError as exc:
                errors[name] = [str(exc)]
        if errors:
            raise InvalidCase({"case": errors})
        merged = {**case, **cleaned}
        if merged["end_date"] is not None and merged["start_date"] is None:
            raise InvalidCase({"error": ["Slutdato kræver en startdato"]})
        if merged["end_date"] is not None and merged["end_date"] < merged["start_date"]:
            raise InvalidCase({"error": ["Slutdato skal ligge efter startdato"]})
        for name, bound in (("latitude", 90), ("longitude", 180)):
            if merged[name] is not None and not -bound <= Decimal(merged[name]) <= bound:
                raise InvalidCase({"error": f"{name} must be between -{bound} and {bound}"})
        case.update(cleaned)
        _fill_copies(case, cleaned, self.cases)

    def _clean(self, name: str, value: Any, case: dict[str, Any]) -> Any:
        """One writable value as the server stores it; ValueError carries the field error message."""
        if name in BOOL_FIELDS or name == "remarks_required":
            if value is None and name == "remarks_required":
                return None
            if not isinstance(value, bool):
                raise ValueError("Must be true or false.")
            return value
        if name in TEXT_FIELDS:
            if value is None:
                raise ValueError("This field cannot be null.")
            if not isinstance(value, str):
                raise ValueError("Not a valid string.")
            return value
        if value is None:
            if name == "customer":
                raise ValueError("This field cannot be null.")
            return [] if name == "responsibles" else None
        if name in DATE_FIELDS:
            if not isinstance(value, str) or not _DATE.fullmatch(value):
                raise ValueError("Date has wrong format. Use YYYY-MM-DD.")
            try:
                datetime.date.fromisoformat(value)
            except ValueError:
                raise ValueError("Date has wrong format. Use YYYY-MM-DD.") from None
            return value
        if name in DECIMAL_PLACES:
            return _clean_decimal(value, DECIMAL_PLACES[name])
        if name in LINK_FIELDS:
            link_id = _link_id(value, LINK_FIELDS[name])
            if name == "parent" and (link_id not in self.cases or link_id == case.get("id")):
                raise ValueError(f"Could not find the case {value!r}.")
            return f"{BASE_PATH}/{LINK_FIELDS[name]}/{link_id}/"
        if name == "responsibles":
            if not isinstance(value, list):
                raise ValueError("Expected a list of employee URIs.")
            return [f"{BASE_PATH}/employee/{_link_id(item, 'employee')}/" for item in value]
        if isinstance(value, dict | list):  # priority: type unknown, keep scalars as given
            raise ValueError("Not a valid value.")
        return value

    # -- HTTP --------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one HTTP request: the whole API plus the /_fake/ control endpoints."""
        method = method.upper()
        url = urlsplit(path)
        if url.path.startswith("/_fake/"):
            return self._handle_control(method, url.path, body)
        with self._lock:
            self.requests.append((method, path))
            fault = self._take_fault(f"{method} {path}")
        if fault is not None and fault.kind == "delay":
            self._sleep(fault.delay_s)
            fault = None
        replaces = fault is not None and fault.kind in _REPLACING_FAULTS
        if fault is not None and replaces and not fault.apply_after:
            return self._fault_response(fault, url.query)
        with self._lock:
            response = self._handle_api(method, url.path, url.query, headers, body)
        if fault is None:
            return response
        if replaces:
            return self._fault_response(fault, url.query)
        return _spoil(fault, response)

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

    def _fault_response(self, fault: Fault, query: str) -> Response:
        headers = self._json_headers()
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        if fault.kind == "reset":
            return Response(0, b"", {}, action="reset")
        if fault.kind == "html":
            return Response(500, _HTML_ERROR, {**headers, "Content-Type": "text/html; charset=utf-8"})
        if fault.kind == "not_json":
            return Response(200, _NOT_JSON, headers)
        if fault.kind == "empty_listing":
            params = dict(parse_qsl(query))
            meta = {
                "limit": _int_param(params, "limit", DEFAULT_LIMIT, fallback=True),
                "next": None,
                "offset": _int_param(params, "offset", 0, fallback=True),
                "previous": None,
                "total_count": 0,
            }
            return Response(200, _dumps({"meta": meta, "objects": []}), headers)
        if fault.status == 429:
            return Response(429, _dumps({"error": "rate limited"}), headers)
        message = f"Simulated server failure ({fault.status})"
        return Response(fault.status, _dumps({"error_message": message}), headers)

    def _json_headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json; charset=utf-8", "Logical-Timestamp": str(self.counter)}

    def _answer(self, status: int, body: bytes, **extra: str) -> Response:
        headers = self._json_headers()
        headers.update(extra)
        return Response(status, body, headers)

    def _handle_api(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        if not self._authorized(headers):
            return Response(
                401, b"", {"Content-Type": "text/html; charset=utf-8", "Logical-Timestamp": str(self.counter)}
            )
        limited = self._rate_limited()
        if limited is not None:
            return limited
        try:
            if path == LIST_PATH:
                if method == "GET":
                    return self._answer(200, self._list_page(query))
                if method == "POST":
                    case, _ = self._create(_json_object(body))
                    answer = _dumps({**case, "logical_timestamp": CREATE_QUIRK_TIMESTAMP})
                    return self._answer(201, answer, Location=case["resource_uri"])
                return self._answer(405, _dumps({"error": "Method not allowed"}), Allow="GET, POST")
            matched = _CASE_PATH.fullmatch(path)
            if matched is None:
                return self._answer(404, _dumps({"error": "Not found"}))
            case_id = int(matched.group(1))
            if method not in ("GET", "PUT", "PATCH", "DELETE"):
                return self._answer(
                    405, _dumps({"error": "Method not allowed"}), Allow="GET, PUT, PATCH, DELETE"
                )
            if case_id not in self.cases:
                return self._answer(404, _dumps({"error": "Not found"}))
            if method == "GET":
                return self._answer(200, self._rendered_case(case_id))
            if method == "DELETE":
                self._delete(case_id)
                return self._answer(204, b"")
            self._update(case_id, _json_object(body))
            return self._answer(200, self._rendered_case(case_id))
        except InvalidCase as exc:
            return self._answer(400, _dumps(exc.body))
        except _BadRequest as exc:
            return self._answer(exc.status, _dumps(exc.body))

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, credentials = value.strip().partition(" ")
        user, _, key = credentials.strip().partition(":")
        return scheme.lower() == "apikey" and user == self.user and key == self.key

    def _rate_limited(self) -> Response | None:
        if self.rate_limit_per_minute <= 0:
            return None
        now = self._clock()
        while self._window and self._window[0] <= now - RATE_WINDOW_SECONDS:
            self._window.popleft()
        if len(self._window) >= self.rate_limit_per_minute:
            wait = max(1, math.ceil(self._window[0] + RATE_WINDOW_SECONDS - now))
            return self._answer(429, _dumps({"error": "rate limited"}), **{"Retry-After": str(wait)})
        self._window.append(now)
        return None

    def _rendered_case(self, case_id: int) -> bytes:
        rendered = self._rendered.get(case_id)
        if rendered is None:
            rendered = self._rendered[case_id] = _dumps(self.cases[case_id])
        return rendered

    def _list_page(self, query: str) -> bytes:
        pairs = parse_qsl(query, keep_blank_values=True)
        params = dict(pairs)
        limit = _int_param(params, "limit", DEFAULT_LIMIT)
        limit = MAX_LIMIT if limit == 0 else min(limit, MAX_LIMIT)
        pagination = params.get("pagination_type", "")
        if pagination not in ("", "offset", "cursor") or (pagination == "cursor" and not self.cursor_paging):
            raise _BadRequest({"error": "Invalid pagination type"})
        selected = self._select(_parse_filters(pairs))
        cursor = pagination == "cursor"
        if cursor:
            start = bisect_right(selected, _decode_cursor(params["after"])) if "after" in params else 0
        else:
            start = _int_param(params, "offset", 0)
        page = selected[start : start + limit]
        more = start + limit < len(selected)
        carried = [*((k, v) for k, v in pairs if k not in ("limit", "offset", "after")), ("limit", limit)]
        offset: int | None = None
        previous = None
        if cursor:
            next_path = _page_path([*carried, ("after", _encode_cursor(page[-1]))]) if more else None
        else:
            next_path = _page_path([*carried, ("offset", start + limit)]) if more else None
            offset = start
            previous = _page_path([*carried, ("offset", max(0, start - limit))]) if start > 0 else None
        meta = {"limit": limit, "next": next_path, "offset": offset, "previous": previous,
                "total_count": len(selected)}  # fmt: skip
        objects = b",".join([self._rendered_case(case_id) for case_id in page])
        return b'{"meta":' + _dumps(meta) + b',"objects":[' + objects + b"]}"

    def _select(self, filters: list[tuple[str, str, Any]]) -> list[int]:
        """The sorted ids matching every filter; cached until the state changes."""
        if not filters:
            return self._ids
        if self._selections_version != self._version:
            self._selections.clear()
            self._selections_version = self._version
        key = tuple(filters)
        if key in self._selections:
            return self._selections[key]
        candidates: list[int] | None = None
        for name, op, value in filters:
            if name == "id" and op == "in":
                candidates = sorted(i for i in value if i in self.cases)
                break
        if candidates is None:
            for name, op, value in filters:
                if name == "logical_timestamp" and op in ("gt", "gte"):
                    candidates = self._changed_since(value if op == "gt" else value - 1)
                    break
        cases = self.cases
        pool = self._ids if candidates is None else candidates
        selected = [
            i for i in pool if all(_matches(cases[i][name], op, value) for name, op, value in filters)
        ]
        if len(self._selections) > 32:
            self._selections.clear()
        self._selections[key] = selected
        return selected

    def _changed_since(self, stamp: int) -> list[int]:
        """Ids of the cases changed after `stamp`, from the change log: fast when few have changed."""
        cases, stamps, ids = self.cases, self._changes_ts, self._changes_id
        found = []
        for position in range(bisect_right(stamps, stamp), len(stamps)):
            case = cases.get(ids[position])
            if case is not None and case["logical_timestamp"] == stamps[position]:
                found.append(ids[position])
        found.sort()
        return found

    def _handle_control(self, method: str, path: str, body: bytes) -> Response:
        try:
            if path == "/_fake/mutate" and method == "POST":
                data = _json_object(body) if body.strip() else {}
                counts = {name: data.get(name, 0) for name in ("update", "delete", "create", "seed")}
                if set(data) - set(counts) or not all(type(v) is int and v >= 0 for v in counts.values()):
                    raise _BadRequest(
                        {"error": "expected {update, delete, create, seed}: non-negative integers"}
                    )
                return self._answer(200, _dumps(self.mutate(**counts)))
            if path == "/_fake/faults" and method == "POST":
                data = json.loads(body)
                items = data if isinstance(data, list) else [data]
                added = [Fault(**item) for item in items]
                with self._lock:
                    self.faults.extend(added)
                    return self._answer(200, _dumps({"faults": len(self.faults)}))
            if path == "/_fake/render" and method == "POST":
                started = time.perf_counter()
                rendered = {"rendered": self.render_all(), "seconds": round(time.perf_counter() - started, 3)}
                return self._answer(200, _dumps(rendered))
            if path == "/_fake/faults" and method == "DELETE":
                self.clear_faults()
                return self._answer(200, _dumps({"faults": 0}))
            if path == "/_fake/stats" and method == "GET":
                with self._lock:
                    stats = {
                        "cases": len(self.cases),
                        "counter": self.counter,
                        "requests": len(self.requests),
                        "faults": len(self.faults),
                    }
                return self._answer(200, _dumps(stats))
        except _BadRequest as exc:
            return self._answer(exc.status, _dumps(exc.body))
        except (ValueError, TypeError) as exc:
            return self._answer(400, _dumps({"error": str(exc)}))
        return self._answer(404, _dumps({"error": "Not found"}))


# -- helpers -----------------------------------------------------------------------------------------------


def _dumps(data: Any) -> bytes:
    return _ENCODER.encode(data).encode("utf-8")


def _copy_case(case: dict[str, Any]) -> dict[str, Any]:
    return {**case, "responsibles": list(case["responsibles"])}


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise _BadRequest({"error": "The request body is not valid JSON."}) from None
    if not isinstance(data, dict):
        raise _BadRequest({"error": "The request body must be a JSON object."})
    return data


def _int_param(params: Mapping[str, str], name: str, default: int, *, fallback: bool = False) -> int:
    raw = params.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        if fallback:
            return default
        raise _BadRequest({"error": f"Invalid {name} '{raw}' provided. Please provide a positive integer."})
    return value


def _page_path(pairs: list[tuple[str, Any]]) -> str:
    return f"{LIST_PATH}?{urlencode(pairs)}"


def _encode_cursor(case_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{case_id}".encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "id":
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error):
        raise _BadRequest({"error": "Invalid cursor"}) from None


def _parse_filters(pairs: list[tuple[str, str]]) -> list[tuple[str, str, Any]]:
    """Tastypie-style `field`, `field__in`, `field__gt`... filters; unknown names are ignored, as there."""
    filters: list[tuple[str, str, Any]] = []
    for name, raw in pairs:
        if name in LIST_PARAMS:
            continue
        field_name, _, op = name.partition("__")
        if field_name not in CASE_KEYS:
            continue
        op = op or "exact"
        allowed = (
            ("exact", "in", "gt", "gte", "lt", "lte") if field_name in ORDERED_FIELDS else ("exact", "in")
        )
        if op not in allowed or field_name == "responsibles":
            raise _BadRequest({"error": f"The '{name}' filter is not allowed on this resource."})
        try:
            if op == "in":
                value: Any = frozenset(_filter_value(field_name, part) for part in raw.split(",") if part)
            else:
                value = _filter_value(field_name, raw)
        except ValueError:
            raise _BadRequest({"error": f"Invalid value {raw!r} for the '{name}' filter."}) from None
        filters.append((field_name, op, value))
    return filters


def _filter_value(name: str, raw: str) -> Any:
    if raw.lower() in ("none", "null"):
        return None
    if name in INT_FIELDS:
        return int(raw)
    if name in BOOL_FIELDS or name == "remarks_required":
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise ValueError(raw)
    if name in DECIMAL_PLACES:
        return Decimal(raw)
    return raw


def _matches(actual: Any, op: str, wanted: Any) -> bool:
    if isinstance(actual, str) and isinstance(wanted, Decimal):
        actual = Decimal(actual)
    if op == "exact":
        return bool(actual == wanted)
    if op == "in":
        return actual in wanted
    if actual is None or wanted is None:
        return False
    if op == "gt":
        return bool(actual > wanted)
    if op == "gte":
        return bool(actual >= wanted)
    if op == "lt":
        return bool(actual < wanted)
    return bool(actual <= wanted)


def _clean_decimal(value: Any, places: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("A valid number is required.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("A valid number is required.") from None
    if not number.is_finite():
        raise ValueError("A valid number is required.")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        raise ValueError(f"Ensure that there are no more than {places} decimal places.")
    return f"{number:.{places}f}"


def _link_id(value: Any, resource: str) -> int:
    path = urlsplit(value).path if isinstance(value, str) else ""
    matched = _LINK.fullmatch(path)
    if matched is None or matched.group(1) != resource:
        raise ValueError(f"Expected a {resource} URI like {BASE_PATH}/{resource}/123/, got {value!r}.")
    return int(matched.group(2))


def _fill_copies(
    case: dict[str, Any], changed: Mapping[str, Any], cases: Mapping[int, dict[str, Any]]
) -> None:
    """The read-only copies beside each link the request changed."""
    if "customer" in changed:
        customer_id = _link_id(case["customer"], "customer")
        known = _CUSTOMERS_BY_ID.get(customer_id)
        case.update(
            customer_id=str(customer_id),
            customer_name=known.name if known else f"Kunde {customer_id}",
            customer_street_address=known.street_address if known else "",
            customer_city=known.city if known else "",
            customer_zip_code=known.zip_code if known else "",
            customer_country=known.country if known else "DK",
            customer_latitude=known.latitude if known else None,
            customer_longitude=known.longitude if known else None,
        )
    named = {
        "case_state": _CASE_STATE_NAMES,
        "department": _DEPARTMENT_NAMES,
        "responsible": _EMPLOYEE_NAMES,
        "co_responsible": _EMPLOYEE_NAMES,
    }
    fallback = {
        "case_state": "Status",
        "department": "Afdeling",
        "responsible": "Medarbejder",
        "co_responsible": "Medarbejder",
    }
    for name, names in named.items():
        if name in changed:
            link = case[name]
            link_id = None if link is None else _link_id(link, LINK_FIELDS[name])
            case[f"{name}_id"] = None if link_id is None else str(link_id)
            case[f"{name}_name"] = (
                None if link_id is None else names.get(link_id, f"{fallback[name]} {link_id}")
            )
    if "case_group" in changed:
        case["case_group_full"] = case["case_group"]
    if "parent" in changed:
        parent = None if case["parent"] is None else cases[_link_id(case["parent"], "case")]
        case["parent_name"] = None if parent is None else parent["name"]
        case["root_parent"] = None if parent is None else parent["root_parent"] or parent["resource_uri"]


def _spoil(fault: Fault, response: Response) -> Response:
    """A real answer made subtly wrong: the faults a client must notice in a 200."""
    if fault.kind == "truncated":
        response.action = "truncate"
        return response
    try:
        data = json.loads(response.body)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if fault.kind == "no_objects":
        data.pop("objects", None)
        data.setdefault("meta", {})
    elif fault.kind == "missing_id":
        objects = data.get("objects")
        target = objects[len(objects) // 2] if isinstance(objects, list) and objects else data
        target.pop("id", None)
    return Response(200, _dumps(data), response.headers)


# -- real HTTP ---------------------------------------------------------------------------------------------


class FakeServer(LoopbackServer):
    """FakeIntempus on a loopback port, served by a background thread. Binds at construction."""

    def __init__(self, fake: FakeIntempus, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(fake, host, port, base_path=BASE_PATH, name="fake-intempus")
        self.fake = fake


def serve_forever(
    host: str,
    port: int,
    cases: int,
    seed: int = 0,
    user: str = DEFAULT_USER,
    key: str = DEFAULT_KEY,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGTERM or Ctrl-C, then stop cleanly. Binds before generating: a busy port fails fast."""
    fake = FakeIntempus(seed=seed, user=user, key=key)
    serve_until_stopped(FakeServer(fake, host, port), lambda: fake._populate(cases, seed), on_ready)
