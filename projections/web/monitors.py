"""The web view's monitor pages (``/-/monitors`` and ``/-/monitors/<name>``): each
monitor of ``projections.monitors`` run on the served read models (the live state or a
replay, as the banner says), its rows in a table with the events behind each and the
checkpoint they were judged at. The routes are registered by ``plugin``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, NamedTuple

from arms_ledger.projections import monitors
from arms_ledger.projections.web.metadata import DATABASE
from datasette.utils.asgi import Response


class Monitor(NamedTuple):
    name: str
    title: str
    description: str
    run: Callable[[sqlite3.Connection], tuple[monitors.Checkpoint, list[dict[str, Any]]]]
    columns: tuple[str, ...]


MONITORS = (
    Monitor(
        "deadlines",
        "Statutory clocks",
        "Formal review periods ending, informal reviews and holds open too long, offers "
        "expiring, EEUM inventories and QME certifications due or overdue "
        "(`arms-ledger audit deadlines`).",
        monitors.deadlines,
        ("status", "due", "kind", "case", "partner", "detail", "events"),
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
    cp, rows = await db.execute_fn(monitor.run)
    shown = [
        r | {"events": monitors.events_text(r), "due": (r.get("due") or "")[:10]}
        for r in rows
    ]
    return Response.html(
        await datasette.render_template(
            "arms_ledger_monitor.html",
            {"monitor": monitor, "checkpoint": cp.fields, "rows": shown},
            request=request,
        )
    )
