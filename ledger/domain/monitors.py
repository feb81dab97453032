"""The monitors an overseer runs (docs/monitors.md): the rules they judge by, pure.

Each monitor reads the events of a log (``(position, event)`` pairs in log order, as a
ledger, a replay or a replica built from an export holds them) and a time it is judged
at; it does no I/O and reads no clock. The read side (``projections.monitors``) hands
the events in and formats nothing of its own: the CLI, the web view and the tests all
call these functions.

- **Statutory clocks** (``deadlines``): formal review periods ending, informal reviews
  and holds open longer than ``INFORMAL_REVIEW_DAYS`` / ``HOLD_OPEN_DAYS``, offers
  expiring, EEUM initial (``oversight.EEUM_INITIAL_WITHIN``) and annual
  (``oversight.EEUM_ANNUAL_WITHIN``) inventories, notifications lacking the QME
  certification (``oversight.qme_missing``). An obligation is *due* while its date lies
  ahead and *overdue* once it passed with the duty undone; a period that merely ends (a
  formal review period) is listed only while it runs.
- **Retroactive changes** (``retroactive``): the events recorded after an earlier
  checkpoint that took effect before it, and (``moved``) the queue positions they
  changed in that past.
- **Out-of-sequence deliveries and offers** (``skips``, ``by_code``): the coded bypass
  reasons, and the uncoded skips ``oversight.out_of_sequence`` flags, by code, actor and
  office.
- **Reconciliation with the public record** (``reconcile``): published 36(b)
  notifications matched with the recorded ones; **threshold splitting** (``splitting``):
  cases of one partner and platform filed within ``SPLIT_WINDOW``, each below the
  notification threshold, together above it.
- **The public registers** (``sipri_register``, ``unroca_register``): orders and
  deliveries in the shape of the SIPRI trade register and of the UN Register's seven
  categories (``unroca_category``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NamedTuple

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain import oversight
from arms_ledger.ledger.domain.cases import (
    OFFER_VALIDITY,
    CaseState,
    evolve_case,
    notification_threshold,
    open_case,
)
from arms_ledger.ledger.domain.clock import effective
from arms_ledger.ledger.domain.facts import PartnerFacts, in_force

Logged = tuple[int, ev.Event]  # (log position, event)

# Informal (tiered) congressional review: how long the committees' review commonly runs
# before a formal notification (CRS RL31675: 20 days NATO+, 40 days others). A review
# open longer is listed as overdue.
INFORMAL_REVIEW_DAYS = {"NATO+": 20, "other": 40}
# A hold is a political convention with no statutory end; one open longer than this is
# listed as overdue so that an overseer asks why.
HOLD_OPEN_DAYS = 90


# --- the history, folded -------------------------------------------------------------


@dataclass(slots=True)
class CaseRecord:
    """A case's state and the log positions of the events the monitors cite."""

    state: CaseState
    filed: int
    notified: int | None = None
    notice: ev.CongressionalNotified | None = None
    informal: tuple[int, datetime] | None = None  # (position, effective)
    offer: int | None = None
    holds: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    deliveries: list[tuple[int, datetime, int]] = field(default_factory=list)
    inventories: list[tuple[int, datetime, str]] = field(default_factory=list)


@dataclass(slots=True)
class History:
    """Cases, partners, platforms' EEUM designations and thresholds, from the events
    effective at or before ``at`` (None: every event)."""

    at: datetime | None = None
    cases: dict[str, CaseRecord] = field(default_factory=dict)
    partners: dict[str, list[Logged]] = field(default_factory=dict)
    designations: dict[str, list[ev.EEUMDesignationChanged]] = field(default_factory=dict)
    thresholds: list[ev.NotificationThresholdsSet] = field(default_factory=list)

    def partner(self, code: str, at: datetime) -> PartnerFacts:
        facts = PartnerFacts(code, as_of=at)
        for position, e in self.partners.get(code, ()):
            if isinstance(e, ev.PartnerRegistered) or effective(e) <= at:
                facts.apply(e, position)
        return facts

    def designated(self, platform: str, at: datetime) -> bool:
        found = in_force(self.designations.get(platform, ()), at)
        return bool(found and found.designated)

    def review_days(self, group: str, at: datetime) -> int:
        found = in_force(self.thresholds, at)
        return (found.groups if found else ev.DEFAULT_THRESHOLDS).group(group).review_days


