"""What syncctl knows about the fields of an Intempus case: their kinds, and which ones a client may write.

The knowledge comes from the captured responses in the fixtures and `intempus-api.md`. A field Intempus
starts sending that is not listed here is still mirrored (it becomes a new column); it is only refused as
input to `syncctl case create/update` unless the mirror has already seen it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from syncctl.core.errors import UsageError

# kinds: bool, int, str, decimal (a decimal string), date ("YYYY-MM-DD"), uri (a link to another record),
# uri_list (a list of links), json (any list or object), any (unknown: value kept as given).
WRITABLE: dict[str, str] = {
    "active": "bool",
    "all_employees_may_add_work_reports": "bool",
    "all_worktypes_may_used_in_work_reports": "bool",
    "case_group": "uri",
    "case_state": "uri",
    "city": "str",
    "co_responsible": "uri",
    "country": "str",
    "customer": "uri",
    "department": "uri",
    "end_date": "date",
    "file_upload_required": "bool",
    "geofence": "bool",
    "hour_budget": "decimal",
    "latitude": "decimal",
    "longitude": "decimal",
    "name": "str",
    "notes": "str",
    "number": "str",
    "parent": "uri",
    "permit_new_workreports": "bool",
    "priority": "any",
    "remarks_required": "bool",
    "responsible": "uri",
    "responsibles": "uri_list",
    "start_date": "date",
    "street_address": "str",
    "zip_code": "str",
}

READ_ONLY: dict[str, str] = {
    "id": "int",
    "resource_uri": "str",
    "logical_timestamp": "int",
    "uuid": "str",
    "creation_id": "str",
    "creation_date": "date",
    "number_of_children": "int",
    "root_parent": "uri",
    "case_group_full": "uri",
    "case_state_id": "str",
    "case_state_name": "str",
    "co_responsible_id": "str",
    "co_responsible_name": "str",
    "customer_city": "str",
    "customer_country": "str",
    "customer_id": "str",
    "customer_latitude": "decimal",
    "customer_longitude": "decimal",
    "customer_name": "str",
    "customer_street_address": "str",
    "customer_zip_code": "str",
    "department_id": "str",
    "department_name": "str",
    "parent_name": "str",
    "responsible_id": "str",
    "responsible_name": "str",
}

KNOWN: dict[str, str] = {**READ_ONLY, **WRITABLE}

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_URI = re.compile(r"/web/v1/[a-z_]+/\d+/")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def is_writable(name: str) -> bool:
    return name in WRITABLE or (name not in READ_ONLY and not name.endswith(("_id", "_name")))


def parse_value(name: str, text: str) -> Any:
    """Turn `--field name=text` into the value Intempus expects; malformed input is a UsageError."""
    kind = KNOWN.get(name, "any")
    if text.lower() == "null" and kind not in ("str",):
        return None
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise UsageError(f"field {name} takes true or false, got {text!r}")
    if kind == "date":
        if not _DATE.fullmatch(text):
            raise UsageError(f"field {name} takes a date YYYY-MM-DD, got {text!r}")
        return text
    if kind == "decimal":
        try:
            Decimal(text)
        except InvalidOperation:
            raise UsageError(f"field {name} takes a decimal number like 155.50, got {text!r}") from None
        if not Decimal(text).is_finite():
            raise UsageError(f"field {name} takes a finite decimal number, got {text!r}")
        return text
    if kind == "uri":
        if not _URI.fullmatch(text):
            raise UsageError(f"field {name} takes a link like /web/v1/{name}/123/, got {text!r}")
        return text
    if kind == "uri_list":
        items = [item.strip() for item in text.split(",") if item.strip()]
        for item in items:
            if not _URI.fullmatch(item):
                raise UsageError(f"field {name} takes comma-separated links like /web/v1/employee/1/")
        return items
    return text


def check_api_value(name: str, value: Any) -> Any:
    """Validate one value from a JSON file against the field's kind; returns it unchanged."""
    kind = KNOWN.get(name, "any")
    if value is None or kind in ("any", "json"):
        return value
    expected: dict[str, type | tuple[type, ...]] = {"bool": bool, "int": int, "float": (int, float),
                                                    "uri_list": list}  # fmt: skip
    if kind in expected:
        if not isinstance(value, expected[kind]):
            raise UsageError(f"field {name} must be {kind}, got {json.dumps(value)}")
        return value
    if not isinstance(value, str):
        raise UsageError(f"field {name} must be a string, got {json.dumps(value)}")
    return parse_value(name, value)


def check_writable(names: Iterable[str], mirrored: Iterable[str] = ()) -> None:
    """Refuse unknown and server-owned field names before any request is sent."""
    known = set(KNOWN) | set(mirrored)
    for name in names:
        if name not in known:
            raise UsageError(f"unknown field {name!r} (see `syncctl case get` for the fields of a case)")
        if not is_writable(name):
            raise UsageError(f"field {name!r} is set by Intempus and cannot be written")


def request_body(
    loaded: Mapping[str, Any], specs: Iterable[str], mirrored: Iterable[str] = ()
) -> dict[str, Any]:
    """A create/update body from a JSON object and `KEY=VALUE` specs (which win), checked before sending."""
    mirrored = list(mirrored)
    check_writable(loaded, mirrored)
    body = {name: check_api_value(name, value) for name, value in loaded.items()}
    for spec in specs:
        name, sep, text = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--field takes KEY=VALUE, got {spec!r}")
        check_writable([name], mirrored)
        body[name] = parse_value(name, text)
    return body
