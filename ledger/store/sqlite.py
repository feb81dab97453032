"""The event store in an SQLite file: the library's SQLite recorder with ``LogRecorder``.

Everything specific to SQLite lives here (the write lock, the insert at explicit rowids,
plain-tuple reads, the snapshot ``transparency.tlog.verify`` reads); the write sequence
and the log-reading methods are ``recorder.py``'s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from arms_ledger.ledger import progress as reporting
from arms_ledger.ledger.errors import DAMAGED_STORE, storage
from arms_ledger.ledger.store import tree as stored_tree
from arms_ledger.ledger.store.recorder import LogRecorder, ReadSet
from arms_ledger.ledger.transparency import tlog
from arms_ledger.ledger.transparency.merkle import Node
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore


class LedgerSQLiteRecorder(LogRecorder, SQLiteApplicationRecorder):
    """The library's SQLite recorder, plus ``LogRecorder`` and:

    - an index on ``topic``, so the policies and thresholds in force and ``log --type``
      read only their own events: an SQLite index ends with the rowid, the position,
      so it is the ``(topic, position)`` index ``of_types`` reads a range of;
    - ``recorded_at`` strictly increasing: the write lock is taken before the last
      stamp is read, and the batch follows it (``after_head``);
    - the ledger's key is the only one that signs this log (``sole_signer``).
    """

    sole_signer = True

    tree = stored_tree.StoredTree("?")
    position_column = "rowid"

    def __init__(self, datastore: SQLiteDatastore, **kwargs: Any):
        super().__init__(datastore, **kwargs)
        self.events_table = self.events_table_name
        self.store_label = f"the event store {datastore.pool.db_name}"

    @property
    def topic_index(self) -> str:  # type: ignore[override]
        return f"{self.events_table_name}_topic"

    def _create_topic_index(self) -> str:
        return (
            f"CREATE INDEX IF NOT EXISTS {self.topic_index} "
            f"ON {self.events_table_name} (topic)"
        )

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            self._create_topic_index(),
            *stored_tree.CREATE_STATEMENTS,
        ]

    def has_topic_index(self) -> bool:
        rows = self._read(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?",
            (self.topic_index,),
        )
        return bool(rows[0][0])

    def upgrade_store(self) -> bool:
        """Every ledger this version or the one before made has the topic index (the
        format-1 upgrade creates it too); one that lacks it gets it."""
        if self.has_topic_index():
            return False
        with storage(self.store_name, DAMAGED_STORE), self._tx(commit=True) as c:
            c.execute(self._create_topic_index())
        return True

    def _tx(self, *, commit: bool) -> Any:
        return self.datastore.transaction(commit=commit)

    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        restamp: bool = True,
        read_set: ReadSet | None = None,
        **_: Any,
    ) -> Sequence[int] | None:
        """The library's public insert, replaced whole (its private ``_insert_events``
        hook is not used): the ledger's write sequence in one transaction."""
        with self._tx(commit=True) as c:
            # A write that changes nothing takes the write lock now, so the last stamp
            # read next cannot be overtaken before this batch commits.
            c.execute(f"UPDATE {self.events_table_name} SET topic = topic WHERE rowid = 0")
            positions = self._write_locked(c, stored_events, restamp, read_set)
        self._publish()
        return positions

    def _select(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        # A plain cursor on the transaction's connection: tuples, not sqlite3.Row.
        with self._tx(commit=False) as c:
            cursor = c.sqlite_cursor.connection.cursor()
            cursor.row_factory = None
            try:
                return cursor.execute(sql, params).fetchall()
            finally:
                cursor.close()

    def _insert_rows(
        self, c: Any, positions: Sequence[int], stored_events: Sequence[StoredEvent]
    ) -> None:
        # One executemany at explicit rowids (the library executes an INSERT per row to
        # read back its rowid), fed row by row so that the progress can be told.
        def rows() -> Iterator[tuple[Any, ...]]:
            for count, (p, s) in enumerate(zip(positions, stored_events, strict=True)):
                if count % 1000 == 999:
                    reporting.advance(1000)
                yield (p, s.originator_id, s.originator_version, s.topic, s.state)

        c.executemany(
            f"INSERT INTO {self.events_table_name} (rowid, originator_id, "
            "originator_version, topic, state) VALUES (?, ?, ?, ?, ?)",
            rows(),
        )

    def extend_tree(self) -> int:
        """Add the events the tree lacks (a ledger from before the tree); returns how
        many."""
        with self._tx(commit=True) as c:
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
        with self._tx(commit=False) as c:
            yield _SQLiteLog(c.sqlite_cursor.connection, self.events_table_name, self.tree)


class _SQLiteLog:
    """A ``tlog.LogSource`` over one SQLite read transaction (one snapshot)."""

    def __init__(self, conn: Any, events_table: str, tree: stored_tree.StoredTree):
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

    def top_level(self) -> int | None:
        sql = f"SELECT max(level) FROM {self.tree.nodes_table}"
        return self.conn.execute(sql).fetchone()[0]

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
        "MAPPER_TOPIC": "arms_ledger.ledger.store.mapper:EventMapper",
        "APPLICATION_RECORDER_TOPIC": (
            "arms_ledger.ledger.store.sqlite:LedgerSQLiteRecorder"
        ),
    }
