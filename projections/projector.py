"""The projector: applies events in log order to the read models' state in memory.

What it changes is held and written by ``state.ProjectionState`` (loaded on first use,
written by ``flush`` in the caller's transaction): so catching up after one event costs
the rows that event touches, and a rebuild never reads the projection database at all.
"""

from __future__ import annotations

import functools

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.cases import TERMINAL_STAGES
from arms_ledger.ledger.domain.priority import Entry
from arms_ledger.projections import audit
from arms_ledger.projections.cases import CaseView
from arms_ledger.projections.source import Recorded
from arms_ledger.projections.state import ProjectionState

__all__ = ["Projector"]


class Projector(ProjectionState):
    """Applies events to the read models' state (``ProjectionState``)."""

    def apply(self, recorded: Recorded) -> None:
        """Apply an event read from the log (which gives its position)."""
        assert recorded.position is not None
        self.apply_event(
            recorded.position, recorded.stream, recorded.version, recorded.event
        )

    def apply_event(self, position: int, stream: str, version: int, e: ev.Event) -> None:
        """Apply the event at log ``position`` (version ``version`` of ``stream``)."""
        if self.audit:
            self.audit_rows.append(audit.audit_row(position, stream, version, e))
        if isinstance(e, ev.CaseEvent):
            self._case_event(position, stream, e)
        elif isinstance(e, ev.PartnerEvent):
            self._partner_event(position, stream, e)
        elif isinstance(e, ev.PlatformEvent):
            self._platform_event(position, stream, e)
        elif isinstance(e, ev.PolicyEvent):
            self._policy_event(position, stream, e)
        else:  # the directory of officials (ledger.domain.authority): the audit log only
            assert isinstance(e, ev.DirectoryEvent), type(e).__name__
        self._end_runs(position, type(e).__name__)

    def _end_runs(self, position: int, name: str) -> None:
        """The runs of queue changes the event at ``position`` made, in platform order,
        so the rows do not depend on what was loaded when."""
        touched = self._touched
        if touched and not self._in_place:
            rows = self.change_rows
            if len(touched) == 1:
                for platform, q in touched.items():
                    rows += q.end_runs((position, name, platform))
            else:
                for platform in sorted(touched):
                    rows += touched[platform].end_runs((position, name, platform))
            touched.clear()
        elif self._in_place:
            for platform in sorted({*touched, *self._in_place}):
                loaded = touched.get(platform)
                if loaded is not None:
                    self.change_rows += loaded.end_runs((position, name, platform))
                else:
                    prefix = (position, name, platform)
                    self.change_rows += [
                        (*prefix, *run) for run in self._in_place[platform]
                    ]
            touched.clear()
            self._in_place.clear()

    def _partner_event(self, position: int, stream: str, e: ev.PartnerEvent) -> None:
        partner = self.partner(e.partner)
        before = partner.sort_fields()
        partner.apply(e, position)
        partner.rescore(self.policies.in_force)
        self.dirty_partners.add(e.partner)
        if self.history:
            self._flag(audit.backdated(position, e, e.partner))
        fields = partner.sort_fields()
        if fields != before:
            queued = self.queued(e.partner)
            by_platform: dict[str, list[str]] = {}
            for case_id, platform in queued.items():
                by_platform.setdefault(platform, []).append(case_id)
            mode = self.policies.mode
            for platform, cases in by_platform.items():
                if platform in self.queues:
                    continue
                runs = self.loader.rescore_in_place(
                    platform,
                    cases,
                    fields,
                    mode,
                    functools.partial(self._units_per_month, platform),
                )
                if runs is not None:
                    self._in_place[platform] = runs
            for case_id, platform in queued.items():
                if platform not in self._in_place:
                    q = self._touch(platform)
                    q.put(self._rescored(q.entries[case_id]))

    def _units_per_month(self, platform: str) -> float | None:
        return self.platform(platform).units_per_month

    def _platform_event(self, position: int, stream: str, e: ev.PlatformEvent) -> None:
        self.platform(e.platform).apply(e, position)
        self.dirty_platforms.add(e.platform)
        if self.history:
            self._flag(audit.backdated(position, e, None))
        if isinstance(e, ev.ProductionCapacitySet):
            self.dirty_queues.add(e.platform)  # estimated completions change
        elif isinstance(e, ev.EEUMDesignationChanged) and self.history:
            self.designation_rows.append(
                (position, e.platform, e.designated, e.effective_at)
            )

    def _case_event(self, position: int, stream: str, e: ev.CaseEvent) -> None:
        case_id = e.case
        if type(e) is ev.CaseFiled:
            view = self.cases[case_id] = CaseView.filed(e, position)
            was_queued = False
        else:
            view = self.cases.get(case_id) or self.cases_get(case_id)
            was_queued = view.queued
            if (
                was_queued
                and self.history
                and isinstance(e, (ev.DeliveryRecorded, ev.OfferIssued))
            ):
                self._sequence(position, e, view)
            view.apply(e, position)
        state = view.state
        self.dirty_cases.add(case_id)
        if state.stage in TERMINAL_STAGES:
            self.ending.add(case_id)
        if not self.history:  # none of the history rows below (a replay's)
            self._requeue(view, was_queued)
            return
        if e.DECISION:
            self._flag(audit.backdated(position, e, state.partner))
        if isinstance(e, ev.DeliveryRecorded):
            self.delivery_rows.append(
                (
                    position,
                    case_id,
                    state.platform,
                    state.partner,
                    e.quantity,
                    e.effective_at,
                )
            )
        elif isinstance(e, ev.CongressionalNotified):
            middle_east = self.partner(state.partner).middle_east
            self._flag(audit.qme_missing(position, e, state.partner, middle_east))
        elif isinstance(e, ev.EndUseCheckRecorded):
            self.check_rows.append((position, case_id, e.kind, e.result, e.effective_at))
        elif isinstance(e, ev.EventCorrected):
            self._flag(audit.corrected(position, e, state.partner))
            if e.of == "DeliveryRecorded":
                self._correct_delivery(e, state.platform, state.partner)
        self._requeue(view, was_queued)

    def _correct_delivery(self, e: ev.EventCorrected, platform: str, partner: str) -> None:
        """The corrected delivery's row (at the corrected event's position, effective
        when it was) with its new quantity, or gone if it was retracted."""
        self.eeum_cases.add(e.case)
        if e.retracted:
            self.delivery_rows = [r for r in self.delivery_rows if r[0] != e.corrects]
            self.retracted_deliveries.append((e.corrects,))
            return
        row = (e.corrects, e.case, platform, partner, e.corrected["quantity"])
        self.delivery_rows.append((*row, e.effective_at))

    def _sequence(self, position: int, e: ev.CaseEvent, view: CaseView) -> None:
        """Flag a delivery or an offer that skips cases still waiting ahead of it."""
        state = view.state
        q = self._touch(state.platform)
        at = q.position(state.case)
        if at is None or at == 1:
            return
        self._flag(
            audit.out_of_sequence(
                position,
                e,
                state.partner,
                state.platform,
                at,
                q.ids[: at - 1],
                q.stages[: at - 1],
            )
        )

    def _requeue(self, view: CaseView, was_queued: bool) -> None:
        """The case's entry in its platform's queue after an event: put, changed or
        removed."""
        state, case_id = view.state, view.state.case
        if view.queued:
            q = self._touch(state.platform)
            if was_queued:  # its partner's part of the entry is kept current already
                old = q.entries[case_id]
                left = state.quantity - state.delivered
                if (old.priority_class, old.stage, old.quantity_left) != (
                    state.priority_class,
                    state.stage,
                    left,
                ):
                    # The same priority class: the same sort key, the same place.
                    same = old.priority_class == state.priority_class
                    (q.update if same else q.put)(
                        Entry(
                            case_id,
                            old.partner,
                            state.priority_class,
                            old.override,
                            old.tier,
                            old.score,
                            old.filed_at,
                            old.filed,
                            state.stage,
                            left,
                        )
                    )
            else:
                self.queued(state.partner)[case_id] = state.platform
                q.put(self._entry(view))
        elif was_queued:
            del self.queued(state.partner)[case_id]
            self._touch(state.platform).remove(case_id)

    def _policy_event(self, position: int, stream: str, e: ev.PolicyEvent) -> None:
        self.dirty_policies = True
        if self.history:
            self._flag(audit.backdated(position, e, None))
        mode = self.policies.mode  # the stored queues were ordered under it
        if not self.policies.apply(e, position):
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
            c.case,
            c.partner,
            c.priority_class,
            override,
            tier,
            score,
            view.filed_at,
            c.filed_at,
            c.stage,
            c.quantity_left,
        )

    def _rescored(self, entry: Entry) -> Entry:
        override, tier, score = self.partner(entry.partner).sort_fields()
        return entry._replace(override=override, tier=tier, score=score)

    def _flag(self, row: tuple | None) -> None:
        if row is not None:
            self.flag_rows.append(row)
