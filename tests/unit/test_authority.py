"""The directory of officials' keys and authorities, and the rule that a decision is
signed by its actor with a key in force, holding the authority it needs."""

from __future__ import annotations

import base64
import json
import typing
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from arms_ledger.ledger.app.batch import MemoryWorld
from arms_ledger.ledger.domain import authority
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.intake import normalize
from arms_ledger.ledger.domain.rules import decide
from arms_ledger.ledger.errors import Refused
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.histories import EVERY_TYPE, official, signed

CLOCK = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ROOT = official("ledger.root", 11)
CHIEF = official("dsca.chief", 12)
CHIEF_NEW = official("dsca.chief", 13)
CLERK = official("dsca.clerk", 14)


def event(record: dict) -> ev.Event:
    return ev.decoder.decode(json.dumps(record))


def root_named() -> dict:
    return signed(
        {
            "type": "AuthorityRootNamed",
            "official": "ledger.root",
            "key": str(ROOT.verifier),
            "actor": "ledger.root",
            "rationale": "named at init",
            "effective_at": "2020-01-01",
        },
        ROOT,
    )


def by_root(kind: str, day: str, **fields: str) -> dict:
    return signed(
        {
            "type": kind,
            "actor": "ledger.root",
            "rationale": "directory",
            "effective_at": day,
            **fields,
        },
        ROOT,
    )


def policy(signer, day: str = "2024-01-01", actor: str | None = None) -> dict:
    record = {
        "type": "PriorityPolicyAdopted",
        "policy": "america-first-2026",
        "mode": "scored",
        "actor": actor or signer.name,
        "rationale": "E.O. 14383",
        "effective_at": day,
    }
    return signed(record, signer) if signer else record


def world(records: list[dict]) -> MemoryWorld:
    w = MemoryWorld()
    for i, record in enumerate(records):
        e = normalize(event(record), CLOCK + timedelta(microseconds=i))
        decide(e, w.stream(e.stream), w)
        w.apply(e)
    return w


def refused(w: MemoryWorld, record: dict) -> str:
    e = normalize(event(record), CLOCK + timedelta(seconds=1))
    with pytest.raises(Refused) as caught:
        decide(e, w.stream(e.stream), w)
    return str(caught.value)


def accepted(w: MemoryWorld, record: dict) -> None:
    e = normalize(event(record), CLOCK + timedelta(seconds=1))
    decide(e, w.stream(e.stream), w)
    w.apply(e)


CHIEF_DIRECTORY = [
    root_named(),
    by_root(
        "OfficialKeyRegistered",
        "2021-01-01",
        official="dsca.chief",
        key=str(CHIEF.verifier),
    ),
    by_root(
        "AuthorityGranted", "2021-01-01", official="dsca.chief", authority="adopt-policy"
    ),
]


def test_every_decision_type_needs_a_named_authority():
    decisions = {name for name, cls in ev.EVENT_TYPES.items() if cls.DECISION}
    assert decisions - {"AuthorityRootNamed"} == set(authority.REQUIRED)
    assert set(authority.REQUIRED.values()) <= set(authority.AUTHORITIES)
    assert set(authority.AUTHORITIES) == set(typing.get_args(ev.AuthorityName))


def test_canonical_bytes_sort_keys_and_leave_out_recorded_at_signature_and_nulls():
    e = event(
        {
            "type": "CaseReprioritized",
            "case": "C-1",
            "priority_class": "expedited",
            "authority": "AECA 36",
            "actor": "dsca.chief",
            "rationale": "ally at war",
            "effective_at": "2024-01-01T00:00:00Z",
            "recorded_at": "2024-01-02T00:00:00.000001Z",
        }
    )
    assert authority.canonical(e) == (
        b'{"actor":"dsca.chief","authority":"AECA 36","case":"C-1",'
        b'"effective_at":"2024-01-01T00:00:00Z","priority_class":"expedited",'
        b'"rationale":"ally at war","type":"CaseReprioritized"}'
    )
    assert authority.signed_message(e).startswith(b"arms-ledger decision signature v1\n")
    signed_event = msgspec.structs.replace(e, signature=authority.sign(e, CHIEF))
    assert authority.canonical(signed_event) == authority.canonical(e)
    assert isinstance(signed_event.signature, str)
    raw = base64.b64decode(signed_event.signature)
    assert raw[:4] == CHIEF.verifier.id
    assert CHIEF.verifier.verify(authority.signed_message(e), raw[4:])


