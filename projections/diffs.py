"""What ``audit diff`` compares: the queues as of T1 and as of T2, and the queue changes
the events effective in between made, in the order they took effect.

**The changes between T1 and T2** are those of one replay: the events in force at T1
(``facts.holds_at``) applied first, in log order (the queues as of T1), then the events
effective in (T1, T2], in order of effective time, ties by log position (the queues as
of T2 at the end). Every step applies one event to the state of a set of events, and
that state does not depend on the order the events came in (``snapshots``: facts by
latest (effective, position), spending the latest year, contributions a sum, queues
sorted by a key of the state); within a case, effective order is log order (rule 2).
So each event's change, and the causes ``audit diff`` names from them, depend only on
which events the log holds, not on the order they were recorded in: the T1 side may
start from a snapshot (``snapshots.nearest``) and the pass over (T1, T2] applies only
the events between, found by effective time.

Before, the causes came from the ``queue_changes`` of a replay as of T2 in log order:
an event's change was measured against the events *recorded* before it (including any
effective after it, up to T2) and without those recorded after it (including any
effective before it). The two agree whenever, among the events in force at T2, no
event effective in (T1, T2] is recorded after one effective later, or before one in
force at T1 that is not a registration or listing (``tests/integration/test_diffs.py``
checks both the agreement and the difference).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import effective, format_instant
from arms_ledger.ledger.domain.facts import holds_at
from arms_ledger.projections import snapshots
from arms_ledger.projections.projector import Projector
from arms_ledger.projections.runner import Cut, connect
from arms_ledger.projections.source import LogReader

__all__ = ["Between", "between", "sides"]

# An event as the log gives it: position, stream, version, event.
Logged = tuple[int, str, int, ev.Event]
# The tables of both sides: what ``audit_queries.diff`` reads (of those a replay from a
# snapshot answers); of ``queue`` only the platform's rows when one is asked.
TABLES = frozenset({"platforms", "queue"})


@dataclass
class Between:
    """The queue changes the events effective in (T1, T2] made, by platform and case,
    each change with its event: ``position``, ``type``, ``effective_at``, ``actor``,
    ``rationale`` and ``change`` (entered, left, moved or shifted), in log order."""

    runs: list[tuple] = field(default_factory=list)  # (position, type, platform, ...)
    events: dict[int, ev.Event] = field(default_factory=dict)
    _by_platform: dict[str, dict[str, list[dict]]] = field(default_factory=dict)

    def of(self, platform: str) -> dict[str, list[dict]]:
        """The platform's changes by case, in log order of their events."""
        found = self._by_platform.get(platform)
        if found is None:
            found = self._by_platform[platform] = {}
            for position, kind, _plat, change, _old, _new, cases in sorted(
                (r for r in self.runs if r[2] == platform), key=lambda r: r[0]
            ):
                e = self.events[position]
                cause = {
                    "position": position,
                    "type": kind,
                    "change": change,
                    "effective_at": e.effective_at,
                    "actor": e.actor,
                    "rationale": e.rationale,
                }
                for case in cases:
                    found.setdefault(case, []).append(cause)
        return found


def _pass(
    projector: Projector, events: list[Logged], until: datetime, platform: str | None
) -> Between:
    """Apply ``events`` (effective in (T1, ``until``]) in effective order, ties by log
    position, to the projector holding the state as of T1; the runs of queue changes
    each made (only ``platform``'s, if given)."""
    projector.as_of = until
    projector.changes = True  # the runs of queue changes are the answer here
    for partner in projector.partners.values():
        partner.as_of = until
    found = Between()
    projector._clear_pending()
    for n, stream, version, e in sorted(events, key=lambda x: (effective(x[3]), x[0])):
        projector.apply_event(n, stream, version, e)
        runs = projector.change_rows
        if runs:
            kept = [r for r in runs if platform is None or r[2] == platform]
            if kept:
                found.runs += kept
                found.events[n] = e
        projector._clear_pending()  # the history rows are not written
    return found


def from_zero(
    log: LogReader, since: datetime, until: datetime, position: int
) -> tuple[Projector, int, list[Logged]]:
    """The projector holding the state as of ``since`` over the log up to ``position``,
    from the first event; the last position it applied; the events effective in
    (``since``, ``until``] up to ``position``, in log order."""
    projector = Projector(as_of=since, history=False)
    last = 0
    later: list[Logged] = []
    for page in log.pages(0, position):
        for n, stream, version, e in page:
            if holds_at(e, since):
                projector.apply_event(n, stream, version, e)
                last = n
                if len(projector.audit_rows) >= snapshots.AT_ONCE:
                    projector._clear_pending()
            if since < effective(e) <= until:
                later.append((n, stream, version, e))
    projector._clear_pending()
    return projector, last, later


