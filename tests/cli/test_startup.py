"""Fast start: a command imports only what it uses (issue 14, item 5).

The root group names its commands in a table (``cli.main.COMMANDS``) and imports a
command's module only when that command runs or shows its help; ``--help`` and the read
commands must not load the write path, the web stack or the crypto they do not need.
Each check runs in a fresh interpreter, so that nothing is imported beforehand; none is
timed (``bench/startup.py`` measures the time).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from arms_ledger.cli.main import COMMANDS, cli, load_command

# What a command that does not need it must not import.
WEB = ("datasette", "altair", "vl_convert", "arms_ledger.projections.web")
CRYPTO = ("cryptography",)
POSTGRES = ("psycopg", "psycopg_pool", "arms_ledger.ledger.store.postgres")
WRITE_PATH = (
    "eventsourcing",
    "arms_ledger.ledger.app.application",
    "arms_ledger.ledger.app.batch",
    "arms_ledger.ledger.domain.rules",
)
STORE = ("arms_ledger.ledger.store", "arms_ledger.ledger.app.directory", "sqlite_utils")

PROBE = """
import json, sys
from arms_ledger.cli.main import cli
try:
    cli.main(sys.argv[1:], prog_name="arms-ledger", standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


HELP = """
import sys
from click.testing import CliRunner
from arms_ledger.cli.main import cli
sys.stdout.write(CliRunner().invoke(cli, ["--help"], terminal_width=100).stdout)
"""


def imported_by(*args: str) -> set[str]:
    """The modules loaded by ``arms-ledger ARGS`` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Those of ``names`` (a package stands for its submodules) found in ``modules``."""
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_help_imports_no_command_module():
    modules = imported_by("--help")
    assert "click" in modules
    assert loaded(modules, (*WEB, *CRYPTO, *POSTGRES, *WRITE_PATH, *STORE)) == []
    assert loaded(modules, ("msgspec", "arms_ledger.projections")) == []
    commands = {
        Path(m.replace(".", "/")).name for m in loaded(modules, ("arms_ledger.cli",))
    }
    assert commands <= {"cli", "main", "env"}, commands


def test_version_imports_no_command_module():
    modules = imported_by("--version")
    assert loaded(modules, (*WEB, *CRYPTO, *POSTGRES, *WRITE_PATH, *STORE)) == []


def test_a_command_s_help_imports_its_module_only():
    modules = imported_by("queue", "--help")
    assert "arms_ledger.cli.read" in modules
    assert loaded(modules, ("arms_ledger.cli.write", "arms_ledger.cli.serve")) == []
    assert loaded(modules, (*WEB, *CRYPTO, *POSTGRES, *WRITE_PATH, *STORE)) == []


@pytest.fixture(scope="module")
def demo_ledger(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("startup") / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "arms_ledger.cli", "demo", "--keep", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return path


@pytest.mark.parametrize(
    "command", [["queue", "f-35a"], ["queue"], ["partners"], ["cases"], ["backlog"]]
)
def test_a_read_command_on_sqlite_imports_no_write_path(demo_ledger, command):
    """It reads the SQLite store directly (``directory.open_log``): not the application,
    the library, the keys' crypto, the web view or psycopg."""
    modules = imported_by("--ledger", str(demo_ledger), *command)
    assert {"arms_ledger.cli.read", "arms_ledger.ledger.store.reading"} <= modules
    assert loaded(modules, (*WEB, *CRYPTO, *POSTGRES, *WRITE_PATH)) == []
    assert loaded(modules, ("arms_ledger.ledger.store.sqlite", "sqlite_utils")) == []
    # nor the projector: the read models are current, nothing is applied
    assert loaded(modules, ("arms_ledger.projections.projector",)) == []


def test_a_read_command_catches_the_read_models_up(demo_ledger, tmp_path):
    """The read path without the application still applies what was appended since:
    the read models reach the head, and equal a rebuild's."""
    import shutil
    import sqlite3

    from arms_ledger.ledger.app.directory import open_ledger
    from arms_ledger.ledger.domain import events as ev

    copy = tmp_path / "copy"
    shutil.copytree(demo_ledger, copy)
    with sqlite3.connect(copy / "projections.db") as conn:
        partner = conn.execute("SELECT min(partner) FROM partners").fetchone()[0]
    conn.close()
    ledger = open_ledger(copy)
    try:
        ledger.append(
            [
                ev.EconomicContributionRecorded(
                    partner=partner,
                    kind="advance-payment",
                    amount_usd=5_000_000_000,
                    description="a read after an append",
                    actor="test",
                )
            ]
        )
        head = ledger.head()
    finally:
        ledger.close()

    def partners() -> str:
        done = subprocess.run(
            [sys.executable, "-c", PROBE, "--ledger", str(copy), "partners", "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.rsplit("\n", 2)[0]

    caught_up = partners()
    with sqlite3.connect(copy / "projections.db") as conn:
        assert conn.execute("SELECT position FROM projection").fetchone()[0] == head
    conn.close()
    rebuilt = subprocess.run(
        [sys.executable, "-m", "arms_ledger.cli", "--ledger", str(copy), "rebuild"],
        capture_output=True,
        text=True,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert partners() == caught_up


# --- the table of commands -----------------------------------------------------------


def test_the_table_names_every_command_of_its_modules():
    """Each module's COMMANDS are all in the table, under their own names."""
    modules = {entry.module for entry in COMMANDS.values()}
    listed = {
        command.name: module
        for module in modules
        for command in __import__(module, fromlist=["COMMANDS"]).COMMANDS
    }
    assert listed == {name: entry.module for name, entry in COMMANDS.items()}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_s_summary_is_the_command_s_short_help(name):
    """The root's --help shortens the table's summary as click shortens the command's
    own help, at every width: the two cannot drift apart."""
    real = load_command(name, COMMANDS[name].module)
    summary = click.Command(name, help=COMMANDS[name].summary)
    for limit in range(10, 200):
        assert summary.get_short_help_str(limit) == real.get_short_help_str(limit), limit


def test_the_root_help_equals_the_help_of_the_loaded_commands():
    """--help before any command is loaded (in a fresh interpreter) lists the same lines
    as once every command is."""
    from click.testing import CliRunner

    before = subprocess.run(
        [sys.executable, "-c", HELP],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in COMMANDS:
        assert cli.get_command(click.Context(cli), name) is not None
    after = CliRunner().invoke(cli, ["--help"], terminal_width=100).stdout
    assert before == after


def test_an_unknown_command_is_a_usage_error():
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command 'no-such-command'" in result.stderr
