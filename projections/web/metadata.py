"""The web view's Datasette metadata, generated from ``projections/schema.py``.

Every table and column description comes from the schema; the views' columns that are
a table's column reuse that column's description, and only what a view computes is
described here. This module adds what is Datasette's own: sort orders, facets, the
hidden bookkeeping table, the canned queries and the home page.
"""

from __future__ import annotations

import sqlite3
from typing import Any, NamedTuple
from urllib.parse import urlencode

from arms_ledger.ledger.domain.oversight import FLAG_KINDS
from arms_ledger.projections import schema
from arms_ledger.projections.web import canned, charts
from markupsafe import escape

# Datasette names a database after its file's stem: projections.db.
DATABASE = "projections"
PLUGIN = "arms-ledger"


class From(NamedTuple):
    """A view's column that is a table's column: described by the schema."""

    table: str
    column: str


VIEW_COLUMNS: dict[str, dict[str, str | From]] = {
    "backlog": {
        "platform": From("cases", "platform"),
        "partner": From("cases", "partner"),
        "stage": From("cases", "stage"),
        "cases": "open cases",
        "quantity_left": "units left to deliver, summed over the open cases",
        "value_usd": "latest known values of the open cases, summed, USD",
    },
    "queue_changes": {c.name: c.description for c in schema.QUEUE_CHANGES_COLUMNS},
    "event_flags": {c.name: c.description for c in schema.EVENT_FLAGS_COLUMNS},
    "queue_changes_explained": {
        "id": From("queue_changes", "id"),
        "event_position": From("queue_changes", "event_position"),
        "event_type": From("queue_changes", "event_type"),
        "platform": From("queue_changes", "platform"),
        "case": From("queue_changes", "case"),
        "change": From("queue_changes", "change"),
        "old_position": From("queue_changes", "old_position"),
        "new_position": From("queue_changes", "new_position"),
        "effective_at": From("audit_log", "effective_at"),
        "recorded_at": From("audit_log", "recorded_at"),
        "actor": From("audit_log", "actor"),
        "rationale": From("audit_log", "rationale"),
        "reference": From("audit_log", "reference"),
    },
    "oversight_flags": {
        "kind": ", ".join(FLAG_KINDS[:-1]) + " or " + FLAG_KINDS[-1],
        "event_position": "log position of the event flagged (null for a missing annual "
        "inventory)",
        "stream": From("event_flags", "stream"),
        "case": "the case concerned (null for a partner or platform event)",
        "partner": From("event_flags", "partner"),
        "effective_at": "effective time of the event, or of the last inventory (else the "
        "first delivery) for a missing annual inventory",
        "detail": From("event_flags", "detail"),
    },
}

# Datasette's table options: the order rows come in, the facets offered, what is hidden.
TABLE_OPTIONS: dict[str, dict[str, Any]] = {
    "partners": {
        "sort_desc": "score",
        "facets": ["tier", "notification_group", "region"],
        "label_column": "name",
    },
    "platforms": {
        "sort": "platform",
        "facets": ["category", "prioritized", "eeum"],
        "label_column": "name",
    },
    "cases": {
        "sort_desc": "filed_at",
        "facets": ["stage", "platform", "partner", "priority_class", "notification"],
    },
    "queue": {"sort": "position", "facets": ["platform", "priority_class", "tier"]},
    "queue_changes": {"sort_desc": "id", "facets": ["change", "event_type", "platform"]},
    "queue_moves": {"sort_desc": "id", "facets": ["change", "event_type", "platform"]},
    "queue_shifts": {"sort_desc": "id", "facets": ["platform"]},
    "queue_cases": {"sort": "number", "facets": ["platform"]},
    "audit_log": {"sort_desc": "position", "facets": ["type", "actor", "decision"]},
    "policies": {"sort_desc": "position", "facets": ["type", "in_force"]},
    "event_flags": {"sort_desc": "event_position", "facets": ["kind"]},
    "raised_flags": {"sort_desc": "event_position", "facets": ["kind"]},
    "deliveries": {"sort_desc": "effective_at", "facets": ["platform", "partner"]},
    "end_use_checks": {"sort_desc": "effective_at", "facets": ["kind", "result"]},
    "eeum_designations": {
        "sort_desc": "effective_at",
        "facets": ["platform", "designated"],
    },
    "eeum_clocks": {"sort": "due", "facets": ["kind", "platform"]},
    # Bookkeeping: how far the read models have read the log (shown in the banner).
    "projection": {"hidden": True},
    "backlog": {"sort_desc": "value_usd", "facets": ["platform", "partner", "stage"]},
    "queue_changes_explained": {
        "sort_desc": "id",
        "facets": ["change", "event_type", "platform", "actor"],
    },
    "oversight_flags": {"sort": "kind", "facets": ["kind", "partner"]},
}


