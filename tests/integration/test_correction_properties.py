"""A history with corrections replays to the same read models as the same history with
the corrected values in place (docs/domain.md, "Corrections"): for every generated case
of deliveries, an offer and random corrections of them (those the rules refuse
skipped), the cases, the queue, the backlog, the deliveries and the oversight flags
(but the corrections' own) agree; live, and replayed as of times between the events."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from contextlib import ExitStack, closing
from pathlib import Path

import pytest
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import parse_instant
from arms_ledger.ledger.errors import BatchRefused
from arms_ledger.projections import engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import stores
from tests.histories import EVERY_TYPE

pytestmark = pytest.mark.slow  # two ledgers and two rebuilds per example

SETUP = [r for r in EVERY_TYPE if "case" not in r]  # partners, platforms, policies


def case_history(quantity: int, offer: int, deliveries: list[int]) -> list[dict]:
    base: dict[str, object] = {"case": "C1", "actor": "tester"}
    records: list[dict] = [
        base
        | {
            "type": "CaseFiled",
            "partner": "POL",
            "platform": "ah-64e",
            "quantity": quantity,
            "estimated_value_usd": 60_000_000,
            "channel": "FMS",
            "effective_at": "2025-01-01",
        },
        base
        | {
            "type": "CaseReviewCleared",
            "office": "DSCA",
            "rationale": "r",
            "effective_at": "2025-01-02",
        },
        base | {"type": "OfferIssued", "value_usd": offer, "effective_at": "2025-01-03"},
        base | {"type": "OfferAccepted", "effective_at": "2025-01-04"},
        base | {"type": "CaseImplemented", "effective_at": "2025-01-05"},
    ]
    for day, units in enumerate(deliveries, start=1):
        records.append(
            base
            | {
                "type": "DeliveryRecorded",
                "quantity": units,
                "effective_at": f"2025-02-{day:02d}",
            }
        )
    return records


@st.composite
def cases_with_corrections(draw):
    deliveries = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    quantity = sum(deliveries) + draw(st.integers(0, 4))
    offer = draw(st.integers(1_000_000, 99_000_000))
    history = case_history(quantity, offer, deliveries)
    targets = [i for i, r in enumerate(history) if r["type"] != "CaseReviewCleared"]
    targets = [
        i
        for i in targets
        if history[i]["type"] in ("CaseFiled", "OfferIssued", "DeliveryRecorded")
    ]
    corrections = draw(
        st.lists(
            st.tuples(
                st.sampled_from(targets),
                st.integers(1, 150_000_000),
                st.booleans(),
            ),
            min_size=1,
            max_size=4,
        )
    )
    return history, corrections


FIELD = {
    "CaseFiled": "quantity",
    "OfferIssued": "value_usd",
    "DeliveryRecorded": "quantity",
}


def correction(record: dict, position: int, value: int, retract: bool) -> dict:
    """A correction of ``record`` (at ``position``): a new value, or its retraction."""
    kind = record["type"]
    small = value % 12 + 1  # a quantity
    out = {
        "type": "EventCorrected",
        "case": "C1",
        "corrects": position,
        "actor": "clerk",
        "rationale": "mistyped",
    }
    if retract and kind == "DeliveryRecorded":
        return out | {"retracted": True}
    return out | {"corrected": {FIELD[kind]: value if kind == "OfferIssued" else small}}


def decode(record: dict) -> ev.Event:
    return ev.decoder.decode(json.dumps(record))


def compared(conn: sqlite3.Connection) -> dict[str, list]:
    """The read models a correction touches, without log positions (the history with
    corrections holds more events), without the corrections' own flags, and without
    the cases' last effective time (a retracted delivery still counts in it: the case's
    later events take effect after it, docs/domain.md, "Corrections")."""

    def rows(sql: str) -> list:
        return conn.execute(sql).fetchall()

    return {
        "cases": rows(
            'SELECT "case", partner, platform, stage, open, quantity, delivered, '
            "quantity_left, estimated_value_usd, notified_value_usd, offer_value_usd, "
            'value_usd FROM cases ORDER BY "case"'
        ),
        "queue": rows(
            'SELECT platform, position, "case", quantity_left, est_completion_months '
            "FROM queue ORDER BY platform, position"
        ),
        "backlog": rows("SELECT * FROM backlog ORDER BY 1, 2, 3"),
        "deliveries": rows(
            'SELECT "case", quantity, effective_at FROM deliveries ORDER BY 3, 2'
        ),
        "flags": rows(
            "SELECT kind, stream, effective_at, detail FROM oversight_flags "
            "WHERE kind != 'correction' ORDER BY 1, 2, 3, 4"
        ),
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases_with_corrections())
def test_a_correction_replays_as_the_corrected_history(drawn):
    history, drawn_corrections = drawn
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as opened:
        opened.enter_context(stores.using("sqlite"))
        corrected = opened.enter_context(closing(create(Path(tmp) / "a")))
        corrected.append([decode(r) for r in SETUP + history])
        in_place = [dict(r) for r in history]  # the history with the values in place
        retracted: set[int] = set()
        for index, value, retract in drawn_corrections:
            record = correction(history[index], len(SETUP) + index + 1, value, retract)
            try:
                corrected.append([decode(record)])
            except BatchRefused:
                continue
            if record.get("retracted"):
                retracted.add(index)
            else:
                in_place[index] = in_place[index] | record["corrected"]
        placed = opened.enter_context(closing(create(Path(tmp) / "b")))
        kept = [r for i, r in enumerate(in_place) if i not in retracted]
        placed.append([decode(r) for r in SETUP + kept])  # the rules accept it too
        for name, ledger in (("a", corrected), ("b", placed)):
            engine.rebuild(ledger.reader, Path(tmp) / f"{name}.db")
        a = opened.enter_context(closing(engine.connect(Path(tmp) / "a.db")))
        b = opened.enter_context(closing(engine.connect(Path(tmp) / "b.db")))
        assert compared(a) == compared(b)
        # As of a time between the offer and the deliveries, and during them: the
        # corrections take effect when the events they correct did.
        for at in ("2025-01-04", "2025-02-02T12:00:00Z"):
            cut = engine.Cut(as_of=parse_instant(at))
            with (
                engine.read_models(corrected.reader, Path(tmp) / "ra", cut) as ra,
                engine.read_models(placed.reader, Path(tmp) / "rb", cut) as rb,
            ):
                assert compared(ra) == compared(rb), at
