"""Building the read models afresh: ``rebuild``.

A ``rebuild`` builds the read models in a new file beside the live one and then renames
it into place: the whole log in one transaction with no journal and no fsync (a crash
leaves only a half-built file that the next rebuild removes), the rows written a batch
at a time while the log is read a page at a time (memory stays bounded by the size of a
batch and the state of the partners, platforms, cases and queues, whatever the length
of the log), and the secondary indexes created once the rows are in. If another process
has the live file open, it is rebuilt in place instead, by catch-up.

A long log is built by three processes (``_Part``), each fed the stored rows of every
page as this one reads them. The cases and queues are split between this one and a
second by platform (``Partition``): each decodes and applies the partners', platforms'
and policies' events and its own cases' events, and builds its own platforms' queues
and cases; the second one's rows are merged in at the end and ``queue_changes``
renumbered (``_merge_side``). A third makes the ``audit_log`` rows and their indexes in
a file of its own, copied in at the end (SQLite copies a table and its indexes into an
empty one of the same shape page by page, without re-sorting).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from arms_ledger.ledger import progress as reporting
from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections import audit, eeum, schema
from arms_ledger.projections.projector import Projector
from arms_ledger.projections.runner import apply_pages, catch_up, connect, fresh
from arms_ledger.projections.source import LogReader, LogRow

if TYPE_CHECKING:
    from arms_ledger.projections.snapshots import AlongTheLog, SplitAlongTheLog

# A rebuild hands the rows of this many events to its writer at once (bounds memory).
FLUSH_EVENTS = 10_000
# Logs longer than this are built by three processes (``_Part``): below it, starting
# the others costs more than it saves.
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
    ``SPLIT_AFTER`` (read from a store) is built by three processes (the module's
    docstring).
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    parts: list[_Part] = []
    try:
        _throwaway(conn)
        conn.execute("BEGIN")
        fresh(conn, indexes=False)
        raw_pages = getattr(log, "raw_pages", None)
        split = raw_pages is not None and head > SPLIT_AFTER and _can_fork()
        from arms_ledger.projections.snapshots import AlongTheLog, SplitAlongTheLog

        # The snapshots along the log on the way (known before the sides fork).
        snap = AlongTheLog(log, path.parent, head)
        shares = SplitAlongTheLog(snap, path) if split and snap.usable else None
        if split:
            parts.append(_Part(Path(f"{path}{AUDIT_PART}"), _make_audit_log))
            parts.append(
                _Part(Path(f"{path}{CASES_PART}"), functools.partial(_make_side, shares))
            )
        writer = _Writer(conn)
        writer.start()
        try:
            with reporting.phase("Building the read models", head):
                if raw_pages is not None and split:
                    applied = _project_side(
                        _feeding(parts, raw_pages(0, head)), 0, writer, progress, shares
                    )
                else:
                    applied = _project_all(log.pages(0, head), writer, progress, snap=snap)
        finally:
            writer.close()  # waits for the last rows to be written
        with reporting.phase("Indexing the read models", 3):
            if split:
                audit_part, cases_part = parts
                cases_part.attach(conn, "cases_part")
                _merge_side(conn, "cases_part")
            schema.create_indexes(conn)
            reporting.advance(1)
            eeum.refresh(conn)
            if split:
                audit_part.attach(conn, "audit_part")
                conn.execute(f"INSERT INTO main.{AUDIT} SELECT * FROM audit_part.{AUDIT}")
            reporting.advance(1)
            conn.execute("COMMIT")
        for name in ("audit_part", "cases_part") if split else ():
            conn.execute(f"DETACH DATABASE {name}")  # after the commit
        if shares is not None:
            shares.store()
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        for part in parts:
            part.close()
        if shares is not None:
            shares.discard()
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
    snap: AlongTheLog | None = None,
) -> int:
    """Project the log's pages, handing the rows to ``writer`` a batch at a time
    (``FLUSH_EVENTS``), the ended cases put aside after each batch; returns how many
    events. ``audit=False``: without the ``audit_log`` rows (made elsewhere). ``snap``:
    the snapshots along the log it makes on the way (a page ends at each multiple of
    ``snapshots.EVERY``)."""
    projector = Projector(audit=audit)
    applied = last = pending = 0
    try:
        for page in pages:
            last, count = apply_pages(projector, [page], progress, last)
            if snap is not None and snap.wants(last):
                snap.take(projector, last, last)
            applied += count
            pending = _hand_over(writer, projector, last, pending + count)
        writer.put(projector.take(last))
    finally:
        projector.close()
    return applied


def _hand_over(writer: _Writer, projector: Projector, last: int, pending: int) -> int:
    """Once ``pending`` events are a batch (``FLUSH_EVENTS``), hand their rows to
    ``writer`` and put the ended cases aside; returns the events still pending."""
    if pending < FLUSH_EVENTS:
        return pending
    writer.put(projector.take(last, everything=False))
    projector.pack_ended()
    return 0


AUDIT_PART = "-audit"  # the audit_log process's file: beside the one being built
CASES_PART = "-cases"  # the other side's file (``Partition``)
_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder(list[tuple[int, str, int, bytes]]).decode


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


class _Part:
    """A process that builds part of the read models from the stored rows of the
    pages it is sent (``target(path, pages)``), in a file of its own at
    ``path``, which ``attach`` gives this one's connection once it is done.

    It is forked (it starts at once and needs nothing pickled), and touches nothing it
    inherits but the pipes: it opens its own file. The pages go through a pipe, so at
    most a page or two wait for it whatever the length of the log.
    """

    def __init__(self, path: Path, target: Callable[[str, Any], None]):
        self.path = path
        discard(path)
        context = multiprocessing.get_context("fork")
        self._receive, self._send = context.Pipe(duplex=False)
        self._result, result = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_answering,
            args=(target, str(path), self._receive, result),
            name=f"projections{path.name[path.name.rfind('-') :]}",
            daemon=True,
        )
        self.process.start()
        self._receive.close()  # the child's end
        result.close()
        self._sent_all = False

    def put(self, data: bytes) -> None:
        """Send a page (packed stored rows); b"" is the end."""
        try:
            self._send.send_bytes(data)
        except OSError:  # it stopped reading: it failed
            self._raise_failure()
            raise
        if not data:
            self._sent_all = True

    def attach(self, conn: sqlite3.Connection, name: str) -> None:
        """Wait for the process, then attach its file to ``conn`` as ``name``
        (detached by the caller after its commit: SQLite detaches no database a
        transaction uses)."""
        assert self._sent_all
        self._raise_failure()
        conn.execute(f"ATTACH DATABASE ? AS {name}", (str(self.path),))

    def _raise_failure(self) -> None:
        """Wait for the process's answer: raise what it failed with, if it did."""
        try:
            failure = self._result.recv()
        except EOFError:
            self.process.join()
            failure = (
                f"the rebuild's process {self.process.name} ended with exit code "
                f"{self.process.exitcode}"
            )
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


