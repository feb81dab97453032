"""Catching up reads only what the new events touch, not the whole log."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from arms_ledger.cli.demo import SCENARIO
from arms_ledger.cli.write import load_history
from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections import engine
from arms_ledger.projections.source import PAGE, LogReader, LogRow, Recorded

from tests.integration.projection_tables import assert_same_read_models


class Counting:
    """A LogReader that notes what is read through it, over another one."""

    def __init__(self, log: LogReader):
        self.log = log
        self.read: list[tuple[tuple[str, ...], int]] = []  # (types, position) read
        self.streams: list[str] = []
        self.positions: list[int] = []  # read by position

    def head(self) -> int:
        return self.log.head()

    def pages(self, after: int, upto: int, size: int = PAGE) -> Iterator[list[LogRow]]:
        for page in self.log.pages(after, upto, size):
            self.read += [((), row[0]) for row in page]
            yield page

    def at(self, positions: Sequence[int]) -> dict[int, ev.Event]:
        self.positions += positions
        return self.log.at(positions)

    def stream(self, key: str, upto: int | None = None) -> list[Recorded]:
        self.streams.append(key)
        return self.log.stream(key, upto)

    def of_types(
        self, types: Sequence[str], *, after: int = 0, upto: int | None = None
    ) -> list[Recorded]:
        found = self.log.of_types(types, after=after, upto=upto)
        self.read += [(tuple(types), r.position or 0) for r in found]
        return found


def test_one_new_event_reads_one_event_and_the_streams_it_touches(ledger, ledger_dir):
    load_history(ledger, SCENARIO)
    engine.live(ledger.reader, ledger_dir).close()
    delivery = {
        "type": "DeliveryRecorded",
        "case": "PL-B-ABR",
        "quantity": 4,
        "actor": "usasac",
    }
    ledger.append([ev.decoder.decode(json.dumps(delivery))])
    log = Counting(ledger.reader)
    queues: list[str] = []
    conn = engine.connect(ledger_dir / engine.PROJECTIONS_DB)
    conn.set_trace_callback(
        lambda sql: queues.append(sql) if "FROM queue WHERE platform" in sql else None
    )
    try:
        assert engine.catch_up(log, conn) == 1
    finally:
        conn.close()
    # The new event, and the three policy adoptions (through the type index) to know
    # the policy in force.
    policies = ("PriorityPolicyAdopted", "NotificationThresholdsSet")
    assert log.read == [((), 918), (policies, 1), (policies, 13), (policies, 760)]
    assert sorted(log.streams) == [
        "case:PL-B-ABR",
        "platform:m1a2-sepv3",
    ]  # not its partner
    assert len(queues) == 1 and "'m1a2-sepv3'" in queues[0]  # the one queue it changes


def test_a_current_projection_reads_nothing(ledger, ledger_dir):
    load_history(ledger, SCENARIO)
    engine.live(ledger.reader, ledger_dir).close()
    log = Counting(ledger.reader)
    engine.live(log, ledger_dir).close()
    assert (log.read, log.streams, log.positions) == ([], [], [])


def test_read_models_far_behind_are_rebuilt_not_caught_up(ledger, ledger_dir, monkeypatch):
    """A bulk append longer than the log so far (and than ``REBUILD_AFTER``) is brought
    in by one rebuild, not a catch-up; a shorter one is caught up. Either way the read
    models equal a rebuild's."""
    events = [ev.decoder.decode(line) for line in SCENARIO.read_bytes().splitlines()]
    monkeypatch.setattr(engine, "REBUILD_AFTER", 100)
    rebuilt: list[int] = []
    real = engine.rebuild

    def rebuild(log, path, progress=None):
        rebuilt.append(log.head())
        return real(log, path, progress)

    monkeypatch.setattr(engine, "rebuild", rebuild)
    ledger.import_history(events[:200])
    engine.live(ledger.reader, ledger_dir).close()  # missing, 200 behind: rebuilt
    ledger.append_history(events[200:350])  # 150 behind, fewer than the 200 held
    engine.live(ledger.reader, ledger_dir).close()
    ledger.append_history(events[350:])  # 561 behind, more than the 350 held
    engine.live(ledger.reader, ledger_dir).close()
    assert rebuilt == [200, len(events)]
    assert engine.bulk(0, 101) and not engine.bulk(0, 100)
    assert engine.bulk(500, 1001) and not engine.bulk(500, 1000)
    live = engine.connect(ledger_dir / engine.PROJECTIONS_DB)
    fresh = ledger_dir / "fresh.db"
    real(ledger.reader, fresh)
    try:
        assert_same_read_models(live, engine.connect(fresh))
    finally:
        live.close()
