"""Intake: what the ledger does to an event before the rules see it.

``normalize`` stamps ``recorded_at``, makes every time canonical UTC and fills the time
defaults (``effective_at``: the time of recording; ``offer_expires_at``: 85 days after the
offer). ``find_duplicate`` finds an event appended before under the same idempotency key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.cases import OFFER_VALIDITY
from arms_ledger.ledger.domain.clock import (
    BadTime,
    format_instant,
    format_recorded,
    instant,
    parse_instant,
)
from arms_ledger.ledger.domain.streams import Stream
from arms_ledger.ledger.errors import Invalid, Refused


def normalize(event: ev.Event, recorded_at: datetime) -> ev.Event:
    """Stamp ``recorded_at``, make every time canonical UTC and fill time defaults."""
    if event.recorded_at is not None:
        raise Invalid(
            "recorded_at is set by the ledger when an event is appended; "
            "remove it from the input"
        )
    try:
        text = event.effective_at
        if text is None:
            at = recorded_at
        else:
            # Through the cache: the decisions and evolve read it again as ``effective``.
            try:
                at = instant(text)
            except BadTime:
                at = parse_instant(text, "effective_at")  # the error names the field
        if at > recorded_at:
            raise Invalid(
                f"effective_at {format_instant(at)} is after the time of recording "
                f"({format_recorded(recorded_at)}); the ledger records what has taken "
                "effect — append it once it has"
            )
        changes: dict[str, Any] = {
            "effective_at": format_instant(at),
            "recorded_at": format_recorded(recorded_at),
        }
        if isinstance(event, ev.OfferIssued):
            expires = (
                parse_instant(event.offer_expires_at, "offer_expires_at")
                if event.offer_expires_at is not None
                else at + OFFER_VALIDITY
            )
            changes["offer_expires_at"] = format_instant(expires)
    except BadTime as error:
        raise Invalid(str(error)) from None
    return msgspec.structs.replace(event, **changes)


def find_duplicate(stream: Stream, event: ev.Event, explicit_time: bool) -> int | None:
    """The version at which this idempotency key was appended, if it was.

    The same key with different content is refused: a key names one event.
    Keys are scoped to the event's stream.
    """
    key = event.idempotency_key
    if key is None:
        return None
    for version, earlier in enumerate(stream.events, start=1):
        if earlier.idempotency_key != key:
            continue
        changes: dict[str, Any] = {"recorded_at": None}
        if not explicit_time:
            changes["effective_at"] = earlier.effective_at
        if isinstance(event, ev.OfferIssued) and isinstance(earlier, ev.OfferIssued):
            if event.offer_expires_at is None:
                changes["offer_expires_at"] = earlier.offer_expires_at
        candidate = msgspec.structs.replace(event, **changes)
        if msgspec.structs.replace(earlier, recorded_at=None) != candidate:
            raise Refused(
                "idempotency",
                f"idempotency key {key!r} was already used for a different event "
                f"(version {version} of {stream.key}); use a new key for a new event",
            )
        return version
    return None
