"""How far the weights may move before a queue's order changes (docs/whatif.md,
"Stability").

Under a scored policy a partner's score is ``w · c``: the weights ``w`` (on the simplex:
each in [0, 1], adding up to 1) times its three components ``c`` (``priority.score``).
For two cases ``a`` ahead of ``b`` in the same priority class and override group, ``a``
stays ahead while ``w · (c_a - c_b) > 0``: a half-plane of the simplex, the pair's
*region*. Everything else in the order is not linear in the weights, and is reported as
what decides instead:

- **class**: a higher priority class (expedited, normal, deferred) goes first whatever
  the weights;
- **override**: so does a partner with a priority override in force;
- **filing**: cases whose components are equal (two cases of one partner, or partners
  with the same facts) have equal scores under every weight; the filing date decides;
- **fcfs**: in ``fcfs`` mode the weights decide nothing.

Tiers never decide an order the score does not: a tier is a step function of the score,
higher scores never in a lower tier, so ordering by (tier, score) is ordering by score.

**Margin.** The distance between weights is the *weight moved*: half the sum of the
absolute changes, ``½‖w' - w‖₁`` (moving 0.05 from investment to economic is 0.05).
The smallest weight moved that flips a pair is found by moving weight from the
components where ``a`` leads most to the one where ``b`` leads most (a fractional
knapsack, solved exactly by that greedy order); ``flip_weights`` are the weights there.
None means no weights on the simplex flip the pair (``a`` leads in every component).

Scores are rounded to 4 decimals before they are compared, so within ``resolution``
(weight moved) of the margin the rounding, not the weights alone, decides: moving less
than ``margin - resolution`` in any direction never flips the pair, and moving
``margin + resolution`` along ``flip_weights``' path always does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import NamedTuple

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.priority import Entry, mode_of, sort_key

COMPONENTS = ("investment", "strategic", "economic")
ROUNDING = 1e-4  # the largest error rounding two scores to 4 decimals puts in their gap
EPSILON = 1e-12  # floating-point noise in a score gap

Vector = tuple[float, float, float]


class Pair(NamedTuple):
    """Why ``ahead`` is ahead of ``behind``, and how far the weights may move."""

    ahead: str  # case ids
    behind: str
    decided_by: str  # class, override, fcfs, filing or score
    difference: Vector | None  # ahead's components minus behind's (score only)
    margin: float | None  # weight moved before the pair flips; None: never
    flip_weights: Vector | None  # the nearest weights where it flips
    resolution: float | None  # weight moved within which rounding decides


class Place(NamedTuple):
    """How far the weights may move before a case's place in the queue changes: the
    nearest flip of any pair it is part of (None: no weights move it)."""

    case: str
    position: int  # 1 first
    nearest: Pair | None


class Stability(NamedTuple):
    """A queue's adjacent pairs, and the places of its first cases."""

    mode: str
    weights: Vector
    order: list[str]  # the cases, first first
    pairs: list[Pair]  # each adjacent pair, in queue order
    places: list[Place]  # the first ``top`` places; the first is who is first


def weights_of(policy: ev.PriorityPolicyAdopted | None) -> Vector:
    w = policy.weights if policy else ev.Weights()
    return (w.investment, w.strategic, w.economic)


def region(difference: Vector) -> str:
    """The pair's region as a linear inequality in the weights I, S and E: the terms
    where ``ahead`` leads first, zero terms left out (``0.2·S + 0.2008·E - 0.14·I > 0``)."""
    terms = sorted(
        ((d, name[0].upper()) for d, name in zip(difference, COMPONENTS, strict=True)),
        key=lambda t: -t[0],
    )
    text = ""
    for d, name in terms:
        if round(d, 4) == 0:
            continue
        sign = "-" if d < 0 else "+" if text else ""
        text += f"{' ' if text else ''}{sign}{' ' if text else ''}{abs(d):.4f}·{name}"
    return f"{text} > 0"