_COLUMNS = {t.name: {c.name: c.description for c in t.columns} for t in schema.TABLES} | {
    name: {c.name: c.description for c in columns}
    for name, columns in schema.VIEW_COLUMNS.items()
}


def column_descriptions(name: str) -> dict[str, str]:
    """The description of every column of a table or view."""
    if name not in schema.VIEWS:
        return _COLUMNS[name]
    return {
        column: _COLUMNS[s.table][s.column] if isinstance(s, From) else s
        for column, s in VIEW_COLUMNS[name].items()
    }


def tables() -> dict[str, dict[str, Any]]:
    """Datasette's ``tables`` metadata: every table and view of the read models."""
    descriptions = {t.name: t.description for t in schema.TABLES} | {
        name: description for name, (description, _) in schema.VIEWS.items()
    }
    return {
        name: {"description": description, "columns": column_descriptions(name)}
        | TABLE_OPTIONS.get(name, {})
        for name, description in descriptions.items()
    }


def queries() -> dict[str, dict[str, Any]]:
    return {
        # The SQL is one click away ("show"): the answer comes first.
        q.name: {
            "title": q.title,
            "description": q.description,
            "sql": q.sql,
            "params": list(q.params),
            "hide_sql": True,
        }
        for q in canned.CANNED
    }


def _link(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def home(
    conn: sqlite3.Connection, caption: str, allow_sql: bool, whatif: bool = False
) -> str:
    """The home page's description: what this is, the charts, the what-if page (when
    the log is at hand) and the canned queries."""
    chart_items = "".join(
        f"<li>{_link(f'/-/charts/{c.name}', c.title)}: {escape(c.description)}</li>"
        for c in charts.CHARTS
    )
    query_items = []
    for q in canned.CANNED:
        params = canned.example(conn, q)
        href = f"/{DATABASE}/{q.name}" + (f"?{urlencode(params)}" if params else "")
        query_items.append(
            f"<li>{_link(href, q.title)}"
            + "".join(f" <code>{escape(p)}</code>" for p in q.params)
            + "</li>"
        )
    sql = (
        "Arbitrary read-only SQL is allowed."
        if allow_sql
        else "Arbitrary SQL is off; the canned queries below answer the usual questions."
    )
    return (
        f"<p>{escape(caption)}. The read models are derived from the event log "
        "alone and shown read-only: every table and column is described on its page, "
        f"and every row can be exported as JSON or CSV. {sql}</p>"
        f'<h2>Charts</h2><ul class="arms-ledger-charts">{chart_items}</ul>'
        + (
            '<h2>What if</h2><p class="arms-ledger-whatif">'
            f"{_link('/-/whatif', 'What if a priority policy were adopted?')} A proposal "
            "typed in a form (weights, targets, tiers, mode): a queue under the policy in "
            "force and under the proposal, the net effect by partner, and how far the "
            "weights may move before the first places change. Computed, never stored.</p>"
            if whatif
            else ""
        )
        + '<h2>Canned queries</h2><ul class="arms-ledger-queries">'
        f"{''.join(query_items)}</ul>"
        f"<h2>Tables</h2><p>In the {_link(f'/{DATABASE}', DATABASE)} database:</p>"
    )


def metadata(
    conn: sqlite3.Connection, *, caption: str, allow_sql: bool, whatif: bool = False
) -> dict[str, Any]:
    """Datasette's metadata for the read models in ``conn``, under ``caption``
    (``whatif``: with a link to the what-if page)."""
    return {
        "title": "arms-ledger",
        "description_html": home(conn, caption, allow_sql, whatif),
        "databases": {
            DATABASE: {
                "description": f"{caption}. The read models of the arms-ledger event log.",
                "tables": tables(),
                "queries": queries(),
            }
        },
        "plugins": {PLUGIN: {"caption": caption}},
    }
