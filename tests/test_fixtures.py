"""Golden replay of the fixture scenario, and facts it must hold (research.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from arms_ledger.cli.demo import SCENARIO
from arms_ledger.cli.write import load_history, read_events
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.records import Recorded
from arms_ledger.ledger.domain.streams import describe

from tests import stores

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "fixtures" / "expected" / "scenario_streams.json"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, module_store) -> Iterator[Ledger]:
    """The scenario's ledger, once per store (its tests run once per store)."""
    with stores.using(module_store):
        ledger = create(tmp_path_factory.mktemp("scenario") / "ledger")
    load_history(ledger, SCENARIO)
    yield ledger
    ledger.close()


def stream(ledger: Ledger, key: str) -> list[Recorded]:
    records = ledger.stream_records(key)
    assert records, f"{key} is not in the scenario"
    return records


def types(records: list[Recorded]) -> list[str]:
    return [type(r.event).__name__ for r in records]


def streams_state(ledger: Ledger) -> dict:
    keys = sorted({r.stream for r in ledger.read()})
    return json.loads(json.dumps({key: describe(ledger.load_stream(key)) for key in keys}))


def test_the_scenario_replays_to_the_golden_state(scenario):
    state = streams_state(scenario)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
    assert state == json.loads(GOLDEN.read_text()), (
        "replay differs from fixtures/expected; if the change is intended, "
        "rerun with UPDATE_GOLDEN=1"
    )


def test_the_scenario_is_what_its_builder_writes():
    built = subprocess.run(
        [sys.executable, "-m", "fixtures.tools.build_scenario", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout + built.stderr


def test_every_line_is_valid_through_append_as_well(ledger):
    """Without its recorded_at, every line is accepted by `append` (one batch)."""
    events = [
        msgspec.structs.replace(e, recorded_at=None)
        for _, e in read_events(SCENARIO.read_bytes().splitlines())
    ]
    assert len(ledger.append(events).positions) == len(events) > 600


def test_recorded_times_strictly_increase_and_lag_effective_times(scenario):
    records = list(scenario.read())
    stamps = [r.event.recorded_at for r in records]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    late = [
        r
        for r in records
        if ev.DEFAULT_THRESHOLDS and r.event.recorded_at[:10] > r.event.effective_at[:10]
    ]
    assert late  # recorded after they took effect, as a real ledger would be


def test_poland_apache_was_notified_before_its_offer(scenario):
    records = stream(scenario, "case:PL-B-AHA")
    kinds = types(records)
    assert kinds.index("CongressionalNotified") < kinds.index("OfferIssued")
    notified = records[kinds.index("CongressionalNotified")].event
    assert (notified.effective_at or "").startswith("2023-08-21")
    filed = records[0].event
    assert isinstance(filed, ev.CaseFiled)
    assert (filed.partner, filed.platform, filed.quantity) == ("POL", "ah-64e", 96)


def test_turkey_f16_was_held_then_notified(scenario):
    records = stream(scenario, "case:TK-D-F16")
    kinds = types(records)
    assert (
        kinds.index("HoldPlaced")
        < kinds.index("HoldLifted")
        < kinds.index("CongressionalNotified")
    )
    held = records[kinds.index("HoldPlaced")].event
    assert isinstance(held, ev.HoldPlaced) and held.office == "SFRC-chair"
    assert (
        records[kinds.index("CongressionalNotified")].event.effective_at or ""
    ).startswith("2024-01-26")


def test_india_mq9b_hold_was_lifted_before_notification(scenario):
    kinds = types(stream(scenario, "case:IN-P-MQ9"))
    assert kinds.index("HoldLifted") < kinds.index("CongressionalNotified")


def test_partners_carry_nato_and_sipri_figures(scenario):
    reports = [
        r.event
        for r in stream(scenario, "partner:POL")
        if isinstance(r.event, ev.DefenseSpendingReported)
    ]
    figures = {(e.year, e.source, e.pct_gdp) for e in reports}
    assert {(2024, "SIPRI", 4.2), (2025, "NATO", 4.3)} <= figures
    assert any(
        e.year == 2024 and e.source.startswith("NATO") and e.pct_gdp == 4.12
        for e in reports
    )
    registered = {r.stream for r in scenario.read(types=["PartnerRegistered"])}
    for code in (
        "POL",
        "LTU",
        "TUR",
        "JPN",
        "KOR",
        "ISR",
        "SAU",
        "ARE",
        "IND",
        "TWN",
        "UKR",
        "CHE",
    ):
        assert f"partner:{code}" in registered
    assert "partner:USA" not in registered  # the seller is not a partner


def test_every_platform_has_a_production_capacity(scenario):
    listed = {r.stream for r in scenario.read(types=["PlatformListed"])}
    with_capacity = {r.stream for r in scenario.read(types=["ProductionCapacitySet"])}
    assert len(listed) >= 25 and listed == with_capacity


def test_the_policies_the_scenario_is_about(scenario):
    adopted = {
        r.event.policy: r.event for r in scenario.read(types=["PriorityPolicyAdopted"])
    }
    assert adopted["fcfs-legacy"].mode == "fcfs"
    scored = adopted["america-first-2026"]
    assert (scored.mode, scored.legal_basis) == ("scored", "E.O. 14383")
    assert scored.effective_at.startswith("2026-02-06")
    catalog = [r.event for r in scenario.read(types=["CatalogPriorityChanged"])]
    assert catalog and all(e.effective_at.startswith("2026-06") for e in catalog)
    eeum = [r.event for r in scenario.read(types=["EEUMDesignationChanged"])]
    assert any(e.effective_at.startswith("2026-05") for e in eeum)


def test_the_incidents_the_next_issues_need(scenario):
    kinds = {type(r.event).__name__ for r in scenario.read()}
    assert {
        "EmergencyDeclared",
        "OfferExpired",
        "CaseCancelled",
        "CaseReprioritized",
        "EconomicContributionRecorded",
        "PriorityOverrideGranted",
    } <= kinds
    cancelled = [r.event for r in scenario.read(types=["CaseCancelled"])]
    assert any(e.by == "purchaser" for e in cancelled)
    assert len(list(scenario.read(types=["CaseReprioritized"]))) >= 3
    # a Middle East notification (not Israel) without the QME certification
    middle_east = {
        r.event.partner
        for r in scenario.read(types=["PartnerRegistered"])
        if r.event.middle_east and r.event.partner != "ISR"
    }
    cases = {r.event.case: r.event.partner for r in scenario.read(types=["CaseFiled"])}
    assert any(
        cases[r.event.case] in middle_east and not r.event.qme_certified
        for r in scenario.read(types=["CongressionalNotified"])
    )


def test_contested_platforms_have_several_open_cases(scenario):
    open_by_platform: dict[str, set[str]] = {}
    for r in scenario.read(types=["CaseFiled"]):
        state = scenario.load_stream(r.stream).case
        if state.stage not in ("closed", "cancelled", "expired") and state.quantity_left:
            open_by_platform.setdefault(state.platform, set()).add(state.partner)
    for platform in ("ah-64e", "pac-3-mse", "f-35a", "m1a2-sepv3"):
        assert len(open_by_platform.get(platform, ())) >= 3, platform
