"""The web view's charts: the data from the read models, Vega-Lite specs made with
Altair, rendered to SVG on the server by vl-convert (no JavaScript, nothing fetched).

- backlog: open cases and their value at the end of each month, from the audit log
  (a case is open from its filing to its closing, cancellation or expiry; its value is
  the latest known: offer, else notified, else estimate, as in ``cases.value_usd``),
  with the priority policies adopted marked.
- queue: a platform's queue just before and just after a priority policy was adopted,
  rebuilt from ``queue_changes`` (the queue after log position P is each case's last
  change at or before P): exactly what that one event changed.
- scores: each partner's score as the points of its three weighted components.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from typing import Any, NamedTuple

import altair as alt
import msgspec
import vl_convert
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.cases import (
    CLOSING_TYPES,
    TERMINAL_STAGES,
    CaseState,
    evolve_case,
    open_case,
)
from arms_ledger.ledger.domain.clock import instant
from arms_ledger.projections import audit_queries, queries
from arms_ledger.projections.web import canned


class Chart(NamedTuple):
    name: str
    title: str
    description: str


BACKLOG = Chart(
    "backlog",
    "Backlog over time",
    "open cases and their value at the end of each month, with the priority policies "
    "adopted",
)
QUEUE = Chart(
    "queue",
    "A queue before and after a policy",
    "each case's place in a platform's queue just before and just after a priority "
    "policy was adopted",
)
SCORES = Chart(
    "scores",
    "Partners' score components",
    "each partner's score as the weighted points of defense investment, strategic value "
    "and economic contribution, against the tier thresholds",
)
CHARTS = (BACKLOG, QUEUE, SCORES)

WIDTH = 760
POLICY_COLOR = "#b03a2e"
MOVE_COLORS = {
    "up": "#1b7837",
    "down": "#b2182b",
    "same": "#777777",
    "entered": "#2166ac",
    "left": "#e08214",
}
# Vega-Lite as Altair writes it: its schema's major.minor, which vl-convert must know.
VL_VERSION = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])


def svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an SVG document (text escaped by Vega), in the page's font sizes."""
    styled = (
        chart.configure_axis(labelFontSize=12, titleFontSize=13)
        .configure_legend(labelFontSize=12, titleFontSize=13)
        .configure_title(fontSize=16, subtitleFontSize=13, anchor="start")
    )
    return vl_convert.vegalite_to_svg(styled.to_dict(), vl_version=VL_VERSION)


def _values(rows: list[dict[str, Any]]) -> alt.Data:
    return alt.Data(values=rows)


# --- backlog over time --------------------------------------------------------------------

# The events that set a case's value or end it: the chart folds them with the domain's
# case fold, so a case's value is the one ``CaseState.value_usd`` gives.
_VALUE_TYPES = ("CaseFiled", "CongressionalNotified", "OfferIssued", *CLOSING_TYPES)


def _month(day: date) -> tuple[int, int]:
    return (day.year, day.month)


