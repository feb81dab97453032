"""Platforms: the catalog entry, production capacity, catalog priority and EEUM."""

from __future__ import annotations

from dataclasses import dataclass

from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections.partners import Fact, latest, position_of


@dataclass(slots=True)
class PlatformState:
    platform: str
    listed: ev.PlatformListed | None = None
    listed_position: int | None = None
    capacity: Fact | None = None  # value: units per month
    catalog: Fact | None = None  # value: the CatalogPriorityChanged event
    eeum: Fact | None = None  # value: the EEUMDesignationChanged event
    withdrawn: Fact | None = None

    def apply(self, event: ev.PlatformEvent, position: int) -> None:
        if isinstance(event, ev.PlatformListed):
            self.listed, self.listed_position = event, position
        elif isinstance(event, ev.ProductionCapacitySet):
            self.capacity = latest(self.capacity, event, position, event.units_per_month)
        elif isinstance(event, ev.CatalogPriorityChanged):
            self.catalog = latest(self.catalog, event, position, event)
        elif isinstance(event, ev.EEUMDesignationChanged):
            self.eeum = latest(self.eeum, event, position, event)
        elif isinstance(event, ev.PlatformWithdrawn):
            self.withdrawn = latest(self.withdrawn, event, position, True)

    @property
    def units_per_month(self) -> float | None:
        return None if self.capacity is None else self.capacity.value

    def row(self) -> tuple:
        listed = self.listed
        catalog = self.catalog.value if self.catalog else None
        eeum = self.eeum.value if self.eeum else None
        return (
            self.platform,
            listed.name if listed else None,
            listed.prime if listed else None,
            listed.category if listed else None,
            listed.unit_cost_usd if listed else None,
            self.units_per_month,
            bool(catalog and catalog.prioritized),
            catalog.edition if catalog else None,
            bool(eeum and eeum.designated),
            eeum.criteria if eeum else None,
            self.withdrawn is not None,
            self.listed_position,
            *map(position_of, (self.capacity, self.catalog, self.eeum, self.withdrawn)),
        )