def fold(events: Iterable[Logged], at: datetime | None = None) -> History:
    """The history of the events effective at or before ``at`` (reference events —
    registrations, listings — always count)."""
    h = History(at)
    for position, e in events:
        reference = isinstance(e, (ev.PartnerRegistered, ev.PlatformListed))
        if at is not None and not reference and effective(e) > at:
            continue
        match e:
            case ev.PartnerEvent():
                h.partners.setdefault(e.partner, []).append((position, e))
            case ev.EEUMDesignationChanged():
                h.designations.setdefault(e.platform, []).append(e)
            case ev.NotificationThresholdsSet():
                h.thresholds.append(e)
            case ev.CaseFiled():
                h.cases[e.case] = CaseRecord(open_case(e), position)
            case ev.CaseEvent() if e.case in h.cases:
                _apply(h.cases[e.case], position, e)
    return h


def _apply(record: CaseRecord, position: int, e: ev.CaseEvent) -> None:
    at = effective(e)
    record.state = evolve_case(record.state, e)
    match e:
        case ev.CongressionalNotified():
            record.notified, record.notice = position, e
        case ev.CongressionalReviewStarted():
            record.informal = (position, at)
        case ev.HoldPlaced():
            record.holds[e.office] = (position, at)
        case ev.HoldLifted():
            record.holds.pop(e.office, None)
        case ev.OfferIssued():
            record.offer = position
        case ev.DeliveryRecorded():
            record.deliveries.append((position, at, e.quantity))
        case ev.EndUseCheckRecorded() if e.kind.startswith("eeum-"):
            record.inventories.append((position, at, e.kind))
        case ev.EventCorrected() if e.of == "DeliveryRecorded":
            # as the read models' ``deliveries`` hold it: gone, or its new quantity
            record.deliveries = [
                (p, when, e.corrected.get("quantity", q) if p == e.corrects else q)
                for p, when, q in record.deliveries
                if not (p == e.corrects and e.retracted)
            ]


# --- statutory clocks ---------------------------------------------------------------


class Deadline(NamedTuple):
    """An obligation with a date: due before it, overdue after it if ``lapses``."""

    kind: str
    case: str
    partner: str
    platform: str
    due: datetime
    lapses: bool  # passing the date leaves a duty undone (else the period just ends)
    positions: tuple[int, ...]  # the events behind it
    detail: str


class Judged(NamedTuple):
    deadline: Deadline
    status: str  # "overdue" or "due"


DEADLINE_KINDS = (
    "review-period-ends",
    "informal-review-open",
    "hold-open",
    "offer-expires",
    "eeum-initial-inventory",
    "eeum-annual-inventory",
    "qme-certification",
)


def obligations(h: History, at: datetime) -> list[Deadline]:
    """Every obligation with a date that the history leaves open at ``at``."""
    found: list[Deadline] = []
    for case_id in sorted(h.cases):
        found.extend(_case_obligations(h, h.cases[case_id], at))
    return found


