"""Golden tests of the read side on the fixture scenario (fixtures/scenario.jsonl).

1. Each queue equals the ordering of docs/domain.md (The queue) computed here by hand
   (``expected_queue``: a
   second, independent implementation that reads the JSON lines, not the projection
   code), in fcfs mode (as of 2026-02-05, under fcfs-legacy) and in scored mode (now,
   under america-first-2026, E.O. 14383, effective 2026-02-06); the orders are also
   written out.
2. ``--as-of T`` equals the live read models of a fresh ledger holding only the events
   effective at or before T.
3. ``--known-at`` the recorded_at of line N equals a fresh ledger of the first N lines.
4. ``audit diff`` and ``audit explain`` name the events that caused what they show.

The scenario is loaded from scratch, so a log position is the 1-based line number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from arms_ledger.cli.demo import SCENARIO
from arms_ledger.cli.write import load_history
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import parse_instant
from arms_ledger.projections import audit_queries, diffs, engine, queries

from tests import stores

LINES = SCENARIO.read_bytes().splitlines()
EVENTS = [json.loads(line) for line in LINES]  # EVENTS[i] is at log position i + 1
PLATFORMS = ("ah-64e", "m1a2-sepv3", "pac-3-mse", "f-35a")
FCFS_TIME = "2026-02-05"  # the day before E.O. 14383's policy took effect


def at(text: str) -> datetime:
    return parse_instant(text)


def effective(e: dict) -> datetime:
    return at(e["effective_at"])


def position_of(predicate) -> int:
    (found,) = [i for i, e in enumerate(EVENTS, start=1) if predicate(e)]
    return found


# --- the reference: docs/domain.md's queue, computed by hand from the JSON lines --------

STAGE_AFTER = {
    "CaseReviewCleared": "review-cleared",
    "CongressionalReviewStarted": "congressional-review",
    "CongressionalNotified": "notified",
    "OfferIssued": "offered",
    "OfferAccepted": "accepted",
    "OfferExpired": "expired",
    "CaseImplemented": "implemented",
    "DeliveryRecorded": "delivering",
    "CaseClosed": "closed",
    "CaseCancelled": "cancelled",
}
CLASS_RANK = {"expedited": 0, "normal": 1, "deferred": 2}
DEFAULT_POLICY = {  # before any policy is adopted: fcfs (and docs/domain.md's defaults)
    "mode": "fcfs",
    "weights": {"investment": 0.4, "strategic": 0.3, "economic": 0.3},
    "targets": {"pct_gdp": 5.0, "economic_usd": 5_000_000_000},
    "tiers": {"tier1": 0.70, "tier2": 0.45},
}


def expected_queue(platform: str, as_of: datetime | None = None) -> list[dict]:
    """docs/domain.md, The priority policy: ``platform``'s queue from the facts in force."""
    log = [e for e in EVENTS if as_of is None or effective(e) <= as_of]
    assert not any(e["type"] in ("CaseSuspended", "CaseResumed") for e in log)

    def of(type_: str | tuple, **match) -> list[dict]:
        """Events of the type(s) with these fields, by effective time, then log order."""
        types = (type_,) if isinstance(type_, str) else type_
        found = [
            e
            for e in log
            if e["type"] in types and all(e.get(k) == v for k, v in match.items())
        ]
        return sorted(found, key=effective)  # stable: ties keep log (recording) order

    def latest(type_: str | tuple, **match) -> dict | None:
        found = of(type_, **match)
        return found[-1] if found else None

    policy: dict[str, Any] = latest("PriorityPolicyAdopted") or DEFAULT_POLICY
    mode = policy["mode"]

    def partner(p: str) -> dict:
        w, target, tiers = policy["weights"], policy["targets"], policy["tiers"]
        # latest year; for the same year the report recorded last (sorted is stable)
        reports = sorted(
            (
                e
                for e in log
                if e["type"] == "DefenseSpendingReported" and e["partner"] == p
            ),
            key=lambda e: e["year"],
        )
        pct = reports[-1]["pct_gdp"] if reports else 0.0
        assessed = latest("StrategicValueAssessed", partner=p)
        s = assessed["score"] if assessed else 0.0
        usd = sum(e["amount_usd"] for e in of("EconomicContributionRecorded", partner=p))
        score = round(
            w["investment"] * min(pct / target["pct_gdp"], 1)
            + w["strategic"] * s
            + w["economic"] * min(usd / target["economic_usd"], 1),
            4,
        )
        tier = 1 if score >= tiers["tier1"] else 2 if score >= tiers["tier2"] else 3
        grant = latest(("PriorityOverrideGranted", "PriorityOverrideRevoked"), partner=p)
        override = grant is not None and grant["type"] == "PriorityOverrideGranted"
        return {"override": override, "tier": tier, "score": score}

    entries = []
    for filed in of("CaseFiled", platform=platform):
        case = filed["case"]
        own = [e for e in log if e.get("case") == case]  # log order: rule 2's order
        stage = "filed"
        for e in own:
            stage = STAGE_AFTER.get(e["type"], stage)
        left = filed["quantity"] - sum(
            e["quantity"] for e in own if e["type"] == "DeliveryRecorded"
        )
        if stage in ("closed", "cancelled", "expired") or left <= 0:
            continue
        moved = latest("CaseReprioritized", case=case)
        entries.append(
            {
                "case": case,
                "partner": filed["partner"],
                "priority_class": moved["priority_class"] if moved else "normal",
                **partner(filed["partner"]),
                "stage": stage,
                "quantity_left": left,
                "filed": effective(filed),
            }
        )

    if mode == "fcfs":
        entries.sort(
            key=lambda r: (
                CLASS_RANK[r["priority_class"]],
                not r["override"],
                r["filed"],
                r["case"],
            )
        )
    else:
        entries.sort(
            key=lambda r: (
                CLASS_RANK[r["priority_class"]],
                not r["override"],
                r["tier"],
                -r["score"],
                r["filed"],
                r["case"],
            )
        )
    capacity = latest("ProductionCapacitySet", platform=platform)
    cumulative = 0
    rows = []
    for position, r in enumerate(entries, start=1):
        cumulative += r["quantity_left"]
        rows.append(
            {
                "position": position,
                "case": r["case"],
                "partner": r["partner"],
                "priority_class": r["priority_class"],
                "override": r["override"],
                "tier": r["tier"] if mode == "scored" else None,
                "score": r["score"] if mode == "scored" else None,
                "stage": r["stage"],
                "quantity_left": r["quantity_left"],
                "est_completion_months": round(cumulative / capacity["units_per_month"], 1)
                if capacity
                else None,
            }
        )
    return rows


