"""The web view's monitor pages (``/-/monitors`` and ``/-/monitors/<name>``): each
monitor of ``projections.monitors`` run on the served read models (the live state or a
replay, as the banner says), its rows in a table with the events behind each and the
checkpoint they were judged at. The routes are registered by ``plugin``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple

from arms_ledger.ledger.errors import LedgerError
from arms_ledger.projections import monitors
from arms_ledger.projections.web.metadata import DATABASE
from datasette.utils.asgi import Response

QUARTER = timedelta(days=91)


class Monitor(NamedTuple):
    name: str
    title: str
    description: str
    run: Callable[[sqlite3.Connection, dict[str, str]], tuple[str, list[dict[str, Any]]]]
    columns: tuple[str, ...]
    form: tuple[str, ...] = ()  # the query parameters it takes


def _judged(fields: dict[str, Any]) -> str:
    return f"judged at {fields['judged_at']}, log position {fields['checkpoint']}"


def _deadlines(conn: sqlite3.Connection, args: dict[str, str]) -> tuple[str, list[dict]]:
    within = args.get("within") or ""
    cp, rows = monitors.deadlines(conn, int(within) if within.isdigit() else None)
    return _judged(cp.fields), [r | {"due": r["due"][:10]} for r in rows]


def _retro(conn: sqlite3.Connection, args: dict[str, str]) -> tuple[str, list[dict]]:
    """Between log position ``from`` (default: the last event recorded a quarter
    before the newest) and ``to`` (default: the newest)."""
    head = monitors.checkpoint(conn).position
    given = args.get("from") or ""
    if given.isdigit():
        earlier = int(given)
    else:
        last = monitors.recorded_time(conn, head)
        earlier = monitors.position_at(conn, last - QUARTER) if last else 0
    to = args.get("to") or ""
    later = int(to) if to.isdigit() else head
    rows = monitors.retro(conn, earlier, later)
    shown = [
        r
        | {
            "event": f"#{r['position']} {r['type']}",
            "queue_changes": monitors.changes_text(r) or "none",
        }
        for r in rows
    ]
    return f"between log positions {earlier} and {later}", shown


def _bypasses(conn: sqlite3.Connection, args: dict[str, str]) -> tuple[str, list[dict]]:
    cp, rows = monitors.bypasses(conn)
    return f"{monitors.bypass_summary(rows)}; {_judged(cp.fields)}", rows


def _reconcile(conn: sqlite3.Connection, args: dict[str, str]) -> tuple[str, list[dict]]:
    """Against the public notifications shipped with the demo (research.md 5.3)."""
    from arms_ledger import fixtures

    text = fixtures.NOTIFICATIONS.read_text(encoding="utf-8")
    cp, matched, rows = monitors.reconcile(conn, text, "dsca_notifications.csv")
    shown = [r | {"cases": " ".join(r["cases"])} for r in rows]
    return (
        f"{matched} published notification(s) of dsca_notifications.csv match; "
        f"{_judged(cp.fields)}",
        shown,
    )


def _register(fmt: str) -> Callable:
    def run(conn: sqlite3.Connection, args: dict[str, str]) -> tuple[str, list[dict]]:
        cp, rows = monitors.register(conn, fmt)
        return _judged(cp.fields), rows

    return run


MONITORS = (
    Monitor(
        "deadlines",
        "Statutory clocks",
        "Formal review periods ending, informal reviews and holds open too long, offers "
        "expiring, EEUM inventories and QME certifications due or overdue "
        "(`arms-ledger audit deadlines`).",
        _deadlines,
        ("status", "due", "kind", "case", "partner", "detail", "events"),
        ("within",),
    ),
    Monitor(
        "retro",
        "Retroactive changes",
        "Events recorded after an earlier checkpoint that took effect before it, with the "
        "queue positions they changed in that past (`arms-ledger audit retro`). "
        "Parameters: from, to (log positions); by default the last quarter.",
        _retro,
        ("event", "stream", "effective_at", "recorded_at", "actor", "queue_changes"),
        ("from", "to"),
    ),
    Monitor(
        "bypasses",
        "Out-of-sequence deliveries and offers",
        "Deliveries and offers to a case while cases ahead of it in its platform's queue "
        "still waited, by bypass code, actor and office; the uncoded ones are oversight "
        "flags (`arms-ledger audit bypasses`).",
        _bypasses,
        ("code", "actor", "office", "skips", "events"),
    ),
    Monitor(
        "reconcile",
        "Reconciliation with the public record",
        "The ledger's notifications against the public DSCA notifications shipped in "
        "fixtures/dsca_notifications.csv, and threshold splitting "
        "(`arms-ledger audit reconcile FILE` takes any such file).",
        _reconcile,
        ("kind", "partner", "cases", "line", "detail", "events"),
    ),
    Monitor(
        "register-sipri",
        "The SIPRI trade register",
        "Orders (accepted offers) in the shape of the SIPRI trade register "
        "(`arms-ledger audit export-register --format sipri`).",
        _register("sipri"),
        (
            "recipient",
            "designation",
            "number_ordered",
            "year_of_order",
            "number_delivered",
            "years_of_delivery",
            "status",
            "case",
            "events",
        ),
    ),
    Monitor(
        "register-unroca",
        "The UN Register of Conventional Arms",
        "Deliveries by year in the UN Register's seven categories "
        "(`arms-ledger audit export-register --format unroca`).",
        _register("unroca"),
        ("year", "category", "final_importer", "number_of_items", "description", "events"),
    ),
)
BY_NAME = {m.name: m for m in MONITORS}


async def index(datasette: Any, request: Any) -> Response:
    return Response.html(
        await datasette.render_template(
            "arms_ledger_monitors.html", {"monitors": MONITORS}, request=request
        )
    )


async def monitor_page(datasette: Any, request: Any) -> Response:
    monitor = BY_NAME[request.url_vars["monitor"]]
    db = datasette.get_database(DATABASE)
    args = {k: request.args.get(k) or "" for k in monitor.form}
    message: str | None = None
    try:
        judged, rows = await db.execute_fn(lambda conn: monitor.run(conn, args))
    except LedgerError as error:
        judged, rows, message = "", [], str(error)
    shown = [r | {"events": monitors.events_text(r)} for r in rows]
    return Response.html(
        await datasette.render_template(
            "arms_ledger_monitor.html",
            {"monitor": monitor, "judged": judged, "rows": shown, "message": message},
            request=request,
        )
    )
