"""Storage setup: how events become rows of the eventsourcing store, and back.

Everything specific to one database engine lives here. The stored state of an event is
its canonical msgspec JSON (the whole tagged Struct, envelope included); the stored
topic is its ``type`` tag; the originator id is the stream key (``case:PL-B-AHA``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import MICROSECOND, format_recorded, parse_instant
from arms_ledger.ledger.transparency import merkle, tlog
from arms_ledger.ledger.transparency.merkle import Node
from arms_ledger.ledger.transparency.note import Checkpoint, Signer
from eventsourcing.persistence import IntegrityError, Mapper, Notification, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor


class ReadSet(NamedTuple):
    streams: dict[str, int]  # stream key -> version read (0: the stream did not exist)
    thresholds: int | None  # NotificationThresholdsSet events read, if any


class Pending(msgspec.Struct, frozen=True):
    """An accepted event on its way into the store, at a version of its stream."""

    originator_id: str
    originator_version: int
    event: ev.Event


class Recorded(msgspec.Struct, frozen=True):
    """An event read back from the store; ``position`` is its place in the log."""

    stream: str
    version: int
    event: ev.Event
    position: int | None = None


class EventMapper(Mapper[str]):
    """Encodes the whole event with msgspec; decodes through the tagged union.

    Replaces the library's default mapper and JSON transcoder (which tags every value
    and is about 3x slower here; see bench/transcoding.py).
    """

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        event = domain_event.event
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=type(event).__name__,
            state=ev.encoder.encode(event),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return Recorded(
            stream=stored_event.originator_id,
            version=stored_event.originator_version,
            event=ev.decoder.decode(stored_event.state),
            position=getattr(stored_event, "id", None),
        )


class _Stamp(msgspec.Struct):
    recorded_at: str


_stamp_decoder = msgspec.json.Decoder(_Stamp)


def recorded_at_of(state: bytes) -> str:
    return _stamp_decoder.decode(state).recorded_at


class StampConflict(Exception):
    """A recorded history's ``recorded_at`` is not after the log's last event."""

    def __init__(self, previous: str):
        self.previous = previous
        super().__init__(previous)


def after_head(
    stored_events: Sequence[StoredEvent], previous: str | None, *, restamp: bool
) -> Sequence[StoredEvent]:
    """Keep ``recorded_at`` strictly increasing across the log, under the write lock.

    The application stamps a batch from its clock; if another writer committed a later
    stamp since (or the clocks disagree), the batch is re-stamped to follow it by one
    microsecond per event. A recorded history (``restamp=False``) is refused instead.
    """
    if previous is None or recorded_at_of(stored_events[0].state) > previous:
        return stored_events
    if not restamp:
        raise StampConflict(previous)
    start = parse_instant(previous)
    restamped = []
    for i, stored in enumerate(stored_events, start=1):
        event = msgspec.structs.replace(
            ev.decoder.decode(stored.state),
            recorded_at=format_recorded(start + i * MICROSECOND),
        )
        restamped.append(
            StoredEvent(
                originator_id=stored.originator_id,
                originator_version=stored.originator_version,
                topic=stored.topic,
                state=ev.encoder.encode(event),
            )
        )
    return restamped


class LogRecorder:
    """What the ledger needs of its store beyond the library's recorder, on any engine.

    A recorder class mixes this in and gives ``_tx(commit)``, a transaction yielding a
    DB-API cursor whose rows index by position, and ``tree``, the SQL of the Merkle tree
    in its dialect. Its insert extends the tree in the same transaction as the events and
    signs a checkpoint of every append when ``signer`` is set.
    """

    tree: tlog.StoredTree
    signer: Signer | None = None
    events_table: str  # as written in SQL (schema-qualified on PostgreSQL)
    position_column: str  # the log position: rowid (SQLite), notification_id (PostgreSQL)

    def _tx(self, *, commit: bool) -> Any:
        raise NotImplementedError

    def _check_read_set(self, c: Any, read_set: ReadSet | None) -> None:
        """Under the write lock: refuse the batch (IntegrityError: the application
        decides it again) if a stream its decisions read has moved on since. Streams the
        batch writes are also guarded by the primary key; this covers the ones it only
        read, such as a partner suspended by another writer meanwhile."""
        if read_set is None:
            return
        keys = list(read_set.streams)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            c.execute(
                f"SELECT originator_id, max(originator_version) FROM {self.events_table} "
                f"WHERE originator_id IN ({', '.join([self.tree.p] * len(chunk))}) "
                "GROUP BY originator_id",
                chunk,
            )
            for key, version in c.fetchall():
                if version != read_set.streams[key]:
                    raise IntegrityError(
                        f"{key} is at version {version}, not {read_set.streams[key]} as read"
                    )
        if read_set.thresholds is not None:
            c.execute(
                f"SELECT count(*) FROM {self.events_table} WHERE topic = {self.tree.p}",
                ("NotificationThresholdsSet",),
            )
            if c.fetchone()[0] != read_set.thresholds:
                raise IntegrityError(
                    "the notification thresholds changed since they were read"
                )

    def _extend_and_sign(
        self, c: Any, positions: Sequence[int], states: Sequence[bytes]
    ) -> None:
        tree = self.tree.extend(c, positions, states)
        if self.signer is not None:
            self._sign(c, self.signer, tree.size, tree.root())

    def _head(self, c: Any) -> tuple[int, str | None]:
        """The last position of the log and its event's ``recorded_at`` (0, None if empty)."""
        c.execute(
            f"SELECT {self.position_column}, state FROM {self.events_table} "
            f"ORDER BY {self.position_column} DESC LIMIT 1"
        )
        row = c.fetchone()
        return (0, None) if row is None else (row[0], recorded_at_of(bytes(row[1])))

    def _insert_rows(
        self, c: Any, positions: Sequence[int], stored_events: Sequence[StoredEvent]
    ) -> None:
        raise NotImplementedError

    def _write_locked(
        self,
        c: Any,
        stored_events: Sequence[StoredEvent],
        restamp: bool,
        read_set: ReadSet | None,
    ) -> list[int]:
        """The batch's write, the write lock held: check what its decisions read, stamp it
        after the last event, number it after the last position, insert it, extend the tree
        and sign. Returns the positions."""
        self._check_read_set(c, read_set)
        head, last = self._head(c)
        stored_events = after_head(stored_events, last, restamp=restamp)
        positions = list(range(head + 1, head + 1 + len(stored_events)))
        self._insert_rows(c, positions, stored_events)
        self._extend_and_sign(c, positions, [s.state for s in stored_events])
        return positions

    def _sign(self, c: Any, signer: Signer, size: int, root: bytes) -> str:
        note = signer.sign(Checkpoint(signer.name, size, root).text())
        self.tree.store_checkpoint(c, note, size, signer.verifier)
        return note

    def sign_checkpoint(self, signer: Signer) -> str:
        """Sign and store a checkpoint of the log as it is now; returns the note."""
        with self._tx(commit=True) as c:
            size = self.tree.size(c)
            root = merkle.root_from(size, self.tree.nodes(c, merkle.frontier_nodes(size)))
            return self._sign(c, signer, size, root)

    def store_checkpoint(self, note: str, size: int, verifier: Any) -> None:
        with self._tx(commit=True) as c:
            self.tree.store_checkpoint(c, note, size, verifier)

    def tree_size(self) -> int:
        with self._tx(commit=False) as c:
            return self.tree.size(c)

    def tree_nodes(self, wanted: Sequence[Node]) -> dict[Node, bytes]:
        with self._tx(commit=False) as c:
            return self.tree.nodes(c, wanted)

    def checkpoints(self) -> list[tlog.StoredCheckpoint]:
        with self._tx(commit=False) as c:
            return self.tree.checkpoints(c)

    def latest_checkpoint(self, verifier: str) -> tlog.StoredCheckpoint | None:
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

    def select_stream(self, originator_id: str) -> list[Notification]:
        """One stream's events, oldest first, with their log positions."""
        with self._tx(commit=False) as c:
            c.execute(
                f"SELECT {self.position_column}, originator_id, originator_version, topic, "
                f"state FROM {self.events_table} WHERE originator_id = {self.tree.p} "
                "ORDER BY originator_version",
                (originator_id,),
            )
            return [
                Notification(
                    id=row[0],
                    originator_id=row[1],
                    originator_version=row[2],
                    topic=row[3],
                    state=bytes(row[4]),
                )
                for row in c.fetchall()
            ]