def _case_obligations(h: History, r: CaseRecord, at: datetime) -> Iterable[Deadline]:
    c = r.state

    def item(kind: str, due: datetime, lapses: bool, positions: Sequence[int], why: str):
        return Deadline(
            kind, c.case, c.partner, c.platform, due, lapses, tuple(positions), why
        )

    if c.notified_at is not None and r.notified is not None and r.notice is not None:
        partner = h.partner(c.partner, c.notified_at)
        if c.stage == "notified" and not c.emergency:
            group = partner.notification_group
            days = h.review_days(group, c.notified_at)
            yield item(
                "review-period-ends",
                c.notified_at + timedelta(days=days),
                False,
                (r.notified,),
                f"formal review of {c.transmittal} ({days} days, {group})",
            )
        why = oversight.qme_missing(r.notice, c.partner, partner.middle_east)
        if why is not None:
            yield item("qme-certification", c.notified_at, True, (r.notified,), why)
    if c.stage == "congressional-review" and r.informal is not None:
        group = h.partner(c.partner, r.informal[1]).notification_group
        days = INFORMAL_REVIEW_DAYS[group]
        yield item(
            "informal-review-open",
            r.informal[1] + timedelta(days=days),
            True,
            (r.informal[0],),
            f"informal review open more than {days} days ({group})",
        )
    for office in sorted(r.holds):
        position, placed = r.holds[office]
        yield item(
            "hold-open",
            placed + timedelta(days=HOLD_OPEN_DAYS),
            True,
            (position,),
            f"hold by {office} open more than {HOLD_OPEN_DAYS} days",
        )
    if c.stage == "offered" and r.offer is not None:
        expires = c.offer_expires_at or (c.last_effective_at + OFFER_VALIDITY)
        yield item(
            "offer-expires",
            expires,
            True,
            (r.offer,),
            "offer (LOA) open: record OfferAccepted or OfferExpired",
        )
    yield from _eeum(h, r, at, item)


def _eeum(h: History, r: CaseRecord, at: datetime, item) -> Iterable[Deadline]:
    """The case's EEUM inventory clocks (``oversight.eeum_clocks``) owed at ``at``."""
    c = r.state
    found = oversight.eeum_clocks(
        (
            oversight.Delivery(p, c.case, c.partner, c.platform, q, when)
            for p, when, q in r.deliveries
        ),
        (oversight.Inventory(p, c.case, kind, when) for p, when, kind in r.inventories),
        (
            oversight.Designation(n, e.platform, e.designated, effective(e))
            for n, e in enumerate(h.designations.get(c.platform, ()))
        ),
    )
    for clock in found:
        if oversight.clock_status(clock, at) is None:
            continue
        day = clock.since.date().isoformat()
        why = (
            f"initial inventory of {clock.quantity} delivered {day}"
            if clock.kind == "eeum-initial-inventory"
            else f"annual inventory (last EEUM inventory or first delivery {day})"
        )
        yield item(clock.kind, clock.due, True, (clock.position,), why)


def judge(
    found: Iterable[Deadline], at: datetime, within: timedelta | None = None
) -> list[Judged]:
    """The obligations as judged at ``at``: overdue (date passed, duty undone), or due
    after ``at`` (within ``within`` of it, if given); by date, then kind and case."""
    out = []
    for d in found:
        if d.due <= at:
            if d.lapses:
                out.append(Judged(d, "overdue"))
        elif within is None or d.due <= at + within:
            out.append(Judged(d, "due"))
    return sorted(out, key=lambda j: (j.deadline.due, j.deadline.kind, j.deadline.case))


def deadlines(
    events: Iterable[Logged], at: datetime, within: timedelta | None = None
) -> list[Judged]:
    """Statutory clocks judged at ``at`` from the events effective by then."""
    h = fold(events, at)
    return judge(obligations(h, at), at, within)


# --- retroactive changes ------------------------------------------------------------------


def retroactive(
    events: Iterable[Logged], earlier: int, earlier_time: datetime, later: int
) -> list[Logged]:
    """The events after log position ``earlier`` up to ``later`` whose ``effective_at``
    lies before ``earlier_time`` (the time the earlier checkpoint was taken): each
    changed a past already published at the earlier checkpoint."""
    return [
        (position, e)
        for position, e in events
        if earlier < position <= later and effective(e) < earlier_time
    ]


def moved(
    before: dict[tuple[str, str], int], after: dict[tuple[str, str], int]
) -> list[tuple[str, str, int | None, int | None]]:
    """The (platform, case) whose queue position differs between two queues, as
    (platform, case, position before, position after), by platform and position."""
    keys = sorted(
        {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)},
        key=lambda k: (k[0], after.get(k) or before.get(k) or 0, k[1]),
    )
    return [(p, c, before.get((p, c)), after.get((p, c))) for p, c in keys]


