"""The ledger's directory: ``ledger.json``, the keys, and creating, opening and upgrading.

A ledger directory holds ``ledger.json`` (format, store, origin, checkpoint policy),
``signing.key`` and ``verifier.key``, ``checkpoint`` (the newest checkpoint stored, kept
outside the store) and, on SQLite, ``events.db``. The store's eventsourcing settings
(``MAPPER_TOPIC``, ``APPLICATION_RECORDER_TOPIC``) are built here at open time and never
saved, so the modules they name may move.

Opening checks the store against what the directory remembers (``check_log``): a
missing, empty, shortened, rolled-back or forked log, or read models ahead of it, is
refused in one line. A ledger opened for reading (``write=False``, every read command)
never creates or writes a file: the SQLite store is opened without creating it, and
read-only when the directory cannot be written; the signing key is not read.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sqlite3
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from arms_ledger.ledger.app.application import Ledger, check_new_directory
from arms_ledger.ledger.domain import clock
from arms_ledger.ledger.domain.clock import format_instant, instant, now
from arms_ledger.ledger.errors import LedgerError, NoLedger
from arms_ledger.ledger.store.sqlite import sqlite_env
from arms_ledger.ledger.transparency import merkle
from arms_ledger.ledger.transparency.note import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    parse_note,
)

FORMAT = 2  # 2: a Merkle tree and signed checkpoints (format 1 is upgraded on open)
META_FILE = "ledger.json"
EVENTS_DB = "events.db"
SIGNING_KEY = "signing.key"
VERIFIER_KEY = "verifier.key"
LATEST_CHECKPOINT = "checkpoint"  # the newest checkpoint stored, outside the store
PROJECTIONS_DB = "projections.db"  # the read models (projections.engine)
CHECKPOINT_POLICIES = ("append", "manual")
REPLICA = "replica"  # the policy of a read-only replica (verify-export --into)
# The machine's clock against the log's last stamp (docs/transparency.md, "Clocks").
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


def default_origin() -> str:
    return f"arms-ledger.local/{secrets.token_hex(8)}"


def _write_keys(path: Path, signer: Signer) -> None:
    fd = os.open(path / SIGNING_KEY, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"{signer}\n")
    (path / VERIFIER_KEY).write_text(f"{signer.verifier}\n")


def default_store() -> str:
    """Where new ledgers keep their events: ``$ARMS_LEDGER_STORE``, else ``sqlite``."""
    return os.environ.get("ARMS_LEDGER_STORE") or "sqlite"


def store_url(store: str) -> str:
    """The store as saved in ledger.json: ``sqlite`` or a PostgreSQL URL."""
    if store == "sqlite":
        return store
    from arms_ledger.ledger.store.postgres import Location  # psycopg only when needed

    return Location(store).url


def _store_env(path: Path, store: str, *, new: bool, write: bool = True) -> dict[str, str]:
    """eventsourcing's settings for the store; a PostgreSQL server is reached first, so
    that a wrong URL or a stopped server is one clear error. An existing SQLite store is
    opened without creating it (``mode=rw``), or read-only when it cannot be written or
    the ledger is opened for reading."""
    if store == "sqlite":
        db = path / EVENTS_DB
        if new:
            return sqlite_env(str(db))
        return sqlite_env(sqlite_uri(db, write=write)) | {"CREATE_TABLE": "no"}
    from arms_ledger.ledger.store.postgres import Location

    location = Location(store)
    location.check()
    return location.env(create_tables=new)


def sqlite_uri(db: Path, *, write: bool) -> str:
    """The URI that opens the existing SQLite file ``db`` without creating anything.

    Writable (the directory and the file): ``mode=rw``, which never creates the file
    (the WAL files it makes are removed when it closes). Otherwise ``mode=ro``; a
    WAL database can only be read that way while its ``-wal`` file exists (a writer has
    it open), so without one the file is read as ``immutable`` (no one is writing it).
    """
    target = "file:" + quote(str(db.resolve()))
    if write or (os.access(db, os.W_OK) and os.access(db.parent, os.W_OK)):
        return f"{target}?mode=rw"
    if Path(f"{db}-wal").exists():
        return f"{target}?mode=ro"
    return f"{target}?mode=ro&immutable=1"


def create(
    path: Path,
    origin: str | None = None,
    checkpoints: str = "append",
    store: str | None = None,
) -> Ledger:
    """Make a new ledger in directory ``path``, with a new signing key.

    ``origin`` names the log in its checkpoints (and its key); ``checkpoints`` is
    ``append`` (sign one after every append) or ``manual``; ``store`` is ``sqlite``
    (``events.db`` in ``path``) or a ``postgresql://`` URL, by default
    ``default_store()``. A PostgreSQL store may already hold a log: the new directory
    then shares it, signing checkpoints with its own key.
    """
    if (path / META_FILE).exists():
        raise LedgerError(f"there is already a ledger at {path}")
    if checkpoints not in CHECKPOINT_POLICIES:
        raise LedgerError(f"checkpoints must be one of {', '.join(CHECKPOINT_POLICIES)}")
    try:
        signer = Signer.generate(default_origin() if origin is None else origin)
    except NoteError as error:
        raise LedgerError(f"origin: {error}") from None
    store = store_url(default_store() if store is None else store)
    check_new_directory(path)
    env = _store_env(path, store, new=True)
    path.mkdir(parents=True, exist_ok=True)
    app = Ledger(env, signer, checkpoints)
    app.store = store
    app.recorder.on_checkpoint = lambda note: keep_checkpoint(path, note)
    _write_keys(path, signer)
    _write_meta(path, signer.name, checkpoints, format_instant(now()), store)
    return app


def create_replica(path: Path, export: Any) -> Ledger:
    """A new, empty, read-only replica in ``path`` for the verified ``export``
    (``tlog.Export``): a local SQLite ledger under the export's origin, with its verifier
    key and no signing key, whose policy ``replica`` refuses every append. The caller
    loads the export (``transparency.import_export``), whose checkpoint it keeps."""
    check_new_directory(path)
    env = _store_env(path, "sqlite", new=True)
    path.mkdir(parents=True, exist_ok=True)
    app = Ledger(env, None, "manual")
    app.verifier = export.verifier
    app.recorder.on_checkpoint = lambda note: keep_checkpoint(path, note)
    (path / VERIFIER_KEY).write_text(f"{export.verifier}\n")
    _write_meta(path, export.checkpoint.origin, REPLICA, format_instant(now()))
    return app


def _write_meta(
    path: Path, origin: str, checkpoints: str, created_at: str, store: str = "sqlite"
) -> None:
    meta = {
        "format": FORMAT,
        "store": store,
        "created_at": created_at,
        "origin": origin,
        "checkpoints": checkpoints,
    }
    (path / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")


def open_ledger(path: Path, *, write: bool = True) -> Ledger:
    """Open the ledger in directory ``path``, checked against what it remembers
    (``check_log``).

    ``write=False`` opens it for reading: nothing is created or written, and the signing
    key is not read (checkpoints are checked with ``verifier.key``). ``write=True``
    refuses a read-only replica, and a ledger that signs every append without its key.
    """
    meta = path / META_FILE
    if not meta.exists():
        raise NoLedger(
            f"no ledger at {path}; create one with `arms-ledger init`, or point "
            "--ledger / ARMS_LEDGER at an existing one"
        )
    try:
        info = json.loads(meta.read_text())
    except ValueError:
        raise LedgerError(f"{meta} is not valid JSON; the ledger is damaged") from None
    if info.get("format") == 1:
        return _upgrade(path, info)
    if info.get("format") != FORMAT:
        raise LedgerError(
            f"{path} has ledger format {info.get('format')!r}; this version reads "
            f"format {FORMAT}"
        )
    store = info.get("store", "sqlite")
    policy = info["checkpoints"]
    if write and policy == REPLICA:
        raise LedgerError(
            f"the ledger at {path} is a read-only replica of {info.get('origin')}: it "
            "cannot be appended to or signed; start a ledger of your own with "
            "`arms-ledger init --from-export DIR`"
        )
    signer = _read_signer(path) if write else None
    if write and signer is None and policy == "append":
        raise LedgerError(
            f"this ledger has no signing key ({path / SIGNING_KEY} is missing), and it "
            "signs a checkpoint with every append: nothing was written; restore the key, "
            "or write on the operator's copy of the ledger"
        )
    if store == "sqlite":
        _check_sqlite_store(path)
    app = Ledger(_store_env(path, store, new=False, write=write), signer, policy)
    app.store = store
    app.verifier = _read_verifier(path)
    app.recorder.store_label = (
        f"the event store {path / EVENTS_DB}" if store == "sqlite" else "the event store"
    )
    if write:
        app.recorder.on_checkpoint = lambda note: keep_checkpoint(path, note)
    try:
        check_log(path, app)
        if write and read_checkpoint(path) is None:  # a ledger from before the file
            stored = app.recorder.checkpoints()
            if stored:
                keep_checkpoint(path, max(stored, key=lambda cp: (cp.size, cp.id)).note)
    except BaseException:
        app.close()
        raise
    return app


def _check_sqlite_store(path: Path) -> None:
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
    target = "file:" + quote(str(db.resolve()))
    mode = "mode=ro" if Path(f"{db}-wal").exists() else "mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(f"{target}?{mode}", uri=True)
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


def check_log(path: Path, app: Ledger) -> None:
    """Refuse a store that does not hold the log the directory remembers: shorter than
    its newest checkpoint (emptied, rolled back), another root at that size (a fork), or
    shorter than the position its read models reached."""
    where = app.recorder.store_label
    kept = read_checkpoint(path)
    size = app.recorder.tree_size()
    position = read_models_position(path) or 0
    if kept is not None:
        cp = kept[1]
        if size < cp.size:
            state = "is empty" if size == 0 else f"holds {size:,} events"
            raise LogMismatch(
                f"{where} {state}, but {expected(path)}: it was emptied, shortened or "
                f"rolled back; {RECOVER}"
            )
        root = merkle.root_from(
            cp.size, app.recorder.tree_nodes(merkle.frontier_nodes(cp.size))
        )
        if root != cp.root:
            raise LogMismatch(
                f"{where} holds another history: its first {cp.size:,} events have root "
                f"{merkle_b64(root)}, but {expected(path)}; {RECOVER}"
            )
    head = app.head()
    if position > head:
        state = "is empty" if head == 0 else f"ends at position {head:,}"
        raise ReadModelsAhead(
            f"{where} {state}, but the read models in {path / PROJECTIONS_DB} "
            f"reached position {position:,}: the store was emptied or rolled back; "
            "restore it from a backup, then run `arms-ledger rebuild`"
        )


def check_clock(app: Ledger, at: datetime | None = None) -> str | None:
    """How far the machine's clock is from the log's last stamp, if too far: behind it
    by more than ``CLOCK_BEHIND`` or ahead of it by more than ``CLOCK_AHEAD``."""
    last = app.recorder.last_recorded_at()
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


def _read_signer(path: Path) -> Signer | None:
    try:
        return Signer.parse((path / SIGNING_KEY).read_text())
    except FileNotFoundError:
        return None  # a replica or copy without the key: it can verify but not sign
    except NoteError as error:
        raise LedgerError(f"{path / SIGNING_KEY}: {error}") from None


def _read_verifier(path: Path) -> Verifier | None:
    try:
        return Verifier.parse((path / VERIFIER_KEY).read_text().strip())
    except FileNotFoundError:
        return None
    except NoteError as error:
        raise LedgerError(f"{path / VERIFIER_KEY}: {error}") from None


def _upgrade(path: Path, info: dict) -> Ledger:
    """Format 1 (no Merkle tree): build the tree over the stored events and add a key."""
    signer = Signer.generate(default_origin())
    _write_keys(path, signer)
    app = Ledger(sqlite_env(str(path / EVENTS_DB)), signer, "append")
    app.recorder.extend_tree()
    _write_meta(path, signer.name, "append", info.get("created_at", format_instant(now())))
    return app
