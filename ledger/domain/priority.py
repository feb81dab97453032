"""The priority policy (docs/domain.md, "The priority policy"): the score, the tiers, the
order of a queue and its estimated completion.

This is what the 2026 strategy changed and what overseers ask about, so it lives here
and nowhere else: the read models, the web view and any what-if import it.

- **Components**, each in [0, 1]: defense investment (percent of GDP over the policy's
  target, capped at 1), strategic value (the latest assessment's score), economic
  contribution (contributions to date over the policy's target, capped at 1).
- **Score**: the weighted sum, rounded to 4 decimals; **tier** 1 at or above
  ``tiers.tier1``, 2 at or above ``tiers.tier2``, else 3.
- **Queue order** (``sort_key``): priority class (expedited, normal, deferred), then a
  partner with a priority override in force, then tier, then score (higher first), then
  the filing's ``effective_at`` (earlier first), then the case id. Until a policy is
  adopted the mode is ``fcfs``: tier and score drop out.
- **Estimated completion** of a queued case: the quantity left of it and of every case
  ahead of it, over the platform's production capacity, in months (one decimal).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from arms_ledger.ledger.domain import events as ev

CLASS_RANK = {"expedited": 0, "normal": 1, "deferred": 2}
MODES = ("fcfs", "scored")


class Score(NamedTuple):
    investment: float  # the components, each in [0, 1]
    strategic: float
    economic: float
    score: float  # the weighted sum, 4 decimals
    tier: int
    points: tuple[float, float, float] = (0.0, 0.0, 0.0)  # weight x component, 4 decimals


def tier_of(total: float, tiers: ev.Tiers) -> int:
    return 1 if total >= tiers.tier1 else 2 if total >= tiers.tier2 else 3


def score(
    pct_gdp: float | None,
    strategic: float | None,
    economic_usd: int,
    policy: ev.PriorityPolicyAdopted | None,
) -> Score:
    """The three components, the weighted score (4 decimals) and the tier.

    Without a policy the default weights, targets and tiers apply (the queue is then
    ``fcfs`` anyway).
    """
    weights = policy.weights if policy else ev.Weights()
    targets = policy.targets if policy else ev.Targets()
    tiers = policy.tiers if policy else ev.Tiers()
    i = min((pct_gdp or 0.0) / targets.pct_gdp, 1.0)
    s = strategic or 0.0
    e = min(economic_usd / targets.economic_usd, 1.0)
    parts = (weights.investment * i, weights.strategic * s, weights.economic * e)
    total = round(sum(parts), 4)
    points = (round(parts[0], 4), round(parts[1], 4), round(parts[2], 4))
    return Score(i, s, e, total, tier_of(total, tiers), points)


def mode_of(policy: ev.PriorityPolicyAdopted | None) -> str:
    """``fcfs`` until a priority policy is adopted, then the policy's mode."""
    return "fcfs" if policy is None else policy.mode


class Entry(NamedTuple):
    """What a queue knows of a case: all that orders it, and what its row shows."""

    case: str
    partner: str
    priority_class: str
    override: bool
    tier: int
    score: float
    filed_at: str
    filed: datetime
    stage: str
    quantity_left: int


def sort_key(entry: Entry, mode: str) -> tuple:
    """The case's place in its queue: lower sorts first."""
    rank, first = CLASS_RANK[entry.priority_class], not entry.override
    if mode == "fcfs":
        return (rank, first, entry.filed, entry.case)
    return (rank, first, entry.tier, -entry.score, entry.filed, entry.case)


def completion_months(cumulative: int, units_per_month: float | None) -> float | None:
    """Months until ``cumulative`` units are produced (None without a capacity)."""
    return round(cumulative / units_per_month, 1) if units_per_month else None
