"""Decisions: the rules 1-5 of docs/domain.md as pure functions over current state.

``decide(event, stream, world)`` returns nothing or raises :class:`Refused`;
``evolve(stream, event)`` folds an accepted event into the stream's state. Neither does
I/O or reads a clock: the application normalizes events (times, defaults) first and
hands in a :class:`World` that can look up other streams and the thresholds in force.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple, Protocol

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import (
    BadTime,
    format_instant,
    format_recorded,
    parse_instant,
)
from arms_ledger.ledger.errors import Invalid, Refused

OFFER_VALIDITY = timedelta(days=85)

# --- state -------------------------------------------------------------------------


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


class Stream(msgspec.Struct, frozen=True):
    """One stream's state: its events in order and, for a case, the folded case.

    ``facts`` are the events that ``partner_view`` and ``platform_withdrawn`` look at
    (registration, listing, group, suspension, override, withdrawal), each with its index in
    ``events``: a partner's other events (spending, contributions, …) can be many, and a
    decision should not walk them all.
    """

    key: str
    version: int = 0
    events: tuple[ev.Event, ...] = ()
    case: CaseState | None = None
    facts: tuple[tuple[int, ev.Event], ...] = ()


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


@lru_cache(maxsize=65536)
def instant(text: str) -> datetime:
    """Parse a stored (already normalized) time; cached, it is read often."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return parse_instant(text)  # raises BadTime
    # What parse_instant gives, without its conversion, when the text is already UTC
    # (every stored time: ``...Z``); anything else (a date, an offset) goes through it.
    return value if value.tzinfo is UTC and len(text) != 10 else parse_instant(text)


def effective(event: ev.Event) -> datetime:
    return instant(event.effective_at)


# --- the world a decision may look at -------------------------------------------------


class World(Protocol):
    def stream(self, key: str) -> Stream: ...

    def thresholds_at(self, when: datetime) -> ev.Thresholds: ...


class ReadSet(NamedTuple):
    streams: dict[str, int]  # stream key -> version read (0: the stream did not exist)
    thresholds: int | None  # NotificationThresholdsSet events read, if any


class MemoryWorld:
    """A :class:`World` folded from events in memory, optionally over a loader.

    The application uses it as the overlay of one batch: streams come from the store
    the first time they are asked for, and the batch's own events are applied on top,
    so a batch may register a partner and file a case for it.
    """

    def __init__(
        self,
        load_stream: Callable[[str], Stream] | None = None,
        load_thresholds: Callable[[], list[ev.NotificationThresholdsSet]] | None = None,
        prefetch: Callable[[list[str]], None] | None = None,
    ):
        self._load_stream = load_stream or Stream
        self._load_thresholds = load_thresholds or list
        self._prefetch = prefetch
        self._streams: dict[str, Stream] = {}
        self._read: dict[str, int] = {}
        self._thresholds: list[ev.NotificationThresholdsSet] | None = None
        self._applied_thresholds: list[ev.NotificationThresholdsSet] = []

    def stream(self, key: str) -> Stream:
        found = self._streams.get(key)
        if found is None:
            found = self._streams[key] = self._load_stream(key)
            self._read[key] = found.version
        return found

    def read_set(self, written: Iterable[str] = ()) -> ReadSet:
        """What the decisions so far read from the loader: the version of every stream,
        and how many threshold sets (None if none were read). The batch may be written
        only if the store still holds exactly this; otherwise it must be decided again.
        Streams the batch ``written`` to are left out: writing the version after the one
        read already fails if another writer got there first."""
        thresholds = None if self._thresholds is None else len(self._thresholds)
        skip = set(written)
        return ReadSet({k: v for k, v in self._read.items() if k not in skip}, thresholds)

    def prefetch_batch(self, events: Iterable[ev.Event]) -> None:
        """Tell the loader every stream that deciding ``events`` will look at, so that it
        can read them ahead in two calls of ``prefetch`` (the events' own streams and the
        partners and platforms of the cases they file, then the partners of the cases
        they make offers for) instead of one read per stream."""
        if self._prefetch is None:
            return
        events = list(events)
        keys = []
        for e in events:
            keys.append(e.stream)
            if isinstance(e, ev.CaseFiled):
                keys.append(f"partner:{e.partner}")
                keys.append(f"platform:{e.platform}")
        self._prefetch(keys)
        partners = []
        for e in events:
            if isinstance(e, ev.OfferIssued):
                case = self.stream(e.stream).case
                if case is not None:
                    partners.append(f"partner:{case.partner}")
        self._prefetch(partners)

    def thresholds_at(self, when: datetime) -> ev.Thresholds:
        if self._thresholds is None:
            self._thresholds = list(self._load_thresholds())
        in_force = ev.DEFAULT_THRESHOLDS
        latest: datetime | None = None
        # Log order breaks ties between sets effective at the same instant.
        for item in (*self._thresholds, *self._applied_thresholds):
            at = effective(item)
            if at <= when and (latest is None or at >= latest):
                in_force, latest = item.groups, at
        return in_force

    def streams(self) -> list[Stream]:
        """Every stream seen so far, in the order first seen."""
        return list(self._streams.values())

    def apply(self, event: ev.Event) -> Stream:
        key = event.stream
        state = self._streams[key] = evolve(self.stream(key), event)
        if isinstance(event, ev.NotificationThresholdsSet):
            self._applied_thresholds.append(event)
        return state

    @classmethod
    def of(cls, events: Iterable[ev.Event]) -> MemoryWorld:
        world = cls()
        for event in events:
            world.apply(event)
        return world


