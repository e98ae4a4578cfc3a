"""Sierra's item rules as pure functions: the PUT body per writable field, INVDA/IUSE3, barcodes, and the
`--field k=v` edits of `item update`."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from syncctl.connectors.sierra.items import (
    UpdateRules,
    check_barcode,
    check_item_id,
    edited_values,
    put_body,
)
from syncctl.core.errors import UsageError, ValidationError

FIXTURES = Path(__file__).parents[2] / "fixtures" / "sierra"
TODAY = datetime.date(2025, 10, 6)
RULES = UpdateRules(today=lambda: TODAY)


@pytest.fixture
def item() -> dict[str, Any]:
    """The first item of the captured items page, as Sierra sends it."""
    page = json.loads((FIXTURES / "items_page.json").read_text(encoding="utf-8"))
    entry: dict[str, Any] = page["entries"][0]
    return entry


def test_put_body_maps_each_writable_field_to_its_write_shape(item: dict[str, Any]) -> None:
    edited = {
        **item,
        "itemType": "24",
        "location": {"code": "h01an", "name": "Main library adult non-fiction"},
        "status": "m",
        "barcode": "31234000999999",
        "callNumber": "78.891 BEE",
        "fixedFields": {**item["fixedFields"], "97": {"label": "IMESSAGE", "value": "f"}},
        "varFields": [*item["varFields"], {"fieldTag": "n", "content": "Checked"}],
    }
    names = ["itemType", "location", "status", "barcode", "callNumber", "fixedFields", "varFields"]

    body = put_body(edited, names, item, RULES)

    assert body == {
        "itemType": 24,
        "location": "h01an",
        "status": "m",
        "barcodes": ["31234000999999"],
        "callNumbers": ["78.891 BEE"],
        "fixedFields": {"97": {"value": "f"}},
        "varFields": edited["varFields"],
    }


def test_put_body_keeps_further_barcodes_and_call_numbers(item: dict[str, Any]) -> None:
    var_fields = [
        {"fieldTag": "b", "content": "31234000123456"},
        {"fieldTag": "b", "content": "31234000123457"},
        {"fieldTag": "c", "content": "84.2 KIV"},
    ]
    edited = {**item, "varFields": var_fields, "barcode": "31234000999999", "callNumber": None}

    body = put_body(edited, ["barcode", "callNumber"], item, RULES)

    assert body == {"barcodes": ["31234000999999", "31234000123457"], "callNumbers": []}


def test_put_body_sends_only_fixed_fields_that_differ_and_never_sierras_own(item: dict[str, Any]) -> None:
    fixed = json.loads(json.dumps(item["fixedFields"]))
    fixed["74"] = "5"  # a bare value typed in SQLite
    fixed["84"]["value"] = "2000-01-01T00:00:00Z"  # UPDATED: Sierra's own
    fixed["59"]["label"] = "relabelled"  # a label is not a value

    assert put_body({**item, "fixedFields": fixed}, ["fixedFields"], item, RULES) == {
        "fixedFields": {"74": {"value": "5"}}
    }


def test_put_body_sends_only_fixed_fields_edited_since_the_base(item: dict[str, Any]) -> None:
    base = json.loads(json.dumps(item))
    local = json.loads(json.dumps(item["fixedFields"]))
    local["97"] = {"label": "IMESSAGE", "value": "f"}  # edited here
    now = {**item, "fixedFields": {**item["fixedFields"], "74": {"label": "IUSE3", "value": "8"}}}  # Sierra's

    body = put_body({**item, "fixedFields": local}, ["fixedFields"], now, RULES, base)

    assert body == {"fixedFields": {"97": {"value": "f"}}}  # IUSE3 3 (stale) is not sent back


def test_put_body_with_nothing_sendable_is_empty_even_with_the_rules_on(item: dict[str, Any]) -> None:
    fixed = json.loads(json.dumps(item["fixedFields"]))
    fixed["81"]["value"] = "1"
    rules = UpdateRules(set_invda=True, set_iuse3=True, invda_field="265", today=lambda: TODAY)

    assert put_body({**item, "fixedFields": fixed}, ["fixedFields"], item, rules) == {}


def test_put_body_adds_invda_and_iuse3_from_sierras_current_values(item: dict[str, Any]) -> None:
    rules = UpdateRules(set_invda=True, set_iuse3=True, invda_field="265", today=lambda: TODAY)

    body = put_body({**item, "callNumber": "1.1 A"}, ["callNumber"], item, rules)

    assert body == {
        "callNumbers": ["1.1 A"],
        "fixedFields": {"265": {"value": "2025-10-06"}, "74": {"value": "4"}},  # IUSE3 was 3
    }


def test_put_body_keeps_an_iuse3_the_edit_sets_itself(item: dict[str, Any]) -> None:
    rules = UpdateRules(set_iuse3=True, today=lambda: TODAY)
    fixed = {**item["fixedFields"], "74": {"label": "IUSE3", "value": "10"}}

    body = put_body({**item, "fixedFields": fixed}, ["fixedFields"], item, rules)

    assert body == {"fixedFields": {"74": {"value": "10"}}}


def test_put_body_finds_invda_by_label_or_refuses(item: dict[str, Any]) -> None:
    rules = UpdateRules(set_invda=True, today=lambda: TODAY)
    labelled = {
        **item,
        "fixedFields": {**item["fixedFields"], "300": {"label": "INVDA", "value": "2020-01-01"}},
    }

    assert put_body({**labelled, "callNumber": "X"}, ["callNumber"], labelled, rules)["fixedFields"] == {
        "300": {"value": "2025-10-06"}
    }
    with pytest.raises(ValidationError, match="SIERRA_INVDA_FIXED_FIELD"):
        put_body({**item, "callNumber": "X"}, ["callNumber"], item, rules)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("itemType", "DVD", "item type number"),
        ("itemType", True, "item type number"),
        ("location", {"name": "no code"}, "location code"),
        ("status", "", "status code"),
        ("fixedFields", ["not", "an", "object"], "keyed by fixed-field number"),
        ("fixedFields", {"IUSE3": {"value": "1"}}, "fixed-field numbers"),
        ("varFields", "b 123", "fieldTag"),
        ("barcode", 31234000123456, "text"),
    ],
)
def test_put_body_refuses_values_sierra_cannot_take(
    item: dict[str, Any], name: str, value: Any, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        put_body({**item, name: value}, [name], item, RULES)


VALID_BARCODES = [
    "31234000123456",
    "3123450001234567",
    "31234000123456X",
    "312345000123456a",
    "31234560001234567",
]
INVALID_BARCODES = [
    "",
    "1234567890123",
    "312340001234567890",
    "31234000123456XY",
    "3123400012345-",
    "A31234000123456",
]


@pytest.mark.parametrize("barcode", [*VALID_BARCODES, " 31234000123456 "])
def test_check_barcode_accepts_14_to_16_digits_and_one_more_character(barcode: str) -> None:
    assert check_barcode(barcode) == barcode.strip()


@pytest.mark.parametrize("barcode", [*INVALID_BARCODES, "٣١٢٣٤٠٠٠١٢٣٤٥٦"])  # Arabic-Indic digits too
def test_check_barcode_refuses_other_forms_naming_the_expected_one(barcode: str) -> None:
    with pytest.raises(UsageError, match="14 to 16 digits, optionally followed by one letter or digit"):
        check_barcode(barcode)


@pytest.mark.parametrize("text", ["", "abc", "-5", "0", "1.5", ".i1000011a", "٣"])
def test_check_item_id_refuses_anything_but_a_record_number(text: str) -> None:
    with pytest.raises(UsageError, match="record number"):
        check_item_id(text)


def test_edited_values_translates_each_kind_of_field(item: dict[str, Any]) -> None:
    changes = edited_values(
        item,
        [
            "location=h01an",
            "status=m",
            "itemType=24",
            "barcode=31234000999999",
            "callNumber= 78.891 BEE ",
            "fixedFields.74=9",
            "fixedFields.97=f",
            'varFields=[{"fieldTag": "b", "content": "31234000999999"}]',
        ],
    )

    assert changes == {
        "location": {"code": "h01an"},
        "status": {"code": "m"},
        "itemType": 24,
        "barcode": "31234000999999",
        "callNumber": "78.891 BEE",
        "fixedFields": {**item["fixedFields"], "74": {"label": "IUSE3", "value": "9"}, "97": {"value": "f"}},
        "varFields": [{"fieldTag": "b", "content": "31234000999999"}],
    }


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("location", "KEY=VALUE"),
        ("id=5", "cannot be changed"),
        ("updatedDate=2025-01-01", "cannot be changed"),
        ("itemType=DVD", "item type number"),
        ("barcode=123", "14 to 16 digits"),
        ("fixedFields.84=x", "kept by Sierra"),
        ("fixedFields.x=1", "fixed-field number"),
        ("varFields={}", "a list"),
        ("fixedFields=[1]", "an object"),
        ("location=", "takes a code"),
    ],
)
def test_edited_values_refuses_bad_fields(item: dict[str, Any], assignment: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        edited_values(item, [assignment])
