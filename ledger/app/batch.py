"""The write side's working state: one batch's overlay of streams, and the streams a
long-lived writer keeps between batches.

A batch is decided against a :class:`MemoryWorld`: streams come from the store the first
time a decision asks for them, the batch's own events are applied on top (so a batch may
register a partner and file a case for it), and what was read is remembered as a
:class:`ReadSet` that the store checks under its write lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.cases import TERMINAL_STAGES
from arms_ledger.ledger.domain.streams import Stream
from arms_ledger.ledger.domain.world import Overlay
from arms_ledger.ledger.store.recorder import ReadSet


class MemoryWorld(Overlay):
    """The overlay of one batch (``ledger.domain.world.Overlay``) over the store, which
    also remembers the version of every stream it read (the batch's ``ReadSet``) and
    can prefetch the streams a batch will ask for."""

    def __init__(
        self,
        load_stream: Callable[[str], Stream] | None = None,
        load_thresholds: Callable[[], list[ev.NotificationThresholdsSet]] | None = None,
        prefetch: Callable[[list[str]], None] | None = None,
        load_event: Callable[[int], ev.Event | None] | None = None,
        load_head: Callable[[], int] | None = None,
    ):
        super().__init__(load_stream, load_thresholds, load_event, load_head)
        self._prefetch = prefetch
        self._read: dict[str, int] = {}

    def _loaded(self, key: str) -> Stream:
        found = super()._loaded(key)
        self._read[key] = found.version
        return found

    def read_set(self, written: Iterable[str] = ()) -> ReadSet:
        """What the decisions so far read from the loader: the version of every stream,
        and how many threshold sets (None if none were read). The batch may be written
        only if the store still holds exactly this; otherwise it must be decided again.
        Streams the batch ``written`` to are left out: writing the version after the one
        read already fails if another writer got there first."""
        thresholds = None if self._thresholds is None else len(self._thresholds)
        skip = set(written)
        streams = {k: v for k, v in self._read.items() if k not in skip}
        return ReadSet(streams, thresholds, self.head)

    def prefetch_batch(self, events: Iterable[ev.Event]) -> None:
        """Tell the loader every stream that deciding ``events`` will look at, so that it
        can read them ahead in two calls of ``prefetch`` (the events' own streams and the
        partners and platforms of the cases they file, then the partners of the cases
        they make offers for) instead of one read per stream."""
        if self._prefetch is None:
            return
        events = list(events)
        keys = []
        for e in events:
            keys.append(e.stream)
            if isinstance(e, ev.CaseFiled):
                keys.append(f"partner:{e.partner}")
                keys.append(f"platform:{e.platform}")
        self._prefetch(keys)
        partners = []
        for e in events:
            if isinstance(e, ev.OfferIssued):
                case = self.stream(e.stream).case
                if case is not None:
                    partners.append(f"partner:{case.partner}")
        self._prefetch(partners)


class StreamCache:
    """Stream states kept between batches by a long-lived writer, and the
    NotificationThresholdsSet events seen (with log positions).

    Only states read from the store go in: each is a prefix of its stream's history,
    which the store only ever extends, so the writer reads the events after it. It is
    sized to the open cases: a case that has ended (closed, cancelled, expired) leaves
    it, since few events follow (an end-use check reads it again), and the partners,
    platforms and open cases stay, least recently used dropped first beyond
    ``MAX_STREAMS``. With 16,000 open cases a 10,000-event batch touches about 7,500
    streams; a cache smaller than the open cases re-reads and re-folds most of them
    on every batch (docs/benchmarks.md, "The writer's stream cache").
    """

    MAX_STREAMS = 65_536

    def __init__(self) -> None:
        self.streams: OrderedDict[str, Stream] = OrderedDict()
        self.thresholds: list[tuple[int, ev.NotificationThresholdsSet]] = []

    def get(self, key: str) -> Stream:
        found = self.streams.get(key)
        return Stream(key) if found is None else found

    def put(self, streams: dict[str, Stream]) -> None:
        kept = self.streams
        for key, stream in streams.items():
            if stream.case is not None and stream.case.stage in TERMINAL_STAGES:
                kept.pop(key, None)
            elif stream.version:
                kept[key] = stream
                kept.move_to_end(key)
        while len(kept) > self.MAX_STREAMS:
            kept.popitem(last=False)
