"""A case's life: its state, the stages and which events may follow which (rule 2).

``open_case`` starts a case's state from its ``CaseFiled``; ``evolve_case`` folds each
later event in. Both are pure; the rules (``rules``) decide whether an event may be
applied at all, and the read side keeps the same state for every case.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import effective, instant

# How long an offer stays open when OfferIssued gives no offer_expires_at.
OFFER_VALIDITY = timedelta(days=85)


class CaseState(msgspec.Struct, frozen=True, kw_only=True):
    case: str
    partner: str
    platform: str
    quantity: int
    estimated_value_usd: int
    channel: str
    mde: bool
    construction: bool
    filed_at: datetime
    last_effective_at: datetime
    stage: str = "filed"
    resume_stage: str | None = None
    cleared_by: tuple[str, ...] = ()
    holds: tuple[str, ...] = ()
    notified_at: datetime | None = None
    transmittal: str | None = None
    notified_value_usd: int | None = None
    emergency: bool = False
    offer_value_usd: int | None = None
    offer_expires_at: datetime | None = None
    delivered: int = 0
    priority_class: str = "normal"

    @property
    def quantity_left(self) -> int:
        return self.quantity - self.delivered

    @property
    def value_usd(self) -> int:
        """What the case is worth: the offer's value, else the notified value, else the
        filer's estimate."""
        for value in (self.offer_value_usd, self.notified_value_usd):
            if value is not None:
                return value
        return self.estimated_value_usd

    @property
    def queued(self) -> bool:
        """In its platform's queue: open, with quantity left to deliver."""
        return self.stage in OPEN_STAGES and self.quantity_left > 0


OPEN_STAGES = frozenset(
    {
        "filed",
        "review-cleared",
        "congressional-review",
        "notified",
        "offered",
        "accepted",
        "implemented",
        "delivering",
        "suspended",
    }
)
TERMINAL_STAGES = frozenset({"closed", "cancelled", "expired"})
# The events that end a case (its stage becomes one of TERMINAL_STAGES).
CLOSING_TYPES = ("CaseClosed", "CaseCancelled", "OfferExpired")

# For each case event: the stages it may follow (rule 2).
ALLOWED_FROM: dict[type[ev.Event], frozenset[str]] = {
    ev.CaseReviewCleared: frozenset({"filed", "review-cleared"}),
    ev.CongressionalReviewStarted: frozenset({"review-cleared"}),
    ev.HoldPlaced: frozenset({"congressional-review"}),
    ev.HoldLifted: frozenset({"congressional-review"}),
    ev.CongressionalNotified: frozenset({"review-cleared", "congressional-review"}),
    ev.EmergencyDeclared: frozenset(
        {"filed", "review-cleared", "congressional-review", "notified"}
    ),
    ev.OfferIssued: frozenset({"review-cleared", "congressional-review", "notified"}),
    ev.OfferAccepted: frozenset({"offered"}),
    ev.OfferExpired: frozenset({"offered"}),
    ev.CaseImplemented: frozenset({"accepted"}),
    ev.DeliveryRecorded: frozenset({"implemented", "delivering"}),
    ev.CaseClosed: frozenset({"implemented", "delivering"}),
    ev.CaseCancelled: OPEN_STAGES,
    ev.CaseSuspended: OPEN_STAGES - {"suspended"},
    ev.CaseResumed: frozenset({"suspended"}),
    ev.CaseReprioritized: OPEN_STAGES,
    ev.EndUseCheckRecorded: OPEN_STAGES | TERMINAL_STAGES,
    ev.EventCorrected: OPEN_STAGES | TERMINAL_STAGES,
}

STAGE_AFTER: dict[type[ev.Event], str] = {
    ev.CaseReviewCleared: "review-cleared",
    ev.CongressionalReviewStarted: "congressional-review",
    ev.CongressionalNotified: "notified",
    ev.OfferIssued: "offered",
    ev.OfferAccepted: "accepted",
    ev.OfferExpired: "expired",
    ev.CaseImplemented: "implemented",
    ev.DeliveryRecorded: "delivering",
    ev.CaseClosed: "closed",
    ev.CaseCancelled: "cancelled",
    ev.CaseSuspended: "suspended",
}
assert set(CLOSING_TYPES) == {
    t.__name__ for t, stage in STAGE_AFTER.items() if stage in TERMINAL_STAGES
}

