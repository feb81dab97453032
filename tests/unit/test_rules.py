"""The rules 1-5 of docs/domain.md as pure decisions: no database anywhere in this file."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import ClassVar

import pytest
from arms_ledger.ledger.app.batch import MemoryWorld
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import format_instant, format_recorded
from arms_ledger.ledger.domain.intake import complete_correction, find_duplicate, normalize
from arms_ledger.ledger.domain.rules import decide, partner_at
from arms_ledger.ledger.domain.streams import describe
from arms_ledger.ledger.errors import Invalid, Refused

from tests.histories import ALL_TYPES, EVERY_TYPE

CLOCK = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def event(record: dict) -> ev.Event:
    return ev.decoder.decode(json.dumps(record))


def intake(record: dict, at: datetime, world: MemoryWorld) -> ev.Event:
    """The record as the ledger decides it: normalized, a correction completed."""
    given = event(record)
    e = normalize(given, at)
    return complete_correction(e, given.effective_at is not None, world)


def build(records: list[dict]) -> MemoryWorld:
    world = MemoryWorld()
    for i, record in enumerate(records):
        e = intake(record, CLOCK + timedelta(microseconds=i), world)
        decide(e, world.stream(e.stream), world)
        world.apply(e)
    return world


def refusal(world: MemoryWorld, record: dict) -> Refused:
    e = intake(record, CLOCK + timedelta(seconds=1), world)
    with pytest.raises(Refused) as caught:
        decide(e, world.stream(e.stream), world)
    return caught.value


def accept(world: MemoryWorld, record: dict) -> None:
    e = intake(record, CLOCK + timedelta(seconds=1), world)
    decide(e, world.stream(e.stream), world)
    world.apply(e)


POLAND = {
    "type": "PartnerRegistered",
    "partner": "POL",
    "name": "Poland",
    "region": "Europe",
    "notification_group": "NATO+",
    "actor": "state",
    "effective_at": "2000-01-01",
}
INDIA = {
    "type": "PartnerRegistered",
    "partner": "IND",
    "name": "India",
    "region": "South Asia",
    "notification_group": "other",
    "actor": "state",
    "effective_at": "2000-01-01",
}
APACHE = {
    "type": "PlatformListed",
    "platform": "ah-64e",
    "name": "AH-64E",
    "prime": "Boeing",
    "category": "Aircraft",
    "actor": "dsca",
    "effective_at": "2000-01-01",
}


def case(**changes) -> dict:
    return {
        "type": "CaseFiled",
        "case": "C1",
        "partner": "POL",
        "platform": "ah-64e",
        "quantity": 10,
        "estimated_value_usd": 1_000_000_000,
        "channel": "FMS",
        "mde": True,
        "actor": "dsca",
        "effective_at": "2023-01-01",
    } | changes


def stage_of(world: MemoryWorld, key: str) -> str:
    case = world.stream(key).case
    assert case is not None, f"{key} was never filed"
    return case.stage


def step(type_: str, at: str, **fields) -> dict:
    record = {"type": type_, "case": "C1", "actor": "dsca", "effective_at": at} | fields
    if ev.EVENT_TYPES[type_].DECISION:
        record.setdefault("rationale", "because")
    return record


CLEARED = [
    POLAND,
    INDIA,
    APACHE,
    case(),
    step("CaseReviewCleared", "2023-02-01", office="DSCA"),
]


def test_every_event_type_is_accepted_in_a_valid_history():
    world = build(ALL_TYPES)
    assert {type(e).__name__ for s in world.streams() for e in s.events} == set(
        ev.EVENT_TYPES
    )
    assert stage_of(world, "case:PL-1") == "closed"


class TestRule1References:
    def test_case_needs_a_registered_partner(self):
        r = refusal(build([APACHE]), case())
        assert r.rule == "1"
        assert str(r) == (
            "refused by rule 1 (references): partner POL is not registered; "
            "append PartnerRegistered for it first"
        )

    def test_case_needs_a_listed_platform(self):
        r = refusal(build([POLAND]), case())
        assert str(r).endswith(
            "platform ah-64e is not listed; append PlatformListed for it first"
        )

    def test_no_new_case_for_a_suspended_partner(self):
        world = build(
            [
                POLAND,
                APACHE,
                {
                    "type": "PartnerSuspended",
                    "partner": "POL",
                    "actor": "state",
                    "rationale": "sanctions",
                    "effective_at": "2022-06-01",
                },
            ]
        )
        r = refusal(world, case())
        assert "partner POL is suspended on 2023-01-01" in str(r)
        # a case effective before the suspension is still accepted
        accept(world, case(effective_at="2022-01-01"))

    def test_no_new_case_for_a_withdrawn_platform(self):
        world = build(
            [
                POLAND,
                APACHE,
                {
                    "type": "PlatformWithdrawn",
                    "platform": "ah-64e",
                    "actor": "dsca",
                    "rationale": "line closed",
                    "effective_at": "2022-06-01",
                },
            ]
        )
        assert "platform ah-64e is withdrawn on 2023-01-01" in str(refusal(world, case()))

    def test_events_of_an_unknown_case_are_refused(self):
        r = refusal(build([POLAND, APACHE]), step("CaseImplemented", "2023-01-01"))
        assert str(r).endswith("case C1 is not filed; append CaseFiled for it first")

    def test_a_partner_is_registered_once(self):
        assert "already registered" in str(refusal(build([POLAND]), POLAND))


class TestPartnerFactsInForce:
    """A partner's toggles are judged at the event's effective time, latest effective first
    (as the read models have them), so a backdated event lands where it belongs."""

    def fact(self, type_: str, at: str) -> dict:
        return {
            "type": type_,
            "partner": "POL",
            "actor": "state",
            "rationale": "why",
            "effective_at": at,
        } | (
            {"legal_basis": "22 U.S.C. 2776"} if type_ == "PriorityOverrideGranted" else {}
        )

    def test_a_revocation_dated_before_the_grant_is_refused(self):
        world = build([POLAND, self.fact("PriorityOverrideGranted", "2024-06-01")])
        assert str(refusal(world, self.fact("PriorityOverrideRevoked", "2023-01-01"))) == (
            "refused by rule 2 (order): PriorityOverrideRevoked: partner POL has no "
            "priority override in force on 2023-01-01"
        )

    def test_the_latest_effective_fact_wins_whatever_the_recording_order(self):
        world = build(
            [
                POLAND,
                self.fact("PartnerSuspended", "2025-03-01"),
                self.fact("PartnerReinstated", "2025-04-01"),
            ]
        )
        # recorded last, effective in between: the partner was suspended on 2025-03-15
        assert "not suspended on 2025-02-01" in str(
            refusal(world, self.fact("PartnerReinstated", "2025-02-01"))
        )
        assert partner_at(world.stream("partner:POL"), None).is_suspended is False
        assert partner_at(
            world.stream("partner:POL"), CLOCK.replace(2025, 3, 15)
        ).is_suspended


class TestRule2CaseOrder:
    def test_out_of_order_event_is_refused_with_the_next_step(self):
        r = refusal(build([POLAND, APACHE, case()]), step("OfferAccepted", "2023-02-01"))
        assert r.rule == "2"
        assert str(r).endswith(
            "OfferAccepted cannot follow stage filed of case C1; next is CaseReviewCleared"
        )

    def test_a_case_is_filed_once(self):
        assert "case C1 is already filed" in str(
            refusal(build([POLAND, APACHE, case()]), case())
        )

    def test_effective_times_of_a_case_do_not_go_back(self):
        r = refusal(build(CLEARED), step("CongressionalReviewStarted", "2023-01-15"))
        assert "effective_at 2023-01-15 is before the case's previous event" in str(r)

    def test_no_event_after_cancellation(self):
        world = build([*CLEARED, step("CaseCancelled", "2023-03-01", by="purchaser")])
        r = refusal(world, step("CongressionalReviewStarted", "2023-03-02"))
        assert str(r).endswith(
            "case C1 is cancelled; CongressionalReviewStarted cannot follow"
        )

    def test_suspension_returns_to_the_stage_it_interrupted(self):
        world = build([*CLEARED, step("CaseSuspended", "2023-03-01")])
        assert "cannot follow stage suspended" in str(
            refusal(world, step("CongressionalReviewStarted", "2023-03-02"))
        )
        accept(world, step("CaseResumed", "2023-03-03"))
        assert stage_of(world, "case:C1") == "review-cleared"

    def test_close_only_when_fully_delivered(self):
        world = build(
            [
                POLAND,
                APACHE,
                case(estimated_value_usd=1_000_000, mde=False),
                step("CaseReviewCleared", "2023-02-01", office="DSCA"),
                step("OfferIssued", "2023-03-01", value_usd=1_000_000),
                step("OfferAccepted", "2023-03-02"),
                step("CaseImplemented", "2023-03-03"),
                step("DeliveryRecorded", "2023-04-01", quantity=4),
            ]
        )
        assert str(refusal(world, step("CaseClosed", "2023-05-01"))).endswith(
            "case C1 closes once fully delivered: 4 of 10 delivered "
            "(cancel it with CaseCancelled instead)"
        )

    def test_a_hold_can_only_be_lifted_by_its_office(self):
        world = build(
            [
                *CLEARED,
                step("CongressionalReviewStarted", "2023-02-02"),
                step("HoldPlaced", "2023-02-03", office="SFRC-chair"),
            ]
        )
        assert str(
            refusal(world, step("HoldLifted", "2023-02-04", office="HFAC-chair"))
        ).endswith("HFAC-chair has no hold on case C1 (held by SFRC-chair)")


class TestRule3CongressionalNotification:
    REVIEW: ClassVar[list[dict]] = [
        *CLEARED,
        step("CongressionalReviewStarted", "2023-02-02"),
    ]

    def test_offer_above_threshold_needs_notification(self):
        r = refusal(
            build(CLEARED), step("OfferIssued", "2023-03-01", value_usd=900_000_000)
        )
        assert r.rule == "3"
        assert str(r) == (
            "refused by rule 3 (congressional notification): an offer of $900,000,000 to "
            "POL "
            "meets the NATO+ major defense equipment threshold of $25,000,000 in force on "
            "2023-03-01: append CongressionalNotified first"
        )

    def test_offer_below_threshold_needs_no_notification(self):
        accept(build(CLEARED), step("OfferIssued", "2023-03-01", value_usd=24_999_999))

    def test_articles_threshold_applies_to_non_mde_cases(self):
        world = build(
            [
                POLAND,
                APACHE,
                case(mde=False),
                step("CaseReviewCleared", "2023-02-01", office="DSCA"),
            ]
        )
        accept(world, step("OfferIssued", "2023-03-01", value_usd=99_000_000))

    def test_review_period_must_elapse(self):
        world = build(
            [
                *CLEARED,
                step(
                    "CongressionalNotified",
                    "2023-03-01",
                    transmittal="23-1",
                    notified_value_usd=900_000_000,
                ),
            ]
        )
        r = refusal(world, step("OfferIssued", "2023-03-10", value_usd=800_000_000))
        assert (
            "its 15-day review period began with CongressionalNotified on 2023-03-01 "
            "and ends on 2023-03-16" in str(r)
        )
        accept(world, step("OfferIssued", "2023-03-16", value_usd=800_000_000))

    def test_other_partners_have_lower_thresholds_and_30_days(self):
        world = build(
            [
                POLAND,
                INDIA,
                APACHE,
                case(partner="IND"),
                step("CaseReviewCleared", "2023-02-01", office="DSCA"),
                step(
                    "CongressionalNotified",
                    "2023-03-01",
                    transmittal="23-2",
                    notified_value_usd=20_000_000,
                ),
            ]
        )
        r = refusal(world, step("OfferIssued", "2023-03-20", value_usd=15_000_000))
        assert "other major defense equipment threshold of $14,000,000" in str(r)
        assert "30-day review period" in str(r)

    def test_emergency_waives_the_review_period(self):
        world = build(
            [
                *CLEARED,
                step("EmergencyDeclared", "2023-02-20"),
                step(
                    "CongressionalNotified",
                    "2023-03-01",
                    transmittal="23-1",
                    notified_value_usd=900_000_000,
                ),
            ]
        )
        accept(world, step("OfferIssued", "2023-03-01", value_usd=800_000_000))

    def test_an_unlifted_hold_blocks_notification(self):
        world = build([*self.REVIEW, step("HoldPlaced", "2023-02-03", office="SFRC-chair")])
        r = refusal(
            world,
            step(
                "CongressionalNotified",
                "2023-03-01",
                transmittal="23-1",
                notified_value_usd=900_000_000,
            ),
        )
        assert str(r).endswith(
            "case C1 is held by SFRC-chair; an unlifted hold blocks CongressionalNotified "
            "— "
            "append HoldLifted first"
        )
        accept(world, step("HoldLifted", "2023-03-02", office="SFRC-chair"))
        accept(
            world,
            step(
                "CongressionalNotified",
                "2023-03-03",
                transmittal="23-1",
                notified_value_usd=900_000_000,
            ),
        )

    def test_thresholds_in_force_at_the_offer_date_apply(self):
        raised = {
            "type": "NotificationThresholdsSet",
            "policy": "aeca-36b",
            "actor": "state",
            "rationale": "H.R. 3613 enacted",
            "effective_at": "2023-02-15",
            "groups": {
                "NATO+": {
                    "mde_usd": 1_000_000_000,
                    "articles_usd": 2_000_000_000,
                    "construction_usd": 3_000_000_000,
                    "review_days": 15,
                },
                "other": {
                    "mde_usd": 14_000_000,
                    "articles_usd": 50_000_000,
                    "construction_usd": 200_000_000,
                    "review_days": 30,
                },
            },
        }
        world = build([raised, *CLEARED])
        # before the new thresholds took effect the old ones apply
        assert "$25,000,000 in force on 2023-02-01" in str(
            refusal(world, step("OfferIssued", "2023-02-01", value_usd=900_000_000))
        )
        accept(world, step("OfferIssued", "2023-03-01", value_usd=900_000_000))

    def test_the_partners_group_in_force_at_the_offer_date_applies(self):
        world = build(
            [
                INDIA,
                APACHE,
                case(partner="IND"),
                step("CaseReviewCleared", "2023-02-01", office="DSCA"),
                {
                    "type": "NotificationGroupChanged",
                    "partner": "IND",
                    "notification_group": "NATO+",
                    "actor": "state",
                    "rationale": "statute amended",
                    "effective_at": "2023-02-10",
                },
            ]
        )
        accept(world, step("OfferIssued", "2023-03-01", value_usd=20_000_000))


class TestRule4OffersAndDeliveries:
    OFFERED: ClassVar[list[dict]] = [
        POLAND,
        APACHE,
        case(estimated_value_usd=1_000_000, mde=False),
        step("CaseReviewCleared", "2023-02-01", office="DSCA"),
        step("OfferIssued", "2023-03-01", value_usd=1_000_000),
    ]

    def test_offer_expires_85_days_after_it_is_issued_by_default(self):
        world = build(self.OFFERED)
        offer = world.stream("case:C1").events[-1]
        assert isinstance(offer, ev.OfferIssued)
        assert offer.offer_expires_at == "2023-05-25T00:00:00Z"

    def test_acceptance_only_by_the_expiry(self):
        world = build(self.OFFERED)
        r = refusal(world, step("OfferAccepted", "2023-05-26"))
        assert r.rule == "4"
        assert str(r).endswith(
            "the offer for case C1 expired at 2023-05-25; acceptance on 2023-05-26 is too "
            "late (record OfferExpired)"
        )
        accept(world, step("OfferAccepted", "2023-05-25"))

    def test_an_open_offer_cannot_expire_early(self):
        r = refusal(build(self.OFFERED), step("OfferExpired", "2023-04-01"))
        assert "is open until 2023-05-25" in str(r)

    def test_deliveries_only_after_implementation(self):
        world = build([*self.OFFERED, step("OfferAccepted", "2023-03-02")])
        r = refusal(world, step("DeliveryRecorded", "2023-04-01", quantity=1))
        assert r.rule == "4"
        assert str(r).endswith(
            "deliveries only after CaseImplemented; case C1 is at stage accepted"
        )

    def test_deliveries_never_exceed_the_quantity(self):
        world = build(
            [
                *self.OFFERED,
                step("OfferAccepted", "2023-03-02"),
                step("CaseImplemented", "2023-03-03"),
                step("DeliveryRecorded", "2023-04-01", quantity=6),
            ]
        )
        r = refusal(world, step("DeliveryRecorded", "2023-05-01", quantity=5))
        assert str(r).endswith(
            "a delivery of 5 would exceed the quantity of case C1: 6 of 10 delivered, 4 "
            "left"
        )
        accept(world, step("DeliveryRecorded", "2023-05-01", quantity=4))
        accept(world, step("CaseClosed", "2023-06-01"))


class TestRule5Rationale:
    @pytest.mark.parametrize(
        "name", [n for n, cls in ev.EVENT_TYPES.items() if cls.DECISION]
    )
    def test_every_decision_needs_a_rationale(self, name):
        record = next(r for r in ALL_TYPES if r["type"] == name)
        index = ALL_TYPES.index(record)
        world = build(ALL_TYPES[:index])
        r = refusal(world, {k: v for k, v in record.items() if k != "rationale"})
        assert r.rule == "5"
        assert str(r).startswith(
            f"refused by rule 5 (decisions carry a rationale): {name} is a decision"
        )

    def test_a_blank_rationale_is_no_rationale(self):
        world = build(CLEARED)
        assert (
            refusal(world, step("CaseSuspended", "2023-03-01", rationale="  ")).rule == "5"
        )

    def test_actor_is_required_by_the_schema(self):
        with pytest.raises(Exception, match="missing required field `actor`"):
            ev.decoder.decode(b'{"type":"CaseClosed","case":"C1"}')


class TestNormalization:
    def test_recorded_at_is_refused_on_input(self):
        with pytest.raises(Invalid, match="recorded_at is set by the ledger"):
            normalize(event(case(recorded_at="2020-01-01")), CLOCK)

    def test_effective_at_defaults_to_the_recording_time(self):
        e = normalize(
            event({k: v for k, v in case().items() if k != "effective_at"}), CLOCK
        )
        assert (e.effective_at, e.recorded_at) == (
            "2026-11-21T12:00:00Z",
            "2026-11-21T12:00:00.000000Z",
        )

    def test_times_are_made_canonical_utc(self):
        e = normalize(event(case(effective_at="2023-01-01T05:00:00+02:00")), CLOCK)
        assert e.effective_at == "2023-01-01T03:00:00Z"

    def test_a_bad_time_names_the_field_and_the_format(self):
        with pytest.raises(Invalid) as caught:
            normalize(event(case(effective_at="2023-13-45")), CLOCK)
        assert str(caught.value) == (
            "effective_at '2023-13-45' is not an RFC 3339 date or datetime; "
            "use e.g. 2026-02-06 or 2026-02-06T14:30:00Z"
        )

    def test_an_effective_time_after_the_recording_is_refused(self):
        # The live read models are "as of now": a fact takes effect before it is logged.
        assert normalize(event(case(effective_at="2026-11-21T12:00:00Z")), CLOCK)
        with pytest.raises(Invalid) as caught:
            normalize(event(case(effective_at="2026-11-22")), CLOCK)
        assert str(caught.value) == (
            "effective_at 2026-11-22T00:00:00Z is after the time of recording "
            "(2026-11-21T12:00:00.000000Z); the ledger records what has taken effect — "
            "append it once it has"
        )


class TestIdempotency:
    def test_same_key_same_event_is_a_duplicate(self):
        world = build([POLAND, APACHE, case(idempotency_key="lor-1")])
        again = normalize(event(case(idempotency_key="lor-1")), CLOCK + timedelta(days=1))
        assert find_duplicate(world.stream("case:C1"), again, explicit_time=True) == 1

    def test_same_key_without_effective_time_matches_its_first_recording(self):
        record = {
            k: v for k, v in case(idempotency_key="lor-1").items() if k != "effective_at"
        }
        world = build([POLAND, APACHE, record])
        again = normalize(event(record), CLOCK + timedelta(days=1))
        assert find_duplicate(world.stream("case:C1"), again, explicit_time=False) == 1

    def test_same_key_different_event_is_refused(self):
        world = build([POLAND, APACHE, case(idempotency_key="lor-1")])
        other = normalize(event(case(idempotency_key="lor-1", quantity=11)), CLOCK)
        with pytest.raises(Refused, match="already used for a different event"):
            find_duplicate(world.stream("case:C1"), other, explicit_time=True)


class TestPolicy:
    def test_weights_must_add_up_to_one(self):
        r = refusal(
            MemoryWorld(),
            {
                "type": "PriorityPolicyAdopted",
                "policy": "p",
                "mode": "scored",
                "actor": "a",
                "rationale": "r",
                "weights": {"investment": 0.5, "strategic": 0.5, "economic": 0.5},
            },
        )
        assert r.rule == "policy"

    def test_defaults_are_those_of_model_md(self):
        e = event(
            {
                "type": "PriorityPolicyAdopted",
                "policy": "p",
                "mode": "scored",
                "actor": "a",
                "rationale": "r",
            }
        )
        assert isinstance(e, ev.PriorityPolicyAdopted)
        assert (e.weights.investment, e.weights.strategic, e.weights.economic) == (
            0.4,
            0.3,
            0.3,
        )
        assert (e.targets.pct_gdp, e.targets.economic_usd) == (5.0, 5_000_000_000)
        assert (e.tiers.tier1, e.tiers.tier2) == (0.70, 0.45)


def test_describe_shows_the_partner_report_in_force():
    world = build(EVERY_TYPE)
    state = describe(world.stream("partner:POL"))
    assert state["pct_gdp"] == 4.12 and state["pct_gdp_year"] == 2024
    assert state["strategic_score"] == 0.9
    assert state["economic_contributions_usd"] == 2_000_000_000


@pytest.mark.parametrize(
    ("value", "instant_text", "recorded_text"),
    [
        (
            datetime(2023, 1, 1, tzinfo=UTC),
            "2023-01-01T00:00:00Z",
            "2023-01-01T00:00:00.000000Z",
        ),
        (
            datetime(2023, 1, 1, 5, 6, 7, 89, tzinfo=UTC),
            "2023-01-01T05:06:07.000089Z",
            "2023-01-01T05:06:07.000089Z",
        ),
        (
            datetime(2023, 1, 1, 2, tzinfo=timezone(timedelta(hours=3))),
            "2022-12-31T23:00:00Z",
            "2022-12-31T23:00:00.000000Z",
        ),
    ],
)
def test_canonical_time_text(value, instant_text, recorded_text):
    assert (format_instant(value), format_recorded(value)) == (instant_text, recorded_text)
