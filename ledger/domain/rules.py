"""The rules (docs/domain.md, Rules 1-5) as pure functions over current state.

``decide(event, stream, world)`` returns nothing or raises :class:`Refused`. It does no
I/O and reads no clock: the application normalizes events first (``intake``) and hands
in a :class:`World` that can look up other streams and the thresholds in force. The
facts a rule reads are the facts in force at the event's effective time (``facts``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

import msgspec
from arms_ledger.ledger.domain import authority, corrections
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.cases import (
    ALLOWED_FROM,
    NEXT_STEP,
    TERMINAL_STAGES,
    CaseState,
    notification_threshold,
)
from arms_ledger.ledger.domain.clock import effective, format_instant, instant
from arms_ledger.ledger.domain.facts import PartnerFacts, partner_facts, platform_facts
from arms_ledger.ledger.domain.streams import Stream
from arms_ledger.ledger.domain.values import MAX_TOTAL_USD
from arms_ledger.ledger.errors import Refused


class World(Protocol):
    """What a decision may look at besides the event's own stream."""

    def stream(self, key: str) -> Stream: ...

    def thresholds_at(self, when: datetime) -> ev.Thresholds: ...

    def event_at(self, position: int) -> ev.Event | None:
        """The event recorded at a log position (None: none yet)."""
        ...


def decide(event: ev.Event, stream: Stream, world: World) -> None:
    """Refuse the event if a rule forbids it, given its stream and the world."""
    if event.DECISION and not (event.rationale and event.rationale.strip()):
        raise Refused(
            "5",
            f"{type(event).__name__} is a decision: give a rationale saying why it "
            'was taken (--rationale, or "rationale" in JSON)',
        )
    if event.DECISION:
        directory = authority.directory_of(world.stream(authority.DIRECTORY).events)
        authority.check(event, directory)
    match event:
        case ev.PartnerEvent():
            _decide_partner(event, stream)
        case ev.PlatformEvent():
            _decide_platform(event, stream)
        case ev.CaseFiled():
            _decide_filing(event, stream, world)
        case ev.CaseEvent():
            _decide_case(event, stream, world)
        case ev.PriorityPolicyAdopted():
            _decide_policy(event)
        case ev.DirectoryEvent():
            authority.decide_directory(event, directory)


def partner_at(stream: Stream, at: datetime | None) -> PartnerFacts:
    """The partner's facts in force at ``at`` (None: with every recorded event)."""
    return partner_facts(stream.key.partition(":")[2], stream.fact_events(), at)


def platform_withdrawn(stream: Stream, at: datetime) -> bool:
    facts = platform_facts(stream.key.partition(":")[2], stream.fact_events(), at)
    return facts.withdrawn is not None


def _day(at: datetime) -> str:
    text = format_instant(at)
    return text[:10] if at.hour == at.minute == at.second == 0 else text


def _usd(amount: int) -> str:
    return f"${amount:,}"


def _not_registered(partner: str) -> Refused:
    return Refused(
        "1", f"partner {partner} is not registered; append PartnerRegistered for it first"
    )


def _not_listed(platform: str) -> Refused:
    return Refused(
        "1", f"platform {platform} is not listed; append PlatformListed for it first"
    )


# --- partners and platforms -------------------------------------------------------------


