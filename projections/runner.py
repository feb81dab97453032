"""The read models' database, and keeping it current: ``catch_up``.

``catch_up`` applies the events after the position the read models have reached, in
transactions of at most ``commit_every`` events, each writing the rows and the new
position together: a crash loses at most the transaction in flight, and the next
catch-up resumes from the last commit, so no event is applied twice or skipped.
``BEGIN IMMEDIATE`` serializes concurrent catch-ups; one that finds the position moved
under it starts over from there. One that waits for another's transaction yields to it:
if the read models reach the log's head as it was when the wait began, there is nothing
left to do; it fails only when the holder makes no progress for ``STUCK`` seconds.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from arms_ledger.ledger import progress as reporting
from arms_ledger.ledger.domain.clock import format_instant
from arms_ledger.projections import schema
from arms_ledger.projections.source import LogReader, LogRow

if TYPE_CHECKING:
    from arms_ledger.projections.projector import Projector

COMMIT_EVERY = 10_000
STUCK = 30.0  # seconds a waiting catch-up allows another's transaction without progress
WAIT_SLICE_MS = 200  # how long each try for the write lock waits before looking again


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


LIVE = Cut()  # the live read models (a Cut is immutable: one serves every call)


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    # The read models can be rebuilt from the log: a power loss may cost the last
    # transactions (caught up again), never consistency.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def fresh(
    conn: sqlite3.Connection,
    cut: Cut = LIVE,
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


def position_of(conn: sqlite3.Connection) -> int | None:
    """The position reached, or None if the read models are missing or outdated."""
    try:
        row = conn.execute("SELECT schema_version, position FROM projection").fetchone()
    except sqlite3.OperationalError:
        return None
    if row is None or row[0] != schema.SCHEMA_VERSION:
        return None
    return row[1]


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken at once (``BEGIN IMMEDIATE``): committed at the end of
    the block, rolled back if it raises."""
    conn.execute("BEGIN IMMEDIATE")
    with _held(conn):
        yield


def _write_lock_unless_reached(conn: sqlite3.Connection, target: int) -> bool:
    """Take the write lock (``BEGIN IMMEDIATE``), or return False when, while another
    catch-up held it, the read models reached ``target``: that one applied what this
    one came for. Raises the store's "database is locked" only when the holder has not
    moved the read models for ``STUCK`` seconds (SQLite's busy wait alone is not fair:
    under load one of many waiting writers could starve past any fixed timeout)."""
    (timeout_ms,) = conn.execute("PRAGMA busy_timeout").fetchone()
    conn.execute(f"PRAGMA busy_timeout = {WAIT_SLICE_MS}")
    try:
        seen, since = position_of(conn), time.monotonic()
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return True
            except sqlite3.OperationalError as error:
                if "locked" not in str(error):
                    raise
                position = position_of(conn)
                if position is not None and position >= target:
                    return False
                if position != seen:
                    seen, since = position, time.monotonic()
                elif time.monotonic() - since > STUCK:
                    raise
    finally:
        conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")


@contextmanager
def _held(conn: sqlite3.Connection) -> Iterator[None]:
    """Commit the transaction open at the start of the block at its end; roll it back if
    the block raises."""
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def apply_pages(
    projector: Projector,
    pages: Iterable[list[LogRow]],
    progress: Callable[[int], None] | None,
    last: int = 0,
) -> tuple[int, int]:
    """Apply every event of ``pages``; returns (the last position, how many).

    ``progress(position)`` is called after each event is applied; the current phase of
    ``ledger.progress`` is told after each page."""
    apply = projector.apply_event
    applied = 0
    for page in pages:
        for position, stream, version, event in page:
            apply(position, stream, version, event)
            if progress is not None:
                progress(position)
        last = page[-1][0]
        applied += len(page)
        reporting.reach(last)
    return last, applied


class Kept:
    """What a catch-up loaded, kept for the next one on the same read models: the
    projector, its state as of the position it reached (a writer appending batch after
    batch passes one ``Kept`` to each ``catch_up``, so that a case is folded from its
    stream once, not once per batch it is touched in). Cases that ended are let go after
    each catch-up (few events follow one: an end-use check loads it again)."""

    def __init__(self) -> None:
        self.projector: Projector | None = None
        self.position: int | None = None

    def take(self) -> tuple[Projector | None, int | None]:
        """The projector and its position, forgotten until ``keep`` (a catch-up that
        fails midway leaves nothing behind: its projector holds rolled-back events)."""
        found = self.projector, self.position
        self.projector = self.position = None
        return found

    def keep(self, projector: Projector | None, position: int | None) -> None:
        if projector is not None:
            cases = projector.cases
            for case in [c for c, view in cases.items() if view.ended]:
                del cases[case]
        self.projector, self.position = projector, position


def catch_up(
    log: LogReader,
    conn: sqlite3.Connection,
    *,
    commit_every: int = COMMIT_EVERY,
    progress: Callable[[int], None] | None = None,
    kept: Kept | None = None,
) -> int:
    """``_catch_up``, its progress one phase of ``ledger.progress``: from the position
    reached (read here, outside the catch-up's transactions: a guess for the bar) to
    the head."""
    if not reporting.active():
        return _catch_up(log, conn, commit_every=commit_every, progress=progress, kept=kept)
    position = position_of(conn) or 0
    with reporting.phase("Updating the read models", log.head() - position, base=position):
        return _catch_up(log, conn, commit_every=commit_every, progress=progress, kept=kept)


def _catch_up(
    log: LogReader,
    conn: sqlite3.Connection,
    *,
    commit_every: int = COMMIT_EVERY,
    progress: Callable[[int], None] | None = None,
    kept: Kept | None = None,
) -> int:
    """Apply every event after the position reached; returns how many were applied.

    ``progress(position)`` is called after each event is applied (before its commit).
    ``kept``: the state an earlier catch-up on these read models left there, used if
    they are still at the position it reached; this one's is left there in turn.
    """
    applied = 0
    projector, expected = (None, None) if kept is None else kept.take()
    target = log.head()
    while True:
        if not _write_lock_unless_reached(conn, target):
            return applied  # another catch-up applied it (``kept`` stays empty)
        with _held(conn):
            position = position_of(conn)
            if position is None:  # missing, or made by another version: build anew
                fresh(conn)
                position = 0
            head = log.head()
            if position >= head:
                if kept is not None:
                    kept.keep(projector if position == expected else None, position)
                return applied
            # The projector is imported only when there is something to apply: a read
            # command on current read models does not load it.
            from arms_ledger.projections.loader import Stored
            from arms_ledger.projections.projector import Projector

            if projector is None or position != expected:
                projector = Projector(Stored(log, conn, position) if position else None)
            elif position:
                # What is not in memory yet loads as of here (cases let go by ``Kept``).
                projector.loader = Stored(log, conn, position)
            upto = min(head, position + commit_every)
            last, count = apply_pages(
                projector, log.pages(position, upto), progress, position
            )
            projector.flush(conn, last)
        applied += count
        expected = last
