"""The ledger's directory: ``ledger.json``, the keys, and creating, opening and upgrading.

A ledger directory holds ``ledger.json`` (format, store, origin, checkpoint policy),
``signing.key`` and ``verifier.key``, and, on SQLite, ``events.db``. The store's
eventsourcing settings (``MAPPER_TOPIC``, ``APPLICATION_RECORDER_TOPIC``) are built here
at open time and never saved, so the modules they name may move.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from arms_ledger.ledger.app.application import Ledger, check_new_directory
from arms_ledger.ledger.domain.clock import format_instant, now
from arms_ledger.ledger.errors import LedgerError, NoLedger
from arms_ledger.ledger.store.sqlite import sqlite_env
from arms_ledger.ledger.transparency.note import NoteError, Signer

FORMAT = 2  # 2: a Merkle tree and signed checkpoints (format 1 is upgraded on open)
META_FILE = "ledger.json"
EVENTS_DB = "events.db"
SIGNING_KEY = "signing.key"
VERIFIER_KEY = "verifier.key"
CHECKPOINT_POLICIES = ("append", "manual")


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


def _store_env(path: Path, store: str, *, new: bool) -> dict[str, str]:
    """eventsourcing's settings for the store; a PostgreSQL server is reached first, so
    that a wrong URL or a stopped server is one clear error."""
    if store == "sqlite":
        return sqlite_env(str(path / EVENTS_DB))
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
    _write_keys(path, signer)
    _write_meta(path, signer.name, checkpoints, format_instant(now()), store)
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


def open_ledger(path: Path) -> Ledger:
    """Open the ledger in directory ``path``."""
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
    app = Ledger(
        _store_env(path, store, new=False), _read_signer(path), info["checkpoints"]
    )
    app.store = store
    return app


def _read_signer(path: Path) -> Signer | None:
    try:
        return Signer.parse((path / SIGNING_KEY).read_text())
    except FileNotFoundError:
        return None  # a replica or copy without the key: it can verify but not sign
    except NoteError as error:
        raise LedgerError(f"{path / SIGNING_KEY}: {error}") from None


def _upgrade(path: Path, info: dict) -> Ledger:
    """Format 1 (no Merkle tree): build the tree over the stored events and add a key."""
    signer = Signer.generate(default_origin())
    _write_keys(path, signer)
    app = Ledger(sqlite_env(str(path / EVENTS_DB)), signer, "append")
    app.recorder.extend_tree()
    _write_meta(path, signer.name, "append", info.get("created_at", format_instant(now())))
    return app
