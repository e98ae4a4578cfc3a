"""What every command shares: settings, secrets, the file, locks, signals, and one way to report errors.

No SQL and no HTTP here: commands parse options, build what they need with these helpers, call one core
or connector function, and render its result.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import FrameType
from typing import Any

import typer

from syncctl.core.connector import Connector, Registry
from syncctl.core.db import Database, database_error
from syncctl.core.errors import (
    EXIT_SIGINT,
    EXIT_SIGTERM,
    ConfigError,
    InterruptedRun,
    SyncctlError,
    UsageError,
)
from syncctl.core.sanitize import Scrubber, strip_control
from syncctl.core.settings import db_path, env_file_warnings, missing_settings, read_environment
from syncctl.ops.schedule import Waiter

log = logging.getLogger("syncctl")


class Redactor(logging.Filter):
    """Scrubs secrets (in every form) and control characters from every log record."""

    def __init__(self) -> None:
        super().__init__()
        self.scrubber = Scrubber()

    def add(self, secret: str, *, user: str | None = None) -> None:
        self.scrubber.add(secret, user=user)

    def scrub(self, text: str) -> str:
        return strip_control(self.scrubber(text), keep_newlines=True)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        return True


REDACTOR = Redactor()


def _registry() -> Registry:
    from syncctl.sources import registry  # late: connectors' command modules import this module

    return registry()


@dataclass
class Context:
    env_file: Path | None
    verbosity: int
    quiet: bool
    sources: Registry = field(default_factory=_registry)

    @cached_property
    def values(self) -> Mapping[str, str]:
        """The merged settings; every secret any source declares is registered for scrubbing at once."""
        values = read_environment(self.env_file)
        for connector in self.sources.connectors:
            user = next((values.get(s.name) for s in connector.settings if s.name.endswith("_USER")), None)
            for setting in connector.settings:
                if setting.secret and values.get(setting.name, "").strip():
                    REDACTOR.add(values[setting.name].strip(), user=(user or "").strip() or None)
        for warning in env_file_warnings(self.env_file):
            log.warning(warning)
        return values

    @property
    def db_path(self) -> Path:
        return db_path(self.values)

    def missing(self, connector: Connector) -> list[str]:
        return missing_settings(connector.settings, self.values)

    def configured(self) -> list[Connector]:
        return [c for c in self.sources.connectors if not self.missing(c)]

    def connector(self, name: str) -> Connector:
        found = self.sources.get(name)
        if found is None:
            raise UsageError(f"unknown source {name!r}; the sources are {', '.join(self.sources.names())}")
        return found

    def load(self, connector: Connector) -> Any:
        """A source's typed settings; exit 3 naming what is missing or wrong."""
        missing = self.missing(connector)
        if missing:
            raise ConfigError(
                f"{connector.name} is not configured: {', '.join(missing)} not set (environment or .env file)"
            )
        return connector.load(self.values)

    def chosen(self, names: list[str] | None) -> list[Connector]:
        """The named sources (in source order), or every configured one; exit 2/3 as CONTRACT.md says."""
        if names:
            wanted = {self.connector(name).name for name in names}
            chosen = [c for c in self.sources.connectors if c.name in wanted]
            for connector in chosen:
                if self.missing(connector):
                    self.load(connector)  # raises, naming what is missing
            return chosen
        configured = self.configured()
        if not configured:
            needs = "; ".join(f"{c.name}: {', '.join(self.missing(c))}" for c in self.sources.connectors)
            raise ConfigError(f"no source is configured (set the settings of one: {needs})")
        return configured

    def open_db(self, *, read_only: bool = False) -> Database:
        return Database.open(self.db_path, read_only=read_only, claims=self.sources.claimed_tables())


def options(ctx: typer.Context) -> Context:
    obj = ctx.find_root().obj
    assert isinstance(obj, Context)
    return obj


def fail(exc: SyncctlError) -> typer.Exit:
    sys.stderr.write(f"syncctl: error: {REDACTOR.scrub(str(exc))}\n")
    return typer.Exit(exc.exit_code)


def as_syncctl_error(exc: BaseException, path: Path | None = None) -> SyncctlError | None:
    if isinstance(exc, SyncctlError):
        return exc
    if isinstance(exc, sqlite3.Error):
        return database_error(exc, path or Path("the database"))
    return None


@contextmanager
def reported_errors(path: Path | None = None) -> Iterator[None]:
    """Every known error becomes one line on stderr and its exit code."""
    try:
        yield
    except (SyncctlError, sqlite3.Error) as exc:
        error = as_syncctl_error(exc, path)
        assert error is not None
        raise fail(error) from None


@contextmanager
def opened(ctx: typer.Context, *, read_only: bool) -> Iterator[Database]:
    db = options(ctx).open_db(read_only=read_only)
    try:
        yield db
    finally:
        db.close()


class StopSignals:
    """SIGINT/SIGTERM ask the engine to stop at its next safe point (and end a wait between runs); a
    second signal stops at once."""

    def __init__(self, waiter: Waiter | None = None) -> None:
        self.signum: int | None = None
        self.waiter = waiter

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        self.signum = signum
        if self.waiter is not None:
            self.waiter.stop()
        if not first:
            self.check()

    def signal_name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else "a signal"

    def exit_code(self) -> int:
        return EXIT_SIGINT if self.signum == signal.SIGINT else EXIT_SIGTERM

    def check(self) -> None:
        if self.signum is not None:
            name = signal.Signals(self.signum).name
            raise InterruptedRun(f"stopped by {name} at a safe point", exit_code=self.exit_code())

    # Set by main(): in the real process, a signal after the run still ends it with its code and a line,
    # never a bare -15; in tests (the CLI called in-process) the previous handlers come back.
    exit_after_run = False

    @contextmanager
    def installed(self) -> Iterator[StopSignals]:
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, _exit_on_signal if StopSignals.exit_after_run else handler)


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    code = EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM
    sys.stderr.write(f"syncctl: stopped by {signal.Signals(signum).name} while finishing\n")
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(code)
