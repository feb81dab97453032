"""The facts in force: which partner, platform and policy facts hold at a time.

This is the one fold of facts. The rules decide on it, ``arms-ledger history --state``
shows it, the read models keep it, and every replay rebuilds it (docs/domain.md, "Facts
in force"):

- **Reference facts.** A partner's registration (``PartnerRegistered``) and a platform's
  listing (``PlatformListed``) say that the partner or platform exists. They hold in
  every view, whatever their ``effective_at``: on the write side, in the live read
  models and in every ``--as-of``, ``--known-at`` or ``--at-position`` replay.
- **Facts in force at T.** Every other fact in force at T is the one with the latest
  ``effective_at`` at or before T; between facts effective at the same instant, the
  later in the log wins. The registration's notification group counts as a group fact
  effective at the registration's ``effective_at``; before that it is only the fallback,
  used when no group change is in force.
- **Defense spending** in force is the report of the latest year; for the same year,
  the report recorded last.
- **Economic contributions** add up.

A fold is built by applying events in log order (``apply``), each with its position (its
log position, or its index in its stream: only the order within one stream matters).
Applying only the events effective at or before T, plus the reference facts, with
``as_of=T`` gives the facts in force at T. So the state depends on which events were
applied, not on the order they came in: a backdated event lands where it belongs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import effective
from arms_ledger.ledger.domain.values import MAX_TOTAL_USD
from arms_ledger.ledger.errors import LedgerError

E = TypeVar("E", bound=ev.Event)

# Facts that hold in every view, whatever their effective time.
REFERENCE_TYPES: tuple[type[ev.Event], ...] = (ev.PartnerRegistered, ev.PlatformListed)


def is_reference(event: ev.Event) -> bool:
    return type(event) in REFERENCE_TYPES


def holds_at(event: ev.Event, at: datetime | None) -> bool:
    """Whether the event is part of the facts in force at ``at`` (None: every event)."""
    return at is None or is_reference(event) or effective(event) <= at


class Fact(NamedTuple):
    """A value and when it took effect; the latest in (effective, position) wins."""

    at: datetime
    position: int
    value: Any


def newer(current: Fact | None, event: ev.Event, position: int, value: Any) -> Fact:
    """``current`` or the fact ``event`` sets: the later in (effective, position)."""
    at = effective(event)
    if current is None or (at, position) > (current.at, current.position):
        return Fact(at, position, value)
    return current


def position_of(fact: Fact | None) -> int | None:
    """The position of the event that set a fact, if any."""
    return None if fact is None else fact.position


def in_force(items: Iterable[E], at: datetime) -> E | None:
    """Of events given in log order, the one in force at ``at``: the latest effective
    at or before it (ties: the later in the log)."""
    found: E | None = None
    latest: datetime | None = None
    for item in items:
        when = effective(item)
        if when <= at and (latest is None or when >= latest):
            found, latest = item, when
    return found


@dataclass(slots=True)
class PartnerFacts:
    """A partner's facts, folded from its events (see the module's rules)."""

    partner: str
    as_of: datetime | None = None  # a replay's time; None: live, every event applied
    registered: ev.PartnerRegistered | None = None
    registered_position: int | None = None
    group: Fact | None = None  # value: the notification group
    suspended: Fact | None = None  # value: True while suspended
    override: Fact | None = None  # value: the legal basis, or None once revoked
    spending: tuple[int, int, ev.DefenseSpendingReported] | None = None  # year, position
    strategic: Fact | None = None  # value: the StrategicValueAssessed event
    economic_usd: int = 0
    economic_contributions: int = 0

    def apply(self, event: ev.Event, position: int) -> None:
        match event:
            case ev.PartnerRegistered():
                self.registered, self.registered_position = event, position
                if self.as_of is None or effective(event) <= self.as_of:
                    self.group = newer(
                        self.group, event, position, event.notification_group
                    )
            case ev.NotificationGroupChanged():
                self.group = newer(self.group, event, position, event.notification_group)
            case ev.PartnerSuspended() | ev.PartnerReinstated():
                suspended = type(event) is ev.PartnerSuspended
                self.suspended = newer(self.suspended, event, position, suspended)
            case ev.PriorityOverrideGranted():
                self.override = newer(self.override, event, position, event.legal_basis)
            case ev.PriorityOverrideRevoked():
                self.override = newer(self.override, event, position, None)
            case ev.DefenseSpendingReported():
                if self.spending is None or (event.year, position) > self.spending[:2]:
                    self.spending = (event.year, position, event)
            case ev.StrategicValueAssessed():
                self.strategic = newer(self.strategic, event, position, event)
            case ev.EconomicContributionRecorded():
                total = self.economic_usd + event.amount_usd
                if total > MAX_TOTAL_USD:  # the rules refuse it: a forged or damaged log
                    raise LedgerError(
                        f"the event at log position {position} makes partner "
                        f"{self.partner}'s economic contributions total ${total:,}, "
                        f"beyond the ${MAX_TOTAL_USD:,} the ledger totals: no log the "
                        "rules accept holds it; `arms-ledger audit verify` checks the log"
                    )
                self.economic_usd = total
                self.economic_contributions += 1

    @property
    def notification_group(self) -> str:
        if self.group is not None:
            return self.group.value
        return self.registered.notification_group if self.registered else "other"

    @property
    def is_suspended(self) -> bool:
        return bool(self.suspended and self.suspended.value)

    @property
    def has_override(self) -> bool:
        return self.override is not None and self.override.value is not None

    @property
    def pct_gdp(self) -> float | None:
        return self.spending[2].pct_gdp if self.spending else None

    @property
    def strategic_score(self) -> float | None:
        return self.strategic.value.score if self.strategic else None

    @property
    def middle_east(self) -> bool:
        return bool(self.registered and self.registered.middle_east)


@dataclass(slots=True)
class PlatformFacts:
    """A platform's facts, folded from its events (see the module's rules)."""

    platform: str
    listed: ev.PlatformListed | None = None
    listed_position: int | None = None
    capacity: Fact | None = None  # value: units per month
    catalog: Fact | None = None  # value: the CatalogPriorityChanged event
    eeum: Fact | None = None  # value: the EEUMDesignationChanged event
    withdrawn: Fact | None = None

    def apply(self, event: ev.Event, position: int) -> None:
        match event:
            case ev.PlatformListed():
                self.listed, self.listed_position = event, position
            case ev.ProductionCapacitySet():
                self.capacity = newer(self.capacity, event, position, event.units_per_month)
            case ev.CatalogPriorityChanged():
                self.catalog = newer(self.catalog, event, position, event)
            case ev.EEUMDesignationChanged():
                self.eeum = newer(self.eeum, event, position, event)
            case ev.PlatformWithdrawn():
                self.withdrawn = newer(self.withdrawn, event, position, True)

    @property
    def units_per_month(self) -> float | None:
        return None if self.capacity is None else self.capacity.value

    @property
    def prioritized(self) -> bool:
        return bool(self.catalog and self.catalog.value.prioritized)

    @property
    def eeum_designated(self) -> bool:
        return bool(self.eeum and self.eeum.value.designated)


def partner_facts(
    partner: str, events: Iterable[tuple[int, ev.Event]], at: datetime | None = None
) -> PartnerFacts:
    """The partner's facts in force at ``at`` (None: with every event), from its events
    with their positions, in log order."""
    facts = PartnerFacts(partner, as_of=at)
    for position, event in events:
        if holds_at(event, at):
            facts.apply(event, position)
    return facts


def platform_facts(
    platform: str, events: Iterable[tuple[int, ev.Event]], at: datetime | None = None
) -> PlatformFacts:
    """The platform's facts in force at ``at`` (None: with every event)."""
    facts = PlatformFacts(platform)
    for position, event in events:
        if holds_at(event, at):
            facts.apply(event, position)
    return facts
