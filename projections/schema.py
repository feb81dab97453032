"""The read models' tables: explicit schemas, indexes and column descriptions.

Every table is derived from the log alone and can be dropped and rebuilt. The columns
named ``*_position`` are log positions of the events that set a value: join them to
``audit_log.position`` for the event's type, actor and rationale.

sqlite-utils creates the tables (``create``); the catch-up writes rows with plain
``executemany`` on statements made here (``upsert_sql``), which keeps sqlite-utils'
import (about 70 ms) off the path of every appending command.
"""

from __future__ import annotations

import sqlite3
from typing import Any, NamedTuple

from arms_ledger.projections.views import VIEWS

# Bump when a table or its meaning changes: a projection of another version is rebuilt.
# 2: the partners' score points; 3: strategic unrounded; 4: queue_changes a view over
# queue_moves and the runs of queue_shifts; 5: corrections (EventCorrected) in cases,
# deliveries and event_flags; 6: event_flags has out-of-sequence deliveries and offers;
# 8: event_flags a view over raised_flags, eeum_clocks without rowid
SCHEMA_VERSION = 8


class Column(NamedTuple):
    name: str
    type: type
    description: str
    unit: str | None = None  # USD: an amount of money in dollars (the web view formats it)


USD = "usd"


class Table(NamedTuple):
    name: str
    description: str
    columns: tuple[Column, ...]
    pk: str | tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    # Stored in the order of its key, without a rowid: for a key that is the row's whole
    # identity, so that the key is not held twice (in the table and in its own index).
    without_rowid: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _c(name: str, kind: type, description: str, unit: str | None = None) -> Column:
    return Column(name, kind, description, unit)


POSITION = "log position of the event that set it"

PARTNERS = Table(
    "partners",
    "Partners with the facts in force, the three score components, score and tier "
    "under the priority policy in force.",
    (
        _c("partner", str, "ISO 3166-1 alpha-3 or organization code"),
        _c("name", str, "name"),
        _c("region", str, "region"),
        _c("nato_member", bool, "NATO member"),
        _c("middle_east", bool, "Middle East partner: QME certification applies"),
        _c("notification_group", str, "AECA 36(b) group in force: NATO+ or other"),
        _c("suspended", bool, "suspended now: no new cases"),
        _c("override", bool, "a priority override is in force: its cases go first"),
        _c("override_legal_basis", str, "legal basis of the override in force"),
        _c("pct_gdp", float, "defense spending, % of GDP, latest reported year"),
        _c("spending_year", int, "year of that report"),
        _c("spending_source", str, "source of that report (NATO, SIPRI, ...)"),
        _c("investment", float, "I = min(pct_gdp / target, 1)"),
        _c("strategic", float, "S = latest strategic value assessment, 0 if none"),
        _c("strategic_factors", str, "factors of that assessment (JSON list)"),
        _c("economic_usd", int, "sum of recorded economic contributions, USD", USD),
        _c("economic_contributions", int, "how many contributions were recorded"),
        _c("economic", float, "E = min(economic_usd / target, 1)"),
        _c("investment_points", float, "wI*I, rounded to 4 decimals"),
        _c("strategic_points", float, "wS*S, rounded to 4 decimals"),
        _c("economic_points", float, "wE*E, rounded to 4 decimals"),
        _c("score", float, "wI*I + wS*S + wE*E, rounded to 4 decimals"),
        _c("tier", int, "1 if score >= tier1, 2 if >= tier2, else 3"),
        _c("policy", str, "the priority policy whose parameters gave the score"),
        _c("registered_position", int, POSITION + ": PartnerRegistered"),
        _c("group_position", int, POSITION + ": the notification group"),
        _c("suspended_position", int, POSITION + ": the suspension or reinstatement"),
        _c("override_position", int, POSITION + ": the override grant or revocation"),
        _c("spending_position", int, POSITION + ": the spending report in force"),
        _c("strategic_position", int, POSITION + ": the assessment in force"),
    ),
    "partner",
    (("tier", "score"),),
)

