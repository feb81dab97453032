"""The storage boundary of a ledger directory: what it remembers of its log outside the
store, and the checks on open.

- The newest checkpoint the ledger stored is kept in the directory (``checkpoint``,
  written atomically after every stored checkpoint), so a store that was wiped, shortened,
  rolled back or replaced by another history is refused when the ledger opens
  (``check_log``), as are read models ahead of the log.
- A SQLite store is never created by a read (``check_sqlite_store``).
- The machine's clock far from the log's last stamp is reported (``check_clock``).
"""

from __future__ import annotations

import base64
import os
import sqlite3
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from arms_ledger.ledger.domain import clock
from arms_ledger.ledger.domain.clock import format_instant, instant
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.ledger.transparency import merkle
from arms_ledger.ledger.transparency.note import Checkpoint, NoteError, parse_note

if TYPE_CHECKING:
    from arms_ledger.ledger.store.reading import LogReading

EVENTS_DB = "events.db"
PROJECTIONS_DB = "projections.db"  # the read models (projections.engine)
LATEST_CHECKPOINT = "checkpoint"  # the newest checkpoint stored, outside the store
CLOCK_BEHIND = timedelta(minutes=5)
CLOCK_AHEAD = timedelta(days=366)
CLOCK_OVERRIDE = "ARMS_LEDGER_ALLOW_CLOCK"
RECOVER = (
    "restore the store from a backup that holds them, or start again from an export "
    "with `arms-ledger init --from-export DIR`"
)


class LogMismatch(LedgerError):
    """The store does not hold the log the directory remembers."""


class ReadModelsAhead(LedgerError):
    """The read models reached a position past the log's end."""


class ClockSkew(LedgerError):
    """The machine's clock is far from the log's last stamp."""


def sqlite_uri(db: Path, *, write: bool) -> str:
    """The URI that opens the existing SQLite file ``db`` without creating anything.

    Writable (the directory and the file): ``mode=rw``, which never creates the file
    (the WAL files it makes are removed when it closes). Otherwise ``mode=ro``; a
    WAL database can only be read that way while its ``-wal`` file exists (a writer has
    it open), so without one the file is read as ``immutable`` (no one is writing it).
    """
    if write or (os.access(db, os.W_OK) and os.access(db.parent, os.W_OK)):
        return "file:" + quote(str(db.resolve())) + "?mode=rw"
    return read_only_uri(db)


def read_only_uri(db: Path) -> str:
    """The URI that reads the SQLite file ``db`` and writes nothing, not even a WAL
    file: ``mode=ro`` while its ``-wal`` file exists, else ``immutable``."""
    target = "file:" + quote(str(db.resolve()))
    if Path(f"{db}-wal").exists():
        return f"{target}?mode=ro"
    return f"{target}?mode=ro&immutable=1"


def check_sqlite_store(path: Path) -> None:
    """A SQLite store that is missing or empty is refused before it is opened (opening
    would create it)."""
    db = path / EVENTS_DB
    what = None
    if not db.exists():
        what = "is missing"
    elif db.stat().st_size == 0:
        what = "is empty (0 bytes)"
    else:
        try:
            conn = sqlite3.connect(sqlite_uri(db, write=False), uri=True)
            try:
                found = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'stored_events'"
                ).fetchone()[0]
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            return  # damaged: the open that follows reports it (a storage failure)
        if not found:
            what = "holds no events table"
    if what is not None:
        raise LogMismatch(
            f"the event store {db} {what}; {expected(path)}; {RECOVER}".replace(
                " that holds them", ""
            )
        )


def read_checkpoint(path: Path) -> tuple[str, Checkpoint] | None:
    """The newest checkpoint the directory keeps (``checkpoint``), if any."""
    try:
        note = (path / LATEST_CHECKPOINT).read_text()
    except FileNotFoundError:
        return None
    try:
        text, _ = parse_note(note)
        return note, Checkpoint.parse(text)
    except NoteError as error:
        raise LedgerError(f"{path / LATEST_CHECKPOINT}: {error}") from None