def _decide_partner(event: ev.PartnerEvent, stream: Stream) -> None:
    if isinstance(event, ev.PartnerRegistered):
        if stream.version:
            raise Refused(
                "1",
                f"partner {event.partner} is already registered; change it with "
                "NotificationGroupChanged or the other partner events",
            )
        return
    if not stream.version:
        raise _not_registered(event.partner)
    at = effective(event)
    facts = partner_at(stream, at)
    name, on = type(event).__name__, f"on {_day(at)}"
    match event:
        case ev.PartnerSuspended() if facts.is_suspended:
            raise Refused("2", f"partner {event.partner} is already suspended {on}")
        case ev.PartnerReinstated() if not facts.is_suspended:
            raise Refused("2", f"{name}: partner {event.partner} is not suspended {on}")
        case ev.PriorityOverrideGranted() if facts.has_override:
            raise Refused(
                "2",
                f"partner {event.partner} already has a priority override in force {on}",
            )
        case ev.PriorityOverrideRevoked() if not facts.has_override:
            raise Refused(
                "2",
                f"{name}: partner {event.partner} has no priority override in force {on}",
            )
        case ev.EconomicContributionRecorded():
            total = event.amount_usd + sum(
                e.amount_usd
                for e in stream.events
                if isinstance(e, ev.EconomicContributionRecorded)
            )
            if total > MAX_TOTAL_USD:
                raise Refused(
                    "totals",
                    f"partner {event.partner}'s economic contributions would total "
                    f"{_usd(total)}, beyond the {_usd(MAX_TOTAL_USD)} the ledger totals",
                )


def _decide_platform(event: ev.PlatformEvent, stream: Stream) -> None:
    if isinstance(event, ev.PlatformListed):
        if stream.version:
            raise Refused("1", f"platform {event.platform} is already listed")
        return
    if not stream.version:
        raise _not_listed(event.platform)
    if isinstance(event, ev.PlatformWithdrawn) and any(
        isinstance(e, ev.PlatformWithdrawn) for _, e in stream.fact_events()
    ):
        raise Refused("2", f"platform {event.platform} is already withdrawn")


def _decide_policy(event: ev.PriorityPolicyAdopted) -> None:
    w = event.weights
    total = w.investment + w.strategic + w.economic
    if abs(total - 1.0) > 1e-9:
        raise Refused(
            "policy",
            f"weights must add up to 1 (investment {w.investment} + strategic "
            f"{w.strategic} + economic {w.economic} = {total:g})",
        )
    if event.tiers.tier1 < event.tiers.tier2:
        raise Refused(
            "policy",
            f"tiers.tier1 ({event.tiers.tier1}) must be at least tiers.tier2 "
            f"({event.tiers.tier2})",
        )


# --- cases --------------------------------------------------------------------------------


def _decide_filing(event: ev.CaseFiled, stream: Stream, world: World) -> None:
    if stream.version:
        raise Refused("2", f"case {event.case} is already filed")
    partner = world.stream(f"partner:{event.partner}")
    if not partner.version:
        raise _not_registered(event.partner)
    platform = world.stream(f"platform:{event.platform}")
    if not platform.version:
        raise _not_listed(event.platform)
    at = effective(event)
    if partner_at(partner, at).is_suspended:
        raise Refused(
            "1",
            f"partner {event.partner} is suspended on {_day(at)}: no new cases "
            "until PartnerReinstated",
        )
    if platform_withdrawn(platform, at):
        raise Refused(
            "1",
            f"platform {event.platform} is withdrawn on {_day(at)}: no new cases for it",
        )


def _decide_case(event: ev.CaseEvent, stream: Stream, world: World) -> None:
    case = stream.case
    if case is None:
        raise Refused("1", f"case {event.case} is not filed; append CaseFiled for it first")
    at = effective(event)
    # A correction takes effect when the event it corrects did (its own guard checks).
    if at < case.last_effective_at and not isinstance(event, ev.EventCorrected):
        raise Refused(
            "2",
            f"effective_at {_day(at)} is before the case's previous event "
            f"(effective {_day(case.last_effective_at)}); a case's events are "
            "effective in order",
        )
    _check_stage(event, case)
    guard = CASE_GUARDS.get(type(event))
    if guard is not None:
        guard(event, case, at, world)


