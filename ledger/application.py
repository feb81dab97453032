"""The ledger application: the write side's only I/O boundary.

A batch of events is normalized, checked against the rules (``ledger.decision``) over
the state read from the store, and saved in one transaction: all or nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import msgspec
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError

from ledger import events as ev
from ledger.clock import MICROSECOND, format_instant, now
from ledger.decision import (
    MemoryWorld,
    Stream,
    decide,
    evolve,
    find_duplicate,
    instant,
    normalize,
)
from ledger.errors import (
    BatchRefused,
    Conflict,
    Invalid,
    LedgerError,
    NoLedger,
    Refused,
)
from ledger.store import Pending, Recorded, StampConflict, sqlite_env

FORMAT = 1
META_FILE = "ledger.json"
EVENTS_DB = "events.db"


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

    def __init__(self, env: dict[str, str]):
        super().__init__(env=env)

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
        world = MemoryWorld(self.load_stream, self._load_thresholds)
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
        if not pending:
            return AppendResult([], skipped)
        processing = ProcessingEvent[str]()
        processing.events.extend(pending)  # skips save()'s per-object Protocol checks
        processing.saved_kwargs["restamp"] = not explicit_stamps
        recordings = self._record(processing)
        return AppendResult([r.notification.id for r in recordings], skipped)

    # --- reading -------------------------------------------------------------------

    def load_stream(self, key: str, version: int | None = None) -> Stream:
        """A stream's state folded from the store, at ``version`` if given."""
        state = Stream(key)
        for recorded in self.events.get(key, lte=version):
            state = evolve(state, recorded.event)
        return state

    def _load_thresholds(self) -> list[ev.NotificationThresholdsSet]:
        return [r.event for r in self.read(types=("NotificationThresholdsSet",))]

    def read(
        self,
        *,
        after: int = 0,
        upto: int | None = None,
        types: Iterable[str] = (),
        page: int = 1000,
    ) -> Iterator[Recorded]:
        """The log in order, from position ``after`` (exclusive) to ``upto``."""
        topics = tuple(types)
        while True:
            notifications = self.recorder.select_notifications(
                start=after, limit=page, stop=upto, topics=topics, inclusive_of_start=False
            )
            if not notifications:
                return
            for notification in notifications:
                yield self.mapper.to_domain_event(notification)
            after = notifications[-1].id

    def stream_records(self, key: str) -> list[Recorded]:
        """One stream's events, oldest first, with their log positions."""
        return [self.mapper.to_domain_event(n) for n in self.recorder.select_stream(key)]

    def head(self) -> int:
        return self.recorder.max_notification_id() or 0


# --- the ledger's location ---------------------------------------------------------------


def create(path: Path) -> Ledger:
    """Make a new, empty ledger in directory ``path``."""
    meta = path / META_FILE
    if meta.exists():
        raise LedgerError(f"there is already a ledger at {path}")
    if path.exists() and not path.is_dir():
        raise LedgerError(f"{path} exists and is not a directory")
    if path.exists() and any(path.iterdir()):
        raise LedgerError(f"{path} is not empty; choose a new or empty directory")
    path.mkdir(parents=True, exist_ok=True)
    app = Ledger(sqlite_env(str(path / EVENTS_DB)))
    meta.write_text(
        json.dumps(
            {"format": FORMAT, "store": "sqlite", "created_at": format_instant(now())},
            indent=2,
        )
        + "\n"
    )
    return app


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
    if info.get("format") != FORMAT:
        raise LedgerError(
            f"{path} has ledger format {info.get('format')!r}; this version reads "
            f"format {FORMAT}"
        )
    return Ledger(sqlite_env(str(path / EVENTS_DB)))
