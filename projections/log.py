"""Reading the log in bulk: pages of decoded events straight from the event store.

``Ledger.read`` wraps every event in a ``Notification`` and a ``Recorded``; a rebuild
reads the whole log, so it selects the rows itself (one short read transaction per page,
so the store's checkpoints are not held back) and decodes each stored state once into
the tagged union. Nothing of a page is kept once the next one is read.
"""

from __future__ import annotations

from collections.abc import Iterator

from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.domain import events as ev
from eventsourcing.sqlite import SQLiteApplicationRecorder

PAGE = 5_000

# position, stream, version, event
Row = tuple[int, str, int, ev.Event]


def pages(ledger: Ledger, after: int, upto: int, size: int = PAGE) -> Iterator[list[Row]]:
    """The events after position ``after`` up to ``upto``, in log order, a page at a time."""
    recorder = ledger.recorder
    decode = ev.decoder.decode
    if not isinstance(recorder, SQLiteApplicationRecorder):  # PostgreSQL: the library's
        while after < upto:
            found = recorder.select_notifications(
                start=after, limit=size, stop=upto, inclusive_of_start=False
            )
            if not found:
                return
            yield [
                (n.id, n.originator_id, n.originator_version, decode(n.state))
                for n in found
            ]
            after = found[-1].id
        return
    select = (
        "SELECT rowid, originator_id, originator_version, state "
        f"FROM {recorder.events_table_name} WHERE rowid > ? AND rowid <= ? "
        "ORDER BY rowid LIMIT ?"
    )
    while after < upto:
        with recorder.datastore.transaction(commit=False) as c:
            cursor = c.sqlite_cursor.connection.cursor()
            cursor.row_factory = None  # plain tuples
            rows = cursor.execute(select, (after, upto, size)).fetchall()
            cursor.close()
        if not rows:
            return
        yield [(p, s, v, decode(state)) for p, s, v, state in rows]
        after = rows[-1][0]


def at(ledger: Ledger, positions: list[int]) -> dict[int, ev.Event]:
    """The events at these positions (one query)."""
    if not positions:
        return {}
    recorder = ledger.recorder
    if not isinstance(recorder, SQLiteApplicationRecorder):
        found = {}
        for position in positions:
            n = recorder.select_notifications(start=position, limit=1, stop=position)
            found.update({n[0].id: ev.decoder.decode(n[0].state)} if n else {})
        return found
    marks = ", ".join("?" for _ in positions)
    with recorder.datastore.transaction(commit=False) as c:
        cursor = c.sqlite_cursor.connection.cursor()
        cursor.row_factory = None
        rows = cursor.execute(
            f"SELECT rowid, state FROM {recorder.events_table_name} "
            f"WHERE rowid IN ({marks})",
            positions,
        ).fetchall()
        cursor.close()
    return {p: ev.decoder.decode(state) for p, state in rows}
