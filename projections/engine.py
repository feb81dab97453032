"""Bringing the read models up to date: catch-up, rebuild, and replays of the past.

The live read models sit in ``projections.db`` beside the event store. ``catch_up``
applies the events after the position they have reached, in transactions of at most
``commit_every`` events, each writing the rows and the new position together: a crash
loses at most the transaction in flight, and the next catch-up resumes from the last
commit, so no event is applied twice or skipped. ``BEGIN IMMEDIATE`` serializes
concurrent catch-ups; one that finds the position moved under it starts over from there.

A replay (``--as-of``, ``--known-at``, ``--at-position``) builds its own read models in a
temporary file from the selected events and never touches the live ones.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import msgspec

from ledger.application import Ledger
from ledger.clock import format_instant
from ledger.decision import effective, instant
from ledger.errors import LedgerError
from projections import schema
from projections.projector import Projector, Stored

PROJECTIONS_DB = "projections.db"
COMMIT_EVERY = 10_000


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


def _fresh(conn: sqlite3.Connection, cut: Cut = Cut(), time: str | None = None) -> None:
    """Drop whatever is there and create empty read models (in a transaction)."""
    schema.drop(conn)
    schema.create(conn)
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


def catch_up(
    ledger: Ledger,
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
        conn.execute("BEGIN IMMEDIATE")
        try:
            position = _position(conn)
            if position is None:  # missing, or made by another version: build anew
                _fresh(conn)
                position = 0
            head = ledger.head()
            if position >= head:
                conn.execute("COMMIT")
                return applied
            if projector is None or position != expected:
                projector = Projector(Stored(ledger, conn, position) if position else None)
            last = position
            for recorded in ledger.read(after=position, upto=min(head, position + commit_every)):
                projector.apply(recorded)
                last = recorded.position
                applied += 1
                if progress is not None:
                    progress(last)
            projector.flush(conn, last)
            conn.execute("COMMIT")
            expected = last
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def rebuild(
    ledger: Ledger, path: Path, progress: Callable[[int], None] | None = None
) -> int:
    """Drop the read models and replay the whole log into them."""
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        _fresh(conn)
        conn.execute("COMMIT")
        return catch_up(ledger, conn, progress=progress)
    finally:
        conn.close()


def live(ledger: Ledger, directory: Path) -> sqlite3.Connection:
    """The live read models, caught up with the log."""
    conn = connect(directory / PROJECTIONS_DB)
    catch_up(ledger, conn)
    return conn


def replay(ledger: Ledger, conn: sqlite3.Connection, cut: Cut) -> int:
    """Build read models of the events the cut selects into an empty database."""
    if cut.at_position is not None and cut.at_position > ledger.head():
        raise LedgerError(
            f"the log ends at position {ledger.head()}; --at-position {cut.at_position} "
            "is beyond it"
        )
    projector = Projector()
    applied = last = 0
    last_recorded = None
    conn.execute("BEGIN")
    _fresh(conn, cut)
    for recorded in ledger.read(upto=cut.at_position):
        event = recorded.event
        if cut.known_at is not None and instant(event.recorded_at) > cut.known_at:
            break
        last_recorded = event.recorded_at
        if cut.as_of is not None and effective(event) > cut.as_of:
            continue
        projector.apply(recorded)
        last = recorded.position
        applied += 1
        if applied % COMMIT_EVERY == 0:
            projector.flush(conn, last)
    projector.flush(conn, last)
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


@contextmanager
def read_models(ledger: Ledger, directory: Path, cut: Cut) -> Iterator[sqlite3.Connection]:
    """A connection to the read models the cut asks for: live, or a temporary replay."""
    if cut.live:
        conn = live(ledger, directory)
        try:
            yield conn
        finally:
            conn.close()
        return
    workdir = Path(tempfile.mkdtemp(prefix="arms-ledger-replay-"))
    conn = connect(workdir / PROJECTIONS_DB)
    try:
        replay(ledger, conn, cut)
        yield conn
    finally:
        conn.close()
        shutil.rmtree(workdir, ignore_errors=True)