# --- ledgers and read models --------------------------------------------------------------


def fresh_ledger(store: str, directory: Path, lines: list[bytes]) -> Ledger:
    with stores.using(store):
        ledger = create(directory)
    ledger.import_history([ev.decoder.decode(line) for line in lines])
    return ledger


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, module_store) -> Iterator[tuple[Ledger, Path]]:
    """The scenario's ledger, once per store (its tests run once per store)."""
    directory = tmp_path_factory.mktemp("scenario") / "ledger"
    with stores.using(module_store):
        ledger = create(directory)
    assert load_history(ledger, SCENARIO) == len(EVENTS)
    yield ledger, directory
    ledger.close()


def read(stack: ExitStack, ledger: Ledger, directory: Path, cut: engine.Cut):
    return stack.enter_context(engine.read_models(ledger.reader, directory, cut))


def table(conn, name: str, *, positions: list[int] | None = None) -> list[dict]:
    """Every row of a table; ``positions`` maps a subset ledger's log positions back."""
    key = {
        "partners": "partner",
        "cases": '"case"',
        "queue": '"case"',
        "queue_changes": "id",
    }[name]
    found = queries.rows(conn, f"SELECT * FROM {name} ORDER BY {key}")
    if positions is not None:
        for row in found:
            for column, value in row.items():
                if column.endswith("_position") and value is not None:
                    row[column] = positions[value - 1]
    return found


# --- 1. the queues, by hand ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fcfs_and_scored(scenario) -> Iterator[dict]:
    ledger, directory = scenario
    with ExitStack() as stack:
        yield {
            "fcfs": read(stack, ledger, directory, engine.Cut(as_of=at(FCFS_TIME))),
            "scored": read(stack, ledger, directory, engine.Cut()),
        }


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("mode", ["fcfs", "scored"])
def test_each_queue_is_model_md_ordering_computed_by_hand(fcfs_and_scored, mode, platform):
    conn = fcfs_and_scored[mode]
    assert queries.mode(conn)[0] == mode
    as_of = at(FCFS_TIME) if mode == "fcfs" else None
    expected = expected_queue(platform, as_of)
    assert len(expected) >= 4
    assert queries.queue(conn, platform) == expected


