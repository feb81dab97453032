"""Who may decide what: the directory of officials' keys and authorities, kept in the
log as the events of the stream ``directory:officials``, and the rule that a decision is
signed by its actor with a key in force, by an actor holding the authority it needs
(docs/authority.md).

The ledger enforces authority once its directory names a root (``AuthorityRootNamed``,
appended by ``arms-ledger init --authority-root``); before that, decisions are taken
as they come, signed or not. Every time here is a decision's ``effective_at``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import (
    BadTime,
    effective,
    format_instant,
    parse_instant,
)
from arms_ledger.ledger.errors import Refused
from arms_ledger.ledger.transparency.note import NoteError, Signer, Verifier

DIRECTORY = "directory:officials"

# What each authority allows (docs/authority.md).
AUTHORITIES: dict[str, str] = {
    "assess-partners": "assess a partner's strategic value, change its notification group",
    "grant-overrides": "grant and revoke a partner's priority override",
    "suspend-partners": "suspend and reinstate a partner",
    "manage-catalog": "change the catalog's priorities and EEUM designations, "
    "withdraw a platform",
    "clear-reviews": "clear a case's review",
    "place-holds": "place and lift a congressional hold",
    "declare-emergencies": "declare an emergency (waive the review period)",
    "manage-cases": "suspend, resume and cancel a case",
    "reprioritize": "change a case's priority class",
    "correct-records": "correct or retract a mistaken case event (docs/domain.md, "
    "Corrections)",
    "adopt-policy": "adopt a priority policy",
    "set-thresholds": "set the congressional notification thresholds",
    "manage-keys": "register, revoke and rotate officials' keys",
    "grant-authority": "grant and withdraw authorities",
}

# The authority each decision needs. Every decision type is here (a test checks it).
REQUIRED: dict[str, str] = {
    "StrategicValueAssessed": "assess-partners",
    "NotificationGroupChanged": "assess-partners",
    "PriorityOverrideGranted": "grant-overrides",
    "PriorityOverrideRevoked": "grant-overrides",
    "PartnerSuspended": "suspend-partners",
    "PartnerReinstated": "suspend-partners",
    "CatalogPriorityChanged": "manage-catalog",
    "EEUMDesignationChanged": "manage-catalog",
    "PlatformWithdrawn": "manage-catalog",
    "CaseReviewCleared": "clear-reviews",
    "HoldPlaced": "place-holds",
    "HoldLifted": "place-holds",
    "EmergencyDeclared": "declare-emergencies",
    "CaseSuspended": "manage-cases",
    "CaseResumed": "manage-cases",
    "CaseCancelled": "manage-cases",
    "CaseReprioritized": "reprioritize",
    "EventCorrected": "correct-records",
    "PriorityPolicyAdopted": "adopt-policy",
    "NotificationThresholdsSet": "set-thresholds",
    "OfficialKeyRegistered": "manage-keys",
    "OfficialKeyRevoked": "manage-keys",
    "OfficialKeyRotated": "manage-keys",
    "AuthorityGranted": "grant-authority",
    "AuthorityWithdrawn": "grant-authority",
}

# The domain-separation prefix of the signed message (docs/authority.md).
PREFIX = b"arms-ledger decision signature v1\n"

_UNSIGNED = ("recorded_at", "signature")
# What the ledger derives of a correction from the event it corrects (``of``, ``was``,
# and ``effective_at``, the corrected event's: intake.complete_correction), after it is
# signed: the actor signs which event and the new values, the ledger checks the rest.
_DERIVED = ("of", "was", "effective_at")
_encoder = msgspec.json.Encoder(order="sorted")


def canonical(event: ev.Event) -> bytes:
    """The event's canonical bytes: its JSON object (with ``type``) without
    ``recorded_at``, ``signature`` and fields whose value is null (and, of an
    ``EventCorrected``, without what the ledger derives: ``_DERIVED``), keys sorted at
    every level, no whitespace, UTF-8."""
    data = msgspec.to_builtins(event)
    left = _UNSIGNED + _DERIVED if isinstance(event, ev.EventCorrected) else _UNSIGNED
    return _encoder.encode(
        {k: v for k, v in data.items() if k not in left and v is not None}
    )


def signed_message(event: ev.Event) -> bytes:
    """What a decision's actor signs: ``PREFIX`` and the event's canonical bytes."""
    return PREFIX + canonical(event)


def sign(event: ev.Event, signer: Signer) -> str:
    """The ``signature`` field of ``event`` signed with ``signer``: base64 of the key
    id and the Ed25519 signature of ``signed_message``."""
    raw = signer.sign_bytes(signed_message(event))
    return base64.b64encode(signer.verifier.id + raw).decode()


def sign_event(event: ev.Event, signer: Signer, now: datetime) -> ev.Event:
    """``event`` as its actor signs it: ``effective_at`` in its canonical form (``now``
    if it has none, as the ledger would fill it in), then signed. An ``effective_at``
    that is not a time is left for the ledger to refuse, unsigned. A correction's is
    left to the ledger (the corrected event's), and is not signed."""
    if isinstance(event, ev.EventCorrected):
        return msgspec.structs.replace(event, signature=sign(event, signer))
    try:
        at = now if event.effective_at is None else parse_instant(event.effective_at)
    except BadTime:
        return event
    event = msgspec.structs.replace(event, effective_at=format_instant(at))
    return msgspec.structs.replace(event, signature=sign(event, signer))


def split_signature(text: str) -> tuple[bytes, bytes]:
    """(key id, signature) of a ``signature`` field."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 68:
        raise ValueError("not base64 of a 4-byte key id and a 64-byte signature")
    return raw[:4], raw[4:]


# --- the directory, folded ---------------------------------------------------------------


class Directory(msgspec.Struct, frozen=True):
    """The directory's events, as the rules read them.

    ``root`` is the root's key (None: authority is not enforced). ``keys`` maps an
    official to its keys, each with its changes ``(effective_at, order, in force)``;
    ``grants`` maps (official, authority) to its changes the same way.
    """

    root: Verifier | None = None
    keys: dict[str, dict[str, list[tuple[datetime, int, bool]]]] = {}
    grants: dict[tuple[str, str], list[tuple[datetime, int, bool]]] = {}
    # Every registered key, parsed once: (official, key id) -> key.
    by_id: dict[tuple[str, bytes], Verifier] = {}

    def key_in_force(self, official: str, key: str, at: datetime) -> bool:
        if self.root is not None and official == self.root.name and key == str(self.root):
            return True
        return _in_force(self.keys.get(official, {}).get(key, []), at)

    def holds(self, official: str, authority: str, at: datetime) -> bool:
        if self.root is not None and official == self.root.name:
            return True
        return _in_force(self.grants.get((official, authority), []), at)

    def key_by_id(self, official: str, kid: bytes) -> Verifier | None:
        """The key of ``official`` with key id ``kid``, in force or not."""
        if self.root is not None and official == self.root.name and self.root.id == kid:
            return self.root
        return self.by_id.get((official, kid))


def _in_force(changes: list[tuple[datetime, int, bool]], at: datetime) -> bool:
    """The last change effective at or before ``at`` (in effect, then log, order)."""
    before = [c for c in changes if c[0] <= at]
    return bool(before) and max(before)[2]


def fold_directory(events: tuple[ev.Event, ...]) -> Directory:
    """The directory after ``events`` (the directory stream's events, in log order)."""
    root: Verifier | None = None
    keys: dict[str, dict[str, list[tuple[datetime, int, bool]]]] = {}
    grants: dict[tuple[str, str], list[tuple[datetime, int, bool]]] = {}
    for order, e in enumerate(events):
        at = effective(e)
        match e:
            case ev.AuthorityRootNamed():
                root = Verifier.parse(e.key)
            case ev.OfficialKeyRegistered():
                keys.setdefault(e.official, {}).setdefault(e.key, []).append(
                    (at, order, True)
                )
            case ev.OfficialKeyRevoked():
                keys.setdefault(e.official, {}).setdefault(e.key, []).append(
                    (at, order, False)
                )
            case ev.OfficialKeyRotated():
                own = keys.setdefault(e.official, {})
                own.setdefault(e.replaces, []).append((at, order, False))
                own.setdefault(e.key, []).append((at, order, True))
            case ev.AuthorityGranted():
                grants.setdefault((e.official, e.authority), []).append((at, order, True))
            case ev.AuthorityWithdrawn():
                grants.setdefault((e.official, e.authority), []).append((at, order, False))
    by_id = {
        (official, verifier.id): verifier
        for official, own in keys.items()
        for verifier in map(Verifier.parse, own)
    }
    return Directory(root, keys, grants, by_id)


# The directory stream is folded once per state (a batch decides many decisions
# against the same state).
_folded: dict[int, tuple[tuple[ev.Event, ...], Directory]] = {}


def directory_of(events: tuple[ev.Event, ...]) -> Directory:
    """``fold_directory``, remembered for the last states seen."""
    found = _folded.get(id(events))
    if found is not None and found[0] is events:
        return found[1]
    directory = fold_directory(events)
    if len(_folded) > 8:
        _folded.clear()
    _folded[id(events)] = (events, directory)
    return directory


# --- the rules ---------------------------------------------------------------------------


def _day(at: datetime) -> str:
    text = format_instant(at)
    return text[:10] if at.hour == at.minute == at.second == 0 else text


def _refuse(message: str) -> Refused:
    return Refused("authority", message)


def check(event: ev.Event, directory: Directory) -> None:
    """Refuse a decision that is not signed by its actor with a key in force at its
    ``effective_at``, or whose actor does not hold the authority it needs then (only
    when the directory names a root; the root holds every authority)."""
    if isinstance(event, ev.AuthorityRootNamed):
        _check_root(event, directory)
        return
    if directory.root is None or not event.DECISION:
        return
    name, actor, at = type(event).__name__, event.actor, effective(event)
    if not isinstance(event.signature, str):
        raise _refuse(
            f"{name} by {actor} is unsigned, and this ledger enforces authority: sign "
            "it with the actor's key (append --sign-key, or ARMS_LEDGER_SIGN_KEY) or "
            'give its "signature"'
        )
    kid, raw = split_signature(event.signature)
    verifier = directory.key_by_id(actor, kid)
    if verifier is None:
        raise _refuse(
            f"{name} is signed with key {kid.hex()}, which is not a key of {actor} in "
            "the directory; register it with OfficialKeyRegistered"
        )
    if not verifier.verify(signed_message(event), raw):
        raise _refuse(
            f"the signature of {name} does not verify with {actor}'s key "
            f"{kid.hex()}: the event is not what {actor} signed"
        )
    if not directory.key_in_force(actor, str(verifier), at):
        raise _refuse(
            f"{name} is signed with {actor}'s key {kid.hex()}, which is not in force on "
            f"{_day(at)} (not yet registered, revoked or rotated)"
        )
    needed = REQUIRED.get(name)
    if needed is None:
        raise _refuse(f"{name} has no authority defined for it; it cannot be enforced")
    if not directory.holds(actor, needed, at):
        raise _refuse(
            f"{actor} does not hold the authority {needed} on {_day(at)}, which "
            f"{name} needs; a holder of grant-authority grants it with AuthorityGranted"
        )


def _check_root(event: ev.AuthorityRootNamed, directory: Directory) -> None:
    if directory.root is not None:
        raise _refuse(
            f"the directory already names its root ({directory.root.name}); it is named "
            "once"
        )
    verifier = _key(event.key)
    if verifier.name != event.official or event.actor != event.official:
        raise _refuse(
            f"AuthorityRootNamed: the key's name {verifier.name}, official "
            f"{event.official} and actor {event.actor} must be the same"
        )
    if not isinstance(event.signature, str):
        raise _refuse("AuthorityRootNamed is signed with the root's own key; sign it")
    kid, raw = split_signature(event.signature)
    if kid != verifier.id or not verifier.verify(signed_message(event), raw):
        raise _refuse(
            "the signature of AuthorityRootNamed does not verify with the key it names"
        )


def _key(text: str) -> Verifier:
    try:
        return Verifier.parse(text)
    except NoteError as error:
        raise _refuse(str(error)) from None


def decide_directory(event: ev.DirectoryEvent, directory: Directory) -> None:
    """The directory's own rules: a key is named after its official and registered
    once; only a key in force is revoked or rotated; an authority is granted to one
    who does not hold it and withdrawn from one who does."""
    at = effective(event)
    match event:
        case ev.OfficialKeyRegistered() | ev.OfficialKeyRotated():
            verifier = _key(event.key)
            if verifier.name != event.official:
                raise _refuse(
                    f"the key {event.key[:40]}… is named {verifier.name}, not "
                    f"{event.official}: an official's key is named after the official "
                    "(arms-ledger keygen OFFICIAL FILE)"
                )
            if any(event.key in keys for keys in directory.keys.values()):
                raise _refuse(f"the key {verifier.id.hex()} is already registered")
            if isinstance(event, ev.OfficialKeyRotated) and not directory.key_in_force(
                event.official, event.replaces, at
            ):
                raise _refuse(
                    f"{event.official} has no key {_key(event.replaces).id.hex()} in "
                    f"force on {_day(at)} to rotate"
                )
        case ev.OfficialKeyRevoked():
            if not directory.key_in_force(event.official, event.key, at):
                raise _refuse(
                    f"{event.official} has no key {_key(event.key).id.hex()} in force "
                    f"on {_day(at)} to revoke"
                )
        case ev.AuthorityGranted():
            if directory.holds(event.official, event.authority, at):
                raise _refuse(
                    f"{event.official} already holds {event.authority} on {_day(at)}"
                )
        case ev.AuthorityWithdrawn():
            if not directory.holds(event.official, event.authority, at):
                raise _refuse(
                    f"{event.official} does not hold {event.authority} on {_day(at)}"
                )


def summary(events: list[Any]) -> tuple[int, int]:
    """(decisions, unsigned decisions) among ``events``."""
    decisions = [e for e in events if e.DECISION]
    return len(decisions), sum(1 for e in decisions if not isinstance(e.signature, str))
