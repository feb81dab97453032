"""The ledger application: the write side's use cases.

A batch of events is normalized, checked against the rules (``ledger.domain.rules``)
over the state read from the store, and saved in one transaction: all or nothing. The
ledger's directory (``ledger.json``, keys, creating and opening) is ``directory.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

import msgspec
from arms_ledger.ledger import progress as reporting
from arms_ledger.ledger.app.batch import MemoryWorld, StreamCache
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import (
    MICROSECOND,
    MicrosecondsFrom,
    format_instant,
    instant,
    now,
)
from arms_ledger.ledger.domain.intake import (
    complete_correction,
    find_duplicate,
    normalize,
)
from arms_ledger.ledger.domain.records import Recorded
from arms_ledger.ledger.domain.rules import decide
from arms_ledger.ledger.domain.streams import Stream, evolve, fold
from arms_ledger.ledger.errors import BatchRefused, Conflict, Invalid, LedgerError, Refused
from arms_ledger.ledger.store.mapper import EventMapper, Pending
from arms_ledger.ledger.store.recorder import LogRecorder, StampConflict
from arms_ledger.ledger.transparency.note import Signer
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import Environment, EnvType


class Skipped(msgspec.Struct, frozen=True):
    index: int
    stream: str
    version: int


class AppendResult(msgspec.Struct, frozen=True):
    positions: list[int]
    skipped: list[Skipped]


class Stamper(Protocol):
    """How a batch's events get their ``recorded_at``: ``stamp(n, event)`` is the event
    to normalize (its own ``recorded_at`` taken off), the time for the batch's ``n``-th
    event written and that time's text (``format_recorded``, or None: normalize makes
    it); ``restamp`` lets the store move the batch after a later writer's."""

    restamp: bool

    def stamp(
        self, index: int, event: ev.Event
    ) -> tuple[ev.Event, datetime, str | None]: ...


class ClockStamps:
    """``append``: the batch's events are recorded one microsecond apart from ``start``
    (the clock, after the log's last stamp); the store re-stamps them if another writer
    committed a later one meanwhile."""

    restamp = True

    def __init__(self, start: datetime):
        self.start = start
        self._times = MicrosecondsFrom(start)

    def stamp(self, index: int, event: ev.Event) -> tuple[ev.Event, datetime, str | None]:
        return event, self._times.at(index), self._times.text(index)


class RecordedStamps:
    """A recorded history: every event carries its ``recorded_at``, strictly increasing,
    and the store refuses the batch (``StampConflict``) rather than re-stamp it."""

    restamp = False

    def __init__(self) -> None:
        self.previous: datetime | None = None

    def stamp(self, index: int, event: ev.Event) -> tuple[ev.Event, datetime, str | None]:
        if event.recorded_at is None:
            raise Invalid("recorded_at is missing: a recorded history carries it")
        at = instant(event.recorded_at)
        if self.previous is not None and at <= self.previous:
            raise Invalid(
                f"recorded_at {event.recorded_at} is not after the previous event's "
                f"{format_instant(self.previous)}"
            )
        self.previous = at
        return msgspec.structs.replace(event, recorded_at=None), at, None