def _next(month: tuple[int, int]) -> tuple[int, int]:
    return (month[0] + month[1] // 12, month[1] % 12 + 1)


def backlog_series(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Open cases and their value at the end of each month, first filing to last event."""
    events = _case_value_events(conn)
    if not events:
        return []
    last = conn.execute(
        "SELECT date(max(julianday(effective_at))) FROM audit_log"
    ).fetchone()[0]
    open_cases: dict[str, CaseState] = {}
    value = 0
    out: list[dict[str, Any]] = []
    month = _month(events[0][0].date())
    for at, e in events:
        while month < _month(at.date()):
            out.append(_point(month, len(open_cases), value))
            month = _next(month)
        before = open_cases.pop(e.case, None)
        if isinstance(e, ev.CaseFiled):
            after: CaseState | None = open_case(e)
        else:
            after = None if before is None else evolve_case(before, e)
        value -= 0 if before is None else before.value_usd
        if after is not None and after.stage not in TERMINAL_STAGES:
            open_cases[e.case] = after
            value += after.value_usd
    while month < _next(_month(date.fromisoformat(last))):
        out.append(_point(month, len(open_cases), value))
        month = _next(month)
    return out


def _case_value_events(conn: sqlite3.Connection) -> list[tuple[Any, ev.CaseEvent]]:
    """The events of ``_VALUE_TYPES``, decoded, in (effective, position) order."""
    found = conn.execute(
        "SELECT position, type, actor, effective_at, payload FROM audit_log "
        f"WHERE type IN ({', '.join('?' for _ in _VALUE_TYPES)})",
        _VALUE_TYPES,
    ).fetchall()
    decoded = []
    for position, kind, actor, effective_at, payload in found:
        fields = msgspec.json.decode(payload)
        fields |= {"type": kind, "actor": actor, "effective_at": effective_at}
        decoded.append(
            (instant(effective_at), position, msgspec.convert(fields, ev.LedgerEvent))
        )
    decoded.sort(key=lambda item: item[:2])
    return [(at, e) for at, _, e in decoded]


def _point(month: tuple[int, int], cases: int, value: int) -> dict[str, Any]:
    return {
        "month": f"{month[0]:04d}-{month[1]:02d}",
        "open_cases": cases,
        "value_usd": value,
        "value_billion_usd": round(value / 1e9, 2),
    }


def policy_adoptions(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The priority policies adopted, in log order."""
    return queries.rows(
        conn,
        "SELECT position, policy, name, legal_basis, mode, effective_at, in_force "
        "FROM policies WHERE type = 'PriorityPolicyAdopted' ORDER BY position",
    )


def _policy_label(policy: dict[str, Any]) -> str:
    basis = policy["legal_basis"]
    return policy["policy"] + (f", {basis}" if basis and len(basis) <= 24 else "")


def backlog_chart(
    series: list[dict[str, Any]], policies: list[dict[str, Any]]
) -> alt.VConcatChart:
    data = [p | {"month": p["month"] + "-01"} for p in series]
    first, last = data[0]["month"], data[-1]["month"]
    middle = instant(first) + (instant(last) - instant(first)) / 2
    marks = [
        {
            "date": p["effective_at"][:10],
            "label": _policy_label(p),
            "side": "right" if instant(p["effective_at"]) > middle else "left",
        }
        for p in policies
    ]
    x = alt.X("month:T", title=None, axis=alt.Axis(format="%Y", tickCount="year"))

    def panel(field: str, title: str) -> alt.LayerChart | alt.FacetChart:
        area = (
            alt.Chart(_values(data))
            .mark_area(line=True, opacity=0.35, interpolate="step-after")
            .encode(x=x, y=alt.Y(f"{field}:Q", title=title))
        )
        rules = alt.Chart(_values(marks)).mark_rule(color=POLICY_COLOR, strokeDash=[4, 3])
        layers = [area, rules.encode(x="date:T")]
        for side, dx in (("left", 4), ("right", -4)):
            layers.append(
                alt.Chart(_values(marks))
                .transform_filter(f"datum.side == '{side}'")
                .mark_text(
                    align="left" if side == "left" else "right",
                    dx=dx,
                    dy=-3,
                    baseline="bottom",
                    color=POLICY_COLOR,
                    fontSize=12,
                )
                .encode(x="date:T", y=alt.value(0), text="label:N")
            )
        return alt.layer(*layers).properties(width=WIDTH, height=190)

    return alt.vconcat(
        panel("open_cases", "Open cases"),
        panel("value_billion_usd", "Value of open cases, $ billion"),
        spacing=28,
    ).properties(
        title=alt.Title(
            "Backlog over time: open cases and their value, month by month",
            subtitle="Dashed: a priority policy took effect.",
        )
    )


# --- a queue before and after a policy ----------------------------------------------------


def queue_at(conn: sqlite3.Connection, platform: str, position: int) -> dict[str, int]:
    """A platform's queue (case: place) after log position ``position``."""
    found = conn.execute(
        """SELECT "case", new_position FROM queue_changes q
           WHERE platform = :platform AND event_position <= :position
             AND id = (SELECT id FROM queue_changes r
                       WHERE r.platform = q.platform AND r."case" = q."case"
                         AND r.event_position <= :position
                       ORDER BY r.event_position DESC, r.id DESC LIMIT 1)""",
        {"platform": platform, "position": position},
    ).fetchall()
    return {case: place for case, place in found if place is not None}


def queue_comparison(
    conn: sqlite3.Connection, platform: str, position: int
) -> list[dict[str, Any]]:
    """Each case of the queue just before and just after the event at ``position``."""
    before = queue_at(conn, platform, position - 1)
    after = queue_at(conn, platform, position)
    partners = dict(
        conn.execute(
            'SELECT "case", partner FROM cases WHERE platform = ?', (platform,)
        ).fetchall()
    )
    out = []
    for case in sorted(
        before.keys() | after.keys(),
        key=lambda c: (after.get(c, len(after) + before.get(c, 0)), c),
    ):
        was, now = before.get(case), after.get(case)
        out.append(
            {
                "case": case,
                "partner": partners.get(case),
                "before": was,
                "after": now,
                "move": audit_queries.move(was, now),
            }
        )
    return out


def queue_choices(conn: sqlite3.Connection, position: int) -> list[dict[str, Any]]:
    """The platforms with a queue at that time, the most reordered by the event first."""
    return queries.rows(
        conn,
        """SELECT p.platform, p.name,
                  coalesce(sum(abs(q.new_position - q.old_position)), 0) AS places_moved,
                  count(q.id) AS cases_changed
           FROM platforms p LEFT JOIN queue_changes q
             ON q.platform = p.platform AND q.event_position = :position
           WHERE EXISTS (SELECT 1 FROM queue_changes r WHERE r.platform = p.platform
                         AND r.event_position <= :position)
           GROUP BY p.platform
           ORDER BY places_moved DESC, cases_changed DESC, p.platform""",
        {"position": position},
    )


def queue_chart(
    rows: list[dict[str, Any]], platform: str, name: str, policy: dict[str, Any]
) -> alt.LayerChart | alt.FacetChart:
    points = [
        {
            "case": r["case"],
            "label": f"{r['case']} ({r['partner']})",
            "direction": _direction(r["move"]),
            "move": r["move"],
            "x": x,
            "place": r[key],
        }
        for r in rows
        for x, key in ((0, "before"), (1, "after"))
        if r[key] is not None
    ]
    longest = max((p["place"] for p in points), default=1)
    present = [d for d in MOVE_COLORS if any(p["direction"] == d for p in points)]
    base = alt.Chart(_values(points)).encode(
        x=alt.X("x:Q", axis=None, scale=alt.Scale(domain=[-0.8, 1.8])),
        y=alt.Y(
            "place:Q",
            title="Place in the queue",
            scale=alt.Scale(reverse=True, domain=[0.5, longest + 0.5], nice=False),
            axis=alt.Axis(grid=False, values=list(range(1, longest + 1)), format="d"),
        ),
        color=alt.Color(
            "direction:N",
            title="Move",
            scale=alt.Scale(domain=present, range=[MOVE_COLORS[d] for d in present]),
        ),
    )
    lines = base.mark_line(strokeWidth=2).encode(detail="case:N")
    dots = base.mark_circle(size=70, opacity=1)
    left = (
        base.transform_filter("datum.x == 0")
        .mark_text(align="right", dx=-10, fontSize=13)
        .encode(text="label:N")
    )
    right = (
        base.transform_filter("datum.x == 1")
        .mark_text(align="left", dx=10, fontSize=13)
        .encode(text="label:N")
    )
    heads = alt.Chart(_values([{"x": 0, "t": "just before"}, {"x": 1, "t": "just after"}]))
    heads = heads.mark_text(
        fontSize=13, fontWeight="bold", baseline="bottom", dy=-6
    ).encode(x="x:Q", y=alt.value(0), text="t:N")
    title = alt.Title(
        f"{name} ({platform}): the queue just before and just after {policy['policy']}",
        subtitle=f"#{policy['position']} PriorityPolicyAdopted, effective "
        f"{policy['effective_at'][:10]}"
        + (f", {policy['legal_basis']}" if policy["legal_basis"] else "")
        + f"; {policy['mode']} mode after",
        offset=24,
    )
    return alt.layer(lines, dots, left, right, heads).properties(
        width=620, height=max(120, 32 * longest), title=title, view={"stroke": None}
    )


def _direction(move: str) -> str:
    return move.split()[0]


# --- partners' score components -----------------------------------------------------------


def score_rows(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The partner_scores canned query over every partner."""
    return queries.rows(conn, canned.PARTNER_SCORES.sql, {"partner": ""})


def tiers(conn: sqlite3.Connection) -> tuple[float, float, str | None]:
    """The tier thresholds in force (tier1, tier2) and the policy that set them."""
    policy = queries.policy_in_force(conn)
    if policy is None:
        default = ev.Tiers()
        return default.tier1, default.tier2, None
    found = msgspec.json.decode(policy["parameters"])["tiers"]
    return found["tier1"], found["tier2"], policy["policy"]


COMPONENTS = (
    ("investment_points", "investment (I)"),
    ("strategic_points", "strategic value (S)"),
    ("economic_points", "economic contribution (E)"),
)


def scores_chart(
    rows: list[dict[str, Any]], tier1: float, tier2: float, policy: str | None
) -> alt.LayerChart | alt.FacetChart:
    labels = [f"{r['name'] or r['partner']} ({r['partner']})" for r in rows]
    bars = [
        {
            "partner": label,
            "component": title,
            "points": r[field] or 0.0,
            "score": r["score"],
            "tier": r["tier"],
        }
        for r, label in zip(rows, labels, strict=True)
        for field, title in COMPONENTS
    ]
    order = {title: i for i, (_, title) in enumerate(COMPONENTS)}
    for b in bars:
        b["order"] = order[b["component"]]
    stack = (
        alt.Chart(_values(bars))
        .mark_bar()
        .encode(
            y=alt.Y("partner:N", sort=labels, title=None, axis=alt.Axis(labelLimit=220)),
            x=alt.X(
                "sum(points):Q",
                title="Score: the sum of the weighted points",
                scale=alt.Scale(domain=[0, 1]),
            ),
            color=alt.Color(
                "component:N",
                title="Component",
                sort=[t for _, t in COMPONENTS],
                legend=alt.Legend(orient="top", offset=24),
            ),
            order=alt.Order("order:Q"),
        )
    )
    scores = [
        {"partner": label, "score": r["score"]}
        for r, label in zip(rows, labels, strict=True)
    ]
    totals = (
        alt.Chart(_values(scores))
        .mark_text(align="left", dx=3, fontSize=11, color="#333")
        .encode(
            y=alt.Y("partner:N", sort=labels),
            x="score:Q",
            text=alt.Text("score:Q", format=".3f"),
        )
    )
    thresholds = [
        {"x": tier1, "label": f"tier 1 from {tier1}"},
        {"x": tier2, "label": f"tier 2 from {tier2}"},
    ]
    rules = (
        alt.Chart(_values(thresholds))
        .mark_rule(color="#444", strokeDash=[4, 3])
        .encode(x="x:Q")
    )
    notes = (
        alt.Chart(_values(thresholds))
        .mark_text(align="left", dx=4, dy=-3, baseline="bottom", color="#444", fontSize=12)
        .encode(x="x:Q", y=alt.value(0), text="label:N")
    )
    return alt.layer(stack, totals, rules, notes).properties(
        width=560,
        height=18 * max(len(rows), 1),
        title=alt.Title(
            "Partners' scores, component by component",
            subtitle=f"under {policy}" if policy else "no policy adopted: the defaults",
        ),
    )
