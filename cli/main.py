"""The ``arms-ledger`` command: a thin shell over ``ledger`` (write) and ``projections``.

This module holds the root group (its options build the ``Env`` every command shares),
the translation of the ledger's errors into one-line messages, and the registration of
the commands, one module per verb group:

\b
  write   init, append              log     log, history, schema
  verbs   case, partner, platform,  read    queue, partners, cases, backlog, query,
          policy (typed events)             rebuild
  whatif  whatif
  audit   the audit group           serve   serve
  demo    demo

Exit codes: 0 success, 1 refused or failed (``Error: …`` on stderr), 2 usage error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from arms_ledger.cli import audit, demo, log, read, serve, verbs, whatif, write
from arms_ledger.cli.env import Env
from arms_ledger.ledger.app.directory import EVENTS_DB, META_FILE
from arms_ledger.ledger.errors import (
    DAMAGED_STORE,
    LedgerError,
    is_storage_failure,
    storage_error,
)

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def default_ledger_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "arms-ledger"


class LedgerGroup(click.Group):
    """Turns the ledger's errors into one-line ``Error: …`` messages, exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as error:
            raise click.ClickException(str(error)) from None
        except Exception as error:
            if not is_storage_failure(error):
                raise
            raise click.ClickException(_storage_failure(ctx, error)) from None


def _storage_failure(ctx: click.Context, error: BaseException) -> str:
    """The one line for a failure of the event store (the read models report their
    own): the store named as ledger.json has it."""
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


@click.group(cls=LedgerGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="arms-ledger")
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ARMS_LEDGER",
    default=default_ledger_path,
    show_default="$ARMS_LEDGER, else ~/.local/share/arms-ledger",
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


for _command in (
    *write.COMMANDS,
    *log.COMMANDS,
    *read.COMMANDS,
    *whatif.COMMANDS,
    audit.audit_group,
    *serve.COMMANDS,
    *demo.COMMANDS,
    *verbs.GROUPS,
):
    cli.add_command(_command)
