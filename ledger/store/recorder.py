"""The recorder's engine-neutral part: the write sequence and the log-reading methods.

``LogRecorder`` is mixed into the library's SQLite and PostgreSQL application recorders
(``sqlite.py``, ``postgres.py``). Each engine gives a transaction (``_tx``), a plain
read (``_select``) and the row insert (``_insert_rows``); everything else is here: the
read-set check, stamping after the log's last event, numbering, the Merkle tree and the
checkpoints in the same transaction, and the read side's ``LogReader`` (pages of the
log, events at positions, a stream up to a position, events of given types, the head).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import MICROSECOND, format_recorded, parse_instant
from arms_ledger.ledger.domain.records import LogRow, Recorded
from arms_ledger.ledger.errors import DAMAGED_STORE, is_storage_failure, storage_error
from arms_ledger.ledger.store.tree import StoredTree
from arms_ledger.ledger.transparency import merkle
from arms_ledger.ledger.transparency.merkle import Node
from arms_ledger.ledger.transparency.note import Checkpoint, Signer
from arms_ledger.ledger.transparency.tlog import LogSource, StoredCheckpoint
from eventsourcing.persistence import IntegrityError, StoredEvent

PAGE = 5_000  # events per page of ``pages``


class ReadSet(NamedTuple):
    streams: dict[str, int]  # stream key -> version read (0: the stream did not exist)
    thresholds: int | None  # NotificationThresholdsSet events read, if any


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


if TYPE_CHECKING:
    # For the type checker, the mixin is the library's recorder it is mixed into: the
    # ledger uses both sides through one ``recorder``. At run time it is a plain mixin,
    # placed before the engine's recorder in each class's bases.
    from eventsourcing.persistence import ApplicationRecorder as _Mixed
else:
    _Mixed = object


class LogRecorder(_Mixed):
    """What the ledger needs of its store beyond the library's recorder, on any engine.

    A recorder class mixes this in and gives ``_tx(commit)``, a transaction yielding a
    DB-API cursor whose rows index by position, and ``tree``, the SQL of the Merkle tree
    in its dialect. Its insert extends the tree in the same transaction as the events and
    signs a checkpoint of every append when ``signer`` is set.
    """

    tree: StoredTree
    signer: Signer | None = None
    events_table: str  # as written in SQL (schema-qualified on PostgreSQL)
    position_column: str  # the log position: rowid (SQLite), notification_id (PostgreSQL)
    # Called with each checkpoint note once its transaction has committed (the ledger's
    # directory keeps the newest outside the store: ``boundary.LATEST_CHECKPOINT``).
    on_checkpoint: Callable[[str], None] | None = None
    _unpublished: str | None = None

    def _tx(self, *, commit: bool) -> Any:
        raise NotImplementedError

    def snapshot(self) -> AbstractContextManager[LogSource]:
        """The stored log, tree and checkpoints as of one moment, for ``tlog.verify``."""
        raise NotImplementedError

    def extend_tree(self) -> int:
        """Add the events the tree lacks (a ledger from before the tree; SQLite only)."""
        raise NotImplementedError

    # The index the reads by type use (``of_types``; the write path's thresholds): on
    # (topic, position), so that those few events are one range of it.
    topic_index: str

    def upgrade_store(self) -> bool:
        """Bring a store made by an earlier version up to this one's indexes (the
        ``topic_index``), when a ledger is opened for writing; True if it changed
        anything. Idempotent, and safe against writers and other upgraders."""
        raise NotImplementedError

    def has_topic_index(self) -> bool:
        """Whether the store has its ``topic_index``."""
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
                        f"{key} is at version {version}, "
                        f"not {read_set.streams[key]} as read"
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
        """The last position of the log and its event's ``recorded_at`` (0, None if
        empty)."""
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
        self._unpublished = None
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
        self._unpublished = note
        return note

    def _publish(self) -> None:
        """After a commit: hand the checkpoint it stored, if any, to ``on_checkpoint``."""
        note, self._unpublished = self._unpublished, None
        if note is not None and self.on_checkpoint is not None:
            self.on_checkpoint(note)

    def sign_checkpoint(self, signer: Signer) -> str:
        """Sign and store a checkpoint of the log as it is now; returns the note."""
        with self._tx(commit=True) as c:
            size = self.tree.size(c)
            root = merkle.root_from(size, self.tree.nodes(c, merkle.frontier_nodes(size)))
            note = self._sign(c, signer, size, root)
        self._publish()
        return note

    def store_checkpoint(self, note: str, size: int, verifier: Any) -> None:
        with self._tx(commit=True) as c:
            self.tree.store_checkpoint(c, note, size, verifier)
        self._unpublished = note
        self._publish()

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
        pos, p = self.position_column, self.tree.p
        sql = (
            f"SELECT {pos}, originator_id, originator_version, state FROM "
            f"{self.events_table} WHERE {pos} > {p} AND {pos} <= {p} ORDER BY {pos} "
            f"LIMIT {p}"
        )
        decode = ev.decoder.decode
        while after < upto:
            rows = self._read(sql, (after, upto, size))
            if not rows:
                return
            yield [
                (n, stream, version, decode(state)) for n, stream, version, state in rows
            ]
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