# --- out-of-sequence deliveries and offers ------------------------------------------------

# The code of a skip with no bypass_reason: oversight.out_of_sequence flagged it.
UNCODED = "uncoded"


def office_of(actor: str) -> str:
    """The office an actor belongs to: the first part of its dotted name
    (``dsca.cwd.jsmith`` is ``dsca``)."""
    return actor.split(".", 1)[0]


class Skip(NamedTuple):
    """A delivery or an offer that went past cases waiting ahead of it."""

    position: int
    code: str  # a bypass code, or UNCODED
    actor: str


class SkipGroup(NamedTuple):
    code: str
    actor: str
    office: str
    positions: tuple[int, ...]


def skips(events: Iterable[Logged], flagged: Iterable[int]) -> list[Skip]:
    """The skips of a log: every delivery or offer with a coded ``bypass_reason``, and
    the uncoded ones ``oversight.out_of_sequence`` flagged (their positions)."""
    flagged = set(flagged)
    out = []
    for position, e in events:
        if not isinstance(e, (ev.DeliveryRecorded, ev.OfferIssued)):
            continue
        if isinstance(e.bypass_reason, str):
            out.append(Skip(position, e.bypass_reason, e.actor))
        elif position in flagged:
            out.append(Skip(position, UNCODED, e.actor))
    return out


def by_code(found: Iterable[Skip]) -> list[SkipGroup]:
    """Skips by code (in ``BYPASS_CODES`` order, the uncoded last), actor and office."""
    groups: dict[tuple[str, str], list[int]] = {}
    for s in found:
        groups.setdefault((s.code, s.actor), []).append(s.position)
    order = {code: n for n, code in enumerate((*ev.BYPASS_CODES, UNCODED))}
    return [
        SkipGroup(code, actor, office_of(actor), tuple(positions))
        for (code, actor), positions in sorted(
            groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])
        )
    ]


# --- reconciliation with the public record ------------------------------------------------

# Two notifications of one partner this close are taken for the same one, their dates
# differing (a press date, a time zone, a slip).
MATCH_WITHIN = timedelta(days=31)
# Threshold splitting: cases of one partner and platform filed within this of each other.
SPLIT_WINDOW = timedelta(days=365)


class Published(NamedTuple):
    """A row of a public list of 36(b) notifications."""

    line: int
    transmittal: str | None
    day: date
    partner: str | None  # resolved from the purchaser; None: no such partner
    purchaser: str
    description: str
    value_usd: int


class Finding(NamedTuple):
    kind: (
        str  # differs, published-not-recorded, recorded-not-published, threshold-splitting
    )
    partner: str
    cases: tuple[str, ...]
    line: int | None  # the published row, if any
    positions: tuple[int, ...]
    detail: str


def _usd(amount: int) -> str:
    return f"${amount:,}"


def notices(h: History) -> list[tuple[CaseRecord, ev.CongressionalNotified, int]]:
    return [
        (r, r.notice, r.notified)
        for r in h.cases.values()
        if r.notice is not None and r.notified is not None
    ]


