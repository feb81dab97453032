"""The web view's Datasette plugin: the hooks. The routes of the chart pages (built in
``pages``) and of the what-if page (``whatif``), the menu, the banner saying which state
is shown, the refusal of arbitrary SQL, and suggestions for the canned queries'
parameters.

Registered once per process by ``projections.web.datasette``; every hook does nothing on
a Datasette without this project's metadata (``plugins: {arms-ledger: ...}``).
"""

from __future__ import annotations

import sqlite3
import typing
import weakref
from collections.abc import Callable
from typing import Any

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain import oversight
from arms_ledger.projections import queries, userquery
from arms_ledger.projections.web import charts, formats, monitors, pages, whatif
from arms_ledger.projections.web.metadata import DATABASE, PLUGIN
from datasette import hookimpl
from datasette.utils.asgi import Response


def _ours(datasette: Any) -> bool:
    return datasette.plugin_config(PLUGIN) is not None


# The Host names each Datasette answers to (``projections.web.datasette``); none: any.
HOSTS: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()


def host_name(header: str) -> str:
    """The name of a ``Host`` header, without its port (``[::1]:8001`` is ``::1``)."""
    if header.startswith("["):
        return header[1:].partition("]")[0].lower()
    return header.rpartition(":")[0].lower() if ":" in header else header.lower()


@hookimpl
def asgi_wrapper(datasette: Any) -> Callable:
    """Refuse a request whose ``Host`` the server does not answer to (HTTP 421)."""

    def wrap(app: Callable) -> Callable:
        async def checked(scope: dict, receive: Callable, send: Callable) -> None:
            allowed = HOSTS.get(datasette)
            if allowed is not None and scope.get("type") == "http":
                header = dict(scope.get("headers") or []).get(b"host", b"")
                name = host_name(header.decode("latin-1"))
                if name not in allowed:
                    body = (
                        f"This server answers only to {', '.join(sorted(allowed))}, not "
                        f"to {name or 'a request without a Host'} (it is bound to the "
                        "loopback: a page of another site cannot read it).\n"
                    ).encode()
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 421,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
            await app(scope, receive, send)

        return checked

    return wrap


@hookimpl
def prepare_connection(conn: sqlite3.Connection, database: str, datasette: Any) -> None:
    """With --allow-sql a visitor's SQL runs on these connections: the functions that
    reach outside the database or into SQLite's internals (``fts3_tokenizer`` hands
    out code pointers) are refused, as ``arms-ledger query`` refuses them."""
    if _ours(datasette):
        conn.set_authorizer(userquery.no_outside_functions)


async def databases(datasette: Any, request: Any) -> Response:
    """``/-/databases``: Datasette's answer without each file's path on this machine."""
    found = [
        {
            "name": db.name,
            "route": db.route,
            "size": db.size,
            "is_mutable": db.is_mutable,
            "is_memory": db.is_memory,
            "hash": db.hash,
        }
        for db in datasette.databases.values()
        if db.name != "_internal"
    ]
    return Response.json(found)


@hookimpl
def register_routes(datasette: Any) -> list[tuple[str, Callable]]:
    if not _ours(datasette):
        return []
    names = "|".join(c.name for c in charts.CHARTS)
    return [
        (r"^/-/charts$", pages.charts_index),
        (rf"^/-/charts/(?P<chart>{names})(?P<svg>\.svg)?$", pages.chart_page),
        (r"^/-/whatif(?P<json>\.json)?$", whatif.whatif_page),
        (r"^/-/monitors$", monitors.index),
        (
            rf"^/-/monitors/(?P<monitor>{'|'.join(monitors.BY_NAME)})$",
            monitors.monitor_page,
        ),
        (r"^/-/databases(\.json)?$", databases),
    ]


@hookimpl
def menu_links(datasette: Any, actor: Any, request: Any) -> list[dict[str, str]]:
    if not _ours(datasette):
        return []
    links = [
        {"href": datasette.urls.path("/-/charts"), "label": "Charts"},
        {"href": datasette.urls.path("/-/monitors"), "label": "Monitors"},
        {"href": datasette.urls.database(DATABASE) + "#queries", "label": "Canned queries"},
    ]
    if datasette in whatif.SOURCES:
        links.insert(1, {"href": datasette.urls.path("/-/whatif"), "label": "What if"})
    return links


