"""The web view's Datasette plugin: the chart pages, the menu, the banner saying which
state is shown, and suggestions for the canned queries' parameters.

Registered once per process by ``projections.web.datasette``; every hook does nothing on
a Datasette without this project's metadata (``plugins: {arms-ledger: ...}``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import typing
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections import queries
from arms_ledger.projections.web import canned, charts
from arms_ledger.projections.web.metadata import DATABASE, PLUGIN
from datasette import hookimpl
from datasette.utils.asgi import NotFound, Response
from markupsafe import Markup


def _ours(datasette: Any) -> bool:
    return datasette.plugin_config(PLUGIN) is not None


@hookimpl
def register_routes(datasette: Any) -> list[tuple[str, Callable]]:
    if not _ours(datasette):
        return []
    names = "|".join(c.name for c in charts.CHARTS)
    return [
        (r"^/-/charts$", charts_index),
        (rf"^/-/charts/(?P<chart>{names})(?P<svg>\.svg)?$", chart_page),
    ]


@hookimpl
def menu_links(datasette: Any, actor: Any, request: Any) -> list[dict[str, str]]:
    if not _ours(datasette):
        return []
    return [
        {"href": datasette.urls.path("/-/charts"), "label": "Charts"},
        {"href": datasette.urls.database(DATABASE) + "#queries", "label": "Canned queries"},
    ]


@hookimpl
def extra_template_vars(template: str, database: str | None, datasette: Any) -> Any:
    if not _ours(datasette):
        return {}

    async def inner() -> dict[str, Any]:
        db = datasette.get_database(DATABASE)
        found = {"arms_ledger_state": await db.execute_fn(_state)}
        if template.startswith("query") and database == DATABASE:
            found["arms_ledger_choices"] = await db.execute_fn(_choices)
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


def _state(conn: sqlite3.Connection) -> str:
    """What the banner says: which state of the log the read models show."""
    row = queries.one(
        conn,
        "SELECT p.position, p.as_of, p.known_at, p.at_position, a.recorded_at "
        "FROM projection p LEFT JOIN audit_log a ON a.position = p.position",
    )
    if row is None:
        return "Empty read models: the ledger holds no events."
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
        return f"A replay {', '.join(cut)}: {last}. Not the live state."
    return (
        f"Live read models, {last}; every appending command updates them (reload to see)."
    )


def _choices(conn: sqlite3.Connection) -> dict[str, list[dict[str, str]]]:
    """Suggested values for the canned queries' parameters."""

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
        "office": [{"value": o, "label": ""} for o in typing.get_args(ev.Office)],
        "kind": pairs("SELECT DISTINCT kind, NULL FROM oversight_flags ORDER BY kind"),
    }


# --- the chart pages ----------------------------------------------------------------------


async def charts_index(datasette: Any, request: Any) -> Response:
    return Response.html(
        await datasette.render_template(
            "arms_ledger_charts.html", {"charts": charts.CHARTS}, request=request
        )
    )


class Page(typing.NamedTuple):
    chart: Any  # an Altair chart, or None when there is nothing to draw
    message: str | None  # why there is no chart
    intro: str
    form: list[dict[str, Any]]  # select boxes: name, label, options (value, label, ...)
    links: list[tuple[str, str]]  # (text, href)
    columns: list[str]
    rows: list[dict[str, Any]]
    table_open: bool = False


async def chart_page(datasette: Any, request: Any) -> Response:
    name = request.url_vars["chart"]
    chart = next(c for c in charts.CHARTS if c.name == name)
    build = {"backlog": _backlog, "queue": _queue, "scores": _scores}[name]
    args = {k: request.args.get(k) or "" for k in ("platform", "policy")}
    db = datasette.get_database(DATABASE)
    page: Page = await db.execute_fn(lambda conn: build(conn, args))
    svg = None if page.chart is None else await asyncio.to_thread(charts.svg, page.chart)
    if request.url_vars.get("svg"):
        if svg is None:
            raise NotFound(page.message)
        return Response(svg, content_type="image/svg+xml; charset=utf-8")
    query = urlencode({k: v for k, v in args.items() if v and name == "queue"})
    return Response.html(
        await datasette.render_template(
            "arms_ledger_chart.html",
            {
                "chart": chart,
                "page": page,
                "svg": Markup(svg) if svg else None,
                "svg_url": datasette.urls.path(f"/-/charts/{name}.svg")
                + (f"?{query}" if query else ""),
            },
            request=request,
        )
    )


def _query_link(name: str, **params: str) -> str:
    return f"/{DATABASE}/{name}" + (f"?{urlencode(params)}" if params else "")


