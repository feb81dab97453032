"""The ledger as a verifiable log: its tree, proofs, checkpoints, audits and exports.

Functions over an open :class:`~arms_ledger.ledger.app.application.Ledger`: the stored
tree and checkpoints are read through its recorder; the formats and checks themselves are
``ledger.transparency`` (``tlog``, ``merkle``, ``note``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec
from arms_ledger.ledger import progress as reporting
from arms_ledger.ledger.app.application import Ledger, check_new_directory
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.errors import Invalid
from arms_ledger.ledger.transparency import merkle, tlog
from arms_ledger.ledger.transparency.cosignature import add_signatures, is_cosigner_key
from arms_ledger.ledger.transparency.note import (
    Checkpoint,
    Verifier,
    open_checkpoint,
    parse_note,
)


def tree_size(ledger: Ledger) -> int:
    return ledger.recorder.tree_size()


def _size(ledger: Ledger, size: int | None) -> int:
    current = tree_size(ledger)
    if size is None:
        return current
    if not 0 <= size <= current:
        raise Invalid(f"--size {size}: the log has {current} events (sizes 0 to {current})")
    return size


def root(ledger: Ledger, size: int | None = None) -> bytes:
    """The tree head of the log's first ``size`` events (the whole log by default)."""
    n = _size(ledger, size)
    return merkle.root_from(n, ledger.recorder.tree_nodes(merkle.frontier_nodes(n)))


def prove_inclusion(
    ledger: Ledger, index: int, size: int | None = None
) -> tuple[int, list[bytes]]:
    n = _size(ledger, size)
    if not 0 <= index < n:
        raise Invalid(
            f"leaf index {index} is not in a tree of {n} events "
            f"(leaf indexes are 0-based: 0 to {n - 1}; position = index + 1)"
            if n
            else "a tree of 0 events has no leaves: there is nothing to prove"
        )
    return n, merkle.prove_inclusion(index, n, ledger.recorder.tree_nodes)


def prove_consistency(
    ledger: Ledger, old: int, size: int | None = None
) -> tuple[int, list[bytes]]:
    n = _size(ledger, size)
    if not 0 < old <= n:
        raise Invalid(f"old size {old}: it must be between 1 and the new size {n}")
    return n, merkle.prove_consistency(old, n, ledger.recorder.tree_nodes)


def sign_checkpoint(ledger: Ledger) -> str:
    """Sign, store and return a checkpoint of the log as it is now."""
    return ledger.recorder.sign_checkpoint(tlog.check_signer(ledger.signer))


def checkpoints(ledger: Ledger) -> list[tlog.StoredCheckpoint]:
    return ledger.recorder.checkpoints()


def latest_checkpoint(ledger: Ledger) -> tuple[str, Checkpoint]:
    """The newest checkpoint signed by this ledger's key, signing one if none covers the
    whole log."""
    verifier = own_verifier(ledger)
    mine = ledger.recorder.latest_checkpoint(str(verifier))
    if mine is not None and mine.size == tree_size(ledger):
        note = mine.note
    else:
        note = sign_checkpoint(ledger)
    return note, open_checkpoint(note, verifier)


def cosignatures(ledger: Ledger) -> dict[int, list[str]]:
    """The witnesses' cosigned notes the store keeps (``recorder.store_cosignature``),
    by tree size."""
    found: dict[int, list[str]] = {}
    for cp in checkpoints(ledger):
        if is_cosigner_key(cp.verifier):
            found.setdefault(cp.size, []).append(cp.note)
    return found


def cosigned(
    ledger: Ledger, note: str, size: int, kept: dict[int, list[str]] | None = None
) -> str:
    """The checkpoint ``note`` (of ``size`` events) with every witness's cosignature
    kept for it (``kept``: ``cosignatures(ledger)``, read here if not given)."""
    kept = cosignatures(ledger) if kept is None else kept
    text = parse_note(note)[0]
    for theirs_note in kept.get(size, []):
        theirs = parse_note(theirs_note)[0]
        if theirs == text:
            note = add_signatures(note, theirs_note[len(theirs) + 1 :])
    return note


def own_verifier(ledger: Ledger) -> Verifier:
    """The ledger's public key (verifier.key): reading and verifying need no signer."""
    return ledger.verifier or tlog.check_signer(ledger.signer).verifier


def verify(
    ledger: Ledger,
    trusted: Sequence[tuple[Checkpoint, str]] = (),
    key: Verifier | None = None,
) -> tlog.Report:
    """Recompute every leaf and node from the stored events and check every checkpoint,
    those of the ledger's name held to ``key`` (default: the ledger's own key);
    TamperedError names the first difference."""
    own = key or ledger.verifier
    with ledger.recorder.snapshot() as log:
        return tlog.verify(log, own, trusted, ledger.recorder.max_notification_id() or 0)


def export(ledger: Ledger, directory: Path) -> Checkpoint:
    """Write events.jsonl (the leaves), the latest checkpoint and the verifier key."""
    check_new_directory(directory)
    note, checkpoint = latest_checkpoint(ledger)
    directory.mkdir(parents=True, exist_ok=True)
    with (
        (directory / tlog.EXPORT_EVENTS).open("wb") as out,
        reporting.phase("Exporting the events", checkpoint.size),
    ):
        after = 0
        while after < checkpoint.size:
            page = ledger.recorder.select_notifications(
                start=after, limit=1000, stop=checkpoint.size, inclusive_of_start=False
            )
            out.writelines(tlog.leaf_line(n.id, n.state) + b"\n" for n in page)
            after = page[-1].id
            reporting.reach(after)
    note = cosigned(ledger, note, checkpoint.size)
    (directory / tlog.EXPORT_CHECKPOINT).write_text(note)
    (directory / tlog.EXPORT_KEY).write_text(f"{own_verifier(ledger)}\n")
    return checkpoint


def import_export(ledger: Ledger, export: tlog.Export) -> int:
    """Load a verified export into this empty ledger, keeping its checkpoint.

    A refused event raises ``BatchRefused`` as ``Ledger.import_history`` does: its index
    is the event's line in events.jsonl, less one (the caller words the message)."""
    events = []
    for position, state in enumerate(export.states, start=1):
        try:
            event = ev.decoder.decode(state)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            raise Invalid(f"line {position}: {error}") from None
        if ev.encoder.encode(event) != state:
            raise Invalid(f"line {position} is not in the ledger's canonical encoding")
        events.append(event)
    result = ledger.import_history(events)
    if root(ledger, export.checkpoint.size) != export.checkpoint.root:
        raise tlog.TamperedError("the replica's root differs from the export's checkpoint")
    ledger.recorder.store_checkpoint(export.note, export.checkpoint.size, export.verifier)
    return len(result.positions)
