"""The monitors' rules (ledger.domain.monitors and the out-of-sequence flag of
ledger.domain.oversight): unit tests and properties that hold for every history
(hypothesis); the flag through the projector, on logs in memory."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import Any

import pytest
from arms_ledger.ledger.app.batch import MemoryWorld
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain import monitors
from arms_ledger.ledger.domain.clock import instant
from arms_ledger.ledger.domain.intake import normalize
from arms_ledger.ledger.domain.rules import decide
from arms_ledger.ledger.errors import Refused
from arms_ledger.projections import engine
from arms_ledger.projections.engine import Cut
from arms_ledger.projections.source import InMemoryLog
from hypothesis import given, settings
from hypothesis import strategies as st

DAY = timedelta(days=1)


def t(day: int) -> str:
    """Day ``day`` of 2024 as a stored instant."""
    return (instant("2024-01-01T00:00:00Z") + day * DAY).isoformat().replace("+00:00", "Z")


def reference() -> list[ev.Event]:
    return [
        ev.PartnerRegistered(
            actor="dsca",
            partner="POL",
            name="Poland",
            region="Europe",
            notification_group="NATO+",
            effective_at=t(0),
        ),
        ev.PartnerRegistered(
            actor="dsca",
            partner="SAU",
            name="Saudi Arabia",
            region="Middle East",
            notification_group="other",
            middle_east=True,
            effective_at=t(0),
        ),
        ev.PlatformListed(
            actor="dsca",
            platform="javelin",
            name="Javelin",
            prime="RTX",
            category="missile",
            effective_at=t(0),
        ),
    ]


def cleared(
    case: str, filed_on: int, cleared_on: int, *, partner: str, quantity: int, value: int
) -> list[ev.Event]:
    """A case of ``partner``'s for Javelins, filed on ``filed_on`` and its review
    cleared by DSCA on ``cleared_on``."""
    return [
        ev.CaseFiled(
            actor="usasac",
            case=case,
            partner=partner,
            platform="javelin",
            quantity=quantity,
            estimated_value_usd=value,
            channel="FMS",
            effective_at=t(filed_on),
        ),
        ev.CaseReviewCleared(
            actor="dsca",
            case=case,
            office="DSCA",
            rationale="ok",
            effective_at=t(cleared_on),
        ),
    ]


def offered(case: str, day: int, expires: int) -> list[ev.Event]:
    """A case of Poland's, offered on ``day``, its offer open until ``expires``."""
    return [
        *cleared(case, day, day, partner="POL", quantity=10, value=1_000_000),
        ev.OfferIssued(
            actor="dsca",
            case=case,
            value_usd=1_000_000,
            effective_at=t(day),
            offer_expires_at=t(expires),
        ),
    ]


def logged(events: list[ev.Event]) -> list[monitors.Logged]:
    return list(enumerate(events, start=1))


def test_a_formal_review_period_runs_for_the_groups_days_then_ends():
    events = [
        *reference(),
        *cleared("SR-1", 1, 2, partner="SAU", quantity=5, value=90_000_000),
        ev.CongressionalNotified(
            actor="dsca",
            case="SR-1",
            transmittal="24-01",
            notified_value_usd=90_000_000,
            qme_certified=True,
            effective_at=t(10),
        ),
    ]
    running = monitors.deadlines(logged(events), instant(t(20)))
    assert [(j.status, j.deadline.kind, j.deadline.due) for j in running] == [
        ("due", "review-period-ends", instant(t(40)))  # 30 days for "other"
    ]
    assert running[0].deadline.positions == (6,)
    assert monitors.deadlines(logged(events), instant(t(40))) == []


