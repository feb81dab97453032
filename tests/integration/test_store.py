"""The ledger Application on a real event store (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.app.directory import create, open_ledger
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import instant
from arms_ledger.ledger.errors import BatchRefused, Conflict, LedgerError, NoLedger

from tests import stores
from tests.histories import EVERY_TYPE, decode


def rows(ledger_dir) -> list[tuple]:
    with stores.raw(ledger_dir) as db:
        return db.execute(
            "SELECT rowid, originator_id, originator_version, topic, state "
            "FROM stored_events ORDER BY rowid"
        ).fetchall()


def test_every_event_type_round_trips_through_the_store(ledger, ledger_dir):
    events = decode(EVERY_TYPE)
    result = ledger.append(events)
    assert result.positions == list(range(1, len(events) + 1))
    read = list(ledger.read())
    assert [type(r.event).__name__ for r in read] == [e["type"] for e in EVERY_TYPE]
    assert [r.position for r in read] == result.positions
    # stored as the canonical msgspec JSON of the event, topic = type, id = stream key
    _rowid, stream, version, topic, state = rows(ledger_dir)[18]
    assert (stream, version, topic) == ("case:PL-1", 1, "CaseFiled")
    assert ev.decoder.decode(state) == read[18].event


def test_a_refused_batch_writes_nothing(ledger, ledger_dir):
    events = decode(EVERY_TYPE)
    ledger.append(events[:5])
    bad = [
        *events[5:10],
        decode([{"type": "CaseImplemented", "case": "NOPE", "actor": "x"}])[0],
    ]
    with pytest.raises(BatchRefused) as caught:
        ledger.append(bad)
    assert caught.value.index == 5
    assert len(rows(ledger_dir)) == 5


def test_state_is_rebuilt_from_the_store_at_any_version(ledger):
    ledger.append(decode(EVERY_TYPE))
    assert ledger.load_stream("case:PL-1").case.stage == "closed"
    assert ledger.load_stream("case:PL-1", version=4).case.holds == ("HFAC-chair",)
    assert [r.position for r in ledger.stream_records("case:PL-1")][:2] == [19, 20]


def test_reopened_ledger_sees_the_same_log(ledger, ledger_dir):
    ledger.append(decode(EVERY_TYPE[:3]))
    again = open_ledger(ledger_dir)
    assert [r.event for r in again.read()] == [r.event for r in ledger.read()]
    again.close()


def test_recorded_at_strictly_increases_even_when_the_clock_goes_back(ledger, ledger_dir):
    events = decode(EVERY_TYPE[:6])
    ledger.append(events[:3], clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    ledger.append(events[3:], clock=lambda: datetime(2020, 1, 1, tzinfo=UTC))
    stamps = [instant(r.event.recorded_at) for r in ledger.read()]
    assert stamps == sorted(set(stamps))
    assert stamps[3] == stamps[2] + timedelta(microseconds=1)


def _race(first: Ledger, second: Ledger, filing: list[ev.Event], monkeypatch) -> None:
    """Make ``first`` append ``filing`` after ``second`` has read the case's state."""
    real_load = second.load_stream

    def stale_load(key, version=None):
        state = real_load(key, version)
        if key == "case:PL-1" and not first.load_stream(key).version:
            first.append(filing)
        return state

    monkeypatch.setattr(second, "load_stream", stale_load)


def test_two_writers_on_one_case_never_lose_or_duplicate(ledger_dir, monkeypatch):
    first = create(ledger_dir)
    first.append(decode(EVERY_TYPE[:18]))
    second = open_ledger(ledger_dir)
    filing = decode([r for r in EVERY_TYPE if r.get("case") == "PL-1"][:1])
    _race(first, second, filing, monkeypatch)
    # the second writer's decision was made on stale state: its insert conflicts, the
    # decision is re-run on the new state (a safe retry) and refused by the rules
    with pytest.raises(BatchRefused, match="case PL-1 is already filed"):
        second.append(filing)
    assert [r.stream for r in first.read()].count("case:PL-1") == 1
    first.close()
    second.close()


def test_a_conflict_without_retries_is_reported_and_writes_nothing(ledger_dir, monkeypatch):
    first = create(ledger_dir)
    first.append(decode(EVERY_TYPE[:18]))
    second = open_ledger(ledger_dir)
    filing = decode([r for r in EVERY_TYPE if r.get("case") == "PL-1"][:1])
    _race(first, second, filing, monkeypatch)
    with pytest.raises(Conflict, match="other writers appended to case:PL-1"):
        second.append(filing, retries=0)
    assert [r.stream for r in first.read()].count("case:PL-1") == 1
    first.close()
    second.close()


def test_idempotency_key_appends_once(ledger):
    record = {
        "type": "PartnerRegistered",
        "partner": "POL",
        "name": "Poland",
        "region": "Europe",
        "notification_group": "NATO+",
        "actor": "a",
        "idempotency_key": "register-pol",
    }
    first = ledger.append(decode([record]))
    again = ledger.append(decode([record]))
    assert first.positions == [1]
    assert again.positions == [] and again.skipped[0].version == 1
    assert ledger.head() == 1


def test_import_history_keeps_recorded_times_and_checks_them(ledger):
    events = decode(EVERY_TYPE[:3])
    stamped = [
        e.__class__(
            **{
                **{f: getattr(e, f) for f in e.__struct_fields__},
                "recorded_at": f"2001-01-0{i + 1}T00:00:00.000000Z",
            }
        )
        for i, e in enumerate(events)
    ]
    ledger.import_history(stamped)
    assert next(r.event.recorded_at for r in ledger.read()) == "2001-01-01T00:00:00.000000Z"
    with pytest.raises(LedgerError, match="only be loaded into an empty ledger"):
        ledger.import_history(stamped)


def test_import_history_refuses_recorded_times_that_go_back(ledger):
    events = decode(EVERY_TYPE[:2])
    stamped = [
        e.__class__(
            **{**{f: getattr(e, f) for f in e.__struct_fields__}, "recorded_at": at}
        )
        for e, at in zip(
            events, ["2001-01-02T00:00:00Z", "2001-01-01T00:00:00Z"], strict=True
        )
    ]
    with pytest.raises(BatchRefused, match="is not after the previous event's"):
        ledger.import_history(stamped)
    assert ledger.head() == 0


def test_opening_a_missing_ledger_says_how_to_create_one(tmp_path):
    with pytest.raises(NoLedger, match="create one with `arms-ledger init`"):
        open_ledger(tmp_path / "nowhere")


def test_create_refuses_an_existing_ledger(ledger, ledger_dir):
    with pytest.raises(LedgerError, match="there is already a ledger"):
        create(ledger_dir)


def test_the_store_is_an_eventsourcing_application(ledger, store):
    assert isinstance(ledger, Ledger)
    assert (
        type(ledger.recorder).__name__
        == {"sqlite": "LedgerSQLiteRecorder", "postgresql": "LedgerPostgresRecorder"}[store]
    )
    assert type(ledger.mapper).__name__ == "EventMapper"
