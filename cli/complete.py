"""Shell completion of the ledger's ids (docs/environment.md, "Shell completion").

click completes the commands and options itself (``_ARMS_LEDGER_COMPLETE=bash_source
arms-ledger``); the callbacks here complete platform, partner, case and stream ids from
the read models of the ledger the command line names (``--ledger``, else
``$ARMS_LEDGER``, else the default directory): one indexed query on ``projections.db``
opened read-only. Completing must never get in the way of typing: with no ledger, no
read models or anything else wrong, a callback offers nothing and prints nothing.

This module imports only ``sqlite3`` (each TAB starts a new process).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

# ledger.app.boundary.PROJECTIONS_DB, named here without importing the ledger.
READ_MODELS = "projections.db"

# The ids of each kind of stream, in the read models.
QUERIES = {
    "platform": "SELECT platform FROM platforms ORDER BY platform",
    "partner": "SELECT partner FROM partners ORDER BY partner",
    "case": 'SELECT "case" FROM cases ORDER BY "case"',
    "policy": "SELECT DISTINCT policy FROM policies ORDER BY policy",
}


def _ledger(ctx: click.Context) -> Path | None:
    """The ledger directory the command line names (the root's --ledger, with its
    environment variable and default, as click parsed them for completion)."""
    path = ctx.find_root().params.get("ledger_path")
    return Path(path) if path else None


def ids(ctx: click.Context, kind: str) -> list[str]:
    """The ids of streams of ``kind`` in the read models; none when there are none to
    read (no ledger, no read models, a damaged or locked file: anything)."""
    try:
        path = _ledger(ctx)
        if path is None:
            return []
        db = path / READ_MODELS
        if not db.is_file():
            return []
        uri = f"{db.resolve().as_uri()}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=0.2)) as conn:
            return [str(row[0]) for row in conn.execute(QUERIES[kind]) if row[0]]
    except Exception:
        return []


def _matching(found: list[str], incomplete: str) -> list[CompletionItem]:
    """Those of ``found`` that start with ``incomplete``, whatever the case (pol: POL)."""
    start = incomplete.lower()
    return [CompletionItem(i) for i in found if i.lower().startswith(start)]


def completer(kind: str) -> Any:
    """A ``shell_complete`` callback offering the ids of ``kind``."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
        return _matching(ids(ctx, kind), incomplete)

    return complete


platform_ids = completer("platform")
partner_ids = completer("partner")
case_ids = completer("case")


def stream_ids(ctx: click.Context, param: click.Parameter, incomplete: str) -> list:
    """Any stream: bare ids (PL-B-AHA, POL, f-35a, a policy), or with their kind when
    one is typed (case:PL-B-AHA)."""
    kind, sep, rest = incomplete.partition(":")
    if sep:
        if kind not in QUERIES:
            return []
        return [
            CompletionItem(f"{kind}:{item.value}")
            for item in _matching(ids(ctx, kind), rest)
        ]
    found = [i for k in ("case", "partner", "platform", "policy") for i in ids(ctx, k)]
    return _matching(list(dict.fromkeys(found)), incomplete)