PLATFORMS = Table(
    "platforms",
    "Catalog entries: production capacity, catalog priority, EEUM designation.",
    (
        _c("platform", str, "catalog slug"),
        _c("name", str, "name"),
        _c("prime", str, "prime contractor"),
        _c("category", str, "category"),
        _c("unit_cost_usd", int, "unit cost, USD", USD),
        _c("units_per_month", float, "production capacity in force, units per month"),
        _c("prioritized", bool, "on the priority sales catalog"),
        _c("catalog_edition", str, "the catalog edition of that decision"),
        _c("eeum", bool, "designated for enhanced end-use monitoring"),
        _c("eeum_criteria", str, "the EEUM criteria"),
        _c("withdrawn", bool, "withdrawn from the catalog: no new cases"),
        _c("listed_position", int, POSITION + ": PlatformListed"),
        _c("capacity_position", int, POSITION + ": the capacity in force"),
        _c("catalog_position", int, POSITION + ": the catalog decision in force"),
        _c("eeum_position", int, POSITION + ": the EEUM designation in force"),
        _c("withdrawn_position", int, POSITION + ": PlatformWithdrawn"),
    ),
    "platform",
)

CASES = Table(
    "cases",
    "FMS cases and DCS licences: stage, quantities, values, dates, holds, notification.",
    (
        _c("case", str, "case identifier"),
        _c("partner", str, "partner"),
        _c("platform", str, "platform"),
        _c("channel", str, "FMS or DCS"),
        _c("mde", bool, "major defense equipment"),
        _c(
            "stage",
            str,
            "filed, review-cleared, ... delivering, closed, cancelled, expired",
        ),
        _c("open", bool, "not closed, cancelled or expired"),
        _c("quantity", int, "units requested"),
        _c("delivered", int, "units delivered"),
        _c("quantity_left", int, "units left to deliver"),
        _c("estimated_value_usd", int, "estimated value at filing, USD", USD),
        _c("notified_value_usd", int, "value notified to Congress, USD", USD),
        _c("offer_value_usd", int, "value of the offer (LOA), USD", USD),
        _c(
            "value_usd", int, "latest known value: offer, else notified, else estimate", USD
        ),
        _c("priority_class", str, "expedited, normal or deferred"),
        _c("holds", str, "congressional holds in place (comma-separated offices)"),
        _c("cleared_by", str, "offices that cleared the review (comma-separated)"),
        _c("notification", str, "not notified, in review, held or notified"),
        _c("emergency", bool, "an emergency was declared (review period waived)"),
        _c("transmittal", str, "congressional transmittal number"),
        _c("notified_at", str, "effective time of the formal notification"),
        _c("offer_expires_at", str, "when the offer expires"),
        _c("filed_at", str, "effective time of the filing (the queue's tie-break)"),
        _c("last_effective_at", str, "effective time of the case's latest event"),
        _c("filed_position", int, POSITION + ": CaseFiled"),
        _c("priority_position", int, POSITION + ": the reprioritization in force"),
        _c("last_position", int, "log position of the case's latest event"),
    ),
    "case",
    (("partner",), ("platform", "stage"), ("stage",)),
)

QUEUE = Table(
    "queue",
    "The priority queues: open cases with quantity left, per platform, in order "
    "(priority class, override, tier, score, filed, case).",
    (
        _c("platform", str, "the queue"),
        _c("position", int, "place in the queue, 1 first"),
        _c("case", str, "case"),
        _c("partner", str, "partner"),
        _c("priority_class", str, "expedited, normal or deferred"),
        _c("override", bool, "the partner's priority override is in force"),
        _c("tier", int, "partner tier (null in fcfs mode)"),
        _c("score", float, "partner score (null in fcfs mode)"),
        _c("filed_at", str, "effective time of the filing"),
        _c("stage", str, "the case's stage"),
        _c("quantity_left", int, "units left to deliver"),
        _c("cumulative_quantity", int, "units left of this case and all ahead of it"),
        _c("est_completion_months", float, "cumulative_quantity / capacity, months"),
    ),
    "case",
    (("platform", "position"), ("partner",)),
)

