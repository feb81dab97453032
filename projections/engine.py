"""Bringing the read models up to date: catch-up, rebuild, and replays of the past.

The live read models sit in ``projections.db`` beside the event store. ``catch_up``
applies the events after the position they have reached, in transactions of at most
``commit_every`` events, each writing the rows and the new position together: a crash
loses at most the transaction in flight, and the next catch-up resumes from the last
commit, so no event is applied twice or skipped. ``BEGIN IMMEDIATE`` serializes
concurrent catch-ups; one that finds the position moved under it starts over from there.

A ``rebuild`` builds the read models afresh in a new file beside the live one and then
renames it into place: the whole log in one transaction with no journal and no fsync
(a crash leaves only a half-built file that the next rebuild removes), the rows written
a batch at a time while the log is read a page at a time (memory stays bounded by the
size of a batch and the state of the partners, platforms, cases and queues, whatever
the length of the log), and the secondary indexes created once the rows are in. If
another process has the live file open, it is rebuilt in place instead, by catch-up.

A replay (``--as-of``, ``--known-at``, ``--at-position``) builds its own read models in a
temporary file from the selected events and never touches the live ones.

Everything here reads the log through a ``source.LogReader`` (the store's recorder, or an
``InMemoryLog``): never the write side's application or its signing key.
"""

from __future__ import annotations

import os
import queue
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import msgspec
from arms_ledger.ledger.domain.clock import format_instant, instant
from arms_ledger.ledger.domain.facts import holds_at
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.projections import schema
from arms_ledger.projections.loader import Stored
from arms_ledger.projections.projector import Projector
from arms_ledger.projections.source import LogReader, LogRow

PROJECTIONS_DB = "projections.db"
COMMIT_EVERY = 10_000
# A rebuild hands the rows of this many events to its writer at once (bounds memory).
FLUSH_EVENTS = 10_000
# live(): missing read models of a log longer than this are rebuilt, not caught up.
REBUILD_AFTER = 50_000


class Cut(msgspec.Struct, frozen=True):
    """Which part of the log a replay reads; all None means the live read models."""

    as_of: datetime | None = None  # events effective at or before
    known_at: datetime | None = None  # events recorded at or before
    at_position: int | None = None  # events up to this position

    @property
    def live(self) -> bool:
        return self.as_of is None and self.known_at is None and self.at_position is None

    def describe(self) -> str:
        parts = []
        if self.as_of is not None:
            parts.append(f"as of {format_instant(self.as_of)}")
        if self.known_at is not None:
            parts.append(f"as known at {format_instant(self.known_at)}")
        if self.at_position is not None:
            parts.append(f"at log position {self.at_position}")
        return ", ".join(parts) or "now"


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    # The read models can be rebuilt from the log: a power loss may cost the last
    # transactions (caught up again), never consistency.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _fresh(
    conn: sqlite3.Connection,
    cut: Cut = Cut(),
    time: str | None = None,
    *,
    indexes: bool = True,
) -> None:
    """Drop whatever is there and create empty read models (in a transaction)."""
    schema.drop(conn)
    schema.create(conn, indexes=indexes)
    conn.execute(
        "INSERT INTO projection (id, schema_version, position, as_of, known_at, "
        "at_position, time) VALUES (1, ?, 0, ?, ?, ?, ?)",
        (
            schema.SCHEMA_VERSION,
            None if cut.as_of is None else format_instant(cut.as_of),
            None if cut.known_at is None else format_instant(cut.known_at),
            cut.at_position,
            time,
        ),
    )


def _position(conn: sqlite3.Connection) -> int | None:
    """The position reached, or None if the read models are missing or outdated."""
    try:
        row = conn.execute("SELECT schema_version, position FROM projection").fetchone()
    except sqlite3.OperationalError:
        return None
    if row is None or row[0] != schema.SCHEMA_VERSION:
        return None
    return row[1]


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken at once (``BEGIN IMMEDIATE``): committed at the end of
    the block, rolled back if it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _apply(
    projector: Projector,
    pages: Iterable[list[LogRow]],
    progress: Callable[[int], None] | None,
    last: int = 0,
) -> tuple[int, int]:
    """Apply every event of ``pages``; returns (the last position, how many).

    ``progress(position)`` is called after each event is applied."""
    apply = projector.apply_event
    applied = 0
    for page in pages:
        for position, stream, version, event in page:
            apply(position, stream, version, event)
            if progress is not None:
                progress(position)
        last = page[-1][0]
        applied += len(page)
    return last, applied