class Ledger(Application[str]):
    """An eventsourcing Application over the ledger's event store."""

    name = "Ledger"
    recorder: LogRecorder  # the store's recorder is always one (``store/``)
    store = "sqlite"  # or the PostgreSQL URL (ledger.json's "store")

    def __init__(
        self, env: dict[str, str], signer: Signer | None = None, checkpoints: str = "manual"
    ):
        super().__init__(env=env)
        self.signer = signer
        # The key checkpoints are checked with (verifier.key): reading needs no signer.
        self.verifier = None if signer is None else signer.verifier
        if checkpoints == "append":
            self.recorder.signer = signer  # every append signs a checkpoint

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """The store's settings exactly as the ledger gives them (``directory``): the
        library would also read the process environment (PERSISTENCE_MODULE,
        LEDGER_POSTGRES_HOST, ...), so that a variable set for something else could
        open another store. The variables the ledger reads are docs/environment.md's."""
        return Environment(name, dict(env or {}))

    # --- writing -------------------------------------------------------------------

    def append(
        self,
        events: Sequence[ev.Event],
        *,
        retries: int = 3,
        clock: Callable[[], datetime] = now,
        progress: Callable[[int], None] | None = None,
        dry_run: bool = False,
    ) -> AppendResult:
        """Validate and append a batch atomically; ``recorded_at`` is stamped here.

        A conflict with another writer (a stream or the log moved on since it was
        read) re-runs the decisions on the new state, at most ``retries`` times.
        ``dry_run``: decide the batch exactly so (every rule, the same refusals) and
        write nothing; the positions are those the events would take if nothing else
        were appended first.
        """
        for _ in range(retries + 1):
            last = self.recorder.last_recorded_at()
            start = clock()
            if last is not None and instant(last) >= start:
                start = instant(last) + MICROSECOND
            try:
                return self._append(events, ClockStamps(start), progress, dry_run)
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
        try:
            return self._append(events, RecordedStamps())
        except StampConflict as conflict:
            raise Conflict(f"the ledger was written to at {conflict.previous}") from None

    def _append(
        self,
        events: Sequence[ev.Event],
        stamper: Stamper,
        progress: Callable[[int], None] | None = None,
        dry_run: bool = False,
    ) -> AppendResult:
        """Decide every event of the batch, then save them all in one transaction
        (``dry_run``: save nothing, and say where they would go).

        ``progress(n)`` is called after every 1,000 events decided.
        """
        world = MemoryWorld(
            self.load_stream,
            self._load_thresholds,
            self._prefetch,
            self._event_at,
            self.head,
        )
        try:
            with reporting.phase("Deciding", len(events)):
                pending, skipped = self._decide_batch(world, events, stamper, progress)
        finally:
            self._prefetched().clear()
        if not pending:
            return AppendResult([], skipped)
        if dry_run:
            first = self.head() + 1
            return AppendResult(list(range(first, first + len(pending))), skipped)
        # What the event store's public put does (the mapper, then the recorder's
        # insert_events with these keywords), without the library's Recording and
        # Notification of each event it would build around the positions; save() would
        # first check every object against the library's aggregate and event protocols,
        # which Pending is not. Its steps: encoding each event, inserting each, adding
        # each to the tree (the recorder).
        with reporting.phase("Storing", 3 * len(pending)):
            stored = self._mapper.to_stored_events(pending)
            positions = self.recorder.insert_events(
                stored,
                restamp=stamper.restamp,
                read_set=world.read_set(written={p.originator_id for p in pending}),
            )
        self._remember_written(world, pending)
        return AppendResult(list(positions or ()), skipped)

    @staticmethod
    def _decide_batch(
        world: MemoryWorld,
        events: Sequence[ev.Event],
        stamper: Stamper,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[list[Pending], list[Skipped]]:
        world.prefetch_batch(events)
        pending: list[Pending] = []
        skipped: list[Skipped] = []
        for index, given in enumerate(events):
            try:
                raw, at, text = stamper.stamp(len(pending), given)
                event = normalize(raw, at, text)
                key = event.stream
                stream = world.stream(key)
                duplicate = find_duplicate(stream, event, raw.effective_at is not None)
                if duplicate is not None:
                    skipped.append(Skipped(index, event.stream, duplicate))
                    continue
                event = complete_correction(event, raw.effective_at is not None, world)
                decide(event, stream, world)
            except (Invalid, Refused) as error:
                raise BatchRefused(index, type(given).__name__, error) from None
            world.apply(event, key)
            pending.append(Pending(key, stream.version + 1, event))
            if index % 1000 == 999:
                reporting.advance(1000)
                if progress is not None:
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
            # The library types what its mapper returns by its protocol; ours (the
            # store's EventMapper) returns Recorded.
            assert isinstance(recorded, Recorded)
            state = evolve(state, recorded.event)
        return state

    def _event_at(self, position: int) -> ev.Event | None:
        """The event at a log position (events there never change: no read set)."""
        return self.reader.at([position]).get(position)

    def _load_thresholds(self) -> list[ev.NotificationThresholdsSet]:
        """Every NotificationThresholdsSet in log order; only those after the last one
        seen are read (they are few, and the log only grows)."""
        cache = self._write_cache()
        known = cache.thresholds
        after = known[-1][0] if known else 0
        for r in self.read(after=after, types=("NotificationThresholdsSet",)):
            assert r.position is not None  # read from the log
            assert isinstance(r.event, ev.NotificationThresholdsSet)
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
    def _mapper(self) -> EventMapper:
        """The store's mapper: always the ledger's (``MAPPER_TOPIC``, ``store/``)."""
        assert isinstance(self.mapper, EventMapper)
        return self.mapper

    @property
    def reader(self) -> LogRecorder:
        """The log as the read side reads it (``projections.source.LogReader``): the
        recorder itself, with no signing key and no application around it."""
        return self.recorder

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


def check_new_directory(path: Path) -> None:
    """A directory to write a new ledger, replica or export into: new, or empty, and
    named as itself (a symbolic link would put the files wherever it points)."""
    if path.is_symlink():
        raise LedgerError(
            f"{path} is a symbolic link; name the directory itself (the files would be "
            "written wherever the link points)"
        )
    if path.exists() and not path.is_dir():
        raise LedgerError(f"{path} exists and is not a directory")
    if path.exists() and any(path.iterdir()):
        raise LedgerError(f"{path} is not empty; choose a new or empty directory")
