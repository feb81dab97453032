"""Reading every read model of a projection database, to compare two of them row for row."""

from __future__ import annotations

import sqlite3

from arms_ledger.projections import schema


def _quoted(names) -> str:
    return ", ".join(f'"{n}"' for n in names)


def snapshot(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    """Every table (ordered by its primary key) and every view (ordered by all columns)."""
    out: dict[str, list[tuple]] = {}
    for table in schema.TABLES:
        pk = (table.pk,) if isinstance(table.pk, str) else table.pk
        out[table.name] = conn.execute(
            f'SELECT {_quoted(table.names)} FROM "{table.name}" ORDER BY {_quoted(pk)}'
        ).fetchall()
    for name in schema.VIEWS:
        width = len(conn.execute(f'SELECT * FROM "{name}" LIMIT 0').description)
        order = ", ".join(str(i) for i in range(1, width + 1))
        out[name] = conn.execute(f'SELECT * FROM "{name}" ORDER BY {order}').fetchall()
    return out


def assert_same_read_models(
    actual: sqlite3.Connection, expected: sqlite3.Connection
) -> None:
    """Every table and view holds the same rows in both databases.

    On a difference, the message names the table and shows only the rows that differ.
    """
    mine, theirs = snapshot(actual), snapshot(expected)
    for name in theirs:
        if mine[name] != theirs[name]:
            only_actual = [r for r in mine[name] if r not in theirs[name]]
            only_expected = [r for r in theirs[name] if r not in mine[name]]
            raise AssertionError(
                f"{name} differs ({len(mine[name])} rows, expected {len(theirs[name])}):\n"
                f"  only in actual:   {only_actual}\n"
                f"  only in expected: {only_expected}"
            )
