"""The whole system at the program's scale, against the machine's limit.

On a generated history (``fixtures.tools.generate``: 180 partners, 16,000 open cases
plus the closed history, ~1,000,000 events), for each store (SQLite file; PostgreSQL if
reachable):

* bulk append through the full path: ``Ledger.append`` in batches of 10,000 (every rule
  decided, stored, added to the Merkle tree, a checkpoint signed per batch), each batch
  followed by the projections' catch-up (keeping what the last one loaded, ``runner.Kept``);
  and end to end as ``arms-ledger append`` of a
  file longer than the log does it: the append, then one rebuild (``engine.bulk``);
* the anchors, in the same run, of the same number of rows: a raw ``executemany`` of rows
  of the stored rows' mean size in one transaction (sqlite3 on SQLite, psycopg on
  PostgreSQL: the physical limit of the store), and the eventsourcing library with its
  default mapper and JSON transcoder saving the same events in the same batches;
* one ``arms-ledger append`` of one event from the shell (wall time, median) on a
  1,000-event ledger and on the large one, and the catch-up it includes;
* a full projection rebuild in a child process: events/s, CPU and peak RSS (with its
  second process);
* latency on the large ledger: ``queue`` and ``audit explain`` (the command in process,
  median), an inclusion and a consistency proof.

Prints a table and writes it to bench/results/scale.json.

    python -m bench.scale [--events 1000000] [--open-cases 16000] \
        [--stores sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from arms_ledger.cli.main import cli
from arms_ledger.ledger.app import transparency
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.app.directory import create, open_ledger
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.store.sqlite import sqlite_env
from arms_ledger.projections import engine, runner
from click.testing import CliRunner
from eventsourcing.application import Application

from fixtures.tools.generate import generate

ROOT = Path(__file__).resolve().parent.parent
BATCH = 10_000
PG_URL = os.environ.get("ARMS_LEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")

# The rebuild's own peak RSS (VmHWM) plus its second process's (``rebuild._AuditProcess``,
# forked: its ru_maxrss counts the pages it was forked with, so the sum is an upper bound).
REBUILD = """
import resource, sys, time
from pathlib import Path
from arms_ledger.ledger.app.directory import open_ledger
from arms_ledger.projections import engine, runner
ledger = open_ledger(Path(sys.argv[1]))
started, cpu = time.perf_counter(), time.process_time()
count = engine.rebuild(ledger.reader, Path(sys.argv[2]))
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
status = Path("/proc/self/status").read_text()
peak_kb = next(
    int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")
)
child = resource.getrusage(resource.RUSAGE_CHILDREN)
print(count, seconds, peak_kb + child.ru_maxrss, cpu + child.ru_utime + child.ru_stime)
"""


# --- the history --------------------------------------------------------------------------


def history(path: Path, events: int, open_cases: int) -> int:
    """Write the generated history once (JSON Lines, no recorded_at: append stamps it)."""
    count = 0
    with path.open("wb") as out:
        for line in generate(open_cases=open_cases, events=events, with_recorded_at=False):
            out.write(line + b"\n")
            count += 1
    return count


def batches(path: Path, size: int = BATCH) -> Iterator[list[ev.Event]]:
    batch: list[ev.Event] = []
    with path.open("rb") as lines:
        for line in lines:
            batch.append(ev.decoder.decode(line))
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


# --- the full path ------------------------------------------------------------------------


def full_path(path: Path, source: Path, store: str) -> dict[str, float]:
    ledger = create(path, store=store)
    conn = engine.live(ledger.reader, path)
    kept = runner.Kept()  # what each catch-up loaded, for the next (one writer)
    appending = projecting = 0.0
    count = 0
    for batch in batches(source):
        started = time.perf_counter()
        count += len(ledger.append(batch).positions)
        appending += time.perf_counter() - started
        started = time.perf_counter()
        engine.catch_up(ledger.reader, conn, kept=kept)
        projecting += time.perf_counter() - started
    conn.close()
    ledger.close()
    return {
        "events": count,
        "append_events_per_s": count / appending,
        "append_and_project_events_per_s": count / (appending + projecting),
    }


def mean_row(path: Path, ledger: Ledger) -> tuple[int, int]:
    """(events, mean stored state bytes) of a ledger."""
    head, sizes, after = ledger.head(), [], 0
    while after < head:
        page = ledger.recorder.select_notifications(
            start=after, limit=1000, inclusive_of_start=False
        )
        sizes += [len(n.state) for n in page[::10]]
        after = page[-1].id + 100_000  # a sample of pages
    return head, round(statistics.mean(sizes))


# --- the anchors --------------------------------------------------------------------------


def rows(count: int, state_bytes: int) -> Iterator[tuple[str, int, str, bytes]]:
    """Rows shaped like the store's: 10 events per stream, states of the mean size."""
    state = b'{"x":"' + b"a" * (state_bytes - 8) + b'"}'
    return (
        (f"case:XX-{i // 10:07d}", i % 10 + 1, "CaseFiled", state) for i in range(count)
    )


