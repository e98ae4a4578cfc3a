"""A stateful, fast, local imitation of the power-grid data API (`grid-api.md`), for tests, demo and bench.

`FakeGrid` holds components and measurements and answers requests without sockets (`handle`);
`FakeGridServer` puts it on a loopback port; `serve_forever` runs it as its own process. It follows the
specification to the letter where it speaks (OAuth2 password tokens with scopes, cursor paging by id, one
global version counter, `version_gt`, `max_version`, cascade deletes, FastAPI-shaped 422 answers) and does
what FastAPI does where it is silent. Scripted faults (an error status, a reset connection, a write whose
answer is lost) and an optional rate limit drive a client through the failures it must survive.

The spec plans for three million measurements, so they live in parallel `array` columns (about 45 bytes a
row plus a change log) instead of one dict per row, and a page is rendered straight from those columns with
one %-format per row. Components are few and stay plain dicts.
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime
import json
import math
import random
import re
import secrets
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from itertools import compress, cycle, islice, repeat
from operator import mul
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl, urlsplit

from syncctl.core.fakehttp import LoopbackServer, Response, json_response, serve_until_stopped

BASE_PATH = "/api"
TOKEN_LIFETIME_S = 1800
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
MAX_BATCH = 1000
RATE_WINDOW_S = 60.0
# username -> (password, the scopes the account holds, space-separated)
DEFAULT_ACCOUNTS: Mapping[str, tuple[str, str]] = {
    "user": ("user", "user"),
    "manager": ("manager", "user manager"),
}

COMPONENT_TYPES = ("transformer", "line", "switch")
MEASUREMENT_TYPES = ("voltage", "current", "power")
SWITCH_STATUSES = ("open", "closed")
COMPONENT_FIELDS = ("name", "type", "substation", "voltage_kv", "capacity_mva", "length_km", "status")
REQUIRED_COMPONENT_FIELDS = ("name", "type", "substation")
# The component types each optional field belongs to; for every other type it is null.
TYPED_FIELDS: Mapping[str, tuple[str, ...]] = {
    "voltage_kv": ("transformer", "line"),
    "capacity_mva": ("transformer",),
    "length_km": ("line",),
    "status": ("switch",),
}
MEASUREMENT_FIELDS = ("component_id", "timestamp", "type", "value")

FaultKind = Literal["status", "reset", "lose_answer"]
FAULT_KINDS = frozenset(get_args(FaultKind))

GENERATED_START = 1_735_689_600  # 2025-01-01T00:00:00Z: generated measurements start here ...
GENERATED_INTERVAL_S = 900  # ... one voltage, current and power reading per component every 15 minutes

_GONE = -1  # the version of a deleted measurement row, kept in place until the columns are compacted
_GONE_IN_LOG = -1  # the id of a change-log entry superseded by a later update or a delete
_BLOCK_BITS = 10  # rows per block of the version index: 1024
_JSON = {"Content-Type": "application/json; charset=utf-8"}
_MEASUREMENT_JSON = '{"id":%d,"component_id":%d,"timestamp":"%s","type":"%s","value":%r,"version":%d}'
_ROUTE = re.compile(re.escape(BASE_PATH) + r"/(components|measurements)(?:/([^/]+))?")
_INTEGER = re.compile(r"[+-]?\d+")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_SECOND = datetime.timedelta(seconds=1)
_NOT_OBJECT = "Input should be a valid dictionary or object to extract fields from"

# -- realistic generated data ------------------------------------------------------------------------------

_SUBSTATIONS = ("Nordhavn", "Amagerværket", "Avedøre", "Bellahøj", "Glentegård", "Hovegård", "Ishøj",
                "Svanemølle", "Valby", "Ørestad", "Kastrup", "Brøndby Strand")  # fmt: skip
_VOLTAGES_KV = (0.4, 10.0, 20.0, 60.0, 132.0, 400.0)
_TRANSFORMER_MVA = {0.4: (0.4, 0.63, 1.0), 10.0: (10.0, 16.0, 25.0), 20.0: (16.0, 25.0, 40.0),
                    60.0: (40.0, 63.0), 132.0: (100.0, 160.0, 250.0),
                    400.0: (400.0, 500.0, 800.0)}  # fmt: skip
_LINE_KM = {0.4: (0.1, 1.5), 10.0: (1.0, 12.0), 20.0: (2.0, 25.0), 60.0: (5.0, 40.0),
            132.0: (10.0, 80.0), 400.0: (30.0, 200.0)}  # fmt: skip
_LINE_AMPS = {0.4: (150.0, 250.0, 400.0), 10.0: (200.0, 300.0, 400.0), 20.0: (300.0, 400.0, 500.0),
              60.0: (500.0, 800.0), 132.0: (600.0, 900.0, 1200.0),
              400.0: (1500.0, 2000.0, 2500.0)}  # fmt: skip
_SQRT3 = math.sqrt(3)
_NOISE_TABLE_SIZE = 9973  # prime, so the three types of one component never share a noise cycle


def _make_component(
    index: int, rng: random.Random, numbers: dict[str, int]
) -> tuple[dict[str, Any], tuple[float, float, float]]:
    """A realistic component (without id and version) and its typical (kV, A, MW) for generated readings.

    The first three are one of each type, so even a tiny fake exercises every field rule.
    """
    if index < len(COMPONENT_TYPES):
        kind = COMPONENT_TYPES[index]
    else:
        draw = rng.random()
        kind = "transformer" if draw < 0.35 else "line" if draw < 0.8 else "switch"
    numbers[kind] = numbers.get(kind, 0) + 1
    component: dict[str, Any] = dict.fromkeys(COMPONENT_FIELDS)
    component.update(
        name=f"{kind[0].upper()}-{numbers[kind]:04d}", type=kind, substation=rng.choice(_SUBSTATIONS)
    )
    if kind == "switch":
        component["status"] = "closed" if rng.random() < 0.85 else "open"
        kv = rng.choice((10.0, 20.0))
        rated_a = rng.choice((400.0, 630.0, 1250.0))
    else:
        kv = rng.choice(_VOLTAGES_KV)
        component["voltage_kv"] = kv
        if kind == "transformer":
            mva = rng.choice(_TRANSFORMER_MVA[kv])
            component["capacity_mva"] = mva
            rated_a = mva * 1000 / (_SQRT3 * kv)
        else:
            low, high = _LINE_KM[kv]
            component["length_km"] = round(rng.uniform(low, high), 1)
            rated_a = rng.choice(_LINE_AMPS[kv])
    amps = rated_a * rng.uniform(0.45, 0.7)
    return component, (kv, amps, _SQRT3 * kv * amps * 0.95 / 1000)


def _tick_factors(epoch: int) -> tuple[float, float, float]:
    """Daily load curve (peak mid-afternoon, a weekly swell); voltage sags a little as load rises."""
    hour = epoch % 86_400 / 3600
    day = epoch // 86_400
    load = (1 + 0.3 * math.sin(2 * math.pi * (hour - 9) / 24)) * (1 + 0.05 * math.sin(2 * math.pi * day / 7))
    return 1.0 - 0.02 * (load - 1), load, load


# -- public value types ------------------------------------------------------------------------------------


@dataclass
class Fault:
    """A scripted failure for the API requests whose "METHOD /path?query" contains `match` ("" = all).

    It affects the next `times` matching requests (-1: every one). Kinds: "status" answers `status` (with
    `Retry-After` if given) without doing anything; "reset" closes the connection without an answer and
    without doing anything; "lose_answer" performs the request, then resets: a committed write whose answer
    never arrived, which a client must not repeat blindly.
    """

    match: str = ""
    status: int = 500
    times: int = 1
    retry_after: str | None = None
    kind: str = "status"

    def __post_init__(self) -> None:
        # Faults also arrive as JSON through /_fake/faults: refuse wrong types now, not mid-request.
        for name, kinds in _FAULT_TYPES.items():
            value = getattr(self, name)
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise TypeError(f"fault field {name} cannot be {value!r}")
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")


_FAULT_TYPES: dict[str, tuple[type, ...]] = {
    "match": (str,),
    "status": (int,),
    "times": (int,),
    "retry_after": (str, type(None)),
    "kind": (str,),
}


class InvalidBody(ValueError):
    """A body or query the API refuses with 422; `errors` are FastAPI's items (`loc`, `msg`, `type`)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(json.dumps(errors, ensure_ascii=False))
        self.errors = errors


