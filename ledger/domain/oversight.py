"""Oversight flags (docs/domain.md, Rule 6): what an overseer should look at.

Flags never refuse an event; they judge the log. Two are raised by one event when it is
applied (``backdated``, ``qme_missing``); the EEUM inventory flags depend on the time
they are judged at, so the read models compute them in a view (``oversight_flags``)
from the deadlines here. A replay judges them at its own time (its as-of time, else its
knowledge cut, else the time of its last event); the live read models, now.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import instant

# A decision recorded more than this after it took effect is flagged.
BACKDATED_AFTER = timedelta(days=30)
# Israel is the partner the QME certification protects; it needs none itself.
QME_EXEMPT = frozenset({"ISR"})
# Enhanced end-use monitoring: an initial inventory within this of each delivery of a
# designated platform, and an inventory at least this often while it stays designated.
EEUM_INITIAL_WITHIN = timedelta(days=90)
EEUM_ANNUAL_WITHIN = timedelta(days=365)


def backdated(e: ev.Event) -> str | None:
    """Why a decision is flagged as backdated, or None. A correction takes effect when
    the event it corrects did, so it is flagged as a correction instead (``corrected``)."""
    if not e.DECISION or e.recorded_at is None or e.effective_at is None:
        return None
    if isinstance(e, ev.EventCorrected):
        return None
    lag = instant(e.recorded_at) - instant(e.effective_at)
    if lag <= BACKDATED_AFTER:
        return None
    return (
        f"{type(e).__name__} recorded {e.recorded_at[:10]}, {lag.days} days after it "
        "took effect"
    )


def qme_missing(e: ev.Event, partner: str, middle_east: bool) -> str | None:
    """Why a notification for a Middle East partner other than Israel is flagged for
    lacking QME certification, or None."""
    if (
        not isinstance(e, ev.CongressionalNotified)
        or not middle_east
        or partner in QME_EXEMPT
        or e.qme_certified
    ):
        return None
    return f"notification {e.transmittal} to {partner} without QME certification"


def corrected(e: ev.Event) -> str | None:
    """What a correction changed, for its flag (every correction is flagged, so that
    none can pass unseen), or None for any other event."""
    if not isinstance(e, ev.EventCorrected):
        return None
    what = f"{e.of} at log position {e.corrects}"
    if e.retracted:
        return f"{what} retracted by {e.actor}"
    was = e.was or {}
    changes = ", ".join(
        f"{field} {was.get(field, '?'):,} -> {value:,}"
        if isinstance(was.get(field), int)
        else f"{field} -> {value:,}"
        for field, value in sorted(e.corrected.items())
    )
    return f"{what} corrected by {e.actor}: {changes}"


# Out of sequence (docs/monitors.md): the cases ahead in a platform's queue that still
# wait, for each kind of event that serves a case: for a delivery, any case ahead with
# quantity left that is not suspended; for an offer, a case ahead not yet offered.
NOT_YET_OFFERED = frozenset({"filed", "review-cleared", "congressional-review", "notified"})


def waiting(e: ev.Event, stage: str) -> bool:
    """Whether a case ahead, at ``stage``, still waits for what ``e`` gives."""
    if isinstance(e, ev.OfferIssued):
        return stage in NOT_YET_OFFERED
    return stage != "suspended"


def out_of_sequence(
    e: ev.Event, platform: str, position: int, ahead: list[tuple[str, str]]
) -> str | None:
    """Why a delivery or an offer to the case at queue ``position`` is flagged: cases
    ahead of it (``ahead``: case and stage, in queue order) still wait, and the event
    gives no coded ``bypass_reason``. None otherwise."""
    if not isinstance(e, (ev.DeliveryRecorded, ev.OfferIssued)):
        return None
    if e.bypass_reason is not msgspec.UNSET:
        return None
    skipped = [case for case, stage in ahead if waiting(e, stage)]
    if not skipped:
        return None
    what = "delivery" if isinstance(e, ev.DeliveryRecorded) else "offer"
    shown = ", ".join(skipped[:3]) + (
        f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    )
    return (
        f"{what} to position {position} of the {platform} queue while {len(skipped)} "
        f"case(s) ahead still wait ({shown}), with no bypass_reason"
    )
