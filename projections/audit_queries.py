"""The audit questions asked of the read models: a stream's trail, why a case is where it
is in its queue (``explain``), who moved between two read models and why (``diff``), the
oversight flags.

Like ``queries``, each function takes a connection to read models (live or a replay) and
returns plain rows (dicts), so the CLI only formats them.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.priority import CLASS_RANK
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.projections.queries import (
    mode,
    one,
    platform_exists,
    policy_in_force,
    rows,
)

if TYPE_CHECKING:
    from arms_ledger.projections.diffs import Between

# --- trails -------------------------------------------------------------------------------


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


# --- explain ------------------------------------------------------------------------------


def explain(conn: sqlite3.Connection, case_id: str) -> dict[str, Any]:
    """A case's queue position and every component of its sort key, with its events."""
    case = _case(conn, case_id)
    entry = one(conn, 'SELECT * FROM queue WHERE "case" = ?', (case_id,))
    partner = (
        one(conn, "SELECT * FROM partners WHERE partner = ?", (case["partner"],)) or {}
    )
    platform = one(conn, "SELECT * FROM platforms WHERE platform = ?", (case["platform"],))
    length = rows(
        conn, "SELECT count(*) AS n FROM queue WHERE platform = ?", (case["platform"],)
    )[0]["n"]
    queue_mode, policy_slug = mode(conn)
    components = [
        *_class_and_override(case, partner),
        *_tier_and_score(conn, case, partner, queue_mode, policy_slug),
        *_tie_breaks(case, platform),
    ]
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
        "components": [_component(conn, *c) for c in components],
        "corrections": corrections(conn, case_id),
    }


def corrections(conn: sqlite3.Connection, case_id: str) -> list[dict[str, Any]]:
    """The corrections of a case's events, in log order: each with its envelope and
    what it changed (its flag's detail)."""
    return rows(
        conn,
        """SELECT a.position, a.effective_at, a.actor, a.rationale, f.detail
           FROM audit_log a JOIN event_flags f
             ON f.event_position = a.position AND f.kind = 'correction'
           WHERE a.stream = ? AND a.type = 'EventCorrected' ORDER BY a.position""",
        (f"case:{case_id}",),
    )


# One line of ``explain``: the component, its value, the log position of the event that
# set it (None: no event), and a note.
_Line = tuple[str, Any, int | None, str]


def _case(conn: sqlite3.Connection, case_id: str) -> dict[str, Any]:
    case = one(conn, 'SELECT * FROM cases WHERE "case" = ?', (case_id,))
    if case is None:
        raise LedgerError(
            f"no case {case_id!r} in the ledger (at this time); "
            "`arms-ledger cases` lists them"
        )
    return case


def _component(
    conn: sqlite3.Connection, component: str, value: Any, position: int | None, note: str
) -> dict[str, Any]:
    return {"component": component, "value": value, "note": note or None} | {
        f"event_{k}": v for k, v in event(conn, position).items()
    }


def _class_and_override(case: dict, partner: dict) -> list[_Line]:
    """The first two keys of the queue order: the priority class, the override."""
    rank = CLASS_RANK[case["priority_class"]] + 1
    return [
        (
            "1. priority class",
            f"{case['priority_class']} (rank {rank} of {len(CLASS_RANK)})",
            case["priority_position"] or case["filed_position"],
            "" if case["priority_position"] else "the default, since filing",
        ),
        (
            "2. partner override",
            "in force" if partner.get("override") else "none",
            partner.get("override_position"),
            partner.get("override_legal_basis") or "",
        ),
    ]


def _tier_and_score(
    conn: sqlite3.Connection,
    case: dict,
    partner: dict,
    queue_mode: str,
    policy_slug: str | None,
) -> list[_Line]:
    """The tier, the score and the score's three components."""
    policy = policy_in_force(conn)
    set_by = policy["position"] if policy else None
    contributions = rows(
        conn,
        "SELECT position FROM audit_log WHERE stream = ? "
        "AND type = 'EconomicContributionRecorded' ORDER BY position",
        (f"partner:{case['partner']}",),
    )
    return [
        (
            "3. tier",
            partner.get("tier"),
            set_by,
            "" if queue_mode == "scored" else "fcfs: tier and score do not order the queue",
        ),
        (
            "4. score",
            partner.get("score"),
            set_by,
            f"wI*I + wS*S + wE*E under {policy_slug or 'the defaults'}",
        ),
        (
            "   investment I",
            partner.get("investment"),
            partner.get("spending_position"),
            f"{partner.get('pct_gdp')}% of GDP in {partner.get('spending_year')}"
            if partner.get("spending_year")
            else "no spending reported",
        ),
        (
            "   strategic S",
            partner.get("strategic"),
            partner.get("strategic_position"),
            "" if partner.get("strategic_position") else "no assessment: 0",
        ),
        (
            "   economic E",
            partner.get("economic"),
            contributions[-1]["position"] if contributions else None,
            f"${partner.get('economic_usd') or 0:,} in {len(contributions)} "
            "contribution(s)",
        ),
    ]


def _tie_breaks(case: dict, platform: dict | None) -> list[_Line]:
    """The last keys of the queue order, and the capacity behind the completion."""
    return [
        ("5. filed", case["filed_at"], case["filed_position"], ""),
        ("6. case id", case["case"], None, "the last tie-break"),
        (
            "capacity",
            platform["units_per_month"] if platform else None,
            platform["capacity_position"] if platform else None,
            "units per month, for the estimated completion",
        ),
    ]


# --- diff ---------------------------------------------------------------------------------


def diff(
    before: sqlite3.Connection,
    after: sqlite3.Connection,
    changes: Between,
    platform: str | None = None,
) -> list[dict[str, Any]]:
    """Who entered, left or moved in each queue between two read models (as of T1 and
    T2), and why: ``changes`` are the queue changes the events effective in (T1, T2]
    made (``diffs.between``), and a case's causes are its own entries, exits and moves,
    or, if it only shifted, the events that moved others ahead of it or away."""
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
        was_at = was["position"] if was else None
        now_at = now["position"] if now else None
        out.append(
            {
                "platform": key[0],
                "case": key[1],
                "partner": (now or was or {}).get("partner"),
                "change": move(was_at, now_at).split()[0],  # entered, left, up, down
                "before": was_at,
                "after": now_at,
                "caused_by": _causes(changes.of(key[0]), key[1]),
            }
        )
    return out


def _snapshot(
    conn: sqlite3.Connection, platform: str | None
) -> dict[tuple[str, str], dict]:
    sql = 'SELECT platform, "case", partner, position, tier, score FROM queue'
    params: tuple = ()
    if platform is not None:
        sql += " WHERE platform = ?"
        params = (platform,)
    return {(r["platform"], r["case"]): r for r in rows(conn, sql, params)}


def _causes(changes: dict[str, list[dict]], case: str) -> list[dict]:
    """The events that changed the case's place: its own changes, else the shifts
    (others moving ahead of it or away), each event once."""
    causes = changes.get(case, [])
    own = [c for c in causes if c["change"] != "shifted"]
    return _dedupe(own or causes)


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


# --- flags --------------------------------------------------------------------------------


def flags(conn: sqlite3.Connection) -> list[dict]:
    return rows(
        conn,
        'SELECT kind, stream, "case", partner, effective_at, event_position, detail '
        "FROM oversight_flags ORDER BY kind, effective_at, stream",
    )


def judged_at(conn: sqlite3.Connection) -> str | None:
    found = one(conn, "SELECT time FROM projection")
    return found["time"] if found else None