# The columns of the ``queue_changes`` view (views.py): one row per case an event moved.
# It is not stored row by row: a case's own changes are (``queue_moves``), and the cases
# that only shifted are stored as runs (``queue_shifts``), expanded by the view.
QUEUE_CHANGES_COLUMNS: tuple[Column, ...] = (
    _c("id", int, "row number: the order the changes were made in (stable)"),
    _c("event_position", int, "log position of the causing event"),
    _c("event_type", str, "type of the causing event"),
    _c("platform", str, "the queue"),
    _c("case", str, "the case that changed"),
    _c(
        "change",
        str,
        "entered, left, moved (its own sort key changed) or shifted "
        "(others entered, left or moved ahead of it)",
    ),
    _c("old_position", int, "position before (null when it entered)"),
    _c("new_position", int, "position after (null when it left)"),
)

QUEUE_MOVES = Table(
    "queue_moves",
    "The queue changes of a case's own: it entered, left or moved (its own sort key "
    "changed); the rows of queue_changes that are not 'shifted', with their ids.",
    tuple(
        c._replace(description="entered, left or moved (its own sort key changed)")
        if c.name == "change"
        else c
        for c in QUEUE_CHANGES_COLUMNS
    ),
    "id",
    (("case", "event_position"), ("platform", "event_position"), ("event_position",)),
)

QUEUE_SHIFTS = Table(
    "queue_shifts",
    "The cases an event shifted (others entered, left or moved ahead of them), as runs: "
    "the k-th case of a run (k from 0) is queue_changes row id + k, at old_position + k "
    "before and new_position + k after.",
    (
        _c("id", int, "the queue_changes id of the run's first case"),
        _c("event_position", int, "log position of the causing event"),
        _c("platform", str, "the queue"),
        _c("old_position", int, "position before of the run's first case"),
        _c("new_position", int, "position after of the run's first case"),
        _c("cases", int, "how many cases the run shifted"),
        _c(
            "members",
            str,
            "the cases, one character each, in order: the code point is the case's "
            "number in its platform's queue (queue_cases), from 55296 on plus 10240 "
            "(past the surrogates and U+FFFE..U+FFFF)",
        ),
    ),
    "id",
    (("platform", "event_position"), ("event_position",)),
)

QUEUE_CASES = Table(
    "queue_cases",
    "The number of each case that was ever in a queue, as queue_shifts names it.",
    (
        _c(
            "number",
            int,
            "the platform's listed_position * 2^20 plus the case's number in its "
            "queue (from 1, in the order cases first entered it)",
        ),
        _c("platform", str, "the queue"),
        _c("case", str, "the case"),
    ),
    "number",
    (("case",),),
)

AUDIT_LOG = Table(
    "audit_log",
    "Every event of the log with its envelope.",
    (
        _c("position", int, "log position"),
        _c(
            "stream", str, "stream: partner:POL, platform:ah-64e, case:PL-B-AHA, policy:..."
        ),
        _c("version", int, "version within the stream"),
        _c("type", str, "event type"),
        _c("decision", bool, "a decision (rationale required)"),
        _c("actor", str, "who acted"),
        _c("rationale", str, "why"),
        _c("reference", str, "transmittal, document id or address"),
        _c("effective_at", str, "when it took effect"),
        _c("recorded_at", str, "when the ledger recorded it"),
        _c("idempotency_key", str, "idempotency key"),
        _c("payload", str, "the event's own fields (JSON object)"),
    ),
    "position",
    (("stream", "version"), ("type",), ("actor",), ("effective_at",)),
)

POLICIES = Table(
    "policies",
    "Priority policies and notification thresholds adopted; the latest effective is in "
    "force.",
    (
        _c("position", int, "log position of the adoption"),
        _c("policy", str, "policy slug"),
        _c("type", str, "PriorityPolicyAdopted or NotificationThresholdsSet"),
        _c("name", str, "name"),
        _c("legal_basis", str, "legal basis"),
        _c("mode", str, "fcfs or scored"),
        _c("parameters", str, "weights, targets and tiers, or thresholds (JSON)"),
        _c("effective_at", str, "effective time"),
        _c("in_force", bool, "in force now (latest effective of its type)"),
    ),
    "position",
)

