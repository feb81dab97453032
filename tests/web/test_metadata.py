"""The web view's metadata: every table and column described (from the schema), sort
orders, facets, the hidden bookkeeping table, the home page, SQL off unless asked."""

from __future__ import annotations

import html
import sqlite3

import pytest
from arms_ledger.projections import schema
from arms_ledger.projections.web import canned, charts, metadata
from markupsafe import escape

from tests.web.conftest import client


def database_columns(path) -> dict[str, list[str]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        return {n: [r[1] for r in conn.execute(f'PRAGMA table_info("{n}")')] for n in names}
    finally:
        conn.close()


@pytest.fixture(params=["live", "replay"])
def served(request, demo_ledger, replay_db):
    """The database a web view serves, and that view's metadata."""
    client = request.getfixturevalue(request.param)
    path = demo_ledger / "projections.db" if request.param == "live" else replay_db
    return path, client.json("/-/metadata.json")


def test_every_table_and_column_in_the_database_is_described(served):
    path, found = served
    tables = found["databases"]["projections"]["tables"]
    columns = database_columns(path)
    assert len(columns) == 20  # 15 tables, 5 views
    for name, names in columns.items():
        assert tables[name]["description"], name
        assert list(tables[name]["columns"]) == names, name
        assert all(tables[name]["columns"].values()), name


def test_the_descriptions_are_the_schemas():
    tables = metadata.tables()
    for table in schema.TABLES:
        assert tables[table.name]["description"] == table.description
        described = {c.name: c.description for c in table.columns}
        assert tables[table.name]["columns"] == described
    for name, (description, _) in schema.VIEWS.items():
        assert tables[name]["description"] == description
    backlog = tables["backlog"]["columns"]
    stage = schema.CASES.columns[schema.CASES.names.index("stage")]
    assert backlog["stage"] == stage.description
    assert backlog["cases"] == "open cases"
    explained = tables["queue_changes_explained"]["columns"]
    assert explained["rationale"] == "why"  # audit_log's


def test_every_table_page_shows_its_description_and_its_columns(live):
    tables = metadata.tables()
    for name, info in tables.items():
        if info.get("hidden"):
            continue
        response = live.get(f"/projections/{name}")
        assert response.status_code == 200, name
        assert escape(info["description"]) in response.text, name
        for column, text in info["columns"].items():
            assert f"<dt>{column}</dt><dd>{escape(text)}</dd>" in response.text, (
                name,
                column,
            )


def test_the_options_name_real_columns():
    for name, options in metadata.TABLE_OPTIONS.items():
        columns = metadata.column_descriptions(name)
        for key in ("sort", "sort_desc", "label_column"):
            if key in options:
                assert options[key] in columns, (name, key)
        for facet in options.get("facets", ()):
            assert facet in columns, (name, facet)


def test_partners_come_by_score_with_facets(live):
    found = live.json("/projections/partners.json?_shape=objects&_size=3")
    assert found["human_description_en"] == "sorted by score descending"
    assert [(r["partner"], r["score"]) for r in found["rows"]] == [
        ("POL", 0.746),
        ("SAU", 0.6818),
        ("ISR", 0.67),
    ]
    tiers = found["facet_results"]["tier"]["results"]
    assert {r["value"]: r["count"] for r in tiers} == {1: 1, 2: 13, 3: 34}


def test_the_bookkeeping_table_is_hidden(live):
    found = live.json("/projections.json")
    hidden = {t["name"] for t in found["tables"] if t["hidden"]}
    assert hidden == {"projection"}
    assert {v["name"] for v in found["views"]} == set(schema.VIEWS)


def test_the_home_page_shows_the_state_the_charts_and_the_canned_queries(live):
    page = live.get("/").text
    assert "<h1>arms-ledger</h1>" in page
    assert (
        '<p class="arms-ledger-state arms-ledger-live" role="status">Live read models, '
        "up to log position "
        "917, recorded 2026-11-10; every appending command updates them (reload to see)."
        "</p>"
    ) in page
    for chart in charts.CHARTS:
        assert f'<a href="/-/charts/{chart.name}">{escape(chart.title)}</a>' in page
    links = {
        "platform_queue": "platform=f-35a",
        "case_trail": "case=DA-D-F35",
        "priority_decisions": "partner=",
        "queue_changes_between": "from=2026-02-06&amp;to=2026-02-06&amp;platform=",
        "backlog_by_partner_platform": "partner=&amp;platform=",
        "flags": "kind=",
        "holds_by_office": "office=",
        "partner_scores": "partner=",
    }
    assert list(links) == [q.name for q in canned.CANNED]
    for q in canned.CANNED:
        assert (
            f'<a href="/projections/{q.name}?{links[q.name]}">{escape(q.title)}</a>' in page
        )
    assert "Arbitrary SQL is off" in page


def test_a_replay_says_so_on_every_page(replay):
    banner = (
        '<p class="arms-ledger-state arms-ledger-replay" role="alert">'
        '<span class="arms-ledger-warning">&#9888; Warning:</span> A replay as of '
        "2026-02-05T00:00:00Z (events effective at or before then): up to log position "
        "757, recorded 2026-02-03. Not the live state.</p>"
    )
    for path in (
        "/",
        "/projections",
        "/projections/queue",
        "/projections/flags",
        "/-/charts/backlog",
    ):
        assert banner in replay.get(path).text, path
    assert replay.json("/-/metadata.json")["databases"]["projections"]["description"] == (
        "A replay as of 2026-02-05T00:00:00Z. The read models of the arms-ledger event log."
    )


def test_arbitrary_sql_is_off_unless_asked(live, demo_ledger):
    refused = live.get("/projections.json?sql=select+1")
    assert refused.status_code == 403
    assert "start it with `arms-ledger serve --allow-sql`" in html.unescape(refused.text)
    with client(
        demo_ledger / "projections.db", "Live read models", immutable=False, allow_sql=True
    ) as open_sql:
        assert open_sql.json(
            "/projections.json?sql=select+count(*)+as+n+from+cases&_shape=array"
        ) == [{"n": 55}]
        written = open_sql.get("/projections.json?sql=delete+from+cases")
        assert written.status_code == 400
        assert "Statement must be a SELECT" in written.text
