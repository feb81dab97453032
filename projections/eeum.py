"""The ``eeum_clocks`` table: the EEUM inventory clocks of ``ledger.domain.oversight``
(the one definition of the rule) over the read models' ``deliveries``,
``end_use_checks`` and ``eeum_designations``, refreshed for the cases an applied batch
touched. The ``oversight_flags`` view judges them at its time; ``audit deadlines``
judges the same clocks (``ledger.domain.monitors``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import msgspec
from arms_ledger.ledger.domain import oversight
from arms_ledger.ledger.domain.clock import format_instant, instant
from arms_ledger.projections import schema

# A full refresh computes the clocks of this many cases at a time (each case's clocks
# are its deliveries', its inventories' and its platform's designations).
AT_ONCE = 20_000


def _in(values: Iterable[str]) -> str:
    return msgspec.json.encode(sorted(values)).decode()


def refresh(
    conn: sqlite3.Connection,
    cases: Iterable[str] | None = None,
    platforms: Iterable[str] = (),
) -> None:
    """Recompute the clocks of ``cases`` and of every case delivered a platform of
    ``platforms`` (``cases=None``: of every case, ``AT_ONCE`` cases at a time, so that
    memory does not grow with the log)."""
    if cases is None:
        delivered = [r[0] for r in conn.execute('SELECT DISTINCT "case" FROM deliveries')]
        conn.execute("DELETE FROM eeum_clocks")
        for start in range(0, len(delivered), AT_ONCE):
            refresh(conn, delivered[start : start + AT_ONCE])
        return
    chosen = set(cases)
    if platforms:
        chosen |= {
            r[0]
            for r in conn.execute(
                'SELECT DISTINCT "case" FROM deliveries '
                "WHERE platform IN (SELECT value FROM json_each(?))",
                (_in(platforms),),
            )
        }
    if not chosen:
        return
    where, args = '"case" IN (SELECT value FROM json_each(?))', (_in(chosen),)
    conn.execute(f"DELETE FROM eeum_clocks WHERE {where}", args)
    deliveries = [
        oversight.Delivery(p, c, partner, platform, q, instant(at))
        for p, c, partner, platform, q, at in conn.execute(
            'SELECT position, "case", partner, platform, quantity, effective_at '
            f"FROM deliveries WHERE {where} ORDER BY position",
            args,
        )
    ]
    if not deliveries:
        return
    inventories = [
        oversight.Inventory(p, c, kind, instant(at))
        for p, c, kind, at in conn.execute(
            'SELECT position, "case", kind, effective_at FROM end_use_checks '
            f"WHERE {where} AND kind LIKE 'eeum-%' ORDER BY position",
            args,
        )
    ]
    designations = [
        oversight.Designation(p, platform, bool(d), instant(at))
        for p, platform, d, at in conn.execute(
            "SELECT position, platform, designated, effective_at FROM eeum_designations "
            "WHERE platform IN (SELECT value FROM json_each(?)) ORDER BY position",
            (_in({d.platform for d in deliveries}),),
        )
    ]
    clocks = oversight.eeum_clocks(deliveries, inventories, designations)
    conn.executemany(
        schema.upsert_sql(schema.EEUM_CLOCKS),
        [
            (
                k.case,
                k.kind,
                format_instant(k.opened),
                k.position,
                k.partner,
                k.platform,
                k.quantity,
                format_instant(k.since),
                format_instant(k.due),
                None if k.closed is None else format_instant(k.closed),
            )
            for k in clocks
        ],
    )
