"""The web view's charts: the catalogue of chart pages, and Vega-Lite specs made with
Altair from the rows of ``chartdata``, rendered to SVG on the server by vl-convert (no
JavaScript, nothing fetched).

- backlog: open cases and their value month by month, with the priority policies
  adopted marked.
- queue: a platform's queue just before and just after a priority policy was adopted.
- scores: each partner's score as the points of its three weighted components, against
  the tier thresholds.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import altair as alt
import vl_convert
from arms_ledger.ledger.domain.clock import instant


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

# Every chart's colours are Okabe and Ito's palette, which readers with any common
# colour-vision deficiency tell apart ("Color Universal Design", 2008); a colour that
# is text is a darker shade of its hue, for contrast on white. Colour is never the only
# cue: a move is also a marker's shape and a word, a component has its label.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}
GREY = "#595959"  # text and rules that carry no category
# The charts are drawn this wide (pixels) and scaled to the width of the page.
WIDTH = 1080
POLICY_COLOR = "#A64A00"  # vermillion, darker: the policies' rules and their labels
MOVE_COLORS = {
    "up": OKABE_ITO["blue"],
    "down": OKABE_ITO["vermillion"],
    "same": GREY,
    "entered": OKABE_ITO["bluish green"],
    "left": OKABE_ITO["reddish purple"],
}
# ... and its marker and sign, so that no one needs the colour to see the direction.
MOVE_SHAPES = {
    "up": "triangle-up",
    "down": "triangle-down",
    "same": "circle",
    "entered": "square",
    "left": "cross",
}
MOVE_SIGNS = {
    "up": "\u25b2",
    "down": "\u25bc",
    "same": "=",
    "entered": "+",
    "left": "\u00d7",
}
COMPONENT_COLORS = (OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["bluish green"])
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


def _policy_label(policy: dict[str, Any]) -> str:
    basis = policy["legal_basis"]
    return policy["policy"] + (f", {basis}" if basis and len(basis) <= 24 else "")


LABEL_LINE = 15  # pixels between two policies' labels stacked above a panel


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
    # Each label of a side a line above the one before (a label runs away from the
    # middle: two on one side could meet, however far apart in time).
    rows = 0
    for side in ("left", "right"):
        on_side = [m for m in marks if m["side"] == side]
        for row, m in enumerate(on_side if side == "left" else reversed(on_side)):
            m["y"] = -LABEL_LINE * row
        rows = max(rows, len(on_side))
    x = alt.X("month:T", title=None, axis=alt.Axis(format="%Y", tickCount="year"))

    def panel(field: str, title: str) -> alt.LayerChart | alt.FacetChart:
        area = (
            alt.Chart(_values(data))
            .mark_area(
                line={"color": OKABE_ITO["blue"]},
                color=OKABE_ITO["blue"],
                opacity=0.35,
                interpolate="step-after",
            )
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
                .encode(x="date:T", y=alt.Y("y:Q", scale=None), text="label:N")
            )
        return alt.layer(*layers).properties(width=WIDTH - 80, height=200)

    return alt.vconcat(
        panel("open_cases", "Open cases"),
        panel("value_billion_usd", "Value of open cases, $ billion"),
        spacing=28 + LABEL_LINE * max(rows - 1, 0),
    ).properties(
        title=alt.Title(
            "Backlog over time: open cases and their value, month by month",
            subtitle="Dashed: a priority policy took effect.",
        )
    )


# --- a queue before and after a policy ----------------------------------------------------


def queue_chart(
    rows: list[dict[str, Any]], platform: str, name: str, policy: dict[str, Any]
) -> alt.LayerChart | alt.FacetChart:
    """The queue just before and just after a policy's adoption."""
    return slope_chart(
        rows, _queue_title(platform, name, policy), ("just before", "just after")
    )


