"""Read side: rebuilding the read models, and catching up after one new event.

Loads a generated history (``fixtures.generate``, seeded) into a fresh ledger, then
measures in a child process (for its peak RSS) a full ``rebuild``, and, in this process,
the catch-up after appending one event, as the log grows. Prints a table and writes
bench/results/projections.json.

    python -m bench.projections [--open-cases 4000] [--events 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fixtures.generate import generate
from ledger import events as ev
from ledger.application import create
from projections import engine

REBUILD = """
import sys, time, resource
from pathlib import Path
from ledger.application import open_ledger
from projections import engine
ledger = open_ledger(Path(sys.argv[1]))
started = time.perf_counter()
count = engine.rebuild(ledger, Path(sys.argv[1]) / engine.PROJECTIONS_DB)
print(count, time.perf_counter() - started)
"""


def load(path: Path, open_cases: int, events: int) -> int:
    ledger = create(path)
    lines = generate(open_cases=open_cases, events=events, with_recorded_at=True)
    count = len(ledger.import_history([ev.decoder.decode(line) for line in lines]).positions)
    ledger.close()
    return count


def rebuild_in_child(path: Path) -> tuple[int, float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run(
        [sys.executable, "-c", REBUILD, str(path)],
        check=True, capture_output=True, text=True, cwd=Path(__file__).parent.parent,
    ).stdout.split()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return int(out[0]), float(out[1]), max(peak, before) / 1024


def one_event_catch_up(path: Path, repeat: int = 20) -> float:
    """Median seconds to catch up after appending one delivery-sized event."""
    from ledger.application import open_ledger

    ledger = open_ledger(path)
    conn = engine.live(ledger, path)
    partner = conn.execute("SELECT partner FROM partners LIMIT 1").fetchone()[0]
    times = []
    for n in range(repeat):
        event = ev.EconomicContributionRecorded(
            partner=partner, kind="advance-payment", amount_usd=1_000_000 + n,
            description="benchmark", actor="bench",
        )
        ledger.append([event])
        started = time.perf_counter()
        engine.catch_up(ledger, conn)
        times.append(time.perf_counter() - started)
    conn.close()
    ledger.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open-cases", type=int, default=4000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/projections.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, open_cases, events in (
            ("small", 50, 1_000),
            ("large", args.open_cases, args.events),
        ):
            path = Path(tmp) / label
            count = load(path, open_cases, events)
            runs = [rebuild_in_child(path) for _ in range(args.repeat)]
            seconds = statistics.median(r[1] for r in runs)
            rows.append(
                {
                    "events": count,
                    "rebuild_s": round(seconds, 3),
                    "rebuild_events_per_s": round(count / seconds),
                    "rebuild_peak_rss_mb": round(max(r[2] for r in runs)),
                    "catch_up_one_event_ms": round(one_event_catch_up(path) * 1000, 2),
                }
            )
    columns = list(rows[0])
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(f"{row[c]:,}" if isinstance(row[c], int) else str(row[c])
                         for c in columns))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(
        {"python": platform.python_version(), "repeat": args.repeat, "results": rows},
        indent=2,
    ) + "\n")


if __name__ == "__main__":
    main()
