"""Sierra's item rules as pure functions: the mirrored record, the PUT body a local edit becomes, barcodes,
and the `--field k=v` edits of `syncctl sierra item update`.

Sierra reads and writes items in different shapes (sierra-api.md): `barcode`/`callNumber` on read are
`barcodes`/`callNumbers` lists on write; `location` and `status` are objects on read and codes on write;
`itemType` reads as a display string ("Book") but is written as its number (fixed field 61); fixed fields
are written as `{number: {"value": v}}`. Keeping the translation here lets tests check it without HTTP.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncctl.core.errors import UsageError, ValidationError

log = logging.getLogger("syncctl.sierra")

Item = dict[str, Any]

# The mirrored fields a local edit may change, in the order a PUT body lists them.
WRITABLE = ("itemType", "location", "status", "barcode", "callNumber", "fixedFields", "varFields")
IUSE3_FIELD = "74"  # internal-use count [seen]
INVDA_LABEL = "INVDA"
# Fixed fields Sierra keeps itself (record type, record number, created, updated): never sent.
SERVER_OWNED_FIXED_FIELDS = frozenset({"80", "81", "83", "84"})
BARCODE_FORM = "14 to 16 digits, optionally followed by one letter or digit (e.g. 31234000123456)"
_BARCODE = re.compile(r"[0-9]{14,16}[A-Za-z0-9]?")
_FIXED_NUMBER = re.compile(r"[0-9]{1,5}")


def is_writable(name: str) -> bool:
    return name in WRITABLE


def to_record(entry: Mapping[str, Any], number: int) -> Item:
    """A listed or read item as the mirror stores it: the id as an integer, everything else as sent."""
    record = dict(entry)
    record["id"] = number
    return record


def check_barcode(text: str) -> str:
    """The barcode, or a UsageError (exit 2) that shows the expected form."""
    barcode = text.strip()
    if not _BARCODE.fullmatch(barcode):
        raise UsageError(f"a barcode is {BARCODE_FORM}; got {text!r}")
    return barcode


def check_item_id(text: str) -> int:
    """A Sierra item record number as digits (1000011); anything else is a usage error."""
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit()) or not 0 < int(stripped) < 2**63:
        raise UsageError(f"an item id is the record number in digits, e.g. 1000011; got {text!r}")
    return int(stripped)


# -- the PUT body --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpdateRules:
    """What every update also writes, as the original service did when switched on."""

    set_invda: bool = False  # inventory date (INVDA) = today
    set_iuse3: bool = False  # internal-use count (IUSE3, fixed field 74) + 1
    invda_field: str | None = None  # None: the fixed field the item itself labels INVDA
    today: Callable[[], datetime.date] = field(default=datetime.date.today)


def put_body(
    values: Mapping[str, Any],
    names: Sequence[str],
    current: Mapping[str, Any] | None,
    rules: UpdateRules,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The partial PUT for the mirrored fields `names` of an item, given as JSON values (`values`), against
    the item as Sierra holds it now (`current`) and as it was when the local edit was made (`base`, when
    known): of the fixed fields only those edited locally and different in Sierra now are sent.

    A value Sierra cannot take raises ValidationError, which keeps the item queued with that message.
    """
    body: dict[str, Any] = {}
    var_fields = values.get("varFields")
    for name in names:
        value = values.get(name)
        if name in ("location", "status"):
            body[name] = code_of(name, value)
        elif name == "itemType":
            body["itemType"] = item_type_code(value)
        elif name == "barcode":
            body["barcodes"] = with_first(var_contents(var_fields, "b"), value, "barcode")
        elif name == "callNumber":
            body["callNumbers"] = with_first(var_contents(var_fields, "c"), value, "callNumber")
        elif name == "fixedFields":
            changed = changed_fixed_fields(
                value, (current or {}).get("fixedFields"), None if base is None else base.get("fixedFields")
            )
            if changed:
                body["fixedFields"] = changed
        elif name == "varFields":
            body["varFields"] = checked_var_fields(value)
        else:
            raise ValidationError(
                f"{name} is not written to Sierra; the writable fields are {', '.join(WRITABLE)}"
            )
    if body:
        extra = rule_fixed_fields(current, rules)
        if extra:
            # A fixed field the edit itself sets keeps the edited value.
            body["fixedFields"] = {**extra, **body.get("fixedFields", {})}
    return body


