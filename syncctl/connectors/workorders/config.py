"""The work-order source's settings: the client's inbound folder and the outbound folder syncctl writes to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from syncctl.core.errors import ConfigError
from syncctl.core.settings import Setting

INBOUND = "WORKORDERS_INBOUND_DIR"
OUTBOUND = "WORKORDERS_OUTBOUND_DIR"

SETTINGS = (
    Setting(INBOUND, "folder the client's work-order files (*.json) are read from", required=True),
    Setting(OUTBOUND, "folder work orders changed locally are written to, as {number}.json", required=True),
)


@dataclass(frozen=True)
class Settings:
    inbound_dir: Path
    outbound_dir: Path


def _folder(values: Mapping[str, str], name: str) -> Path:
    """An existing folder, absolute, so every log line names it unambiguously.

    A missing outbound folder is not created: a mistyped path would otherwise swallow the files in a
    folder the client never reads.
    """
    raw = values.get(name, "").strip()
    if not raw:
        raise ConfigError(f"{name} is not set (environment or .env file)")
    path = Path(raw).expanduser().absolute()
    if not path.exists():
        raise ConfigError(f"{name} {path} does not exist (create the folder or correct the setting)")
    if not path.is_dir():
        raise ConfigError(f"{name} {path} is not a folder")
    return path


def settings_from(values: Mapping[str, str]) -> Settings:
    inbound, outbound = _folder(values, INBOUND), _folder(values, OUTBOUND)
    if inbound.resolve() == outbound.resolve():
        # syncctl's own files would be read back as the client's, and would overwrite the client's.
        raise ConfigError(f"{INBOUND} and {OUTBOUND} must be different folders, both are {inbound}")
    return Settings(inbound_dir=inbound, outbound_dir=outbound)
