"""The read models' views: questions every reader asks, written once in SQL.

The oversight flags that depend on the time they are judged at (the EEUM inventory
deadlines of ``ledger.domain.oversight``) are computed here, at ``projection.time`` (a
replay's own time) or now.
"""

from __future__ import annotations

from arms_ledger.ledger.domain import oversight

# The time flags are judged at: a replay's own time, else now.
_JUDGED_AT = "coalesce((SELECT julianday(time) FROM projection), julianday('now'))"


def _designated(at: str) -> str:
    """SQL: was platform ``d.platform`` EEUM-designated at julian day ``at``?"""
    return (
        "coalesce((SELECT designated FROM eeum_designations g "
        "WHERE g.platform = d.platform "
        f"AND julianday(g.effective_at) <= {at} "
        "ORDER BY julianday(g.effective_at) DESC, g.position DESC LIMIT 1), 0)"
    )


_DESIGNATED = _designated("julianday(d.effective_at)")
_INITIAL = oversight.EEUM_INITIAL_WITHIN.days
_ANNUAL = oversight.EEUM_ANNUAL_WITHIN.days

VIEWS: dict[str, tuple[str, str]] = {
    "backlog": (
        "Open cases and their value by platform, partner and stage.",
        """SELECT platform, partner, stage, count(*) AS cases,
       sum(quantity_left) AS quantity_left, sum(value_usd) AS value_usd
FROM cases WHERE open GROUP BY platform, partner, stage""",
    ),
    "queue_changes_explained": (
        "queue_changes with the causing event's envelope.",
        """SELECT q.id, q.event_position, q.event_type, q.platform, q."case", q.change,
       q.old_position, q.new_position, a.effective_at, a.recorded_at, a.actor,
       a.rationale, a.reference
FROM queue_changes q JOIN audit_log a ON a.position = q.event_position""",
    ),
    "oversight_flags": (
        "Oversight flags (docs/domain.md, Rule 6): backdated decisions, Middle East "
        "notifications without QME certification, EEUM deliveries without an initial "
        f"inventory within {_INITIAL} days, cases of a platform still designated without "
        f"an EEUM inventory in the last {_ANNUAL} days. "
        "Deadlines are judged at projection.time, or now.",
        f"""SELECT f.kind, f.event_position, f.stream,
       CASE WHEN f.stream LIKE 'case:%' THEN substr(f.stream, 6) END AS "case",
       f.partner, f.effective_at, f.detail
FROM event_flags f
UNION ALL
SELECT 'eeum-no-initial-inventory', d.position, 'case:' || d."case", d."case", d.partner,
       d.effective_at,
       'delivery of ' || d.quantity || ' ' || d.platform || ' on '
       || substr(d.effective_at, 1, 10) || ': no initial inventory within {_INITIAL} days'
FROM deliveries d
WHERE {_DESIGNATED}
  AND julianday(d.effective_at) + {_INITIAL} < {_JUDGED_AT}
  AND NOT EXISTS (SELECT 1 FROM end_use_checks c WHERE c."case" = d."case"
      AND c.kind = 'eeum-initial-inventory'
      AND julianday(c.effective_at) >= julianday(d.effective_at)
      AND julianday(c.effective_at) <= julianday(d.effective_at) + {_INITIAL})
UNION ALL
SELECT 'eeum-no-annual-inventory', NULL, 'case:' || e."case", e."case", e.partner,
       e.since,
       'no EEUM inventory since ' || substr(e.since, 1, 10)
       || ' (more than {_ANNUAL} days)'
FROM (
  SELECT d."case", d.partner,
         coalesce((SELECT c.effective_at FROM end_use_checks c WHERE c."case" = d."case"
                   AND c.kind IN ('eeum-initial-inventory', 'eeum-annual-inventory')
                   AND julianday(c.effective_at) <= {_JUDGED_AT}
                   ORDER BY julianday(c.effective_at) DESC LIMIT 1),
                  min(d.effective_at)) AS since
  FROM deliveries d WHERE {_DESIGNATED} AND {_designated(_JUDGED_AT)}
  GROUP BY d."case"
) e
WHERE julianday(e.since) + {_ANNUAL} < {_JUDGED_AT}""",
    ),
}
