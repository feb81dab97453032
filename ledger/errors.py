"""Errors the ledger reports to its users: each says what was wrong and how to fix it."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

RULES = {
    "1": "references",
    "2": "order",
    "3": "congressional notification",
    "4": "offers and deliveries",
    "5": "decisions carry a rationale",
    "policy": "policy parameters",
    "idempotency": "idempotency",
    "totals": "the limit on totals",
    "corrections": "corrections",
    "authority": "authority",
    "bypass": "coded bypass reasons",
}


class LedgerError(Exception):
    """Base of every error the ledger reports to a user."""


class Invalid(LedgerError):
    """The input is not a well-formed event."""


class Refused(LedgerError):
    """A well-formed event that a rule of the ledger refuses."""

    def __init__(self, rule: str, message: str):
        self.rule = rule
        self.message = message
        super().__init__(f"refused by {self.rule_name}: {message}")

    @property
    def rule_name(self) -> str:
        label = RULES[self.rule]
        return f"rule {self.rule} ({label})" if self.rule.isdigit() else label


class BatchRefused(LedgerError):
    """An event of a batch was invalid or refused; nothing of the batch was written."""

    def __init__(self, index: int, type_name: str | None, cause: LedgerError):
        self.index = index
        self.type_name = type_name
        self.cause = cause
        super().__init__(str(cause))


class Conflict(LedgerError):
    """Other writers kept changing the same streams; nothing was written."""


class NoLedger(LedgerError):
    pass


# What to do when the event store itself is damaged.
DAMAGED_STORE = (
    "restore the store from a backup, or start a replica from an export with "
    "`arms-ledger init --from-export`"
)
# What to do when the read models are damaged: they are derived from the log alone.
DAMAGED_READ_MODELS = "rebuild them from the log with `arms-ledger rebuild`"


class StorageError(LedgerError):
    """A file or server the ledger keeps its data in failed; nothing was half-written."""


# What a storage failure's own text (SQLite's, the OS's, the server's) says it was.
_KINDS = (
    ("full", ("disk is full", "no space left", "disk full", "quota exceeded")),
    ("read-only", ("readonly", "read-only", "permission denied", "not permitted")),
    ("locked", ("database is locked", "database table is locked", "busy")),
    ("damaged", ("malformed", "not a database", "corrupt", "file is encrypted")),
    ("unreachable", ("connection", "server closed", "terminating", "could not connect")),
    ("unopenable", ("unable to open",)),
    ("io", ("disk i/o error", "input/output error")),
)
_ERRNO_KINDS = {
    errno.ENOSPC: "full",
    errno.EDQUOT: "full",
    errno.EROFS: "read-only",
    errno.EACCES: "read-only",
    errno.EPERM: "read-only",
}


def failure_kind(error: BaseException) -> str:
    """full, read-only, locked, damaged, unreachable, unopenable, io or other."""
    code = getattr(error, "errno", None)
    if code in _ERRNO_KINDS:
        return _ERRNO_KINDS[code]
    text = str(error).lower()
    for kind, words in _KINDS:
        if any(w in text for w in words):
            return kind
    return "other"


def storage_error(error: BaseException, where: str, damaged: str) -> StorageError:
    """One line for a failure at the storage boundary: what failed, where, the next
    step. ``damaged`` is the next step when the file or store itself is damaged."""
    text = " ".join(str(error).split()) or type(error).__name__
    kind = failure_kind(error)
    if kind == "full":
        step = "nothing was written; free space on that disk and run the command again"
    elif kind == "read-only":
        step = (
            "it cannot be written here: reads work on a read-only copy, writes need "
            "write access to the ledger's directory"
        )
    elif kind == "locked":
        step = "another process holds it; run the command again when that one is done"
    elif kind == "damaged":
        step = damaged
    elif kind == "unreachable":
        step = "nothing was written; check that the server is up and run the command again"
    elif kind == "unopenable":
        step = "check that it exists and that you may read it"
    elif kind == "io":
        step = (
            "nothing was written; check the disk (full or failing) and run the command "
            "again"
        )
    else:
        step = f"nothing was written; {damaged}"
    return StorageError(f"{where}: {text} — {step}")


def is_storage_failure(error: BaseException) -> bool:
    """A failure of a file or server the ledger keeps its data in: SQLite's, the OS's,
    or one from psycopg or the eventsourcing library (known by their modules, so that
    neither is imported here)."""
    if isinstance(error, sqlite3.Error | OSError):
        return True
    return type(error).__module__.split(".")[0] in ("psycopg", "eventsourcing")


@contextmanager
def storage(where: str, damaged: str) -> Iterator[None]:
    """Turn the failures of the storage inside into one-line :class:`StorageError`."""
    try:
        yield
    except LedgerError:
        raise
    except Exception as error:
        if not is_storage_failure(error):
            raise
        raise storage_error(error, where, damaged) from None
