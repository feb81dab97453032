"""The value types of events: identifiers, text, money, times, and their limits.

Every constraint here is part of the input's contract (docs/domain.md, "The envelope" and
the table of what is refused): msgspec checks them when a line is decoded, the JSON Schema
(`arms-ledger schema`) publishes them, and the typed commands' help shows them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

# Characters no text of an event may hold: C0 and C1 controls (they retitle terminals,
# erase lines, end strings in C) and the Unicode bidirectional controls (they make text
# read in another order than it is stored). Free text may hold tabs; short labels not.
_CONTROLS = r"\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
TEXT_PATTERN = f"^[^{_CONTROLS}]*$"
LABEL_PATTERN = f"^[^\\t{_CONTROLS}]*$"
# Money is whole dollars up to this ceiling (one trillion): far above any arms sale, and
# far below 2**53, so sums and JSON readers stay exact.
MAX_USD = 1_000_000_000_000
# What a total of money may reach (one quadrillion: a partner's contributions, say): far
# above any real total, below 2**53 (JSON readers stay exact) and far below SQLite's
# 2**63 - 1, so no log the rules accept can make the read models fail (the limit on totals).
MAX_TOTAL_USD = 1_000_000_000_000_000


def doc(meaning: str) -> Meta:
    """A field's meaning, where it is declared: ``Annotated[Usd, doc("its amount")]``.
    The JSON Schema, ``arms-ledger schema TYPE`` and the typed commands' help show it."""
    return Meta(description=meaning)


def _label(max_length: int, description: str | None = None) -> Meta:
    return Meta(
        min_length=1, max_length=max_length, pattern=LABEL_PATTERN, description=description
    )


PartnerId = Annotated[
    str,
    Meta(
        pattern=r"^[A-Z][A-Z0-9]{1,9}$",
        description="ISO 3166-1 alpha-3 code (POL, JPN) or organisation code (NATO, NSPA)",
    ),
]
PlatformId = Annotated[
    str,
    Meta(
        pattern=r"^[a-z0-9][a-z0-9.-]{0,63}$",
        description="catalog slug, lower case (f-35a, pac-3-mse, m1a2-sepv3)",
    ),
]
CaseId = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="case identifier chosen by the filer (PL-B-AHA)",
    ),
]
PolicyId = Annotated[
    str,
    Meta(
        pattern=r"^[a-z0-9][a-z0-9.-]{0,63}$",
        description="policy slug (fcfs-legacy, america-first-2026, aeca-36b)",
    ),
]
Text = Annotated[str, Meta(min_length=1, max_length=4000, pattern=TEXT_PATTERN)]
Actor = Annotated[
    str,
    Meta(
        pattern=r"^[^\s\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+$",
        max_length=200,
        description="who acted, e.g. dsca.cwd.jsmith or state.pm-rsat",
    ),
]
TIME_FORMAT = (
    "RFC 3339 / ISO 8601 date or datetime, UTC (2026-02-06 or 2026-02-06T14:30:00Z)"
)
Time = Annotated[str, Meta(min_length=10, max_length=40, description=TIME_FORMAT)]
Usd = Annotated[int, Meta(ge=0, le=MAX_USD, description="whole U.S. dollars")]
PositiveUsd = Annotated[int, Meta(gt=0, le=MAX_USD, description="whole U.S. dollars")]
Quantity = Annotated[int, Meta(gt=0, le=10_000_000, description="units")]
Fraction = Annotated[float, Meta(ge=0.0, le=1.0)]

NotificationGroup = Literal["NATO+", "other"]
Office = Literal["SFRC-chair", "SFRC-ranking", "HFAC-chair", "HFAC-ranking"]
PriorityClass = Literal["expedited", "normal", "deferred"]
PRIORITY_CLASSES: tuple[str, ...] = ("expedited", "normal", "deferred")
