"""Events as the log holds them: with their stream, version and position.

The store produces these and the read side consumes them; neither side owns the other,
so the record types live with the events.
"""

from __future__ import annotations

import msgspec
from arms_ledger.ledger.domain import events as ev


class Recorded(msgspec.Struct, frozen=True):
    """An event read back from the store; ``position`` is its place in the log."""

    stream: str
    version: int
    event: ev.Event
    position: int | None = None


# One event of a page of the log: (position, stream, version, event).
LogRow = tuple[int, str, int, ev.Event]