def code_of(name: str, value: Any) -> str:
    """`location`/`status` as Sierra takes it: the code of the object read, or a code written locally."""
    code = value.get("code") if isinstance(value, dict) else value
    if isinstance(code, str) and code.strip():
        return code.strip()
    raise ValidationError(f"{name} must be a {name} code or an object with a code, not {value!r}")


def item_type_code(value: Any) -> int:
    """`itemType` as Sierra takes it: the item type number (fixed field 61), never the display name."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    raise ValidationError(
        f"itemType must be the item type number (fixed field 61), e.g. 1 or 24, not {value!r}"
    )


def var_contents(var_fields: Any, tag: str) -> list[str]:
    if not isinstance(var_fields, list):
        return []
    return [
        entry["content"]
        for entry in var_fields
        if isinstance(entry, dict) and entry.get("fieldTag") == tag and isinstance(entry.get("content"), str)
    ]


def with_first(contents: list[str], value: Any, name: str) -> list[str]:
    """The write list for a read field that repeats the first of its varFields: the first one replaced by
    the edited value, the others kept (an empty value removes the first)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return contents[1:]
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be text, not {value!r}")
    return [value.strip(), *contents[1:]]


def fixed_value(entry: Any) -> Any:
    """The value of a fixed-field entry: `{"label", "value", ...}` as read, or a bare value typed locally."""
    return entry.get("value") if isinstance(entry, dict) else entry


def changed_fixed_fields(local: Any, current: Any, base: Any = None) -> dict[str, dict[str, Any]]:
    """`{number: {"value": v}}` for the fixed fields whose value differs from Sierra's now and, with a
    `base`, was edited locally, leaving out those Sierra keeps itself; a fixed field cannot be removed
    through the API, so a missing one is kept.

    fixedFields is one column, so the core merges it whole: when the local side wins a conflict on it, the
    local object also holds Sierra's older values of fields nobody edited here (circulation counts, dates).
    Comparing with the base sends only what was edited and leaves Sierra's own changes in place.
    """
    if not isinstance(local, dict):
        raise ValidationError(f"fixedFields must be an object keyed by fixed-field number, not {local!r}")
    now = current if isinstance(current, dict) else {}
    before = base if isinstance(base, dict) else None
    changed: dict[str, dict[str, Any]] = {}
    for number, entry in local.items():
        if not isinstance(number, str) or not _FIXED_NUMBER.fullmatch(number):
            raise ValidationError(f"fixedFields keys are fixed-field numbers such as 74, not {number!r}")
        value = fixed_value(entry)
        if value == fixed_value(now.get(number)) or value is None:
            continue
        if before is not None and value == fixed_value(before.get(number)):
            continue  # not edited here: Sierra's value is the newer one
        if number in SERVER_OWNED_FIXED_FIELDS:
            log.warning("fixed field %s is kept by Sierra itself; the local value is not sent", number)
            continue
        changed[number] = {"value": value}
    return changed


