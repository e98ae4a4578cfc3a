"""The command line's shape: every command has help, and the entry point's own behaviour."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from syncctl import __version__
from syncctl.cli import app

COMMANDS = [
    ["sync"],
    ["status"],
    ["conflicts"],
    ["discard"],
    ["case"],
    ["case", "get"],
    ["case", "create"],
    ["case", "update"],
    ["case", "delete"],
    ["fake-intempus"],
    ["demo"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_cli_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    # the command's own docstring is shown: a command without one would show nothing after Usage
    assert len(result.output.strip().splitlines()) > 3


def test_cli_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert (result.exit_code, result.output.strip()) == (0, f"syncctl {__version__}")


def test_cli_runs_as_a_module_and_refuses_unknown_commands_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "syncctl", "resync"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("syncctl: error: No such command 'resync'.")
    assert line.endswith("(see `syncctl --help`)")
