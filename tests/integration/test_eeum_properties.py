"""One EEUM rule (``oversight.eeum_clocks``): for every generated history of deliveries,
EEUM inventories and designation changes of a case, replayed as of times between and
after its events, the EEUM items `audit deadlines` lists overdue are the EEUM flags of
``oversight_flags``, case by case and kind by kind."""

from __future__ import annotations

import tempfile
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import pytest
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain.clock import parse_instant
from arms_ledger.ledger.errors import BatchRefused
from arms_ledger.projections import engine, monitors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import stores
from tests.integration.test_correction_properties import SETUP, case_history, decode

pytestmark = pytest.mark.slow  # a ledger and several replays per example

START = date(2025, 2, 1)
FLAG_KIND = {
    "eeum-no-initial-inventory": "eeum-initial-inventory",
    "eeum-no-annual-inventory": "eeum-annual-inventory",
}


def record(day: int, what: str) -> dict:
    at = (START + timedelta(days=day)).isoformat()
    if what == "delivery":
        return {
            "type": "DeliveryRecorded",
            "case": "C1",
            "quantity": 1,
            "actor": "usasac",
            "effective_at": at,
        }
    if what.startswith("eeum-"):
        return {
            "type": "EndUseCheckRecorded",
            "case": "C1",
            "kind": what,
            "result": "compliant",
            "actor": "sco.warsaw",
            "effective_at": at,
        }
    return {
        "type": "EEUMDesignationChanged",
        "platform": "ah-64e",
        "designated": what == "designate",
        "actor": "dsca.eum",
        "rationale": "criteria reviewed",
        "effective_at": at,
    }


events = st.lists(
    st.tuples(
        st.integers(0, 900),
        st.sampled_from(
            [
                "delivery",
                "delivery",
                "eeum-initial-inventory",
                "eeum-annual-inventory",
                "designate",
                "de-designate",
            ]
        ),
    ),
    min_size=1,
    max_size=8,
)


def overdue(conn) -> list[tuple[str, str]]:
    _, rows = monitors.deadlines(conn)
    return sorted(
        (r["case"], r["kind"])
        for r in rows
        if r["status"] == "overdue" and r["kind"].startswith("eeum-")
    )


def flagged(conn) -> list[tuple[str, str]]:
    return sorted(
        (row[0], FLAG_KIND[row[1]])
        for row in conn.execute('SELECT "case", kind FROM oversight_flags')
        if row[1] in FLAG_KIND
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.lists(st.integers(0, 1400), min_size=1, max_size=4))
def test_overdue_eeum_deadlines_are_the_eeum_flags(drawn, judged):
    history = case_history(40, 60_000_000, [])
    history += [record(day, what) for day, what in sorted(drawn)]
    with (
        tempfile.TemporaryDirectory() as tmp,
        stores.using("sqlite"),
        closing(create(Path(tmp) / "ledger")) as ledger,
    ):
        ledger.append([decode(r) for r in SETUP + history[:5]])
        for r in history[5:]:
            try:  # one at a time: those the rules refuse are left out
                ledger.append([decode(r)])
            except BatchRefused:
                continue
        for n, day in enumerate(judged):
            at = parse_instant((START + timedelta(days=day)).isoformat() + "T12:00:00Z")
            cut = engine.Cut(as_of=at)
            with engine.read_models(ledger.reader, Path(tmp) / f"r{n}", cut) as conn:
                assert overdue(conn) == flagged(conn), (day, drawn)
