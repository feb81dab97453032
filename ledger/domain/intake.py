"""Intake: what the ledger does to an event before the rules see it.

``normalize`` stamps ``recorded_at``, makes every time canonical UTC and fills the time
defaults (``effective_at``: the time of recording; ``offer_expires_at``: 85 days after the
offer). ``find_duplicate`` finds an event appended before under the same idempotency key.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from arms_ledger.ledger.domain import corrections, values
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.cases import OFFER_VALIDITY
from arms_ledger.ledger.domain.clock import (
    BadTime,
    canonical,
    format_instant,
    format_recorded,
    instant,
    parse_instant,
)
from arms_ledger.ledger.domain.streams import Stream
from arms_ledger.ledger.errors import Invalid, Refused

if TYPE_CHECKING:  # the rules are not loaded by the commands that only read
    from arms_ledger.ledger.domain.rules import World

# The times an event may carry (effective_at, offer_expires_at): the years of the
# programs it records, not year 1 or 9999 by a typing slip.
EARLIEST = datetime(1945, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC)

# What ``escape`` shows as \uXXXX: the characters events may not hold, and tabs.
_UNPRINTABLE = re.compile(f"[\t{values._CONTROLS}]")


def escape(text: str) -> str:
    """Text safe to print on a terminal or in a one-line message: control and
    bidirectional characters shown as \\uXXXX."""
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# What a message echoes of the input at most: a 10 MB field name is not printed whole.
ECHO_LIMIT = 200


def brief(text: str) -> str:
    """``escape``d, and cut to ``ECHO_LIMIT`` characters (saying how long it was)."""
    shown = escape(text[: ECHO_LIMIT + 1])
    if len(text) <= ECHO_LIMIT:
        return shown
    return f"{shown[:ECHO_LIMIT]}… ({len(text):,} characters)"


def decode_event(line: bytes) -> ev.Event:
    """One JSON object as an event, strictly: an unknown type or field, a wrong value
    or a key given twice is refused with a message saying which and how to fix it."""
    try:
        event = ev.decoder.decode(line)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise Invalid(_explain(error, line)) from None
    except RecursionError:
        raise Invalid(
            "JSON nested too deeply to read; an event is one object whose fields are "
            "text, numbers or short lists"
        ) from None
    duplicate = _duplicate_key(line)
    if duplicate is not None:
        raise Invalid(
            f"the key {brief(duplicate)!r} appears twice in one object; give each field "
            "once (with JSON's duplicate keys the last one would silently win)"
        )
    return event


def type_of(line: bytes) -> str:
    """`` (TypeName)`` of a JSON object's ``type``, for messages; empty if there is none."""
    try:
        value = msgspec.json.decode(line)
    except (msgspec.DecodeError, RecursionError):
        return ""
    kind = value.get("type") if isinstance(value, dict) else None
    return f" ({brief(kind)})" if isinstance(kind, str) else ""


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen[key] = value
    return seen


# What json.loads(line, object_pairs_hook=_no_duplicates) does, its decoder made once
# (json.loads builds a new one for every call given a hook: half the time of a line).
_STRICT = json.JSONDecoder(object_pairs_hook=_no_duplicates)


def _duplicate_key(line: bytes) -> str | None:
    try:
        _STRICT.decode(line.decode(json.detect_encoding(line), "surrogatepass"))
    except _Duplicate as found:
        return str(found.args[0])
    return None


def is_control_refusal(text: str) -> bool:
    """Whether a msgspec error is a text pattern of ``events`` refusing a character."""
    return "matching regex" in text and "u202a-" in text


def control_message(where: str) -> str:
    return (
        f"{where} holds a control or bidirectional character; text in the ledger is "
        "printed to people, so remove it"
    )


def _explain(error: Exception, line: bytes) -> str:
    text = str(error)
    if text.startswith("Invalid value") and text.endswith("`$.type`"):
        kind = text[len("Invalid value") : -len(" - at `$.type`")]
        return (
            f"unknown event type{brief(kind)}; `arms-ledger schema --types` lists the "
            "event types"
        )
    if text == "Object missing required field `type`":
        return 'no "type"; every event names its type, e.g. "type": "CaseFiled"'
    if not isinstance(error, msgspec.ValidationError):
        return f"malformed JSON ({brief(text)}); each line must be one JSON object"
    if is_control_refusal(text):
        return control_message(text.rpartition(" - at ")[2])
    enum = _not_allowed(text, line)
    if enum is not None:
        return enum
    return f"{brief(text)} (`arms-ledger schema TYPE` shows the fields of each type)"


_ENUM = re.compile(r"Invalid enum value (.*) - at `(\$[^`]*)`")


