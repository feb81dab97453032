"""The README stays true: its generated sections are current and every command has help."""

from __future__ import annotations

from pathlib import Path

import click
from arms_ledger.cli.main import cli
from cogapp import Cog

ROOT = Path(__file__).resolve().parent.parent


def commands(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        for name in command.list_commands(None):
            yield from commands(command.get_command(None, name), (*path, name))


def test_every_command_has_help_and_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for path, command in commands(cli):
        assert command.help, f"{' '.join(path)} has no help"
        assert f"### `{' '.join(('arms-ledger', *path))}`" in readme


def test_readme_generated_sections_are_current(monkeypatch):
    monkeypatch.chdir(ROOT)
    status = Cog().main(["cog", "--check", "README.md"])
    assert status == 0, "README.md is stale: run `cog -r README.md`"