def reconcile(h: History, published: Sequence[Published]) -> list[Finding]:
    """Match the published notifications with the recorded ones (same partner; the same
    transmittal if both give one, else the nearest date within ``MATCH_WITHIN``): what
    differs, what was published and never recorded, what was recorded within the list's
    dates and never published."""
    recorded = sorted(notices(h), key=lambda n: n[2])
    used: set[int] = set()
    out: list[Finding] = []
    for row in published:
        best: tuple[CaseRecord, ev.CongressionalNotified, int] | None = None
        nearest = MATCH_WITHIN.days + 1
        for r, notice, position in recorded:
            if position in used or r.state.partner != row.partner:
                continue
            if row.transmittal and notice.transmittal == row.transmittal:
                best = (r, notice, position)
                break
            gap = abs((effective(notice).date() - row.day).days)
            if gap < nearest:
                best, nearest = (r, notice, position), gap
        if best is None:
            out.append(
                Finding(
                    "published-not-recorded",
                    row.partner or row.purchaser,
                    (),
                    row.line,
                    (),
                    f"{row.day.isoformat()} {row.purchaser}: {row.description} "
                    f"({_usd(row.value_usd)})",
                )
            )
            continue
        r, notice, position = best
        used.add(position)
        day = effective(notice).date()
        differences = []
        if day != row.day:
            differences.append(f"date {day.isoformat()}, published {row.day.isoformat()}")
        if notice.notified_value_usd != row.value_usd:
            differences.append(
                f"value {_usd(notice.notified_value_usd)}, published {_usd(row.value_usd)}"
            )
        if differences:
            out.append(
                Finding(
                    "differs",
                    r.state.partner,
                    (r.state.case,),
                    row.line,
                    (position,),
                    f"{notice.transmittal}: " + "; ".join(differences),
                )
            )
    if published:
        first = min(row.day for row in published)
        last = max(row.day for row in published)
        for r, notice, position in recorded:
            day = effective(notice).date()
            if position not in used and first <= day <= last:
                out.append(
                    Finding(
                        "recorded-not-published",
                        r.state.partner,
                        (r.state.case,),
                        None,
                        (position,),
                        f"{notice.transmittal} on {day.isoformat()} "
                        f"({_usd(notice.notified_value_usd)})",
                    )
                )
    return out


def splitting(h: History) -> list[Finding]:
    """Cases of one partner and platform filed within ``SPLIT_WINDOW`` of the first, each
    below the notification threshold in force at its filing (for its partner's group)
    and together at or above it."""
    by_key: dict[tuple[str, str], list[CaseRecord]] = {}
    for r in h.cases.values():
        by_key.setdefault((r.state.partner, r.state.platform), []).append(r)
    out: list[Finding] = []
    for (partner, platform), records in sorted(by_key.items()):
        below = []
        for r in sorted(records, key=lambda r: (r.state.filed_at, r.state.case)):
            kind, threshold = _threshold(h, r)
            if r.state.value_usd < threshold:
                below.append((r, kind, threshold))
        reported: set[str] = set()
        for i, (first, kind, threshold) in enumerate(below):
            group = [
                b
                for b in below[i:]
                if b[0].state.filed_at - first.state.filed_at <= SPLIT_WINDOW
            ]
            total = sum(b[0].state.value_usd for b in group)
            ids = tuple(b[0].state.case for b in group)
            if len(group) < 2 or total < threshold or set(ids) <= reported:
                continue
            reported |= set(ids)
            out.append(
                Finding(
                    "threshold-splitting",
                    partner,
                    ids,
                    None,
                    tuple(b[0].filed for b in group),
                    f"{len(group)} {platform} cases filed within "
                    f"{SPLIT_WINDOW.days} days, each below the {kind} threshold of "
                    f"{_usd(threshold)}, together {_usd(total)}",
                )
            )
    return out


def _threshold(h: History, r: CaseRecord) -> tuple[str, int]:
    at = r.state.filed_at
    group = h.partner(r.state.partner, at).notification_group
    found = in_force(h.thresholds, at)
    thresholds = (found.groups if found else ev.DEFAULT_THRESHOLDS).group(group)
    return notification_threshold(r.state, thresholds)


# --- the public registers -----------------------------------------------------------------

SUPPLIER = "United States"
# The UN Register of Conventional Arms' seven categories.
UNROCA_CATEGORIES = (
    "I battle tanks",
    "II armoured combat vehicles",
    "III large-calibre artillery systems",
    "IV combat aircraft and unmanned combat aerial vehicles",
    "V attack helicopters",
    "VI warships",
    "VII missiles and missile launchers",
)
# Aircraft the Register does not count (unarmed support aircraft, transport
# helicopters), and rotary-wing aircraft it counts as attack helicopters: by words of the
# platform's name (lower case).
_NOT_COMBAT_AIRCRAFT = (
    "kc-46",
    "tanker",
    "pegasus",
    "e-7",
    "wedgetail",
    "chinook",
    "ch-47",
)
_ATTACK_HELICOPTERS = ("apache", "ah-64", "seahawk", "mh-60", "helicopter")


