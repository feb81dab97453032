"""Every event of the ledger: strict msgspec Structs in one tagged union keyed by ``type``.

This module is the public vocabulary of ``docs/domain.md`` (Events): class names are
the ``type`` tags
and are stored with every event, so an event class is never renamed, moved or given a
field without a default. A new meaning gets a new class.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Annotated, ClassVar, Literal, Union

import msgspec
from arms_ledger.ledger.domain.values import (
    TEXT_PATTERN,
    Actor,
    CaseId,
    Fraction,
    NotificationGroup,
    Office,
    PartnerId,
    PlatformId,
    PolicyId,
    PositiveUsd,
    PriorityClass,
    Quantity,
    Text,
    Time,
    Usd,
    _label,
)
from msgspec import UNSET, Meta, UnsetType

# --- the envelope ------------------------------------------------------------------


class Event(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    tag_field="type",
    tag=True,
    forbid_unknown_fields=True,
):
    """The envelope every event carries. ``type`` is the class name."""

    actor: Actor
    rationale: Text | None = None
    reference: Annotated[str, Meta(max_length=500, pattern=TEXT_PATTERN)] | None = None
    effective_at: Time | None = None
    recorded_at: Time | None = None
    idempotency_key: Annotated[str, _label(200)] | None = None
    # A decision's signature by its actor (docs/authority.md): base64 of the key id
    # (4 bytes) and the Ed25519 signature (64 bytes) of ``authority.signed_message``.
    # Left out of the JSON when absent (UNSET), so unsigned events encode as before.
    signature: Annotated[str, Meta(pattern=r"^[A-Za-z0-9+/]{91}=$")] | UnsetType = UNSET

    # Which stream the event belongs to: the name of the field that holds its id.
    STREAM: ClassVar[str] = ""
    # A decision (docs/domain.md, Events: "(D)"): needs a rationale.
    DECISION: ClassVar[bool] = False

    @property
    def stream_id(self) -> str:
        return getattr(self, self.STREAM)

    @property
    def stream(self) -> str:
        """The stream key, e.g. ``case:PL-B-AHA``: the originator id in the store."""
        return f"{self.STREAM}:{self.stream_id}"


class PartnerEvent(Event, frozen=True, kw_only=True):
    STREAM: ClassVar[str] = "partner"
    partner: PartnerId


class PlatformEvent(Event, frozen=True, kw_only=True):
    STREAM: ClassVar[str] = "platform"
    platform: PlatformId


class CaseEvent(Event, frozen=True, kw_only=True):
    STREAM: ClassVar[str] = "case"
    case: CaseId


class PolicyEvent(Event, frozen=True, kw_only=True):
    STREAM: ClassVar[str] = "policy"
    policy: PolicyId


# --- partner ------------------------------------------------------------------------


class PartnerRegistered(PartnerEvent, frozen=True, kw_only=True):
    name: Text
    region: Text
    notification_group: NotificationGroup
    nato_member: bool = False
    middle_east: Annotated[bool, Meta(description="QME certification applies")] = False


class DefenseSpendingReported(PartnerEvent, frozen=True, kw_only=True):
    year: Annotated[int, Meta(ge=1945, le=2100)]
    pct_gdp: Annotated[float, Meta(ge=0.0, le=100.0, description="% of GDP")]
    source: Annotated[str, _label(40, "NATO, SIPRI…")]
    amount_usd: Usd | None = None


class StrategicValueAssessed(PartnerEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    score: Annotated[float, Meta(ge=0.0, le=1.0, description="strategic value, 0-1")]
    factors: tuple[Annotated[str, _label(60)], ...] = ()


class EconomicContributionRecorded(PartnerEvent, frozen=True, kw_only=True):
    kind: Literal[
        "production-investment", "co-production", "advance-payment", "co-funded-contract"
    ]
    amount_usd: PositiveUsd
    description: Text


class NotificationGroupChanged(PartnerEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    notification_group: NotificationGroup


class PriorityOverrideGranted(PartnerEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    legal_basis: Text


class PriorityOverrideRevoked(PartnerEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True


class PartnerSuspended(PartnerEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True


class PartnerReinstated(PartnerEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True


# --- platform -----------------------------------------------------------------------


class PlatformListed(PlatformEvent, frozen=True, kw_only=True):
    name: Text
    prime: Text
    category: Text
    unit_cost_usd: Usd | None = None


class ProductionCapacitySet(PlatformEvent, frozen=True, kw_only=True):
    units_per_month: Annotated[float, Meta(ge=0.0, le=1_000_000.0)]


class CatalogPriorityChanged(PlatformEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    prioritized: bool
    edition: Text


class EEUMDesignationChanged(PlatformEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    designated: bool
    criteria: Text | None = None


class PlatformWithdrawn(PlatformEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True


# --- case ---------------------------------------------------------------------------


class CaseFiled(CaseEvent, frozen=True, kw_only=True):
    partner: PartnerId
    platform: PlatformId
    quantity: Quantity
    estimated_value_usd: Usd
    channel: Literal["FMS", "DCS"]
    mde: Annotated[bool, Meta(description="major defense equipment")] = False
    construction: Annotated[
        bool, Meta(description="design and construction services (own threshold)")
    ] = False


class CaseReviewCleared(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    office: Annotated[
        str,
        _label(60, "implementing agency, DSCA, State"),
    ]


class CongressionalReviewStarted(CaseEvent, frozen=True, kw_only=True):
    pass


class HoldPlaced(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    office: Office


class HoldLifted(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    office: Office


class CongressionalNotified(CaseEvent, frozen=True, kw_only=True):
    transmittal: Annotated[str, _label(40)]
    notified_value_usd: Usd
    qme_certified: bool | None = None


class EmergencyDeclared(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True


# Why a delivery or an offer went to a case while cases ahead of it in its platform's
# queue still waited (docs/monitors.md, Out-of-sequence deliveries and offers). "other"
# needs a ``bypass_note``. Unset, the fields are left out of the event's JSON.
BypassCode = Literal[
    "partner-not-ready", "funding", "export-licence", "production-lot", "other"
]
BYPASS_CODES: tuple[str, ...] = typing.get_args(BypassCode)
BypassNote = Annotated[str, Meta(max_length=2000, pattern=TEXT_PATTERN)]


class OfferIssued(CaseEvent, frozen=True, kw_only=True):
    value_usd: Usd
    offer_expires_at: Time | None = None
    bypass_reason: BypassCode | msgspec.UnsetType = msgspec.UNSET
    bypass_note: BypassNote | msgspec.UnsetType = msgspec.UNSET


class OfferAccepted(CaseEvent, frozen=True, kw_only=True):
    deposit_usd: Usd | None = None


class OfferExpired(CaseEvent, frozen=True, kw_only=True):
    pass


class CaseImplemented(CaseEvent, frozen=True, kw_only=True):
    pass


class DeliveryRecorded(CaseEvent, frozen=True, kw_only=True):
    quantity: Quantity
    bypass_reason: BypassCode | msgspec.UnsetType = msgspec.UNSET
    bypass_note: BypassNote | msgspec.UnsetType = msgspec.UNSET


class EndUseCheckRecorded(CaseEvent, frozen=True, kw_only=True):
    kind: Literal[
        "routine", "eeum-initial-inventory", "eeum-annual-inventory", "physical-security"
    ]
    result: Literal["compliant", "discrepancy", "item-lost"]
    findings: Text | None = None


class CaseSuspended(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True


class CaseResumed(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True


class CaseClosed(CaseEvent, frozen=True, kw_only=True):
    pass


class CaseCancelled(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    by: Literal["purchaser", "us"]


class CaseReprioritized(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    priority_class: PriorityClass
    authority: Text


class EventCorrected(CaseEvent, frozen=True, kw_only=True):
    """A correction of an earlier event of the same case, named by its log position:
    new values for some of its fields, or its retraction (docs/domain.md, Corrections).
    The ledger fills ``of``, ``was`` and ``effective_at`` (the corrected event's) when
    they are not given, and checks them when they are."""

    DECISION: ClassVar[bool] = True
    corrects: Annotated[int, Meta(ge=1, description="log position of the event corrected")]
    corrected: dict[Annotated[str, _label(60)], int] = msgspec.field(default_factory=dict)
    retracted: Annotated[
        bool, Meta(description="the corrected event is withdrawn as never having happened")
    ] = False
    of: Annotated[str, _label(60, "type of the corrected event")] | None = None
    was: dict[Annotated[str, _label(60)], int] | None = None


# --- the directory of officials' keys and authorities (docs/authority.md) -----------

VerifierKey = Annotated[
    str,
    Meta(
        max_length=300,
        pattern=r"^[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}$",
        description="an Ed25519 public key, <official>+<key id>+<base64 key>",
    ),
]
AuthorityName = Literal[
    "assess-partners",
    "grant-overrides",
    "suspend-partners",
    "manage-catalog",
    "clear-reviews",
    "place-holds",
    "declare-emergencies",
    "manage-cases",
    "reprioritize",
    "correct-records",
    "adopt-policy",
    "set-thresholds",
    "manage-keys",
    "grant-authority",
]


class DirectoryEvent(Event, frozen=True, kw_only=True):
    """An event of the one directory stream, ``directory:officials``."""

    STREAM: ClassVar[str] = "directory"
    DECISION: ClassVar[bool] = True
    directory: Literal["officials"] = "officials"
    official: Actor


class AuthorityRootNamed(DirectoryEvent, frozen=True, kw_only=True):
    key: VerifierKey


class OfficialKeyRegistered(DirectoryEvent, frozen=True, kw_only=True):
    key: VerifierKey


class OfficialKeyRevoked(DirectoryEvent, frozen=True, kw_only=True):
    key: VerifierKey


class OfficialKeyRotated(DirectoryEvent, frozen=True, kw_only=True):
    key: VerifierKey
    replaces: VerifierKey


class AuthorityGranted(DirectoryEvent, frozen=True, kw_only=True):
    authority: AuthorityName


class AuthorityWithdrawn(DirectoryEvent, frozen=True, kw_only=True):
    authority: AuthorityName


# --- policy -------------------------------------------------------------------------


class Weights(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    investment: Fraction = 0.4
    strategic: Fraction = 0.3
    economic: Fraction = 0.3


class Targets(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pct_gdp: Annotated[float, Meta(gt=0.0, le=100.0)] = 5.0
    economic_usd: PositiveUsd = 5_000_000_000


class Tiers(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tier1: Fraction = 0.70
    tier2: Fraction = 0.45


class PriorityPolicyAdopted(PolicyEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    mode: Literal["fcfs", "scored"]
    name: Text | None = None
    legal_basis: Text | None = None
    weights: Weights = Weights()
    targets: Targets = Targets()
    tiers: Tiers = Tiers()


class GroupThresholds(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    mde_usd: Usd
    articles_usd: Usd
    construction_usd: Usd
    review_days: Annotated[int, Meta(ge=0, le=365)]


class Thresholds(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename={"nato_plus": "NATO+"}
):
    nato_plus: GroupThresholds
    other: GroupThresholds

    def group(self, name: str) -> GroupThresholds:
        return self.nato_plus if name == "NATO+" else self.other


# AECA 36(b) defaults (docs/domain.md, Rule 3).
DEFAULT_THRESHOLDS = Thresholds(
    nato_plus=GroupThresholds(
        mde_usd=25_000_000,
        articles_usd=100_000_000,
        construction_usd=300_000_000,
        review_days=15,
    ),
    other=GroupThresholds(
        mde_usd=14_000_000,
        articles_usd=50_000_000,
        construction_usd=200_000_000,
        review_days=30,
    ),
)


class NotificationThresholdsSet(PolicyEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    groups: Thresholds


LedgerEvent = Union[  # noqa: UP007 - a Union object is what msgspec decodes into
    PartnerRegistered,
    DefenseSpendingReported,
    StrategicValueAssessed,
    EconomicContributionRecorded,
    NotificationGroupChanged,
    PriorityOverrideGranted,
    PriorityOverrideRevoked,
    PartnerSuspended,
    PartnerReinstated,
    PlatformListed,
    ProductionCapacitySet,
    CatalogPriorityChanged,
    EEUMDesignationChanged,
    PlatformWithdrawn,
    CaseFiled,
    CaseReviewCleared,
    CongressionalReviewStarted,
    HoldPlaced,
    HoldLifted,
    CongressionalNotified,
    EmergencyDeclared,
    OfferIssued,
    OfferAccepted,
    OfferExpired,
    CaseImplemented,
    DeliveryRecorded,
    EndUseCheckRecorded,
    CaseSuspended,
    CaseResumed,
    CaseClosed,
    CaseCancelled,
    CaseReprioritized,
    EventCorrected,
    PriorityPolicyAdopted,
    NotificationThresholdsSet,
    AuthorityRootNamed,
    OfficialKeyRegistered,
    OfficialKeyRevoked,
    OfficialKeyRotated,
    AuthorityGranted,
    AuthorityWithdrawn,
]

EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls for cls in typing.get_args(LedgerEvent)
}
STREAM_KINDS: tuple[str, ...] = ("partner", "platform", "case", "policy", "directory")


def resolve_stream(ident: str, exists: Callable[[str], bool], where: str = "") -> str:
    """``case:PL-B-AHA`` as given, or the one kind of stream that has id ``PL-B-AHA``.

    ``exists(key)`` tells whether a stream has events; ``where`` ends the not-found
    message (e.g. " (at this time)").
    """
    from arms_ledger.ledger.errors import LedgerError

    kind, sep, _ = ident.partition(":")
    if sep and kind not in STREAM_KINDS:
        raise LedgerError(
            f"unknown stream kind {kind!r}; use one of {', '.join(STREAM_KINDS)}"
        )
    candidates = [ident] if sep else [f"{k}:{ident}" for k in STREAM_KINDS]
    found = [key for key in candidates if exists(key)]
    if not found:
        raise LedgerError(
            f"no partner, platform, case or policy {ident!r} in the ledger{where}; "
            "`arms-ledger log` lists what there is"
        )
    if len(found) > 1:
        raise LedgerError(f"{ident!r} is ambiguous: say {' or '.join(found)}")
    return found[0]


ENVELOPE_FIELDS: tuple[str, ...] = (
    "actor",
    "rationale",
    "reference",
    "effective_at",
    "recorded_at",
    "idempotency_key",
    "signature",
)

# Built once and reused (msgspec perf tips).
decoder = msgspec.json.Decoder(LedgerEvent)
encoder = msgspec.json.Encoder()


def payload_fields(cls: type[Event]) -> tuple[str, ...]:
    """The fields of an event type that are not part of the envelope, in order."""
    return tuple(f for f in cls.__struct_fields__ if f not in ENVELOPE_FIELDS)


def input_schema() -> dict:
    """JSON Schema of one line of ``append`` input (``recorded_at`` is refused there)."""
    schema = msgspec.json.schema(LedgerEvent)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "arms-ledger event (one JSON Lines record)"
    for name in EVENT_TYPES:
        definition = schema["$defs"][name]
        definition["properties"].pop("recorded_at", None)
        definition["description"] = f"{name}: a {EVENT_TYPES[name].STREAM} event" + (
            " (a decision: rationale required)" if EVENT_TYPES[name].DECISION else ""
        )
        if EVENT_TYPES[name].DECISION:
            definition["required"] = sorted({*definition.get("required", []), "rationale"})
    return schema