class _FieldError(Exception):
    def __init__(self, msg: str, kind: str) -> None:
        super().__init__(msg)
        self.msg = msg
        self.kind = kind


class _TimestampTexts(dict[int, str]):
    """Epoch seconds -> `YYYY-MM-DDTHH:MM:SSZ`, filled on first use: generated data has few distinct ones."""

    def __missing__(self, epoch: int) -> str:
        if len(self) > 1_000_000:
            self.clear()
        text = self[epoch] = _format_epoch(epoch)
        return text


# -- the state and the API ---------------------------------------------------------------------------------


class FakeGrid:
    """The remote state plus request handling, without sockets. Thread-safe: one lock guards everything."""

    def __init__(
        self,
        components: int = 0,
        measurements_per_component: int = 0,
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        accounts: Mapping[str, tuple[str, str]] | None = None,
        rate_limit_per_minute: int = 0,
    ) -> None:
        self.requests: list[tuple[str, str]] = []  # (method, path with query) of every API request
        self.faults: list[Fault] = []
        self.rate_limit_per_minute = rate_limit_per_minute  # 0: no limit
        self._accounts = {
            user: (password, frozenset(scopes.split()))
            for user, (password, scopes) in (DEFAULT_ACCOUNTS if accounts is None else accounts).items()
        }
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[frozenset[str], float]] = {}  # token -> (granted scopes, expires at)
        self._window: collections.deque[float] = collections.deque()
        self._version = 0  # the global counter: raised on every create and update of either resource
        self._components: dict[int, dict[str, Any]] = {}  # insertion order is id order: ids only grow
        self._next_component_id = 1
        # Measurements: position-aligned columns, ascending by id; a delete sets the version to _GONE and
        # leaves the row in place (listing skips it) until _compact_if_worth_it drops such rows in one pass.
        self._m_id = array("q")
        self._m_component = array("q")
        self._m_epoch = array("q")
        self._m_type = array("b")
        self._m_value = array("d")
        self._m_version = array("q")
        self._m_live = 0
        self._next_measurement_id = 1
        # Change log for `version_gt`: (version, id) per measurement create or update, ascending by version;
        # an entry superseded by a newer update or a delete gets the id _GONE_IN_LOG.
        self._log_version = array("q")
        self._log_id = array("q")
        self._log_gone = 0
        # The highest version in each block of 1024 rows: a scan for `version > N` skips whole blocks. A new
        # version is always the global maximum, so an update just writes it into its row's block.
        self._block_max = array("q")
        self._changes = 0  # measurement mutations so far: keys the cache below
        self._cache: dict[int, array[int]] = {}
        self._cache_at = 0
        self._timestamps = _TimestampTexts()
        self._populate(components, measurements_per_component, seed)

    # -- generated data ----------------------------------------------------------------------------------

    def _populate(self, components: int, measurements_per_component: int, seed: int) -> None:
        """Generate `components` components, then their measurements, interleaved by time as a collector
        would write them; the same seed gives the same data. Only into an empty fake."""
        rng = random.Random(seed)
        with self._lock:
            if self._components or self._m_id:
                raise RuntimeError("a fake is populated once, while empty")
            numbers: dict[str, int] = {}
            nominals = []
            for index in range(components):
                component, nominal = _make_component(index, rng, numbers)
                self._insert_component(component)
                nominals.append(nominal)
            self._generate_measurements(list(self._components), nominals, measurements_per_component, rng)

    def _generate_measurements(
        self,
        component_ids: list[int],
        nominals: list[tuple[float, float, float]],
        per_component: int,
        rng: random.Random,
    ) -> None:
        """Build the columns with C-level loops (repeated blocks, map over arrays): 3M rows in seconds."""
        count = len(component_ids) * per_component
        if count == 0:
            return
        full_ticks, remainder = divmod(per_component, len(MEASUREMENT_TYPES))
        width = len(MEASUREMENT_TYPES) * len(component_ids)
        blocks: list[tuple[int, int]] = [(full_ticks, len(MEASUREMENT_TYPES))]
        if remainder:
            blocks.append((1, remainder))  # a last tick with only the first `remainder` types
        components, types, bases = array("q"), array("b"), array("d")
        for ticks, kinds in blocks:
            components.extend(array("q", [c for c in component_ids for _ in range(kinds)]) * ticks)
            types.extend(array("b", list(range(kinds)) * len(component_ids)) * ticks)
            bases.extend(array("d", [n for nominal in nominals for n in nominal[:kinds]]) * ticks)
        epochs, factors = array("q"), array("d")
        for tick in range(full_ticks + (1 if remainder else 0)):
            epoch = GENERATED_START + tick * GENERATED_INTERVAL_S
            kinds = len(MEASUREMENT_TYPES) if tick < full_ticks else remainder
            epochs.extend(repeat(epoch, width if tick < full_ticks else kinds * len(component_ids)))
            factors.extend(array("d", _tick_factors(epoch)[:kinds]) * len(component_ids))
        noise = [1 + rng.gauss(0, 0.01) for _ in range(_NOISE_TABLE_SIZE)]
        readings = map(mul, map(mul, bases, factors), islice(cycle(noise), count))
        values = array("d", map(round, readings, repeat(3)))
        del bases, factors, readings  # peak memory: the columns below are taken over, not copied
        first_id, first_version = self._next_measurement_id, self._version + 1
        self._m_id = array("q", range(first_id, first_id + count))
        self._m_component, self._m_epoch, self._m_type, self._m_value = components, epochs, types, values
        self._m_version = array("q", range(first_version, first_version + count))
        self._log_version = array("q", self._m_version)
        self._log_id = array("q", self._m_id)
        self._block_max = _block_maxima(self._m_version)
        self._m_live += count
        self._next_measurement_id += count
        self._version += count
        self._changes += 1

    # -- direct state changes and reads, for tests: "someone else edited the grid" -----------------------

    @property
    def max_version(self) -> int:
        """The global counter: the highest version committed so far."""
        with self._lock:
            return self._version

    def create_component(
        self,
        name: str,
        type: str,
        substation: str,
        *,
        voltage_kv: float | None = None,
        capacity_mva: float | None = None,
        length_km: float | None = None,
        status: str | None = None,
    ) -> dict[str, Any]:
        """Create a component as the API would; raises InvalidBody. Returns it as the API returns it."""
        body = {"name": name, "type": type, "substation": substation, "voltage_kv": voltage_kv,
                "capacity_mva": capacity_mva, "length_km": length_km, "status": status}  # fmt: skip
        with self._lock:
            return dict(self._create_component(body))

    def update_component(self, component_id: int, **fields: Any) -> dict[str, Any]:
        """Partial update as the API would; raises KeyError for an unknown id and InvalidBody."""
        with self._lock:
            return dict(self._update_component(component_id, fields))

    def delete_component(self, component_id: int) -> None:
        """Delete a component and its measurements; raises KeyError for an unknown id."""
        with self._lock:
            self._delete_component(component_id)

    def create_measurement(
        self, component_id: int, timestamp: str, type: str, value: float
    ) -> dict[str, Any]:
        """Create a measurement as the API would (timestamp: ISO 8601 with an offset); raises InvalidBody."""
        body = {"component_id": component_id, "timestamp": timestamp, "type": type, "value": value}
        with self._lock:
            return self._measurement_dict(self._create_measurements([body], single=True)[0])

    def update_measurement(self, measurement_id: int, **fields: Any) -> dict[str, Any]:
        """Partial update as the API would; raises KeyError for an unknown id and InvalidBody."""
        with self._lock:
            return self._measurement_dict(self._update_measurement(measurement_id, fields))

    def delete_measurement(self, measurement_id: int) -> None:
        """Delete a measurement; raises KeyError for an unknown id."""
        with self._lock:
            self._kill_measurement(self._position(measurement_id))
            self._compact_if_worth_it()

    def components(self) -> Iterator[dict[str, Any]]:
        """Every component as the API returns it, by id (a snapshot)."""
        with self._lock:
            snapshot = [dict(component) for component in self._components.values()]
        yield from snapshot

    def measurements(self) -> Iterator[dict[str, Any]]:
        """Every measurement as the API returns it, by id; read 10,000 at a time, like a listing."""
        after_id = 0
        while True:
            with self._lock:
                positions = self._scan(bisect_right(self._m_id, after_id), -1, 10_000)
                rows = [self._measurement_dict(position) for position in positions]
            if not rows:
                return
            yield from rows
            after_id = rows[-1]["id"]

    def state(self) -> dict[str, int]:
        """Counts and the current max version, also served at GET /_fake/state for other processes."""
        with self._lock:
            return {
                "components": len(self._components),
                "measurements": self._m_live,
                "max_version": self._version,
                "requests": len(self.requests),
                "faults": len(self.faults),
            }

    def expire_tokens(self) -> int:
        """Invalidate every token issued so far (a server restart, a key rotation); returns how many."""
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
        kind: FaultKind = "status",
    ) -> Fault:
        """Script a failure (see `Fault`) for the next matching API requests."""
        fault = Fault(match=match, status=status, times=times, retry_after=retry_after, kind=kind)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    # -- components, with the lock held ------------------------------------------------------------------

    def _bump(self) -> int:
        self._version += 1
        return self._version

    def _insert_component(self, fields: dict[str, Any]) -> dict[str, Any]:
        component_id = self._next_component_id
        self._next_component_id += 1
        component = {"id": component_id, **{name: fields.get(name) for name in COMPONENT_FIELDS}}
        component["version"] = self._bump()
        self._components[component_id] = component
        return component

    def _create_component(self, body: Any) -> dict[str, Any]:
        cleaned = _check_component_fields(body, creating=True)
        _check_component_type(cleaned, None)
        return self._insert_component(cleaned)

    def _update_component(self, component_id: int, body: Any) -> dict[str, Any]:
        cleaned = _check_component_fields(body, creating=False)  # a malformed body is 422 before any 404
        component = self._components[component_id]
        _check_component_type(cleaned, component["type"])
        component.update(cleaned)
        component["version"] = self._bump()
        return component

    def _delete_component(self, component_id: int) -> None:
        del self._components[component_id]
        owned = list(compress(range(len(self._m_component)), map(component_id.__eq__, self._m_component)))
        for position in owned:
            if self._m_version[position] != _GONE:
                self._kill_measurement(position)
        self._compact_if_worth_it()

    # -- measurements, with the lock held ----------------------------------------------------------------

    def _position(self, measurement_id: int) -> int:
        """The row of a live measurement; KeyError when there is none."""
        position = bisect_left(self._m_id, measurement_id)
        if position == len(self._m_id) or self._m_id[position] != measurement_id:
            raise KeyError(measurement_id)
        if self._m_version[position] == _GONE:
            raise KeyError(measurement_id)
        return position

    def _create_measurements(self, items: list[Any], *, single: bool) -> list[int]:
        """Validate every item, then store all of them or none; the new rows' positions in order."""
        checked: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            loc: tuple[str | int, ...] = ("body",) if single else ("body", index)
            cleaned, found = _check_measurement_fields(item, loc, creating=True)
            errors.extend(found or self._unknown_component(cleaned, loc))
            checked.append(cleaned)
        if errors:
            raise InvalidBody(errors)
        return [self._append_measurement(cleaned) for cleaned in checked]

    def _append_measurement(self, cleaned: dict[str, Any]) -> int:
        measurement_id = self._next_measurement_id  # above every id ever used: appending keeps id order
        self._next_measurement_id += 1
        version = self._bump()
        self._m_id.append(measurement_id)
        self._m_component.append(cleaned["component_id"])
        self._m_epoch.append(cleaned["timestamp"])
        self._m_type.append(cleaned["type"])
        self._m_value.append(cleaned["value"])
        self._m_version.append(version)
        if (len(self._m_id) - 1) >> _BLOCK_BITS == len(self._block_max):
            self._block_max.append(version)
        else:
            self._block_max[-1] = version
        self._log_version.append(version)
        self._log_id.append(measurement_id)
        self._m_live += 1
        self._changes += 1
        return len(self._m_id) - 1

    def _update_measurement(self, measurement_id: int, body: Any) -> int:
        cleaned, errors = _check_measurement_fields(body, ("body",), creating=False)
        if errors:
            raise InvalidBody(errors)  # a malformed body is 422 before any 404, as in FastAPI
        position = self._position(measurement_id)
        errors = self._unknown_component(cleaned, ("body",))
        if errors:
            raise InvalidBody(errors)
        for name, column in (("component_id", self._m_component), ("timestamp", self._m_epoch),
                             ("type", self._m_type), ("value", self._m_value)):  # fmt: skip
            if name in cleaned:
                column[position] = cleaned[name]
        self._supersede(self._m_version[position])
        version = self._m_version[position] = self._block_max[position >> _BLOCK_BITS] = self._bump()
        self._log_version.append(version)
        self._log_id.append(measurement_id)
        self._changes += 1
        return position

    def _kill_measurement(self, position: int) -> None:
        self._supersede(self._m_version[position])
        self._m_version[position] = _GONE
        self._m_live -= 1
        self._changes += 1

    def _supersede(self, version: int) -> None:
        """Mark the change-log entry of `version` stale: versions are unique, so bisect finds it."""
        self._log_id[bisect_left(self._log_version, version)] = _GONE_IN_LOG
        self._log_gone += 1

    def _unknown_component(self, cleaned: dict[str, Any], loc: tuple[str | int, ...]) -> list[dict[str, Any]]:
        component_id = cleaned.get("component_id")
        if component_id is None or component_id in self._components:
            return []
        msg = f"Value error, component {component_id} does not exist"
        return [_error((*loc, "component_id"), msg, "value_error")]

    def _compact_if_worth_it(self) -> None:
        """Drop deleted rows and stale log entries once they outnumber the live ones (C-level passes)."""
        gone_rows = len(self._m_id) - self._m_live
        if gone_rows > max(65_536, self._m_live):
            keep = bytes(map(_GONE.__lt__, self._m_version))
            for name in ("_m_id", "_m_component", "_m_epoch", "_m_type", "_m_value", "_m_version"):
                column = getattr(self, name)
                setattr(self, name, array(column.typecode, compress(column, keep)))
            self._block_max = _block_maxima(self._m_version)
        if self._log_gone > max(65_536, len(self._log_id) - self._log_gone):
            keep = bytes(map(_GONE_IN_LOG.__ne__, self._log_id))
            self._log_version = array("q", compress(self._log_version, keep))
            self._log_id = array("q", compress(self._log_id, keep))
            self._log_gone = 0

    def _measurement_dict(self, position: int) -> dict[str, Any]:
        return {
            "id": self._m_id[position],
            "component_id": self._m_component[position],
            "timestamp": self._timestamps[self._m_epoch[position]],
            "type": MEASUREMENT_TYPES[self._m_type[position]],
            "value": self._m_value[position],
            "version": self._m_version[position],
        }

    def _render_measurements(self, positions: list[int]) -> str:
        """The rows' JSON objects joined by commas: one %-format per row, the columns read by C-level maps."""
        if not positions:
            return ""
        first, last = positions[0], positions[-1]
        if last - first == len(positions) - 1:  # contiguous, the usual case: slice the columns
            ids, components = self._m_id[first : last + 1], self._m_component[first : last + 1]
            epochs, types = self._m_epoch[first : last + 1], self._m_type[first : last + 1]
            values, versions = self._m_value[first : last + 1], self._m_version[first : last + 1]
        else:
            ids, components = _gather(self._m_id, positions), _gather(self._m_component, positions)
            epochs, types = _gather(self._m_epoch, positions), _gather(self._m_type, positions)
            values, versions = _gather(self._m_value, positions), _gather(self._m_version, positions)
        rows = zip(
            ids,
            components,
            map(self._timestamps.__getitem__, epochs),
            map(MEASUREMENT_TYPES.__getitem__, types),
            values,
            versions,
            strict=True,
        )
        return ",".join(map(_MEASUREMENT_JSON.__mod__, rows))

    # -- listing -----------------------------------------------------------------------------------------

    def _scan(self, start: int, threshold: int, wanted: int) -> list[int]:
        """Positions from `start` on whose version is above `threshold` (-1: every live row), at most
        `wanted`: block by block, skipping the blocks whose highest version is not above it."""
        versions, maxima = self._m_version, self._block_max
        found: list[int] = []
        first_block = start >> _BLOCK_BITS
        candidates = compress(range(first_block, len(maxima)), map(threshold.__lt__, maxima[first_block:]))
        for block in candidates:
            low = max(start, block << _BLOCK_BITS)
            high = min(len(versions), (block + 1) << _BLOCK_BITS)
            found.extend(compress(range(low, high), map(threshold.__lt__, versions[low:high])))
            if len(found) >= wanted:
                break
        return found[:wanted]

    def _changed_positions(self, threshold: int, tail: int) -> array[int]:
        """The rows of the measurements changed after `threshold`, in id order, from the change log whose
        entries from `tail` on are those changes. Computed once per listing and reused by its later pages
        until something changes (rows only move when something changes: a compaction)."""
        if self._cache_at != self._changes:
            self._cache.clear()
            self._cache_at = self._changes
        chosen = self._cache.get(threshold)
        if chosen is None:
            if len(self._cache) > 16:
                self._cache.clear()
            changed = sorted(filter(_GONE_IN_LOG.__ne__, self._log_id[tail:]))
            chosen = self._cache[threshold] = array("q", map(partial(bisect_left, self._m_id), changed))
        return chosen

    def _page_measurements(self, after_id: int, version_gt: int | None, limit: int) -> tuple[list[int], bool]:
        """The positions of one page, and whether more rows follow it.

        Few changes since `version_gt` (an incremental sync): the change log names them; sorting those ids
        once per listing beats scanning millions of rows. Many changes: scan the version column, whose block
        index skips the unchanged stretches (generated versions ascend with id: old rows come in runs).
        """
        start = bisect_right(self._m_id, after_id)
        threshold = -1 if version_gt is None else max(version_gt, -1)
        if threshold >= 0:
            tail = bisect_right(self._log_version, threshold)
            if len(self._log_version) - tail <= max(4096, self._m_live // 8):
                chosen = self._changed_positions(threshold, tail)
                first = bisect_left(chosen, start)
                positions = chosen[first : first + limit + 1].tolist()
                return positions[:limit], len(positions) > limit
        positions = self._scan(start, threshold, limit + 1)
        return positions[:limit], len(positions) > limit

    def _list(self, resource: str, query: str) -> Response:
        params = dict(parse_qsl(query, keep_blank_values=True))  # a repeated parameter: the last one wins
        errors: list[dict[str, Any]] = []
        limit = _query_int(params, "limit", DEFAULT_LIMIT, errors, low=1, high=MAX_LIMIT)
        version_gt = _query_int(params, "version_gt", None, errors)
        after_id, began = 0, self._version
        if "after" in params:
            try:
                after_id, began = _decode_cursor(params["after"])
            except ValueError:
                errors.append(
                    _error(("query", "after"), "Value error, not a cursor from this API", "value_error")
                )
        if errors:
            raise InvalidBody(errors)
        assert limit is not None
        if resource == "components":
            threshold = -1 if version_gt is None else version_gt
            rows = [c for i, c in self._components.items() if i > after_id and c["version"] > threshold]
            data = json.dumps(rows[:limit], ensure_ascii=False, separators=(",", ":"))[1:-1]
            more = len(rows) > limit
            last_id = rows[limit - 1]["id"] if more else 0
        else:
            positions, more = self._page_measurements(after_id, version_gt, limit)
            data = self._render_measurements(positions)
            last_id = self._m_id[positions[-1]] if more else 0
        # Every page of a listing repeats the counter of its first page, carried in the cursor: that is the
        # version the spec promises a completed listing has seen everything up to. The counter at a later
        # page would claim changes behind the cursor that this listing never saw.
        following = json.dumps(_encode_cursor(last_id, began) if more else None)
        body = f'{{"data":[{data}],"next":{following},"max_version":{began}}}'
        return Response(200, body.encode(), dict(_JSON))

    # -- HTTP --------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one HTTP request: the API under /api plus the /_fake/ control endpoints."""
        method = method.upper()
        url = urlsplit(path)
        if url.path.startswith("/_fake/"):
            return self._handle_control(method, url.path, body)
        with self._lock:
            self.requests.append((method, path))
            fault = self._take_fault(f"{method} {path}")
            if fault is not None and fault.kind == "reset":
                return Response(0, b"", {}, action="reset")
            if fault is not None and fault.kind == "status":
                return self._fault_response(fault)
            response = self._handle_api(method, url.path, url.query, headers, body)
            if fault is not None:  # lose_answer: the request took effect, its answer never arrives
                return Response(0, b"", {}, action="reset")
            return response

    def _take_fault(self, request_line: str) -> Fault | None:
        for fault in self.faults:
            if fault.times != 0 and fault.match in request_line:
                if fault.times > 0:
                    fault.times -= 1
                self.faults = [f for f in self.faults if f.times != 0]
                return fault
        return None

    def _fault_response(self, fault: Fault) -> Response:
        headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
        detail = "Too Many Requests" if fault.status == 429 else f"Simulated server failure ({fault.status})"
        return json_response(fault.status, {"detail": detail}, **headers)

    def _handle_api(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        limited = self._rate_limited()
        if limited is not None:
            return limited
        try:
            if path == f"{BASE_PATH}/token":
                if method != "POST":
                    return json_response(405, {"detail": "Method Not Allowed"}, Allow="POST")
                return self._issue_token(body)
            route = _ROUTE.fullmatch(path)
            if route is None:
                return json_response(404, {"detail": "Not Found"})
            resource, raw_id = route.groups()
            allowed = ("GET", "POST") if raw_id is None else ("GET", "PUT", "DELETE")
            if method not in allowed:
                return json_response(405, {"detail": "Method Not Allowed"}, Allow=", ".join(allowed))
            scopes = self._bearer_scopes(headers)
            if scopes is None:
                return json_response(401, {"detail": "Not authenticated"}, **{"WWW-Authenticate": "Bearer"})
            if ("user" if method == "GET" else "manager") not in scopes:
                return json_response(403, {"detail": "Not enough permissions"})
            if raw_id is None:
                return self._list(resource, query) if method == "GET" else self._create(resource, body)
            if not _INTEGER.fullmatch(raw_id):
                loc = ("path", f"{resource[:-1]}_id")
                msg = "Input should be a valid integer, unable to parse string as an integer"
                raise InvalidBody([_error(loc, msg, "int_parsing")])
            return self._one(method, resource, int(raw_id), body)
        except InvalidBody as exc:
            return json_response(422, {"detail": exc.errors})
        except KeyError:  # only an unknown component or measurement id raises it on this path
            return json_response(404, {"detail": "Not found"})

    def _create(self, resource: str, body: bytes) -> Response:
        data = _json_body(body)
        if resource == "components":
            return json_response(201, self._create_component(data))
        if isinstance(data, list):
            if len(data) > MAX_BATCH:
                msg = f"List should have at most {MAX_BATCH} items after validation, not {len(data)}"
                raise InvalidBody([_error(("body",), msg, "too_long")])
            rendered = self._render_measurements(self._create_measurements(data, single=False))
            return Response(201, f"[{rendered}]".encode(), dict(_JSON))
        positions = self._create_measurements([data], single=True)
        return Response(201, self._render_measurements(positions).encode(), dict(_JSON))

    def _one(self, method: str, resource: str, object_id: int, body: bytes) -> Response:
        if resource == "components":
            if method == "GET":
                return json_response(200, self._components[object_id])
            if method == "PUT":
                return json_response(200, self._update_component(object_id, _json_body(body)))
            self._delete_component(object_id)
            return Response(204, b"", {})
        if method == "GET":
            position = self._position(object_id)
        elif method == "PUT":
            position = self._update_measurement(object_id, _json_body(body))
        else:
            self._kill_measurement(self._position(object_id))
            self._compact_if_worth_it()
            return Response(204, b"", {})
        return Response(200, self._render_measurements([position]).encode(), dict(_JSON))

    def _issue_token(self, body: bytes) -> Response:
        """OAuth2 password grant as FastAPI's OAuth2PasswordRequestForm reads it; grants the requested scopes
        that the account holds, and none when none were requested."""
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        errors = [_error(("body", name), "Field required", "missing") for name in ("username", "password")
                  if name not in form]  # fmt: skip
        if form.get("grant_type", "password") != "password":
            errors.insert(0, _error(("body", "grant_type"), "String should match pattern '^password$'",
                                    "string_pattern_mismatch"))  # fmt: skip
        if errors:
            raise InvalidBody(errors)
        account = self._accounts.get(form["username"])
        if account is None or not secrets.compare_digest(account[0].encode(), form["password"].encode()):
            return json_response(401, {"detail": "Incorrect username or password"})
        granted = [scope for scope in dict.fromkeys(form.get("scope", "").split()) if scope in account[1]]
        now = self._clock()
        if len(self._tokens) > 1000:
            self._tokens = {t: entry for t, entry in self._tokens.items() if entry[1] > now}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = (frozenset(granted), now + TOKEN_LIFETIME_S)
        answer = {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_LIFETIME_S,
                  "scope": " ".join(granted)}  # fmt: skip
        return json_response(200, answer, **{"Cache-Control": "no-store"})

    def _bearer_scopes(self, headers: Mapping[str, str]) -> frozenset[str] | None:
        """The scopes of a valid bearer token, or None for a missing, unknown or expired one."""
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = value.strip().partition(" ")
        entry = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if entry is None or self._clock() >= entry[1]:
            return None
        return entry[0]

    def _rate_limited(self) -> Response | None:
        if self.rate_limit_per_minute <= 0:
            return None
        now = self._clock()
        while self._window and self._window[0] <= now - RATE_WINDOW_S:
            self._window.popleft()
        if len(self._window) >= self.rate_limit_per_minute:
            wait = max(1, math.ceil(self._window[0] + RATE_WINDOW_S - now))
            return json_response(429, {"detail": "Too Many Requests"}, **{"Retry-After": str(wait)})
        self._window.append(now)
        return None

    def _handle_control(self, method: str, path: str, body: bytes) -> Response:
        """Hooks for tests and benchmarks in other processes; not API requests: never logged or faulted."""
        if path == "/_fake/state" and method == "GET":
            return json_response(200, self.state())
        if path == "/_fake/expire-tokens" and method == "POST":
            return json_response(200, {"expired": self.expire_tokens()})
        if path == "/_fake/faults" and method == "POST":
            try:
                data = json.loads(body)
                items = data if isinstance(data, list) else [data]
                added = [Fault(**item) for item in items]
            except (ValueError, TypeError) as exc:
                return json_response(400, {"detail": str(exc)})
            with self._lock:
                self.faults.extend(added)
                return json_response(200, {"faults": len(self.faults)})
        if path == "/_fake/faults" and method == "DELETE":
            self.clear_faults()
            return json_response(200, {"faults": 0})
        return json_response(404, {"detail": "Not Found"})


# -- validation, FastAPI style -----------------------------------------------------------------------------


def _error(loc: tuple[str | int, ...], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": kind}


def _json_body(body: bytes) -> Any:
    if not body.strip():
        raise InvalidBody([_error(("body",), "Field required", "missing")])
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidBody([_error(("body", exc.pos), "JSON decode error", "json_invalid")]) from None
    except ValueError:  # not UTF-8
        raise InvalidBody([_error(("body", 0), "JSON decode error", "json_invalid")]) from None


def _query_int(
    params: Mapping[str, str],
    name: str,
    default: int | None,
    errors: list[dict[str, Any]],
    *,
    low: int | None = None,
    high: int | None = None,
) -> int | None:
    raw = params.get(name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw.strip()):
        msg = "Input should be a valid integer, unable to parse string as an integer"
        errors.append(_error(("query", name), msg, "int_parsing"))
        return default
    value = int(raw)
    if low is not None and value < low:
        msg = f"Input should be greater than or equal to {low}"
        errors.append(_error(("query", name), msg, "greater_than_equal"))
    elif high is not None and value > high:
        msg = f"Input should be less than or equal to {high}"
        errors.append(_error(("query", name), msg, "less_than_equal"))
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _FieldError("Input should be a valid number", "float_type")
    try:
        number = float(value)
    except OverflowError:
        raise _FieldError("Input should be a finite number", "finite_number") from None
    if not math.isfinite(number):
        raise _FieldError("Input should be a finite number", "finite_number")
    return number


def _choice(value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed or not isinstance(value, str):
        quoted = [f"'{option}'" for option in allowed]
        raise _FieldError(f"Input should be {', '.join(quoted[:-1])} or {quoted[-1]}", "literal_error")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _FieldError("Input should be a valid string", "string_type")
    return value


def _clean_component_field(name: str, value: Any) -> Any:
    if name in ("name", "substation"):
        return _text(value)
    if name == "type":
        return _choice(value, COMPONENT_TYPES)
    if value is None:
        return None
    if name == "status":
        return _choice(value, SWITCH_STATUSES)
    return _number(value)


def _check_component_fields(body: Any, *, creating: bool) -> dict[str, Any]:
    """The known fields of a create or partial update, each well-formed; unknown keys (`id`, `version`...)
    are ignored, as FastAPI does."""
    if not isinstance(body, dict):
        raise InvalidBody([_error(("body",), _NOT_OBJECT, "model_attributes_type")])
    errors: list[dict[str, Any]] = []
    cleaned: dict[str, Any] = {}
    for name in COMPONENT_FIELDS:
        if name not in body:
            if creating and name in REQUIRED_COMPONENT_FIELDS:
                errors.append(_error(("body", name), "Field required", "missing"))
            continue
        try:
            cleaned[name] = _clean_component_field(name, body[name])
        except _FieldError as exc:
            errors.append(_error(("body", name), exc.msg, exc.kind))
    if errors:
        raise InvalidBody(errors)
    return cleaned


def _check_component_type(cleaned: dict[str, Any], current_type: str | None) -> None:
    """The type never changes, and a field of another type may only be sent as null."""
    kind = cleaned.get("type", current_type)
    if current_type is not None and kind != current_type:
        msg = f"Value error, the type of a component cannot be changed (it is a {current_type})"
        raise InvalidBody([_error(("body", "type"), msg, "value_error")])
    errors = [
        _error(("body", name), f"Value error, {name} is only for {' and '.join(kinds)} components, "
               f"it must be null for a {kind}", "value_error")
        for name, kinds in TYPED_FIELDS.items()
        if cleaned.get(name) is not None and kind not in kinds
    ]  # fmt: skip
    if errors:
        raise InvalidBody(errors)


def _check_measurement_fields(
    body: Any, loc: tuple[str | int, ...], *, creating: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The fields of a create or partial update as stored (epoch seconds, a type code, a float), and the
    errors found; existence of the component is checked by the caller, which knows the components."""
    if not isinstance(body, dict):
        return {}, [_error(loc, _NOT_OBJECT, "model_attributes_type")]
    cleaned: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for name in MEASUREMENT_FIELDS:
        if name not in body:
            if creating:
                errors.append(_error((*loc, name), "Field required", "missing"))
            continue
        value = body[name]
        try:
            if name == "component_id":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise _FieldError("Input should be a valid integer", "int_type")
                cleaned[name] = value
            elif name == "timestamp":
                cleaned[name] = _parse_timestamp(value)
            elif name == "type":
                cleaned[name] = MEASUREMENT_TYPES.index(_choice(value, MEASUREMENT_TYPES))
            else:
                cleaned[name] = _number(value)
        except _FieldError as exc:
            errors.append(_error((*loc, name), exc.msg, exc.kind))
    return cleaned, errors


def _parse_timestamp(value: Any) -> int:
    """ISO 8601 with an offset -> UTC epoch seconds (fractions dropped: the API stores whole seconds)."""
    if not isinstance(value, str):
        raise _FieldError("Input should be a valid datetime", "datetime_type")
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise _FieldError("Input should be a valid datetime in ISO 8601 format", "datetime_parsing") from None
    if parsed.utcoffset() is None:
        raise _FieldError("Input should have timezone info", "timezone_aware")
    epoch = (parsed - _EPOCH) // _SECOND
    try:
        _format_epoch(epoch)
    except OverflowError:
        raise _FieldError(
            "Input should be a valid datetime, out of range in UTC", "datetime_parsing"
        ) from None
    return epoch


def _format_epoch(epoch: int) -> str:
    moment = _EPOCH + datetime.timedelta(seconds=epoch)
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}Z"  # %Y does not pad years before 1000


def _block_maxima(versions: array[int]) -> array[int]:
    size = 1 << _BLOCK_BITS
    return array("q", (max(versions[i : i + size]) for i in range(0, len(versions), size)))


def _gather(column: array[Any], positions: list[int]) -> array[Any]:
    return array(column.typecode, map(column.__getitem__, positions))


def _encode_cursor(last_id: int, began: int) -> str:
    """Opaque to clients: the last id of the page and the max_version of the listing's first page."""
    return base64.urlsafe_b64encode(f"{last_id}.{began}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        last_id, began = text.split(".")
        return int(last_id), int(began)
    except (ValueError, binascii.Error):
        raise ValueError(cursor) from None


# -- real HTTP ---------------------------------------------------------------------------------------------


class FakeGridServer(LoopbackServer):
    """FakeGrid on a loopback port, served by a background thread; `url` is the API URI. Binds at once."""

    def __init__(self, fake: FakeGrid, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(fake, host, port, base_path=BASE_PATH, name="fake-grid")
        self.fake = fake


def serve_forever(
    host: str,
    port: int,
    components: int,
    measurements_per_component: int,
    seed: int = 0,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGTERM or Ctrl-C, then stop cleanly. Binds before generating: a busy port fails fast."""
    fake = FakeGrid(seed=seed)
    server = FakeGridServer(fake, host, port)
    serve_until_stopped(
        server, lambda: fake._populate(components, measurements_per_component, seed), on_ready
    )
