"""Oversight flags (docs/domain.md, Rule 6): what an overseer should look at.

Flags never refuse an event; they judge the log. Two are raised by one event when it is
applied (``backdated``, ``qme_missing``); the EEUM inventory flags depend on the time
they are judged at: ``eeum_clocks`` gives each inventory owed, from when to when and its
due date, the read models hold them (``eeum_clocks``) and judge them in a view
(``oversight_flags``), and the deadlines monitor judges the same clocks. A replay
judges them at its own time (its as-of time, else its knowledge cut, else the time of
its last event); the live read models, now.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Literal, NamedTuple, get_args

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

# The kinds of oversight flag, as the read models name them (``event_flags`` and the
# ``oversight_flags`` view): raised by an event, then judged at a time.
FlagKind = Literal[
    "backdated-decision",
    "qme-not-certified",
    "correction",
    "out-of-sequence",
    "eeum-no-initial-inventory",
    "eeum-no-annual-inventory",
]
FLAG_KINDS: tuple[FlagKind, ...] = get_args(FlagKind)


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


NOT_DELIVERED_WHILE = frozenset({"suspended"})


def _waits(e: ev.Event) -> tuple[frozenset[str], bool]:
    """The stages a case ahead waits in for what ``e`` gives, as (stages, True), or
    the stages it does not wait in, as (stages, False)."""
    if isinstance(e, ev.OfferIssued):
        return NOT_YET_OFFERED, True
    return NOT_DELIVERED_WHILE, False


def waiting(e: ev.Event, stage: str) -> bool:
    """Whether a case ahead, at ``stage``, still waits for what ``e`` gives."""
    stages, inside = _waits(e)
    return (stage in stages) == inside


def _count_waiting(e: ev.Event, stages: list[str]) -> int:
    """How many of ``stages`` are ``waiting`` for ``e`` (counted by stage, in C)."""
    named, inside = _waits(e)
    found = sum(map(stages.count, named))
    return found if inside else len(stages) - found


# The out-of-sequence flag's sentence, worded once: ``skipped_text`` fills it in from a
# ``Skipped`` here; the read models hold each flag's ``Skipped`` and the ``event_flags``
# view words it in SQL from these same templates (``projections.views``).
SHOWN = 3  # the waiting cases named; the others are counted
WHAT = ("delivery", "offer")  # by ``Skipped.offer``
SKIPPED = (
    "{what} to position {position} of the {platform} queue while {waiting} case(s) "
    "ahead still wait ({shown}{more}), with no bypass_reason"
)
MORE = " and {more} more"  # after the cases shown, when more than SHOWN wait


class Skipped(NamedTuple):
    """What an out-of-sequence flag found: an offer (else a delivery) to the case at
    queue ``position`` of ``platform`` while ``waiting`` cases ahead still wait, the
    first SHOWN of them named in ``shown`` (comma-separated, in queue order)."""

    offer: bool
    position: int
    platform: str
    waiting: int
    shown: str


def skipped(
    e: ev.Event, platform: str, position: int, cases: list[str], stages: list[str]
) -> Skipped | None:
    """Whether a delivery or an offer to the case at queue ``position`` is flagged: cases
    ahead of it (``cases``, in queue order, and their ``stages``) still wait, and the
    event gives no coded ``bypass_reason``. None otherwise."""
    if not isinstance(e, (ev.DeliveryRecorded, ev.OfferIssued)):
        return None
    if e.bypass_reason is not msgspec.UNSET:
        return None
    count = _count_waiting(e, stages)
    if not count:
        return None
    first = []
    for case, stage in zip(cases, stages, strict=True):
        if waiting(e, stage):
            first.append(case)
            if len(first) == SHOWN:
                break
    offer = isinstance(e, ev.OfferIssued)
    return Skipped(offer, position, platform, count, ", ".join(first))


def skipped_text(s: Skipped) -> str:
    """The sentence of an out-of-sequence flag."""
    more = MORE.format(more=s.waiting - SHOWN) if s.waiting > SHOWN else ""
    return SKIPPED.format(
        what=WHAT[s.offer],
        position=s.position,
        platform=s.platform,
        waiting=s.waiting,
        shown=s.shown,
        more=more,
    )


def out_of_sequence(
    e: ev.Event, platform: str, position: int, cases: list[str], stages: list[str]
) -> str | None:
    """Why a delivery or an offer to the case at queue ``position`` is flagged
    (``skipped``), or None."""
    found = skipped(e, platform, position, cases, stages)
    return None if found is None else skipped_text(found)


# --- Enhanced end-use monitoring: the inventory clocks ----------------------------------
#
# The one definition of the EEUM rule: the deadlines monitor (``monitors.deadlines``)
# and the ``oversight_flags`` view (through the ``eeum_clocks`` table the projector fills
# from it) both judge these clocks.


class Delivery(NamedTuple):
    position: int
    case: str
    partner: str
    platform: str
    quantity: int
    at: datetime


class Inventory(NamedTuple):
    position: int
    case: str
    kind: str  # eeum-initial-inventory or eeum-annual-inventory
    at: datetime


class Designation(NamedTuple):
    position: int
    platform: str
    designated: bool
    at: datetime


class EEUMClock(NamedTuple):
    """An EEUM inventory owed from ``opened`` until ``closed`` (None: still owed), due at
    ``due``: at a time ``t`` with ``opened <= t < closed`` it is *due* before ``due`` and
    *overdue* from ``due`` on (``clock_status``)."""

    kind: str  # eeum-initial-inventory or eeum-annual-inventory
    case: str
    partner: str
    platform: str
    position: int  # the event behind it (the delivery, or the inventory counted from)
    since: datetime  # the delivery, or the last inventory (or first delivery)
    due: datetime
    opened: datetime
    closed: datetime | None
    quantity: int


def _designated_at(designations: Sequence[Designation], at: datetime) -> bool:
    found: Designation | None = None
    for d in designations:  # log order; the latest effective at or before ``at``
        if d.at <= at and (found is None or d.at >= found.at):
            found = d
    return bool(found and found.designated)


def _designated_spans(
    designations: Sequence[Designation], start: datetime, end: datetime | None
) -> list[tuple[datetime, datetime | None]]:
    """The spans of [start, end) during which the platform stays designated."""
    cuts = sorted(
        {d.at for d in designations if d.at > start and (end is None or d.at < end)}
    )
    spans: list[tuple[datetime, datetime | None]] = []
    bounds = [start, *cuts]
    for i, a in enumerate(bounds):
        b = bounds[i + 1] if i + 1 < len(bounds) else end
        if not _designated_at(designations, a):
            continue
        if spans and spans[-1][1] == a:
            spans[-1] = (spans[-1][0], b)
        else:
            spans.append((a, b))
    return spans


def eeum_clocks(
    deliveries: Iterable[Delivery],
    inventories: Iterable[Inventory],
    designations: Iterable[Designation],
) -> list[EEUMClock]:
    """Every EEUM inventory clock the facts give (docs/domain.md, Rule 6):

    - each delivery of a platform designated on the delivery date owes an initial
      inventory within ``EEUM_INITIAL_WITHIN``, until the case records one (at or after
      the delivery);
    - a case with such deliveries owes an inventory within ``EEUM_ANNUAL_WITHIN`` of its
      last EEUM inventory (initial or annual, at or after its first designated
      delivery), else of that first delivery, for as long as the platform stays
      designated.
    """
    by_platform: dict[str, list[Designation]] = {}
    for g in designations:
        by_platform.setdefault(g.platform, []).append(g)
    checks: dict[str, list[Inventory]] = {}
    for i in inventories:
        if i.kind.startswith("eeum-"):
            checks.setdefault(i.case, []).append(i)
    cases: dict[str, list[Delivery]] = {}
    for d in deliveries:
        if _designated_at(by_platform.get(d.platform, ()), d.at):
            cases.setdefault(d.case, []).append(d)
    out: list[EEUMClock] = []
    for case in sorted(cases):
        found = sorted(cases[case], key=lambda d: (d.at, d.position))
        done = sorted(checks.get(case, ()), key=lambda i: (i.at, i.position))
        first = found[0]
        for d in found:
            initial = [
                i.at for i in done if i.kind == "eeum-initial-inventory" and i.at >= d.at
            ]
            out.append(
                EEUMClock(
                    "eeum-initial-inventory",
                    case,
                    d.partner,
                    d.platform,
                    d.position,
                    d.at,
                    d.at + EEUM_INITIAL_WITHIN,
                    d.at,
                    min(initial, default=None),
                    d.quantity,
                )
            )
        starts = [(first.at, first.position)] + [
            (i.at, i.position) for i in done if i.at >= first.at
        ]
        platform = by_platform.get(first.platform, [])
        for n, (since, position) in enumerate(starts):
            until = starts[n + 1][0] if n + 1 < len(starts) else None
            if until is not None and until == since:
                continue
            for opened, closed in _designated_spans(platform, since, until):
                out.append(
                    EEUMClock(
                        "eeum-annual-inventory",
                        case,
                        first.partner,
                        first.platform,
                        position,
                        since,
                        since + EEUM_ANNUAL_WITHIN,
                        opened,
                        closed,
                        first.quantity,
                    )
                )
    return out


def clock_status(clock: EEUMClock, at: datetime) -> str | None:
    """``overdue``, ``due`` or None (not owed at ``at``)."""
    if not (clock.opened <= at and (clock.closed is None or at < clock.closed)):
        return None
    return "overdue" if clock.due <= at else "due"