class LedgerSQLiteRecorder(LogRecorder, SQLiteApplicationRecorder):
    """The library's SQLite recorder, plus ``LogRecorder`` and:

    - an index on ``topic``, so the thresholds in force and ``log --type`` read only
      their own events;
    - ``recorded_at`` strictly increasing: the write lock is taken before the last
      stamp is read, and the batch follows it (``after_head``).
    """

    tree = tlog.StoredTree("?")
    position_column = "rowid"

    @property
    def events_table(self) -> str:
        return self.events_table_name

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            (
                f"CREATE INDEX IF NOT EXISTS {self.events_table_name}_topic "
                f"ON {self.events_table_name} (topic)"
            ),
            *tlog.CREATE_STATEMENTS,
        ]

    def _tx(self, *, commit: bool) -> Any:
        return self.datastore.transaction(commit=commit)

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        *,
        restamp: bool = True,
        read_set: ReadSet | None = None,
        **_: Any,
    ) -> Sequence[int] | None:
        # A write that changes nothing takes the write lock now, so the last stamp read
        # next cannot be overtaken before this batch commits.
        c.execute(f"UPDATE {self.events_table_name} SET topic = topic WHERE rowid = 0")
        return self._write_locked(c, stored_events, restamp, read_set)

    def _insert_rows(
        self, c: Any, positions: Sequence[int], stored_events: Sequence[StoredEvent]
    ) -> None:
        # One executemany at explicit rowids (the library executes an INSERT per row to
        # read back its rowid).
        c.executemany(
            f"INSERT INTO {self.events_table_name} (rowid, originator_id, originator_version, "
            "topic, state) VALUES (?, ?, ?, ?, ?)",
            [
                (p, s.originator_id, s.originator_version, s.topic, s.state)
                for p, s in zip(positions, stored_events, strict=True)
            ],
        )

    def extend_tree(self) -> int:
        """Add the events the tree lacks (a ledger from before the tree); returns how many."""
        with self.datastore.transaction(commit=True) as c:
            size = self.tree.size(c)
            c.execute(
                f"SELECT rowid, state FROM {self.events_table_name} WHERE rowid > ? "
                "ORDER BY rowid",
                (size,),
            )
            rows = c.fetchall()
            if rows:
                self.tree.extend(c, [r[0] for r in rows], [r[1] for r in rows])
            return len(rows)

    @contextmanager
    def snapshot(self) -> Iterator[tlog.LogSource]:
        """The stored log, tree and checkpoints as of one moment, for ``tlog.verify``."""
        with self.datastore.transaction(commit=False) as c:
            yield _SQLiteLog(c.sqlite_cursor.connection, self.events_table_name, self.tree)


