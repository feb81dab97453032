"""Building the read models afresh: ``rebuild``.

A ``rebuild`` builds the read models in a new file beside the live one and then renames
it into place: the whole log in one transaction with no journal and no fsync (a crash
leaves only a half-built file that the next rebuild removes), the rows written a batch
at a time while the log is read a page at a time (memory stays bounded by the size of a
batch and the state of the partners, platforms, cases and queues, whatever the length
of the log), and the secondary indexes created once the rows are in. If another process
has the live file open, it is rebuilt in place instead, by catch-up.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from arms_ledger.projections import schema
from arms_ledger.projections.projector import Projector
from arms_ledger.projections.runner import apply_pages, catch_up, connect, fresh
from arms_ledger.projections.source import LogReader

# A rebuild hands the rows of this many events to its writer at once (bounds memory).
FLUSH_EVENTS = 10_000


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
    discard(building)
    try:
        applied = _build(log, building, log.head(), progress)
        if not _unused(path):  # opened meanwhile: replacing it would break its readers
            discard(building)
            return _rebuild_in_place(log, path, progress)
        os.replace(building, path)
    except BaseException:
        discard(building)
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


def discard(path: Path) -> None:
    """Remove a read-models file and its journal, WAL and shared-memory files."""
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
        fresh(conn, indexes=False)
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
            last, count = apply_pages(projector, [page], progress, last)
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
        fresh(conn)
        conn.execute("COMMIT")
        return catch_up(log, conn, progress=progress)
    finally:
        conn.close()
