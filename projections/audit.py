"""The audit log (every event with its envelope) and the oversight flags one event raises.

The EEUM inventory flags depend on the time they are judged at, so they are computed by
the ``oversight_flags`` view from ``deliveries``, ``end_use_checks`` and
``eeum_designations`` (see ``projections.schema``).
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from operator import attrgetter

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import instant

BACKDATED_AFTER = timedelta(days=30)
# Israel is the partner the QME certification protects; it needs none itself.
QME_EXEMPT = frozenset({"ISR"})


@cache
def _payload(cls: type[ev.Event]) -> tuple[type[msgspec.Struct], attrgetter]:
    """A Struct of the event type's own fields, in order, and a getter of their values:
    it encodes as the JSON object of those fields, faster than a dict."""
    fields = ev.payload_fields(cls)
    struct = msgspec.defstruct(f"{cls.__name__}Payload", [(f, object) for f in fields])
    return struct, attrgetter(*fields, "actor")  # a tuple even for one field


_encode = msgspec.json.Encoder().encode


def payload_json(e: ev.Event) -> str:
    """The event's own fields (not the envelope) as a JSON object."""
    struct, values = _payload(type(e))
    return _encode(struct(*values(e)[:-1])).decode()


def audit_row(position: int, stream: str, version: int, e: ev.Event) -> tuple:
    cls = type(e)
    return (
        position,
        stream,
        version,
        cls.__name__,
        cls.DECISION,
        e.actor,
        e.rationale,
        e.reference,
        e.effective_at,
        e.recorded_at,
        e.idempotency_key,
        payload_json(e),
    )


def backdated(position: int, stream: str, e: ev.Event, partner: str | None) -> tuple | None:
    """A decision effective more than 30 days before it was recorded (rule 6)."""
    if not e.DECISION:
        return None
    lag = instant(e.recorded_at) - instant(e.effective_at)
    if lag <= BACKDATED_AFTER:
        return None
    return (
        position,
        "backdated-decision",
        stream,
        partner,
        e.effective_at,
        f"{type(e).__name__} recorded {e.recorded_at[:10]}, {lag.days} days after it "
        "took effect",
    )


def qme_missing(
    position: int, stream: str, e: ev.Event, partner: str, middle_east: bool
) -> tuple | None:
    """A notification for a Middle East partner other than Israel without QME (rule 6)."""
    if (
        not isinstance(e, ev.CongressionalNotified)
        or not middle_east
        or partner in QME_EXEMPT
        or e.qme_certified
    ):
        return None
    return (
        position,
        "qme-not-certified",
        stream,
        partner,
        e.effective_at,
        f"notification {e.transmittal} to {partner} without QME certification",
    )
