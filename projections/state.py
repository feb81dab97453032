"""The projector's state: the read models' rows that events touch, held in memory, and
the writing of what changed.

Partners, platforms, cases and queues are loaded on first use through a
``loader.Loader`` (``Stored``: from the projection database and the log when catching
up an existing projection; ``Nothing`` when building from scratch), changed by the
projector (``projector.py``), and written by ``flush`` in the caller's transaction (or
taken by ``take`` for a rebuild's writer thread). A rebuild puts the cases that ended
aside in a temporary file (``loader.Ended``), so it holds the open cases and one batch
of rows, however long the log.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections import schema
from arms_ledger.projections.cases import CaseView
from arms_ledger.projections.loader import Ended, Loader, Nothing
from arms_ledger.projections.partners import PartnerState, Policies
from arms_ledger.projections.platforms import PlatformState
from arms_ledger.projections.queue import Queue
from arms_ledger.projections.views import CASE_BITS, PAST_SURROGATES, SURROGATES

_encode = msgspec.json.encode

# The numbers of a platform's queue: 1 .. MAX_CASE_NUMBER (``views.CASE_BITS``).
MAX_CASE_NUMBER = (1 << CASE_BITS) - 1
assert MAX_CASE_NUMBER + PAST_SURROGATES <= 0x10FFFF


def member(number: int) -> str:
    """The character that stands for the case of ``number`` in its platform's queue in
    ``queue_shifts.members``."""
    if not 0 < number <= MAX_CASE_NUMBER:
        raise ValueError(f"a queue numbers its cases from 1 to {MAX_CASE_NUMBER}: {number}")
    return chr(number if number < SURROGATES else number + PAST_SURROGATES)


def member_number(char: str) -> int:
    """The number ``member`` made ``char`` of."""
    code = ord(char)
    return code if code < SURROGATES else code - PAST_SURROGATES


def json_upsert_sql(table: schema.Table) -> str:
    """``upsert_sql`` for all rows at once, bound as one JSON array of arrays: SQLite
    takes them apart (so the writing thread hardly needs the GIL). Only for tables
    without REAL columns (a float would go through decimal text)."""
    assert float not in {c.type for c in table.columns}, table.name
    cols = ", ".join(f'"{c}"' for c in table.names)
    values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(table.names)))
    return (
        f'INSERT OR REPLACE INTO "{table.name}" ({cols}) SELECT {values} '
        "FROM json_each(?) ORDER BY key"
    )


AUDIT_SQL = json_upsert_sql(schema.AUDIT_LOG)
CASES_SQL = json_upsert_sql(schema.CASES)
DELIVERIES_SQL = json_upsert_sql(schema.DELIVERIES)
CHECKS_SQL = json_upsert_sql(schema.END_USE_CHECKS)


class ProjectionState:
    """The read models' state as the projector changes it, and what changed since the
    last ``flush``; ``as_of`` is a replay's time (the events applied are those in force
    then, ``facts.holds_at``)."""

    def __init__(
        self,
        loader: Loader | None = None,
        as_of: datetime | None = None,
        *,
        audit: bool = True,
        history: bool = True,
    ):
        self.loader: Loader = loader or Nothing()
        self.as_of = as_of
        # False: ``audit_log`` rows are made elsewhere (a rebuild's third process).
        self.audit = audit and history
        # False (a replay from a snapshot, which writes only ``snapshots.ANSWERS``): none
        # of the history rows (``audit_log``, flags, deliveries, end-use checks, EEUM
        # designations), and ``changes`` False: no runs of queue changes either.
        self.history = history
        self.changes = history
        self.partners: dict[str, PartnerState] = {}
        self.platforms: dict[str, PlatformState] = {}
        self.cases: dict[str, CaseView] = {}
        # Cases held packed (``CaseView.pack``) until first used: a snapshot's open
        # cases (``snapshots.restore``), most of which a replay never touches.
        self.packed: dict[str, bytes] = {}
        self.ended: Ended | None = None  # ended cases put aside (see ``pack_ended``)
        self.ending: set[str] = set()  # cases an event left ended (``pack_ended``)
        self.queues: dict[str, Queue] = {}
        self.queued_by_partner: dict[str, dict[str, str]] = {}  # partner: {case: platform}
        self._policies: Policies | None = None
        self._written: dict[str, dict[str, tuple]] = {}  # queue rows as last written
        # The next queue_changes id, the cases' numbers (queue_cases) and each
        # platform's next one: loaded on first use, kept across flushes.
        self._next_change_id: int | None = None
        self._case_numbers: dict[str, int] = {}
        # Each numbered case's ``member`` character in its platform's queue (a case
        # stays on its platform): a run of shifted cases is one join of these.
        self._members: dict[str, str] = {}
        self._next_case_number: dict[str, int] = {}
        self._clear_pending()
        # The cases and platforms whose EEUM clocks need refreshing (``eeum.refresh``).
        self.eeum_cases: set[str] = set()
        self.eeum_platforms: set[str] = set()

    def _clear_pending(self) -> None:
        self.dirty_partners: set[str] = set()
        self.dirty_platforms: set[str] = set()
        self.dirty_cases: set[str] = set()
        self.dirty_queues: set[str] = set()
        self.dirty_policies = False
        self.audit_rows: list[tuple] = []
        self.flag_rows: list[tuple] = []
        self.delivery_rows: list[tuple] = []
        self.retracted_deliveries: list[tuple[int]] = []  # positions (corrections)
        self.check_rows: list[tuple] = []
        self.designation_rows: list[tuple] = []
        self.change_rows: list[tuple] = []  # runs of queue changes (Queue.end_runs)
        self._touched: dict[str, Queue] = {}
        # Queues changed in the stored rows by this event: their runs of changes.
        self._in_place: dict[str, list[tuple]] = {}

    # --- state, loaded on first use ----------------------------------------------------

    @property
    def policies(self) -> Policies:
        if self._policies is None:
            self._policies = Policies()
            for r in self.loader.policy_events():
                assert isinstance(r.event, ev.PolicyEvent) and r.position is not None
                self._policies.apply(r.event, r.position)
        return self._policies

    def partner(self, code: str) -> PartnerState:
        state = self.partners.get(code)
        if state is None:
            state = self.partners[code] = self.loader.partner(code)
            state.as_of = self.as_of
            state.rescore(self.policies.in_force)
        return state

    def platform(self, slug: str) -> PlatformState:
        state = self.platforms.get(slug)
        if state is None:
            state = self.platforms[slug] = PlatformState(slug)
            for r in self.loader.stream(f"platform:{slug}"):
                assert r.position is not None  # read from the log
                state.apply(r.event, r.position)
        return state

    def case(self, case_id: str) -> CaseView | None:
        view = self.cases.get(case_id)
        if view is None:
            packed = self.packed.pop(case_id, None) if self.packed else None
            if packed is None and self.ended is not None:
                packed = self.ended.get(case_id)
            if packed is not None:
                view = self.cases[case_id] = CaseView.unpack(packed)
                return view
            for r in self.loader.stream(f"case:{case_id}"):
                assert isinstance(r.event, ev.CaseEvent) and r.position is not None
                if view is None:
                    assert isinstance(r.event, ev.CaseFiled)  # a case's first event
                    view = CaseView.filed(r.event, r.position)
                else:
                    view.apply(r.event, r.position)
            if view is not None:
                self.cases[case_id] = view
        return view

    def queue(self, platform: str, mode: str | None = None) -> Queue:
        """The platform's queue; loaded rows are ordered by ``mode`` (the one in force)."""
        q = self.queues.get(platform)
        if q is None:
            rows = self.loader.queue(platform)
            q = self.queues[platform] = Queue(
                platform, mode or self.policies.mode, [r.entry() for r in rows]
            )
            self._written[platform] = {r.case: tuple(r) for r in rows}
        return q

    def queued(self, partner: str) -> dict[str, str]:
        """The partner's cases in queues: {case: platform}."""
        found = self.queued_by_partner.get(partner)
        if found is None:
            found = self.queued_by_partner[partner] = self.loader.partner_queued(partner)
        return found

    def _touch(self, platform: str, mode: str | None = None) -> Queue:
        q = self.queue(platform, mode)
        q.track = self.changes
        self._touched[platform] = q
        self.dirty_queues.add(platform)
        return q

    def cases_get(self, case_id: str) -> CaseView:
        view = self.case(case_id)
        assert view is not None, case_id
        return view

    # --- writing ------------------------------------------------------------------------

    def flush(self, conn: sqlite3.Connection, position: int) -> None:
        """Write what changed since the last flush and the position reached.

        Runs in the caller's transaction, so rows and position commit together.
        """
        for sql, rows in self.take(position):
            conn.executemany(sql, rows)
        from arms_ledger.projections import eeum

        eeum.refresh(conn, self.eeum_cases, self.eeum_platforms)
        self.eeum_cases, self.eeum_platforms = set(), set()

    def take(self, position: int, *, everything: bool = True) -> list[tuple[str, list]]:
        """What ``flush`` writes, as statements and their rows, and forget it: the rows
        are computed now, so they can be written later (by a rebuild's writer thread).

        ``everything=False`` (a rebuild, which commits once, at the end) holds back the
        rows of state that later events may still change (partners, platforms, policies,
        queues, cases not ended): each is written once, by the last ``take``, instead of
        once per batch it changed in.
        """
        up = schema.upsert_sql
        encode = _encode

        def rows_json(rows: list) -> list[tuple[str]]:
            return [(encode(rows).decode(),)] if rows else []

        cases = self.dirty_cases
        if not everything:
            cases = {c for c in cases if self.cases[c].ended}
            self.dirty_cases -= cases
        self.eeum_cases.update(r[1] for r in self.delivery_rows)
        self.eeum_cases.update(r[1] for r in self.check_rows)
        self.eeum_platforms.update(r[1] for r in self.designation_rows)
        out: list[tuple[str, list]] = [
            (AUDIT_SQL, rows_json(self.audit_rows)),
            (up(schema.FLAGS), self.flag_rows),
            (DELIVERIES_SQL, rows_json(self.delivery_rows)),
            ("DELETE FROM deliveries WHERE position = ?", self.retracted_deliveries),
            (CHECKS_SQL, rows_json(self.check_rows)),
            (up(schema.EEUM_DESIGNATIONS), self.designation_rows),
            (CASES_SQL, rows_json([self.cases[c].row() for c in cases])),
            *self._queue_change_statements(),
        ]
        self.audit_rows, self.flag_rows, self.delivery_rows = [], [], []
        self.retracted_deliveries = []
        self.check_rows, self.designation_rows, self.change_rows = [], [], []
        if not everything:
            return out
        out += [
            (up(schema.PARTNERS), [self.partners[p].row() for p in self.dirty_partners]),
            (up(schema.PLATFORMS), [self.platforms[p].row() for p in self.dirty_platforms]),
        ]
        if self.dirty_policies:
            out.append((up(schema.POLICIES), self.policies.rows()))
        for platform in self.dirty_queues:
            out.extend(self._queue_statements(platform))
        out.append(("UPDATE projection SET position = ? WHERE id = 1", [(position,)]))
        self._clear_pending()
        return out

    def pack_ended(self) -> None:
        """Put the cases that ended aside, packed, in a temporary file (a rebuild, after
        each batch): most cases of a long log have ended, and only an end-use check may
        still come for one (it is then read back), so the memory a rebuild holds is the
        open cases, not every case of the log. Those put aside are the cases an event
        applied since the last ``pack_ended`` left ended (``ending``)."""
        cases = self.cases
        done = [c for c in self.ending if c in cases and cases[c].ended]
        self.ending = set()
        if done:
            if self.ended is None:
                self.ended = Ended()
            self.ended.put([(c, cases.pop(c).pack()) for c in done])

    def close(self) -> None:
        if self.ended is not None:
            self.ended.close()
            self.ended = None

    def _queue_change_statements(self) -> list[tuple[str, list]]:
        """The rows of the runs of queue changes (``Queue.end_runs``) since the last
        take: each case's own change (entered, left, moved) a ``queue_moves`` row, each
        run of shifted cases one ``queue_shifts`` row, and a ``queue_cases`` number for
        each case that enters a queue for the first time. Ids are given as the
        ``queue_changes`` view numbers its rows: one per case, in order."""
        if not self.change_rows:
            return []
        moves: list[tuple] = []
        shifts: list[tuple] = []
        numbered: list[tuple] = []
        next_id = self._next_change_id
        if next_id is None:
            next_id = self.loader.next_change_id()
        for position, name, platform, change, old, new, cases in self.change_rows:
            if change == "shifted":
                members = self._members_of(platform, cases)
                shifts.append((next_id, position, platform, old, new, len(cases), members))
            else:
                (case,) = cases
                moves.append((next_id, position, name, platform, case, change, old, new))
                if change == "entered":
                    numbered += self._number(platform, case)
            next_id += len(cases)
        self._next_change_id = next_id
        return [
            (schema.upsert_sql(schema.QUEUE_MOVES), moves),
            (schema.upsert_sql(schema.QUEUE_SHIFTS), shifts),
            (schema.upsert_sql(schema.QUEUE_CASES), numbered),
        ]

    def _members_of(self, platform: str, cases: list[str]) -> str:
        """``queue_shifts.members`` of a run of the platform's ``cases``."""
        chars = self._members
        try:
            return "".join(map(chars.__getitem__, cases))
        except KeyError:
            base = self._base(platform)
            missing = [c for c in cases if c not in chars]
            for case, number in zip(missing, self._numbers(missing), strict=True):
                chars[case] = member(number - base)
            return "".join(map(chars.__getitem__, cases))

    def _numbers(self, cases: list[str]) -> list[int]:
        """The queue_cases numbers of cases that were in a queue."""
        known = self._case_numbers
        missing = [c for c in cases if c not in known]
        if missing:
            known.update(self.loader.case_numbers(missing))
        return [known[c] for c in cases]

    def _base(self, platform: str) -> int:
        """The queue_cases number of the platform's case 0 (``views.CASE_BITS``)."""
        listed = self.platform(platform).listed_position
        assert listed is not None, f"platform {platform!r} has a queue, not a listing"
        return listed << CASE_BITS

    def _number(self, platform: str, case: str) -> list[tuple]:
        """The queue_cases row to write for a case entering its platform's queue: none
        if it was in it before (it keeps its number)."""
        known = self._case_numbers
        if case not in known:
            known.update(self.loader.case_numbers([case]))
        if case in known:
            return []
        number = self._next_case_number.get(platform)
        if number is None:
            base = self._base(platform)
            number = self.loader.next_case_number(base, base + MAX_CASE_NUMBER)
        # ``member`` raises if the queue has no numbers left.
        self._members[case] = member(number - self._base(platform))
        known[case] = number
        self._next_case_number[platform] = number + 1
        return [(number, platform, case)]

    def _queue_statements(self, platform: str) -> list[tuple[str, list]]:
        q = self.queue(platform)
        written = self._written[platform]
        rows = q.rows(self.platform(platform).units_per_month)
        changed = [r for r in rows if written.get(r[2]) != r]
        gone = written.keys() - q.entries.keys()
        self._written[platform] = {r[2]: r for r in rows}
        return [
            ('DELETE FROM queue WHERE "case" = ?', [(c,) for c in gone]),
            (schema.upsert_sql(schema.QUEUE), changed),
        ]
