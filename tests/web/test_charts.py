"""The charts: their data against the read models, and their pages."""

from __future__ import annotations

import itertools
import json
import sqlite3

import pytest
from arms_ledger.cli.main import cli
from arms_ledger.projections import engine, queries
from arms_ledger.projections.web import chartdata, charts
from click.testing import CliRunner

from tests.web.conftest import client


def connect(path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


@pytest.fixture(scope="module")
def conn(demo_ledger):
    c = connect(demo_ledger / engine.PROJECTIONS_DB)
    yield c
    c.close()


def totals(c: sqlite3.Connection) -> tuple[int, int]:
    return c.execute("SELECT count(*), sum(value_usd) FROM cases WHERE open").fetchone()


def test_the_backlog_ends_where_the_read_models_are(conn, replay_db):
    series = chartdata.backlog_series(conn)
    assert series[0] == {
        "month": "2017-05",
        "open_cases": 1,
        "value_usd": 15_000_000_000,
        "value_billion_usd": 15.0,
    }
    assert (series[-1]["month"], series[-1]["open_cases"], series[-1]["value_usd"]) == (
        "2026-11",
        *totals(conn),
    )
    months = [tuple(map(int, p["month"].split("-"))) for p in series]
    assert all(
        b == (a[0] + a[1] // 12, a[1] % 12 + 1) for a, b in itertools.pairwise(months)
    )
    before = connect(replay_db)
    try:
        last = chartdata.backlog_series(before)[-1]
        assert (last["month"], last["open_cases"], last["value_usd"]) == (
            "2026-02",
            *totals(before),
        )
    finally:
        before.close()


def test_a_queue_rebuilt_from_its_changes_is_the_queue(conn):
    head = conn.execute("SELECT position FROM projection").fetchone()[0]
    for (platform,) in conn.execute("SELECT platform FROM platforms").fetchall():
        assert chartdata.queue_at(conn, platform, head) == {
            r["case"]: r["position"] for r in queries.queue(conn, platform)
        }, platform


def test_the_queue_just_before_and_after_the_order_is_the_demos(conn):
    assert chartdata.queue_comparison(conn, "ah-64e", 760) == [
        {"case": "PL-B-AHA", "partner": "POL", "before": 4, "after": 1, "move": "up 3"},
        {"case": "KU-B-AHE", "partner": "KWT", "before": 2, "after": 2, "move": "same"},
        {"case": "AT-B-AHE", "partner": "AUS", "before": 3, "after": 3, "move": "same"},
        {"case": "EG-B-AHE", "partner": "EGY", "before": 1, "after": 4, "move": "down 3"},
    ]
    choices = chartdata.queue_choices(conn, 760)
    assert [(c["platform"], c["cases_changed"]) for c in choices[:4]] == [
        ("f-35a", 8),
        ("pac-3-mse", 4),
        ("m1a2-sepv3", 4),
        ("ah-64e", 2),
    ]


def test_the_score_chart_stacks_the_weighted_points(conn):
    rows = chartdata.score_rows(conn)
    assert chartdata.tiers(conn) == (0.7, 0.45, "america-first-2026")
    spec = charts.scores_chart(rows, 0.7, 0.45, "america-first-2026").to_dict()
    bars = spec["layer"][0]["data"]["values"]
    assert bars[:3] == [
        {
            "partner": "Poland (POL)",
            "component": "investment (I)",
            "points": 0.344,
            "score": 0.746,
            "tier": 1,
            "order": 0,
        },
        {
            "partner": "Poland (POL)",
            "component": "strategic value (S)",
            "points": 0.285,
            "score": 0.746,
            "tier": 1,
            "order": 1,
        },
        {
            "partner": "Poland (POL)",
            "component": "economic contribution (E)",
            "points": 0.117,
            "score": 0.746,
            "tier": 1,
            "order": 2,
        },
    ]
    assert len(bars) == 3 * 48


@pytest.mark.parametrize(
    "name, title",
    [
        ("backlog", "Backlog over time: open cases and their value, month by month"),
        (
            "queue",
            "F-35A Lightning II (f-35a): the queue just before and just after "
            "america-first-2026",
        ),
        ("scores", "Partners' scores, component by component"),
    ],
    ids=["backlog", "queue", "scores"],
)
def test_each_chart_page_draws_its_chart(live, name, title):
    page = live.get(f"/-/charts/{name}")
    assert page.status_code == 200
    assert '<figure class="chart"' in page.text
    assert f">{title}</text>" in page.text
    image = live.get(f"/-/charts/{name}.svg")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/svg+xml; charset=utf-8"
    assert image.text.startswith("<svg ")


def test_the_queue_chart_takes_a_platform_and_a_policy(live, replay):
    page = live.get("/-/charts/queue?platform=ah-64e&policy=america-first-2026").text
    assert (
        ">AH-64E Apache (ah-64e): the queue just before and just after "
        "america-first-2026</text>" in page
    )
    assert '<option value="ah-64e" selected>' in page
    assert "<td>PL-B-AHA</td><td>POL</td><td>4</td><td>1</td><td>up 3</td>" in page
    unknown = live.get("/-/charts/queue?platform=no-such-platform")
    assert unknown.status_code == 404
    assert (
        "No platform &#39;no-such-platform&#39; with a queue when america-first-2026 "
        "was adopted; choose one of: f-35a, pac-3-mse," in unknown.text
    )
    policy = live.get("/-/charts/queue?policy=no-such-policy")
    assert policy.status_code == 404
    assert "choose one of: fcfs-legacy, america-first-2026" in policy.text
    # Before the order only the legacy policy was adopted, when no queue had a case.
    before = replay.get("/-/charts/queue").text
    assert "No queue had a case when fcfs-legacy was adopted: nothing to compare." in before


@pytest.mark.usefixtures("store")
def test_an_empty_ledger_has_pages_that_say_so(tmp_path):
    path = tmp_path / "ledger"
    assert CliRunner().invoke(cli, ["--ledger", str(path), "init"]).exit_code == 0
    assert CliRunner().invoke(cli, ["--ledger", str(path), "rebuild"]).exit_code == 0
    with client(path / engine.PROJECTIONS_DB, "Live read models", immutable=False) as c:
        assert "Live read models, no events;" in c.get("/").text
        for name, message in (
            ("backlog", "No case has been filed (at this time): nothing to draw."),
            (
                "queue",
                "No priority policy has been adopted (at this time): nothing to compare.",
            ),
            ("scores", "No partner is registered (at this time): nothing to draw."),
        ):
            page = c.get(f"/-/charts/{name}")
            assert page.status_code == 200
            assert message in page.text
            assert c.get(f"/-/charts/{name}.svg").status_code == 404


@pytest.mark.usefixtures("store")
def test_names_in_a_chart_are_text_not_markup(tmp_path):
    path = tmp_path / "ledger"
    evil = '<script>alert(1)</script>"'
    event = json.dumps(
        {
            "type": "PartnerRegistered",
            "partner": "XXX",
            "name": evil,
            "region": "Europe",
            "notification_group": "other",
            "nato_member": False,
            "middle_east": False,
            "actor": "test",
        }
    )
    assert CliRunner().invoke(cli, ["--ledger", str(path), "init"]).exit_code == 0
    result = CliRunner().invoke(cli, ["--ledger", str(path), "append", "-"], input=event)
    assert result.exit_code == 0, result.stderr
    with client(path / engine.PROJECTIONS_DB, "Live read models", immutable=False) as c:
        page = c.get("/-/charts/scores").text
    assert "<script>alert" not in page
    assert '&lt;script&gt;alert(1)&lt;/script&gt;" (XXX)</text>' in page


def test_every_chart_is_in_the_colour_blind_safe_palette_and_moves_have_shapes(conn):
    """Okabe and Ito's colours only (or black, the grey of what carries no category, the
    policies' darker vermillion); a move is a marker's shape and a sign as well."""
    import re

    rows = chartdata.score_rows(conn)
    policy = chartdata.policy_adoptions(conn)[-1]
    specs = [
        charts.backlog_chart(
            chartdata.backlog_series(conn), chartdata.policy_adoptions(conn)
        ),
        charts.scores_chart(rows, 0.7, 0.45, "america-first-2026"),
        charts.queue_chart(
            chartdata.queue_comparison(conn, "f-35a", policy["position"]),
            "f-35a",
            "F-35A",
            policy,
        ),
    ]
    allowed = {c.lower() for c in charts.OKABE_ITO.values()} | {
        charts.GREY.lower(),
        charts.POLICY_COLOR.lower(),
        "#000",
    }
    for spec in specs:
        text = json.dumps(spec.to_dict())
        used = {c.lower() for c in re.findall(r'"(#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3})"', text)}
        assert used and used <= allowed, used - allowed
    queue = specs[2].to_dict()
    shapes = [layer["encoding"].get("shape") for layer in queue["layer"]]
    [shape] = [s for s in shapes if s]
    assert shape["field"] == "direction"
    assert dict(zip(shape["scale"]["domain"], shape["scale"]["range"], strict=True)) == {
        "up": "triangle-up",
        "down": "triangle-down",
        "same": "circle",
    }
    assert "SR-D-F35 (SAU) \u25b2 up 6" in json.dumps(queue, ensure_ascii=False)
