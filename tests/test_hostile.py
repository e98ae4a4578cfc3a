"""Issue 16: a hostile remote, a hostile file and hostile input, through the real CLI.

Each test is one finding of the issue and failed on 0.1 (bb0ed5a). Remote misbehaviour comes from the
bundled fake Intempus with its state changed behind the API's back (field names and values no real
Intempus would send, raw bytes in place of a case's JSON), or from a tiny purpose-built server in this file
for what the fake cannot do (TLS, links that change, a trickled body, odd headers). Nothing sleeps except the
server that trickles a body one byte at a time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import sqlite3
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

import pytest

from syncctl.connectors.intempus.fake import BASE_PATH, DEFAULT_USER, LIST_PATH, Fault
from syncctl.core.db import database_error
from syncctl.core.errors import EXIT_DATABASE, DatabaseError
from syncctl.core.fakehttp import LoopbackServer, Response, json_response
from syncctl.core.lock import hold_lock
from tests.e2e import Gate, Outcome, World, run_cli, start_cli

LIST = f"GET {LIST_PATH}?"

# -- helpers -------------------------------------------------------------------------------------------


def error_line(outcome: Outcome) -> str:
    """The one `syncctl: error:` line of a failed command, the last line on stderr; never a traceback."""
    assert "Traceback" not in outcome.stderr, outcome.stderr
    errors = [line for line in outcome.stderr.splitlines() if line.startswith("syncctl: error: ")]
    assert len(errors) == 1, outcome.stderr
    assert outcome.stderr.splitlines()[-1] == errors[0], outcome.stderr
    return errors[0].removeprefix("syncctl: error: ")


def warnings(outcome: Outcome) -> list[str]:
    return [line for line in outcome.stderr.splitlines() if "WARNING" in line.upper()]


def plant(world: World, case_id: int, fields: Mapping[str, Any]) -> None:
    """Give a case fields or values the real API never would, as a new version of it (incremental syncs
    see it)."""
    fake = world.fake
    with fake._lock:
        fake.cases[case_id].update(fields)
        fake._stamp(fake.cases[case_id])


def plant_raw(world: World, case_id: int, field: str, raw: bytes) -> None:
    """Serve `raw` bytes as the JSON value of one field of a case: what no JSON encoder would write."""
    fake = world.fake
    with fake._lock:
        case = fake.cases[case_id]
        fake._stamp(case)
        marker = "\x01placeholder\x01"
        rendered = json.dumps({**case, field: marker}, ensure_ascii=False).encode()
        fake._rendered[case_id] = rendered.replace(json.dumps(marker).encode(), raw)


def column_value(world: World, case_id: int, column: str) -> tuple[Any, str]:
    quoted = '"' + column.replace('"', '""') + '"'
    found = world.query(f"SELECT {quoted}, typeof({quoted}) FROM cases WHERE id = ?", case_id)
    return found[0][0], found[0][1]


def runs(world: World) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = world.run("status", "--json").json()["runs"]
    return found


EMPTY = hashlib.sha256(b"").hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """Every file in a folder: its content's hash (and its modification time, when it has content)."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        + (f" {path.stat().st_mtime_ns}" if path.stat().st_size else "")
        for path in sorted(folder.iterdir())
        if path.is_file()
    }


def some_cases(count: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"case {i}", "logical_timestamp": 1000 + i} for i in range(1, count + 1)]


def page(objects: list[dict[str, Any]], next_link: str | None = None, **headers: str) -> Response:
    meta = {"limit": 1000, "next": next_link, "total_count": len(objects)}
    return json_response(200, {"meta": meta, "objects": objects}, **headers)


class Scripted:
    """A hostile Intempus for LoopbackServer: `answer(n, method, path)` answers the n-th request."""

    def __init__(self, answer: Callable[[int, str, str], Response]) -> None:
        self.answer = answer
        self.requests: list[str] = []

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        self.requests.append(f"{method} {path}")
        return self.answer(len(self.requests) - 1, method, path)