def test_a_notification_without_qme_certification_is_overdue_from_its_date():
    events = [
        *reference(),
        *cleared("SR-1", 1, 2, partner="SAU", quantity=5, value=90_000_000),
        ev.CongressionalNotified(
            actor="dsca",
            case="SR-1",
            transmittal="24-01",
            notified_value_usd=90_000_000,
            effective_at=t(10),
        ),
    ]
    found = monitors.deadlines(logged(events), instant(t(11)))
    assert [(j.status, j.deadline.kind) for j in found] == [
        ("overdue", "qme-certification"),
        ("due", "review-period-ends"),
    ]


def test_within_limits_what_is_due_but_never_what_is_overdue():
    events = [*reference(), *offered("A", 1, 5), *offered("B", 1, 50)]
    at = instant(t(10))
    assert [
        (j.status, j.deadline.case)
        for j in monitors.deadlines(logged(events), at, timedelta(days=30))
    ] == [("overdue", "A")]
    assert [
        (j.status, j.deadline.case) for j in monitors.deadlines(logged(events), at)
    ] == [("overdue", "A"), ("due", "B")]


def test_an_accepted_offer_has_no_clock():
    events = [
        *reference(),
        *offered("A", 1, 50),
        ev.OfferAccepted(actor="sco", case="A", effective_at=t(3)),
    ]
    assert monitors.deadlines(logged(events), instant(t(10))) == []


@settings(max_examples=60, deadline=None)
@given(
    offers=st.lists(
        st.tuples(st.integers(0, 200), st.integers(1, 200), st.booleans()),
        max_size=6,
    ),
    at=st.integers(0, 450),
)
def test_deadlines_judged_as_of_t_list_exactly_what_is_due_after_t(offers, at):
    """Offers issued on random days, open for random lengths, some accepted the day
    after: judged at T, the due are exactly the open offers expiring after T, the
    overdue exactly those that expired by T."""
    events: list[ev.Event] = [*reference()]
    for n, (day, length, accepted) in enumerate(offers):
        events += offered(f"C{n}", day, day + length)
        if accepted:
            events.append(
                ev.OfferAccepted(actor="sco", case=f"C{n}", effective_at=t(day + 1))
            )
    when = instant(t(at))
    found = monitors.deadlines(logged(events), when)
    open_then = [
        (f"C{n}", day + length)
        for n, (day, length, accepted) in enumerate(offers)
        if day <= at and not (accepted and day + 1 <= at)
    ]
    assert sorted((j.deadline.case, j.status) for j in found) == sorted(
        (case, "due" if expires > at else "overdue") for case, expires in open_then
    )
    assert all(j.deadline.due > when for j in found if j.status == "due")


def spending(day: int, lag: int) -> ev.Event:
    """A spending report recorded on ``day``, effective ``lag`` days before."""
    return ev.DefenseSpendingReported(
        actor="dsca",
        partner="POL",
        year=2024,
        pct_gdp=4.0,
        source="NATO",
        effective_at=t(day - lag),
        recorded_at=t(day),
    )


@settings(max_examples=80, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 30), min_size=1, max_size=12),
    cut=st.data(),
)
def test_no_backdated_events_means_no_retroactive_changes(gaps, cut):
    """Every event takes effect when it is recorded: between any two checkpoints, none
    took effect before the earlier one."""
    days = [sum(gaps[: n + 1]) for n in range(len(gaps))]
    events = logged([spending(d, 0) for d in days])
    earlier = cut.draw(st.integers(1, len(events)))
    later = cut.draw(st.integers(earlier, len(events)))
    taken = instant(t(days[earlier - 1]))
    assert monitors.retroactive(events, earlier, taken, later) == []


def test_an_event_recorded_after_a_checkpoint_effective_before_it_is_retroactive():
    events = logged([spending(10, 0), spending(20, 0), spending(30, 15)])
    assert monitors.retroactive(events, 2, instant(t(20)), 3) == [events[2]]
    assert monitors.retroactive(events, 1, instant(t(10)), 3) == []


