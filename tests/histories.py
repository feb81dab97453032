"""Small, hand-written histories the tests share."""

from __future__ import annotations

import json

from arms_ledger.ledger.domain import authority
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import parse_instant
from arms_ledger.ledger.transparency.note import Signer

T = ev.DEFAULT_THRESHOLDS

# One valid history that uses every event type of docs/domain.md, in an order the rules
# accept.
EVERY_TYPE: list[dict] = [
    {
        "type": "PriorityPolicyAdopted",
        "policy": "fcfs-legacy",
        "mode": "fcfs",
        "actor": "dsca",
        "rationale": "first come, first served",
        "effective_at": "2000-01-01",
    },
    {
        "type": "NotificationThresholdsSet",
        "policy": "aeca-36b",
        "actor": "state.pm-rsat",
        "rationale": "AECA 36(b) as enacted",
        "effective_at": "2000-01-01",
        "groups": json.loads(ev.encoder.encode(T)),
    },
    {
        "type": "PartnerRegistered",
        "partner": "POL",
        "name": "Poland",
        "region": "Europe",
        "notification_group": "NATO+",
        "nato_member": True,
        "actor": "state.pm-rsat",
        "effective_at": "2000-01-01",
    },
    {
        "type": "PartnerRegistered",
        "partner": "SAU",
        "name": "Saudi Arabia",
        "region": "Middle East",
        "notification_group": "other",
        "middle_east": True,
        "actor": "state.pm-rsat",
        "effective_at": "2000-01-01",
    },
    {
        "type": "DefenseSpendingReported",
        "partner": "POL",
        "year": 2024,
        "pct_gdp": 4.12,
        "source": "NATO",
        "actor": "nato.ds",
        "effective_at": "2024-06-17",
    },
    {
        "type": "StrategicValueAssessed",
        "partner": "POL",
        "score": 0.9,
        "factors": ["eastern-flank"],
        "actor": "usd-as.dsca",
        "rationale": "frontline state",
        "effective_at": "2024-06-18",
    },
    {
        "type": "EconomicContributionRecorded",
        "partner": "POL",
        "kind": "co-funded-contract",
        "amount_usd": 2_000_000_000,
        "description": "Apache multi-year contract share",
        "actor": "dsca",
        "effective_at": "2024-06-19",
    },
    {
        "type": "NotificationGroupChanged",
        "partner": "SAU",
        "notification_group": "other",
        "actor": "state.pm-rsat",
        "rationale": "confirmed",
        "effective_at": "2024-06-20",
    },
    {
        "type": "PriorityOverrideGranted",
        "partner": "POL",
        "legal_basis": "NSPM-10",
        "actor": "usd-as",
        "rationale": "war-time resupply",
        "effective_at": "2024-06-21",
    },
    {
        "type": "PriorityOverrideRevoked",
        "partner": "POL",
        "actor": "usd-as",
        "rationale": "resupply complete",
        "effective_at": "2024-06-22",
    },
    {
        "type": "PartnerSuspended",
        "partner": "SAU",
        "actor": "state.pm-rsat",
        "rationale": "review of end use",
        "effective_at": "2024-06-23",
    },
    {
        "type": "PartnerReinstated",
        "partner": "SAU",
        "actor": "state.pm-rsat",
        "rationale": "review closed",
        "effective_at": "2024-06-24",
    },
    {
        "type": "PlatformListed",
        "platform": "ah-64e",
        "name": "AH-64E Apache",
        "prime": "Boeing",
        "category": "Aircraft",
        "actor": "dsca",
        "effective_at": "2000-01-01",
    },
    {
        "type": "ProductionCapacitySet",
        "platform": "ah-64e",
        "units_per_month": 2.5,
        "actor": "dsca",
        "effective_at": "2000-01-01",
    },
    {
        "type": "CatalogPriorityChanged",
        "platform": "ah-64e",
        "prioritized": True,
        "edition": "June 2026 priority sales catalog",
        "actor": "usd-as",
        "rationale": "constrained line",
        "effective_at": "2024-06-25",
    },
    {
        "type": "EEUMDesignationChanged",
        "platform": "ah-64e",
        "designated": True,
        "criteria": "sensitive sensors",
        "actor": "dsca.eum",
        "rationale": "criteria met",
        "effective_at": "2024-06-25",
    },
    {
        "type": "PlatformListed",
        "platform": "old-jet",
        "name": "Old jet",
        "prime": "Acme",
        "category": "Aircraft",
        "actor": "dsca",
        "effective_at": "2000-01-01",
    },
    {
        "type": "PlatformWithdrawn",
        "platform": "old-jet",
        "actor": "dsca",
        "rationale": "out of production",
        "effective_at": "2024-06-26",
    },
    {
        "type": "CaseFiled",
        "case": "PL-1",
        "partner": "POL",
        "platform": "ah-64e",
        "quantity": 4,
        "estimated_value_usd": 500_000_000,
        "channel": "FMS",
        "mde": True,
        "actor": "dsca.cwd",
        "effective_at": "2024-07-01",
    },
    {
        "type": "CaseReviewCleared",
        "case": "PL-1",
        "office": "DSCA",
        "actor": "dsca.cwd",
        "rationale": "LOR complete",
        "effective_at": "2024-07-10",
    },
    {
        "type": "CongressionalReviewStarted",
        "case": "PL-1",
        "actor": "state.pm-rsat",
        "effective_at": "2024-07-11",
    },
    {
        "type": "HoldPlaced",
        "case": "PL-1",
        "office": "HFAC-chair",
        "actor": "hfac.chair",
        "rationale": "questions on end use",
        "effective_at": "2024-07-20",
    },
    {
        "type": "HoldLifted",
        "case": "PL-1",
        "office": "HFAC-chair",
        "actor": "hfac.chair",
        "rationale": "answered",
        "effective_at": "2024-08-01",
    },
    {
        "type": "CongressionalNotified",
        "case": "PL-1",
        "transmittal": "24-01",
        "notified_value_usd": 500_000_000,
        "actor": "state.pm-rsat",
        "effective_at": "2024-08-02",
    },
    {
        "type": "OfferIssued",
        "case": "PL-1",
        "value_usd": 450_000_000,
        "actor": "usasac",
        "effective_at": "2024-08-20",
    },
    {
        "type": "OfferAccepted",
        "case": "PL-1",
        "deposit_usd": 45_000_000,
        "actor": "dfas",
        "effective_at": "2024-09-01",
    },
    {
        "type": "CaseImplemented",
        "case": "PL-1",
        "actor": "usasac",
        "effective_at": "2024-09-02",
    },
    {
        "type": "DeliveryRecorded",
        "case": "PL-1",
        "quantity": 4,
        "actor": "usasac",
        "effective_at": "2025-09-02",
    },
    {
        "type": "EndUseCheckRecorded",
        "case": "PL-1",
        "kind": "eeum-initial-inventory",
        "result": "compliant",
        "actor": "sco.warsaw",
        "effective_at": "2025-10-01",
    },
    {
        "type": "CaseReprioritized",
        "case": "PL-1",
        "priority_class": "expedited",
        "authority": "USD(A&S)",
        "actor": "usd-as",
        "rationale": "closing out",
        "effective_at": "2025-10-02",
    },
    {"type": "CaseClosed", "case": "PL-1", "actor": "usasac", "effective_at": "2025-10-03"},
    {
        "type": "CaseFiled",
        "case": "SA-1",
        "partner": "SAU",
        "platform": "ah-64e",
        "quantity": 10,
        "estimated_value_usd": 1_000_000_000,
        "channel": "FMS",
        "mde": True,
        "actor": "dsca.cwd",
        "effective_at": "2024-07-01",
    },
    {
        "type": "CaseSuspended",
        "case": "SA-1",
        "actor": "state.pm-rsat",
        "rationale": "pending review",
        "effective_at": "2024-07-02",
    },
    {
        "type": "CaseResumed",
        "case": "SA-1",
        "actor": "state.pm-rsat",
        "rationale": "review closed",
        "effective_at": "2024-07-03",
    },
    {
        "type": "EmergencyDeclared",
        "case": "SA-1",
        "actor": "state.secretary",
        "rationale": "regional emergency",
        "effective_at": "2024-07-04",
    },
    {
        "type": "CaseCancelled",
        "case": "SA-1",
        "by": "purchaser",
        "actor": "dsca.cwd",
        "rationale": "purchaser withdrew its LOR",
        "effective_at": "2024-07-05",
    },
    {
        "type": "CaseFiled",
        "case": "PL-2",
        "partner": "POL",
        "platform": "ah-64e",
        "quantity": 1,
        "estimated_value_usd": 5_000_000,
        "channel": "FMS",
        "actor": "dsca.cwd",
        "effective_at": "2024-07-01",
    },
    {
        "type": "CaseReviewCleared",
        "case": "PL-2",
        "office": "DSCA",
        "actor": "dsca.cwd",
        "rationale": "small spares case",
        "effective_at": "2024-07-02",
    },
    {
        "type": "OfferIssued",
        "case": "PL-2",
        "value_usd": 5_000_000,
        "actor": "usasac",
        "effective_at": "2024-07-03",
        "offer_expires_at": "2024-09-26",
    },
    {
        "type": "OfferExpired",
        "case": "PL-2",
        "actor": "usasac",
        "effective_at": "2024-09-26",
    },
]
# A correction of PL-2's offer value, naming the offer by its log position: appended
# after EVERY_TYPE, with which it uses every event type.
CORRECTION: list[dict] = [
    {
        "type": "EventCorrected",
        "case": "PL-2",
        "corrects": 1
        + next(
            i
            for i, r in enumerate(EVERY_TYPE)
            if r["type"] == "OfferIssued" and r["case"] == "PL-2"
        ),
        "corrected": {"value_usd": 4_500_000},
        "actor": "usasac.clerk",
        "rationale": "the LOA's value was mistyped",
    }
]