def keep_checkpoint(path: Path, note: str) -> None:
    """Keep ``note`` as the directory's newest checkpoint, unless it keeps a larger one:
    written to a temporary file, flushed to disk, then renamed over the old one."""
    try:
        size = Checkpoint.parse(parse_note(note)[0]).size
        kept = read_checkpoint(path)
    except (NoteError, LedgerError):
        kept = None
        size = 0
    if kept is not None and kept[1].size > size:
        return
    fd, temp = tempfile.mkstemp(prefix=".checkpoint-", dir=path)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(note)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path / LATEST_CHECKPOINT)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_models_position(path: Path) -> int | None:
    """The position the read models in ``path`` reached (None: none there), read
    without creating or writing anything."""
    db = path / PROJECTIONS_DB
    if not db.exists() or db.stat().st_size == 0:
        return None
    try:
        conn = sqlite3.connect(read_only_uri(db), uri=True)
        try:
            row = conn.execute("SELECT position FROM projection").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None  # missing tables or a damaged file: the read side says so
    return None if row is None else int(row[0])


def expected(path: Path) -> str:
    """What the directory remembers of its log, as a clause of a message."""
    kept = read_checkpoint(path)
    position = read_models_position(path)
    parts = []
    if kept is not None:
        cp = kept[1]
        parts.append(
            f"the ledger signed a checkpoint of {cp.size:,} events "
            f"(root {merkle_b64(cp.root)})"
        )
    if position:
        parts.append(f"its read models reached position {position:,}")
    if not parts:
        return "no checkpoint or read models record how long its log was"
    return " and ".join(parts)


def merkle_b64(root: bytes) -> str:
    return base64.b64encode(root).decode()


def check_log(path: Path, log: LogReading) -> None:
    """Refuse a store that does not hold the log the directory remembers: shorter than
    its newest checkpoint (emptied, rolled back), another root at that size (a fork), or
    shorter than the position its read models reached. ``log`` is the store's recorder,
    or the log opened for reading only (``directory.open_log``)."""
    where = log.store_label
    kept = read_checkpoint(path)
    size = log.tree_size()
    position = read_models_position(path) or 0
    if kept is not None:
        cp = kept[1]
        if size < cp.size:
            state = "is empty" if size == 0 else f"holds {size:,} events"
            raise LogMismatch(
                f"{where} {state}, but {expected(path)}: it was emptied, shortened or "
                f"rolled back; {RECOVER}"
            )
        root = merkle.root_from(cp.size, log.tree_nodes(merkle.frontier_nodes(cp.size)))
        if root != cp.root:
            raise LogMismatch(
                f"{where} holds another history: its first {cp.size:,} events have root "
                f"{merkle_b64(root)}, but {expected(path)}; {RECOVER}"
            )
    head = log.head()
    if position > head:
        state = "is empty" if head == 0 else f"ends at position {head:,}"
        raise ReadModelsAhead(
            f"{where} {state}, but the read models in {path / PROJECTIONS_DB} "
            f"reached position {position:,}: the store was emptied or rolled back; "
            "restore it from a backup, then run `arms-ledger rebuild`"
        )


def check_clock(log: LogReading, at: datetime | None = None) -> str | None:
    """How far the machine's clock is from the log's last stamp, if too far: behind it
    by more than ``CLOCK_BEHIND`` or ahead of it by more than ``CLOCK_AHEAD``."""
    last = log.last_recorded_at()
    if last is None:
        return None
    current = clock.now() if at is None else at
    stamp = instant(last)
    if current < stamp - CLOCK_BEHIND:
        return (
            f"this machine's clock ({format_instant(current.replace(microsecond=0))}) is "
            f"{_span(stamp - current)} behind the log's last stamp ({last})"
        )
    if current > stamp + CLOCK_AHEAD:
        return (
            f"this machine's clock ({format_instant(current.replace(microsecond=0))}) is "
            f"{_span(current - stamp)} ahead of the log's last stamp ({last})"
        )
    return None


def _span(delta: timedelta) -> str:
    if delta >= timedelta(days=2):
        return f"{delta.days:,} days"
    if delta >= timedelta(hours=2):
        return f"{delta.seconds // 3600 + delta.days * 24} hours"
    return f"{int(delta.total_seconds() // 60)} minutes"
