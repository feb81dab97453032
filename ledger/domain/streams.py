"""A stream's state on the write side: its events in order and, for a case, the case.

``evolve`` folds one accepted event in, ``fold`` a run of them; ``describe`` is what
``arms-ledger history --state`` shows, through the same fold of facts as the rules and
the read models (``facts``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.cases import CaseState, evolve_case, open_case
from arms_ledger.ledger.domain.facts import partner_facts, platform_facts

# The events a decision reads of a partner or platform (kept in ``Stream.facts``): a
# partner's other events (spending, contributions, …) can be many, and a decision
# should not walk them all.
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


class Stream(msgspec.Struct, frozen=True):
    """One stream's state: its events in order and, for a case, the folded case.

    ``facts`` are the events of ``FACT_TYPES``, each with its index in ``events``.
    """

    key: str
    version: int = 0
    events: tuple[ev.Event, ...] = ()
    case: CaseState | None = None
    facts: tuple[tuple[int, ev.Event], ...] = ()

    def fact_events(self) -> tuple[tuple[int, ev.Event], ...]:
        """``facts`` (worked out from ``events`` for a Stream built by hand)."""
        if self.facts or not self.events:
            return self.facts
        return tuple((i, e) for i, e in enumerate(self.events) if isinstance(e, FACT_TYPES))


def evolve(stream: Stream, event: ev.Event) -> Stream:
    """The stream's state after an accepted event: ``fold`` of that one event."""
    case = stream.case
    if isinstance(event, ev.CaseFiled):
        case = open_case(event)
    elif case is not None:
        case = evolve_case(case, event)
    facts = stream.facts
    if isinstance(event, FACT_TYPES):
        facts = (*stream.fact_events(), (len(stream.events), event))
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
        (*stream.fact_events(), *facts) if facts else stream.facts,
    )


def describe(stream: Stream) -> dict[str, Any]:
    """A stream's state as plain data (what ``arms-ledger history --state`` shows): the
    facts in force with every recorded event, as the live read models have them."""
    out: dict[str, Any] = {"stream": stream.key, "version": stream.version}
    if stream.case is not None:
        case = msgspec.to_builtins(stream.case)
        case["quantity_left"] = stream.case.quantity_left
        return out | case
    kind, _, ident = stream.key.partition(":")
    numbered = list(enumerate(stream.events))
    if kind == "partner":
        p = partner_facts(ident, numbered)
        spending = p.spending[2] if p.spending else None
        return out | {
            "registered": p.registered is not None,
            "name": p.registered.name if p.registered else "",
            "notification_group": p.notification_group,
            "middle_east": p.middle_east,
            "suspended": p.is_suspended,
            "override": p.has_override,
            "pct_gdp": spending.pct_gdp if spending else None,
            "pct_gdp_year": spending.year if spending else None,
            "pct_gdp_source": spending.source if spending else None,
            "strategic_score": p.strategic_score,
            "economic_contributions_usd": p.economic_usd,
        }
    if kind == "platform":
        f = platform_facts(ident, numbered)
        listed = f.listed
        catalog = f.catalog.value if f.catalog else None
        return out | {
            "name": listed.name if listed else None,
            "prime": listed.prime if listed else None,
            "category": listed.category if listed else None,
            "units_per_month": f.units_per_month,
            "prioritized": f.prioritized,
            "catalog_edition": catalog.edition if catalog else None,
            "eeum": f.eeum_designated,
            "withdrawn": f.withdrawn is not None,
        }
    if stream.events:
        latest = stream.events[-1]
        out |= {
            k: v
            for k, v in msgspec.to_builtins(latest).items()
            if k not in ev.ENVELOPE_FIELDS
        }
    return out