class _SQLiteLog:
    """A ``tlog.LogSource`` over one SQLite read transaction (one snapshot)."""

    def __init__(self, conn: Any, events_table: str, tree: tlog.StoredTree):
        self.conn, self.events_table, self.tree = conn, events_table, tree

    def rows(self) -> Iterator[tlog.Row]:
        cursor = self.conn.execute(
            "SELECT rowid, originator_id, originator_version, topic, state "
            f"FROM {self.events_table} ORDER BY rowid"
        )
        return (
            tlog.Row(
                p,
                stream,
                version,
                topic,
                state.encode() if isinstance(state, str) else state,
            )
            for p, stream, version, topic, state in cursor
        )

    def level(self, level: int) -> Iterator[tuple[int, bytes]]:
        cursor = self.conn.execute(
            f"SELECT idx, hash FROM {self.tree.nodes_table} WHERE level = ? ORDER BY idx",
            (level,),
        )
        return ((idx, bytes(h)) for idx, h in cursor)

    def nodes(self, wanted: Sequence[Node]) -> dict[Node, bytes]:
        return self.tree.nodes(self.conn.cursor(), wanted)

    def checkpoints(self) -> list[tlog.StoredCheckpoint]:
        return self.tree.checkpoints(self.conn.cursor())


def sqlite_env(path: str) -> dict[str, str]:
    """eventsourcing settings for the embedded store in the file at ``path``."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": path,
        # Several CLI processes may append at once: wait for the write lock.
        "SQLITE_LOCK_TIMEOUT": "30",
        "ORIGINATOR_ID_TYPE": "text",
        "MAPPER_TOPIC": "arms_ledger.ledger.store.sqlite:EventMapper",
        "APPLICATION_RECORDER_TOPIC": "arms_ledger.ledger.store.sqlite:LedgerSQLiteRecorder",
    }