def _check_stage(event: ev.CaseEvent, case: CaseState) -> None:
    """Rule 2: the event may follow the case's stage."""
    if case.stage in ALLOWED_FROM[type(event)]:
        return
    name = type(event).__name__
    if case.stage in TERMINAL_STAGES:
        raise Refused("2", f"case {case.case} is {case.stage}; {name} cannot follow")
    if isinstance(event, ev.DeliveryRecorded):
        raise Refused(
            "4",
            f"deliveries only after CaseImplemented; case {case.case} is at stage "
            f"{case.stage}",
        )
    hint = NEXT_STEP.get(case.stage)
    raise Refused(
        "2",
        f"{name} cannot follow stage {case.stage} of case {case.case}"
        + (f"; next is {hint}" if hint else ""),
    )


Guard = Callable[..., None]  # (event, case, at, world) -> None, raises Refused


def _cleared(event: ev.CaseReviewCleared, case: CaseState, *_: object) -> None:
    if event.office in case.cleared_by:
        raise Refused("2", f"case {case.case} was already cleared by {event.office}")


def _hold(event: ev.HoldPlaced, case: CaseState, *_: object) -> None:
    if event.office in case.holds:
        raise Refused("2", f"{event.office} already holds case {case.case}")


def _lift(event: ev.HoldLifted, case: CaseState, *_: object) -> None:
    if event.office not in case.holds:
        held = f" (held by {', '.join(case.holds)})" if case.holds else ""
        raise Refused("2", f"{event.office} has no hold on case {case.case}{held}")


def _notify(event: ev.CongressionalNotified, case: CaseState, *_: object) -> None:
    if case.holds:
        raise Refused(
            "3",
            f"case {case.case} is held by {', '.join(case.holds)}; an unlifted hold "
            "blocks CongressionalNotified — append HoldLifted first",
        )


def _emergency(event: ev.EmergencyDeclared, case: CaseState, *_: object) -> None:
    if case.emergency:
        raise Refused("2", f"an emergency is already declared for case {case.case}")


def _accept(event: ev.OfferAccepted, case: CaseState, at: datetime, _: World) -> None:
    if case.offer_expires_at is not None and at > case.offer_expires_at:
        raise Refused(
            "4",
            f"the offer for case {case.case} expired at {_day(case.offer_expires_at)}; "
            f"acceptance on {_day(at)} is too late (record OfferExpired)",
        )


def _expire(event: ev.OfferExpired, case: CaseState, at: datetime, _: World) -> None:
    if case.offer_expires_at is not None and at < case.offer_expires_at:
        raise Refused(
            "4",
            f"the offer for case {case.case} is open until "
            f"{_day(case.offer_expires_at)}; it cannot expire on {_day(at)}",
        )


def _bypass(event: ev.DeliveryRecorded | ev.OfferIssued) -> None:
    """A bypass note explains a bypass reason; the reason "other" needs one."""
    reason, note = event.bypass_reason, event.bypass_note
    if reason is msgspec.UNSET:
        if note is not msgspec.UNSET:
            raise Refused(
                "bypass",
                "bypass_note explains a bypass_reason: give bypass_reason too (one of "
                f"{', '.join(ev.BYPASS_CODES)})",
            )
        return
    if reason == "other" and (note is msgspec.UNSET or not note.strip()):
        raise Refused(
            "bypass",
            'bypass_reason "other" needs a bypass_note saying what the reason was '
            "(or use one of the other codes)",
        )


def _deliver(event: ev.DeliveryRecorded, case: CaseState, *_: object) -> None:
    _bypass(event)
    if event.quantity > case.quantity_left:
        raise Refused(
            "4",
            f"a delivery of {event.quantity} would exceed the quantity of case "
            f"{case.case}: {case.delivered} of {case.quantity} delivered, "
            f"{case.quantity_left} left",
        )


def _close(event: ev.CaseClosed, case: CaseState, *_: object) -> None:
    if case.delivered < case.quantity:
        raise Refused(
            "2",
            f"case {case.case} closes once fully delivered: {case.delivered} of "
            f"{case.quantity} delivered (cancel it with CaseCancelled instead)",
        )


