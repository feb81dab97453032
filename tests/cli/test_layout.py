"""The command line's shape: every command has help, every cli module imports on its own,
and the modules import each other without a cycle (``cli.env`` at the bottom)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import click
import pytest
from arms_ledger.cli import demo
from arms_ledger.cli.main import cli
from arms_ledger.cli.write import read_events
from arms_ledger.ledger.domain import events as ev
from click.testing import CliRunner

CLI = Path(demo.__file__).resolve().parent
MODULES = sorted(p.stem for p in CLI.glob("*.py") if p.stem != "__main__")


def walk(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            found = command.get_command(click.Context(command), name)
            assert found is not None
            yield from walk(found, (*path, name))


COMMANDS = {" ".join(path) or "(root)": path for path, _ in walk(cli)}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command):
    path = COMMANDS[command]
    found: click.Command | None = cli
    for name in path:
        assert isinstance(found, click.Group)
        found = found.get_command(click.Context(found), name)
    assert found is not None and found.help, f"{command} has no help"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")


@pytest.mark.parametrize("module", MODULES)
def test_each_cli_module_imports_alone(module):
    """In a fresh interpreter, so that no other module has been imported first."""
    done = subprocess.run(
        [sys.executable, "-c", f"import arms_ledger.cli.{module}"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def cli_imports(module: str) -> set[str]:
    """The cli modules ``module`` imports, at the top or inside a function."""
    tree = ast.parse((CLI / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "arms_ledger.cli":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith("arms_ledger.cli."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {
                alias.name.split(".")[2]
                for alias in node.names
                if alias.name.startswith("arms_ledger.cli.")
            }
    return found


def test_the_cli_modules_import_each_other_without_a_cycle():
    graph = {module: cli_imports(module) for module in MODULES}
    assert graph["env"] == set(), "cli.env imports nothing from the rest of cli"
    done: set[str] = set()

    def visit(module: str, stack: tuple[str, ...]) -> None:
        assert module not in stack, " -> ".join((*stack, module))
        if module in done:
            return
        for imported in graph[module]:
            visit(imported, (*stack, module))
        done.add(module)

    for module in MODULES:
        visit(module, ())


def test_the_demo_facts_are_in_the_scenario():
    """fixtures/demo.json names a policy's legal basis and platforms of scenario.jsonl."""
    facts = demo.demo_facts()
    events = [e for _, e in read_events(demo.SCENARIO.read_bytes().splitlines())]
    listed = {e.platform for e in events if isinstance(e, ev.PlatformListed)}
    assert set(facts.contested) <= listed
    assert any(
        isinstance(e, ev.PriorityPolicyAdopted) and e.legal_basis == facts.legal_basis
        for e in events
    )
