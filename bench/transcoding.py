"""Store path: the ledger's msgspec mapper against the library's default JSON transcoder.

Saves the same events (10-event case histories) through an eventsourcing Application on
a fresh SQLite file, in batches of 1,000 events per transaction, then reads them back
and decodes them. Prints a table and writes bench/results/transcoding.json.

    python -m bench.transcoding [--events 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import MICROSECOND, now
from arms_ledger.ledger.domain.intake import normalize
from arms_ledger.ledger.store.mapper import Pending
from arms_ledger.ledger.store.sqlite import sqlite_env
from eventsourcing.application import Application

BATCH = 1000


class PlainEvent:
    """The same event as an object the library's default Mapper understands."""

    originator_id: str
    originator_version: int

    def __init__(self, originator_id: str, originator_version: int, **fields: Any):
        self.originator_id = originator_id
        self.originator_version = originator_version
        self.__dict__.update(fields)


def case_history(n: int, start) -> list[ev.Event]:
    case = f"C-{n:07d}"
    records = [
        {
            "type": "CaseFiled",
            "case": case,
            "partner": "POL",
            "platform": "ah-64e",
            "quantity": 12,
            "estimated_value_usd": 480_000_000,
            "channel": "FMS",
            "mde": True,
            "actor": "dsca.cwd",
            "effective_at": "2023-01-01",
            "reference": f"LOR-{n}",
            "idempotency_key": f"lor-{n}",
        },
        {
            "type": "CaseReviewCleared",
            "case": case,
            "office": "DSCA",
            "actor": "dsca.cwd",
            "rationale": "LOR complete; pricing and availability data attached",
            "effective_at": "2023-02-01",
        },
        {
            "type": "CongressionalReviewStarted",
            "case": case,
            "actor": "state.pm-rsat",
            "effective_at": "2023-02-02",
        },
        {
            "type": "CongressionalNotified",
            "case": case,
            "transmittal": f"23-{n % 100}",
            "notified_value_usd": 480_000_000,
            "actor": "state.pm-rsat",
            "effective_at": "2023-03-01",
        },
        {
            "type": "OfferIssued",
            "case": case,
            "value_usd": 450_000_000,
            "actor": "usasac",
            "effective_at": "2023-03-20",
        },
        {
            "type": "OfferAccepted",
            "case": case,
            "deposit_usd": 45_000_000,
            "actor": "dfas",
            "effective_at": "2023-04-01",
        },
        {
            "type": "CaseImplemented",
            "case": case,
            "actor": "usasac",
            "effective_at": "2023-04-02",
        },
        {
            "type": "DeliveryRecorded",
            "case": case,
            "quantity": 6,
            "actor": "usasac",
            "effective_at": "2026-01-10",
        },
        {
            "type": "DeliveryRecorded",
            "case": case,
            "quantity": 6,
            "actor": "usasac",
            "effective_at": "2026-06-10",
        },
        {
            "type": "CaseClosed",
            "case": case,
            "actor": "usasac",
            "effective_at": "2026-07-01",
        },
    ]
    return [
        normalize(ev.decoder.decode(json.dumps(r)), start + i * MICROSECOND)
        for i, r in enumerate(records)
    ]


def make_events(count: int) -> list[Pending]:
    start = now()
    pending = []
    for n in range(count // 10):
        for version, event in enumerate(case_history(n, start + n * 10 * MICROSECOND), 1):
            pending.append(Pending(event.stream, version, event))
    return pending


def ours(path: str) -> Application:
    return Application(env=sqlite_env(path))


def library_default(path: str) -> Application:
    env = sqlite_env(path)
    del env[
        "MAPPER_TOPIC"
    ]  # same recorder (and topic index) as ours: only the codec differs
    return Application(env=env)


def as_plain(pending: list[Pending]) -> list[PlainEvent]:
    return [
        PlainEvent(p.originator_id, p.originator_version, **msgspec.structs.asdict(p.event))
        for p in pending
    ]


def run_once(factory, objects: list, workdir: Path) -> dict[str, float]:
    path = workdir / f"{factory.__name__}-{time.monotonic_ns()}.db"
    app = factory(str(path))
    started = time.perf_counter()
    for i in range(0, len(objects), BATCH):
        app.events.put(objects[i : i + BATCH])  # the event store's public put
    save = time.perf_counter() - started
    started = time.perf_counter()
    after, read = 0, 0
    while notifications := app.recorder.select_notifications(
        start=after, limit=BATCH, inclusive_of_start=False
    ):
        for n in notifications:
            app.mapper.to_domain_event(n)
        read += len(notifications)
        after = notifications[-1].id
    decode = time.perf_counter() - started
    assert read == len(objects)
    size = app.recorder.select_notifications(start=1, limit=BATCH)
    bytes_per_event = statistics.mean(len(n.state) for n in size)
    app.close()
    return {
        "save_events_per_s": len(objects) / save,
        "read_decode_events_per_s": len(objects) / decode,
        "state_bytes_per_event": bytes_per_event,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/transcoding.json"))
    args = parser.parse_args()
    pending = make_events(args.events)
    plain = as_plain(pending)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, factory, objects in (
            ("msgspec mapper (ledger.store.EventMapper)", ours, pending),
            ("library default Mapper + JSONTranscoder", library_default, plain),
        ):
            runs = [run_once(factory, objects, Path(tmp)) for _ in range(args.repeat)]
            results[label] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"{len(pending):,} events, batches of {BATCH}, median of {args.repeat} runs, "
        f"Python {platform.python_version()}, SQLite file\n"
    )
    print(f"{'codec':45} {'save ev/s':>12} {'read+decode ev/s':>18} {'bytes/event':>12}")
    for label, r in results.items():
        print(
            f"{label:45} {r['save_events_per_s']:12,.0f} "
            f"{r['read_decode_events_per_s']:18,.0f} {r['state_bytes_per_event']:12,.0f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "events": len(pending),
                "batch": BATCH,
                "repeat": args.repeat,
                "python": platform.python_version(),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
