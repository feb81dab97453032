"""Reading the log as stored, on any engine, without the eventsourcing library.

``LogReading`` holds every read the ledger makes of its store: the read side's
``LogReader`` (pages of the log, events at positions, a stream up to a position, events
of given types, the head), the last stamp, and the Merkle tree and checkpoints as
stored. The store's recorders mix it in through ``recorder.LogRecorder``, which adds the
write sequence; ``SQLiteLog`` gives it a read-only SQLite connection of its own, so that
a command that only reads a SQLite ledger (``directory.open_log``) loads neither the
library nor the write path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.records import LogRow, Recorded
from arms_ledger.ledger.errors import DAMAGED_STORE, is_storage_failure, storage_error
from arms_ledger.ledger.store.tree import StoredTree
from arms_ledger.ledger.transparency.merkle import Node
from arms_ledger.ledger.transparency.tlog import StoredCheckpoint

PAGE = 5_000  # events per page of ``pages``
EVENTS_TABLE = "stored_events"  # the library's table of an application's events
LOCK_TIMEOUT = 30  # seconds to wait for a writer's lock, as the store does (sqlite_env)


class _Stamp(msgspec.Struct):
    recorded_at: str


_stamp_decoder = msgspec.json.Decoder(_Stamp)


def recorded_at_of(state: bytes) -> str:
    return _stamp_decoder.decode(state).recorded_at


def decode_page(rows: Sequence[tuple]) -> list[LogRow]:
    """Rows of ``LogReading.raw_pages`` with each state decoded into the union."""
    decode = ev.decoder.decode
    return [(n, stream, version, decode(state)) for n, stream, version, state in rows]


class LogReading:
    """What the ledger reads of its store, on any engine.

    A class mixes this in and gives ``_tx(commit)``, a transaction yielding a DB-API
    cursor whose rows index by position, ``_select`` (rows of one query as plain tuples)
    and ``tree``, the SQL of the Merkle tree in its dialect.
    """

    tree: StoredTree
    events_table: str  # as written in SQL (schema-qualified on PostgreSQL)
    position_column: str  # the log position: rowid (SQLite), notification_id (PostgreSQL)

    def _tx(self, *, commit: bool) -> Any:
        raise NotImplementedError

    def _head(self, c: Any) -> tuple[int, str | None]:
        """The last position of the log and its event's ``recorded_at`` (0, None if
        empty)."""
        c.execute(
            f"SELECT {self.position_column}, state FROM {self.events_table} "
            f"ORDER BY {self.position_column} DESC LIMIT 1"
        )
        row = c.fetchone()
        return (0, None) if row is None else (row[0], recorded_at_of(bytes(row[1])))

    def tree_size(self) -> int:
        with self._tx(commit=False) as c:
            return self.tree.size(c)

    def tree_nodes(self, wanted: Sequence[Node]) -> dict[Node, bytes]:
        with self._tx(commit=False) as c:
            return self.tree.nodes(c, wanted)

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self._tx(commit=False) as c:
            return self.tree.checkpoints(c)

    def latest_checkpoint(self, verifier: str) -> StoredCheckpoint | None:
        with self._tx(commit=False) as c:
            return self.tree.latest_checkpoint(c, verifier)

    def last_recorded_at(self) -> str | None:
        with self._tx(commit=False) as c:
            return self._head(c)[1]

    def select_streams(self, after: dict[str, int]) -> list[tuple[str, int, bytes]]:
        """(stream, version, state) of the events of each stream in ``after`` past the
        version given, by stream and version, in one read transaction (primary-key range
        lookups, 500 streams per query)."""
        p = self.tree.p
        term = f"(originator_id = {p} AND originator_version > {p})"
        keys = list(after)
        rows: list[tuple[str, int, bytes]] = []
        with self._tx(commit=False) as c:
            for i in range(0, len(keys), 500):  # SQLite allows 32,766 parameters
                chunk = keys[i : i + 500]
                c.execute(
                    "SELECT originator_id, originator_version, state "
                    f"FROM {self.events_table} WHERE {' OR '.join([term] * len(chunk))} "
                    "ORDER BY originator_id, originator_version",
                    [x for key in chunk for x in (key, after[key])],
                )
                rows.extend(c.fetchall())
        return rows

    # --- the read side's LogReader (projections/source.py) ---------------------------

    def _select(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        """Rows of one query as plain tuples, in a short read transaction."""
        raise NotImplementedError

    store_label = "the event store"

    @property
    def store_name(self) -> str:
        """The store, as error messages name it."""
        return self.store_label

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        """``_select``, its failures one line naming the store (``StorageError``): the
        read side reads the log through here, so what fails in its own file is its own."""
        try:
            return self._select(sql, params)
        except Exception as error:
            if not is_storage_failure(error):
                raise
            raise storage_error(error, self.store_name, DAMAGED_STORE) from None

    def head(self) -> int:
        """The position of the last event (0 if the log is empty)."""
        pos = self.position_column
        rows = self._read(f"SELECT max({pos}) FROM {self.events_table}", ())
        return rows[0][0] or 0

    def pages(self, after: int, upto: int, size: int = PAGE) -> Iterator[list[LogRow]]:
        """(position, stream, version, event) after ``after`` up to ``upto``, in log
        order, a page at a time: one short read transaction per page (the store's
        checkpoints are not held back), each state decoded once into the union."""
        for rows in self.raw_pages(after, upto, size):
            yield decode_page(rows)

    def raw_pages(self, after: int, upto: int, size: int = PAGE) -> Iterator[list[tuple]]:
        """``pages`` as stored: (position, stream, version, state), the state the
        event's JSON, not decoded (a rebuild hands them to a second process)."""
        pos, p = self.position_column, self.tree.p
        sql = (
            f"SELECT {pos}, originator_id, originator_version, state FROM "
            f"{self.events_table} WHERE {pos} > {p} AND {pos} <= {p} ORDER BY {pos} "
            f"LIMIT {p}"
        )
        while after < upto:
            rows = self._read(sql, (after, upto, size))
            if not rows:
                return
            yield rows
            after = rows[-1][0]

    def at(self, positions: Sequence[int]) -> dict[int, ev.Event]:
        """The events at these positions (one query per 500)."""
        pos, p = self.position_column, self.tree.p
        found: dict[int, ev.Event] = {}
        for i in range(0, len(positions), 500):
            chunk = list(positions[i : i + 500])
            rows = self._read(
                f"SELECT {pos}, state FROM {self.events_table} "
                f"WHERE {pos} IN ({', '.join([p] * len(chunk))})",
                chunk,
            )
            found.update((n, ev.decoder.decode(state)) for n, state in rows)
        return found

    def stream(self, key: str, upto: int | None = None) -> list[Recorded]:
        """One stream's events, oldest first, with their positions (up to ``upto``).

        A range of the primary key ``(originator_id, originator_version)``; the bound
        on the position is written ``pos + 0`` so that it stays a filter of those rows:
        as a plain ``pos <= ?``, PostgreSQL without statistics ANDed the stream with a
        scan of the whole position index (50 ms at a million events)."""
        pos, p = self.position_column, self.tree.p
        bound = "" if upto is None else f" AND {pos} + 0 <= {p}"
        rows = self._read(
            f"SELECT {pos}, originator_version, state FROM {self.events_table} "
            f"WHERE originator_id = {p}{bound} ORDER BY originator_version",
            (key,) if upto is None else (key, upto),
        )
        decode = ev.decoder.decode
        return [Recorded(key, version, decode(state), n) for n, version, state in rows]

    def of_types(
        self, types: Sequence[str], *, after: int = 0, upto: int | None = None
    ) -> list[Recorded]:
        """The events of these types after ``after`` up to ``upto``, in log order.

        One statement (one snapshot), a ``UNION ALL`` of one arm per type, each an
        equality on ``topic`` and a range of positions: exactly a range of the store's
        ``(topic, position)`` index (``topic_index``), so the plan reads only these
        events whatever the planner's statistics, and the cost does not grow with the
        log. (An ``IN`` list with the range let PostgreSQL without statistics AND a scan
        of the whole position index with the topic index.)"""
        if not types:
            return []
        pos, p = self.position_column, self.tree.p
        bound = "" if upto is None else f" AND {pos} <= {p}"
        arm = (
            f"SELECT {pos}, originator_id, originator_version, state FROM "
            f"{self.events_table} WHERE topic = {p} AND {pos} > {p}{bound}"
        )
        kinds = list(dict.fromkeys(types))
        rows = self._read(
            f"{' UNION ALL '.join([arm] * len(kinds))} ORDER BY 1",
            [x for t in kinds for x in (t, after, *(() if upto is None else (upto,)))],
        )
        decode = ev.decoder.decode
        return [Recorded(s, v, decode(state), n) for n, s, v, state in rows]


class SQLiteLog(LogReading):
    """The log of a SQLite store, opened for reading only: a connection of its own to
    ``uri`` (``boundary.sqlite_uri(db, write=False)``), each read in one transaction."""

    tree = StoredTree("?")
    events_table = EVENTS_TABLE
    position_column = "rowid"

    def __init__(self, uri: str, label: str):
        self.store_label = label
        self._conn = sqlite3.connect(
            uri, uri=True, isolation_level=None, timeout=LOCK_TIMEOUT
        )

    @contextmanager
    def _tx(self, *, commit: bool) -> Iterator[sqlite3.Cursor]:
        if commit:
            raise RuntimeError("SQLiteLog reads only")
        cursor = self._conn.cursor()
        cursor.execute("BEGIN")
        try:
            yield cursor
        finally:
            cursor.close()
            if self._conn.in_transaction:  # a read: nothing to keep
                self._conn.rollback()

    def _select(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        with self._tx(commit=False) as c:
            return c.execute(sql, params).fetchall()

    def close(self) -> None:
        self._conn.close()
