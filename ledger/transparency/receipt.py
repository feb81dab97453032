"""Receipts: C2SP tlog-proof files for one event, checked offline.

::

    c2sp.org/tlog-proof@v1
    extra <base64 of the event's leaf bytes: its export line, without the newline>
    index <0-based leaf index: position - 1>
    <inclusion proof, one base64 SHA-256 hash per line, the leaf's sibling first>
    <empty line>
    <the checkpoint as signed by the log, with the witnesses' cosignature lines>

The ``extra`` line carries the event itself. It is not trusted as it is: the verifier
hashes it as a leaf (SHA-256(0x00 ‖ bytes)) and folds the proof up to the checkpoint's
root, so a receipt whose event was altered by one byte fails.
"""

from __future__ import annotations

import base64
from typing import NamedTuple

from arms_ledger.ledger.errors import LedgerError
from arms_ledger.ledger.transparency import merkle
from arms_ledger.ledger.transparency.note import (
    Checkpoint,
    NoteError,
    Verifier,
    _b64decode,
    open_checkpoint,
    parse_note,
)
from arms_ledger.ledger.transparency.tlog import TamperedError, state_of

HEADER = "c2sp.org/tlog-proof@v1"


class Receipt(NamedTuple):
    event: bytes  # the leaf bytes (the event's export line)
    index: int  # type: ignore[assignment]  # shadows tuple.index, as the spec names it
    proof: list[bytes]
    note: str  # the signed checkpoint, cosignatures included

    def text(self) -> str:
        lines = [HEADER, f"extra {base64.b64encode(self.event).decode()}"]
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(h).decode() for h in self.proof]
        return "\n".join(lines) + "\n\n" + self.note

    @property
    def position(self) -> int:
        return self.index + 1


def parse(text: str, source: str = "the receipt") -> Receipt:
    """A receipt's parts, nothing verified; LedgerError naming what is malformed."""
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    try:
        if lines[0] != HEADER:
            raise NoteError(f"its first line is not {HEADER}")
        if len(lines) < 3 or not lines[1].startswith("extra "):
            raise NoteError("it has no 'extra' line holding the event")
        event = _b64decode(lines[1][len("extra ") :], "the extra line")
        if not lines[2].startswith("index ") or not lines[2][6:].isdigit():
            raise NoteError("its third line is not 'index <number>'")
        if lines[2][6:] != str(int(lines[2][6:])):
            raise NoteError("its index has leading zeroes")
        proof = [_b64decode(line, "an inclusion proof line") for line in lines[3:]]
        if not sep:
            raise NoteError("it has no empty line before the checkpoint")
        parse_note(note)
    except NoteError as error:
        raise LedgerError(f"{source} is not a tlog-proof receipt: {error}") from None
    return Receipt(event, int(lines[2][6:]), proof, note)


def verify(receipt: Receipt, log: Verifier, source: str = "the receipt") -> Checkpoint:
    """The checkpoint, if the log signed it and the event is in it at its index;
    TamperedError naming what failed."""
    try:
        checkpoint = open_checkpoint(receipt.note, log)
    except NoteError as error:
        raise TamperedError(f"{source} is not from the log {log.name}: {error}") from None
    try:
        state_of(receipt.event, receipt.position)
    except LedgerError:
        raise TamperedError(
            f"{source}: its event is not the export line of position "
            f"{receipt.position} (index {receipt.index})"
        ) from None
    try:
        merkle.verify_inclusion(
            receipt.index,
            checkpoint.size,
            merkle.leaf_hash(receipt.event),
            receipt.proof,
            checkpoint.root,
        )
    except merkle.ProofError as error:
        raise TamperedError(
            f"{source}: the event at position {receipt.position} is not in the log's "
            f"checkpoint of {checkpoint.size:,} events ({error}): the event was altered, "
            "or the receipt is for another log"
        ) from None
    return checkpoint