def slope_chart(
    rows: list[dict[str, Any]], title: alt.Title, heads: tuple[str, str]
) -> alt.LayerChart | alt.FacetChart:
    """Each case's place in a queue before (left) and after (right), a line from one to
    the other coloured by its move; ``rows`` have case, partner, before, after and move
    (``audit_queries.move``), ``heads`` name the two columns."""
    points = _queue_points(rows)
    longest = max((p["place"] for p in points), default=1)
    present = [d for d in MOVE_COLORS if any(p["direction"] == d for p in points)]
    legend = alt.Legend(orient="top", direction="horizontal", symbolSize=120)
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
            legend=legend,
        ),
    )
    lines = base.mark_line(strokeWidth=2).encode(detail="case:N")
    dots = base.mark_point(size=110, filled=True, opacity=1).encode(
        shape=alt.Shape(
            "direction:N",
            title="Move",
            scale=alt.Scale(domain=present, range=[MOVE_SHAPES[d] for d in present]),
            legend=legend,
        )
    )
    left = (
        base.transform_filter("datum.x == 0")
        .mark_text(align="right", dx=-12, fontSize=13, color="#000")
        .encode(text="label:N", color=alt.value("#000"))
    )
    right = (
        base.transform_filter("datum.x == 1")
        .mark_text(align="left", dx=12, fontSize=13)
        .encode(text="after:N", color=alt.value("#000"))
    )
    top = alt.Chart(_values([{"x": 0, "t": heads[0]}, {"x": 1, "t": heads[1]}]))
    top = top.mark_text(fontSize=13, fontWeight="bold", baseline="bottom", dy=-6).encode(
        x="x:Q", y=alt.value(0), text="t:N"
    )
    return alt.layer(lines, dots, left, right, top).properties(
        width=WIDTH - 300,
        height=max(120, 32 * longest),
        title=title,
        view={"stroke": None},
    )


def _queue_points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each case's place just before (x 0) and just after (x 1), where it had one."""
    return [
        {
            "case": r["case"],
            "label": f"{r['case']} ({r['partner']})",
            # After: the move in words and a sign, as well as its colour and marker.
            "after": f"{r['case']} ({r['partner']}) "
            f"{MOVE_SIGNS[_direction(r['move'])]} {r['move']}",
            "direction": _direction(r["move"]),
            "move": r["move"],
            "x": x,
            "place": r[key],
        }
        for r in rows
        for x, key in ((0, "before"), (1, "after"))
        if r[key] is not None
    ]


def _queue_title(platform: str, name: str, policy: dict[str, Any]) -> alt.Title:
    return alt.Title(
        f"{name} ({platform}): the queue just before and just after {policy['policy']}",
        subtitle=f"#{policy['position']} PriorityPolicyAdopted, effective "
        f"{policy['effective_at'][:10]}"
        + (f", {policy['legal_basis']}" if policy["legal_basis"] else "")
        + f"; {policy['mode']} mode after",
        offset=24,
    )


def _direction(move: str) -> str:
    return move.split()[0]


# --- partners' score components -----------------------------------------------------------


COMPONENTS = (
    ("investment_points", "investment (I)"),
    ("strategic_points", "strategic value (S)"),
    ("economic_points", "economic contribution (E)"),
)


# The scores chart: the bars' width, and the column of scores written to their right
# (beyond 1, the greatest score: never across a bar, a tier line or its label).
SCORE_BARS = WIDTH - 380
SCORE_COLUMN = 1.1


def scores_chart(
    rows: list[dict[str, Any]], tier1: float, tier2: float, policy: str | None
) -> alt.LayerChart | alt.FacetChart:
    labels = [f"{r['name'] or r['partner']} ({r['partner']})" for r in rows]
    return alt.layer(
        _score_stack(rows, labels), _score_totals(rows, labels), *_tier_rules(tier1, tier2)
    ).properties(
        width=SCORE_BARS,
        height=20 * max(len(rows), 1),
        title=alt.Title(
            "Partners' scores, component by component",
            subtitle=(f"under {policy}" if policy else "no policy adopted: the defaults")
            + "; the score of each partner on the right",
            offset=10,
        ),
    )