# The same orders written out. Scores under america-first-2026 (weights 0.4 / 0.3 / 0.3,
# targets 5 % of GDP and $5bn, tiers 0.70 / 0.45), score = 0.4*I + 0.3*S + 0.3*E:
#   POL 0.746  tier 1     KWT 0.6168 tier 2     UKR 0.64   tier 2     DEU 0.465  tier 2
#   AUS 0.4292 tier 3     TWN 0.423  tier 3     ROU 0.4226 tier 3     JPN 0.4198 tier 3
#   SWE 0.41   tier 3     NLD 0.373  tier 3     ESP 0.34   tier 3     EGY 0.3012 tier 3
EXPECTED_ORDER = {
    # fcfs-legacy, as of 2026-02-05: by filed effective_at only
    ("fcfs", "ah-64e"): [
        "EG-B-AHE",  # filed 2019-05-13
        "KU-B-AHE",  # 2019-06-17
        "AT-B-AHE",  # 2021-03-01
        "PL-B-AHA",  # 2022-09-05
    ],
    ("fcfs", "m1a2-sepv3"): [
        "TW-B-ABR",  # filed 2018-11-13
        "AT-B-ABR",  # 2020-06-15
        "PL-B-ABR",  # 2021-07-14
        "RO-B-ABR",  # 2023-04-17
    ],
    ("fcfs", "pac-3-mse"): [
        "PL-B-PAC",  # filed 2022-09-26
        "NE-B-PAC",  # 2023-05-15
        "GY-B-PAC",  # 2024-02-19
        "SW-B-PAC",  # 2024-10-07
        "JA-B-PAC",  # 2025-05-12
        "UP-B-PAC",  # 2025-09-08
        "SP-B-PAC",  # 2025-12-01
    ],
    # america-first-2026, now
    ("scored", "ah-64e"): [
        "PL-B-AHA",  # normal, POL tier 1, 0.746
        "KU-B-AHE",  # normal, KWT tier 2, 0.6168
        "AT-B-AHE",  # normal, AUS tier 3, 0.4292
        "EG-B-AHE",  # normal again since 2026-08-12 (deferred 04-22), EGY tier 3, 0.3012
    ],
    ("scored", "m1a2-sepv3"): [
        "PL-B-ABR",  # POL tier 1, 0.746
        "AT-B-ABR",  # AUS tier 3, 0.4292
        "TW-B-ABR",  # TWN tier 3, 0.423
        "RO-B-ABR",  # ROU tier 3, 0.4226
    ],
    ("scored", "pac-3-mse"): [
        "PL-B-PAC",  # expedited, POL tier 1, 0.746
        "UP-B-PAC",  # expedited, UKR tier 2, 0.64 (its override was revoked 2026-09-30)
        "JA-B-PAC",  # expedited, JPN tier 3, 0.4198
        "GY-B-PAC",  # normal, DEU tier 2, 0.465
        "RO-B-PAC",  # normal, ROU tier 3, 0.4226
        "SW-B-PAC",  # normal, SWE tier 3, 0.41
        "NE-B-PAC",  # normal, NLD tier 3, 0.373
        "SP-B-PAC",  # normal, ESP tier 3, 0.34
    ],
}


@pytest.mark.parametrize(("mode", "platform"), list(EXPECTED_ORDER))
def test_each_queue_in_the_order_written_out(fcfs_and_scored, mode, platform):
    rows = queries.queue(fcfs_and_scored[mode], platform)
    assert [r["case"] for r in rows] == EXPECTED_ORDER[mode, platform]
    if mode == "fcfs":
        assert {(r["tier"], r["score"]) for r in rows} == {(None, None)}


def test_the_partner_scores_written_out(fcfs_and_scored):
    scores = {
        p["partner"]: (p["score"], p["tier"])
        for p in queries.partners(fcfs_and_scored["scored"])
    }
    assert {p: scores[p] for p in ("POL", "KWT", "UKR", "DEU", "AUS", "EGY")} == {
        "POL": (0.746, 1),
        "KWT": (0.6168, 2),
        "UKR": (0.64, 2),
        "DEU": (0.465, 2),
        "AUS": (0.4292, 3),
        "EGY": (0.3012, 3),
    }


