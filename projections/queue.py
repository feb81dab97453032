"""The priority queues: one sorted list per platform, and what each event changed.

The order of docs/domain.md (The queue): priority class (expedited, normal, deferred)
-> partner override
in force first -> tier -> score, higher first -> filed ``effective_at``, earlier first ->
case id. In ``fcfs`` mode tier and score drop out.

A queue remembers, while one event is applied, each case's position before it; ``end()``
then reports every case whose position or membership changed. Work per change is a
binary search plus the cases whose positions actually shift. The usual event changes a
queue once (one case enters, leaves or moves): that change is kept as it is and turned
into rows straight from the sorted keys; only a second change within the same event
falls back to noting every shifted case's position before it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import NamedTuple

from arms_ledger.ledger.domain.clock import instant
from arms_ledger.ledger.domain.priority import Entry, completion_months, sort_key


class QueueRow(NamedTuple):
    """A row of the ``queue`` table (``schema.QUEUE``), in its column order."""

    platform: str
    position: int
    case: str
    partner: str
    priority_class: str
    override: bool
    tier: int | None  # None in fcfs mode
    score: float | None  # None in fcfs mode
    filed_at: str
    stage: str
    quantity_left: int
    cumulative_quantity: int
    est_completion_months: float | None

    def entry(self) -> Entry:
        """What the queue orders the row's case by."""
        return Entry(
            self.case,
            self.partner,
            self.priority_class,
            bool(self.override),
            self.tier or 3,
            self.score or 0.0,
            self.filed_at,
            instant(self.filed_at),
            self.stage,
            self.quantity_left,
        )


def resorted(
    others: Sequence[QueueRow],
    own: Sequence[QueueRow],
    key: Callable[[QueueRow], tuple],
    new_key: Callable[[QueueRow], tuple],
) -> list[tuple[QueueRow, bool]]:
    """A queue's rows in their new order when only ``own`` get new sort keys (``others``
    keep theirs, in order): (row, its own key changed). ``own``, in their old order,
    keep their order among themselves, so each lands by one binary search."""
    order: list[tuple[QueueRow, bool]] = []
    done = 0
    for row in own:
        k = new_key(row)
        i = bisect_left(others, k, lo=done, key=key)
        order += [(r, False) for r in others[done:i]]
        order.append((row, k != key(row)))
        done = i
    order += [(r, False) for r in others[done:]]
    return order


class Change(NamedTuple):
    case: str
    change: str  # entered, left, moved, shifted
    old_position: int | None
    new_position: int | None


def runs_of(changes: list[tuple]) -> list[tuple]:
    """(case, change, old, new) in order, as runs (change, old, new, [cases]): shifted
    cases at consecutive old and new positions make one run."""
    runs: list[tuple] = []
    last: tuple | None = None
    for case, kind, old, new in changes:
        if (
            last is not None
            and kind == "shifted" == last[0]
            and old == last[1] + len(last[3])
            and new == last[2] + len(last[3])
        ):
            last[3].append(case)
            continue
        last = (kind, old, new, [case])
        runs.append(last)
    return runs


