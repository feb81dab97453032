"""The ledger's directory: ``ledger.json``, the keys, and creating, opening and upgrading.

A ledger directory holds ``ledger.json`` (format, store, origin, checkpoint policy),
``signing.key`` and ``verifier.key``, ``checkpoint`` (the newest checkpoint stored, kept
outside the store) and, on SQLite, ``events.db``. The store's eventsourcing settings
(``MAPPER_TOPIC``, ``APPLICATION_RECORDER_TOPIC``) are built here at open time and never
saved, so the modules they name may move.

Opening checks the store against what the directory remembers (``boundary.check_log``): a
missing, empty, shortened, rolled-back or forked log, or read models ahead of it, is
refused in one line. A ledger opened for reading (``write=False``, every read command)
never creates or writes a file: the SQLite store is opened without creating it, and
read-only when the directory cannot be written; the signing key is not read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arms_ledger.ledger.app import boundary
from arms_ledger.ledger.app.keyfile import read_private
from arms_ledger.ledger.domain.clock import format_instant, now
from arms_ledger.ledger.errors import LedgerError, NoLedger
from arms_ledger.ledger.transparency.note import (
    NoteError,
    Signer,
    Verifier,
)

if TYPE_CHECKING:
    from arms_ledger.ledger.app.application import Ledger
    from arms_ledger.ledger.store.reading import SQLiteLog

# The application and the store's recorders (the eventsourcing library, the write path)
# are imported by the functions that build a Ledger: ``open_log`` reads a SQLite ledger
# without them.

FORMAT = 2  # 2: a Merkle tree and signed checkpoints (format 1 is upgraded on open)
META_FILE = "ledger.json"
EVENTS_DB = "events.db"
SIGNING_KEY = "signing.key"
VERIFIER_KEY = "verifier.key"
PROJECTIONS_DB = "projections.db"  # the read models (projections.engine)
CHECKPOINT_POLICIES = ("append", "manual")
REPLICA = "replica"  # the policy of a read-only replica (verify-export --into)


# The machine's clock against the log's last stamp (docs/transparency.md, "Clocks").
def default_origin() -> str:
    import secrets  # not on the read path (hmac, random)

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
    from arms_ledger.ledger.store.sqlite import sqlite_env

    if store == "sqlite":
        db = path / EVENTS_DB
        if new:
            return sqlite_env(str(db))
        return sqlite_env(boundary.sqlite_uri(db, write=write)) | {"CREATE_TABLE": "no"}
    from arms_ledger.ledger.store.postgres import Location

    location = Location(store)
    location.check()
    return location.env(create_tables=new)


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
    from arms_ledger.ledger.app.application import Ledger, check_new_directory

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
    private_directory(path)
    app = Ledger(env, signer, checkpoints)
    app.store = store
    try:
        app.recorder.upgrade_store()  # a PostgreSQL log shared with an earlier version
        _check_origin_unused(app, signer)
    except BaseException:
        app.close()
        raise
    app.recorder.on_checkpoint = lambda note: boundary.keep_checkpoint(path, note)
    _write_keys(path, signer)
    _write_meta(path, signer.name, checkpoints, format_instant(now()), store)
    return app


def _check_origin_unused(app: Ledger, signer: Signer) -> None:
    """A log shared by several offices (PostgreSQL) names each one's checkpoints by its
    origin: two keys under one origin would make each office's checkpoints fail the
    other's verification. Refuse an origin another key already signs this log under."""
    taken = {
        cp.verifier
        for cp in app.recorder.checkpoints()
        if cp.verifier.partition("+")[0] == signer.name
    }
    if taken:
        raise LedgerError(
            f"the origin {signer.name} already names checkpoints of this log, signed "
            f"with another key ({sorted(taken)[0]}): each office sharing a log needs an "
            "origin of its own; choose another --origin"
        )