def _not_allowed(text: str, line: bytes) -> str | None:
    """``$.channel: 'XMS' is not one of: DCS, FMS`` for a value outside an
    enumeration, the values read from the event's Struct (``events.allowed_values``)."""
    found = _ENUM.fullmatch(text)
    kind = type_of(line)[2:-1]
    if found is None or not kind:
        return None
    allowed = ev.allowed_values(kind, found.group(2))
    if allowed is None:
        return None
    value, where = found.group(1), found.group(2)
    return f"{escape(where)}: {brief(value)} is not one of: {', '.join(map(str, allowed))}"


def _check_range(at: datetime, field: str) -> None:
    if not EARLIEST <= at <= LATEST:
        raise Invalid(
            f"{field} {format_instant(at)} is outside the ledger's range of times, "
            f"{format_instant(EARLIEST)[:10]} to {format_instant(LATEST)[:10]}"
        )


def normalize(
    event: ev.Event, recorded_at: datetime, recorded_text: str | None = None
) -> ev.Event:
    """Stamp ``recorded_at``, make every time canonical UTC and fill time defaults
    (``recorded_text``: ``format_recorded(recorded_at)``, if the caller has it)."""
    if event.recorded_at is not None:
        raise Invalid(
            "recorded_at is set by the ledger when an event is appended; "
            "remove it from the input"
        )
    try:
        text = event.effective_at
        if text is None:
            at = recorded_at
            effective_text = format_instant(at)
        else:
            # Through the cache: the decisions and evolve read it again as ``effective``.
            try:
                at = instant(text)
            except BadTime:
                at = parse_instant(text, "effective_at")  # the error names the field
            effective_text = canonical(text, at)
        _check_range(at, "effective_at")
        if at > recorded_at:
            raise Invalid(
                f"effective_at {format_instant(at)} is after the time of recording "
                f"({format_recorded(recorded_at)}); the ledger records what has taken "
                "effect — append it once it has"
            )
        changes: dict[str, Any] = {
            "effective_at": effective_text,
            "recorded_at": format_recorded(recorded_at)
            if recorded_text is None
            else recorded_text,
        }
        if isinstance(event, ev.OfferIssued):
            expires = (
                parse_instant(event.offer_expires_at, "offer_expires_at")
                if event.offer_expires_at is not None
                else at + OFFER_VALIDITY
            )
            _check_range(expires, "offer_expires_at")
            changes["offer_expires_at"] = format_instant(expires)
    except BadTime as error:
        raise Invalid(str(error)) from None
    return msgspec.structs.replace(event, **changes)


def complete_correction(event: ev.Event, explicit_time: bool, world: World) -> ev.Event:
    """A correction as the ledger records it: ``of`` (the corrected event's type), ``was``
    (the values it replaces, as earlier corrections left them) and ``effective_at`` (the
    corrected event's) filled where not given. Given ones are checked: ``of`` and
    ``was`` by the rules, ``effective_at`` here. Anything else is returned as it is, and
    so is a correction naming no event it may correct (the rules refuse it)."""
    if not isinstance(event, ev.EventCorrected):
        return event
    target = world.event_at(event.corrects)
    if (
        target is None
        or target.stream != event.stream
        or type(target) not in corrections.CORRECTABLE
    ):
        return event
    if explicit_time and event.effective_at != target.effective_at:
        raise Invalid(
            f"effective_at {event.effective_at} is not that of the event it corrects "
            f"({target.effective_at}): a correction takes effect when the corrected "
            "event did; remove effective_at"
        )
    current, _ = corrections.in_force(
        target, event.corrects, world.stream(event.stream).events
    )
    named = corrections.retracted_fields(target) if event.retracted else event.corrected
    known = set(corrections.CORRECTABLE[type(target)])
    return msgspec.structs.replace(
        event,
        effective_at=target.effective_at,
        of=event.of or type(target).__name__,
        was=event.was
        if event.was is not None
        else corrections.replaced([f for f in named if f in known], current),
    )


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
        if (
            isinstance(event, ev.OfferIssued)
            and isinstance(earlier, ev.OfferIssued)
            and event.offer_expires_at is None
        ):
            changes["offer_expires_at"] = earlier.offer_expires_at
        if isinstance(event, ev.EventCorrected) and isinstance(earlier, ev.EventCorrected):
            # What the ledger filled in (complete_correction) when it was appended.
            if event.of is None:
                changes["of"] = earlier.of
            if event.was is None:
                changes["was"] = earlier.was
        candidate = msgspec.structs.replace(event, **changes)
        if msgspec.structs.replace(earlier, recorded_at=None) != candidate:
            raise Refused(
                "idempotency",
                f"idempotency key {key!r} was already used for a different event "
                f"(version {version} of {stream.key}); use a new key for a new event",
            )
        return version
    return None
