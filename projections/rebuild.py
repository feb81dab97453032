"""Building the read models afresh: ``rebuild``.

A ``rebuild`` builds the read models in a new file beside the live one and then renames
it into place: the whole log in one transaction with no journal and no fsync (a crash
leaves only a half-built file that the next rebuild removes), the rows written a batch
at a time while the log is read a page at a time (memory stays bounded by the size of a
batch and the state of the partners, platforms, cases and queues, whatever the length
of the log), and the secondary indexes created once the rows are in. If another process
has the live file open, it is rebuilt in place instead, by catch-up.

A long log is built by two processes, one per core: this one projects every read model
but ``audit_log``, a second one (``_AuditProcess``, fed the stored rows of each page as
they are read) makes the ``audit_log`` rows and their indexes in a file of its own,
which is copied in at the end (SQLite copies a table and its indexes into an empty one
of the same shape page by page, without re-sorting).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
from arms_ledger.ledger import progress as reporting
from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections import audit, eeum, schema
from arms_ledger.projections.projector import Projector
from arms_ledger.projections.runner import apply_pages, catch_up, connect, fresh
from arms_ledger.projections.source import LogReader

# A rebuild hands the rows of this many events to its writer at once (bounds memory).
FLUSH_EVENTS = 10_000
# Logs longer than this are built by two processes (``_AuditProcess``): below it,
# starting the second one costs more than it saves.
SPLIT_AFTER = 20_000


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
    by the writer as it inserts; the others are created at the end. A log longer than
    ``SPLIT_AFTER`` (read from a store) has its ``audit_log`` made by a second process.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    second: _AuditProcess | None = None
    try:
        _throwaway(conn)
        conn.execute("BEGIN")
        fresh(conn, indexes=False)
        raw_pages = getattr(log, "raw_pages", None)
        if raw_pages is not None and head > SPLIT_AFTER and _can_fork():
            second = _AuditProcess(Path(f"{path}{AUDIT_PART}"))
        writer = _Writer(conn)
        writer.start()
        try:
            pages: Iterator[list[Any]] = (
                log.pages(0, head)
                if second is None or raw_pages is None
                else second.feeding(raw_pages(0, head))
            )
            with reporting.phase("Building the read models", head):
                applied = _project_all(pages, writer, progress, audit=second is None)
        finally:
            writer.close()  # waits for the last rows to be written
        with reporting.phase("Indexing the read models", 3):
            schema.create_indexes(conn)
            reporting.advance(1)
            eeum.refresh(conn)
            if second is not None:
                second.copy_into(conn)
            reporting.advance(1)
            conn.execute("COMMIT")
        if second is not None:
            second.detach(conn)
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        if second is not None:
            second.close()
        conn.close()
    return applied


def _throwaway(conn: sqlite3.Connection) -> None:
    """A file nobody else sees until it is complete: no journal, no fsync."""
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -32768")  # 32 MiB, also for the index sorts
    conn.execute("PRAGMA threads = 2")  # a helper thread for those sorts


def _project_all(
    pages: Iterator[list[Any]],
    writer: _Writer,
    progress: Callable[[int], None] | None,
    *,
    audit: bool = True,
) -> int:
    """Project the log's pages, handing the rows to ``writer`` a batch at a time
    (``FLUSH_EVENTS``), the ended cases put aside after each batch; returns how many
    events. ``audit=False``: without the ``audit_log`` rows (made elsewhere)."""
    projector = Projector(audit=audit)
    applied = last = pending = 0
    try:
        for page in pages:
            last, count = apply_pages(projector, [page], progress, last)
            applied += count
            pending += count
            if pending >= FLUSH_EVENTS:
                writer.put(projector.take(last, everything=False))
                projector.pack_ended()
                pending = 0
        writer.put(projector.take(last))
    finally:
        projector.close()
    return applied


AUDIT_PART = "-audit"  # the second process's file: beside the one being built
_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(list[tuple[int, str, int, bytes]]).decode


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class _AuditProcess:
    """A second process that makes the ``audit_log`` rows of the pages it is sent, in
    a file of its own at ``path``, and then that table's indexes; ``copy_into`` copies
    the table with its indexes into the read models being built.

    It is forked (it starts at once and needs nothing pickled), and touches nothing it
    inherits but the pipes: it opens its own file. The pages go through a pipe, so at
    most a page or two wait for it whatever the length of the log.
    """

    def __init__(self, path: Path):
        self.path = path
        discard(path)
        context = multiprocessing.get_context("fork")
        self._receive, self._send = context.Pipe(duplex=False)
        self._result, result = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_make_audit_log,
            args=(str(path), self._receive, result),
            name="projections-audit",
            daemon=True,
        )
        self.process.start()
        self._receive.close()  # the child's end
        result.close()
        self._sent_all = False

    def feeding(self, raw_pages: Iterator[list[tuple]]) -> Iterator[list[Any]]:
        """The pages of ``raw_pages`` decoded, each sent to the process first."""
        decode = ev.decoder.decode
        for rows in raw_pages:
            self._put(_pack(rows))
            yield [
                (n, stream, version, decode(state)) for n, stream, version, state in rows
            ]
        self._put(b"")  # the end
        self._sent_all = True

    def _put(self, data: bytes) -> None:
        try:
            self._send.send_bytes(data)
        except OSError:  # it stopped reading: it failed
            self._raise_failure()
            raise

    def copy_into(self, conn: sqlite3.Connection) -> None:
        """Wait for the process, then copy its ``audit_log`` into ``conn``'s (empty,
        with the same columns and indexes: SQLite's transfer, no re-sorting)."""
        assert self._sent_all
        self._raise_failure()
        conn.execute("ATTACH DATABASE ? AS audit_part", (str(self.path),))
        conn.execute(f"INSERT INTO main.{AUDIT} SELECT * FROM audit_part.{AUDIT}")

    @staticmethod
    def detach(conn: sqlite3.Connection) -> None:
        """After the commit (SQLite detaches no database a transaction uses)."""
        conn.execute("DETACH DATABASE audit_part")

    def _raise_failure(self) -> None:
        """Wait for the process's answer: raise what it failed with, if it did."""
        try:
            failure = self._result.recv()
        except EOFError:
            self.process.join()
            failure = f"the audit_log process ended with exit code {self.process.exitcode}"
        if failure:
            raise sqlite3.OperationalError(failure)

    def close(self) -> None:
        """Stop the process if it is still running (this one failed), remove its file."""
        self._send.close()  # it reads the end of its input and stops
        self.process.join(timeout=60)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self._result.close()
        discard(self.path)


AUDIT = schema.AUDIT_LOG.name


def _make_audit_log(path: str, pages: Any, result: Any) -> None:
    """The second process of a rebuild (``_AuditProcess``): the ``audit_log`` of the
    pages received, into a new file at ``path``; answers "" when done, else the error."""
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            _throwaway(conn)
            conn.execute("BEGIN")
            schema.create(conn, indexes=False)
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                "AND sql IS NOT NULL",
                (AUDIT,),
            ).fetchall():  # made after the rows are in: one sort each
                conn.execute(f'DROP INDEX "{name}"')
            insert = schema.upsert_sql(schema.AUDIT_LOG)
            row, decode = audit.audit_row, ev.decoder.decode
            while data := pages.recv_bytes():
                conn.executemany(
                    insert,
                    [(row(n, s, v, decode(state))) for n, s, v, state in _unpack(data)],
                )
            schema.create_indexes(conn, {(AUDIT, c) for c in schema.AUDIT_LOG.indexes})
            conn.execute("COMMIT")
        finally:
            conn.close()
    except EOFError:  # the rebuild stopped: nothing to answer
        return
    except BaseException as error:
        result.send(f"{error}" or type(error).__name__)
        return
    result.send("")


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
