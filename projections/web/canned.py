"""The canned queries of the web view: what an overseer asks, with parameters.

Each is plain SQL over the read models; a parameter left blank means "all" where the
description says so. ``example`` picks, from the database being served, values that
show the query at work (used for the links on the home page, and by the tests).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import NamedTuple

from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections.views import case_changes


class Canned(NamedTuple):
    name: str
    title: str
    description: str
    sql: str
    params: tuple[str, ...]
    # The parameters filled in by ``example``; the others only narrow and stay blank.
    shown: tuple[str, ...] = ()


# The weights when no priority policy has been adopted yet (docs/domain.md, The priority
# policy).
_W = ev.Weights()

PLATFORM_QUEUE = Canned(
    "platform_queue",
    "Queue of a platform",
    "The priority queue of one platform, first in line first, with each case's partner, "
    "priority class, override, tier, score, stage, units left and estimated completion "
    "(months, counting the units of the cases ahead). "
    "platform: a slug from the platforms table, e.g. f-35a.",
    """SELECT q.position, q."case", q.partner, p.name AS partner_name, q.priority_class,
       q.override, q.tier, q.score, q.stage, q.quantity_left, q.est_completion_months,
       date(q.filed_at) AS filed_on
FROM queue q LEFT JOIN partners p ON p.partner = q.partner
WHERE q.platform = :platform
ORDER BY q.position""",
    ("platform",),
    ("platform",),
)

CASE_TRAIL = Canned(
    "case_trail",
    "A case's full audit trail",
    "Every event of the case, and every event of another stream that changed its place "
    "in its queue (a policy adopted, a partner rescored, another case moving ahead), in "
    "log order, with actor, rationale, reference, both times, the payload, what the "
    "event did to the case's queue position, and its correction: on a corrected event "
    "and on the correction, what was corrected, from what to what, and by whom. "
    "case: a case id, e.g. PL-B-AHA.",
    f"""WITH changes AS ({case_changes(":case")})
SELECT a.position, a.effective_at, a.recorded_at, a.stream, a.type, a.actor,
       a.rationale, a.reference, a.payload,
       (SELECT group_concat(
            CASE q.change
              WHEN 'entered' THEN 'entered the ' || q.platform || ' queue at '
                                  || q.new_position
              WHEN 'left' THEN 'left the ' || q.platform || ' queue from '
                               || q.old_position
              ELSE q.change || ' from ' || q.old_position || ' to ' || q.new_position
            END, '; ')
        FROM changes q WHERE q.event_position = a.position) AS queue_effect,
       (SELECT group_concat('#' || f.event_position || ': ' || f.detail, '; ')
        FROM event_flags f JOIN audit_log c ON c.position = f.event_position
        WHERE f.kind = 'correction' AND f.stream = a.stream
          AND (f.event_position = a.position
               OR json_extract(c.payload, '$.corrects') = a.position)) AS correction
FROM audit_log a
WHERE a.stream = 'case:' || :case
   OR a.position IN (SELECT event_position FROM changes)
ORDER BY a.position""",
    ("case",),
    ("case",),
)

PRIORITY_DECISIONS = Canned(
    "priority_decisions",
    "Expedites, deferrals and overrides",
    "Every reprioritization of a case (expedited, deferred, back to normal) and every "
    "partner priority override granted or revoked, with its authority, actor and "
    "reason, in log order. partner: only this partner's (blank: all).",
    """SELECT a.position, a.effective_at, a.recorded_at, a.type,
       c."case", coalesce(c.partner, substr(a.stream, 9)) AS partner, c.platform,
       CASE a.type
         WHEN 'CaseReprioritized' THEN json_extract(a.payload, '$.priority_class')
         WHEN 'PriorityOverrideGranted' THEN 'override granted'
         ELSE 'override revoked'
       END AS decision,
       coalesce(json_extract(a.payload, '$.authority'),
                json_extract(a.payload, '$.legal_basis')) AS authority,
       a.actor, a.rationale, a.reference
FROM audit_log a
LEFT JOIN cases c ON a.stream = 'case:' || c."case"
WHERE a.type IN ('CaseReprioritized', 'PriorityOverrideGranted', 'PriorityOverrideRevoked')
  AND (:partner = '' OR coalesce(c.partner, substr(a.stream, 9)) = :partner)
ORDER BY a.position""",
    ("partner",),
)

QUEUE_CHANGES = Canned(
    "queue_changes_between",
    "Queue changes in a date range, and their causes",
    "Every change of a case's queue position or membership caused by an event effective "
    "from one date to another (both inclusive, YYYY-MM-DD; blank: no bound), with the "
    "causing event's type, actor and rationale. change is entered, left, moved (the "
    "case's own sort key changed) or shifted (others entered, left or moved ahead of "
    "it). platform: only this queue (blank: all).",
    """SELECT x.effective_at, x.platform, x."case", c.partner, x.change, x.old_position,
       x.new_position, x.event_position, x.event_type, x.actor, x.rationale, x.reference
FROM queue_changes_explained x LEFT JOIN cases c ON c."case" = x."case"
WHERE (:from = '' OR date(x.effective_at) >= date(:from))
  AND (:to = '' OR date(x.effective_at) <= date(:to))
  AND (:platform = '' OR x.platform = :platform)
ORDER BY x.event_position, x.platform, coalesce(x.new_position, x.old_position)""",
    ("from", "to", "platform"),
    ("from", "to"),
)

BACKLOG = Canned(
    "backlog_by_partner_platform",
    "Backlog by partner and platform",
    "Open cases, units left and their latest known value for each partner and platform, "
    "largest value first. partner, platform: only these (blank: all).",
    """SELECT b.partner, p.name AS partner_name, b.platform, sum(b.cases) AS cases,
       sum(b.quantity_left) AS quantity_left, sum(b.value_usd) AS value_usd