def checked_var_fields(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(
        isinstance(entry, dict) and "fieldTag" in entry for entry in value
    ):
        raise ValidationError(f"varFields must be a list of {{fieldTag, content}} objects, not {value!r}")
    return list(value)


def rule_fixed_fields(current: Mapping[str, Any] | None, rules: UpdateRules) -> dict[str, dict[str, Any]]:
    """INVDA = today and IUSE3 + 1, when switched on; computed from the item as Sierra holds it now, so a
    retried update never counts twice what was not stored."""
    fixed = (current or {}).get("fixedFields")
    fixed = fixed if isinstance(fixed, dict) else {}
    extra: dict[str, dict[str, Any]] = {}
    if rules.set_invda:
        number = rules.invda_field or invda_number(fixed)
        if number is None:
            raise ValidationError(
                "SIERRA_UPDATE_SET_INVDA is on but this item has no fixed field labelled INVDA; set"
                " SIERRA_INVDA_FIXED_FIELD to its number"
            )
        extra[number] = {"value": rules.today().isoformat()}
    if rules.set_iuse3:
        raw = fixed_value(fixed.get(IUSE3_FIELD))
        text = str(raw).strip() if raw is not None else "0"
        if not (text.isascii() and text.isdigit()):
            raise ValidationError(
                f"IUSE3 (fixed field 74) is {raw!r} in Sierra, not a count; it cannot be raised"
            )
        extra[IUSE3_FIELD] = {"value": str(int(text) + 1)}
    return extra


def invda_number(fixed: Mapping[str, Any]) -> str | None:
    """The number of the fixed field an item labels INVDA (the number is not in public material)."""
    return next(
        (
            number
            for number, entry in fixed.items()
            if isinstance(entry, dict) and str(entry.get("label", "")).strip().upper() == INVDA_LABEL
        ),
        None,
    )


# -- `item update --field k=v` -------------------------------------------------------------------------


def edited_values(current: Mapping[str, Any], assignments: Sequence[str]) -> dict[str, Any]:
    """The JSON values of the fields `--field k=v` changes, given the item as mirrored (JSON values).

    `location=h01an` and `status=m` take codes, `itemType=24` the item type number, `fixedFields.74=5`
    one fixed field, `fixedFields=` and `varFields=` whole JSON values. Anything else is a usage error.
    """
    changes: dict[str, Any] = {}
    for assignment in assignments:
        name, equals, raw = assignment.partition("=")
        name = name.strip()
        if not equals or not name:
            raise UsageError(f"--field takes KEY=VALUE, got {assignment!r}")
        if name.startswith("fixedFields."):
            number = name.removeprefix("fixedFields.")
            if not _FIXED_NUMBER.fullmatch(number):
                raise UsageError(f"fixedFields.N takes a fixed-field number such as 74, got {name!r}")
            if number in SERVER_OWNED_FIXED_FIELDS:
                raise UsageError(f"fixed field {number} is kept by Sierra itself and cannot be changed")
            fixed = dict(changes.get("fixedFields") or _object(current.get("fixedFields")))
            entry = fixed.get(number)
            fixed[number] = {**entry, "value": raw} if isinstance(entry, dict) else {"value": raw}
            fixed[number].pop("display", None)  # the display of the old value would now be wrong
            changes["fixedFields"] = fixed
        elif name in ("location", "status"):
            if not raw.strip():
                raise UsageError(f"{name} takes a code, e.g. {name}={'h01an' if name == 'location' else 'm'}")
            changes[name] = {"code": raw.strip()}
        elif name == "itemType":
            if not (raw.strip().isascii() and raw.strip().isdigit()):
                raise UsageError(
                    f"itemType takes the item type number (fixed field 61), e.g. 24; got {raw!r}"
                )
            changes[name] = int(raw.strip())
        elif name == "barcode":
            changes[name] = check_barcode(raw)
        elif name == "callNumber":
            if not raw.strip():
                raise UsageError("callNumber cannot be empty")
            changes[name] = raw.strip()
        elif name in ("fixedFields", "varFields"):
            changes[name] = _json_value(name, raw, dict if name == "fixedFields" else list)
        else:
            raise UsageError(
                f"{name!r} cannot be changed in Sierra from syncctl; the writable fields are"
                f" {', '.join(WRITABLE)} (and fixedFields.N)"
            )
    return changes


def _object(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _json_value(name: str, raw: str, kind: type) -> Any:
    try:
        value = json.loads(raw)
    except ValueError:
        raise UsageError(
            f"{name} takes JSON ({'an object' if kind is dict else 'a list'}), got {raw[:80]!r}"
        ) from None
    if not isinstance(value, kind):
        raise UsageError(f"{name} takes JSON {'an object' if kind is dict else 'a list'}, got {raw[:80]!r}")
    return value