def _check(event: ev.EndUseCheckRecorded, case: CaseState, *_: object) -> None:
    if case.delivered == 0:
        raise Refused(
            "2",
            f"nothing of case {case.case} has been delivered yet; end-use checks "
            "follow a DeliveryRecorded",
        )


def _offer(event: ev.OfferIssued, case: CaseState, at: datetime, world: World) -> None:
    """Rules 3 and 4: an offer at or over the threshold in force needs a congressional
    notification and, unless an emergency is declared, the end of its review period."""
    _bypass(event)
    expires = instant(event.offer_expires_at or event.effective_at)
    if expires <= at:
        raise Refused(
            "4",
            f"offer_expires_at {_day(expires)} must be after the offer's effective_at "
            f"{_day(at)}",
        )
    partner = world.stream(f"partner:{case.partner}")
    group = partner_at(partner, at).notification_group
    kind, threshold = notification_threshold(case, world.thresholds_at(at).group(group))
    if event.value_usd < threshold:
        return
    needed = (
        f"an offer of {_usd(event.value_usd)} to {case.partner} meets the {group} "
        f"{kind} threshold of {_usd(threshold)} in force on {_day(at)}"
    )
    if case.notified_at is None:
        raise Refused("3", f"{needed}: append CongressionalNotified first")
    if case.emergency:
        return
    notified_group = partner_at(partner, case.notified_at).notification_group
    days = world.thresholds_at(case.notified_at).group(notified_group).review_days
    ends = case.notified_at + timedelta(days=days)
    if at < ends:
        raise Refused(
            "3",
            f"{needed}; its {days}-day review period began with CongressionalNotified on "
            f"{_day(case.notified_at)} and ends on {_day(ends)} — offer on or after "
            "that date, or record EmergencyDeclared",
        )


# --- corrections (docs/domain.md, "Corrections") ---------------------------------------


def _correctable() -> str:
    return "; ".join(
        f"{t.__name__} ({', '.join(fields)})"
        for t, fields in corrections.CORRECTABLE.items()
    )


def _correct(event: ev.EventCorrected, case: CaseState, world: World) -> None:
    """A correction names an event of its own case that may be corrected, gives new
    values for its correctable fields (or retracts it, where that may be done), and
    leaves the case as the rules would have accepted it with those values."""
    where = f"log position {event.corrects}"
    target = world.event_at(event.corrects)
    if target is None:
        raise Refused(
            "corrections",
            f"there is no event at {where} to correct; `arms-ledger log` shows the "
            "positions",
        )
    name = type(target).__name__
    if isinstance(target, ev.EventCorrected):
        raise Refused(
            "corrections",
            f"the event at {where} is itself a correction (of log position "
            f"{target.corrects}); correct log position {target.corrects} again instead",
        )
    if target.stream != event.stream:
        raise Refused(
            "corrections",
            f"the event at {where} is {name} of {target.stream}, not of case "
            f"{event.case}; a correction names the case of the event it corrects, and "
            "only case events are corrected (a partner's, platform's or policy's fact "
            "is replaced by recording a later one)",
        )
    if event.of is not None and event.of != name:
        raise Refused("corrections", f"the event at {where} is {name}, not {event.of}")
    fields = corrections.CORRECTABLE.get(type(target))
    if fields is None:
        raise Refused(
            "corrections",
            f"{name} cannot be corrected: it moved case {case.case} on and what followed "
            f"depended on it; only these can be: {_correctable()}",
        )
    if event.retracted == bool(event.corrected):
        raise Refused(
            "corrections",
            "a correction gives either corrected values (corrected, or --set "
            "FIELD=VALUE) or retracted: true, "
            + ("not both" if event.retracted else "and this one gives neither"),
        )
    if event.retracted and not isinstance(target, corrections.RETRACTABLE):
        raise Refused(
            "corrections",
            f"{name} cannot be retracted (later events of case {case.case} depended on "
            f"it); correct its {', '.join(fields)} instead, or cancel the case with "
            "CaseCancelled",
        )
    wrong = sorted(set(event.corrected) - set(fields))
    if wrong:
        raise Refused(
            "corrections",
            f"{name}'s {', '.join(wrong)} cannot be corrected; its correctable "
            f"field(s): {', '.join(fields)}",
        )
    stream = world.stream(event.stream)
    current, retraction = corrections.in_force(target, event.corrects, stream.events)
    if retraction is not None:
        raise Refused(
            "corrections",
            f"the {name} at {where} was retracted by {retraction.actor} (effective "
            f"{retraction.effective_at}); a retraction is final: record a new {name}",
        )
    named = corrections.retracted_fields(target) if event.retracted else event.corrected
    replaced = corrections.replaced(named, current)
    if event.was is not None and event.was != replaced:
        raise Refused(
            "corrections",
            f"was {_values(event.was)} does not match the values in force, "
            f"{_values(replaced)}: the event was corrected since; `arms-ledger audit "
            f"trail case:{case.case}` shows its corrections",
        )
    if event.retracted:
        _consequences(event, case, target, current, None, stream)
        return
    if replaced == event.corrected:
        raise Refused(
            "corrections",
            f"the {name} at {where} already has {_values(event.corrected)}: the "
            "correction changes nothing",
        )
    try:
        new = corrections.with_values(current, event.corrected)
    except msgspec.ValidationError as error:
        raise Refused("corrections", f"corrected {error}") from None
    _consequences(event, case, target, current, new, stream)
    if isinstance(new, ev.OfferIssued):
        try:
            _offer(new, case, effective(target), world)
        except Refused as refused:
            raise Refused(
                refused.rule,
                f"the corrected OfferIssued would not have been accepted: "
                f"{refused.message}",
            ) from None


