"""The web view's chart pages (``/-/charts`` and ``/-/charts/<name>[.svg]``): for each
chart, its data from ``chartdata``, its form, its links to the canned queries and its
table, drawn by ``charts``. The routes are registered by ``plugin``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlencode

from arms_ledger.projections import queries
from arms_ledger.projections.web import canned, chartdata, charts
from arms_ledger.projections.web.metadata import DATABASE
from datasette.utils.asgi import NotFound, Response
from markupsafe import Markup


class Page(NamedTuple):
    chart: Any  # an Altair chart, or None when there is nothing to draw
    message: str | None  # why there is no chart
    intro: str
    form: list[dict[str, Any]]  # select boxes: name, label, options (value, label, ...)
    links: list[tuple[str, str]]  # (text, href)
    columns: list[str]
    rows: list[dict[str, Any]]
    table_open: bool = False


async def charts_index(datasette: Any, request: Any) -> Response:
    return Response.html(
        await datasette.render_template(
            "arms_ledger_charts.html", {"charts": charts.CHARTS}, request=request
        )
    )


async def chart_page(datasette: Any, request: Any) -> Response:
    name = request.url_vars["chart"]
    chart = next(c for c in charts.CHARTS if c.name == name)
    build = BUILDERS[name]
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


def _nothing(
    message: str,
    intro: str,
    form: list[dict[str, Any]] | None = None,
    links: list[tuple[str, str]] | None = None,
) -> Page:
    """A page without a chart, saying why."""
    return Page(None, message, intro, form or [], links or [], [], [])


# --- backlog over time --------------------------------------------------------------------


def _backlog(conn: sqlite3.Connection, args: dict[str, str]) -> Page:
    series = chartdata.backlog_series(conn)
    policies = chartdata.policy_adoptions(conn)
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
        return _nothing(
            "No case has been filed (at this time): nothing to draw.", intro, links=links
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


# --- a queue before and after a policy ----------------------------------------------------

_QUEUE_INTRO = (
    "Each case's place in the platform's queue as the ledger stood just before and "
    "just after the policy's adoption was recorded: what that one event changed. "
    "Rebuilt from queue_changes."
)


def _queue(conn: sqlite3.Connection, args: dict[str, str]) -> Page:
    policies = chartdata.policy_adoptions(conn)
    if not policies:
        return _nothing(
            "No priority policy has been adopted (at this time): nothing to compare.",
            _QUEUE_INTRO,
        )
    latest = {p["policy"]: p for p in policies}  # a policy adopted again: its latest
    policy = _chosen_policy(policies, latest, args["policy"])
    wanted, position = policy["policy"], policy["position"]
    choices = chartdata.queue_choices(conn, position)
    platform = args["platform"] or (choices[0]["platform"] if choices else "")
    form = [_policy_field(latest, wanted), _platform_field(choices, platform)]
    if not choices:
        return _nothing(
            f"No queue had a case when {wanted} was adopted: nothing to compare.",
            _QUEUE_INTRO,
            form,
        )
    name = queries.one(conn, "SELECT name FROM platforms WHERE platform = ?", (platform,))
    if name is None or platform not in {c["platform"] for c in choices}:
        raise NotFound(
            f"No platform {platform!r} with a queue when {wanted} was adopted; choose one "
            f"of: {', '.join(c['platform'] for c in choices)}"
        )
    rows = chartdata.queue_comparison(conn, platform, position)
    if not rows:
        return _nothing(
            f"The {platform} queue was empty just before and just after "
            f"{wanted} was adopted: nothing to compare.",
            _QUEUE_INTRO,
            form,
        )
    return Page(
        charts.queue_chart(rows, platform, name["name"], policy),
        None,
        _QUEUE_INTRO,
        form,
        _queue_links(policy["effective_at"][:10], platform),
        ["case", "partner", "before", "after", "move"],
        rows,
        table_open=True,
    )


def _chosen_policy(
    policies: list[dict[str, Any]], latest: dict[str, dict[str, Any]], asked: str
) -> dict[str, Any]:
    """The policy asked for, else the one in force, else the last adopted."""
    wanted = asked or next(
        (p["policy"] for p in policies if p["in_force"]), policies[-1]["policy"]
    )
    if wanted not in latest:
        raise NotFound(
            f"No priority policy {wanted!r} was adopted in this ledger (at this time); "
            f"choose one of: {', '.join(latest)}"
        )
    return latest[wanted]


def _policy_field(latest: dict[str, dict[str, Any]], wanted: str) -> dict[str, Any]:
    return {
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
    }


def _platform_field(choices: list[dict[str, Any]], platform: str) -> dict[str, Any]:
    return {
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
    }


def _queue_links(day: str, platform: str) -> list[tuple[str, str]]:
    return [
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


# --- partners' score components -----------------------------------------------------------


def _scores(conn: sqlite3.Connection, args: dict[str, str]) -> Page:
    rows = chartdata.score_rows(conn)
    tier1, tier2, policy = chartdata.tiers(conn)
    intro = (
        "Each partner's score is the sum of three weighted points: investment I = "
        "min(defense spending % of GDP / target, 1), strategic value S (the latest "
        "assessment) and economic contribution E = min(contributions / target, 1). The "
        "dashed lines are the tier thresholds of the policy in force."
    )
    links = [("The breakdown as a table", _query_link(canned.PARTNER_SCORES.name))]
    if not rows:
        return _nothing(
            "No partner is registered (at this time): nothing to draw.", intro, links=links
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


BUILDERS: dict[str, Callable[[sqlite3.Connection, dict[str, str]], Page]] = {
    "backlog": _backlog,
    "queue": _queue,
    "scores": _scores,
}
