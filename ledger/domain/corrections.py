"""Corrections (docs/domain.md, "Corrections"): which events may be corrected, and an
event as the corrections recorded so far leave it.

A correction (``EventCorrected``) names an earlier event of its case by log position and
gives new values for some of its fields, or retracts it. The rules (``rules``) decide
whether it may be appended; the case fold (``cases.evolve_case``) applies it; intake
(``intake.complete_correction``) fills what the ledger knows of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from arms_ledger.ledger.domain import events as ev

# The fields of each event type a correction may give new values for. Every other event
# type, and every other field (the case's partner and platform, times, offices, kinds),
# is not corrected: docs/domain.md, "Corrections", says why.
CORRECTABLE: dict[type[ev.Event], tuple[str, ...]] = {
    ev.CaseFiled: ("quantity", "estimated_value_usd"),
    ev.CongressionalNotified: ("notified_value_usd",),
    ev.OfferIssued: ("value_usd",),
    ev.DeliveryRecorded: ("quantity",),
}
# The event types a correction may retract (withdraw as never having happened).
RETRACTABLE: tuple[type[ev.Event], ...] = (ev.DeliveryRecorded,)


def in_force(
    original: ev.Event, position: int, events: Iterable[ev.Event]
) -> tuple[ev.Event, ev.EventCorrected | None]:
    """The event at log ``position`` as the corrections among ``events`` (its case's
    events, in log order) leave it, and the correction that retracted it, if one did."""
    current, retraction = original, None
    for e in events:
        if isinstance(e, ev.EventCorrected) and e.corrects == position:
            if e.retracted:
                retraction = e
            else:
                current = msgspec.structs.replace(current, **e.corrected)
    return current, retraction


def replaced(fields: Iterable[str], event: ev.Event) -> dict[str, int]:
    """The values of ``fields`` in ``event``: what a correction of them replaces."""
    return {f: getattr(event, f) for f in fields}


def retracted_fields(event: ev.Event) -> tuple[str, ...]:
    """What a retraction of ``event`` withdraws (and records in its ``was``)."""
    return CORRECTABLE.get(type(event), ())


def with_values(event: ev.Event, values: dict[str, Any]) -> ev.Event:
    """``event`` with ``values`` in place, checked against its type's constraints
    (raises ``msgspec.ValidationError``)."""
    data = msgspec.to_builtins(event) | values
    return msgspec.convert(data, type(event))
