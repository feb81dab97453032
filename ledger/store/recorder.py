"""The recorder's engine-neutral part: the write sequence, and the reads of the log.

``LogRecorder`` is mixed into the library's SQLite and PostgreSQL application recorders
(``sqlite.py``, ``postgres.py``). Each engine gives a transaction (``_tx``), a plain
read (``_select``) and the row insert (``_insert_rows``); everything else is here: the
read-set check, stamping after the log's last event, numbering, the Merkle tree and the
checkpoints in the same transaction; the reads (the read side's ``LogReader``, the last
stamp, the stored tree and checkpoints) are ``reading.LogReading``, which it extends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
from arms_ledger.ledger import progress as reporting
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import MICROSECOND, format_recorded, parse_instant
from arms_ledger.ledger.errors import Conflict
from arms_ledger.ledger.store.reading import PAGE, LogReading, recorded_at_of
from arms_ledger.ledger.transparency import merkle
from arms_ledger.ledger.transparency.note import (
    Checkpoint,
    NoteError,
    Signer,
    open_checkpoint,
)
from arms_ledger.ledger.transparency.tlog import LogSource, TamperedError
from eventsourcing.persistence import IntegrityError, StoredEvent

__all__ = [
    "PAGE",
    "LogRecorder",
    "ReadSet",
    "StampConflict",
    "after_head",
    "recorded_at_of",
]


class ReadSet(NamedTuple):
    streams: dict[str, int]  # stream key -> version read (0: the stream did not exist)
    thresholds: int | None  # NotificationThresholdsSet events read, if any
    # The log's last position, if a decision named an event of the batch by position.
    head: int | None = None


class StampConflict(Exception):
    """A recorded history's ``recorded_at`` is not after the log's last event."""

    def __init__(self, previous: str):
        self.previous = previous
        super().__init__(previous)


def after_head(
    stored_events: Sequence[StoredEvent], previous: str | None, *, restamp: bool
) -> Sequence[StoredEvent]:
    """Keep ``recorded_at`` strictly increasing across the log, under the write lock.

    The application stamps a batch from its clock; if another writer committed a later
    stamp since (or the clocks disagree), the batch is re-stamped to follow it by one
    microsecond per event. A recorded history (``restamp=False``) is refused instead.
    """
    if previous is None or recorded_at_of(stored_events[0].state) > previous:
        return stored_events
    if not restamp:
        raise StampConflict(previous)
    start = parse_instant(previous)
    restamped = []
    for i, stored in enumerate(stored_events, start=1):
        event = msgspec.structs.replace(
            ev.decoder.decode(stored.state),
            recorded_at=format_recorded(start + i * MICROSECOND),
        )
        restamped.append(
            StoredEvent(
                originator_id=stored.originator_id,
                originator_version=stored.originator_version,
                topic=stored.topic,
                state=ev.encoder.encode(event),
            )
        )
    return restamped


if TYPE_CHECKING:
    # For the type checker, the mixin is the library's recorder it is mixed into: the
    # ledger uses both sides through one ``recorder``. At run time it is a plain mixin,
    # placed before the engine's recorder in each class's bases.
    from eventsourcing.persistence import ApplicationRecorder as _Mixed
else:
    _Mixed = object


class LogRecorder(LogReading, _Mixed):
    """What the ledger needs of its store beyond the library's recorder, on any engine.

    A recorder class mixes this in and gives ``_tx(commit)``, a transaction yielding a
    DB-API cursor whose rows index by position, ``_select`` and ``tree``, the SQL of the
    Merkle tree in its dialect (``reading.LogReading``). Its insert extends the tree in
    the same transaction as the events and signs a checkpoint of every append when
    ``signer`` is set.
    """

    signer: Signer | None = None
    # Called with each checkpoint note once its transaction has committed (the ledger's
    # directory keeps the newest outside the store: ``boundary.LATEST_CHECKPOINT``).
    on_checkpoint: Callable[[str], None] | None = None
    _unpublished: str | None = None

    def snapshot(self) -> AbstractContextManager[LogSource]:
        """The stored log, tree and checkpoints as of one moment, for ``tlog.verify``."""
        raise NotImplementedError

    def extend_tree(self) -> int:
        """Add the events the tree lacks (a ledger from before the tree; SQLite only)."""
        raise NotImplementedError

    # The index the reads by type use (``of_types``; the write path's thresholds): on
    # (topic, position), so that those few events are one range of it.
    topic_index: str

    def upgrade_store(self) -> bool:
        """Bring a store made by an earlier version up to this one's indexes (the
        ``topic_index``), when a ledger is opened for writing; True if it changed
        anything. Idempotent, and safe against writers and other upgraders."""
        raise NotImplementedError

    def has_topic_index(self) -> bool:
        """Whether the store has its ``topic_index``."""
        raise NotImplementedError

    def _check_read_set(self, c: Any, read_set: ReadSet | None) -> None:
        """Under the write lock: refuse the batch (IntegrityError: the application
        decides it again) if a stream its decisions read has moved on since. Streams the
        batch writes are also guarded by the primary key; this covers the ones it only
        read, such as a partner suspended by another writer meanwhile."""
        if read_set is None:
            return
        if read_set.head is not None and self._head(c)[0] != read_set.head:
            # Not decided again: the batch's own positions have moved under it.
            raise Conflict(
                "another writer appended while this batch was being decided, and it "
                "names its own events by log position (a correction): they are no "
                "longer at those positions; nothing was written — number them again "
                "from the log's end and append the batch again"
            )
        keys = list(read_set.streams)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            c.execute(
                f"SELECT originator_id, max(originator_version) FROM {self.events_table} "
                f"WHERE originator_id IN ({', '.join([self.tree.p] * len(chunk))}) "
                "GROUP BY originator_id",
                chunk,
            )
            for key, version in c.fetchall():
                if version != read_set.streams[key]:
                    raise IntegrityError(
                        f"{key} is at version {version}, "
                        f"not {read_set.streams[key]} as read"
                    )
        if read_set.thresholds is not None:
            c.execute(
                f"SELECT count(*) FROM {self.events_table} WHERE topic = {self.tree.p}",
                ("NotificationThresholdsSet",),
            )
            if c.fetchone()[0] != read_set.thresholds:
                raise IntegrityError(
                    "the notification thresholds changed since they were read"
                )

    # Whether this ledger's key is the only one that signs the store's log (a SQLite
    # file in the ledger's directory; a PostgreSQL log may be shared by several offices,
    # each signing with its own key): then, on a ledger that signs every append, every
    # event must lie under the newest checkpoint it signed before it signs another.
    sole_signer = False

    def _extend_and_sign(
        self, c: Any, positions: Sequence[int], states: Sequence[bytes]
    ) -> None:
        tree = self.tree.extend(c, positions, states)  # refuses a tree short of the log
        if self.signer is not None:
            head = positions[0] - 1 if self.sole_signer else None
            self._sign(c, self.signer, tree.size, tree.root(), head)

    def _check_before_signing(
        self, c: Any, signer: Signer, size: int, root: bytes, head: int | None
    ) -> None:
        """Before signing the tree of ``size`` with ``root``, against the newest
        checkpoint this key signed (read once):

        - with ``head`` (an append on a log only this key signs, with a checkpoint at
          every append): refuse events after that checkpoint, before the batch's own,
          which were written by someone without the key (or restored from elsewhere);
        - always: that checkpoint must be a prefix of the tree (a consistency proof from
          the stored nodes), so that a checkpoint never vouches for a tree rewritten
          under an older one."""
        mine = self.tree.latest_checkpoint(c, str(signer.verifier))
        if mine is None:
            return
        if head is not None and mine.size < head:
            raise TamperedError(
                f"the log holds {head - mine.size:,} event(s) after the newest "
                f"checkpoint this ledger signed (positions {mine.size + 1} to {head}), "
                "which its key never signed: written without the key, or restored from "
                "elsewhere; nothing was written, and no checkpoint is signed over them; "
                "`arms-ledger audit verify` shows the log"
            )
        if mine.size == 0:
            return
        try:
            old = open_checkpoint(mine.note, signer.verifier)
            proof = merkle.prove_consistency(
                old.size, size, lambda wanted: self.tree.nodes(c, wanted)
            )
            merkle.verify_consistency(old.size, size, old.root, root, proof)
        except (NoteError, merkle.ProofError) as error:
            raise TamperedError(
                f"the tree of {size:,} events is not an extension of the newest "
                f"checkpoint this ledger signed ({mine.size:,} events): {error}; no "
                "checkpoint is signed over it; `arms-ledger audit verify` shows where"
            ) from None

    def _insert_rows(
        self, c: Any, positions: Sequence[int], stored_events: Sequence[StoredEvent]
    ) -> None:
        raise NotImplementedError

    def _write_locked(
        self,
        c: Any,
        stored_events: Sequence[StoredEvent],
        restamp: bool,
        read_set: ReadSet | None,
    ) -> list[int]:
        """The batch's write, the write lock held: check what its decisions read, stamp it
        after the last event, number it after the last position, insert it, extend the tree
        and sign. Returns the positions."""
        self._unpublished = None
        self._check_read_set(c, read_set)
        head, last = self._head(c)
        stored_events = after_head(stored_events, last, restamp=restamp)
        positions = list(range(head + 1, head + 1 + len(stored_events)))
        reporting.reach(len(stored_events))  # the events are encoded
        self._insert_rows(c, positions, stored_events)
        reporting.reach(2 * len(stored_events))  # and inserted (sqlite: told as it goes)
        self._extend_and_sign(c, positions, [s.state for s in stored_events])
        return positions

    def _sign(
        self, c: Any, signer: Signer, size: int, root: bytes, head: int | None = None
    ) -> str:
        self._check_before_signing(c, signer, size, root, head)
        note = signer.sign(Checkpoint(signer.name, size, root).text())
        self.tree.store_checkpoint(c, note, size, signer.verifier)
        self._unpublished = note
        return note

    def _publish(self) -> None:
        """After a commit: hand the checkpoint it stored, if any, to ``on_checkpoint``."""
        note, self._unpublished = self._unpublished, None
        if note is not None and self.on_checkpoint is not None:
            self.on_checkpoint(note)

    def sign_checkpoint(self, signer: Signer) -> str:
        """Sign and store a checkpoint of the log as it is now; returns the note."""
        with self._tx(commit=True) as c:
            size = self.tree.size(c)
            root = merkle.root_from(size, self.tree.nodes(c, merkle.frontier_nodes(size)))
            note = self._sign(c, signer, size, root)
        self._publish()
        return note

    def store_cosignature(self, note: str, size: int, witness: Any) -> None:
        """Keep a witness's cosignature of the checkpoint of ``size``: the checkpoint's
        note with the witness's signature line, stored under the witness's key (one per
        size and witness, never overwritten); not published as the newest checkpoint."""
        with self._tx(commit=True) as c:
            self.tree.store_checkpoint(c, note, size, witness)

    def store_checkpoint(self, note: str, size: int, verifier: Any) -> None:
        with self._tx(commit=True) as c:
            self.tree.store_checkpoint(c, note, size, verifier)
        self._unpublished = note
        self._publish()