class StreamCache:
    """Stream states kept between batches by a long-lived writer, least recently used
    dropped first, and the NotificationThresholdsSet events seen (with log positions).

    Only states read from the store go in: each is a prefix of its stream's history,
    which the store only ever extends, so the writer reads the events after it.
    """

    MAX_STREAMS = 4096

    def __init__(self) -> None:
        self.streams: OrderedDict[str, Stream] = OrderedDict()
        self.thresholds: list[tuple[int, ev.NotificationThresholdsSet]] = []

    def get(self, key: str) -> Stream:
        found = self.streams.get(key)
        return Stream(key) if found is None else found

    def put(self, streams: dict[str, Stream]) -> None:
        kept = self.streams
        for key, stream in streams.items():
            if stream.version:
                kept[key] = stream
                kept.move_to_end(key)
        while len(kept) > self.MAX_STREAMS:
            kept.popitem(last=False)


# --- normalization --------------------------------------------------------------------


def normalize(event: ev.Event, recorded_at: datetime) -> ev.Event:
    """Stamp ``recorded_at``, make every time canonical UTC and fill time defaults."""
    if event.recorded_at is not None:
        raise Invalid(
            "recorded_at is set by the ledger when an event is appended; "
            "remove it from the input"
        )
    try:
        text = event.effective_at
        if text is None:
            at = recorded_at
        else:
            # Through the cache: the decisions and evolve read it again as ``effective``.
            try:
                at = instant(text)
            except BadTime:
                at = parse_instant(text, "effective_at")  # the error names the field
        if at > recorded_at:
            raise Invalid(
                f"effective_at {format_instant(at)} is after the time of recording "
                f"({format_recorded(recorded_at)}); the ledger records what has taken "
                "effect — append it once it has"
            )
        changes: dict = {
            "effective_at": format_instant(at),
            "recorded_at": format_recorded(recorded_at),
        }
        if isinstance(event, ev.OfferIssued):
            expires = (
                parse_instant(event.offer_expires_at, "offer_expires_at")
                if event.offer_expires_at is not None
                else at + OFFER_VALIDITY
            )
            changes["offer_expires_at"] = format_instant(expires)
    except BadTime as error:
        raise Invalid(str(error)) from None
    return msgspec.structs.replace(event, **changes)


