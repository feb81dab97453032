"""Read-model properties checked on random histories (hypothesis).

The read models must depend on the log alone, not on how they were built: caught up after
every append, caught up in small transactions, or rebuilt from scratch, every table and
view holds the same rows. The histories are rich enough to move the queues: partners
whose spending, strategic value, contributions and overrides change (some effective
before facts recorded earlier: backdated), priority policies in both modes adopted at
random effective times, capacity changes, and cases that go some way along their
lifecycle, with reprioritizations, suspensions and cancellations.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain import values
from arms_ledger.ledger.errors import BatchRefused
from arms_ledger.projections import engine
from hypothesis import HealthCheck, event, example, given, settings, target
from hypothesis import strategies as st

from tests.integration.projection_tables import assert_same_read_models

# Property tests over generated histories: about a minute on both stores.
pytestmark = pytest.mark.slow

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Each test runs once per store (tests/stores.py). On PostgreSQL every example makes a
# ledger in a schema of its own and every append is a round trip to the server, so it
# runs fewer examples (the explicit ones always run); the read models are SQLite on both.
EXAMPLES = {"sqlite": SETTINGS.max_examples, "postgresql": 15}

START = date(2020, 1, 1)
DAYS = 2000  # effective times fall in 2020-01-01 .. 2025-06-23, all before now

# code, name, region, notification group, NATO member, Middle East (QME applies)
PARTNERS = (
    ("POL", "Poland", "Europe", "NATO+", True, False),
    ("JPN", "Japan", "Asia", "NATO+", False, False),
    ("SAU", "Saudi Arabia", "Middle East", "other", False, True),
    ("EGY", "Egypt", "Middle East", "other", False, True),
    ("IND", "India", "Asia", "other", False, False),
)
PLATFORMS = ("ah-64e", "pac-3-mse")
WEIGHTS = (
    {"investment": 0.4, "strategic": 0.3, "economic": 0.3},
    {"investment": 0.5, "strategic": 0.25, "economic": 0.25},
    {"investment": 0.2, "strategic": 0.5, "economic": 0.3},
    {"investment": 0.0, "strategic": 1.0, "economic": 0.0},
)
TIERS = (
    {"tier1": 0.7, "tier2": 0.45},
    {"tier1": 0.5, "tier2": 0.2},
    {"tier1": 0.3, "tier2": 0.1},
)
OFFER_USD = 1_000_000  # below every notification threshold drawn here: no notification


def day(n: int) -> str:
    return (START + timedelta(days=n)).isoformat()


def decision(type_: str, at: int, /, **fields) -> dict:
    return {
        "type": type_,
        "actor": "tester",
        "rationale": "random history",
        "effective_at": day(at),
    } | fields


def fact(type_: str, at: int, /, **fields) -> dict:
    return {"type": type_, "actor": "tester", "effective_at": day(at)} | fields


# Effective days on a coarse grid, so that facts of one partner often share a day (the
# log position breaks the tie) and are often backdated before facts recorded earlier.
when = st.integers(0, DAYS // 25).map(lambda k: 25 * k)


# --- setup: partners, platforms, thresholds, maybe a first policy ----------------------


def policy_adopted(draw, at: int) -> dict:
    return decision(
        "PriorityPolicyAdopted",
        at,
        policy=draw(st.sampled_from(("fcfs-legacy", "af-2026", "alt"))),
        mode=draw(st.sampled_from(("fcfs", "scored", "scored"))),
        weights=draw(st.sampled_from(WEIGHTS)),
        tiers=draw(st.sampled_from(TIERS)),
    )


@st.composite
def setups(draw) -> tuple[list[dict], list[str]]:
    partners = draw(
        st.lists(
            st.sampled_from(PARTNERS), min_size=3, max_size=4, unique_by=lambda p: p[0]
        )
    )
    records = [
        fact(
            "PartnerRegistered",
            0,
            partner=code,
            name=name,
            region=region,
            notification_group=group,
            nato_member=nato,
            middle_east=me,
        )
        for code, name, region, group, nato, me in partners
    ]
    for platform in PLATFORMS:
        records.append(
            fact(
                "PlatformListed",
                0,
                platform=platform,
                name=platform.upper(),
                prime="Acme",
                category="Aircraft",
            )
        )
        records.append(
            fact(
                "ProductionCapacitySet",
                0,
                platform=platform,
                units_per_month=draw(st.sampled_from((0.5, 1.0, 2.5, 4.0))),
            )
        )
    if draw(st.booleans()):
        mde = draw(st.sampled_from((2_000_000, 14_000_000, 25_000_000)))
        group = {
            "mde_usd": mde,
            "articles_usd": 4 * mde,
            "construction_usd": 10 * mde,
            "review_days": draw(st.sampled_from((0, 15, 30))),
        }
        records.append(
            decision(
                "NotificationThresholdsSet",
                0,
                policy="aeca-36b",
                groups={"NATO+": group, "other": group},
            )
        )
    if draw(st.integers(0, 3)):  # three times in four; without one the queues are fcfs
        records.append(policy_adopted(draw, draw(when)))
    return records, [p[0] for p in partners]


# --- partner, platform and policy facts: one event each --------------------------------


@st.composite
def facts(draw, partners: list[str]) -> dict:
    partner = draw(st.sampled_from(partners))
    at = draw(when)
    kind = draw(
        st.sampled_from(
            (
                "spending",
                "spending",
                "strategic",
                "strategic",
                "economic",
                "grant",
                "grant",
                "revoke",
                "revoke",
                "policy",
                "capacity",
            )
        )
    )
    if kind == "spending":
        return fact(
            "DefenseSpendingReported",
            at,
            partner=partner,
            source="NATO",
            year=draw(st.integers(2018, 2025)),
            pct_gdp=draw(st.sampled_from((0.8, 1.5, 2.0, 2.5, 3.1, 4.2, 5.5))),
        )
    if kind == "strategic":
        factors = st.lists(
            st.sampled_from(("eastern-flank", "hosts-us-forces")), max_size=2, unique=True
        )
        return decision(
            "StrategicValueAssessed",
            at,
            partner=partner,
            score=draw(st.sampled_from((0.0, 0.2, 0.45, 0.6, 0.9, 1.0))),
            factors=draw(factors),
        )
    if kind == "economic":
        return fact(
            "EconomicContributionRecorded",
            at,
            partner=partner,
            kind=draw(st.sampled_from(("co-production", "advance-payment"))),
            amount_usd=draw(st.sampled_from((10**8, 10**9, 3 * 10**9))),
            description="random contribution",
        )
    if kind == "grant":
        return decision(
            "PriorityOverrideGranted", at, partner=partner, legal_basis="NSPM-10"
        )
    if kind == "revoke":
        return decision("PriorityOverrideRevoked", at, partner=partner)
    if kind == "policy":
        return policy_adopted(draw, at)
    return fact(
        "ProductionCapacitySet",
        at,
        platform=draw(st.sampled_from(PLATFORMS)),
        units_per_month=draw(st.sampled_from((0.0, 0.5, 1.0, 3.0, 6.0))),
    )


# --- cases: each goes some way along its lifecycle, effective in order -----------------

LIFECYCLE = (
    "clear",
    "offer",
    "accept",
    "implement",
    "deliver-part",
    "deliver-rest",
    "close",
)


@st.composite
def case_walks(draw, case: str, platform: str, partners: list[str]) -> list[dict]:
    quantity = draw(st.integers(2, 12))
    part = draw(st.integers(1, quantity - 1))
    steps = ["file", *LIFECYCLE[: draw(st.integers(0, len(LIFECYCLE)))]]
    for _ in range(draw(st.integers(0, 2))):  # reprioritizations anywhere while open
        steps.insert(draw(st.integers(1, len(steps))), "reprioritize")
    if draw(st.integers(0, 4)) == 0:
        steps.insert(draw(st.integers(1, len(steps))), "suspend")
    if steps[-1] != "close" and draw(st.integers(0, 3)) == 0:
        steps.append("cancel")
    at = draw(st.integers(0, 1100))  # filed in 2020-2023; steps follow within days
    records = []
    for step in steps:
        base = {"case": case}
        if step == "file":
            record = fact(
                "CaseFiled",
                at,
                **base,
                partner=draw(st.sampled_from(partners)),
                platform=platform,
                quantity=quantity,
                estimated_value_usd=OFFER_USD,
                channel="FMS",
                mde=False,
            )
        elif step == "clear":
            record = decision("CaseReviewCleared", at, **base, office="DSCA")
        elif step == "offer":
            record = fact("OfferIssued", at, **base, value_usd=OFFER_USD)
        elif step == "accept":
            record = fact("OfferAccepted", at, **base)
        elif step == "implement":
            record = fact("CaseImplemented", at, **base)
        elif step == "deliver-part":
            record = fact("DeliveryRecorded", at, **base, quantity=part)
        elif step == "deliver-rest":
            record = fact("DeliveryRecorded", at, **base, quantity=quantity - part)
        elif step == "close":
            record = fact("CaseClosed", at, **base)
        elif step == "reprioritize":
            record = decision(
                "CaseReprioritized",
                at,
                **base,
                authority="USD(A&S)",
                priority_class=draw(st.sampled_from(values.PRIORITY_CLASSES)),
            )
        elif step == "suspend":
            records.append(decision("CaseSuspended", at, **base))
            at += draw(st.integers(0, 20))
            record = decision("CaseResumed", at, **base)
        else:
            record = decision("CaseCancelled", at, **base, by="purchaser")
        records.append(record)
        at += draw(st.integers(0, 20))  # offers stay open 85 days: acceptance in time
    return records


@st.composite
def histories(draw) -> list[dict]:
    """Setup, then facts and case walks interleaved at random (a case's steps in order)."""
    setup, partners = draw(setups())
    cases = draw(st.integers(5, 8))
    sequences = [  # the cases alternate between the two platforms: two queues of 2-4
        draw(case_walks(f"C{n}", PLATFORMS[n % 2], partners)) for n in range(1, cases + 1)
    ]
    sequences += [[r] for r in draw(st.lists(facts(partners), min_size=12, max_size=40))]
    history = list(setup)
    left = sum(len(s) for s in sequences)
    while left:
        # The next event is the head of the sequence holding the k-th event still to come:
        # facts spread over the whole history, not only before the cases are filed.
        k = draw(st.integers(0, left - 1))
        for sequence in sequences:
            if k < len(sequence):
                break
            k -= len(sequence)
        history.append(sequence.pop(0))
        sequences = [s for s in sequences if s]
        left -= 1
    return history


# --- regressions: histories the properties found, shrunk by hand -----------------------


def _registered(partner: str) -> dict:
    return fact(
        "PartnerRegistered",
        0,
        partner=partner,
        name=partner,
        region="Europe",
        notification_group="NATO+",
    )


def _listed(platform: str) -> dict:
    return fact(
        "PlatformListed",
        0,
        platform=platform,
        name=platform,
        prime="Acme",
        category="Aircraft",
    )


def _filed(case: str, partner: str, platform: str) -> dict:
    return fact(
        "CaseFiled",
        0,
        case=case,
        partner=partner,
        platform=platform,
        quantity=1,
        estimated_value_usd=OFFER_USD,
        channel="FMS",
    )


_POL_SPENDS = fact(
    "DefenseSpendingReported", 0, partner="POL", year=2024, pct_gdp=4.0, source="NATO"
)

# A policy adopted while the (incremental) projector has not loaded the queue yet: JPN's C1
# was filed before POL's C2, and POL spends 4% of GDP. When the scored policy comes in, both
# cases move (their sort keys change); when fcfs comes back, both move back.
POLICY_FLIP = [
    _registered("POL"),
    _registered("JPN"),
    _listed("ah-64e"),
    _POL_SPENDS,
    _filed("C1", "JPN", "ah-64e"),
    _filed("C2", "POL", "ah-64e"),
    decision("PriorityPolicyAdopted", 0, policy="af-2026", mode="scored"),
    decision("PriorityPolicyAdopted", 31, policy="fcfs-legacy", mode="fcfs"),
]

# One partner event moves the partner's cases in two queues: the queue_changes rows must
# come in the same order (row ids) however the projection was built. P1's row is rewritten
# (review cleared) after P2's was first written.
TWO_QUEUES = [
    decision("PriorityPolicyAdopted", 0, policy="af-2026", mode="scored"),
    _registered("POL"),
    _registered("JPN"),
    _listed("ah-64e"),
    _listed("pac-3-mse"),
    _filed("J1", "JPN", "ah-64e"),
    _filed("J2", "JPN", "pac-3-mse"),
    _filed("P1", "POL", "ah-64e"),
    _filed("P2", "POL", "pac-3-mse"),
    decision("CaseReviewCleared", 0, case="P1", office="DSCA"),
    _POL_SPENDS,
]


def decode(record: dict) -> ev.Event:
    return ev.decoder.decode(json.dumps(record))


def append_accepted(ledger, history: list[dict], after_each=None) -> int:
    """Append the records one at a time, skipping those a rule refuses; count the kept."""
    kept = 0
    for record in history:
        try:
            ledger.append([decode(record)])
        except BatchRefused:
            continue
        kept += 1
        if after_each is not None:
            after_each()
    return kept


def report_queue_changes(conn) -> None:
    """How much the queues moved (see ``pytest --hypothesis-show-statistics``)."""
    changes = conn.execute("SELECT count(*) FROM queue_changes").fetchone()[0]
    kinds = {k for (k,) in conn.execute("SELECT DISTINCT change FROM queue_changes")}
    bucket = next(
        b for n, b in ((0, "0"), (9, "1-9"), (29, "10-29"), (10**9, "30+")) if changes <= n
    )
    event(f"queue_changes rows: {bucket}")
    event(f"queue change kinds: {', '.join(sorted(kinds)) or 'none'}")
    target(float(changes), label="queue_changes rows")


def test_caught_up_after_every_append_equals_a_rebuild(store):
    """Once per store; see ``caught_up_after_every_append_equals_a_rebuild_property``."""
    caught_up_after_every_append_equals_a_rebuild_property(EXAMPLES[store])()


def caught_up_after_every_append_equals_a_rebuild_property(max_examples: int):
    """The property, as a hypothesis test of ``max_examples`` random histories."""

    @settings(SETTINGS, max_examples=max_examples)
    @given(histories())
    @example(history=POLICY_FLIP[:-1])  # fcfs -> scored
    @example(history=POLICY_FLIP)  # fcfs -> scored -> fcfs
    @example(history=TWO_QUEUES)
    def check(history):
        """Catching up after every single append gives, table for table and view for
        view, the rows of a rebuild from the whole log: the incremental path (state
        loaded back from the projection database and the store) and the in-memory path
        agree, whatever the order facts were recorded in relative to when they took
        effect."""
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            ledger = create(tmp / "ledger")
            incremental = engine.connect(tmp / "incremental.db")
            try:
                kept = append_accepted(
                    ledger,
                    history,
                    after_each=lambda: engine.catch_up(ledger.reader, incremental),
                )
                assert kept == ledger.head()
                event(f"events kept: {min(kept // 20 * 20, 60)}+")
                assert_a_rebuild_equals(incremental, ledger, tmp, kept)
            finally:
                incremental.close()
                ledger.close()

    return check


def test_catch_up_in_small_transactions_equals_a_rebuild(store):
    """Once per store; see ``catch_up_in_small_transactions_equals_a_rebuild_property``."""
    catch_up_in_small_transactions_equals_a_rebuild_property(EXAMPLES[store])()


def catch_up_in_small_transactions_equals_a_rebuild_property(max_examples: int):
    """The property, as a hypothesis test of ``max_examples`` random histories."""

    @settings(SETTINGS, max_examples=max_examples)
    @given(histories(), st.integers(1, 7))
    def check(history, commit_every):
        """A catch-up of the whole log in transactions of ``commit_every`` events (each
        writing its rows and position together) ends with the rows of a rebuild."""
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            ledger = create(tmp / "ledger")
            chunked = engine.connect(tmp / "chunked.db")
            try:
                kept = append_accepted(ledger, history)
                assert (
                    engine.catch_up(ledger.reader, chunked, commit_every=commit_every)
                    == kept
                )
                assert_a_rebuild_equals(chunked, ledger, tmp, kept)
            finally:
                chunked.close()
                ledger.close()

    return check


def assert_a_rebuild_equals(projected, ledger, tmp: Path, kept: int) -> None:
    """A rebuild of the whole log (in ``tmp``) has exactly the rows of ``projected``."""
    assert engine.rebuild(ledger.reader, tmp / "rebuilt.db") == kept
    rebuilt = engine.connect(tmp / "rebuilt.db")
    try:
        report_queue_changes(rebuilt)
        assert_same_read_models(projected, rebuilt)
    finally:
        rebuilt.close()
