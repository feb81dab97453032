"""Instants in the ledger: parsing user input and the canonical text stored in events.

Every time is UTC. Stored text is ``YYYY-MM-DDTHH:MM:SSZ`` (with ``.ffffff`` only when
the instant has a fraction of a second); ``recorded_at`` always carries microseconds so
that it is strictly increasing and sorts as text.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

MICROSECOND = timedelta(microseconds=1)


class BadTime(ValueError):
    """A time that is not an RFC 3339 / ISO 8601 date or datetime."""


def parse_instant(text: str, field: str = "time") -> datetime:
    """Parse a date or datetime into an aware UTC datetime (a date means 00:00 UTC)."""
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadTime(
            f"{field} {text!r} is not an RFC 3339 date or datetime; "
            "use e.g. 2026-02-06 or 2026-02-06T14:30:00Z"
        ) from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise BadTime(
            f"{field} {text!r} is outside the range of dates once converted to UTC"
        ) from None


# isoformat() is about three times faster than strftime() and gives the same text here.
# An instant already in UTC (every one the ledger makes) is formatted as is, its
# "+00:00" cut off: the text of the naive UTC instant, without converting it.
def format_instant(value: datetime) -> str:
    """Canonical stored text of an instant."""
    spec = "microseconds" if value.microsecond else "seconds"
    if value.tzinfo is UTC:
        return value.isoformat(timespec=spec)[:-6] + "Z"
    naive = value.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(timespec=spec) + "Z"


def format_recorded(value: datetime) -> str:
    """Canonical text of ``recorded_at``: fixed width, always with microseconds."""
    if value.tzinfo is UTC:
        return value.isoformat(timespec="microseconds")[:-6] + "Z"
    return (
        value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    )


class MicrosecondsFrom:
    """The instants ``start``, ``start`` + 1 µs, + 2 µs, … (a batch's ``recorded_at``)
    and their ``format_recorded`` text: each second's text is formatted once, and the
    microseconds written after it."""

    def __init__(self, start: datetime):
        self.start = start
        self._first = start.microsecond  # the microseconds of ``start`` in its second
        self._second = -1  # whole seconds after start's: the one ``_prefix`` is of
        self._prefix = ""

    def at(self, index: int) -> datetime:
        return self.start + index * MICROSECOND

    def text(self, index: int) -> str:
        """``format_recorded(self.at(index))``."""
        second, micro = divmod(self._first + index, 1_000_000)
        if second != self._second:
            # "YYYY-MM-DDTHH:MM:SS." of that second (the year always four digits)
            whole = self.start + (index - micro) * MICROSECOND
            self._prefix, self._second = format_recorded(whole)[:20], second
        return f"{self._prefix}{micro:06d}Z"


# The canonical text of a whole second (what format_instant gives it); a text of this
# shape that parses is its own canonical text.
_WHOLE_SECOND = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\dZ",
    re.ASCII,
)


def canonical(text: str, value: datetime) -> str:
    """``format_instant(value)`` for ``value = instant(text)``: ``text`` itself when it is
    already canonical (the usual input), without formatting it again."""
    if len(text) == 20 and _WHOLE_SECOND.fullmatch(text) is not None:
        return text
    return format_instant(value)


def now() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=65536)
def instant(text: str) -> datetime:
    """Parse a stored (already normalized) time; cached, it is read often."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return parse_instant(text)  # raises BadTime
    # What parse_instant gives, without its conversion, when the text is already UTC
    # (every stored time: ``...Z``); anything else (a date, an offset) goes through it.
    return value if value.tzinfo is UTC and len(text) != 10 else parse_instant(text)


def effective(event: Any) -> datetime:
    """When an (already normalized) event took effect."""
    return instant(event.effective_at)