def find_duplicate(stream: Stream, event: ev.Event, explicit_time: bool) -> int | None:
    """The version at which this idempotency key was appended, if it was.

    The same key with different content is refused: a key names one event.
    Keys are scoped to the event's stream.
    """
    key = event.idempotency_key
    if key is None:
        return None
    for version, earlier in enumerate(stream.events, start=1):
        if earlier.idempotency_key != key:
            continue
        changes = {"recorded_at": None}
        if not explicit_time:
            changes["effective_at"] = earlier.effective_at
        if isinstance(event, ev.OfferIssued) and event.offer_expires_at is None:
            changes["offer_expires_at"] = earlier.offer_expires_at
        candidate = msgspec.structs.replace(event, **changes)
        if msgspec.structs.replace(earlier, recorded_at=None) != candidate:
            raise Refused(
                "idempotency",
                f"idempotency key {key!r} was already used for a different event "
                f"(version {version} of {stream.key}); use a new key for a new event",
            )
        return version
    return None


# --- decide -----------------------------------------------------------------------------


def decide(event: ev.Event, stream: Stream, world: World) -> None:
    """Refuse the event if a rule forbids it, given its stream and the world."""
    if event.DECISION and not (event.rationale and event.rationale.strip()):
        raise Refused(
            "5",
            f"{type(event).__name__} is a decision: give a rationale saying why it "
            'was taken (--rationale, or "rationale" in JSON)',
        )
    if isinstance(event, ev.PartnerEvent):
        _decide_partner(event, stream)
    elif isinstance(event, ev.PlatformEvent):
        _decide_platform(event, stream)
    elif isinstance(event, ev.CaseEvent):
        _decide_case(event, stream, world)
    else:
        _decide_policy(event)


def _facts(stream: Stream) -> tuple[tuple[int, ev.Event], ...]:
    """The stream's fact events with their indexes (from ``events`` if ``facts`` was not
    kept, for a Stream built by hand)."""
    if stream.facts or not stream.events:
        return stream.facts
    return tuple((i, e) for i, e in enumerate(stream.events) if isinstance(e, FACT_TYPES))


def _not_registered(partner: str) -> Refused:
    return Refused(
        "1", f"partner {partner} is not registered; append PartnerRegistered for it first"
    )


def _not_listed(platform: str) -> Refused:
    return Refused(
        "1", f"platform {platform} is not listed; append PlatformListed for it first"
    )


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
    view = partner_view(stream, at)
    name = type(event).__name__
    on = f"on {_day(at)}"
    if isinstance(event, ev.PartnerSuspended) and view.suspended:
        raise Refused("2", f"partner {event.partner} is already suspended {on}")
    if isinstance(event, ev.PartnerReinstated) and not view.suspended:
        raise Refused("2", f"{name}: partner {event.partner} is not suspended {on}")
    if isinstance(event, ev.PriorityOverrideGranted) and view.override:
        raise Refused(
            "2", f"partner {event.partner} already has a priority override in force {on}"
        )
    if isinstance(event, ev.PriorityOverrideRevoked) and not view.override:
        raise Refused(
            "2", f"{name}: partner {event.partner} has no priority override in force {on}"
        )


def _decide_platform(event: ev.PlatformEvent, stream: Stream) -> None:
    if isinstance(event, ev.PlatformListed):
        if stream.version:
            raise Refused("1", f"platform {event.platform} is already listed")
        return
    if not stream.version:
        raise _not_listed(event.platform)
    if isinstance(event, ev.PlatformWithdrawn) and any(
        isinstance(e, ev.PlatformWithdrawn) for _, e in _facts(stream)
    ):
        raise Refused("2", f"platform {event.platform} is already withdrawn")


def _decide_policy(event: ev.Event) -> None:
    if isinstance(event, ev.PriorityPolicyAdopted):
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


class PartnerView(msgspec.Struct, frozen=True):
    registered: bool = False
    name: str = ""
    notification_group: str = "other"
    middle_east: bool = False
    suspended: bool = False
    override: bool = False


