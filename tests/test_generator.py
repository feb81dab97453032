"""The synthetic history generator: deterministic, valid under the rules, near the sizes."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from arms_ledger.ledger.domain import events as ev

from fixtures.tools import generate as g

SMALL: dict[str, Any] = {"partners": 20, "open_cases": 300, "events": 20_000}


@pytest.fixture(scope="module")
def small() -> list[bytes]:
    return list(g.generate(seed=2026, **SMALL))


@pytest.fixture(scope="module")
def small_recorded() -> list[bytes]:
    return list(g.generate(seed=2026, with_recorded_at=True, **SMALL))


def test_same_arguments_give_the_same_bytes(small):
    assert list(g.generate(seed=2026, **SMALL)) == small


def test_another_seed_gives_another_history(small):
    other = list(g.generate(seed=2027, **SMALL))
    assert other != small
    assert other[:2] == small[:2]  # the policies do not depend on the seed


def test_every_event_is_accepted_by_the_rules(small):
    counts = g.validate(small)
    assert counts["events"] == len(small)


def test_sizes_are_near_the_request(small):
    counts = g.validate(small)
    assert abs(counts["events"] - SMALL["events"]) <= 0.05 * SMALL["events"]
    assert counts["partners"] == SMALL["partners"]
    assert 30 <= counts["platforms"] <= 60
    assert counts["open_cases"] == SMALL["open_cases"]
    closed = counts["stage:closed"] + counts["stage:cancelled"] + counts["stage:expired"]
    assert closed == counts["cases"] - SMALL["open_cases"]
    assert counts["stage:closed"] > 10 * counts["stage:cancelled"] > 0


def test_summary_matches_the_output(small):
    gen = g.HistoryGenerator(seed=2026, **SMALL)
    summary = gen.prepare()
    assert summary["events"] == len(small)
    assert summary["open_cases"] == SMALL["open_cases"]


def test_history_covers_the_lifecycle(small):
    types = {json.loads(line)["type"] for line in small}
    for name in (
        "PartnerRegistered",
        "DefenseSpendingReported",
        "StrategicValueAssessed",
        "EconomicContributionRecorded",
        "PlatformListed",
        "ProductionCapacitySet",
        "CatalogPriorityChanged",
        "EEUMDesignationChanged",
        "PriorityPolicyAdopted",
        "NotificationThresholdsSet",
        "CaseFiled",
        "CaseReviewCleared",
        "CongressionalReviewStarted",
        "HoldPlaced",
        "HoldLifted",
        "CongressionalNotified",
        "OfferIssued",
        "OfferAccepted",
        "OfferExpired",
        "CaseImplemented",
        "DeliveryRecorded",
        "EndUseCheckRecorded",
        "CaseSuspended",
        "CaseResumed",
        "CaseClosed",
        "CaseCancelled",
        "CaseReprioritized",
    ):
        assert name in types, name


def test_envelope(small):
    last = ""
    spans = {"first": "", "last": ""}
    for line in small:
        assert b"null" not in line and b"recorded_at" not in line
        record = json.loads(line)
        cls = ev.EVENT_TYPES[record["type"]]
        assert record["actor"]
        if cls.DECISION:
            assert record["rationale"].strip()
        if cls is ev.OfferIssued:
            assert record["offer_expires_at"]
        assert record["effective_at"] >= last
        last = record["effective_at"]
        spans["first"] = spans["first"] or last
    spans["last"] = last
    assert spans["first"].startswith("2006-01") and spans["last"].startswith("2026-11")


def test_policies_in_force(small):
    policies = [json.loads(line) for line in small if b'"PriorityPolicyAdopted"' in line]
    assert [(p["policy"], p["mode"], p["effective_at"][:10]) for p in policies] == [
        ("fcfs-legacy", "fcfs", "2006-01-02"),
        ("america-first-2026", "scored", "2026-02-06"),
    ]


def test_recorded_at_is_strictly_increasing(small, small_recorded):
    stamps = [json.loads(line)["recorded_at"] for line in small_recorded]
    assert all(len(s) == 27 and s.endswith("Z") for s in stamps)
    assert all(a < b for a, b in itertools.pairwise(stamps))
    # The same history otherwise, and still valid when normalized at those instants.
    stripped = [json.loads(line) for line in small_recorded[:500]]
    for record in stripped:
        del record["recorded_at"]
    assert stripped == [json.loads(line) for line in small[:500]]
    assert g.validate(small_recorded[:3000])["events"] == 3000


def test_validate_reports_a_refused_event(small):
    bad = [line for line in small if b'"CaseFiled"' not in line]
    with pytest.raises(g.Bad, match="not filed"):
        g.validate(bad)


def test_command_line(tmp_path, capsys, small):
    out = tmp_path / "history.jsonl"
    assert (
        g.main(
            [
                "--seed",
                "2026",
                "--partners",
                "20",
                "--open-cases",
                "300",
                "--events",
                "20000",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert out.read_bytes() == b"\n".join(small) + b"\n"
    assert "open_cases=300" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        g.main(["--help"])
    assert exit_.value.code == 0
    assert "--with-recorded-at" in capsys.readouterr().out


def test_business_time_round_trips():
    for b in (0, 1, g.BUS_DAY - 1, g.BUS_DAY, g.WEEK - 1, g.WEEK, 123_456_789):
        wall = g.bus_wall(b)
        assert g.wall_bus_ceil(wall) == b == g.wall_bus_floor(wall)
        assert g.bus_text(b) == g.wall_text(wall)
    saturday_noon = g.bus_wall(g.WEEK - 1) + 86400
    assert g.wall_bus_ceil(saturday_noon) == g.WEEK
    assert g.wall_bus_floor(saturday_noon) == g.WEEK - 1
