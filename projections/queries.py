"""Questions asked of the read models: queues, partners, cases, backlog, audits.

Each function takes a connection to read models (live or a replay) and returns plain
rows (dicts), so the CLI only formats them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import instant
from arms_ledger.ledger.domain.priority import CLASS_RANK
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


def mode(conn: sqlite3.Connection) -> tuple[str, str | None]:
    """The queue mode in force and the policy that set it."""
    policy = policy_in_force(conn)
    return ("fcfs", None) if policy is None else (policy["mode"], policy["policy"])


# --- queues ---------------------------------------------------------------------------------

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


# --- audit ------------------------------------------------------------------------------------


def resolve(conn: sqlite3.Connection, ident: str) -> str:
    """The stream ``ident`` names among those in the audit log."""
    return ev.resolve_stream(
        ident,
        lambda key: (
            one(conn, "SELECT 1 FROM audit_log WHERE stream = ? LIMIT 1", (key,))
            is not None
        ),
        " (at this time)",
    )


TRAIL_COLUMNS = (
    "position",
    "version",
    "effective_at",
    "recorded_at",
    "type",
    "actor",
    "rationale",
    "reference",
    "payload",
)


def trail(conn: sqlite3.Connection, stream: str) -> list[dict]:
    cols = ", ".join(TRAIL_COLUMNS)
    return rows(
        conn, f"SELECT {cols} FROM audit_log WHERE stream = ? ORDER BY position", (stream,)
    )


def event(conn: sqlite3.Connection, position: int | None) -> dict[str, Any]:
    """The envelope of the event at a log position, for 'set by' columns."""
    if position is None:
        return {
            "position": None,
            "type": None,
            "effective_at": None,
            "actor": None,
            "rationale": None,
        }
    found = one(
        conn,
        "SELECT position, type, effective_at, actor, rationale FROM audit_log "
        "WHERE position = ?",
        (position,),
    )
    assert found is not None, position
    return found


def explain(conn: sqlite3.Connection, case_id: str) -> dict[str, Any]:
    """A case's queue position and every component of its sort key, with its events."""
    case = one(conn, 'SELECT * FROM cases WHERE "case" = ?', (case_id,))
    if case is None:
        raise LedgerError(
            f"no case {case_id!r} in the ledger (at this time); `arms-ledger cases` lists them"
        )
    entry = one(conn, 'SELECT * FROM queue WHERE "case" = ?', (case_id,))
    partner = (
        one(conn, "SELECT * FROM partners WHERE partner = ?", (case["partner"],)) or {}
    )
    platform = one(conn, "SELECT * FROM platforms WHERE platform = ?", (case["platform"],))
    length = rows(
        conn, "SELECT count(*) AS n FROM queue WHERE platform = ?", (case["platform"],)
    )[0]["n"]
    policy = policy_in_force(conn)
    queue_mode, policy_slug = (
        ("fcfs", None) if policy is None else (policy["mode"], policy["policy"])
    )
    components: list[dict[str, Any]] = []

    def add(component: str, value: Any, position: int | None, note: str = "") -> None:
        components.append(
            {"component": component, "value": value, "note": note or None}
            | {f"event_{k}": v for k, v in event(conn, position).items()}
        )

    add(
        "1. priority class",
        f"{case['priority_class']} (rank {CLASS_RANK[case['priority_class']] + 1} of 3)",
        case["priority_position"] or case["filed_position"],
        "" if case["priority_position"] else "the default, since filing",
    )
    add(
        "2. partner override",
        "in force" if partner.get("override") else "none",
        partner.get("override_position"),
        partner.get("override_legal_basis") or "",
    )
    scored = queue_mode == "scored"
    policy_note = "" if scored else "fcfs: tier and score do not order the queue"
    add("3. tier", partner.get("tier"), policy["position"] if policy else None, policy_note)
    add(
        "4. score",
        partner.get("score"),
        policy["position"] if policy else None,
        f"wI*I + wS*S + wE*E under {policy_slug or 'the defaults'}",
    )
    add(
        "   investment I",
        partner.get("investment"),
        partner.get("spending_position"),
        f"{partner.get('pct_gdp')}% of GDP in {partner.get('spending_year')}"
        if partner.get("spending_year")
        else "no spending reported",
    )
    add(
        "   strategic S",
        partner.get("strategic"),
        partner.get("strategic_position"),
        "" if partner.get("strategic_position") else "no assessment: 0",
    )
    contributions = rows(
        conn,
        "SELECT position FROM audit_log WHERE stream = ? "
        "AND type = 'EconomicContributionRecorded' ORDER BY position",
        (f"partner:{case['partner']}",),
    )
    add(
        "   economic E",
        partner.get("economic"),
        contributions[-1]["position"] if contributions else None,
        f"${partner.get('economic_usd') or 0:,} in {len(contributions)} contribution(s)",
    )
    add("5. filed", case["filed_at"], case["filed_position"])
    add("6. case id", case["case"], None, "the last tie-break")
    add(
        "capacity",
        platform["units_per_month"] if platform else None,
        platform["capacity_position"] if platform else None,
        "units per month, for the estimated completion",
    )
    return {
        "case": case_id,
        "partner": case["partner"],
        "platform": case["platform"],
        "stage": case["stage"],
        "position": entry["position"] if entry else None,
        "queue_length": length,
        "mode": queue_mode,
        "policy": policy_slug,
        "quantity_left": case["quantity_left"],
        "est_completion_months": entry["est_completion_months"] if entry else None,
        "components": components,
    }


