"""The canned queries, through Datasette's in-process client on the demo ledger: each
answers, and answers what the read commands answer."""

from __future__ import annotations

import sqlite3
from urllib.parse import urlencode

import pytest
from arms_ledger.projections import audit_queries, queries
from arms_ledger.projections.web import canned
from markupsafe import escape


def run(client, query: canned.Canned, **params: str) -> list[dict]:
    values = {name: params.get(name, "") for name in query.params}
    return client.json(f"/projections/{query.name}.json?_shape=array&{urlencode(values)}")


@pytest.fixture(scope="module")
def conn(demo_ledger):
    c = sqlite3.connect(f"file:{demo_ledger / 'projections.db'}?mode=ro", uri=True)
    yield c
    c.close()


@pytest.mark.parametrize("query", canned.CANNED, ids=lambda q: q.name)
def test_every_canned_query_answers_its_example(live, replay, conn, query):
    example = canned.example(conn, query)
    assert run(live, query, **example), query.name
    page = live.get(f"/projections/{query.name}?{urlencode(example)}")
    assert page.status_code == 200
    assert f">{escape(query.title)}</h1>" in page.text
    replayed = replay.get(f"/projections/{query.name}.json?{urlencode(example)}")
    assert replayed.status_code == 200


def test_the_queue_of_a_platform_is_the_queue_commands(live, replay, conn):
    found = run(live, canned.PLATFORM_QUEUE, platform="m1a2-sepv3")
    expected = queries.queue(conn, "m1a2-sepv3")
    keys = ("position", "case", "partner", "tier", "score")
    assert [tuple(r[k] for k in keys) for r in found] == [
        tuple(e[k] for k in keys) for e in expected
    ]
    assert [r["partner_name"] for r in found] == [
        "Poland",
        "Australia",
        "Taiwan (TECRO)",
        "Romania",
    ]
    # Before E.O. 14383: first come, first served, no tier or score.
    before = run(replay, canned.PLATFORM_QUEUE, platform="m1a2-sepv3")
    assert [(r["case"], r["tier"], r["score"]) for r in before] == [
        ("TW-B-ABR", None, None),
        ("AT-B-ABR", None, None),
        ("PL-B-ABR", None, None),
        ("RO-B-ABR", None, None),
    ]
    assert run(live, canned.PLATFORM_QUEUE, platform="no-such-platform") == []


def test_a_cases_trail_has_its_events_and_the_events_that_moved_it(live, conn):
    found = run(live, canned.CASE_TRAIL, case="PL-B-AHA")
    own = [r["position"] for r in audit_queries.trail(conn, "case:PL-B-AHA")]
    assert [r["position"] for r in found if r["stream"] == "case:PL-B-AHA"] == own
    assert [
        (r["position"], r["stream"], r["type"], r["queue_effect"])
        for r in found
        if r["queue_effect"]
    ] == [
        (295, "case:PL-B-AHA", "CaseFiled", "entered the ah-64e queue at 5"),
        (750, "case:MO-B-AHE", "DeliveryRecorded", "shifted from 5 to 4"),
        (760, "policy:america-first-2026", "PriorityPolicyAdopted", "moved from 4 to 1"),
    ]
    policy = next(r for r in found if r["position"] == 760)
    assert policy["actor"] == "usd-as.dsca"
    assert policy["rationale"].startswith("E.O. 14383 (6 Feb 2026) ends first-come")


def test_expedites_deferrals_and_overrides_with_actor_and_reason(live):
    found = run(live, canned.PRIORITY_DECISIONS)
    assert [(r["position"], r["case"], r["partner"], r["decision"]) for r in found] == [
        (786, None, "ISR", "override granted"),
        (813, "IS-D-F15", "ISR", "expedited"),
        (816, None, "UKR", "override granted"),
        (817, "UP-B-PAC", "UKR", "expedited"),
        (819, "GY-D-F35", "DEU", "expedited"),
        (822, "PL-B-PAC", "POL", "expedited"),
        (857, "IS-D-KC4", "ISR", "expedited"),
        (862, "SZ-D-F35", "CHE", "deferred"),
        (864, "EG-B-AHE", "EGY", "deferred"),
        (885, "JA-B-PAC", "JPN", "expedited"),
        (895, "EG-B-AHE", "EGY", "normal"),
        (905, None, "UKR", "override revoked"),
    ]
    assert all(r["actor"] and r["rationale"] and r["authority"] for r in found[:-1])
    assert [r["position"] for r in run(live, canned.PRIORITY_DECISIONS, partner="UKR")] == [
        816,
        817,
        905,
    ]


