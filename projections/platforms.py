"""Platforms on the read side: the facts of ``facts`` (the one fold the rules use too) as
rows of the ``platforms`` table."""

from __future__ import annotations

from dataclasses import dataclass

from arms_ledger.ledger.domain.facts import PlatformFacts, position_of


@dataclass(slots=True)
class PlatformState(PlatformFacts):
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
            self.prioritized,
            catalog.edition if catalog else None,
            self.eeum_designated,
            eeum.criteria if eeum else None,
            self.withdrawn is not None,
            self.listed_position,
            *map(position_of, (self.capacity, self.catalog, self.eeum, self.withdrawn)),
        )
