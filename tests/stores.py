"""The event stores the suite runs against: SQLite always, PostgreSQL when reachable.

Every test that makes a ledger takes the ``store`` fixture (through ``ledger_dir``, or a
module's ``pytestmark``) and so runs once per store. On PostgreSQL each ledger the test
creates, through the library or the CLI, gets a schema of its own in the database named
by ``$ARMS_LEDGER_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
the schemas are dropped when the session ends. Where no server answers, the PostgreSQL
runs are skipped with the reason, unless ``$ARMS_LEDGER_REQUIRE_PG`` is set (CI sets it):
then they fail.
"""

from __future__ import annotations

import functools
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from arms_ledger.ledger.app import directory

STORES = ("sqlite", "postgresql")
# The fixtures' parameters: the PostgreSQL runs are marked slow, so that the quick loop
# (`pytest -m "not slow"`) runs every ledger test once, on SQLite; the full suite runs
# each on both stores.
PARAMS = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.slow)]
PG_URL = os.environ.get("ARMS_LEDGER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA_PREFIX = "t_"
created: list[str] = []


@functools.cache
def pg_unavailable() -> str | None:
    """Why PostgreSQL cannot be used here, or None."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    from arms_ledger.ledger.errors import LedgerError
    from arms_ledger.ledger.store.postgres import Location

    try:
        Location(PG_URL).check()
    except LedgerError as error:
        return f"{error} (set ARMS_LEDGER_TEST_PG to a reachable database)"
    return None


def new_pg_store() -> str:
    """A PostgreSQL store URL of a schema no other ledger uses."""
    name = f"{SCHEMA_PREFIX}{uuid.uuid4().hex[:20]}"
    created.append(name)
    return f"{PG_URL}?schema={name}"


@contextmanager
def using(store: str) -> Iterator[None]:
    """New ledgers made in this block (by ``create`` or ``arms-ledger init``) use
    ``store``, each in a schema of its own on PostgreSQL; subprocesses get one PostgreSQL
    schema through $ARMS_LEDGER_STORE (an in-process `arms-ledger` ignores it here)."""
    with pytest.MonkeyPatch.context() as mp:
        if store == "sqlite":
            mp.delenv("ARMS_LEDGER_STORE", raising=False)
        else:
            reason = pg_unavailable()
            if reason is not None:
                if os.environ.get("ARMS_LEDGER_REQUIRE_PG"):
                    pytest.fail(f"ARMS_LEDGER_REQUIRE_PG is set but {reason}")
                pytest.skip(reason)
            mp.setattr(directory, "default_store", new_pg_store)
            mp.setenv("ARMS_LEDGER_STORE", new_pg_store())
            # In-process, `arms-ledger init`/`demo` would read that one schema from the
            # environment (click's envvar) and every ledger of the test would share its
            # log: here --store defaults to default_store(), a new schema per ledger.
            from arms_ledger.cli.main import cli

            option = next(p for p in cli.params if p.name == "store")
            mp.setattr(option, "envvar", None)
        yield


def drop_schemas() -> None:
    if not created or pg_unavailable() is not None:
        return
    from arms_ledger.ledger.store.postgres import Location
    from psycopg.sql import SQL, Identifier

    with Location(PG_URL).connect(autocommit=True) as conn:
        for name in created:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(name)))
    created.clear()


# --- the store behind a ledger's back ----------------------------------------------------


class Raw:
    """A connection to a ledger's event store, bypassing the ledger (to inspect or tamper).

    SQL is written once, in SQLite's words (``stored_events``, ``rowid``, ``?``); on
    PostgreSQL the table names are qualified with the ledger's schema, ``rowid`` becomes
    ``notification_id`` and ``?`` becomes ``%s``.
    """

    def __init__(self, conn, schema: str | None):
        self.conn, self.schema = conn, schema

    def sql(self, statement: str) -> str:
        if self.schema is None:
            return statement
        q = f'"{self.schema}".'
        statement = re.sub(r"\bstored_events\b", q + "ledger_events", statement)
        statement = re.sub(r"\b(tlog_nodes|tlog_checkpoints)\b", q + r"\1", statement)
        statement = re.sub(r"\browid\b", "notification_id", statement)
        return statement.replace("?", "%s")

    def execute(self, statement: str, params=()):
        return self.conn.execute(self.sql(statement), params)

    def executemany(self, statement: str, rows) -> None:
        self.conn.cursor().executemany(self.sql(statement), rows)


@contextmanager
def raw(ledger_dir) -> Iterator[Raw]:
    """The store of the ledger in ``ledger_dir``; committed when the block succeeds."""
    import json
    import sqlite3
    from contextlib import closing

    store = json.loads((ledger_dir / "ledger.json").read_text())["store"]
    if store == "sqlite":
        with closing(sqlite3.connect(ledger_dir / "events.db")) as conn, conn:
            yield Raw(conn, None)
        return

    from arms_ledger.ledger.store.postgres import Location

    location = Location(store)
    with location.connect() as pg:  # commits on success, rolls back on error
        yield Raw(pg, location.schema)


def copy_ledger(source, target):
    """Copy the ledger in directory ``source`` to ``target``, store included.

    A PostgreSQL ledger's directory only names its schema: a plain copy of the directory
    would share the events with the original (and tampering with the copy would tamper
    with the original). Here the copy gets a new schema holding the same rows.
    """
    import json
    import shutil

    shutil.copytree(source, target)
    meta_file = target / "ledger.json"
    meta = json.loads(meta_file.read_text())
    if meta.get("store", "sqlite") == "sqlite":
        return target
    from arms_ledger.ledger.app.application import Ledger
    from arms_ledger.ledger.store.postgres import Location
    from psycopg.sql import SQL, Identifier

    old, new = Location(meta["store"]), Location(new_pg_store())
    new.check()  # creates the schema
    Ledger(
        new.env(create_tables=True)
    ).close()  # the tables exactly as the ledger makes them
    with old.connect() as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_type = 'BASE TABLE'",
                (old.schema,),
            ).fetchall()
        ]
        for table in tables:
            conn.execute(
                SQL("INSERT INTO {} SELECT * FROM {}").format(
                    Identifier(new.schema, table), Identifier(old.schema, table)
                )
            )
            serial = conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s "
                "AND column_default LIKE 'nextval(%%'",
                (new.schema, table),
            ).fetchall()
            for (column,) in serial:
                qualified = f'"{new.schema}"."{table}"'
                conn.execute(
                    SQL(
                        "SELECT setval(pg_get_serial_sequence(%s, %s), "
                        "coalesce((SELECT max({}) FROM {}), 0) + 1, false)"
                    ).format(Identifier(column), Identifier(new.schema, table)),
                    (qualified, column),
                )
    meta["store"] = new.url
    meta_file.write_text(json.dumps(meta, indent=2) + "\n")
    return target


def kept_demo(path: Path, store: str) -> Path:
    """The demo ledger (``arms-ledger demo --keep``) made at ``path`` on ``store``."""
    from arms_ledger.cli.main import cli
    from click.testing import CliRunner

    with using(store):
        result = CliRunner().invoke(cli, ["demo", "--keep", str(path)])
    assert result.exit_code == 0, result.stderr
    return path
