"""Partners and the policy in force on the read side: the facts of ``facts`` (the one
fold the rules use too), scored under the policy in force by ``priority``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import effective
from arms_ledger.ledger.domain.facts import Fact, PartnerFacts, newer, position_of
from arms_ledger.ledger.domain.priority import Score, score

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
            self.priority = newer(self.priority, event, position, event)
            return self.priority is not before
        self.thresholds = newer(self.thresholds, event, position, event)
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
                assert isinstance(e, ev.NotificationThresholdsSet)
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


# --- a partner ----------------------------------------------------------------------------

UNSCORED = score(None, None, 0, None)


@dataclass(slots=True)
class PartnerState(PartnerFacts):
    """A partner's facts (``PartnerFacts``) and its score under the policy in force."""

    scored: Score = UNSCORED
    policy: str | None = None

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
            state.suspended = Fact(effective(e), suspended, type(e) is ev.PartnerSuspended)
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
        self.scored = score(self.pct_gdp, self.strategic_score, self.economic_usd, policy)
        self.policy = policy.policy if policy else None

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
            self.notification_group if r or self.group else None,
            self.is_suspended,
            self.has_override,
            self.override.value if self.override else None,
            spending.pct_gdp if spending else None,
            spending.year if spending else None,
            spending.source if spending else None,
            round(s.investment, 4),
            s.strategic,  # unrounded: what the score was computed from
            json.dumps(list(assessed.factors)) if assessed else None,
            self.economic_usd,
            self.economic_contributions,
            round(s.economic, 4),
            *s.points,
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
