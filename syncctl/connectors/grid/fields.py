"""The fields of the grid's components and measurements, and input checked before anything is sent.

`grid-api.md` is the source: the kinds, the allowed values, which component type each optional field
belongs to, and that timestamps need an offset. Checking here gives one clear line (exit 2) before any
request, and lets a measurement file be refused whole instead of failing at its fifth batch. Timestamps
are sent as the API stores them (UTC, whole seconds, `YYYY-MM-DDTHH:MM:SSZ`), so what was sent can be
recognised in a listing when an answer is lost.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

from syncctl.core.errors import UsageError
from syncctl.core.sanitize import one_line

COMPONENT_TYPES = ("transformer", "line", "switch")
MEASUREMENT_TYPES = ("voltage", "current", "power")
SWITCH_STATUSES = ("open", "closed")

# kind of each writable field: str, int, float, timestamp, or a tuple of allowed strings
COMPONENT_FIELDS: dict[str, Any] = {
    "name": "str",
    "type": COMPONENT_TYPES,
    "substation": "str",
    "voltage_kv": "float",
    "capacity_mva": "float",
    "length_km": "float",
    "status": SWITCH_STATUSES,
}
MEASUREMENT_FIELDS: dict[str, Any] = {
    "component_id": "int",
    "timestamp": "timestamp",
    "type": MEASUREMENT_TYPES,
    "value": "float",
}
FIELDS = {"components": COMPONENT_FIELDS, "measurements": MEASUREMENT_FIELDS}
REQUIRED = {"components": ("name", "type", "substation"), "measurements": tuple(MEASUREMENT_FIELDS)}
SERVER_FIELDS = ("id", "version")
# The component types an optional field belongs to; for the others it must be null.
TYPED_FIELDS: dict[str, tuple[str, ...]] = {
    "voltage_kv": ("transformer", "line"),
    "capacity_mva": ("transformer",),
    "length_km": ("line",),
    "status": ("switch",),
}
MAX_ID = 2**63 - 1
NOUN = {"components": "component", "measurements": "measurement"}

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def api_timestamp(moment: datetime.datetime) -> str:
    """An aware time as the API stores it: UTC, whole seconds (fractions dropped), `YYYY-MM-DDTHH:MM:SSZ`."""
    utc = moment.astimezone(datetime.UTC).replace(microsecond=0)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}Z"  # %Y does not pad years before 1000


def normal_timestamp(text: str) -> str:
    """An ISO 8601 time with an offset as the API stores it; without an offset it is refused, as the API
    refuses it (422), rather than guessed."""
    try:
        parsed = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time such as 2025-01-01T12:00:00Z") from None
    if parsed.utcoffset() is None:
        raise ValueError(f"{text!r} has no offset; add Z or +01:00 (the API refuses local times)")
    try:
        return api_timestamp(parsed)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range in UTC") from None


def _shown(value: Any) -> str:
    """A value in a message: text quoted as Python does (as --field values are shown), the rest as JSON."""
    return repr(value)[:60] if isinstance(value, str) else json.dumps(value)[:60]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{_shown(value)} is not a number")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{value} is too large") from None
    if not math.isfinite(number):
        raise ValueError(f"{value} is not a finite number")
    return number


def check_value(resource: str, name: str, value: Any) -> Any:
    """One value from JSON input, as the API takes it; ValueError says what is wrong."""
    kind = FIELDS[resource][name]
    if value is None:
        if name in REQUIRED[resource]:
            raise ValueError("cannot be null")
        return None
    if isinstance(kind, tuple):
        if value not in kind or not isinstance(value, str):
            raise ValueError(f"{_shown(value)} is not one of {', '.join(kind)}")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"{_shown(value)} is not a string")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
            raise ValueError(f"{_shown(value)} is not a positive whole number")
        return value
    if kind == "timestamp":
        if not isinstance(value, str):
            raise ValueError(f"{_shown(value)} is not a time")
        return normal_timestamp(value)
    return _number(value)


def parse_text(resource: str, name: str, text: str) -> Any:
    """One value given as text (`--field k=v`, a CSV cell), as the API takes it."""
    kind = FIELDS[resource][name]
    stripped = text.strip()
    if stripped.lower() == "null" and name not in REQUIRED[resource]:
        return None
    if kind == "int":
        if not (stripped.isascii() and stripped.isdigit()):
            raise ValueError(f"{text!r} is not a positive whole number")
        return check_value(resource, name, int(stripped))
    if kind == "float":
        try:
            number = float(stripped) if stripped.isascii() else math.nan
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        return check_value(resource, name, number)
    return check_value(resource, name, stripped if kind != "str" else text)


def check_names(resource: str, names: Iterable[str]) -> None:
    for name in names:
        if name in SERVER_FIELDS:
            raise UsageError(f"field {name!r} is set by the grid API and cannot be written")
        if name not in FIELDS[resource]:
            known = ", ".join(FIELDS[resource])
            raise UsageError(f"unknown {NOUN[resource]} field {name!r} (the fields are {known})")


def parse_specs(resource: str, specs: Iterable[str]) -> dict[str, Any]:
    """`--field KEY=VALUE` options as a body; a malformed one is a UsageError naming it."""
    body: dict[str, Any] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--field takes KEY=VALUE, got {one_line(spec, 80)!r}")
        check_names(resource, [name])
        try:
            body[name] = parse_text(resource, name, text)
        except ValueError as exc:
            raise UsageError(f"--field {name}: {exc}") from None
    return body


def check_body(resource: str, loaded: Mapping[str, Any], *, creating: bool, where: str) -> dict[str, Any]:
    """A create or update body from JSON input: known names, values of the right kind, required fields
    present (creating), and no field of another component type. `where` starts each message."""
    if not isinstance(loaded, Mapping):
        raise UsageError(f"{where}: expected a JSON object of {NOUN[resource]} fields")
    check_names(resource, [str(name) for name in loaded])
    body: dict[str, Any] = {}
    for name, value in loaded.items():
        try:
            body[name] = check_value(resource, name, value)
        except ValueError as exc:
            raise UsageError(f"{where}: {name} {exc}") from None
    if creating:
        missing = [name for name in REQUIRED[resource] if body.get(name) is None]
        if missing:
            raise UsageError(f"{where}: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required")
    if resource == "components" and body.get("type") is not None:
        for name, kinds in TYPED_FIELDS.items():
            if body.get(name) is not None and body["type"] not in kinds:
                raise UsageError(
                    f"{where}: {name} is only for {' and '.join(kinds)} components, not a {body['type']}"
                )
    return body


# -- files -------------------------------------------------------------------------------------------------


def read_object_file(path: Path) -> dict[str, Any]:
    """The one JSON object of fields in --from-file; a UTF-8 BOM is fine."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8-sig"))
    except IsADirectoryError:
        raise UsageError(f"cannot read {path}: it is a folder") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise UsageError(f"{path} is not valid JSON: {one_line(str(exc), 200)}") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"{path} must hold one JSON object of fields")
    return loaded