FLAGS = Table(
    "raised_flags",
    "The oversight flags raised by one event, as stored: the event_flags view words "
    "them (the stream and effective time from audit_log, an out-of-sequence flag's "
    "sentence from its numbers and names).",
    (
        _c("event_position", int, "log position of the event"),
        _c("kind", int, "the flag's kind: its number in oversight.FLAG_KINDS, from 0"),
        _c("partner", str, "partner concerned"),
        _c("detail", str, "what was found (null: out of sequence, worded from the rest)"),
        _c("offer", bool, "out of sequence: an offer (else a delivery)"),
        _c("queue_position", int, "out of sequence: the case's place in its queue"),
        _c("platform", str, "out of sequence: the queue's platform"),
        _c("waiting", int, "out of sequence: how many cases ahead still wait"),
        _c("shown", str, "out of sequence: the first cases waiting, comma-separated"),
    ),
    ("event_position", "kind"),
    without_rowid=True,
)

# The columns of the event_flags view (``projections.views``) over raised_flags.
EVENT_FLAGS_COLUMNS = (
    _c("event_position", int, "log position of the event"),
    _c("kind", str, "backdated-decision, qme-not-certified, correction or out-of-sequence"),
    _c("stream", str, "stream of the event"),
    _c("partner", str, "partner concerned"),
    _c("effective_at", str, "effective time of the event"),
    _c("detail", str, "what was found"),
)

DELIVERIES = Table(
    "deliveries",
    "Deliveries, for end-use monitoring.",
    (
        _c("position", int, "log position"),
        _c("case", str, "case"),
        _c("platform", str, "platform"),
        _c("partner", str, "partner"),
        _c("quantity", int, "units delivered"),
        _c("effective_at", str, "when delivered"),
    ),
    "position",
    (("platform", "effective_at"), ("case",)),
)

END_USE_CHECKS = Table(
    "end_use_checks",
    "End-use checks: routine, EEUM initial and annual inventories, physical security.",
    (
        _c("position", int, "log position"),
        _c("case", str, "case"),
        _c("kind", str, "routine, eeum-initial-inventory, eeum-annual-inventory, ..."),
        _c("result", str, "compliant, discrepancy or item-lost"),
        _c("effective_at", str, "when the check took place"),
    ),
    "position",
    (("case", "kind", "effective_at"),),
)

EEUM_DESIGNATIONS = Table(
    "eeum_designations",
    "EEUM designation changes of platforms, to tell what was designated when.",
    (
        _c("position", int, "log position"),
        _c("platform", str, "platform"),
        _c("designated", bool, "designated from effective_at"),
        _c("effective_at", str, "effective time"),
    ),
    "position",
    (("platform", "effective_at"),),
)

EEUM_CLOCKS = Table(
    "eeum_clocks",
    "EEUM inventory clocks (ledger.domain.oversight.eeum_clocks): an inventory owed from "
    "opened until closed, due at due; oversight_flags and `audit deadlines` judge them.",
    (
        _c("case", str, "case"),
        _c("kind", str, "eeum-initial-inventory or eeum-annual-inventory"),
        _c("opened", str, "owed from"),
        _c("position", int, "the delivery, or the inventory it counts from"),
        _c("partner", str, "partner"),
        _c("platform", str, "platform"),
        _c("quantity", int, "units delivered (the delivery, or the first)"),
        _c("since", str, "the delivery, or the last inventory (or first delivery)"),
        _c("due", str, "when the inventory is due"),
        _c("closed", str, "owed until (null: still owed)"),
    ),
    ("case", "kind", "opened", "position"),
    without_rowid=True,
)

PROJECTION = Table(
    "projection",
    "How far the read models have read the log, in the same transaction as their rows.",
    (
        _c("id", int, "always 1"),
        _c("schema_version", int, "version of these tables"),
        _c("position", int, "last log position applied"),
        _c("as_of", str, "replays: events effective at or before this time"),
        _c("known_at", str, "replays: events recorded at or before this time"),
        _c("at_position", int, "replays: events up to this log position"),
        _c("time", str, "the time flags are judged at (null: now)"),
    ),
    "id",
)

# The columns of views described here (the web's metadata describes every view's).
VIEW_COLUMNS: dict[str, tuple[Column, ...]] = {
    "queue_changes": QUEUE_CHANGES_COLUMNS,
    "event_flags": EVENT_FLAGS_COLUMNS,
}