def from_snapshot(
    state: snapshots.State,
    log: LogReader,
    directory: Path,
    since: datetime,
    until: datetime,
    position: int,
) -> tuple[Projector, int, list[Logged]]:
    """What ``from_zero`` gives, from a snapshot along effective time at or before
    ``since`` (``snapshots.nearest``): its D1 and D2 to ``since`` applied, and the events
    effective in (``since``, ``until``] found by effective time (up to the snapshot's
    position, through the live read models' ``audit_log``) and after its position."""
    if state.as_of is None or state.as_of > since or state.position > position:
        raise ValueError("the snapshot is not of an earlier part of the cut")
    projector = snapshots.restore(state, log, since)
    last = state.last_applied
    try:
        with closing(snapshots._index(directory)) as index:
            (covered,) = index.execute("SELECT position FROM projection").fetchone()
            if covered < state.position:
                raise LookupError(
                    f"the read models reach position {covered}, "
                    f"the snapshot {state.position}"
                )
            if since > state.as_of:
                for n, stream, version, e in snapshots.between(
                    log, index, state.as_of, since, state.position
                ):
                    projector.apply_event(n, stream, version, e)
                    last = max(last, n)
                    if len(projector.audit_rows) >= snapshots.AT_ONCE:
                        projector._clear_pending()
            later = list(snapshots.between(log, index, since, until, state.position))
        for page in log.pages(state.position, position):
            for n, stream, version, e in page:
                if holds_at(e, since):
                    projector.apply_event(n, stream, version, e)
                    last = n
                if since < effective(e) <= until:
                    later.append((n, stream, version, e))
            projector._clear_pending()
    except BaseException:
        projector.close()
        raise
    projector._clear_pending()
    return projector, last, later


def between(
    log: LogReader,
    directory: Path,
    before: sqlite3.Connection,
    after: sqlite3.Connection,
    since: datetime,
    until: datetime,
    known_at: datetime | None = None,
    platform: str | None = None,
    notice: Callable[[str], None] | None = None,
    *,
    catch_up: Callable[[], None] | None = None,
    snapshot: bool = True,
) -> Between:
    """Write the read models of the queues as of ``since`` into ``before`` and as of
    ``until`` into ``after`` (``TABLES``; both empty databases), and return the queue
    changes between (``platform``'s queue and changes only, if given).
    From the nearest snapshot when one serves (``snapshot``), else from the first
    event."""
    if until < since:
        raise ValueError("until is before since")
    first, second = Cut(as_of=since, known_at=known_at), Cut(as_of=until, known_at=known_at)
    head = log.head()
    position = head if known_at is None else snapshots.known_by(log, head, known_at)
    found = (
        snapshots.nearest(log, directory, first, notice, catch_up=catch_up)
        if snapshot and head and TABLES <= snapshots.ANSWERS
        else None
    )
    projector = None
    if found is not None:
        state, position = found
        try:
            projector, last, later = from_snapshot(
                state, log, directory, since, until, position
            )
        except snapshots.DAMAGED as error:
            snapshots.unusable(snapshots.Snapshots(directory), error, notice)
    if projector is None:
        projector, last, later = from_zero(log, since, until, position)
    try:
        snapshots._write(
            before, first, projector, last, format_instant(since), TABLES, platform
        )
        changes = _pass(projector, later, until, platform)
        last = max([last, *(n for n, *_ in later)])
        snapshots._write(
            after, second, projector, last, format_instant(until), TABLES, platform
        )
    finally:
        projector.close()
    return changes


@contextmanager
def sides(
    log: LogReader,
    directory: Path,
    since: datetime,
    until: datetime,
    known_at: datetime | None = None,
    platform: str | None = None,
    notice: Callable[[str], None] | None = None,
    catch_up: Callable[[], None] | None = None,
) -> Iterator[tuple[sqlite3.Connection, sqlite3.Connection, Between]]:
    """``between`` into two temporary databases: (before, after, the changes). Missing
    snapshots are built after the live read models are caught up (``catch_up``, by
    default ``engine.live``)."""
    from arms_ledger.ledger.errors import storage
    from arms_ledger.projections.engine import PROJECTIONS_DB, REPLAY_SPACE, live

    def catch_up_live() -> None:
        live(log, directory, notice).close()

    workdir = Path(tempfile.mkdtemp(prefix="arms-ledger-diff-"))
    try:
        with storage(f"the replay's read models in {workdir}", REPLAY_SPACE):
            (workdir / "after").mkdir()
            before = connect(workdir / PROJECTIONS_DB)
            after = connect(workdir / "after" / PROJECTIONS_DB)
            try:
                changes = between(
                    log,
                    directory,
                    before,
                    after,
                    since,
                    until,
                    known_at,
                    platform,
                    notice,
                    catch_up=catch_up or catch_up_live,
                )
                yield before, after, changes
            finally:
                before.close()
                after.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