def test_moved_lists_the_cases_whose_place_differs():
    before = {("f-35a", "A"): 1, ("f-35a", "B"): 2, ("f-35a", "C"): 3}
    after = {("f-35a", "B"): 1, ("f-35a", "A"): 2, ("f-35a", "D"): 3}
    assert monitors.moved(before, after) == [
        ("f-35a", "B", 2, 1),
        ("f-35a", "A", 1, 2),
        ("f-35a", "C", 3, None),
        ("f-35a", "D", None, 3),
    ]


# --- out-of-sequence deliveries and offers ----------------------------------------------


def implemented(case: str, day: int, quantity: int = 10) -> list[ev.Event]:
    """A case of Poland's, filed on ``day`` and implemented the same day."""
    return [
        *cleared(case, day, day, partner="POL", quantity=quantity, value=1_000_000),
        ev.OfferIssued(
            actor="dsca.cwd",
            case=case,
            value_usd=1_000_000,
            effective_at=t(day),
            offer_expires_at=t(day + 80),
        ),
        ev.OfferAccepted(actor="sco", case=case, effective_at=t(day)),
        ev.CaseImplemented(actor="dfas", case=case, effective_at=t(day)),
    ]


def deliver(case: str, day: int, quantity: int, **bypass: Any) -> ev.DeliveryRecorded:
    return ev.DeliveryRecorded(
        actor="usasac", case=case, quantity=quantity, effective_at=t(day), **bypass
    )


def flags_of(events: list[ev.Event]) -> list[tuple[int, str]]:
    """The (position, kind) of every flag the projector raises on the log."""
    log = InMemoryLog(events)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    engine.replay(log, conn, Cut())
    return conn.execute("SELECT event_position, kind FROM event_flags").fetchall()


def world_of(events: list[ev.Event]) -> MemoryWorld:
    world = MemoryWorld()
    for n, e in enumerate(events):
        e = normalize(e, instant(t(400)) + n * timedelta(microseconds=1))
        decide(e, world.stream(e.stream), world)
        world.apply(e)
    return world


def test_other_needs_a_note_and_a_note_needs_a_reason():
    world = world_of([*reference(), *implemented("A", 1)])
    for fields, message in (
        (
            {"bypass_reason": "other"},
            'bypass_reason "other" needs a bypass_note saying what the reason was (or '
            "use one of the other codes)",
        ),
        (
            {"bypass_reason": "other", "bypass_note": "  "},
            'bypass_reason "other" needs a bypass_note saying what the reason was (or '
            "use one of the other codes)",
        ),
        (
            {"bypass_note": "late"},
            "bypass_note explains a bypass_reason: give bypass_reason too (one of "
            "partner-not-ready, funding, export-licence, production-lot, other)",
        ),
    ):
        e = normalize(deliver("A", 5, 1, **fields), instant(t(401)))
        with pytest.raises(Refused) as caught:
            decide(e, world.stream(e.stream), world)
        assert str(caught.value) == f"refused by coded bypass reasons: {message}"
    ok = normalize(
        deliver("A", 5, 1, bypass_reason="other", bypass_note="x"), instant(t(401))
    )
    decide(ok, world.stream(ok.stream), world)


def test_a_delivery_past_a_waiting_case_is_flagged_unless_coded():
    events = [*reference(), *implemented("A", 1), *implemented("B", 2)]
    uncoded = [*events, deliver("B", 5, 1)]
    assert flags_of(uncoded) == [(len(uncoded), "out-of-sequence")]
    coded = [*events, deliver("B", 5, 1, bypass_reason="production-lot")]
    assert flags_of(coded) == []
    found = monitors.skips(list(enumerate(coded, start=1)), [])
    assert found == [monitors.Skip(len(coded), "production-lot", "usasac")]


