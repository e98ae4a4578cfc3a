"""Log lines: timestamped text off a terminal, JSON Lines with `--log-format json`, appended to `--log-file`
(stderr keeping only the one-line error), and never a secret in any of them."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from syncctl.cli.common import REDACTOR
from syncctl.core.errors import UsageError
from syncctl.ops import logs
from tests.e2e import World

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d ")
SECRET = "s3cr3t-Key-9Qz"


@pytest.fixture
def world(build: Callable[..., World]) -> World:
    small: World = build(30)
    return small


@pytest.fixture
def leaky(world: World) -> World:
    """The world with a wrong key that also appears in the URL, so it would show in every request line."""
    world.env["INTEMPUS_API_KEY"] = SECRET
    world.env["INTEMPUS_API_URI"] = f"{world.url}/{SECRET}/"
    return world


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root, ours = logging.getLogger(), logging.getLogger("syncctl")
    handlers, levels = root.handlers[:], (root.level, ours.level)
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(levels[0])
    ours.setLevel(levels[1])


def auth_failed(world: World) -> str:
    return (
        "syncctl: error: authentication failed: Intempus refused INTEMPUS_API_USER/INTEMPUS_API_KEY"
        f" (401 from {urlsplit(world.url).netloc})"
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_logs_json_lines_carry_time_level_event_run_id_and_counts(world: World) -> None:
    outcome = world.run("--log-format", "json", "-vv", "sync", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    records = json_lines(outcome.stderr)  # every line is one JSON object
    assert records
    for record in records:
        assert datetime.fromisoformat(str(record["time"])).utcoffset() is not None
        assert record["level"] in ("debug", "info", "warning", "error") and record["message"]
    [finished] = [r for r in records if r.get("event") == "run_finished"]
    assert finished["run_id"] == outcome.json()["run_id"]
    assert finished["counts"] == {k: outcome.json()[k] for k in finished["counts"]}
    assert any(r.get("source") == "intempus" for r in records)


def test_logs_json_run_lines_name_their_source(world: World) -> None:
    outcome = world.run("--log-format", "json", "-v", "sync")

    finished = [r for r in json_lines(outcome.stderr) if r.get("event") == "run_finished"]
    assert [r.get("source") for r in finished] == ["intempus"]


def test_logs_json_failed_run_is_logged_as_json_and_the_error_line_stays_for_people(leaky: World) -> None:
    outcome = leaky.run("--log-format", "json", "-vv", "sync")

    assert outcome.exit_code == 1
    lines = outcome.stderr.splitlines()
    people = [line for line in lines if line.startswith("syncctl: error: ")]
    assert people == [auth_failed(leaky)]
    records = [json.loads(line) for line in lines if line not in people]
    [failed] = [r for r in records if r.get("event") == "run_failed"]
    assert (failed["level"], failed["message"]) == ("error", people[0].removeprefix("syncctl: error: "))
    assert any("/***/" in str(r["message"]) for r in records)  # the request line, scrubbed
    assert SECRET not in outcome.stderr + outcome.stdout


def test_logs_file_gets_timestamped_lines_and_stderr_only_the_error(leaky: World, tmp_path: Path) -> None:
    log_file = tmp_path / "syncctl.log"

    outcome = leaky.run("--log-file", str(log_file), "-vv", "sync")

    assert outcome.exit_code == 1
    assert outcome.stderr.splitlines() == [auth_failed(leaky)]
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert lines and all(STAMP.match(line) for line in lines), lines
    assert any(
        line.endswith(" syncctl[intempus]: ERROR: " + outcome.stderr.strip().removeprefix("syncctl: error: "))
        for line in lines
    )
    assert any("syncctl[intempus]: DEBUG: " in line and "/***/" in line for line in lines)
    assert SECRET not in log_file.read_text(encoding="utf-8") + outcome.stderr + outcome.stdout


def test_logs_file_is_appended_to_run_after_run(world: World, tmp_path: Path) -> None:
    log_file = tmp_path / "syncctl.log"
    log_file.write_text("2026-01-01T00:00:00+00:00 syncctl: INFO: an earlier line\n", encoding="utf-8")

    for _ in range(2):
        assert world.run("--log-file", str(log_file), "-v", "sync").exit_code == 0

    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert lines[0].endswith("an earlier line")
    assert len([line for line in lines if "sync ok" in line]) == 2
    assert all(STAMP.match(line) for line in lines)


def test_logs_text_on_stderr_is_timestamped_off_a_terminal(world: World) -> None:
    outcome = world.run("-v", "sync")

    lines = outcome.stderr.splitlines()
    assert lines and all(STAMP.match(line) for line in lines), lines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--log-file", "{tmp}/missing/syncctl.log"),
            "syncctl: error: cannot write the log file {tmp}/missing/",
        ),
        (("--log-file", "{tmp}"), "syncctl: error: cannot write the log file {tmp}: "),
        (("--log-format", "xml"), "syncctl: error: --log-format takes text or json, got 'xml'"),
    ],
)
def test_logs_bad_log_options_are_usage_errors(
    world: World, tmp_path: Path, args: tuple[str, str], message: str
) -> None:
    outcome = world.run(*(a.format(tmp=tmp_path) for a in args), "sync")

    assert outcome.exit_code == 2
    [line] = outcome.stderr.splitlines()
    assert line.startswith(message.format(tmp=tmp_path))


# -- configure, without the CLI ------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize(("stream", "stamped"), [(Terminal(), False), (io.StringIO(), True)])
def test_logs_text_has_a_time_only_off_a_terminal(stream: io.StringIO, stamped: bool) -> None:
    logs.configure(level=logging.INFO, fmt="text", log_file=None, redactor=REDACTOR, stream=stream)

    logging.getLogger("syncctl").warning("disk %s is slow", "sda", extra={"source": "grid"})

    line = stream.getvalue()
    assert bool(STAMP.match(line)) is stamped
    assert line.endswith("syncctl[grid]: WARNING: disk sda is slow\n")


@pytest.mark.usefixtures("restored_logging")
def test_logs_file_follows_logrotate_renaming_it(tmp_path: Path) -> None:
    log_file = tmp_path / "syncctl.log"
    logs.configure(level=logging.INFO, fmt="text", log_file=log_file, redactor=REDACTOR)
    log = logging.getLogger("syncctl")

    log.info("before the rotation")
    log_file.rename(tmp_path / "syncctl.log.1")
    log.info("after the rotation")

    assert (tmp_path / "syncctl.log.1").read_text(encoding="utf-8").endswith("before the rotation\n")
    assert log_file.read_text(encoding="utf-8").endswith("syncctl: INFO: after the rotation\n")


@pytest.mark.usefixtures("restored_logging")
def test_logs_json_scrubs_secrets_and_keeps_the_fields(tmp_path: Path) -> None:
    REDACTOR.add("hunter2-Secret")
    stream = io.StringIO()
    logs.configure(level=logging.INFO, fmt="json", log_file=None, redactor=REDACTOR, stream=stream)

    logging.getLogger("syncctl").error(
        "login with %s failed", "hunter2-Secret", extra={"source": "sierra", "event": "login", "run_id": 7}
    )

    [record] = json_lines(stream.getvalue())
    assert {k: v for k, v in record.items() if k != "time"} == {
        "level": "error",
        "source": "sierra",
        "run_id": 7,
        "event": "login",
        "message": "login with *** failed",
    }


def test_logs_configure_refuses_an_unknown_format() -> None:
    with pytest.raises(UsageError, match="--log-format takes text or json"):
        logs.configure(level=logging.INFO, fmt="yaml", log_file=None, redactor=REDACTOR)
