"""Partners and the priority policy: the facts in force, the score and the tier.

Every fact is kept with the effective time and log position of the event that set it,
and a later event replaces it only if it is later in (effective time, position) order.
So the state depends on which events were applied, not on the order they came in: a
backdated event lands where it belongs, and a rebuild equals the incremental build.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.rules import effective


class Fact(NamedTuple):
    """A value and when it took effect; the latest in (effective, position) wins."""

    at: datetime
    position: int
    value: Any


def latest(current: Fact | None, event: ev.Event, position: int, value: Any) -> Fact:
    at = effective(event)
    if current is None or (at, position) > (current.at, current.position):
        return Fact(at, position, value)
    return current


# --- the policy in force ------------------------------------------------------------------


@dataclass(slots=True)
class Policies:
    """Priority policies and threshold sets adopted; the latest effective is in force."""

    adopted: dict[int, ev.PolicyEvent] = field(default_factory=dict)
    priority: Fact | None = None
    thresholds: Fact | None = None

    def apply(self, event: ev.PolicyEvent, position: int) -> bool:
        """Record an adoption; True if the priority policy in force changed."""
        self.adopted[position] = event
        if isinstance(event, ev.PriorityPolicyAdopted):
            before = self.priority
            self.priority = latest(self.priority, event, position, event)
            return self.priority is not before
        self.thresholds = latest(self.thresholds, event, position, event)
        return False

    @property
    def in_force(self) -> ev.PriorityPolicyAdopted | None:
        return None if self.priority is None else self.priority.value

    @property
    def mode(self) -> str:
        """``fcfs`` until a policy is adopted (docs/domain.md, The priority policy), then
        the policy's mode."""
        policy = self.in_force
        return "fcfs" if policy is None else policy.mode

    def rows(self) -> list[tuple]:
        in_force = {f.position for f in (self.priority, self.thresholds) if f is not None}
        rows = []
        for position, e in self.adopted.items():
            if isinstance(e, ev.PriorityPolicyAdopted):
                params: Any = {"weights": e.weights, "targets": e.targets, "tiers": e.tiers}
                name, basis, mode = e.name, e.legal_basis, e.mode
            else:
                params, name, basis, mode = e.groups, None, None, None
            rows.append(
                (
                    position,
                    e.policy,
                    type(e).__name__,
                    name,
                    basis,
                    mode,
                    ev.encoder.encode(params).decode(),
                    e.effective_at,
                    position in in_force,
                )
            )
        return rows


# --- scoring (docs/domain.md, The priority policy) ---------------------------------------


class Score(NamedTuple):
    investment: float
    strategic: float
    economic: float
    score: float
    tier: int


def score(
    pct_gdp: float | None,
    strategic: float | None,
    economic_usd: int,
    policy: ev.PriorityPolicyAdopted | None,
) -> Score:
    """The three components, the weighted score (4 decimals) and the tier.

    Without a policy the defaults of docs/domain.md (The priority policy) apply (the
    queue is then fcfs anyway).
    """
    weights = policy.weights if policy else ev.Weights()
    targets = policy.targets if policy else ev.Targets()
    tiers = policy.tiers if policy else ev.Tiers()
    i = min((pct_gdp or 0.0) / targets.pct_gdp, 1.0)
    s = strategic or 0.0
    e = min(economic_usd / targets.economic_usd, 1.0)
    total = round(weights.investment * i + weights.strategic * s + weights.economic * e, 4)
    tier = 1 if total >= tiers.tier1 else 2 if total >= tiers.tier2 else 3
    return Score(i, s, e, total, tier)


# --- a partner ------------------------------------------------------------------------------


