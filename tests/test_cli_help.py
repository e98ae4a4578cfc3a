"""Help that teaches (issue 15): every command, found by walking the command tree, answers -h and --help;
flags show as flags; the settings with their defaults and the exit codes are in the help; completion is
offered; --json prints an object also when a run is refused before it starts."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from syncctl.cli import app
from syncctl.core.settings import COMMON_SETTINGS
from syncctl.sources import registry
from tests.e2e import World


def command_paths() -> list[list[str]]:
    """Every command and group of the real tree, so a new command cannot be left without help."""
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    return paths


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "syncctl")
def test_help_every_command_answers_dash_h_like_dash_dash_help(path: list[str]) -> None:
    short = CliRunner().invoke(app, [*path, "-h"])
    long = CliRunner().invoke(app, [*path, "--help"])
    assert (short.exit_code, long.exit_code) == (0, 0), short.output
    assert short.output == long.output
    assert "Usage:" in short.output
    assert "<bool>" not in short.output  # flags show as flags, not as options taking a value


def test_help_root_shows_flags_as_flags_completion_and_exit_codes() -> None:
    out = CliRunner().invoke(app, ["-h"]).output
    assert "-q, --quiet" in out and "-v, --verbose" in out
    assert "--install-completion" in out
    for code in ("0", "1", "2", "3", "4", "5", "75", "77", "130", "143"):
        assert f"\n  {code:>5}  " in out.replace("\n    ", "\n  ") or f" {code}  " in out


def test_help_sync_lists_every_setting_with_its_default() -> None:
    out = CliRunner().invoke(app, ["sync", "-h"]).output
    for connector in registry().connectors:
        for setting in connector.settings:
            assert setting.name in out
    for setting in COMMON_SETTINGS:
        shown = f"{setting.name} (default {setting.default})" if setting.default else f"{setting.name}: "
        assert shown in out


def test_help_json_object_also_for_a_configuration_error(world: World) -> None:
    outcome = world.run("sync", "--json", INTEMPUS_API_KEY="")
    assert outcome.exit_code == 3
    data = json.loads(outcome.stdout)
    assert (data["status"], data["exit_code"]) == ("failed", 3) and "INTEMPUS_API_KEY" in data["error"]