def partner_view(stream: Stream, at: datetime | None = None) -> PartnerView:
    """The partner's facts in force at ``at`` (all recorded facts when None).

    Each fact is the one with the latest ``effective_at`` (ties: the later in the log),
    as the read models have it, so a backdated event lands where it belongs. A partner
    exists once registered, whatever the registration's effective time.
    """
    view = PartnerView()
    facts: dict[str, tuple[tuple[datetime, int], object]] = {}

    def offer(name: str, key: tuple[datetime, int], value: object) -> None:
        if name not in facts or key >= facts[name][0]:
            facts[name] = (key, value)

    for index, e in _facts(stream):
        key = (effective(e), index)
        if isinstance(e, ev.PartnerRegistered):
            view = PartnerView(registered=True, name=e.name, middle_east=e.middle_east)
            offer("notification_group", key, e.notification_group)
            continue
        if at is not None and key[0] > at:
            continue
        if isinstance(e, ev.NotificationGroupChanged):
            offer("notification_group", key, e.notification_group)
        elif isinstance(e, (ev.PartnerSuspended, ev.PartnerReinstated)):
            offer("suspended", key, isinstance(e, ev.PartnerSuspended))
        elif isinstance(e, (ev.PriorityOverrideGranted, ev.PriorityOverrideRevoked)):
            offer("override", key, isinstance(e, ev.PriorityOverrideGranted))
    return msgspec.structs.replace(view, **{name: v for name, (_, v) in facts.items()})


def platform_withdrawn(stream: Stream, at: datetime) -> bool:
    return any(
        isinstance(e, ev.PlatformWithdrawn) and effective(e) <= at
        for _, e in _facts(stream)
    )


def notification_threshold(case: CaseState, group: ev.GroupThresholds) -> tuple[str, int]:
    """Which 36(b) threshold applies to the case, and its amount."""
    if case.construction:
        return "design and construction", group.construction_usd
    if case.mde:
        return "major defense equipment", group.mde_usd
    return "defense articles and services", group.articles_usd


def _usd(amount: int) -> str:
    return f"${amount:,}"


def _day(at: datetime) -> str:
    return (
        format_instant(at)[:10]
        if at.hour == at.minute == at.second == 0
        else (format_instant(at))
    )


def _decide_case(event: ev.CaseEvent, stream: Stream, world: World) -> None:
    name = type(event).__name__
    at = effective(event)
    if isinstance(event, ev.CaseFiled):
        if stream.version:
            raise Refused("2", f"case {event.case} is already filed")
        partner = world.stream(f"partner:{event.partner}")
        if not partner.version:
            raise _not_registered(event.partner)
        platform = world.stream(f"platform:{event.platform}")
        if not platform.version:
            raise _not_listed(event.platform)
        if partner_view(partner, at).suspended:
            raise Refused(
                "1",
                f"partner {event.partner} is suspended on {_day(at)}: no new cases "
                "until PartnerReinstated",
            )
        if platform_withdrawn(platform, at):
            raise Refused(
                "1",
                f"platform {event.platform} is withdrawn on {_day(at)}: no new cases "
                "for it",
            )
        return

    case = stream.case
    if case is None:
        raise Refused("1", f"case {event.case} is not filed; append CaseFiled for it first")
    if at < case.last_effective_at:
        raise Refused(
            "2",
            f"effective_at {_day(at)} is before the case's previous event "
            f"(effective {_day(case.last_effective_at)}); a case's events are "
            "effective in order",
        )
    allowed = ALLOWED_FROM[type(event)]
    if case.stage not in allowed:
        if case.stage in TERMINAL_STAGES and not isinstance(event, ev.EndUseCheckRecorded):
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

    if isinstance(event, ev.CaseReviewCleared) and event.office in case.cleared_by:
        raise Refused("2", f"case {case.case} was already cleared by {event.office}")
    elif isinstance(event, ev.HoldPlaced) and event.office in case.holds:
        raise Refused("2", f"{event.office} already holds case {case.case}")
    elif isinstance(event, ev.HoldLifted) and event.office not in case.holds:
        raise Refused(
            "2",
            f"{event.office} has no hold on case {case.case}"
            + (f" (held by {', '.join(case.holds)})" if case.holds else ""),
        )
    elif isinstance(event, ev.CongressionalNotified) and case.holds:
        raise Refused(
            "3",
            f"case {case.case} is held by {', '.join(case.holds)}; an unlifted hold "
            "blocks CongressionalNotified — append HoldLifted first",
        )
    elif isinstance(event, ev.EmergencyDeclared) and case.emergency:
        raise Refused("2", f"an emergency is already declared for case {case.case}")
    elif isinstance(event, ev.OfferIssued):
        _decide_offer(event, case, at, world)
    elif isinstance(event, ev.OfferAccepted):
        if case.offer_expires_at is not None and at > case.offer_expires_at:
            raise Refused(
                "4",
                f"the offer for case {case.case} expired at "
                f"{_day(case.offer_expires_at)}; acceptance on {_day(at)} is too late "
                "(record OfferExpired)",
            )
    elif isinstance(event, ev.OfferExpired):
        if case.offer_expires_at is not None and at < case.offer_expires_at:
            raise Refused(
                "4",
                f"the offer for case {case.case} is open until "
                f"{_day(case.offer_expires_at)}; it cannot expire on {_day(at)}",
            )
    elif isinstance(event, ev.DeliveryRecorded):
        if event.quantity > case.quantity_left:
            raise Refused(
                "4",
                f"a delivery of {event.quantity} would exceed the quantity of case "
                f"{case.case}: {case.delivered} of {case.quantity} delivered, "
                f"{case.quantity_left} left",
            )
    elif isinstance(event, ev.CaseClosed):
        if case.delivered < case.quantity:
            raise Refused(
                "2",
                f"case {case.case} closes once fully delivered: {case.delivered} of "
                f"{case.quantity} delivered (cancel it with CaseCancelled instead)",
            )
    elif isinstance(event, ev.EndUseCheckRecorded) and case.delivered == 0:
        raise Refused(
            "2",
            f"nothing of case {case.case} has been delivered yet; end-use checks "
            "follow a DeliveryRecorded",
        )


