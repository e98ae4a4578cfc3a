"""Log lines for people and for machines: timestamped text, or one JSON object per line.

Every record passes the secret scrubber first (see `cli.common.Redactor`); a JSON line carries the time,
level, run id, source, event and counts when the code that logged gave them (`extra={"event": ...}`).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from syncctl.core.errors import UsageError

FIELDS = ("source", "run_id", "event", "counts")


class Context(logging.Filter):
    """Adds the current source and run id to every record (set by the CLI around each run)."""

    def __init__(self) -> None:
        super().__init__()
        self.source: str | None = None
        self.run_id: int | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "source", None) is None:
            record.source = self.source
        if getattr(record, "run_id", None) is None:
            record.run_id = self.run_id
        return True


CONTEXT = Context()


class State:
    separate = False  # True when log records go somewhere other than plain text on stderr


STATE = State()


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="seconds")


class TextFormatter(logging.Formatter):
    """`2026-11-23T20:31:02+00:00 syncctl[intempus]: ERROR: message`; without a time on a terminal."""

    def __init__(self, *, with_time: bool) -> None:
        super().__init__()
        self.with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        source = getattr(record, "source", None)
        who = f"syncctl[{source}]" if source else "syncctl"
        line = f"{who}: {record.levelname}: {record.getMessage()}"
        if record.exc_info and logging.getLogger("syncctl").isEnabledFor(logging.DEBUG):
            line += "\n" + self.formatException(record.exc_info)
        return f"{_time(record)} {line}" if self.with_time else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {"time": _time(record), "level": record.levelname.lower()}
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        data["message"] = record.getMessage()
        return json.dumps(data, ensure_ascii=False, default=str)


def configure(
    *,
    level: int,
    fmt: str,
    log_file: Path | None,
    redactor: logging.Filter,
    stream: TextIO | None = None,
) -> None:
    """One handler, scrubbed and carrying the run context; to stderr or appended to `log_file`."""
    if fmt not in ("text", "json"):
        raise UsageError(f"--log-format takes text or json, got {fmt!r}")
    target = stream if stream is not None else sys.stderr
    handler: logging.Handler
    if log_file is not None:
        try:
            # Watched: when logrotate renames the file under a long `sync --every`, the next line opens
            # a new file at the path instead of following the renamed one.
            handler = logging.handlers.WatchedFileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write the log file {log_file}: {exc.strerror}") from None
        with_time = True
    else:
        handler = logging.StreamHandler(target)
        # Under cron or systemd a line needs its time; on a terminal the person knows when it is.
        with_time = fmt == "json" or not target.isatty()
    STATE.separate = log_file is not None or fmt == "json"
    handler.addFilter(redactor)
    handler.addFilter(CONTEXT)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(with_time=with_time))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("syncctl").setLevel(level)
