"""The sources syncctl knows, in the order CONTRACT.md gives. The only module that imports every connector.

Each source is a package `syncctl.connectors.<name>` whose `connector` module has `CONNECTOR` (a `Connector`)
and whose `commands` module has `app` (its `syncctl <name> ...` group), and optionally `ALIASES` (other names
for sub-groups, like `case` for `intempus case`) and `TOP_COMMANDS` (commands kept at the top level).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from types import ModuleType

import typer

from syncctl.core.connector import Connector, Registry

SOURCES = ("intempus", "grid", "sierra", "tasks", "workorders")


def _module(source: str, name: str) -> ModuleType | None:
    path = f"syncctl.connectors.{source}.{name}"
    if (
        importlib.util.find_spec(f"syncctl.connectors.{source}") is None
        or importlib.util.find_spec(path) is None
    ):
        return None
    return importlib.import_module(path)


def registry() -> Registry:
    connectors: list[Connector] = []
    for source in SOURCES:
        module = _module(source, "connector")
        if module is not None and hasattr(module, "CONNECTOR"):
            connectors.append(module.CONNECTOR)
    return Registry(connectors)


def command_groups() -> list[tuple[str, typer.Typer, dict[str, typer.Typer]]]:
    """(name, group, aliases) per source that has commands."""
    groups = []
    for source in SOURCES:
        module = _module(source, "commands")
        if module is not None:
            groups.append((source, module.app, dict(getattr(module, "ALIASES", {}))))
    return groups


def top_commands() -> list[tuple[str, Callable[..., None]]]:
    """Commands kept at the top level for their users (the fakes: `syncctl fake-intempus`, ...)."""
    commands: list[tuple[str, Callable[..., None]]] = []
    for source in SOURCES:
        module = _module(source, "commands")
        if module is not None:
            commands.extend(getattr(module, "TOP_COMMANDS", []))
    return commands


def report_commands() -> list[tuple[str, Callable[..., None]]]:
    """Reports that come with a source (`report kpi`, `report tasks`), mounted under `syncctl report`."""
    commands: list[tuple[str, Callable[..., None]]] = []
    for source in SOURCES:
        module = _module(source, "commands")
        if module is not None:
            commands.extend(getattr(module, "REPORTS", []))
    return commands