FROM backlog b LEFT JOIN partners p ON p.partner = b.partner
WHERE (:partner = '' OR b.partner = :partner)
  AND (:platform = '' OR b.platform = :platform)
GROUP BY b.partner, b.platform
ORDER BY value_usd DESC, b.partner, b.platform""",
    ("partner", "platform"),
)

FLAGS = Canned(
    "flags",
    "Oversight flags",
    "The oversight flags of docs/domain.md, Rule 6: backdated-decision, qme-not-certified, "
    "correction, eeum-no-initial-inventory, eeum-no-annual-inventory; deadlines are "
    "judged at the "
    "replay's time, or now. kind: only this kind (blank: all).",
    """SELECT kind, "case", stream, partner, effective_at, event_position, detail
FROM oversight_flags
WHERE (:kind = '' OR kind = :kind)
ORDER BY kind, effective_at, stream""",
    ("kind",),
)

HOLDS = Canned(
    "holds_by_office",
    "Holds by committee office",
    "Every congressional hold an office placed: the case, when and why it was placed, "
    "and when and why it was lifted, held_now first; days_held counts to the lift, else "
    "to the replay's time or now. office: SFRC-chair, SFRC-ranking, HFAC-chair or "
    "HFAC-ranking (blank: all).",
    """SELECT h.office, h."case", c.partner, c.platform, c.stage,
       l.position IS NULL AS held_now,
       h.placed_at, h.placed_by, h.reason, h.placed_position,
       l.effective_at AS lifted_at, l.actor AS lifted_by, l.rationale AS lift_reason,
       CAST(julianday(coalesce(l.effective_at, (SELECT time FROM projection), 'now'))
            - julianday(h.placed_at) AS INTEGER) AS days_held
FROM (
  SELECT position AS placed_position, substr(stream, 6) AS "case",
         json_extract(payload, '$.office') AS office, effective_at AS placed_at,
         actor AS placed_by, rationale AS reason
  FROM audit_log WHERE type = 'HoldPlaced'
) h
JOIN cases c ON c."case" = h."case"
LEFT JOIN audit_log l ON l.position = (
  SELECT min(position) FROM audit_log
  WHERE type = 'HoldLifted' AND stream = 'case:' || h."case"
    AND json_extract(payload, '$.office') = h.office AND position > h.placed_position)
WHERE (:office = '' OR h.office = :office)
ORDER BY held_now DESC, h.placed_at DESC, h.placed_position""",
    ("office",),
)

PARTNER_SCORES = Canned(
    "partner_scores",
    "Partners' score breakdown",
    "Each partner's score under the priority policy in force, component by component: "
    "investment I = min(pct_gdp / target, 1), strategic S, economic E = "
    "min(economic_usd / target, 1), each with its weight and the points it gives "
    "(weight x component; the points add up to the score), then the tier. partner: "
    "only this partner (blank: all).",
    f"""SELECT p.partner, p.name, p.tier, p.score,
       p.pct_gdp, p.spending_year, p.investment, w.wi AS investment_weight,
       p.investment_points,
       p.strategic, w.ws AS strategic_weight,
       p.strategic_points,
       p.economic_usd, p.economic, w.we AS economic_weight,
       p.economic_points,
       p.override, p.policy
FROM partners p, (
  SELECT coalesce(max(json_extract(parameters, '$.weights.investment')), {_W.investment})
           AS wi,
         coalesce(max(json_extract(parameters, '$.weights.strategic')), {_W.strategic})
           AS ws,
         coalesce(max(json_extract(parameters, '$.weights.economic')), {_W.economic})
           AS we
  FROM policies WHERE type = 'PriorityPolicyAdopted' AND in_force
) w
WHERE (:partner = '' OR p.partner = :partner)
ORDER BY p.score DESC, p.partner""",
    ("partner",),
)

CANNED: tuple[Canned, ...] = (
    PLATFORM_QUEUE,
    CASE_TRAIL,
    PRIORITY_DECISIONS,
    QUEUE_CHANGES,
    BACKLOG,
    FLAGS,
    HOLDS,
    PARTNER_SCORES,
)


def _first(conn: sqlite3.Connection, sql: str) -> str:
    row = conn.execute(sql).fetchone()
    return "" if row is None or row[0] is None else str(row[0])


# For each parameter, the value that shows a query at work on this database.
_EXAMPLES: dict[str, Callable[[sqlite3.Connection], str]] = {
    # The longest queue.
    "platform": lambda c: _first(
        c, "SELECT platform FROM queue GROUP BY platform ORDER BY count(*) DESC, platform"
    ),
    # The case moved most often in its queue.
    "case": lambda c: _first(
        c,
        "SELECT \"case\" FROM queue_changes WHERE change <> 'shifted' "
        'GROUP BY "case" ORDER BY count(*) DESC, "case"',
    ),
    # The day the priority policy in force took effect.
    "from": lambda c: _first(
        c,
        "SELECT date(effective_at) FROM policies WHERE type = 'PriorityPolicyAdopted' "
        "ORDER BY in_force DESC, position DESC",
    ),
    "to": lambda c: _EXAMPLES["from"](c),
    # The office of the latest hold.
    "office": lambda c: _first(
        c,
        "SELECT json_extract(payload, '$.office') FROM audit_log "
        "WHERE type = 'HoldPlaced' ORDER BY position DESC",
    ),
}


def example(conn: sqlite3.Connection, query: Canned) -> dict[str, str]:
    """Parameter values that show ``query`` at work on this database."""
    return {
        name: _EXAMPLES[name](conn) if name in query.shown else "" for name in query.params
    }