def test_queue_changes_on_the_day_of_the_order_were_caused_by_it(live):
    found = run(
        live,
        canned.QUEUE_CHANGES,
        **{"from": "2026-02-06", "to": "2026-02-06", "platform": "ah-64e"},
    )
    assert [
        (r["case"], r["change"], r["old_position"], r["new_position"], r["event_type"])
        for r in found
    ] == [
        ("PL-B-AHA", "moved", 4, 1, "PriorityPolicyAdopted"),
        ("EG-B-AHE", "moved", 1, 4, "PriorityPolicyAdopted"),
    ]
    every = run(live, canned.QUEUE_CHANGES, **{"from": "2026-02-06", "to": "2026-02-06"})
    assert len(every) == 20
    assert {r["event_position"] for r in every} == {760}
    assert (
        len(run(live, canned.QUEUE_CHANGES))
        == live.json("/projections/queue_changes.json?_size=0")["filtered_table_rows_count"]
    )


def test_backlog_by_partner_and_platform_adds_up(live, conn):
    found = run(live, canned.BACKLOG)
    assert sum(r["cases"] for r in found) == 46
    assert sum(r["value_usd"] for r in found) == 206_213_000_000
    assert found[0] == {
        "partner": "SAU",
        "partner_name": "Saudi Arabia",
        "platform": "f-35a",
        "cases": 1,
        "quantity_left": 48,
        "value_usd": 23_000_000_000,
    }
    poland = run(live, canned.BACKLOG, partner="POL")
    assert {r["partner"] for r in poland} == {"POL"}
    assert poland == [r for r in found if r["partner"] == "POL"]


def test_the_oversight_flags_are_the_audit_commands(live, replay, conn):
    found = run(live, canned.FLAGS)
    assert found == audit_queries.flags(conn)
    assert [r["case"] for r in run(live, canned.FLAGS, kind="qme-not-certified")] == [
        "AE-B-THB"
    ]
    # Judged at the replay's time, 2026-02-05: the backdated decisions come later.
    assert [(r["kind"], r["case"]) for r in run(replay, canned.FLAGS)] == [
        ("eeum-no-annual-inventory", "UP-B-JAV"),
        ("eeum-no-annual-inventory", "UP-B-JAX"),
        ("eeum-no-initial-inventory", "UP-B-JAX"),
        ("qme-not-certified", "AE-B-THB"),
    ]


def test_holds_by_a_committee_office(live, replay):
    found = run(live, canned.HOLDS, office="SFRC-chair")
    assert [
        (r["case"], r["held_now"], r["placed_at"][:10], r["lifted_at"][:10], r["days_held"])
        for r in found
    ] == [
        ("IN-P-MQ9", 0, "2023-11-30", "2024-01-31", 62),
        ("TK-D-F16", 0, "2023-01-13", "2024-01-26", 378),
    ]
    assert found[1]["placed_by"] == "sfrc.chair"
    assert found[1]["reason"].startswith("I will not approve this sale until Turkiye")
    held = run(live, canned.HOLDS, office="SFRC-ranking")
    assert [(r["case"], r["held_now"], r["lifted_at"]) for r in held] == [
        ("SR-D-F35", 1, None)
    ]
    assert len(run(live, canned.HOLDS)) == 4
    # In a replay the days held count to the replay's time.
    before = run(replay, canned.HOLDS)
    assert [(r["case"], r["held_now"], r["days_held"]) for r in before] == [
        ("IS-D-F15", 0, 186),
        ("IN-P-MQ9", 0, 62),
        ("TK-D-F16", 0, 378),
    ]


def test_the_score_breakdown_adds_up_to_the_score(live):
    found = run(live, canned.PARTNER_SCORES)
    assert len(found) == 48
    assert [r["partner"] for r in found[:3]] == ["POL", "SAU", "ISR"]
    poland = found[0]
    investment = (
        poland["investment"],
        poland["investment_weight"],
        poland["investment_points"],
    )
    assert investment == (0.86, 0.4, 0.344)
    assert (poland["strategic_points"], poland["economic_points"], poland["score"]) == (
        0.285,
        0.117,
        0.746,
    )
    for r in found:
        points = r["investment_points"] + r["strategic_points"] + r["economic_points"]
        assert abs(points - r["score"]) <= 0.0002, r["partner"]
    assert run(live, canned.PARTNER_SCORES, partner="ISR")[0]["override"] == 1