# --- diff ---------------------------------------------------------------------------------------


def _snapshot(
    conn: sqlite3.Connection, platform: str | None
) -> dict[tuple[str, str], dict]:
    sql = 'SELECT platform, "case", partner, position, tier, score FROM queue'
    params: tuple = ()
    if platform is not None:
        sql += " WHERE platform = ?"
        params = (platform,)
    return {(r["platform"], r["case"]): r for r in rows(conn, sql, params)}


def diff(
    before: sqlite3.Connection,
    after: sqlite3.Connection,
    since: datetime,
    platform: str | None = None,
) -> list[dict[str, Any]]:
    """Who entered, left or moved in each queue between two read models.

    The causes are the queue changes recorded in ``after`` whose event took effect after
    ``since``: the case's own entries, exits and moves, or, if it only shifted, the
    events that moved others ahead of it.
    """
    if platform is not None:
        platform_exists(after, platform)
    old, new = _snapshot(before, platform), _snapshot(after, platform)
    out = []
    for key in sorted(
        old.keys() | new.keys(),
        key=lambda k: (k[0], (new.get(k) or old[k])["position"], k[1]),
    ):
        was, now = old.get(key), new.get(key)
        if was and now and was["position"] == now["position"]:
            continue
        change = (
            "entered"
            if was is None
            else "left"
            if now is None
            else ("up" if now["position"] < was["position"] else "down")
        )
        causes = [
            c
            for c in rows(
                after,
                """SELECT event_position AS position, event_type AS type, change,
                          effective_at, actor, rationale
                   FROM queue_changes_explained WHERE platform = ? AND "case" = ?
                   ORDER BY event_position""",
                key,
            )
            if instant(c["effective_at"]) > since
        ]
        own = [c for c in causes if c["change"] != "shifted"]
        out.append(
            {
                "platform": key[0],
                "case": key[1],
                "partner": (now or was or {}).get("partner"),
                "change": change,
                "before": was["position"] if was else None,
                "after": now["position"] if now else None,
                "caused_by": _dedupe(own or causes),
            }
        )
    return out


def causing_events(changes: list[dict]) -> list[dict]:
    """The events named in a diff's ``caused_by`` lists, each once, in log order."""
    found: dict[int, dict] = {}
    for change in changes:
        for c in change["caused_by"]:
            found.setdefault(c["position"], c)
    return [found[p] for p in sorted(found)]


def _dedupe(causes: list[dict]) -> list[dict]:
    seen: dict[int, dict] = {}
    for c in causes:
        seen.setdefault(c["position"], {k: v for k, v in c.items() if k != "change"})
    return list(seen.values())


# --- flags -------------------------------------------------------------------------------------


def flags(conn: sqlite3.Connection) -> list[dict]:
    return rows(
        conn,
        'SELECT kind, stream, "case", partner, effective_at, event_position, detail '
        "FROM oversight_flags ORDER BY kind, effective_at, stream",
    )


def judged_at(conn: sqlite3.Connection) -> str | None:
    found = one(conn, "SELECT time FROM projection")
    return found["time"] if found else None


def move(before: int | None, after: int | None) -> str:
    """How a case's queue position changed: entered, left, up N, down N or same."""
    if before is None:
        return "entered"
    if after is None:
        return "left"
    if after < before:
        return f"up {before - after}"
    if after > before:
        return f"down {after - before}"
    return "same"