@contextmanager
def hostile(answer: Callable[[int, str, str], Response]) -> Iterator[tuple[Scripted, str]]:
    """A Scripted remote on a loopback port, and the INTEMPUS_API_URI that points at it."""
    app = Scripted(answer)
    with LoopbackServer(app, base_path=BASE_PATH, name="hostile") as server:
        yield app, server.url


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    next_link = ""
    requests: list[str]


class Recording(BaseHTTPRequestHandler):
    """One page of one case whose `meta.next` is the server's `next_link` (with {port} filled in)."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        port = self.server.server_address[1]
        body = json.dumps(
            {"meta": {"next": self.server.next_link.format(port=port)}, "objects": some_cases(1)}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Trickling(BaseHTTPRequestHandler):
    """Headers at once, then a valid page one byte at a time: every read is quick, the body never ends."""

    protocol_version = "HTTP/1.1"
    BODY: ClassVar[bytes] = json.dumps({"meta": {"next": None}, "objects": some_cases(3)}).encode()
    STEP_S = 0.02  # the one deliberate sleep of this file: 3 s for the whole body, were it ever read

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        try:
            for position in range(len(self.BODY)):
                self.wfile.write(self.BODY[position : position + 1])
                self.wfile.flush()
                time.sleep(self.STEP_S)
        except OSError:
            return  # the client gave up: what the test wants


@contextmanager
def http_server(
    handler: type[BaseHTTPRequestHandler], *, tls: ssl.SSLContext | None = None, next_link: str = ""
) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), handler)
    server.next_link = next_link
    server.requests = []
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def self_signed(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 and the certificate a client must trust for it."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, cert


def wait_until_handled(pid: int, signum: int, timeout: float = 30) -> None:
    """Until the child has taken `signum` and is blocked again, so its handler has run; no sleeping.

    Two signals sent back to back may reach Python's handler as one. The CLI has a single thread, so
    once the signal is no longer pending and that thread sleeps again, the handler is done."""
    bit = 1 << (signum - 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fields = dict(
            line.split(":\t", 1)
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if ":\t" in line
        )
        pending = int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)
        if not pending & bit and fields["State"].startswith("S"):
            return
        os.sched_yield()
    raise AssertionError(f"process {pid} did not take signal {signum}")


# -- security ------------------------------------------------------------------------------------------

INJECTION = "x', 1)); INSERT INTO _syncctl_state (source, key, value) VALUES ('intempus', 'planted', 1); --"


def test_hostile_sql_in_a_remote_field_name_is_a_name_not_sql(world: World) -> None:
    target, other = sorted(world.fake.cases)[:2]
    plant(world, target, {"a'b": "quote", INJECTION: "payload"})

    first = world.sync()

    assert (first["status"], first["inserted"]) == ("ok", 300)
    assert column_value(world, target, "a'b") == ("quote", "text")
    assert column_value(world, target, INJECTION) == ("payload", "text")
    state = world.query("SELECT source, key FROM _syncctl_state ORDER BY key")
    assert ("intempus", "planted") not in state

    world.edit("UPDATE cases SET name = 'edited locally' WHERE id = ?", target)
    world.edit("UPDATE cases SET notes = 'also edited' WHERE id = ?", other)
    assert world.run("status", "--json").json()["pending"] == 2  # the triggers still capture edits
    second = world.sync()

    assert (second["status"], second["pushed"]) == ("ok", 2)
    assert world.fake.cases[target]["name"] == "edited locally"
    assert world.fake.cases[other]["notes"] == "also edited"
    assert world.query("SELECT source, key FROM _syncctl_state ORDER BY key") == state
    assert world.query("PRAGMA integrity_check") == [("ok",)]


def foreign_database(path: Path) -> None:
    """Another application's file that happens to have a `cases` table."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE cases (id INTEGER PRIMARY KEY, title TEXT, due TEXT)")
    conn.execute("INSERT INTO cases VALUES (1, 'their own case', '2026-01-01')")
    conn.execute("PRAGMA user_version = 7")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("args", [["status"], ["sync"], ["case", "get", "1"]], ids=" ".join)