def test_estimated_completion_by_hand(fcfs_and_scored):
    # ah-64e: 5.0 units a month (ProductionCapacitySet, line 45, still in force)
    assert EVENTS[44]["platform"] == "ah-64e" and EVENTS[44]["units_per_month"] == 5.0
    assert not [
        e
        for e in EVENTS[45:]
        if e["type"] == "ProductionCapacitySet" and e["platform"] == "ah-64e"
    ]
    rows = queries.queue(fcfs_and_scored["scored"], "ah-64e")
    assert [(r["quantity_left"], r["est_completion_months"]) for r in rows] == [
        (96, 19.2),  # 96 / 5
        (24, 24.0),  # (96 + 24) / 5
        (15, 27.0),  # (120 + 15) / 5
        (43, 35.6),  # (135 + 43) / 5
    ]
    rows = queries.queue(fcfs_and_scored["fcfs"], "ah-64e")
    assert [(r["quantity_left"], r["est_completion_months"]) for r in rows] == [
        (43, 8.6),
        (24, 13.4),
        (23, 18.0),
        (96, 37.2),  # 43/5, 67/5, 90/5, 186/5
    ]


# --- 2. --as-of T equals a fresh ledger of the events effective at or before T ------------

AS_OF = (
    "2019-01-01",
    "2023-06-30",
    "2026-02-05",
    "2026-02-06",
    "2026-03-05",
    "2026-04-01",
    EVENTS[-1]["effective_at"][:10],
)


@pytest.fixture(scope="module", params=AS_OF)
def as_of_pair(request, scenario, module_store, tmp_path_factory) -> Iterator[dict]:
    """The replay as of T on the full ledger, and a fresh ledger of the events until T."""
    ledger, directory = scenario
    t = at(request.param)
    kept = [i for i, e in enumerate(EVENTS, start=1) if effective(e) <= t]
    subset_dir = tmp_path_factory.mktemp("as-of") / "ledger"
    subset = fresh_ledger(module_store, subset_dir, [LINES[i - 1] for i in kept])
    with ExitStack() as stack:
        stack.callback(subset.close)
        yield {
            "t": t,
            "kept": kept,
            "replay": read(stack, ledger, directory, engine.Cut(as_of=t)),
            "fresh": read(stack, subset, subset_dir, engine.Cut()),
        }


@pytest.mark.parametrize("platform", PLATFORMS)
def test_queue_as_of_equals_a_fresh_ledger_of_the_events_until_then(as_of_pair, platform):
    fresh = queries.queue(as_of_pair["fresh"], platform)
    assert queries.queue(as_of_pair["replay"], platform) == fresh
    assert fresh == expected_queue(platform, as_of_pair["t"])


def test_tables_as_of_equal_a_fresh_ledger_of_the_events_until_then(as_of_pair):
    replay, fresh, kept = as_of_pair["replay"], as_of_pair["fresh"], as_of_pair["kept"]
    for name in ("partners", "cases", "queue"):
        expected = table(fresh, name, positions=kept)
        assert expected or name == "queue"
        assert table(replay, name) == expected, name


# --- 3. --known-at equals a fresh ledger of the events recorded until then ----------------

REPRIORITIZED = position_of(
    lambda e: e["type"] == "CaseReprioritized" and e["case"] == "IS-D-KC4"
)
KC4_PLATFORM = next(
    e["platform"] for e in EVENTS if e["type"] == "CaseFiled" and e["case"] == "IS-D-KC4"
)
POLICY_2026 = position_of(
    lambda e: e["type"] == "PriorityPolicyAdopted" and e["policy"] == "america-first-2026"
)


@pytest.fixture(scope="module", params=[POLICY_2026, REPRIORITIZED - 1, REPRIORITIZED])
def known_at_pair(request, scenario, module_store, tmp_path_factory) -> Iterator[dict]:
    ledger, directory = scenario
    n = request.param
    subset_dir = tmp_path_factory.mktemp("known-at") / "ledger"
    subset = fresh_ledger(module_store, subset_dir, LINES[:n])
    with ExitStack() as stack:
        stack.callback(subset.close)
        known_at = at(EVENTS[n - 1]["recorded_at"])
        yield {
            "n": n,
            "replay": read(stack, ledger, directory, engine.Cut(known_at=known_at)),
            "fresh": read(stack, subset, subset_dir, engine.Cut()),
        }