def official(name: str, seed: int) -> Signer:
    """A test official's key, from a fixed seed (tests only; never a fixture's key)."""
    return Signer(name, bytes([seed]) * 32)


def signed(record: dict, signer: Signer) -> dict:
    """``record`` signed by ``signer`` (effective_at made canonical, as signed)."""
    event = authority.sign_event(
        ev.decoder.decode(json.dumps(record)), signer, parse_instant("2026-01-01")
    )
    return {k: v for k, v in json.loads(ev.encoder.encode(event)).items() if v is not None}


ROOT = official("ledger.root", 1)
KEYS = official("dsca.keys", 2)
KEYS_NEXT = official("dsca.keys", 3)

# The directory's events, then the root named: the ledger enforces authority after it.
DIRECTORY: list[dict] = [
    {
        "type": "OfficialKeyRegistered",
        "official": "dsca.keys",
        "key": str(KEYS.verifier),
        "actor": "dsca",
        "rationale": "key of the keys office",
        "effective_at": "2024-10-01",
    },
    {
        "type": "AuthorityGranted",
        "official": "dsca.keys",
        "authority": "manage-keys",
        "actor": "dsca",
        "rationale": "keeps the keys",
        "effective_at": "2024-10-01",
    },
    {
        "type": "OfficialKeyRotated",
        "official": "dsca.keys",
        "key": str(KEYS_NEXT.verifier),
        "replaces": str(KEYS.verifier),
        "actor": "dsca",
        "rationale": "yearly rotation",
        "effective_at": "2024-10-02",
    },
    {
        "type": "OfficialKeyRevoked",
        "official": "dsca.keys",
        "key": str(KEYS_NEXT.verifier),
        "actor": "dsca",
        "rationale": "left the office",
        "effective_at": "2024-10-03",
    },
    {
        "type": "AuthorityWithdrawn",
        "official": "dsca.keys",
        "authority": "manage-keys",
        "actor": "dsca",
        "rationale": "left the office",
        "effective_at": "2024-10-03",
    },
    signed(
        {
            "type": "AuthorityRootNamed",
            "official": "ledger.root",
            "key": str(ROOT.verifier),
            "actor": "ledger.root",
            "rationale": "authority enforced from here",
            "effective_at": "2024-10-04",
        },
        ROOT,
    ),
]

# Every event type: EVERY_TYPE, a correction of one of its events, and the directory's.
ALL_TYPES: list[dict] = EVERY_TYPE + CORRECTION + DIRECTORY


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def decode(records: list[dict]) -> list[ev.Event]:
    return [ev.decoder.decode(json.dumps(r)) for r in records]