def _values(values: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(values.items())) or "nothing"


def _consequences(
    event: ev.EventCorrected,
    case: CaseState,
    target: ev.Event,
    current: ev.Event,
    new: ev.Event | None,
    stream: Stream,
) -> None:
    """What later events depended on: the quantity delivered stays within the case's
    quantity, a closed case stays fully delivered, and end-use checks keep a delivery
    before them."""
    delivered, quantity = case.delivered, case.quantity
    if isinstance(current, ev.DeliveryRecorded):
        now = new.quantity if isinstance(new, ev.DeliveryRecorded) else 0  # 0: retracted
        delivered += now - current.quantity
    elif isinstance(new, ev.CaseFiled):
        quantity = new.quantity
    else:
        return
    what = "retracting" if new is None else "correcting"
    change = f"{what} the {type(target).__name__} at log position {event.corrects}"
    if delivered > quantity:
        raise Refused(
            "4",
            f"{change} would make case {case.case}'s deliveries total {delivered:,}, "
            f"beyond its quantity of {quantity:,}",
        )
    if case.stage == "closed" and delivered != quantity:
        raise Refused(
            "2",
            f"case {case.case} was closed as fully delivered; {change} would leave "
            f"{delivered:,} of {quantity:,} delivered",
        )
    if delivered == 0 and any(isinstance(e, ev.EndUseCheckRecorded) for e in stream.events):
        raise Refused(
            "2",
            f"{change} would leave nothing of case {case.case} delivered, but end-use "
            "checks of it are recorded (they follow a delivery)",
        )


# The guard of each case event beyond rule 2's order and stage (none: only those).
CASE_GUARDS: dict[type[ev.Event], Guard] = {
    ev.CaseReviewCleared: _cleared,
    ev.HoldPlaced: _hold,
    ev.HoldLifted: _lift,
    ev.CongressionalNotified: _notify,
    ev.EmergencyDeclared: _emergency,
    ev.OfferIssued: _offer,
    ev.OfferAccepted: _accept,
    ev.OfferExpired: _expire,
    ev.DeliveryRecorded: _deliver,
    ev.CaseClosed: _close,
    ev.EndUseCheckRecorded: _check,
    ev.EventCorrected: lambda event, case, at, world: _correct(event, case, world),
}
