"""The read models' views: questions every reader asks, written once in SQL.

The oversight flags that depend on the time they are judged at (the EEUM inventory
clocks ``ledger.domain.oversight.eeum_clocks`` gives, held in ``eeum_clocks``) are
judged here, at ``projection.time`` (a replay's own time) or now.
"""

from __future__ import annotations

from string import Formatter

from arms_ledger.ledger.domain import oversight

# The time flags are judged at: a replay's own time, else now.
_JUDGED_AT = "coalesce((SELECT julianday(time) FROM projection), julianday('now'))"


# An EEUM clock (``eeum_clocks``, ``oversight.clock_status``) still owed then.
_OWED = (
    f"julianday(k.opened) <= {_JUDGED_AT} "
    f"AND (k.closed IS NULL OR {_JUDGED_AT} < julianday(k.closed))"
)
_INITIAL = oversight.EEUM_INITIAL_WITHIN.days
_ANNUAL = oversight.EEUM_ANNUAL_WITHIN.days

# The shifted rows of ``queue_changes``: each run ``s`` of ``queue_shifts``, its k-th case
# (``k`` counts 0 .. cases - 1 over a JSON array of that many elements) found by number.
# The platform term is not an index term on either side (unary +): so a query over every
# row goes run by run (each case by its number), and one over a case's rows starts from
# the case (its number) instead of scanning a platform's numbers for every run.
_COUNTING = "'[' || substr(replace(hex(zeroblob(s.cases)), '00', ',0'), 2) || ']'"

# A case's number in ``queue_cases`` is its platform's ``listed_position`` shifted left by
# CASE_BITS, plus its number in that platform's queue (from 1): ``queue_shifts.members``
# names the latter, one character each. Below SURROGATES a number is its code point;
# from there on it is number + PAST_SURROGATES, from U+10000: past the surrogates (not
# characters) and U+FFFE and U+FFFF (SQLite's ``unicode`` reads them as U+FFFD).
CASE_BITS = 20
SURROGATES = 0xD800
PAST_SURROGATES = 0x10000 - SURROGATES


def _number(k: str) -> str:
    """SQL: the queue_cases number of the ``k``-th case of run ``s`` on platform ``p``."""
    u = f"unicode(substr(s.members, {k} + 1, 1))"
    local = f"{u} - {PAST_SURROGATES} * ({u} >= {SURROGATES + PAST_SURROGATES})"
    return f"(p.listed_position << {CASE_BITS}) + {local}"


def case_changes(case: str) -> str:
    """SQL: the rows of ``queue_changes`` of one case (``case``: an SQL expression, e.g. a
    parameter), as the view gives them, without expanding every run: the case's own
    changes from ``queue_moves`` (by case), and the runs of its platform's
    ``queue_shifts`` (by platform) that name it, its place in each found with ``instr``.
    A query of the view for one case expands every run (it cannot start from the case's
    platform and still read every row in one pass); this reads only its platform's."""
    local = f"(c.number & {(1 << CASE_BITS) - 1})"
    char = f"char({local} + {PAST_SURROGATES} * ({local} >= {SURROGATES}))"
    return f"""SELECT id, event_position, event_type, platform, "case", change,
       old_position, new_position
FROM queue_moves WHERE "case" = {case}
UNION ALL
SELECT s.id + s.k, s.event_position, a.type, s.platform, s."case", 'shifted',
       s.old_position + s.k, s.new_position + s.k
FROM (SELECT s.id, s.event_position, s.platform, s.old_position, s.new_position,
             c."case", instr(s.members, {char}) - 1 AS k
      FROM queue_cases c JOIN queue_shifts s ON s.platform = c.platform
      WHERE c."case" = {case}) s
JOIN audit_log a ON a.position = s.event_position
WHERE s.k >= 0"""


def _words(template: str, fields: dict[str, str]) -> str:
    """SQL: ``template`` (a ``str.format`` template of ``oversight``) with each field
    replaced by the value of an SQL expression, as ``str.format`` would write it (text as
    it is, an integer in decimal: so does ``||``)."""
    parts = []
    for literal, field, spec, conversion in Formatter().parse(template):
        if literal:
            parts.append("'" + literal.replace("'", "''") + "'")
        if field is not None:
            assert not spec and conversion is None, "plain fields only"
            parts.append(f"({fields[field]})")
    return " || ".join(parts)