def test_known_at_equals_a_fresh_ledger_of_the_first_lines(known_at_pair):
    replay, fresh = known_at_pair["replay"], known_at_pair["fresh"]
    assert queries.queue(replay, KC4_PLATFORM) == queries.queue(fresh, KC4_PLATFORM)
    for name in ("partners", "cases", "queue", "queue_changes"):
        assert table(replay, name) == table(fresh, name), name


def test_known_at_shows_the_backdated_reprioritization_only_once_recorded(known_at_pair):
    row = next(
        r
        for r in queries.queue(known_at_pair["replay"], KC4_PLATFORM)
        if r["case"] == "IS-D-KC4"
    )
    backdated = EVENTS[REPRIORITIZED - 1]
    assert backdated["effective_at"] < EVENTS[REPRIORITIZED - 2]["recorded_at"]
    recorded = known_at_pair["n"] >= REPRIORITIZED
    assert row["priority_class"] == ("expedited" if recorded else "normal")
    if recorded:
        assert row["position"] == 1


# --- 4. audit diff and explain name the causing events ------------------------------------


def test_diff_across_the_policy_change_names_the_adoption(scenario):
    ledger, directory = scenario
    since = at("2026-02-05T23:59:59Z")
    assert EVENTS[POLICY_2026 - 1]["effective_at"].startswith("2026-02-06")
    with diffs.sides(ledger.reader, directory, since, at("2026-02-06")) as (
        before,
        after,
        changes,
    ):
        moves = audit_queries.diff(before, after, changes, "f-35a")
    old = [r["case"] for r in expected_queue("f-35a", since)]
    new = [r["case"] for r in expected_queue("f-35a", at("2026-02-06"))]
    assert set(old) == set(new)
    moved = {
        c: (old.index(c) + 1, new.index(c) + 1) for c in old if old.index(c) != new.index(c)
    }
    assert len(moved) >= 4
    assert {m["case"]: (m["before"], m["after"]) for m in moves} == moved
    for m in moves:
        assert m["change"] == ("up" if m["after"] < m["before"] else "down")
        assert [(c["position"], c["type"]) for c in m["caused_by"]] == [
            (POLICY_2026, "PriorityPolicyAdopted")
        ], m["case"]
        assert m["caused_by"][0]["actor"] == EVENTS[POLICY_2026 - 1]["actor"]


def test_explain_names_the_event_behind_each_component(scenario):
    ledger, directory = scenario

    def last(predicate) -> int:
        return max(i for i, e in enumerate(EVENTS, start=1) if predicate(e))

    pol = [
        (e["year"], i)
        for i, e in enumerate(EVENTS, start=1)
        if e["type"] == "DefenseSpendingReported" and e["partner"] == "POL"
    ]
    expected = {
        "1. priority class": position_of(
            lambda e: e["type"] == "CaseFiled" and e["case"] == "PL-B-AHA"
        ),
        "2. partner override": None,
        "3. tier": POLICY_2026,
        "4. score": POLICY_2026,
        "   investment I": max(pol)[1],  # the latest year; for the same year, the last
        "   strategic S": last(
            lambda e: e["type"] == "StrategicValueAssessed" and e["partner"] == "POL"
        ),
        "   economic E": last(
            lambda e: e["type"] == "EconomicContributionRecorded" and e["partner"] == "POL"
        ),
        "5. filed": position_of(
            lambda e: e["type"] == "CaseFiled" and e["case"] == "PL-B-AHA"
        ),
        "6. case id": None,
        "capacity": last(
            lambda e: e["type"] == "ProductionCapacitySet" and e["platform"] == "ah-64e"
        ),
    }
    with engine.read_models(ledger.reader, directory, engine.Cut()) as conn:
        explained = audit_queries.explain(conn, "PL-B-AHA")
    got = {c["component"]: c for c in explained["components"]}
    assert {k: c["event_position"] for k, c in got.items()} == expected
    for name, position in expected.items():
        if position is not None:
            assert got[name]["event_type"] == EVENTS[position - 1]["type"], name
    assert got["   investment I"]["event_type"] == "DefenseSpendingReported"
    investment = expected["   investment I"]
    assert investment is not None
    assert EVENTS[investment - 1]["year"] == max(pol)[0]
    assert (explained["mode"], explained["policy"]) == ("scored", "america-first-2026")
    assert (explained["position"], explained["queue_length"]) == (1, 4)
    assert explained["est_completion_months"] == 19.2
