"""``arms-ledger query`` and the web view's SQL: a user's query over the read models, and
nothing else.

SQLite's authorizer checks every statement as it is compiled: reading tables and views,
and calling ordinary functions, is allowed; writing, ``ATTACH``, ``PRAGMA`` (but the few
that only describe a table), transactions and functions that reach outside the database
(``load_extension``, ``fts3_tokenizer``, ``readfile``…) are refused with one line that
says what was refused. So a query cannot change the read models, create files or load
code, whatever it says.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from arms_ledger.ledger.errors import LedgerError

# Pragmas that only describe the schema.
_READ_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "collation_list",
        "function_list",
    }
)
# Functions that reach outside the database or into SQLite's internals.
_DENIED_FUNCTIONS = frozenset(
    {
        "load_extension",
        "fts3_tokenizer",
        "readfile",
        "writefile",
        "edit",
        "fts5",
        "sqlite_dbpage",
        "zipfile",
        "sqlar_compress",
        "sqlar_uncompress",
    }
)
_ALLOWED = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})
_ACTIONS = [
    "ALTER_TABLE",
    "ANALYZE",
    "ATTACH",
    "CREATE_INDEX",
    "CREATE_TABLE",
    "CREATE_TEMP_INDEX",
    "CREATE_TEMP_TABLE",
    "CREATE_TEMP_TRIGGER",
    "CREATE_TEMP_VIEW",
    "CREATE_TRIGGER",
    "CREATE_VIEW",
    "CREATE_VTABLE",
    "DELETE",
    "DETACH",
    "DROP_INDEX",
    "DROP_TABLE",
    "DROP_TEMP_INDEX",
    "DROP_TEMP_TABLE",
    "DROP_TEMP_TRIGGER",
    "DROP_TEMP_VIEW",
    "DROP_TRIGGER",
    "DROP_VIEW",
    "DROP_VTABLE",
    "FUNCTION",
    "INSERT",
    "PRAGMA",
    "REINDEX",
    "SAVEPOINT",
    "TRANSACTION",
    "UPDATE",
]
_NAMES = {
    getattr(sqlite3, f"SQLITE_{name}"): name.lower().replace("_", " ")
    for name in _ACTIONS
    if hasattr(sqlite3, f"SQLITE_{name}")
}


def no_outside_functions(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
    """An authorizer that refuses only the functions reaching outside the database or
    into SQLite's internals (the web view's own queries need the rest)."""
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class _Refusal:
    """The authorizer; remembers why it refused, for the message."""

    def __init__(self) -> None:
        self.why: str | None = None

    def __call__(self, action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
        if action in _ALLOWED:
            return sqlite3.SQLITE_OK
        if (
            action == sqlite3.SQLITE_FUNCTION
            and (arg2 or "").lower() not in _DENIED_FUNCTIONS
        ):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _READ_PRAGMAS:
            return sqlite3.SQLITE_OK
        what = _NAMES.get(action, f"action {action}")
        detail = arg2 if action == sqlite3.SQLITE_FUNCTION else arg1
        self.why = f"{what}{f' {detail}' if detail else ''}"
        return sqlite3.SQLITE_DENY


def run(conn: sqlite3.Connection, sql: str, params: Sequence | dict = ()) -> list[dict]:
    """The rows of a user's read-only query, as dicts; one-line errors (LedgerError)."""
    refusal = _Refusal()
    conn.set_authorizer(refusal)
    try:
        cursor = conn.execute(sql, params)
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    except sqlite3.DatabaseError as error:
        if refusal.why is not None:
            raise LedgerError(
                f"the query was refused: {refusal.why} is not allowed (queries only read "
                "the read models: SELECT, WITH, and functions that compute)"
            ) from None
        raise LedgerError(f"the query failed: {error}") from None
    except (sqlite3.Warning, sqlite3.InterfaceError, sqlite3.ProgrammingError) as error:
        raise LedgerError(f"the query failed: {error}") from None
    finally:
        conn.set_authorizer(None)
