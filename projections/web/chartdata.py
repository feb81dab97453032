"""The charts' data: rows and series read from the read models, for ``charts`` to draw.

- backlog: open cases and their value at the end of each month, from the audit log
  (a case is open from its filing to its closing, cancellation or expiry; its value is
  the latest known: offer, else notified, else estimate, as the domain's case fold
  gives it), and the priority policies adopted.
- queue: a platform's queue just before and just after a priority policy was adopted,
  rebuilt from ``queue_changes`` (the queue after log position P is each case's last
  change at or before P): exactly what that one event changed.
- scores: each partner's score components and the tier thresholds in force.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Any

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.cases import (
    CLOSING_TYPES,
    TERMINAL_STAGES,
    CaseState,
    evolve_case,
    open_case,
)
from arms_ledger.ledger.domain.clock import instant
from arms_ledger.projections import queries
from arms_ledger.projections.audit_queries import move
from arms_ledger.projections.web import canned

# --- backlog over time --------------------------------------------------------------------

# The events that set a case's value or end it: the chart folds them with the domain's
# case fold, so a case's value is the one ``CaseState.value_usd`` gives.
_VALUE_TYPES = ("CaseFiled", "CongressionalNotified", "OfferIssued", *CLOSING_TYPES)


def _month(day: date) -> tuple[int, int]:
    return (day.year, day.month)


def _next(month: tuple[int, int]) -> tuple[int, int]:
    return (month[0] + month[1] // 12, month[1] % 12 + 1)


def backlog_series(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Open cases and their value at the end of each month, first filing to last event."""
    events = _case_value_events(conn)
    if not events:
        return []
    last = conn.execute(
        "SELECT date(max(julianday(effective_at))) FROM audit_log"
    ).fetchone()[0]
    open_cases: dict[str, CaseState] = {}
    value = 0
    out: list[dict[str, Any]] = []
    month = _month(events[0][0].date())
    for at, e in events:
        while month < _month(at.date()):
            out.append(_point(month, len(open_cases), value))
            month = _next(month)
        before = open_cases.pop(e.case, None)
        if isinstance(e, ev.CaseFiled):
            after: CaseState | None = open_case(e)
        else:
            after = None if before is None else evolve_case(before, e)
        value -= 0 if before is None else before.value_usd
        if after is not None and after.stage not in TERMINAL_STAGES:
            open_cases[e.case] = after
            value += after.value_usd
    while month < _next(_month(date.fromisoformat(last))):
        out.append(_point(month, len(open_cases), value))
        month = _next(month)
    return out


def _case_value_events(conn: sqlite3.Connection) -> list[tuple[Any, ev.CaseEvent]]:
    """The events of ``_VALUE_TYPES``, decoded, in (effective, position) order."""
    found = conn.execute(
        "SELECT position, type, actor, effective_at, payload FROM audit_log "
        f"WHERE type IN ({', '.join('?' for _ in _VALUE_TYPES)})",
        _VALUE_TYPES,
    ).fetchall()
    decoded = []
    for position, kind, actor, effective_at, payload in found:
        event = queries.decode(kind, actor, effective_at, payload)
        assert isinstance(event, ev.CaseEvent), event
        decoded.append((instant(effective_at), position, event))
    decoded.sort(key=lambda item: item[:2])
    return [(at, e) for at, _, e in decoded]


def _point(month: tuple[int, int], cases: int, value: int) -> dict[str, Any]:
    return {
        "month": f"{month[0]:04d}-{month[1]:02d}",
        "open_cases": cases,
        "value_usd": value,
        "value_billion_usd": round(value / 1e9, 2),
    }


def policy_adoptions(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The priority policies adopted, in log order."""
    return queries.rows(
        conn,
        "SELECT position, policy, name, legal_basis, mode, effective_at, in_force "
        "FROM policies WHERE type = 'PriorityPolicyAdopted' ORDER BY position",
    )


# --- a queue before and after a policy ----------------------------------------------------


def queue_at(conn: sqlite3.Connection, platform: str, position: int) -> dict[str, int]:
    """A platform's queue (case: place) after log position ``position``."""
    found = conn.execute(
        """SELECT "case", new_position FROM (
             SELECT "case", new_position, row_number() OVER (
                 PARTITION BY "case" ORDER BY event_position DESC, id DESC) AS latest
             FROM queue_changes
             WHERE platform = :platform AND event_position <= :position)
           WHERE latest = 1""",
        {"platform": platform, "position": position},
    ).fetchall()
    return {case: place for case, place in found if place is not None}


def queue_comparison(
    conn: sqlite3.Connection, platform: str, position: int
) -> list[dict[str, Any]]:
    """Each case of the queue just before and just after the event at ``position``."""
    before = queue_at(conn, platform, position - 1)
    after = queue_at(conn, platform, position)
    partners = dict(
        conn.execute(
            'SELECT "case", partner FROM cases WHERE platform = ?', (platform,)
        ).fetchall()
    )
    out = []
    for case in sorted(
        before.keys() | after.keys(),
        key=lambda c: (after.get(c, len(after) + before.get(c, 0)), c),
    ):
        was, now = before.get(case), after.get(case)
        out.append(
            {
                "case": case,
                "partner": partners.get(case),
                "before": was,
                "after": now,
                "move": move(was, now),
            }
        )
    return out


def queue_choices(conn: sqlite3.Connection, position: int) -> list[dict[str, Any]]:
    """The platforms with a queue at that time, the most reordered by the event first."""
    return queries.rows(
        conn,
        """SELECT p.platform, p.name,
                  coalesce(sum(abs(q.new_position - q.old_position)), 0) AS places_moved,
                  count(q.id) AS cases_changed
           FROM platforms p LEFT JOIN queue_changes q
             ON q.platform = p.platform AND q.event_position = :position
           WHERE EXISTS (SELECT 1 FROM queue_changes r WHERE r.platform = p.platform
                         AND r.event_position <= :position)
           GROUP BY p.platform
           ORDER BY places_moved DESC, cases_changed DESC, p.platform""",
        {"position": position},
    )


# --- partners' score components -----------------------------------------------------------


def score_rows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The partner_scores canned query over every partner."""
    return queries.rows(conn, canned.PARTNER_SCORES.sql, {"partner": ""})


def tiers(conn: sqlite3.Connection) -> tuple[float, float, str | None]:
    """The tier thresholds in force (tier1, tier2) and the policy that set them."""
    policy = queries.adopted(conn)
    tiers = ev.Tiers() if policy is None else policy.tiers
    return tiers.tier1, tiers.tier2, None if policy is None else policy.policy