def test_hostile_another_applications_database_is_refused_and_left_byte_for_byte(
    world: World, args: list[str]
) -> None:
    foreign_database(world.db_path)
    before = snapshot(world.db_path.parent)
    schema = world.query("SELECT type, name, sql FROM sqlite_master")

    outcome = world.run(*args)

    assert outcome.exit_code == EXIT_DATABASE, outcome.stderr
    message = error_line(outcome)
    assert "already has a table 'cases' that syncctl did not create" in message, message
    assert snapshot(world.db_path.parent) == before  # not a byte, not a lock file, no -wal
    assert world.query("SELECT type, name, sql FROM sqlite_master") == schema
    assert world.query("PRAGMA user_version") == [(7,)]
    assert world.fake.requests == []


def test_hostile_reading_commands_never_write_to_the_file(world: World) -> None:
    world.sync()
    case_id = min(world.fake.cases)
    world.edit("ALTER TABLE cases ADD COLUMN my_notes TEXT")  # another program's change to the mirror
    world.edit("UPDATE cases SET name = 'pending' WHERE id = ?", case_id)
    before = snapshot(world.db_path.parent)

    for args in (
        ["status"],
        ["status", "--json"],
        ["conflicts"],
        ["case", "get", str(case_id)],
        ["sources"],
    ):
        outcome = world.run(*args)
        assert outcome.exit_code == 0, (args, outcome.stderr)
        after = snapshot(world.db_path.parent)
        # A reader of a WAL file needs its -shm index (SQLite makes it, and an empty -wal, itself).
        assert after.pop("mirror.db-wal", EMPTY) == EMPTY, args
        after.pop("mirror.db-shm", None)
        assert after == before, args


@pytest.mark.parametrize("hop", ["https-to-http", "other-port"])
def test_hostile_next_link_to_another_scheme_or_port_is_not_followed(
    world: World, tmp_path: Path, hop: str
) -> None:
    with http_server(Recording) as elsewhere:
        if hop == "https-to-http":
            # Same host, same port, plain http: the key would cross the network in the clear.
            context, cert = self_signed(tmp_path)
            next_link = "http://127.0.0.1:{port}/web/v1/case/?after=1"
            extra = {"REQUESTS_CA_BUNDLE": str(cert)}
        else:
            context, next_link, extra = None, f"http://127.0.0.1:{elsewhere.server_address[1]}/steal?x=1", {}
        with http_server(Recording, tls=context, next_link=next_link) as server:
            scheme = "https" if context is not None else "http"
            uri = f"{scheme}://127.0.0.1:{server.server_address[1]}{BASE_PATH}"

            outcome = world.run("sync", INTEMPUS_API_URI=uri, **extra)

        assert outcome.exit_code == 1, outcome.stderr
        assert "sent a link to another origin, not followed" in error_line(outcome)
        assert len(server.requests) == 1  # the first page only: nothing went to the other origin
        assert elsewhere.requests == []
    assert world.query("SELECT count(*) FROM cases") == [(0,)]  # a listing that fails stores nothing


KEY = "k/e+y%&="


def key_forms(user: str, key: str) -> list[str]:
    """The key as a server may echo it: raw, percent-encoded, and inside Basic and Bearer headers."""
    pair = f"{user}:{key}".encode()
    return [
        key,
        quote(key, safe=""),
        quote_plus(key),
        base64.b64encode(pair).decode(),
        base64.b64encode(key.encode()).decode(),
    ]


def echoing_500(n: int, method: str, path: str) -> Response:
    """A proxy that answers 500 and quotes the request it failed on, credentials and all."""
    forms = key_forms(DEFAULT_USER, KEY)
    twice = quote(quote(KEY, safe=""), safe="")  # an encoding no scrubber can guess
    echoed = (
        f"upstream failed: https://intempus.example{path}&api_key={forms[1]}&k2={forms[2]}&k3={twice}"
        f" raw={KEY} (Authorization: Basic {forms[3]}; Bearer {forms[4]})"
    )
    return json_response(500, {"error_message": echoed})