@hookimpl
def render_cell(value: Any, column: str, table: str | None, database: str, datasette: Any):
    """A table's money and booleans as words ($12.0 B, yes); a canned query's cells are
    formatted by its template (Datasette does not tell this hook the query)."""
    if table is None or database != DATABASE or not _ours(datasette):
        return None
    return formats.cell(formats.TABLES.get(table, {}).get(column), value, column)


def _query_cell(query: str | None, column: str, value: Any, shown: Any) -> Any:
    """A canned query's cell: formatted, else as Datasette shows it."""
    found = formats.cell(formats.query_format(query, column), value, column)
    return shown if found is None else found


def _facet_label(table: str | None, column: str, label: Any) -> Any:
    """A facet's value as the table's cells show it (yes, no)."""
    fmt = formats.TABLES.get(table or "", {}).get(column)
    value = int(label) if isinstance(label, str) and label in ("0", "1") else label
    shown = formats.text(fmt, value)
    return label if shown is None else shown


@hookimpl
def extra_template_vars(
    template: str, database: str | None, table: str | None, datasette: Any
) -> Any:
    if not _ours(datasette):
        return {}

    async def inner() -> dict[str, Any]:
        db = datasette.get_database(DATABASE)
        kind, text = await db.execute_fn(_state)
        found: dict[str, Any] = {
            "arms_ledger_state": text,
            "arms_ledger_replay": kind == "replay",
            "arms_ledger_facet_label": lambda column, label: _facet_label(
                table, column, label
            ),
            "arms_ledger_cell": _query_cell,
        }
        if template.startswith("query") and database == DATABASE:
            found["arms_ledger_choices"] = await db.execute_fn(_choices)
            found["arms_ledger_enums"] = ENUMS
        return found

    return inner


@hookimpl
def forbidden(datasette: Any, request: Any, message: str) -> Any:
    if not _ours(datasette) or message != "execute-sql":
        return None

    async def inner() -> Response:
        return Response.html(
            await datasette.render_template(
                "error.html",
                {
                    "title": "Arbitrary SQL is off",
                    "error": "This web view runs only its canned queries: use one of "
                    "them, or the tables' filters. To allow arbitrary read-only SQL, "
                    "start it with `arms-ledger serve --allow-sql`.",
                    "status": 403,
                },
                request=request,
            ),
            status=403,
        )

    return inner


def _state(conn: sqlite3.Connection) -> tuple[str, str]:
    """What the banner says: which state of the log the read models show (live, replay
    or empty), and in words."""
    row = queries.one(
        conn,
        "SELECT p.position, p.as_of, p.known_at, p.at_position, a.recorded_at "
        "FROM projection p LEFT JOIN audit_log a ON a.position = p.position",
    )
    if row is None:
        return "empty", "Empty read models: the ledger holds no events."
    cut = [
        text.format(row[key])
        for key, text in (
            ("as_of", "as of {} (events effective at or before then)"),
            ("known_at", "as known at {} (events recorded at or before then)"),
            ("at_position", "at log position {}"),
        )
        if row[key] is not None
    ]
    last = (
        f"up to log position {row['position']:,}, recorded {row['recorded_at'][:10]}"
        if row["recorded_at"]
        else "no events"
    )
    if cut:
        return "replay", f"A replay {', '.join(cut)}: {last}. Not the live state."
    return (
        "live",
        f"Live read models, {last}; every appending command updates them (reload to see).",
    )


# The canned queries' parameters that take one of a few values: a choice (a select box,
# blank for all), the values from the one module that defines them.
ENUMS: dict[str, tuple[str, ...]] = {
    "kind": oversight.FLAG_KINDS,
    "office": typing.get_args(ev.Office),
}


def _choices(conn: sqlite3.Connection) -> dict[str, list[dict[str, str]]]:
    """Suggested values for the canned queries' parameters that take many (typed, with
    suggestions as you type)."""

    def pairs(sql: str) -> list[dict[str, str]]:
        return [
            {"value": str(v), "label": str(label or "")} for v, label in conn.execute(sql)
        ]

    return {
        "platform": pairs("SELECT platform, name FROM platforms ORDER BY platform"),
        "partner": pairs("SELECT partner, name FROM partners ORDER BY partner"),
        "case": pairs(
            'SELECT "case", partner || \' \' || platform FROM cases ORDER BY "case"'
        ),
    }
