"""Money and booleans as words (projections.web.formats): which columns, and how."""

from __future__ import annotations

import sqlite3

import pytest
from arms_ledger.ledger.domain.oversight import FLAG_KINDS
from arms_ledger.projections import engine, schema
from arms_ledger.projections.web import canned, formats, metadata


@pytest.mark.parametrize(
    "amount, shown",
    [
        (15_000_000_000, "$15.0 B"),
        (12_049_000_000, "$12.0 B"),
        (47_000_000, "$47 M"),
        (47_300_000, "$47.3 M"),
        (82_500_000, "$82.5 M"),
        (999_990_000, "$1.0 B"),
        (950_000_000, "$950 M"),
        (2_500_000, "$2.5 M"),
        (950_000, "$950,000"),
        (0, "$0"),
        (-3_200_000_000, "\u2212$3.2 B"),
    ],
)
def test_money_in_a_few_characters(amount, shown):
    assert formats.usd(amount) == shown


def test_a_cell_keeps_the_exact_amount_and_leaves_other_values_alone():
    assert formats.cell(formats.USD, 15_000_000_000) == (
        '<span class="usd" title="$15,000,000,000">$15.0 B</span>'
    )
    assert formats.cell(formats.YES_NO, 1) == '<span class="yes">yes</span>'
    assert formats.cell(formats.YES_NO, 0) == '<span class="no">no</span>'
    for fmt, value in ((formats.USD, None), (formats.YES_NO, 2), (formats.USD, "x")):
        assert formats.cell(fmt, value) is None
    assert formats.cell(None, 1) is None


def test_long_identifiers_may_break_where_a_reader_expects():
    assert formats.breakable("effective_at", "2026-02-06T00:00:00Z") == (
        "2026-02-06<wbr>T00:00:00Z"
    )
    assert formats.breakable("type", "CongressionalReviewStarted") == (
        "Congressional<wbr>Review<wbr>Started"
    )
    assert formats.breakable("stream", "case:PL-B-AHA") == "case:<wbr>PL-B-AHA"
    assert formats.breakable("rationale", "a<b") is None


def test_the_formats_come_from_the_schema():
    money = {
        (t.name, c.name) for t in schema.TABLES for c in t.columns if c.unit == schema.USD
    }
    booleans = {
        (t.name, c.name) for t in schema.TABLES for c in t.columns if c.type is bool
    }
    found = {(t, c): f for t, columns in formats.TABLES.items() for c, f in columns.items()}
    assert {k for k, f in found.items() if f == formats.USD} >= money
    assert {k for k, f in found.items() if f == formats.YES_NO} >= booleans
    # Every column of a table that is named as money is money.
    for t in schema.TABLES:
        for c in t.columns:
            assert c.name.endswith("_usd") == (c.unit == schema.USD), (t.name, c.name)
    assert formats.TABLES["backlog"] == {"value_usd": formats.USD}
    assert "queue_changes_explained" not in formats.TABLES  # nothing to format


@pytest.fixture(scope="module")
def conn(demo_ledger):
    c = sqlite3.connect(f"file:{demo_ledger / engine.PROJECTIONS_DB}?mode=ro", uri=True)
    yield c
    c.close()


def test_every_canned_querys_money_and_booleans_are_formatted(conn):
    """Each column a canned query returns: a name whose meaning differs by table must be
    declared (formats.COMPUTED), money is every *_usd column, and a column whose values
    are all 0 or 1 and named as a table's boolean is shown as yes or no."""
    for q in canned.CANNED:
        cursor = conn.execute(q.sql, canned.example(conn, q))
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        for i, column in enumerate(columns):
            assert column not in formats.AMBIGUOUS or (q.name, column) in formats.COMPUTED
            fmt = formats.query_format(q.name, column)
            assert (fmt == formats.USD) == column.endswith("_usd"), (q.name, column)
            if fmt == formats.YES_NO:
                assert {r[i] for r in rows} <= {0, 1, None}, (q.name, column)
    assert formats.query_format("holds_by_office", "held_now") == formats.YES_NO
    assert formats.query_format("platform_queue", "override") == formats.YES_NO
    assert formats.query_format("priority_decisions", "decision") is None


def test_the_flag_kinds_are_the_domains(conn):
    """The flags' kind is a choice among oversight.FLAG_KINDS: every flag the read
    models hold has one of them, and the descriptions name them all."""
    kinds = {k for (k,) in conn.execute("SELECT DISTINCT kind FROM oversight_flags")}
    assert kinds and kinds <= set(FLAG_KINDS)
    assert len(kinds) >= 5
    described = metadata.column_descriptions("oversight_flags")["kind"]
    assert all(k in described for k in FLAG_KINDS)
    assert all(k in canned.FLAGS.description for k in FLAG_KINDS)
    assert conn.execute("SELECT count(*) FROM event_flags").fetchone()[0] > 0


def test_the_pages_show_words_and_the_exports_keep_the_values(live):
    page = live.get("/projections/platforms?_sort=platform&platform=f-35a").text
    assert '<td class="col-prioritized type-int"><span class="yes">yes</span></td>' in page
    assert '<span class="usd" title="$82,500,000">$82.5 M</span>' in page
    [row] = live.json("/projections/platforms.json?platform=f-35a&_shape=array")
    assert (row["prioritized"], row["unit_cost_usd"]) == (1, 82_500_000)
    csv = live.get("/projections/platforms.csv?platform=f-35a").text
    assert ",82500000," in csv
    answer = live.get("/projections/backlog_by_partner_platform?partner=POL&platform=").text
    assert '<h1 style="padding-left: 10px; border-left: 10px solid #' in answer
    assert ">Backlog by partner and platform</h1>" in answer
    assert "Custom SQL" not in answer
    assert '<h2 class="arms-ledger-rows">' in answer
    assert "<summary>The SQL behind this answer</summary>" in answer
    assert '<td class="col-value_usd"><span class="usd" title="$' in answer
    flags = live.get("/projections/flags?kind=correction").text
    assert '<select id="qp1" name="kind">' in flags
    assert '<option value="correction" selected>correction</option>' in flags