_SHOWN = oversight.SHOWN
# An out-of-sequence flag's sentence (``oversight.skipped_text``) from the
# ``oversight.Skipped`` a ``raised_flags`` row ``f`` holds.
SKIPPED_TEXT = _words(
    oversight.SKIPPED,
    {
        "what": f"CASE WHEN f.offer THEN '{oversight.WHAT[1]}' "
        f"ELSE '{oversight.WHAT[0]}' END",
        "position": "f.queue_position",
        "platform": "f.platform",
        "waiting": "f.waiting",
        "shown": "f.shown",
        "more": f"CASE WHEN f.waiting > {_SHOWN} THEN "
        f"{_words(oversight.MORE, {'more': f'f.waiting - {_SHOWN}'})} ELSE '' END",
    },
)
# A ``raised_flags`` kind's name (its number in ``oversight.FLAG_KINDS``).
_KIND = (
    "CASE f.kind "
    + " ".join(f"WHEN {n} THEN '{kind}'" for n, kind in enumerate(oversight.FLAG_KINDS))
    + " END"
)


VIEWS: dict[str, tuple[str, str]] = {
    # Every flag's event has its audit_log row: LEFT JOIN only lets SQLite skip the
    # lookup when a query reads no column of it (the flags of a kind, by position).
    "event_flags": (
        "Oversight flags raised by one event (backdated decisions, notifications without "
        "QME certification, corrections, deliveries and offers out of sequence); "
        "oversight_flags adds the EEUM inventory flags.",
        f"""SELECT f.event_position, {_KIND} AS kind, a.stream, f.partner, a.effective_at,
       coalesce(f.detail, {SKIPPED_TEXT}) AS detail
FROM raised_flags f LEFT JOIN audit_log a ON a.position = f.event_position""",
    ),
    "backlog": (
        "Open cases and their value by platform, partner and stage.",
        """SELECT platform, partner, stage, count(*) AS cases,
       sum(quantity_left) AS quantity_left, sum(value_usd) AS value_usd
FROM cases WHERE open GROUP BY platform, partner, stage""",
    ),
    "queue_changes": (
        "Every change of a case's queue position or membership, with the event that "
        "caused it (queue_changes_explained adds its actor and rationale): the cases' "
        "own changes (queue_moves) and, one row per case, the runs of queue_shifts.",
        f"""SELECT id, event_position, event_type, platform, "case", change, old_position,
       new_position
FROM queue_moves
UNION ALL
SELECT s.id + k.key, s.event_position, a.type, s.platform, c."case", 'shifted',
       s.old_position + k.key, s.new_position + k.key
FROM queue_shifts s
JOIN platforms p ON p.platform = s.platform
JOIN json_each({_COUNTING}) k
JOIN queue_cases c ON c.number = {_number("k.key")} AND +c.platform = +s.platform
JOIN audit_log a ON a.position = s.event_position""",
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
        "notifications without QME certification, corrections, EEUM deliveries "
        f"without an initial inventory within {_INITIAL} days, cases of a platform still "
        f"designated without an EEUM inventory in the last {_ANNUAL} days. "
        "Deadlines are judged at projection.time, or now.",
        f"""SELECT f.kind, f.event_position, f.stream,
       CASE WHEN f.stream LIKE 'case:%' THEN substr(f.stream, 6) END AS "case",
       f.partner, f.effective_at, f.detail
FROM event_flags f
UNION ALL
SELECT CASE k.kind WHEN 'eeum-initial-inventory' THEN 'eeum-no-initial-inventory'
       ELSE 'eeum-no-annual-inventory' END,
       CASE k.kind WHEN 'eeum-initial-inventory' THEN k.position END,
       'case:' || k."case", k."case", k.partner, k.since,
       CASE k.kind WHEN 'eeum-initial-inventory'
       THEN 'delivery of ' || k.quantity || ' ' || k.platform || ' on '
            || substr(k.since, 1, 10) || ': no initial inventory within {_INITIAL} days'
       ELSE 'no EEUM inventory since ' || substr(k.since, 1, 10)
            || ' (more than {_ANNUAL} days)' END
FROM eeum_clocks k
WHERE {_OWED} AND julianday(k.due) <= {_JUDGED_AT}""",
    ),
}