def _answering(
    target: Callable[[str, Any], None], path: str, pages: Any, result: Any
) -> None:
    """A ``_Part``'s process: ``target(path, pages)``, then the answer on ``result``:
    "" when it is done, else its error (none when the rebuild stopped sending)."""
    try:
        target(path, pages)
    except EOFError:  # the rebuild stopped: nothing to answer
        return
    except BaseException as error:
        result.send(f"{error}" or type(error).__name__)
        return
    result.send("")


def _feeding(parts: list[_Part], raw_pages: Iterator[list[tuple]]) -> Iterator[list]:
    """The stored rows of ``raw_pages``, each page sent to every part first."""
    for rows in raw_pages:
        data = _pack(rows)
        for part in parts:
            part.put(data)
        yield rows
    for part in parts:
        part.put(b"")  # the end


def _received(pages: Any) -> Iterator[list[tuple[int, str, int, bytes]]]:
    """The pages a ``_Part`` is sent, until the end."""
    while data := pages.recv_bytes():
        yield _unpack(data)


class Partition:
    """Which of two processes projects each case: the one its platform is given to,
    when the platform's first case is filed, the side that has applied fewer case
    events so far. Both sides see every event and decide alike; each decodes and
    applies every event that is not a case's, and the events of its own cases.

    The queues, their changes and numbers are a platform's; the cases, deliveries
    and end-use checks a case's: each side builds them for its own. Partners,
    platforms and policies are built by both, kept by side 0.
    """

    def __init__(self, side: int):
        self.side = side
        self.platforms: dict[str, int] = {}
        self.streams: dict[str, int] = {}  # case streams: side
        self.load = [0, 0]  # case events applied by each side

    def select(self, rows: list[tuple[int, str, int, bytes]]) -> list[LogRow]:
        """The decoded events of ``rows`` this side applies."""
        decode = ev.decoder.decode
        streams, load, mine = self.streams, self.load, self.side
        out: list[LogRow] = []
        for position, stream, version, state in rows:
            if stream[:5] != "case:":
                out.append((position, stream, version, decode(state)))
                continue
            side = streams.get(stream)
            event = None
            if side is None:  # a case's first event: its filing names the platform
                event = decode(state)
                side = streams[stream] = self._side_of(event)
            load[side] += 1
            if side == mine:
                if event is None:
                    event = decode(state)
                out.append((position, stream, version, event))
        return out

    def holds(self, platform: str) -> bool:
        """Whether side 1 holds ``platform``'s queue (so far)."""
        return self.platforms.get(platform) == 1

    def _side_of(self, filed: ev.Event) -> int:
        if not isinstance(filed, ev.CaseFiled):
            return 0  # not a case's first event: side 0 applies it, and fails on it
        side = self.platforms.get(filed.platform)
        if side is None:
            load = self.load
            side = self.platforms[filed.platform] = 0 if load[0] <= load[1] else 1
        return side