def unroca_category(category: str, name: str) -> str | None:
    """The UN Register category of a platform listed with ``category`` and ``name``
    (docs/monitors.md), or None if the Register has none for it."""
    c, n = category.lower(), name.lower()
    if "armoured" in c or "armored" in c:
        return UNROCA_CATEGORIES[0 if ("tank" in n or "abrams" in n) else 1]
    if "artillery" in c:
        return UNROCA_CATEGORIES[2]
    if "aircraft" in c:
        if any(w in n for w in _NOT_COMBAT_AIRCRAFT):
            return None
        return UNROCA_CATEGORIES[4 if any(w in n for w in _ATTACK_HELICOPTERS) else 3]
    if "ship" in c or "naval" in c:
        return UNROCA_CATEGORIES[5]
    if "missile" in c or "air defence" in c or "air defense" in c:
        return UNROCA_CATEGORIES[6]
    return None


class RegisterRow(NamedTuple):
    fields: dict[str, object]
    positions: tuple[int, ...]


def _platforms(events: Iterable[Logged]) -> dict[str, ev.PlatformListed]:
    return {e.platform: e for _, e in events if isinstance(e, ev.PlatformListed)}


def _names(events: Iterable[Logged]) -> dict[str, str]:
    return {e.partner: e.name for _, e in events if isinstance(e, ev.PartnerRegistered)}


def sipri_register(events: Sequence[Logged], h: History) -> list[RegisterRow]:
    """Orders (accepted offers) in the shape of the SIPRI trade register, by recipient
    and year of order."""
    platforms, names = _platforms(events), _names(events)
    accepted = {
        e.case: (position, effective(e).year)
        for position, e in events
        if isinstance(e, ev.OfferAccepted) and e.case in h.cases
    }
    rows = []
    for case_id, (position, year) in accepted.items():
        r = h.cases[case_id]
        c = r.state
        listed = platforms.get(c.platform)
        years = sorted({when.year for _, when, _ in r.deliveries})
        status = (
            "delivered"
            if c.delivered >= c.quantity
            else "delivery in progress"
            if c.delivered
            else "cancelled"
            if c.stage == "cancelled"
            else "ordered"
        )
        rows.append(
            RegisterRow(
                {
                    "recipient": names.get(c.partner, c.partner),
                    "supplier": SUPPLIER,
                    "designation": listed.name if listed else c.platform,
                    "description": listed.category if listed else "",
                    "number_ordered": c.quantity,
                    "year_of_order": year,
                    "number_delivered": c.delivered,
                    "years_of_delivery": "; ".join(str(y) for y in years),
                    "status": status,
                    "case": case_id,
                },
                (position, *(p for p, _, _ in r.deliveries)),
            )
        )
    return sorted(
        rows,
        key=lambda r: (r.fields["recipient"], r.fields["year_of_order"], r.fields["case"]),
    )


def unroca_register(events: Sequence[Logged], h: History) -> list[RegisterRow]:
    """Deliveries in the shape of the UN Register's reports of exports: by calendar year,
    category, final importer and item; platforms in no category are left out."""
    platforms, names = _platforms(events), _names(events)
    groups: dict[tuple[int, str, str, str], tuple[int, list[int]]] = {}
    for r in h.cases.values():
        listed = platforms.get(r.state.platform)
        category = unroca_category(listed.category, listed.name) if listed else None
        if category is None:
            continue
        assert listed is not None
        recipient = names.get(r.state.partner, r.state.partner)
        for position, when, quantity in r.deliveries:
            key = (when.year, category, recipient, listed.name)
            count, positions = groups.get(key, (0, []))
            groups[key] = (count + quantity, [*positions, position])
    return [
        RegisterRow(
            {
                "year": year,
                "category": category,
                "final_importer": recipient,
                "number_of_items": count,
                "state_of_origin": SUPPLIER,
                "description": item,
            },
            tuple(sorted(positions)),
        )
        for (year, category, recipient, item), (count, positions) in sorted(groups.items())
    ]