@dataclass(slots=True)
class PartnerState:
    partner: str
    registered: ev.PartnerRegistered | None = None
    registered_position: int | None = None
    group: Fact | None = None
    suspended: Fact | None = None
    override: Fact | None = None  # value: the legal basis, or None once revoked
    spending: tuple[int, int, ev.DefenseSpendingReported] | None = None  # year, position
    strategic: Fact | None = None  # value: the StrategicValueAssessed event
    economic_usd: int = 0
    economic_contributions: int = 0
    scored: Score = score(None, None, 0, None)
    policy: str | None = None

    def apply(self, event: ev.PartnerEvent, position: int) -> None:
        if isinstance(event, ev.PartnerRegistered):
            self.registered, self.registered_position = event, position
            self.group = latest(self.group, event, position, event.notification_group)
        elif isinstance(event, ev.NotificationGroupChanged):
            self.group = latest(self.group, event, position, event.notification_group)
        elif isinstance(event, (ev.PartnerSuspended, ev.PartnerReinstated)):
            value = isinstance(event, ev.PartnerSuspended)
            self.suspended = latest(self.suspended, event, position, value)
        elif isinstance(event, ev.PriorityOverrideGranted):
            self.override = latest(self.override, event, position, event.legal_basis)
        elif isinstance(event, ev.PriorityOverrideRevoked):
            self.override = latest(self.override, event, position, None)
        elif isinstance(event, ev.DefenseSpendingReported):
            # The latest year; for the same year, the report recorded last.
            if self.spending is None or (event.year, position) > self.spending[:2]:
                self.spending = (event.year, position, event)
        elif isinstance(event, ev.StrategicValueAssessed):
            self.strategic = latest(self.strategic, event, position, event)
        elif isinstance(event, ev.EconomicContributionRecorded):
            self.economic_usd += event.amount_usd
            self.economic_contributions += 1

    @classmethod
    def restore(
        cls, partner: str, positions: tuple, economic: tuple[int, int], events: dict
    ) -> PartnerState:
        """The state ``apply`` folds, from the positions of the events that set each fact
        (a ``partners`` row's ``*_position`` columns, ``POSITIONS`` order), those events,
        and the economic sum and count: a partner's stream is not read again."""
        state = cls(partner, economic_usd=economic[0], economic_contributions=economic[1])
        registered, group, suspended, override, spending, strategic = positions
        if registered is not None:
            state.registered, state.registered_position = events[registered], registered
        if group is not None:
            e = events[group]
            state.group = Fact(effective(e), group, e.notification_group)
        if suspended is not None:
            e = events[suspended]
            state.suspended = Fact(
                effective(e), suspended, isinstance(e, ev.PartnerSuspended)
            )
        if override is not None:
            e = events[override]
            basis = e.legal_basis if isinstance(e, ev.PriorityOverrideGranted) else None
            state.override = Fact(effective(e), override, basis)
        if spending is not None:
            e = events[spending]
            state.spending = (e.year, spending, e)
        if strategic is not None:
            e = events[strategic]
            state.strategic = Fact(effective(e), strategic, e)
        return state

    def rescore(self, policy: ev.PriorityPolicyAdopted | None) -> None:
        self.scored = score(
            self.spending[2].pct_gdp if self.spending else None,
            self.strategic.value.score if self.strategic else None,
            self.economic_usd,
            policy,
        )
        self.policy = policy.policy if policy else None

    @property
    def has_override(self) -> bool:
        return self.override is not None and self.override.value is not None

    def sort_fields(self) -> tuple[bool, int, float]:
        """What of the partner orders its cases: override, tier, score."""
        return (self.has_override, self.scored.tier, self.scored.score)

    def row(self) -> tuple:
        r = self.registered
        spending = self.spending[2] if self.spending else None
        assessed = self.strategic.value if self.strategic else None
        s = self.scored
        return (
            self.partner,
            r.name if r else None,
            r.region if r else None,
            r.nato_member if r else None,
            r.middle_east if r else None,
            self.group.value if self.group else None,
            bool(self.suspended and self.suspended.value),
            self.has_override,
            self.override.value if self.override else None,
            spending.pct_gdp if spending else None,
            spending.year if spending else None,
            spending.source if spending else None,
            round(s.investment, 4),
            round(s.strategic, 4),
            json.dumps(list(assessed.factors)) if assessed else None,
            self.economic_usd,
            self.economic_contributions,
            round(s.economic, 4),
            s.score,
            s.tier,
            self.policy,
            self.registered_position,
            position_of(self.group),
            position_of(self.suspended),
            position_of(self.override),
            self.spending[1] if self.spending else None,
            position_of(self.strategic),
        )


# The partners columns ``PartnerState.restore`` reads, in its order.
POSITIONS = (
    "registered_position",
    "group_position",
    "suspended_position",
    "override_position",
    "spending_position",
    "strategic_position",
)


def position_of(fact: Fact | None) -> int | None:
    """The log position of the event that set a fact, if any."""
    return None if fact is None else fact.position