def _project_side(
    raw_pages: Iterator[list[tuple[int, str, int, bytes]]],
    side: int,
    writer: _Writer,
    progress: Callable[[int], None] | None = None,
    shares: SplitAlongTheLog | None = None,
) -> int:
    """``_project_all`` of one side of a ``Partition``, without ``audit_log``; returns
    how many events were read (those of both sides). ``shares``: the side's part of
    the snapshots along the log, kept on the way."""
    projector = Projector(audit=False)
    partition = Partition(side)
    apply = projector.apply_event
    read = last = pending = 0
    try:
        for rows in raw_pages:
            for position, stream, version, event in partition.select(rows):
                apply(position, stream, version, event)
            if progress is not None:
                for row in rows:
                    progress(row[0])
            last = rows[-1][0]
            reporting.reach(last)
            if shares is not None and shares.wants(last):
                shares.take(side, projector, last, partition.holds)
            read += len(rows)
            pending = _hand_over(writer, projector, last, pending + len(rows))
        writer.put(projector.take(last))
    finally:
        projector.close()
    return read


def _make_side(shares: SplitAlongTheLog | None, path: str, pages: Any) -> None:
    """Side 1 of a ``Partition``, in its own process: its read models, into a new
    file at ``path`` (no secondary indexes), and its share of the snapshots along the
    log."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        _throwaway(conn)
        conn.execute("BEGIN")
        fresh(conn, indexes=False)
        writer = _Writer(conn)
        writer.start()
        try:
            _project_side(_received(pages), 1, writer, shares=shares)
        finally:
            writer.close()
        conn.execute("COMMIT")
    finally:
        conn.close()


# What side 1 builds and side 0 takes from it: every row of these tables; the
# raised_flags of case events; queue_moves and queue_shifts renumbered (``_merge_side``).
SIDE_TABLES = (
    schema.CASES,
    schema.DELIVERIES,
    schema.END_USE_CHECKS,
    schema.QUEUE,
    schema.QUEUE_CASES,
)


def _merge_side(conn: sqlite3.Connection, part: str) -> None:
    """Take side 1's rows (attached as ``part``) into the read models side 0 built.

    ``queue_changes`` numbers its rows one per case in the order of the events, and
    within one event by platform: each side numbered its own from 1, so both sides'
    ``queue_moves`` and ``queue_shifts`` get their ids again, in that order."""
    for table in SIDE_TABLES:
        conn.execute(f'INSERT INTO main."{table.name}" SELECT * FROM {part}."{table.name}"')
    # Both sides flag the events of no case (identically); each its own cases' events.
    # In the order of the key, into an empty table: full pages (``raised_flags`` has no
    # rowid, its rows are its key's B-tree).
    flags = schema.FLAGS.name
    conn.execute(f"CREATE TEMP TABLE side0 AS SELECT * FROM main.{flags}")
    conn.execute(f"DELETE FROM main.{flags}")
    conn.execute(
        f"INSERT OR IGNORE INTO main.{flags} SELECT * FROM (SELECT * FROM temp.side0 "
        f"UNION ALL SELECT * FROM {part}.{flags}) ORDER BY event_position, kind"
    )
    conn.execute("DROP TABLE temp.side0")
    moves, shifts = schema.QUEUE_MOVES.name, schema.QUEUE_SHIFTS.name
    conn.execute(
        "CREATE TEMP TABLE change_ids (side INTEGER, local INTEGER, id INTEGER, "
        "PRIMARY KEY (side, local)) WITHOUT ROWID"
    )
    runs = " UNION ALL ".join(
        f"SELECT {side}, id, event_position, platform, {n} FROM {db}.{table}"
        for side, db in ((0, "main"), (1, part))
        for table, n in ((moves, "1"), (shifts, "cases"))
    )
    conn.execute(
        f"WITH runs (side, local, event_position, platform, n) AS ({runs}) "
        "INSERT INTO temp.change_ids SELECT side, local, "
        "sum(n) OVER (ORDER BY event_position, platform, side, local "
        "ROWS UNBOUNDED PRECEDING) - n + 1 FROM runs"
    )
    for table in (schema.QUEUE_MOVES, schema.QUEUE_SHIFTS):
        rest = ", ".join(f'r."{c}"' for c in table.names[1:])
        conn.execute(f"CREATE TEMP TABLE side0 AS SELECT * FROM main.{table.name}")
        conn.execute(f"DELETE FROM main.{table.name}")
        conn.execute(
            f"INSERT INTO main.{table.name} SELECT c.id, {rest} FROM ("
            f"SELECT 0 AS side, * FROM temp.side0 UNION ALL "
            f"SELECT 1, * FROM {part}.{table.name}) AS r "
            "JOIN temp.change_ids AS c ON c.side = r.side AND c.local = r.id "
            "ORDER BY c.id"
        )
        conn.execute("DROP TABLE temp.side0")
    conn.execute("DROP TABLE temp.change_ids")


AUDIT = schema.AUDIT_LOG.name


def _make_audit_log(path: str, pages: Any) -> None:
    """A ``_Part`` of a rebuild: the ``audit_log`` of the pages received, with its
    indexes, into a new file at ``path``."""
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
        for rows in _received(pages):
            conn.executemany(
                insert, [(row(n, s, v, decode(state))) for n, s, v, state in rows]
            )
        schema.create_indexes(conn, {(AUDIT, c) for c in schema.AUDIT_LOG.indexes})
        conn.execute("COMMIT")
    finally:
        conn.close()


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
