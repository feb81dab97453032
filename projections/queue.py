"""The priority queues: one sorted list per platform, and what each event changed.

The order is model.md's: priority class (expedited, normal, deferred) -> partner override
in force first -> tier -> score, higher first -> filed ``effective_at``, earlier first ->
case id. In ``fcfs`` mode tier and score drop out.

A queue remembers, while one event is applied, each case's position before it; ``end()``
then reports every case whose position or membership changed. Work per change is a
binary search plus the cases whose positions actually shift.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime
from typing import NamedTuple

CLASS_RANK = {"expedited": 0, "normal": 1, "deferred": 2}


class Entry(NamedTuple):
    case: str
    partner: str
    priority_class: str
    override: bool
    tier: int
    score: float
    filed_at: str
    filed: datetime
    stage: str
    quantity_left: int


def sort_key(entry: Entry, mode: str) -> tuple:
    rank, first = CLASS_RANK[entry.priority_class], not entry.override
    if mode == "fcfs":
        return (rank, first, entry.filed, entry.case)
    return (rank, first, entry.tier, -entry.score, entry.filed, entry.case)


class Change(NamedTuple):
    case: str
    change: str  # entered, left, moved, shifted
    old_position: int | None
    new_position: int | None


class Queue:
    def __init__(self, platform: str, mode: str, entries: list[Entry] = ()):
        self.platform = platform
        self.mode = mode
        self.entries = {e.case: e for e in entries}
        self.keys = sorted(sort_key(e, mode) for e in entries)
        self._before: dict[str, int | None] = {}
        self._own: set[str] = set()

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

    def put(self, entry: Entry) -> None:
        """Add the case, or replace its entry (moving it if its sort key changed)."""
        key = sort_key(entry, self.mode)
        old = self.entries.get(entry.case)
        self.entries[entry.case] = entry
        keys = self.keys
        if old is None:
            self._before.setdefault(entry.case, None)
            j = bisect_left(keys, key)
            keys.insert(j, key)
            self._note(j + 1, len(keys), -1)
            return
        old_key = sort_key(old, self.mode)
        if old_key == key:
            return
        i = bisect_left(keys, old_key)
        self._before.setdefault(entry.case, i + 1)
        self._own.add(entry.case)
        del keys[i]
        j = bisect_left(keys, key)
        keys.insert(j, key)
        if j < i:
            self._note(j + 1, i + 1, -1)
        elif j > i:
            self._note(i, j, 1)

    def remove(self, case: str) -> None:
        entry = self.entries.pop(case)
        i = bisect_left(self.keys, sort_key(entry, self.mode))
        self._before.setdefault(case, i + 1)
        del self.keys[i]
        self._note(i, len(self.keys), 1)

    def reorder(self, mode: str, entries: list[Entry]) -> None:
        """Replace every entry at once (a new policy): one sort instead of many moves."""
        for i, key in enumerate(self.keys):
            self._before.setdefault(key[-1], i + 1)
        old_keys = {c: sort_key(e, self.mode) for c, e in self.entries.items()}
        self.mode = mode
        self.entries = {e.case: e for e in entries}
        self.keys = sorted(sort_key(e, mode) for e in entries)
        self._own.update(
            c for c, e in self.entries.items() if old_keys.get(c) != sort_key(e, mode)
        )

    def end(self) -> list[Change]:
        """What changed since the last ``end()``, in order of the new positions."""
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
            changes.append(Change(case, kind, old, new))
        self._before.clear()
        self._own.clear()
        changes.sort(key=lambda c: (c.new_position or 0, c.old_position or 0))
        return changes

    def rows(self, units_per_month: float | None) -> list[tuple]:
        """The queue table's rows, in order, with the estimated completion."""
        rows = []
        cumulative = 0
        scored = self.mode == "scored"
        for position, key in enumerate(self.keys, start=1):
            e = self.entries[key[-1]]
            cumulative += e.quantity_left
            months = (
                round(cumulative / units_per_month, 1) if units_per_month else None
            )
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