def test_the_documented_test_vector():
    """docs/authority.md, "The signed message of a decision"."""
    chief = official("dsca.chief", 12)
    assert str(chief.verifier) == (
        "dsca.chief+f9876d15+AQtROtm0kkAVygkC7QeQRNOsXb7CMG8GlIwQ2o62458t"
    )
    e = event(
        {
            "type": "CaseReprioritized",
            "case": "C-1",
            "priority_class": "expedited",
            "authority": "AECA 36",
            "actor": "dsca.chief",
            "rationale": "ally at war",
            "effective_at": "2024-01-01T00:00:00Z",
        }
    )
    assert len(authority.PREFIX) == 34
    assert authority.sign(e, chief) == (
        "+YdtFYZC9AjRX4/TnZFEi80JybnZhZgepJRkhotMarPDlkZ3rke+7Rv7Z35ZUleb3ydhOlLwAieNzST"
        "YbwXIxteKAgs="
    )


def test_without_a_root_decisions_are_taken_signed_or_not():
    w = world([])
    accepted(w, policy(None, actor="dsca"))


def test_a_signed_decision_by_a_holder_of_its_authority_is_accepted():
    accepted(world(CHIEF_DIRECTORY), policy(CHIEF))


def test_an_unsigned_decision_is_refused():
    assert refused(world(CHIEF_DIRECTORY), policy(None, actor="dsca.chief")) == (
        "refused by authority: PriorityPolicyAdopted by dsca.chief is unsigned, and this "
        "ledger enforces authority: sign it with the actor's key (append --sign-key, or "
        'ARMS_LEDGER_SIGN_KEY) or give its "signature"'
    )


def test_a_forged_signature_is_refused():
    record = policy(CHIEF) | {"rationale": "changed after signing"}
    assert refused(world(CHIEF_DIRECTORY), record) == (
        "refused by authority: the signature of PriorityPolicyAdopted does not verify "
        f"with dsca.chief's key {CHIEF.verifier.id.hex()}: the event is not what "
        "dsca.chief signed"
    )


def test_a_key_of_someone_else_is_refused():
    record = signed(policy(None, actor="dsca.chief"), CLERK)
    assert refused(world(CHIEF_DIRECTORY), record) == (
        f"refused by authority: PriorityPolicyAdopted is signed with key "
        f"{CLERK.verifier.id.hex()}, which is not a key of dsca.chief in the directory; "
        "register it with OfficialKeyRegistered"
    )


def test_a_decision_without_the_authority_is_refused():
    w = world(
        [
            *CHIEF_DIRECTORY,
            by_root(
                "OfficialKeyRegistered",
                "2021-01-01",
                official="dsca.clerk",
                key=str(CLERK.verifier),
            ),
        ]
    )
    assert refused(w, policy(CLERK)) == (
        "refused by authority: dsca.clerk does not hold the authority adopt-policy on "
        "2024-01-01, which PriorityPolicyAdopted needs; a holder of grant-authority "
        "grants it with AuthorityGranted"
    )


def test_authority_is_read_at_the_decisions_effective_time():
    w = world(
        [
            *CHIEF_DIRECTORY,
            by_root(
                "AuthorityWithdrawn",
                "2023-06-01",
                official="dsca.chief",
                authority="adopt-policy",
            ),
        ]
    )
    accepted(w, policy(CHIEF, "2023-05-31"))
    assert "does not hold the authority adopt-policy on 2023-06-01" in refused(
        w, policy(CHIEF, "2023-06-01")
    )
    assert "on 2020-12-31" in refused(w, policy(CHIEF, "2020-12-31"))


def test_a_revoked_key_is_refused_from_its_revocation():
    w = world(
        [
            *CHIEF_DIRECTORY,
            by_root(
                "OfficialKeyRevoked",
                "2023-06-01",
                official="dsca.chief",
                key=str(CHIEF.verifier),
            ),
        ]
    )
    accepted(w, policy(CHIEF, "2023-05-31"))
    assert refused(w, policy(CHIEF, "2023-06-01")) == (
        "refused by authority: PriorityPolicyAdopted is signed with dsca.chief's key "
        f"{CHIEF.verifier.id.hex()}, which is not in force on 2023-06-01 (not yet "
        "registered, revoked or rotated)"
    )


