from __future__ import annotations

import io
import json
from typing import Any

import pytest

from syncctl.connectors.tasks.reader import FormatError, read_values

EVENT = {"event": "created", "timestamp": "2025-04-01T14:23:45-04:00", "metadata": {"id": "1", "userId": "1"}}


def read(text: str, chunk: int = 1 << 20) -> list[tuple[Any, str]]:
    return list(read_values(io.StringIO(text), chunk=chunk))


def error(text: str, chunk: int = 1 << 20) -> str:
    with pytest.raises(FormatError) as caught:
        read(text, chunk)
    return str(caught.value)


def test_reader_one_event_spread_over_lines_is_one_value_with_its_text() -> None:
    text = json.dumps(EVENT, indent=2)
    assert read(f"\n{text}\n") == [(EVENT, text)]


def test_reader_json_array_gives_each_element_with_its_text() -> None:
    assert read('[ {"a": 1} ,\n{"b": [2, 3]}\n]\n') == [
        ({"a": 1}, '{"a": 1}'),
        ({"b": [2, 3]}, '{"b": [2, 3]}'),
    ]
    assert read("[]") == []
    assert read(" [\n ] ") == []


def test_reader_json_lines_with_blank_lines_and_crlf() -> None:
    text = '{"a": 1}\r\n\r\n{"a": 2}\r\n   {"a": 3}'
    assert [value for value, _ in read(text)] == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_reader_values_that_are_not_events_are_left_to_the_rules() -> None:
    assert [value for value, _ in read('5\n"x"\n[1, 2]\nnull\n')] == [5, "x", [1, 2], None]
    assert [value for value, _ in read('[5, "x", [1]]')] == [5, "x", [1]]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
def test_reader_chunk_boundaries_never_change_what_is_read(chunk: int) -> None:
    values: list[Any] = [
        EVENT,
        12345,
        -0.5e10,
        True,
        None,
        "a \u00e9 \U0001f600 string",
        {"k": [1, {"x": "]"}]},
    ]
    lines = "\n".join(json.dumps(v, ensure_ascii=False) for v in values)
    array = json.dumps(values, ensure_ascii=False)
    assert [v for v, _ in read(lines, chunk)] == values
    assert [v for v, _ in read(array, chunk)] == values
    assert read("[12345]", chunk) == [(12345, "12345")]
    assert read("12345", chunk) == [(12345, "12345")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no JSON (it is empty)"),
        (" \n\t ", "holds no JSON (it is empty)"),
        ('{"a": 1}\n{"b": 2', "is not valid JSON at line 2, column 8: Expecting ',' delimiter"),
        ('[{"a": 1},\n {"b": "cut', "is not valid JSON at line 2, column 8: Unterminated string starting at"),
        ('[{"a": 1}', "is not valid JSON at line 1, column 10: the file ends inside the array"),
        ('[{"a": 1} {"b": 2}]', "is not valid JSON at line 1, column 11: expected ',' or ']'"),
        ('[{"a": 1},]', "is not valid JSON at line 1, column 11: Expecting value"),
        ('[{"a": 1}]\n{"b": 2}', "is not valid JSON at line 2, column 1: unexpected text after the array"),
        ('{"a": NaN}', "is not valid JSON at line 1, column 1: NaN is not valid JSON"),
        ('{"a": 1} }', "is not valid JSON at line 1, column 10: Expecting value"),
        ("[" * 100_000, "is not valid JSON at line 1, column 2: nested too deeply"),
    ],
)
def test_reader_a_file_that_is_not_well_formed_says_where(text: str, message: str) -> None:
    assert error(text) == message
    assert error(text, chunk=3) == message  # the same answer however the file is read


def test_reader_a_cut_file_fails_only_after_giving_what_came_before() -> None:
    """The caller must not act on values before the end: the error comes after them."""
    values = read_values(io.StringIO('{"a": 1}\n{"a": 2}\n{"a": '))
    assert next(values) == ({"a": 1}, '{"a": 1}')
    assert next(values) == ({"a": 2}, '{"a": 2}')
    with pytest.raises(FormatError, match="line 3"):
        next(values)


def test_reader_bytes_that_are_not_utf8_are_a_format_error() -> None:
    stream = io.TextIOWrapper(io.BytesIO(b'{"a": "\xff"}'), encoding="utf-8-sig")
    with pytest.raises(FormatError, match="is not UTF-8 text"):
        list(read_values(stream))


def test_reader_a_byte_order_mark_is_not_part_of_the_json() -> None:
    stream = io.TextIOWrapper(io.BytesIO(b'\xef\xbb\xbf[{"a": 1}]'), encoding="utf-8-sig")
    assert list(read_values(stream)) == [({"a": 1}, '{"a": 1}')]