def read_measurement_items(path: Path) -> Iterator[tuple[str, Any]]:
    """Each measurement in a file, with where it is (`F line 12`, `F item 3`), read as it goes.

    The format is told by the content, not the name: `[` starts a JSON array, `{` one JSON object or
    JSON Lines (one object a line), anything else is CSV with a header row. Files are read twice (once to
    check everything, once to send), so JSON Lines and CSV are streamed; a JSON array is parsed whole.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            first = _first_char(stream)
            stream.seek(0)  # the decoder starts over and skips a byte-order mark again
            if first == "[":
                yield from _json_array(path, stream)
            elif first == "{":
                yield from _json_lines(path, stream)
            elif first == "":
                return
            else:
                yield from _csv_rows(path, stream)
    except IsADirectoryError:
        raise UsageError(f"cannot read {path}: it is a folder") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None


def _first_char(stream: TextIO) -> str:
    while True:
        chunk = stream.read(4096)
        if not chunk:
            return ""
        stripped = chunk.lstrip()
        if stripped:
            return stripped[0]


def _json_array(path: Path, stream: TextIO) -> Iterator[tuple[str, Any]]:
    try:
        loaded = json.load(stream)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{path} is not valid JSON: {one_line(str(exc), 200)}") from None
    for number, item in enumerate(loaded, start=1):
        yield f"{path} item {number}", item


def _json_lines(path: Path, stream: TextIO) -> Iterator[tuple[str, Any]]:
    """JSON Lines; a file that is one pretty-printed object (not one a line) is read as that object."""
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line.rstrip("\r\n"))
        except (ValueError, RecursionError) as exc:
            if number == 1:  # `{` on a line of its own: one object over several lines
                stream.seek(0)
                yield from _one_object(path, stream)
                return
            reason = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise UsageError(f"{path} line {number} is not valid JSON: {one_line(reason, 200)}") from None
        yield f"{path} line {number}", item


def _one_object(path: Path, stream: TextIO) -> Iterator[tuple[str, Any]]:
    text = stream.read()
    try:
        loaded = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{path} is not valid JSON: {one_line(str(exc), 200)}") from None
    yield str(path), loaded


def _csv_rows(path: Path, stream: TextIO) -> Iterator[tuple[str, Any]]:
    """CSV with a header row naming measurement fields; values are typed here, an empty cell is missing."""
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return
    names = [name.strip() for name in header]
    check_names("measurements", names)
    if len(set(names)) != len(names):
        raise UsageError(f"{path}: a column appears twice in the header")
    for row in reader:
        where = f"{path} line {reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise UsageError(f"{where}: {len(row)} values for {len(names)} columns")
        item: dict[str, Any] = {}
        for name, cell in zip(names, row, strict=True):
            if not cell.strip():
                continue
            try:
                item[name] = parse_text("measurements", name, cell)
            except ValueError as exc:
                raise UsageError(f"{where}: {name} {exc}") from None
        yield where, item