def _decide_offer(
    event: ev.OfferIssued, case: CaseState, at: datetime, world: World
) -> None:
    expires = instant(event.offer_expires_at)
    if expires <= at:
        raise Refused(
            "4",
            f"offer_expires_at {_day(expires)} must be after the offer's effective_at "
            f"{_day(at)}",
        )
    partner_stream = world.stream(f"partner:{case.partner}")
    group = partner_view(partner_stream, at).notification_group
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
    notified_group = partner_view(partner_stream, case.notified_at).notification_group
    days = world.thresholds_at(case.notified_at).group(notified_group).review_days
    ends = case.notified_at + timedelta(days=days)
    if at < ends:
        raise Refused(
            "3",
            f"{needed}; its {days}-day review period began with CongressionalNotified on "
            f"{_day(case.notified_at)} and ends on {_day(ends)} — offer on or after "
            "that date, or record EmergencyDeclared",
        )


# --- evolve -----------------------------------------------------------------------------


# The events partner_view and platform_withdrawn read (Stream.facts).
FACT_TYPES: tuple[type[ev.Event], ...] = (
    ev.PartnerRegistered,
    ev.NotificationGroupChanged,
    ev.PartnerSuspended,
    ev.PartnerReinstated,
    ev.PriorityOverrideGranted,
    ev.PriorityOverrideRevoked,
    ev.PlatformListed,  # so that every platform stream has facts (no fallback scan)
    ev.PlatformWithdrawn,
)


def evolve(stream: Stream, event: ev.Event) -> Stream:
    """The stream's state after an accepted event."""
    case = stream.case
    if isinstance(event, ev.CaseFiled):
        case = open_case(event)
    elif case is not None:
        case = evolve_case(case, event)
    facts = stream.facts
    if isinstance(event, FACT_TYPES):
        facts = (*_facts(stream), (len(stream.events), event))
    return Stream(stream.key, stream.version + 1, (*stream.events, event), case, facts)


