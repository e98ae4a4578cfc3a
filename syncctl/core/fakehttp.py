"""The loopback HTTP server every bundled fake remote runs on.

A fake is any object with `handle(method, path, headers, body) -> Response`: its state and API semantics
live in its connector's package; this module only puts it on a socket, performs the socket-level faults
a `Response` asks for (a truncated body, a connection reset), and serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Protocol, Self

log = logging.getLogger("syncctl.fake")


@dataclass
class Response:
    """One answer of a fake's `handle`; the server adds Content-Length and performs `action`."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    action: str | None = None  # "truncate" or "reset": socket-level misbehaviour the server must perform

    def json(self) -> Any:
        return json.loads(self.body)


class FakeApp(Protocol):
    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response: ...


def json_response(status: int, data: Any, **headers: str) -> Response:
    """A JSON answer, UTF-8 as most servers send it."""
    body = b"" if data is None else json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status, body, {"Content-Type": "application/json; charset=utf-8", **headers})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # open keep-alive connections must not hold up stop()

    def __init__(self, address: tuple[str, int], app: FakeApp) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SyncctlFake/1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no line per request
        return None

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.send_error(400, "Bad Content-Length")
            return
        body = self.rfile.read(length) if length else b""
        try:
            response = self.server.app.handle(self.command, self.path, dict(self.headers.items()), body)
        except Exception as exc:  # a bug in the fake: answer it, do not kill the connection silently
            log.exception("fake remote failed on %s %s", self.command, self.path)
            response = json_response(500, {"error_message": f"fake remote crashed: {exc!r}"})
        if response.action == "reset":
            self._reset()
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        sent = response.body
        if response.action == "truncate":
            self.send_header("Content-Length", str(len(sent) + 100 if len(sent) < 2 else len(sent)))
            sent = sent[: len(sent) // 2]
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(sent)))
        self.end_headers()
        self.wfile.write(sent)
        self.wfile.flush()

    def _reset(self) -> None:
        """Close with an RST, without a byte of answer, as a crashing proxy would."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the last reference to the socket's file: the close below is real
        self.connection.close()


class LoopbackServer:
    """A fake remote on a loopback port, served by a background thread. Binds at construction."""

    def __init__(
        self, app: FakeApp, host: str = "127.0.0.1", port: int = 0, *, base_path: str = "", name: str = "fake"
    ) -> None:
        self.app = app
        self.name = name
        self._httpd = _HTTPServer((host, port), app)
        self._thread: threading.Thread | None = None
        bound_host, bound_port = self._httpd.server_address[:2]
        shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(str(bound_host), str(bound_host))
        shown = f"[{shown}]" if ":" in shown else shown
        self.origin = f"http://{shown}:{bound_port}"
        self.url = f"{self.origin}{base_path}"

    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=self.name, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        with self._httpd.connections_lock:
            for connection in list(self._httpd.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Terminated(Exception):
    pass


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def serve_until_stopped(
    server: LoopbackServer, populate: Callable[[], None], on_ready: Callable[[str], None] | None = None
) -> None:
    """Fill the fake (after binding: a busy port fails fast), serve, and stop cleanly on SIGTERM/Ctrl-C."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        populate()
        gc.freeze()  # the generated data lives as long as the process: keep it out of every collection
        server.start()
        if on_ready is not None:
            on_ready(server.url)
        while True:
            time.sleep(3600)  # the signal handler or Ctrl-C ends the wait
    except (KeyboardInterrupt, _Terminated):
        pass
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.stop()
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
