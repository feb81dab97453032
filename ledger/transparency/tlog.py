"""The ledger as a verifiable log: leaves, checkpoints, audits (formats and checks only;
the SQL of the stored tree is ``ledger/store/tree.py``).

- **Leaf**: the event's export line, ``{"position":N,`` followed by its stored state
  after the opening brace: compact JSON, one line, the same bytes everywhere.
- **Tree**: the perfect subtrees of the RFC 9162 tree (``merkle``), stored beside the
  events by ``ledger/store/tree.py`` in the same transaction as the events they cover.
- **Checkpoints**: C2SP signed notes (``note``), stored one per tree size and key.
- **Audits**: ``verify`` recomputes every leaf and node from the stored events and
  checks every checkpoint; ``export`` writes what an auditor needs, and
  ``read_export`` checks it without the ledger.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import msgspec
from arms_ledger.ledger import progress as reporting
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.ledger.transparency import merkle
from arms_ledger.ledger.transparency.cosignature import CosignerKey, is_cosigner_key
from arms_ledger.ledger.transparency.merkle import Node
from arms_ledger.ledger.transparency.note import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    open_checkpoint,
    parse_note,
)

EXPORT_EVENTS = "events.jsonl"
EXPORT_CHECKPOINT = "checkpoint"
EXPORT_KEY = "verifier.key"


class TamperedError(LedgerError):
    """The stored log, its tree or a checkpoint is not what the ledger wrote."""


def b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


# --- leaves -------------------------------------------------------------------------------


def leaf_line(position: int, state: bytes) -> bytes:
    """The canonical bytes of the event at ``position``: its export line, no newline."""
    if state[:2] != b'{"':
        raise TamperedError(f"position {position}: the stored event is not a JSON object")
    return b'{"position":%d,' % position + state[1:]


def state_of(line: bytes, position: int) -> bytes:
    """The stored state inside an export line; the line must be for ``position``."""
    prefix = b'{"position":%d,' % position
    if not line.startswith(prefix):
        raise LedgerError(f"line {position} does not start with {prefix.decode()}")
    return b"{" + line[len(prefix) :]


class StoredCheckpoint(NamedTuple):
    id: int
    size: int
    note: str
    verifier: str


# --- verification of the whole ledger -----------------------------------------------------


class Row(NamedTuple):
    position: int
    stream: str
    version: int
    topic: str
    state: bytes


class LogSource(Protocol):
    """What ``verify`` reads of a stored log (the recorder provides it)."""

    def rows(self) -> Iterable[Row]: ...  # every stored event, in log order

    def level(self, level: int) -> Iterator[tuple[int, bytes]]: ...

    def top_level(self) -> int | None: ...  # the highest level holding a node

    def nodes(self, wanted: Sequence[Node]) -> dict[Node, bytes]: ...

    def checkpoints(self) -> list[StoredCheckpoint]: ...


class Report(NamedTuple):
    events: int
    nodes: int
    checkpoints: int
    seconds: float
    signed: int = 0  # events under the newest checkpoint signed by the ledger's own key
    cosignatures: int = 0  # witnesses' cosignatures stored with the checkpoints


def verify(
    log: LogSource,
    own: Verifier | None,
    trusted: Sequence[tuple[Checkpoint, str]] = (),
    expected: int = 0,
) -> Report:
    """Check the stored log against its tree and checkpoints; TamperedError names the first
    difference.

    Checkpoints signed by the ledger's own key must verify with ``own``; ``trusted`` are
    checkpoints kept outside the ledger (already opened), with where they came from.
    ``expected``: how many events the log holds, as far as the progress reported knows.
    """
    started = time.perf_counter()
    with reporting.phase("Checking the events", expected):
        count = _verify_leaves(log)
    with reporting.phase("Checking the Merkle tree", max(count - 1, 0)):
        nodes = count + _verify_levels(count, log)
    stored = log.checkpoints()
    checkpoints = [cp for cp in stored if not is_cosigner_key(cp.verifier)]
    cosignatures = [cp for cp in stored if is_cosigner_key(cp.verifier)]
    with reporting.phase("Checking the checkpoints", len(stored) + len(trusted)):
        for cp in checkpoints:
            _verify_stored_checkpoint(cp, own, count, log)
            reporting.advance(1)
        for cp in cosignatures:
            _verify_stored_cosignature(cp, own, count, log)
            reporting.advance(1)
        for checkpoint, source in trusted:
            _verify_trusted(checkpoint, source, count, log)
            reporting.advance(1)
    signed = max(
        (cp.size for cp in checkpoints if own is not None and cp.verifier == str(own)),
        default=0,
    )
    return Report(
        count,
        nodes,
        len(checkpoints) + len(trusted),
        time.perf_counter() - started,
        signed,
        len(cosignatures),
    )


def _verify_leaves(log: LogSource) -> int:
    """Every stored event, in order, against its leaf in the tree; returns how many."""
    leaves = log.level(0)
    versions: dict[str, int] = {}
    count = 0
    for row in log.rows():
        count += 1
        if row.position != count:
            if row.position > count:
                raise TamperedError(f"position {count}: the event is missing from the log")
            raise TamperedError(f"position {row.position} appears twice in the log")
        stored = next(leaves, None)
        if stored is None:
            raise TamperedError(
                f"position {row.position}: the event is not in the Merkle tree (it was "
                "added behind the ledger's back)"
            )
        _verify_row(row, stored[1], versions.get(row.stream, 0) + 1)
        versions[row.stream] = row.version
        if count % 1000 == 0:
            reporting.advance(1000)
    if next(leaves, None) is not None:
        raise TamperedError(
            f"position {count + 1}: the event is missing from the log (the Merkle tree has "
            "more leaves than the log has events)"
        )
    return count


def _verify_row(row: Row, leaf: bytes, expected_version: int) -> None:
    """One stored event: its leaf hash, its schema, its stream, type and version."""
    position, stream, version, topic, state = row
    if state[:2] != b'{"' or merkle.leaf_hash(leaf_line(position, state)) != leaf:
        raise TamperedError(
            f"position {position}: the stored event differs from the one the ledger "
            "wrote (its Merkle leaf does not match)"
        )
    try:
        event = ev.decoder.decode(state)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise TamperedError(
            f"position {position}: the stored event is invalid ({error})"
        ) from None
    if stream != event.stream or topic != type(event).__name__:
        raise TamperedError(
            f"position {position}: stored as {topic} of {stream}, but the event is a "
            f"{type(event).__name__} of {event.stream}"
        )
    if version != expected_version:
        raise TamperedError(
            f"position {position}: {stream} version {version}, expected {expected_version}"
        )


def _verify_trusted(checkpoint: Checkpoint, source: str, size: int, log: LogSource) -> None:
    """A checkpoint kept outside the ledger: the log still holds what it signs."""
    if checkpoint.size > size:
        raise TamperedError(
            f"{source} signs {checkpoint.size} events; the log has only {size}: "
            "events were removed"
        )
    if _root(log, checkpoint.size) != checkpoint.root:
        raise TamperedError(
            f"{source} (size {checkpoint.size}) is not consistent with the log: "
            "history was rewritten"
        )


def _root(log: LogSource, size: int) -> bytes:
    return merkle.root_from(size, log.nodes(merkle.frontier_nodes(size)))


def _verify_levels(size: int, log: LogSource) -> int:
    """Every internal node equals the hash of its two children, and there is no other
    node (none past a level's width, none above the top); returns how many."""
    checked = 0
    level, width = 1, size >> 1
    while width:
        below = log.level(level - 1)
        count = 0
        for idx, h in log.level(level):
            if count == width:
                raise TamperedError(
                    f"the Merkle tree has a node {idx} at level {level}, past the {width} "
                    f"that {size} leaves make: it was added behind the ledger's back"
                )
            if idx != count:
                raise TamperedError(
                    f"the Merkle tree is missing node {count} of level {level}"
                )
            left, right = next(below, None), next(below, None)
            if left is None or right is None:  # the level below was checked: never
                raise TamperedError(f"the Merkle tree is short at level {level - 1}")
            if merkle.node_hash(left[1], right[1]) != h:
                first = idx << level
                raise TamperedError(
                    f"the Merkle tree's node over positions {first + 1}-"
                    f"{first + (1 << level)} was changed"
                )
            count += 1
            if count % 1000 == 0:
                reporting.advance(1000)
        if count != width:
            raise TamperedError(
                f"the Merkle tree has {count} nodes at level {level}; "
                f"{size} leaves need {width}"
            )
        checked += count
        level, width = level + 1, size >> (level + 1)
    top = log.top_level()
    if top is not None and top >= level:
        raise TamperedError(
            f"the Merkle tree has a node at level {top}, above the top level ({level - 1}) "
            f"that {size} leaves make: it was added behind the ledger's back"
        )
    return checked


def _verify_stored_checkpoint(
    cp: StoredCheckpoint, own: Verifier | None, size: int, log: LogSource
) -> None:
    where = f"stored checkpoint {cp.id} (size {cp.size})"
    try:
        verifier = Verifier.parse(cp.verifier)
        if own is not None and verifier.name == own.name and verifier != own:
            raise NoteError(f"its key {cp.verifier} is not the ledger's key")
        checkpoint = open_checkpoint(cp.note, verifier)
    except NoteError as error:
        raise TamperedError(f"{where}: {error}") from None
    if checkpoint.size != cp.size:
        raise TamperedError(f"{where}: the note signs size {checkpoint.size}")
    if cp.size > size:
        raise TamperedError(f"{where}: the log has only {size} events; events were removed")
    if _root(log, cp.size) != checkpoint.root:
        raise TamperedError(f"{where}: its root does not match the log")


def _verify_stored_cosignature(
    cp: StoredCheckpoint, own: Verifier | None, size: int, log: LogSource
) -> None:
    """A witness's cosignature kept with a checkpoint: it verifies under the witness's
    key, the checkpoint under the ledger's, and its root is the log's."""
    where = f"the cosignature by {cp.verifier.partition('+')[0]} (size {cp.size})"
    try:
        if CosignerKey.parse(cp.verifier).timestamp(cp.note) is None:
            raise NoteError("the stored note does not carry it")
        checkpoint = Checkpoint.parse(parse_note(cp.note)[0])
        if own is not None and checkpoint.origin == own.name:
            open_checkpoint(cp.note, own)
    except NoteError as error:
        raise TamperedError(f"{where}: {error}") from None
    if checkpoint.size != cp.size or cp.size > size:
        raise TamperedError(f"{where}: the log has only {size} events; events were removed")
    if _root(log, cp.size) != checkpoint.root:
        raise TamperedError(f"{where}: its root does not match the log")


# --- exports ------------------------------------------------------------------------------


class Export(NamedTuple):
    """An export that verified: its checkpoint, and the events' stored states in order."""

    checkpoint: Checkpoint
    note: str
    verifier: Verifier
    states: list[bytes]
    consistency: list[bytes] | None  # the proof from the trusted checkpoint, if any


def load_verifier(value: str) -> Verifier:
    """A verifier key given as the key itself or as a file holding it."""
    path = Path(value)
    text = path.read_text() if path.is_file() else value
    try:
        return Verifier.parse(text)
    except NoteError as error:
        raise LedgerError(f"--key: {error}") from None


def read_export(
    directory: Path, verifier: Verifier, trusted: tuple[Checkpoint, str] | None = None
) -> Export:
    """Check an export with nothing but its files and a key: the checkpoint's signature,
    the root of ``events.jsonl``, and consistency with an earlier trusted checkpoint."""
    events_file, checkpoint_file = directory / EXPORT_EVENTS, directory / EXPORT_CHECKPOINT
    for needed in (events_file, checkpoint_file):
        if not needed.is_file():
            raise LedgerError(f"{needed} is missing; is {directory} an `audit export`?")
    note = checkpoint_file.read_text()
    try:
        checkpoint = open_checkpoint(note, verifier)
    except NoteError as error:
        raise TamperedError(f"{checkpoint_file}: {error}") from None
    ranges = [] if trusted is None else _consistency_ranges(*trusted, checkpoint)
    leaves = _read_leaves(events_file, checkpoint.size, set(merkle.nodes_of(ranges)))
    if leaves.builder.root() != checkpoint.root:
        raise TamperedError(
            f"the root of {events_file} is {b64(leaves.builder.root())}, the checkpoint "
            f"signs {b64(checkpoint.root)}: the events were altered"
        )
    proof = None
    if trusted is not None and trusted[0].size:
        proof = merkle.hashes_from(ranges, leaves.kept)
        _verify_export_consistency(*trusted, checkpoint, proof)
    return Export(checkpoint, note, verifier, leaves.states, proof)


def _consistency_ranges(
    old: Checkpoint, source: str, checkpoint: Checkpoint
) -> list[tuple[int, int]]:
    """The leaf ranges whose subtree hashes prove the export extends ``old``."""
    if old.origin != checkpoint.origin:
        raise TamperedError(
            f"{source} is for log {old.origin!r}, the export for {checkpoint.origin!r}"
        )
    if old.size > checkpoint.size:
        raise TamperedError(
            f"{source} signs {old.size} events but the export's checkpoint only "
            f"{checkpoint.size}: the log was truncated"
        )
    if not old.size:  # every log extends the empty one
        return []
    return merkle.consistency_ranges(old.size, checkpoint.size)


class _Leaves(NamedTuple):
    states: list[bytes]  # each line's stored state, in order
    builder: merkle.Builder  # the tree over the lines
    kept: dict[Node, bytes]  # the subtree hashes asked for


def _read_leaves(events_file: Path, size: int, needed: set[Node]) -> _Leaves:
    """Read ``events.jsonl``: exactly ``size`` whole lines, each for its position, built
    into a tree, keeping the hashes of the ``needed`` subtrees."""
    kept: dict[Node, bytes] = {}
    builder = merkle.Builder()
    states = []
    with events_file.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.endswith(b"\n"):
                raise TamperedError(
                    f"{events_file} line {number} is cut short (no newline)"
                )
            if number > size:
                raise TamperedError(
                    f"{events_file} has more than the {size} events its checkpoint signs"
                )
            line = line[:-1]
            try:
                states.append(state_of(line, number))
            except LedgerError as error:
                raise TamperedError(f"{events_file}: {error}") from None
            for level, index, h in builder.add(merkle.leaf_hash(line)):
                if (level, index) in needed:
                    kept[Node(level, index)] = h
    if builder.size != size:
        raise TamperedError(
            f"{events_file} has {builder.size} events; the checkpoint signs "
            f"{size}: the export is truncated"
        )
    return _Leaves(states, builder, kept)


def _verify_export_consistency(
    old: Checkpoint, source: str, checkpoint: Checkpoint, proof: list[bytes]
) -> None:
    try:
        merkle.verify_consistency(
            old.size, checkpoint.size, old.root, checkpoint.root, proof
        )
    except merkle.ProofError as error:
        raise TamperedError(
            f"{source} is not consistent with the export ({error}): history was rewritten"
        ) from None


def open_trusted(path: Path, verifier: Verifier) -> tuple[Checkpoint, str]:
    """A checkpoint an auditor kept, opened with the key they trust."""
    source = f"the trusted checkpoint {path}"
    try:
        return open_checkpoint(path.read_text(), verifier), source
    except OSError as error:
        raise LedgerError(f"cannot read {path}: {error.strerror}") from None
    except NoteError as error:
        raise TamperedError(f"{source}: {error}") from None


def proof_json(hashes: Iterable[bytes], **fields: int) -> dict[str, Any]:
    return {**fields, "hashes": [b64(h) for h in hashes]}


def check_signer(signer: Signer | None) -> Signer:
    if signer is None:
        raise LedgerError("this ledger has no signing key (signing.key is missing)")
    return signer