class Queue:
    def __init__(self, platform: str, mode: str, entries: Sequence[Entry] = ()):
        self.platform = platform
        self.mode = mode
        self.entries = {e.case: e for e in entries}
        self.keys = sorted(sort_key(e, mode) for e in entries)
        self.ids = [k[-1] for k in self.keys]  # the cases in order (a key ends with it)
        self.stages = [self.entries[c].stage for c in self.ids]  # their stages, in order
        self._before: dict[str, int | None] = {}
        self._own: set[str] = set()
        # The only change of the current event so far, not yet noted in ``_before``:
        # (case, old index or None, new index or None), indexes into ``keys``.
        self._single: tuple[str, int | None, int | None] | None = None
        # False: the changes are not noted (``end()`` reports none), for a replay that
        # keeps no history of them.
        self.track = True

    def __len__(self) -> int:
        return len(self.keys)

    def position(self, case: str) -> int | None:
        entry = self.entries.get(case)
        if entry is None:
            return None
        return bisect_left(self.keys, sort_key(entry, self.mode)) + 1

    def _note(self, start: int, stop: int, offset: int) -> None:
        """Cases at ``keys[start:stop]`` were at index + ``offset`` before this change."""
        before, keys = self._before, self.keys
        for i in range(start, stop):
            before.setdefault(keys[i][-1], i + offset + 1)

    def _settle(self) -> None:
        """Note the pending single change in ``_before`` (a second change is coming).

        ``keys`` is still as that change left it, so this notes what it would have.
        """
        case, i, j = self._single  # type: ignore[misc]
        self._single = None
        n = len(self.keys)
        if i is None:  # entered at j
            self._before.setdefault(case, None)
            self._note(j + 1, n, -1)  # type: ignore[operator]
        elif j is None:  # left from i
            self._before.setdefault(case, i + 1)
            self._note(i, n, 1)
        else:  # moved from i to j
            self._before.setdefault(case, i + 1)
            self._own.add(case)
            if j < i:
                self._note(j + 1, i + 1, -1)
            elif j > i:
                self._note(i, j, 1)

    def _changed(self, case: str, i: int | None, j: int | None) -> None:
        """Keep a first change as it is; note a later one (``keys`` as it left them)."""
        if not self.track:
            return
        self._single = (case, i, j)
        if self._before:
            self._settle()

    def put(self, entry: Entry) -> None:
        """Add the case, or replace its entry (moving it if its sort key changed)."""
        key = sort_key(entry, self.mode)
        case = entry.case
        old = self.entries.get(case)
        self.entries[case] = entry
        keys = self.keys
        if old is None:
            if self._single is not None:
                self._settle()  # before ``keys`` change again
            j = bisect_left(keys, key)
            keys.insert(j, key)
            self.ids.insert(j, case)
            self.stages.insert(j, entry.stage)
            self._changed(case, None, j)
            return
        old_key = sort_key(old, self.mode)
        if old_key == key:
            if old.stage != entry.stage:
                self.stages[bisect_left(keys, key)] = entry.stage
            return
        if self._single is not None:
            self._settle()  # before ``keys`` change again
        i = bisect_left(keys, old_key)
        del keys[i]
        j = bisect_left(keys, key)
        keys.insert(j, key)
        stages = self.stages
        if i != j:
            ids = self.ids
            del ids[i]
            ids.insert(j, case)
            del stages[i]
            stages.insert(j, entry.stage)
        else:
            stages[i] = entry.stage
        self._changed(case, i, j)

    def update(self, entry: Entry) -> None:
        """Replace the case's entry by one with the same sort key (its stage or
        quantity left changed): it keeps its place."""
        old = self.entries[entry.case]
        self.entries[entry.case] = entry
        if old.stage != entry.stage:
            self.stages[bisect_left(self.keys, sort_key(old, self.mode))] = entry.stage

    def remove(self, case: str) -> None:
        entry = self.entries.pop(case)
        if self._single is not None:
            self._settle()  # before ``keys`` change again
        i = bisect_left(self.keys, sort_key(entry, self.mode))
        del self.keys[i]
        del self.ids[i]
        del self.stages[i]
        self._changed(case, i, None)

    def reorder(self, mode: str, entries: list[Entry]) -> None:
        """Replace every entry at once (a new policy): one sort instead of many moves."""
        track = self.track
        if track:
            if self._single is not None:
                self._settle()
            for i, key in enumerate(self.keys):
                self._before.setdefault(key[-1], i + 1)
            old_keys = {c: sort_key(e, self.mode) for c, e in self.entries.items()}
        self.mode = mode
        self.entries = {e.case: e for e in entries}
        self.keys = sorted(sort_key(e, mode) for e in entries)
        self.ids = [k[-1] for k in self.keys]
        self.stages = [self.entries[c].stage for c in self.ids]
        if track:
            self._own.update(
                c for c, e in self.entries.items() if old_keys.get(c) != sort_key(e, mode)
            )

    def end(self) -> list[Change]:
        """What changed since the last ``end()``, in order of the new positions."""
        return [
            Change(
                case,
                kind,
                None if old is None else old + k,
                None if new is None else new + k,
            )
            for kind, old, new, cases in self.end_runs(())
            for k, case in enumerate(cases)
        ]

    def end_runs(self, prefix: tuple) -> list[tuple]:
        """``end()`` in runs: ``prefix + (change, old, new, cases)``, the k-th case of a
        run at ``old + k`` before and ``new + k`` after (None: not in the queue)."""
        single = self._single
        if single is not None:
            self._single = None
            return self._single_runs(prefix, *single)
        if not self._before:
            return []
        changes = []
        for case, old in self._before.items():
            new = self.position(case)
            if old == new:
                continue
            if old is None:
                kind = "entered"
            elif new is None:
                kind = "left"
            else:
                kind = "moved" if case in self._own else "shifted"
            changes.append((case, kind, old, new))
        self._before.clear()
        self._own.clear()
        changes.sort(key=lambda c: (c[3] or 0, c[2] or 0))
        return [(*prefix, *run) for run in runs_of(changes)]

    def _single_runs(
        self, prefix: tuple, case: str, i: int | None, j: int | None
    ) -> list[tuple]:
        """The runs of one change, in ``end()``'s order, from the cases as they are now:
        those between its old and new index shifted by one."""
        ids = self.ids
        if i is None:  # entered at j: those behind it moved back by one
            shifted = ids[j + 1 :]  # type: ignore[operator]
            runs = [(*prefix, "entered", None, j + 1, [case])]  # type: ignore[operator]
            if shifted:
                runs.append((*prefix, "shifted", j + 1, j + 2, shifted))  # type: ignore[operator]
            return runs
        if j is None:  # left from i: those behind it moved up by one
            shifted = ids[i:]
            runs = [(*prefix, "left", i + 1, None, [case])]
            if shifted:
                runs.append((*prefix, "shifted", i + 2, i + 1, shifted))
            return runs
        if j < i:  # moved up: the cases it passed moved back by one
            return [
                (*prefix, "moved", i + 1, j + 1, [case]),
                (*prefix, "shifted", j + 1, j + 2, ids[j + 1 : i + 1]),
            ]
        if j > i:  # moved back: the cases it passed moved up by one
            return [
                (*prefix, "shifted", i + 2, i + 1, ids[i:j]),
                (*prefix, "moved", i + 1, j + 1, [case]),
            ]
        return []

    def rows(self, units_per_month: float | None) -> list[tuple]:
        """The queue table's rows, in order, with the estimated completion."""
        rows = []
        cumulative = 0
        scored = self.mode == "scored"
        entries = self.entries
        for position, case in enumerate(self.ids, start=1):
            e = entries[case]
            cumulative += e.quantity_left
            months = completion_months(cumulative, units_per_month)
            rows.append(
                (
                    self.platform,
                    position,
                    e.case,
                    e.partner,
                    e.priority_class,
                    e.override,
                    e.tier if scored else None,
                    e.score if scored else None,
                    e.filed_at,
                    e.stage,
                    e.quantity_left,
                    cumulative,
                    months,
                )
            )
        return rows
