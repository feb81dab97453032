"""Private key files (the ledger's ``signing.key``, an official's key, a witness's key):
read only when no other user can read them, as ssh refuses an identity file others can
read. One rule, one message shape, for the three kinds."""

from __future__ import annotations

import stat
from pathlib import Path

from arms_ledger.ledger.errors import LedgerError


def read_private(path: Path, *, power: str, if_read: str) -> str:
    """The text of the key file ``path``; refused if its group or others have any access.

    ``power``: what whoever reads it can do ("sign decisions in its official's name");
    ``if_read``: what to do if others may have read it. ``OSError`` is the caller's."""
    mode = stat.S_IMODE(path.stat().st_mode)
    text = path.read_text()
    if mode & 0o077:
        raise LedgerError(
            f"{path} can be read by other users (mode {mode:04o}): whoever reads it can "
            f"{power}; nothing was written; make it private (`chmod 600 {path}`), and if "
            f"others may have read it, {if_read}"
        )
    return text
