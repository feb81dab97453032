"""Catch-up after one event, on a small and a large ledger, on SQLite and PostgreSQL.

The read side's promise is that catching the read models up after one new event costs
the same whatever the length of the log. For each store and each size (a 1,000-event
history and ``--events``, by default 1,000,000: ``fixtures.tools.generate``, seeded),
this loads a ledger (``import_history`` in chunks of 50,000, as ``bench.projections``;
the read models rebuilt once), opens it as ``arms-ledger`` does (for writing), then
``--repeat`` times appends one partner event and times ``engine.catch_up`` (median).

The event is a contribution of a partner with ``--queued`` (default 1) queued cases in
both ledgers: a partner event rescores the partner's queued cases, work that grows with
those cases, not with the log, and the large history has 16,000 open cases to the small
one's 50. The contribution of the first partner in alphabetical order, as
``bench.scale`` times it, is shown beside it, with its queued cases. It also times
the two reads by type the issue names, alone: the policy events of the catch-up
(``of_types(POLICY_TYPES, upto=head)``) and the thresholds of the write path
(``of_types(("NotificationThresholdsSet",))``), and the read of a case's stream up to
the head that a catch-up makes for a case event (``stream(key, upto=head)``).

PostgreSQL ledgers are left as loaded: nothing ANALYZEs them, so the planner has no
statistics (the server here runs ``autovacuum = off``), the case the issue measured.

Results go to bench/results/catchup.json under ``--label`` (e.g. ``before`` and
``after`` a change; earlier labels are kept), and the table of every label is printed:

    python -m bench.catchup [--events 1000000] [--stores sqlite,postgresql] \
        [--keep DIR] [--label after]

``--keep DIR`` keeps the loaded ledgers (and PostgreSQL schemas) and reuses them on the
next run; without it they are removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from arms_ledger.ledger.app.directory import open_ledger
from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections import engine
from arms_ledger.projections.loader import POLICY_TYPES

from bench import projections

ROOT = Path(__file__).resolve().parent.parent
SMALL = 1_000
TARGET = 1.2  # the large ledger's catch-up at most 1.2 × the small one's
PG_URL = os.environ.get("ARMS_LEDGER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def say(what: str) -> None:
    print(what, file=sys.stderr, flush=True)


def store_for(name: str, label: str, work: Path) -> str | None:
    """The store URL of one bench ledger, or None (and why) if PostgreSQL is away: a
    schema of its own for each work directory, so runs side by side do not meet."""
    if name == "sqlite":
        return "sqlite"
    from arms_ledger.ledger.errors import LedgerError
    from arms_ledger.ledger.store.postgres import Location

    tag = hashlib.sha256(str(work.resolve()).encode()).hexdigest()[:8]
    url = f"{PG_URL}?schema=bc_{tag}_{label}"
    try:
        Location(url).check()
    except LedgerError as error:
        say(f"skipping PostgreSQL: {error}")
        return None
    return url


def drop_schema(url: str) -> None:
    from arms_ledger.ledger.store.postgres import Location
    from psycopg.sql import SQL, Identifier

    location = Location(url)
    with location.connect(autocommit=True) as conn:
        conn.execute(
            SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(location.schema))
        )


def load(path: Path, store: str, open_cases: int, events: int) -> int:
    """A new ledger at ``path`` with the generated history, then its read models."""
    count = projections.load(
        path, open_cases, events, store, lambda n: say(f"  {n:,} events")
    )
    ledger = open_ledger(path)
    try:
        engine.live(ledger.reader, path).close()  # rebuilt once, or caught up
    finally:
        ledger.close()
    return count


def ledger_at(work: Path, name: str, size: str, open_cases: int, events: int) -> Path:
    """The loaded ledger for this store and size: reused from ``work`` if complete."""
    label = f"{name}_{size}_{events}"
    path = work / label
    if (path / "complete").exists():
        return path
    store = store_for(name, label, work)
    if store is None:
        raise LookupError(name)
    if path.exists():
        shutil.rmtree(path)
    if store != "sqlite":
        drop_schema(store)  # a half-loaded one from an interrupted run
    say(f"[{name}] loading {events:,} events")
    started = time.perf_counter()
    count = load(path, store, open_cases, events)
    say(f"[{name}] loaded {count:,} events in {time.perf_counter() - started:.0f} s")
    (path / "complete").write_text(f"{count}\n")
    return path


def median_ms(call: Any, repeat: int) -> float:
    call()  # warm
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def partner_with(conn: Any, queued: int) -> str:
    """The first partner with exactly ``queued`` cases in the queues."""
    row = conn.execute(
        "SELECT p.partner FROM partners AS p LEFT JOIN queue AS q USING (partner) "
        "GROUP BY p.partner HAVING count(q.partner) = ? ORDER BY p.partner LIMIT 1",
        (queued,),
    ).fetchone()
    if row is None:
        raise SystemExit(f"no partner has {queued} queued cases: choose another --queued")
    return row[0]


def catch_up_ms(ledger: Any, conn: Any, partner: str, repeat: int) -> float:
    """Median time of the catch-up after one contribution of ``partner``: it moves
    the partner's score, so its queued cases are rescored."""
    times = []
    for n in range(repeat + 1):
        event = ev.EconomicContributionRecorded(
            partner=partner,
            kind="advance-payment",
            amount_usd=1_000_000 + n,
            description="benchmark",
            actor="bench",
        )
        ledger.append([event])
        started = time.perf_counter()
        applied = engine.catch_up(ledger.reader, conn)
        times.append(time.perf_counter() - started)
        assert applied == 1, applied
    return statistics.median(times[1:]) * 1000  # the first warms the caches


