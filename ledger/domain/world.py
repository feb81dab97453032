"""A world of streams folded in memory over a loader: what a batch of decisions, or a
what-if's proposal, is decided against (``rules.World``).

Streams come from the loader the first time a decision asks for them; the events
decided so far are applied on top, so a batch (or a proposal) may register a partner
and file a case for it. The write side's :class:`ledger.app.batch.MemoryWorld` adds
what the store checks under its write lock; the read side's what-if uses this as is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Self

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.facts import in_force
from arms_ledger.ledger.domain.streams import Stream, evolve


class Overlay:
    """A :class:`rules.World` folded from events in memory, optionally over a loader."""

    def __init__(
        self,
        load_stream: Callable[[str], Stream] | None = None,
        load_thresholds: Callable[[], list[ev.NotificationThresholdsSet]] | None = None,
        load_event: Callable[[int], ev.Event | None] | None = None,
        load_head: Callable[[], int] | None = None,
    ):
        self._load_stream = load_stream or Stream
        self._load_event = load_event or (lambda position: None)
        self._load_head = load_head or (lambda: 0)
        # The log's last position when a decision first named a position past it (an
        # event of this batch), else None; and the events applied, in order.
        self.head: int | None = None
        self._applied: list[ev.Event] = []
        self._load_thresholds = load_thresholds or list
        self._streams: dict[str, Stream] = {}
        self._thresholds: list[ev.NotificationThresholdsSet] | None = None
        self._applied_thresholds: list[ev.NotificationThresholdsSet] = []

    def stream(self, key: str) -> Stream:
        found = self._streams.get(key)
        if found is None:
            found = self._streams[key] = self._loaded(key)
        return found

    def _loaded(self, key: str) -> Stream:
        return self._load_stream(key)

    def thresholds_at(self, when: datetime) -> ev.Thresholds:
        if self._thresholds is None:
            self._thresholds = list(self._load_thresholds())
        found = in_force((*self._thresholds, *self._applied_thresholds), when)
        return ev.DEFAULT_THRESHOLDS if found is None else found.groups

    def event_at(self, position: int) -> ev.Event | None:
        """The event at a log position: recorded, or applied here, numbered on from the
        log's last position (an event of the same batch). Naming one of these makes the
        batch depend on that last position (``head``)."""
        head = self._load_head() if self.head is None else self.head
        if position <= head:
            return self._load_event(position)
        self.head = head
        index = position - head - 1
        return self._applied[index] if index < len(self._applied) else None

    def streams(self) -> list[Stream]:
        """Every stream seen so far, in the order first seen."""
        return list(self._streams.values())

    def apply(self, event: ev.Event, key: str | None = None) -> Stream:
        """Fold an accepted event in (``key``: its stream's, if already known)."""
        if key is None:
            key = event.stream
        state = self._streams[key] = evolve(self.stream(key), event)
        self._applied.append(event)
        if isinstance(event, ev.NotificationThresholdsSet):
            self._applied_thresholds.append(event)
        return state

    @classmethod
    def of(cls, events: Iterable[ev.Event]) -> Self:
        world = cls()
        for event in events:
            world.apply(event)
        return world