TABLES: tuple[Table, ...] = (
    PARTNERS,
    PLATFORMS,
    CASES,
    QUEUE,
    QUEUE_MOVES,
    QUEUE_SHIFTS,
    QUEUE_CASES,
    AUDIT_LOG,
    POLICIES,
    FLAGS,
    DELIVERIES,
    END_USE_CHECKS,
    EEUM_DESIGNATIONS,
    EEUM_CLOCKS,
    PROJECTION,
)


def describe() -> dict[str, dict[str, Any]]:
    """Every table and view with its description and column descriptions."""
    out: dict[str, dict[str, Any]] = {}
    for table in TABLES:
        out[table.name] = {
            "description": table.description,
            "columns": {c.name: c.description for c in table.columns},
        }
    for name, (description, _) in VIEWS.items():
        columns = VIEW_COLUMNS.get(name, ())
        out[name] = {
            "description": description,
            "columns": {c.name: c.description for c in columns},
        }
    return out


# Indexes a rebuild keeps up while it appends rows, in its writer thread (alongside the
# projecting one): those whose entries go at the end when rows come in log order. The
# others are created once the rows are in, one sort each, instead of an insert into a
# large B-tree per row (for the queue changes' (platform, event_position), with 51
# insertion points, both ways took the same time on a 1,000,000-event log).
KEPT_DURING_REBUILD: set[tuple[str, tuple[str, ...]]] = {
    ("queue_moves", ("event_position",)),
    ("queue_shifts", ("event_position",)),
    ("audit_log", ("type",)),
    ("audit_log", ("effective_at",)),
}


def create(conn: sqlite3.Connection, *, indexes: bool = True) -> None:
    """Create every table, index and view (inside the caller's transaction).

    ``indexes=False`` creates only the indexes of ``KEPT_DURING_REBUILD`` and leaves the
    others to ``create_indexes``.
    """
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    for table in TABLES:
        if table.without_rowid:  # which sqlite-utils does not make
            create_table(conn, table)
            continue
        db[table.name].create(  # type: ignore[union-attr]
            {c.name: c.type for c in table.columns},
            pk=table.pk,
            not_null={table.pk} if isinstance(table.pk, str) else set(table.pk),
        )
    create_indexes(conn, only=None if indexes else KEPT_DURING_REBUILD)
    for name, (_, sql) in VIEWS.items():
        db.create_view(name, sql)


# The column types sqlite-utils gives (``create``), for the tables made without it.
TYPES = {str: "TEXT", int: "INTEGER", bool: "INTEGER", float: "REAL"}


def create_table(conn: sqlite3.Connection, table: Table) -> None:
    """``table`` as ``create`` makes it (the same columns, types and key) without
    sqlite-utils, and without its indexes."""
    pk = (table.pk,) if isinstance(table.pk, str) else table.pk
    columns = [
        f'"{c.name}" {TYPES[c.type]}' + (" NOT NULL" if c.name in pk else "")
        for c in table.columns
    ]
    keys = ", ".join(f'"{k}"' for k in pk)
    rowid = " WITHOUT ROWID" if table.without_rowid else ""
    conn.execute(
        f'CREATE TABLE "{table.name}" ({", ".join(columns)}, PRIMARY KEY ({keys})){rowid}'
    )


def create_indexes(
    conn: sqlite3.Connection, only: set[tuple[str, tuple[str, ...]]] | None = None
) -> None:
    """Create the tables' secondary indexes (all, or ``only`` these) that do not exist."""
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    existing = {
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    for table in TABLES:
        for columns in table.indexes:
            if only is not None and (table.name, columns) not in only:
                continue
            if f"idx_{table.name}_{'_'.join(columns)}" in existing:
                continue
            db[table.name].create_index(columns)  # type: ignore[union-attr]


def drop(conn: sqlite3.Connection) -> None:
    """Drop every table and view of the read models (inside the caller's transaction)."""
    rows = conn.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    for kind, name in rows:
        conn.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')


def upsert_sql(table: Table) -> str:
    cols = ", ".join(f'"{c}"' for c in table.names)
    marks = ", ".join("?" for _ in table.names)
    return f'INSERT OR REPLACE INTO "{table.name}" ({cols}) VALUES ({marks})'
