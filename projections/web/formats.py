"""How the web view shows a cell: money as "$12.0 B" or "$47 M", a boolean as yes or no.

One place decides which columns are which: the schema (``projections.schema``: a
column of type bool is a boolean, a column of unit USD is money), the views' columns
that are a table's column (``metadata.VIEW_COLUMNS``), and ``COMPUTED`` for what a
view or a canned query computes. A canned query's column is formatted as the column
of the same name in the tables and views, unless ``COMPUTED`` says otherwise; a name
that means different things in different tables (``AMBIGUOUS``) must be declared there
for each query that returns it (tests/web/test_formats.py checks it).

Only the HTML pages are formatted: the JSON and CSV exports keep the raw values, and a
formatted amount keeps the exact one in its ``title`` (shown on hover).
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Literal

from arms_ledger.projections import schema
from arms_ledger.projections.web import metadata
from markupsafe import Markup, escape

Format = Literal["usd", "yes/no"]
USD: Format = "usd"
YES_NO: Format = "yes/no"

# What the views and the canned queries compute, by (view or query, column): None for
# a column that is neither money nor a boolean although a table's column of that name is.
COMPUTED: dict[tuple[str, str], Format | None] = {
    ("backlog", "value_usd"): USD,
    ("backlog_by_partner_platform", "value_usd"): USD,
    ("holds_by_office", "held_now"): YES_NO,
    # expedited, deferred, normal, override granted or revoked: not audit_log's flag
    ("priority_decisions", "decision"): None,
}


def column_format(column: schema.Column) -> Format | None:
    if column.unit == schema.USD:
        return USD
    if column.type is bool:
        return YES_NO
    return None


def _tables() -> dict[str, dict[str, Format]]:
    found: dict[str, dict[str, Format]] = defaultdict(dict)
    columns = {(t.name, c.name): c for t in schema.TABLES for c in t.columns} | {
        (view, c.name): c for view, cols in schema.VIEW_COLUMNS.items() for c in cols
    }
    for (table, name), column in columns.items():
        if (f := column_format(column)) is not None:
            found[table][name] = f
    for view, view_columns in metadata.VIEW_COLUMNS.items():
        for name, source in view_columns.items():
            if (view, name) in COMPUTED:
                f = COMPUTED[view, name]
            elif isinstance(source, metadata.From):
                f = column_format(columns[source.table, source.column])
            else:
                f = None
            if f is not None:
                found[view][name] = f
    return dict(found)


# Each table's and view's formatted columns.
TABLES: dict[str, dict[str, Format]] = _tables()


def _by_name() -> tuple[dict[str, Format | None], frozenset[str]]:
    seen: dict[str, set[Format | None]] = defaultdict(set)
    for table in schema.TABLES:
        for c in table.columns:
            seen[c.name].add(TABLES.get(table.name, {}).get(c.name))
    for view, view_columns in metadata.VIEW_COLUMNS.items():
        for name in view_columns:
            seen[name].add(TABLES.get(view, {}).get(name))
    named = {name: next(iter(fs)) for name, fs in seen.items() if len(fs) == 1}
    return named, frozenset(name for name, fs in seen.items() if len(fs) > 1)


# A column name's format wherever it appears, and the names whose format differs by table.
BY_NAME, AMBIGUOUS = _by_name()


def query_format(query: str | None, column: str) -> Format | None:
    """The format of a column a canned query returns (``query`` None: arbitrary SQL,
    formatted by name where the name is unambiguous)."""
    if query is not None and (query, column) in COMPUTED:
        return COMPUTED[query, column]
    return BY_NAME.get(column)


def usd(amount: int | float) -> str:
    """An amount of dollars in a few characters: billions to a tenth ($12.0 B), millions
    to a tenth where it is not nought ($47 M, $82.5 M), less in full ($950,000)."""
    sign, amount = ("\u2212" if amount < 0 else ""), abs(amount)
    if amount >= 999_950_000:  # not "$1000.0 M"
        text = f"${amount / 1e9:.1f} B"
    elif amount >= 1e6:
        text = f"${amount / 1e6:.1f}".removesuffix(".0") + " M"
    else:
        text = f"${amount:,.0f}"
    return sign + text


def exact_usd(amount: int | float) -> str:
    return ("\u2212" if amount < 0 else "") + f"${abs(amount):,}"


def text(fmt: Format | None, value: Any) -> str | None:
    """A value as the page shows it in plain text, or None if the format does not apply
    (no format, a null, or a value of another type: shown as it is)."""
    if fmt is None or value is None or isinstance(value, bool | str | bytes):
        return None
    if fmt == USD and isinstance(value, int | float):
        return usd(value)
    if fmt == YES_NO and value in (0, 1):
        return "yes" if value else "no"
    return None


_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z")
_CAMEL = re.compile(r"[A-Z][a-z]+(?:[A-Z][a-z0-9]*)+")


def breakable(column: str, value: Any) -> Markup | None:
    """A long identifier with places to break the line (a time after its date, an event
    type between its words, a stream after its kind), so that a table of many columns
    fits the window; the text is unchanged. None: nothing to break."""
    if not isinstance(value, str):
        return None
    if column.endswith("_at") and _INSTANT.fullmatch(value):
        day, _, time = value.partition("T")
        return Markup(f"{escape(day)}<wbr>T{escape(time)}")
    if column.endswith("type") and _CAMEL.fullmatch(value):
        return Markup("<wbr>".join(escape(w) for w in re.findall(r"[A-Z][a-z0-9]*", value)))
    if column == "stream" and ":" in value:
        kind, _, key = value.partition(":")
        return Markup(f"{escape(kind)}:<wbr>{escape(key)}")
    return None


def cell(fmt: Format | None, value: Any, column: str = "") -> Markup | None:
    """A cell's HTML, or None to leave it to Datasette."""
    shown = text(fmt, value)
    if shown is None:
        return breakable(column, value)
    if fmt == USD:
        return Markup(
            f'<span class="usd" title="{escape(exact_usd(value))}">{escape(shown)}</span>'
        )
    return Markup(f'<span class="{escape(shown)}">{escape(shown)}</span>')