def catch_up(
    log: LogReader,
    conn: sqlite3.Connection,
    *,
    commit_every: int = COMMIT_EVERY,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Apply every event after the position reached; returns how many were applied.

    ``progress(position)`` is called after each event is applied (before its commit).
    """
    applied = 0
    projector: Projector | None = None
    expected: int | None = None
    while True:
        with _immediate(conn):
            position = _position(conn)
            if position is None:  # missing, or made by another version: build anew
                _fresh(conn)
                position = 0
            head = log.head()
            if position >= head:
                return applied
            if projector is None or position != expected:
                projector = Projector(Stored(log, conn, position) if position else None)
            upto = min(head, position + commit_every)
            last, count = _apply(projector, log.pages(position, upto), progress, position)
            projector.flush(conn, last)
        applied += count
        expected = last


def rebuild(
    log: LogReader, path: Path, progress: Callable[[int], None] | None = None
) -> int:
    """Drop the read models and replay the whole log into them; returns how many events.

    ``progress(position)`` is called after each event is applied.
    """
    path = Path(path)
    if not _unused(path):
        return _rebuild_in_place(log, path, progress)
    _remove_abandoned(path)
    building = path.with_name(f"{path.name}{BUILDING}{os.getpid()}")
    _remove(building)
    try:
        applied = _build(log, building, log.head(), progress)
        if not _unused(path):  # opened meanwhile: replacing it would break its readers
            _remove(building)
            return _rebuild_in_place(log, path, progress)
        os.replace(building, path)
    except BaseException:
        _remove(building)
        raise
    conn = connect(path)
    try:  # the events appended while it was being built
        return applied + catch_up(log, conn, progress=progress)
    finally:
        conn.close()


def _unused(path: Path) -> bool:
    """No connection has the database at ``path`` open (or there is none): it can be
    replaced. SQLite removes the ``-wal`` and ``-shm`` files with the last connection;
    opening it once first recovers and checkpoints whatever a crash left behind."""
    if path.exists():
        try:
            conn = sqlite3.connect(path, timeout=30)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            pass  # not a database (any more): replace it
    return not any(
        Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm", "-journal")
    )


BUILDING = ".rebuilding-"  # + the building process's id


def _remove_abandoned(path: Path) -> None:
    """Remove what rebuilds killed midway left beside ``path`` (their process is gone)."""
    for found in path.parent.glob(f"{path.name}{BUILDING}*"):
        pid = found.name[len(path.name) + len(BUILDING) :].split("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            found.unlink(missing_ok=True)
        except PermissionError:
            pass  # alive, another user's


def _remove(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _build(
    log: LogReader, path: Path, head: int, progress: Callable[[int], None] | None
) -> int:
    """Build the read models of the log up to ``head`` into a new file at ``path``.

    The projector runs in this thread; a writer thread inserts the rows of one batch
    while the next is projected (SQLite releases the GIL while it works); at most one
    more batch waits for it. The indexes of ``schema.KEPT_DURING_REBUILD`` are kept up
    by the writer as it inserts; the others are created at the end.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # A file nobody else sees until it is complete: no journal, no fsync.
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -32768")  # 32 MiB, also for the index sorts
        conn.execute("PRAGMA threads = 2")  # a helper thread for those sorts
        conn.execute("BEGIN")
        _fresh(conn, indexes=False)
        writer = _Writer(conn)
        writer.start()
        try:
            applied = _project_all(log, head, writer, progress)
        finally:
            writer.close()
        schema.create_indexes(conn)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    return applied


def _project_all(
    log: LogReader, head: int, writer: _Writer, progress: Callable[[int], None] | None
) -> int:
    """Project the log up to ``head``, handing the rows to ``writer`` a batch at a time
    (``FLUSH_EVENTS``), the ended cases put aside after each batch; returns how many
    events."""
    projector = Projector()
    applied = last = 0
    try:
        for page in log.pages(0, head):
            last, count = _apply(projector, [page], progress, last)
            applied += count
            if len(projector.audit_rows) >= FLUSH_EVENTS:
                writer.put(projector.take(last, everything=False))
                projector.pack_ended()
        writer.put(projector.take(last))
    finally:
        projector.close()
    return applied


class _Writer(threading.Thread):
    """Executes batches of statements (``Projector.take``) in order, in its own thread."""

    def __init__(self, conn: sqlite3.Connection):
        super().__init__(name="projections-writer", daemon=True)
        self.conn = conn
        self.batches: queue.Queue[list[tuple[str, list]] | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None

    def run(self) -> None:
        while True:
            batch = self.batches.get()
            if batch is None:
                return
            if self.error is None:
                try:
                    for sql, rows in batch:
                        self.conn.executemany(sql, rows)
                except Exception as error:
                    self.error = error

    def put(self, batch: list[tuple[str, list]]) -> None:
        if self.error is not None:
            raise self.error
        self.batches.put(batch)

    def close(self) -> None:
        """Wait for every batch put; raise what the writer raised."""
        self.batches.put(None)
        self.join()
        if self.error is not None:
            raise self.error


def _rebuild_in_place(
    log: LogReader, path: Path, progress: Callable[[int], None] | None
) -> int:
    """Rebuild the read models inside the live file (other connections have it open)."""
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        _fresh(conn)
        conn.execute("COMMIT")
        return catch_up(log, conn, progress=progress)
    finally:
        conn.close()


def live(log: LogReader, directory: Path) -> sqlite3.Connection:
    """The live read models, caught up with the log."""
    path = directory / PROJECTIONS_DB
    conn = connect(path)
    try:
        position = _position(conn)
    except BaseException:
        conn.close()
        raise
    if not position and log.head() > REBUILD_AFTER:
        conn.close()  # missing or outdated, and a long log: build them in bulk
        rebuild(log, path)
        conn = connect(path)
    catch_up(log, conn)
    return conn


def replay(log: LogReader, conn: sqlite3.Connection, cut: Cut) -> int:
    """Build read models of the events the cut selects into an empty database;
    returns how many were applied."""
    head = log.head()
    if cut.at_position is not None and cut.at_position > head:
        raise LedgerError(
            f"the log ends at position {head}; --at-position {cut.at_position} is beyond it"
        )
    projector = Projector(as_of=cut.as_of)
    conn.execute("BEGIN")
    _fresh(conn, cut)
    upto = head if cut.at_position is None else cut.at_position
    applied, last_recorded = _replay_events(projector, conn, log.pages(0, upto), cut)
    # Deadlines are judged at the replay's time: the as-of time, else the knowledge cut.
    time = cut.as_of or cut.known_at
    if time is None and last_recorded is not None:
        time = instant(last_recorded)
    conn.execute(
        "UPDATE projection SET time = ? WHERE id = 1",
        (None if time is None else format_instant(time),),
    )
    conn.execute("COMMIT")
    return applied


def _replay_events(
    projector: Projector, conn: sqlite3.Connection, pages: Iterable[list[LogRow]], cut: Cut
) -> tuple[int, str | None]:
    """Apply the events of ``pages`` the cut selects (recorded by its knowledge time,
    in force at its as-of time), flushing every ``COMMIT_EVERY``; returns how many, and
    the ``recorded_at`` of the last event read."""
    applied = last = 0
    last_recorded = None
    for page in pages:
        for position, stream, version, event in page:
            if cut.known_at is not None and instant(event.recorded_at) > cut.known_at:
                projector.flush(conn, last)
                return applied, last_recorded
            last_recorded = event.recorded_at
            if not holds_at(event, cut.as_of):
                continue
            projector.apply_event(position, stream, version, event)
            last = position
            applied += 1
            if applied % COMMIT_EVERY == 0:
                projector.flush(conn, last)
    projector.flush(conn, last)
    return applied, last_recorded


@contextmanager
def read_models(log: LogReader, directory: Path, cut: Cut) -> Iterator[sqlite3.Connection]:
    """A connection to the read models the cut asks for: live, or a temporary replay."""
    if cut.live:
        conn = live(log, directory)
        try:
            yield conn
        finally:
            conn.close()
        return
    workdir = Path(tempfile.mkdtemp(prefix="arms-ledger-replay-"))
    conn = connect(workdir / PROJECTIONS_DB)
    try:
        replay(log, conn, cut)
        yield conn
    finally:
        conn.close()
        shutil.rmtree(workdir, ignore_errors=True)