def raw_sqlite(workdir: Path, count: int, state_bytes: int) -> float:
    import sqlite3

    db = sqlite3.connect(workdir / "raw.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(
        "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, "
        "topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))"
    )
    started = time.perf_counter()
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO stored_events VALUES (?, ?, ?, ?)", rows(count, state_bytes)
    )
    db.execute("COMMIT")
    seconds = time.perf_counter() - started
    db.close()
    return count / seconds


def raw_postgres(count: int, state_bytes: int) -> float:

    from arms_ledger.ledger.store.postgres import Location

    with Location(PG_URL).connect(autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw_events")
        conn.execute(
            "CREATE TABLE bench_raw_events (originator_id text, originator_version bigint, "
            "topic text, state bytea, notification_id bigserial, "
            "PRIMARY KEY (originator_id, originator_version))"
        )
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as c:
            c.executemany(
                "INSERT INTO bench_raw_events (originator_id, originator_version, topic, "
                "state) VALUES (%s, %s, %s, %s)",
                rows(count, state_bytes),
            )
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE bench_raw_events")
    return count / seconds


class PlainEvent:
    """An event as an object the library's default Mapper and JSONTranscoder handle."""

    def __init__(self, originator_id: str | UUID, originator_version: int, **fields: Any):
        self.originator_id = originator_id
        self.originator_version = originator_version
        self.__dict__.update(fields)


def library_default(workdir: Path, ledger: Ledger, store: str) -> float:
    """The same stored events saved by a plain eventsourcing Application: its default
    mapper, JSON transcoder and recorder, in batches of BATCH events."""
    if store == "sqlite":
        env = sqlite_env(str(workdir / "library.db"))
        del env["MAPPER_TOPIC"], env["APPLICATION_RECORDER_TOPIC"]
    else:
        from arms_ledger.ledger.store.postgres import Location

        schema = f"bench_library_{os.getpid()}"
        location = Location(f"{PG_URL}?schema={schema}")
        location.check()
        env = location.env(create_tables=True)
        del env["MAPPER_TOPIC"], env["APPLICATION_RECORDER_TOPIC"]
    app: Application[str] = Application(env=env)
    seconds, after, head = 0.0, 0, ledger.head()
    while after < head:
        page = ledger.recorder.select_notifications(
            start=after, limit=BATCH, inclusive_of_start=False
        )
        plain: list[Any] = [  # duck-typed domain events for the library's mapper
            PlainEvent(
                n.originator_id, n.originator_version, **msgspec.json.decode(n.state)
            )
            for n in page
        ]
        started = time.perf_counter()
        app.events.put(plain)  # the event store's public put
        seconds += time.perf_counter() - started
        after = page[-1].id
    app.close()
    if store != "sqlite":
        _drop_schema(schema)
    return head / seconds


def _drop_schema(schema: str) -> None:

    from arms_ledger.ledger.store.postgres import Location

    with Location(PG_URL).connect(autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# --- one event from the shell, rebuild, latency -------------------------------------------


def one_append(path: Path, workdir: Path, repeat: int) -> dict[str, float]:
    """Median wall time of `arms-ledger append` of one event (a new process each), and of
    the catch-up after one event, in process."""
    ledger = open_ledger(path)
    conn = engine.live(ledger.reader, path)  # the read models are current before we start
    partner = conn.execute(
        "SELECT partner FROM partners ORDER BY partner LIMIT 1"
    ).fetchone()[0]

    def event(amount: int) -> ev.Event:
        return ev.EconomicContributionRecorded(
            partner=partner,
            kind="advance-payment",
            amount_usd=amount,
            description="benchmark",
            actor="bench",
        )

    line = workdir / "one.jsonl"
    walls, catch_ups = [], []
    for n in range(repeat):
        line.write_bytes(ev.encoder.encode(event(1_000_000 + n)) + b"\n")
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "cli", "--ledger", str(path), "append", str(line)],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        walls.append(time.perf_counter() - started)
        engine.catch_up(ledger.reader, conn)  # what that command appended
        ledger.append([event(2_000_000 + n)])
        started = time.perf_counter()
        engine.catch_up(ledger.reader, conn)
        catch_ups.append(time.perf_counter() - started)
    conn.close()
    ledger.close()
    return {
        "append_one_wall_ms": statistics.median(walls) * 1000,
        "catch_up_one_ms": statistics.median(catch_ups) * 1000,
    }


def rebuild(path: Path, workdir: Path) -> dict[str, float]:
    """A rebuild in a fresh process; its peak RSS is its own VmHWM (a child's ru_maxrss
    can include the parent's pages it was forked with)."""
    target = workdir / f"rebuilt-{time.monotonic_ns()}.db"
    out = subprocess.run(
        [sys.executable, "-c", REBUILD, str(path), str(target)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.split()
    target.unlink(missing_ok=True)
    count, seconds, peak_kb, cpu = int(out[0]), float(out[1]), int(out[2]), float(out[3])
    return {
        "rebuild_events_per_s": count / seconds,
        "rebuild_s": seconds,
        "rebuild_cpu_s": cpu,
        "rebuild_peak_rss_mb": peak_kb / 1024,
    }


def end_to_end(r: dict) -> float:
    """Events/s of a bulk append whose read models are built once at the end (what
    ``arms-ledger append`` of a file longer than the log does: ``engine.bulk``): the
    append without catch-ups, then the rebuild, both measured in this run."""
    return r["events"] / (r["events"] / r["append_events_per_s"] + r["rebuild_s"])


def latency(path: Path, repeat: int) -> dict[str, float]:
    runner = CliRunner()
    ledger = open_ledger(path)
    conn = engine.live(ledger.reader, path)
    platform_id = conn.execute(
        "SELECT platform FROM queue GROUP BY platform ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]
    case = conn.execute(
        'SELECT "case" FROM queue WHERE platform = ? ORDER BY position DESC LIMIT 1',
        (platform_id,),
    ).fetchone()[0]
    conn.close()

    def command(*args: str) -> Callable[[], None]:
        def call() -> None:
            result = runner.invoke(cli, ["--ledger", str(path), *args])
            assert result.exit_code == 0, result.output

        return call

    n = transparency.tree_size(ledger)
    measured = {
        "queue_ms": command("queue", platform_id),
        "audit_explain_ms": command("audit", "explain", case),
        "inclusion_proof_ms": lambda: transparency.prove_inclusion(ledger, n // 3, n),
        "consistency_proof_ms": lambda: transparency.prove_consistency(ledger, n // 3, n),
    }
    out = {}
    for name, call in measured.items():
        call()  # warm
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        out[name] = statistics.median(times) * 1000
    ledger.close()
    return out


# --- the run ------------------------------------------------------------------------------


def store_url(name: str) -> str | None:
    if name == "sqlite":
        return "sqlite"
    from arms_ledger.ledger.errors import LedgerError
    from arms_ledger.ledger.store.postgres import Location

    url = f"{PG_URL}?schema=bench_{os.getpid()}"
    try:
        Location(url).check()
    except LedgerError as error:
        print(f"skipping PostgreSQL: {error}", file=sys.stderr)
        return None
    return url


def run_store(name: str, source: Path, small: Path, workdir: Path, repeat: int) -> dict:
    store = store_url(name)
    if store is None:
        return {}
    say = lambda what: print(f"[{name}] {what}", file=sys.stderr, flush=True)  # noqa: E731
    result: dict[str, Any] = {"store": name}
    say("one-event append on a 1,000-event ledger")
    tiny = workdir / f"{name}-small"
    full_path(tiny, small, store if name == "sqlite" else f"{store}_small")
    result["small"] = one_append(tiny, workdir, repeat)
    say("bulk append through the full path")
    path = workdir / f"{name}-large"
    result.update(full_path(path, source, store))
    ledger = open_ledger(path)
    count, state_bytes = mean_row(path, ledger)
    result["state_bytes"] = state_bytes
    say("anchors")
    result["raw_executemany_events_per_s"] = (
        raw_sqlite(workdir, count, state_bytes)
        if name == "sqlite"
        else raw_postgres(count, state_bytes)
    )
    result["library_default_json_events_per_s"] = library_default(workdir, ledger, name)
    ledger.close()
    say("rebuild")
    result.update(rebuild(path, workdir))
    say("latency")
    result.update(latency(path, repeat))
    say("one-event append on the large ledger")
    result["large"] = one_append(path, workdir, repeat)
    if name != "sqlite":
        _drop_schema(store.rsplit("=", 1)[1])
        _drop_schema(store.rsplit("=", 1)[1] + "_small")
    return result


def table(results: list[dict]) -> str:
    def per_s(v: float) -> str:
        return f"{v:,.0f}"

    lines = [
        "| measure | target | " + " | ".join(r["store"] for r in results) + " |",
        "|---|---|" + "---|" * len(results),
    ]

    def row(label: str, target: str, value: Callable[[dict], str]) -> None:
        lines.append(
            f"| {label} | {target} | " + " | ".join(value(r) for r in results) + " |"
        )

    row("events in the large ledger", "~1,000,000", lambda r: f"{r['events']:,}")
    row(
        "raw executemany, one transaction (ev/s)",
        "the limit",
        lambda r: per_s(r["raw_executemany_events_per_s"]),
    )
    row(
        "eventsourcing default JSON, batches of 10,000 (ev/s)",
        "anchor",
        lambda r: per_s(r["library_default_json_events_per_s"]),
    )
    row(
        "bulk append, full path without projections (ev/s)",
        "",
        lambda r: per_s(r["append_events_per_s"]),
    )
    row(
        "bulk append + projections caught up per batch (ev/s)",
        "",
        lambda r: per_s(r["append_and_project_events_per_s"]),
    )
    row(
        "bulk append, read models rebuilt once at the end (ev/s)",
        "≥ 30,000 (floor 15,000)",
        lambda r: per_s(end_to_end(r)),
    )
    row(
        "… / raw executemany; / eventsourcing default JSON",
        "",
        lambda r: (
            f"{end_to_end(r) / r['raw_executemany_events_per_s']:.2f}; "
            f"{end_to_end(r) / r['library_default_json_events_per_s']:.2f}"
        ),
    )
    row(
        "bulk append + projections / raw executemany",
        "≥ 0.35",
        lambda r: (
            f"{r['append_and_project_events_per_s'] / r['raw_executemany_events_per_s']:.2f}"  # noqa: E501
        ),
    )
    row(
        "bulk append without projections / raw executemany",
        "",
        lambda r: f"{r['append_events_per_s'] / r['raw_executemany_events_per_s']:.2f}",
    )
    row(
        "`arms-ledger append` one event, 1k ledger (ms)",
        "",
        lambda r: f"{r['small']['append_one_wall_ms']:.0f}",
    )
    row(
        "`arms-ledger append` one event, large ledger (ms)",
        "≤ 1.2 × 1k",
        lambda r: (
            f"{r['large']['append_one_wall_ms']:.0f} "
            f"({r['large']['append_one_wall_ms'] / r['small']['append_one_wall_ms']:.2f}×)"
        ),
    )
    row(
        "catch-up after one event, 1k ledger (ms)",
        "",
        lambda r: f"{r['small']['catch_up_one_ms']:.2f}",
    )
    row(
        "catch-up after one event, large ledger (ms)",
        "≤ 1.2 × 1k",
        lambda r: (
            f"{r['large']['catch_up_one_ms']:.2f} "
            f"({r['large']['catch_up_one_ms'] / r['small']['catch_up_one_ms']:.2f}×)"
        ),
    )
    row(
        "full rebuild, wall (ev/s)",
        "≥ 100,000 (floor 50,000)",
        lambda r: per_s(r["rebuild_events_per_s"]),
    )
    row(
        "full rebuild, CPU of both processes (s)",
        "",
        lambda r: f"{r.get('rebuild_cpu_s', 0):.1f}",
    )
    row(
        "… wall / raw executemany; / eventsourcing default JSON",
        "",
        lambda r: (
            f"{r['rebuild_events_per_s'] / r['raw_executemany_events_per_s']:.2f}; "
            f"{r['rebuild_events_per_s'] / r['library_default_json_events_per_s']:.2f}"
        ),
    )
    row(
        "rebuild peak RSS, both processes (MB)",
        "≤ 500",
        lambda r: f"{r['rebuild_peak_rss_mb']:.0f}",
    )
    row("`queue` (ms)", "", lambda r: f"{r['queue_ms']:.1f}")
    row("`audit explain` (ms)", "", lambda r: f"{r['audit_explain_ms']:.1f}")
    row("inclusion proof (ms)", "", lambda r: f"{r['inclusion_proof_ms']:.2f}")
    row("consistency proof (ms)", "", lambda r: f"{r['consistency_proof_ms']:.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--open-cases", type=int, default=16_000)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/scale.json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="arms-ledger-bench-") as tmp:
        workdir = Path(tmp)
        source, small = workdir / "history.jsonl", workdir / "small.jsonl"
        started = time.perf_counter()
        generated = history(source, args.events, args.open_cases)
        history(small, 1_000, 50)
        print(
            f"generated {generated:,} events in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        machine = (
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"{platform.machine()}"
        )
        for name in args.stores.split(","):
            result = run_store(name, source, small, workdir, args.repeat)
            if result:
                results.append(result)
                # after each store, so that a long run keeps what it measured
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(
                    json.dumps(
                        {
                            "machine": machine,
                            "events": args.events,
                            "open_cases": args.open_cases,
                            "batch": BATCH,
                            "repeat": args.repeat,
                            "results": results,
                        },
                        indent=2,
                    )
                    + "\n"
                )
    print(
        f"\n{machine}; {args.events:,} events requested, {args.open_cases:,} open cases\n"
    )
    print(table(results))


if __name__ == "__main__":
    main()