def _score_stack(rows: list[dict[str, Any]], labels: list[str]) -> alt.Chart:
    """One stacked bar per partner: the points of each component."""
    order = {title: i for i, (_, title) in enumerate(COMPONENTS)}
    bars = [
        {
            "partner": label,
            "component": title,
            "points": r[field] or 0.0,
            "score": r["score"],
            "tier": r["tier"],
            "order": order[title],
        }
        for r, label in zip(rows, labels, strict=True)
        for field, title in COMPONENTS
    ]
    return (
        alt.Chart(_values(bars))
        .mark_bar()
        .encode(
            y=alt.Y("partner:N", sort=labels, title=None, axis=alt.Axis(labelLimit=220)),
            x=alt.X(
                "sum(points):Q",
                title="Score: the sum of the weighted points",
                scale=alt.Scale(domain=[0, SCORE_COLUMN + 0.08], nice=False),
                axis=alt.Axis(values=[0, 0.2, 0.4, 0.6, 0.8, 1.0]),
            ),
            color=alt.Color(
                "component:N",
                title="Component",
                sort=[t for _, t in COMPONENTS],
                scale=alt.Scale(
                    domain=[t for _, t in COMPONENTS], range=list(COMPONENT_COLORS)
                ),
                legend=alt.Legend(orient="top", offset=30),
            ),
            order=alt.Order("order:Q"),
        )
    )


def _score_totals(rows: list[dict[str, Any]], labels: list[str]) -> alt.Chart:
    """Each partner's score, in a column right of the bars and of the tier lines (past
    the greatest score, 1), so that no score is written across a line or a label."""
    scores = [
        {"partner": label, "score": r["score"], "x": SCORE_COLUMN}
        for r, label in zip(rows, labels, strict=True)
    ]
    return (
        alt.Chart(_values(scores))
        .mark_text(align="right", fontSize=12, color="#000")
        .encode(
            y=alt.Y("partner:N", sort=labels),
            x="x:Q",
            text=alt.Text("score:Q", format=".3f"),
        )
    )


def _tier_rules(tier1: float, tier2: float) -> tuple[alt.Chart, ...]:
    """The tier thresholds: dashed rules, and their labels above the bars: tier 1's to
    the right of its line, tier 2's (the lower threshold) to the left of its own, so
    that the two never meet however close the thresholds are."""
    thresholds = [
        {"x": tier1, "label": f"tier 1 from {tier1:g} \u2192", "side": "right"},
        {"x": tier2, "label": f"\u2190 tier 2 from {tier2:g}", "side": "left"},
    ]
    rules = (
        alt.Chart(_values(thresholds))
        .mark_rule(color="#000", strokeDash=[5, 3], strokeWidth=1.5)
        .encode(x="x:Q")
    )
    notes = [
        alt.Chart(_values(thresholds))
        .transform_filter(f"datum.side == '{side}'")
        .mark_text(
            align="left" if side == "right" else "right",
            dx=4 if side == "right" else -4,
            dy=-4,
            baseline="bottom",
            color="#000",
            fontSize=12,
        )
        .encode(x="x:Q", y=alt.value(0), text="label:N")
        for side in ("right", "left")
    ]
    return rules, *notes


# --- a queue under the policy in force and under a proposal -------------------------------


def whatif_chart(
    rows: list[dict[str, Any]],
    platform: str,
    name: str,
    in_force: str | None,
    proposal: dict[str, Any],
) -> alt.LayerChart | alt.FacetChart:
    """The queue under the policy in force and under a proposal (``projections.whatif``),
    drawn as the queue before and after a policy is; ``proposal`` has mode, weights
    (investment, strategic, economic), effective_at and sha256."""
    w = proposal["weights"]
    return slope_chart(
        rows,
        alt.Title(
            f"{name} ({platform}): the queue under {in_force or 'no policy'} and "
            "under the proposal",
            subtitle=f"Proposed: {proposal['mode']} mode, weights I {w['investment']:g}"
            f" / S {w['strategic']:g} / E {w['economic']:g}, effective "
            f"{proposal['effective_at'][:10]}; sha256 {proposal['sha256'][:16]}…; "
            "not adopted",
            offset=24,
        ),
        ("in force", "proposed"),
    )
