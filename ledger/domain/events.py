"""Every event of the ledger: strict msgspec Structs in one tagged union keyed by ``type``.

This module is the public vocabulary of ``docs/domain.md`` (Events): class names are
the ``type`` tags
and are stored with every event, so an event class is never renamed, moved or given a
field without a default. A new meaning gets a new class.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, Union

import msgspec
from arms_ledger.ledger.domain.values import (
    TEXT_PATTERN,
    TIME_FORMAT,
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
    doc,
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
    rationale: (
        Annotated[Text, doc("why; required on a decision, optional otherwise")] | None
    ) = None
    reference: (
        Annotated[
            str,
            Meta(max_length=500, pattern=TEXT_PATTERN),
            doc("a transmittal number, a document id, an address"),
        ]
        | None
    ) = None
    effective_at: (
        Annotated[Time, doc("when it took effect; default: when recorded, never after")]
        | None
    ) = None
    recorded_at: Time | None = None
    idempotency_key: (
        Annotated[
            str, _label(200, "the same key appended twice in one stream is written once")
        ]
        | None
    ) = None
    # A decision's signature by its actor (docs/authority.md): base64 of the key id
    # (4 bytes) and the Ed25519 signature (64 bytes) of ``authority.signed_message``.
    # Left out of the JSON when absent (UNSET), so unsigned events encode as before.
    signature: (
        Annotated[
            str,
            Meta(
                pattern=r"^[A-Za-z0-9+/]{91}=$",
                description="a decision's Ed25519 signature by its actor (base64)",
            ),
        ]
        | UnsetType
    ) = UNSET

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
        return f"{self.STREAM}:{getattr(self, self.STREAM)}"


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
    name: Annotated[Text, doc("the partner's name")]
    region: Annotated[Text, doc("its region (Europe, Indo-Pacific…)")]
    notification_group: Annotated[
        NotificationGroup, doc("the group whose notification thresholds apply")
    ]
    nato_member: Annotated[bool, doc("a NATO member")] = False
    middle_east: Annotated[bool, Meta(description="QME certification applies")] = False


class DefenseSpendingReported(PartnerEvent, frozen=True, kw_only=True):
    year: Annotated[int, Meta(ge=1945, le=2100, description="the year reported")]
    pct_gdp: Annotated[
        float, Meta(ge=0.0, le=100.0, description="defense spending, % of GDP")
    ]
    source: Annotated[str, _label(40, "who reported it: NATO, SIPRI…")]
    amount_usd: Annotated[Usd, doc("defense spending")] | None = None


class StrategicValueAssessed(PartnerEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    score: Annotated[float, Meta(ge=0.0, le=1.0, description="strategic value, 0-1")]
    factors: Annotated[
        tuple[Annotated[str, _label(60)], ...], doc("what the assessment weighed")
    ] = ()


class EconomicContributionRecorded(PartnerEvent, frozen=True, kw_only=True):
    kind: Annotated[
        Literal[
            "production-investment",
            "co-production",
            "advance-payment",
            "co-funded-contract",
        ],
        doc("the kind of contribution"),
    ]
    amount_usd: Annotated[PositiveUsd, doc("its amount")]
    description: Annotated[Text, doc("what it is")]


class NotificationGroupChanged(PartnerEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    notification_group: Annotated[
        NotificationGroup, doc("the group whose notification thresholds apply")
    ]


class PriorityOverrideGranted(PartnerEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    legal_basis: Annotated[Text, doc("the authority the override rests on")]


class PriorityOverrideRevoked(PartnerEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True


class PartnerSuspended(PartnerEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True


class PartnerReinstated(PartnerEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True


# --- platform -----------------------------------------------------------------------


class PlatformListed(PlatformEvent, frozen=True, kw_only=True):
    name: Annotated[Text, doc("the platform's name")]
    prime: Annotated[Text, doc("its prime contractor")]
    category: Annotated[Text, doc("its category (aircraft, missile defense…)")]
    unit_cost_usd: Annotated[Usd, doc("the cost of one unit")] | None = None


class ProductionCapacitySet(PlatformEvent, frozen=True, kw_only=True):
    units_per_month: Annotated[
        float, Meta(ge=0.0, le=1_000_000.0, description="units produced a month")
    ]


class CatalogPriorityChanged(PlatformEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    prioritized: Annotated[bool, doc("in the priority catalog (true) or out of it")]
    edition: Annotated[Text, doc("the catalog's edition")]


class EEUMDesignationChanged(PlatformEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    designated: Annotated[
        bool, doc("designated for enhanced end-use monitoring (true) or not")
    ]
    criteria: Annotated[Text, doc("the criteria the designation meets")] | None = None


class PlatformWithdrawn(PlatformEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True


# --- case ---------------------------------------------------------------------------


class CaseFiled(CaseEvent, frozen=True, kw_only=True):
    partner: Annotated[PartnerId, doc("the partner that requests")]
    platform: Annotated[PlatformId, doc("the platform requested")]
    quantity: Annotated[Quantity, doc("the units requested")]
    estimated_value_usd: Annotated[Usd, doc("the case's estimated value")]
    channel: Annotated[
        Literal["FMS", "DCS"], doc("Foreign Military Sale or Direct Commercial Sale")
    ]
    mde: Annotated[bool, Meta(description="major defense equipment")] = False
    construction: Annotated[
        bool, Meta(description="design and construction services (own threshold)")
    ] = False


class CaseReviewCleared(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    office: Annotated[
        str,
        _label(60, "the office that cleared it: implementing agency, DSCA, State"),
    ]


class CongressionalReviewStarted(CaseEvent, frozen=True, kw_only=True):
    pass


class HoldPlaced(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    office: Annotated[Office, doc("the committee office that places the hold")]


class HoldLifted(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    office: Annotated[Office, doc("the committee office that lifts its hold")]


class CongressionalNotified(CaseEvent, frozen=True, kw_only=True):
    transmittal: Annotated[str, _label(40, "the transmittal number")]
    notified_value_usd: Annotated[Usd, doc("the value notified")]
    qme_certified: (
        Annotated[bool, doc("Israel's qualitative military edge certified")] | None
    ) = None


class EmergencyDeclared(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True


# Why a delivery or an offer went to a case while cases ahead of it in its platform's
# queue still waited (docs/monitors.md, Out-of-sequence deliveries and offers). "other"
# needs a ``bypass_note``. Unset, the fields are left out of the event's JSON.
BypassCode = Literal[
    "partner-not-ready", "funding", "export-licence", "production-lot", "other"
]
BYPASS_CODES: tuple[str, ...] = typing.get_args(BypassCode)
BypassReason = Annotated[
    BypassCode, doc("why it goes ahead of cases before it in the queue")
]
BypassNote = Annotated[
    str,
    Meta(
        max_length=2000,
        pattern=TEXT_PATTERN,
        description="the reason in words (needed with bypass_reason other)",
    ),
]


class OfferIssued(CaseEvent, frozen=True, kw_only=True):
    value_usd: Annotated[Usd, doc("the offer's value")]
    offer_expires_at: (
        Annotated[Time, doc("when the offer expires; default: 85 days after it")] | None
    ) = None
    bypass_reason: BypassReason | msgspec.UnsetType = msgspec.UNSET
    bypass_note: BypassNote | msgspec.UnsetType = msgspec.UNSET


class OfferAccepted(CaseEvent, frozen=True, kw_only=True):
    deposit_usd: Annotated[Usd, doc("the initial deposit paid")] | None = None


class OfferExpired(CaseEvent, frozen=True, kw_only=True):
    pass


class CaseImplemented(CaseEvent, frozen=True, kw_only=True):
    pass


class DeliveryRecorded(CaseEvent, frozen=True, kw_only=True):
    quantity: Annotated[Quantity, doc("the units delivered")]
    bypass_reason: BypassReason | msgspec.UnsetType = msgspec.UNSET
    bypass_note: BypassNote | msgspec.UnsetType = msgspec.UNSET


class EndUseCheckRecorded(CaseEvent, frozen=True, kw_only=True):
    kind: Annotated[
        Literal[
            "routine",
            "eeum-initial-inventory",
            "eeum-annual-inventory",
            "physical-security",
        ],
        doc("the kind of check"),
    ]
    result: Annotated[
        Literal["compliant", "discrepancy", "item-lost"], doc("what it found")
    ]
    findings: Annotated[Text, doc("the findings in words")] | None = None


class CaseSuspended(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True


class CaseResumed(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True


class CaseClosed(CaseEvent, frozen=True, kw_only=True):
    pass


class CaseCancelled(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    by: Annotated[Literal["purchaser", "us"], doc("who cancels")]


class CaseReprioritized(CaseEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    priority_class: Annotated[PriorityClass, doc("the case's new priority class")]
    authority: Annotated[Text, doc("the authority for the move")]


class EventCorrected(CaseEvent, frozen=True, kw_only=True):
    """A correction of an earlier event of the same case, named by its log position:
    new values for some of its fields, or its retraction (docs/domain.md, Corrections).
    The ledger fills ``of``, ``was`` and ``effective_at`` (the corrected event's) when
    they are not given, and checks them when they are."""

    DECISION: ClassVar[bool] = True
    corrects: Annotated[int, Meta(ge=1, description="log position of the event corrected")]
    corrected: Annotated[
        dict[Annotated[str, _label(60)], int],
        doc("new values for the corrected event's fields, by field"),
    ] = msgspec.field(default_factory=dict)
    retracted: Annotated[
        bool, Meta(description="the corrected event is withdrawn as never having happened")
    ] = False
    of: Annotated[str, _label(60, "type of the corrected event")] | None = None
    was: (
        Annotated[
            dict[Annotated[str, _label(60)], int],
            doc("the corrected fields' values before (filled by the ledger)"),
        ]
        | None
    ) = None


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
    directory: Annotated[Literal["officials"], doc("the directory (always officials)")] = (
        "officials"
    )
    official: Annotated[Actor, doc("the official concerned")]


class AuthorityRootNamed(DirectoryEvent, frozen=True, kw_only=True):
    key: Annotated[VerifierKey, doc("the root official's public key")]


class OfficialKeyRegistered(DirectoryEvent, frozen=True, kw_only=True):
    key: Annotated[VerifierKey, doc("the official's new public key")]


class OfficialKeyRevoked(DirectoryEvent, frozen=True, kw_only=True):
    key: Annotated[VerifierKey, doc("the public key revoked")]


class OfficialKeyRotated(DirectoryEvent, frozen=True, kw_only=True):
    key: Annotated[VerifierKey, doc("the official's new public key")]
    replaces: Annotated[VerifierKey, doc("the key it replaces")]


class AuthorityGranted(DirectoryEvent, frozen=True, kw_only=True):
    authority: Annotated[AuthorityName, doc("the authority granted")]


class AuthorityWithdrawn(DirectoryEvent, frozen=True, kw_only=True):
    authority: Annotated[AuthorityName, doc("the authority withdrawn")]


# --- policy -------------------------------------------------------------------------


class Weights(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    investment: Annotated[Fraction, doc("weight of defense investment")] = 0.4
    strategic: Annotated[Fraction, doc("weight of strategic value")] = 0.3
    economic: Annotated[Fraction, doc("weight of economic contribution")] = 0.3


class Targets(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pct_gdp: Annotated[
        float,
        Meta(gt=0.0, le=100.0, description="defense spending that scores 1, % of GDP"),
    ] = 5.0
    economic_usd: Annotated[PositiveUsd, doc("contributions that score 1")] = 5_000_000_000


class Tiers(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    tier1: Annotated[Fraction, doc("the lowest score of tier 1")] = 0.70
    tier2: Annotated[Fraction, doc("the lowest score of tier 2")] = 0.45


class PriorityPolicyAdopted(PolicyEvent, frozen=True, kw_only=True):
    DECISION: ClassVar[bool] = True
    mode: Annotated[
        Literal["fcfs", "scored"],
        doc("first come, first served, or by the partners' scores"),
    ]
    name: Annotated[Text, doc("the policy's name")] | None = None
    legal_basis: Annotated[Text, doc("the authority it rests on")] | None = None
    weights: Weights = Weights()
    targets: Targets = Targets()
    tiers: Tiers = Tiers()


class GroupThresholds(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    mde_usd: Annotated[Usd, doc("threshold for major defense equipment")]
    articles_usd: Annotated[Usd, doc("threshold for defense articles or services")]
    construction_usd: Annotated[Usd, doc("threshold for design and construction")]
    review_days: Annotated[
        int, Meta(ge=0, le=365, description="days of the formal review period")
    ]


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
    structs = {cls.__name__: cls for cls in (Weights, Targets, Tiers, GroupThresholds)}
    for name, cls in (EVENT_TYPES | structs).items():
        # Each property described once, by its meaning and unit (``field_meaning``):
        # msgspec keeps only the outermost description of a type given one twice.
        properties = schema["$defs"][name]["properties"]
        for field, key in zip(
            cls.__struct_fields__, cls.__struct_encode_fields__, strict=True
        ):
            meaning = field_meaning(cls, field)
            if meaning and key in properties:
                for alternative in properties[key].get("anyOf", ()):
                    alternative.pop("description", None)
                properties[key]["description"] = meaning
    for name in EVENT_TYPES:
        definition = schema["$defs"][name]
        definition["properties"].pop("recorded_at", None)
        definition["description"] = f"{name}: a {EVENT_TYPES[name].STREAM} event" + (
            " (a decision: rationale required)" if EVENT_TYPES[name].DECISION else ""
        )
        if EVENT_TYPES[name].DECISION:
            definition["required"] = sorted({*definition.get("required", []), "rationale"})
    return schema


# --- the fields of a type, as `arms-ledger schema TYPE` shows them ------------------


class FieldDoc(msgspec.Struct, frozen=True):
    """One input field of an event type: its JSON key (``weights.investment`` within
    an object), its type, whether it is required (or its default), what it means and
    the values it may take (an enumeration, a range, a length)."""

    field: str
    type: str
    required: str
    meaning: str
    allowed: str


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _unwrap(t: Any) -> Any:
    """The type under its metadata and ``None`` alternatives (msgspec.inspect)."""
    import msgspec.inspect as mi

    while True:
        if isinstance(t, mi.Metadata):
            t = t.type
        elif isinstance(t, mi.UnionType):
            t = next(x for x in t.types if not isinstance(x, mi.NoneType))
        else:
            return t


def _meanings(hint: Any) -> list[str]:
    """The descriptions of an annotation, innermost first: ``Annotated[Usd, doc("its
    amount")]`` has the unit's ("whole U.S. dollars"), then the field's."""
    found: list[str] = []
    if typing.get_origin(hint) is Annotated:
        found += _meanings(hint.__origin__)
        for meta in hint.__metadata__:
            text = getattr(meta, "description", None)
            if text and text not in found:
                found.append(text)
    elif typing.get_origin(hint) in (Union, types.UnionType):
        for arg in typing.get_args(hint):
            found += [text for text in _meanings(arg) if text not in found]
    return found


def _literal(hint: Any) -> tuple[Any, ...] | None:
    """The values of the first Literal in an annotation, in their declared order
    (msgspec.inspect sorts them)."""
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    for arg in typing.get_args(hint):
        found = _literal(arg)
        if found is not None:
            return found
    return None


def _declared(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls, include_extras=True)[name]


def field_meaning(cls: type, name: str, time_format: bool = True) -> str:
    """What a field of a Struct means: its own description, then its type's (the
    unit), e.g. "the case's estimated value (whole U.S. dollars)"; a time's format
    only if ``time_format``."""
    hint = typing.get_type_hints(cls, include_extras=True)[name]
    found = [t for t in _meanings(hint) if time_format or t != TIME_FORMAT]
    if not found:
        return ""
    own, units = found[-1], [t for t in reversed(found[:-1]) if t not in found[-1]]
    return own + (f" ({'; '.join(units)})" if units else "")


def _is_time(cls: type, name: str) -> bool:
    hint = typing.get_type_hints(cls, include_extras=True)[name]
    return TIME_FORMAT in _meanings(hint)


def _type_name(t: Any) -> str:
    import msgspec.inspect as mi

    t = _unwrap(t)
    if isinstance(t, mi.StrType):
        return "text"
    if isinstance(t, mi.BoolType):
        return "boolean"
    if isinstance(t, mi.IntType):
        return "integer"
    if isinstance(t, mi.FloatType):
        return "number"
    if isinstance(t, mi.LiteralType):
        return "enum"
    if isinstance(t, (mi.VarTupleType, mi.ListType)):
        return f"list of {_type_name(t.item_type)}"
    if isinstance(t, mi.DictType):
        return f"object of {_type_name(t.value_type)}"
    return "object"


def _allowed(t: Any, hint: Any) -> str:
    import msgspec.inspect as mi

    t = _unwrap(t)
    if isinstance(t, mi.LiteralType):
        return ", ".join(str(v) for v in _literal(hint) or t.values)
    if isinstance(t, (mi.IntType, mi.FloatType)):
        bounds = [
            f"{sign} {_number(value)}"
            for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
            if (value := getattr(t, attr)) is not None
        ]
        return ", ".join(bounds)
    if isinstance(t, mi.StrType):
        if t.max_length is None:
            return ""
        if not t.min_length:
            return f"up to {t.max_length:,} characters"
        return f"{t.min_length}-{t.max_length:,} characters"
    if isinstance(t, (mi.VarTupleType, mi.ListType)):
        return _allowed(t.item_type, hint)
    return ""


def _rows(
    info: Any, prefix: str, required_here: bool, skip: tuple[str, ...] = ()
) -> list[FieldDoc]:
    import msgspec.inspect as mi

    rows: list[FieldDoc] = []
    for f in info.fields:
        if f.name in skip:
            continue
        t = _unwrap(f.type)
        name = prefix + f.encode_name
        required = f.required and required_here
        if isinstance(t, mi.StructType):
            rows += _rows(t, name + ".", required)
            continue
        if required:
            shown = "yes"
        elif f.default in (msgspec.NODEFAULT, msgspec.UNSET, None) or f.default == ():
            shown = "no"
        else:
            value = f.default
            shown = "default " + (
                ("true" if value else "false")
                if isinstance(value, bool)
                else _number(value)
                if isinstance(value, (int, float))
                else str(value)
            )
        meaning = field_meaning(info.cls, f.name, time_format=False)
        if _is_time(info.cls, f.name):
            kind, allowed = "time", "RFC 3339 date or datetime, UTC"
        else:
            kind, allowed = _type_name(t), _allowed(t, _declared(info.cls, f.name))
        rows.append(FieldDoc(name, kind, shown, meaning, allowed))
    return rows


def field_docs(cls: type[Event]) -> list[FieldDoc]:
    """The input fields of an event type, from its Struct (the one place their types,
    limits and meanings are declared): ``type``, the stream's id, the payload, then the
    envelope (``recorded_at`` is set by the ledger, not given)."""
    import msgspec.inspect as mi

    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    by_name = {row.field: row for row in _rows(info, "", True, skip=("recorded_at",))}
    tag = FieldDoc("type", "text", "yes", "the event type", cls.__name__)
    if cls.DECISION:
        by_name["rationale"] = msgspec.structs.replace(by_name["rationale"], required="yes")
    envelope = [by_name.pop(f) for f in ENVELOPE_FIELDS if f in by_name]
    stream = [by_name.pop(cls.STREAM)] if cls.STREAM in by_name else []
    return [tag, *stream, *by_name.values(), *envelope]


def allowed_values(type_name: str, path: str) -> tuple[Any, ...] | None:
    """The values an enumerated field may take, from its Struct: ``path`` is where
    msgspec says the value is (``$.channel``, ``$.groups.NATO+.review_days``); None
    if the type is unknown or the path is not an enumeration."""
    import msgspec.inspect as mi

    cls = EVENT_TYPES.get(type_name)
    if cls is None or not path.startswith("$"):
        return None
    t: Any = mi.type_info(cls)
    hint: Any = None  # the annotation of the last field on the path
    for step in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path[1:]):
        key, index = step
        t = _unwrap(t)
        if key and isinstance(t, mi.StructType):
            found = [f for f in t.fields if f.encode_name == key]
            if not found:
                return None
            hint = _declared(t.cls, found[0].name)
            t = found[0].type
        elif key and isinstance(t, mi.DictType):
            t = t.value_type
        elif index and isinstance(t, (mi.VarTupleType, mi.ListType)):
            t = t.item_type
        else:
            return None
    t = _unwrap(t)
    if isinstance(t, mi.LiteralType):
        return _literal(hint) or tuple(t.values)
    return None