def fold(stream: Stream, events: Sequence[ev.Event]) -> Stream:
    """``evolve`` over ``events`` in order, in one pass: the state of a stream read
    from the store."""
    if not events:
        return stream
    case = stream.case
    facts = []
    base = len(stream.events)
    for offset, event in enumerate(events):
        if isinstance(event, ev.CaseFiled):
            case = open_case(event)
        elif case is not None:
            case = evolve_case(case, event)
        if isinstance(event, FACT_TYPES):
            facts.append((base + offset, event))
    return Stream(
        stream.key,
        stream.version + len(events),
        (*stream.events, *events),
        case,
        (*_facts(stream), *facts) if facts else stream.facts,
    )


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
    changes: dict = {"last_effective_at": max(at, case.last_effective_at)}
    stage = STAGE_AFTER.get(type(event))
    if stage is not None:
        changes["stage"] = stage
    if isinstance(event, ev.CaseReviewCleared):
        changes["cleared_by"] = (*case.cleared_by, event.office)
    elif isinstance(event, ev.HoldPlaced):
        changes["holds"] = (*case.holds, event.office)
    elif isinstance(event, ev.HoldLifted):
        changes["holds"] = tuple(o for o in case.holds if o != event.office)
    elif isinstance(event, ev.CongressionalNotified):
        changes.update(
            notified_at=at,
            transmittal=event.transmittal,
            notified_value_usd=event.notified_value_usd,
        )
    elif isinstance(event, ev.EmergencyDeclared):
        changes["emergency"] = True
    elif isinstance(event, ev.OfferIssued):
        changes.update(
            offer_value_usd=event.value_usd,
            offer_expires_at=instant(event.offer_expires_at),
        )
    elif isinstance(event, ev.DeliveryRecorded):
        changes["delivered"] = case.delivered + event.quantity
    elif isinstance(event, ev.CaseSuspended):
        changes["resume_stage"] = case.stage
    elif isinstance(event, ev.CaseResumed):
        changes.update(stage=case.resume_stage, resume_stage=None)
    elif isinstance(event, ev.CaseReprioritized):
        changes["priority_class"] = event.priority_class
    return msgspec.structs.replace(case, **changes)


# --- describing a stream's state --------------------------------------------------------


def describe(stream: Stream) -> dict:
    """A stream's state as plain data (what ``arms-ledger history`` shows)."""
    out: dict = {"stream": stream.key, "version": stream.version}
    if stream.case is not None:
        case = msgspec.to_builtins(stream.case)
        case["quantity_left"] = stream.case.quantity_left
        return out | case
    kind = stream.key.partition(":")[0]
    last: dict[type, ev.Event] = {type(e): e for e in stream.events}
    if kind == "partner":
        view = partner_view(stream)
        out |= msgspec.to_builtins(view)
        spending = latest_spending(stream)
        if spending is not None:
            out |= {
                "pct_gdp": spending.pct_gdp,
                "pct_gdp_year": spending.year,
                "pct_gdp_source": spending.source,
            }
        assessed = last.get(ev.StrategicValueAssessed)
        out["strategic_score"] = assessed.score if assessed else None
        out["economic_contributions_usd"] = sum(
            e.amount_usd
            for e in stream.events
            if isinstance(e, ev.EconomicContributionRecorded)
        )
    elif kind == "platform":
        listed = last.get(ev.PlatformListed)
        capacity = last.get(ev.ProductionCapacitySet)
        catalog = last.get(ev.CatalogPriorityChanged)
        eeum = last.get(ev.EEUMDesignationChanged)
        out |= {
            "name": listed.name if listed else None,
            "prime": listed.prime if listed else None,
            "category": listed.category if listed else None,
            "units_per_month": capacity.units_per_month if capacity else None,
            "prioritized": catalog.prioritized if catalog else False,
            "catalog_edition": catalog.edition if catalog else None,
            "eeum": eeum.designated if eeum else False,
            "withdrawn": ev.PlatformWithdrawn in last,
        }
    elif stream.events:
        latest = stream.events[-1]
        out |= {
            k: v
            for k, v in msgspec.to_builtins(latest).items()
            if k not in ev.ENVELOPE_FIELDS
        }
    return out


def latest_spending(stream: Stream) -> ev.DefenseSpendingReported | None:
    """The report in force: the latest year; for the same year, the one recorded last."""
    found = None
    for e in stream.events:
        if isinstance(e, ev.DefenseSpendingReported) and (
            found is None or e.year >= found.year
        ):
            found = e
    return found