@settings(max_examples=25, deadline=None)
@given(
    quantities=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    sizes=st.lists(st.integers(1, 4), max_size=12),
)
def test_a_delivery_always_to_the_head_of_the_queue_is_never_out_of_sequence(
    quantities, sizes
):
    events: list[ev.Event] = [*reference()]
    left = {}
    for n, quantity in enumerate(quantities):
        events += implemented(f"C{n}", n + 1, quantity)
        left[f"C{n}"] = quantity
    day = 30
    for size in sizes:
        head = next((c for c in left if left[c]), None)  # fcfs: the earliest filed
        if head is None:
            break
        amount = min(size, left[head])
        left[head] -= amount
        day += 1
        events.append(deliver(head, day, amount))
    world_of(events)  # every event is one the rules accept
    assert flags_of(events) == []


# --- reconciliation and threshold splitting ----------------------------------------------


def filed(case: str, day: int, value: int, partner: str = "SAU") -> ev.CaseFiled:
    return ev.CaseFiled(
        actor="usasac",
        case=case,
        partner=partner,
        platform="javelin",
        quantity=5,
        estimated_value_usd=value,
        channel="FMS",
        mde=True,
        effective_at=t(day),
    )


def test_cases_each_below_the_threshold_together_above_it_within_a_year_are_split():
    events = [
        *reference(),
        filed("A", 1, 9_000_000),
        filed("B", 200, 9_000_000),
        filed("C", 600, 9_000_000),  # more than 365 days after B's group began
        filed("D", 10, 9_000_000, partner="POL"),  # NATO+: $25M, not reached
    ]
    found = monitors.splitting(monitors.fold(logged(events)))
    assert [(f.cases, f.positions) for f in found] == [(("A", "B"), (4, 5))]
    assert found[0].detail == (
        "2 javelin cases filed within 365 days, each below the major defense equipment "
        "threshold of $14,000,000, together $18,000,000"
    )


def test_reconcile_matches_by_partner_and_nearest_date():
    events = [
        *reference(),
        filed("A", 1, 90_000_000),
        ev.CaseReviewCleared(
            actor="dsca", case="A", office="DSCA", rationale="ok", effective_at=t(2)
        ),
        ev.CongressionalNotified(
            actor="dsca",
            case="A",
            transmittal="24-01",
            notified_value_usd=90_000_000,
            qme_certified=True,
            effective_at=t(10),
        ),
    ]
    h = monitors.fold(logged(events))
    day = instant(t(12)).date()
    row = monitors.Published(2, None, day, "SAU", "Saudi Arabia", "x", 95_000_000)
    assert monitors.reconcile(h, [row]) == [
        monitors.Finding(
            "differs",
            "SAU",
            ("A",),
            2,
            (6,),
            f"24-01: date {instant(t(10)).date()}, published {day}; value $90,000,000, "
            "published $95,000,000",
        )
    ]
    far = row._replace(day=instant(t(60)).date())
    assert [f.kind for f in monitors.reconcile(h, [far])] == ["published-not-recorded"]


@pytest.mark.parametrize(
    ("category", "name", "expected"),
    [
        ("Armoured vehicles", "M1A2 SEPv3 Abrams", "I battle tanks"),
        ("Armoured vehicles", "Stryker", "II armoured combat vehicles"),
        ("Artillery", "HIMARS (M142)", "III large-calibre artillery systems"),
        (
            "Aircraft",
            "F-35A Lightning II",
            "IV combat aircraft and unmanned combat aerial vehicles",
        ),
        ("Aircraft", "AH-64E Apache", "V attack helicopters"),
        ("Aircraft", "KC-46A Pegasus", None),
        ("Aircraft", "CH-47F Block II Chinook", None),
        ("Missiles", "Javelin", "VII missiles and missile launchers"),
        (
            "Air defence systems",
            "NASAMS (fire units)",
            "VII missiles and missile launchers",
        ),
        ("Sensors", "LTAMDS radar", None),
    ],
)
def test_unroca_categories(category, name, expected):
    assert monitors.unroca_category(category, name) == expected
