"""The read side's port onto the log: what projecting needs to read, and nothing more.

The store's recorders (``ledger/store``) implement :class:`LogReader`; so does
:class:`InMemoryLog`, a list of events for tests and small replays. The read side
imports only this, the domain (``ledger.domain``) and ``ledger.errors``: never the
application, the store, the signing key or the eventsourcing library.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.records import LogRow, Recorded

PAGE = 5_000

__all__ = ["PAGE", "InMemoryLog", "LogReader", "LogRow", "Recorded"]


class LogReader(Protocol):
    """The log, read in order: positions 1..head, each an event of a stream."""

    def head(self) -> int:
        """The position of the last event (0 if the log is empty)."""
        ...

    def pages(self, after: int, upto: int, size: int = PAGE) -> Iterator[list[LogRow]]:
        """(position, stream, version, event) after ``after`` up to ``upto``, in log
        order, at most ``size`` a page; nothing of a page is kept once the next is read."""
        ...

    def at(self, positions: Sequence[int]) -> dict[int, ev.Event]:
        """The events at these positions."""
        ...

    def stream(self, key: str, upto: int | None = None) -> list[Recorded]:
        """One stream's events up to position ``upto``, oldest first."""
        ...

    def of_types(
        self, types: Sequence[str], *, after: int = 0, upto: int | None = None
    ) -> list[Recorded]:
        """The events of these types (class names) after ``after`` up to ``upto``."""
        ...


class InMemoryLog:
    """A :class:`LogReader` over events in memory, numbered from 1 as appended."""

    def __init__(self, events: Iterable[ev.Event] = ()):
        self.rows: list[LogRow] = []
        self.append(*events)

    def append(self, *events: ev.Event) -> None:
        versions: dict[str, int] = {}
        for _, stream, version, _ in self.rows:
            versions[stream] = version
        for event in events:
            version = versions[event.stream] = versions.get(event.stream, 0) + 1
            self.rows.append((len(self.rows) + 1, event.stream, version, event))

    def head(self) -> int:
        return len(self.rows)

    def pages(self, after: int, upto: int, size: int = PAGE) -> Iterator[list[LogRow]]:
        for start in range(after, min(upto, self.head()), size):
            yield self.rows[start : min(start + size, upto)]

    def at(self, positions: Sequence[int]) -> dict[int, ev.Event]:
        return {p: self.rows[p - 1][3] for p in positions if 0 < p <= self.head()}

    def stream(self, key: str, upto: int | None = None) -> list[Recorded]:
        return [r for r in self._records(0, upto) if r.stream == key]

    def of_types(
        self, types: Sequence[str], *, after: int = 0, upto: int | None = None
    ) -> list[Recorded]:
        return [r for r in self._records(after, upto) if type(r.event).__name__ in types]

    def _records(self, after: int, upto: int | None) -> Iterator[Recorded]:
        for position, stream, version, event in self.rows[after:upto]:
            yield Recorded(stream, version, event, position)
