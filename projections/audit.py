"""The audit log (every event with its envelope) and the oversight flags one event raises.

The EEUM inventory flags depend on the time they are judged at, so they are computed by
the ``oversight_flags`` view from ``deliveries``, ``end_use_checks`` and
``eeum_designations`` (see ``projections.schema``).
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache

import msgspec

from ledger import events as ev
from ledger.decision import instant
from ledger.store import Recorded

BACKDATED_AFTER = timedelta(days=30)
# Israel is the partner the QME certification protects; it needs none itself.
QME_EXEMPT = frozenset({"ISR"})


@cache
def _payload_fields(cls: type[ev.Event]) -> tuple[str, ...]:
    return tuple(ev.payload_fields(cls))


_encode = msgspec.json.Encoder().encode


def audit_row(recorded: Recorded) -> tuple:
    e = recorded.event
    cls = type(e)
    payload = {f: getattr(e, f) for f in _payload_fields(cls)}
    return (
        recorded.position,
        recorded.stream,
        recorded.version,
        cls.__name__,
        cls.DECISION,
        e.actor,
        e.rationale,
        e.reference,
        e.effective_at,
        e.recorded_at,
        e.idempotency_key,
        _encode(payload).decode(),
    )


def backdated(recorded: Recorded, partner: str | None) -> tuple | None:
    """A decision effective more than 30 days before it was recorded (rule 6)."""
    e = recorded.event
    if not e.DECISION:
        return None
    lag = instant(e.recorded_at) - instant(e.effective_at)
    if lag <= BACKDATED_AFTER:
        return None
    return (
        recorded.position,
        "backdated-decision",
        recorded.stream,
        partner,
        e.effective_at,
        f"{type(e).__name__} recorded {e.recorded_at[:10]}, {lag.days} days after it "
        "took effect",
    )


def qme_missing(
    recorded: Recorded, partner: str, middle_east: bool
) -> tuple | None:
    """A notification for a Middle East partner other than Israel without QME (rule 6)."""
    e = recorded.event
    if (
        not isinstance(e, ev.CongressionalNotified)
        or not middle_east
        or partner in QME_EXEMPT
        or e.qme_certified
    ):
        return None
    return (
        recorded.position,
        "qme-not-certified",
        recorded.stream,
        partner,
        e.effective_at,
        f"notification {e.transmittal} to {partner} without QME certification",
    )
