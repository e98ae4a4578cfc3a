"""Help that teaches: plain help with flags shown as flags, `-h`, the settings of every source with their
defaults, and the exit codes. Also the click exception classes of the click Typer uses (it may bundle
its own copy), so errors are recognised by type, not by name."""

from __future__ import annotations

import importlib
import importlib.util

import typer

from syncctl.core import errors
from syncctl.core.settings import COMMON_SETTINGS, Setting

# Typer 0.29+ bundles click as typer._click; older ones use the click package. The classes of the one in use:
_CLICK = "typer._click" if importlib.util.find_spec("typer._click") is not None else "click"
_exceptions = importlib.import_module(f"{_CLICK}.exceptions")
Abort: type[BaseException] = typer.Abort
ClickException: type[Exception] = _exceptions.ClickException
NoArgsIsHelpError: type[Exception] = _exceptions.NoArgsIsHelpError

__all__ = ["Abort", "ClickException", "NoArgsIsHelpError", "exit_codes", "plain_help", "settings_epilog"]

EXIT_CODES = (
    (errors.EXIT_OK, "success"),
    (
        errors.EXIT_FAILURE,
        "sync or remote failure (unreachable after retries, authentication, a refused write)",
    ),
    (errors.EXIT_USAGE, "usage error (bad option, id, field or input file); nothing was changed"),
    (errors.EXIT_CONFIG, "configuration error (a missing or malformed setting)"),
    (errors.EXIT_REFUSED, "refused by a safety guard (mass delete); nothing was deleted"),
    (errors.EXIT_DATABASE, "the SQLite file cannot be used (not a database, busy, full disk, foreign table)"),
    (errors.EXIT_LOCKED, "another run holds the lock for this source and file; nothing was changed"),
    (errors.EXIT_ROLE, "the credentials lack the role for this write (e.g. grid without manager)"),
    (errors.EXIT_SIGINT, "stopped by Ctrl-C at a safe point"),
    (errors.EXIT_SIGTERM, "stopped by SIGTERM at a safe point"),
)


def exit_codes() -> str:
    lines = ["Exit codes:"] + [f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES]
    return "\b\n" + "\n".join(lines)


def _setting_line(setting: Setting) -> str:
    default = (
        f" (default {setting.default})" if setting.default else " (required)" if setting.required else ""
    )
    return f"  {setting.name}{default}: {setting.help}"


def settings_epilog() -> str:
    """Every setting, by source, from the environment or a .env file; secrets are never printed."""
    from syncctl.sources import registry  # late: sources import command modules that import the CLI

    lines = ["Settings (environment or .env; the environment wins):"]
    for connector in registry().connectors:
        lines.append(f" {connector.name}:")
        lines += [_setting_line(s) for s in connector.settings if s not in COMMON_SETTINGS]
    lines.append(" every source:")
    lines += [_setting_line(s) for s in COMMON_SETTINGS]
    return "\b\n" + "\n".join(lines) + "\n\n" + exit_codes()


def plain_help(app: typer.Typer) -> None:
    """Plain help for every group: flags as flags (`-q`, not `-q <bool>`), no boxes to wrap."""
    app.rich_markup_mode = None
    for group in app.registered_groups:
        if group.typer_instance is not None:
            plain_help(group.typer_instance)
