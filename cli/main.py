"""The ``arms-ledger`` command: a thin shell over ``ledger`` (write) and ``projections``.

This module holds the root group (its options build the ``Env`` every command shares),
the translation of the ledger's errors into one-line messages, and the table of the
commands (``COMMANDS``), one module per verb group, each imported only when one of its
commands runs or shows its help (so ``--help`` and the read commands start fast):

\b
  write   init, append              log     log, history, schema
  verbs   case, partner, platform,  read    queue, partners, cases, backlog, query,
          policy (typed events)             rebuild
  whatif  whatif                    correct correct
  audit   the audit group           serve   serve
  demo    demo

Exit codes: 0 success, 1 refused or failed (``Error: …`` on stderr), 2 usage error.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import click
from arms_ledger.cli.env import Env

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Entry(NamedTuple):
    """A command of the root group: the module that defines it (in its ``COMMANDS``),
    and the first paragraph of its help, which the root's ``--help`` shortens without
    importing the module (tests/cli/test_startup.py checks that the two agree)."""

    module: str
    summary: str


# Every command of ``arms-ledger``; ``--help`` lists them by name. A new command is one
# row here, naming a cli module whose ``COMMANDS`` holds it.
COMMANDS: dict[str, Entry] = {
    "init": Entry(
        "arms_ledger.cli.write",
        "Create a ledger in the --ledger directory, with its Ed25519 signing key.",
    ),
    "append": Entry(
        "arms_ledger.cli.write",
        "Append the events in FILE (JSON Lines; - for stdin), all or nothing.",
    ),
    "correct": Entry(
        "arms_ledger.cli.correct",
        "Correct the event at log POSITION: new values for its fields, or its retraction.",
    ),
    "log": Entry("arms_ledger.cli.log", "List the log in order, with filters."),
    "history": Entry(
        "arms_ledger.cli.log",
        "Show one stream's events and its state, at its latest or any version.",
    ),
    "schema": Entry(
        "arms_ledger.cli.log",
        "Show the fields of event TYPE, or print the JSON Schema of the input format.",
    ),
    "queue": Entry(
        "arms_ledger.cli.read",
        "Show the priority queue of PLATFORM, or every queue's length.",
    ),
    "partners": Entry(
        "arms_ledger.cli.read",
        "List partners with their facts, score components, score and tier.",
    ),
    "cases": Entry(
        "arms_ledger.cli.read",
        "List cases: stage, quantities, values, holds and notification status.",
    ),
    "backlog": Entry(
        "arms_ledger.cli.read",
        "Open cases, units left and value, by platform, partner or stage.",
    ),
    "query": Entry("arms_ledger.cli.read", "Run a read-only SQL query on the read models."),
    "rebuild": Entry(
        "arms_ledger.cli.read", "Drop the read models and replay the whole log into them."
    ),
    "snapshots": Entry(
        "arms_ledger.cli.read",
        "Build the snapshots replays of the past start from, and list them.",
    ),
    "whatif": Entry(
        "arms_ledger.cli.whatif",
        "Show the queues under a proposal beside the queues as they are.",
    ),
    "stability": Entry(
        "arms_ledger.cli.whatif",
        "Show how far the weights may move before PLATFORM's queue order changes.",
    ),
    "audit": Entry(
        "arms_ledger.cli.audit",
        "Audit trails, explanations, differences over time and oversight flags; signed "
        "checkpoints, Merkle proofs, verification and exports for auditors.",
    ),
    "keygen": Entry(
        "arms_ledger.cli.keys",
        "Make an official's Ed25519 key pair to sign decisions with.",
    ),
    "witness": Entry(
        "arms_ledger.cli.witness",
        "Run an independent witness that cosigns a log's checkpoints only as it grows.",
    ),
    "serve": Entry(
        "arms_ledger.cli.serve",
        "Serve the read models as a read-only web view (Datasette) until Ctrl-C.",
    ),
    "demo": Entry(
        "arms_ledger.cli.demo",
        "Build the fixture scenario into a fresh ledger; show contested queues just "
        "before and after E.O. 14383, who moved and why, and the oversight flags.",
    ),
    "case": Entry(
        "arms_ledger.cli.verbs",
        "Move a case through its stages: file, clear, notify, offer, deliver, close…",
    ),
    "partner": Entry(
        "arms_ledger.cli.verbs",
        "Record partner facts and decisions: spending, strategic value, overrides…",
    ),
    "platform": Entry(
        "arms_ledger.cli.verbs",
        "Maintain the catalog: platforms, capacity, priority catalog, EEUM.",
    ),
    "policy": Entry(
        "arms_ledger.cli.verbs", "Adopt priority policies and notification thresholds."
    ),
}


def default_ledger_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "arms-ledger"


class LazyGroup(click.Group):
    """A group whose commands are named in a table (``name -> Entry``) and imported
    from their module only when asked for (click's "lazy loading subcommands")."""

    def __init__(self, *args: Any, lazy: Mapping[str, Entry], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context | None) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context | None, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(load_command(cmd_name, self.lazy[cmd_name].module))
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but a command not yet imported is shortened from its summary in
        the table: the root's --help imports no command module."""
        names = self.list_commands(ctx)
        rows: list[tuple[str, click.Command]] = []
        for name in names:
            command = self.commands.get(name)
            if command is None:
                command = click.Command(name, help=self.lazy[name].summary)
            if not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl(
                    [(name, command.get_short_help_str(limit)) for name, command in rows]
                )


def load_command(name: str, module: str) -> click.Command:
    """The command ``name`` from the ``COMMANDS`` of ``module``."""
    found = {c.name: c for c in importlib.import_module(module).COMMANDS}
    if name not in found:
        raise RuntimeError(f"{module}.COMMANDS has no command {name!r}")
    return found[name]


class LedgerGroup(LazyGroup):
    """Turns the ledger's errors into one-line ``Error: …`` messages, exit code 1; draws
    the progress of long operations on stderr when it is a terminal (cli/progress.py)."""

    def invoke(self, ctx: click.Context) -> Any:
        from arms_ledger.cli.progress import bars
        from arms_ledger.ledger.errors import LedgerError, is_storage_failure

        try:
            with bars():
                return super().invoke(ctx)
        except click.NoSuchOption as error:
            raise _without_old_spellings(error) from None
        except LedgerError as error:
            raise click.ClickException(str(error)) from None
        except Exception as error:
            if not is_storage_failure(error):
                raise
            raise click.ClickException(_storage_failure(ctx, error)) from None


def _without_old_spellings(error: click.NoSuchOption) -> click.NoSuchOption:
    """The error with its "did you mean" suggestions taken from the options --help
    shows: never a renamed option's old spelling (``cli.options.Renamed``)."""
    ctx = error.ctx
    if ctx is None or error.possibilities is None:
        return error
    shown = [
        name
        for param in ctx.command.get_params(ctx)
        if isinstance(param, click.Option) and not param.hidden
        for name in (*param.opts, *param.secondary_opts)
    ]
    return click.NoSuchOption(error.option_name, error.message, shown, ctx)


def _storage_failure(ctx: click.Context, error: BaseException) -> str:
    """The one line for a failure of the event store (the read models report their
    own): the store named as ledger.json has it."""
    from arms_ledger.ledger.app.directory import EVENTS_DB, META_FILE
    from arms_ledger.ledger.errors import DAMAGED_STORE, storage_error

    env = ctx.obj
    where = "the event store"
    if isinstance(env, Env):
        try:
            store = json.loads((env.path / META_FILE).read_text()).get("store", "sqlite")
        except (OSError, ValueError):
            store = "sqlite"
        where = (
            f"the event store {env.path / EVENTS_DB}"
            if store == "sqlite"
            else f"the event store {store}"
        )
    return str(storage_error(error, where, DAMAGED_STORE))


@click.group(cls=LedgerGroup, lazy=COMMANDS, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="arms-ledger")
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ARMS_LEDGER",
    default=default_ledger_path,
    show_default="$ARMS_LEDGER, else $XDG_DATA_HOME/arms-ledger, else "
    "~/.local/share/arms-ledger",
    help="The ledger's directory.",
)
@click.option(
    "--store",
    envvar="ARMS_LEDGER_STORE",
    metavar="sqlite|URL",
    show_default="$ARMS_LEDGER_STORE, else sqlite",
    help="Where a new ledger keeps its events: sqlite (events.db in its directory) or "
    "postgresql://user@host:5432/dbname[?schema=NAME], shared by many writers.",
)
@click.pass_context
def cli(ctx: click.Context, ledger_path: Path, store: str | None) -> None:
    """An event-sourced ledger of U.S. arms-transfer decisions.

    Every partner update, case filing, catalog change and reprioritization is an
    immutable, attributed event; queues and audit trails are rebuilt from the log.

    \b
    Start with:
      arms-ledger demo                      # a demo ledger from the fixtures
      arms-ledger init                      # an empty ledger of your own
      arms-ledger append events.jsonl       # append JSON Lines, all or nothing
      arms-ledger log --type HoldPlaced     # read the log
    """
    given = ctx.get_parameter_source("store") == click.core.ParameterSource.COMMANDLINE
    env = Env(ledger_path, store, given)
    ctx.obj = env
    ctx.call_on_close(env.close)
