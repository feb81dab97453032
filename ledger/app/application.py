"""The ledger application: the write side's use cases.

A batch of events is normalized, checked against the rules (``ledger.domain.rules``)
over the state read from the store, and saved in one transaction: all or nothing. The
ledger's directory (``ledger.json``, keys, creating and opening) is ``directory.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import cast

import msgspec
from arms_ledger.ledger.app.batch import MemoryWorld, StreamCache
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import MICROSECOND, format_instant, instant, now
from arms_ledger.ledger.domain.intake import find_duplicate, normalize
from arms_ledger.ledger.domain.records import Recorded
from arms_ledger.ledger.domain.rules import decide
from arms_ledger.ledger.domain.streams import Stream, evolve, fold
from arms_ledger.ledger.errors import BatchRefused, Conflict, Invalid, LedgerError, Refused
from arms_ledger.ledger.store.mapper import Pending
from arms_ledger.ledger.store.recorder import LogRecorder, StampConflict
from arms_ledger.ledger.transparency import merkle, tlog
from arms_ledger.ledger.transparency.note import Checkpoint, Signer, open_checkpoint
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError


class Skipped(msgspec.Struct, frozen=True):
    index: int
    stream: str
    version: int


class AppendResult(msgspec.Struct, frozen=True):
    positions: list[int]
    skipped: list[Skipped]


class Ledger(Application[str]):
    """An eventsourcing Application over the ledger's event store."""

    name = "Ledger"
    store = "sqlite"  # or the PostgreSQL URL (ledger.json's "store")

    def __init__(
        self, env: dict[str, str], signer: Signer | None = None, checkpoints: str = "manual"
    ):
        super().__init__(env=env)
        self.signer = signer
        if checkpoints == "append":
            self.recorder.signer = signer  # every append signs a checkpoint

    # --- writing -------------------------------------------------------------------

    def append(
        self,
        events: Sequence[ev.Event],
        *,
        retries: int = 3,
        clock: Callable[[], datetime] = now,
        progress: Callable[[int], None] | None = None,
    ) -> AppendResult:
        """Validate and append a batch atomically; ``recorded_at`` is stamped here.

        A conflict with another writer (a stream or the log moved on since it was
        read) re-runs the decisions on the new state, at most ``retries`` times.
        """
        for _ in range(retries + 1):
            last = self.recorder.last_recorded_at()
            start = clock()
            if last is not None and instant(last) >= start:
                start = instant(last) + MICROSECOND
            try:
                return self._append(
                    events,
                    lambda i, _, t=start: t + i * MICROSECOND,
                    explicit_stamps=False,
                    progress=progress,
                )
            except IntegrityError:
                continue
        streams = sorted({e.stream for e in events})
        raise Conflict(
            f"other writers appended to {', '.join(streams[:5])}"
            f"{' …' if len(streams) > 5 else ''} while this batch was being decided, "
            f"{retries + 1} times; nothing was written — run the command again"
        )

    def import_history(self, events: Sequence[ev.Event]) -> AppendResult:
        """Load a recorded history (every event carries its ``recorded_at``).

        Only into an empty ledger: this is how a demo or a replica starts. Every rule
        is checked as for ``append``, and ``recorded_at`` must strictly increase.
        """
        if self.recorder.max_notification_id():
            raise Invalid("a recorded history can only be loaded into an empty ledger")
        return self.append_history(events)

    def append_history(self, events: Sequence[ev.Event]) -> AppendResult:
        """Append a recorded history after the log's last event, as ``import_history``
        does into an empty ledger (a history loaded in parts: every ``recorded_at``
        after the log's last one, or Conflict)."""
        previous: list[datetime] = []

        def stamp(index: int, event: ev.Event) -> datetime:
            if event.recorded_at is None:
                raise Invalid("recorded_at is missing: a recorded history carries it")
            at = instant(event.recorded_at)
            if previous and at <= previous[0]:
                raise Invalid(
                    f"recorded_at {event.recorded_at} is not after the previous event's "
                    f"{format_instant(previous[0])}"
                )
            previous[:] = [at]
            return at

        try:
            return self._append(events, stamp, explicit_stamps=True)
        except StampConflict as conflict:
            raise Conflict(f"the ledger was written to at {conflict.previous}") from None

    def _append(
        self,
        events: Sequence[ev.Event],
        stamp: Callable[[int, ev.Event], datetime],
        *,
        explicit_stamps: bool,
        progress: Callable[[int], None] | None = None,
    ) -> AppendResult:
        """Decide every event of the batch, then save them all in one transaction.

        ``progress(n)`` is called after every 1,000 events decided.
        """
        world = MemoryWorld(self.load_stream, self._load_thresholds, self._prefetch)
        try:
            pending, skipped = self._decide_batch(
                world, events, stamp, explicit_stamps, progress
            )
        finally:
            self._prefetched().clear()
        if not pending:
            return AppendResult([], skipped)
        # The event store's public put (the mapper, then the recorder's insert_events
        # with these keywords); save() would first check every object against the
        # library's aggregate and event protocols, which Pending is not.
        recordings = self.events.put(
            pending,
            restamp=not explicit_stamps,
            read_set=world.read_set(written={p.originator_id for p in pending}),
        )
        self._remember_written(world, pending)
        return AppendResult([r.notification.id for r in recordings], skipped)

    @staticmethod
    def _decide_batch(
        world: MemoryWorld,
        events: Sequence[ev.Event],
        stamp: Callable[[int, ev.Event], datetime],
        explicit_stamps: bool,
        progress: Callable[[int], None] | None,
    ) -> tuple[list[Pending], list[Skipped]]:
        world.prefetch_batch(events)
        pending: list[Pending] = []
        skipped: list[Skipped] = []
        for index, raw in enumerate(events):
            try:
                at = stamp(len(pending), raw)
                if explicit_stamps:
                    raw = msgspec.structs.replace(raw, recorded_at=None)
                event = normalize(raw, at)
                stream = world.stream(event.stream)
                duplicate = find_duplicate(stream, event, raw.effective_at is not None)
                if duplicate is not None:
                    skipped.append(Skipped(index, event.stream, duplicate))
                    continue
                decide(event, stream, world)
            except (Invalid, Refused) as error:
                raise BatchRefused(index, type(raw).__name__, error) from None
            world.apply(event)
            pending.append(Pending(event.stream, stream.version + 1, event))
            if progress is not None and index % 1000 == 999:
                progress(1000)
        return pending, skipped

    # --- reading -------------------------------------------------------------------

    def load_stream(self, key: str, version: int | None = None) -> Stream:
        """A stream's state folded from the store, at ``version`` if given."""
        if version is None:
            found = self._prefetched().get(key)
            return self._load_streams([key])[key] if found is None else found
        return self._fold_stream(key, version)

    def _fold_stream(self, key: str, version: int | None = None) -> Stream:
        state = Stream(key)
        for recorded in self.events.get(key, lte=version):
            state = evolve(state, recorded.event)
        return state

    def _load_thresholds(self) -> list[ev.NotificationThresholdsSet]:
        """Every NotificationThresholdsSet in log order; only those after the last one
        seen are read (they are few, and the log only grows)."""
        cache = self._write_cache()
        known = cache.thresholds
        after = known[-1][0] if known else 0
        for r in self.read(after=after, types=("NotificationThresholdsSet",)):
            known.append((r.position, r.event))
        return [event for _, event in known]

    # Streams for decisions: one query per batch, and a bounded cache of stream states
    # as read from the store. A cached state is a prefix of its stream's history (events
    # are never changed or removed), so a batch reads every stream it needs again but
    # decodes and folds only the events after the cached version: exactly the state the
    # store holds, as if it had been folded from the start.

    def _write_cache(self) -> StreamCache:
        cache = self.__dict__.get("_write_path_cache")
        if cache is None:
            cache = self.__dict__["_write_path_cache"] = StreamCache()
        return cache

    def _prefetched(self) -> dict[str, Stream]:
        """The streams read ahead for the batch this thread is deciding."""
        local = self.__dict__.get("_write_path_local")
        if local is None:
            import threading

            local = self.__dict__["_write_path_local"] = threading.local()
        found = getattr(local, "streams", None)
        if found is None:
            found = local.streams = {}
        return found

    def _prefetch(self, keys: list[str]) -> None:
        """Read ahead the streams a batch will ask ``load_stream`` for, in one query."""
        prefetched = self._prefetched()
        wanted = [key for key in dict.fromkeys(keys) if key not in prefetched]
        if wanted:
            prefetched.update(self._load_streams(wanted))

    def _load_streams(self, keys: list[str]) -> dict[str, Stream]:
        """The current state of each stream in ``keys``, read in one transaction."""
        if not isinstance(self.recorder, LogRecorder):
            return {key: self._fold_stream(key) for key in keys}
        select = self.recorder.select_streams
        cache = self._write_cache()
        streams = {key: cache.get(key) for key in keys}
        after = {key: stream.version for key, stream in streams.items()}
        decode = ev.decoder.decode
        newer: dict[str, list[ev.Event]] = {}
        for key, version, state in select(after):
            if version > after[key]:
                newer.setdefault(key, []).append(decode(state))
        for key, events in newer.items():
            streams[key] = fold(streams[key], events)
        cache.put(streams)
        return streams

    def _remember_written(self, world: MemoryWorld, pending: list[Pending]) -> None:
        """Keep the states of the streams just written, unless the store re-stamped the
        batch (another writer's later stamp): then the stored events differ from these in
        ``recorded_at``, and the next batch reads them back instead. The log's last stamp
        is this batch's own exactly when it was stored as decided (stamps only increase)."""
        if self.recorder.last_recorded_at() != pending[-1].event.recorded_at:
            return
        self._write_cache().put(
            {
                key: world.stream(key)
                for key in dict.fromkeys(p.originator_id for p in pending)
            }
        )

    @property
    def reader(self) -> LogRecorder:
        """The log as the read side reads it (``projections.source.LogReader``): the
        recorder itself, with no signing key and no application around it."""
        return cast(LogRecorder, self.recorder)

    def read(
        self,
        *,
        after: int = 0,
        upto: int | None = None,
        types: Iterable[str] = (),
    ) -> Iterator[Recorded]:
        """The log in order, from position ``after`` (exclusive) to ``upto``."""
        topics = tuple(types)
        if topics:
            yield from self.reader.of_types(topics, after=after, upto=upto)
            return
        for page in self.reader.pages(after, self.head() if upto is None else upto):
            for position, stream, version, event in page:
                yield Recorded(stream, version, event, position)

    def stream_records(self, key: str) -> list[Recorded]:
        """One stream's events, oldest first, with their log positions."""
        return self.reader.stream(key)

    def head(self) -> int:
        return self.reader.head()

    # --- the transparency log (ledger.tlog) --------------------------------------------

    def tree_size(self) -> int:
        return self.recorder.tree_size()

    def _size(self, size: int | None) -> int:
        current = self.tree_size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise Invalid(
                f"--size {size}: the log has {current} events (sizes 0 to {current})"
            )
        return size

    def root(self, size: int | None = None) -> bytes:
        n = self._size(size)
        return merkle.root_from(n, self.recorder.tree_nodes(merkle.frontier_nodes(n)))

    def prove_inclusion(
        self, index: int, size: int | None = None
    ) -> tuple[int, list[bytes]]:
        n = self._size(size)
        if not 0 <= index < n:
            raise Invalid(
                f"leaf index {index} is not in a tree of {n} events "
                f"(leaf indexes are 0-based: 0 to {n - 1}; position = index + 1)"
                if n
                else "a tree of 0 events has no leaves: there is nothing to prove"
            )
        return n, merkle.prove_inclusion(index, n, self.recorder.tree_nodes)

    def prove_consistency(
        self, old: int, size: int | None = None
    ) -> tuple[int, list[bytes]]:
        n = self._size(size)
        if not 0 < old <= n:
            raise Invalid(f"old size {old}: it must be between 1 and the new size {n}")
        return n, merkle.prove_consistency(old, n, self.recorder.tree_nodes)

    def sign_checkpoint(self) -> str:
        """Sign, store and return a checkpoint of the log as it is now."""
        return self.recorder.sign_checkpoint(tlog.check_signer(self.signer))

    def checkpoints(self) -> list[tlog.StoredCheckpoint]:
        return self.recorder.checkpoints()

    def latest_checkpoint(self) -> tuple[str, Checkpoint]:
        """The newest checkpoint signed by this ledger's key, signing one if none covers
        the whole log."""
        signer = tlog.check_signer(self.signer)
        mine = self.recorder.latest_checkpoint(str(signer.verifier))
        if mine is not None and mine.size == self.tree_size():
            note = mine.note
        else:
            note = self.sign_checkpoint()
        return note, open_checkpoint(note, signer.verifier)

    def verify(self, trusted: Sequence[tuple[Checkpoint, str]] = ()) -> tlog.Report:
        """Recompute every leaf and node from the stored events and check every
        checkpoint; TamperedError names the first difference."""
        own = None if self.signer is None else self.signer.verifier
        with self.recorder.snapshot() as log:
            return tlog.verify(log, own, trusted)

    def export(self, directory: Path) -> Checkpoint:
        """Write events.jsonl (the leaves), the latest checkpoint and the verifier key."""
        check_new_directory(directory)
        note, checkpoint = self.latest_checkpoint()
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / tlog.EXPORT_EVENTS).open("wb") as out:
            after = 0
            while after < checkpoint.size:
                page = self.recorder.select_notifications(
                    start=after, limit=1000, stop=checkpoint.size, inclusive_of_start=False
                )
                out.writelines(tlog.leaf_line(n.id, n.state) + b"\n" for n in page)
                after = page[-1].id
        (directory / tlog.EXPORT_CHECKPOINT).write_text(note)
        (directory / tlog.EXPORT_KEY).write_text(
            f"{tlog.check_signer(self.signer).verifier}\n"
        )
        return checkpoint

    def import_export(self, export: tlog.Export) -> int:
        """Load a verified export into this empty ledger, keeping its checkpoint.

        A refused event raises ``BatchRefused`` as ``import_history`` does: its index is
        the event's line in events.jsonl, less one (the caller words the message)."""
        events = []
        for position, state in enumerate(export.states, start=1):
            try:
                event = ev.decoder.decode(state)
            except (msgspec.ValidationError, msgspec.DecodeError) as error:
                raise Invalid(f"line {position}: {error}") from None
            if ev.encoder.encode(event) != state:
                raise Invalid(f"line {position} is not in the ledger's canonical encoding")
            events.append(event)
        result = self.import_history(events)
        if self.root(export.checkpoint.size) != export.checkpoint.root:
            raise tlog.TamperedError(
                "the replica's root differs from the export's checkpoint"
            )
        self.recorder.store_checkpoint(export.note, export.checkpoint.size, export.verifier)
        return len(result.positions)


def check_new_directory(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise LedgerError(f"{path} exists and is not a directory")
    if path.exists() and any(path.iterdir()):
        raise LedgerError(f"{path} is not empty; choose a new or empty directory")
