"""The sources syncctl knows, in the order CONTRACT.md gives. The only module that imports every connector."""

from __future__ import annotations

from collections.abc import Callable

import typer

from syncctl.connectors.intempus import commands as intempus_commands
from syncctl.connectors.intempus.connector import IntempusConnector
from syncctl.core.connector import Registry

# (command group name, its Typer app, an optional (alias name, app) for a shorter spelling)
CommandGroup = tuple[str, typer.Typer, tuple[str, typer.Typer] | None]


def registry() -> Registry:
    return Registry([IntempusConnector()])


def top_commands() -> list[tuple[str, Callable[..., None]]]:
    """Commands kept at the top level for their users (the fakes)."""
    return [("fake-intempus", intempus_commands.fake_intempus)]


def command_groups() -> list[CommandGroup]:
    return [
        ("intempus", intempus_commands.app, ("case", intempus_commands.case_app)),
    ]
