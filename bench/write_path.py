"""Bulk append through the full write path, against the raw SQLite insert rate.

Builds (once, cached under ``--cache``) ledgers holding the first N events of one
generated history (``fixtures.tools.generate``, seeded, ``with_recorded_at=False``), then
for each ledger size and batch size: copies the ledger, opens it in this process (cold), and
appends the next ``--events`` events of the same history through ``Ledger.append``
(decisions, store, Merkle tree, a signed checkpoint per batch). Also: the median latency
of a one-event append at each size, and the rate of a raw sqlite3 ``executemany`` of the
same rows in one transaction (the write limit). Prints a table.

    python -m bench.write_path [--sizes 1000,100000,1000000] [--batches 1000,10000]
                               [--events 20000] [--repeat 3] [--profile]

``--bulk N``: instead, CPU time (this process) of one ``Ledger.append`` of the whole
N-event history (``--open-cases``, default 1,600) into a new ledger, as one batch; prints
the median µs per event of ``--repeat`` runs (``--profile``: write_path-bulk-N.prof).

    python -m bench.write_path --bulk 50000 [--open-cases 1600] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import msgspec
from arms_ledger.ledger.app.directory import create, open_ledger
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import instant

from fixtures.tools.generate import generate

OPEN_CASES = 16_000
HISTORY = 1_020_000  # one history for every ledger size (the bases are its prefixes)


def history(cache: Path, total: int) -> list[bytes]:
    """A history of ``total`` events (cached as JSON Lines)."""
    path = cache / f"history-{total}.jsonl"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            for line in generate(open_cases=OPEN_CASES, events=total):
                out.write(line + b"\n")
    return path.read_bytes().splitlines()


def decode(lines: list[bytes]) -> list[ev.Event]:
    return [ev.decoder.decode(line) for line in lines]


def base_ledger(cache: Path, size: int, lines: list[bytes]) -> Path:
    path = cache / f"base-{size}"
    if not (path / "ledger.json").exists():
        shutil.rmtree(path, ignore_errors=True)
        ledger = create(path, checkpoints="append")
        events = decode(lines[:size])
        for i in range(0, size, 10_000):
            ledger.append(events[i : i + 10_000])
        ledger.close()
    return path


def copy(base: Path, tmp: Path) -> Path:
    target = tmp / "ledger"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(base, target)
    return target


def append_rate(
    base: Path, tmp: Path, events: list[ev.Event], batch: int, profile: Path | None = None
) -> float:
    ledger = open_ledger(copy(base, tmp))
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    for i in range(0, len(events), batch):
        ledger.append(events[i : i + batch])
    if profiler:
        profiler.disable()
    took = time.perf_counter() - started
    ledger.close()
    if profiler and profile:
        profiler.dump_stats(profile)
    return len(events) / took


def one_event_ms(
    base: Path, tmp: Path, events: list[ev.Event], n: int = 40
) -> tuple[float, float]:
    """Median ms (wall clock, and CPU of this process: the commit's fsync and the noise
    of a shared machine are in the first only) of appending one event to a freshly
    opened ledger (cold, like the CLI)."""
    target = copy(base, tmp)
    wall, cpu = [], []
    for event in events[:n]:
        ledger = open_ledger(target)
        started, started_cpu = time.perf_counter(), time.process_time()
        ledger.append([event])
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        ledger.close()
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def raw_rate(tmp: Path, lines: list[bytes], events: list[ev.Event]) -> float:
    """Rows/s of one executemany of the same rows into the store's table shape."""
    rows = [
        (e.stream, 1 + i, type(e).__name__, ev.encoder.encode(e))
        for i, e in enumerate(events)
    ]
    path = tmp / "raw.db"
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
        "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
    )
    db.execute("CREATE INDEX stored_events_topic ON stored_events (topic)")
    started = time.perf_counter()
    db.execute("BEGIN")
    db.executemany("INSERT INTO stored_events VALUES (?, ?, ?, ?)", rows)
    db.execute("COMMIT")
    took = time.perf_counter() - started
    db.close()
    return len(rows) / took


def bulk(n: int, open_cases: int, repeat: int, profile: bool) -> None:
    """µs of CPU per event of one append of a whole generated history, new ledger."""
    events = decode(list(generate(open_cases=open_cases, events=n)))
    took = []
    for r in range(repeat):
        with tempfile.TemporaryDirectory() as tmp_name:
            ledger = create(Path(tmp_name) / "ledger", checkpoints="append")
            instant.cache_clear()  # as cold as a command's process
            profiler = cProfile.Profile() if profile and r == 0 else None
            started = time.process_time()
            if profiler:
                profiler.enable()
            ledger.append(events)
            if profiler:
                profiler.disable()
            took.append(time.process_time() - started)
            ledger.close()
            if profiler:
                profiler.dump_stats(f"write_path-bulk-{n}.prof")
        print(f"run {r + 1}: {took[-1] / n * 1e6:.1f} µs/event CPU", flush=True)
    median = statistics.median(took)
    print(
        f"{n:,} events, {open_cases:,} open cases, one batch, new ledger: "
        f"{median / n * 1e6:.1f} µs/event CPU (median of {repeat}), "
        f"{n / median:,.0f} events per CPU-second"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--batches", default="1000,10000")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "wp-cache"
    )
    parser.add_argument("--profile", action="store_true", help="write .prof files")
    parser.add_argument("--no-single", action="store_true")
    parser.add_argument("--bulk", type=int, help="one batch of N events, new ledger")
    parser.add_argument("--open-cases", type=int, default=1_600)
    args = parser.parse_args()
    if args.bulk:
        bulk(args.bulk, args.open_cases, args.repeat, args.profile)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    batches = [int(s) for s in args.batches.split(",")]
    if max(sizes) + args.events > HISTORY:
        parser.error(f"sizes + events must stay within the {HISTORY:,}-event history")
    lines = history(args.cache, HISTORY)
    print(f"{'ledger':>9} {'batch':>6} {'events/s':>9} {'raw/s':>9} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for size in sizes:
            base = base_ledger(args.cache, size, lines)
            more = [
                msgspec.structs.replace(e, recorded_at=None)
                for e in decode(lines[size : size + args.events])
            ]
            raw = statistics.median(raw_rate(tmp, lines, more) for _ in range(args.repeat))
            for batch in batches:
                rates = []
                for r in range(args.repeat):
                    prof = (
                        Path(f"write_path-{size}-{batch}.prof")
                        if args.profile and r == 0
                        else None
                    )
                    rates.append(append_rate(base, tmp, more, batch, prof))
                rate = statistics.median(rates)
                print(
                    f"{size:>9,} {batch:>6,} {rate:>9,.0f} {raw:>9,.0f} {rate / raw:>6.2f}",
                    flush=True,
                )
            if not args.no_single:
                wall, cpu = one_event_ms(base, tmp, more)
                print(
                    f"{size:>9,} {1:>6} one-event append: {wall:.2f} ms ({cpu:.2f} ms CPU)"
                )


if __name__ == "__main__":
    main()
