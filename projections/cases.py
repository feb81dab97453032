"""Cases: the folded case state of ``ledger.decision`` and where each value came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.cases import (
    OPEN_STAGES,
    TERMINAL_STAGES,
    CaseState,
    evolve_case,
    open_case,
)
from arms_ledger.ledger.domain.clock import format_instant

_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(tuple[CaseState, str, int, int, int | None]).decode


@dataclass(slots=True)
class CaseView:
    state: CaseState
    filed_at: str
    filed_position: int
    last_position: int
    priority_position: int | None = None
    # ``pack()``'s bytes, kept until the next event (a snapshot captured every 10,000
    # events packs again only the cases that changed since the last one).
    packed: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def filed(cls, event: ev.CaseFiled, position: int) -> CaseView:
        assert event.effective_at is not None  # normalized before it is stored
        return cls(open_case(event), event.effective_at, position, position)

    def apply(self, event: ev.CaseEvent, position: int) -> None:
        self.state = evolve_case(self.state, event)
        self.last_position = position
        self.packed = None
        if isinstance(event, ev.CaseReprioritized):
            self.priority_position = position

    @property
    def case(self) -> str:
        return self.state.case

    @property
    def ended(self) -> bool:
        """Closed, cancelled or expired: only end-use checks may still come."""
        return self.state.stage in TERMINAL_STAGES

    def pack(self) -> bytes:
        """The view in a few hundred bytes (a rebuild keeps ended cases so)."""
        if self.packed is None:
            self.packed = _pack(
                (
                    self.state,
                    self.filed_at,
                    self.filed_position,
                    self.last_position,
                    self.priority_position,
                )
            )
        return self.packed

    @classmethod
    def unpack(cls, packed: bytes) -> CaseView:
        return cls(*_unpack(packed), packed=packed)

    @property
    def queued(self) -> bool:
        """In its platform's queue: open, with quantity left to deliver."""
        return self.state.queued

    def row(self) -> tuple:
        c = self.state
        if c.notified_at is not None:
            notification = "notified"
        elif c.holds:
            notification = "held"
        elif c.stage == "congressional-review":
            notification = "in review"
        else:
            notification = "not notified"
        return (
            c.case,
            c.partner,
            c.platform,
            c.channel,
            c.mde,
            c.stage,
            c.stage in OPEN_STAGES,
            c.quantity,
            c.delivered,
            c.quantity_left,
            c.estimated_value_usd,
            c.notified_value_usd,
            c.offer_value_usd,
            c.value_usd,
            c.priority_class,
            ", ".join(c.holds) or None,
            ", ".join(c.cleared_by) or None,
            notification,
            c.emergency,
            c.transmittal,
            None if c.notified_at is None else format_instant(c.notified_at),
            None if c.offer_expires_at is None else format_instant(c.offer_expires_at),
            self.filed_at,
            format_instant(c.last_effective_at),
            self.filed_position,
            self.priority_position,
            self.last_position,
        )
