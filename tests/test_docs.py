"""The documentation keeps up with the code."""

from __future__ import annotations

from pathlib import Path

import typer.main

from fedimeter.cli.app import app
from fedimeter.config import Settings

DOCS = Path(__file__).parent.parent / "docs"


def test_every_setting_is_documented() -> None:
    """docs/configuration.md has a row for every setting and its variable."""
    text = (DOCS / "configuration.md").read_text()
    missing = [
        name
        for name in Settings.model_fields
        if f"`{name}`" not in text or f"`FEDIMETER_{name.upper()}`" not in text
    ]
    assert missing == []


def _commands(group: object, prefix: str) -> list[str]:
    """Every command under a Typer group, as ``fedimeter a b``."""
    commands = getattr(group, "commands", None)
    assert isinstance(commands, dict)
    found = []
    for name, command in sorted(commands.items()):
        if hasattr(command, "commands"):
            found += _commands(command, f"{prefix} {name}")
        else:
            found.append(f"{prefix} {name}")
    return found


def test_every_command_is_documented() -> None:
    """docs/cli.md mentions every command of the CLI (a heading or a usage line)."""
    text = (DOCS / "cli.md").read_text()
    commands = _commands(typer.main.get_command(app), "fedimeter")
    assert len(commands) > 20
    missing = [command for command in commands if command not in text]
    assert missing == []