# What a user appends to move a case on from each stage (for error messages).
NEXT_STEP = {
    "filed": "CaseReviewCleared",
    "review-cleared": "CongressionalReviewStarted, CongressionalNotified or OfferIssued",
    "congressional-review": "HoldPlaced, HoldLifted or CongressionalNotified",
    "notified": "OfferIssued",
    "offered": "OfferAccepted or OfferExpired",
    "accepted": "CaseImplemented",
    "implemented": "DeliveryRecorded",
    "delivering": "DeliveryRecorded or CaseClosed",
    "suspended": "CaseResumed",
}


def open_case(event: ev.CaseFiled) -> CaseState:
    at = effective(event)
    return CaseState(
        case=event.case,
        partner=event.partner,
        platform=event.platform,
        quantity=event.quantity,
        estimated_value_usd=event.estimated_value_usd,
        channel=event.channel,
        mde=event.mde,
        construction=event.construction,
        filed_at=at,
        last_effective_at=at,
    )


def evolve_case(case: CaseState, event: ev.Event) -> CaseState:
    """A case's state after one of its later events (not ``CaseFiled``)."""
    at = effective(event)
    changes: dict[str, Any] = {"last_effective_at": max(at, case.last_effective_at)}
    stage = STAGE_AFTER.get(type(event))
    if stage is not None:
        changes["stage"] = stage
    match event:
        case ev.CaseReviewCleared():
            changes["cleared_by"] = (*case.cleared_by, event.office)
        case ev.HoldPlaced():
            changes["holds"] = (*case.holds, event.office)
        case ev.HoldLifted():
            changes["holds"] = tuple(o for o in case.holds if o != event.office)
        case ev.CongressionalNotified():
            changes.update(
                notified_at=at,
                transmittal=event.transmittal,
                notified_value_usd=event.notified_value_usd,
            )
        case ev.EmergencyDeclared():
            changes["emergency"] = True
        case ev.OfferIssued():
            expires = event.offer_expires_at
            changes.update(
                offer_value_usd=event.value_usd,
                offer_expires_at=None if expires is None else instant(expires),
            )
        case ev.DeliveryRecorded():
            changes["delivered"] = case.delivered + event.quantity
        case ev.CaseSuspended():
            changes["resume_stage"] = case.stage
        case ev.CaseResumed():
            changes.update(stage=case.resume_stage, resume_stage=None)
        case ev.CaseReprioritized():
            changes["priority_class"] = event.priority_class
        case ev.EventCorrected():
            changes.update(_corrected(case, event))
    return msgspec.structs.replace(case, **changes)


def _corrected(case: CaseState, event: ev.EventCorrected) -> dict[str, Any]:
    """What a correction changes in the case: the corrected event's effect replaced
    (``was``, filled by the ledger, is what it replaces)."""
    assert event.of is not None and event.was is not None  # filled before it is stored
    new = {} if event.retracted else event.corrected
    changes: dict[str, Any] = {}
    match event.of:
        case "DeliveryRecorded":
            delivered = case.delivered - event.was["quantity"] + new.get("quantity", 0)
            changes["delivered"] = delivered
            if delivered == 0:  # no delivery left: back to before the first one
                if case.stage == "delivering":
                    changes["stage"] = "implemented"
                if case.resume_stage == "delivering":
                    changes["resume_stage"] = "implemented"
        case "OfferIssued":
            changes["offer_value_usd"] = new["value_usd"]
        case "CongressionalNotified":
            changes["notified_value_usd"] = new["notified_value_usd"]
        case "CaseFiled":
            changes.update(new)  # quantity, estimated_value_usd
    return changes


def notification_threshold(case: CaseState, group: ev.GroupThresholds) -> tuple[str, int]:
    """Which 36(b) threshold applies to the case, and its amount."""
    if case.construction:
        return "design and construction", group.construction_usd
    if case.mde:
        return "major defense equipment", group.mde_usd
    return "defense articles and services", group.articles_usd