def create_replica(path: Path, export: Any) -> Ledger:
    """A new, empty, read-only replica in ``path`` for the verified ``export``
    (``tlog.Export``): a local SQLite ledger under the export's origin, with its verifier
    key and no signing key, whose policy ``replica`` refuses every append. The caller
    loads the export (``transparency.import_export``), whose checkpoint it keeps."""
    from arms_ledger.ledger.app.application import Ledger, check_new_directory

    check_new_directory(path)
    env = _store_env(path, "sqlite", new=True)
    path.mkdir(parents=True, exist_ok=True)
    app = Ledger(env, None, "manual")
    app.verifier = export.verifier
    app.recorder.on_checkpoint = lambda note: boundary.keep_checkpoint(path, note)
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
    (``boundary.check_log``).

    ``write=False`` opens it for reading: nothing is created or written, and the signing
    key is not read (checkpoints are checked with ``verifier.key``). ``write=True``
    refuses a read-only replica, and a ledger that signs every append without its key.
    """
    from arms_ledger.ledger.app.application import Ledger

    info = _read_meta(path)
    if info.get("format") == 1:
        return _upgrade(path, info)
    store = info.get("store", "sqlite")
    policy = info["checkpoints"]
    signer = _signer_for_writing(path, info) if write else None
    if store == "sqlite":
        boundary.check_sqlite_store(path)
    app = Ledger(_store_env(path, store, new=False, write=write), signer, policy)
    app.store = store
    app.verifier = _read_verifier(path)
    if store == "sqlite":
        app.recorder.store_label = f"the event store {path / EVENTS_DB}"
    if write:
        app.recorder.on_checkpoint = lambda note: boundary.keep_checkpoint(path, note)
    try:
        boundary.check_log(path, app.recorder)
        if write:
            # A store made by an earlier version gets this one's indexes (the reads by
            # type); a ledger opened for reading is never written, and reads it as is.
            app.recorder.upgrade_store()
        if write and boundary.read_checkpoint(path) is None:  # from before the file
            stored = app.recorder.checkpoints()
            if stored:
                newest = max(stored, key=lambda cp: (cp.size, cp.id))
                boundary.keep_checkpoint(path, newest.note)
    except BaseException:
        app.close()
        raise
    return app


def open_log(path: Path) -> SQLiteLog | None:
    """The log of the SQLite ledger at ``path`` opened for reading only, checked as
    ``open_ledger`` checks it (``boundary.check_log``), without the application, the
    library or the keys: what the read models need. ``None`` when the ledger must be
    opened whole (``open_ledger(write=False)``): its store is on PostgreSQL, or its
    format is upgraded on open."""
    from arms_ledger.ledger.store.reading import SQLiteLog

    info = _read_meta(path)
    if info.get("format") == 1 or info.get("store", "sqlite") != "sqlite":
        return None
    boundary.check_sqlite_store(path)
    db = path / EVENTS_DB
    log = SQLiteLog(boundary.sqlite_uri(db, write=False), f"the event store {db}")
    try:
        boundary.check_log(path, log)
    except BaseException:
        log.close()
        raise
    return log


def signs_every_append(path: Path) -> bool:
    """Whether the ledger at ``path`` signs a checkpoint with every append."""
    return bool(_read_meta(path)["checkpoints"] == "append")


def _read_meta(path: Path) -> dict[str, Any]:
    """``ledger.json`` of the ledger at ``path``, of a format this version reads."""
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
    if info.get("format") not in (1, FORMAT):
        raise LedgerError(
            f"{path} has ledger format {info.get('format')!r}; this version reads "
            f"format {FORMAT}"
        )
    return info


def _signer_for_writing(path: Path, info: dict[str, Any]) -> Signer | None:
    """The signing key, if the ledger may be written: never a read-only replica, and
    not a ledger that signs every append without its key."""
    policy = info["checkpoints"]
    if policy == REPLICA:
        raise LedgerError(
            f"the ledger at {path} is a read-only replica of {info.get('origin')}: it "
            "cannot be appended to or signed; start a ledger of your own with "
            "`arms-ledger init --from-export DIR`"
        )
    signer = _read_signer(path)
    if signer is None and policy == "append":
        raise LedgerError(
            f"this ledger has no signing key ({path / SIGNING_KEY} is missing), and it "
            "signs a checkpoint with every append: nothing was written; restore the key, "
            "or write on the operator's copy of the ledger"
        )
    return signer


def private_directory(path: Path) -> None:
    """Make the ledger's directory, closed to other users (group access is left as the
    umask gives it): its databases and keys are the office's record, and a copy for
    others is an export (``audit export``)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o750)
    mode = path.stat().st_mode
    if mode & 0o007:
        path.chmod(mode & 0o7770)


def _read_signer(path: Path) -> Signer | None:
    key = path / SIGNING_KEY
    try:
        text = read_private(
            key,
            power="sign checkpoints in this ledger's name",
            if_read="treat the key as compromised",
        )
    except FileNotFoundError:
        return None  # a replica or copy without the key: it can verify but not sign
    try:
        return Signer.parse(text)
    except NoteError as error:
        raise LedgerError(f"{key}: {error}") from None


def _read_verifier(path: Path) -> Verifier | None:
    try:
        return Verifier.parse((path / VERIFIER_KEY).read_text().strip())
    except FileNotFoundError:
        return None
    except NoteError as error:
        raise LedgerError(f"{path / VERIFIER_KEY}: {error}") from None


def _upgrade(path: Path, info: dict) -> Ledger:
    """Format 1 (no Merkle tree): build the tree over the stored events and add a key."""
    from arms_ledger.ledger.app.application import Ledger
    from arms_ledger.ledger.store.sqlite import sqlite_env

    signer = Signer.generate(default_origin())
    _write_keys(path, signer)
    app = Ledger(sqlite_env(str(path / EVENTS_DB)), signer, "append")
    app.recorder.extend_tree()
    _write_meta(path, signer.name, "append", info.get("created_at", format_instant(now())))
    return app
