"""Reading the client's folder: odd names and odd files never break a line, a record or the run."""

from __future__ import annotations

import os
from pathlib import Path

from syncctl.connectors.workorders.folder import (
    MAX_FILE_BYTES,
    folder_problem,
    list_inbound,
    read_inbound,
    record_name,
    shown,
    write_outbound,
)
from tests.connectors.workorders.conftest import Client


def test_folder_names_that_are_not_utf8_or_printable_are_kept_on_one_line(client: Client) -> None:
    odd = os.fsdecode(b"caf\xe9.json")
    (client.inbound / odd).write_bytes(b"{")
    (client.inbound / "two\nlines.json").write_bytes(b"{")

    outcome = client.run("sync", "workorders", "--json")

    assert outcome.exit_code == 0 and outcome.json()["rejected_files"] == 2
    warned = [line for line in outcome.stderr.splitlines() if "WARNING" in line]
    assert len(warned) == 2
    assert any("caf\\xe9.json" in line for line in warned) and any(
        "two\\nlines.json" in line for line in warned
    )
    files = client.run("status", "workorders", "--json").json()["details"]["rejected"]
    assert [entry["file"] for entry in files] == ["caf\\xe9.json", "two\nlines.json"]


def test_folder_record_name_and_shown() -> None:
    assert record_name(os.fsdecode(b"\xff1.json")) == "\\xff1.json"
    assert record_name("1.json") == "1.json"
    assert shown("a\tb") == "a\\tb" and shown("plain.json") == "plain.json"


def test_folder_read_reports_instead_of_raising(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_FILE_BYTES + 1))
    assert read_inbound(big).problem == f"larger than {MAX_FILE_BYTES} bytes"
    gone = read_inbound(tmp_path / "gone.json")
    assert gone.vanished and gone.data is None
    small = tmp_path / "1.json"
    small.write_bytes(b"{}")
    got = read_inbound(small)
    assert (got.data, got.size, got.sha256) == (
        b"{}",
        2,
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    )


def test_folder_listing_is_in_name_order_without_hidden_files_or_folders(tmp_path: Path) -> None:
    for name in ("b.json", "a.json", ".a.json.tmp", ".hidden.json", "c.txt"):
        (tmp_path / name).write_bytes(b"{}")
    (tmp_path / "d.json").mkdir()
    assert [item.name for item in list_inbound(tmp_path)] == ["a.json", "b.json"]


def test_folder_write_outbound_is_whole_or_nothing(tmp_path: Path) -> None:
    assert write_outbound(tmp_path, "1.json", {"orderNo": 1, "summary": "é"}) is None
    assert (tmp_path / "1.json").read_bytes() == b'{"orderNo": 1, "summary": "\\u00e9"}'
    (tmp_path / "2.json").mkdir()
    problem = write_outbound(tmp_path, "2.json", {"orderNo": 2})
    assert problem is not None and "it is a directory" in problem
    assert sorted(path.name for path in tmp_path.iterdir()) == ["1.json", "2.json"]  # no temporary file left
    assert folder_problem(tmp_path) is None
    assert folder_problem(tmp_path / "missing") == "the folder does not exist"
