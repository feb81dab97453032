"""The audit log (every event with its envelope) and the oversight flags one event raises.

The EEUM inventory flags depend on the time they are judged at, so the
``oversight_flags`` view judges the ``eeum_clocks`` rows (``projections.eeum``, from
``deliveries``, ``end_use_checks`` and ``eeum_designations``).
"""

from __future__ import annotations

from functools import cache
from operator import attrgetter

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain import oversight


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


# An oversight flag's row in ``raised_flags`` (the ``event_flags`` view words it): the
# event's position, the flag's kind by its number in ``oversight.FLAG_KINDS``, the partner,
# and either the detail or, for an out-of-sequence flag, its ``oversight.Skipped`` (the
# view takes the stream and the effective time from the event's ``audit_log`` row).
_KIND = {kind: n for n, kind in enumerate(oversight.FLAG_KINDS)}
_NO_SKIP = (None, None, None, None, None)


def _row(
    position: int, kind: oversight.FlagKind, partner: str | None, detail: str
) -> tuple:
    return (position, _KIND[kind], partner, detail, *_NO_SKIP)


def backdated(position: int, e: ev.Event, partner: str | None) -> tuple | None:
    """The ``raised_flags`` row of a backdated decision, if it is one."""
    detail = oversight.backdated(e)
    if detail is None:
        return None
    return _row(position, "backdated-decision", partner, detail)


def qme_missing(
    position: int, e: ev.Event, partner: str, middle_east: bool
) -> tuple | None:
    """The ``raised_flags`` row of a notification lacking QME certification, if any."""
    detail = oversight.qme_missing(e, partner, middle_east)
    if detail is None:
        return None
    return _row(position, "qme-not-certified", partner, detail)


def corrected(position: int, e: ev.Event, partner: str) -> tuple | None:
    """The ``raised_flags`` row of a correction, if the event is one."""
    detail = oversight.corrected(e)
    if detail is None:
        return None
    return _row(position, "correction", partner, detail)


OUT_OF_SEQUENCE = _KIND["out-of-sequence"]


def out_of_sequence(
    position: int,
    e: ev.Event,
    partner: str,
    platform: str,
    at: int,
    cases: list[str],
    stages: list[str],
) -> tuple | None:
    """The ``raised_flags`` row of a delivery or offer out of its queue's sequence
    (``cases`` ahead of it, in order, and their ``stages``): its ``oversight.Skipped``."""
    found = oversight.skipped(e, platform, at, cases, stages)
    if found is None:
        return None
    return (position, OUT_OF_SEQUENCE, partner, None, *found)