def test_rotation_moves_from_the_old_key_to_the_new_at_its_effective_time():
    w = world(
        [
            *CHIEF_DIRECTORY,
            by_root(
                "OfficialKeyRotated",
                "2023-06-01",
                official="dsca.chief",
                key=str(CHIEF_NEW.verifier),
                replaces=str(CHIEF.verifier),
            ),
        ]
    )
    accepted(w, policy(CHIEF, "2023-05-31"))
    assert "not in force on 2023-06-01" in refused(w, policy(CHIEF, "2023-06-01"))
    assert "not in force on 2023-05-31" in refused(w, policy(CHIEF_NEW, "2023-05-31"))
    accepted(w, policy(CHIEF_NEW, "2023-06-02"))


def test_a_grant_by_one_without_grant_authority_is_refused():
    grant = signed(
        {
            "type": "AuthorityGranted",
            "official": "dsca.chief",
            "authority": "reprioritize",
            "actor": "dsca.chief",
            "rationale": "self-promotion",
            "effective_at": "2024-01-01",
        },
        CHIEF,
    )
    assert refused(world(CHIEF_DIRECTORY), grant) == (
        "refused by authority: dsca.chief does not hold the authority grant-authority on "
        "2024-01-01, which AuthorityGranted needs; a holder of grant-authority grants it "
        "with AuthorityGranted"
    )


def test_the_root_is_named_once_and_signs_its_own_naming():
    assert refused(world(CHIEF_DIRECTORY), root_named()) == (
        "refused by authority: the directory already names its root (ledger.root); it "
        "is named once"
    )
    unsigned = {k: v for k, v in root_named().items() if k != "signature"}
    assert refused(world([]), unsigned) == (
        "refused by authority: AuthorityRootNamed is signed with the root's own key; "
        "sign it"
    )
    by_other = signed(unsigned, CHIEF)
    assert refused(world([]), by_other) == (
        "refused by authority: the signature of AuthorityRootNamed does not verify with "
        "the key it names"
    )


def test_a_key_is_named_after_its_official_and_registered_once():
    w = world(CHIEF_DIRECTORY)
    wrong = by_root(
        "OfficialKeyRegistered",
        "2022-01-01",
        official="dsca.clerk",
        key=str(CHIEF.verifier),
    )
    assert "is named dsca.chief, not dsca.clerk" in refused(w, wrong)
    again = by_root(
        "OfficialKeyRegistered",
        "2022-01-01",
        official="dsca.chief",
        key=str(CHIEF.verifier),
    )
    assert refused(w, again) == (
        f"refused by authority: the key {CHIEF.verifier.id.hex()} is already registered"
    )


def test_withdrawing_what_is_not_held_is_refused():
    w = world(CHIEF_DIRECTORY)
    record = by_root(
        "AuthorityWithdrawn", "2022-01-01", official="dsca.chief", authority="reprioritize"
    )
    assert refused(w, record) == (
        "refused by authority: dsca.chief does not hold reprioritize on 2022-01-01"
    )


DECISIONS = [
    r
    for r in EVERY_TYPE
    if ev.EVENT_TYPES[r["type"]].DECISION
    and ev.EVENT_TYPES[r["type"]].STREAM != "directory"
]


@settings(max_examples=60, deadline=None)
@given(
    index=st.integers(0, len(DECISIONS) - 1),
    rationale=st.text(
        st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), min_size=1
    ),
)
def test_whatever_decision_is_signed_a_changed_rationale_no_longer_verifies(
    index, rationale
):
    record = {**DECISIONS[index], "actor": "dsca.chief"}
    e = normalize(event(signed(record, CHIEF)), CLOCK)
    directory = authority.fold_directory(
        tuple(
            normalize(event(r), CLOCK)
            for r in [
                root_named(),
                by_root(
                    "OfficialKeyRegistered",
                    "1990-01-01",
                    official="dsca.chief",
                    key=str(CHIEF.verifier),
                ),
                *(
                    by_root(
                        "AuthorityGranted", "1990-01-01", official="dsca.chief", authority=a
                    )
                    for a in authority.AUTHORITIES
                ),
            ]
        )
    )
    authority.check(e, directory)  # as signed
    changed = msgspec.structs.replace(e, rationale=rationale)
    if rationale == e.rationale:
        authority.check(changed, directory)
        return
    with pytest.raises(Refused, match=r"does not verify with dsca\.chief's key"):
        authority.check(changed, directory)