def measure(path: Path, repeat: int, queued: int) -> dict[str, Any]:
    """Open the ledger for writing (as `arms-ledger append` does: any upgrade of its
    store happens here), then time the catch-up after one event, and the reads."""
    started = time.perf_counter()
    ledger = open_ledger(path)
    opened_ms = (time.perf_counter() - started) * 1000
    conn = engine.live(ledger.reader, path)
    first = conn.execute("SELECT partner FROM partners ORDER BY partner LIMIT 1").fetchone()
    partner = partner_with(conn, queued)
    case = conn.execute('SELECT "case" FROM queue ORDER BY "case" LIMIT 1').fetchone()[0]
    out: dict[str, Any] = {
        "partner": partner,
        "catch_up_one_ms": catch_up_ms(ledger, conn, partner, repeat),
        "first_partner": first[0],
        "first_partner_queued": conn.execute(
            "SELECT count(*) FROM queue WHERE partner = ?", first
        ).fetchone()[0],
        "catch_up_first_partner_ms": catch_up_ms(ledger, conn, first[0], repeat),
    }
    conn.close()
    reader = ledger.reader
    head = reader.head()
    out |= {
        "events": head,
        "open_ms": opened_ms,
        "policy_events_ms": median_ms(
            lambda: reader.of_types(POLICY_TYPES, upto=head), repeat
        ),
        "thresholds_ms": median_ms(
            lambda: reader.of_types(("NotificationThresholdsSet",)), repeat
        ),
        # what a catch-up reads for a case event whose case is not in memory
        "case_stream_ms": median_ms(
            lambda: reader.stream(f"case:{case}", upto=head), repeat
        ),
    }
    ledger.close()
    return out


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in args.stores.split(","):
        try:
            small = ledger_at(work, name, "small", 50, SMALL)
            large = ledger_at(work, name, "large", args.open_cases, args.events)
        except LookupError:
            continue
        say(f"[{name}] measuring")
        results[name] = {
            "small": measure(small, args.repeat, args.queued),
            "large": measure(large, args.repeat, args.queued),
        }
    return results


def table(saved: dict[str, Any]) -> str:
    lines = [
        "| store | run | events, small / large | catch-up, small (ms) | "
        f"catch-up, large (ms) | large / small (target ≤ {TARGET}) | "
        "first partner's catch-up, small / large (ms) | … queued cases | "
        "policy events read, large (ms) | thresholds read, large (ms) | "
        "case stream read, large (ms) | opening the large ledger (ms) |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, run in saved["runs"].items():
        for store, r in run["results"].items():
            small, large = r["small"], r["large"]
            ratio = large["catch_up_one_ms"] / small["catch_up_one_ms"]
            first = large["catch_up_first_partner_ms"] / small["catch_up_first_partner_ms"]
            lines.append(
                f"| {store} | {label} | {small['events']:,} / {large['events']:,} "
                f"| {small['catch_up_one_ms']:.2f} | {large['catch_up_one_ms']:.2f} "
                f"| {ratio:.2f}× {'met' if ratio <= TARGET else 'missed'} "
                f"| {small['catch_up_first_partner_ms']:.2f} / "
                f"{large['catch_up_first_partner_ms']:.2f} ({first:.2f}×) "
                f"| {small['first_partner_queued']} / {large['first_partner_queued']} "
                f"| {large['policy_events_ms']:.2f} | {large['thresholds_ms']:.2f} "
                f"| {large['case_stream_ms']:.2f} | {large['open_ms']:.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--open-cases", type=int, default=16_000)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--queued",
        type=int,
        default=1,
        help="the event names a partner with this many queued cases in both ledgers",
    )
    parser.add_argument("--label", default="run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/catchup.json")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep the loaded ledgers in this directory and reuse them",
    )
    parser.add_argument(
        "--build-only", action="store_true", help="load the ledgers, measure nothing"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arms-ledger-catchup-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        try:
            if args.build_only:
                for name in args.stores.split(","):
                    try:
                        ledger_at(work, name, "small", 50, SMALL)
                        ledger_at(work, name, "large", args.open_cases, args.events)
                    except LookupError:
                        continue
                return
            results = run(args, work)
        finally:
            if args.keep is None:
                for meta in work.glob("*/ledger.json"):
                    store = json.loads(meta.read_text()).get("store", "sqlite")
                    if store != "sqlite":
                        drop_schema(store)
    saved = json.loads(args.out.read_text()) if args.out.exists() else {"runs": {}}
    saved["machine"] = (
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.machine()}"
    )
    saved["runs"][args.label] = {
        "events": args.events,
        "open_cases": args.open_cases,
        "repeat": args.repeat,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(saved, indent=2) + "\n")
    print(table(saved))


if __name__ == "__main__":
    main()
