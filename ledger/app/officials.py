"""Officials' signing keys on disk: made, written private, and read back to sign
decisions (``ledger.domain.authority``). A key file holds one line, the Go
``golang.org/x/mod/sumdb/note`` form ``PRIVATE+KEY+<official>+<key id>+<base64>``; the
key's name is the official, the ``actor`` of the decisions it signs."""

from __future__ import annotations

import os
from pathlib import Path

from arms_ledger.ledger.app.keyfile import read_private
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.ledger.transparency.note import NoteError, Signer


def make_key(official: str, path: Path) -> Signer:
    """A new key pair for ``official``, its private key written to a new file ``path``
    readable by its owner only (mode 0600)."""
    try:
        signer = Signer(official, os.urandom(32))
    except NoteError as error:
        raise LedgerError(f"official {official!r}: {error}") from None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise LedgerError(
            f"{path} exists; a key file is never overwritten (the key in it may be "
            "registered): choose a new file"
        ) from None
    except OSError as error:
        raise LedgerError(f"cannot write {path}: {error.strerror}") from None
    with os.fdopen(fd, "w") as out:
        out.write(f"{signer}\n")
    return signer


def read_key(path: Path) -> Signer:
    """The signing key in the file ``path``; refused if others can read it."""
    try:
        text = read_private(
            path, power="sign decisions in its official's name", if_read="revoke the key"
        )
    except OSError as error:
        raise LedgerError(f"cannot read the signing key {path}: {error.strerror}") from None
    try:
        return Signer.parse(text)
    except NoteError as error:
        raise LedgerError(f"{path}: {error}") from None