def analyse(
    entries: Sequence[Entry],
    components: Mapping[str, Vector],
    policy: ev.PriorityPolicyAdopted | None,
    top: int = 1,
) -> Stability:
    """The stability of a queue: ``entries`` in any order (they are sorted by the
    policy's ``sort_key``), ``components`` the partners' under that policy, and the
    places of the first ``top`` cases (the first place changes hands when any case
    overtakes the first)."""
    mode, weights = mode_of(policy), weights_of(policy)
    ordered = sorted(entries, key=lambda e: sort_key(e, mode))
    pairs = [pair(a, b, components, weights, mode) for a, b in pairwise(ordered)]
    places = []
    for k, entry in enumerate(ordered[:top]):
        found = [pair(a, entry, components, weights, mode) for a in ordered[:k]]
        found += [pair(entry, b, components, weights, mode) for b in ordered[k + 1 :]]
        flippable = [p for p in found if p.margin is not None]
        nearest = min(flippable, key=lambda p: p.margin or 0.0) if flippable else None
        places.append(Place(entry.case, k + 1, nearest))
    return Stability(mode, weights, [e.case for e in ordered], pairs, places)


def pair(
    ahead: Entry,
    behind: Entry,
    components: Mapping[str, Vector],
    weights: Vector,
    mode: str,
) -> Pair:
    """What decides that ``ahead`` goes before ``behind`` (already in that order)."""

    def fixed(by: str) -> Pair:
        return Pair(ahead.case, behind.case, by, None, None, None, None)

    if ahead.priority_class != behind.priority_class:
        return fixed("class")
    if ahead.override != behind.override:
        return fixed("override")
    if mode == "fcfs":
        return fixed("fcfs")
    a, b = components[ahead.partner], components[behind.partner]
    difference: Vector = (a[0] - b[0], a[1] - b[1], a[2] - b[2])
    if all(abs(d) <= EPSILON for d in difference):
        return fixed("filing")
    ties_to_ahead = (ahead.filed, ahead.case) < (behind.filed, behind.case)
    found = flip(weights, difference, ties_to_ahead)
    if found is None:
        return Pair(ahead.case, behind.case, "score", difference, None, None, None)
    return Pair(ahead.case, behind.case, "score", difference, *found)


def _path(difference: Vector) -> tuple[int, list[int]]:
    """Where weight goes (the component where ``behind`` leads most) and where it is
    taken from, best first (the components where ``ahead`` leads by more)."""
    target = min(range(3), key=lambda i: (difference[i], i))
    sources = sorted(
        (i for i in range(3) if difference[i] > difference[target]),
        key=lambda i: (-difference[i], i),
    )
    return target, sources


def flip(
    weights: Vector, difference: Vector, ties_to_ahead: bool = True
) -> tuple[float, Vector, float] | None:
    """The smallest weight moved that brings ``weights · difference`` to 0 (the pair's
    flip), the weights there, and the resolution there (``ROUNDING`` over the slowest
    rate, score gap closed per weight moved, just before and after); None if no weights
    on the simplex do. Where the gap reaches 0 only at a corner of the simplex, the
    scores tie there and the pair flips only if the tie goes to ``behind``."""
    gap = sum(w * d for w, d in zip(weights, difference, strict=True))
    target, sources = _path(difference)
    if not sources:  # equal differences: the gap is the same under every weight
        return None if gap > 0 else (0.0, weights, ROUNDING)
    moved, at = 0.0, list(weights)
    rates = []
    for i in sources:
        rate = difference[i] - difference[target]
        if at[i] <= 0:
            continue
        rates.append(rate)
        if gap <= EPSILON:  # past the flip: the rate at which the path goes on
            break
        step = min(at[i], gap / rate)
        at[i] -= step
        at[target] += step
        moved += step
        gap -= step * rate
        if gap <= EPSILON and at[i] > 0:  # the path goes on from this source, same rate
            break
    if gap > EPSILON:
        return None
    goes_on = any(at[i] > EPSILON for i in sources)
    if not goes_on and ties_to_ahead and gap > -EPSILON:
        return None
    slowest = min(rates[-2:]) if rates else difference[sources[0]] - difference[target]
    return moved, (at[0], at[1], at[2]), ROUNDING / slowest


def along(weights: Vector, difference: Vector, moved: float) -> Vector:
    """The weights after moving ``moved`` along the path ``flip`` takes (as far as the
    simplex allows): what a test or a chart uses to step across a margin."""
    target, sources = _path(difference)
    at = list(weights)
    for i in sources:
        step = min(at[i], moved)
        at[i] -= step
        at[target] += step
        moved -= step
    return (at[0], at[1], at[2])
