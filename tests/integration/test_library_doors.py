"""What the store relies on of eventsourcing, checked against the installed library.

The ledger uses the library through public doors: ``Application.events.put`` (the event
store's put, which maps and calls the recorder's ``insert_events`` with the keywords it
was given) and the recorders' public ``insert_events``, ``max_notification_id`` and
``select_notifications``, which ``ledger/store/sqlite.py`` and ``postgres.py`` override or
call. Around them it reads a few public attributes: ``datastore.transaction`` and its
cursor's ``sqlite_cursor`` (SQLite), ``datastore.get_connection``, ``lock_timeout``,
``schema`` and the recorder's ``channel_name`` (PostgreSQL, whose subscriptions LISTEN on
it). If an upgrade of the library changes any of these, a test here fails and says what.
"""

from __future__ import annotations

import inspect
import threading
from pathlib import Path

import pytest
from arms_ledger.fixtures import SCENARIO
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.store.mapper import EventMapper, Pending
from arms_ledger.ledger.store.recorder import LogRecorder
from eventsourcing.application import Application, EventStore
from eventsourcing.persistence import ApplicationRecorder, JSONTranscoder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore


def scenario(n: int) -> list[ev.Event]:
    lines = Path(str(SCENARIO)).read_bytes().splitlines()[:n]
    return [ev.decoder.decode(line) for line in lines]


def parameters(function) -> list[str]:
    return [
        f"{p.kind.name}:{p.name}" for p in inspect.signature(function).parameters.values()
    ]


def test_the_public_methods_the_recorders_override_keep_their_signatures():
    expected = ["POSITIONAL_OR_KEYWORD:self", "POSITIONAL_OR_KEYWORD:stored_events"]
    expected.append("VAR_KEYWORD:kwargs")
    assert parameters(SQLiteApplicationRecorder.insert_events) == expected, (
        "eventsourcing changed SQLiteApplicationRecorder.insert_events, which "
        "LedgerSQLiteRecorder replaces (ledger/store/sqlite.py)"
    )
    assert parameters(ApplicationRecorder.max_notification_id) == [
        "POSITIONAL_OR_KEYWORD:self"
    ], "LogRecorder.head() calls max_notification_id()"


def test_the_event_store_put_passes_keywords_to_insert_events():
    """Ledger._append writes through Application.events.put(pending, restamp=…,
    read_set=…): it must map each object and hand our keywords to the recorder."""
    assert parameters(EventStore.put) == [
        "POSITIONAL_OR_KEYWORD:self",
        "POSITIONAL_OR_KEYWORD:domain_events",
        "VAR_KEYWORD:kwargs",
    ], "eventsourcing changed EventStore.put, which Ledger._append writes through"
    seen: dict[str, object] = {}

    class Recorder:
        def insert_events(self, stored_events, **kwargs):
            seen.update(kwargs, n=len(stored_events))
            return [7]

    (event,) = scenario(1)
    store = EventStore(EventMapper(JSONTranscoder()), Recorder())  # type: ignore[arg-type]
    recordings = store.put([Pending(event.stream, 1, event)], restamp=False)
    assert seen == {"restamp": False, "n": 1}
    assert [r.notification.id for r in recordings] == [7]


def test_the_sqlite_datastore_gives_transactions_with_a_plain_cursor_inside():
    datastore = SQLiteDatastore(":memory:")
    with datastore.transaction(commit=False) as c:
        assert isinstance(c, SQLiteCursor)
        assert c.sqlite_cursor.connection.execute("SELECT 1").fetchone()[0] == 1, (
            "LedgerSQLiteRecorder._select reads through SQLiteCursor.sqlite_cursor"
        )


def test_a_round_trip_through_the_library_reads_what_the_ledger_wrote(ledger):
    """What our insert_events wrote, the library's own select_notifications and
    max_notification_id read back unchanged, and so does the LogReader."""
    recorder = ledger.recorder
    assert isinstance(recorder, LogRecorder)
    events = scenario(3)
    assert ledger.import_history(events).positions == [1, 2, 3]
    assert recorder.max_notification_id() == 3
    found = recorder.select_notifications(start=0, limit=10, inclusive_of_start=False)
    assert [(n.id, n.originator_id, n.topic) for n in found] == [
        (i, e.stream, type(e).__name__) for i, e in enumerate(events, start=1)
    ]
    assert [ev.decoder.decode(bytes(n.state)) for n in found] == events
    assert [row[3] for page in ledger.reader.pages(0, 3) for row in page] == events


def test_postgres_doors(ledger, store):
    """Our PostgreSQL insert takes the library's table lock and NOTIFYs the channel
    the library's subscriptions LISTEN on: a subscription sees what we append."""
    if store != "postgresql":
        pytest.skip("PostgreSQL only")
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    recorder = ledger.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    for name in ("channel_name", "events_table_name", "datastore"):
        assert hasattr(recorder, name), f"PostgresApplicationRecorder lost .{name}"
    for name in ("lock_timeout", "schema"):
        assert hasattr(recorder.datastore, name), f"PostgresDatastore lost .{name}"
    assert callable(PostgresDatastore.get_connection)
    events = scenario(2)
    ledger.import_history(events[:1])
    got = []
    subscription = recorder.subscribe(gt=1)
    reader = threading.Thread(target=lambda: got.append(next(iter(subscription))))
    reader.start()
    try:
        ledger.append_history(events[1:])
        reader.join(timeout=10)
    finally:
        subscription.stop()
        reader.join(timeout=10)
    assert [n.id for n in got] == [2], "the library's subscription did not see the append"


def test_the_application_has_an_event_store():
    assert "events" in inspect.signature(Application.__init__).parameters or hasattr(
        Application, "construct_event_store"
    ), "Ledger._append writes through Application.events (an EventStore)"
