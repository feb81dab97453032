"""Read side: rebuilding the read models, and catching up after one new event.

Loads a generated history (``fixtures.tools.generate``, seeded) into a fresh ledger, a chunk
of 50,000 events at a time (so a 1,000,000-event history never sits in memory), then
measures in a child process a full ``rebuild`` (the child reports its own peak RSS), and,
in this process, the catch-up after appending one event, as the log grows. Prints a
table and writes bench/results/projections.json.

    python -m bench.projections [--open-cases 4000] [--events 100000] [--repeat 3]
    python -m bench.projections --events 1000000 --open-cases 16000 --keep /tmp/projbench

``--keep DIR`` keeps the generated ledgers in DIR and reuses them on the next run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections import engine

from fixtures.tools.generate import generate

# The child reports its own peak RSS (VmHWM): RUSAGE_CHILDREN would report this process's
# size when it is larger, since the child starts as a copy of it. To it is added the peak
# of the rebuild's second process (``rebuild._AuditProcess``), forked from the child.
REBUILD = """
import resource, sys, time
from pathlib import Path
from arms_ledger.ledger.app.directory import open_ledger
from arms_ledger.projections import engine
ledger = open_ledger(Path(sys.argv[1]))
started = time.perf_counter()
count = engine.rebuild(ledger.reader, Path(sys.argv[1]) / engine.PROJECTIONS_DB)
took = time.perf_counter() - started
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
peak += resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(count, took, peak / 1024)
"""

CHUNK = 50_000


def load(
    path: Path,
    open_cases: int,
    events: int,
    store: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """A new ledger at ``path`` (in ``store``, else the default) with the generated
    history, 50,000 events at a time; ``progress(count)`` after each chunk."""
    ledger = create(path, store=store)
    lines = generate(open_cases=open_cases, events=events, with_recorded_at=True)
    count = 0
    try:
        while chunk := [ev.decoder.decode(line) for line in itertools.islice(lines, CHUNK)]:
            if not count:
                result = ledger.import_history(chunk)
            else:  # import_history only loads into an empty ledger
                result = ledger.append_history(chunk)
            count += len(result.positions)
            if progress is not None:
                progress(count)
    finally:
        ledger.close()
    return count


def ledger_at(work: Path, label: str, open_cases: int, events: int, keep: bool) -> Path:
    """The generated ledger for these sizes: reused from ``work`` if kept there."""
    path = work / f"{label}-{open_cases}-{events}"
    done = path / "complete"
    if keep and done.exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    count = load(path, open_cases, events)
    done.write_text(f"{count}\n")
    return path


def rebuild_in_child(path: Path) -> tuple[int, float, float]:
    out = subprocess.run(
        [sys.executable, "-c", REBUILD, str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    ).stdout.split()
    return int(out[0]), float(out[1]), float(out[2])


def one_event_catch_up(path: Path, repeat: int = 20) -> float:
    """Median seconds to catch up after appending one small partner event.

    Works on a copy: the appended events stay out of the kept ledger.
    """
    from arms_ledger.ledger.app.directory import open_ledger

    copy = path.with_name(path.name + "-catch-up")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(path, copy)
    path = copy
    ledger = open_ledger(path)
    conn = engine.live(ledger.reader, path)
    partner = conn.execute(
        "SELECT partner FROM partners ORDER BY partner LIMIT 1"
    ).fetchone()[0]
    times = []
    for n in range(repeat):
        event = ev.EconomicContributionRecorded(
            partner=partner,
            kind="advance-payment",
            amount_usd=1_000_000 + n,
            description="benchmark",
            actor="bench",
        )
        ledger.append([event])
        started = time.perf_counter()
        engine.catch_up(ledger.reader, conn)
        times.append(time.perf_counter() - started)
    conn.close()
    ledger.close()
    shutil.rmtree(copy, ignore_errors=True)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open-cases", type=int, default=4000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/projections.json"))
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep the generated ledgers in this directory and reuse them",
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for label, open_cases, events in (
            ("small", 50, 1_000),
            ("large", args.open_cases, args.events),
        ):
            path = ledger_at(work, label, open_cases, events, args.keep is not None)
            count = int((path / "complete").read_text())
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
        print(
            " | ".join(
                f"{row[c]:,}" if isinstance(row[c], int) else str(row[c]) for c in columns
            )
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"python": platform.python_version(), "repeat": args.repeat, "results": rows},
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
