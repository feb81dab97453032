"""Bringing the read models up to date: catch-up, rebuild, and replays of the past.

The live read models sit in ``projections.db`` beside the event store: ``live`` catches
them up (``runner.catch_up``), or rebuilds them (``rebuild.rebuild``) when they are far
behind (``bulk``: missing, or after a bulk append longer than the log was). ``catch_up``
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

import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from arms_ledger.ledger import progress as reporting
from arms_ledger.ledger.domain.clock import format_instant, instant
from arms_ledger.ledger.errors import (
    DAMAGED_READ_MODELS,
    LedgerError,
    failure_kind,
    storage,
)
from arms_ledger.projections.runner import (
    COMMIT_EVERY,
    Cut,
    catch_up,
    connect,
    fresh,
    position_of,
)
from arms_ledger.projections.source import LogReader, LogRow

if TYPE_CHECKING:
    from arms_ledger.projections.projector import Projector

__all__ = [
    "COMMIT_EVERY",
    "PROJECTIONS_DB",
    "Cut",
    "catch_up",
    "connect",
    "live",
    "read_models",
    "rebuild",
    "replay",
]

PROJECTIONS_DB = "projections.db"
# A replay that fails for want of space says where it was being built.
REPLAY_SPACE = "free space in the temporary directory ($TMPDIR) and run the command again"
# live(): read models more than this many events behind the log, and behind by more
# than they hold, are rebuilt rather than caught up (``bulk``).
REBUILD_AFTER = 50_000


def bulk(position: int, head: int) -> bool:
    """Whether read models at ``position`` are better rebuilt than caught up to ``head``:
    more than ``REBUILD_AFTER`` events behind, and more than they hold (missing read
    models, or a bulk append of a history at least as long as the log). A rebuild
    applies each event once, writes the rows without indexes and builds those at the
    end, several times faster per event than a catch-up, which updates indexed tables
    and reloads the state of every case it touches; so a rebuild of the whole log costs
    less than catching up a delta longer than the log."""
    behind = head - position
    return behind > REBUILD_AFTER and behind > position


# What only a rebuild, a replay or a catch-up with events to apply needs (the projector,
# the domain's rules of time) is imported where it is used: a read command on current
# read models loads none of it.


def rebuild(
    log: LogReader, path: Path, progress: Callable[[int], None] | None = None
) -> int:
    """Drop the read models at ``path`` and replay the whole log into them; returns how
    many events (``rebuild.rebuild``)."""
    from arms_ledger.projections import rebuild as rebuilding

    return rebuilding.rebuild(log, path, progress)


def live(
    log: LogReader, directory: Path, notice: Callable[[str], None] | None = None
) -> sqlite3.Connection:
    """The live read models, caught up with the log. Damaged ones are rebuilt from the
    log (they hold nothing else), and ``notice`` is told; every other failure of their
    file is one ``StorageError`` naming it."""
    path = directory / PROJECTIONS_DB
    with storage(f"the read models {path}", DAMAGED_READ_MODELS):
        try:
            conn, position = _open(path)
        except sqlite3.DatabaseError as error:
            if failure_kind(error) != "damaged":
                raise
            from arms_ledger.projections.rebuild import discard

            discard(path)
            rebuild(log, path)
            if notice is not None:
                notice(
                    f"the read models {path} were damaged ({error}); rebuilt from the log"
                )
            conn, position = _open(path)
        try:
            if bulk(position or 0, log.head()):
                conn.close()  # missing, outdated or far behind: build them in bulk
                rebuild(log, path)  # (making snapshots along the log on the way)
                conn = connect(path)
                position = position_of(conn)
            applied = catch_up(log, conn)
            if applied and position:
                _keep_up(log, directory, position, position + applied)
        except BaseException:
            conn.close()
            raise
    return conn


def _keep_up(log: LogReader, directory: Path, before: int, head: int) -> None:
    """The snapshots along the log, extended when the catch-up passed a multiple of
    ``snapshots.EVERY`` (``snapshots.keep_up``); arithmetic only otherwise."""
    from arms_ledger.projections.snapshots import EVERY

    if head // EVERY != before // EVERY:
        from arms_ledger.projections.snapshots import keep_up

        keep_up(log, directory, before, head)


def _open(path: Path) -> tuple[sqlite3.Connection, int | None]:
    conn = connect(path)
    try:
        return conn, position_of(conn)
    except BaseException:
        conn.close()
        raise


def replay(
    log: LogReader, conn: sqlite3.Connection, cut: Cut, projector: Projector | None = None
) -> int:
    """Build read models of the events the cut selects into an empty database;
    returns how many were applied. ``projector`` (a new one for the cut's time if not
    given) is the one applying them: a what-if keeps it to apply one more event."""
    head = log.head()
    if cut.at_position is not None and cut.at_position > head:
        raise LedgerError(
            f"the log ends at position {head}; --at-position {cut.at_position} is beyond it"
        )
    from arms_ledger.projections.projector import Projector

    projector = projector or Projector(as_of=cut.as_of)
    conn.execute("BEGIN")
    fresh(conn, cut)
    upto = head if cut.at_position is None else cut.at_position
    with reporting.phase("Replaying the log", upto):
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
    from arms_ledger.ledger.domain.facts import holds_at

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
        if page:
            reporting.reach(page[-1][0])
    projector.flush(conn, last)
    return applied, last_recorded


@contextmanager
def read_models(
    log: LogReader,
    directory: Path,
    cut: Cut,
    notice: Callable[[str], None] | None = None,
    answers: Iterable[str] | None = None,
    platform: str | None = None,
) -> Iterator[sqlite3.Connection]:
    """A connection to the read models the cut asks for: live, or a temporary replay.

    ``answers``: the only tables the caller reads. When a snapshot holds them all
    (``snapshots.ANSWERS``), the replay starts from the nearest snapshot and builds only
    those tables (the others are dropped); otherwise it replays every table from the
    first event. ``platform``: the caller reads only that platform's rows of ``queue``
    (a replay from a snapshot writes only those)."""
    if cut.live:
        conn = live(log, directory, notice)
        try:
            yield conn
        finally:
            conn.close()
        return
    workdir = Path(tempfile.mkdtemp(prefix="arms-ledger-replay-"))
    try:
        with storage(f"the replay's read models in {workdir}", REPLAY_SPACE):
            conn = connect(workdir / PROJECTIONS_DB)
            try:
                if not _from_snapshot(log, directory, conn, cut, notice, answers, platform):
                    replay(log, conn, cut)
                yield conn
            finally:
                conn.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _from_snapshot(
    log: LogReader,
    directory: Path,
    conn: sqlite3.Connection,
    cut: Cut,
    notice: Callable[[str], None] | None,
    answers: Iterable[str] | None,
    platform: str | None = None,
) -> bool:
    """Whether the replay was built from a snapshot (``snapshots.replay``)."""
    if answers is None:
        return False
    from arms_ledger.projections import snapshots

    if not set(answers) <= snapshots.ANSWERS:
        return False

    def catch_up_live() -> None:
        live(log, directory, notice).close()

    applied = snapshots.replay(
        log, directory, conn, cut, notice, catch_up=catch_up_live, platform=platform
    )
    return applied is not None