def off_origin_next(n: int, method: str, path: str) -> Response:
    leak = quote(quote(KEY, safe=""), safe="")
    return page(some_cases(2), f"https://collector.example/steal?api_key={quote(KEY, safe='')}&again={leak}")


@pytest.mark.parametrize("answer", [echoing_500, off_origin_next], ids=["500-echo", "off-origin-next"])
def test_hostile_key_echoed_by_a_server_is_scrubbed_everywhere(
    world: World, answer: Callable[[int, str, str], Response]
) -> None:
    with hostile(answer) as (_, uri):
        outcome = run_cli(world, "-vv", "sync", INTEMPUS_API_URI=uri, INTEMPUS_API_KEY=KEY)

    assert outcome.exit_code == 1, outcome.stderr
    error_line(outcome)
    [run] = runs(world)
    assert run["error"]
    stored = b"".join(
        path.read_bytes() for path in world.db_path.parent.iterdir() if path.name.startswith("mirror.db")
    )
    leaked_forms = [*key_forms(DEFAULT_USER, KEY), quote(quote(KEY, safe=""), safe="")]
    for form in leaked_forms:
        assert form not in outcome.stdout and form not in outcome.stderr, form
        assert form not in run["error"], form
        assert form.encode() not in stored, form


def test_hostile_key_cut_off_by_a_long_error_message_is_scrubbed_whole(world: World) -> None:
    key = "s3cr3t-k/e+y%&=-0123456789"

    def answer(n: int, method: str, path: str) -> Response:
        # Messages are cut to length: here the cut falls inside the key.
        return json_response(403, {"error_message": f"{'x' * 290} {key} and more"})

    with hostile(answer) as (_, uri):
        outcome = world.run("sync", INTEMPUS_API_URI=uri, INTEMPUS_API_KEY=key)

    assert outcome.exit_code == 1
    assert "***" in error_line(outcome)
    [run] = runs(world)
    for text in (outcome.stderr, run["error"]):
        assert "s3cr3t" not in text, text


def test_hostile_database_and_its_wal_and_shm_are_private(build: Callable[..., World]) -> None:
    gate = Gate()
    world = build(sleep=gate)
    world.env["SYNCCTL_PAGE_SIZE"] = "50"
    world.fake.add_fault(Fault(match=LIST, after=2, kind="delay"))  # page 3: the file is open and written
    previous = os.umask(0o022)
    try:
        child = start_cli(world, "sync")
    finally:
        os.umask(previous)
    try:
        gate.wait_held()
        files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in world.db_path.parent.glob("mirror.db*")}
    finally:
        gate.finish()
        child.communicate(timeout=60)
    assert child.returncode == 0
    assert files["mirror.db"] == 0o600
    assert files["mirror.db-wal"] == 0o600 and files["mirror.db-shm"] == 0o600


def test_hostile_terminal_control_characters_from_a_server_are_stripped(world: World) -> None:
    def answer(n: int, method: str, path: str) -> Response:
        return json_response(403, {"error_message": "no \x1b[31mred\x1b[0m here\x07\x9b2J"})

    with hostile(answer) as (_, uri):
        outcome = world.run("sync", INTEMPUS_API_URI=uri)

    assert outcome.exit_code == 1
    message = error_line(outcome)
    assert "red" in message and "here" in message
    [run] = runs(world)
    for text in (outcome.stderr, outcome.stdout, run["error"]):
        assert not any(c in text for c in "\x1b\x07\x9b"), repr(text)


