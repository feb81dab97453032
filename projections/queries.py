"""Questions asked of the read models: queues, partners, cases, backlog (the audit
questions are in ``audit_queries``).

Each function takes a connection to read models (live or a replay) and returns plain
rows (dicts), so the CLI only formats them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.priority import mode_of
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.projections import schema


def rows(conn: sqlite3.Connection, sql: str, params: Sequence | dict = ()) -> list[dict]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def typed(table: schema.Table, found: list[dict]) -> list[dict]:
    """SQLite stores booleans as 0/1: give the table's boolean columns back as bools."""
    flags = [c.name for c in table.columns if c.type is bool]
    for row in found:
        for name in flags:
            if row.get(name) is not None:
                row[name] = bool(row[name])
    return found


def one(conn: sqlite3.Connection, sql: str, params: Sequence | dict = ()) -> dict | None:
    found = rows(conn, sql, params)
    return found[0] if found else None


def policy_in_force(conn: sqlite3.Connection) -> dict | None:
    """The priority policy in force (its ``policies`` row), None before any."""
    return one(
        conn, "SELECT * FROM policies WHERE type = 'PriorityPolicyAdopted' AND in_force"
    )


def adopted(conn: sqlite3.Connection) -> ev.PriorityPolicyAdopted | None:
    """The priority policy in force as its event, None before any."""
    found = one(
        conn,
        "SELECT a.type, a.actor, a.effective_at, a.payload FROM policies p "
        "JOIN audit_log a ON a.position = p.position "
        "WHERE p.type = 'PriorityPolicyAdopted' AND p.in_force",
    )
    if found is None:
        return None
    policy = decode(found["type"], found["actor"], found["effective_at"], found["payload"])
    assert isinstance(policy, ev.PriorityPolicyAdopted), policy
    return policy


def mode(conn: sqlite3.Connection) -> tuple[str, str | None]:
    """The queue mode in force (the domain's ``mode_of``) and the policy that set it,
    from the ``policies`` table alone (a replay from a snapshot has no ``audit_log``)."""
    found = one(
        conn,
        "SELECT mode, policy FROM policies "
        "WHERE type = 'PriorityPolicyAdopted' AND in_force",
    )
    if found is None:
        return mode_of(None), None
    return found["mode"], found["policy"]


def decode(kind: str, actor: str, effective_at: str, payload: str | bytes) -> ev.Event:
    """An event of the audit log, from its row's type, actor, effective time, payload."""
    fields = msgspec.json.decode(payload)
    fields |= {"type": kind, "actor": actor, "effective_at": effective_at}
    return msgspec.convert(fields, ev.LedgerEvent)


# --- queues -------------------------------------------------------------------------------

QUEUE_COLUMNS = (
    "position",
    "case",
    "partner",
    "priority_class",
    "override",
    "tier",
    "score",
    "stage",
    "quantity_left",
    "est_completion_months",
)


def platform_exists(conn: sqlite3.Connection, platform: str) -> None:
    if one(conn, "SELECT 1 FROM platforms WHERE platform = ?", (platform,)) is None:
        raise LedgerError(
            f"no platform {platform!r} in the ledger; `arms-ledger queue` lists the queues"
        )


def queue(conn: sqlite3.Connection, platform: str) -> list[dict]:
    platform_exists(conn, platform)
    cols = ", ".join(f'"{c}"' for c in QUEUE_COLUMNS)
    return typed(
        schema.QUEUE,
        rows(
            conn,
            f"SELECT {cols} FROM queue WHERE platform = ? ORDER BY position",
            (platform,),
        ),
    )


def queues(conn: sqlite3.Connection) -> list[dict]:
    """Every platform with the length of its queue and the units ahead."""
    return rows(
        conn,
        """SELECT p.platform, p.name, count(q."case") AS cases,
                  coalesce(sum(q.quantity_left), 0) AS quantity_left, p.units_per_month,
                  max(q.est_completion_months) AS months_to_clear
           FROM platforms p LEFT JOIN queue q ON q.platform = p.platform
           GROUP BY p.platform ORDER BY p.platform""",
    )


# --- partners, cases, backlog -------------------------------------------------------------

PARTNER_COLUMNS = (
    "partner",
    "name",
    "notification_group",
    "pct_gdp",
    "investment",
    "strategic",
    "economic_usd",
    "economic",
    "score",
    "tier",
    "override",
    "suspended",
)


def partners(conn: sqlite3.Connection) -> list[dict]:
    return typed(
        schema.PARTNERS, rows(conn, "SELECT * FROM partners ORDER BY score DESC, partner")
    )


CASE_COLUMNS = (
    "case",
    "partner",
    "platform",
    "stage",
    "quantity",
    "delivered",
    "value_usd",
    "priority_class",
    "notification",
    "holds",
    "filed_at",
)


def cases(
    conn: sqlite3.Connection,
    partner: str | None = None,
    platform: str | None = None,
    stage: str | None = None,
    open_only: bool = False,
) -> list[dict]:
    where, params = [], []
    for column, value in (("partner", partner), ("platform", platform), ("stage", stage)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if open_only:
        where.append("open")
    sql = "SELECT * FROM cases"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return typed(schema.CASES, rows(conn, sql + ' ORDER BY filed_at, "case"', params))


BACKLOG_GROUPS = ("platform", "partner", "stage")


def backlog(conn: sqlite3.Connection, by: Sequence[str]) -> list[dict]:
    """Open cases, units left and value, grouped by the given columns."""
    keys = ", ".join(by)
    return rows(
        conn,
        f"""SELECT {keys}, sum(cases) AS cases, sum(quantity_left) AS quantity_left,
                   sum(value_usd) AS value_usd
            FROM backlog GROUP BY {keys} ORDER BY value_usd DESC, {keys}""",
    )