def _backlog(conn: sqlite3.Connection, args: dict[str, str]) -> Page:
    series = charts.backlog_series(conn)
    policies = charts.policy_adoptions(conn)
    links = [
        ("Backlog by partner and platform now", _query_link(canned.BACKLOG.name)),
        ("Open cases", f"/{DATABASE}/cases?open=1"),
    ]
    intro = (
        "Open cases and the latest known value of each (offer, else notified, else "
        "estimate) at the end of every month, as the log says they took effect. A case "
        "is open from its filing until it is closed, cancelled or its offer expires."
    )
    if not series:
        return Page(
            None,
            "No case has been filed (at this time): nothing to draw.",
            intro,
            [],
            links,
            [],
            [],
        )
    return Page(
        charts.backlog_chart(series, policies),
        None,
        intro,
        [],
        links,
        ["month", "open_cases", "value_usd"],
        list(reversed(series)),
    )


def _queue(conn: sqlite3.Connection, args: dict[str, str]) -> Page:
    policies = charts.policy_adoptions(conn)
    intro = (
        "Each case's place in the platform's queue as the ledger stood just before and "
        "just after the policy's adoption was recorded: what that one event changed. "
        "Rebuilt from queue_changes."
    )
    if not policies:
        return Page(
            None,
            "No priority policy has been adopted (at this time): nothing to compare.",
            intro,
            [],
            [],
            [],
            [],
        )
    latest = {p["policy"]: p for p in policies}  # a policy adopted again: its latest
    wanted = args["policy"] or next(
        (p["policy"] for p in policies if p["in_force"]), policies[-1]["policy"]
    )
    if wanted not in latest:
        raise NotFound(
            f"No priority policy {wanted!r} was adopted in this ledger (at this time); "
            f"choose one of: {', '.join(latest)}"
        )
    policy = latest[wanted]
    position = policy["position"]
    choices = charts.queue_choices(conn, position)
    platform = args["platform"] or (choices[0]["platform"] if choices else "")
    form = [
        {
            "name": "policy",
            "label": "Policy",
            "options": [
                {
                    "value": p["policy"],
                    "selected": p["policy"] == wanted,
                    "label": f"{p['policy']} (#{p['position']}, {p['effective_at'][:10]}"
                    + (f", {p['legal_basis']}" if p["legal_basis"] else "")
                    + ")",
                }
                for p in latest.values()
            ],
        },
        {
            "name": "platform",
            "label": "Platform",
            "options": [
                {
                    "value": c["platform"],
                    "selected": c["platform"] == platform,
                    "label": f"{c['platform']}: {c['name']}"
                    + (f" ({c['cases_changed']} changed)" if c["cases_changed"] else ""),
                }
                for c in choices
            ],
        },
    ]
    if not choices:
        return Page(
            None,
            f"No queue had a case when {wanted} was adopted: nothing to compare.",
            intro,
            form,
            [],
            [],
            [],
        )
    name = queries.one(conn, "SELECT name FROM platforms WHERE platform = ?", (platform,))
    if name is None or platform not in {c["platform"] for c in choices}:
        raise NotFound(
            f"No platform {platform!r} with a queue when {wanted} was adopted; choose one "
            f"of: {', '.join(c['platform'] for c in choices)}"
        )
    rows = charts.queue_comparison(conn, platform, position)
    if not rows:
        return Page(
            None,
            f"The {platform} queue was empty just before and just after "
            f"{wanted} was adopted: nothing to compare.",
            intro,
            form,
            [],
            [],
            [],
        )
    day = policy["effective_at"][:10]
    links = [
        (
            f"Queue changes on {day}, and their causes",
            _query_link(
                canned.QUEUE_CHANGES.name, **{"from": day, "to": day, "platform": platform}
            ),
        ),
        (
            f"The {platform} queue now",
            _query_link(canned.PLATFORM_QUEUE.name, platform=platform),
        ),
    ]
    return Page(
        charts.queue_chart(rows, platform, name["name"], policy),
        None,
        intro,
        form,
        links,
        ["case", "partner", "before", "after", "move"],
        rows,
        table_open=True,
    )


def _scores(conn: sqlite3.Connection, args: dict[str, str]) -> Page:
    rows = charts.score_rows(conn)
    tier1, tier2, policy = charts.tiers(conn)
    intro = (
        "Each partner's score is the sum of three weighted points: investment I = "
        "min(defense spending % of GDP / target, 1), strategic value S (the latest "
        "assessment) and economic contribution E = min(contributions / target, 1). The "
        "dashed lines are the tier thresholds of the policy in force."
    )
    links = [("The breakdown as a table", _query_link(canned.PARTNER_SCORES.name))]
    if not rows:
        return Page(
            None,
            "No partner is registered (at this time): nothing to draw.",
            intro,
            [],
            links,
            [],
            [],
        )
    columns = [
        "partner",
        "name",
        "tier",
        "score",
        "investment_points",
        "strategic_points",
        "economic_points",
    ]
    return Page(
        charts.scores_chart(rows, tier1, tier2, policy),
        None,
        intro,
        [],
        links,
        columns,
        rows,
    )