# -- one record must not block every sync --------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [{"ID": 7, "Name": "shadow"}, {"a\x00b": "nul", "tab\there": 1}],
    ids=["case-twins", "control-characters"],
)
def test_hostile_field_names_that_cannot_be_columns_go_to_extra(world: World, fields: dict[str, Any]) -> None:
    target = sorted(world.fake.cases)[5]
    name = world.fake.cases[target]["name"]
    plant(world, target, fields)

    outcome = world.run("sync", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    assert (outcome.json()["inserted"], outcome.json()["status"]) == (300, "ok")
    [warning] = warnings(outcome)
    assert "_syncctl_extra" in warning, warning
    assert json.loads(column_value(world, target, "_syncctl_extra")[0]) == fields
    assert column_value(world, target, "name")[0] == name
    assert world.query("SELECT count(*) FROM cases WHERE _syncctl_extra IS NOT NULL") == [(1,)]


def test_hostile_more_fields_than_sqlite_allows_columns(world: World) -> None:
    target = sorted(world.fake.cases)[7]
    many = {f"f{n:04d}": n for n in range(2100)}
    plant(world, target, many)

    outcome = world.run("sync", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    assert (outcome.json()["inserted"], outcome.json()["status"]) == (300, "ok")
    [warning] = warnings(outcome)
    assert "_syncctl_extra" in warning, warning
    columns = {row[1] for row in world.query("PRAGMA table_info(cases)")}
    extra = json.loads(column_value(world, target, "_syncctl_extra")[0])
    assert set(many) == {name for name in many if name in columns} | set(extra)
    assert all(extra[name] == many[name] for name in extra)
    assert all(column_value(world, target, name)[0] == many[name] for name in many if name in columns)
    assert world.query("SELECT count(*) FROM cases") == [(300,)]

    again = world.sync()
    assert (again["status"], again["fetched"]) == ("ok", 0)


def test_hostile_value_changing_kind_is_stored_as_json_text(world: World) -> None:
    number, linked = sorted(world.fake.cases)[3:5]
    plant(world, number, {"gauge": 5})
    world.sync()
    plant(world, number, {"gauge": {"reading": [1, 2]}})
    plant(world, linked, {"customer": {"id": 6666940, "uri": "/web/v1/customer/6666940/"}})
    world.fake.mutate(update=3, seed=5)

    outcome = world.run("sync", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    assert (outcome.json()["status"], outcome.json()["updated"]) == ("ok", 5)
    [warning] = warnings(outcome)
    assert "gauge" in warning and "customer" in warning, warning
    assert json.loads(column_value(world, number, "gauge")[0]) == {"reading": [1, 2]}
    assert json.loads(column_value(world, linked, "customer")[0])["id"] == 6666940
    assert world.sync()["updated"] == 0


# -- no crashes, no hangs ------------------------------------------------------------------------------


def test_hostile_integers_beyond_64_bits_in_values_are_stored_as_text(world: World) -> None:
    target = min(world.fake.cases)
    plant(world, target, {"huge": 2**70, "tiny": -(2**64) - 1})

    result = world.sync()

    assert (result["status"], result["inserted"]) == ("ok", 300)
    assert column_value(world, target, "huge") == (str(2**70), "text")
    assert column_value(world, target, "tiny") == (str(-(2**64) - 1), "text")


def test_hostile_id_beyond_64_bits_fails_in_one_line(world: World) -> None:
    target = min(world.fake.cases)
    plant(world, target, {})
    world.fake.cases[target]["id"] = 2**70
    world.fake._rendered.pop(target, None)

    outcome = world.run("sync")

    assert outcome.exit_code == 1
    assert "case id out of range" in error_line(outcome)


def test_hostile_timestamp_beyond_64_bits_does_not_become_the_cursor(world: World) -> None:
    target = min(world.fake.cases)
    plant(world, target, {})
    world.fake.cases[target]["logical_timestamp"] = 2**70
    world.fake._rendered.pop(target, None)

    first = world.sync()
    second = world.sync()

    assert (first["status"], first["inserted"]) == ("ok", 300)
    assert first["cursor"] == world.fake.counter
    assert (second["status"], second["mode"]) == ("ok", "incremental")


@pytest.mark.parametrize("header", ["²", "100000000000000000000000", "-5", " 12 x"])
def test_hostile_logical_timestamp_header_that_is_no_counter_is_ignored(world: World, header: str) -> None:
    objects = some_cases(3)
    objects[1]["logical_timestamp"] = 2**70  # and no header to trust instead

    def answer(n: int, method: str, path: str) -> Response:
        return page(objects, **{"Logical-Timestamp": header})

    with hostile(answer) as (_, uri):
        outcome = world.run("sync", "--json", INTEMPUS_API_URI=uri)

    assert outcome.exit_code == 0, outcome.stderr
    result = outcome.json()
    assert (result["status"], result["inserted"]) == ("ok", 3)
    assert result["cursor"] == 1003  # the highest timestamp that is one


def test_hostile_lone_surrogate_in_a_value_is_stored_replaced(world: World) -> None:
    target = min(world.fake.cases)
    plant_raw(world, target, "notes", b'"before \\ud800 after"')

    outcome = world.run("sync", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json()["inserted"] == 300
    notes = column_value(world, target, "notes")[0]
    assert notes.startswith("before \ufffd") and notes.endswith(" after")
    shown = world.run("case", "get", str(target))
    assert shown.exit_code == 0 and "before \ufffd" in shown.stdout


def test_hostile_json_nested_5000_deep_fails_in_one_line(world: World) -> None:
    target = sorted(world.fake.cases)[10]
    plant_raw(world, target, "notes", b"[" * 5000 + b"]" * 5000)

    outcome = world.run("sync")

    assert outcome.exit_code == 1
    assert "nested too deeply" in error_line(outcome)


def test_hostile_hand_edited_cursor_is_dropped_with_a_warning(world: World) -> None:
    world.sync()
    # By hand, as a person trying to "rewind" the sync would (0.1 named the key 'cursor').
    world.edit("UPDATE _syncctl_state SET value = 'abc' WHERE key IN ('cursor:cases', 'cursor')")

    outcome = world.run("sync", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    result = outcome.json()
    assert (result["mode"], result["fetched"], result["unchanged"]) == ("full", 300, 300)
    assert result["cursor"] == world.fake.counter
    [warning] = warnings(outcome)
    assert "cursor" in warning and "abc" in warning, warning


def test_hostile_hand_edited_pending_base_is_warned_about(world: World) -> None:
    world.sync()
    target = min(world.fake.cases)
    world.edit("UPDATE cases SET name = 'edited locally' WHERE id = ?", target)
    world.edit("UPDATE _syncctl_pending SET base = '[1,2'")

    outcome = world.run("sync", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json()["status"] == "ok"
    [warning] = warnings(outcome)
    assert "base" in warning and str(target) in warning, warning
    assert world.run("status", "--json").json()["pending"] == 0
    assert world.query("SELECT name FROM cases WHERE id = ?", target) == [(world.fake.cases[target]["name"],)]


@pytest.mark.parametrize(
    ("args", "env", "code"),
    [
        (["case", "get", "99999999999999999999"], {}, 2),
        (["sync"], {"SYNCCTL_READ_TIMEOUT": "1e308"}, 3),
        (["sync"], {"SYNCCTL_PAGE_SIZE": "٣"}, 3),  # Python's int() takes an Arabic-Indic three
    ],
    ids=["case-id", "read-timeout", "arabic-digit"],
)
def test_hostile_numbers_out_of_range_are_refused_in_one_line(
    world: World, args: list[str], env: dict[str, str], code: int
) -> None:
    world.sync()
    requests = len(world.fake.requests)

    outcome = world.run(*args, **env)

    assert outcome.exit_code == code, outcome.stderr
    error_line(outcome)
    assert outcome.stderr.count("\n") == 1 and outcome.stdout == ""
    assert len(world.fake.requests) == requests


@pytest.mark.parametrize("limit", ["1e20", "100000000000000000000"])
def test_hostile_conflicts_limit_out_of_range_is_a_usage_error(world: World, limit: str) -> None:
    world.sync()

    outcome = run_cli(world, "conflicts", "--limit", limit)  # the real entry point: a parser error

    assert outcome.exit_code == 2, outcome.stderr
    assert len(outcome.stderr.splitlines()) == 1 and "--limit" in outcome.stderr, outcome.stderr


def test_hostile_next_link_that_changes_while_the_page_stays_the_same_stops(world: World) -> None:
    def answer(n: int, method: str, path: str) -> Response:
        return page(some_cases(3), f"{LIST_PATH}?after={n}" if n < 50 else None)  # 0.1 looped 50 times

    with hostile(answer) as (app, uri):
        outcome = world.run("sync", INTEMPUS_API_URI=uri)

    assert outcome.exit_code == 1
    assert "keeps sending records already listed" in error_line(outcome)
    assert len(app.requests) == 2


def test_hostile_trickled_body_hits_the_overall_deadline(world: World) -> None:
    with http_server(Trickling) as server:
        uri = f"http://127.0.0.1:{server.server_address[1]}{BASE_PATH}"
        started = time.monotonic()
        outcome = world.run(
            "sync",
            INTEMPUS_API_URI=uri,
            SYNCCTL_CONNECT_TIMEOUT="0.2",
            SYNCCTL_READ_TIMEOUT="0.3",
            SYNCCTL_RETRY_ATTEMPTS="1",
        )
        took = time.monotonic() - started

    assert outcome.exit_code == 1
    assert "did not answer in time" in error_line(outcome)
    assert took < 1.5, f"gave up after {took:.1f}s; the overall deadline is 0.5s"


# -- honest state and messages -------------------------------------------------------------------------


def test_hostile_dropped_table_is_listed_whole_again(world: World) -> None:
    world.sync()
    world.edit("DROP TABLE cases")

    outcome = world.run("sync", "--json")

    assert outcome.exit_code == 0, outcome.stderr
    result = outcome.json()
    assert (result["mode"], result["fetched"], result["inserted"]) == ("full", 300, 300)
    assert world.query("SELECT count(*) FROM cases") == [(300,)]


def test_hostile_full_disk_is_named_as_such(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    error = database_error(sqlite3.OperationalError("database or disk is full"), world.db_path)
    assert isinstance(error, DatabaseError) and error.exit_code == EXIT_DATABASE
    assert "is full" in str(error) and "not a usable" not in str(error)

    monkeypatch.setattr("syncctl.core.mirror.MirrorTable.write_rows", full)
    outcome = world.run("sync")

    assert outcome.exit_code == EXIT_DATABASE
    assert f"the disk holding {world.db_path} is full" in error_line(outcome)


def test_hostile_database_locked_by_another_program_says_busy(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.sync()
    monkeypatch.setattr("syncctl.core.db.BUSY_TIMEOUT_S", 0.05)
    other = sqlite3.connect(world.db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another program's write transaction that never ends
        outcome = world.run("sync")
    finally:
        other.close()

    assert outcome.exit_code == EXIT_DATABASE
    message = error_line(outcome)
    assert "is busy" in message and "lock" in message, message


def test_hostile_env_file_that_is_a_folder(world: World, tmp_path: Path) -> None:
    folder = tmp_path / "settings"
    folder.mkdir()

    outcome = run_cli(world, "--env-file", str(folder), "status")  # read before any command's handler

    assert outcome.exit_code == 3
    assert "is a folder" in error_line(outcome)


def test_hostile_page_that_is_not_utf8_is_named_as_such(world: World) -> None:
    plant_raw(world, min(world.fake.cases), "name", b'"Byg \xe6\xf8\xe5 in Latin-1"')

    outcome = world.run("sync")

    assert outcome.exit_code == 1
    assert "not valid UTF-8" in error_line(outcome)


def test_hostile_symlink_to_the_database_shares_its_lock(world: World, tmp_path: Path) -> None:
    world.sync()
    link = tmp_path / "link.db"
    link.symlink_to(world.db_path)

    with hold_lock(world.db_path, "intempus"):
        outcome = world.run("sync", SYNCCTL_DB=str(link))

    assert outcome.exit_code == 75
    assert "another syncctl run" in error_line(outcome)


def test_hostile_nan_is_not_an_update_on_every_run(world: World) -> None:
    target = min(world.fake.cases)
    world.sync()
    plant(world, target, {"hour_budget": float("nan"), "ratio": float("nan")})

    changed = world.sync("--full")
    again = world.sync("--full")

    assert (changed["updated"], changed["unchanged"]) == (1, 299)
    assert (again["updated"], again["unchanged"]) == (0, 300)


def strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"bare {name} in JSON output: {text[:200]}")

    return json.loads(text, parse_constant=refuse)


def test_hostile_infinity_never_appears_bare_in_json_output(world: World) -> None:
    remote, local = sorted(world.fake.cases)[:2]
    plant(world, remote, {"ratio": float("inf"), "hour_budget": float("-inf")})

    synced = world.run("sync", "--json")
    world.edit("UPDATE cases SET hour_budget = 9e999 WHERE id = ?", local)  # REAL infinity, by hand

    assert synced.exit_code == 0, synced.stderr
    strict_json(synced.stdout)
    for args in (["case", "get", str(remote), "--json"], ["case", "get", str(local), "--json"]):
        outcome = world.run(*args)
        assert outcome.exit_code == 0, outcome.stderr
        strict_json(outcome.stdout)
    status = world.run("status", "--json")
    assert strict_json(status.stdout)["pending"] == 1


def test_hostile_one_id_twice_in_a_page_is_one_insert(world: World) -> None:
    twice = sorted(world.fake.cases)[20]
    world.fake._ids.insert(world.fake._ids.index(twice), twice)

    result = world.sync()

    assert (result["status"], result["inserted"]) == ("ok", 300)
    assert world.query("SELECT count(*) FROM cases") == [(300,)]


def test_hostile_newline_in_a_remote_field_name_keeps_one_line_per_field(world: World) -> None:
    target = min(world.fake.cases)
    plant(world, target, {"two\nlines": "a\nb", "bell\x07": 1})
    world.sync()

    outcome = world.run("case", "get", str(target))

    assert outcome.exit_code == 0, outcome.stderr
    columns = [row[1] for row in world.query("PRAGMA table_info(cases)")]
    lines = outcome.stdout.splitlines()
    assert [line.split()[0] for line in lines] == columns
    assert "\x07" not in outcome.stdout


def test_hostile_json_file_with_a_byte_order_mark_is_accepted(world: World, tmp_path: Path) -> None:
    customer = world.fake.cases[min(world.fake.cases)]["customer"]
    body = tmp_path / "case.json"
    body.write_bytes(b"\xef\xbb\xbf" + json.dumps({"name": "From Notepad", "customer": customer}).encode())

    outcome = world.run("case", "create", "--from-file", str(body), "--json")

    assert outcome.exit_code == 0, outcome.stderr
    assert [c["name"] for c in world.fake.cases.values() if c["name"] == "From Notepad"] == ["From Notepad"]


def test_hostile_second_sigterm_while_stopping_exits_143_at_once(build: Callable[..., World]) -> None:
    gate = Gate()
    world = build(sleep=gate)
    world.env["SYNCCTL_PAGE_SIZE"] = "50"
    world.fake.add_fault(Fault(match=LIST, after=1, kind="delay"))  # page 2 is held until the end
    child = start_cli(world, "sync")
    try:
        gate.wait_held()
        child.send_signal(signal.SIGTERM)  # the first: stop at the next safe point, after page 2 ...
        wait_until_handled(child.pid, signal.SIGTERM)
        child.send_signal(signal.SIGTERM)  # ... which never comes: the second stops it now
        stdout, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        gate.finish()

    assert child.returncode == 143, stderr
    assert stdout.startswith("sync interrupted (full): fetched 50,"), stdout
    assert stderr.splitlines()[-1].startswith("syncctl: error: stopped by SIGTERM"), stderr
    assert "Traceback" not in stderr
    [run] = runs(world)
    assert (run["status"], run["fetched"]) == ("interrupted", 50)
    assert world.query("PRAGMA integrity_check") == [("ok",)]


def test_hostile_sigterm_after_the_run_still_exits_143_with_a_message() -> None:
    script = (
        "import os, signal\n"
        "from syncctl.cli.common import StopSignals\n"
        "StopSignals.exit_after_run = True  # as main() sets it\n"
        "with StopSignals().installed():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)  # the first: the run stops at its next safe point\n"
        "os.kill(os.getpid(), signal.SIGTERM)  # the second, while the process winds down\n"
        "print('still running')\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 143
    assert child.stdout == ""
    assert child.stderr == "syncctl: stopped by SIGTERM while finishing\n"
