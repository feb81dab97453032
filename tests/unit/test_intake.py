"""Input as strict as docs/domain.md says: each refusal names what was wrong (no
database)."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime

import pytest
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain import values
from arms_ledger.ledger.domain.intake import decode_event, escape, normalize, type_of
from arms_ledger.ledger.errors import Invalid

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def suspension(**fields) -> dict:
    return {
        "type": "PartnerSuspended",
        "partner": "POL",
        "actor": "a",
        "rationale": "r",
    } | (fields)


def refused(record: dict | bytes) -> str:
    line = record if isinstance(record, bytes) else json.dumps(record).encode()
    with pytest.raises(Invalid) as caught:
        decode_event(line)
    return str(caught.value)


def test_a_key_given_twice_is_refused_not_the_last_one_kept():
    line = b'{"type":"PartnerSuspended","partner":"SAU","partner":"POL","actor":"a",'
    line += b'"rationale":"r"}'
    assert refused(line) == (
        "the key 'partner' appears twice in one object; give each field once (with "
        "JSON's duplicate keys the last one would silently win)"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rationale", "ok\u202egnp.exe"),  # right-to-left override
        ("rationale", "line\nbreak"),
        ("rationale", "nul\x00"),
        ("rationale", "\x1b]0;owned\x07"),  # OSC: retitles the reader's terminal
        ("rationale", "c1\x9b"),
        ("reference", "\u2066isolate"),
        ("actor", "dsca\x00"),
        ("actor", "dsca\u202e"),
        ("idempotency_key", "k\tey"),
    ],
)
def test_control_and_bidi_characters_are_refused_naming_the_field(field, value):
    assert refused(suspension(**{field: value})) == (
        f"`$.{field}` holds a control or bidirectional character; text in the ledger is "
        "printed to people, so remove it"
    )


def test_a_tab_is_allowed_in_free_text():
    assert (
        decode_event(json.dumps(suspension(rationale="a\tb")).encode()).rationale == "a\tb"
    )


@pytest.mark.parametrize("value", [values.MAX_USD + 1, 10**23, 2**63])
def test_money_has_a_ceiling(value):
    record = {"type": "OfferIssued", "case": "C1", "actor": "a", "value_usd": value}
    assert refused(record).startswith(
        f"Expected `int` <= {values.MAX_USD} - at `$.value_usd`"
    )


def test_money_at_the_ceiling_is_accepted():
    record = {
        "type": "OfferIssued",
        "case": "C1",
        "actor": "a",
        "value_usd": values.MAX_USD,
    }
    offer = decode_event(json.dumps(record).encode())
    assert isinstance(offer, ev.OfferIssued) and offer.value_usd == values.MAX_USD


@pytest.mark.parametrize(
    ("field", "value"),
    [("effective_at", "0001-01-01"), ("effective_at", "1944-12-31T23:59:59Z")],
)
def test_times_outside_the_range_are_refused(field, value):
    event = decode_event(json.dumps(suspension(**{field: value})).encode())
    with pytest.raises(Invalid) as caught:
        normalize(event, NOW)
    assert str(caught.value).startswith(f"{field} ")
    assert str(caught.value).endswith(
        "is outside the ledger's range of times, 1945-01-01 to 2100-12-31"
    )


def test_an_offer_expiring_after_the_range_is_refused():
    record = {
        "type": "OfferIssued",
        "case": "C1",
        "actor": "a",
        "value_usd": 1,
        "offer_expires_at": "9999-01-01",
    }
    with pytest.raises(Invalid, match=r"^offer_expires_at 9999-01-01T00:00:00Z is outside"):
        normalize(decode_event(json.dumps(record).encode()), NOW)


def test_an_unknown_type_is_echoed_escaped():
    line = json.dumps({"type": "Foo\x1b]0;x\u202e", "actor": "a"}).encode()
    assert refused(line) == (
        "unknown event type 'Foo\\u001b]0;x\\u202e'; `arms-ledger schema --types` lists "
        "the event types"
    )
    assert type_of(line) == " (Foo\\u001b]0;x\\u202e)"


def test_escape_leaves_ordinary_text_alone():
    assert escape("Żółw — ok") == "Żółw — ok"
    assert escape("a\tb\x00\u202e") == "a\\u0009b\\u0000\\u202e"


def test_a_value_outside_an_enumeration_lists_the_allowed_values_in_order():
    filed = {
        "type": "CaseFiled",
        "case": "C1",
        "partner": "POL",
        "platform": "f-35a",
        "quantity": 1,
        "estimated_value_usd": 1,
        "channel": "XMS",
        "actor": "a",
    }
    assert refused(filed) == "$.channel: 'XMS' is not one of: FMS, DCS"
    moved = {"type": "CaseReprioritized", "case": "C1", "actor": "a", "rationale": "r"}
    moved |= {"priority_class": "urgent\u202e", "authority": "x"}
    assert refused(moved) == (
        "$.priority_class: 'urgent\\u202e' is not one of: expedited, normal, deferred"
    )


def test_the_allowed_values_come_from_the_struct():
    assert ev.allowed_values("HoldPlaced", "$.office") == typing.get_args(values.Office)
    assert ev.allowed_values("OfferIssued", "$.bypass_reason") == ev.BYPASS_CODES
    assert ev.allowed_values("CaseFiled", "$.quantity") is None
    assert ev.allowed_values("NoSuchType", "$.office") is None
    assert ev.allowed_values("CaseFiled", "$.nothing.here[0]") is None


def test_a_wrong_type_in_an_enumerated_field_still_points_to_the_schema():
    registered: dict[str, object] = {"type": "PartnerRegistered", "partner": "POL"}
    registered |= {"name": "P"}
    registered |= {"region": "E", "notification_group": 3, "actor": "a"}
    assert refused(registered) == (
        "Expected `str`, got `int` - at `$.notification_group` (`arms-ledger schema "
        "TYPE` shows the fields of each type)"
    )


def test_a_key_given_twice_in_a_nested_object_is_refused():
    line = b'{"type":"EventCorrected","case":"PL-B-AHA","corrects":3,"actor":"a",'
    line += b'"rationale":"r","corrected":{"quantity":2,"quantity":3}}'
    assert refused(line) == (
        "the key 'quantity' appears twice in one object; give each field once (with "
        "JSON's duplicate keys the last one would silently win)"
    )
    corrected = decode_event(line.replace(b'"quantity":2,', b""))
    assert isinstance(corrected, ev.EventCorrected)
    assert corrected.corrected == {"quantity": 3}
