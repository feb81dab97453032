"""The projector: applies events in log order to the read models, then writes what changed.

It holds the part of the read models that events touch, in memory: partners, platforms,
cases and queues are loaded on first use through a :class:`Loader` (from the projection
database and the event store when catching up an existing projection; nothing when
building from scratch), changed by ``apply``, and written by ``flush`` in the caller's
transaction. So catching up after one event costs the rows that event touches, and a
rebuild never reads the projection database at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Protocol

from ledger import events as ev
from ledger.decision import instant
from ledger.store import Recorded
from projections import audit, schema
from projections.cases import CaseView
from projections.partners import PartnerState, Policies
from projections.platforms import PlatformState
from projections.queue import Entry, Queue

POLICY_TYPES = ("PriorityPolicyAdopted", "NotificationThresholdsSet")


class Loader(Protocol):
    """Where state not yet in memory comes from."""

    def stream(self, key: str) -> Iterable[Recorded]: ...

    def policy_events(self) -> Iterable[Recorded]: ...

    def queue(self, platform: str) -> list[tuple]: ...

    def partner_queued(self, partner: str) -> dict[str, str]: ...

    def partners(self) -> list[str]: ...

    def queued_platforms(self) -> list[str]: ...


class Nothing:
    """The loader of a projection built from the first event: there is nothing yet."""

    def stream(self, key: str) -> Iterable[Recorded]:
        return ()

    def policy_events(self) -> Iterable[Recorded]:
        return ()

    def queue(self, platform: str) -> list[tuple]:
        return []

    def partner_queued(self, partner: str) -> dict[str, str]:
        return {}

    def partners(self) -> list[str]:
        return []

    def queued_platforms(self) -> list[str]:
        return []


QUEUE_COLUMNS = ", ".join(f'"{c}"' for c in schema.QUEUE.names)


class Stored:
    """Loads state as of ``position`` from the event store and the projection database."""

    def __init__(self, ledger, conn: sqlite3.Connection, position: int):
        self.ledger, self.conn, self.position = ledger, conn, position

    def stream(self, key: str) -> Iterable[Recorded]:
        return [r for r in self.ledger.stream_records(key) if r.position <= self.position]

    def policy_events(self) -> Iterable[Recorded]:
        return self.ledger.read(types=POLICY_TYPES, upto=self.position)

    def queue(self, platform: str) -> list[tuple]:
        return self.conn.execute(
            f"SELECT {QUEUE_COLUMNS} FROM queue WHERE platform = ? ORDER BY position",
            (platform,),
        ).fetchall()

    def partner_queued(self, partner: str) -> dict[str, str]:
        return dict(
            self.conn.execute(
                'SELECT "case", platform FROM queue WHERE partner = ?', (partner,)
            ).fetchall()
        )

    def partners(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT partner FROM partners")]

    def queued_platforms(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT platform FROM queue")]


def _entry_of_row(row: tuple) -> Entry:
    (_, _, case, partner, klass, override, tier, score, filed_at, stage, left, *_) = row
    return Entry(
        case, partner, klass, bool(override), tier or 3, score or 0.0, filed_at,
        instant(filed_at), stage, left,
    )


class Projector:
    def __init__(self, loader: Loader | None = None):
        self.loader: Loader = loader or Nothing()
        self.partners: dict[str, PartnerState] = {}
        self.platforms: dict[str, PlatformState] = {}
        self.cases: dict[str, CaseView] = {}
        self.queues: dict[str, Queue] = {}
        self.queued_by_partner: dict[str, dict[str, str]] = {}  # partner: {case: platform}
        self._policies: Policies | None = None
        self._written: dict[str, dict[str, tuple]] = {}  # queue rows as last written
        self._clear_pending()

    def _clear_pending(self) -> None:
        self.dirty_partners: set[str] = set()
        self.dirty_platforms: set[str] = set()
        self.dirty_cases: set[str] = set()
        self.dirty_queues: set[str] = set()
        self.dirty_policies = False
        self.audit_rows: list[tuple] = []
        self.flag_rows: list[tuple] = []
        self.delivery_rows: list[tuple] = []
        self.check_rows: list[tuple] = []
        self.designation_rows: list[tuple] = []
        self.change_rows: list[tuple] = []
        self._touched: dict[str, Queue] = {}

    # --- state, loaded on first use ----------------------------------------------------

    @property
    def policies(self) -> Policies:
        if self._policies is None:
            self._policies = Policies()
            for r in self.loader.policy_events():
                self._policies.apply(r.event, r.position)
        return self._policies

    def partner(self, code: str) -> PartnerState:
        state = self.partners.get(code)
        if state is None:
            state = self.partners[code] = PartnerState(code)
            for r in self.loader.stream(f"partner:{code}"):
                state.apply(r.event, r.position)
            state.rescore(self.policies.in_force)
        return state

    def platform(self, slug: str) -> PlatformState:
        state = self.platforms.get(slug)
        if state is None:
            state = self.platforms[slug] = PlatformState(slug)
            for r in self.loader.stream(f"platform:{slug}"):
                state.apply(r.event, r.position)
        return state

    def case(self, case_id: str) -> CaseView | None:
        view = self.cases.get(case_id)
        if view is None:
            for r in self.loader.stream(f"case:{case_id}"):
                if view is None:
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
                platform, mode or self.policies.mode, [_entry_of_row(r) for r in rows]
            )
            self._written[platform] = {r[2]: tuple(r) for r in rows}
        return q

    def queued(self, partner: str) -> dict[str, str]:
        """The partner's cases in queues: {case: platform}."""
        found = self.queued_by_partner.get(partner)
        if found is None:
            found = self.queued_by_partner[partner] = self.loader.partner_queued(partner)
        return found

    def _touch(self, platform: str, mode: str | None = None) -> Queue:
        q = self.queue(platform, mode)
        self._touched[platform] = q
        self.dirty_queues.add(platform)
        return q

    # --- applying events ----------------------------------------------------------------

    def apply(self, recorded: Recorded) -> None:
        e = recorded.event
        self.audit_rows.append(audit.audit_row(recorded))
        kind = e.STREAM
        if kind == "partner":
            self._partner_event(recorded)
        elif kind == "platform":
            self._platform_event(recorded)
        elif kind == "case":
            self._case_event(recorded)
        else:
            self._policy_event(recorded)
        if self._touched:
            # In platform order, so the rows do not depend on what was loaded when.
            name = type(e).__name__
            for platform in sorted(self._touched):
                self.change_rows.extend(
                    (recorded.position, name, platform, *c)
                    for c in self._touched[platform].end()
                )
            self._touched.clear()

    def _partner_event(self, r: Recorded) -> None:
        e: ev.PartnerEvent = r.event
        partner = self.partner(e.partner)
        before = partner.sort_fields()
        partner.apply(e, r.position)
        partner.rescore(self.policies.in_force)
        self.dirty_partners.add(e.partner)
        self._flag(audit.backdated(r, e.partner))
        if partner.sort_fields() != before:
            for case_id, platform in self.queued(e.partner).items():
                q = self._touch(platform)
                q.put(self._rescored(q.entries[case_id]))

    def _platform_event(self, r: Recorded) -> None:
        e: ev.PlatformEvent = r.event
        self.platform(e.platform).apply(e, r.position)
        self.dirty_platforms.add(e.platform)
        self._flag(audit.backdated(r, None))
        if isinstance(e, ev.ProductionCapacitySet):
            self.dirty_queues.add(e.platform)  # estimated completions change
        elif isinstance(e, ev.EEUMDesignationChanged):
            self.designation_rows.append(
                (r.position, e.platform, e.designated, e.effective_at)
            )

    def cases_get(self, case_id: str) -> CaseView:
        view = self.case(case_id)
        assert view is not None, case_id
        return view

    def _case_event(self, r: Recorded) -> None:
        e: ev.CaseEvent = r.event
        if isinstance(e, ev.CaseFiled):
            view = self.cases[e.case] = CaseView.filed(e, r.position)
            was_queued = False
        else:
            view = self.cases_get(e.case)
            was_queued = view.queued
            view.apply(e, r.position)
        state = view.state
        self.dirty_cases.add(e.case)
        self._flag(audit.backdated(r, state.partner))
        if isinstance(e, ev.CongressionalNotified):
            registered = self.partner(state.partner).registered
            self._flag(
                audit.qme_missing(r, state.partner, bool(registered and registered.middle_east))
            )
        elif isinstance(e, ev.DeliveryRecorded):
            self.delivery_rows.append(
                (r.position, e.case, state.platform, state.partner, e.quantity, e.effective_at)
            )
        elif isinstance(e, ev.EndUseCheckRecorded):
            self.check_rows.append((r.position, e.case, e.kind, e.result, e.effective_at))
        if view.queued:
            q = self._touch(state.platform)
            if was_queued:  # its partner's part of the entry is kept current already
                q.put(q.entries[e.case]._replace(
                    priority_class=state.priority_class, stage=state.stage,
                    quantity_left=state.quantity_left,
                ))
            else:
                self.queued(state.partner)[e.case] = state.platform
                q.put(self._entry(view))
        elif was_queued:
            del self.queued(state.partner)[e.case]
            self._touch(state.platform).remove(e.case)

    def _policy_event(self, r: Recorded) -> None:
        e: ev.PolicyEvent = r.event
        self.dirty_policies = True
        self._flag(audit.backdated(r, None))
        mode = self.policies.mode  # the stored queues were ordered under it
        if not self.policies.apply(e, r.position):
            return
        policy = self.policies.in_force
        for code in {*self.loader.partners(), *self.partners}:
            state = self.partner(code)
            state.rescore(policy)
            self.dirty_partners.add(code)
        for platform in sorted({*self.loader.queued_platforms(), *self.queues}):
            q = self._touch(platform, mode)
            q.reorder(self.policies.mode, [self._rescored(e) for e in q.entries.values()])

    def _entry(self, view: CaseView) -> Entry:
        c = view.state
        override, tier, score = self.partner(c.partner).sort_fields()
        return Entry(
            c.case, c.partner, c.priority_class, override, tier, score, view.filed_at,
            c.filed_at, c.stage, c.quantity_left,
        )

    def _rescored(self, entry: Entry) -> Entry:
        override, tier, score = self.partner(entry.partner).sort_fields()
        return entry._replace(override=override, tier=tier, score=score)

    def _flag(self, row: tuple | None) -> None:
        if row is not None:
            self.flag_rows.append(row)

    # --- writing ------------------------------------------------------------------------

    def flush(self, conn: sqlite3.Connection, position: int) -> None:
        """Write what changed since the last flush and the position reached.

        Runs in the caller's transaction, so rows and position commit together.
        """
        write = conn.executemany
        write(schema.upsert_sql(schema.AUDIT_LOG), self.audit_rows)
        write(schema.upsert_sql(schema.FLAGS), self.flag_rows)
        write(schema.upsert_sql(schema.DELIVERIES), self.delivery_rows)
        write(schema.upsert_sql(schema.END_USE_CHECKS), self.check_rows)
        write(schema.upsert_sql(schema.EEUM_DESIGNATIONS), self.designation_rows)
        write(
            schema.upsert_sql(schema.PARTNERS),
            [self.partners[p].row() for p in self.dirty_partners],
        )
        write(
            schema.upsert_sql(schema.PLATFORMS),
            [self.platforms[p].row() for p in self.dirty_platforms],
        )
        write(schema.upsert_sql(schema.CASES), [self.cases[c].row() for c in self.dirty_cases])
        if self.dirty_policies:
            write(schema.upsert_sql(schema.POLICIES), self.policies.rows())
        write(
            'INSERT INTO queue_changes (event_position, event_type, platform, "case", '
            "change, old_position, new_position) VALUES (?, ?, ?, ?, ?, ?, ?)",
            self.change_rows,
        )
        for platform in self.dirty_queues:
            self._write_queue(conn, platform)
        conn.execute("UPDATE projection SET position = ? WHERE id = 1", (position,))
        self._clear_pending()

    def _write_queue(self, conn: sqlite3.Connection, platform: str) -> None:
        q = self.queue(platform)
        written = self._written[platform]
        rows = q.rows(self.platform(platform).units_per_month)
        changed = [r for r in rows if written.get(r[2]) != r]
        gone = written.keys() - q.entries.keys()
        conn.executemany('DELETE FROM queue WHERE "case" = ?', [(c,) for c in gone])
        conn.executemany(schema.upsert_sql(schema.QUEUE), changed)
        self._written[platform] = {r[2]: r for r in rows}
