"""The event store on PostgreSQL, for many writers on many machines.

The library's PostgreSQL recorder (eventsourcing 9.5, psycopg 3) with the ledger's
``LogRecorder``: the Merkle tree and checkpoints in tables beside ``ledger_events``,
written in the same transaction as the events. Imported only when a ledger's store is a
``postgresql://`` URL (psycopg costs ~150 ms at start-up).

Positions. The library numbers events with a ``bigserial``, which leaves a gap whenever a
transaction fails after drawing numbers. The Merkle tree needs positions 1..n without
gaps, so this recorder numbers a batch itself: under the library's ``EXCLUSIVE`` table
lock (one writer at a time; readers are not blocked) it reads the last position and
inserts the batch at the ones that follow. Commit order is therefore position order, and
a failed transaction leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from arms_ledger.ledger.errors import DAMAGED_STORE, LedgerError, storage
from arms_ledger.ledger.store import tree as stored_tree
from arms_ledger.ledger.store.recorder import LogRecorder, ReadSet
from arms_ledger.ledger.transparency import tlog
from arms_ledger.ledger.transparency.merkle import Node
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

SCHEMES = ("postgresql", "postgres")


def redacted(url: str) -> str:
    """The URL as a message may show it: a password in it (``user:secret@``) replaced
    by ``***``, without parsing (the URL may be malformed: that is why it is shown)."""
    scheme, sep, rest = url.partition("://")
    at = rest.rfind("@")
    if not sep or at < 0 or ":" not in rest[:at]:
        return url
    return f"{scheme}://{rest[:at].split(':', 1)[0]}:***{rest[at:]}"


class StoreUnreachable(LedgerError):
    """The PostgreSQL server could not be reached or refused the connection."""


class Location:
    """Where a ``postgresql://user@host:port/dbname?schema=name`` URL points."""

    def __init__(self, url: str):
        try:
            parts = urlsplit(url)
            port = parts.port or 5432
        except ValueError as error:
            shown = redacted(url)
            # The parser's words may quote part of a password (as a port, say).
            why = error if shown == url else "not a valid URL"
            raise LedgerError(f"store URL {shown!r}: {why}") from None
        if parts.scheme not in SCHEMES:
            raise LedgerError(
                f"store {redacted(url)!r}: expected `sqlite` or a URL like "
                "postgresql://user@127.0.0.1:5432/dbname"
            )
        if parts.password:
            raise LedgerError(
                "the store URL carries a password, and the URL is saved in ledger.json: "
                "remove it and give the password in PGPASSWORD or ~/.pgpass"
            )
        query = parse_qs(parts.query)
        unknown = sorted(set(query) - {"schema"})
        if unknown:
            raise LedgerError(
                f"store URL: unknown parameter {unknown[0]!r} "
                "(the only one is ?schema=NAME)"
            )
        self.host = parts.hostname or "localhost"
        self.port = port
        self.user = unquote(parts.username) if parts.username else getpass.getuser()
        self.dbname = unquote(parts.path.lstrip("/")) or self.user
        self.schema = query.get("schema", ["public"])[-1]
        if not self.schema.isidentifier() or len(self.schema) > 40:
            raise LedgerError(
                f"store URL: schema {self.schema!r} must be a plain identifier "
                "(letters, digits, _) of at most 40 characters"
            )

    @property
    def url(self) -> str:
        """The URL as saved in ledger.json (never with a password)."""
        schema = "" if self.schema == "public" else f"?schema={self.schema}"
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}{schema}"

    @property
    def where(self) -> str:
        return (
            f"PostgreSQL at {self.host}:{self.port} "
            f"(database {self.dbname}, user {self.user})"
        )

    def env(self, *, create_tables: bool) -> dict[str, str]:
        """eventsourcing settings for this store."""
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            # Empty means "not given": libpq then reads ~/.pgpass.
            "POSTGRES_PASSWORD": os.environ.get("PGPASSWORD", ""),
            "POSTGRES_SCHEMA": self.schema,
            "POSTGRES_CONNECT_TIMEOUT": "10",
            # A CLI process needs one connection; the pool may open a few more.
            "POSTGRES_POOL_SIZE": "1",
            "POSTGRES_MAX_OVERFLOW": "4",
            # Writers queue for the table lock; give up after a minute, not never.
            "POSTGRES_LOCK_TIMEOUT": "60",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "60",
            "CREATE_TABLE": "yes" if create_tables else "no",
            "ORIGINATOR_ID_TYPE": "text",
            "MAPPER_TOPIC": "arms_ledger.ledger.store.mapper:EventMapper",
            "APPLICATION_RECORDER_TOPIC": (
                "arms_ledger.ledger.store.postgres:LedgerPostgresRecorder"
            ),
        }

    def connect(self, **options: Any) -> psycopg.Connection:
        """A plain psycopg connection to this database (``options``: psycopg's)."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=self.dbname,
            password=os.environ.get("PGPASSWORD") or None,
            **options,
        )

    def check(self) -> None:
        """Connect once, so an unreachable server is one clear line, not a minute of
        retries; create the schema if the URL names one that does not exist yet."""
        try:
            with self.connect(autocommit=True, connect_timeout=5) as conn:
                if self.schema != "public":
                    # another process may create it at the same moment
                    with contextlib.suppress(psycopg.errors.UniqueViolation):
                        conn.execute(
                            SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                                Identifier(self.schema)
                            )
                        )
        except psycopg.OperationalError as error:
            reason = " ".join(str(error).split()) or type(error).__name__
            raise StoreUnreachable(
                f"cannot connect to {self.where}: {reason}; check that the server is "
                "running and accepts TCP connections there, the user and database exist, "
                "and PGPASSWORD or ~/.pgpass holds the password"
            ) from None


def _tree_ddl(schema: str) -> list[Any]:
    s = Identifier(schema)
    return [
        SQL(
            "CREATE TABLE IF NOT EXISTS {}.{} (level integer NOT NULL, "
            "idx bigint NOT NULL, hash bytea NOT NULL, PRIMARY KEY (level, idx))"
        ).format(s, Identifier(stored_tree.NODES)),
        SQL(
            "CREATE TABLE IF NOT EXISTS {}.{} (id bigserial PRIMARY KEY, "
            "size bigint NOT NULL, "
            "note text NOT NULL, verifier text NOT NULL, stored_at text NOT NULL, "
            "UNIQUE (size, verifier))"
        ).format(s, Identifier(stored_tree.CHECKPOINTS)),
    ]


class LedgerPostgresRecorder(LogRecorder, PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, plus ``LogRecorder``, gap-free positions and an
    index on ``(topic, notification_id)``.

    The index is what keeps the reads by type (the policies a catch-up reads, the
    thresholds the write path reads) flat as the log grows, whatever the server's
    statistics: each is one range of it. With only an index on ``topic``, a table that
    was never ANALYZEd (a bulk load with autovacuum off) had the planner AND a scan of
    the whole ``notification_id`` index with it: 60 ms at a million events. Stores
    made before it have that ``topic`` index instead; ``upgrade_store`` replaces it.
    """

    position_column = "notification_id"

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        schema = datastore.schema
        self.tree = stored_tree.StoredTree("%s", schema=f'"{schema}"')
        self.events_table = f'"{schema}"."{events_table_name}"'
        self.store_label = f"the PostgreSQL event store (schema {schema})"
        self._table = Identifier(schema, events_table_name)
        self._schema = schema
        self.topic_index = f"{events_table_name}_topic_position"
        # What stores made by earlier versions have instead (a prefix of topic_index).
        self._old_topic = f"{events_table_name}_topic"
        self._create_topic_index = SQL(
            "CREATE INDEX IF NOT EXISTS {} ON {} (topic, notification_id)"
        ).format(Identifier(self.topic_index), self._table)
        self.sql_create_statements.extend([self._create_topic_index, *_tree_ddl(schema)])
        # Our own statements for what the library's insert does around its rows (its
        # lock_table_statements and _notify_channel are not public): the EXCLUSIVE lock
        # (one writer at a time; readers are not blocked), with the store's lock timeout,
        # and the NOTIFY its subscriptions LISTEN for, on its public ``channel_name``.
        self._lock = [
            SQL("SET LOCAL lock_timeout = '{0}s'").format(datastore.lock_timeout),
            SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(self._table),
        ]
        self._notify = SQL("NOTIFY {0}").format(Identifier(self.channel_name))
        self._insert = SQL(
            "INSERT INTO {} (originator_id, originator_version, topic, state, "
            "notification_id) SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[], "
            "%s::bytea[], %s::bigint[])"
        ).format(self._table)

    @contextmanager
    def _tx(self, *, commit: bool) -> Iterator[Any]:
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(force_rollback=not commit),
        ):
            yield conn.cursor(row_factory=tuple_row)

    def insert_events(  # the library's public insert, replaced whole
        self,
        stored_events: Sequence[StoredEvent],
        *,
        restamp: bool = True,
        read_set: ReadSet | None = None,
        **_: Any,
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self._tx(commit=True) as c:
            for statement in self._lock:
                c.execute(statement)
            positions = self._write_locked(c, stored_events, restamp, read_set)
            c.execute(self._notify)
        self._publish()
        return positions

    def has_topic_index(self) -> bool:
        return self._indexes()[0]

    def _indexes(self) -> tuple[bool, bool]:
        """Whether the store has the ``topic_index``, and the old ``topic`` one."""
        names = [f'"{self._schema}"."{n}"' for n in (self.topic_index, self._old_topic)]
        rows = self._read(
            "SELECT to_regclass(%s) IS NOT NULL, to_regclass(%s) IS NOT NULL", names
        )
        return bool(rows[0][0]), bool(rows[0][1])

    def upgrade_store(self) -> bool:
        """A store made before the ``(topic, notification_id)`` index gets it, and loses
        the ``topic`` index it replaces. Under the writers' EXCLUSIVE lock (readers go
        on; writers wait, up to the store's lock timeout, for the index to be built:
        a second or two per million events), so that two upgraders do not race."""
        if self._indexes() == (True, False):
            return False
        with storage(self.store_name, DAMAGED_STORE), self._tx(commit=True) as c:
            for statement in self._lock:
                c.execute(statement)
            c.execute(self._create_topic_index)
            c.execute(
                SQL("DROP INDEX IF EXISTS {}").format(
                    Identifier(self._schema, self._old_topic)
                )
            )
        return True

    def _select(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        with self._tx(commit=False) as c:
            c.execute(sql, params)
            return c.fetchall()  # tuple_row; bytea comes back as bytes

    def _insert_rows(
        self, c: Any, positions: Sequence[int], stored_events: Sequence[StoredEvent]
    ) -> None:
        c.execute(
            self._insert,
            (
                [s.originator_id for s in stored_events],
                [s.originator_version for s in stored_events],
                [s.topic for s in stored_events],
                [s.state for s in stored_events],
                list(positions),
            ),
        )

    def select_streams(self, after: dict[str, int]) -> list[tuple[str, int, bytes]]:
        """As ``LogRecorder.select_streams``, as a join with the wanted (stream, version)
        pairs: PostgreSQL plans an OR of hundreds of key ranges as a scan of the table."""
        with self._tx(commit=False) as c:
            c.execute(
                SQL(
                    "SELECT e.originator_id, e.originator_version, e.state FROM {} AS e "
                    "JOIN unnest(%s::text[], %s::bigint[]) AS w(id, v) "
                    "ON e.originator_id = w.id AND e.originator_version > w.v "
                    "ORDER BY e.originator_id, e.originator_version"
                ).format(self._table),
                (list(after), list(after.values())),
            )
            return [(key, version, bytes(state)) for key, version, state in c.fetchall()]

    @contextmanager
    def snapshot(self) -> Iterator[tlog.LogSource]:
        """The stored log, tree and checkpoints as of one moment, for ``tlog.verify``."""
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(force_rollback=True),
        ):
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            log = _PostgresLog(conn, self._table, self.tree)
            try:
                yield log
            finally:
                log.close()


class _PostgresLog:
    """A ``tlog.LogSource`` over one repeatable-read transaction, streamed by server-side
    cursors (never the whole log in memory)."""

    def __init__(self, conn: Any, table: Identifier, tree: stored_tree.StoredTree):
        self.conn, self.table, self.tree = conn, table, tree
        self._cursors: list[Any] = []

    def _stream(self, query: Any, params: Sequence[Any] = ()) -> Iterator[tuple]:
        cursor = self.conn.cursor(
            name=f"verify_{len(self._cursors)}", row_factory=tuple_row
        )
        self._cursors.append(cursor)
        cursor.itersize = 5000
        cursor.execute(query, params)
        return iter(cursor)

    def close(self) -> None:
        for cursor in self._cursors:
            with contextlib.suppress(psycopg.Error):  # the transaction may have failed
                cursor.close()

    def rows(self) -> Iterator[tlog.Row]:
        rows = self._stream(
            SQL(
                "SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM {} ORDER BY notification_id"
            ).format(self.table)
        )
        return (
            tlog.Row(p, stream, version, topic, bytes(state))
            for p, stream, version, topic, state in rows
        )

    def level(self, level: int) -> Iterator[tuple[int, bytes]]:
        rows = self._stream(
            f"SELECT idx, hash FROM {self.tree.nodes_table} WHERE level = %s ORDER BY idx",
            (level,),
        )
        return ((idx, bytes(h)) for idx, h in rows)

    def top_level(self) -> int | None:
        cursor = self.conn.cursor(row_factory=tuple_row)
        cursor.execute(f"SELECT max(level) FROM {self.tree.nodes_table}")
        row = cursor.fetchone()
        return None if row is None else row[0]

    def nodes(self, wanted: Sequence[Node]) -> dict[Node, bytes]:
        return self.tree.nodes(self.conn.cursor(row_factory=tuple_row), wanted)

    def checkpoints(self) -> list[tlog.StoredCheckpoint]:
        return self.tree.checkpoints(self.conn.cursor(row_factory=tuple_row))
