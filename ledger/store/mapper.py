"""How events become rows of the eventsourcing store, and back.

The stored state of an event is its canonical msgspec JSON (the whole tagged Struct,
envelope included); the stored topic is its ``type`` tag (a class name, so moving the
modules never changes what is stored); the originator id is the stream key
(``case:PL-B-AHA``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.records import Recorded
from eventsourcing.persistence import Mapper, StoredEvent


class Pending(msgspec.Struct, frozen=True):
    """An accepted event on its way into the store, at a version of its stream."""

    originator_id: str
    originator_version: int
    event: ev.Event


class EventMapper(Mapper[str]):
    """Encodes the whole event with msgspec; decodes through the tagged union.

    Replaces the library's default mapper and JSON transcoder (which tags every value
    and is about 3x slower here; see bench/transcoding.py).
    """

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        event = domain_event.event
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=type(event).__name__,
            state=ev.encoder.encode(event),
        )

    def to_stored_events(self, pending: Sequence[Pending]) -> list[StoredEvent]:
        """``to_stored_event`` of each, in one loop (a batch on its way to the store)."""
        encode = ev.encoder.encode
        return [
            StoredEvent(p.originator_id, p.originator_version, type(e).__name__, encode(e))
            for p in pending
            for e in (p.event,)
        ]

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return Recorded(
            stream=str(stored_event.originator_id),  # ORIGINATOR_ID_TYPE: text
            version=stored_event.originator_version,
            event=ev.decoder.decode(stored_event.state),
            position=getattr(stored_event, "id", None),
        )
